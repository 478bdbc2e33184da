"""The network-policy advisor and tcptracer's container filter, on a real two-container app in a private network."""

import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml
from support.syscalls import bpf_calls
from support.workloads import marker

import gadgetbook
from gadgetbook.errors import GadgetError
from gadgetbook.frames.recording import save
from gadgetbook.labs.network import LabNetwork
from gadgetbook.labs.podman import LabContainer, busybox_rootfs

pytestmark = [pytest.mark.root, pytest.mark.containers]
PORT = 8080


@pytest.fixture(scope="module")
def app():
    """A web server and a client that fetches from it five times a second, joined by a lab network."""
    tag = marker("t")
    root = busybox_rootfs()
    made = []
    net = LabNetwork(subnet="10.213.49.0/24", subnet6=None)
    try:
        web = LabContainer(root, f"web-{tag}", f"httpd -f -p {PORT} -h /www", {"app": "web", "gadgetbook-test": tag})
        made.append(web)
        web_ip, _ = net.attach(web.pid)
        loop = f"sleep 0.5; while true; do wget -q -O /dev/null http://{web_ip}:{PORT}/; sleep 0.2; done"
        client = LabContainer(root, f"client-{tag}", loop, {"app": "client", "gadgetbook-test": tag})
        made.append(client)
        client_ip, _ = net.attach(client.pid)
        yield {"tag": tag, "web": web, "client": client, "web_ip": web_ip, "client_ip": client_ip}
    finally:
        for c in made:
            c.remove()
        net.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def advice(app):
    return gadgetbook.advise_network_policy(selector=f"gadgetbook-test={app['tag']}", timeout=3)


def _by_name(policies):
    return {p["metadata"]["name"]: p for p in policies}


def test_policy_allows_exactly_the_observed_peers_and_ports(app, advice):
    docs = list(yaml.safe_load_all(advice.yaml))
    assert docs == advice.policies and len(docs) == 2
    tag = app["tag"]
    web_labels = {"app": "web", "gadgetbook-test": tag}
    client_labels = {"app": "client", "gadgetbook-test": tag}
    policies = _by_name(docs)
    web, client = policies["web-network"], policies["client-network"]
    for p in docs:
        assert (p["apiVersion"], p["kind"]) == ("networking.k8s.io/v1", "NetworkPolicy")
        assert p["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert web["spec"]["podSelector"] == {"matchLabels": web_labels}
    assert web["spec"]["ingress"] == [{"from": [{"podSelector": {"matchLabels": client_labels}}],
                                       "ports": [{"protocol": "TCP", "port": PORT}]}]
    assert "egress" not in web["spec"]  # none seen: denied
    assert client["spec"]["podSelector"] == {"matchLabels": client_labels}
    assert client["spec"]["egress"] == [{"to": [{"podSelector": {"matchLabels": web_labels}}],
                                         "ports": [{"protocol": "TCP", "port": PORT}]}]
    assert "ingress" not in client["spec"]
    assert advice.notes == []


def test_tcptracer_rows_name_the_owning_containers(app, advice):
    df = advice.events
    web, client = app["web"], app["client"]
    assert set(df.container) == {web.name, client.name}
    accepts, connects = df[df.type == "accept"], df[df.type == "connect"]
    assert len(accepts) and len(connects)
    # httpd accepts in its main process; each wget is a new process of the client container.
    assert set(accepts.container) == {web.name} and set(accepts.pid) == {web.pid} and set(accepts.comm) == {"httpd"}
    assert set(connects.container) == {client.name} and set(connects.comm) == {"wget"}
    assert set(connects.daddr) == {app["web_ip"]} and set(connects.dport) == {PORT}
    assert set(accepts.sport) == {PORT}


def test_selecting_one_container_traces_only_its_processes(app):
    with gadgetbook.start("tcptracer", container=app["web"].name) as r:
        time.sleep(1.0)
        r.stop()
    df = r.result()
    assert len(df) and set(df.container) == {app["web"].name}
    assert set(df.type) <= {"accept", "close"}


def test_a_recording_gives_the_same_policy_offline(advice, tmp_path):
    path = save(advice.events, tmp_path / "tcptracer.parquet")
    again = gadgetbook.advise_network_policy(gadgetbook.replay(path))
    assert again.yaml == advice.yaml
    out = subprocess.run([sys.executable, "-m", "gadgetbook", "advise", "network-policy", "--from", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert list(yaml.safe_load_all(out.stdout)) == advice.policies


def test_a_peer_no_workload_has_becomes_an_ip_block(app, advice):
    inventory = [c for c in advice.events.attrs["inventory"] if c["name"] != app["client"].name]
    web = _by_name(gadgetbook.advise_network_policy(advice.events, inventory=inventory).policies)["web-network"]
    assert web["spec"]["ingress"] == [{"from": [{"ipBlock": {"cidr": f"{app['client_ip']}/32"}}],
                                       "ports": [{"protocol": "TCP", "port": PORT}]}]


def test_selector_matching_nothing_is_one_sentence_and_loads_nothing():
    with pytest.raises(GadgetError, match="No running container on this host matches -l app=nobody-here"):
        gadgetbook.advise_network_policy(selector="app=nobody-here", timeout=1)
    # The CLI under strace: not one bpf() call, so nothing was ever loaded.
    out, calls = bpf_calls([sys.executable, "-m", "gadgetbook", "advise", "network-policy", "-l", "app=nobody-here",
                            "--timeout", "1"], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().count("\n") == 0 and "No running container" in out.stderr
    assert calls == []
