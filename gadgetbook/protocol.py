"""The node API's wire shapes, imported by both ends: paths, message ops, and batch frames (Arrow IPC, zstd)."""

from __future__ import annotations

import numpy as np

from gadgetbook.frames.coded import Coded

API = "/gadgetbook/api/v1"
NODE_PATH, CONTAINERS_PATH, RUNS_PATH = "/node", "/containers", "/runs"
# Recorders (a node pod's, or a local recorder process's, on a unix socket): GET RECORDERS_PATH lists
# the recordings (JSON), POST starts one (JSON: gadget, params, target), GET RECORDERS_PATH/ID shows what
# it holds and DELETE RECORDERS_PATH/ID stops it (both: a batch frame whose metadata is the recording's
# facts, `RECORDING_META`). Errors: HTTP 4xx with JSON {"message": one sentence}.
RECORDERS_PATH = "/recorders"
RECORDING_META = b"gadgetbook-recording"

# A run over one websocket. Client -> node: START (gadget, params, container_ids, ring_size), ADD
# (container_ids that joined), STOP. Node -> client: STARTED (columns), STATS (events, lost), then END
# or ERROR (message, lost); batches travel as binary frames in between.
START, ADD, STOP = "start", "add", "stop"
STARTED, STATS, END, ERROR = "started", "stats", "end", "error"
# The column a node adds to every batch: the client turns container ids into pod names.
CONTAINER_ID = "container_id"


def auth_header(token: str) -> str:
    return f"token {token}"


def encode(batch: dict, columns: list[str], meta: dict[bytes, bytes] | None = None) -> bytes:
    """One batch as a self-contained Arrow IPC stream (schema + one record batch), with optional
    schema metadata."""
    import pyarrow as pa

    arrays = []
    for name in columns:
        v = batch[name]
        if isinstance(v, Coded):
            arrays.append(pa.DictionaryArray.from_arrays(pa.array(v.codes, pa.int32()), pa.array(v.categories)))
        elif v.dtype.kind == "M":
            arrays.append(pa.array(v.astype("datetime64[ns]"), pa.timestamp("ns")))
        elif v.dtype.kind == "m":
            arrays.append(pa.array(v.astype("timedelta64[ns]"), pa.duration("ns")))
        else:
            arrays.append(pa.array(v))
    record = pa.RecordBatch.from_arrays(arrays, names=columns)
    if meta:
        record = record.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, record.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_batch(record)
    return sink.getvalue().to_pybytes()


def decode(data: bytes) -> dict:
    """The batch an encoded message holds, with strings as Coded columns again."""
    return decode_with_meta(data)[0]


def decode_with_meta(data: bytes) -> tuple[dict, dict[bytes, bytes]]:
    """The batch and the schema metadata an encoded message holds."""
    import pyarrow as pa

    reader = pa.ipc.open_stream(pa.py_buffer(data))
    table = reader.read_all()
    out: dict = {}
    for name, column in zip(table.column_names, table.columns):
        chunk = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        if pa.types.is_dictionary(chunk.type):
            categories = np.array(chunk.dictionary.to_pylist(), dtype="O")
            out[name] = Coded(chunk.indices.to_numpy(zero_copy_only=False).astype(np.int32), categories)
        elif pa.types.is_timestamp(chunk.type):
            out[name] = chunk.to_numpy(zero_copy_only=False).astype("datetime64[ns]")
        elif pa.types.is_duration(chunk.type):
            out[name] = chunk.to_numpy(zero_copy_only=False).astype("timedelta64[ns]")
        else:
            out[name] = chunk.to_numpy(zero_copy_only=False)
    return out, dict(table.schema.metadata or {})
