"""Every notebook in notebooks/ runs top to bottom on this kernel (as root), at a reader's pace (a pause between
cells), wherever it says it runs (those for this host with a kubeconfig present), and shows what it should."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import nbclient
import nbformat
import pytest

pytestmark = pytest.mark.root
NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))
# Seconds between cells, as a reader takes them: long enough that a workload started early and living a fixed
# time (the profile notebook's used to live 20 s) is gone before the cells that need it.
READING_PAUSE = 3.0
# A kubeconfig whose API server does not answer: a notebook for this host must not go there.
UNREACHABLE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: nowhere, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: someone, user: {token: none}}]
contexts: [{name: nowhere, context: {cluster: nowhere, user: someone}}]
current-context: nowhere
"""


def needs(path: Path) -> str | None:
    """What a notebook needs beyond this host (its metadata says: "cluster")."""
    return nbformat.read(path, as_version=4).metadata.get("gadgetbook", {}).get("needs")


@pytest.fixture
def jupyter_env(tmp_path, monkeypatch):
    for var, sub in (("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTER_CONFIG_DIR", "config")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    kubeconfig = tmp_path / "unreachable-kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    return tmp_path


def notebook_client(nb: nbformat.NotebookNode, workdir: Path) -> nbclient.NotebookClient:
    """A client that runs `nb` in a fresh python3 kernel with `workdir` as its working directory."""
    return nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True,
                                   resources={"metadata": {"path": str(workdir)}})


def code_cells(nb: nbformat.NotebookNode, pause: float):
    """(index, cell) of each code cell in order, `pause` seconds after the one before, as a reader runs them."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if index:
            time.sleep(pause)
        yield index, cell


def execute(path: Path, workdir: Path, pause: float = READING_PAUSE) -> nbformat.NotebookNode:
    """Run the notebook's cells in order, `pause` seconds apart, as a reader would; save the outputs."""
    shutil.copy(path, workdir / path.name)
    nb = nbformat.read(workdir / path.name, as_version=4)
    client = notebook_client(nb, workdir)
    with client.setup_kernel():
        for index, cell in code_cells(nb, pause):
            client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
        client.set_widgets_metadata()
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
    """Each notebook at reading pace; those for this host with a kubeconfig present that leads nowhere."""
    if needs(path) == "cluster":
        # The local cluster of tests/cluster, with gadgetbook deployed (tests/e2e/conftest.py).
        cluster = request.getfixturevalue("cluster")
        request.getfixturevalue("deployed")
        monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    nb = execute(path, jupyter_env)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    check = CHECKS.get(path.stem)
    if check is not None:
        check(nb, jupyter_env)


def check_quickstart(nb, jupyter_env):
    """The quickstart shows its workload, on this host (a kubeconfig is present), and keeps its recording."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = {i: outputs(c) for i, c in enumerate(code)}
    live = next(i for i, c in enumerate(code) if "live" in c.metadata.get("tags", []))
    # The live cell settles into static HTML: summary line and a table, readable without a kernel.
    assert 'class="gadgetbook-final"' in text[live] and "execsnoop: " in text[live] and "<table" in text[live]
    assert "· this host" in text[live]
    assert "Saved " in "".join(text.values()) and "runs/failed-opens.parquet" in "".join(text.values())
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


def check_network(nb, jupyter_env):
    """The network notebook shows the app, its talk graph and its policies (their YAML once)."""
    import yaml

    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(outputs(c) for c in code)
    assert "tcptracer: " in text and "tcptop: " in text and 'class="gadgetbook-final"' in text
    assert 'download="network-policy.yaml"' in text
    assert sum("networking.k8s.io/v1" in outputs(c) for c in code) == 1  # the YAML is shown once
    assert any(o.get("data", {}).get("image/png") for c in code for o in c.get("outputs", []))
    policies = list(yaml.safe_load_all((jupyter_env / "network-policy.yaml").read_text()))
    assert {p["metadata"]["name"] for p in policies} == {"web-network", "api-network", "client-network",
                                                          "worker-network"}
    assert (jupyter_env / "runs" / "talk-graph.png").stat().st_size > 1000
    # The last cell removed what the notebook made.
    assert "gadgetbook-lab-" in outputs(code[-1]) and "[]" in outputs(code[-1])
    lab = outputs(code[-1]).split("'")[1]
    assert lab not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def check_profile(nb, jupyter_env):
    """At reading pace every profile of the workload still finds it busy: none comes back empty."""
    import re

    text = "\n".join(outputs(c) for c in nb.cells if c.cell_type == "code")
    assert "no samples" not in text
    counts = [int(n.replace(",", "")) for n in re.findall(r"profile: ([\d,]+) samples", text)]
    assert len(counts) >= 3 and min(counts) > 0, counts


def check_cluster(nb, jupyter_env):
    """Not only no error: every cell shows what the shop did, named by pod."""
    text = [outputs(c) for c in nb.cells if c.cell_type == "code"]
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


CHECKS = {"quickstart": check_quickstart, "network": check_network, "profile": check_profile,
          "cluster": check_cluster}


@pytest.mark.containers
def test_traceloop_notebook_keeps_rows_and_timeline(jupyter_env):
    nb = execute(Path(__file__).parents[2] / "notebooks" / "traceloop.ipynb", jupyter_env)
    code = [c for c in nb.cells if c.cell_type == "code"]
    show = next(c for c in code if "show" in c.metadata.get("tags", []))
    text = outputs(show)
    # The rows, the summary that says what was overwritten, and the timeline as a PNG kept in the notebook.
    assert "<table" in text and "overwritten" in text and "traceloop" in text
    assert any(o.get("data", {}).get("image/png") for o in show.get("outputs", []))
    assert any("ENOENT" in outputs(c) and "secrets.conf" in outputs(c) for c in code)
    assert (jupyter_env / "app.json").exists()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
