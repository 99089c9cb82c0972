"""Effect curves: partial dependence and accumulated local effects, glass-box shapes overlaid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import ResultMixin
from .._utils import check_random_state, progress, renamed_keyword
from ..data import ensure_data
from ..data._validation import check_positive_int, check_probability, describe
from ..stats import DEFAULT_CI, bootstrap_weights, percentile_ci
from ._common import adapter_for, model_output, seed_record, wants_frame


def glassbox_models(baselines: Any) -> dict[str, Any]:
    """``baselines`` (one glass-box model, a ``Baselines`` mapping or a dict of them) as a
    dict of name to glass-box model; None gives an empty dict."""
    if baselines is None:
        return {}
    if hasattr(baselines, "shape") and callable(baselines.shape) and hasattr(baselines,
                                                                           "explain"):
        return {str(getattr(baselines, "name", "glassbox")): baselines}
    if isinstance(baselines, Mapping) or hasattr(baselines, "keys"):
        return {str(k): baselines[k] for k in baselines.keys()}
    raise TypeError(f"baselines={describe(baselines)} is not valid; expected a glass-box model "
                    "with .shape(feature), a Baselines mapping (fit_baselines) or a dict of them.")


@dataclass(frozen=True, eq=False)
class EffectCurveResult(ResultMixin):
    """Effect of one feature on a model's explained output, with glass-box shapes overlaid.

    Build it with :func:`effect_curve`.

    Attributes
    ----------
    table : DataFrame
        One row per curve and grid value: ``curve`` (``"pd"``, ``"ale"`` or a glass-box name),
        ``value``, ``effect`` (centred to mean zero over the data), ``ci_low``, ``ci_high``
        (bootstrap over samples; the glass-box's own band for glass-box shapes), ``n``.
    feature : str
        The feature whose effect is shown.
    model_name : str
    output : str
        The explained output of the model.
    params : dict
        The arguments (``kind``, ``grid_size``, ``n_boot``, ``ci``, ``target``,
        ``random_state``, ``baselines``: the names of the overlaid glass-box models).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 2))
    >>> m = LinearRegression().fit(X, 2 * X[:, 0] + X[:, 1])
    >>> res = effect_curve(m, X, "x0", kind="pd", grid_size=5, n_boot=20, random_state=0,
    ...                    verbose=False)
    >>> res.feature, res.model_name, res.table.shape
    ('x0', 'LinearRegression', (5, 6))
    >>> res.table.columns.tolist()
    ['curve', 'value', 'effect', 'ci_low', 'ci_high', 'n']
    """

    table: pd.DataFrame
    feature: str
    model_name: str
    output: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def plot(self, ax: Any = None) -> Any:
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        styles = {"pd": ("#4C72B0", "-"), "ale": ("#DD8452", "--")}
        others = iter(["#55A868", "#C44E52", "#8172B2", "#937860"])
        for curve, g in self.table.groupby("curve", sort=False):
            # each glass-box shape gets the next colour of its own (only those draw from it)
            color, ls = styles[curve] if curve in styles else (next(others, "#777777"), ":")
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
    baselines: Any = None,
    kind: str = "both",
    grid_size: int = 20,
    n_boot: int = 200,
    ci: float = DEFAULT_CI,
    target: int | None = None,
    random_state: Any = None,
    verbose: bool = True,
    glassbox: Any = None,
) -> EffectCurveResult:
    """Partial dependence and accumulated local effects of one feature, for any model.

    Curves are on the explained scale (log-odds for binary classifiers, like glass-box shapes)
    and centred to mean zero over the samples, so that they overlay the glass-box shapes
    (``model.shape(feature)`` of every model in ``baselines``, centred the same way). Bands are
    percentile bootstrap CIs over samples (the model is evaluated once; only the averaging is
    resampled).

    Parameters
    ----------
    model : anything :func:`confoundry.as_model` accepts
    X : DataFrame, ndarray or AuditData (tabular)
    feature : str
    baselines : Baselines, dict of name to glass-box model, or one glass-box model, optional
        Glass-box models whose shapes are overlaid (e.g. ``fit_baselines(...)``).
    kind : {"both", "pd", "ale"}
    grid_size : int
        Grid points (quantiles of the feature); ALE uses as many quantile bins.
    n_boot, ci : bootstrap replicates and confidence level.
    target : int, optional
        Class of a multiclass model.
    random_state : None, int or Generator
    verbose : bool
        Show a progress bar over the curves.
    glassbox : deprecated
        The old name of ``baselines``.

    Returns
    -------
    EffectCurveResult

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 2))
    >>> m = LinearRegression().fit(X, 2 * X[:, 0] + X[:, 1])
    >>> t = effect_curve(m, X, "x0", n_boot=20, random_state=0, verbose=False).to_frame()
    >>> sorted(t["curve"].unique())
    ['ale', 'pd']
    >>> g = t[t.curve == "pd"]; bool(np.allclose(np.diff(g.effect) / np.diff(g.value), 2))
    True
    """
    baselines = renamed_keyword("effect_curve", "glassbox", "baselines", glassbox, baselines)
    if kind not in ("both", "pd", "ale"):
        raise ValueError(f"kind={kind!r} is not valid; expected 'both', 'pd' or 'ale'.")
    grid_size = check_positive_int(grid_size, "grid_size", minimum=2)
    n_boot = check_positive_int(n_boot, "n_boot")
    ci = check_probability(ci, "ci")
    glassboxes = glassbox_models(baselines)
    data = ensure_data(X)
    if not data.is_tabular:
        raise ValueError(f"X has shape {data.values.shape}; expected tabular (n, d) inputs.")
    if feature not in data.feature_names:
        raise ValueError(f"feature={feature!r} is not a column of X; expected one of "
                         f"{describe(data.feature_names)}.")
    adapter = adapter_for(model)
    rng = check_random_state(random_state)
    Xf = data.X
    frame = wants_frame(data)  # models fitted on arrays get arrays
    n = data.n_samples
    x = Xf[feature].to_numpy()
    W = np.vstack(list(bootstrap_weights(n, n_boot, random_state=rng)))
    tot = W.sum(axis=1, keepdims=True)
    frames = []
    steps = [c for c in ("pd", "ale") if kind in ("both", c)] + list(glassboxes)
    bar = progress(total=len(steps), desc=f"effect curve ({feature})", verbose=verbose)
    if kind in ("both", "pd"):
        grid = _grid(x, grid_size)
        big = pd.concat([Xf.assign(**{feature: v}) for v in grid], ignore_index=True)
        ice = model_output(adapter, big if frame else big.to_numpy(),
                           target=target).reshape(len(grid), n).T  # (n, G)
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
        bar.update(1)
    if kind in ("both", "ale"):
        frames.extend(_ale(adapter, Xf, x, feature, grid_size, W, ci, target, frame))
        bar.update(1)
    for name, gb in glassboxes.items():
        shape = gb.shape(feature)
        if "class" in shape.columns:
            shape = shape[shape["class"] == (target if target is not None else 1)]
        frames.append(pd.DataFrame({"curve": name, "value": shape["value"].to_numpy(),
                                    "effect": shape["effect"].to_numpy(),
                                    "ci_low": shape["ci_low"].to_numpy(),
                                    "ci_high": shape["ci_high"].to_numpy(),
                                    "n": int(getattr(gb, "n_train", 0) or 0)}))
        bar.update(1)
    bar.close()
    table = pd.concat(frames, ignore_index=True)
    out_name = "value" if (adapter.output_ or "values") in ("values", "labels") else "logit"
    params = {"kind": kind, "grid_size": grid_size, "n_boot": n_boot, "ci": ci,
              "target": target, "random_state": seed_record(random_state),
              "baselines": list(glassboxes)}
    return EffectCurveResult(table=table, feature=feature, model_name=adapter.name,
                             output=out_name, params=params)


def _ale(adapter: Any, Xf: pd.DataFrame, x: np.ndarray, feature: str, grid_size: int,
         W: np.ndarray, ci: float, target: int | None, frame: bool) -> list[pd.DataFrame]:
    """The ALE curve (one frame, or none for a constant feature) with bootstrap bands."""
    n = len(x)
    edges = _grid(x, grid_size + 1)
    if len(edges) < 2:
        return []
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
    return [pd.DataFrame({"curve": "ale", "value": edges, "effect": point, "ci_low": lo,
                          "ci_high": hi, "n": n})]
