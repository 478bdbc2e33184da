"""Recordings: round trip of dtypes and attrs, and clear words for files that are not recordings."""

import pandas as pd
import pytest

import gadgetbook
from gadgetbook.errors import GadgetError
from gadgetbook.frames.recording import save


def _frame():
    df = pd.DataFrame({
        "timestamp": pd.to_datetime([1, 2], unit="s").astype("datetime64[ns]"),
        "comm": pd.Categorical(["a", "b"]),
        "pid": pd.array([1, 2], dtype="uint32"),
        "path": pd.array(["/x", "/y"], dtype="str"),
    })
    df.attrs.update({"gadget": "opensnoop", "params": {"failed": True}, "lost": {"n": 0}, "events": 2})
    return df


def test_round_trip(tmp_path):
    df = _frame()
    save(df, tmp_path / "r.parquet")
    again = gadgetbook.replay(tmp_path / "r.parquet")
    pd.testing.assert_frame_equal(again, df)
    assert again.attrs == df.attrs


def test_missing_file(tmp_path):
    with pytest.raises(GadgetError, match="No recording at"):
        gadgetbook.replay(tmp_path / "none.parquet")


def test_foreign_parquet(tmp_path):
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(GadgetError, match="not a gadgetbook recording"):
        gadgetbook.replay(tmp_path / "x.parquet")


def test_not_parquet(tmp_path):
    (tmp_path / "x.parquet").write_text("hello")
    with pytest.raises(GadgetError, match="is not a Parquet file"):
        gadgetbook.replay(tmp_path / "x.parquet")
