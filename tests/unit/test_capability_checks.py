"""Capability names, what a check's kernel stack says, the --unique fold and the securityContext advisor, on
known values (the kernel side is tested in tests/bpf/test_capabilities.py)."""

import numpy as np
import pandas as pd
import pytest
import yaml

import gadgetbook
from gadgetbook.errors import GadgetError
from gadgetbook.frames.cap_stacks import read_stack
from gadgetbook.kernel.capability_names import capability_mask, capability_name, capability_number
from gadgetbook.kernel.syscall_names import syscall_name
from gadgetbook.kinds.trace import fold_repeats


def test_capability_names_both_ways():
    assert capability_name(0) == "CAP_CHOWN" and capability_name(10) == "CAP_NET_BIND_SERVICE"
    assert capability_name(21) == "CAP_SYS_ADMIN" and capability_name(60) == "CAP_UNKNOWN_60"
    for word in ("CAP_CHOWN", "cap_chown", "chown", " Chown "):
        assert capability_number(word) == 0
    assert capability_mask("chown, NET_BIND_SERVICE") == 1 | 1 << 10
    assert capability_mask("") == 0


@pytest.mark.parametrize("word", ["chwon", "CAP_", "41", "CAP_SYS_ADMINS"])
def test_unknown_capability_name_is_one_sentence(word):
    with pytest.raises(GadgetError, match=rf"'{word}' is not a capability name; use names such as CAP_CHOWN"):
        capability_number(word)


def test_caps_param_checked_before_anything_loads():
    # The spec checks the words (the run would load nothing): the error names the flag.
    with pytest.raises(GadgetError, match=r"^--caps: 'sys_admn' is not a capability name"):
        gadgetbook.start("capabilities", caps="chown,sys_admn")
    from gadgetbook import catalog

    spec = catalog.get("capabilities")
    params = spec.checked_params({"caps": "CAP_CHOWN,net_bind_service"})
    assert spec.rodata(params)["targ_caps"] == 1 | 1 << 10


def test_syscall_names_from_libseccomp():
    import platform

    if platform.machine() == "x86_64":
        assert (syscall_name(0), syscall_name(92), syscall_name(165)) == ("read", "chown", "mount")
    assert syscall_name(-1) == "" and syscall_name(99999) == "syscall_99999"


@pytest.mark.parametrize("stack,expected", [
    (["cap_capable", "security_capable", "capable_wrt_inode_uidgid", "setattr_prepare", "ext4_setattr"],
     ("setattr_prepare", True)),
    (["cap_capable", "security_vm_enough_memory_mm", "__mmap_region", "do_mmap"], ("__mmap_region", False)),
    (["cap_capable", "security_capable", "ns_capable_noaudit", "do_jit.isra.0"], ("do_jit", False)),
    (["cap_capable", "security_capable", "has_ns_capability_noaudit", "oom_badness"], ("oom_badness", False)),
    (["cap_capable", "security_capable", "kallsyms_show_value", "kallsyms_open"], ("kallsyms_show_value", False)),
    (["cap_capable", "security_capable", "ns_capable", "__inet_bind", "inet_bind_sk"], ("__inet_bind", True)),
    ([None, None], ("", None)),
])
def test_stack_names_the_caller_and_the_audit_flag(stack, expected):
    assert read_stack(stack) == expected


def _frame(rows, unique=True):
    cols = ["timestamp", "node", "namespace", "pod", "container", "pid", "comm", "cap", "capability", "verdict",
            "audit", "syscall", "caller", "count", "mntns_id"]
    df = pd.DataFrame(rows, columns=cols)
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s")
    df["count"] = df["count"].astype("uint64")
    df.attrs = {"gadget": "capabilities", "params": {"unique": unique}}
    return df


def test_unique_fold_keeps_the_first_row_and_sums_exactly():
    rows = [
        (3, "n", "", "", "web", 7, "chown", 0, "CAP_CHOWN", "allowed", True, "chown", "setattr_prepare", 1, 5),
        (1, "n", "", "", "web", 8, "chown", 0, "CAP_CHOWN", "allowed", True, "chown", "setattr_prepare", 1, 5),
        (9, "n", "", "", "web", 8, "chown", 0, "CAP_CHOWN", "allowed", True, "chown", "setattr_prepare", 41, 5),
        (2, "n", "", "", "db", 9, "chown", 0, "CAP_CHOWN", "allowed", True, "chown", "setattr_prepare", 2, 6),
        (4, "n", "", "", "web", 7, "nc", 10, "CAP_NET_BIND_SERVICE", "allowed", True, "bind", "__inet_bind", 1, 5),
    ]
    out = fold_repeats(_frame(rows))
    assert len(out) == 3 and out["count"].dtype == np.uint64
    web = out[(out.container == "web") & (out.capability == "CAP_CHOWN")].iloc[0]
    assert (web["count"], web.pid) == (43, 8)  # the first seen (pid 8 at t=1), with every repeat
    assert out[out.container == "db"]["count"].tolist() == [2]
    assert out.attrs["params"] == {"unique": True}
    assert out["count"].sum() == _frame(rows)["count"].sum()


def _advice_rows():
    return [
        (1, "n", "", "", "web", 7, "chown", 0, "CAP_CHOWN", "allowed", True, "chown", "setattr_prepare", 3, 5),
        (2, "n", "", "", "web", 7, "nc", 10, "CAP_NET_BIND_SERVICE", "allowed", True, "bind", "__inet_bind", 1, 5),
        (3, "n", "", "", "web", 7, "mount", 21, "CAP_SYS_ADMIN", "denied", True, "mount", "path_mount", 1, 5),
        (4, "n", "", "", "web", 7, "sh", 21, "CAP_SYS_ADMIN", "allowed", False, "mmap", "__mmap_region", 30, 5),
        (5, "n", "", "", "web", 9, "runc:[2:INIT]", 7, "CAP_SETUID", "allowed", True, "setuid", "__sys_setuid", 2, 5),
        (6, "n", "", "", "", 1, "systemd", 12, "CAP_NET_ADMIN", "allowed", True, "ioctl", "dev_ioctl", 1, 1),
        (7, "n", "", "", "db", 11, "chown", 0, "CAP_CHOWN", "denied", True, "fchownat", "setattr_prepare", 1, 6),
    ]


def test_advice_adds_only_allowed_audited_checks_of_the_workload():
    advice = gadgetbook.advise_capabilities(_frame(_advice_rows()))
    docs = list(yaml.safe_load_all(advice.yaml))
    assert docs == advice.documents == [
        {"container": "db", "securityContext": {"capabilities": {"drop": ["ALL"]}}},
        {"container": "web", "securityContext": {"capabilities": {"drop": ["ALL"],
                                                                  "add": ["CHOWN", "NET_BIND_SERVICE"]}}},
    ]
    assert advice.podman_options("web") == ["--cap-drop", "ALL", "--cap-add", "CHOWN", "--cap-add",
                                            "NET_BIND_SERVICE"]
    assert "add: [CHOWN, NET_BIND_SERVICE]" in advice.yaml and "drop: [ALL]" in advice.yaml
    assert "# SYS_ADMIN was refused (mount) and is not added: it ran without it." in advice.yaml
    assert "# left out, checked without auditing: SYS_ADMIN x30." in advice.yaml
    assert "# CHOWN was refused (fchownat) and is not added" in advice.yaml
    assert advice.notes == ["1 checks by processes outside containers were left out.",
                            "2 checks of the container runtime's own setup (runc init) were left out."]
    with pytest.raises(GadgetError, match="No advice for a container named 'api'; the advice covers: db, web."):
        advice.capabilities("api")


def test_advice_per_pod_in_a_cluster():
    rows = [(1, "node1", "shop", "api-1", "app", 7, "chown", 0, "CAP_CHOWN", "allowed", True, "chown", "x", 1, 5),
            (2, "node1", "shop", "api-1", "side", 8, "nc", 10, "CAP_NET_BIND_SERVICE", "allowed", True, "bind",
             "__inet_bind", 1, 6)]
    advice = gadgetbook.advise_capabilities(_frame(rows))
    assert advice.documents == [{"pod": "api-1", "namespace": "shop", "containers": [
        {"name": "app", "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}}},
        {"name": "side", "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}]}]
    assert "1 securityContext" in advice._repr_html_() and 'download="security-context.yaml"' in advice._repr_html_()


def test_advice_from_events_of_another_gadget_is_one_sentence():
    with pytest.raises(GadgetError, match="These events lack the capabilities columns"):
        gadgetbook.advise_capabilities(pd.DataFrame({"container": ["x"], "path": ["/etc"]}))
