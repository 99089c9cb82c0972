"""Helpers shared by the domain-split analyses: scoring models, the headline metric."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data import AuditData
from ..data._validation import describe
from ..models import as_model

#: the metric a plot or a finding speaks about when the user names none.
PRIMARY_METRIC = {"binary": "auroc", "multiclass": "accuracy", "regression": "r2"}


def check_scores(scores: Any, data: AuditData, name: str = "scores") -> np.ndarray:
    """Validate precomputed scores against the task and the number of rows."""
    s = np.asarray(scores.to_numpy() if hasattr(scores, "to_numpy") else scores, dtype=np.float64)
    n = data.n_samples
    if data.task == "multiclass":
        k = len(data.classes)
        if s.shape != (n, k):
            raise ValueError(f"{name}={describe(s)} does not match a multiclass task with {k} "
                             f"classes; expected shape ({n}, {k}) of class probabilities.")
    elif s.shape != (n,):
        raise ValueError(f"{name}={describe(s)} has the wrong shape; expected ({n},), one "
                         "score per row of X.")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{name} contains NaN or infinite values; expected finite scores.")
    if data.task == "binary" and np.any((s < 0) | (s > 1)):
        raise ValueError(f"{name} has values outside [0, 1]; expected P(y = 1) for a binary task.")
    return s


def model_scores(model: Any, X: Any, data: AuditData, scores: Any, *,
                 default_name: str = "model") -> tuple[np.ndarray, str]:
    """Scores of ``model`` on ``X`` (or the given ``scores``) and the model's display name."""
    if scores is not None:
        name = default_name
        if model is not None:
            name = getattr(model, "name", None) or type(model).__name__
        return check_scores(scores, data), str(name)
    if model is None:
        raise ValueError("model=None and scores=None; expected a model to score X, or "
                         "precomputed scores=.")
    adapter = as_model(model, task=data.task)
    return check_scores(adapter.predict_scores(X), data, name=f"the scores of {adapter.name}"), \
        adapter.name


def errors_of(y: np.ndarray, s: np.ndarray, task: str, kind: str, threshold: float) -> np.ndarray:
    """Per-sample error: misclassification, log-loss, Brier, absolute or squared residual."""
    if kind == "misclassification":
        if task == "binary":
            return ((s >= threshold).astype(np.int64) != y).astype(np.float64)
        if task == "multiclass":
            return (s.argmax(axis=1) != y).astype(np.float64)
    eps = np.finfo(np.float64).eps
    if kind == "log_loss":
        if task == "binary":
            p = np.clip(s, eps, 1 - eps)
            return -(y * np.log(p) + (1 - y) * np.log(1 - p))
        if task == "multiclass":
            return -np.log(np.clip(s[np.arange(len(y)), y], eps, 1.0))
    if kind == "brier":
        if task == "binary":
            return (s - y) ** 2
        if task == "multiclass":
            onehot = np.eye(s.shape[1])[y]
            return ((s - onehot) ** 2).sum(axis=1)
    if task == "regression" and kind == "absolute":
        return np.abs(y - s)
    if task == "regression" and kind == "squared":
        return (y - s) ** 2
    allowed = {"binary": ("misclassification", "log_loss", "brier"),
               "multiclass": ("misclassification", "log_loss", "brier"),
               "regression": ("absolute", "squared")}[task]
    raise ValueError(f"error={kind!r} is not valid for task={task!r}; expected one of {allowed}.")
