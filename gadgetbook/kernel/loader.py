"""Loading a gadget's CO-RE object: hook choice, .rodata settings, load, attach, and a close that frees all."""

from __future__ import annotations

import ctypes as C
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gadgetbook.errors import GadgetError
from gadgetbook.kernel import hooks, libbpf
from gadgetbook.kernel.btf import Btf


class LoadError(GadgetError):
    """The kernel refused to load an object; `verifier` holds the verifier's last lines (may be empty)."""

    def __init__(self, message: str, verifier: list[str]) -> None:
        super().__init__(message)
        self.verifier = verifier


@dataclass(frozen=True)
class HookGroup:
    """Programs that are alternatives for one hook, in order of preference.

    An alternative made of several programs that only work together (a kprobe and its kretprobe, an entry
    hook that keeps the arguments for its exit hook) joins their names with "+": all of them are loaded,
    or none.
    """

    programs: tuple[str, ...]
    optional: bool = False

    @property
    def alternatives(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(alt.split("+")) for alt in self.programs)

    @property
    def names(self) -> tuple[str, ...]:
        """Every program named in the group."""
        return tuple(p for alt in self.alternatives for p in alt)


AVOID_ENV = "GADGETBOOK_AVOID_PROGRAMS"


def avoided_programs() -> frozenset[str]:
    """Programs the loader passes over as if this kernel refused them (GADGETBOOK_AVOID_PROGRAMS=a,b): runs a
    gadget's fallback on a kernel that offers its first choice, to check the fallback or compare the two."""
    return frozenset(p for p in os.environ.get(AVOID_ENV, "").replace(" ", "").split(",") if p)


@dataclass
class LoadPlan:
    """What to set before load: hook groups, .rodata values, map sizes."""

    groups: Sequence[HookGroup] = ()
    rodata: Mapping[str, int | bool] = field(default_factory=dict)
    max_entries: Mapping[str, int] = field(default_factory=dict)
    unavailable: set[str] = field(default_factory=set)


class BpfObject:
    """A loaded and attached BPF object; `close()` (or leaving the `with`) detaches and frees everything."""

    def __init__(self, path: str, plan: LoadPlan | None = None, attach: bool = True) -> None:
        self.path = path
        self.name = os.path.basename(path).split(".")[0]
        self._obj = 0
        self._links: list[int] = []
        self.attached: list[str] = []
        plan = plan or LoadPlan()
        # A program that fails to load and has a fallback is retried without it.
        for _ in range(1 + sum(len(g.names) for g in plan.groups)):
            failed = self._open_and_load(plan)
            if failed is None:
                break
            plan.unavailable.add(failed)
        if attach:
            try:
                self.attach_all(plan.groups)
            except BaseException:
                self.close()
                raise

    # -- loading --

    def _open_and_load(self, plan: LoadPlan) -> str | None:
        libbpf.log.take()
        obj = libbpf.object_open_file(self.path.encode(), None)
        if not obj or libbpf.libbpf_get_error(obj):
            raise GadgetError(f"Cannot open BPF object {self.path}: {libbpf.errno_message()}.")
        self._obj = obj
        try:
            chosen = self._choose_programs(plan)
            for prog in self._programs():
                libbpf.program_set_autoload(prog, libbpf.program_name(prog).decode() in chosen)
            self._write_rodata(plan.rodata)
            for name, entries in plan.max_entries.items():
                if libbpf.map_set_max_entries(self._map(name), entries):
                    raise GadgetError(f"Cannot size map {name} to {entries}.")
            rc = libbpf.object_load(obj)
        except BaseException:
            self.close()
            raise
        if rc == 0:
            return None
        lines = libbpf.log.take()
        self.close()
        failed = _failed_program(lines)
        # Without it the load may still succeed: when a later alternative exists, or the hook is optional.
        retryable = failed and any(
            failed in g.names and (g.optional or failed not in g.alternatives[-1]) for g in plan.groups
        )
        if retryable:
            return failed
        raise LoadError(_load_error(self.name, -rc, lines), _verifier_lines(lines))

    def _choose_programs(self, plan: LoadPlan) -> set[str]:
        names = {libbpf.program_name(p).decode() for p in self._programs()}
        grouped = {p for g in plan.groups for p in g.names}
        chosen = names - grouped
        avoided = avoided_programs()
        usable = lambda p: (p in names and p not in plan.unavailable and p not in avoided  # noqa: E731
                            and hooks.available(self._section(p)))
        for group in plan.groups:
            pick = next((alt for alt in group.alternatives if all(map(usable, alt))), None)
            if pick:
                chosen.update(pick)
            elif not group.optional:
                sections = dict.fromkeys(self._section(p) for p in group.names if p in names)
                raise GadgetError(
                    f"This kernel offers none of the hooks {self.name} needs for "
                    f"{', '.join(sections)}; it cannot run here."
                )
        return chosen

    def _write_rodata(self, values: Mapping[str, int | bool]) -> None:
        if not values:
            return
        rodata = next(
            (m for m in self._maps() if libbpf.map_name(m).decode().endswith(".rodata")), None
        )
        if rodata is None:
            raise GadgetError(f"{self.name} has no .rodata section for its settings.")
        size = C.c_size_t()
        base = libbpf.map_initial_value(rodata, C.byref(size))
        places = Btf(libbpf.object_btf(self._obj)).datasec(".rodata")
        for name, value in values.items():
            if name not in places:
                raise GadgetError(f"{self.name} has no setting {name} in .rodata.")
            off, width = places[name]
            raw = int(value).to_bytes(width, "little", signed=int(value) < 0)
            C.memmove(base + off, raw, width)

    # -- attaching --

    def attach_all(self, groups: Sequence[HookGroup]) -> None:
        """Attach every loaded program to its hook (perf-event programs are attached by their runner)."""
        optional = {p for g in groups if g.optional for p in g.names}
        for prog in self._programs():
            if not libbpf.program_autoload(prog):
                continue
            name = libbpf.program_name(prog).decode()
            if self._section(name).startswith("perf_event"):
                continue  # attached per CPU by the gadget's own runner
            link = libbpf.program_attach(prog)
            if not link or libbpf.libbpf_get_error(link):
                if name in optional:
                    continue
                why = libbpf.errno_message()
                if not hooks.available(self._section(name)):
                    why = "this kernel has no such hook"
                raise GadgetError(f"Cannot attach {name} ({self._section(name)}) of {self.name}: {why}.")
            self._links.append(link)
            self.attached.append(name)

    def attach_perf_event(self, program: str, perf_fd: int) -> None:
        link = libbpf.program_attach_perf_event(self._program(program), perf_fd)
        if not link or libbpf.libbpf_get_error(link):
            raise GadgetError(f"Cannot attach {program} to a perf event: {libbpf.errno_message()}.")
        self._links.append(link)

    # -- maps --

    def map_fd(self, name: str) -> int:
        return libbpf.map_fd(self._map(name))

    def percpu_total(self, name: str, key: int = 0) -> int:
        """The sum over all CPUs of a per-CPU array's u64 at `key` (the gadgets' loss counters); 0 if unreadable."""
        values = (C.c_uint64 * libbpf.num_possible_cpus())()
        if libbpf.map_lookup_elem(self.map_fd(name), C.byref(C.c_uint32(key)), values):
            return 0
        return sum(values)

    def map_handles(self) -> dict[str, int]:
        """name -> libbpf's `struct bpf_map *`, for every map of the object."""
        return {libbpf.map_name(m).decode(): m for m in self._maps()}

    def map_max_entries(self, name: str) -> int:
        return libbpf.map_max_entries(self._map(name))

    def map_key_size(self, name: str) -> int:
        return libbpf.map_key_size(self._map(name))

    def program_fd(self, name: str) -> int:
        return libbpf.program_fd(self._program(name))

    # -- lookup helpers --

    def _programs(self) -> Iterable[int]:
        prog = None
        while True:
            prog = libbpf.object_next_program(self._obj, prog)
            if not prog:
                return
            yield prog

    def _maps(self) -> Iterable[int]:
        m = None
        while True:
            m = libbpf.object_next_map(self._obj, m)
            if not m:
                return
            yield m

    def _program(self, name: str) -> int:
        for prog in self._programs():
            if libbpf.program_name(prog).decode() == name:
                return prog
        raise GadgetError(f"{self.name} has no program {name}.")

    def _section(self, name: str) -> str:
        return libbpf.program_section_name(self._program(name)).decode()

    def _map(self, name: str) -> int:
        m = libbpf.object_find_map_by_name(self._obj, name.encode())
        if not m:
            raise GadgetError(f"{self.name} has no map {name}.")
        return m

    @property
    def btf(self) -> Btf:
        return Btf(libbpf.object_btf(self._obj))

    # -- lifetime --

    def detach(self) -> None:
        """Detach every program, keeping the maps: what they hold can still be read."""
        links, self._links = self._links, []
        if len(links) > 1:
            # Each detach waits out an RCU grace period in the kernel; done side by
            # side the waits overlap (ctypes lets go of the GIL during the call).
            threads = [threading.Thread(target=libbpf.link_destroy, args=(link,)) for link in links]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        elif links:
            libbpf.link_destroy(links[0])

    def close(self) -> None:
        self.detach()
        if self._obj:
            libbpf.object_close(self._obj)
            self._obj = 0

    def __enter__(self) -> BpfObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


_PROG_FAILED = re.compile(r"prog '([^']+)': (?:failed to load|BPF program load failed)")


def _failed_program(lines: list[str]) -> str | None:
    for line in lines:
        m = _PROG_FAILED.search(line)
        if m:
            return m.group(1)
    return None


def _load_error(name: str, err: int, lines: list[str]) -> str:
    if err == 1 and os.geteuid() != 0:  # EPERM
        return "Loading eBPF programs needs root (or CAP_BPF and CAP_PERFMON); run again with sudo."
    verifier = _verifier_lines(lines)
    detail = ("\nVerifier says:\n" + "\n".join(verifier)) if verifier else ""
    return f"The kernel refused to load {name}: {os.strerror(err)} (errno {err}).{detail}"


def _verifier_lines(lines: list[str], keep: int = 12) -> list[str]:
    begin = next((i for i, line in enumerate(lines) if "BEGIN PROG LOAD LOG" in line), None)
    if begin is None:
        return [line for line in lines if "libbpf:" in line][-keep:]
    end = next((i for i in range(begin, len(lines)) if "END PROG LOAD LOG" in lines[i]), len(lines))
    return [line for line in lines[begin + 1:end] if line.strip()][-keep:]
