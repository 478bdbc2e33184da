"""Each gadget's spec is declared once and read from its object's BTF plus its metadata."""

import pytest

from gadgetbook import catalog
from gadgetbook.frames.formats import FORMATS


@pytest.mark.parametrize("name", ["execsnoop", "opensnoop", "bindsnoop"])
def test_spec_reads_event_layout_from_btf(name):
    spec = catalog.get(name)
    dtype = spec.event_dtype
    assert dtype.names[:7] == ("timestamp_raw", "mntns_id", "pid", "tid", "uid", "gid", "comm")
    assert dtype["comm"] == "S16"
    for col in spec.event_columns:
        assert col.format is None or col.format in FORMATS
        assert col.field in dtype.names
    # Every column the metadata documents exists in the struct: no stale docs.
    assert set(spec.column_meta) <= set(dtype.names)


def test_opensnoop_columns():
    cols = [c.name for c in catalog.get("opensnoop").event_columns if not c.hidden]
    assert cols == ["fd", "error", "flags", "mode", "path"]
    assert catalog.get("opensnoop").event_dtype.itemsize == 320
