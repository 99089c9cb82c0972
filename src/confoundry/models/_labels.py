"""What a step works on: an :class:`AuditData` passed through as is, or labels alone.

A step given precomputed ``scores=`` needs no model inputs: ``X`` may then be ``None`` and only
the labels (and metadata) are validated, by the same rules :class:`~confoundry.AuditData` applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data import AuditData, ensure_data
from ..data._coerce import coerce_metadata as _coerce_metadata
from ..data._coerce import coerce_y as _coerce_y
from ..data._coerce import metadata_kind as _metadata_kind


@dataclass(frozen=True, eq=False)
class LabelData:
    """Labels and metadata without model inputs (duck-types the parts of AuditData a step reads).

    Examples
    --------
    >>> d = step_data(None, [0, 1, 1, 0])
    >>> d.task, d.n_samples, d.is_tabular, d.feature_names
    ('binary', 4, False, [])
    """

    y: np.ndarray
    task: str
    classes: np.ndarray | None
    n_samples: int
    index: pd.Index
    metadata: pd.DataFrame | None = None
    metadata_kinds: dict[str, str] = field(default_factory=dict)
    X: Any = None
    is_tabular: bool = False
    feature_names: list[str] = field(default_factory=list)
    feature_kinds: dict[str, str] = field(default_factory=dict)


def step_data(X: Any, y: Any = None, metadata: Any = None, *, task: str | None = None,
              needs_y: bool = True, x_name: str = "X", y_name: str = "y") -> AuditData | LabelData:
    """``ensure_data(X, y, metadata)``; with ``X=None``, the labels (and metadata) alone.

    Never builds a second :class:`AuditData` from one: an AuditData is passed through (or viewed
    with new labels by :func:`confoundry.data.ensure_data`).
    """
    if X is None:
        if y is None:
            raise TypeError(f"{x_name} is None and {y_name} is None; expected model inputs, or "
                            f"labels {y_name}= beside precomputed scores=.")
        n = len(y) if not hasattr(y, "shape") else int(np.shape(y)[0])
        index = y.index if isinstance(y, pd.Series) else pd.RangeIndex(n)
        y_arr, task_, classes = _coerce_y(y, n, index, task)
        meta = _coerce_metadata(metadata, n, index, None)
        kinds = {} if meta is None else {c: _metadata_kind(meta[c]) for c in meta.columns}
        return LabelData(y_arr, task_, classes, n, index, meta, kinds)
    data = ensure_data(X, y, metadata, task=task)
    if needs_y and data.y is None:
        if isinstance(X, AuditData):
            raise TypeError(f"{x_name} is an AuditData without y and {y_name} is None; expected "
                            "labels or targets.")
        raise TypeError(f"{y_name} is None; expected labels or targets, one per row of "
                        f"{x_name}.")
    return data
