"""Multiple-testing correction and permutation p-values."""

from __future__ import annotations

import numpy as np


def bh_adjust(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values); NaNs are kept and ignored.

    Examples
    --------
    >>> bh_adjust(np.array([0.01, 0.04, 0.03, np.nan])).round(3).tolist()
    [0.03, 0.04, 0.04, nan]
    """
    p = np.asarray(p_values, dtype=float)
    q = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv)
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(ranked, 0, 1)
    q[ok] = out
    return q


def permutation_p_value(observed: float, null: np.ndarray, *, alternative: str = "greater") -> float:
    """Monte-Carlo permutation p-value ``(1 + #{null >= observed}) / (1 + B)``.

    Never zero: its resolution is ``1 / (B + 1)``.

    Examples
    --------
    >>> permutation_p_value(3.0, np.array([0.0, 1.0, 4.0]))
    0.5
    """
    null = np.asarray(null, dtype=float)
    if alternative == "greater":
        hits = np.sum(null >= observed - 1e-12 * abs(observed))
    elif alternative == "less":
        hits = np.sum(null <= observed + 1e-12 * abs(observed))
    elif alternative == "two-sided":
        hits = np.sum(np.abs(null) >= abs(observed) - 1e-12 * abs(observed))
    else:
        raise ValueError(f"alternative={alternative!r} is not valid; expected 'greater', 'less' "
                         "or 'two-sided'.")
    return float((1 + hits) / (1 + len(null)))


def bootstrap_p_value(replicates: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "the quantity is 0" from its bootstrap replicates.

    Twice the smaller share of replicates on either side of 0, at most 1 and never below
    ``1 / (B + 1)`` (B finite replicates; NaN replicates are dropped, NaN when none is left).

    Examples
    --------
    >>> import numpy as np
    >>> bootstrap_p_value(np.r_[np.full(95, 0.2), np.full(5, -0.1)])
    0.1
    >>> bootstrap_p_value(np.full(99, 0.3))
    0.01
    """
    d = np.asarray(replicates, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    if not len(d):
        return float("nan")
    p = min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0)))
    return float(max(p, 1.0 / (len(d) + 1)))


def monte_carlo_se(p: float, n_permutations: int) -> float:
    """Standard error of a Monte-Carlo p-value estimated from ``n_permutations`` draws."""
    return float(np.sqrt(p * (1 - p) / max(n_permutations, 1)))
