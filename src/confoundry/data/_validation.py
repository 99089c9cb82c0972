"""Boundary validation helpers: every message names the argument, the value and what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

TASKS = ("binary", "multiclass", "regression")
FEATURE_KINDS = ("continuous", "binary", "categorical")


def describe(value: Any, max_len: int = 60) -> str:
    """Short, readable description of a value for an error message."""
    if isinstance(value, (pd.DataFrame, pd.Series, np.ndarray)):
        return f"{type(value).__name__} of shape {tuple(value.shape)}"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{type(value).__name__} of shape {tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= max_len else text[: max_len - 3] + "..."


def check_task(task: Any) -> str | None:
    if task is None:
        return None
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not valid; expected one of {TASKS} or None (infer).")
    return task


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} is not valid; expected an integer >= {minimum}.")
    return int(value)


def check_probability(value: Any, name: str, *, open_interval: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not valid; expected a number in (0, 1).") from None
    ok = 0 < v < 1 if open_interval else 0 <= v <= 1
    if not ok:
        interval = "(0, 1)" if open_interval else "[0, 1]"
        raise ValueError(f"{name}={value!r} is not valid; expected a number in {interval}.")
    return v


def check_finite(arr: np.ndarray, name: str, columns: list[str] | None = None) -> None:
    """Raise a ValueError naming the columns (or positions) holding NaN or inf."""
    if arr.dtype.kind not in "fc":
        return
    bad_nan = np.isnan(arr)
    bad_inf = np.isinf(arr)
    for mask, what in ((bad_nan, "NaN"), (bad_inf, "infinite")):
        if mask.any():
            count = int(mask.sum())
            if arr.ndim == 2 and columns is not None:
                cols = [columns[j] for j in np.flatnonzero(mask.any(axis=0))]
                where = f"in column(s) {cols[:5]}{' ...' if len(cols) > 5 else ''}"
            else:
                first = np.argwhere(mask)[0].tolist()
                where = f"first at position {first}"
            raise ValueError(
                f"{name} contains {count} {what} value(s) {where}; expected finite numbers "
                "(impute or drop them before the audit)."
            )
