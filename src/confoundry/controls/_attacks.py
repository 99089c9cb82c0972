"""The membership attacks that need no shadow models: per-record attack scores, and the ROC
statistics (AUROC, TPR at a low FPR, advantage) for a matrix of bootstrap weights."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import entr

from ..data._validation import describe
from ..stats import per_sample_loss

ATTACKS = ("loss", "confidence", "entropy")
#: attacks that need predicted probabilities (not defined for regression).
PROBABILITY_ATTACKS = ("confidence", "entropy")


def _round_sig(x: np.ndarray, digits: int = 12) -> np.ndarray:
    """Round to ``digits`` significant digits, so that outputs equal up to floating-point noise
    (e.g. the order of a sum) tie instead of being ordered by that noise."""
    x = np.asarray(x, dtype=np.float64)
    mag = np.floor(np.log10(np.where(x != 0, np.abs(x), 1.0)))
    scale = 10.0 ** (digits - 1 - mag)
    return np.round(x * scale) / scale


def attack_scores(
    y: np.ndarray, scores: np.ndarray, task: str, attack: str
) -> np.ndarray:
    """Per-sample membership scores: the higher, the more the record looks like a member.

    ``loss`` is minus the per-sample loss (log-loss for classifiers, squared error for
    regression; Yeom et al. 2018), ``confidence`` the largest predicted class probability,
    ``entropy`` minus the entropy of the predicted distribution.

    Examples
    --------
    >>> attack_scores(np.array([1, 0]), np.array([0.9, 0.9]), "binary", "loss").round(3)
    array([-0.105, -2.303])
    """
    y = np.asarray(y)
    s = np.asarray(scores, dtype=np.float64)
    if task == "regression":
        if attack != "loss":
            raise ValueError(f"attack={attack!r} needs class probabilities; for task='regression' "
                             "only the 'loss' attack (squared error) is defined.")
        return _round_sig(-per_sample_loss(y.astype(np.float64), s, task, "squared"))
    if task == "binary":
        p = np.clip(s, 0.0, 1.0)
        P = np.column_stack([1 - p, p])
    else:
        P = np.clip(s, 0.0, None)
        P = P / np.where(P.sum(axis=1, keepdims=True) > 0, P.sum(axis=1, keepdims=True), 1.0)
    if attack == "loss":
        # log P(true class) of the clipped, renormalised distribution
        out = -per_sample_loss(y, P, "multiclass", "log_loss")
    elif attack == "confidence":
        out = P.max(axis=1)
    elif attack == "entropy":
        out = -entr(P).sum(axis=1)
    else:
        out = None
    if out is not None:
        return _round_sig(out)
    raise ValueError(f"attack={attack!r} is not valid; expected one of {ATTACKS}.")


def roc_stats(z: np.ndarray, s: np.ndarray, W: np.ndarray, fpr: float,
               order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attack AUROC, TPR at FPR = ``fpr`` and the maximal advantage TPR - FPR, per row of ``W``.

    One sort serves every bootstrap replicate (rows of ``W`` hold sample counts). The TPR is read
    from the ROC interpolated between its vertices, which an attacker attains by flipping a biased
    coin at the threshold, so the value is attainable, not optimistic. Ties count one half in the
    AUROC, as in scikit-learn.
    """
    if order is None:
        order = np.argsort(-s, kind="mergesort")
    so = s[order]
    Wo = W[:, order]  # a copy: safe to modify in place
    pos = Wo * z[order].astype(Wo.dtype)  # member weight per record, in score order
    neg = np.subtract(Wo, pos, out=Wo)
    starts = np.flatnonzero(np.r_[True, so[1:] != so[:-1]])  # first record of each tie group
    if len(starts) < len(so):  # ties: one ROC vertex per tie group
        pos, neg = np.add.reduceat(pos, starts, axis=1), np.add.reduceat(neg, starts, axis=1)
    # counts are integers: the running sums are exact in float32 below 2**24 records
    acc = np.float32 if Wo.dtype == np.float32 and W.shape[1] < 2**24 else np.float64
    tp = np.cumsum(pos, axis=1, dtype=acc).astype(np.float64)
    fp = np.cumsum(neg, axis=1, dtype=acc).astype(np.float64)
    P, N = tp[:, -1].copy(), fp[:, -1].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        # sum over vertices of pos * (negatives strictly below + half the tied ones)
        below = np.einsum("ij,ij->i", pos.astype(np.float64), fp - 0.5 * neg)
        auroc = (P * N - below) / (P * N)
        tpr = np.divide(tp, P[:, None], out=tp)
        fpr_ = np.divide(fp, N[:, None], out=fp)
    del pos, neg
    rows = np.arange(W.shape[0])
    # vertices are the origin (0, 0) then the columns; k = last vertex with FPR <= target
    k = np.sum(fpr_ <= fpr + 1e-12, axis=1)  # 0 = the origin
    k1 = np.minimum(k + 1, fpr_.shape[1])

    def vertex(v: np.ndarray, j: np.ndarray) -> np.ndarray:
        return np.where(j > 0, v[rows, np.maximum(j - 1, 0)], 0.0)

    x0, x1 = vertex(fpr_, k), vertex(fpr_, k1)
    y0, y1 = vertex(tpr, k), vertex(tpr, k1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(x1 > x0, (fpr - x0) / np.where(x1 > x0, x1 - x0, 1.0), 0.0)
    tpr_at = y0 + np.clip(t, 0, 1) * (y1 - y0)
    adv = np.maximum(np.max(tpr - fpr_, axis=1), 0.0)  # the origin's advantage is 0
    return auroc, tpr_at, adv


def roc_curve_points(z: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC vertices (FPR, TPR) of scores ``s`` for members ``z == 1``, starting at (0, 0)
    (:func:`sklearn.metrics.roc_curve`, every vertex kept)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(z, s, drop_intermediate=False)
    return fpr, tpr


def mann_whitney_p(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """One-sided p-value of "members score no higher than non-members" (tie-corrected)."""
    from scipy.stats import mannwhitneyu

    if np.ptp(np.r_[members, nonmembers]) == 0:
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = mannwhitneyu(members, nonmembers, alternative="greater", method="asymptotic").pvalue
    return float(p) if np.isfinite(p) else 1.0


def check_attacks(attacks: Any) -> tuple[str, ...]:
    if isinstance(attacks, str):
        attacks = (attacks,)
    try:
        attacks = tuple(attacks)
    except TypeError:
        raise TypeError(f"attacks={describe(attacks)} is not a sequence; expected names from "
                        f"{ATTACKS}.") from None
    if not attacks:
        raise ValueError(f"attacks={attacks!r} is empty; expected at least one of {ATTACKS}.")
    bad = [a for a in attacks if a not in ATTACKS]
    if bad:
        raise ValueError(f"attacks={list(attacks)} has {bad}, not valid; expected names from "
                         f"{ATTACKS}.")
    return tuple(dict.fromkeys(attacks))
