"""traceloop's records decoded (syscall names, arguments, errno, durations) and its verbs' flags, without a kernel."""

import numpy as np
import pytest

from gadgetbook import catalog
from gadgetbook.advise.seccomp_profile import SeccompAdvice, profile
from gadgetbook.errors import GadgetError
from gadgetbook.frames.syscalls import SyscallDecoder
from gadgetbook.kernel.syscalls import syscall_table
from gadgetbook.recorders.front import parse_verb, request_from_kwargs

SPEC = catalog.get("traceloop")
TABLE = syscall_table()


def _records(rows):
    out = np.zeros(len(rows), dtype=SPEC.event_dtype)
    for i, r in enumerate(rows):
        for k, v in r.items():
            out[i][k] = v
    return out


def test_syscall_names_and_numbers_come_from_libseccomp():
    assert TABLE.names[TABLE.numbers["openat"]] == "openat"
    assert TABLE.resolve(["open", " connect "]) == [TABLE.numbers["open"], TABLE.numbers["connect"]]
    assert TABLE.arch_names[0].startswith("SCMP_ARCH_")
    with pytest.raises(GadgetError, match=r"^Unknown syscall names nope, nada on SCMP_ARCH_\w+; give names as"):
        TABLE.resolve(["openat", "nope", "nada"])


def test_path_arguments_come_from_the_kernels_tracepoint_formats():
    path_arg = {name: TABLE.path_arg(TABLE.numbers[name]) for name in ("openat", "execve", "rename", "read",
                                                                       "mkdir", "newfstatat")}
    assert path_arg == {"openat": 2, "execve": 1, "rename": 1, "read": 0, "mkdir": 1, "newfstatat": 2}


def test_records_decode_to_named_columns():
    openat, write, exit_group = (TABLE.numbers[n] for n in ("openat", "write", "exit_group"))
    flags = 0o2000000 | 0o100  # O_CLOEXEC | O_CREAT
    recs = _records([
        {"seq": 7, "timestamp_raw": 1_000, "duration_ns": 2_500, "nr": openat, "flags": 1, "ret": -2, "pid": 10,
         "tid": 11, "comm": b"sh", "path": b"/etc/missing", "args": [2**64 - 100, 0x7F00, flags, 0o640, 0, 0]},
        {"seq": 8, "timestamp_raw": 2_000, "duration_ns": 900, "nr": write, "flags": 1, "ret": 5, "pid": 10,
         "tid": 11, "comm": b"sh", "args": [1, 0x1000, 5, 0, 0, 0]},
        {"seq": 9, "timestamp_raw": 3_000, "nr": exit_group, "flags": 0, "pid": 10, "tid": 11, "comm": b"sh",
         "args": [3, 0, 0, 0, 0, 0]},
    ])
    b = SyscallDecoder(TABLE).decode(recs, "node-1", ("ns", "pod", "web"), 4026531840)
    assert list(b["syscall"].values()) == ["openat", "write", "exit_group"]
    assert b["args"].values()[0] == 'AT_FDCWD, "/etc/missing", O_RDONLY|O_CREAT|O_CLOEXEC, 0640'
    assert b["args"].values()[1] == "1, 0x1000, 5"
    assert b["args"].values()[2] == "3"
    assert list(b["error"].values()) == ["ENOENT", "", ""]
    assert list(b["ret"]) == [-2, 5, 0] and list(b["returned"]) == [True, True, False]
    assert b["duration"][0] == np.timedelta64(2500, "ns") and np.isnat(b["duration"][2])
    assert list(b["path"].values()) == ["/etc/missing", "", ""]
    assert set(b["container"].values()) == {"web"} and list(b["seq"]) == [7, 8, 9]
    assert b["timestamp"][1] - b["timestamp"][0] == np.timedelta64(1000, "ns")


def test_verbs_parse_one_flag_set_for_cli_magic_and_python():
    req = parse_verb(SPEC, ["start", "-l", "app=api", "--syscalls", "openat,connect", "--entries", "64",
                            "--max-age", "10m"], "gadgetbook traceloop")
    assert (req.verb, req.selector, req.params["syscalls"], req.params["entries"], req.params["max_age"]) == \
        ("start", "app=api", "openat,connect", 64, "10m")
    same = request_from_kwargs("traceloop", "start", {"selector": "app=api", "syscalls": "openat,connect",
                                                      "entries": 64, "max_age": "10m"})
    assert (same.selector, same.params) == (req.selector, req.params)
    show = parse_verb(SPEC, ["show", "--id", "traceloop-1", "--save", "x.parquet", "-o", "json"], "%gadget traceloop")
    assert (show.recording_id, show.save, show.output) == ("traceloop-1", "x.parquet", "json")


@pytest.mark.parametrize("argv,message", [
    ([], r"traceloop is a recorder: say gadgetbook traceloop start\|show\|stop\|list\."),
    (["begin"], r"say gadgetbook traceloop start\|show\|stop\|list \(got 'begin'\)"),
    (["show", "--syscalls", "open"], r"unrecognized arguments: --syscalls open"),
    (["start", "--entries", "lots"], r"--entries takes a uint, not 'lots'"),
])
def test_bad_verbs_are_one_sentence(argv, message):
    with pytest.raises(GadgetError, match=message):
        parse_verb(SPEC, argv, "gadgetbook traceloop")


def test_settings_are_checked_before_anything_loads():
    from gadgetbook.kinds import kind_of

    kind = kind_of(SPEC)
    with pytest.raises(GadgetError, match="power of two"):
        kind.check({"entries": 100})
    with pytest.raises(GadgetError, match="Cannot read the duration"):
        kind.check({"entries": 64, "max_age": "forever"})
    with pytest.raises(GadgetError, match="takes no syscalls; those are for start"):
        request_from_kwargs("traceloop", "show", {"syscalls": "open"})


def test_a_profile_is_the_format_runtimes_read(tmp_path):
    prof = profile({"write", "openat", "exit_group"}, ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"))
    assert prof == {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                    "syscalls": [{"names": ["exit_group", "openat", "write"], "action": "SCMP_ACT_ALLOW"}]}
    advice = SeccompAdvice(profiles={"web": prof, "db/x": prof})
    written = advice.save(tmp_path / "profiles")
    assert sorted(p.name for p in written) == ["db-x.json", "web.json"]
    assert "download web.json" in advice._repr_html_()
