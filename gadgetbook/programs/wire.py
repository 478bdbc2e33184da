"""The node's side of programs of one's own: its kernel's BTF for the client to compile against, and the spec
of a program a START message carries (its object, compiled by the client for this kernel)."""

from __future__ import annotations

import base64
import binascii
import functools
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from gadgetbook.catalog.spec import GadgetSpec
from gadgetbook.errors import GadgetError
from gadgetbook.kernel.hooks import VMLINUX_BTF
from gadgetbook.programs.compile import digest_of
from gadgetbook.programs.spec import program_spec


@functools.cache
def _btf_digest(size: int, mtime: float) -> str:
    return digest_of(Path(VMLINUX_BTF).read_bytes())


def btf_facts() -> dict[str, Any]:
    """The hash of this kernel's BTF and its architecture; a GadgetError when the kernel has no BTF."""
    try:
        st = os.stat(VMLINUX_BTF)
    except OSError:
        raise GadgetError(f"This node's kernel has no BTF ({VMLINUX_BTF}); CO-RE programs cannot run on it.") from None
    return {"sha256": _btf_digest(st.st_size, st.st_mtime), "size": st.st_size, "arch": platform.machine()}


def btf_bytes() -> bytes:
    return Path(VMLINUX_BTF).read_bytes()


def spec_from_wire(program: dict[str, Any]) -> tuple[GadgetSpec, Path | None]:
    """The spec of the program a START message carries, and the object file written for it (the caller
    removes it once the program is loaded; a bcc program has none: this node's bcc compiles its C)."""
    if program.get("kind") == "bcc":
        return bcc_from_wire(program), None
    if program.get("kind") != "program":
        raise GadgetError(f"This node runs programs of the kinds 'program' and 'bcc', not {program.get('kind')!r}; "
                          "upgrade gadgetbook on the node.")
    try:
        data = base64.b64decode(str(program["object"]), validate=True)
    except (KeyError, binascii.Error):
        raise GadgetError("The START message's program carries no readable object.") from None
    fd, name = tempfile.mkstemp(prefix="gadgetbook-program-", suffix=".bpf.o")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        record = program.get("record")
        spec = program_spec(path, name=str(program.get("name") or "cell"), event=record,
                            cell_structs=[record] if record else [])
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return spec, path


def bcc_from_wire(program: dict[str, Any]) -> GadgetSpec:
    """A bcc program's spec, once this node is known to run bcc: a pod of the default image says how to get one
    that does, in one sentence."""
    from gadgetbook.kinds.bcc import bcc_spec
    from gadgetbook.programs.bcc_host import bcc_available

    source = str(program.get("source") or "")
    if not source.strip():
        raise GadgetError("The START message's bcc program has no source.")
    if not bcc_available():
        raise GadgetError("This node's gadgetbook pod has no bcc (the default image leaves its compiler out); "
                          "redeploy with `gadgetbook deploy --bcc` (the image built by `images/build.sh --bcc`), "
                          "or write the program for %%bpf, which any node pod runs.")
    return bcc_spec(source, str(program.get("name") or "cell"))
