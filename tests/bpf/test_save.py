"""--save and --pid on the real kernel: refused before anything loads when they cannot work, and a recording
that cannot be written at the end is kept elsewhere, said in one sentence, with the result still returned."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pandas as pd
import pytest
from support.leftovers import bpf_fds
from support.syscalls import refusal

import gadgetbook

pytestmark = pytest.mark.root

NO_PID = int(open("/proc/sys/kernel/pid_max").read())  # process ids stay below pid_max: none has this one


@pytest.mark.parametrize("call, sentence", [
    ("gadgetbook.start('opensnoop', pid=-7)", "--pid takes a process id, a positive whole number (got -7)."),
    (f"gadgetbook.start('opensnoop', pid={NO_PID})",
     f"No process {NO_PID} runs on this host; check the pid (it may have exited)."),
    ("gadgetbook.run('opensnoop', timeout=5, save='/proc/nope/x.parquet')",
     "Cannot save to /proc/nope/x.parquet: /proc does not take new files (No such file or directory); "
     "choose a writable place for --save."),
])
def test_python_refuses_at_once_and_loads_nothing(call, sentence):
    said, calls = refusal(call)
    assert said == sentence
    assert calls == []


def test_a_thread_id_is_not_a_process_id():
    import threading

    ready, done = threading.Event(), threading.Event()
    worker = threading.Thread(target=lambda: (ready.set(), done.wait()))
    worker.start()
    ready.wait()
    try:
        with pytest.raises(gadgetbook.GadgetError, match=f"is a thread of process {os.getpid()}; give --pid"):
            gadgetbook.start("opensnoop", pid=worker.native_id)
    finally:
        done.set()
        worker.join()


def test_recording_that_cannot_be_written_at_the_end_is_kept_beside_it(tmp_path):
    asked = tmp_path / "runs" / "open.parquet"
    marker = tmp_path / "marker"
    with gadgetbook.start("opensnoop", pid=os.getpid(), save=str(asked)) as r:
        open(marker, "w").close()
        asked.mkdir(parents=True)  # the file's place is taken while the run goes on
        r.stop()
    df = r.conclude()
    assert str(marker) in set(df.path)  # the result is still returned
    (kept,) = [p for p in asked.parent.iterdir() if p != asked]
    assert re.fullmatch(r"open-\d{8}-\d{6}\.parquet", kept.name)
    said = f"Could not save to {asked} (Is a directory); the recording was saved to {kept} instead."
    assert r.save_notice == said and df.attrs["notes"][-1] == said  # one sentence, ending the result's notes
    assert r.saved_to == kept
    again = gadgetbook.replay(kept, show=False)
    pd.testing.assert_frame_equal(again, df)
    assert again.attrs["notes"][-1].startswith(f"Saved {len(df):,} rows to {kept};")  # as written there


def test_run_warns_where_the_recording_went(tmp_path):
    asked = tmp_path / "runs" / "open.parquet"
    taken = threading.Timer(0.3, lambda: asked.mkdir(parents=True))  # mid-run, the file's place is taken
    taken.start()
    try:
        with pytest.warns(RuntimeWarning, match=rf"^Could not save to {re.escape(str(asked))} \(Is a directory\); "
                                                 r"the recording was saved to \S+ instead\.$"):
            df = gadgetbook.run("opensnoop", pid=os.getpid(), timeout=1, save=str(asked))
    finally:
        taken.join()
    assert df.attrs["notes"][-1].startswith(f"Could not save to {asked}")


def test_cli_says_where_the_recording_went_when_its_folder_is_gone(tmp_path):
    folder = tmp_path / "runs"
    asked = folder / "open.parquet"
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-m", "gadgetbook", "opensnoop", "--pid", str(os.getpid()),
                             "--timeout", "3", "--save", str(asked)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not any(kind == "bpf_link" for _, kind in bpf_fds(proc.pid)):
        assert proc.poll() is None, proc.stderr.read()
    open(marker, "w").close()
    folder.write_text("a file now, where the folder would be")  # neither the folder nor anything beside it works
    out, err = proc.communicate(timeout=30)
    lines = err.strip().splitlines()
    said = next(line for line in lines if line.startswith("Could not save"))  # among the run's end notes
    m = re.fullmatch(rf"Could not save to {re.escape(str(asked))} \((.+)\); "
                     r"the recording was saved to (\S+) instead\.", said)
    assert m, said
    kept = Path(m.group(2))
    try:
        assert kept.parent == Path(tempfile.gettempdir())
        assert proc.returncode == 1  # not where it was asked: a script must notice
        assert str(marker) in out  # the rows were printed as they came
        df = gadgetbook.replay(kept, show=False)
        assert str(marker) in set(df.path)
        assert any(line.startswith("opensnoop: ") and " events, " in line for line in lines)
    finally:
        kept.unlink(missing_ok=True)
        shutil.rmtree(tmp_path, ignore_errors=True)
