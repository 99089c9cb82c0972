"""Effect curves (partial dependence, accumulated local effects) and the shadow glass-box."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin
from .._utils import check_random_state, int_seed
from ..data._validation import check_positive_int, check_probability, describe
from ..stats import bootstrap_weights
from ._common import adapter_for, as_audit_data, model_output, percentile_ci, rowwise_corr


def _glassboxes(glassbox: Any) -> dict[str, Any]:
    if glassbox is None:
        return {}
    if hasattr(glassbox, "shape") and callable(glassbox.shape) and hasattr(glassbox, "explain"):
        return {str(getattr(glassbox, "name", "glassbox")): glassbox}
    if isinstance(glassbox, Mapping) or hasattr(glassbox, "keys"):
        return {str(k): glassbox[k] for k in glassbox.keys()}
    raise TypeError(f"glassbox={describe(glassbox)} is not valid; expected a glass-box model with "
                    ".shape(feature), a Baselines mapping or a dict of them.")


@dataclass(frozen=True, eq=False)
class EffectCurve(ResultMixin):
    """Effect of one feature on a model's explained output, with glass-box shapes overlaid.

    ``table`` columns: ``curve`` (``"pd"``, ``"ale"`` or a glass-box name), ``value``,
    ``effect`` (centred to mean zero over the data), ``ci_low``, ``ci_high`` (bootstrap over
    samples; the glass-box's own band for glass-box shapes), ``n``.
    """

    table: pd.DataFrame
    feature: str
    model_name: str
    output: str

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def plot(self, ax: Any = None) -> Any:
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        styles = {"pd": ("#4C72B0", "-"), "ale": ("#DD8452", "--")}
        others = iter(["#55A868", "#C44E52", "#8172B2", "#937860"])
        for curve, g in self.table.groupby("curve", sort=False):
            color, ls = styles.get(curve, (next(others, "#777777"), ":"))
            label = {"pd": f"{self.model_name}: partial dependence",
                     "ale": f"{self.model_name}: ALE"}.get(curve, f"{curve} shape")
            ax.plot(g["value"], g["effect"], ls, color=color, label=label, drawstyle="default")
            if g["ci_low"].notna().any():
                ax.fill_between(g["value"], g["ci_low"], g["ci_high"], color=color, alpha=0.15)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xlabel(self.feature)
        ax.set_ylabel(f"centred effect ({self.output})")
        ax.set_title(f"effect of {self.feature}")
        ax.legend(fontsize=8)
        return ax.figure


def _grid(x: np.ndarray, grid_size: int) -> np.ndarray:
    u = np.unique(x)
    if len(u) <= grid_size:
        return u.astype(np.float64)
    return np.unique(np.quantile(x, np.linspace(0, 1, grid_size)))


def effect_curve(
    model: Any,
    X: Any,
    feature: str,
    *,
    glassbox: Any = None,
    kind: str = "both",
    grid_size: int = 20,
    n_boot: int = 200,
    ci: float = 0.95,
    target: int | None = None,
    random_state: Any = None,
) -> EffectCurve:
    """Partial dependence and accumulated local effects of one feature, for any model.

    Curves are on the explained scale (log-odds for binary classifiers, like glass-box shapes)
    and centred to mean zero over the samples, so that they overlay the glass-box shapes
    (``glassbox.shape(feature)``, centred the same way). Bands are percentile bootstrap CIs
    over samples (the model is evaluated once; only the averaging is resampled).

    Parameters
    ----------
    model : anything :func:`confoundry.as_model` accepts
    X : DataFrame, ndarray or AuditData (tabular)
    feature : str
    glassbox : glass-box model, Baselines, or dict of name to glass-box model, optional
    kind : {"both", "pd", "ale"}
    grid_size : int
        Grid points (quantiles of the feature); ALE uses as many quantile bins.
    n_boot, ci : bootstrap replicates and confidence level.
    target : int, optional
        Class of a multiclass model.
    random_state : None, int or Generator

    Returns
    -------
    EffectCurve

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 2))
    >>> m = LinearRegression().fit(X, 2 * X[:, 0] + X[:, 1])
    >>> t = effect_curve(m, X, "x0", n_boot=20, random_state=0).to_frame()
    >>> sorted(t["curve"].unique())
    ['ale', 'pd']
    >>> g = t[t.curve == "pd"]; bool(np.allclose(np.diff(g.effect) / np.diff(g.value), 2))
    True
    """
    if kind not in ("both", "pd", "ale"):
        raise ValueError(f"kind={kind!r} is not valid; expected 'both', 'pd' or 'ale'.")
    grid_size = check_positive_int(grid_size, "grid_size", minimum=2)
    n_boot = check_positive_int(n_boot, "n_boot")
    ci = check_probability(ci, "ci")
    data = as_audit_data(X)
    if not data.is_tabular:
        raise ValueError(f"X has shape {data.values.shape}; expected tabular (n, d) inputs.")
    if feature not in data.feature_names:
        raise ValueError(f"feature={feature!r} is not a column of X; expected one of "
                         f"{describe(data.feature_names)}.")
    adapter = adapter_for(model)
    rng = check_random_state(random_state)
    frame = not isinstance(X, np.ndarray)  # models fitted on arrays get arrays
    Xf = data.X
    n = data.n_samples
    x = Xf[feature].to_numpy()
    W = np.vstack(list(bootstrap_weights(n, n_boot, random_state=rng)))
    tot = W.sum(axis=1, keepdims=True)
    frames = []
    if kind in ("both", "pd"):
        grid = _grid(x, grid_size)
        big = pd.concat([Xf.assign(**{feature: v}) for v in grid], ignore_index=True)
        ice = model_output(adapter, big if frame else big.to_numpy(), target=target).reshape(len(grid), n).T  # (n, G)
        pd_point = ice.mean(axis=0)
        pd_boot = W @ ice / tot
        # centre on the data distribution: the mean ICE value at each sample's own grid point
        at = np.clip(np.searchsorted(grid, x), 0, len(grid) - 1)
        onehot = np.zeros((n, len(grid)))
        onehot[np.arange(n), at] = 1
        share = onehot.mean(axis=0)
        pd_c = pd_point - share @ pd_point
        boot_share = W @ onehot / tot
        pd_boot_c = pd_boot - (boot_share * pd_boot).sum(axis=1, keepdims=True)
        lo, hi = percentile_ci(pd_boot_c, ci)
        frames.append(pd.DataFrame({"curve": "pd", "value": grid, "effect": pd_c, "ci_low": lo,
                                    "ci_high": hi, "n": n}))
    if kind in ("both", "ale"):
        edges = _grid(x, grid_size + 1)
        if len(edges) >= 2:
            b = np.clip(np.searchsorted(edges, x, side="left") - 1, 0, len(edges) - 2)
            lo_x = Xf.assign(**{feature: edges[b]})
            hi_x = Xf.assign(**{feature: edges[b + 1]})
            both = pd.concat([lo_x, hi_x], ignore_index=True)
            out = model_output(adapter, both if frame else both.to_numpy(), target=target)
            local = out[n:] - out[:n]
            K = len(edges) - 1
            onehot = np.zeros((n, K))
            onehot[np.arange(n), b] = 1

            def ale(Wm: np.ndarray) -> np.ndarray:
                cnt = Wm @ onehot
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean = np.where(cnt > 0, (Wm @ (onehot * local[:, None])) / np.where(
                        cnt > 0, cnt, 1), 0.0)
                acc = np.concatenate([np.zeros((len(Wm), 1)), np.cumsum(mean, axis=1)], axis=1)
                mid = (acc[:, :-1] + acc[:, 1:]) / 2
                centre = (cnt * mid).sum(axis=1, keepdims=True) / cnt.sum(axis=1, keepdims=True)
                return acc - centre

            point = ale(np.ones((1, n)))[0]
            lo, hi = percentile_ci(ale(W), ci)
            frames.append(pd.DataFrame({"curve": "ale", "value": edges, "effect": point,
                                        "ci_low": lo, "ci_high": hi, "n": n}))
    for name, gb in _glassboxes(glassbox).items():
        shape = gb.shape(feature)
        if "class" in shape.columns:
            shape = shape[shape["class"] == (target if target is not None else 1)]
        frames.append(pd.DataFrame({"curve": name, "value": shape["value"].to_numpy(),
                                    "effect": shape["effect"].to_numpy(),
                                    "ci_low": shape["ci_low"].to_numpy(),
                                    "ci_high": shape["ci_high"].to_numpy(),
                                    "n": int(getattr(gb, "n_train", 0) or 0)}))
    table = pd.concat(frames, ignore_index=True)
    out_name = "value" if (adapter.output_ or "values") in ("values", "labels") else "logit"
    return EffectCurve(table=table, feature=feature, model_name=adapter.name, output=out_name)


@dataclass(frozen=True, eq=False)
class ShadowGlassBox(ResultMixin):
    """An EBM fitted to the model's own outputs ("what the model learned") compared with an EBM
    fitted to the labels ("what the data say").

    ``table``: one row per feature with ``importance_model``, ``importance_data`` (mean |term|),
    ``direction_model``, ``direction_data`` (sign of the covariance between the feature and its
    term), ``effect_*`` slopes with bootstrap CIs, ``monotonicity_model``,
    ``monotonicity_data`` (|correlation of the feature with its term|), ``shape_correlation``
    with ``ci_low``, ``ci_high`` (bootstrap), ``mean_abs_diff``, ``disagree``, ``severity`` and
    ``n``. ``fidelity``: R² of the shadow EBM to the model's outputs on
    held-out rows with its bootstrap CI.
    """

    table: pd.DataFrame
    fidelity: Mapping[str, float]
    shadow: Any
    reference: Any
    model_name: str

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
                               evidence={k: r[k] for k in keys}))
        if self.fidelity["r2"] < 0.8:
            out.append(Finding(
                "attribution_disagreement", "medium", 8,
                f"the shadow EBM reproduces only R²={self.fidelity['r2']:.2f} of "
                f"{self.model_name}'s outputs: its shapes describe the model partially "
                "(interactions the EBM lacks).", subject="shadow glass-box",
                model=self.model_name, evidence=dict(self.fidelity)))
        return out

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["fidelity"] = dict(self.fidelity)
        return d

    def plot(self, ax: Any = None, *, max_features: int = 6) -> Any:
        """Shapes of the top features: learned by the model (shadow) vs in the data."""
        import matplotlib.pyplot as plt

        feats = list(self.table["feature"][:max_features])
        if ax is None:
            cols = min(3, len(feats))
            rows = -(-len(feats) // cols)
            fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
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
    reference: Any = None,
    target: int | None = None,
    test_size: float = 0.3,
    n_boot: int = 200,
    ebm_params: Mapping[str, Any] | None = None,
    random_state: Any = None,
) -> ShadowGlassBox:
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
    model : anything :func:`confoundry.as_model` accepts
    X : DataFrame or ndarray (tabular)
    y : array-like, optional
        Labels for the reference EBM (needed unless ``reference`` is given).
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

    Returns
    -------
    ShadowGlassBox
    """
    from ..models import fit_baselines

    data = as_audit_data(X)
    if not data.is_tabular:
        raise ValueError(f"X has shape {data.values.shape}; expected tabular (n, d) inputs.")
    if y is None and reference is None:
        raise TypeError("shadow_glassbox needs y (labels) or reference (a glass-box model fitted "
                        "to the labels); got neither.")
    test_size = check_probability(test_size, "test_size")
    n_boot = check_positive_int(n_boot, "n_boot")
    rng = check_random_state(random_state)
    adapter = adapter_for(model)
    out = model_output(adapter, data.X if not isinstance(X, np.ndarray) else data.values,
                       target=target)
    n = data.n_samples
    perm = rng.permutation(n)
    n_test = max(2, int(round(test_size * n)))
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    params = {"outer_bags": 2, "interactions": 0, **dict(ebm_params or {})}
    Xtr = data.X.iloc[train]
    shadow = fit_baselines(Xtr, out[train], kinds=("ebm",), tuning="none", task="regression",
                           ebm_params=params, random_state=int_seed(rng), verbose=False)["ebm"]
    if reference is None:
        reference = fit_baselines(Xtr, np.asarray(y)[train], kinds=("ebm",), tuning="none",
                                  ebm_params=params, random_state=int_seed(rng),
                                  verbose=False)["ebm"]
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
    lo, hi = percentile_ci(r2(W), 0.95)
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
    c_lo, c_hi = percentile_ci(corr_b, 0.95)
    a_lo, a_hi = percentile_ci(ea_b, 0.95)
    b_lo, b_hi = percentile_ci(eb_b, 0.95)
    d_lo, d_hi = percentile_ci(ea_b - eb_b, 0.95)
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
    return ShadowGlassBox(table=table, fidelity=fidelity, shadow=shadow, reference=reference,
                          model_name=adapter.name)
