"""advise seccomp-profile with real podman containers: the advised profile runs the recorded workload to
completion, and a syscall it never made is refused."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.podman import ENV, Container
from support.workloads import marker
from test_traceloop import recorder_pids, state_root, wait_for  # noqa: F401 - the fixture, shared

import gadgetbook
from gadgetbook.errors import GadgetError

pytestmark = [pytest.mark.root, pytest.mark.containers]
tl = gadgetbook.recorder("traceloop")


def _workload(tag: str) -> str:
    return f"cat /data/seccomp-{tag}; cat /data/missing-{tag}; echo done-{tag} > /tmp/out; cat /tmp/out"


def _podman_run(rootfs: str, name: str, profile: Path, script: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["podman", "run", "--name", name, "--network", "none",
                               "--security-opt", f"seccomp={profile}", "--rootfs", rootfs, "/bin/sh", "-c", script],
                              capture_output=True, text=True, env=ENV, timeout=120)
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, env=ENV, check=False)


def test_the_advised_profile_runs_the_workload_and_refuses_what_it_never_did(rootfs, state_root, tag, tmp_path):  # noqa: F811
    (Path(rootfs) / "data" / f"seccomp-{tag}").write_text(f"content-{tag}\n")
    tl.start(selector=f"gadgetbook-test={tag}")
    c = Container(rootfs, f"sc-{tag}", {"gadgetbook-test": tag}, _workload(tag), keep=True)
    try:
        assert c.wait() == 0
        wait_for(lambda: (tl.list().state == "exited").any())
        recording = tmp_path / "recording.parquet"
        df = tl.stop(selector=f"gadgetbook-test={tag}", save=str(recording))
    finally:
        c.remove()

    advice = gadgetbook.advise_seccomp_profile(df)
    assert list(advice.profiles) == [c.name] and not advice.notes  # recorded from birth: complete
    prof = advice.profiles[c.name]
    allowed = set(prof["syscalls"][0]["names"])
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO" and prof["syscalls"][0]["action"] == "SCMP_ACT_ALLOW"
    assert prof["architectures"][0].startswith("SCMP_ARCH_")
    assert {"openat", "read", "write", "execve", "exit_group"} <= allowed
    assert allowed >= set(df.syscall.astype(str))
    assert "chroot" not in allowed

    # Offline, from the saved recording, through the CLI: the same profile.
    cli = subprocess.run([sys.executable, "-m", "gadgetbook", "advise", "seccomp-profile", "--from", str(recording)],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == prof
    path = tmp_path / "profile.json"
    assert advice.save(path) == [path]

    ran = _podman_run(rootfs, f"sc-ok-{tag}", path, _workload(tag))
    assert ran.returncode == 0, ran.stderr
    assert f"content-{tag}" in ran.stdout and f"done-{tag}" in ran.stdout
    assert f"can't open '/data/missing-{tag}': No such file or directory" in ran.stderr

    # Checked against the recording: the advised profile refuses none of its calls; one without openat
    # refuses exactly the recorded openat calls of the workload.
    assert gadgetbook.check_seccomp_profile(path, recording).empty
    strict = {**prof, "syscalls": [{**prof["syscalls"][0], "names": sorted(allowed - {"openat"})}]}
    check = gadgetbook.check_seccomp_profile(strict, df)
    workload = c.name.rsplit("-", 1)[0]  # named as diffs name workloads: without the instance suffix
    assert check.to_dict("records") == [{"workload": workload, "syscall": "openat", "action": "SCMP_ACT_ERRNO",
                                         "calls": int((df.syscall == "openat").sum())}]

    refused = _podman_run(rootfs, f"sc-no-{tag}", path, f"{_workload(tag)}; chroot / /bin/true")
    assert refused.returncode != 0
    assert f"done-{tag}" in refused.stdout  # what it did before still ran
    assert "Operation not permitted" in refused.stderr and "chroot" in refused.stderr


def test_a_dedicated_run_catches_a_container_that_starts_during_it(rootfs, state_root, tag):  # noqa: F811
    (Path(rootfs) / "data" / f"seccomp-{tag}").write_text("x\n")
    started: list[Container] = []

    def start_later():
        time.sleep(1.5)
        started.append(Container(rootfs, f"sd-{tag}", {"gadgetbook-test": tag}, _workload(tag), keep=True))

    thread = threading.Thread(target=start_later)
    thread.start()
    try:
        advice = gadgetbook.advise_seccomp_profile(selector=f"gadgetbook-test={tag}", timeout=5)
    finally:
        thread.join()
        for c in started:
            c.remove()
    names = set(advice.profiles[f"sd-{tag}"]["syscalls"][0]["names"])
    assert {"openat", "write", "execve"} <= names
    assert not recorder_pids(state_root)  # the dedicated recording ended with the advice


def test_advice_needs_a_recording_or_workloads():
    with pytest.raises(GadgetError, match="Name the workloads to advise for"):
        gadgetbook.advise_seccomp_profile()
    import pandas as pd

    with pytest.raises(GadgetError, match="not a traceloop recording"):
        gadgetbook.advise_seccomp_profile(pd.DataFrame({"path": ["/x"]}))


@pytest.fixture
def tag():
    return marker("sc")
