"""Checks that a run left nothing in the kernel: the BPF programs and links it created are gone afterwards."""

from __future__ import annotations

import json
import os
import subprocess


def _show(kind: str) -> dict[int, str]:
    out = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True, check=True).stdout
    return {item["id"]: item.get("name", item.get("type", "")) for item in json.loads(out or "[]")}


def bpf_state() -> tuple[set[int], set[int]]:
    """(program ids, link ids) loaded in the kernel now."""
    return set(_show("prog")), set(_show("link"))


class KernelObjects:
    """Records what appears while a run is live, then says what of it is still there."""

    def __init__(self) -> None:
        self.before = bpf_state()
        self.during: tuple[set[int], set[int]] = (set(), set())

    def mark_running(self) -> tuple[set[int], set[int]]:
        progs, links = bpf_state()
        self.during = (progs - self.before[0], links - self.before[1])
        return self.during

    def remaining(self) -> tuple[set[int], set[int]]:
        progs, links = bpf_state()
        return self.during[0] & progs, self.during[1] & links


def describe_programs(ids: set[int]) -> list[str]:
    """id, type and name of programs, for a failure message that says whose they are."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return [f"{p['id']}:{p.get('type')}:{p.get('name', '')}" for p in json.loads(out or "[]") if p["id"] in ids]


def bpf_fds(pid: int | str = "self") -> set[tuple[int, str]]:
    """(fd, kind) of the BPF programs, links and maps a process holds open."""
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return out  # the process is gone, and with it whatever it held
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target in ("anon_inode:bpf-prog", "anon_inode:bpf_link", "anon_inode:bpf-map"):
            out.add((int(fd), target.split(":")[1]))
    return out


def bpf_ids(pid: int | str) -> tuple[set[int], set[int], set[int]]:
    """(program ids, link ids, map ids) a process holds, from its fds' fdinfo: exact, whoever else loads."""
    progs, links, maps = set(), set(), set()
    for fd, kind in bpf_fds(pid):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except OSError:
            continue
        if kind == "bpf-prog" and "prog_id" in info:
            progs.add(int(info["prog_id"]))
        elif kind == "bpf_link" and "link_id" in info:
            links.add(int(info["link_id"]))
        elif kind == "bpf-map" and "map_id" in info:
            maps.add(int(info["map_id"]))
    return progs, links, maps


def still_loaded(ids: tuple[set[int], set[int], set[int]]) -> tuple[set[int], set[int], set[int]]:
    """Which of these program, link and map ids the kernel still has."""
    progs, links = bpf_state()
    maps = set(_show("map"))
    return ids[0] & progs, ids[1] & links, ids[2] & maps


def bpf_prog_ids(pid: int | str = "self") -> set[int]:
    """Ids of the BPF programs a process holds open."""
    return bpf_ids(pid)[0]
