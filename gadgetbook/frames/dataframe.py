"""Decoded column batches -> one pandas DataFrame with the project's dtypes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gadgetbook.frames.decode import CATEGORICAL


def to_dataframe(batches: list[dict[str, np.ndarray]], columns: list[str], attrs: dict[str, Any],
                 categorical: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Concatenate batches; low-cardinality strings become categoricals, other strings `str`."""
    cats = CATEGORICAL | categorical
    data = {}
    for name in columns:
        parts = [b[name] for b in batches]
        values = np.concatenate(parts) if parts else np.empty(0, dtype="O")
        if values.dtype == object:
            data[name] = pd.Categorical(values) if name in cats else pd.array(values, dtype="str")
        else:
            data[name] = values
    df = pd.DataFrame(data, columns=columns)
    df.attrs.update(attrs)
    return df
