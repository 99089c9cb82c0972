"""``compare_models``: the metric panel of several models on the same test set, with stratified
bootstrap CIs and paired bootstrap differences against a reference (the deep model).

(One module past 450 lines: the result's findings and plot read the panel the function builds.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, internal
from .._severity import grade
from .._utils import check_random_state, int_seed, progress, renamed_keyword
from ..data import AuditData
from ..data._validation import check_positive_int, check_probability, describe
from ..stats import (
    DEFAULT_CI,
    DEFAULT_FDR,
    HEADLINE_METRIC,
    HIGHER_IS_BETTER,
    LABELS,
    MetricPanel,
    bh_adjust,
    bootstrap_panel,
    difference_summary,
)
from ..stats._metrics import check_metrics
from ._adapter import ModelAdapter, as_model
from ._baselines import BaselinesResult
from ._glassbox import GlassBoxModel
from ._labels import step_data


@dataclass(frozen=True, eq=False)
class ModelComparisonResult(ResultMixin):
    """Metric panel of several models on one test set, with bootstrap confidence intervals.

    Build it with :func:`compare_models`.

    Attributes
    ----------
    table : DataFrame
        One row per model and metric: ``model``, ``metric``, ``estimate``, ``ci_low``,
        ``ci_high``, ``n``, ``se``, ``n_boot`` (:meth:`confoundry.stats.MetricPanel.frame`).
    scores : dict of str to ndarray
        The scores each model gave the test rows (reusable by later steps; not in JSON).
    y : ndarray
        Test labels or targets (not in JSON).
    task : str
    metrics : tuple of str
    reference : str
        The model the others are compared with (the first one unless told otherwise).
    differences : DataFrame
        Paired bootstrap of ``metric(model) - metric(reference)`` for every other model: the
        columns of :func:`confoundry.stats.paired_bootstrap` plus ``model_a``, ``model_b`` and
        ``q_value`` (Benjamini-Hochberg across the compared models, per metric).
    glass_box : dict of str to bool
        Which models are confoundry glass-box baselines.
    tuning : dict
        Tuning record of each glass-box baseline (see :meth:`BaselinesResult.tuning_table`).
    n_boot, ci, fdr, seed, threshold
        Bootstrap replicates, CI level, false-discovery rate of the findings (on BH q-values),
        bootstrap seed, decision threshold.
    params : dict
        The same provenance in one place, plus ``panel`` (whether a precomputed panel was used).
    point, replicates : dict
        Point estimates and bootstrap replicates of every metric of every model (shared
        replicates: the same resampled rows for every model; not in JSON).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> s = {"good": np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.15, 200), 0, 1),
    ...      "coin": rng.random(200)}
    >>> cmp = compare_models(None, None, y, scores=s, metrics=["auroc"], n_boot=50,
    ...                      random_state=0, verbose=False)
    >>> cmp.table[["model", "metric"]].values.tolist(), cmp.reference
    ([['good', 'auroc'], ['coin', 'auroc']], 'good')
    >>> d = cmp.differences.iloc[0]
    >>> d["model_a"], d["model_b"], bool(d["b_better"])     # the reference beats the coin
    ('coin', 'good', True)
    """

    table: pd.DataFrame
    scores: Mapping[str, np.ndarray] = internal()
    y: np.ndarray = internal()
    task: str
    metrics: tuple[str, ...]
    reference: str
    differences: pd.DataFrame
    glass_box: Mapping[str, bool] = field(default_factory=dict)
    tuning: Mapping[str, Any] = field(default_factory=dict)
    n_boot: int = 1000
    ci: float = DEFAULT_CI
    fdr: float = DEFAULT_FDR
    seed: int | None = 0
    threshold: float = 0.5
    params: Mapping[str, Any] = field(default_factory=dict)
    point: Mapping[str, Mapping[str, float]] = internal(default_factory=dict)
    replicates: Mapping[str, Mapping[str, np.ndarray]] = internal(default_factory=dict)

    # ---------------------------------------------------------------- surface
    @property
    def models(self) -> list[str]:
        return list(self.scores)

    @property
    def alpha(self) -> float:
        """Deprecated name of :attr:`fdr`."""
        return self.fdr

    def to_frame(self) -> pd.DataFrame:
        """Model x metric table: ``model``, ``metric``, ``estimate``, ``ci_low``, ``ci_high``,
        ``n`` (and ``se``, ``n_boot``)."""
        return self.table.copy()

    def _extra_dict(self) -> dict[str, Any]:
        return {"models": self.models, "n": int(len(self.y))}

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
        ``baseline_outperforms`` *high* when the baseline is significantly better by at
        least the minimum effect of :func:`confoundry.severity_rules` (0.02; *medium* or *low*
        when the gain is smaller),
        ``baseline_outperforms`` *medium* when it is not significantly worse (deep learning buys
        nothing measurable here), ``reference_outperforms`` *info* when the reference is
        significantly better. Untuned baselines add a *low* ``untuned_baseline`` finding.
        """
        if self.glass_box.get(self.reference, False):
            return []  # comparing baselines among themselves: nothing to flag
        metric = HEADLINE_METRIC[self.task]
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
            sig = r["q_value"] < self.fdr and not (r["ci_low"] <= 0 <= r["ci_high"])
            if sig and r["difference"] > 0:
                out.append(Finding(
                    "baseline_outperforms", grade("baseline_outperforms", r["difference"],
                                                  n=r["n"]), 2,
                    f"The glass-box {name} has a higher {label} than {self.reference} "
                    f"({r['estimate_a']:.3f} vs {r['estimate_b']:.3f}; {ci_txt}): the deep "
                    "model is not the better model here.",
                    subject=metric, model=name, domain="overall", evidence=ev))
            elif not sig:
                out.append(Finding(
                    "baseline_outperforms", "medium", 2,
                    f"The glass-box {name} is not significantly worse than {self.reference} on "
                    f"{label} ({r['estimate_a']:.3f} vs {r['estimate_b']:.3f}; {ci_txt}): the "
                    "deep model's advantage is not measurable on this test set.",
                    subject=metric, model=name, domain="overall", evidence=ev))
            else:
                out.append(Finding(
                    "reference_outperforms", "info", 2,
                    f"{self.reference} has a higher {label} than the glass-box {name} "
                    f"({r['estimate_b']:.3f} vs {r['estimate_a']:.3f}; {ci_txt}).",
                    subject=metric, model=self.reference, domain="overall",
                    evidence=ev))
        for name, t in self.tuning.items():
            if t and t.get("search") == "fixed" and t.get("kind") != "ebm":
                out.append(Finding(
                    "untuned_baseline", "low", 2,
                    f"The glass-box {name} was fitted with fixed settings (no tuning); a "
                    "comparison with a tuned deep model favours the deep model.",
                    subject="tuning", model=name, evidence=dict(t)))
        return out


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
                                                          + 1.2 * nrow), squeeze=False,
                                     layout="constrained")
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
        return fig


def compare_models(
    models: Any,
    X_test: Any = None,
    y_test: Any = None,
    *,
    scores: Mapping[str, Any] | None = None,
    panel: MetricPanel | None = None,
    n_boot: int = 1000,
    random_state: Any = None,
    metrics: Any = None,
    reference: str | None = None,
    ci: float = DEFAULT_CI,
    fdr: float = DEFAULT_FDR,
    task: str | None = None,
    threshold: float = 0.5,
    verbose: bool = True,
    alpha: float | None = None,
) -> ModelComparisonResult:
    """Compare models on one test set: metric panel, bootstrap CIs, paired differences.

    Parameters
    ----------
    models : dict of str to model, BaselinesResult, or None
        Anything :func:`as_model` accepts (torch module, estimator, callable, ModelAdapter,
        GlassBoxModel); a :class:`BaselinesResult` value contributes each of its models under
        its own name. The first model is the reference the others are compared with. With
        ``scores``, a model may be ``None`` (or ``models`` itself ``None``): a GlassBoxModel
        given beside its scores only contributes its glass-box flag and tuning record.
    X_test, y_test
        Test inputs and labels (an :class:`~confoundry.AuditData` is used as it is). ``X_test``
        may be ``None`` when every model's ``scores`` are given.
    scores : dict of str to array, optional
        Precomputed test scores by model name (those models are not called). Names missing
        from ``models`` are added to the comparison, after them.
    panel : MetricPanel, optional
        A precomputed panel (:func:`confoundry.stats.bootstrap_panel`) holding every compared
        model: its point estimates and shared replicates are used instead of bootstrapping
        again (``n_boot``, ``random_state`` and ``threshold`` are then the panel's; by default
        the metrics are the panel's too).
    n_boot : int
        Stratified bootstrap replicates (the same replicates for every model, so intervals are
        paired).
    random_state : None, int or Generator
        Seeds the bootstrap.
    metrics : sequence of str, optional
        Subset of the task's metric panel (default: all of it); scikit-learn spellings
        (``"roc_auc"``, ``"average_precision"`` ...) are accepted.
    reference : str, optional
        Name of the reference model (default: the first).
    ci : float
        Confidence level of the intervals.
    fdr : float
        False-discovery rate (on Benjamini-Hochberg q-values) for the findings.
    task : {"binary", "multiclass", "regression"}, optional
        Overrides the task inferred from ``y_test``.
    threshold : float
        Decision threshold for the thresholded binary metrics.
    verbose : bool
        Progress bar while the models are scored.
    alpha : float, optional
        Deprecated name of ``fdr``.

    Returns
    -------
    ModelComparisonResult

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3)); y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)
    >>> good = LogisticRegression().fit(X[:200], y[:200])
    >>> weak = LogisticRegression().fit(X[:200, 1:], y[:200])
    >>> cmp = compare_models({"good": good, "weak": lambda x: weak.predict_proba(x[:, 1:])[:, 1]},
    ...                      X[200:], y[200:], n_boot=200, metrics=["roc_auc"], random_state=0,
    ...                      verbose=False)
    >>> d = cmp.difference("good", "weak")
    >>> bool(d.loc[0, "difference"] > 0 and d.loc[0, "a_better"])
    True

    Precomputed scores need neither the models nor ``X_test``:

    >>> s = {"good": good.predict_proba(X[200:])[:, 1], "coin": rng.random(200)}
    >>> compare_models(None, None, y[200:], scores=s, metrics=["auroc"], n_boot=100,
    ...                random_state=0).models
    ['good', 'coin']
    """
    fdr = renamed_keyword("compare_models", "alpha", "fdr", alpha, fdr,
                          new_default=DEFAULT_FDR)
    models = _flatten(models, scores)
    n_boot = check_positive_int(n_boot, "n_boot")
    ci = check_probability(ci, "ci")
    fdr = check_probability(fdr, "fdr")
    if reference is None:
        reference = next(iter(models))
    elif reference not in models:
        raise ValueError(f"reference={reference!r} is not one of the models {list(models)}.")
    given = dict(scores or {})
    if X_test is None and any(name not in given for name in models):
        missing = [name for name in models if name not in given]
        raise TypeError(f"X_test is None but models {missing} have no precomputed scores; "
                        "expected X_test to score them, or scores= for every model.")
    if panel is not None and not isinstance(panel, MetricPanel):
        raise TypeError(f"panel={describe(panel)} is not a MetricPanel; expected the result of "
                        "confoundry.stats.bootstrap_panel.")
    data = step_data(X_test, y_test, task=task, x_name="X_test", y_name="y_test")
    task = data.task
    n = data.n_samples
    metrics = (tuple(panel.metrics) if panel is not None and metrics is None
               else check_metrics(metrics, task))

    # the user's own X for the user's models (what they were trained on); validated above
    X_user = X_test.X if isinstance(X_test, AuditData) else (
        X_test if hasattr(X_test, "shape") else data.X)
    out_scores: dict[str, np.ndarray] = {}
    glass: dict[str, bool] = {}
    tuning: dict[str, Any] = {}
    for name, obj in progress(models.items(), total=len(models), desc="scoring models",
                              verbose=verbose and any(k not in given for k in models)):
        glass[name] = isinstance(obj, GlassBoxModel)
        if glass[name]:
            tuning[name] = {"kind": obj.kind, **obj.tuning}
        if name in given:
            s = np.asarray(given[name].to_numpy() if hasattr(given[name], "to_numpy")
                           else given[name], dtype=np.float64)
        elif glass[name]:
            s = obj.predict_scores(data)
        else:
            adapter = obj if isinstance(obj, ModelAdapter) else as_model(obj, task=task, name=name)
            s = adapter.predict_scores(X_user)
        out_scores[name] = _check_scores(np.asarray(s, dtype=np.float64), name, task, n,
                                         data.classes)

    from_panel = panel is not None
    if from_panel:
        panel = _check_panel(panel, list(out_scores), metrics, task, n)
        seed, n_boot, threshold = panel.seed, panel.n_boot, panel.threshold
    else:
        seed = int_seed(check_random_state(random_state))
        panel = bootstrap_panel(data.y, out_scores, task=task, metrics=metrics, n_boot=n_boot,
                                ci=ci, threshold=threshold, random_state=seed,
                                reference=reference)
    names = list(out_scores)
    point = {m: {k: panel.point[m][k] for k in metrics} for m in names}
    reps = {m: {k: panel.replicates[m][k] for k in metrics} for m in names}
    table = panel.frame(names, ci=ci)
    table = table[table["metric"].isin(metrics)].reset_index(drop=True)
    frames = [_paired_rows(point, reps, name, reference, metrics=metrics, n=n, n_boot=n_boot,
                           ci=ci) for name in names if name != reference]
    differences = (pd.concat(frames, ignore_index=True) if frames
                   else pd.DataFrame(columns=_DIFF_COLS))
    differences["q_value"] = np.nan
    for k in metrics:
        sel = (differences["metric"] == k).to_numpy()
        if sel.any():
            differences.loc[sel, "q_value"] = bh_adjust(
                differences.loc[sel, "p_value"].to_numpy(dtype=float))
    params = {"n_boot": n_boot, "ci": ci, "fdr": fdr, "seed": seed, "threshold": threshold,
              "metrics": list(metrics), "reference": reference, "panel": from_panel}
    return ModelComparisonResult(
        table=table, scores=out_scores, y=np.asarray(data.y), task=task, metrics=tuple(metrics),
        reference=reference, differences=differences, glass_box=glass, tuning=tuning,
        n_boot=n_boot, ci=ci, fdr=fdr, seed=seed, threshold=threshold, params=params,
        point=point, replicates=reps)


def _flatten(models: Any, scores: Mapping[str, Any] | None) -> dict[str, Any]:
    """One dict of name -> model: a BaselinesResult inside contributes its models; names only
    in ``scores`` are added (as ``None``) after them."""
    if scores is not None and not isinstance(scores, Mapping):
        raise TypeError(f"scores={describe(scores)} is not a mapping; expected a dict of model "
                        "name -> precomputed test scores.")
    if models is None:
        if not scores:
            raise TypeError("models is None and scores is None; expected a dict of name to "
                            "model, or scores= of every model.")
        models = {}
    if not isinstance(models, Mapping):
        raise TypeError(f"models has type {type(models).__name__}; expected a dict of name to "
                        "model, or the BaselinesResult returned by fit_baselines.")
    flat: dict[Any, Any] = {}
    for key, obj in models.items():
        items = obj.items() if isinstance(obj, BaselinesResult) else [(key, obj)]
        for name, m in items:
            if name in flat:
                raise ValueError(f"models has two models named {name!r}; expected unique names.")
            flat[name] = m
    for name in scores or {}:
        flat.setdefault(name, None)
    if not flat:
        raise ValueError("models is empty; expected at least one model to evaluate.")
    bad = [k for k in flat if not isinstance(k, str) or not k.strip()]
    if bad:
        raise TypeError(f"models has key(s) {describe(bad)}; expected non-empty string names.")
    missing = [k for k, m in flat.items() if m is None and k not in (scores or {})]
    if missing:
        raise TypeError(f"models {missing} are None without scores; expected a model or "
                        "precomputed scores= for each.")
    return flat


def _check_panel(panel: MetricPanel, names: list[str], metrics: tuple[str, ...], task: str,
                 n: int) -> MetricPanel:
    if panel.task != task or panel.n != n:
        raise ValueError(f"panel holds {panel.n} rows of a {panel.task} task; expected the "
                         f"{n} test rows of this {task} task.")
    missing = [m for m in names if m not in panel.point]
    if missing:
        raise ValueError(f"panel has no model {missing}; expected every compared model, from "
                         f"{panel.models}.")
    absent = [k for k in metrics if k not in panel.metrics]
    if absent:
        raise ValueError(f"metrics={list(metrics)} has {absent}, which the panel did not "
                         f"compute; expected names from {list(panel.metrics)}.")
    return panel


_DIFF_COLS = ["model_a", "model_b", "metric", "estimate_a", "estimate_b", "difference", "ci_low",
              "ci_high", "p_value", "a_better", "b_better", "n", "n_boot"]


def _paired_rows(point: Mapping[str, Mapping[str, float]],
                 reps: Mapping[str, Mapping[str, np.ndarray]], a: str, b: str, *,
                 metrics: tuple[str, ...], n: int, n_boot: int, ci: float) -> pd.DataFrame:
    """Paired differences ``a - b`` (the formulas of :func:`stats.paired_bootstrap`)."""
    rows = []
    for k in metrics:
        d = difference_summary(reps[a][k] - reps[b][k], ci)
        lo, hi = d["ci_low"], d["ci_high"]
        up = HIGHER_IS_BETTER[k]
        rows.append({
            "model_a": a, "model_b": b, "metric": k, "estimate_a": point[a][k],
            "estimate_b": point[b][k], "difference": point[a][k] - point[b][k],
            "ci_low": lo, "ci_high": hi, "p_value": d["p_value"],
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
