"""Symbols without a kernel: separate debug files found by debuglink and by build-id, MiniDebugInfo, and
demangled C++ and Rust names."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from support import unwind  # noqa: E402

from gadgetbook.symbols.demangle import demangle  # noqa: E402
from gadgetbook.symbols.elf import ElfSymbols  # noqa: E402


def names(syms: ElfSymbols) -> set[str]:
    return {syms.name(i) for i in range(len(syms))}


def test_debuglink_file_beside_the_binary(tmp_path):
    binary = unwind.build(tmp_path, "chain.c", "chain", unwind.NO_FRAME_POINTERS)
    debug = tmp_path / ".debug" / "chain.debug"
    debug.parent.mkdir()
    subprocess.run(["objcopy", "--only-keep-debug", str(binary), str(debug)], check=True)
    subprocess.run(["strip", "--strip-all", str(binary)], check=True)
    subprocess.run(["objcopy", f"--add-gnu-debuglink={debug}", str(binary)], check=True)
    assert "chain_leaf" not in names(ElfSymbols.read(str(binary)))  # the link needs the file's own path
    syms = ElfSymbols.read(str(binary), real_path=str(binary))
    assert {"chain_leaf", "chain_middle", "chain_outer"} <= names(syms) and syms.debug_source == str(debug)


def test_build_id_debug_file_in_the_process_root(tmp_path):
    binary = unwind.build(tmp_path, "chain.c", "chain", unwind.NO_FRAME_POINTERS)
    root = tmp_path / "root"
    stripped = unwind.split_debug(binary, "chain-stripped", root)
    assert "chain_leaf" not in names(ElfSymbols.read(str(stripped)))
    syms = ElfSymbols.read(str(stripped), root=str(root))
    assert "chain_leaf" in names(syms) and "/usr/lib/debug/.build-id/" in syms.debug_source


def test_minidebuginfo(tmp_path):
    binary = unwind.build(tmp_path, "chain.c", "chain", unwind.NO_FRAME_POINTERS)
    mini = unwind.mini_debuginfo(binary, "chain-mini")
    syms = ElfSymbols.read(str(mini))
    assert "chain_leaf" in names(syms) and syms.debug_source == ".gnu_debugdata"
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_demangled_names():
    assert demangle("_ZN4shop6BasketIlE5totalEl") == "shop::Basket<long>::total(long)"
    assert demangle("_ZN4core3fmt5write17h0123456789abcdefE") == "core::fmt::write"  # legacy Rust, hash dropped
    assert demangle("_RNvCs1234_7mycrate4main") == "mycrate::main"  # Rust v0
    assert demangle("chain_leaf") == "chain_leaf" and demangle("_Znot_a_name") == "_Znot_a_name"
