"""``compare_attributions``: do two explanations (e.g. a DL model and a glass-box model) agree?

Agreement metrics follow Krishna et al., "The Disagreement Problem in Explainable Machine
Learning" (2022), applied to *global* feature rankings (mean |attribution|), with a bootstrap
over samples for every metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._explanation import AttributionResult
from .._result import Finding, ResultMixin, internal
from .._utils import check_random_state
from ..data._validation import check_positive_int, check_probability
from ..stats import DEFAULT_CI, bootstrap_weights, percentile_ci
from ._common import check_tabular, rowwise_corr, seed_record, weighted_rank

SUMMARY_KEYS = ("rank_correlation", "feature_agreement", "rank_agreement", "sign_agreement",
                "signed_rank_agreement", "pairwise_rank_agreement")


def _global_stats(W: np.ndarray | None, A: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, ...]:
    """Importance (mean |a|) and direction (covariance of x and a) per feature, for every row of
    a bootstrap count matrix ``W`` (``(B, n)``; None: the sample itself)."""
    n = A.shape[0]
    if W is None:
        W = np.ones((1, n))
    tot = W.sum(axis=1, keepdims=True)
    imp = W @ np.abs(A) / tot
    ex = W @ X / tot
    ea = W @ A / tot
    exa = W @ (X * A) / tot
    return imp, exa - ex * ea


#: up to this many features the pairwise rank agreement compares every pair directly; above
#: it, from Kendall's tau-b and the tie counts (:func:`pairwise_by_kendall`; the same number).
PAIRWISE_DIRECT_D = 200


def _tied_pairs(*cols: np.ndarray) -> int:
    """Pairs of positions equal in every one of ``cols``."""
    _, counts = np.unique(np.column_stack(cols), axis=0, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def pairwise_by_kendall(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pairs of features ordered the same way by ``a`` and ``b`` (ties in both count
    as the same order), from Kendall's tau-b (scipy, ``O(d log d)``): with ``P`` pairs,
    ``T_a``/``T_b`` tied in ``a``/``b`` and ``T_ab`` in both, the concordant minus discordant
    pairs are ``tau_b sqrt((P - T_a)(P - T_b))``, their sum ``P - T_a - T_b + T_ab``.

    Examples
    --------
    >>> a = np.array([3.0, 1.0, 2.0, 2.0]); b = np.array([3.0, 2.0, 1.0, 1.0])
    >>> i, j = np.triu_indices(4, 1)
    >>> direct = float(np.mean(np.sign(a[i] - a[j]) == np.sign(b[i] - b[j])))
    >>> bool(np.isclose(pairwise_by_kendall(a, b), direct))
    True
    """
    from scipy.stats import kendalltau

    d = len(a)
    P = d * (d - 1) // 2
    if P == 0:
        return 1.0
    Ta, Tb, Tab = _tied_pairs(a), _tied_pairs(b), _tied_pairs(a, b)
    if P - Ta == 0 or P - Tb == 0:
        diff = 0.0
    else:
        tau = kendalltau(a, b).statistic
        diff = 0.0 if not np.isfinite(tau) else float(tau) * np.sqrt((P - Ta) * (P - Tb))
    total = P - Ta - Tb + Tab  # concordant + discordant
    return float(((total + diff) / 2 + Tab) / P)


def _metrics(imp_a: np.ndarray, imp_b: np.ndarray, dir_a: np.ndarray, dir_b: np.ndarray,
             k: int) -> dict[str, np.ndarray]:
    """The six agreement metrics for every row of ``(B, d)`` importances and directions."""
    B, d = imp_a.shape
    # stable order: larger importance first, ties broken by column position
    order_a = np.argsort(-imp_a, axis=1, kind="stable")[:, :k]
    order_b = np.argsort(-imp_b, axis=1, kind="stable")[:, :k]
    in_a = np.zeros((B, d), bool)
    in_b = np.zeros((B, d), bool)
    rows = np.arange(B)[:, None]
    in_a[rows, order_a] = True
    in_b[rows, order_b] = True
    sa, sb = np.sign(dir_a), np.sign(dir_b)
    both = in_a & in_b
    same_pos = order_a == order_b
    sign_at_pos = sa[rows, order_a] == sb[rows, order_a]
    out = {
        "rank_correlation": rowwise_corr(weighted_rank(imp_a), weighted_rank(imp_b)),
        "feature_agreement": both.sum(axis=1) / k,
        "rank_agreement": same_pos.sum(axis=1) / k,
        "sign_agreement": (both & (sa == sb)).sum(axis=1) / k,
        "signed_rank_agreement": (same_pos & sign_at_pos).sum(axis=1) / k,
    }
    if d > PAIRWISE_DIRECT_D:  # thousands of genes: O(d log d) per replicate, not O(d^2)
        out["pairwise_rank_agreement"] = np.array(
            [pairwise_by_kendall(imp_a[r], imp_b[r]) for r in range(B)])
        return out
    iu, ju = np.triu_indices(d, 1)
    if len(iu):
        pra = np.empty(B)
        step = max(1, 4_000_000 // max(len(iu), 1))
        for s in range(0, B, step):
            da = np.sign(imp_a[s:s + step, iu] - imp_a[s:s + step, ju])
            db = np.sign(imp_b[s:s + step, iu] - imp_b[s:s + step, ju])
            pra[s:s + step] = (da == db).mean(axis=1)
        out["pairwise_rank_agreement"] = pra
    else:
        out["pairwise_rank_agreement"] = np.ones(B)
    return out


@dataclass(frozen=True, eq=False)
class AgreementResult(ResultMixin):
    """How far two explanations agree, feature by feature and overall.

    Attributes
    ----------
    table : DataFrame
        One row per feature (see :meth:`to_frame`).
    metrics : DataFrame
        One row per agreement metric: ``metric``, ``estimate``, ``ci_low``, ``ci_high``.
    name_a, name_b : str
        Labels of the two explanations.
    k : int
    n : int
        Samples per explanation (bootstrap resamples rows of both together when paired).
    n_boot : int
    paired : bool
        True when both explanations cover the same samples, resampled together.
    ci : float
    params : dict
        Provenance: ``k``, ``n_boot``, ``ci``, ``random_state``.

    Examples
    --------
    >>> import numpy as np
    >>> from confoundry._explanation import AttributionResult
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4)); w = np.array([3.0, -2.0, 1.0, 0.1])
    >>> a = AttributionResult(X * w, 0.0, X, ["a", "b", "c", "d"], "manual")
    >>> b = AttributionResult(X * w * 1.5, 0.0, X, ["a", "b", "c", "d"], "manual2")
    >>> ag = compare_attributions(a, b, k=2, n_boot=50, random_state=0)
    >>> ag.name_a, ag.name_b, ag.paired, ag.n, ag.table.shape[0]
    ('manual', 'manual2', True, 200, 4)
    >>> ag.metrics["metric"].tolist()[:3]
    ['rank_correlation', 'feature_agreement', 'rank_agreement']
    """

    table: pd.DataFrame
    metrics: pd.DataFrame
    name_a: str
    name_b: str
    k: int
    n: int
    n_boot: int
    paired: bool
    ci: float = DEFAULT_CI
    extra: Mapping[str, Any] = internal(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """The six agreement metrics, one row each: ``metric``, ``estimate``, ``ci_low``,
        ``ci_high``, ``k``, ``n``, ``n_boot``.

        Metrics: ``rank_correlation`` (Spearman of global importance), ``feature_agreement``,
        ``rank_agreement``, ``sign_agreement``, ``signed_rank_agreement`` (top-k, Krishna et al.
        2022) and ``pairwise_rank_agreement`` (all pairs of features).
        """
        m = self.metrics.set_index("metric").loc[list(SUMMARY_KEYS)]
        return m.reset_index()

    @property
    def _pair(self) -> str:
        # a finding is about the pair: DL vs EBM and DL vs logistic are different findings
        return f"{self.name_a} vs {self.name_b}"

    def _metric(self, key: str) -> dict[str, float]:
        row = self.metrics.set_index("metric").loc[key]
        return {"estimate": float(row["estimate"]), "ci_low": float(row["ci_low"]),
                "ci_high": float(row["ci_high"])}

    def to_frame(self) -> pd.DataFrame:
        """One row per feature: ``feature``, ``importance_a``, ``rank_a``, ``importance_b``,
        ``rank_b``, ``direction_a``, ``direction_b`` (+1 / -1 / 0: sign of the association
        between the feature's value and its attribution) with the bootstrap CI of that
        covariance (``direction_a_ci_low`` ...), ``monotonicity_a``, ``monotonicity_b``
        (|correlation| of value and attribution: near 0 for a U-shaped feature),
        ``in_top_k_a``, ``in_top_k_b`` and ``disagree`` (a top-k feature of either whose
        directions are opposite, or a top-k feature of one ranked below 2k in the other).
        A "high" finding needs opposite directions that are both supported (CI excluding 0,
        monotonicity >= 0.5)."""
        return self.table.copy()

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        t = self.table
        top = t[(t["in_top_k_a"] | t["in_top_k_b"])]
        opposite = top[(top["direction_a"] * top["direction_b"]) < 0]
        if "direction_a_ci_low" in opposite:
            # a direction is only evidence when its bootstrap CI excludes 0 and the attribution
            # is roughly monotone in the feature (|correlation| >= 0.5): a U-shaped feature
            # has no direction to disagree on
            def supported(side: str) -> pd.Series:
                lo, hi = opposite[f"direction_{side}_ci_low"], opposite[f"direction_{side}_ci_high"]
                return ((lo > 0) | (hi < 0)) & (opposite[f"monotonicity_{side}"] >= 0.5)

            opposite = opposite[supported("a") & supported("b")]
        for _, row in opposite.iterrows():
            out.append(Finding(
                "attribution_disagreement", "high", 9,
                f"{self.name_a} and {self.name_b} disagree on the direction of "
                f"'{row['feature']}' (a top-{self.k} feature): "
                f"{_dir_word(row['direction_a'])} vs {_dir_word(row['direction_b'])}.",
                subject=str(row["feature"]), model=self._pair, domain="overall",
                evidence={"direction_a": row["direction_a"], "direction_b": row["direction_b"],
                          "rank_a": row["rank_a"], "rank_b": row["rank_b"],
                          "other_model": self.name_b, "n": self.n}))
        s = self._metric("rank_correlation")
        if np.isfinite(s["ci_high"]) and s["ci_high"] < 0.5:
            out.append(Finding(
                "attribution_disagreement", "medium", 8,
                f"{self.name_a} and {self.name_b} rank the features differently (Spearman "
                f"{s['estimate']:.2f}, {self.ci:.0%} CI {s['ci_low']:.2f} to {s['ci_high']:.2f}).",
                subject="global ranking", model=self._pair, domain="overall",
                evidence={**s, "other_model": self.name_b, "n": self.n, "n_boot": self.n_boot}))
        return out

    def _extra_dict(self) -> dict[str, Any]:
        # the JSON key of earlier releases: metric -> {estimate, ci_low, ci_high}
        return {"summary": {key: self._metric(key) for key in SUMMARY_KEYS}}

    def plot(self, ax: Any = None, *, max_features: int = 15) -> Any:
        """Side-by-side bars of normalised importance (left: a, right: b), top features by
        either; bars are coloured by direction and disagreements are marked."""
        import matplotlib.pyplot as plt

        t = self.table.copy()
        t["key"] = np.minimum(t["rank_a"], t["rank_b"])
        t = t.sort_values(["key", "rank_a"]).head(max_features).iloc[::-1]
        if ax is None:
            longest = max((len(str(f)) + 5 for f in t["feature"]), default=0)
            # the axes keep ~4.5 in next to the feature names (its two-line title fits)
            fig, ax = plt.subplots(figsize=(max(7.0, 4.8 + 0.08 * longest),
                                            0.35 * len(t) + 1.8), layout="constrained")
        ia = t["importance_a"] / max(self.table["importance_a"].max(), 1e-300)
        ib = t["importance_b"] / max(self.table["importance_b"].max(), 1e-300)
        y = np.arange(len(t))
        col = {1: "#C44E52", -1: "#4C72B0", 0: "#999999"}
        ax.barh(y, -ia, color=[col[int(v)] for v in t["direction_a"]])
        ax.barh(y, ib, color=[col[int(v)] for v in t["direction_b"]])
        labels = [f"{f}  (!)" if dis else str(f) for f, dis in zip(t["feature"], t["disagree"])]
        ax.set_yticks(y, labels)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlim(-1.05, 1.05)
        ax.set_xticks([-1, -0.5, 0, 0.5, 1], ["1", "0.5", "0", "0.5", "1"])
        ax.set_xlabel(f"relative mean |attribution|\n←  {self.name_a}   |   {self.name_b}  →")
        s = self._metric("rank_correlation")
        ax.set_title(f"rank correlation {s['estimate']:.2f} [{s['ci_low']:.2f}, "
                     f"{s['ci_high']:.2f}]\nred: increasing, blue: decreasing; (!) disagree",
                     fontsize=9)
        return ax.figure


def _dir_word(v: float) -> str:
    return {1: "increasing", -1: "decreasing"}.get(int(v), "flat")


def _label(a: AttributionResult, fallback: str) -> str:
    return f"{a.model_name}:{a.method}" if a.model_name else (a.method or fallback)


def compare_attributions(
    a: AttributionResult,
    b: AttributionResult,
    *,
    k: int = 5,
    n_boot: int = 500,
    random_state: Any = None,
    ci: float = DEFAULT_CI,
) -> AgreementResult:
    """Compare two explanations: global ranks, top-k agreement, directions, with bootstrap CIs.

    Global importance is the mean |attribution| per feature; a feature's direction is the sign
    of the covariance between its value and its attribution (+1: higher values push the output
    up). Top-k metrics follow Krishna et al. (2022): ``feature_agreement`` (share of the top k
    in common), ``rank_agreement`` (same feature at the same rank), ``sign_agreement`` (in
    common and same direction), ``signed_rank_agreement`` (same rank and direction), plus
    ``rank_correlation`` (Spearman over all features) and ``pairwise_rank_agreement`` (share of
    feature pairs ordered the same way). When ``a`` and ``b`` explain the same samples (same
    ``n``) the bootstrap resamples rows of both together; otherwise each independently.

    Parameters
    ----------
    a, b : AttributionResult
        Tabular attributions over the same features (matched by name; order may differ).
    k : int
        Size of the top-k sets (at most the number of features).
    n_boot : int
        Bootstrap replicates for the CIs.
    random_state : None, int or Generator
    ci : float
        Confidence level.

    Returns
    -------
    AgreementResult

    Examples
    --------
    >>> import numpy as np
    >>> from confoundry._explanation import AttributionResult
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4)); w = np.array([3.0, -2.0, 1.0, 0.1])
    >>> a = AttributionResult(X * w, 0.0, X, ["a", "b", "c", "d"], "manual")
    >>> b = AttributionResult(X * w * 1.5, 0.0, X, ["a", "b", "c", "d"], "manual2")
    >>> ag = compare_attributions(a, b, k=2, n_boot=50, random_state=0)
    >>> s = ag.summary().set_index("metric")["estimate"]
    >>> float(s["feature_agreement"]), float(s["sign_agreement"])
    (1.0, 1.0)
    """
    check_tabular(a, "a")
    check_tabular(b, "b")
    fa, fb = list(a.feature_names), list(b.feature_names)
    if set(fa) != set(fb):
        only_a = sorted(set(fa) - set(fb))[:5]
        only_b = sorted(set(fb) - set(fa))[:5]
        raise ValueError(f"a and b explain different features (only in a: {only_a}; only in b: "
                         f"{only_b}); expected the same feature names.")
    d = len(fa)
    k = check_positive_int(k, "k")
    if k > d:
        raise ValueError(f"k={k} is larger than the number of features ({d}); expected k <= {d}.")
    n_boot = check_positive_int(n_boot, "n_boot")
    ci = check_probability(ci, "ci")
    rng = check_random_state(random_state)
    pos_b = [fb.index(f) for f in fa]
    A, XA = a.values, a.data
    Bv, XB = b.values[:, pos_b], b.data[:, pos_b]
    paired = A.shape[0] == Bv.shape[0]
    imp_a, dir_a = _global_stats(None, A, XA)
    imp_b, dir_b = _global_stats(None, Bv, XB)
    point = _metrics(imp_a, imp_b, dir_a, dir_b, k)
    reps: dict[str, list[np.ndarray]] = {m: [] for m in SUMMARY_KEYS}
    chunk = max(1, min(n_boot, 4_000_000 // max(A.shape[0], Bv.shape[0])))
    gen_a = bootstrap_weights(A.shape[0], n_boot, random_state=rng, chunk_size=chunk)
    gen_b = None if paired else bootstrap_weights(Bv.shape[0], n_boot, random_state=rng,
                                                  chunk_size=chunk)
    dirs_a: list[np.ndarray] = []
    dirs_b: list[np.ndarray] = []
    for Wa in gen_a:
        Wb = Wa if paired else next(gen_b)
        ia, da = _global_stats(Wa, A, XA)
        ib, db = _global_stats(Wb, Bv, XB)
        dirs_a.append(da)
        dirs_b.append(db)
        for m, v in _metrics(ia, ib, da, db, k).items():
            reps[m].append(v)
    da_lo, da_hi = percentile_ci(np.vstack(dirs_a), ci)
    db_lo, db_hi = percentile_ci(np.vstack(dirs_b), ci)
    mono_a = np.nan_to_num(np.abs(rowwise_corr(XA.T, A.T)), nan=0.0)
    mono_b = np.nan_to_num(np.abs(rowwise_corr(XB.T, Bv.T)), nan=0.0)
    rows = []
    for m in SUMMARY_KEYS:
        r = np.concatenate(reps[m])
        lo, hi = percentile_ci(r, ci)
        rows.append({"metric": m, "estimate": float(point[m][0]), "ci_low": float(lo),
                     "ci_high": float(hi), "k": k, "n": int(A.shape[0]), "n_boot": n_boot})
    metrics = pd.DataFrame(rows)
    ia, ib = imp_a[0], imp_b[0]
    ra = pd.Series(-ia).rank(method="min").astype(int).to_numpy()
    rb = pd.Series(-ib).rank(method="min").astype(int).to_numpy()
    sa, sb = np.sign(dir_a[0]).astype(int), np.sign(dir_b[0]).astype(int)
    top_a = np.zeros(d, bool)
    top_b = np.zeros(d, bool)
    top_a[np.argsort(-ia, kind="stable")[:k]] = True
    top_b[np.argsort(-ib, kind="stable")[:k]] = True
    far = (top_a & (rb > 2 * k)) | (top_b & (ra > 2 * k))
    disagree = ((top_a | top_b) & (sa * sb < 0)) | far
    table = pd.DataFrame({
        "feature": fa, "importance_a": ia, "rank_a": ra, "importance_b": ib, "rank_b": rb,
        "direction_a": sa, "direction_b": sb,
        "direction_a_ci_low": da_lo, "direction_a_ci_high": da_hi,
        "direction_b_ci_low": db_lo, "direction_b_ci_high": db_hi,
        "monotonicity_a": mono_a, "monotonicity_b": mono_b,
        "in_top_k_a": top_a, "in_top_k_b": top_b, "disagree": disagree,
    }).sort_values(["rank_a", "rank_b"], kind="mergesort").reset_index(drop=True)
    return AgreementResult(table=table, metrics=metrics, name_a=_label(a, "a"),
                           name_b=_label(b, "b"), k=k, n=int(A.shape[0]), n_boot=n_boot,
                           paired=paired, ci=ci,
                           params={"k": k, "n_boot": n_boot, "ci": ci,
                                   "random_state": seed_record(random_state)})
