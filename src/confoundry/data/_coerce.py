"""Validation and coercion of X, y and metadata: where bad input becomes a clear error.

Used by :class:`~confoundry.AuditData` and by the step functions that validate labels or
metadata given without an ``X`` (``scores=`` only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._validation import FEATURE_KINDS, check_finite, describe

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

#: the kinds a metadata column can be declared as (``metadata_kinds=``).
METADATA_KINDS = ("categorical", "continuous")
#: integer-valued targets with at most this many levels are inferred as multiclass.
MAX_MULTICLASS_LEVELS = 20
#: integer-valued features with at most this many levels are inferred as categorical.
MAX_CATEGORICAL_LEVELS = 10


def take_rows(obj: Any, rows: np.ndarray) -> Any:
    """Rows of a user object in its own type (pandas by position, arrays and tensors by index)."""
    if isinstance(obj, (pd.DataFrame, pd.Series)):
        return obj.iloc[rows]
    if torch is not None and isinstance(obj, torch.Tensor):
        return obj[torch.as_tensor(rows, dtype=torch.long, device=obj.device)]
    if hasattr(obj, "shape") and hasattr(obj, "__getitem__"):
        return obj[rows]
    return np.asarray(obj)[rows]


def coerce_X(X: Any, feature_names: Sequence[str] | None) -> tuple[np.ndarray, pd.Index, list[str]]:
    if X is None:
        raise TypeError("X is None; expected a DataFrame, ndarray or torch.Tensor of model "
                        "inputs (or a torch Dataset, AnnData or array on disk).")
    index: pd.Index | None = None
    names: list[str] | None = None
    if isinstance(X, pd.Series):
        raise TypeError(
            f"X is a pandas Series ({describe(X)}); expected a 2-D DataFrame (use X.to_frame())."
        )
    if isinstance(X, pd.DataFrame):
        if X.columns.duplicated().any():
            dups = sorted({str(c) for c in X.columns[X.columns.duplicated()]})
            raise ValueError(f"X has duplicate feature names {dups}; expected unique names.")
        bad = [c for c in X.columns if not (
            pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))]
        if bad:
            kinds = {str(c): str(X[c].dtype) for c in bad[:5]}
            raise TypeError(
                f"X has non-numeric column(s) {kinds}; expected numeric columns a model can "
                "take (one-hot or ordinal-encode them first, or pass them as metadata)."
            )
        if feature_names is not None and list(map(str, feature_names)) != [str(c) for c in X.columns]:
            raise ValueError(
                f"feature_names={describe(list(feature_names))} differ from X's columns "
                f"{describe([str(c) for c in X.columns])}; pass one or the other."
            )
        names = [str(c) for c in X.columns]
        if len(set(names)) != len(names):
            raise ValueError(
                f"X's column names {names} are not unique once turned into strings; expected "
                "unique names."
            )
        index = X.index
        arr = X.to_numpy(dtype=np.float64, copy=True)
    elif torch is not None and isinstance(X, torch.Tensor):
        if X.is_complex():
            raise TypeError(f"X is a complex tensor ({describe(X)}); expected real numbers.")
        arr = X.detach().to("cpu", dtype=torch.float64).numpy().copy()
    elif isinstance(X, np.ndarray):
        if X.dtype.kind not in "biuf":
            raise TypeError(
                f"X is an ndarray of dtype {X.dtype}; expected a numeric (bool, int or float) "
                "array a model can take."
            )
        arr = X.astype(np.float64, copy=True)
    elif isinstance(X, (list, tuple)):
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"X={describe(X)} could not be read as numbers; expected a numeric DataFrame, "
                "ndarray or tensor."
            ) from None
    else:
        raise TypeError(
            f"X has type {type(X).__name__}; expected a pandas DataFrame, numpy ndarray or "
            "torch.Tensor."
        )
    if arr.ndim < 2:
        raise ValueError(
            f"X has shape {arr.shape}; expected at least 2 dimensions (n_samples, n_features). "
            "Reshape a single feature with X.reshape(-1, 1)."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"X has shape {arr.shape}: zero rows; expected at least 2 samples.")
    if arr.shape[0] < 2:
        raise ValueError(f"X has shape {arr.shape}: a single sample; expected at least 2.")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise ValueError(f"X has shape {arr.shape}: zero columns; expected at least one feature.")
    if names is None:
        if arr.ndim == 2:
            if feature_names is None:
                names = [f"x{j}" for j in range(arr.shape[1])]
            else:
                names = [str(n) for n in feature_names]
                if len(names) != arr.shape[1]:
                    raise ValueError(
                        f"feature_names has {len(names)} names but X has {arr.shape[1]} columns; "
                        "expected one name per column."
                    )
        else:
            names = list(map(str, feature_names)) if feature_names is not None else []
    if arr.ndim == 2:
        empty = [i for i, n in enumerate(names) if not str(n).strip()]
        if empty:
            raise ValueError(
                f"feature names at position(s) {empty} are empty; expected non-empty names."
            )
        if len(set(names)) != len(names):
            dups = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"feature_names has duplicates {dups}; expected unique names.")
    check_finite(arr, "X", names if arr.ndim == 2 else None)
    if index is None:
        index = pd.RangeIndex(arr.shape[0])
    return arr, index, names


def infer_feature_kinds(
    arr: np.ndarray, names: list[str], override: Mapping[str, str] | None
) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for j, name in enumerate(names):
        col = arr[:, j]
        # a column with more than MAX_CATEGORICAL_LEVELS values in its first rows is continuous
        # whatever the rest holds: skip sorting the whole column
        if len(np.unique(col[:256])) > MAX_CATEGORICAL_LEVELS:
            kinds[name] = "continuous"
            continue
        uniq = np.unique(col)
        if len(uniq) <= 2:
            kinds[name] = "binary"
        elif len(uniq) <= MAX_CATEGORICAL_LEVELS and np.all(uniq == np.round(uniq)):
            kinds[name] = "categorical"
        else:
            kinds[name] = "continuous"
    if override is not None:
        if not isinstance(override, Mapping):
            raise TypeError(
                f"feature_kinds={describe(override)} is not a mapping; expected a dict of feature "
                f"name to one of {FEATURE_KINDS}."
            )
        for name, kind in override.items():
            if name not in kinds:
                raise ValueError(
                    f"feature_kinds names {name!r}, which is not a feature; expected one of "
                    f"{describe(names)}."
                )
            if kind not in FEATURE_KINDS:
                raise ValueError(
                    f"feature_kinds[{name!r}]={kind!r} is not valid; expected one of {FEATURE_KINDS}."
                )
            kinds[name] = kind
    return kinds


def check_same_index(obj: Any, index: pd.Index, name: str) -> None:
    """A pandas ``obj`` must have X's index, in X's order: never aligned silently by position.

    Examples
    --------
    >>> X_index = pd.RangeIndex(3)
    >>> check_same_index(pd.Series([1, 0, 1]), X_index, "y")
    >>> check_same_index(pd.Series([1, 0, 1], index=[2, 0, 1]), X_index, "y")
    Traceback (most recent call last):
    ...
    ValueError: y's index holds the same samples as X's but in a different order; ...
    """
    if not isinstance(obj, (pd.Series, pd.DataFrame)) or len(obj) != len(index):
        return
    if obj.index.equals(index):
        return
    if index.has_duplicates:
        raise ValueError(f"X's index has duplicate labels; cannot align {name} to it.")
    if set(obj.index) == set(index):
        raise ValueError(
            f"{name}'s index holds the same samples as X's but in a different order; expected "
            f"the same order (use {name}.loc[X.index]), since {name} is never matched to X by "
            "position when both carry an index.")
    raise ValueError(
        f"{name}'s index does not match X's index (e.g. {name} has "
        f"{describe(list(obj.index[:3]))}, X has {describe(list(index[:3]))}); expected the same "
        f"samples in the same order (use {name}.reindex(X.index) or pass {name}.to_numpy()).")


def check_aligned(obj: Any, data: Any, name: str) -> None:
    """A pandas ``obj`` given beside ``data`` (scores, labels) must carry its index, in its
    order, when ``data``'s X was a DataFrame (an array X has no index to match)."""
    if isinstance(obj, (pd.Series, pd.DataFrame)) and isinstance(
            getattr(data, "X_source", None), pd.DataFrame):
        check_same_index(obj, data.index, name)


def coerce_y(
    y: Any, n: int, index: pd.Index, task: str | None, *, indexed: bool = False
) -> tuple[np.ndarray, str, np.ndarray | None]:
    """Validate labels; ``indexed`` when ``index`` is the user's own (X was a DataFrame), so a
    pandas ``y`` must carry the same index in the same order."""
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ValueError(f"y is a DataFrame of shape {y.shape}; expected one column of labels.")
        y = y.iloc[:, 0]
    if isinstance(y, pd.Series):
        if indexed or not isinstance(index, pd.RangeIndex):
            check_same_index(y, index, "y")
        y_raw = y.to_numpy()
    elif torch is not None and isinstance(y, torch.Tensor):
        y_raw = y.detach().cpu().numpy()
    else:
        y_raw = np.asarray(y)
    if y_raw.ndim == 2 and y_raw.shape[1] == 1:
        y_raw = y_raw[:, 0]
    if y_raw.ndim != 1:
        raise ValueError(
            f"y has shape {y_raw.shape}; expected a 1-D array of {n} labels (one per row of X)."
        )
    if len(y_raw) != n:
        raise ValueError(
            f"y has {len(y_raw)} values but X has {n} rows; expected one label per row of X."
        )
    if y_raw.dtype == bool:
        y_raw = y_raw.astype(np.int64)
    if y_raw.dtype.kind not in "iuf":
        if task == "regression":
            raise TypeError(f"y has dtype {y_raw.dtype}; expected numbers for task='regression'.")
        levels = pd.unique(pd.Series(y_raw)).tolist()
        raise TypeError(
            f"y has non-numeric labels {describe(levels)}; expected integer-coded labels "
            "(0/1 for a binary task, 0..K-1 for multiclass)."
        )
    y_f = y_raw.astype(np.float64)
    check_finite(y_f, "y")
    uniq = np.unique(y_f)
    is_int = bool(np.all(uniq == np.round(uniq)))
    if task is None:
        if not is_int:
            task = "regression"
        elif len(uniq) <= 2:
            task = "binary"
        elif len(uniq) <= MAX_MULTICLASS_LEVELS and uniq.min() >= 0:
            task = "multiclass"
        else:
            task = "regression"
    if task == "regression":
        if len(uniq) < 2:
            raise ValueError(f"y is constant ({uniq[0]!r}); expected a target that varies.")
        return y_f, task, None
    if not is_int:
        raise ValueError(
            f"y has non-integer values (e.g. {uniq[uniq != np.round(uniq)][0]!r}) for "
            f"task={task!r}; expected integer-coded class labels."
        )
    if len(uniq) < 2:
        raise ValueError(
            f"y has a single class ({int(uniq[0])}); expected at least two classes to audit a "
            "classifier."
        )
    y_i = y_f.astype(np.int64)
    if task == "binary":
        extra = sorted(set(uniq.astype(int).tolist()) - {0, 1})
        if extra:
            raise ValueError(
                f"y has labels {extra} outside {{0, 1}} for task='binary'; expected 0 (negative) "
                "and 1 (positive). Recode the labels, e.g. y = (y == positive_label)."
            )
        return y_i, task, np.array([0, 1])
    k = int(uniq.max()) + 1
    if uniq.min() < 0 or len(uniq) != k:
        raise ValueError(
            f"y has class labels {describe(uniq.astype(int).tolist())}; expected consecutive "
            "integers 0..K-1 for task='multiclass' (use sklearn's LabelEncoder)."
        )
    return y_i, task, np.arange(k)


def coerce_metadata(metadata: Any, n: int, index: pd.Index, X: Any) -> pd.DataFrame | None:
    if metadata is None:
        return None
    if isinstance(metadata, pd.Series):
        metadata = metadata.to_frame(name=metadata.name if metadata.name is not None else "metadata")
    elif isinstance(metadata, Mapping):
        metadata = pd.DataFrame(dict(metadata))
    if not isinstance(metadata, pd.DataFrame):
        raise TypeError(
            f"metadata has type {type(metadata).__name__}; expected a pandas DataFrame (or "
            "Series) with one named column per metadata variable."
        )
    if metadata.shape[1] == 0:
        raise ValueError("metadata has no columns; expected at least one metadata variable.")
    if len(metadata) != n:
        raise ValueError(
            f"metadata has {len(metadata)} rows but X has {n}; expected one row per sample."
        )
    if metadata.columns.duplicated().any():
        dups = sorted({str(c) for c in metadata.columns[metadata.columns.duplicated()]})
        raise ValueError(f"metadata has duplicate column names {dups}; expected unique names.")
    if isinstance(X, pd.DataFrame):
        if not metadata.index.equals(X.index):
            if X.index.has_duplicates:
                raise ValueError("X's index has duplicate labels; cannot align metadata to it.")
            if set(metadata.index) == set(X.index):
                raise ValueError(
                    "metadata's index holds the same samples as X's but in a different order; "
                    "expected the same order (use metadata.loc[X.index])."
                )
            raise ValueError(
                "metadata's index does not match X's index (e.g. metadata has "
                f"{describe(list(metadata.index[:3]))}, X has {describe(list(X.index[:3]))}); "
                "expected the same samples in the same order."
            )
    meta = metadata.copy()
    meta.index = index
    meta.columns = [str(c) for c in meta.columns]
    for col in meta.columns:
        s = meta[col]
        if not str(col).strip():
            raise ValueError("metadata has a column with an empty name; expected named columns.")
        n_missing = int(s.isna().sum())
        if n_missing:
            raise ValueError(
                f"metadata column {col!r} has {n_missing} missing value(s); expected a value for "
                "every sample (fill them with an explicit level such as 'unknown')."
            )
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            if not np.all(np.isfinite(s.to_numpy(dtype=float))):
                raise ValueError(
                    f"metadata column {col!r} has infinite values; expected finite numbers."
                )
        n_levels = s.nunique()
        if n_levels < 2:
            raise ValueError(
                f"metadata column {col!r} has a single level ({s.iloc[0]!r}); expected at least "
                "two levels, since a constant cannot confound anything (drop the column)."
            )
    return meta


#: above this many features, only features named like a metadata column are compared.
MAX_COMPARED_FEATURES = 2000


#: a metadata column with at most this many levels matches a feature up to level names;
#: one with more (a continuous column) only by equal values.
MAX_RENAMED_LEVELS = 20


def _same_values(x: pd.Series, m: pd.Series) -> bool:
    a, b = x.to_numpy(), m.to_numpy()
    if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(m):
        return bool(np.allclose(a.astype(float), b.astype(float), rtol=1e-9, atol=0.0))
    return bool(np.array_equal(a.astype(str), b.astype(str)))


def metadata_also_inputs(data: Any) -> dict[str, str]:
    """Metadata columns that are also model inputs: a feature of the same name, or a feature
    whose values equal the column's up to a renaming of its levels (e.g. ``sex`` as 0/1 in X
    and "F"/"M" in the metadata). Maps the column to a description of that input.

    A probe of such a column finds that "the outputs depend on it", which is then expected,
    not confounding. Only tabular inputs are compared (features beyond
    :data:`MAX_COMPARED_FEATURES`, and lazy inputs read in batches, by name only).

    Examples
    --------
    >>> from confoundry import AuditData
    >>> X = pd.DataFrame({"age": [50, 60, 70, 80], "male": [0, 1, 1, 0]})
    >>> meta = pd.DataFrame({"sex": ["F", "M", "M", "F"], "site": ["a", "a", "b", "b"]})
    >>> metadata_also_inputs(AuditData(X, [0, 1, 0, 1], metadata=meta))
    {'sex': "the input 'male' (the same values under other level names)"}
    """
    meta = getattr(data, "metadata", None)
    if meta is None or not getattr(data, "is_tabular", False):
        return {}
    names = [str(f) for f in data.feature_names]
    out: dict[str, str] = {}
    # a lazy input (read in batches) is compared by name only: its values stay where they are
    compare = len(names) <= MAX_COMPARED_FEATURES and not getattr(data, "lazy", False)
    X = (data.X if isinstance(data.X, pd.DataFrame) or not compare
         else pd.DataFrame(data.values, columns=names))
    for col in meta.columns:
        if col in names:
            out[col] = f"the input '{col}' (same name)"
            continue
        if not compare:
            continue
        m_codes, m_levels = pd.factorize(meta[col], sort=False)
        k = len(m_levels)
        for f in names:
            x = X[f]
            if x.nunique(dropna=False) != k:
                continue
            same = _same_values(x, meta[col])
            if same or (k <= MAX_RENAMED_LEVELS and
                        # first-seen order makes equal codes a bijection of the levels
                        np.array_equal(pd.factorize(x, sort=False)[0], m_codes)):
                out[col] = (f"the input '{f}'" if same
                            else f"the input '{f}' (the same values under other level names)")
                break
    return out


def metadata_kinds_of(metadata: pd.DataFrame | None,
                      override: Mapping[str, str] | None) -> dict[str, str]:
    """The kind of every metadata column, inferred, with ``override`` (``metadata_kinds=``)
    taking precedence: e.g. integer site codes with more than 10 levels are continuous unless
    declared ``"categorical"``."""
    if override is not None and not isinstance(override, Mapping):
        raise TypeError(f"metadata_kinds={describe(override)} is not a mapping; expected a dict "
                        "of metadata column to 'categorical' or 'continuous'.")
    if metadata is None:
        if override:
            raise ValueError(f"metadata_kinds={describe(dict(override))} was given without "
                             "metadata; expected metadata= too.")
        return {}
    kinds = {c: metadata_kind(metadata[c]) for c in metadata.columns}
    for col, kind in (override or {}).items():
        if str(col) not in kinds:
            raise ValueError(f"metadata_kinds names {col!r}, which is not a metadata column; "
                             f"expected one of {describe(list(kinds))}.")
        if kind not in METADATA_KINDS:
            raise ValueError(f"metadata_kinds[{col!r}]={kind!r} is not valid; expected one of "
                             f"{METADATA_KINDS}.")
        if kind == "continuous" and not pd.api.types.is_numeric_dtype(metadata[str(col)]):
            raise ValueError(f"metadata_kinds[{col!r}]='continuous' but the column holds "
                             f"{metadata[str(col)].dtype} values; expected numbers.")
        kinds[str(col)] = kind
    return kinds


def metadata_kind(s: pd.Series) -> str:
    if (
        isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(s)
        or pd.api.types.is_object_dtype(s)
        or pd.api.types.is_string_dtype(s)
    ):
        return "categorical"
    vals = s.to_numpy(dtype=float)
    uniq = np.unique(vals)
    if len(uniq) <= MAX_CATEGORICAL_LEVELS and np.all(uniq == np.round(uniq)):
        return "categorical"
    return "continuous"
