"""Decoded column batches -> one pandas DataFrame with the project's dtypes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gadgetbook.frames.coded import Coded
from gadgetbook.frames.decode import CATEGORICAL


def to_dataframe(batches: list[dict[str, np.ndarray]], columns: list[str], attrs: dict[str, Any],
                 categorical: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Concatenate batches; low-cardinality strings become categoricals, other strings `str`."""
    cats = CATEGORICAL | categorical
    from gadgetbook.run_handle import concat

    merged = concat(batches, columns)
    data = {}
    for name in columns:
        values = merged[name]
        if isinstance(values, Coded):
            if name in cats:
                data[name] = pd.Categorical.from_codes(values.codes, categories=pd.Index(values.categories, dtype="str")
                                                       if values.categories.dtype == object else values.categories)
            else:
                data[name] = pd.array(values.categories, dtype="str").take(values.codes)
        else:
            data[name] = values
    df = pd.DataFrame(data, columns=columns)
    df.attrs.update(attrs)
    return df
