"""The node API for real on this host: jupyter-server with the extension, token auth, runs over a websocket."""

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from support.leftovers import bpf_fds
from support.workloads import marker

from gadgetbook.client.node_link import NodeLink, RemoteSource
from gadgetbook.errors import GadgetError
from gadgetbook.node.serve import server_argv
from gadgetbook.run_handle import Run

pytestmark = pytest.mark.root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def node_server(tmp_path_factory):
    port, token = _free_port(), secrets.token_hex(16)
    home = tmp_path_factory.mktemp("node")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(home / "rt"), "JUPYTER_CONFIG_DIR": str(home / "cfg"),
           "JUPYTER_DATA_DIR": str(home / "data"), "IPYTHONDIR": str(home / "ipy")}
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_server", *server_argv(port, token, str(home))],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=1)
            break
        except (urllib.error.URLError, ConnectionError):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the node server did not start")
    yield proc, port, token
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def _link(port, token, node="test-node"):
    return NodeLink(node, lambda: socket.create_connection(("127.0.0.1", port)), token)


def test_requests_without_the_token_are_refused(node_server):
    _, port, _ = node_server
    for path in ("/gadgetbook/api/v1/node", "/gadgetbook/api/v1/containers"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
        assert info.value.code == 401
    with pytest.raises(GadgetError, match="refused the run: The node API refused the token"):
        RemoteSource(_link(port, "wrong-token"), {"gadget": "opensnoop"}, {})


def test_node_facts(node_server):
    _, port, token = node_server
    facts = _link(port, token).get("/node")
    assert facts["btf"] is True and facts["kernel"] == os.uname().release
    assert {"execsnoop", "opensnoop", "bindsnoop"} <= set(facts["gadgets"])


def test_remote_run_streams_rows(node_server, tmp_path):
    _, port, token = node_server
    path = tmp_path / marker()
    src = RemoteSource(_link(port, token), {"gadget": "opensnoop", "params": {"failed": True}, "pid": os.getpid()},
                       {})
    run = Run("opensnoop", {"failed": True}, [src], src.columns)
    for _ in range(3):
        try:
            open(path)
        except FileNotFoundError:
            pass
    time.sleep(0.5)
    run.stop()
    df = run.result()
    mine = df[df.path == str(path)]
    assert len(mine) == 3 and set(mine.error) == {"ENOENT"} and set(mine.pid) == {os.getpid()}
    assert set(df.node) == {"test-node"}


def test_dropped_client_frees_the_gadget(node_server):
    proc, port, token = node_server
    src = RemoteSource(_link(port, token), {"gadget": "execsnoop"}, {})
    deadline = time.monotonic() + 10
    while not bpf_fds(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bpf_fds(proc.pid), "the node never loaded the gadget"
    src._ws.sock.close()  # the client vanishes without a goodbye
    src.close()
    deadline = time.monotonic() + 15
    while bpf_fds(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert bpf_fds(proc.pid) == set()


def test_bad_start_is_one_sentence(node_server):
    _, port, token = node_server
    with pytest.raises(GadgetError, match="Unknown gadget 'nope'"):
        RemoteSource(_link(port, token), {"gadget": "nope"}, {})


@pytest.mark.containers
def test_recorder_endpoints_hold_a_recording_across_connections(node_server, rootfs):
    """The node pod's recorder API: start by container id (as a cluster client asks), then list, show and
    stop over new connections; the node holds the BPF objects meanwhile and frees them at stop."""
    from support.podman import Container

    from gadgetbook.recorders.client import RecorderLink

    proc, port, token = node_server
    tag = marker("nr")
    c = Container(rootfs, f"nr-{tag}", {"gadgetbook-test": tag}, f"while true; do cat /data/{tag}; sleep 0.1; done")
    try:
        link = RecorderLink(_link(port, token))
        before = bpf_fds(proc.pid)
        info = link.start({"gadget": "traceloop", "params": {"syscalls": "openat", "entries": 64},
                           "target": {"podname": "web-1", "namespace": "shop", "description": "-n shop -p web-1",
                                      "container_ids": {f"containerd://{c.id}": ["shop", "web-1", "web"]}}})
        host = socket.gethostname()  # the server names its node (GADGETBOOK_NODE_NAME in a pod)
        assert info["containers"][0]["container"] == "web" and info["node"] == host
        assert len(bpf_fds(proc.pid) - before) >= 3  # programs, links and maps live in the server
        with pytest.raises(GadgetError, match=r"-n shop -p web-1 is already recorded by traceloop-"):
            RecorderLink(_link(port, token)).start({"gadget": "traceloop", "params": {},
                                                   "target": {"podname": "web-1", "namespace": "shop"}})
        time.sleep(0.5)
        listed = RecorderLink(_link(port, token)).list()
        assert [r["id"] for r in listed] == [info["id"]]
        batch, shown = RecorderLink(_link(port, token)).show(info["id"])
        assert set(batch["syscall"].values()) == {"openat"} and f"/data/{tag}" in set(batch["path"].values())
        assert set(batch["pod"].values()) == {"web-1"} and shown["containers"][0]["overwritten"] >= 0
        batch, stopped = RecorderLink(_link(port, token)).stop(info["id"])
        assert stopped["ended"] == "stopped" and len(batch["seq"]) > 0
        assert bpf_fds(proc.pid) - before == set()
        with pytest.raises(GadgetError, match=rf"No recording {info['id']} on {host}"):
            RecorderLink(_link(port, token)).show(info["id"])
        with pytest.raises(GadgetError, match=f"None of the containers asked for runs on {host}"):
            RecorderLink(_link(port, token)).start({"gadget": "traceloop", "params": {},
                                                   "target": {"container_ids": {"containerd://0000": ["a", "b", "c"]}}})
    finally:
        c.remove()


def test_the_node_decodes_nothing_and_loads_neither_pandas_nor_arrow(node_server):
    """A run's events leave the node as the kernel wrote them (compressed); the client decodes them."""
    proc, port, token = node_server
    src = RemoteSource(_link(port, token), {"gadget": "execsnoop", "pid": os.getpid()}, {})
    run = Run("execsnoop", {}, [src], src.columns)
    subprocess.run(["/bin/true"], check=True)
    time.sleep(0.3)
    run.stop()
    with open(f"/proc/{proc.pid}/maps") as f:
        libraries = {line.split()[-1] for line in f if ".so" in line}
    assert not [p for p in libraries if "/pandas/" in p or "libarrow" in p or "/pyarrow/" in p], libraries
    assert any("zstandard" in p for p in libraries)  # what it does load: the compressor


def test_frames_carry_the_nodes_clock_not_the_clients():
    """Boot time differs between hosts: timestamps use the offset the node sent with its frame."""
    import numpy as np

    from gadgetbook import catalog, protocol
    from gadgetbook.frames.decode import NoContainers
    from gadgetbook.kinds import kind_of

    spec = catalog.get("opensnoop")
    events = np.zeros(2, spec.event_dtype)
    events["timestamp_raw"] = [1_000, 2_000]
    events["path"] = [b"/a", b"/b"]
    frame = protocol.unpack(protocol.pack(protocol.Frame({"boot_to_wall_ns": 10**18}, {"events": events})))
    batch = kind_of(spec).from_wire(frame, {}, NoContainers(), "node-a")
    assert batch["timestamp"].astype("int64").tolist() == [10**18 + 1_000, 10**18 + 2_000]
    assert batch["path"].values().tolist() == ["/a", "/b"] and batch["node"].values().tolist() == ["node-a"] * 2
