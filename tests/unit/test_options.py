"""The shared flag parser: durations, sizes, params, and one-sentence errors."""

import pytest

from gadgetbook.errors import GadgetError
from gadgetbook.options import parse_duration, parse_run, parse_size


@pytest.mark.parametrize("text,seconds", [("10", 10), ("10s", 10), ("2m", 120), ("1h", 3600), ("500ms", 0.5),
                                          ("1m30s", 90), (3, 3.0)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10x", "s", "-1", "0", "1m 2"])
def test_bad_durations(text):
    with pytest.raises(GadgetError):
        parse_duration(text)


def test_sizes():
    assert parse_size("4096") == 4096 and parse_size("64k") == 65536 and parse_size("4M") == 4 << 20


def test_gadget_flags_and_params():
    req = parse_run(["opensnoop", "--failed", "--timeout", "2s", "-l", "app=api", "--pid", "7"])
    assert (req.gadget, req.params, req.timeout, req.selector, req.pid) == ("opensnoop", {"failed": True}, 2.0,
                                                                           "app=api", 7)
    assert req.run_kwargs() == {"timeout": 2.0, "pid": 7, "selector": "app=api", "failed": True}


def test_unknown_gadget_lists_known_ones():
    with pytest.raises(GadgetError, match=r"Unknown gadget or command 'nope'. Known gadgets: .*opensnoop"):
        parse_run(["nope"])


def test_unknown_flag_is_one_sentence():
    with pytest.raises(GadgetError, match=r"unrecognized arguments: --bogus"):
        parse_run(["opensnoop", "--bogus"])


def test_bad_pid_value():
    with pytest.raises(GadgetError, match=r"--pid: invalid int value"):
        parse_run(["execsnoop", "--pid", "abc"])
