"""The node API's wire shapes, imported by both ends: paths, message ops, and binary frames.

A node ships what it read from the kernel, compressed, and the client decodes it: the node needs
numpy and a compressor, never pandas or Arrow, and its memory stays small at any event rate.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

import numpy as np

from gadgetbook.frames.coded import Coded

API = "/gadgetbook/api/v1"
NODE_PATH, CONTAINERS_PATH, RUNS_PATH = "/node", "/containers", "/runs"
# Recorders (a node pod's, or a local recorder process's, on a unix socket): GET RECORDERS_PATH lists
# the recordings (JSON), POST starts one (JSON: gadget, params, target), GET RECORDERS_PATH/ID shows what
# it holds and DELETE RECORDERS_PATH/ID stops it (both: a packed Frame whose header is the recording's
# facts). Errors: HTTP 4xx with JSON {"message": one sentence}.
RECORDERS_PATH = "/recorders"
FRAME_TYPE = "application/vnd.gadgetbook.frame"
# A readiness check the kubelet makes itself (an HTTP GET, no process started in the pod), on a
# port of its own that answers nothing else.
HEALTH_PATH = "/healthz"
# The node's kernel BTF, which a client compiles programs of one's own against: its hash and architecture
# (JSON), and the raw BTF (bytes), fetched once per hash.
BTF_PATH, BTF_RAW_PATH = "/btf", "/btf/vmlinux"
# The node's Jupyter kernels (%%node): root on the node, so only for a caller who may trace the whole host,
# who gets the token of the server's own kernel API here (JSON {"token": ...}).
KERNEL_ACCESS_PATH = "/kernel-access"

# A run over one websocket. Client -> node: START (gadget, params, container_ids or host, ring_size,
# include_self), ADD (container_ids that joined), STOP. Node -> client: STARTED (node, clock), STATS
# (events, lost), NAMES (mount namespace -> container id, before the frames that need them), then END
# or ERROR (message, lost); frames travel as binary messages in between.
START, ADD, STOP = "start", "add", "stop"
STARTED, STATS, NAMES, END, ERROR = "started", "stats", "names", "end", "error"
# Who asks: the caller's own Kubernetes bearer token, which the node checks with the API server.
AUTHORIZATION = "Authorization"
# A START may carry "program" (a program of one's own: kind, name, record, base64 object). Its maps travel
# as frames too, whose header names the table ({"table": NAME}); event frames have none.

_LEN = struct.Struct("<I")


def auth_header(token: str) -> str:
    return f"Bearer {token}"


def bearer(header: str | None) -> str:
    """The token of an `Authorization: Bearer ...` (or `token ...`) header; "" when there is none."""
    scheme, _, value = (header or "").strip().partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") else ""


@dataclass
class Frame:
    """One binary message: a small JSON header and named columns (numpy arrays, Coded, or lists of text)."""

    header: dict = field(default_factory=dict)
    columns: dict[str, np.ndarray | Coded | list] = field(default_factory=dict)
    # The mount namespace of each row (not sent): the node names the containers behind them first.
    mntns: np.ndarray | None = field(default=None, compare=False)

    def nbytes(self) -> int:
        return sum(getattr(v, "nbytes", 0) for v in self.columns.values())

    def take(self, index: np.ndarray) -> Frame:
        """The rows at index (a mask or positions) of a frame whose columns are all one row each."""
        pick = np.flatnonzero(index) if index.dtype == bool else index
        cols = {k: v.take(pick) if hasattr(v, "take") else [v[i] for i in pick.tolist()]
                for k, v in self.columns.items()}
        return Frame(self.header, cols, None if self.mntns is None else self.mntns[pick])


def pack(frame: Frame, level: int = 1) -> bytes:
    """The frame as bytes: [u32 length][JSON: header, column layouts][zstd of the columns' bytes].

    Arrays travel as their raw memory with numpy's own dtype description (structured event records
    too), so the receiver rebuilds them without copying field by field."""
    import zstandard

    layout = []
    buffers = []
    for name, value in frame.columns.items():
        if isinstance(value, Coded):
            codes = np.ascontiguousarray(value.codes)
            layout.append({"name": name, "coded": [str(c) for c in value.categories.tolist()],
                           "dtype": np.lib.format.dtype_to_descr(codes.dtype), "shape": list(codes.shape)})
            buffers.append(codes)
        elif isinstance(value, np.ndarray) and value.dtype != object:
            arr = np.ascontiguousarray(value)
            layout.append({"name": name, "dtype": np.lib.format.dtype_to_descr(arr.dtype), "shape": list(arr.shape)})
            buffers.append(arr)
        else:  # text (profile's named stacks): small, as JSON
            layout.append({"name": name, "text": [str(v) for v in list(value)]})
    head = json.dumps({"header": frame.header, "columns": layout}, separators=(",", ":")).encode()
    compressor = zstandard.ZstdCompressor(level=level).compressobj()
    # As bytes: a memoryview of datetime or structured arrays cannot be cast, a uint8 view of them can.
    body = [compressor.compress(b.reshape(-1).view(np.uint8).data) for b in buffers if b.nbytes]
    body.append(compressor.flush())
    return b"".join([_LEN.pack(len(head)), head, *body])


def unpack(data: bytes | memoryview) -> Frame:
    """The frame `pack` made; arrays are views of one decompressed buffer."""
    import zstandard

    view = memoryview(data)
    (n,) = _LEN.unpack_from(view)
    meta = json.loads(bytes(view[_LEN.size:_LEN.size + n]))
    rest = view[_LEN.size + n:]
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(rest) if len(rest) else b""
    columns: dict[str, np.ndarray | Coded | list] = {}
    pos = 0
    for col in meta["columns"]:
        if "text" in col:
            text = np.empty(len(col["text"]), dtype=object)
            text[:] = col["text"]
            columns[col["name"]] = text
            continue
        dtype = np.lib.format.descr_to_dtype(_tuples(col["dtype"]))
        shape = tuple(col["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        arr = np.frombuffer(raw, dtype=dtype, count=count, offset=pos).reshape(shape)
        pos += count * dtype.itemsize
        if "coded" in col:
            categories = np.empty(len(col["coded"]), dtype=object)
            categories[:] = col["coded"]
            columns[col["name"]] = Coded(arr.astype(np.int32, copy=False), categories)
        else:
            columns[col["name"]] = arr
    return Frame(meta["header"], columns)


def _tuples(descr):
    """JSON turned the dtype description's tuples into lists: numpy wants them back."""
    if isinstance(descr, list):
        return [tuple(_tuples(x) for x in field) if isinstance(field, list) else field for field in descr]
    return descr
