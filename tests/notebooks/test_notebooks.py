"""Every notebook in notebooks/ runs top to bottom on this kernel (as root), and shows what it should."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import nbclient
import nbformat
import pytest

pytestmark = pytest.mark.root
NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))


def needs(path: Path) -> str | None:
    """What a notebook needs beyond this host (its metadata says: "cluster")."""
    return nbformat.read(path, as_version=4).metadata.get("gadgetbook", {}).get("needs")


@pytest.fixture
def jupyter_env(tmp_path, monkeypatch):
    for var, sub in (("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTER_CONFIG_DIR", "config")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path


def execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    shutil.copy(path, workdir / path.name)
    nb = nbformat.read(workdir / path.name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()
    nbformat.write(nb, workdir / f"executed-{path.name}")
    return nb


def outputs(cell) -> str:
    parts = []
    for o in cell.get("outputs", []):
        parts.append(o.get("text", ""))
        parts.extend(str(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


def test_there_are_notebooks():
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, jupyter_env, request, monkeypatch):
    if needs(path) == "cluster":
        # The local cluster of tests/cluster, with gadgetbook deployed (tests/e2e/conftest.py).
        cluster = request.getfixturevalue("cluster")
        request.getfixturevalue("deployed")
        monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    nb = execute(path, jupyter_env)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    if path.stem in SHOWS:
        SHOWS[path.stem]([outputs(c) for c in nb.cells if c.cell_type == "code"])


def _cluster_shows_the_shop(text: list[str]) -> None:
    """Not only no error: every cell shows what the shop did, named by pod."""
    status, shop, live, opens, execs = text[0], text[1], text[2], text[3], text[4]
    assert " ready " in status and "BTF yes" in status, status
    ns = shop.strip().strip("'")
    assert ns.startswith("shop-"), shop
    assert "opensnoop: " in live and "<table" in live, live[:2000]
    # Both api pods opened the missing file, and only api pods are in the table.
    api_pods = set(re.findall(r"api-[0-9a-z]+-[0-9a-z]+", opens))
    assert len(api_pods) == 2 and "/data/config.yaml" in opens and "ENOENT" in opens, opens[:2000]
    assert "db-" not in opens
    assert re.search(r"db-[0-9a-z]+-[0-9a-z]+", execs) and "hello from" in execs, execs[:2000]


# What a notebook must show beyond running without errors, by name.
SHOWS = {"cluster": _cluster_shows_the_shop}


def test_quickstart_shows_the_workload(jupyter_env):
    nb = execute(Path(__file__).parents[2] / "notebooks" / "quickstart.ipynb", jupyter_env)
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = {i: outputs(c) for i, c in enumerate(code)}
    live = next(i for i, c in enumerate(code) if "live" in c.metadata.get("tags", []))
    # The live cell settles into static HTML: summary line and a table, readable without a kernel.
    assert 'class="gadgetbook-final"' in text[live] and "execsnoop: " in text[live] and "<table" in text[live]
    assert "cat /tmp/gadgetbook-quickstart-missing" in "".join(text.values())
    assert any("ENOENT" in t and "/tmp/gadgetbook-quickstart-missing" in t for t in text.values())
    assert any(o.get("data", {}).get("image/png") for c in code for o in c.get("outputs", []))
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    # The live view's widgets are stored with the notebook: the Stop button settled as not running.
    stops = [m for m in state.values() if m["model_name"] == "AnyModel" and "kernel_id" in m["state"]]
    assert stops and all(m["state"]["running"] is False for m in stops)
    assert (jupyter_env / "runs" / "failed-opens.parquet").exists()
    assert os.path.getsize(jupyter_env / f"executed-{'quickstart.ipynb'}") < 2_000_000


def test_binder_notebook_replays_without_root(tmp_path):
    """The Binder notebook runs as an unprivileged user: replay needs no root and no eBPF."""
    import subprocess
    import sys

    binder = Path(__file__).parents[2] / "binder"
    work = tmp_path / "binder"
    shutil.copytree(binder, work)
    subprocess.run(["chown", "-R", "65534:65534", str(tmp_path)], check=True)
    script = (
        "import nbformat, nbclient\n"
        "nb = nbformat.read('investigation.ipynb', 4)\n"
        "nbclient.NotebookClient(nb, timeout=120, kernel_name='python3',"
        " resources={'metadata': {'path': '.'}}).execute()\n"
        "nbformat.write(nb, 'executed.ipynb')\n"
    )
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"], "IPYTHONDIR": str(tmp_path / "ipython"),
           "MPLCONFIGDIR": str(tmp_path / "mpl"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                           sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    nb = nbformat.read(work / "executed.ipynb", as_version=4)
    text = "\n".join(outputs(c) for c in nb.cells if c.cell_type == "code")
    assert "/data/config.yaml" in text and "ENOENT" in text and "shop-db" in text


def test_network_notebook_shows_the_app_and_its_policy(jupyter_env):
    import yaml

    nb = execute(Path(__file__).parents[2] / "notebooks" / "network.ipynb", jupyter_env)
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(outputs(c) for c in code)
    assert "tcptracer: " in text and "tcptop: " in text and 'class="gadgetbook-final"' in text
    assert 'download="network-policy.yaml"' in text
    assert any(o.get("data", {}).get("image/png") for c in code for o in c.get("outputs", []))
    policies = list(yaml.safe_load_all((jupyter_env / "network-policy.yaml").read_text()))
    assert {p["metadata"]["name"] for p in policies} == {"web-network", "api-network", "client-network",
                                                          "worker-network"}
    assert (jupyter_env / "runs" / "talk-graph.png").stat().st_size > 1000
    # The last cell removed what the notebook made.
    assert "gadgetbook-lab-" in outputs(code[-1]) and "[]" in outputs(code[-1])
    lab = outputs(code[-1]).split("'")[1]
    assert lab not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
