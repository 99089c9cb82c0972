"""Helpers shared by the attribution modules: the explained output, model state, validation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from .._explanation import AttributionResult
from ..data import AuditData
from ..data._validation import describe
from ..models import ModelAdapter, as_model

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

_EPS = 1e-7


def wants_frame(data: AuditData) -> bool:
    """Whether the model gets DataFrames (tabular data the user did not give as an array or a
    tensor: a model fitted on arrays gets arrays, one fitted on a DataFrame its columns)."""
    if not (data.is_tabular and isinstance(data.X, pd.DataFrame)):
        return False
    source = getattr(data, "X_source", None)
    return not (isinstance(source, np.ndarray)
                or (torch is not None and isinstance(source, torch.Tensor)))


def seed_record(random_state: Any) -> Any:
    """What ``params`` records of a ``random_state``: the int, None, or the type's name (a
    Generator cannot be written down)."""
    if random_state is None or isinstance(random_state, (bool, str)):
        return random_state
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    return type(random_state).__name__


def adapter_for(model: Any) -> ModelAdapter:
    """``as_model(model)``; errors keep the name of the argument."""
    if isinstance(model, AttributionResult):
        raise TypeError("model is an AttributionResult; expected a model (torch module, estimator, "
                        "callable or ModelAdapter).")
    return as_model(model)


def rows_for_model(data: AuditData, rows: np.ndarray | None = None) -> Any:
    """The rows of ``data`` in the form the model expects (see :func:`wants_frame`)."""
    X = data.X if wants_frame(data) else data.values
    if rows is None:
        return X
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]


def explained_output(kind: str, n_out: int, task: str | None) -> str:
    """The name of the explained quantity for ``AttributionResult.output``."""
    if kind in ("values", "labels"):
        return "value"
    if n_out > 2 or task == "multiclass":
        return "logit" if kind == "logits" else "probability"
    return "logit"


def head_torch(out: Any, kind: str, n_out: int, task: str | None) -> Any:
    """Map raw model outputs (tensor) to the explained quantity.

    Binary: the log-odds (from one logit, two logits, or probabilities). Regression: the value.
    Multiclass: the ``(n, K)`` logits or probabilities (Captum's ``target`` picks the class).
    """
    if isinstance(out, (tuple, list)):
        out = out[0]
    if out.ndim == 1:
        out = out.unsqueeze(1)
    if kind in ("values", "labels"):
        return out[:, 0] if out.shape[1] == 1 else out
    multiclass = out.shape[1] > 2 or task == "multiclass"
    if multiclass:
        return out
    if kind == "probabilities":
        p = out.clamp(_EPS, 1 - _EPS)
        if out.shape[1] == 1:
            return torch.log(p[:, 0]) - torch.log1p(-p[:, 0])
        return torch.log(p[:, 1]) - torch.log(p[:, 0])
    if out.shape[1] == 1:
        return out[:, 0]
    return out[:, 1] - out[:, 0]


def model_output(adapter: ModelAdapter, X: Any, *, target: int | None = None) -> np.ndarray:
    """The explained output of ``adapter`` on ``X`` as float64 ``(n,)``: the log-odds for binary
    classifiers, the value for regression, class ``target``'s probability for multiclass."""
    raw = adapter.predict_raw(X)
    if adapter.output_ is None:
        adapter.predict_scores(X[:64] if not isinstance(X, pd.DataFrame) else X.iloc[:64])
    kind = adapter.output_ or "values"
    n_out = 1 if raw.ndim == 1 else raw.shape[1]
    if torch is None:  # pragma: no cover
        raise ImportError("torch is required")
    out = head_torch(torch.as_tensor(raw, dtype=torch.float64), kind, n_out, adapter.task)
    out = out.numpy()
    if out.ndim == 2:
        if target is None:
            raise ValueError(f"model {adapter.name!r} has {out.shape[1]} outputs; pass target=<class "
                             "index> to say which class to explain.")
        if kind == "logits":
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out = out / out.sum(axis=1, keepdims=True)
        out = out[:, int(target)]
    return np.asarray(out, dtype=np.float64)


def output_from_scores(scores: Any, n: int, *, task: str | None,
                       target: int | None = None) -> np.ndarray:
    """The explained output (as :func:`model_output` computes it) from precomputed scores.

    ``scores`` follow :meth:`ModelAdapter.predict_scores`: P(class 1) ``(n,)`` for binary tasks
    (returned as the log-odds), class probabilities ``(n, K)`` for multiclass (column
    ``target``), values for regression. Without a task, 1-D scores inside [0, 1] are read as
    probabilities.

    Examples
    --------
    >>> output_from_scores([0.5, 0.8], 2, task="binary").round(4).tolist()
    [0.0, 1.3863]
    """
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"scores={describe(scores)} could not be read as numbers; expected the "
                        "model's scores on the rows of X.") from None
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim not in (1, 2) or s.shape[0] != n:
        raise ValueError(f"scores has shape {s.shape}; expected ({n},) or ({n}, K): one score "
                         "per row of X.")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contains NaN or infinite values; expected finite scores.")
    if s.ndim == 2:
        if target is None:
            raise ValueError(f"scores has {s.shape[1]} columns (class probabilities); pass "
                             "target=<class index> to say which class to explain.")
        if not 0 <= int(target) < s.shape[1]:
            raise ValueError(f"target={target!r} is not valid; expected a class index in "
                             f"0..{s.shape[1] - 1}.")
        return s[:, int(target)]
    probabilities = bool(np.all((s >= 0) & (s <= 1)))
    if task == "regression" or (task is None and not probabilities):
        return s
    if not probabilities:
        raise ValueError(f"scores has values outside [0, 1] for task={task!r}; expected the "
                         "probability of class 1 (predict_scores).")
    p = np.clip(s, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


@contextlib.contextmanager
def frozen_module(module: Any) -> Iterator[None]:
    """Eval mode and no parameter gradients for the duration; every flag restored afterwards.

    The training flag of every submodule, ``requires_grad`` and ``.grad`` of every parameter are
    saved and put back, so the user's model leaves exactly as it came.
    """
    if module is None:
        yield
        return
    modes = [(m, m.training) for m in module.modules()]
    params = [(p, p.requires_grad, p.grad) for p in module.parameters()]
    try:
        module.eval()
        for p, _, _ in params:
            p.requires_grad_(False)
        yield
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag, grad in params:
            p.requires_grad_(flag)
            p.grad = grad


def check_tabular(attr: AttributionResult, name: str) -> None:
    if not isinstance(attr, AttributionResult):
        raise TypeError(f"{name} is {describe(attr)}; expected an AttributionResult (from "
                        "confoundry.attribute or a glass-box model's explain()).")
    if not attr.is_tabular:
        raise ValueError(f"{name} has values of shape {attr.values.shape}; expected tabular "
                         "attributions (n_samples, n_features).")


def weighted_rank(values: np.ndarray) -> np.ndarray:
    """Average ranks (1 = smallest) along the last axis, ties averaged; vectorised over rows."""
    from scipy.stats import rankdata

    return rankdata(values, axis=-1)


def rowwise_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching rows of two ``(B, d)`` arrays (NaN for a constant row)."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=-1) / np.where(den > 0, den, 1.0), np.nan)
