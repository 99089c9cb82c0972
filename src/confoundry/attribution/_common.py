"""Helpers shared by the attribution modules: the explained output, model state, validation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from .._explanation import Attribution
from ..data import AuditData
from ..data._validation import describe
from ..models import ModelAdapter, as_model

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

_EPS = 1e-7


def as_audit_data(X: Any, name: str = "X") -> AuditData:
    """``X`` validated through :class:`AuditData` (an ``AuditData`` is returned as is)."""
    if isinstance(X, AuditData):
        return X
    return AuditData(X)


def adapter_for(model: Any) -> ModelAdapter:
    """``as_model(model)``; errors keep the name of the argument."""
    if isinstance(model, Attribution):
        raise TypeError("model is an Attribution; expected a model (torch module, estimator, "
                        "callable or ModelAdapter).")
    return as_model(model)


def rows_for_model(data: AuditData, rows: np.ndarray | None = None) -> Any:
    """The rows of ``data.X`` in the form the model expects (a DataFrame keeps its columns)."""
    X = data.X
    if rows is None:
        return X
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]


def resolve_output(adapter: ModelAdapter, data: AuditData) -> tuple[str, int]:
    """What the model returns (``"logits"``, ``"probabilities"``, ``"values"``, ``"labels"``)
    and how many output columns, from a forward pass on at most 64 rows."""
    sample = rows_for_model(data, np.arange(min(64, data.n_samples)))
    raw = adapter.predict_raw(sample)
    if adapter.output_ is None:
        adapter.predict_scores(sample)
    kind = adapter.output_ or "values"
    n_out = 1 if raw.ndim == 1 else int(raw.shape[1])
    return kind, n_out


def explained_output(kind: str, n_out: int, task: str | None) -> str:
    """The name of the explained quantity for ``Attribution.output``."""
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


def check_tabular(attr: Attribution, name: str) -> None:
    if not isinstance(attr, Attribution):
        raise TypeError(f"{name} is {describe(attr)}; expected an Attribution (from "
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


def percentile_ci(reps: np.ndarray, ci: float = 0.95, axis: int = 0) -> tuple[Any, Any]:
    import warnings

    alpha = (1 - ci) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanquantile(reps, alpha, axis=axis)
        hi = np.nanquantile(reps, 1 - alpha, axis=axis)
    return lo, hi
