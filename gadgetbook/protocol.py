"""The node API's wire shapes, imported by both ends: paths, message ops, and batch frames (Arrow IPC, zstd)."""

from __future__ import annotations

import numpy as np

from gadgetbook.frames.coded import Coded

API = "/gadgetbook/api/v1"
NODE_PATH, CONTAINERS_PATH, RUNS_PATH = "/node", "/containers", "/runs"
# The node's kernel BTF, which a client compiles programs of one's own against: its hash and architecture
# (JSON), and the raw BTF (bytes), fetched once per hash.
BTF_PATH, BTF_RAW_PATH = "/btf", "/btf/vmlinux"

# A run over one websocket. Client -> node: START (gadget, params, container_ids, ring_size), ADD
# (container_ids that joined), STOP. Node -> client: STARTED (columns), STATS (events, lost), then END
# or ERROR (message, lost); batches travel as binary frames in between.
START, ADD, STOP = "start", "add", "stop"
STARTED, STATS, END, ERROR = "started", "stats", "end", "error"
# The column a node adds to every batch: the client turns container ids into pod names.
CONTAINER_ID = "container_id"
# A START may carry "program" (a program of one's own: kind, name, record, base64 object). Its maps travel
# as binary frames too, named in the Arrow schema's metadata under this key; event batches have none.
TABLE_KEY = b"gadgetbook.table"


def auth_header(token: str) -> str:
    return f"token {token}"


def encode(batch: dict, columns: list[str], table: str | None = None) -> bytes:
    """One batch as a self-contained Arrow IPC stream (schema + one record batch); `table` names a table
    (a program's map) rather than events."""
    import pyarrow as pa

    arrays = []
    for name in columns:
        v = batch[name]
        if isinstance(v, Coded):
            arrays.append(pa.DictionaryArray.from_arrays(pa.array(v.codes, pa.int32()), pa.array(v.categories)))
        elif v.dtype.kind == "M":
            arrays.append(pa.array(v.astype("datetime64[ns]"), pa.timestamp("ns")))
        else:
            arrays.append(pa.array(v))
    record = pa.RecordBatch.from_arrays(arrays, names=columns)
    if table is not None:
        record = record.replace_schema_metadata({TABLE_KEY: table.encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, record.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_batch(record)
    return sink.getvalue().to_pybytes()


def decode(data: bytes) -> dict:
    """The batch an encoded message holds, with strings as Coded columns again."""
    return decode_frame(data)[1]


def decode_frame(data: bytes) -> tuple[str | None, dict]:
    """(the table's name, or None for events; the batch) of an encoded message."""
    import pyarrow as pa

    reader = pa.ipc.open_stream(pa.py_buffer(data))
    table = reader.read_all()
    named = (table.schema.metadata or {}).get(TABLE_KEY)
    out: dict = {}
    for name, column in zip(table.column_names, table.columns):
        chunk = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        if pa.types.is_dictionary(chunk.type):
            categories = np.array(chunk.dictionary.to_pylist(), dtype="O")
            out[name] = Coded(chunk.indices.to_numpy(zero_copy_only=False).astype(np.int32), categories)
        elif pa.types.is_timestamp(chunk.type):
            out[name] = chunk.to_numpy(zero_copy_only=False).astype("datetime64[ns]")
        else:
            out[name] = chunk.to_numpy(zero_copy_only=False)
    return (named.decode() if named is not None else None), out
