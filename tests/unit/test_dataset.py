"""Runs saved as a Parquet dataset while they go: files by node and hour, readable as they are by pandas,
DuckDB and Polars, and replayed whole or filtered without reading what the filter leaves out."""

import json

import numpy as np
import pandas as pd
import pytest

import gadgetbook
from gadgetbook.errors import GadgetError
from gadgetbook.frames.coded import Coded
from gadgetbook.frames.dataset import DatasetWriter, read_dataset

COLUMNS = ["timestamp", "node", "namespace", "pod", "container", "pid", "comm", "path"]
HOUR = np.datetime64("2026-12-01T17:00:00", "ns")


def _coded(values):
    cats, codes = np.unique(np.array(values, dtype=object), return_inverse=True)
    return Coded(codes.astype(np.int32), cats.astype(object))


def _batch(start_s: float, n: int, node: str, pods: list[str]):
    ts = HOUR + (np.arange(n) * 1e9 / 100 + start_s * 1e9).astype("timedelta64[ns]")
    pod = [pods[i % len(pods)] for i in range(n)]
    return {"timestamp": ts, "node": _coded([node] * n), "namespace": _coded(["shop"] * n), "pod": _coded(pod),
            "container": _coded(["app"] * n), "pid": np.arange(n, dtype=np.uint32),
            "comm": _coded(["cat"] * n), "path": _coded([f"/f{i % 7}" for i in range(n)])}


@pytest.fixture
def dataset(tmp_path):
    """Two nodes, two hours (from 17:30 on, 400 s apart), 8000 rows; files rolled every 1000 rows."""
    path = tmp_path / "run"
    w = DatasetWriter(path, COLUMNS, {"gadget": "opensnoop", "events": 0}, roll_rows=1000, chunk_rows=500)
    for i in range(8):
        w.write(_batch(1800 + i * 400, 1000, f"node-{i % 2}", ["api-1", "web-1"]))
    w.close({"gadget": "opensnoop", "events": 8000})
    return path


def test_layout_is_hive_partitions_with_facts(dataset):
    files = sorted(p.relative_to(dataset).parts[:2] for p in dataset.rglob("*.parquet"))
    assert {f[0] for f in files} == {"node=node-0", "node=node-1"}
    assert {f[1] for f in files} == {"hour=2026-12-01T17", "hour=2026-12-01T18"}
    assert not list(dataset.rglob(".*"))  # no file left half-written
    facts = json.loads((dataset / "_gadgetbook.json").read_text())
    assert facts["attrs"]["events"] == 8000 and facts["columns"] == COLUMNS


def test_other_readers_read_it_as_it_is(dataset):
    import duckdb
    import polars as pl

    assert len(pd.read_parquet(dataset)) == 8000
    n, hours = duckdb.sql(f"select count(*), count(distinct hour) from read_parquet('{dataset}/**/*.parquet', "
                          "hive_partitioning=true)").fetchall()[0]
    assert (n, hours) == (8000, 2)
    by_node = pl.scan_parquet(f"{dataset}/**/*.parquet", hive_partitioning=True).group_by("node").len().collect()
    assert sorted(by_node["len"].to_list()) == [4000, 4000]


def test_spark_reads_it_as_it_is(dataset):
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[1]").appName("gadgetbook-test").config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    try:
        df = spark.read.parquet(str(dataset))
        assert df.count() == 8000
        assert sorted(r["node"] for r in df.select("node").distinct().collect()) == ["node-0", "node-1"]
        first = df.orderBy("timestamp").first()
        assert str(first["timestamp"]) == "2026-12-01 17:30:00" and first["pod"] == "api-1"
    finally:
        spark.stop()


def test_replay_whole_and_filtered(dataset):
    whole = gadgetbook.replay(dataset, show=False)
    assert len(whole) == 8000 and list(whole.columns) == COLUMNS and whole.attrs["events"] == 8000
    assert whole["timestamp"].is_monotonic_increasing and isinstance(whole["pod"].dtype, pd.CategoricalDtype)
    start, end = pd.Timestamp("2026-12-01T18:00:00"), pd.Timestamp("2026-12-01T18:05:00")
    part = gadgetbook.replay(dataset, show=False, columns=["timestamp", "pod", "path"], start=start, end=end,
                             pods=["api-1"])
    expected = whole[(whole.timestamp >= start) & (whole.timestamp < end) & (whole.pod == "api-1")]
    assert list(part.columns) == ["timestamp", "pod", "path"]
    assert len(part) > 0 and part["timestamp"].tolist() == expected["timestamp"].tolist()


def test_a_filter_prunes_files_by_partition(dataset):
    import pyarrow.dataset as ds

    frags = ds.dataset(dataset, format="parquet", partitioning="hive").get_fragments(
        filter=(ds.field("hour") == "2026-12-01T17") & (ds.field("node") == "node-0"))
    wanted = {f.path for f in frags}
    assert wanted and wanted < {str(p) for p in dataset.rglob("*.parquet")}
    df = read_dataset(dataset, nodes=["node-0"], end=pd.Timestamp("2026-12-01T18:00:00"))
    assert set(df["node"].astype(str)) == {"node-0"} and df["timestamp"].max() < pd.Timestamp("2026-12-01T18:00")


def test_unknown_column_and_used_folder_are_one_sentence(dataset):
    with pytest.raises(GadgetError, match="no column nope; its columns: timestamp"):
        read_dataset(dataset, columns=["nope"])
    with pytest.raises(GadgetError, match="exists and is not an empty folder"):
        DatasetWriter(dataset, COLUMNS, {})
