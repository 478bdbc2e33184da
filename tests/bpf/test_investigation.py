"""Investigations on the network lab app (busybox web servers, a DNS server, two clients on a private
network): several gadgets at once, their joins, the timeline's lanes, recordings replayed whole, diffs between
two runs of the app, policies checked against its traffic, and bad input in one sentence."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gadgetbook
from gadgetbook import catalog
from gadgetbook.catalog.spec import GadgetSpec
from gadgetbook.errors import GadgetError
from gadgetbook.kernel.loader import HookGroup
from gadgetbook.labs.app import API_PORT, WEB_PORT, NetworkLab

pytestmark = [pytest.mark.root, pytest.mark.containers]
GADGETS = "execsnoop,opensnoop,tcptracer,dns"
EXTRA_EXE = "/bin/hostname"


@pytest.fixture(scope="module")
def lab():
    with NetworkLab(subnet="10.213.54.0/24") as lab:
        time.sleep(1.5)  # the clients' loops are going
        yield lab


@pytest.fixture(scope="module")
def inv(lab):
    return gadgetbook.investigate(GADGETS, selector=lab.selector, timeout=4)


def test_every_gadget_ran_on_the_same_containers(lab, inv):
    assert inv.gadgets == GADGETS.split(",") and not inv.failed
    names = {c.name for c in lab.containers.values()}
    for g in inv.gadgets:
        df = inv[g]
        assert len(df) and set(df.container) <= names, g
        assert df.attrs["targets"] == inv.facts["targets"]
    assert set(inv["dns"].container) >= {lab.containers["client"].name, lab.containers["worker"].name}


def test_connections_after_a_lookup_carry_the_name(lab, inv):
    conns, dns = inv["tcptracer"], inv["dns"]
    client = lab.containers["client"].name
    for role, port in (("web", WEB_PORT), ("api", API_PORT)):
        name, address = lab.name(role), lab.addresses[role]
        answered = dns[(dns.container == client) & (dns.direction == "received") & (dns.name == name)
                       & (dns.answers == address)]
        assert len(answered), role
        after = conns[(conns.container == client) & (conns.type == "connect") & (conns.daddr == address)
                      & (conns.dport == port) & (conns.timestamp > answered.timestamp.min())]
        assert len(after) >= 3 and set(after.remote_name) == {name}, (role, after.remote_name.tolist())
    # A connection before any lookup was seen has no name rather than a guess.
    first = dns[dns.direction == "received"].timestamp.min()
    before = conns[(conns.type == "connect") & (conns.timestamp < first)]
    assert set(before.remote_name) <= {""}


def test_every_gadget_watched_the_whole_window(inv):
    # The gadgets attach one after another; each watches until the timeout after the last one attached, so
    # none misses what the others see at the end.
    ends = {g: inv[g].attrs["end"] for g in inv.gadgets}
    assert all(end >= inv.facts["attached"] + 4 for end in ends.values()), (inv.facts["attached"], ends)


def test_processes_behind_rows_are_named(lab, inv):
    conns = inv["tcptracer"]
    # Processes alive once the process table was read are known; a wget that came and went while the gadgets
    # were still loading, or while /proc was read, may stay unnamed.
    attached = pd.Timestamp(inv.facts["processes_read"], unit="s")
    connects = conns[(conns.type == "connect") & (conns.timestamp > attached)]
    assert len(connects) >= 5 and set(connects.exe) == {"wget"}
    assert all(c.startswith("wget -q -O /dev/null http://") for c in connects.cmdline)
    opens = inv["opensnoop"]
    lookups = opens[(opens.comm == "nslookup") & (opens.timestamp > attached)]
    assert len(lookups) and all(c.startswith("nslookup ") and c.endswith(".lab.test") for c in lookups.cmdline)
    # httpd forks without exec for each request: named from the server process found at the start.
    served = conns[(conns.type == "accept") & (conns.container == lab.containers["web"].name)]
    assert len(served) and set(served.cmdline) == {f"httpd -f -p {WEB_PORT} -h /www"}


def test_timeline_has_a_lane_per_container(lab, inv):
    view = inv.timeline()
    assert view.timeline.lanes == sorted(c.name for c in lab.containers.values())
    assert view.timeline.gadgets == inv.gadgets
    assert view.timeline.total == sum(len(inv[g]) for g in inv.gadgets)
    marks = np.frombuffer(view.timeline.marks, dtype=[("t", "<f8"), ("lane", "<u2"), ("gadget", "u1"), ("p", "u1")])
    assert len(marks) == view.timeline.total and len(set(marks["lane"].tolist())) == len(lab.containers)
    start, end = inv.time_range
    view.timeline.select(start + (end - start) / 4, start + (end - start) / 2)
    a, b = inv.span
    for g, table in view.tables.items():
        rows = int(table.value.split('data-rows="')[1].split('"')[0])
        assert rows == ((inv.frames[g].timestamp >= a) & (inv.frames[g].timestamp < b)).sum()
    assert inv.timeline_image().png.startswith(b"\x89PNG")
    view.timeline.brush = []
    assert inv.span is None or view.span is None


def test_saved_investigation_replays_whole(inv, tmp_path):
    inv.save(tmp_path / "inv")
    again = gadgetbook.replay(tmp_path / "inv", show=False)
    assert again.gadgets == inv.gadgets
    for g in inv.gadgets:
        pd.testing.assert_frame_equal(again[g], inv[g], check_categorical=False)
    with pytest.raises(GadgetError, match="not an empty folder"):
        inv.save(tmp_path / "inv")


def test_policy_allowing_one_peer_flags_exactly_the_other(lab, inv):
    policy = f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: client-to-web-only, namespace: default}}
spec:
  podSelector: {{matchLabels: {{app: client}}}}
  policyTypes: [Egress]
  egress:
  - to: [{{podSelector: {{matchLabels: {{app: web}}}}}}]
    ports: [{{protocol: TCP, port: {WEB_PORT}}}]
"""
    check = gadgetbook.check_network_policy(policy, inv)
    conns = inv["tcptracer"]
    client = lab.containers["client"].name
    to_api = conns[(conns.container == client) & (conns.type == "connect") & (conns.daddr == lab.addresses["api"])]
    assert len(to_api)
    refused = check.refused
    assert set(zip(refused.client, refused.server, refused.port)) == {("client", "api", API_PORT)}
    assert set(refused.client_address) == {lab.addresses["client"]} and len(refused) == len(to_api)
    assert set(refused.policies) == {"client-to-web-only"}
    # The advisor's own policy refuses nothing of the traffic it was written from.
    advice = gadgetbook.advise_network_policy(inv["tcptracer"])
    assert len(gadgetbook.check_network_policy(advice, inv).refused) == 0


def test_diff_reports_exactly_the_extra_peer_and_executable(inv, tmp_path):
    extra = f"wget -q -O /dev/null http://10.213.55.2:{WEB_PORT}/; {EXTRA_EXE} >/dev/null"
    with NetworkLab(subnet="10.213.55.0/24", worker_extra=extra) as other:
        time.sleep(1.5)
        assert other.addresses["web"] == "10.213.55.2"
        after = gadgetbook.investigate(GADGETS, selector=other.selector, timeout=4)
    after.save(tmp_path / "after")
    d = gadgetbook.diff(inv, gadgetbook.replay(tmp_path / "after", show=False))
    got = set(zip(d.frame.workload, d.frame.what, d.frame.item, d.frame.change))
    assert got == {("worker", "peers", f"web:{WEB_PORT}", "new"), ("web", "clients", f"worker:{WEB_PORT}", "new"),
                   ("worker", "executables", EXTRA_EXE, "new")}, d.summary()
    assert "worker: new executables: /bin/hostname; new peers: web:8080" in d.summary()
    # One gadget's recordings compare the same way.
    only_conns = gadgetbook.diff(inv["tcptracer"], after["tcptracer"])
    assert set(only_conns.frame.item) == {f"web:{WEB_PORT}", f"worker:{WEB_PORT}"}


def test_diff_refuses_different_gadgets_and_versions(inv):
    with pytest.raises(GadgetError, match="different gadgets"):
        gadgetbook.diff(inv["dns"], inv["execsnoop"])
    newer = inv["execsnoop"].copy()
    newer.attrs = {**inv["execsnoop"].attrs, "version": "99.0"}
    with pytest.raises(GadgetError, match="different gadgetbook versions"):
        gadgetbook.diff(inv["execsnoop"], newer)


@pytest.mark.parametrize("gadgets, kwargs, words", [
    ("execsnoop,nope", {}, "Unknown gadget 'nope'"),
    ("execsnoop,dns,execsnoop", {}, "execsnoop appears more than once"),
    ("execsnoop", {"params": {"dns": {"port": 53}}}, "Params are given for dns"),
    ("execsnoop,opensnoop", {"failed": True}, "failed is a gadget's param, not a target"),
    ("", {}, "Name the gadgets"),
])
def test_bad_input_is_one_sentence(gadgets, kwargs, words):
    with pytest.raises(GadgetError, match=words) as err:
        gadgetbook.investigate(gadgets, timeout=1, **kwargs)
    assert "\n" not in str(err.value)


def test_a_gadget_that_fails_leaves_the_others_running(lab, tmp_path, monkeypatch):
    """A gadget this kernel refuses (its only hook is fentry, which loads nowhere here)."""
    root = Path(__file__).resolve().parents[2]
    obj = tmp_path / "hooks.bpf.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I", root / "bpf" / "include",
                    "-I", root / "bpf" / ".build", "-c", Path(__file__).parent / "objects" / "hooks.bpf.c",
                    "-o", obj], check=True)
    spec = GadgetSpec(name="fentry-only", description="needs fentry", kind="trace", object_path=obj, params={},
                      hooks=(HookGroup(("fentry_hook",)), HookGroup(("missing_hook",), optional=True)),
                      column_meta={})
    monkeypatch.setitem(catalog._specs(), "fentry-only", spec)
    inv = gadgetbook.investigate("execsnoop,fentry-only", selector=lab.selector, timeout=2)
    assert inv.gadgets == ["execsnoop"] and len(inv["execsnoop"])
    assert "refused to load" in inv.failed["fentry-only"]
    assert "fentry-only: did not start: The kernel refused to load" in inv.summary()


def test_cli_streams_an_investigation_to_a_folder(lab, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "gadgetbook", "investigate", "execsnoop,dns,tcptracer", "-l",
                           lab.selector, "--timeout", "3", "--save", str(out), "--tail", "5"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "execsnoop: " in done.stderr and "dns: " in done.stderr
    manifest = json.loads((out / "_investigation.json").read_text())
    assert manifest["parts"] == {"execsnoop": "execsnoop", "dns": "dns", "tcptracer": "tcptracer"}
    whole = gadgetbook.replay(out, show=False)
    events = {g: whole[g].attrs["events"] for g in whole.gadgets}
    assert all(len(whole[g]) == events[g] > 5 for g in whole.gadgets), events  # all on disk, not the tail
    assert set(pd.read_parquet(out / "dns").columns) >= {"name", "qtype", "answers", "node", "hour"}
    client = lab.containers["client"].name
    part = gadgetbook.replay(out, show=False, containers=[client], columns=["timestamp", "container", "comm"])
    assert all(set(part[g].container) <= {client} and list(part[g].columns) == ["timestamp", "container", "comm"]
               for g in part.gadgets)
