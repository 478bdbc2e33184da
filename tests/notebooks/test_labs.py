"""The lab series (notebooks/labs) executed for real: each lab runs top to bottom with its answers and every check
passes in strict mode (where a wrong answer raises); one wrong answer per lab fails its check; what a lab started
(containers, its network, its namespace, its files) is gone afterwards, also when a cell failed half-way; the labs
with recordings run as an unprivileged user without eBPF, as on Binder, and their checks pass there too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import nullcontext
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.notebooks.test_notebooks import code_cells, jupyter_env, notebook_client, outputs  # noqa: F401

LABS_DIR = Path(__file__).parents[2] / "notebooks" / "labs"
LABS = sorted(LABS_DIR.glob("*.ipynb"))
# A lab's scenario lives until its last cell, so a reader's pace changes nothing it sees: a short pause will do.
PAUSE = 1.0
PROBE = """import json
try:
    print("LAB", json.dumps({"facts": lab.facts, "runs": str(lab.runs), "live": lab.live}))
except NameError:
    print("LAB", "null")
"""
# One plausible mistake per lab: (question, the answer cell's wrong source, a phrase of the check's verdict).
WRONG = {
    "01-processes-and-files": ("programs", "programs = execs[['comm']].drop_duplicates()",  # every container's
                               "also holds"),
    "02-networking": ("peers", 'peers = conns[conns.container == lab.name("client")][["daddr", "dport"]]',
                      "also holds"),  # the client's peers, not the worker's
    "03-cpu-profiling": ("v1", "v1 = before.samples.groupby('comm')['count'].sum().rename('samples')"
                               ".reset_index().rename(columns={'comm': 'function'})",  # per process
                         "It has 1 row"),
    "04-capabilities": ("used", "used = caps[['capability']].drop_duplicates()",  # refusals and probes too
                        "which do not belong in the answer"),
    "05-first-bpf-program": ("top", "top = opens['counts'].sort_values('value').head(1)",  # smallest first
                             "The column comm lacks grep"),
    "06-cluster-investigation": ("failing", "failing = opens[['pod', 'path', 'error']].drop_duplicates()",
                                 "also holds"),  # the frontend's failures too
}


def meta(path: Path) -> dict:
    return nbformat.read(path, as_version=4).metadata.get("gadgetbook", {})


def _marks(path: Path) -> list:
    return [pytest.mark.cluster] if meta(path).get("needs") == "cluster" else [pytest.mark.containers]


LAB_PARAMS = [pytest.param(p, id=p.stem, marks=_marks(p)) for p in LABS]


def tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def told(cell) -> str:
    """What a cell showed, its error included."""
    errors = [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"]
    return "\n".join([outputs(cell), *errors])


def run_lab(path: Path, workdir: Path, replace: dict[str, str] | None = None):
    """Execute the lab cell by cell until the end or the first error; then ask its kernel what the lab started,
    and shut the kernel down (its exit runs the lab's clean-up). Returns (notebook, failed cell or None, what the
    lab said of itself)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for key, source in (replace or {}).items():
            if f"answer-{key}" in tags(cell):
                cell.source = source
    client = notebook_client(nb, workdir)
    failed = None
    with client.setup_kernel():
        for index, cell in code_cells(nb, PAUSE):
            try:
                client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            except CellExecutionError:
                failed = cell
                break
        probe = nbformat.v4.new_code_cell(PROBE)
        nb.cells.append(probe)
        client.execute_cell(probe, len(nb.cells) - 1)
        nb.cells.pop()
        client.set_widgets_metadata()
    nbformat.write(nb, workdir / f"executed-{path.name}")
    said = next(line for line in outputs(probe).splitlines() if line.startswith("LAB "))
    return nb, failed, json.loads(said.removeprefix("LAB "))


def assert_nothing_left(lab: dict | None, kube=None) -> None:
    """Every container, network namespace, namespace and folder the lab made is gone."""
    assert lab is not None, "the lab was never made"
    facts = lab["facts"]
    if "selector" in facts:
        from gadgetbook.labs.podman import podman

        left = podman("ps", "-a", "-q", "--filter", f"label={facts['selector']}")
        assert not left, f"containers of {facts['selector']} are left: {left}"
    if "network" in facts:
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert facts["network"] not in namespaces
    if "namespace" in facts:
        from kubernetes.client.rest import ApiException

        deadline = time.monotonic() + 120
        while True:
            try:
                kube.core.read_namespace(facts["namespace"])
            except ApiException as exc:
                assert exc.status == 404
                break
            assert time.monotonic() < deadline, f"namespace {facts['namespace']} is still there"
            time.sleep(1)
    assert not Path(lab["runs"]).exists(), f"the lab's runs folder {lab['runs']} is left"


@pytest.fixture
def lab_env(jupyter_env, request, monkeypatch):  # noqa: F811
    """Strict checks; for the cluster lab, the local cluster with gadgetbook deployed and the test app's image;
    for the %%bcc part of the programs lab, Debian's kernel headers linked for the running kernel."""
    monkeypatch.setenv("GADGETBOOK_LABS_STRICT", "1")
    monkeypatch.delenv("GADGETBOOK_LABS_REPLAY", raising=False)
    monkeypatch.delenv("GADGETBOOK_LABS_RECORD", raising=False)
    path = request.node.callspec.params["path"]
    kube = None
    if meta(path).get("needs") == "cluster":
        from support.kube import TESTAPP

        cluster = request.getfixturevalue("cluster")
        kube = request.getfixturevalue("deployed")
        monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
        monkeypatch.setenv("GADGETBOOK_LAB_IMAGE", TESTAPP)
    return jupyter_env, kube


@pytest.mark.root
@pytest.mark.parametrize("path", LAB_PARAMS)
def test_lab_runs_top_to_bottom_and_every_check_passes(path, lab_env):
    workdir, kube = lab_env
    headers = nullcontext()
    if any(c.source.startswith("%%bcc") for c in nbformat.read(path, as_version=4).cells):
        from support.kernel_headers import debian_headers

        headers = debian_headers()
    with headers:
        nb, failed, lab = run_lab(path, workdir)
    assert failed is None, told(failed)[-3000:]
    assert lab["live"] is True
    checks = [c for c in nb.cells if any(t.startswith("check-") for t in tags(c))]
    answers = [c for c in nb.cells if any(t.startswith("answer-") for t in tags(c))]
    assert len(checks) >= 2 and len(answers) >= len(checks)
    for cell in checks:
        assert "✔" in outputs(cell) and "correct" in outputs(cell), outputs(cell)
    assert_nothing_left(lab, kube)


@pytest.mark.root
@pytest.mark.parametrize("path", LAB_PARAMS)
def test_a_wrong_answer_fails_its_check_and_the_lab_still_cleans_up(path, lab_env):
    workdir, kube = lab_env
    key, wrong, said = WRONG[path.stem]
    nb, failed, lab = run_lab(path, workdir, replace={key: wrong})
    assert failed is not None and f"check-{key}" in tags(failed), "the wrong answer was not refused by its check"
    error = next(o for o in failed.outputs if o.output_type == "error")
    assert error.ename == "WrongAnswer"
    assert "not yet" in error.evalue and said in error.evalue and "Hint:" in error.evalue, error.evalue
    # The lab's last cell never ran: its scenario went with the kernel.
    assert_nothing_left(lab, kube)


REPLAYED = [p for p in LABS if meta(p).get("replays")]
BINDER_REQUIREMENTS = Path(__file__).parents[2] / "binder" / "requirements.txt"
# Appended to each replayed lab: the top-level modules its kernel imported.
MODULES = 'import json, sys\nprint("MODULES", json.dumps(sorted({m.split(".")[0] for m in sys.modules})))'


def _name(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


def _requirements_of(dist: str, extras: bool = False) -> set[str]:
    """The distributions `dist` requires (with those of its extras, if asked), by canonical name."""
    try:
        listed = requires(dist) or []
    except PackageNotFoundError:
        return set()
    return {_name(r) for r in listed if extras or not (Requirement(r).marker and "extra" in str(Requirement(r).marker))}


def _closure(requirements: list[str]) -> set[str]:
    """Every distribution that installing `requirements` brings (as installed here)."""
    todo, seen = [_name(r) for r in requirements if r.strip() and not r.startswith("#")], set()
    while todo:
        dist = todo.pop()
        if dist not in seen:
            seen.add(dist)
            todo.extend(_requirements_of(dist))
    return seen


def _provides(dist: str) -> set[str]:
    """The top-level modules an installed distribution provides."""
    return {module for module, dists in packages_distributions().items()
            if any(canonicalize_name(d) == dist for d in dists)}


def test_the_labs_that_replay_are_those_with_recordings():
    from gadgetbook.labs.scenarios.base import RECORDINGS

    recorded = {p.name for p in RECORDINGS.iterdir() if (p / "facts.json").is_file()}
    assert len(REPLAYED) >= 4 and len(recorded) == len(REPLAYED)
    for path in REPLAYED:
        assert "Without them" in nbformat.read(path, as_version=4).cells[0].source  # the header says so


def test_labs_replay_their_recordings_without_root(tmp_path):
    """As on Binder: an unprivileged user, no eBPF; every exercise runs from the shipped recordings, strictly, and
    what the replays import of gadgetbook's requirements is installed by Binder's set-up."""
    work = tmp_path / "labs"
    work.mkdir()
    for path in REPLAYED:
        (work / path.name).write_bytes(path.read_bytes())
    subprocess.run(["chown", "-R", "65534:65534", str(tmp_path)], check=True)
    script = (
        "import sys, nbformat, nbclient\n"
        "for name in sys.argv[1:]:\n"
        "    nb = nbformat.read(name, 4)\n"
        f"    nb.cells.append(nbformat.v4.new_code_cell({MODULES!r}))\n"
        "    nbclient.NotebookClient(nb, timeout=120, kernel_name='python3',"
        " resources={'metadata': {'path': '.'}}).execute()\n"
        "    nbformat.write(nb, 'executed-' + name)\n"
    )
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"], "IPYTHONDIR": str(tmp_path / "ipython"),
           "MPLCONFIGDIR": str(tmp_path / "mpl"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "GADGETBOOK_LABS_STRICT": "1"}
    done = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", sys.executable,
                           "-c", script, *(p.name for p in REPLAYED)], cwd=work, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    imported: set[str] = set()
    for path in REPLAYED:
        nb = nbformat.read(work / f"executed-{path.name}", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        checks = [c for c in code if any(t.startswith("check-") for t in tags(c))]
        assert checks and all("✔" in outputs(c) for c in checks), path.name
        imported |= set(json.loads(outputs(code[-1]).split("MODULES ", 1)[1]))
    # What the replays imported of gadgetbook's own requirements, Binder installs (binder/requirements.txt).
    needed = {d for d in _requirements_of("gadgetbook", extras=True) - {"gadgetbook"} if _provides(d) & imported}
    missing = needed - _closure(BINDER_REQUIREMENTS.read_text().split())
    assert not missing, f"the replayed labs import {sorted(missing)}, which binder/requirements.txt does not install"
