"""The shadow glass-box: an EBM fitted to the model's own outputs ("what the model learned")
against an EBM fitted to the labels ("what the data say")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, internal
from .._utils import check_random_state, int_seed, progress
from ..data import ensure_data
from ..data._validation import check_positive_int, check_probability
from ..stats import DEFAULT_CI, bootstrap_weights, percentile_ci
from ._common import (
    adapter_for,
    model_output,
    output_from_scores,
    rows_for_model,
    rowwise_corr,
    seed_record,
)


@dataclass(frozen=True, eq=False)
class ShadowGlassBoxResult(ResultMixin):
    """An EBM fitted to the model's own outputs ("what the model learned") compared with an EBM
    fitted to the labels ("what the data say").

    Build it with :func:`shadow_glassbox`.

    Attributes
    ----------
    table : DataFrame
        One row per feature with ``importance_model``, ``importance_data`` (mean |term|),
        ``direction_model``, ``direction_data`` (sign of the covariance between the feature and
        its term), ``effect_*`` slopes with bootstrap CIs, ``monotonicity_model``,
        ``monotonicity_data`` (|correlation of the feature with its term|),
        ``shape_correlation`` with ``ci_low``, ``ci_high`` (bootstrap), ``mean_abs_diff``,
        ``disagree``, ``severity`` and ``n``.
    fidelity : dict
        R² of the shadow EBM to the model's outputs on held-out rows (``r2``) with its
        bootstrap CI (``ci_low``, ``ci_high``), ``n_test``, ``n_boot``.
    shadow, reference : GlassBoxModel
        The two fitted glass-box models, to the model's outputs and to the labels (kept out of
        ``to_dict``).
    model_name : str
    params : dict
        ``test_size``, ``n_boot``, ``target``, ``ebm_params``, ``random_state``,
        ``from_scores`` (True when the model's precomputed scores were used).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.integers(0, 2, 200) * 1.0})
    >>> y = (rng.random(200) < 1 / (1 + np.exp(-X.a + X.b))).astype(int)
    >>> scores = 1 / (1 + np.exp(-(X.a + X.b)))      # a model that learned b the wrong way
    >>> res = shadow_glassbox(None, X, y, scores=scores, n_boot=20, random_state=0,
    ...                       ebm_params={"outer_bags": 1, "max_rounds": 200}, verbose=False)
    >>> res.table.set_index("feature")["disagree"].to_dict()
    {'a': False, 'b': True}
    >>> sorted(res.fidelity)
    ['ci_high', 'ci_low', 'n_boot', 'n_test', 'r2']
    """

    table: pd.DataFrame
    fidelity: Mapping[str, float]
    shadow: Any = internal()
    reference: Any = internal()
    model_name: str = "model"
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def findings(self) -> list[Finding]:
        """``attribution_disagreement`` per feature where the model and the data disagree with
        statistical support: "high" when the learned direction (slope of the term on the
        feature, with bootstrap CIs) is opposite to the data's, both CIs and the CI of their
        difference excluding 0, the feature is non-negligible in both and both terms are
        roughly monotone; "medium" when the
        shapes of a continuous feature are negatively correlated (CI below 0)."""
        out = []
        t = self.table
        sev = t["severity"] if "severity" in t else np.where(t["disagree"], "high", "")
        for (_, r), level in zip(t.iterrows(), sev):
            if level not in ("high", "medium"):
                continue
            if level == "high" and "effect_model" in t:
                title = (f"{self.model_name} learned '{r['feature']}' as "
                         f"{_word(r['direction_model'])} (effect {r['effect_model']:+.3g}, 95% CI "
                         f"{r['effect_model_ci_low']:+.3g} to {r['effect_model_ci_high']:+.3g}), "
                         f"while an EBM fitted to the labels finds it "
                         f"{_word(r['direction_data'])} ({r['effect_data']:+.3g}, 95% CI "
                         f"{r['effect_data_ci_low']:+.3g} to {r['effect_data_ci_high']:+.3g}; "
                         f"n = {int(r['n'])}).")
            elif bool(r.get("binary", False)) or not np.isfinite(r["shape_correlation"]):
                title = (f"{self.model_name} learned '{r['feature']}' as "
                         f"{_word(r['direction_model'])} ({r['effect_model']:+.3g}), while an "
                         f"EBM fitted to the labels finds it {_word(r['direction_data'])} "
                         f"({r['effect_data']:+.3g}); both terms are fixed per level, so there "
                         f"is no interval (n = {int(r['n'])}).")
            else:
                title = (f"{self.model_name}'s shape for '{r['feature']}' is anti-correlated with "
                         f"the shape an EBM fitted to the labels finds (correlation "
                         f"{r['shape_correlation']:.2f}, 95% CI {r['ci_low']:.2f} to "
                         f"{r['ci_high']:.2f}, n = {int(r['n'])}).")
            keys = [k for k in ("importance_model", "importance_data", "effect_model",
                                "effect_model_ci_low", "effect_model_ci_high", "effect_data",
                                "effect_data_ci_low", "effect_data_ci_high", "difference",
                                "difference_ci_low", "difference_ci_high", "shape_correlation",
                                "ci_low", "ci_high", "n") if k in t]
            out.append(Finding("attribution_disagreement", str(level), 9, title,
                               subject=str(r["feature"]), model=self.model_name,
                               domain="overall", evidence={k: r[k] for k in keys}))
        if self.fidelity["r2"] < 0.8:
            out.append(Finding(
                "attribution_disagreement", "medium", 8,
                f"the shadow EBM reproduces only R²={self.fidelity['r2']:.2f} of "
                f"{self.model_name}'s outputs: its shapes describe the model partially "
                "(interactions the EBM lacks).", subject="shadow glass-box",
                model=self.model_name, domain="overall", evidence=dict(self.fidelity)))
        return out

    def plot(self, ax: Any = None, *, max_features: int = 6) -> Any:
        """Shapes of the top features: learned by the model (shadow) vs in the data."""
        import matplotlib.pyplot as plt

        feats = list(self.table["feature"][:max_features])
        if ax is None:
            cols = min(3, len(feats))
            rows = -(-len(feats) // cols)
            fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False,
                                     layout="constrained")
            axes = axes.ravel()
        else:
            fig, axes = ax.figure, [ax]
            feats = feats[:1]
        for a, f in zip(axes, feats):
            for gb, color, label in ((self.shadow, "#4C72B0", "model (shadow EBM)"),
                                     (self.reference, "#55A868", "data (EBM on labels)")):
                s = gb.shape(f)
                a.plot(s["value"], s["effect"], color=color, label=label)
                if s["ci_low"].notna().any():
                    a.fill_between(s["value"], s["ci_low"], s["ci_high"], color=color,
                                   alpha=0.15)
            a.axhline(0, color="black", lw=0.6)
            a.set_title(f, fontsize=9)
        for a in list(axes)[len(feats):]:
            a.set_axis_off()
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{self.model_name}: fidelity R² = {self.fidelity['r2']:.2f}")
        return fig


def _word(v: float) -> str:
    return {1: "increasing", -1: "decreasing"}.get(int(v), "flat")


def shadow_glassbox(
    model: Any,
    X: Any,
    y: Any = None,
    *,
    scores: Any = None,
    reference: Any = None,
    target: int | None = None,
    test_size: float = 0.3,
    n_boot: int = 200,
    ebm_params: Mapping[str, Any] | None = None,
    random_state: Any = None,
    verbose: bool = True,
) -> ShadowGlassBoxResult:
    """Fit an EBM to the model's own outputs and diff its shapes with an EBM fitted to labels.

    The shadow EBM (a regression EBM on the model's explained output: log-odds for binary
    classifiers) shows *what the model learned*, one curve per feature; its fidelity (R² to the
    model's outputs on held-out rows, with a bootstrap CI) says how much of the model it
    captures. The reference EBM (fitted to the labels ``y``, or given as ``reference``, e.g.
    ``fit_baselines(...)["ebm"]``) shows *what the data say*. Each term's direction is its
    least-squares slope on the feature (for a binary feature, the effect of switching it 0 -> 1)
    with a bootstrap CI. A feature is flagged "high" when the two directions are opposite with
    both CIs and the CI of their difference excluding 0, the feature carries at least 10 % of
    the largest term's importance in both, and both terms are roughly monotone (|correlation of
    the feature with its term| >= 0.5; a U-shaped term has no direction), "medium" when a continuous feature's per-sample
    contributions are negatively correlated (CI below 0), or when the directions are opposite
    but the CIs have zero width (binary features: one term value per level) and the feature
    carries at least 20 % of the largest importance in both. Binary features have two points, so
    their shape correlation is ±1 by construction and is not used.

    Parameters
    ----------
    model : anything :func:`confoundry.as_model` accepts, or None with ``scores``
    X : DataFrame, ndarray or AuditData (tabular)
    y : array-like, optional
        Labels for the reference EBM (needed unless ``reference`` is given).
    scores : array-like, optional
        The model's scores on the rows of ``X`` (``predict_scores``: P(class 1) for binary
        tasks, read as log-odds; class probabilities ``(n, K)`` with ``target``; values for
        regression). Given, the model is not called and ``model`` may be None.
    reference : glass-box model, optional
        An EBM (or any glass-box model with ``explain`` and ``shape``) fitted to the labels.
    target : int, optional
        Class of a multiclass model.
    test_size : float
        Share of rows held out to measure fidelity.
    n_boot : int
    ebm_params : dict, optional
        interpret EBM arguments (default: 2 outer bags, no interactions, for speed).
    random_state : None, int or Generator
    verbose : bool
        Show a progress bar over the two fits and the comparison.

    Returns
    -------
    ShadowGlassBoxResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.integers(0, 2, 300) * 1.0})
    >>> y = (rng.random(300) < 1 / (1 + np.exp(-X.a + X.b))).astype(int)
    >>> scores = 1 / (1 + np.exp(-(X.a + X.b)))      # a model that learned b the wrong way
    >>> res = shadow_glassbox(None, X, y, scores=scores, n_boot=20, random_state=0,
    ...                       ebm_params={"outer_bags": 1, "max_rounds": 200}, verbose=False)
    >>> row = res.to_frame().set_index("feature").loc["b"]
    >>> int(row["direction_model"]), int(row["direction_data"])
    (1, -1)
    """
    from ..models import fit_baselines

    data = ensure_data(X, y)
    if not data.is_tabular:
        raise ValueError(f"X has shape {data.values.shape}; expected tabular (n, d) inputs.")
    if y is None and reference is None:
        raise TypeError("shadow_glassbox needs y (labels) or reference (a glass-box model fitted "
                        "to the labels); got neither.")
    if model is None and scores is None:
        raise TypeError("shadow_glassbox needs model or scores (the model's scores on X); got "
                        "neither.")
    test_size = check_probability(test_size, "test_size")
    n_boot = check_positive_int(n_boot, "n_boot")
    rng = check_random_state(random_state)
    n = data.n_samples
    if scores is not None:  # the model is not called
        adapter = None if model is None else adapter_for(model)
        task = (adapter.task if adapter is not None else None) or data.task or getattr(
            reference, "task", None)
        out = output_from_scores(scores, n, task=task, target=target)
    else:
        adapter = adapter_for(model)
        out = model_output(adapter, rows_for_model(data), target=target)
    model_name = adapter.name if adapter is not None else "model"
    bar = progress(total=3, desc="shadow glass-box", verbose=verbose)
    perm = rng.permutation(n)
    n_test = max(2, int(round(test_size * n)))
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    params = {"outer_bags": 2, "interactions": 0, **dict(ebm_params or {})}
    Xtr = data.subset(train)  # a view: the fits build no second AuditData
    shadow = fit_baselines(Xtr, out[train], kinds=("ebm",), tuning="none", task="regression",
                           ebm_params=params, random_state=int_seed(rng), verbose=False)["ebm"]
    bar.update(1)
    if reference is None:
        reference = fit_baselines(Xtr, Xtr.y, kinds=("ebm",), tuning="none",
                                  ebm_params=params, random_state=int_seed(rng),
                                  verbose=False)["ebm"]
    bar.update(1)
    # fidelity on held-out rows
    pred = np.asarray(shadow.decision(data.X.iloc[test]), dtype=np.float64)
    yt = out[test]
    W = np.vstack(list(bootstrap_weights(len(test), n_boot, random_state=rng)))

    def r2(Wm: np.ndarray) -> np.ndarray:
        tot = Wm.sum(axis=1, keepdims=True)
        mu = Wm @ yt / tot[:, 0]
        ss_res = Wm @ (yt - pred) ** 2
        ss_tot = (Wm * (yt[None] - mu[:, None]) ** 2).sum(axis=1)
        return 1 - ss_res / np.where(ss_tot > 0, ss_tot, np.nan)

    r2_point = float(r2(np.ones((1, len(test))))[0])
    lo, hi = percentile_ci(r2(W), DEFAULT_CI)
    fidelity = {"r2": r2_point, "ci_low": float(lo), "ci_high": float(hi),
                "n_test": int(len(test)), "n_boot": n_boot}
    # compare per-sample contributions on the held-out rows
    a = shadow.explain(data.X.iloc[test])
    b = reference.explain(data.X.iloc[test])
    names = list(a.feature_names)
    pos = [list(b.feature_names).index(f) for f in names]
    A, B, Xv = a.values, b.values[:, pos], a.data

    def stats(Wm: np.ndarray) -> tuple[np.ndarray, ...]:
        tot = Wm.sum(axis=1, keepdims=True)
        ea, eb, ex = Wm @ A / tot, Wm @ B / tot, Wm @ Xv / tot
        cab = Wm @ (A * B) / tot - ea * eb
        va = Wm @ (A * A) / tot - ea ** 2
        vb = Wm @ (B * B) / tot - eb ** 2
        vx = Wm @ (Xv * Xv) / tot - ex ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = cab / np.sqrt(va * vb)
            # least-squares slope of each term on its feature: for a binary feature exactly
            # the effect of switching it from 0 to 1
            sa_ = (Wm @ (Xv * A) / tot - ex * ea) / vx
            sb_ = (Wm @ (Xv * B) / tot - ex * eb) / vx
        return corr, sa_, sb_

    corr, ea_, eb_ = (s[0] for s in stats(np.ones((1, len(test)))))
    corr_b, ea_b, eb_b = stats(W)
    c_lo, c_hi = percentile_ci(corr_b, DEFAULT_CI)
    a_lo, a_hi = percentile_ci(ea_b, DEFAULT_CI)
    b_lo, b_hi = percentile_ci(eb_b, DEFAULT_CI)
    d_lo, d_hi = percentile_ci(ea_b - eb_b, DEFAULT_CI)
    ia, ib = np.abs(A).mean(axis=0), np.abs(B).mean(axis=0)
    sa, sb = np.sign(np.nan_to_num(ea_)).astype(int), np.sign(np.nan_to_num(eb_)).astype(int)
    binary = np.array([len(np.unique(Xv[:, j])) <= 2 for j in range(Xv.shape[1])])
    # relevant: non-negligible in both (at least 10 % of the most important term)
    relevant = (ia >= 0.1 * ia.max()) & (ib >= 0.1 * ib.max())
    # high: opposite directions, each CI excluding 0, and the difference's CI excluding 0;
    # a shape correlation of -1 on a binary feature (two points) is not evidence by itself
    supported = ((a_lo > 0) | (a_hi < 0)) & ((b_lo > 0) | (b_hi < 0)) & ((d_lo > 0) | (d_hi < 0))
    # a zero-width CI (a binary feature's term is one number per level) carries no sampling
    # uncertainty of the fits, so it cannot support a "high" on its own
    informative = (a_hi - a_lo > 1e-12) & (b_hi - b_lo > 1e-12)
    # a direction only means something for a (roughly) monotone term: the correlation between
    # the feature and its term must be at least 0.5 in both models; a U-shaped term (wbc,
    # temperature) has a slope that depends on where the data sit and is never "opposite"
    mono_a = np.abs(rowwise_corr(Xv.T, A.T))
    mono_b = np.abs(rowwise_corr(Xv.T, B.T))
    monotone = np.nan_to_num(np.minimum(mono_a, mono_b), nan=0.0) >= 0.5
    flipped = relevant & (sa * sb < 0)
    opposite = (flipped & informative & monotone
                & np.nan_to_num(supported, nan=False).astype(bool))
    strong = (ia >= 0.2 * ia.max()) & (ib >= 0.2 * ib.max())
    shape = relevant & ~opposite & ((~binary & (np.nan_to_num(c_hi, nan=1.0) < 0))
                                    | (flipped & ~informative & strong))
    severity = np.where(opposite, "high", np.where(shape, "medium", ""))
    table = pd.DataFrame({
        "feature": names, "importance_model": ia, "importance_data": ib,
        "direction_model": sa, "direction_data": sb,
        "effect_model": ea_, "effect_model_ci_low": a_lo, "effect_model_ci_high": a_hi,
        "effect_data": eb_, "effect_data_ci_low": b_lo, "effect_data_ci_high": b_hi,
        "difference": ea_ - eb_, "difference_ci_low": d_lo, "difference_ci_high": d_hi,
        "shape_correlation": np.where(binary, np.nan, corr),
        "ci_low": np.where(binary, np.nan, c_lo), "ci_high": np.where(binary, np.nan, c_hi),
        "mean_abs_diff": np.abs((A - A.mean(0)) - (B - B.mean(0))).mean(axis=0),
        "monotonicity_model": mono_a, "monotonicity_data": mono_b,
        "binary": binary, "disagree": opposite | shape, "severity": severity,
        "n": int(len(test)),
    }).sort_values("importance_model", ascending=False, kind="mergesort").reset_index(drop=True)
    bar.update(1)
    bar.close()
    return ShadowGlassBoxResult(
        table=table, fidelity=fidelity, shadow=shadow, reference=reference,
        model_name=model_name,
        params={"test_size": test_size, "n_boot": n_boot, "target": target,
                "ebm_params": params, "random_state": seed_record(random_state),
                "from_scores": scores is not None})
