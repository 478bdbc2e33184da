"""Runs one bcc program for gadgetbook inside the Python that bcc imports from (Debian's python3), and streams
what it sees to its parent; bcc never enters the notebook's own interpreter.

Standalone on purpose: it imports only bcc and the standard library, so it runs from the package directory
with any Python that has bcc. Its parent writes one JSON line (the program and settings) on stdin, then maybe
"cgroups [id, ...]" lines (containers that started since, for the filter), then "stop" (or closes stdin, as it
does when it dies) to end the run. Frames on stdout: one type byte, a
little-endian u32 length, the payload:
  R ready    JSON {"record": {"size", "fields": [[name, code, shape, offset], ...]} | null, "tables": {name: type}}
  E events   records back to back, each of the record's size
  T table    JSON {"name", "columns", "codes", "rows"}: one reading of a table
  L counts   JSON {"lost": n, "dropped": n}
  X error    JSON {"stage": "compile" | "load" | "run", "message"}
  D done
"""

import ctypes as ct
import json
import queue
import struct
import sys
import threading
import time

PERF_EVENT_ARRAY, RINGBUF = 4, 27
TABLE_TYPES = {1: "hash", 2: "array", 5: "percpu_hash", 6: "percpu_array", 9: "lru_hash", 10: "lru_percpu_hash"}
PER_CPU = {5, 6, 10}
FILTER_MAP = "gadget_cgroup_filter"
_SCALARS = {
    ct.c_char: "S1", ct.c_byte: "i1", ct.c_ubyte: "u1", ct.c_bool: "?", ct.c_short: "<i2", ct.c_ushort: "<u2",
    ct.c_int: "<i4", ct.c_uint: "<u4", ct.c_long: "<i8", ct.c_ulong: "<u8", ct.c_longlong: "<i8",
    ct.c_ulonglong: "<u8", ct.c_void_p: "<u8", ct.c_char_p: "<u8", ct.c_float: "<f4", ct.c_double: "<f8",
}


class Out:
    def __init__(self):
        self._lock = threading.Lock()
        self._stream = sys.stdout.buffer

    def send(self, kind, payload=b""):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode()
        with self._lock:
            self._stream.write(kind + struct.pack("<I", len(payload)) + payload)
            self._stream.flush()


def fields_of(cls, base=0, prefix=""):
    """A ctypes struct's fields, nested structs flattened: [name, numpy code, shape, offset]."""
    out = []
    for item in cls._fields_:
        name, ftype = item[0], item[1]
        offset = base + getattr(cls, name).offset
        if isinstance(ftype, type) and issubclass(ftype, ct.Structure):
            out.extend(fields_of(ftype, offset, prefix))
            continue
        out.append([prefix + name, *code_of(ftype), offset])
    return out


def code_of(ftype):
    """(numpy dtype code, shape) of a ctypes type; raw bytes for what has no number type."""
    if isinstance(ftype, type) and issubclass(ftype, ct.Array):
        elem = ftype._type_
        if elem is ct.c_char:
            return f"S{ftype._length_}", []
        code, shape = code_of(elem)
        return code, [ftype._length_, *shape]
    if ftype in _SCALARS:
        return _SCALARS[ftype], []
    return f"V{ct.sizeof(ftype)}", []


def plain(value):
    """A ctypes value as JSON: numbers, text for char arrays, lists for other arrays, dicts for structs."""
    if isinstance(value, ct.Structure):
        return {item[0]: plain(getattr(value, item[0])) for item in value._fields_}
    if isinstance(value, ct.Array):
        if value._type_ is ct.c_char:
            return bytes(value).split(b"\0", 1)[0].decode(errors="replace")
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode(errors="replace")
    if hasattr(value, "value"):
        return value.value
    return value


def layout_of(ctype, default):
    """(column names, their codes) of a table's key or leaf type."""
    if isinstance(ctype, type) and issubclass(ctype, ct.Structure):
        names, codes = [], []
        for name, code, shape, _ in fields_of(ctype):
            names.append(name)
            codes.append("str" if code.startswith("S") else ("list" if shape else code))
        return names, codes
    code, shape = code_of(ctype)
    return [default], ["str" if code.startswith("S") else ("list" if shape else code)]


def flat(value, names):
    """A key or leaf as one row's cells, in the order of `names`."""
    got = value if isinstance(value, dict) else plain(value)
    if not isinstance(got, dict):
        return [got]
    out = {}

    def walk(d):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v)
            else:
                out[k] = v

    walk(got)
    return [out.get(n) for n in names]


def add_up(values):
    """Per-CPU values summed: numbers added, field by field for structs; others as the first CPU has them."""
    if isinstance(values[0], (int, float)) and not isinstance(values[0], bool):
        return sum(values)
    if isinstance(values[0], dict):
        return {k: add_up([v[k] for v in values]) for k in values[0]}
    return values[0]


def read_table(bpf, name, ttype):
    table = bpf[name]
    key_names, key_codes = layout_of(table.Key, "key")
    # A per-CPU table's Leaf is an array of one value per CPU; sLeaf is the value.
    leaf_fields, leaf_codes = layout_of(getattr(table, "sLeaf", table.Leaf), "value")
    leaf_names = [f"value_{n}" if n in key_names else n for n in leaf_fields]
    rows = []
    for key, leaf in table.items():
        leaf_row = flat(add_up([plain(v) for v in leaf]), leaf_fields) if ttype in PER_CPU else flat(leaf, leaf_fields)
        rows.append(flat(key, key_names) + leaf_row)
    return {"name": name, "type": TABLE_TYPES[ttype], "columns": key_names + leaf_names,
            "codes": key_codes + leaf_codes, "rows": rows}


# Where bcc keeps each kind of attachment, and how it lets one go (as its BPF.cleanup does).
PROBES = (("kprobe_fds", "detach_kprobe_event"), ("uprobe_fds", "detach_uprobe_event"),
          ("tracepoint_fds", "detach_tracepoint"), ("raw_tracepoint_fds", "detach_raw_tracepoint"),
          ("kfunc_entry_fds", "detach_kfunc"), ("kfunc_exit_fds", "detach_kretfunc"), ("lsm_fds", "detach_lsm"))


def detach_all(bpf):
    """Every probe off before the last drain and reading: the records and the tables then tell of the same
    calls (a call between the two would otherwise be counted in a table and missing from the records)."""
    for fds, detach in PROBES:
        for key in list(getattr(bpf, fds, {})):
            getattr(bpf, detach)(key)
    for ev_type, ev_config in list(getattr(bpf, "open_perf_events", {})):
        bpf.detach_perf_event(ev_type, ev_config)


def table_names(bpf, lib):
    lib.bpf_num_tables.restype = ct.c_size_t
    lib.bpf_num_tables.argtypes = [ct.c_void_p]
    lib.bpf_table_name.restype = ct.c_char_p
    lib.bpf_table_name.argtypes = [ct.c_void_p, ct.c_size_t]
    names = {}
    for i in range(lib.bpf_num_tables(bpf.module)):
        name = lib.bpf_table_name(bpf.module, i).decode()
        if name != FILTER_MAP:
            names[name] = lib.bpf_table_type_id(bpf.module, lib.bpf_table_id(bpf.module, name.encode()))
    return names


def run(cfg, out, stop, joined):
    from bcc import BPF, lib
    from bcc import table as bcc_table

    try:
        bpf = BPF(text=cfg["text"].encode())
    except Exception as exc:  # the compiler's or verifier's words went to stderr
        stage = "compile" if "compile" in str(exc).lower() else "load"
        out.send(b"X", {"stage": stage, "message": str(exc)})
        return 2
    try:
        for cgroup in cfg.get("cgroups") or ():
            bpf[FILTER_MAP][ct.c_ulonglong(cgroup)] = ct.c_ubyte(1)
        names = table_names(bpf, lib)
        outputs = [n for n, t in names.items() if t in (PERF_EVENT_ARRAY, RINGBUF)]
        events = cfg.get("events")
        if events is None and len(outputs) > 1:
            out.send(b"X", {"stage": "run", "message": f"The program has several outputs ({', '.join(outputs)}); "
                            "name the one to read with --events NAME."})
            return 2
        if events is not None and events not in outputs:
            out.send(b"X", {"stage": "run", "message": f"--events {events}: the program has no perf or ring buffer "
                            f"output of that name; its outputs: {', '.join(outputs) or 'none'}."})
            return 2
        events = events or (outputs[0] if outputs else None)
        wanted = cfg.get("tables")
        readable = {n: t for n, t in names.items() if t in TABLE_TYPES}
        if wanted is not None:
            missing = [n for n in wanted if n not in readable]
            if missing:
                out.send(b"X", {"stage": "run", "message": f"--tables names no readable table of the program: "
                                f"{', '.join(missing)}; its tables: {', '.join(readable) or 'none'}."})
                return 2
            readable = {n: readable[n] for n in wanted}
        return stream(bpf, bcc_table, cfg, out, stop, joined, events, names.get(events), readable)
    finally:
        bpf.cleanup()


def stream(bpf, bcc_table, cfg, out, stop, joined, events, kind, tables):
    record = None
    pending, counts = [], {"lost": 0, "dropped": 0}
    kept = [0]
    limit = int(cfg.get("max_events") or 0)
    if events is not None:
        output = bpf[events]
        cls = bcc_table._get_event_class(output)
        size = ct.sizeof(cls)
        record = {"size": size, "fields": fields_of(cls)}

        def take(data, _size):
            if limit and kept[0] >= limit:
                counts["dropped"] += 1
                return
            kept[0] += 1
            pending.append(ct.string_at(data, size))

        if kind == RINGBUF:
            output.open_ring_buffer(lambda _ctx, data, size: take(data, size) or 0)
        else:
            def lost(n):
                counts["lost"] += n

            # A wakeup per 64 records rather than per record (what makes the traced program pay most); the rest
            # is taken by perf_buffer_consume() at every round.
            output.open_perf_buffer(lambda _cpu, data, size: take(data, size), page_cnt=int(cfg.get("pages", 128)),
                                    lost_cb=lost, wakeup_events=64)
    out.send(b"R", {"record": record, "tables": {n: TABLE_TYPES[t] for n, t in tables.items()}})
    every = float(cfg.get("interval") or 0)
    next_reading = time.monotonic() + every if every else None

    def drain():
        if events is None:
            return
        if kind == RINGBUF:
            bpf.ring_buffer_consume()
        else:
            bpf.perf_buffer_consume()
        if pending:
            out.send(b"E", b"".join(pending))
            pending.clear()

    def readings(stamp):
        for name, ttype in tables.items():
            reading = read_table(bpf, name, ttype)
            if stamp:
                reading["timestamp"] = time.time_ns()
            out.send(b"T", reading)

    last_counts = dict(counts)
    while not stop.is_set():
        while not joined.empty():  # containers that started during the run
            for cgroup in joined.get():
                bpf[FILTER_MAP][ct.c_ulonglong(cgroup)] = ct.c_ubyte(1)
        if events is not None:
            if kind == RINGBUF:
                bpf.ring_buffer_poll(timeout=50)
            else:
                bpf.perf_buffer_poll(timeout=50)
        else:
            stop.wait(0.05)
        drain()
        if counts != last_counts:
            out.send(b"L", counts)
            last_counts = dict(counts)
        if next_reading is not None and time.monotonic() >= next_reading:
            readings(True)
            next_reading += every
    detach_all(bpf)
    drain()  # what the kernel still holds
    readings(every > 0)
    out.send(b"L", counts)
    out.send(b"D")
    return 0


def main():
    out = Out()
    cfg = json.loads(sys.stdin.readline())
    stop = threading.Event()
    joined = queue.SimpleQueue()

    def watch():
        for line in sys.stdin:
            if not line.startswith("cgroups "):
                break
            joined.put(json.loads(line[len("cgroups "):]))
        stop.set()  # "stop", or end of file when the parent has gone

    threading.Thread(target=watch, daemon=True).start()
    try:
        return run(cfg, out, stop, joined)
    except ImportError as exc:
        out.send(b"X", {"stage": "load", "message": f"bcc cannot be imported here ({exc})"})
        return 2
    except Exception as exc:  # said to the parent, which says it to the user
        out.send(b"X", {"stage": "run", "message": f"{type(exc).__name__}: {exc}"})
        return 2


if __name__ == "__main__":
    sys.exit(main())
