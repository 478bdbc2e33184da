"""What the kernel stack of a capability check says: the function that asked, and whether it is audited.

The capability/cap_capable tracepoint does not carry cap_capable()'s `opts`, whose CAP_OPT_NOAUDIT bit
marks checks the kernel makes without auditing them: probes whose failure is harmless, such as
CAP_SYS_ADMIN in mmap's memory accounting. Those checks go through a few known functions, which the
shallow stack kept in each event names. The stack is read innermost first: the frames of the capability
code itself (cap_capable, security_capable, ns_capable, has_ns_capability_noaudit, ...) and then the
first function outside it, the caller.
"""

from __future__ import annotations

import re

import numpy as np

from gadgetbook.frames.coded import Coded, factorize_rows

AUDIT_FROM_STACK, AUDIT_YES, AUDIT_NO = 0, 1, 2  # enum audit in bpf/capabilities/program.bpf.c

# The capability code between a check's caller and the tracepoint: kernel/capability.c, the capability
# LSM (security/commoncap.c), the LSM hooks (security_*), and the many *capable* wrappers (file_ns_capable,
# capable_wrt_inode_uidgid, sk_ns_capable, netlink_net_capable, bpf_token_capable, ...), and the frames the
# fallback hooks add (a BPF trampoline, a kretprobe's).
_CAPABILITY_CODE = re.compile(r"^(cap_|security_|bpf_trampoline_|bpf_prog_|__kretprobe_trampoline|kretprobe_trampoline)"
                              r"|capable|_capability")
# Functions that pass CAP_OPT_NOAUDIT: every *_noaudit wrapper, and the callers that pass it to
# security_capable() or cap_capable() themselves (cap_vm_enough_memory is inlined into
# security_vm_enough_memory_mm on recent kernels).
_NOAUDIT_NAMES = frozenset({"cap_vm_enough_memory", "security_vm_enough_memory_mm", "ptracer_capable",
                            "kallsyms_show_value"})


def _bare(symbol: str) -> str:
    """The function's name without the compiler's suffixes (.isra.0, .constprop.0, .cold)."""
    return symbol.split(".", 1)[0]


def read_stack(names: list[str | None]) -> tuple[str, bool | None]:
    """(caller, audited) from a stack's function names, innermost first; audited is None when the stack
    says nothing (it could not be read)."""
    names = [_bare(n) for n in names if n]
    if not names:
        return "", None
    audited = True
    for name in names:
        if name.endswith("_noaudit") or name in _NOAUDIT_NAMES:
            audited = False
        if not _CAPABILITY_CODE.search(name):
            return name, audited
    return "", audited


def _distinct_stacks(stacks: np.ndarray) -> tuple[np.ndarray, list[tuple[str, bool | None]]]:
    """(codes, (caller, audited) per distinct stack), each distinct stack named once."""
    from gadgetbook.symbols.kallsyms import kernel_symbols

    codes, first = factorize_rows(stacks)
    distinct = np.ascontiguousarray(stacks[first])
    if not len(distinct):
        return codes, []
    syms = kernel_symbols()
    names = syms.lookup(distinct.reshape(-1)).reshape(distinct.shape)
    zero = distinct == 0
    names[zero] = None
    return codes, [read_stack(row) for row in names.tolist()]


def callers(stacks: np.ndarray) -> Coded:
    """The caller of each check, as a coded column ("" where the stack could not be named)."""
    codes, read = _distinct_stacks(stacks)
    index: dict[str, int] = {}
    remap = np.array([index.setdefault(caller, len(index)) for caller, _ in read], dtype=np.int32)
    categories = np.empty(len(index), dtype="O")
    categories[:] = list(index)
    return Coded(remap[codes] if len(remap) else codes, categories)


def audited(audit_raw: np.ndarray, stacks: np.ndarray) -> np.ndarray:
    """True for audited checks: as the fallback hooks' `opts` said, else as the stack says (audited when
    it says nothing, as most checks are)."""
    out = audit_raw != AUDIT_NO
    from_stack = audit_raw == AUDIT_FROM_STACK
    if from_stack.any():
        codes, read = _distinct_stacks(stacks[from_stack])
        by_stack = np.array([a is not False for _, a in read], dtype=bool)
        out[from_stack] = by_stack[codes]
    return out
