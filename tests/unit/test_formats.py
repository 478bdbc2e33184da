"""Column formats on known values."""

import numpy as np

from gadgetbook.frames import formats


def test_errno_and_open_flags():
    assert formats.errno_name(2) == "ENOENT" and formats.errno_name(0) == ""
    assert formats.open_flags(0) == "O_RDONLY"
    assert formats.open_flags(0o1 | 0o100 | 0o1000) == "O_WRONLY|O_CREAT|O_TRUNC"
    assert formats.open_flags(0o4010000 | 2) == "O_RDWR|O_SYNC"


def test_ip_addresses():
    addrs = np.zeros((3, 16), dtype=np.uint8)
    addrs[0, :4] = [127, 0, 0, 1]
    addrs[1, 15] = 1
    out = formats.ip_addresses(np.array([2, 10, 10], dtype=np.uint16), addrs)
    assert list(out.values()) == ["127.0.0.1", "::1", "::"]


def test_cstrings_cut_at_first_nul():
    raw = np.array([b"abc\0garbage", b"abc\0other", b"xyz"], dtype="S12")
    assert list(formats.decode_cstrings(raw).values()) == ["abc", "abc", "xyz"]


def test_argv():
    block = np.array([b"/bin/echo\0a\0b c\0junk"], dtype="S24")
    assert list(formats.argv(block, np.array([16])).values()) == ["/bin/echo a b c"]


def test_factorize_wide_values_exactly():
    from gadgetbook.frames.coded import Coded, factorize

    raw = np.array([b"aa", b"bb", b"aa", b"cc", b"bb"], dtype="S16")
    codes, uniques = factorize(raw)
    assert list(uniques[codes]) == list(raw) and len(uniques) == 3
    merged = Coded.concat([Coded(np.array([0, 1], np.int32), np.array(["x", "y"], "O")),
                           Coded(np.array([0, 0], np.int32), np.array(["y"], "O"))])
    assert list(merged.values()) == ["x", "y", "y", "y"] and len(merged.categories) == 2


def test_factorize_while_pandas_is_half_imported(monkeypatch):
    """Another thread importing pandas leaves a module without factorize in sys.modules for a moment."""
    import sys
    import types

    from gadgetbook.frames.coded import factorize

    monkeypatch.setitem(sys.modules, "pandas", types.ModuleType("pandas"))
    values = np.arange(10_000, dtype=np.uint64) % 7
    codes, uniques = factorize(values)
    assert (uniques[codes] == values).all() and len(uniques) == 7
