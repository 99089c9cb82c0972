"""Helpers shared by the domain-split analyses: scoring models, checking precomputed scores."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data._coerce import check_aligned
from ..data._validation import describe
from ..models import as_model


def check_scores(scores: Any, data: Any, name: str = "scores") -> np.ndarray:
    """Validate precomputed scores against the task and the number of rows of ``data``."""
    check_aligned(scores, data, name)
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


# ----------------------------------------------------------------------- small-n floors
#: default smallest group (domain, slice half, held-out group) a claim may rest on.
MIN_N = 20
#: default smallest count of each outcome a rate or an AUROC may rest on.
MIN_EVENTS = 5
#: what the ``note`` column of a row below the floor starts with.
TOO_SMALL = "too small to test"


def check_floor(min_n: Any, min_events: Any) -> tuple[int, int]:
    """Validated ``min_n`` (an integer >= 1) and ``min_events`` (an integer >= 0)."""
    from ..data._validation import check_positive_int

    return (check_positive_int(min_n, "min_n"),
            check_positive_int(min_events, "min_events", minimum=0))


def floor_note(n: int, min_n: int, events: dict[str, int] | None = None,
               min_events: int = MIN_EVENTS) -> str:
    """Why a group of ``n`` rows is too small to test (``""`` when it is not).

    ``events`` counts the outcomes a rate rests on (``{"positives": 7, "negatives": 3}``);
    each must reach ``min_events``.

    Examples
    --------
    >>> floor_note(12, 20)
    'too small to test: n = 12 < min_n = 20'
    >>> floor_note(40, 20, {"positives": 3, "negatives": 37})
    'too small to test: 3 positives < min_events = 5'
    >>> floor_note(40, 20, {"positives": 8, "negatives": 32})
    ''
    """
    if n < min_n:
        return f"{TOO_SMALL}: n = {n} < min_n = {min_n}"
    short = [f"{c} {k}" for k, c in (events or {}).items() if c < min_events]
    if short:
        return f"{TOO_SMALL}: {' and '.join(short)} < min_events = {min_events}"
    return ""


def label_events(y: np.ndarray, task: str, n_classes: int | None = None) -> dict[str, int]:
    """The outcome counts a per-group metric rests on: positives and negatives (binary), rows
    of each class (multiclass), none for regression.

    Examples
    --------
    >>> label_events(np.array([0, 1, 1, 0, 0]), "binary")
    {'positives': 2, 'negatives': 3}
    >>> label_events(np.array([0, 2, 2]), "multiclass", 3)
    {'rows of class 0': 1, 'rows of class 1': 0, 'rows of class 2': 2}
    """
    if task == "binary":
        pos = int(np.sum(y == 1))
        return {"positives": pos, "negatives": int(len(y)) - pos}
    if task == "multiclass":
        counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes or 0)
        return {f"rows of class {k}": int(c) for k, c in enumerate(counts)}
    return {}
