"""Shared input handling of the controls: validate train/test data once, score every model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data._audit_data import AuditData
from ..data._validation import describe
from ..models._adapter import ModelAdapter, as_model

#: significance level of the controls' findings (after Benjamini-Hochberg correction).
ALPHA = 0.05
#: level of every confidence interval the controls report.
CI_LEVEL = 0.95
#: the metric a reader looks at first, per task.
HEADLINE = {"binary": "auroc", "multiclass": "macro_auroc", "regression": "r2"}


@dataclass
class Scored:
    """Validated train/test data and every model's scores on both."""

    task: str
    y_train: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    names: list[str]  # the DL model first, then the baselines
    train_scores: dict[str, np.ndarray]
    test_scores: dict[str, np.ndarray]


def _as_data(X: Any, y: Any, which: str, task: str | None) -> tuple[AuditData, Any]:
    """Validate one split; return the AuditData and the object the model should be scored on."""
    if isinstance(X, AuditData):
        data = X
        if y is not None:
            data = AuditData(X.X, y, task=task or X.task)
        elif data.y is None:
            raise ValueError(f"y_{which} is None and X_{which} (an AuditData) holds no labels; "
                             f"expected the labels of the {which} set.")
        return data, data.X
    if y is None:
        raise ValueError(f"y_{which} is None; expected one label per row of X_{which}.")
    try:
        data = AuditData(X, y, task=task)
    except (TypeError, ValueError) as exc:
        # keep the message, but say which split it is about
        raise type(exc)(f"X_{which}, y_{which} (the {which} set): {exc}") from None
    model_input = data.values if isinstance(X, (list, tuple)) else X
    return data, model_input


def check_baselines(baselines: Any) -> dict[str, Any]:
    """``None`` or a mapping of name to model; return a plain dict (name -> object)."""
    if baselines is None:
        return {}
    if isinstance(baselines, Mapping):
        items = list(baselines.items())
    elif hasattr(baselines, "items") and callable(baselines.items):
        items = list(baselines.items())
    else:
        raise TypeError(
            f"baselines={describe(baselines)} has type {type(baselines).__name__}; expected a "
            "mapping of name to fitted model (an object with predict_scores, an estimator or a "
            "callable), e.g. {'logistic': model} or the Baselines from fit_baselines."
        )
    out: dict[str, Any] = {}
    for name, obj in items:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"baselines has the key {name!r}; expected non-empty string names.")
        if obj is None:
            raise TypeError(f"baselines[{name!r}] is None; expected a fitted model.")
        out[name] = obj
    return out


def score_models(
    model: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    baselines: Any,
) -> Scored:
    """Validate both splits, wrap every model with ``as_model`` and score it on both splits."""
    base = check_baselines(baselines)
    adapter_task = model.task if isinstance(model, ModelAdapter) else None
    train, X_tr = _as_data(X_train, y_train, "train", adapter_task)
    test, X_te = _as_data(X_test, y_test, "test", train.task)
    if train.X.shape[1:] != test.X.shape[1:]:
        raise ValueError(
            f"X_train has shape {tuple(train.X.shape)} and X_test {tuple(test.X.shape)}; expected "
            "the same features (same shape apart from the number of rows)."
        )
    if train.is_tabular and train.feature_names != test.feature_names:
        raise ValueError(
            f"X_train's columns {describe(train.feature_names)} differ from X_test's "
            f"{describe(test.feature_names)}; expected the same features in the same order."
        )
    task = train.task
    n_classes = None
    if task == "multiclass":
        n_classes = int(max(train.y.max(), test.y.max())) + 1
    dl = as_model(model, task=task)
    adapters = {dl.name: dl}
    for name, obj in base.items():
        if name in adapters:
            raise ValueError(f"baselines has the name {name!r}, which is the model's own name; "
                             "expected distinct names (pass as_model(model, name=...)).")
        try:
            adapters[name] = as_model(obj, task=task, name=name)
        except TypeError as exc:
            raise TypeError(f"baselines[{name!r}]: {exc}") from None
    train_scores, test_scores = {}, {}
    for name, adapter in adapters.items():
        train_scores[name] = _check_scores(adapter.predict_scores(X_tr), task, n_classes, name,
                                           "X_train")
        test_scores[name] = _check_scores(adapter.predict_scores(X_te), task, n_classes, name,
                                          "X_test")
    return Scored(task=task, y_train=np.asarray(train.y), y_test=np.asarray(test.y),
                  n_classes=n_classes, names=list(adapters), train_scores=train_scores,
                  test_scores=test_scores)


def _check_scores(s: np.ndarray, task: str, n_classes: int | None, name: str,
                  where: str) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64)
    if task == "multiclass":
        if s.ndim != 2 or s.shape[1] < n_classes:
            raise ValueError(
                f"model {name!r} returned scores of shape {s.shape} on {where}; expected class "
                f"probabilities of shape (n, {n_classes}) for a {n_classes}-class task."
            )
    elif s.ndim != 1:
        raise ValueError(
            f"model {name!r} returned scores of shape {s.shape} on {where}; expected one score per "
            f"row for task={task!r}."
        )
    return s


def percentile_ci(reps: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (NaN replicates ignored)."""
    reps = np.asarray(reps, dtype=float)
    if not np.isfinite(reps).any():
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.nanquantile(reps, [a, 1 - a])
    return float(lo), float(hi)


def fmt_ci(est: float, lo: float, hi: float, digits: int = 2) -> str:
    return f"{est:.{digits}f} (95% CI {lo:.{digits}f} to {hi:.{digits}f})"
