"""Helpers shared by the domain-split analyses: scoring models, checking precomputed scores."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data._validation import describe
from ..models import as_model


def check_scores(scores: Any, data: Any, name: str = "scores") -> np.ndarray:
    """Validate precomputed scores against the task and the number of rows of ``data``."""
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


def model_scores(model: Any, X: Any, data: Any, scores: Any, *,
                 model_name: str | None = None) -> tuple[np.ndarray, str]:
    """Scores of ``model`` on ``X`` (or the given ``scores``) and the model's display name.

    The name is ``model_name`` when given, else the model's own name, else ``"model"``.
    """
    if model_name is not None and (not isinstance(model_name, str) or not model_name.strip()):
        raise ValueError(f"model_name={model_name!r} is not valid; expected a non-empty string.")
    if scores is not None:
        name = model_name
        if name is None and model is not None:
            name = getattr(model, "name", None) or type(model).__name__
        return check_scores(scores, data), str(name or "model")
    if model is None:
        raise ValueError("model=None and scores=None; expected a model to score X, or "
                         "precomputed scores=.")
    if X is None:
        raise TypeError("X is None and scores is None; expected model inputs X to score the "
                        "model with, or precomputed scores=.")
    adapter = as_model(model, task=data.task, name=model_name)
    name = model_name or adapter.name
    return check_scores(adapter.predict_scores(X), data, name=f"the scores of {name}"), name
