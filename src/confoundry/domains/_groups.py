"""Turning columns into domains: levels of categorical columns, quantile bins of continuous ones.

Shared by :func:`split_domains` (domains given by the user) and :func:`discover_slices` (the
conditions of the lattice search).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data._validation import check_positive_int, describe


def fmt_number(v: Any) -> str:
    """Readable text of a level or a bin edge: ``1`` not ``1.0``, 4 significant digits."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if f == round(f) and abs(f) < 1e15:
            return str(int(round(f)))
        return f"{f:.4g}"
    return str(v)


@dataclass(frozen=True)
class Coded:
    """One column turned into integer codes ``0..k-1`` with a readable condition per code.

    ``kind`` is ``"levels"`` (each code is one value) or ``"bins"`` (each code is a quantile
    bin; ``edges`` holds the inner edges, code ``c`` is ``edges[c-1] <= x < edges[c]``).
    """

    name: str
    codes: np.ndarray
    labels: tuple[str, ...]
    kind: str
    values: tuple[Any, ...] = ()
    edges: tuple[float, ...] = ()

    @property
    def n_levels(self) -> int:
        return len(self.labels)

    def encode(self, column: Any) -> np.ndarray:
        """Codes of new values of the same column (``-1`` for a level never seen)."""
        col = np.asarray(column)
        if self.kind == "bins":
            return np.searchsorted(np.asarray(self.edges), col.astype(float), side="right")
        lookup = {v: i for i, v in enumerate(self.values)}
        return np.array([lookup.get(v, -1) for v in pd.Series(col).tolist()], dtype=np.int64)


def bin_quantiles(name: str, x: np.ndarray, bins: int) -> Coded:
    """Quantile bins of a continuous column, empty bins dropped; readable conditions.

    Examples
    --------
    >>> c = bin_quantiles("age", np.arange(100.0), 4)
    >>> c.labels
    ('age < 24.75', '24.75 <= age < 49.5', '49.5 <= age < 74.25', 'age >= 74.25')
    >>> np.bincount(c.codes).tolist()
    [25, 25, 25, 25]
    """
    x = np.asarray(x, dtype=float)
    inner = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
    inner = inner[(inner > x.min())]  # an edge at the minimum would make an empty first bin
    codes = np.searchsorted(inner, x, side="right")
    labels = []
    for c in range(len(inner) + 1):
        if c == 0:
            labels.append(f"{name} < {fmt_number(inner[0])}" if len(inner) else f"{name} = any")
        elif c == len(inner):
            labels.append(f"{name} >= {fmt_number(inner[-1])}")
        else:
            labels.append(f"{fmt_number(inner[c - 1])} <= {name} < {fmt_number(inner[c])}")
    return Coded(name, codes.astype(np.int64), tuple(labels), "bins", edges=tuple(inner.tolist()))


def code_levels(name: str, x: Any) -> Coded:
    """Each distinct value of a categorical column is one code (sorted where sortable)."""
    from .._utils import natural_order

    s = pd.Series(np.asarray(x, dtype=object) if not isinstance(x, pd.Series) else x)
    uniques = natural_order(s.dropna().unique().tolist())  # 1, 2, ..., 10: never 1, 10, 2
    codes = pd.Categorical(s, categories=uniques).codes
    values = tuple(uniques)
    labels = tuple(f"{name} = {fmt_number(v)}" for v in values)
    return Coded(name, codes.astype(np.int64), labels, "levels", values=values)


def _more_values_than(x: np.ndarray, k: int) -> bool:
    """Whether ``x`` has more than ``k`` distinct values (a sample decides it when it can:
    sorting a million values to count a handful is most of the cost of coding a column)."""
    if len(x) > 10_000 and len(np.unique(x[:10_000])) > k:
        return True
    return len(np.unique(x)) > k


def code_column(name: str, x: Any, kind: str, bins: int) -> Coded:
    """Levels for categorical/binary columns, quantile bins for continuous ones."""
    if kind == "continuous" and _more_values_than(np.asarray(x, dtype=float), bins):
        return bin_quantiles(name, np.asarray(x, dtype=float), bins)
    return code_levels(name, x)


# ----------------------------------------------------------------------- by -> domains
def _column(data: Any, name: str, bins: int) -> Coded:
    if data.metadata is not None and name in data.metadata.columns:
        return code_column(name, data.metadata[name], data.metadata_kinds[name], bins)
    if data.is_tabular and name in data.feature_names:
        return code_column(name, data.X[name].to_numpy(), data.feature_kinds[name], bins)
    meta = [] if data.metadata is None else list(data.metadata.columns)
    raise ValueError(
        f"by={name!r} is neither a metadata column {describe(meta)} nor a feature "
        f"{describe(list(data.feature_names))}; expected one of them."
    )


def resolve_domains(
    by: Any, data: Any, *, bins: int
) -> tuple[list[str], list[np.ndarray], list[str]]:
    """Domain names, their row positions and the columns that define them.

    ``data`` is an :class:`~confoundry.AuditData` (or the labels-only stand-in of a step given
    precomputed scores); it is read, never rebuilt.

    ``by`` is a metadata Series or 1-D array of labels, a column name (metadata or feature), a
    list of names or a DataFrame (their intersections), or a mapping name -> boolean mask.
    """
    bins = check_positive_int(bins, "bins", minimum=2)
    n = data.n_samples
    if isinstance(by, Mapping):
        return _from_masks(by, n)
    coded: list[Coded]
    if isinstance(by, str):
        coded = [_column(data, by, bins)]
    elif isinstance(by, pd.DataFrame):
        meta = _aligned_metadata(by, data)
        coded = [code_column(c, meta[c], _kind(meta[c]), bins) for c in meta.columns]
    elif isinstance(by, pd.Series):
        meta = _aligned_metadata(by.to_frame(name=by.name if by.name is not None else "domain"),
                                 data)
        c = meta.columns[0]
        coded = [code_column(c, meta[c], _kind(meta[c]), bins)]
    elif isinstance(by, Sequence) and not isinstance(by, (bytes, np.ndarray)) and by and all(
            isinstance(b, str) for b in by):
        if len(set(by)) != len(by):
            raise ValueError(f"by={list(by)!r} names a column twice; expected distinct names.")
        coded = [_column(data, b, bins) for b in by]
    elif isinstance(by, (np.ndarray, list, tuple)) or hasattr(by, "__array__"):
        arr = np.asarray(by)
        if arr.ndim != 1 or len(arr) != n:
            raise ValueError(f"by={describe(by)} is not a 1-D array of {n} domain labels; "
                             "expected one label per row of X.")
        if arr.dtype == bool:
            return _from_masks({"True": arr, "False": ~arr}, n)
        meta = _aligned_metadata(pd.DataFrame({"domain": arr}), data, reindex=True)
        coded = [code_column("domain", meta["domain"], _kind(meta["domain"]), bins)]
    else:
        raise TypeError(
            f"by has type {type(by).__name__}; expected a metadata Series, a column name, a list "
            "of column names, a DataFrame or a mapping of domain name to boolean mask."
        )
    return _intersections(coded)


def _kind(s: pd.Series) -> str:
    from ..data._coerce import metadata_kind as _metadata_kind

    return _metadata_kind(s)


def _aligned_metadata(frame: pd.DataFrame, data: Any, reindex: bool = False) -> pd.DataFrame:
    """Validate a DataFrame of domain labels with AuditData's rules for metadata (length, index,
    missing or infinite values, a single level), without building another AuditData."""
    n, index = data.n_samples, data.index
    if reindex:
        frame = frame.set_axis(index)
    if len(frame) != n:
        raise ValueError(f"metadata has {len(frame)} rows but X has {n}; expected one row per "
                         "sample.")
    if frame.columns.duplicated().any():
        dups = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise ValueError(f"metadata has duplicate column names {dups}; expected unique names.")
    if not frame.index.equals(index):
        if isinstance(index, pd.RangeIndex):
            frame = frame.set_axis(index)  # positional input (X was an array)
        elif index.has_duplicates:
            raise ValueError("X's index has duplicate labels; cannot align metadata to it.")
        elif set(frame.index) == set(index):
            raise ValueError("metadata's index holds the same samples as X's but in a different "
                             "order; expected the same order (use metadata.loc[X.index]).")
        else:
            raise ValueError(
                "metadata's index does not match X's index (e.g. metadata has "
                f"{describe(list(frame.index[:3]))}, X has {describe(list(index[:3]))}); "
                "expected the same samples in the same order.")
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    for col in frame.columns:
        s = frame[col]
        if not col.strip():
            raise ValueError("metadata has a column with an empty name; expected named columns.")
        n_missing = int(s.isna().sum())
        if n_missing:
            raise ValueError(
                f"metadata column {col!r} has {n_missing} missing value(s); expected a value for "
                "every sample (fill them with an explicit level such as 'unknown').")
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) \
                and not np.all(np.isfinite(s.to_numpy(dtype=float))):
            raise ValueError(f"metadata column {col!r} has infinite values; expected finite "
                             "numbers.")
        if s.nunique() < 2:
            raise ValueError(
                f"metadata column {col!r} has a single level ({s.iloc[0]!r}); expected at least "
                "two levels, since a constant cannot confound anything (drop the column).")
    return frame


def _intersections(coded: list[Coded]) -> tuple[list[str], list[np.ndarray], list[str]]:
    codes = np.column_stack([c.codes for c in coded])
    combos, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(combos) + 1))
    names, rows = [], []
    for k, combo in enumerate(combos):
        names.append(" AND ".join(c.labels[v] for c, v in zip(coded, combo)))
        rows.append(np.sort(order[bounds[k]:bounds[k + 1]]))
    return names, rows, [c.name for c in coded]


def _from_masks(by: Mapping, n: int) -> tuple[list[str], list[np.ndarray], list[str]]:
    if not by:
        raise ValueError("by is an empty mapping; expected at least one domain name -> mask.")
    names, rows = [], []
    for name, mask in by.items():
        m = np.asarray(mask.to_numpy() if hasattr(mask, "to_numpy") else mask)
        if m.dtype != bool or m.shape != (n,):
            raise ValueError(
                f"by[{name!r}]={describe(mask)} is not a boolean mask of {n} rows; expected "
                "one True/False per row of X."
            )
        if not m.any():
            raise ValueError(f"by[{name!r}] selects no rows; expected a non-empty domain.")
        names.append(str(name))
        rows.append(np.flatnonzero(m))
    return names, rows, []
