"""The built wheel, installed into a fresh virtual environment: it carries every file the package needs,
and replays recordings and draws flame graphs from there, away from the source tree."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from gadgetbook.frames.recording import save

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "binder/recordings/opensnoop-shop.parquet"


def _tracked(*paths: str) -> list[str]:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", *paths], capture_output=True, text=True,
                         check=True).stdout
    return [p for p in out.split("\0") if p]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the tracked files, as a release would be: nothing of this checkout's builds in it."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    for rel in _tracked():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(src)],
                   check=True, capture_output=True, text=True)
    (built,) = (work / "dist").glob("gadgetbook-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A virtual environment with no site packages of the system's: the wheel, and what its flame graph
    widget needs from the notebook extra (anywidget, and matplotlib for the copy a saved notebook keeps)."""
    env = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    done = subprocess.run([str(env / "bin/python"), "-m", "pip", "install", "-q", str(wheel), "anywidget",
                           "matplotlib"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return env


def test_wheel_carries_every_package_file_and_every_gadget(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    # Every file of the package in the source tree (modules, the widgets' JavaScript and CSS, ...).
    missing = [p for p in _tracked("gadgetbook", "kernel_ext") if p not in names]
    assert not missing, f"left out of the wheel: {missing}"
    # And every gadget's compiled object with its metadata.
    gadgets = sorted({Path(p).parts[1] for p in _tracked("bpf") if p.endswith("/program.bpf.c")})
    assert gadgets and "opensnoop" in gadgets
    for g in gadgets:
        assert {f"gadgetbook/_bpf/{g}.bpf.o", f"gadgetbook/_bpf/{g}.toml"} <= names, g


def _in_venv(venv: Path, code: str, tmp_path: Path) -> dict:
    # Run from an empty folder so that the checkout cannot be imported by accident.
    done = subprocess.run([str(venv / "bin/python"), "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_installed_wheel_replays_a_recording(venv, tmp_path):
    out = tmp_path / "replayed.parquet"
    got = _in_venv(venv, f"""
import json, gadgetbook
df = gadgetbook.replay({str(RECORDING)!r}, show=False)
df.to_parquet({str(out)!r})
print(json.dumps({{"module": gadgetbook.__file__, "gadgets": gadgetbook.gadgets(), "gadget": df.attrs["gadget"],
                  "dtypes": {{c: str(t) for c, t in df.dtypes.items()}}}}))
""", tmp_path)
    assert got["module"].startswith(str(venv))
    assert "opensnoop" in got["gadgets"] and got["gadget"] == "opensnoop"
    import gadgetbook

    here = gadgetbook.replay(RECORDING, show=False)
    assert got["dtypes"] == {c: str(t) for c, t in here.dtypes.items()}
    pd.testing.assert_frame_equal(pd.read_parquet(out), here.reset_index(drop=True), check_categorical=False)


def test_installed_wheel_styles_the_flame_graph(venv, tmp_path):
    df = pd.DataFrame({"pid": [10, 10], "comm": ["app", "app"], "container": ["", ""],
                       "user_stack": ["main;hot", "main;cold"], "kernel_stack": ["", ""], "count": [3, 1],
                       "user_addresses": ["", ""], "kernel_addresses": ["", ""]})
    df.attrs.update(gadget="profile", kind="profile", seconds=1.0, params={"frequency": 49}, targets="this host",
                    lost={})
    path = save(df, tmp_path / "profile.parquet")
    got = _in_venv(venv, f"""
import json, gadgetbook
widget = gadgetbook.replay({str(path)!r}, show=False).flamegraph()
print(json.dumps({{"css": widget._css}}))
""", tmp_path)
    assert got["css"] == (ROOT / "gadgetbook/views/flamegraph.css").read_text()
