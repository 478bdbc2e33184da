"""What a bcc program needs before it runs: this kernel's headers (or a warning that they are another kernel's),
a Python that imports bcc, and the prelude the magic adds (container and process filters that need no kernel
struct); and its compiler's messages told against the cell's own lines."""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gadgetbook.errors import GadgetError
from gadgetbook.programs.compile import CELL_FILE, Diagnostic, diagnostics

CHILD = Path(__file__).with_name("bcc_child.py")
FILTER_MAP = "gadget_cgroup_filter"
_UTS = re.compile(r'#define UTS_RELEASE "([^"]+)"')


@dataclass(frozen=True)
class KernelHeaders:
    """The headers bcc will compile against (`path` as the host names it), and the kernel they were made for."""

    path: Path
    release: str | None  # None when they do not say
    where: str = ""  # " on node NAME" when they are a node's

    @property
    def running(self) -> str:
        return platform.release()

    @property
    def mismatch(self) -> str | None:
        """A warning when the headers are another kernel's (or do not say whose)."""
        if self.release == self.running:
            return None
        whose = f"are for {self.release}" if self.release else "do not say which kernel they are for"
        return (f"The kernel headers in {self.path}{self.where} {whose}, not the running {self.running}: tracepoint "
                "arguments are right (bcc reads their layout from the kernel's tracefs), but reads of kernel structs "
                "through these headers may be silently wrong.")


def kernel_headers(node: str | None = None) -> KernelHeaders:
    """The headers bcc finds ($BCC_KERNEL_SOURCE, else the host's /lib/modules/$(uname -r)/build); a GadgetError
    saying how to get them when there are none. In a node pod (`node` names it) they are the host's, linked
    into the pod's own /lib/modules where bcc looks for them."""
    from gadgetbook.targets.host_view import host_view

    release = platform.release()
    view = host_view()
    named = os.environ.get("BCC_KERNEL_SOURCE")
    build = Path(named or f"/lib/modules/{release}/build")
    where = f" on node {node}" if node else ""
    # A path set in $BCC_KERNEL_SOURCE is one in this process's files (bcc, its child, reads it here); the
    # default is the host's.
    seen = build if named else view.path(str(build))
    if not (seen / "include").is_dir():
        install = f"apt-get install linux-headers-{release}"
        raise GadgetError(
            f"bcc compiles against the running kernel's headers and there are none ({build}{where} is missing); "
            f"install them{' on the node' if node else ''} (Debian: {install}; another kernel's headers linked "
            "there work for tracepoints, see the README), or write the program for %%bpf, which needs no headers.")
    if view.pid is not None and not named:
        _link_host_headers(release, seen, view.path(f"/lib/modules/{release}/source"))
    try:
        text = (seen / "include" / "generated" / "utsrelease.h").read_text()
        found = _UTS.search(text)
        version = found.group(1) if found else None
    except OSError:
        version = None
    return KernelHeaders(build, version, where)


def _link_host_headers(release: str, build: Path, source: Path) -> None:
    """The host's headers where bcc looks in this pod (/lib/modules/RELEASE/{build,source}, in the pod's own
    files), renewed at every run: the host may have installed or linked others since."""
    here = Path("/lib/modules") / release
    try:
        here.mkdir(parents=True, exist_ok=True)
        for name, target in (("build", build), ("source", source)):
            link = here / name
            if not target.is_dir():
                link.unlink(missing_ok=True)
                continue
            fresh = here / f".{name}.{os.getpid()}"
            fresh.unlink(missing_ok=True)
            fresh.symlink_to(target)
            fresh.replace(link)  # at once: a bcc starting meanwhile sees the old link or the new one
    except OSError as exc:
        raise GadgetError(f"Cannot show the host's kernel headers to bcc in this pod ({here}: {exc.strerror}); the "
                          "node pod's root filesystem must be writable.") from None


@functools.cache
def bcc_python() -> str:
    """A Python that imports bcc: $GADGETBOOK_BCC_PYTHON, else Debian's /usr/bin/python3."""
    python = os.environ.get("GADGETBOOK_BCC_PYTHON") or "/usr/bin/python3"
    try:
        ok = subprocess.run([python, "-c", "import bcc"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        raise GadgetError(f"bcc cannot be imported by {python}; install it (Debian: apt-get install python3-bpfcc), "
                          "or point GADGETBOOK_BCC_PYTHON at a Python that has it.")
    return python


@functools.cache
def bcc_available() -> bool:
    """Whether bcc_python() finds a Python with bcc (asked once: a node pod's image does not change)."""
    try:
        bcc_python()
    except GadgetError:
        return False
    return True


def prelude(cgroups: bool, pid: int | None) -> str:
    """C put before the cell: gadget_should_discard() (by cgroup id, which equals the inode of the process's
    cgroup v2 directory, and by pid: neither needs a kernel struct, so mismatched headers cannot make it lie),
    and TRACEPOINT_PROBE wrapped so that every probe calls it first. `#line 1` keeps the cell's numbering."""
    lines = ["/* gadgetbook's prelude for %%bcc: the target filters */"]
    if cgroups:
        lines += [f"BPF_HASH({FILTER_MAP}, u64, u8, 4096);"]
    lines += ["static inline bool gadget_should_discard(void)", "{"]
    if pid:
        lines += [f"\tif ((bpf_get_current_pid_tgid() >> 32) != {int(pid)})", "\t\treturn true;"]
    if cgroups:
        lines += ["\tu64 cgroup = bpf_get_current_cgroup_id();",
                  f"\tif (!{FILTER_MAP}.lookup(&cgroup))", "\t\treturn true;"]
    lines += ["\treturn false;", "}"]
    if cgroups or pid:
        lines += [
            "#undef TRACEPOINT_PROBE",
            "#define TRACEPOINT_PROBE(category, event) \\",
            "static __always_inline int gadgetbook__##category##__##event("
            "struct tracepoint__##category##__##event *args); \\",
            "int tracepoint__##category##__##event(struct tracepoint__##category##__##event *args) \\",
            "{ \\",
            "\tif (gadget_should_discard()) \\",
            "\t\treturn 0; \\",
            "\treturn gadgetbook__##category##__##event(args); \\",
            "} \\",
            "static __always_inline int gadgetbook__##category##__##event("
            "struct tracepoint__##category##__##event *args)",
        ]
    lines.append(f'#line 1 "{CELL_FILE}"')
    return "\n".join(lines) + "\n"


def cgroup_ids(pids: list[int]) -> set[int]:
    """bpf_get_current_cgroup_id() of these processes: the inode of their cgroup v2 directory."""
    from gadgetbook.targets.host_view import host_view

    view = host_view()
    root = view.cgroup2()
    if root is None:
        raise GadgetError("Container targets for %%bcc need the cgroup v2 hierarchy, which this host does not mount; "
                          "use %%bpf with gadget.h's filter instead.")
    ids = set()
    for path in view.cgroup_paths(pids).values():
        try:
            ids.add(os.stat(root / path.lstrip("/")).st_ino)
        except OSError:
            continue  # gone since the inventory was taken
    return ids


def cell_diagnostics(output: str, cell: str) -> list[Diagnostic]:
    """The compiler's messages with the cell's line numbers. bcc inserts the struct of each TRACEPOINT_PROBE
    into the source before compiling, which pushes later lines down: the source line clang quotes under a
    message finds the line in the cell (the nearest one at or above the reported number)."""
    lines = output.splitlines()
    cell_lines = [line.strip() for line in cell.splitlines()]  # clang quotes lines with tabs expanded
    found = []
    for d in diagnostics(output):
        quoted = next((lines[i + 1].strip() for i, line in enumerate(lines[:-1])
                       if line.startswith(f"{d.file}:{d.line}:{d.column}: ")), None)
        line = d.line
        if d.in_cell and quoted is not None and (line > len(cell_lines) or cell_lines[line - 1] != quoted):
            matches = [n for n, text in enumerate(cell_lines, 1) if text == quoted]
            below = [n for n in matches if n <= d.line]
            line = max(below) if below else (matches[0] if matches else line)
        found.append(Diagnostic(d.file, line, d.column, d.severity, d.message))
    return found
