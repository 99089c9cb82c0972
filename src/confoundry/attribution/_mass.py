"""Where does the model look? Share of attribution inside a region, and whether it differs by site.

:func:`attribution_mass` measures, per image, the share of absolute attribution that falls
inside a region (a lung mask, a tissue mask, a set of features). :func:`mass_by_group` tests
whether that share differs between groups (sites, scanners, batches): a model that looks inside
the lungs at one hospital and at a corner token at another is using the hospital.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, internal
from .._utils import check_random_state, renamed_keyword
from ..data._validation import check_positive_int, check_probability, describe
from ..stats import (
    DEFAULT_CI,
    DEFAULT_FDR,
    bh_adjust,
    monte_carlo_se,
    percentile_ci,
    permutation_p_value,
)
from ._common import seed_record
from ._share import attribution_mass

__all__ = ["MassByGroupResult", "attribution_mass", "mass_by_group"]

#: at most this many cells (permutations x samples) are held in memory at once
_MAX_CELLS = 4_000_000


def _kruskal_stats(ranks: np.ndarray, codes: np.ndarray, n_groups: int, perms: np.ndarray | None
                   ) -> np.ndarray:
    """Kruskal-Wallis H (without tie correction) for the observed grouping (``perms=None``) or
    for each row of ``perms`` (permutations of positions), vectorised with ``bincount``."""
    n = len(ranks)
    sizes = np.bincount(codes, minlength=n_groups).astype(float)
    if perms is None:
        sums = np.bincount(codes, weights=ranks, minlength=n_groups)[None]
    else:
        b = perms.shape[0]
        flat = (np.arange(b)[:, None] * n_groups + codes[perms]).ravel()
        sums = np.bincount(flat, weights=np.broadcast_to(ranks, (b, n)).ravel(),
                           minlength=b * n_groups).reshape(b, n_groups)
    return 12.0 / (n * (n + 1)) * (sums**2 / sizes).sum(axis=1) - 3.0 * (n + 1)


@dataclass(frozen=True, eq=False)
class MassByGroupResult(ResultMixin):
    """Does the share of attribution inside a region differ between groups?

    A Kruskal-Wallis test of the per-sample shares across groups with a permutation p-value
    (groups shuffled over samples), the effect size epsilon-squared ``H / (n - 1)`` (0: no
    difference; 0.01 small, 0.06 medium, 0.14 large by the usual conventions) and, per group, the
    mean share with a percentile bootstrap CI. Built by :func:`mass_by_group`.

    Attributes
    ----------
    table : DataFrame
        One row per group: ``group``, ``n``, ``mean_share``, ``ci_low``, ``ci_high``,
        ``median_share``, ``mean_rank_excess`` (mean rank minus its stratum's mean rank) and,
        with ``strata``, ``adjusted_mean_share`` with ``adjusted_ci_low``/``adjusted_ci_high``:
        the group's mean directly standardised to the pooled strata mix (what its mean would be
        with everyone's label mix; NaN when the group lacks a stratum). With strata, compare
        groups on the adjusted column: the raw means mix the group effect with label mix.
    statistic : float
        Kruskal-Wallis H, tie-corrected.
    p_value, p_value_se : float
        Permutation p-value and its Monte-Carlo standard error.
    effect_size : float
        Epsilon-squared, ``H / (n - 1)``.
    pairwise : DataFrame
        Every pair of groups: difference in mean share, Mann-Whitney-type permutation p and
        Benjamini-Hochberg q.
    fdr : float
        Level at which the difference is reported (``significant``, ``findings``).
    params : dict
        Provenance: ``n_permutations``, ``n_boot``, ``fdr``, ``ci``, ``random_state``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> share = np.r_[rng.uniform(0.6, 0.9, 40), rng.uniform(0.1, 0.4, 40)]
    >>> res = mass_by_group(share, ["A"] * 40 + ["B"] * 40, n_permutations=50, n_boot=50,
    ...                     random_state=0)
    >>> [(str(g), int(n)) for g, n in res.table[["group", "n"]].itertuples(index=False)], res.n
    ([('A', 40), ('B', 40)], 80)
    >>> bool(res.p_value < 0.05), res.pairwise.columns.tolist()[:3]
    (True, ['group_a', 'group_b', 'difference'])
    """

    table: pd.DataFrame
    statistic: float
    p_value: float
    p_value_se: float
    effect_size: float
    n: int
    n_permutations: int
    fdr: float = DEFAULT_FDR
    region: str = "mask"
    group_name: str = "group"
    pairwise: pd.DataFrame = field(default_factory=pd.DataFrame)
    conditional: bool = False
    shares: np.ndarray = internal(default_factory=lambda: np.empty(0))
    groups: np.ndarray = internal(default_factory=lambda: np.empty(0))
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def significant(self) -> bool:
        return bool(self.p_value < self.fdr)

    @property
    def alpha(self) -> float:
        """The old name of :attr:`fdr`."""
        return self.fdr

    def to_frame(self) -> pd.DataFrame:
        """Per-group shares, with the overall test repeated on every row."""
        out = self.table.copy()
        out["statistic"] = self.statistic
        out["effect_size"] = self.effect_size
        out["p_value"] = self.p_value
        out["n_total"] = self.n
        out["n_permutations"] = self.n_permutations
        out["significant"] = self.significant
        return out

    def _extra_dict(self) -> dict[str, Any]:
        return {"significant": self.significant}

    def findings(self) -> list[Finding]:
        if not self.significant:
            return []
        t = self.table.sort_values("mean_share")
        lo, hi = t.iloc[0], t.iloc[-1]
        severity = "high" if self.effect_size >= 0.14 else ("medium" if self.effect_size >= 0.06
                                                            else "low")
        title = (f"The share of attribution inside the {self.region} differs by "
                 f"{self.group_name}: {lo['mean_share']:.2f} at {lo['group']} vs "
                 f"{hi['mean_share']:.2f} at {hi['group']} (epsilon^2 = "
                 f"{self.effect_size:.2f}, permutation p = {self.p_value:.3g}"
                 f"{', within strata' if self.conditional else ''}); the model looks at "
                 f"different places depending on the {self.group_name}.")
        return [Finding("attribution_by_group", severity, 4, title, subject=self.group_name,
                        evidence={"statistic": self.statistic, "p_value": self.p_value,
                                  "effect_size": self.effect_size, "n": self.n,
                                  "n_permutations": self.n_permutations,
                                  "mean_share": dict(zip(self.table["group"].astype(str),
                                                         self.table["mean_share"]))})]

    def plot(self, ax: Any = None) -> Any:
        """Strip plot of the per-sample shares per group, with each group's mean and CI."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(1.4 * len(self.table) + 2, 3.5), layout="constrained")
        rng = np.random.default_rng(0)
        labels = self.table["group"].astype(str).tolist()
        for i, g in enumerate(labels):
            s = self.shares[self.groups.astype(str) == g]
            ax.scatter(i + rng.uniform(-0.2, 0.2, len(s)), s, s=6, alpha=0.35, color="#4C72B0")
            row = self.table.iloc[i]
            ax.errorbar(i, row["mean_share"], yerr=[[row["mean_share"] - row["ci_low"]],
                                                    [row["ci_high"] - row["mean_share"]]],
                        fmt="o", color="#C44E52", capsize=4, zorder=3)
        ax.set_xticks(range(len(labels)), [f"{g}\n(n={m})" for g, m in
                                           zip(labels, self.table["n"])])
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"share of |attribution| in {self.region}")
        ax.set_title(f"Kruskal-Wallis H = {self.statistic:.1f}, eps^2 = {self.effect_size:.2f}, "
                     f"p = {self.p_value:.3g}", fontsize=9)
        return ax.figure


def mass_by_group(
    mass: Any,
    by: Any = None,
    *,
    n_permutations: int = 1000,
    n_boot: int = 1000,
    strata: Any = None,
    fdr: float = DEFAULT_FDR,
    ci: float = DEFAULT_CI,
    region: str = "mask",
    random_state: Any = None,
    groups: Any = None,
    alpha: float | None = None,
) -> MassByGroupResult:
    """Test whether the share of attribution inside a region differs between groups.

    The statistic is Kruskal-Wallis H on the per-sample shares (rank-based, so robust to the
    skewed, bounded shares), summed over strata when ``strata`` is given; its p-value comes from
    permuting the group labels (within strata), at least ``1 / (n_permutations + 1)``, so no
    chi-squared approximation is needed for small groups. The effect size is epsilon-squared,
    ``H / (n - n_strata)``.
    Every pair of groups is also compared (difference in mean rank, permutation p, BH q).

    Parameters
    ----------
    mass : array-like of shape (n,)
        Per-sample shares, e.g. from :func:`attribution_mass`. NaN samples are dropped.
    by : array-like of shape (n,)
        Group of each sample (site, scanner, batch); at least two groups with two samples each.
        A named Series gives its name to the findings.
    n_permutations : int, default 1000
    n_boot : int, default 1000
        Bootstrap replicates for the per-group CI of the mean share.
    strata : array-like of shape (n,), optional
        Condition on this variable, usually the true label: ranks are taken and H is computed
        within each stratum and summed, and groups are permuted within strata only. Use it
        whenever the outcome differs by group: attributions differ between positive and negative
        images, so a site with more pneumonia would otherwise look at the lungs more even for a
        model that ignores the site.
    fdr : float, default 0.05
        Level at which a difference is reported as a finding.
    ci : float, default 0.95
        Level of the per-group bootstrap CIs.
    region : str, default "mask"
        Name of the region, for titles (e.g. ``"lung field"``).
    random_state : None, int or numpy Generator
    groups, alpha : deprecated
        The old names of ``by`` and ``fdr``.

    Returns
    -------
    MassByGroupResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> share = np.r_[rng.uniform(0.6, 0.9, 40), rng.uniform(0.1, 0.4, 40)]
    >>> res = mass_by_group(share, ["A"] * 40 + ["B"] * 40, n_permutations=200, random_state=0)
    >>> res.p_value < 0.01, round(res.effect_size, 2)
    (True, 0.75)
    """
    from scipy.stats import rankdata

    by = renamed_keyword("mass_by_group", "groups", "by", groups, by)
    fdr = renamed_keyword("mass_by_group", "alpha", "fdr", alpha, fdr, new_default=DEFAULT_FDR)
    if by is None:
        raise TypeError("mass_by_group needs by= (the group of each sample: site, scanner, "
                        "batch); got None.")
    n_permutations = check_positive_int(n_permutations, "n_permutations")
    n_boot = check_positive_int(n_boot, "n_boot")
    fdr = check_probability(fdr, "fdr")
    ci = check_probability(ci, "ci")
    groups = by
    try:
        s = np.asarray(mass, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"mass={describe(mass)}; expected a numeric array of shares.") from None
    if isinstance(groups, pd.DataFrame):
        if groups.shape[1] != 1:
            raise ValueError(f"by is a DataFrame with {groups.shape[1]} columns; expected one "
                             "column (or a Series / array).")
        groups = groups.iloc[:, 0]
    group_name = str(groups.name) if isinstance(groups, pd.Series) and groups.name is not None \
        else "group"
    g = np.asarray(groups.astype(str) if isinstance(groups, pd.Series) else groups)
    if g.ndim != 1 or len(g) != len(s):
        raise ValueError(f"by has shape {g.shape} but mass has {len(s)} values; expected one "
                         "group per value (by= holds the groups of the samples).")
    if pd.isna(pd.Series(g)).any():
        raise ValueError("by has missing values; expected a group for every sample.")
    if strata is None:
        st = np.zeros(len(s), dtype=np.int64)
    else:
        st_arr = np.asarray(strata.astype(str) if isinstance(strata, pd.Series) else strata)
        if st_arr.shape != (len(s),) or pd.isna(pd.Series(st_arr)).any():
            raise ValueError(f"strata has shape {st_arr.shape}; expected one non-missing value "
                             f"per share ({len(s)}).")
        st = np.unique(st_arr.astype(str), return_inverse=True)[1]
    keep = np.isfinite(s)
    s, g, st = s[keep], g[keep], st[keep]
    from .._utils import natural_order

    levels = np.array(natural_order(g.astype(str).tolist()), dtype=str)  # 2 before 10
    codes = pd.Categorical(g.astype(str), categories=levels).codes.astype(np.int64)
    sizes = np.bincount(codes, minlength=len(levels))
    if len(levels) < 2 or np.any(sizes < 2):
        raise ValueError(f"by has levels {levels.tolist()} with sizes {sizes.tolist()} (after "
                         "dropping NaN shares); expected at least two groups of two samples.")
    rng = check_random_state(random_state)
    n, k = len(s), len(levels)
    n_strata = int(st.max()) + 1
    chunk = max(1, _MAX_CELLS // n)
    h_obs = 0.0
    null = np.zeros(n_permutations)
    pair_null = np.zeros((n_permutations, k))
    ranks = np.empty(n)
    for j in range(n_strata):
        idx = np.flatnonzero(st == j)
        m = len(idx)
        ranks[idx] = rankdata(s[idx])
        c = codes[idx]
        present = np.unique(c)
        if m < 3 or len(present) < 2:
            continue
        c = np.searchsorted(present, c)
        r = ranks[idx]
        _, tie_counts = np.unique(s[idx], return_counts=True)
        tie = 1.0 - float((tie_counts**3 - tie_counts).sum()) / (m**3 - m)
        tie = tie if tie > 0 else 1.0
        kj = len(present)
        h_obs += float(_kruskal_stats(r, c, kj, None)[0]) / tie
        for start in range(0, n_permutations, chunk):
            b = min(chunk, n_permutations - start)
            perms = rng.permuted(np.broadcast_to(np.arange(m), (b, m)), axis=1)
            null[start:start + b] += _kruskal_stats(r, c, kj, perms) / tie
            flat = (np.arange(b)[:, None] * kj + c[perms]).ravel()
            sums = np.bincount(flat, weights=np.broadcast_to(r, (b, m)).ravel(),
                               minlength=b * kj).reshape(b, kj)
            pair_null[start:start + b, present] += sums - r.mean() * np.bincount(
                c, minlength=kj)[None]
    p = permutation_p_value(h_obs, null)
    eps2 = float(h_obs / max(n - n_strata, 1))

    # per-group means with bootstrap CIs (resampling within each group, vectorised)
    rows = []
    centred = ranks - np.bincount(st, weights=ranks)[st] / np.bincount(st)[st]
    excess = np.bincount(codes, weights=centred, minlength=k)
    w_strata = np.bincount(st, minlength=n_strata) / n
    for j, level in enumerate(levels):
        sj = s[codes == j]
        idx = rng.integers(0, len(sj), size=(n_boot, len(sj)))
        boots = sj[idx].mean(axis=1)
        lo, hi = percentile_ci(boots, ci)
        row = {"group": level, "n": int(len(sj)), "mean_share": float(sj.mean()),
               "ci_low": float(lo), "ci_high": float(hi),
               "median_share": float(np.median(sj)),
               "mean_rank_excess": float(excess[j] / sizes[j])}
        if strata is not None:
            # directly standardised to the pooled strata mix: the group's mean share had it
            # the same label mix as everyone (NaN when a stratum is missing from the group)
            adj, adj_boot = 0.0, np.zeros(n_boot)
            for t in range(n_strata):
                cell = s[(codes == j) & (st == t)]
                if len(cell) == 0:
                    adj, adj_boot = np.nan, np.full(n_boot, np.nan)
                    break
                ci_idx = rng.integers(0, len(cell), size=(n_boot, len(cell)))
                adj += w_strata[t] * cell.mean()
                adj_boot += w_strata[t] * cell[ci_idx].mean(axis=1)
            a_lo, a_hi = ((np.nan, np.nan) if not np.isfinite(adj)
                          else percentile_ci(adj_boot, ci))
            row |= {"adjusted_mean_share": float(adj), "adjusted_ci_low": float(a_lo),
                    "adjusted_ci_high": float(a_hi)}
        rows.append(row)
    table = pd.DataFrame(rows)

    # pairwise: difference in mean (within-stratum centred) rank, permutation p, BH q
    pair_null = pair_null / sizes
    mean_excess = excess / sizes
    prs = []
    for a in range(k):
        for b in range(a + 1, k):
            obs = mean_excess[a] - mean_excess[b]
            pv = permutation_p_value(abs(obs), np.abs(pair_null[:, a] - pair_null[:, b]))
            prs.append({"group_a": levels[a], "group_b": levels[b],
                        "difference": float(s[codes == a].mean() - s[codes == b].mean()),
                        "rank_difference": float(obs), "p_value": pv})
    pairwise = pd.DataFrame(prs)
    pairwise["q_value"] = bh_adjust(pairwise["p_value"].to_numpy())
    return MassByGroupResult(table=table, statistic=h_obs, p_value=p,
                             p_value_se=monte_carlo_se(p, n_permutations), effect_size=eps2,
                             n=n, n_permutations=n_permutations, fdr=fdr, region=region,
                             group_name=group_name, pairwise=pairwise, shares=s, groups=g,
                             conditional=strata is not None,
                             params={"n_permutations": n_permutations, "n_boot": n_boot,
                                     "fdr": fdr, "ci": ci, "strata": strata is not None,
                                     "random_state": seed_record(random_state)})
