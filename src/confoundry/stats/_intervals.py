"""Intervals shared by every step: percentile bootstrap CI, the summary of a bootstrapped
difference, the Wilson interval of a proportion."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._conventions import DEFAULT_CI, Z95
from ._tests import bootstrap_p_value


def percentile_ci(replicates: Any, ci: float = DEFAULT_CI, axis: int | None = 0) -> tuple[Any, Any]:
    """Percentile bootstrap interval of ``replicates`` along ``axis`` (NaN replicates ignored).

    Returns floats for 1-D input (or ``axis=None``), arrays otherwise; NaN where no replicate
    is finite.

    Examples
    --------
    >>> import numpy as np
    >>> [round(v, 6) for v in percentile_ci(np.arange(101.0))]
    [2.5, 97.5]
    >>> percentile_ci([np.nan, np.nan])
    (nan, nan)
    """
    r = np.asarray(replicates, dtype=np.float64)
    a = (1 - ci) / 2
    if r.ndim <= 1 or axis is None:
        r = r.ravel()
        r = r[np.isfinite(r)]
        if not len(r):
            return float("nan"), float("nan")
        lo, hi = np.quantile(r, [a, 1 - a])
        return float(lo), float(hi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN
        lo = np.nanquantile(r, a, axis=axis)
        hi = np.nanquantile(r, 1 - a, axis=axis)
    return lo, hi


def difference_summary(replicates: Any, ci: float = DEFAULT_CI) -> dict[str, float]:
    """Percentile CI and two-sided bootstrap p-value of a bootstrapped difference.

    ``replicates`` holds the bootstrap replicates of ``a - b`` (NaN replicates dropped). Returns
    ``{"ci_low", "ci_high", "p_value", "n_boot"}`` (``n_boot`` counts the finite replicates).

    Examples
    --------
    >>> import numpy as np
    >>> s = difference_summary(np.r_[np.full(95, 0.2), np.full(5, -0.1)])
    >>> s["p_value"], s["n_boot"]
    (0.1, 100)
    """
    d = np.asarray(replicates, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    if not len(d):
        return {"ci_low": float("nan"), "ci_high": float("nan"), "p_value": float("nan"),
                "n_boot": 0}
    lo, hi = percentile_ci(d, ci)
    return {"ci_low": lo, "ci_high": hi, "p_value": bootstrap_p_value(d), "n_boot": int(len(d))}


def wilson_interval(k: Any, n: Any, z: float = Z95) -> tuple[Any, Any]:
    """Wilson score interval of ``k`` successes out of ``n`` (element-wise; NaN where n == 0).

    Examples
    --------
    >>> lo, hi = wilson_interval(0, 10)
    >>> round(float(lo), 3), round(float(hi), 3)
    (0.0, 0.278)
    """
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        den = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / den
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / den
    lo, hi = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    return (float(lo), float(hi)) if lo.ndim == 0 else (lo, hi)
