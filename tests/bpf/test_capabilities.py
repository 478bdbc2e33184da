"""The capabilities gadget and its securityContext advisor on real podman containers (runc, busybox root).

The workload needs CAP_CHOWN (chown of a file to another user), CAP_NET_BIND_SERVICE (a listener on port 80:
--network none still has loopback) and is refused one it tries (a mount: podman drops CAP_SYS_ADMIN).
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support.leftovers import KernelObjects, bpf_fds
from support.podman import ENV, running
from support.workloads import marker

import gadgetbook
from gadgetbook.errors import GadgetError
from gadgetbook.frames.recording import save

pytestmark = [pytest.mark.root, pytest.mark.containers]

CHOWNS = 20


def workload(tag: str) -> str:
    """The privileged operations, once; exits 11 when chown fails, 12 when the listener could not bind."""
    # A fresh file each time: touching the one left owned by user 1 would need CAP_FOWNER.
    return (f"rm -f /tmp/owned-{tag}; touch /tmp/owned-{tag} && i=0; while [ $i -lt {CHOWNS} ]; do "
            f"chown 1 /tmp/owned-{tag} || exit 11; i=$((i+1)); done; "
            "nc -l -p 80 127.0.0.1 & p=$!; sleep 0.3; kill $p || exit 12; mount -t tmpfs none /tmp 2>/dev/null; exit 0")


class Workload:
    """A container that runs the workload each time the test asks (a file appears in its /tmp)."""

    def __init__(self, rootfs: str, container, tag: str) -> None:
        self.tmp = Path(rootfs) / "tmp"
        self.container = container
        self.tag = tag
        self.rounds = 0

    def once(self, timeout: float = 10.0) -> None:
        self.rounds += 1
        done = self.tmp / f"done-{self.tag}-{self.rounds}"
        (self.tmp / f"go-{self.tag}").write_text(str(self.rounds))
        deadline = time.monotonic() + timeout
        while not done.exists():
            assert time.monotonic() < deadline, "the workload did not finish"
            time.sleep(0.05)
        assert done.read_text().strip() == "0", f"the workload failed with {done.read_text().strip()}"


@pytest.fixture(scope="module")
def app(rootfs):
    tag = marker("c")
    loop = (f"while true; do if [ -e /tmp/go-{tag} ]; then n=$(cat /tmp/go-{tag}); rm /tmp/go-{tag}; "
            f"( {workload(tag)} ); echo $? > /tmp/done-{tag}-$n; fi; sleep 0.05; done")
    with running(rootfs, (f"caps-{tag}", {"app": "caps", "gadgetbook-test": tag}, loop)) as (c,):
        yield Workload(rootfs, c, tag)


def traced(app: Workload, **params):
    """One round of the workload under the gadget; the run's result."""
    with gadgetbook.start("capabilities", container=app.container.name, **params) as run:
        time.sleep(0.2)
        app.once()
        time.sleep(0.1)
        run.stop()
    return run.result()


def test_rows_name_capability_verdict_audit_and_syscall(app):
    df = traced(app)
    assert set(df.container) == {app.container.name}
    chown = df[df.capability == "CAP_CHOWN"]
    assert len(chown) >= CHOWNS and set(chown.cap) == {0}
    assert set(chown.verdict) == {"allowed"} and chown.audit.all()
    assert set(chown.syscall) <= {"chown", "lchown", "fchownat"} and set(chown.comm) == {"chown"}
    bind = df[df.capability == "CAP_NET_BIND_SERVICE"]
    assert len(bind) == 1 and bind.cap.iloc[0] == 10
    assert (bind.verdict.iloc[0], bind.audit.iloc[0], bind.syscall.iloc[0], bind.comm.iloc[0]) == \
        ("allowed", True, "bind", "nc")
    mount = df[(df.capability == "CAP_SYS_ADMIN") & df.audit]
    assert len(mount) == 1 and mount.cap.iloc[0] == 21
    assert (mount.verdict.iloc[0], mount.syscall.iloc[0], mount.comm.iloc[0]) == ("denied", "mount", "mount")
    # The callers are kernel functions outside the capability code, named from the stack.
    for caller in (*chown.caller, *bind.caller, *mount.caller):
        assert caller and "capable" not in caller and not caller.startswith(("cap_", "security_"))
    # Unaudited probes (CAP_SYS_ADMIN in mmap's memory accounting) are there, flagged.
    probes = df[~df.audit]
    assert len(probes) and set(probes.capability) == {"CAP_SYS_ADMIN"}
    assert (df["count"] == 1).all()


def test_unique_counts_every_check_exactly(app):
    plain = traced(app)
    unique = traced(app, unique=True)
    key = ["capability", "verdict", "audit", "syscall", "caller"]
    assert not unique.duplicated(key).any()  # one row per key
    assert len(unique) < len(plain)
    expected = plain.groupby(key, observed=True)["count"].sum()
    got = unique.groupby(key, observed=True)["count"].sum()
    for k in [("CAP_CHOWN", "allowed", True), ("CAP_NET_BIND_SERVICE", "allowed", True),
              ("CAP_SYS_ADMIN", "denied", True)]:
        mine = [i for i in expected.index if i[:3] == k]
        assert mine and all(got[i] == expected[i] for i in mine), (k, expected, got)
    assert got.loc[("CAP_CHOWN", "allowed", True)].sum() >= CHOWNS
    assert unique.attrs["params"]["unique"] is True


def test_denied_keeps_only_refusals(app):
    df = traced(app, denied=True)
    assert len(df) and set(df.verdict) == {"denied"}
    assert ((df.capability == "CAP_SYS_ADMIN") & (df.syscall == "mount") & df.audit).sum() == 1
    assert "CAP_CHOWN" not in set(df.capability) and "CAP_NET_BIND_SERVICE" not in set(df.capability)


def test_caps_filter_in_the_kernel(app):
    df = traced(app, caps="net_bind_service,CAP_CHOWN")
    assert set(df.capability) == {"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}


@pytest.fixture(scope="module")
def advice(app):
    def on_run(run):
        time.sleep(0.2)
        app.once()
        time.sleep(0.1)
        run.stop()

    return gadgetbook.advise_capabilities(container=app.container.name, timeout=30, on_run=on_run)


def test_advice_adds_exactly_the_capabilities_used(app, advice):
    name = app.container.name
    assert list(yaml.safe_load_all(advice.yaml)) == advice.documents == [
        {"container": name, "securityContext": {"capabilities": {"drop": ["ALL"],
                                                                 "add": ["CHOWN", "NET_BIND_SERVICE"]}}}]
    assert "# SYS_ADMIN was refused (mount) and is not added: it ran without it." in advice.yaml
    assert advice.events.attrs["params"]["unique"] is True


def test_magic_advises_in_a_notebook_shell(app):
    import threading

    from IPython import get_ipython as running_ipython
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython() or running_ipython()  # the test shell, started here or by an earlier test module
    ip.run_line_magic("load_ext", "gadgetbook")
    worker = threading.Timer(1.0, app.once)
    worker.start()
    try:
        advice = ip.run_line_magic("gadget", f"advise capabilities -c {app.container.name} --timeout 4")
    finally:
        worker.join()
    assert advice.capabilities(app.container.name) == ["CHOWN", "NET_BIND_SERVICE"]


def _run_workload(rootfs: str, options: list[str], tag: str) -> int:
    cmd = ["podman", "run", "--rm", "--network", "none", "--name", f"caps-applied-{tag}", *options,
           "--rootfs", rootfs, "/bin/sh", "-c", workload(tag)]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=60).returncode
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", f"caps-applied-{tag}"], capture_output=True, env=ENV)


def test_advised_capabilities_let_the_workload_run(rootfs, advice, app):
    options = advice.podman_options(app.container.name)
    assert options == ["--cap-drop", "ALL", "--cap-add", "CHOWN", "--cap-add", "NET_BIND_SERVICE"]
    assert _run_workload(rootfs, options, marker("a")) == 0
    # Each added capability is needed: without it the workload fails where it uses it.
    assert _run_workload(rootfs, ["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"], marker("a")) == 11
    assert _run_workload(rootfs, ["--cap-drop", "ALL", "--cap-add", "CHOWN"], marker("a")) == 12


def test_advice_from_a_recording_offline(advice, tmp_path):
    path = save(advice.events, tmp_path / "capabilities.parquet")
    assert gadgetbook.advise_capabilities(gadgetbook.replay(path, show=False)).yaml == advice.yaml
    out = subprocess.run([sys.executable, "-m", "gadgetbook", "advise", "capabilities", "--from", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == advice.yaml
    out = subprocess.run([sys.executable, "-m", "gadgetbook", "advise", "capabilities", "--from", str(path),
                          "-o", "json"], capture_output=True, text=True, timeout=60)
    assert yaml.safe_load(out.stdout) == advice.documents


def test_cli_prints_rows_and_a_summary(app):
    cli = subprocess.Popen([sys.executable, "-m", "gadgetbook", "capabilities", "-c", app.container.name,
                            "--unique", "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not any(kind == "bpf_link" for _, kind in bpf_fds(cli.pid)):
            assert cli.poll() is None, cli.stderr.read()
            time.sleep(0.02)
        app.once()
        time.sleep(0.3)
    finally:
        cli.send_signal(2)
        out, err = cli.communicate(timeout=30)
    assert cli.returncode == 0, err
    rows = [yaml.safe_load(line) for line in out.splitlines()]
    chown = [r for r in rows if r["capability"] == "CAP_CHOWN"]
    assert chown and sum(r["count"] for r in chown) >= CHOWNS
    assert "capabilities:" in err and "lost" in err


def test_older_kernels_fall_back_to_fexit_then_a_kprobe_pair():
    """As on a kernel without the tracepoint: fexit is tried (this kernel refuses function tracing at
    load), then the kprobe and kretprobe pair (this kernel has no kprobes): one sentence naming them all."""
    from gadgetbook import catalog
    from gadgetbook.kernel.loader import BpfObject, LoadPlan

    spec = catalog.get("capabilities")
    plan = LoadPlan(groups=spec.hooks, unavailable={"tp_cap_capable"})
    with pytest.raises(GadgetError, match=r"offers none of the hooks capabilities needs for "
                                          r"tracepoint/capability/cap_capable, fexit/cap_capable, kprobe/cap_capable, "
                                          r"kretprobe/cap_capable; it cannot run here"):
        BpfObject(str(spec.object_path), plan)
    assert "fexit_cap_capable" in plan.unavailable  # tried, and refused by this kernel


@pytest.mark.parametrize("argv,message", [
    (["capabilities", "--caps", "chwon"], "--caps: 'chwon' is not a capability name"),
    (["capabilities", "--caps", "CAP_SYS_ADMIN,CAP_BOGUS"], "--caps: 'CAP_BOGUS' is not a capability name"),
    (["advise", "capabilities"], "name the workloads to watch with -l SELECTOR or -c NAME"),
    (["advise", "capabilties", "-l", "app=x"], "Name what to advise: gadgetbook advise network-policy | capabilities"),
])
def test_bad_input_is_one_sentence_and_loads_nothing(argv, message):
    kernel = KernelObjects()
    out = subprocess.run([sys.executable, "-m", "gadgetbook", *argv], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("gadgetbook: ") and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert kernel.mark_running() == (set(), set())


def test_python_bad_caps_is_one_sentence_and_loads_nothing():
    kernel = KernelObjects()
    with pytest.raises(GadgetError, match=r"^--caps: 'nope' is not a capability name; use names such as CAP_CHOWN"):
        gadgetbook.run("capabilities", caps="nope", timeout=1)
    assert kernel.mark_running() == (set(), set())
