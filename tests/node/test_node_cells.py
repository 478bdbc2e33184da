"""Programs of one's own and %%node cells through a real node server on this host (jupyter-server with the
extension, its kernels API, token auth): the BTF endpoint, a compiled program's START with its maps coming
back as table frames, and a kernel on the node whose values come back pulled."""

import base64
import hashlib
import io
import json
import os

import pandas as pd
import pytest
from support.cells import OPEN_COUNTER, with_marker
from support.workloads import marker

from gadgetbook.client.node_kernel import run_cell
from gadgetbook.client.node_link import RemoteSource
from gadgetbook.errors import GadgetError
from gadgetbook.kinds import kind_of
from gadgetbook.programs.cluster import compile_on
from gadgetbook.programs.compile import defined_structs
from gadgetbook.programs.spec import program_spec
from gadgetbook.run_handle import Run
from tests.node.test_node_api import _link, node_server  # noqa: F401

pytestmark = pytest.mark.root


def test_btf_endpoint_serves_this_kernels_btf(node_server):  # noqa: F811
    _, port, token = node_server
    link = _link(port, token)
    raw = open("/sys/kernel/btf/vmlinux", "rb").read()
    facts = link.get("/btf")
    assert facts["sha256"] == hashlib.sha256(raw).hexdigest() and facts["arch"] == os.uname().machine
    assert link.get_bytes("/btf/vmlinux") == raw


def test_a_program_compiled_for_the_node_runs_there_and_its_maps_come_back(node_server, tmp_path):  # noqa: F811
    _, port, token = node_server
    link = _link(port, token)
    path = f"/tmp/{marker('node-cell')}"
    source = with_marker(OPEN_COUNTER, path)
    compiled = compile_on(link, source)
    spec = program_spec(compiled.path, name="node-cell", cell_structs=defined_structs(source))
    kind = kind_of(spec)
    params = spec.checked_params({})
    start = {"gadget": spec.name, "params": params, "pid": os.getpid(), **kind.wire("test-node")}
    assert base64.b64decode(start["program"]["object"]) == compiled.path.read_bytes()
    source_on_node = RemoteSource(link, start, {}, spec=spec)
    run = Run(spec.name, params, [source_on_node], kind.columns(), schema=kind.empty(), kind=kind)
    with run:
        for _ in range(6):
            open(path, "w").close()
        run.stop()
    result = run.conclude()
    assert len(result.events) == 6 and set(result.events.path) == {path}
    assert set(result.events.node) == {"test-node"} and set(result.events.pid) == {os.getpid()}
    counts = result["counts"]
    assert list(counts.columns) == ["node", "comm", "value"] and counts.value.sum() == 6
    assert set(counts.node) == {"test-node"}


def test_a_verifier_refusal_on_the_node_comes_back_in_one_piece(node_server):  # noqa: F811
    from tests.bpf.test_bpf_cells import VERIFIER_REFUSES

    _, port, token = node_server
    link = _link(port, token)
    spec = program_spec(compile_on(link, VERIFIER_REFUSES).path, name="refused")
    start = {"gadget": spec.name, "params": spec.checked_params({}), **kind_of(spec).wire("test-node")}
    with pytest.raises(GadgetError, match=r"^The kernel's verifier refused the program refused at line 16"):
        RemoteSource(link, start, {}, spec=spec)


class Shown:
    """What the node's kernel sent, as the notebook would show it."""

    def __init__(self) -> None:
        self.text = io.StringIO()
        self.kinds: list[str] = []
        self.data: list[dict] = []

    def __call__(self, kind: str, content: dict) -> None:
        self.kinds.append(kind)
        if kind == "stream":
            self.text.write(content["text"])
        elif kind in ("display_data", "execute_result"):
            self.data.append(content["data"])
        elif kind == "error":
            self.text.write("\n".join(content["traceback"]))


NODE_CELL = """
import json, os
import gadgetbook
cgroup = open("/proc/1/cgroup").read()
print(cgroup, end="")
with gadgetbook.start("opensnoop", pid=os.getpid(), local=True) as run:
    open(MARKER, "w").close()
    run.stop()
df = run.conclude()
print("FRAME", df.to_json(orient="split", date_format="iso", date_unit="ns"))
print("ATTRS", json.dumps({k: df.attrs[k] for k in ("gadget", "params", "events")}))
print("DTYPES", json.dumps({c: str(t) for c, t in df.dtypes.items()}))
df
"""


def test_a_node_cell_prints_and_its_pulled_frame_is_what_it_printed(node_server, tmp_path):  # noqa: F811
    _, port, token = node_server
    link = _link(port, token)
    path = f"/tmp/{marker('node-kernel')}"
    shown = Shown()
    pulled = run_cell(link, NODE_CELL.replace("MARKER", repr(path)), pull=("df", "cgroup"), cluster=f"test-{port}",
                      show=shown)
    lines = shown.text.getvalue().splitlines()
    assert shown.text.getvalue().startswith(pulled["cgroup"])
    assert pulled["cgroup"] == open("/proc/1/cgroup").read()  # this host is the node here
    df = pulled["df"]
    assert isinstance(df, pd.DataFrame) and path in set(df.path)
    printed = next(line for line in lines if line.startswith("FRAME ")).removeprefix("FRAME ")
    assert df.to_json(orient="split", date_format="iso", date_unit="ns") == printed
    attrs = json.loads(next(line for line in lines if line.startswith("ATTRS ")).removeprefix("ATTRS "))
    assert {k: df.attrs[k] for k in attrs} == attrs
    dtypes = json.loads(next(line for line in lines if line.startswith("DTYPES ")).removeprefix("DTYPES "))
    assert {c: str(t) for c, t in df.dtypes.items()} == dtypes and dtypes["comm"] == "category"
    assert "execute_result" in shown.kinds and any("text/html" in d for d in shown.data)  # rich output came


def test_the_node_kernel_keeps_its_state_between_cells(node_server):  # noqa: F811
    _, port, token = node_server
    link = _link(port, token)
    run_cell(link, "kept = 41", cluster=f"test-{port}", show=Shown())
    assert run_cell(link, "kept += 1", pull=("kept",), cluster=f"test-{port}", show=Shown()) == {"kept": 42}


@pytest.mark.parametrize("code,pull,message", [
    ("x = 1", ("y",), "--pull y: the kernel on test-node has no variable y (the cell ran; check the name)."),
    ("import threading\nlock = threading.Lock()", ("lock",),
     "--pull lock: lock cannot be sent back from test-node (TypeError: cannot pickle '_thread.lock' object)"),
    ("1 / 0", ("x",), "The cell failed on test-node: ZeroDivisionError: division by zero; nothing was pulled."),
    ("x = 1", ("a-b",), "--pull takes variable names separated by commas, not 'a-b'."),
])
def test_bad_pulls_and_failing_cells_say_so_in_one_sentence(node_server, code, pull, message):  # noqa: F811
    _, port, token = node_server
    shown = Shown()
    with pytest.raises(GadgetError) as err:
        run_cell(_link(port, token), code, pull=pull, cluster=f"test-{port}", show=shown)
    assert str(err.value).startswith(message)
    if code == "1 / 0":
        assert "ZeroDivisionError" in shown.text.getvalue()  # the node's traceback was shown


def test_interrupting_a_long_node_cell_with_a_timeout(node_server):  # noqa: F811
    _, port, token = node_server
    shown = Shown()
    with pytest.raises(GadgetError, match="KeyboardInterrupt"):
        run_cell(_link(port, token), "import time\ntime.sleep(60)", cluster=f"test-{port}", show=shown, timeout=1)
    assert "interrupted after 1 s" in shown.text.getvalue()
