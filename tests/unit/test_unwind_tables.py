"""Unwind tables: the direct .eh_frame reader gives the same rows as pyelftools on this machine's real
binaries, except where it declines a function (a rule the in-kernel unwinder cannot follow)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from gadgetbook.symbols import cfi

BINARIES = ["/usr/bin/python3.11", "/usr/bin/bash", "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libz.so.1"]


def pyelftools_rows(path: str) -> np.ndarray:
    """pyelftools' decoding alone (the fallback path of table_from_elf)."""
    from elftools.dwarf.callframe import FDE

    with open(path, "rb") as f:
        dwarf = ELFFile(f).get_dwarf_info(relocate_dwarf_sections=False, follow_links=False)
        return cfi._rows(dwarf.EH_CFI_entries(), FDE)


@pytest.mark.parametrize("path", [b for b in BINARIES if os.path.exists(b)])
def test_direct_reader_matches_pyelftools(path):
    with open(path, "rb") as f:
        section = ELFFile(f).get_section_by_name(".eh_frame")
        data, addr = section.data(), section["sh_addr"]
    fast = cfi.fast_rows(data, addr)
    slow = pyelftools_rows(path)
    assert len(fast) > 100
    # A function the direct reader declined is one UNSUPPORTED row up to the next row; pyelftools may
    # have several rows there. Every other row is the same.
    declined = np.flatnonzero((fast["kind"] == cfi.UNSUPPORTED)
                              & ~np.isin(fast["pc"], slow["pc"][slow["kind"] == cfi.UNSUPPORTED]))
    inside = np.zeros(len(slow), dtype=bool)
    for i in declined.tolist():
        upto = fast["pc"][i + 1] if i + 1 < len(fast) else 1 << 32
        inside |= (slow["pc"] >= fast["pc"][i]) & (slow["pc"] < upto)
    keep_fast = np.ones(len(fast), dtype=bool)
    keep_fast[declined] = False
    np.testing.assert_array_equal(fast[keep_fast], slow[~inside])
    assert len(declined) <= 10  # a handful of hand-written assembly functions


def test_table_rows_say_where_the_caller_is(tmp_path):
    """A leaf without a frame of its own: CFA = rsp + 8 all through it."""
    import subprocess

    src = tmp_path / "leaf.c"
    src.write_text("__attribute__((noinline)) long leaf(long n) { long x = 0; for (long i = 0; i < n; i++) "
                   "x += i ^ (x >> 3); return x; }\nint main(int c, char **v) { return (int)leaf(c * 1000); }\n")
    binary = tmp_path / "leaf"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(src)], check=True)
    table = cfi.table_from_elf(str(binary))
    syms = {line.split()[2]: int(line.split()[0], 16) for line in subprocess.run(
        ["nm", str(binary)], capture_output=True, text=True, check=True).stdout.splitlines() if len(line.split()) == 3}
    row = table[np.searchsorted(table["pc"], syms["leaf"], side="right") - 1]
    assert (row["kind"], row["cfa_off"], row["rbp_off"]) == (cfi.RSP, 8, 0)
    start = table[np.searchsorted(table["pc"], syms["_start"], side="right") - 1]
    assert start["kind"] == cfi.END  # the outermost frame: its return address is undefined
