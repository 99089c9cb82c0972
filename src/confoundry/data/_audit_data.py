"""``AuditData``: the data contract of confoundry."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._coerce import (
    coerce_metadata,
    coerce_X,
    coerce_y,
    infer_feature_kinds,
    metadata_kinds_of,
    take_rows,
)
from ._sources import (
    KIND_SAMPLE_ROWS,
    MATERIALISE_BYTES,
    LazyRows,
    RowSource,
    as_source,
)
from ._validation import check_task, describe

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]



class AuditData:
    """Aligned, validated X, y and metadata: the single place where bad input becomes an error.

    Parameters
    ----------
    X : DataFrame, ndarray, torch.Tensor, or a lazy input
        Model inputs, ``n_samples`` rows. Tabular inputs are 2-D; image or sequence tensors may
        have more dimensions (the first is always the sample axis). Lazy inputs are kept by
        reference and read in batches, never copied whole: a map-style torch ``Dataset``
        yielding ``x`` or ``(x, y)``, a ``DataLoader`` (``shuffle=False``; its batch size,
        workers and ``collate_fn`` are used), an ``anndata.AnnData`` (sparse stays sparse), a
        scipy sparse matrix, a ``numpy.memmap``, an ``h5py.Dataset`` or a ``zarr.Array``
        (see ``docs/inputs.md``).
    y : array-like of shape (n_samples,), str, optional
        Labels (binary ``{0, 1}``, multiclass ``0..K-1``) or regression targets. For an AnnData,
        the name of an ``obs`` column; for a Dataset yielding ``(x, y)``, ``None`` takes the
        labels from the dataset.
    metadata : DataFrame or Series, optional
        Variables the model never saw (site, batch, scanner, sex, ...), one row per sample.
        When both ``X`` and ``metadata`` are DataFrames, their indexes must match. For an
        AnnData, a list of ``obs`` column names.
    feature_names : sequence of str, optional
        Names for ndarray/tensor columns (default ``x0, x1, ...``; DataFrame columns are kept).
    feature_kinds : mapping of str to {"continuous", "binary", "categorical"}, optional
        Overrides the inferred kind of the named features.
    metadata_kinds : mapping of str to {"categorical", "continuous"}, optional
        Overrides the inferred kind of the named metadata columns (integer codes with more than
        10 levels, e.g. a site number, are inferred continuous).
    task : {"binary", "multiclass", "regression"}, optional
        Overrides the inferred task.
    layer, obsm : str, optional
        AnnData only: audit ``adata.layers[layer]`` or the representation ``adata.obsm[obsm]``
        (e.g. ``"X_pca"``) instead of ``adata.X``.

    Attributes
    ----------
    X : DataFrame (tabular) or ndarray (images / sequences), float64 copy of the input; for a
        lazy input a :class:`~confoundry.data._sources.LazyRows` (``X[rows]`` reads rows)
    source : RowSource or None
        How a lazy input is read (None for in-memory inputs).
    lazy : bool
    y : ndarray or None
    metadata : DataFrame or None, with ``X``'s index
    feature_names : list of str
    feature_kinds : dict of str to str
    metadata_kinds : dict of str to {"categorical", "continuous"}
    task : str or None
    classes : ndarray or None
    X_source, y_source : the objects passed as ``X`` and ``y``, by reference (for ``train_fn``)

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"age": [70.0, 30, 50, 60], "asthma": [1, 0, 0, 1]})
    >>> d = AuditData(X, [1, 0, 0, 1], metadata=pd.DataFrame({"site": ["a", "b", "a", "b"]}))
    >>> d.task, d.feature_kinds["asthma"], d.n_samples
    ('binary', 'binary', 4)
    >>> AuditData(X, [0, 1, 2, 2], task="binary")
    Traceback (most recent call last):
    ...
    ValueError: y has labels [2] outside {0, 1} for task='binary'; ...
    """

    def __init__(
        self,
        X: Any,
        y: Any = None,
        metadata: Any = None,
        *,
        feature_names: Sequence[str] | None = None,
        feature_kinds: Mapping[str, str] | None = None,
        metadata_kinds: Mapping[str, str] | None = None,
        task: str | None = None,
        layer: str | None = None,
        obsm: str | None = None,
    ) -> None:
        task = check_task(task)
        #: the user's own objects, by reference (never copied, never modified): a retraining
        #: control hands them to ``train_fn`` as the user gave them.
        self.X_source, self.y_source = X, y
        self.source: RowSource | None = None
        self.lazy = False
        if (layer is not None or obsm is not None or isinstance(X, np.memmap)
                or (X is not None and not isinstance(X, (pd.DataFrame, np.ndarray)))):
            src = as_source(X, feature_names=feature_names, layer=layer, obsm=obsm)
            if src is not None:
                self._init_lazy(src, X, y, metadata, feature_kinds, metadata_kinds, task)
                return
        X_arr, index, names = coerce_X(X, feature_names)
        self.n_samples = int(X_arr.shape[0])
        self.is_tabular = X_arr.ndim == 2
        self.feature_names = names
        if self.is_tabular:
            self.X = pd.DataFrame(X_arr, index=index, columns=names)
        else:
            self.X = X_arr
        self.index = index
        self.feature_kinds = infer_feature_kinds(X_arr, names, feature_kinds) if self.is_tabular else {}
        if y is not None:
            self.y, self.task, self.classes = coerce_y(y, self.n_samples, index, task,
                                                       indexed=isinstance(X, pd.DataFrame))
        else:
            self.y, self.task, self.classes = None, task, None
        self.metadata = coerce_metadata(metadata, self.n_samples, index, X)
        self.metadata_kinds = metadata_kinds_of(self.metadata, metadata_kinds)

    def _init_lazy(self, src: RowSource, X: Any, y: Any, metadata: Any,
                   feature_kinds: Mapping[str, str] | None,
                   metadata_kinds: Mapping[str, str] | None, task: str | None) -> None:
        """Validate a lazy input without copying it: rows are read in batches later."""
        self.source, self.lazy = src, True
        n = src.n_rows
        if n < 2:
            raise ValueError(f"X ({src.describe()}) has {n} row(s); expected at least 2 samples.")
        if src.is_tabular and src.feature_shape[0] == 0:
            raise ValueError(f"X ({src.describe()}) has zero columns; expected at least one "
                             "feature.")
        self.n_samples = n
        self.is_tabular = src.is_tabular
        self.feature_names = list(src.feature_names)
        self.index = src.index
        self.X = LazyRows(src)
        self.feature_kinds = {}
        if self.is_tabular:
            sample = src.read(np.arange(min(n, KIND_SAMPLE_ROWS)))
            self.feature_kinds = infer_feature_kinds(sample, self.feature_names, feature_kinds)
        adata = X if src.kind == "anndata" else None
        if adata is not None:
            y = _obs_column(adata, y, "y") if isinstance(y, str) else y
            if isinstance(metadata, str):
                metadata = [metadata]
            if isinstance(metadata, (list, tuple)):
                metadata = _obs_frame(adata, metadata)
        elif isinstance(y, str):
            raise TypeError(f"y={y!r} is a string, but X is {src.describe()}; a column name "
                            "is only understood for an AnnData (a column of adata.obs).")
        if y is None and getattr(src, "has_labels", False):
            y = src.labels()
        if y is not None:
            self.y_source = y
            self.y, self.task, self.classes = coerce_y(y, n, self.index, task)
        else:
            self.y, self.task, self.classes = None, task, None
        if metadata is not None and len(metadata) != n:
            raise ValueError(f"metadata has {len(metadata)} rows but X ({src.describe()}) has "
                             f"{n}; expected one row per sample.")
        self.metadata = coerce_metadata(metadata, n, self.index, None)
        self.metadata_kinds = metadata_kinds_of(self.metadata, metadata_kinds)

    # ------------------------------------------------------------------ views
    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def values(self) -> np.ndarray:
        """Model inputs as a float64 ndarray (a copy the caller may not share with the user)."""
        if self.lazy:
            return np.asarray(self.X)  # refused for a large lazy input (LazyRows.__array__)
        return self.X.to_numpy() if self.is_tabular else self.X

    @property
    def prevalence(self) -> float | None:
        if self.task != "binary" or self.y is None:
            return None
        return float(np.mean(self.y))

    def subset(self, rows: Any) -> AuditData:
        """A new ``AuditData`` on a subset of rows (boolean mask or positions)."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        new = object.__new__(AuditData)
        new.__dict__.update(self.__dict__)
        new.__dict__.pop("_fingerprint", None)
        if self.lazy:
            return self._lazy_subset(new, rows)
        new.X = self.X.iloc[rows] if self.is_tabular else self.X[rows]
        new.y = None if self.y is None else self.y[rows]
        new.metadata = None if self.metadata is None else self.metadata.iloc[rows]
        new.index = self.index[rows]
        new.n_samples = len(rows)
        new.X_source = take_rows(self.X_source, rows)
        new.y_source = None if self.y_source is None else take_rows(self.y_source, rows)
        return new

    def _lazy_subset(self, new: AuditData, rows: np.ndarray) -> AuditData:
        """Rows of a lazy input: read into memory (float64, as an in-memory input would be)
        when they take at most MATERIALISE_BYTES, else a lazy view of the same source."""
        src = self.source
        assert src is not None
        rows = rows.astype(np.int64)
        new.y = None if self.y is None else self.y[rows]
        new.metadata = None if self.metadata is None else self.metadata.iloc[rows]
        new.index = self.index[rows]
        new.n_samples = len(rows)
        new.X_source = src.user_rows(rows)
        new.y_source = new.y
        if len(rows) * src.row_size * 8 <= MATERIALISE_BYTES:
            arr = src.read(rows).astype(np.float64)
            new.X = (pd.DataFrame(arr, index=new.index, columns=self.feature_names)
                     if self.is_tabular else arr)
            new.source, new.lazy = None, False
            if new.X_source is None:
                new.X_source = new.X
            return new
        new.source = src.take(rows)
        new.X = LazyRows(new.source)
        return new

    def with_labels(self, y: Any = None, metadata: Any = None, *,
                    task: str | None = None) -> AuditData:
        """A view that shares ``X`` (no copy, not re-validated) with other labels or metadata.

        Only what is given is validated: ``y`` against the rows (and index) of ``X``, with
        ``task`` (default: this data's task); ``metadata`` the same way. ``None`` keeps this
        data's own.

        Examples
        --------
        >>> import numpy as np
        >>> d = AuditData(np.zeros((4, 2)), [0, 1, 0, 1])
        >>> v = d.with_labels([1.5, 2.0, 0.0, 3.0], task="regression")
        >>> v.X is d.X, v.task
        (True, 'regression')
        """
        new = object.__new__(AuditData)
        new.__dict__.update(self.__dict__)
        task = check_task(task)
        if y is not None:
            new.y, new.task, new.classes = coerce_y(
                y, self.n_samples, self.index, task or self.task,
                indexed=isinstance(self.X_source, pd.DataFrame))
            new.y_source = y
        elif task is not None and task != self.task:
            if self.y is None:
                new.task = task
            else:
                new.y, new.task, new.classes = coerce_y(self.y, self.n_samples, self.index, task)
        if metadata is not None:
            new.metadata = coerce_metadata(metadata, self.n_samples, self.index,
                                            self.X if self.is_tabular else None)
            new.metadata_kinds = metadata_kinds_of(new.metadata, None)
        return new

    def fingerprint(self) -> str:
        """SHA-256 of X, y and metadata (for the reproducibility record); a lazy input is
        hashed batch by batch, to the same digest as the same rows held in memory."""
        cached = self.__dict__.get("_fingerprint")
        if cached is not None:
            return cached
        h = hashlib.sha256()
        if self.lazy:
            rows = max(1, min(1024, 2**20 // max(self.source.row_size, 1)))  # ~8 MB blocks
            for _, _, batch in self.source.iter_batches(rows):
                h.update(np.ascontiguousarray(batch, dtype=np.float64).data)  # no bytes copy
        else:
            h.update(np.ascontiguousarray(self.values).tobytes())
        h.update(repr(self.feature_names).encode())
        if self.y is not None:
            h.update(np.ascontiguousarray(self.y).tobytes())
        if self.metadata is not None:
            h.update(pd.util.hash_pandas_object(self.metadata, index=False).to_numpy().tobytes())
        digest = h.hexdigest()
        if self.lazy:
            self._fingerprint = digest
        return digest

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n_samples": self.n_samples,
            "n_features": self.n_features,
            "task": self.task,
            "feature_kinds": dict(self.feature_kinds),
        }
        if self.task == "binary":
            out["n_positive"] = int(self.y.sum())
            out["prevalence"] = self.prevalence
        if self.metadata is not None:
            out["metadata"] = dict(self.metadata_kinds)
        return out

    def __repr__(self) -> str:
        meta = list(self.metadata.columns) if self.metadata is not None else None
        return (
            f"AuditData(n_samples={self.n_samples}, n_features={self.n_features}, "
            f"task={self.task!r}, metadata={meta})"
        )


# ---------------------------------------------------------------------- helpers
def _obs_column(adata: Any, name: str, arg: str) -> pd.Series:
    cols = [str(c) for c in adata.obs.columns]
    if name not in cols:
        raise ValueError(f"{arg}={name!r} is not a column of adata.obs; expected one of "
                         f"{describe(cols, 200)}.")
    s = adata.obs[name]
    if isinstance(s.dtype, pd.CategoricalDtype) and pd.api.types.is_numeric_dtype(
            s.cat.categories):
        s = s.astype(s.cat.categories.dtype)
    return s


def _obs_frame(adata: Any, names: Sequence[str]) -> pd.DataFrame:
    cols = [str(c) for c in adata.obs.columns]
    missing = [c for c in names if str(c) not in cols]
    if missing:
        raise ValueError(f"metadata={list(names)!r} names {missing}, not column(s) of adata.obs; "
                         f"expected names from {describe(cols, 200)}.")
    frame = adata.obs[[str(c) for c in names]].copy()
    for c in frame.columns:  # unused categories are not levels of this data
        if isinstance(frame[c].dtype, pd.CategoricalDtype):
            frame[c] = frame[c].cat.remove_unused_categories()
    return frame


def ensure_data(X: Any, y: Any = None, metadata: Any = None, *, task: str | None = None,
                feature_names: Sequence[str] | None = None,
                feature_kinds: Mapping[str, str] | None = None,
                metadata_kinds: Mapping[str, str] | None = None) -> AuditData:
    """``X`` as an :class:`AuditData`: built (and validated) once, passed through after that.

    Every step function starts with this. An ``AuditData`` is returned as it is (no copy, no
    second validation) when ``y`` and ``metadata`` are ``None`` or are the very objects it
    already holds; labels or metadata given beside it are validated alone and shared with a
    view (:meth:`AuditData.with_labels`).

    Examples
    --------
    >>> import numpy as np
    >>> d = AuditData(np.zeros((4, 2)), [0, 1, 0, 1])
    >>> ensure_data(d) is d, ensure_data(d, d.y) is d
    (True, True)
    >>> ensure_data(np.zeros((3, 2))).n_samples
    3
    """
    if isinstance(X, AuditData):
        same_y = y is None or y is X.y
        same_meta = metadata is None or metadata is X.metadata
        same_task = task is None or task == X.task
        if same_y and same_meta and same_task:
            return X
        return X.with_labels(None if same_y else y, None if same_meta else metadata,
                             task=task)
    return AuditData(X, y, metadata, task=task, feature_names=feature_names,
                     feature_kinds=feature_kinds, metadata_kinds=metadata_kinds)
