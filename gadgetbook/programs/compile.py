"""Compiling a CO-RE BPF C program with clang: against a kernel's vmlinux.h (made once per BTF, cached by its
hash), with libbpf's headers and gadgetbook's own; compiler errors come back with the cell's lines marked."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gadgetbook.errors import GadgetError

PACKAGE_INCLUDE = Path(__file__).resolve().parent.parent / "_bpf" / "include"
SOURCE_INCLUDE = Path(__file__).resolve().parents[2] / "bpf" / "include"  # a checkout without `make -C bpf`
CELL_FILE = "cell.bpf.c"
# clang's -target bpf needs the architecture the program will run on, for the PT_REGS macros.
ARCHES = {"x86_64": "x86", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "ppc64le": "powerpc",
          "s390x": "s390", "riscv64": "riscv", "loongarch64": "loongarch"}
_DIAGNOSTIC = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<severity>fatal error|error|warning): "
                         r"(?P<message>.*)$", re.M)
_LICENSE = re.compile(r"SEC\(\s*\"license\"\s*\)")
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_STRUCT_DEF = re.compile(r"\bstruct\s+([A-Za-z_]\w*)\s*\{")
ANCHOR_PREFIX = "_gadgetbook_struct_"


def cache_dir(*parts: str) -> Path:
    """gadgetbook's cache ($GADGETBOOK_CACHE_DIR, else $XDG_CACHE_HOME/gadgetbook, else ~/.cache/gadgetbook)."""
    base = os.environ.get("GADGETBOOK_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gadgetbook")
    path = Path(base, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def include_dir() -> Path:
    """Where gadget.h is: in the installed package, or the checkout's bpf/include."""
    for path in (PACKAGE_INCLUDE, SOURCE_INCLUDE):
        if (path / "gadget.h").exists():
            return path
    raise GadgetError("gadgetbook's BPF headers are missing from the package; reinstall gadgetbook.")


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tool(name: str, package: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None)
    if path is None:
        raise GadgetError(f"Compiling BPF programs needs {name}, which is not installed; "
                          f"install it (Debian: apt-get install {package}).")
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def vmlinux_header(btf: bytes | str, digest: str | None = None) -> Path:
    """The directory holding vmlinux.h for this BTF (raw bytes, or a path to a BTF file), made with bpftool
    the first time and kept in the cache under the BTF's hash."""
    raw = Path(btf).read_bytes() if isinstance(btf, str) else btf
    if digest is not None and digest_of(raw) != digest:
        raise GadgetError("The kernel BTF received does not match its hash; try again.")
    digest = digest or digest_of(raw)
    where = cache_dir("btf", digest[:24])
    header = where / "vmlinux.h"
    if header.exists():
        return where
    bpftool = _tool("bpftool", "bpftool")
    with tempfile.NamedTemporaryFile(dir=where, prefix=".btf-") as f:
        f.write(raw)
        f.flush()
        done = subprocess.run([bpftool, "btf", "dump", "file", f.name, "format", "c"], capture_output=True)
    if done.returncode != 0:
        raise GadgetError(f"bpftool cannot read this kernel's BTF: {done.stderr.decode(errors='replace').strip()}.")
    _write_atomic(header, done.stdout)
    return where


def host_vmlinux() -> tuple[Path, str]:
    """vmlinux.h of this host's kernel and its BTF's hash."""
    from gadgetbook.kernel.hooks import VMLINUX_BTF

    try:
        raw = Path(VMLINUX_BTF).read_bytes()
    except OSError:
        raise GadgetError(f"This kernel has no BTF ({VMLINUX_BTF} is missing); CO-RE programs need a kernel built "
                          "with CONFIG_DEBUG_INFO_BTF=y.") from None
    digest = digest_of(raw)
    return vmlinux_header(raw, digest), digest


@dataclass(frozen=True)
class Diagnostic:
    """One message of the compiler, about a line of the cell (file == CELL_FILE) or of a header."""

    file: str
    line: int
    column: int
    severity: str
    message: str

    @property
    def in_cell(self) -> bool:
        return os.path.basename(self.file) == CELL_FILE


def diagnostics(output: str) -> list[Diagnostic]:
    return [Diagnostic(m["file"], int(m["line"]), int(m["col"]), m["severity"], m["message"].strip())
            for m in _DIAGNOSTIC.finditer(output)]


def marked_lines(source: str, diagnostic: Diagnostic, context: int = 1) -> list[str]:
    """The cell's lines around a diagnostic, the offending one marked with '>' and a caret under its column."""
    lines = source.splitlines()
    first, last = max(1, diagnostic.line - context), min(len(lines), diagnostic.line + context)
    width = len(str(last))
    out = []
    for n in range(first, last + 1):
        mark = ">" if n == diagnostic.line else " "
        out.append(f"  {mark} {n:>{width}} | {lines[n - 1]}")
        if n == diagnostic.line:
            # Tabs stay tabs under the line, so the caret lands under the column however tabs are shown.
            indent = "".join(c if c == "\t" else " " for c in lines[n - 1][: diagnostic.column - 1])
            out.append(f"    {' ' * width} | {indent}^")
    return out


class CompileError(GadgetError):
    """The program does not compile; str() names each error with the cell's lines marked."""

    def __init__(self, source: str, output: str, what: str = "The cell",
                 found: list[Diagnostic] | None = None) -> None:
        self.source = source
        self.output = output
        self.diagnostics = diagnostics(output) if found is None else found
        errors = [d for d in self.diagnostics if d.severity != "warning"]
        self.errors = errors
        super().__init__(render(source, errors, output, what))


def render(source: str, errors: list[Diagnostic], output: str, what: str) -> str:
    if not errors:
        tail = "\n".join(output.strip().splitlines()[-12:])
        return f"{what} does not compile:\n{tail}"
    missing = next((d for d in errors if "bpf/bpf_helpers.h' file not found" in d.message), None)
    if missing is not None:
        return ("The cell includes libbpf's headers, which are not installed; install them "
                "(Debian: apt-get install libbpf-dev).")
    count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
    lines = [f"{what} does not compile ({count}):"]
    for d in errors[:10]:
        if d.in_cell:
            lines.append(f"line {d.line}: {d.message}")
            lines.extend(marked_lines(source, d))
        else:
            lines.append(f"{os.path.basename(d.file)}:{d.line}: {d.message}")
    if len(errors) > 10:
        lines.append(f"... and {len(errors) - 10} more")
    return "\n".join(lines)


@dataclass(frozen=True)
class Compiled:
    """A compiled program: the object file and what the compiler warned about."""

    path: Path
    warnings: tuple[str, ...]


def arch_of(machine: str | None = None) -> str:
    machine = machine or platform.machine()
    try:
        return ARCHES[machine]
    except KeyError:
        raise GadgetError(f"gadgetbook cannot compile BPF programs for the {machine} architecture.") from None


def defined_structs(source: str) -> list[str]:
    """Names of the structs the cell defines, in order."""
    names = _STRUCT_DEF.findall(_COMMENTS.sub(" ", source))
    return list(dict.fromkeys(names))


def cell_text(source: str) -> str:
    """The cell as compiled, with lines added at the end only (line numbers stay the cell's):
    - a pointer to each struct it defines, so that the struct is in the object's BTF (clang describes only
      types that globals, maps and functions use; a record built in a local variable would be missing);
    - GPL's license when it declares none (tracepoint programs call GPL-only helpers)."""
    extra = [f"const struct {name} *{ANCHOR_PREFIX}{name} __attribute__((unused)) = 0;"
             for name in defined_structs(source)]
    if not _LICENSE.search(source):
        # Spelled out rather than with SEC(): the cell may not include bpf_helpers.h.
        extra.append('char _gadgetbook_license[] __attribute__((section("license"), used)) = "GPL";')
    return source.rstrip("\n") + "\n" + "".join(line + "\n" for line in extra) if extra else source


def compile_program(source: str, vmlinux_dir: Path, *, arch: str | None = None) -> Compiled:
    """The cell compiled to a CO-RE object (kept in the cache under a hash of everything that went in);
    CompileError with the offending lines marked when clang refuses it."""
    clang = _tool("clang", "clang llvm libbpf-dev")
    arch = arch or arch_of()
    includes = include_dir()
    text = cell_text(source)
    key = hashlib.sha256()
    for part in (text, str(vmlinux_dir), arch, clang, *(p.read_text() for p in sorted(includes.glob("*.h")))):
        key.update(part.encode())
        key.update(b"\0")
    work = cache_dir("programs", key.hexdigest()[:24])
    obj, noted = work / "cell.bpf.o", work / "warnings.txt"
    if obj.exists() and noted.exists():
        return Compiled(obj, tuple(noted.read_text().splitlines()))
    (work / CELL_FILE).write_text(text)
    cmd = [clang, "-O2", "-g", "-target", "bpf", f"-D__TARGET_ARCH_{arch}", "-fno-color-diagnostics",
           "-fno-caret-diagnostics", "-I", str(vmlinux_dir), "-I", str(includes), "-c", CELL_FILE,
           "-o", "cell.bpf.o.tmp"]
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)  # nothing half-made stays in the cache
        raise CompileError(source, done.stderr)
    warnings = tuple(f"line {d.line}: {d.message}" if d.in_cell else f"{d.file}:{d.line}: {d.message}"
                     for d in diagnostics(done.stderr) if d.severity == "warning")
    noted.write_text("".join(w + "\n" for w in warnings))
    os.replace(work / "cell.bpf.o.tmp", obj)  # last: an object in the cache is a complete one
    return Compiled(obj, warnings)
