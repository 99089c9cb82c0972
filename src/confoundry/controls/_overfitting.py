"""Overfitting gap (Tip 7): training minus test performance, with bootstrap CIs, per model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin
from .._severity import grade
from .._utils import check_random_state, int_seed, progress, thread_map
from ..data._validation import check_positive_int, check_probability
from ..stats import (
    DEFAULT_CI,
    DEFAULT_FDR,
    HEADLINE_METRIC,
    HIGHER_IS_BETTER,
    LABELS,
    MetricPanel,
    bh_adjust,
    bootstrap_p_value,
    bootstrap_weights,
    percentile_ci,
    weighted_metrics,
)
from ..stats._metrics import check_metrics
from ._common import Scored, fmt_ci, score_models, seed_param

#: at most this many bootstrap-weight cells per chunk (train or test).
_CHUNK_CELLS = 1_000_000


@dataclass(frozen=True, eq=False)
class OverfittingResult(ResultMixin):
    """Training and test performance of a model (and its baselines) and the gap between them.

    The gap of a metric is ``train - test`` for metrics where higher is better and
    ``test - train`` for losses, so a positive gap always means "worse on the test set".

    Attributes
    ----------
    table : DataFrame
        One row per model and metric: ``model``, ``role`` ("model" or "baseline"), ``metric``,
        ``train``, ``train_ci_low``, ``train_ci_high``, ``test``, ``test_ci_low``,
        ``test_ci_high``, ``gap``, ``gap_ci_low``, ``gap_ci_high``, ``p_value`` (two-sided
        bootstrap p of no gap), ``q_value`` (Benjamini-Hochberg over the model's metrics),
        ``higher_is_better``, ``n_train``, ``n_test``, ``n_boot``.
    comparison : DataFrame
        One row per baseline and metric: ``model``, ``baseline``, ``metric``, ``gap_model``,
        ``gap_baseline``, ``difference`` (gap of the model minus gap of the baseline),
        ``ci_low``, ``ci_high``, ``p_value``, ``q_value`` (BH over all baselines and metrics),
        ``larger_gap`` (True when the model's gap is significantly larger), ``n_train``,
        ``n_test``, ``n_boot``. Empty without baselines.
    model_name : str
    task : str
    metrics : tuple of str
    n_train, n_test, n_boot : int
    random_state : int or None
    alpha : float
        The false discovery rate of ``larger_gap`` and of the findings (``fdr``).
    params : dict
        ``metrics``, ``n_boot``, ``fdr``, ``ci``, ``random_state``, and which scores were
        given precomputed (``precomputed``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    >>> knn = KNeighborsClassifier(1).fit(X[:100], y[:100])       # memorises its training set
    >>> res = overfitting_gap(knn, X[:100], y[:100], X[100:], y[100:], metrics=["auroc"],
    ...                       n_boot=50, random_state=0, verbose=False)
    >>> res.table.shape, res.n_train, res.n_test, res.comparison.empty   # no baselines given
    ((1, 18), 100, 100, True)
    >>> bool(res.table.loc[0, "gap_ci_low"] > 0), [f.kind for f in res.findings()]
    (True, ['overfitting'])
    """

    table: pd.DataFrame
    comparison: pd.DataFrame
    model_name: str
    task: str
    metrics: tuple[str, ...]
    n_train: int
    n_test: int
    n_boot: int
    random_state: Any = None
    alpha: float = DEFAULT_FDR
    params: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------- surface
    def to_frame(self) -> pd.DataFrame:
        """The per-model, per-metric table (a copy)."""
        return self.table.copy()

    @property
    def headline(self) -> str:
        """The metric shown first: AUROC, macro AUROC or R² when computed."""
        h = HEADLINE_METRIC[self.task]
        return h if h in self.metrics else self.metrics[0]

    def _extra_dict(self) -> dict[str, Any]:
        return {"model": self.model_name, "headline": self.headline,
                "ci_level": self.params.get("ci", DEFAULT_CI)}

    def findings(self) -> list[Finding]:
        m = self.headline
        t = self.table
        row = t[(t["model"] == self.model_name) & (t["metric"] == m)].iloc[0]
        gap_txt = fmt_ci(row["gap"], row["gap_ci_low"], row["gap_ci_high"], 3)
        label = LABELS.get(m, m)
        base = {
            "metric": m, "train": row["train"], "test": row["test"], "gap": row["gap"],
            "gap_ci_low": row["gap_ci_low"], "gap_ci_high": row["gap_ci_high"],
            "p_value": row["p_value"], "n_train": self.n_train, "n_test": self.n_test,
            "n_boot": self.n_boot,
        }
        dl_sig = bool(row["q_value"] < self.alpha and row["gap"] > 0)
        if self.comparison.empty:
            if not dl_sig:
                return []
            return [Finding(
                "overfitting", "medium", 7,
                f"{self.model_name} performs significantly worse on test than on training data: "
                f"its {label} drops by {gap_txt}, a sign of overfitting. Fit glass-box baselines "
                "on the same split to tell memorisation from a hard task.",
                subject=m, model=self.model_name, evidence=base, domain="overall")]
        c = self.comparison
        sig = c[c["larger_gap"]]
        if sig.empty:
            if not dl_sig:
                return []
            return [Finding(
                "overfitting", "info", 7,
                f"{self.model_name}'s {label} drops from training to test by {gap_txt}, but not "
                "significantly more than the glass-box baselines' drop.",
                subject=m, model=self.model_name,
                evidence={**base, "baselines": c[c["metric"] == m][
                    ["baseline", "gap_baseline", "difference", "ci_low", "ci_high", "q_value"]]},
                domain="overall")]
        on_head = sig[sig["metric"] == m]
        n_base = c["baseline"].nunique()
        subject = m if not on_head.empty else str(sig.iloc[0]["metric"])
        ref = on_head if not on_head.empty else sig.iloc[:1]
        worst = ref.loc[ref["difference"].idxmax()]
        sub_label = LABELS.get(subject, subject)
        severity = grade("overfitting", worst["difference"],
                         ceiling="high" if on_head["baseline"].nunique() == n_base else "medium")
        title = (
            f"{self.model_name} has memorised its training data more than the glass-box "
            f"baselines: its drop in {sub_label} from training to test exceeds "
            f"{worst['baseline']}'s by "
            f"{fmt_ci(worst['difference'], worst['ci_low'], worst['ci_high'], 3)}."
        )
        evidence = {
            **base, "subject_metric": subject,
            "significant": sig[["baseline", "metric", "gap_model", "gap_baseline", "difference",
                                "ci_low", "ci_high", "q_value"]],
            "correction": "Benjamini-Hochberg over baselines x metrics",
        }
        return [Finding("overfitting", severity, 7, title, subject=subject,
                        model=self.model_name, evidence=evidence, domain="overall")]

    def plot(self, ax: Any = None) -> Any:
        """The gap (with its 95% CI) of every model, one panel per metric (metrics have their
        own scales); with ``ax``, only the headline metric is drawn on it."""
        import matplotlib.pyplot as plt

        t = self.table
        models = list(dict.fromkeys(t["model"]))
        metrics = [self.headline] if ax is not None else list(self.metrics)
        if ax is None:
            fig, axes = plt.subplots(len(metrics), 1, squeeze=False,
                                     figsize=(6.5, 0.35 * len(models) * len(metrics)
                                              + 0.55 * len(metrics) + 0.8),
                                     layout="constrained")
            axes = axes[:, 0]
        else:
            fig, axes = ax.figure, [ax]
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        ypos = np.arange(len(models))
        for a, m in zip(axes, metrics):
            sub = t[t["metric"] == m].set_index("model").loc[models]
            err = np.vstack([sub["gap"] - sub["gap_ci_low"], sub["gap_ci_high"] - sub["gap"]])
            err = np.clip(np.nan_to_num(err), 0, None)
            for j in range(len(models)):
                a.errorbar(sub["gap"].iloc[j], ypos[j], xerr=err[:, j:j + 1], fmt="o",
                           color=colors[j % len(colors)], capsize=3)
            a.axvline(0, color="grey", lw=1, ls="--")
            a.set_yticks(ypos)
            a.set_yticklabels([f"{mod} (model)" if mod == self.model_name else mod
                               for mod in models], fontsize=8)
            a.set_ylim(len(models) - 0.5, -0.5)
            diff = "train - test" if HIGHER_IS_BETTER[m] else "test - train"
            a.set_title(f"{LABELS.get(m, m)}: {diff}", fontsize=9, loc="left")
        axes[-1].set_xlabel("gap (positive = worse on test), 95% bootstrap CI")
        fig.suptitle(f"Overfitting gap (n_train={self.n_train}, n_test={self.n_test})",
                     fontsize=10)
        return fig


def overfitting_gap(
    model: Any,
    X_train: Any,
    y_train: Any = None,
    X_test: Any = None,
    y_test: Any = None,
    *,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    fdr: float = DEFAULT_FDR,
    random_state: Any = None,
    baselines: Any = None,
    scores: Any = None,
    train_scores: Any = None,
    baseline_scores: Mapping[str, Any] | None = None,
    baseline_train_scores: Mapping[str, Any] | None = None,
    panel: MetricPanel | None = None,
    model_name: str | None = None,
    verbose: bool = True,
) -> OverfittingResult:
    """Training vs test performance, the gap between them, and the gap against the baselines'.

    A model that does much better on its training data than on held-out data has memorised
    (Tip 7). Every model is scored on both splits, the metric panel is computed on each, and the
    gap ``train - test`` (oriented so that a positive gap means worse on test) gets a bootstrap
    CI from *independent* bootstraps of the training and test sets, which are different samples.
    The DL model's gap is compared with each baseline's gap on the *same* replicates, so the
    difference of gaps has a CI and a p-value too (Benjamini-Hochberg over baselines and metrics).
    A finding of kind ``"overfitting"`` is raised when the model's gap is significantly larger
    than a baseline's.

    Parameters
    ----------
    model : torch.nn.Module, estimator, callable or ModelAdapter
        The model under audit (wrapped with :func:`confoundry.as_model`); may be ``None`` when
        ``scores`` and ``train_scores`` are given.
    X_train, y_train : the data the model was trained on.
        ``X_train`` may be an :class:`~confoundry.AuditData` carrying ``y_train`` (then
        ``None``); it is used as it is.
    X_test, y_test : held-out data from the same population (the same way).
    metrics : sequence of str, optional
        Subset of :func:`confoundry.stats.default_metrics` for the task (default: all;
        scikit-learn spellings accepted).
    n_boot : int
        Bootstrap replicates.
    fdr : float
        False discovery rate of the comparison with the baselines (``larger_gap``) and of the
        model's own gap.
    random_state : int, Generator or None
        Seeds the bootstrap; the result is reproducible given an int.
    baselines : mapping of str to model, optional
        Glass-box models fitted on the same training data (objects with ``predict_scores``,
        estimators or callables), e.g. the ``Baselines`` of :func:`confoundry.fit_baselines`.
    scores, train_scores : array-like, optional
        The audited model's precomputed test and training scores (the ``predict_scores``
        convention: P(y=1), (n, K) class probabilities, or predictions); not recomputed.
    baseline_scores, baseline_train_scores : mapping of str to array-like, optional
        Precomputed test / training scores of the baselines, by name; a baseline whose scores
        are missing here is scored.
    panel : MetricPanel, optional
        The test set's metric panel (:func:`confoundry.stats.bootstrap_panel`, as the audit
        computes it once): the test-set estimates and bootstrap replicates of every model it
        holds (with these ``metrics``, ``n_boot`` replicates and threshold 0.5) are read from
        it instead of bootstrapping the test set again. The train and test bootstraps are
        independent either way.
    model_name : str, optional
        Display name of the audited model (default: its adapter's name).
    verbose : bool
        Show a progress bar over the bootstrap.

    Returns
    -------
    OverfittingResult

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 3)); y = (X[:, 0] + rng.normal(size=600) > 0).astype(int)
    >>> knn = KNeighborsClassifier(1).fit(X[:300], y[:300])
    >>> lr = LogisticRegression().fit(X[:300], y[:300])
    >>> res = overfitting_gap(knn, X[:300], y[:300], X[300:], y[300:], metrics=["auroc"],
    ...                       n_boot=200, random_state=0, baselines={"logistic": lr},
    ...                       verbose=False)
    >>> res.to_frame()[["model", "metric", "train"]].round(2).values.tolist()[0]
    ['KNeighborsClassifier', 'auroc', 1.0]
    >>> [f.kind for f in res.findings()]
    ['overfitting']
    """
    n_boot = check_positive_int(n_boot, "n_boot")
    fdr = check_probability(fdr, "fdr")
    rng = check_random_state(random_state)
    sc = score_models(model, X_train, y_train, X_test, y_test, baselines, scores=scores,
                      train_scores=train_scores, baseline_scores=baseline_scores,
                      baseline_train_scores=baseline_train_scores, model_name=model_name)
    metrics = check_metrics(metrics, sc.task)
    seeds = int_seed(rng), int_seed(rng)
    point, reps = _bootstrap(sc, metrics, n_boot, seeds, verbose, panel)
    table, gaps = _table(sc, metrics, point, reps, n_boot)
    comparison = _comparison(sc, metrics, table, gaps, n_boot, fdr)
    params = {"metrics": list(metrics), "n_boot": n_boot, "fdr": fdr, "ci": DEFAULT_CI,
              "random_state": seed_param(random_state),
              "test_panel": sorted(_panel_models(panel, sc, metrics, n_boot)),
              "precomputed": {"scores": scores is not None,
                              "train_scores": train_scores is not None,
                              "baseline_scores": sorted(baseline_scores or ()),
                              "baseline_train_scores": sorted(baseline_train_scores or ())}}
    return OverfittingResult(
        table=table, comparison=comparison, model_name=sc.names[0], task=sc.task,
        metrics=tuple(metrics), n_train=len(sc.y_train), n_test=len(sc.y_test), n_boot=n_boot,
        random_state=random_state if isinstance(random_state, (int, np.integer)) else None,
        alpha=fdr, params=params,
    )


def _bootstrap(sc: Scored, metrics: tuple[str, ...], n_boot: int, seeds: tuple[int, int],
               verbose: bool, panel: MetricPanel | None = None) -> tuple[dict, dict]:
    """Point estimates and independent train / test bootstrap replicates of every metric.

    A model whose test-set estimates and replicates are in ``panel`` (the audit's one
    bootstrap of the test set) takes them from there; only its training set is bootstrapped.
    """
    task = sc.task
    y_tr, y_te = sc.y_train, sc.y_test
    n_tr, n_te = len(y_tr), len(y_te)
    strat = task in ("binary", "multiclass")
    chunk = max(1, min(n_boot, _CHUNK_CELLS // max(n_tr, n_te)))
    from_panel = set(_panel_models(panel, sc, metrics, n_boot))

    def _scores(s: np.ndarray) -> np.ndarray:
        return s[:, : sc.n_classes] if task == "multiclass" else s

    point = {}
    for name in sc.names:
        tr = weighted_metrics(y_tr, _scores(sc.train_scores[name]), None, task=task,
                              metrics=metrics)
        te = ({m: [panel.point[name][m]] for m in metrics} if name in from_panel else
              weighted_metrics(y_te, _scores(sc.test_scores[name]), None, task=task,
                               metrics=metrics))
        point[name] = {m: (float(tr[m][0]), float(te[m][0])) for m in metrics}
    chunks: dict[str, dict[str, tuple[list, list]]] = {
        name: {m: ([], []) for m in metrics} for name in sc.names}
    gen_tr = bootstrap_weights(n_tr, n_boot, strata=y_tr if strat else None,
                               random_state=seeds[0], chunk_size=chunk)
    gen_te = bootstrap_weights(n_te, n_boot, strata=y_te if strat else None,
                               random_state=seeds[1], chunk_size=chunk)
    bar = progress(total=-(-n_boot // chunk), desc="overfitting gap", verbose=verbose)
    try:
        for W_tr, W_te in zip(gen_tr, gen_te):
            def one(name: str, W_tr: np.ndarray = W_tr, W_te: np.ndarray = W_te) -> tuple:
                tr = weighted_metrics(y_tr, _scores(sc.train_scores[name]), W_tr, task=task,
                                      metrics=metrics)
                te = None if name in from_panel else weighted_metrics(
                    y_te, _scores(sc.test_scores[name]), W_te, task=task, metrics=metrics)
                return tr, te

            for name, (tr, te) in zip(sc.names, thread_map(one, sc.names)):
                for m in metrics:
                    chunks[name][m][0].append(tr[m])
                    if te is not None:
                        chunks[name][m][1].append(te[m])
            bar.update(1)
    finally:
        bar.close()
    reps = {name: {m: (np.concatenate(tr_c),
                       panel.replicates[name][m] if name in from_panel else np.concatenate(te_c))
                   for m, (tr_c, te_c) in d.items()} for name, d in chunks.items()}
    return point, reps


def _panel_models(panel: MetricPanel | None, sc: Scored, metrics: tuple[str, ...],
                  n_boot: int) -> list[str]:
    """Models whose test-set bootstrap can be read from ``panel`` (same rows, replicates,
    metrics and threshold)."""
    if panel is None or panel.task != sc.task or panel.n != len(sc.y_test) or (
            panel.n_boot != n_boot or panel.threshold != 0.5
            or not set(metrics) <= set(panel.metrics)):
        return []
    return [name for name in sc.names if name in panel.point]


def _table(sc: Scored, metrics: tuple[str, ...], point: dict, reps: dict,
           n_boot: int) -> tuple[pd.DataFrame, dict]:
    n_tr, n_te = len(sc.y_train), len(sc.y_test)
    rows, gaps = [], {}
    for name in sc.names:
        model_rows = []
        for m in metrics:
            tr_b, te_b = reps[name][m]
            sign = 1.0 if HIGHER_IS_BETTER[m] else -1.0
            gap_b = sign * (tr_b - te_b)
            gaps[(name, m)] = gap_b
            tr_pt, te_pt = point[name][m]
            model_rows.append({
                "model": name, "role": "model" if name == sc.names[0] else "baseline",
                "metric": m, "train": tr_pt,
                **dict(zip(("train_ci_low", "train_ci_high"), percentile_ci(tr_b))),
                "test": te_pt, **dict(zip(("test_ci_low", "test_ci_high"), percentile_ci(te_b))),
                "gap": sign * (tr_pt - te_pt),
                **dict(zip(("gap_ci_low", "gap_ci_high"), percentile_ci(gap_b))),
                "p_value": bootstrap_p_value(gap_b), "higher_is_better": bool(HIGHER_IS_BETTER[m]),
                "n_train": n_tr, "n_test": n_te, "n_boot": n_boot,
            })
        q = bh_adjust(np.array([r["p_value"] for r in model_rows]))
        for r, qv in zip(model_rows, q):
            r["q_value"] = float(qv)
        rows.extend(model_rows)
    cols = ["model", "role", "metric", "train", "train_ci_low", "train_ci_high", "test",
            "test_ci_low", "test_ci_high", "gap", "gap_ci_low", "gap_ci_high", "p_value",
            "q_value", "higher_is_better", "n_train", "n_test", "n_boot"]
    return pd.DataFrame(rows, columns=cols), gaps


def _comparison(sc: Scored, metrics: tuple[str, ...], table: pd.DataFrame, gaps: dict,
                n_boot: int, fdr: float) -> pd.DataFrame:
    """The model's gap minus each baseline's, on the same replicates."""
    n_tr, n_te = len(sc.y_train), len(sc.y_test)
    dl = sc.names[0]
    comp_rows = []
    for bname in sc.names[1:]:
        for m in metrics:
            d = gaps[(dl, m)] - gaps[(bname, m)]
            g_dl = table.loc[(table["model"] == dl) & (table["metric"] == m), "gap"].item()
            g_b = table.loc[(table["model"] == bname) & (table["metric"] == m), "gap"].item()
            lo, hi = percentile_ci(d)
            comp_rows.append({
                "model": dl, "baseline": bname, "metric": m, "gap_model": g_dl,
                "gap_baseline": g_b, "difference": g_dl - g_b, "ci_low": lo, "ci_high": hi,
                "p_value": bootstrap_p_value(d), "n_train": n_tr, "n_test": n_te, "n_boot": n_boot,
            })
    comp_cols = ["model", "baseline", "metric", "gap_model", "gap_baseline", "difference",
                 "ci_low", "ci_high", "p_value", "q_value", "larger_gap", "n_train", "n_test",
                 "n_boot"]
    comparison = pd.DataFrame(comp_rows, columns=[c for c in comp_cols
                                                  if c not in ("q_value", "larger_gap")])
    if len(comparison):
        comparison["q_value"] = bh_adjust(comparison["p_value"].to_numpy())
        comparison["larger_gap"] = (comparison["q_value"] < fdr) & (comparison["difference"] > 0)
    else:
        comparison["q_value"] = pd.Series(dtype=float)
        comparison["larger_gap"] = pd.Series(dtype=bool)
    return comparison[comp_cols]
