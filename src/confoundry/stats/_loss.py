"""Per-sample loss and error: one definition for the probes, the slices, the domains and the
membership attack."""

from __future__ import annotations

import numpy as np

#: per-sample errors defined for each task (the first is the default of each).
ERROR_KINDS = {
    "binary": ("misclassification", "log_loss", "brier"),
    "multiclass": ("misclassification", "log_loss", "brier"),
    "regression": ("absolute", "squared"),
}

_EPS = 1e-12


def per_sample_loss(y: np.ndarray, scores: np.ndarray, task: str, kind: str | None = None, *,
                    threshold: float = 0.5) -> np.ndarray:
    """Per-sample loss or error of ``scores`` against ``y``.

    Parameters
    ----------
    y : ndarray of shape (n,)
    scores : ndarray of shape (n,) or (n, K)
        P(y = 1) (binary), class probabilities (multiclass) or predictions (regression).
    task : {"binary", "multiclass", "regression"}
    kind : str, optional
        ``"log_loss"`` (default for classifiers), ``"misclassification"`` (thresholded at
        ``threshold`` for a binary task, arg-max otherwise), ``"brier"``; ``"absolute"``
        (default for regression) or ``"squared"`` residuals. Probabilities are clipped to
        ``[1e-12, 1 - 1e-12]`` before the logarithm.
    threshold : float
        Decision threshold of a binary ``"misclassification"``.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> per_sample_loss(np.array([1, 0]), np.array([0.9, 0.9]), "binary").round(3)
    array([0.105, 2.303])
    >>> per_sample_loss(np.array([1.0, 3.0]), np.array([2.0, 2.0]), "regression", "squared")
    array([1., 1.])
    """
    if kind is None:
        kind = "absolute" if task == "regression" else "log_loss"
    y = np.asarray(y)
    s = np.asarray(scores, dtype=np.float64)
    if task in ("binary", "multiclass"):
        if kind == "misclassification":
            pred = (s >= threshold).astype(np.int64) if task == "binary" else s.argmax(axis=1)
            return (pred != y).astype(np.float64)
        if kind == "log_loss":
            if task == "binary":
                p = np.clip(s, _EPS, 1 - _EPS)
                return -(y * np.log(p) + (1 - y) * np.log1p(-p))
            return -np.log(np.clip(s[np.arange(len(y)), y.astype(np.int64)], _EPS, 1.0))
        if kind == "brier":
            if task == "binary":
                return (s - y) ** 2
            onehot = np.eye(s.shape[1])[y.astype(np.int64)]
            return ((s - onehot) ** 2).sum(axis=1)
    elif task == "regression":
        if kind == "absolute":
            return np.abs(y - s)
        if kind == "squared":
            return (y - s) ** 2
    if task not in ERROR_KINDS:
        raise ValueError(f"task={task!r} is not valid; expected one of {tuple(ERROR_KINDS)}.")
    raise ValueError(f"error={kind!r} is not valid for task={task!r}; expected one of "
                     f"{ERROR_KINDS[task]}.")
