"""Container ids from /proc/PID/cgroup as each runtime and cgroup driver writes them (samples of real lines;
podman, containerd and the kubelet also run for real in the bpf and e2e tests, docker and CRI-O do not here)."""

import pytest

from gadgetbook.targets.local import _container_of

ID = "4f1c2d9e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d"
POD = "5b0f6a2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.mark.parametrize("runtime, text", [
    # docker, cgroupfs driver, cgroup v1 (one line per hierarchy)
    ("docker", f"12:memory:/docker/{ID}\n11:cpu,cpuacct:/docker/{ID}\n1:name=systemd:/docker/{ID}\n"),
    # docker, cgroupfs driver, cgroup v2
    ("docker", f"0::/docker/{ID}\n"),
    # docker, systemd driver, cgroup v2
    ("docker", f"0::/system.slice/docker-{ID}.scope\n"),
    # docker under the kubelet (dockershim), systemd driver
    ("docker", f"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD.replace('-', '_')}.slice/"
               f"docker-{ID}.scope\n"),
    # CRI-O, systemd driver (its default), cgroup v2
    ("crio", f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD.replace('-', '_')}.slice/"
             f"crio-{ID}.scope\n"),
    # CRI-O, cgroupfs driver, cgroup v1
    ("crio", f"10:pids:/kubepods/burstable/pod{POD}/crio-{ID}\n0::/kubepods/burstable/pod{POD}/crio-{ID}\n"),
    # containerd under the kubelet: systemd driver, then cgroupfs driver (the form this host's cluster uses)
    ("containerd", f"0::/kubepods.slice/kubepods-pod{POD.replace('-', '_')}.slice/cri-containerd-{ID}.scope\n"),
    ("containerd", f"0::/kubepods/besteffort/pod{POD}/{ID}\n"),
    # podman: cgroupfs manager (this host's), then systemd
    ("podman", f"0::/libpod_parent/libpod-{ID}\n"),
    ("podman", f"0::/machine.slice/libpod-{ID}.scope/container\n"),
])
def test_container_id_and_runtime(runtime, text):
    assert _container_of(text) == (runtime, ID)


def test_ctr_containers_are_namespace_and_name():
    assert _container_of("0::/default/web-1\n") == ("ctr", "default/web-1")


@pytest.mark.parametrize("text", [
    "0::/init.scope\n",
    "0::/user.slice/user-0.slice/session-3.scope\n",
    "0::/system.slice/docker.service\n",  # dockerd itself
    "0::/system.slice/crio.service\n",
    # the runtimes' monitors sit beside their containers, not in them
    f"0::/machine.slice/libpod-conmon-{ID}.scope\n",
    f"0::/kubepods.slice/kubepods-burstable.slice/crio-conmon-{ID}.scope\n",
    "0::/\n",
])
def test_host_processes_are_no_container(text):
    assert _container_of(text) is None
