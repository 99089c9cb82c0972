"""What ``attribute`` explains and against what: the explained output, the target class and the
reference inputs (baselines or background rows), resolved from a :class:`MethodSpec`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data._validation import describe
from ..models import ModelAdapter
from ._common import explained_output
from ._methods import BASELINES, DEFAULT_BACKGROUND, MAX_REFERENCE_ROWS, MethodSpec

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Output:
    """What the model returns and which quantity is explained.

    ``kind``: ``"logits"``, ``"probabilities"``, ``"values"`` or ``"labels"``; ``n_out``: output
    columns; ``name``: ``AttributionResult.output`` (``"logit"``, ``"probability"``,
    ``"value"``).
    """

    kind: str
    n_out: int
    task: str | None
    multiclass: bool
    name: str


@dataclass(frozen=True)
class Target:
    """The class explained: ``captum`` (None, an int or a per-sample tensor), ``sign`` (-1 for
    the log-odds of class 0), ``param`` (recorded in ``params``) and ``column`` (the output
    column SHAP explainers see; None for Captum)."""

    captum: Any
    sign: float
    param: Any
    column: int | None

    @property
    def per_sample(self) -> bool:
        return torch is not None and isinstance(self.captum, torch.Tensor)


@dataclass(frozen=True)
class References:
    """``kind``: ``"single"`` (one row), ``"per_sample"`` (one row per sample),
    ``"distribution"`` (rows averaged over) or ``"none"``; ``rows``; ``description``."""

    kind: str
    rows: np.ndarray | None
    description: str | None

    @property
    def n_rows(self) -> int:
        return 0 if self.rows is None else int(len(self.rows))


def resolve_output(adapter: ModelAdapter, sample: Any) -> Output:
    """The output kind and width from one forward pass on ``sample`` (at most 64 rows)."""
    raw = adapter.predict_raw(sample)
    if adapter.output_ is None:
        adapter.predict_scores(sample)
    kind = adapter.output_ or "values"
    n_out = 1 if raw.ndim == 1 else int(raw.shape[1])
    task = adapter.task or ("multiclass" if n_out > 2 else None)
    multiclass = kind not in ("values", "labels") and (n_out > 2 or task == "multiclass")
    return Output(kind, n_out, task, multiclass, explained_output(kind, n_out, task))


def resolve_target(target: Any, spec: MethodSpec, out: Output, n: int,
                   predicted: Callable[[], np.ndarray]) -> Target:
    """The :class:`Target` of ``target=`` for this model and method."""
    captum, sign, param = _captum_target(target, out.multiclass, out.n_out, n, predicted)
    column = None
    if spec.engine == "shap":
        if torch is not None and isinstance(captum, torch.Tensor):
            raise ValueError(f"method={spec.name!r} explains one output for all samples; pass an "
                             "int target for a multiclass model.")
        column = captum if isinstance(captum, int) else 0
    return Target(captum, sign, param, column)


def _captum_target(target: Any, multiclass: bool, n_out: int, n: int,
                   predicted: Callable[[], np.ndarray]) -> tuple[Any, float, Any]:
    if not multiclass:
        if target is None or (np.ndim(target) == 0 and int(target) == 1):
            return None, 1.0, target
        if np.ndim(target) == 0 and int(target) == 0:
            return None, -1.0, 0  # the log-odds of class 0
        raise ValueError(f"target={describe(target)} is not valid for a model with one explained "
                         "output; expected None (or 1, or 0 for the negative class).")
    if target is None:
        return torch.as_tensor(predicted(), dtype=torch.long), 1.0, "predicted"
    if np.ndim(target) == 0:
        t = int(target)
        if not 0 <= t < n_out:
            raise ValueError(f"target={target!r} is not valid; expected a class index in "
                             f"0..{n_out - 1}.")
        return t, 1.0, t
    t = np.asarray(target)
    if t.shape != (n,) or t.dtype.kind not in "iu" or t.min() < 0 or t.max() >= n_out:
        raise ValueError(f"target={describe(target)} is not valid; expected an int class index "
                         f"or {n} indices in 0..{n_out - 1}, one per row of X.")
    return torch.as_tensor(t, dtype=torch.long), 1.0, "per_sample"


def check_baseline(baseline: Any) -> None:
    """A string ``baseline`` must be one of :data:`BASELINES` (arrays are checked when used)."""
    if isinstance(baseline, str) and baseline not in BASELINES:
        raise ValueError(f"baseline={baseline!r} is not valid; expected one of {BASELINES} "
                         "or an array of inputs.")


def as_rows(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``value`` as float64 rows of inputs of ``shape[1:]`` (one input becomes one row)."""
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (pd.DataFrame, pd.Series)):
        value = value.to_numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={describe(value)} could not be read as numbers; expected an "
                        "array of model inputs.") from None
    if arr.shape == shape[1:]:
        arr = arr[None]
    if arr.ndim != len(shape) or arr.shape[1:] != shape[1:]:
        raise ValueError(f"{name} has shape {arr.shape}; expected {shape[1:]} (one input) or "
                         f"(m, {', '.join(map(str, shape[1:]))}) (rows of inputs).")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; expected finite inputs.")
    return arr


def references(spec: MethodSpec, baseline: Any, background: Any, values: np.ndarray,
               rng: np.random.Generator) -> References:
    """The reference inputs ``spec`` needs (see :attr:`MethodSpec.reference`)."""
    n = values.shape[0]
    if spec.reference is None:
        return References("none", None, None)

    def sample_rows(k: int) -> np.ndarray:
        if background is not None:
            bg = as_rows(background, values.shape, "background")
            if len(bg) > k:
                bg = bg[np.sort(rng.choice(len(bg), k, replace=False))]
            return bg
        idx = np.sort(rng.choice(n, min(k, n), replace=False))
        return values[idx]

    if spec.reference == "background":  # a given background is used in full
        if background is not None:
            return References("distribution", as_rows(background, values.shape, "background"),
                              "background")
        bg = sample_rows(DEFAULT_BACKGROUND)
        return References("distribution", bg, f"sample of {len(bg)} rows of X")
    if isinstance(baseline, str):
        check_baseline(baseline)
        if baseline == "zeros":
            return References("single", np.zeros((1,) + values.shape[1:]), "zeros")
        if baseline == "mean":
            return References("single", values.mean(axis=0, keepdims=True), "mean")
        if baseline == "median":
            return References("single", np.median(values, axis=0, keepdims=True), "median")
        bg = sample_rows(MAX_REFERENCE_ROWS)
        return References("distribution", bg, f"background ({len(bg)} rows, averaged)")
    arr = as_rows(baseline, values.shape, "baseline")
    if len(arr) == 1:
        return References("single", arr, "array")
    if len(arr) == n:
        return References("per_sample", arr, "array (one row per sample)")
    raise ValueError(f"baseline has {len(arr)} rows; expected 1 row or {n} rows (one per sample "
                     "of X).")
