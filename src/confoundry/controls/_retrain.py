"""What the two retraining controls share: calling ``train_fn`` on the user's own objects,
scoring what it returns, and paired bootstrap replicates of one metric."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from .._utils import torch_seed
from ..data._validation import describe
from ..models import as_model
from ..stats import HEADLINE_METRIC, bootstrap_weights, weighted_metrics
from ..stats._metrics import check_metrics

#: the metric's value of a model that knows nothing.
CHANCE = {"auroc": 0.5, "macro_auroc": 0.5, "balanced_accuracy": 0.5, "r2": 0.0}


def check_train_fn(train_fn: Any) -> None:
    if not callable(train_fn):
        raise TypeError(f"train_fn={describe(train_fn)} is not callable; expected a function "
                        "train_fn(X_train, y_train) -> fitted model.")


def take_rows(obj: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a DataFrame, Series, ndarray, tensor or list, keeping its type.

    Examples
    --------
    >>> take_rows(pd.Series([10, 11, 12], index=list("abc")), np.array([2, 0])).index.tolist()
    ['c', 'a']
    >>> take_rows([[1], [2], [3]], np.array([1]))
    array([[2]])
    """
    if isinstance(obj, (pd.DataFrame, pd.Series)):
        return obj.iloc[idx]
    try:
        import torch

        if isinstance(obj, torch.Tensor):
            return obj[torch.as_tensor(idx, dtype=torch.long)]
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, np.ndarray) and not isinstance(obj, np.memmap):
        return obj[idx]
    from ..data._sources import as_source, is_lazy_input

    if is_lazy_input(obj):  # a torch Dataset (-> Subset), an AnnData (-> adata[idx]), on disk
        src = as_source(obj)
        rows = src.user_rows(np.asarray(idx, dtype=np.int64))
        return rows if rows is not None else src.read(np.asarray(idx, dtype=np.int64))
    return np.asarray(obj)[idx]


def shuffled_like(y: Any, perm: np.ndarray) -> Any:
    """``y`` with its values permuted by ``perm``, same type (a Series keeps its index)."""
    if isinstance(y, pd.Series):
        return pd.Series(y.to_numpy()[perm], index=y.index, name=y.name)
    if isinstance(y, pd.DataFrame):
        return pd.DataFrame(y.to_numpy()[perm], index=y.index, columns=y.columns)
    return take_rows(y, perm)


def fit_and_score(train_fn: Callable, X_tr: Any, y_tr: Any, X_te: Any, task: str,
                  seed: int, what: str) -> np.ndarray:
    """``train_fn(X_tr, y_tr)`` with torch's RNG seeded (and restored), scored on ``X_te``."""
    with torch_seed(seed):
        try:
            model = train_fn(X_tr, y_tr)
        except Exception as exc:
            raise RuntimeError(f"train_fn failed while fitting {what}: "
                               f"{type(exc).__name__}: {exc}") from exc
    if model is None:
        raise TypeError(f"train_fn returned None while fitting {what}; expected the fitted model.")
    return as_model(model, task=task, name=what).predict_scores(X_te)


def resolve_metric(metric: Any, task: str) -> str:
    """A metric name for ``task``; ``"auroc"`` means the task's headline metric.

    Examples
    --------
    >>> resolve_metric("auroc", "regression"), resolve_metric("roc_auc", "binary")
    ('r2', 'auroc')
    """
    if not isinstance(metric, str):
        raise TypeError(f"metric={describe(metric)} is not a string; expected a metric name.")
    if metric == "auroc" and task != "binary":
        return HEADLINE_METRIC[task]
    return check_metrics([metric], task)[0]


def boot_reps(y: np.ndarray, scores: list[np.ndarray], task: str, metric: str, n_boot: int,
              seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Point estimates (m,) and paired bootstrap replicates (m, B) of ``metric`` for several
    score vectors on the same samples (stratified by class for classifiers)."""
    strata = y if task in ("binary", "multiclass") else None
    point = np.array([weighted_metrics(y, s, None, task=task, metrics=[metric])[metric][0]
                      for s in scores])
    reps: list[list[np.ndarray]] = [[] for _ in scores]
    for W in bootstrap_weights(len(y), n_boot, strata=strata, random_state=seed):
        for i, s in enumerate(scores):
            reps[i].append(weighted_metrics(y, s, W, task=task, metrics=[metric])[metric])
    return point, np.array([np.concatenate(r) for r in reps])


def p_greater(d: np.ndarray) -> float:
    """One-sided bootstrap p of ``d > 0``: ``(1 + #{d <= 0}) / (1 + B)``.

    Examples
    --------
    >>> p_greater(np.r_[np.ones(8), -1.0])
    0.2
    """
    d = d[np.isfinite(d)]
    return float((1 + np.sum(d <= 0)) / (1 + len(d))) if len(d) else np.nan


def normal_p(estimate: float, se: float) -> float:
    """One-sided p of ``estimate > 0`` under a normal approximation."""
    from scipy.stats import norm

    if not np.isfinite(se) or not np.isfinite(estimate):
        return np.nan
    if se <= 0:
        return 0.0 if estimate > 0 else 1.0
    return float(norm.sf(estimate / se))
