"""What a run says about itself at the end, on the real kernel: a target that exited, why nothing was seen,
where --save wrote; and a pid that does not exist is refused before anything loads."""

import os
import re
import subprocess
import sys
import time

import pytest

import gadgetbook
from gadgetbook.errors import GadgetError

pytestmark = pytest.mark.root


def test_a_process_that_exits_during_the_run_is_reported():
    short = subprocess.Popen(["/bin/sleep", "0.3"])
    r = gadgetbook.start("opensnoop", pid=short.pid, timeout=1.0)
    short.wait()
    r.wait()
    df = r.conclude()
    assert f"Process {short.pid} exited during the run; nothing of it could be seen after that." in df.attrs["notes"]


def test_no_process_no_run():
    dead = subprocess.Popen(["/bin/true"])
    dead.wait()
    with pytest.raises(GadgetError, match=f"No process {dead.pid} runs on this host"):
        gadgetbook.start("opensnoop", pid=dead.pid, timeout=1)


def test_an_empty_run_explains_itself_and_save_confirms_the_path(tmp_path):
    idle = subprocess.Popen(["/bin/sleep", "30"])
    try:
        path = tmp_path / "runs" / "conns.parquet"
        done = subprocess.run([sys.executable, "-m", "gadgetbook", "tcptracer", "--pid", str(idle.pid),
                               "--timeout", "1", "--save", str(path)], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    finally:
        idle.kill()
        idle.wait()
    err = done.stderr
    assert done.returncode == 0, err
    assert "tcptracer: 0 events, 0 lost" in err and "· this host · pid" in err
    assert re.search(rf"Nothing was seen in 1\.\d s: process {idle.pid} did nothing that tcptracer traces", err), err
    assert "tcptracer sees only connections opened, accepted or closed while it runs" in err
    assert f"Saved 0 rows to {path}" in err and path.exists()
    again = gadgetbook.replay(str(path), show=False)
    assert again.attrs["notes"] and again.attrs["mode"] == "this host"


def test_notes_are_empty_when_all_went_well():
    r = gadgetbook.start("execsnoop", timeout=0.5)
    time.sleep(0.1)
    subprocess.run(["/bin/true"])
    r.wait()
    df = r.conclude()
    assert len(df) and df.attrs["notes"] == []
