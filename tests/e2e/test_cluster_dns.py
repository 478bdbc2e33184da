"""dns and investigations on the real local cluster: a client pod asks a DNS server pod (the lab's tiny server,
run from the node image, which carries Python and dnspython); rows name the pod that asked."""

from __future__ import annotations

import time

import pytest
from support.kube import deployment, namespace, ready_pods, wait_for

import gadgetbook

pytestmark = [pytest.mark.root, pytest.mark.cluster]
WEB = "10.213.60.80"
CLIENT_LOOP = ("while true; do nslookup web.lab.test $DNS_IP >/dev/null; nslookup nope.lab.test $DNS_IP >/dev/null; "
               "sleep 0.3; done")


@pytest.fixture(scope="module")
def pods(cluster, deployed, node_image):
    from kubernetes import client

    core, apps = client.CoreV1Api(cluster.api), client.AppsV1Api(cluster.api)
    with namespace(core, "gb-dns") as ns:
        deployment(apps, ns, "dns-server", {"app": "dns-server"},
                   f"exec python3 -m gadgetbook.labs.dns_server --port 53 web.lab.test={WEB}", replicas=1,
                   image=node_image)
        (server,) = wait_for(lambda: ready_pods(core, ns, "app=dns-server", 1), 120, "the DNS server pod")
        deployment(apps, ns, "dns-client", {"app": "dns-client"}, CLIENT_LOOP, replicas=1,
                   env={"DNS_IP": server.status.pod_ip})
        (client_pod,) = wait_for(lambda: ready_pods(core, ns, "app=dns-client", 1), 120, "the client pod")
        time.sleep(1)
        yield {"ns": ns, "server": server, "client": client_pod, "kubeconfig": cluster.kubeconfig}


def test_dns_rows_name_the_pod_that_asked(pods):
    df = gadgetbook.run("dns", kubeconfig=pods["kubeconfig"], namespace=pods["ns"], selector="app=dns-client",
                        timeout=4)
    assert not df.attrs["errors"], df.attrs["errors"]
    client = pods["client"].metadata.name
    assert set(df.pod) == {client} and set(df.namespace) == {pods["ns"]} and (df.node != "").all()
    got = df[df.direction == "received"]
    web = got[(got.name == "web.lab.test") & (got.qtype == "A")]
    assert len(web) >= 3 and set(web.answers) == {WEB} and set(web.rcode) == {"NOERROR"}
    assert set(got[got.name == "nope.lab.test"].rcode) == {"NXDOMAIN"}
    assert set(got.server) == {pods["server"].status.pod_ip} and (got.latency.dt.total_seconds() > 0).all()


def test_an_investigation_runs_in_the_cluster(pods):
    inv = gadgetbook.investigate("execsnoop,dns", kubeconfig=pods["kubeconfig"], namespace=pods["ns"],
                                 selector="app=dns-client", timeout=4)
    assert inv.gadgets == ["execsnoop", "dns"] and not inv.failed
    client = pods["client"].metadata.name
    assert set(inv["execsnoop"].pod) == {client} and set(inv["dns"].pod) == {client}
    asked = inv["dns"][inv["dns"].direction == "sent"]
    named = asked[asked.exe != ""]
    assert len(named) >= 3 and set(named.exe) == {"nslookup"}  # from the execs seen, by node and pid
    assert inv.timeline().timeline.lanes == [f"{pods['ns']}/{client}"]
