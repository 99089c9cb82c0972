"""Stratified and paired bootstrap confidence intervals, vectorised over replicates."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._utils import check_random_state
from ..data._validation import check_positive_int, check_probability
from ._intervals import difference_summary, percentile_ci
from ._metrics import HIGHER_IS_BETTER, check_metrics, weighted_metrics

#: at most this many weight cells are held in memory at once (B_chunk * n). 1M cells (8 MB per
#: float64 temporary) is measured fastest: 3.3x faster than 8M at n = 10k (the temporaries of
#: the metric kernels stay in cache and in the allocator's heap instead of being mapped and
#: zeroed by the kernel on every call); see benchmarks/bench_stats.py.
_MAX_CELLS = 1_000_000


def bootstrap_weights(
    n: int,
    n_boot: int,
    *,
    strata: np.ndarray | None = None,
    random_state: Any = None,
    chunk_size: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield bootstrap count matrices of shape ``(chunk, n)`` until ``n_boot`` rows were given.

    With ``strata`` (e.g. the class labels) each stratum is resampled to its own size, so every
    replicate keeps the original class balance (a stratified bootstrap). The sequence depends only
    on ``n``, ``n_boot``, ``strata`` and ``random_state``.

    Examples
    --------
    >>> W = np.vstack(list(bootstrap_weights(5, 3, random_state=0)))
    >>> W.shape, W.sum(axis=1).tolist()
    ((3, 5), [5.0, 5.0, 5.0])
    """
    rng = check_random_state(random_state)
    if chunk_size is None:
        chunk_size = max(1, min(n_boot, _MAX_CELLS // max(n, 1)))
    groups = [np.arange(n)] if strata is None else [
        np.flatnonzero(strata == level) for level in np.unique(strata)
    ]
    done = 0
    while done < n_boot:
        b = min(chunk_size, n_boot - done)
        W = np.zeros((b, n))
        for idx in groups:
            m = len(idx)
            draws = rng.integers(0, m, size=(b, m))
            flat = (np.arange(b)[:, None] * m + draws).ravel()
            W[:, idx] = np.bincount(flat, minlength=b * m).reshape(b, m)
        done += b
        yield W


def check_labels_scores(y: Any, scores: Any, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores as arrays that fit ``task``, or a ``ValueError`` naming the argument.

    Finite labels (and scores), one score per label for a binary or regression task, ``(n, K)``
    class probabilities for a multiclass task with labels in ``0..K-1``.

    Examples
    --------
    >>> check_labels_scores([0, 1], [[0.2, 0.5, 0.3]] * 2, "binary")
    Traceback (most recent call last):
    ...
    ValueError: scores has shape (2, 3); expected (2,) scores (one per label) for task='binary'.
    """
    y = np.asarray(y)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"y has shape {y.shape}; expected a non-empty 1-D array of labels.")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"y has dtype {y.dtype}; expected numeric labels.")
    if not np.all(np.isfinite(y.astype(np.float64))):
        raise ValueError("y contains NaN or infinite values; expected finite labels.")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contains NaN or infinite values; expected finite scores.")
    n = len(y)
    if task == "multiclass":
        if s.ndim != 2 or s.shape[0] != n:
            raise ValueError(f"scores has shape {s.shape}; expected ({n}, K) class "
                             "probabilities for task='multiclass'.")
        if np.any(y != np.round(y)) or y.min() < 0 or y.max() >= s.shape[1]:
            raise ValueError(f"y has labels outside 0..{s.shape[1] - 1}; expected class indices "
                             f"of the {s.shape[1]} score columns.")
    elif s.shape != (n,):
        raise ValueError(f"scores has shape {s.shape}; expected ({n},) scores (one per label) "
                         f"for task={task!r}.")
    return y, s


def _score_order(scores: np.ndarray, task: str) -> np.ndarray:
    """Order that sorts binary scores ascending (so rank metrics skip a gather per replicate).

    Samples are exchangeable in the bootstrap, so resampling in this order is the same bootstrap.
    """
    if task == "binary" and scores.ndim == 1:
        return np.argsort(scores, kind="mergesort")
    return np.arange(len(scores))


def _sorted_by_score(y: np.ndarray, scores: np.ndarray, task: str):
    order = _score_order(scores, task)
    return y[order], scores[order]


def _strata_for(y: np.ndarray, task: str, stratify: bool) -> np.ndarray | None:
    return y if (stratify and task in ("binary", "multiclass")) else None


def bootstrap_metrics(
    y: np.ndarray,
    scores: np.ndarray,
    *,
    task: str,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    stratify: bool = True,
    threshold: float = 0.5,
    random_state: Any = None,
) -> pd.DataFrame:
    """Metric panel with percentile bootstrap confidence intervals.

    Returns
    -------
    DataFrame with one row per metric and columns ``metric``, ``estimate``, ``ci_low``,
    ``ci_high``, ``se`` (bootstrap standard deviation), ``n``, ``n_boot``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300); s = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    >>> t = bootstrap_metrics(y, s, task="binary", metrics=["auroc"], n_boot=200, random_state=0)
    >>> bool(t.loc[0, "ci_low"] < t.loc[0, "estimate"] < t.loc[0, "ci_high"])
    True
    """
    metrics = check_metrics(metrics, task)
    n_boot = check_positive_int(n_boot, "n_boot")
    ci = check_probability(ci, "ci")
    y, scores = _sorted_by_score(*check_labels_scores(y, scores, task), task)
    point = weighted_metrics(y, scores, None, task=task, metrics=metrics, threshold=threshold)
    reps = {m: [] for m in metrics}
    for W in bootstrap_weights(len(y), n_boot, strata=_strata_for(y, task, stratify),
                               random_state=random_state):
        res = weighted_metrics(y, scores, W, task=task, metrics=metrics, threshold=threshold)
        for m in metrics:
            reps[m].append(res[m])
    rows = []
    for m in metrics:
        r = np.concatenate(reps[m])
        lo, hi = percentile_ci(r, ci)
        rows.append({
            "metric": m, "estimate": float(point[m][0]), "ci_low": float(lo), "ci_high": float(hi),
            "se": float(np.nanstd(r, ddof=1)) if np.isfinite(r).sum() > 1 else np.nan,
            "n": int(len(y)), "n_boot": n_boot,
        })
    return pd.DataFrame(rows)


def paired_bootstrap(
    y: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    *,
    task: str,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    stratify: bool = True,
    threshold: float = 0.5,
    random_state: Any = None,
) -> pd.DataFrame:
    """Paired bootstrap of the difference ``metric(a) - metric(b)`` on the same samples.

    Both models are evaluated on the *same* resampled rows in every replicate, so the interval
    accounts for the correlation between their errors.

    Returns
    -------
    DataFrame with columns ``metric``, ``estimate_a``, ``estimate_b``, ``difference``,
    ``ci_low``, ``ci_high``, ``p_value`` (two-sided bootstrap p of no difference), ``a_better``
    (True when the interval excludes 0 in a's favour, taking into account whether higher is
    better), ``n``, ``n_boot``.
    """
    metrics = check_metrics(metrics, task)
    n_boot = check_positive_int(n_boot, "n_boot")
    ci = check_probability(ci, "ci")
    # a row order symmetric in (a, b), so that swapping the models mirrors the result exactly
    _, sa = check_labels_scores(y, scores_a, task)
    _, sb = check_labels_scores(y, scores_b, task)
    order = _score_order(sa + sb, task) if sa.ndim == 1 else np.arange(len(sa))
    y, scores_a, scores_b = (np.asarray(v)[order] for v in (y, scores_a, scores_b))
    pa = weighted_metrics(y, scores_a, None, task=task, metrics=metrics, threshold=threshold)
    pb = weighted_metrics(y, scores_b, None, task=task, metrics=metrics, threshold=threshold)
    diffs = {m: [] for m in metrics}
    for W in bootstrap_weights(len(y), n_boot, strata=_strata_for(y, task, stratify),
                               random_state=random_state):
        ra = weighted_metrics(y, scores_a, W, task=task, metrics=metrics, threshold=threshold)
        rb = weighted_metrics(y, scores_b, W, task=task, metrics=metrics, threshold=threshold)
        for m in metrics:
            diffs[m].append(ra[m] - rb[m])
    rows = []
    for m in metrics:
        summ = difference_summary(np.concatenate(diffs[m]), ci)
        est = float(pa[m][0] - pb[m][0])
        lo, hi, p = summ["ci_low"], summ["ci_high"], summ["p_value"]
        sign = 1 if HIGHER_IS_BETTER[m] else -1
        rows.append({
            "metric": m, "estimate_a": float(pa[m][0]), "estimate_b": float(pb[m][0]),
            "difference": est, "ci_low": float(lo), "ci_high": float(hi), "p_value": float(p),
            "a_better": bool((sign * lo > 0) if sign > 0 else (sign * hi > 0)),
            "b_better": bool((sign * hi < 0) if sign > 0 else (sign * lo < 0)),
            "n": int(len(y)), "n_boot": n_boot,
        })
    return pd.DataFrame(rows)
