"""Coded columns (integer codes into distinct values) and fast factorizing of raw event fields."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Odd 64-bit multipliers that mix the words of a wide field into one hash.
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93],
                dtype=np.uint64)


@dataclass(frozen=True)
class Coded:
    """A column as codes into distinct values: what a pandas Categorical holds, without pandas."""

    codes: np.ndarray  # int32, one per row
    categories: np.ndarray  # distinct values

    def __len__(self) -> int:
        return len(self.codes)

    def values(self) -> np.ndarray:
        return self.categories[self.codes]

    def take(self, index: np.ndarray) -> Coded:
        return Coded(self.codes[index], self.categories)

    @staticmethod
    def concat(parts: Sequence[Coded]) -> Coded:
        """One Coded over all parts, with the union of their categories."""
        if len(parts) == 1:
            return parts[0]
        index: dict = {}
        remapped = []
        for part in parts:
            remap = np.array([index.setdefault(v, len(index)) for v in part.categories.tolist()], dtype=np.int32)
            remapped.append(remap[part.codes] if len(remap) else part.codes)
        categories = np.empty(len(index), dtype=parts[0].categories.dtype)
        categories[:] = list(index)
        return Coded(np.concatenate(remapped), categories)


def words(values: np.ndarray) -> np.ndarray:
    """A fixed-width field (bytes, addresses, numbers) as rows of 8-byte words."""
    n = len(values)
    if values.dtype.kind in "iub" and values.ndim == 1:
        return values.astype(np.uint64).reshape(n, 1)
    width = values.dtype.itemsize * int(np.prod(values.shape[1:], dtype=np.int64))
    raw = np.ascontiguousarray(values).view(np.uint8).reshape(n, width)
    if width % 8:
        padded = np.zeros((n, width + (-width % 8)), dtype=np.uint8)
        padded[:, :width] = raw
        raw = padded
    return raw.view(np.uint64)


def _hash(w: np.ndarray) -> np.ndarray:
    """One 64-bit hash per row of words (xor, then an odd multiply: each step is a bijection)."""
    h = w[:, 0] * _MIX[0]
    with np.errstate(over="ignore"):
        for j in range(1, w.shape[1]):
            np.bitwise_xor(h, w[:, j], out=h)
            np.multiply(h, _MIX[j % len(_MIX)], out=h)
    return h


def _factorize_ints(keys: np.ndarray) -> np.ndarray:
    # A hash table (pandas) is several times faster than sorting; use it when
    # pandas is loaded anyway (notebooks, DataFrames), and sort otherwise (the
    # terminal, where batches are small and pandas would only cost memory).
    # getattr, not the module: another thread may be halfway through importing pandas.
    factorize_fn = getattr(sys.modules.get("pandas"), "factorize", None)
    if factorize_fn is not None and len(keys) > 4096:
        return factorize_fn(keys)[0].astype(np.int32, copy=False)
    _, inverse = np.unique(keys, return_inverse=True)
    return inverse.reshape(-1).astype(np.int32, copy=False)


def factorize_rows(*fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, index of each distinct row's first occurrence) over one or more fields taken together."""
    n = len(fields[0])
    if n == 0:
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
    w = np.hstack([words(f) for f in fields]) if len(fields) > 1 else words(fields[0])
    single = w.shape[1] == 1
    codes = _factorize_ints(w[:, 0] if single else _hash(w))
    first = np.empty(int(codes.max()) + 1, dtype=np.int64)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)
    if not single and not _rows_match(w[first], codes, w):
        # Two different rows shared a hash: fall back to the exact sort.
        _, first, inverse = np.unique(w, axis=0, return_index=True, return_inverse=True)
        codes = inverse.reshape(-1).astype(np.int32)
    return codes, first


def _rows_match(uniques: np.ndarray, codes: np.ndarray, w: np.ndarray, step: int = 8192) -> bool:
    """Every row equals the distinct row its code names (checked in slices: no full-size temporaries)."""
    return all(np.array_equal(uniques[codes[i:i + step]], w[i:i + step]) for i in range(0, len(w), step))


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values) of a 1-D array of numbers or fixed-width bytes."""
    codes, first = factorize_rows(values)
    return codes, values[first]


def coded(values: np.ndarray, fn, out: str = "O") -> Coded:
    """Factorize, apply fn once per distinct value, and merge values that fn maps alike."""
    codes, uniques = factorize(values)
    mapped = [fn(u) for u in uniques.tolist()]
    index: dict = {}
    remap = np.array([index.setdefault(m, len(index)) for m in mapped], dtype=np.int32)
    categories = np.empty(len(index), dtype=out)
    categories[:] = list(index)
    return Coded(remap[codes] if len(remap) else codes, categories)
