"""``contrast_attributions``: what the model does differently in one group of samples (Tip 9)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._explanation import AttributionResult
from .._result import Finding, ResultMixin, to_jsonable
from .._utils import check_random_state, renamed_keyword
from ..data._validation import check_positive_int, check_probability, describe
from ..stats import DEFAULT_CI, DEFAULT_FDR, bh_adjust, bootstrap_weights, percentile_ci
from ..stats._bootstrap import _MAX_CELLS
from ._common import MIN_N

STATISTICS = ("mean", "mean_abs")
#: default q-value under which a feature is reported as used differently.
ALPHA = DEFAULT_FDR


@dataclass(frozen=True, eq=False)
class ContrastResult(ResultMixin):
    """Per-feature difference in attribution between two groups of samples.

    Attributes
    ----------
    table : DataFrame
        One row per feature, largest absolute difference first: ``feature``, ``mean_a``,
        ``mean_b``, ``difference`` (a minus b), ``ci_low``/``ci_high`` (bootstrap percentile
        interval, each group resampled on its own), ``p_value`` (two-sided permutation test of
        the group labels), ``q_value`` (Benjamini–Hochberg over features), ``n_a``, ``n_b``.
    group_a, group_b : str
        Names of the two groups.
    statistic : {"mean", "mean_abs"}
        Mean signed attribution, or mean |attribution| (how much the feature is used).
    method, model_name : str
        Of the attribution.
    n_permutations, n_boot : int
    fdr, ci : float
        q-value under which a feature counts as used differently; interval coverage.
    params : dict
        What the contrast was computed with (``statistic``, ``n_permutations``, ``n_boot``,
        ``ci``, ``fdr``, ``random_state``).

    Examples
    --------
    >>> import numpy as np
    >>> from confoundry import AttributionResult
    >>> rng = np.random.default_rng(0)
    >>> v = rng.normal(size=(200, 3)); g = np.arange(200) < 100
    >>> v[g, 0] += 1.0                       # feature a0 is used differently in the group
    >>> attr = AttributionResult(v, 0.0, v, ["a0", "a1", "a2"], method="manual")
    >>> res = contrast_attributions(attr, g, n_permutations=50, n_boot=50, random_state=0)
    >>> res.table.shape, res.table.columns[:4].tolist()
    ((3, 10), ['feature', 'mean_a', 'mean_b', 'difference'])
    >>> res.group_a, res.group_b, res.table.loc[0, "feature"]
    ('in group', 'rest', 'a0')
    """

    table: pd.DataFrame
    group_a: str
    group_b: str
    statistic: str
    method: str
    model_name: str
    n_permutations: int
    n_boot: int
    fdr: float = DEFAULT_FDR
    ci: float = DEFAULT_CI
    params: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def findings(self) -> list[Finding]:
        """One ``attribution_contrast`` finding (info, Tip 9) naming the features used
        differently at q < ``fdr``, if any; none when either group has fewer than
        20 rows (the domains' floor, ``min_n``), since no claim rests on
        so few."""
        sig = self.table[self.table["q_value"] < self.fdr]
        if sig.empty or min(int(sig["n_a"].iloc[0]), int(sig["n_b"].iloc[0])) < MIN_N:
            return []
        top = sig.head(5)
        parts = [f"{r.feature} ({r.difference:+.3g}, q = {r.q_value:.2g})"
                 for r in top.itertuples()]
        what = "mean attribution" if self.statistic == "mean" else "mean |attribution|"
        return [Finding(
            "attribution_contrast", "info", 9,
            f"In '{self.group_a}' (n = {int(top['n_a'].iloc[0])}) against '{self.group_b}' "
            f"(n = {int(top['n_b'].iloc[0])}), {self.model_name or 'the model'} differs in "
            f"{what} of {len(sig)} feature(s): " + ", ".join(parts) + ".",
            subject=self.group_a, model=self.model_name or None, domain=self.group_a,
            evidence={"features": to_jsonable(top[["feature", "difference", "ci_low", "ci_high",
                                                   "p_value", "q_value"]]),
                      "statistic": self.statistic, "method": self.method,
                      "n_permutations": self.n_permutations, "fdr": self.fdr})]

    def _extra_dict(self) -> dict[str, Any]:
        return {"model": self.model_name}

    def plot(self, ax: Any = None, *, max_features: int = 12) -> Any:
        """Features whose attribution differs most: difference with CI, significant in colour."""
        import matplotlib.pyplot as plt

        t = self.table.head(max_features).iloc[::-1]
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.35 * len(t) + 1.8), layout="constrained")
        est = t["difference"].to_numpy(dtype=float)
        err = np.vstack([est - t["ci_low"].to_numpy(dtype=float),
                         t["ci_high"].to_numpy(dtype=float) - est])
        sig = t["q_value"].to_numpy(dtype=float) < self.fdr
        colors = np.where(sig, np.where(est > 0, "#C44E52", "#4C72B0"), "#B0B0B0")
        ypos = np.arange(len(t))
        ax.barh(ypos, est, color=colors, xerr=err, capsize=2, ecolor="#333333")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(ypos, [f"{f}{' *' if s else ''}" for f, s in zip(t["feature"], sig)])
        what = "mean attribution" if self.statistic == "mean" else "mean |attribution|"
        ax.set_xlabel(f"{what}: '{self.group_a}' minus '{self.group_b}'\n({self.ci:.0%} CI; "
                      f"* q < {self.fdr:g})")
        ax.set_title(f"What {self.model_name or 'the model'} does differently\n({self.method})",
                     fontsize=10)
        return ax.figure


def _groups(groups: Any, n: int) -> tuple[np.ndarray, str, str]:
    g = np.asarray(groups.to_numpy() if hasattr(groups, "to_numpy") else groups)
    if g.ndim != 1 or len(g) != n:
        raise ValueError(f"by={describe(groups)} does not match the attribution's {n} "
                         "samples; expected a boolean mask or a 2-level array of that length.")
    if g.dtype == bool:
        a, la, lb = g, "in group", "rest"
        name = getattr(groups, "name", None)
        if name is not None:
            la, lb = str(name), f"not {name}"
    else:
        levels = pd.unique(pd.Series(g))
        if len(levels) != 2:
            raise ValueError(f"by has {len(levels)} levels {describe(list(levels))}; expected "
                             "a boolean mask or exactly 2 levels.")
        try:
            levels = sorted(levels)
        except TypeError:
            pass
        a, la, lb = g == levels[1], str(levels[1]), str(levels[0])
    n_a = int(a.sum())
    if n_a < 2 or n - n_a < 2:
        raise ValueError(f"by has {n_a} samples in '{la}' and {n - n_a} in '{lb}'; expected "
                         "at least 2 in each group.")
    return a, la, lb


def contrast_attributions(
    attribution: AttributionResult,
    by: Any = None,
    *,
    n_permutations: int = 1000,
    random_state: Any = None,
    statistic: str = "mean",
    n_boot: int = 1000,
    ci: float = DEFAULT_CI,
    fdr: float = DEFAULT_FDR,
    groups: Any = None,
) -> ContrastResult:
    """Per-feature difference in attribution between two groups, with CI, p- and q-values.

    Contrast where the model fails (a slice from :func:`discover_slices`) with where it does
    not, or domain A with domain B: the features whose attributions differ are what the model
    does differently there.

    Parameters
    ----------
    attribution : AttributionResult
        Tabular attributions ``(n, d)`` of the model (``confoundry.attribute``).
    by : boolean mask or 2-level array of length n
        The two groups: group a is ``True`` (or the larger of the two sorted levels); group b
        the rest.
    n_permutations : int
        Label permutations of the two-sided test, all computed in one matrix product per chunk.
    random_state : None, int or Generator
    statistic : {"mean", "mean_abs"}
        Compare mean signed attributions (direction of the effect) or mean |attribution| (how
        much the feature is used).
    n_boot : int
        Bootstrap replicates of the interval (each group resampled on its own).
    ci : float
        Coverage of the interval.
    fdr : float
        q-value (Benjamini–Hochberg over features) under which a feature is reported.
    groups : deprecated
        Former name of ``by``.

    Returns
    -------
    ContrastResult

    Examples
    --------
    >>> import numpy as np
    >>> from confoundry import AttributionResult
    >>> rng = np.random.default_rng(0)
    >>> v = rng.normal(size=(300, 3)); g = np.arange(300) < 100
    >>> v[g, 0] += 1.0                       # feature a0 is used differently in the group
    >>> attr = AttributionResult(v, 0.0, v, ["a0", "a1", "a2"], method="manual")
    >>> res = contrast_attributions(attr, g, n_permutations=500, random_state=0)
    >>> res.table.loc[0, "feature"], bool(res.table.loc[0, "q_value"] < 0.01)
    ('a0', True)
    """
    if not isinstance(attribution, AttributionResult):
        raise TypeError(f"attribution has type {type(attribution).__name__}; expected a "
                        "confoundry.AttributionResult (from confoundry.attribute or explain()).")
    if not attribution.is_tabular:
        raise ValueError(f"attribution has values of shape {attribution.values.shape}; expected "
                         "tabular attributions (n, d). Aggregate image attributions into "
                         "regions first.")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic={statistic!r} is not valid; expected one of {STATISTICS}.")
    by = renamed_keyword("contrast_attributions", "groups", "by", groups, by)
    if by is None:
        raise TypeError("by is None; expected a boolean mask or a 2-level array, one entry per "
                        "sample of the attribution.")
    n_permutations = check_positive_int(n_permutations, "n_permutations")
    n_boot = check_positive_int(n_boot, "n_boot")
    ci = check_probability(ci, "ci")
    fdr = check_probability(fdr, "fdr")
    rng = check_random_state(random_state)
    V = attribution.values if statistic == "mean" else np.abs(attribution.values)
    bad = int(np.size(V) - np.isfinite(V).sum())
    if bad:
        raise ValueError(f"attribution has {bad} NaN or infinite value(s); expected finite "
                         "attributions (a mean over the groups would be NaN or infinite).")
    n, d = V.shape
    a, la, lb = _groups(by, n)
    n_a, n_b = int(a.sum()), int(n - a.sum())
    Va, Vb = V[a], V[~a]
    mean_a, mean_b = Va.mean(axis=0), Vb.mean(axis=0)
    obs = mean_a - mean_b

    # bootstrap: each group resampled on its own (B, n_g) @ (n_g, d)
    boot_a = np.vstack([W @ Va for W in bootstrap_weights(n_a, n_boot, random_state=rng)]) / n_a
    boot_b = np.vstack([W @ Vb for W in bootstrap_weights(n_b, n_boot, random_state=rng)]) / n_b
    lo, hi = percentile_ci(boot_a - boot_b, ci, axis=0)

    # permutation: permuted group indicators (B, n) @ V, chunked
    total = V.sum(axis=0)
    centred = np.abs(obs)
    hits = np.zeros(d)
    chunk = max(1, min(n_permutations, _MAX_CELLS // max(n, 1)))
    base = np.zeros(n)
    base[:n_a] = 1.0
    done = 0
    while done < n_permutations:
        b = min(chunk, n_permutations - done)
        G = rng.permuted(np.broadcast_to(base, (b, n)), axis=1)
        S = G @ V
        null = S / n_a - (total - S) / n_b
        hits += (np.abs(null) >= centred - 1e-12 * np.maximum(centred, 1.0)).sum(axis=0)
        done += b
    p = (1 + hits) / (1 + n_permutations)
    q = bh_adjust(p)
    table = pd.DataFrame({
        "feature": list(attribution.feature_names), "mean_a": mean_a, "mean_b": mean_b,
        "difference": obs, "ci_low": lo, "ci_high": hi, "p_value": p, "q_value": q,
        "n_a": n_a, "n_b": n_b,
    })
    table = table.iloc[np.argsort(-np.abs(obs), kind="stable")].reset_index(drop=True)
    return ContrastResult(table=table, group_a=la, group_b=lb, statistic=statistic,
                          method=attribution.method, model_name=attribution.model_name,
                          n_permutations=n_permutations, n_boot=n_boot, fdr=fdr, ci=ci,
                          params={"statistic": statistic, "n_permutations": n_permutations,
                                  "n_boot": n_boot, "ci": ci, "fdr": fdr,
                                  "random_state": random_state if random_state is None
                                  or isinstance(random_state, (int, np.integer))
                                  else type(random_state).__name__})
