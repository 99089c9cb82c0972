"""``compare_models``: the metric panel of several models on the same test set, with stratified
bootstrap CIs and paired bootstrap differences against a reference (the deep model)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, to_jsonable
from .._utils import check_random_state, int_seed
from ..data._audit_data import AuditData
from ..data._validation import check_positive_int, check_probability, describe
from ..stats import (
    HIGHER_IS_BETTER,
    LABELS,
    bh_adjust,
    bootstrap_p_value,
    bootstrap_weights,
    weighted_metrics,
)
from ..stats._metrics import check_metrics
from ._adapter import ModelAdapter, as_model
from ._baselines import Baselines
from ._glassbox import GlassBoxModel

#: the headline metric of each task, used for findings.
PRIMARY = {"binary": "auroc", "multiclass": "macro_auroc", "regression": "r2"}


@dataclass(frozen=True, eq=False)
class ModelComparison(ResultMixin):
    """Metric panel of several models on one test set, with bootstrap confidence intervals.

    Build it with :func:`compare_models`.

    Attributes
    ----------
    table : DataFrame
        One row per model and metric: ``model``, ``metric``, ``estimate``, ``ci_low``,
        ``ci_high``, ``n``, ``se``, ``n_boot``.
    scores : dict of str to ndarray
        The scores each model gave the test rows (reusable by later steps).
    y : ndarray
        Test labels or targets.
    task : str
    metrics : tuple of str
    reference : str
        The model the others are compared with (the first one unless told otherwise).
    point, replicates : dict
        Point estimates and bootstrap replicates of every metric of every model (shared
        replicates: the same resampled rows for every model).
    differences : DataFrame
        Paired bootstrap of ``metric(model) - metric(reference)`` for every other model: the
        columns of :func:`confoundry.stats.paired_bootstrap` plus ``model_a``, ``model_b`` and
        ``q_value`` (Benjamini-Hochberg across the compared models, per metric).
    glass_box : dict of str to bool
        Which models are confoundry glass-box baselines.
    tuning : dict
        Tuning record of each glass-box baseline (see :meth:`Baselines.tuning_table`).
    n_boot, ci, alpha, seed
        Bootstrap replicates, CI level, significance level for findings, bootstrap seed.
    """

    table: pd.DataFrame
    scores: Mapping[str, np.ndarray]
    y: np.ndarray
    task: str
    metrics: tuple[str, ...]
    reference: str
    differences: pd.DataFrame
    glass_box: Mapping[str, bool] = field(default_factory=dict)
    tuning: Mapping[str, Any] = field(default_factory=dict)
    n_boot: int = 1000
    ci: float = 0.95
    alpha: float = 0.05
    seed: int = 0
    threshold: float = 0.5
    point: Mapping[str, Mapping[str, float]] = field(default_factory=dict, repr=False)
    replicates: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict, repr=False)

    # ---------------------------------------------------------------- surface
    @property
    def models(self) -> list[str]:
        return list(self.scores)

    def to_frame(self) -> pd.DataFrame:
        """Model x metric table: ``model``, ``metric``, ``estimate``, ``ci_low``, ``ci_high``,
        ``n`` (and ``se``, ``n_boot``)."""
        return self.table.copy()

    def estimates(self) -> pd.DataFrame:
        """Wide table of point estimates: models as rows, metrics as columns."""
        wide = self.table.pivot(index="model", columns="metric", values="estimate")
        return wide.loc[self.models, list(self.metrics)]

    def difference(self, a: str, b: str, *, metrics: Any = None) -> pd.DataFrame:
        """Paired bootstrap of ``metric(a) - metric(b)`` on the same resampled test rows.

        Returns the table of :func:`confoundry.stats.paired_bootstrap` (``metric``,
        ``estimate_a``, ``estimate_b``, ``difference``, ``ci_low``, ``ci_high``, ``p_value``,
        ``a_better``, ``b_better``, ``n``, ``n_boot``) with ``model_a`` and ``model_b`` first,
        computed with its formulas on the stored replicates behind :meth:`to_frame`'s
        intervals, so every pair is consistent with the table and
        ``difference(b, a)`` is exactly the mirror of ``difference(a, b)``.
        """
        for arg, name in (("a", a), ("b", b)):
            if name not in self.scores:
                raise ValueError(f"{arg}={name!r} is not a compared model; expected one of "
                                 f"{self.models}.")
        if a == b:
            raise ValueError(f"a and b are both {a!r}; expected two different models.")
        metrics = self.metrics if metrics is None else check_metrics(metrics, self.task)
        missing = [m for m in metrics if m not in self.metrics]
        if missing:
            raise ValueError(f"metrics={list(metrics)} has {missing}, which this comparison did "
                             f"not compute; expected names from {list(self.metrics)}.")
        return _paired_rows(self.point, self.replicates, a, b, metrics=tuple(metrics),
                            n=len(self.y), n_boot=self.n_boot, ci=self.ci)

    def findings(self) -> list[Finding]:
        """Tip 2: does a glass-box baseline match or beat the reference model?

        For each glass-box baseline on the task's headline metric (AUROC, macro AUROC or R²),
        with Benjamini-Hochberg q-values across baselines:
        ``baseline_outperforms`` *high* when the baseline is significantly better,
        ``baseline_outperforms`` *medium* when it is not significantly worse (deep learning buys
        nothing measurable here), ``reference_outperforms`` *info* when the reference is
        significantly better. Untuned baselines add a *low* ``untuned_baseline`` finding.
        """
        if self.glass_box.get(self.reference, False):
            return []  # comparing baselines among themselves: nothing to flag
        metric = PRIMARY[self.task]
        label = LABELS[metric]
        out: list[Finding] = []
        rows = self.differences[self.differences["metric"] == metric]
        for _, r in rows.iterrows():
            name = r["model_a"]
            if not self.glass_box.get(name, False):
                continue
            ev = {
                "metric": metric, "baseline": name, "reference": self.reference,
                "baseline_estimate": r["estimate_a"], "reference_estimate": r["estimate_b"],
                "difference": r["difference"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                "ci_level": self.ci, "p_value": r["p_value"], "q_value": r["q_value"],
                "n": r["n"], "n_boot": r["n_boot"], "correction": "Benjamini-Hochberg",
            }
            ci_txt = (f"{name} minus {self.reference} {r['difference']:+.3f}, {self.ci:.0%} CI "
                      f"{r['ci_low']:+.3f} to {r['ci_high']:+.3f}, q = {r['q_value']:.3g}, "
                      f"n = {r['n']}")
            sig = r["q_value"] < self.alpha
            if sig and r["difference"] > 0:
                out.append(Finding(
                    "baseline_outperforms", "high", 2,
                    f"The glass-box {name} has a higher {label} than {self.reference} "
                    f"({r['estimate_a']:.3f} vs {r['estimate_b']:.3f}; {ci_txt}): the deep "
                    "model is not the better model here.",
                    subject=metric, model=name, evidence=ev))
            elif not sig:
                out.append(Finding(
                    "baseline_outperforms", "medium", 2,
                    f"The glass-box {name} is not significantly worse than {self.reference} on "
                    f"{label} ({r['estimate_a']:.3f} vs {r['estimate_b']:.3f}; {ci_txt}): the "
                    "deep model's advantage is not measurable on this test set.",
                    subject=metric, model=name, evidence=ev))
            else:
                out.append(Finding(
                    "reference_outperforms", "info", 2,
                    f"{self.reference} has a higher {label} than the glass-box {name} "
                    f"({r['estimate_b']:.3f} vs {r['estimate_a']:.3f}; {ci_txt}).",
                    subject=metric, model=self.reference, evidence=ev))
        for name, t in self.tuning.items():
            if t and t.get("search") == "fixed" and t.get("kind") != "ebm":
                out.append(Finding(
                    "untuned_baseline", "low", 2,
                    f"The glass-box {name} was fitted with fixed settings (no tuning); a "
                    "comparison with a tuned deep model favours the deep model.",
                    subject="tuning", model=name, evidence=dict(t)))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "ModelComparison", "task": self.task, "reference": self.reference,
            "models": self.models, "metrics": list(self.metrics), "n": int(len(self.y)),
            "n_boot": self.n_boot, "ci": self.ci, "seed": self.seed,
            "glass_box": dict(self.glass_box),
            "table": to_jsonable(self.table), "differences": to_jsonable(self.differences),
            "tuning": to_jsonable(dict(self.tuning)),
            "findings": [f.to_dict() for f in self.findings()],
        }

    def plot(self, ax: Any = None, *, metrics: Any = None) -> Any:
        """Forest plot: one panel per metric, one row per model, point estimate and CI.

        ``ax`` may be a single Axes only when one metric is drawn; otherwise a new figure is
        made. The reference model is drawn in orange and its estimate as a dashed line.
        """
        import matplotlib.pyplot as plt

        metrics = list(self.metrics if metrics is None else check_metrics(metrics, self.task))
        models = self.models
        if ax is not None and len(metrics) == 1:
            axes = [ax]
            fig = ax.figure
        else:
            ncol = min(3, len(metrics))
            nrow = math.ceil(len(metrics) / ncol)
            fig, grid = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 0.45 * len(models) * nrow
                                                          + 1.2 * nrow), squeeze=False)
            axes = list(grid.ravel())
            for extra in axes[len(metrics):]:
                extra.set_visible(False)
        ypos = np.arange(len(models))[::-1]
        for axm, metric in zip(axes, metrics):
            t = self.table[self.table["metric"] == metric].set_index("model").loc[models]
            est = t["estimate"].to_numpy(float)
            lo, hi = t["ci_low"].to_numpy(float), t["ci_high"].to_numpy(float)
            colors = ["#DD8452" if m == self.reference else "#4C72B0" for m in models]
            axm.hlines(ypos, lo, hi, colors=colors, lw=2)
            axm.scatter(est, ypos, c=colors, zorder=3, s=25)
            ref = t.loc[self.reference, "estimate"]
            axm.axvline(ref, color="#DD8452", ls="--", lw=0.8)
            axm.set_yticks(ypos)
            axm.set_yticklabels(models)
            arrow = "\u2191" if HIGHER_IS_BETTER.get(metric, True) else "\u2193"
            axm.set_title(f"{LABELS.get(metric, metric)} {arrow}", fontsize=10)
            axm.tick_params(labelsize=8)
        fig.suptitle(f"{self.ci:.0%} bootstrap CIs, n = {len(self.y)}, {self.n_boot} replicates",
                     fontsize=9)
        fig.tight_layout()
        return fig


def compare_models(
    models: Any,
    X_test: Any,
    y_test: Any,
    *,
    n_boot: int = 1000,
    random_state: Any = None,
    metrics: Any = None,
    reference: str | None = None,
    ci: float = 0.95,
    alpha: float = 0.05,
    task: str | None = None,
    threshold: float = 0.5,
) -> ModelComparison:
    """Compare models on one test set: metric panel, bootstrap CIs, paired differences.

    Parameters
    ----------
    models : dict of str to model, or Baselines
        Anything :func:`as_model` accepts (torch module, estimator, callable, ModelAdapter,
        GlassBoxModel); a :class:`Baselines` value contributes each of its models under its own
        name. The first model is the reference the others are compared with.
    X_test, y_test
        Test inputs and labels (validated by :class:`~confoundry.AuditData`).
    n_boot : int
        Stratified bootstrap replicates (the same replicates for every model, so intervals are
        paired).
    random_state : None, int or Generator
        Seeds the bootstrap.
    metrics : sequence of str, optional
        Subset of the task's metric panel (default: all of it).
    reference : str, optional
        Name of the reference model (default: the first).
    ci : float
        Confidence level of the intervals.
    alpha : float
        Significance level (on BH q-values) for the findings.
    task : {"binary", "multiclass", "regression"}, optional
        Overrides the task inferred from ``y_test``.
    threshold : float
        Decision threshold for the thresholded binary metrics.

    Returns
    -------
    ModelComparison

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3)); y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)
    >>> good = LogisticRegression().fit(X[:200], y[:200])
    >>> weak = LogisticRegression().fit(X[:200, 1:], y[:200])
    >>> cmp = compare_models({"good": good, "weak": lambda x: weak.predict_proba(x[:, 1:])[:, 1]},
    ...                      X[200:], y[200:], n_boot=200, metrics=["auroc"], random_state=0)
    >>> d = cmp.difference("good", "weak")
    >>> bool(d.loc[0, "difference"] > 0 and d.loc[0, "a_better"])
    True
    """
    if not isinstance(models, Mapping):
        raise TypeError(f"models has type {type(models).__name__}; expected a dict of name to "
                        "model, or the Baselines returned by fit_baselines.")
    flat: dict[Any, Any] = {}
    for key, obj in models.items():  # a Baselines inside the dict contributes its models
        items = obj.items() if isinstance(obj, Baselines) else [(key, obj)]
        for name, m in items:
            if name in flat:
                raise ValueError(f"models has two models named {name!r}; expected unique names.")
            flat[name] = m
    models = flat
    if not models:
        raise ValueError("models is empty; expected at least one model to evaluate.")
    bad = [k for k in models if not isinstance(k, str) or not k.strip()]
    if bad:
        raise TypeError(f"models has key(s) {describe(bad)}; expected non-empty string names.")
    n_boot = check_positive_int(n_boot, "n_boot")
    ci = check_probability(ci, "ci")
    alpha = check_probability(alpha, "alpha")
    if reference is None:
        reference = next(iter(models))
    elif reference not in models:
        raise ValueError(f"reference={reference!r} is not one of the models {list(models)}.")
    if isinstance(X_test, AuditData):
        data = X_test if y_test is None else AuditData(X_test.X, y_test, task=task)
    else:
        if y_test is None:
            raise TypeError("y_test is None; expected labels or targets, one per row of X_test.")
        data = AuditData(X_test, y_test, task=task)
    if data.y is None:
        raise TypeError("X_test is an AuditData without y; expected labels or targets.")
    task = data.task
    metrics = check_metrics(metrics, task)
    # the user's own X for the user's models (what they were trained on); validated above
    X_user = X_test.X if isinstance(X_test, AuditData) else (
        X_test if hasattr(X_test, "shape") else data.X)
    seed = int_seed(check_random_state(random_state))

    scores: dict[str, np.ndarray] = {}
    glass: dict[str, bool] = {}
    tuning: dict[str, Any] = {}
    n = data.n_samples
    for name, obj in models.items():
        glass[name] = isinstance(obj, GlassBoxModel)
        if glass[name]:
            s = obj.predict_scores(data)
            tuning[name] = {"kind": obj.kind, **obj.tuning}
        else:
            adapter = obj if isinstance(obj, ModelAdapter) else as_model(obj, task=task, name=name)
            s = adapter.predict_scores(X_user)
        scores[name] = _check_scores(np.asarray(s, dtype=np.float64), name, task, n,
                                     data.classes)

    point, reps = _replicates(data.y, scores, task=task, metrics=metrics, n_boot=n_boot,
                              threshold=threshold, seed=seed, reference=reference)
    table = _interval_rows(point, reps, metrics=metrics, n=n, n_boot=n_boot, ci=ci)
    frames = [_paired_rows(point, reps, name, reference, metrics=metrics, n=n, n_boot=n_boot,
                           ci=ci) for name in scores if name != reference]
    differences = (pd.concat(frames, ignore_index=True) if frames
                   else pd.DataFrame(columns=_DIFF_COLS))
    differences["q_value"] = np.nan
    for k in metrics:
        sel = (differences["metric"] == k).to_numpy()
        if sel.any():
            differences.loc[sel, "q_value"] = bh_adjust(
                differences.loc[sel, "p_value"].to_numpy(dtype=float))
    return ModelComparison(table=table, scores=scores, y=np.asarray(data.y), task=task,
                           metrics=tuple(metrics), reference=reference, differences=differences,
                           glass_box=glass, tuning=tuning, n_boot=n_boot, ci=ci, alpha=alpha,
                           seed=seed, threshold=threshold, point=point, replicates=reps)


def _replicates(y: np.ndarray, scores: Mapping[str, np.ndarray], *, task: str,
                metrics: tuple[str, ...], n_boot: int, threshold: float, seed: int,
                reference: str) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, np.ndarray]]]:
    """Point estimates and bootstrap replicates of every metric of every model, on ONE set of
    stratified bootstrap replicates shared by all models (one metric evaluation per model and
    replicate; pairs then cost nothing).

    Rows are visited in the order of the reference's scores, exactly as
    :func:`stats.bootstrap_metrics` does for the reference and :func:`stats.paired_bootstrap`
    does with the reference as model ``a`` (samples are exchangeable, so it is the same
    bootstrap, and with the same seed the numbers are identical: tested).
    """
    y = np.asarray(y)
    order = (np.argsort(scores[reference], kind="mergesort")
             if task == "binary" else np.arange(len(y)))
    y = y[order]
    sc = {m: np.asarray(s, dtype=np.float64)[order] for m, s in scores.items()}
    point = {m: {k: float(v[0]) for k, v in weighted_metrics(
        y, s, None, task=task, metrics=metrics, threshold=threshold).items()}
        for m, s in sc.items()}
    reps: dict[str, dict[str, list[np.ndarray]]] = {m: {k: [] for k in metrics} for m in sc}
    strata = y if task in ("binary", "multiclass") else None
    for W in bootstrap_weights(len(y), n_boot, strata=strata, random_state=seed):
        for name, s in sc.items():
            res = weighted_metrics(y, s, W, task=task, metrics=metrics, threshold=threshold)
            for k in metrics:
                reps[name][k].append(res[k])
    return point, {m: {k: np.concatenate(v) for k, v in d.items()} for m, d in reps.items()}


def _interval_rows(point: Mapping[str, Mapping[str, float]],
                   reps: Mapping[str, Mapping[str, np.ndarray]], *, metrics: tuple[str, ...],
                   n: int, n_boot: int, ci: float) -> pd.DataFrame:
    """Percentile CIs (the formula of :func:`stats.bootstrap_metrics`)."""
    a = (1 - ci) / 2
    rows = []
    for name in point:
        for k in metrics:
            v = reps[name][k]
            lo, hi = np.nanquantile(v, [a, 1 - a]) if np.isfinite(v).any() else (np.nan, np.nan)
            rows.append({"model": name, "metric": k, "estimate": point[name][k],
                         "ci_low": float(lo), "ci_high": float(hi), "n": int(n),
                         "se": (float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1
                                else np.nan), "n_boot": n_boot})
    return pd.DataFrame(rows, columns=["model", "metric", "estimate", "ci_low", "ci_high", "n",
                                       "se", "n_boot"])


_DIFF_COLS = ["model_a", "model_b", "metric", "estimate_a", "estimate_b", "difference", "ci_low",
              "ci_high", "p_value", "a_better", "b_better", "n", "n_boot"]


def _paired_rows(point: Mapping[str, Mapping[str, float]],
                 reps: Mapping[str, Mapping[str, np.ndarray]], a: str, b: str, *,
                 metrics: tuple[str, ...], n: int, n_boot: int, ci: float) -> pd.DataFrame:
    """Paired differences ``a - b`` (the formulas of :func:`stats.paired_bootstrap`)."""
    al = (1 - ci) / 2
    rows = []
    for k in metrics:
        d = reps[a][k] - reps[b][k]
        d = d[np.isfinite(d)]
        if len(d):
            lo, hi = np.quantile(d, [al, 1 - al])
            p = bootstrap_p_value(d)
        else:
            lo = hi = p = np.nan
        up = HIGHER_IS_BETTER[k]
        rows.append({
            "model_a": a, "model_b": b, "metric": k, "estimate_a": point[a][k],
            "estimate_b": point[b][k], "difference": point[a][k] - point[b][k],
            "ci_low": float(lo), "ci_high": float(hi), "p_value": float(p),
            "a_better": bool(lo > 0 if up else hi < 0), "b_better": bool(hi < 0 if up else lo > 0),
            "n": int(n), "n_boot": n_boot})
    return pd.DataFrame(rows, columns=_DIFF_COLS)


def _check_scores(s: np.ndarray, name: str, task: str, n: int, classes: Any) -> np.ndarray:
    if task == "multiclass":
        k = len(classes)
        if s.shape != (n, k):
            raise ValueError(f"model {name!r} returned scores of shape {s.shape}; expected "
                             f"({n}, {k}) class probabilities for a {k}-class task.")
        return s
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.shape != (n,):
        raise ValueError(f"model {name!r} returned scores of shape {s.shape}; expected ({n},) "
                         f"for a {task} task.")
    if task == "binary" and np.any((s < 0) | (s > 1)):
        raise ValueError(f"model {name!r} returned scores outside [0, 1] for a binary task; "
                         "expected P(y=1) (wrap it with as_model(..., output='logits')).")
    return s
