"""``split_domains``: per-domain metrics with bootstrap CIs, and DL against glass-box baselines.

One module past 450 lines: the result's views (difference, findings, plot) read the replicates
the function stores, and are clearer beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, internal
from .._severity import grade
from .._utils import check_random_state, int_seed, progress
from ..data._validation import check_positive_int, check_probability, describe
from ..models import as_model
from ..models._labels import step_data
from ..stats import (
    DEFAULT_CI,
    DEFAULT_FDR,
    HEADLINE_METRIC,
    HIGHER_IS_BETTER,
    LABELS,
    MetricPanel,
    bh_adjust,
    bootstrap_panel,
    bootstrap_scheme,
    difference_summary,
    percentile_ci,
)
from ..stats._metrics import check_metrics
from ._common import (
    MIN_EVENTS,
    MIN_N,
    check_floor,
    check_scores,
    floor_note,
    label_events,
    model_scores,
)
from ._groups import resolve_domains

OVERALL = "overall"
#: default q-value under which a per-domain DL-minus-baseline difference is a win or a loss.
ALPHA = DEFAULT_FDR


@dataclass(frozen=True, eq=False)
class DomainResult(ResultMixin):
    """Per-domain metrics of a model (and its baselines), shaped like fairlearn's MetricFrame.

    Attributes
    ----------
    overall : DataFrame
        One row (``domain = "overall"``) with ``n``, ``positives``, every metric with its
        ``_ci_low`` / ``_ci_high`` bootstrap percentile interval, for the audited model, then
        ``testable`` and ``note`` (see ``min_n`` of :func:`split_domains`).
    by_domain : DataFrame
        The same columns, one row per domain (the audited model); the ``table`` of
        :meth:`to_dict`. A domain below the floor keeps its ``n`` and point estimates, but no
        interval (NaN), ``testable = False`` and a ``note`` starting "too small to test".
    by_model : DataFrame
        ``model`` column plus the same columns, for the audited model and every baseline, over
        ``"overall"`` and every domain.
    comparison : DataFrame
        With baselines: one row per baseline x domain x metric, ``difference`` = audited model
        minus baseline, paired bootstrap CI (the same resampled rows for both models),
        two-sided bootstrap ``p_value``, Benjamini–Hochberg ``q_value`` over the testable rows,
        ``model_better`` / ``baseline_better`` (q < ``fdr`` in that model's favour, taking into
        account whether higher is better) and ``testable``. A domain below the floor keeps its
        two values and their difference, with no CI, p or q (it is not in the BH family) and
        neither model better. Empty without baselines.
    metrics : tuple of str
    task : str
    model_name : str
    by : list of str
        Columns that define the domains (empty for masks).
    n_boot : int
    ci, threshold, fdr : float
    params : dict
        What the result was computed with (``n_boot``, ``ci``, ``fdr``, ``threshold``,
        ``bins``, ``random_state``, ``overall_from_panel``, ``min_n``, ``min_events``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> y = (rng.random(200) < 0.4).astype(int)
    >>> s = np.clip(0.4 + 0.3 * (y - 0.4) + rng.normal(0, 0.2, 200), 0, 1)
    >>> site = pd.Series(rng.choice(["A", "B"], 200), name="site")
    >>> res = split_domains(None, None, y, by=site, scores=s, metrics=["roc_auc"], n_boot=50,
    ...                     random_state=0, verbose=False)
    >>> res.by_domain.columns.tolist()
    ['domain', 'n', 'positives', 'auroc', 'auroc_ci_low', 'auroc_ci_high', 'testable', 'note']
    >>> res.by, res.overall.shape, res.comparison.empty      # no baselines: no comparison
    (['site'], (1, 8), True)
    """

    overall: pd.DataFrame
    by_domain: pd.DataFrame = internal()  # the "table" of to_dict
    by_model: pd.DataFrame
    comparison: pd.DataFrame
    metrics: tuple[str, ...]
    task: str
    model_name: str
    by: list[str]
    n_boot: int
    ci: float = DEFAULT_CI
    threshold: float = 0.5
    fdr: float = DEFAULT_FDR
    params: Mapping[str, Any] = field(default_factory=dict)
    _replicates: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]] = field(
        default_factory=dict, repr=False)

    # ------------------------------------------------------------------ tables
    def to_frame(self) -> pd.DataFrame:
        """``by_domain``: one row per domain for the audited model."""
        return self.by_domain.copy()

    def _extra_dict(self) -> dict[str, Any]:
        return {"model": self.model_name, "difference": self.difference()}

    def _metric(self, metric: str | None) -> str:
        """The metric a plot or finding speaks about: the given one, else the headline one."""
        if metric is None:
            head = HEADLINE_METRIC[self.task]
            return head if head in self.metrics else self.metrics[0]
        (m,) = check_metrics(metric, self.task)
        if m not in self.metrics:
            raise ValueError(f"metric={metric!r} was not computed; expected one of "
                             f"{list(self.metrics)}.")
        return m

    def difference(self, metric: str | None = None, *, model: str | None = None) -> pd.DataFrame:
        """Largest gap between two domains, per metric, with a bootstrap CI.

        The gap is ``max - min`` over domains (as in fairlearn's ``MetricFrame.difference``).
        Domains are resampled independently, so replicate ``b`` of the domain with the highest
        value minus replicate ``b`` of the domain with the lowest gives the percentile interval
        and a two-sided bootstrap p-value of that gap. Only testable domains (at or above the
        ``min_n`` / ``min_events`` floor) take part. The pair is chosen on the same data, so
        read the interval as describing these two domains, not as a test of "any gap".

        Parameters
        ----------
        metric : str, optional
            One metric; all metrics by default.
        model : str, optional
            A baseline's name; the audited model by default.

        Returns
        -------
        DataFrame with ``metric``, ``model``, ``domain_high``, ``domain_low``, ``value_high``,
        ``value_low``, ``difference``, ``ci_low``, ``ci_high``, ``p_value``, ``n_high``,
        ``n_low``.
        """
        model = self.model_name if model is None else model
        if model not in self._replicates:
            raise ValueError(f"model={model!r} is not in this result; expected one of "
                             f"{list(self._replicates)}.")
        metrics = self.metrics if metric is None else check_metrics(metric, self.task)
        table = self.by_model[(self.by_model["model"] == model)
                              & (self.by_model["domain"] != OVERALL)
                              & self.by_model["testable"]].set_index("domain")
        rows = []
        for m in metrics:
            vals = table[m].dropna()
            row: dict[str, Any] = {"metric": m, "model": model}
            if len(vals) < 2:
                rows.append({**row, "domain_high": None, "domain_low": None,
                             "value_high": np.nan, "value_low": np.nan, "difference": np.nan,
                             "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
                             "n_high": 0, "n_low": 0})
                continue
            hi, lo = vals.idxmax(), vals.idxmin()
            reps = self._replicates[model]
            d = difference_summary(reps[hi][m] - reps[lo][m], self.ci)
            rows.append({**row, "domain_high": hi, "domain_low": lo,
                         "value_high": float(vals[hi]), "value_low": float(vals[lo]),
                         "difference": float(vals[hi] - vals[lo]), "ci_low": d["ci_low"],
                         "ci_high": d["ci_high"], "p_value": d["p_value"],
                         "n_high": int(table.loc[hi, "n"]), "n_low": int(table.loc[lo, "n"])})
        return pd.DataFrame(rows)

    # ---------------------------------------------------------------- findings
    def findings(self) -> list[Finding]:
        """A ``domain_gap`` when the headline metric differs between domains (CI excludes 0),
        and ``baseline_outperforms`` for each domain where a baseline beats the model. No
        finding rests on a domain below the ``min_n`` / ``min_events`` floor: those domains
        are named in one ``too_small_to_judge`` finding (*info*). Severities follow
        :func:`confoundry.severity_rules` (an AUROC gap or loss under 0.02 is *low*)."""
        out: list[Finding] = []
        m = self._metric(None)
        gap = self.difference(m)
        if len(gap) and np.isfinite(gap.loc[0, "ci_low"]) and gap.loc[0, "ci_low"] > 0:
            g = gap.iloc[0]
            worse, better = (g["domain_low"], g["domain_high"]) if HIGHER_IS_BETTER[m] else \
                (g["domain_high"], g["domain_low"])
            out.append(Finding(
                "domain_gap", grade("domain_gap", g["difference"],
                                    n=min(int(g["n_high"]), int(g["n_low"]))), 9,
                f"{LABELS[m]} of {self.model_name} differs between domains: "
                f"{g['value_high']:.3g} in '{g['domain_high']}' (n = {g['n_high']}) vs "
                f"{g['value_low']:.3g} in '{g['domain_low']}' (n = {g['n_low']}); gap "
                f"{g['difference']:.3g}, {self.ci:.0%} CI {g['ci_low']:.3g} to {g['ci_high']:.3g}.",
                subject=str(worse), model=self.model_name, domain=str(worse),
                evidence={"metric": m, "worse_domain": worse, "better_domain": better,
                          "by": list(self.by),
                          **{k: g[k] for k in ("value_high", "value_low", "difference",
                                               "ci_low", "ci_high", "p_value", "n_high",
                                               "n_low")}}))
        if len(self.comparison):
            c = self.comparison
            # the overall row is the model comparison's finding (reported once by that step);
            # here only the domains where a baseline wins
            lost = c[c["baseline_better"] & (c["metric"] == m) & (c["domain"] != OVERALL)]
            lost = lost[lost["testable"]] if "testable" in lost else lost
            for _, r in lost.iterrows():
                if r["ci_low"] <= 0 <= r["ci_high"]:
                    continue  # q and CI disagree: not a supported win
                out.append(Finding(
                    "baseline_outperforms", grade("baseline_outperforms", r["difference"],
                                                  n=int(r["n"]), ceiling="medium"), 2,
                    f"In '{r['domain']}' (n = {r['n']}), baseline {r['baseline']} beats "
                    f"{self.model_name} on {LABELS[m]}: {r['baseline_value']:.3g} vs "
                    f"{r['model_value']:.3g} ({self.model_name} minus {r['baseline']} "
                    f"{r['difference']:+.3g}, {self.ci:.0%} "
                    f"CI {r['ci_low']:.3g} to {r['ci_high']:.3g}, q = {r['q_value']:.2g}).",
                    # the winner is the finding's model, as in compare_models
                    subject=str(r["domain"]), model=str(r["baseline"]), domain=str(r["domain"]),
                    evidence={"reference": self.model_name,
                              **{k: r[k] for k in ("baseline", "domain", "metric", "model_value",
                                                   "baseline_value", "difference", "ci_low",
                                                   "ci_high", "p_value", "q_value", "n")}}))
        small = self.by_domain[~self.by_domain["testable"].astype(bool)] \
            if "testable" in self.by_domain else self.by_domain.iloc[:0]
        if len(small):
            min_n = self.params.get("min_n", MIN_N)
            min_events = self.params.get("min_events", MIN_EVENTS)
            names = ", ".join(f"'{d}' (n = {int(k)})" for d, k in zip(small["domain"], small["n"]))
            out.append(Finding(
                "too_small_to_judge", "info", 9,
                f"Too small to judge: {names}. Below the floor of {min_n} rows or "
                f"{min_events} of each class, no finding rests on "
                f"{'it' if len(small) == 1 else 'them'}; their rows are shown without a test.",
                subject=" / ".join(self.by), model=self.model_name, domain="overall",
                evidence={"domains": [str(d) for d in small["domain"]],
                          "n": [int(k) for k in small["n"]], "min_n": min_n,
                          "min_events": min_events}))
        return out

    # ------------------------------------------------------------------- plot
    def plot(self, ax: Any = None, *, metric: str | None = None) -> Any:
        """Forest plot: the metric with its CI in every domain, audited model and baselines."""
        import matplotlib.pyplot as plt

        m = self._metric(metric)
        domains = [OVERALL] + list(self.by_domain["domain"])
        models = list(dict.fromkeys(self.by_model["model"]))
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.45 * len(domains) * max(1, len(models) / 2) + 1.2),
                                 layout="constrained")
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        height = 0.8 / len(models)
        ypos = np.arange(len(domains))[::-1].astype(float)
        for k, name in enumerate(models):
            t = self.by_model[self.by_model["model"] == name].set_index("domain").reindex(domains)
            y = ypos + 0.4 - height * (k + 0.5)
            est = t[m].to_numpy(dtype=float)
            # a domain below the floor has no interval: its point is drawn without one
            lo = np.nan_to_num(est - t[f"{m}_ci_low"].to_numpy(dtype=float))
            hi = np.nan_to_num(t[f"{m}_ci_high"].to_numpy(dtype=float) - est)
            ax.errorbar(est, y, xerr=np.vstack([lo, hi]), fmt="o" if k == 0 else "s",
                        color=colors[k % len(colors)], capsize=2, ms=5 if k == 0 else 4,
                        label=name)
        ref = float(self.overall[m].iloc[0])
        ax.axvline(ref, color="grey", ls="--", lw=1)
        main = self.by_model[self.by_model["model"] == self.model_name].set_index("domain")
        ax.set_yticks(ypos, [f"{d}  (n={int(main.loc[d, 'n'])}"
                             f"{'' if main.loc[d, 'testable'] else ', too small to test'})"
                             if d in main.index else d for d in domains])
        ax.set_xlabel(f"{LABELS[m]} ({self.ci:.0%} bootstrap CI)")
        ax.set_title(f"{LABELS[m]} by domain")
        if len(models) > 1:
            ax.legend(loc="best", fontsize="small")
        return ax.figure


# ============================================================================ function
def split_domains(
    model: Any,
    X: Any = None,
    y: Any = None,
    *,
    by: Any,
    baselines: Mapping[str, Any] | None = None,
    scores: Any = None,
    baseline_scores: Mapping[str, Any] | None = None,
    overall: MetricPanel | None = None,
    metrics: Sequence[str] | None = None,
    threshold: float = 0.5,
    bins: int = 4,
    n_boot: int = 1000,
    random_state: Any = None,
    metadata: pd.DataFrame | None = None,
    ci: float = DEFAULT_CI,
    fdr: float = DEFAULT_FDR,
    model_name: str | None = None,
    min_n: int = MIN_N,
    min_events: int = MIN_EVENTS,
    verbose: bool = True,
    bootstrap: str = "auto",
) -> DomainResult:
    """Metrics of a model in every domain, with bootstrap CIs, and against glass-box baselines.

    Parameters
    ----------
    model : torch module, estimator, callable or ModelAdapter
        Anything :func:`confoundry.as_model` accepts. May be ``None`` when ``scores`` is given.
    X : DataFrame, ndarray, tensor or AuditData
        Model inputs (an :class:`~confoundry.AuditData` is used as it is, with its labels and
        metadata). May be ``None`` when ``scores`` (and the baselines' scores) are given.
    y : array-like of shape (n,)
        Labels or targets (``None`` takes those of an AuditData ``X``).
    by : Series, str, list of str, DataFrame or mapping of str to boolean mask
        What defines the domains: a metadata Series (one domain per level); the name of a
        ``metadata`` column or of a feature; several names or a DataFrame (every observed
        intersection of their levels is a domain); or a mapping of domain name to boolean mask
        (masks may overlap). Continuous columns are cut into ``bins`` quantile bins.
    baselines : mapping of str to model or score array, optional
        Glass-box models (anything with ``predict_scores`` or that :func:`as_model` accepts), or
        their precomputed scores. Each gets the same table, and the audited model minus the
        baseline gets a paired bootstrap CI in every domain.
    scores : array, optional
        Precomputed scores of ``model`` on ``X`` (shared predictions; ``model`` is then not
        called).
    baseline_scores : mapping of str to array, optional
        Precomputed scores of the baselines by name (those are not scored again); names not in
        ``baselines`` are added as baselines.
    overall : MetricPanel, optional
        The metric panel of the same test set (:func:`confoundry.stats.bootstrap_panel`), whose
        point estimates and shared replicates give the ``"overall"`` row of every model instead
        of a second bootstrap. Its models are named as here (``model_name`` and the baseline
        names); when one is missing, or a metric, or the threshold differs, the overall rows are
        bootstrapped here as without it.
    metrics : sequence of str, optional
        Subset of :func:`confoundry.stats.default_metrics` for the task (all by default);
        scikit-learn spellings (``"roc_auc"``, ``"average_precision"`` ...) are accepted.
    threshold : float
        Decision threshold of the thresholded binary metrics.
    bins : int
        Number of quantile bins for a continuous ``by`` column.
    n_boot : int
        Bootstrap replicates. Each domain is resampled on its own, stratified by class, and all
        models are scored on the same replicates (one panel per domain, see
        :func:`confoundry.stats.bootstrap_panel`). From
        :data:`confoundry.stats.POISSON_N` rows on (the whole test set), every panel is the
        Poisson bootstrap instead (see ``bootstrap``).
    random_state : None, int or Generator
    metadata : DataFrame, optional
        Metadata columns that ``by`` may name.
    ci : float
        Coverage of the percentile intervals.
    fdr : float
        False-discovery rate (Benjamini–Hochberg over all comparison rows) of
        ``model_better`` / ``baseline_better``.
    model_name : str, optional
        Display name of the audited model (default: the model's own name, ``"model"`` without
        one).
    min_n : int
        Smallest domain a claim may rest on (rows).
    min_events : int
        Smallest count of each outcome in a domain: positives and negatives (binary), rows of
        every class (multiclass); regression needs rows only. A domain below ``min_n`` or
        ``min_events`` keeps its row (``n``, the point estimates) with ``testable = False`` and
        a ``note`` saying it is too small to test; it gets no interval, no p- or q-value (it is
        left out of the Benjamini–Hochberg family: the floor depends on the labels only, never
        on the model's errors, so dropping it is the same as never testing it, and counting it
        would only cost the other domains power), and no finding rests on it.
    verbose : bool
        Progress bar over the domains.
    bootstrap : {"auto", "multinomial", "poisson"}
        The bootstrap scheme of every panel (see :func:`confoundry.stats.bootstrap_panel`);
        ``"auto"`` takes the Poisson bootstrap when the test set has at least
        :data:`confoundry.stats.POISSON_N` rows, so all domains share one scheme.
        ``params["bootstrap"]`` records it.

    Returns
    -------
    DomainResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> y = (rng.random(600) < 0.4).astype(int)
    >>> s = np.clip(0.4 + 0.3 * (y - 0.4) + rng.normal(0, 0.2, 600), 0, 1)
    >>> site = pd.Series(rng.choice(["A", "B"], 600), name="site")
    >>> res = split_domains(None, None, y, by=site, scores=s, metrics=["roc_auc", "accuracy"],
    ...                     n_boot=200, random_state=0, verbose=False)
    >>> res.by_domain[["domain", "n"]].to_dict("records")
    [{'domain': 'site = A', 'n': 288}, {'domain': 'site = B', 'n': 312}]
    >>> bool((res.by_domain["auroc_ci_low"] < res.by_domain["auroc"]).all())
    True
    """
    data = step_data(X, y, metadata)
    metrics = check_metrics(metrics, data.task)
    n_boot = check_positive_int(n_boot, "n_boot")
    threshold = check_probability(threshold, "threshold")
    ci = check_probability(ci, "ci")
    fdr = check_probability(fdr, "fdr")
    min_n, min_events = check_floor(min_n, min_events)
    rng = check_random_state(random_state)
    names, rows, by_cols = resolve_domains(by, data, bins=bins)
    scheme = bootstrap_scheme(data.n_samples, bootstrap)

    s_main, name = model_scores(model, X, data, scores, model_name=model_name)
    all_scores = {name: s_main, **_baseline_scores(baselines, baseline_scores, X, data, name)}

    y_arr = np.asarray(data.y)
    # one seed per panel, drawn up front: the overall panel's first, as when it is computed here
    seeds = [int_seed(rng) for _ in range(len(names) + 1)]
    panel = _usable_panel(overall, all_scores, data, metrics, threshold, scheme)
    from_panel = panel is not None
    groups = list(zip(names, rows, seeds[1:]))

    def one(item: tuple[str, np.ndarray, int]) -> MetricPanel:
        _, idx, seed = item
        return bootstrap_panel(y_arr[idx], {m: s[idx] for m, s in all_scores.items()},
                               task=data.task, metrics=metrics, n_boot=n_boot, ci=ci,
                               threshold=threshold, random_state=seed, reference=name,
                               bootstrap=scheme)

    if panel is None:
        groups.insert(0, (OVERALL, np.arange(data.n_samples), seeds[0]))
    # each domain has its own seed, so the result does not depend on the order of the workers
    # domain by domain; bootstrap_panel runs the models of each chunk on parallel threads
    panels = [one(g) for g in progress(groups, total=len(groups), desc="domain bootstrap",
                                       verbose=verbose)]
    if panel is not None:
        groups.insert(0, (OVERALL, np.arange(data.n_samples), seeds[0]))
        panels.insert(0, panel.subset(list(all_scores)))

    records: list[dict[str, Any]] = []
    reps: dict[str, dict[str, Mapping[str, np.ndarray]]] = {m: {} for m in all_scores}
    n_classes = None if data.classes is None else len(data.classes)
    for (gname, idx, _), p in zip(groups, panels):
        positives = int(y_arr[idx].sum()) if data.task == "binary" else np.nan
        note = floor_note(len(idx), min_n, label_events(y_arr[idx], data.task, n_classes),
                          min_events)
        for mn in all_scores:
            reps[mn][gname] = {m: p.replicates[mn][m] for m in metrics}
            rec: dict[str, Any] = {"model": mn, "domain": gname, "n": len(idx),
                                   "positives": positives}
            for m in metrics:
                lo, hi = percentile_ci(p.replicates[mn][m], ci) if not note else (np.nan,
                                                                                   np.nan)
                rec[m] = float(p.point[mn][m])
                rec[f"{m}_ci_low"] = lo
                rec[f"{m}_ci_high"] = hi
            rec["testable"] = not note
            rec["note"] = note
            records.append(rec)
    by_model = pd.DataFrame(records)
    main = by_model[by_model["model"] == name].drop(columns="model")
    overall_row = main[main["domain"] == OVERALL].reset_index(drop=True)
    by_domain = main[main["domain"] != OVERALL].reset_index(drop=True)
    comparison = _compare(reps, by_model, name, metrics, ci, fdr)
    params = {"by": list(by_cols), "metrics": list(metrics), "n_boot": n_boot, "ci": ci,
              "fdr": fdr, "threshold": threshold, "bins": bins,
              "random_state": random_state if random_state is None
              or isinstance(random_state, (int, np.integer)) else type(random_state).__name__,
              "overall_from_panel": from_panel,
              "overall_n_boot": panels[0].n_boot, "min_n": min_n, "min_events": min_events,
              "bootstrap": scheme}
    return DomainResult(overall=overall_row, by_domain=by_domain, by_model=by_model,
                        comparison=comparison, metrics=metrics, task=data.task,
                        model_name=name, by=by_cols, n_boot=n_boot, ci=ci,
                        threshold=threshold, fdr=fdr, params=params, _replicates=reps)


def _baseline_scores(baselines: Any, given: Any, X: Any, data: Any,
                     name: str) -> dict[str, np.ndarray]:
    """Test scores of every baseline: precomputed ones as given, the others scored on ``X``."""
    if baselines is not None and not isinstance(baselines, Mapping):
        raise TypeError(f"baselines={describe(baselines)} is not a mapping; expected a dict "
                        "of name -> model (or score array).")
    if given is not None and not isinstance(given, Mapping):
        raise TypeError(f"baseline_scores={describe(given)} is not a mapping; expected a dict "
                        "of baseline name -> precomputed scores.")
    given = {str(k): v for k, v in (given or {}).items()}
    out: dict[str, np.ndarray] = {}
    for bname in [*(str(b) for b in (baselines or {})), *given]:
        if bname in out:
            continue
        if bname == name:
            raise ValueError(f"baselines has the name {bname!r}, which is also the audited "
                             "model's name; expected distinct names.")
        if bname in given:
            out[bname] = check_scores(given[bname], data, name=f"baseline_scores[{bname!r}]")
            continue
        obj = next(v for k, v in baselines.items() if str(k) == bname)
        if isinstance(obj, (np.ndarray, pd.Series)) or (
                isinstance(obj, (list, tuple)) and len(obj) == data.n_samples):
            out[bname] = check_scores(obj, data, name=f"baselines[{bname!r}]")
            continue
        if X is None:
            raise TypeError(f"X is None and baseline {bname!r} has no precomputed scores; "
                            "expected X to score it with, or baseline_scores=.")
        adapter = as_model(obj, task=data.task, name=bname)
        out[bname] = check_scores(adapter.predict_scores(X), data,
                                  name=f"the scores of baseline {bname!r}")
    return out


def _usable_panel(panel: Any, scores: Mapping[str, np.ndarray], data: Any,
                  metrics: Sequence[str], threshold: float,
                  scheme: str = "multinomial") -> MetricPanel | None:
    """``panel`` when it can give the overall rows of every model; None when they must be
    bootstrapped here (a model or a metric missing, another threshold)."""
    if panel is None:
        return None
    if not isinstance(panel, MetricPanel):
        raise TypeError(f"overall={describe(panel)} is not a MetricPanel; expected the result "
                        "of confoundry.stats.bootstrap_panel.")
    if panel.task != data.task or panel.n != data.n_samples:
        raise ValueError(f"overall holds {panel.n} rows of a {panel.task} task; expected the "
                         f"{data.n_samples} rows of this {data.task} task.")
    if (any(m not in panel.point for m in scores) or any(k not in panel.metrics for k in metrics)
            or (data.task == "binary" and panel.threshold != threshold)
            or getattr(panel, "scheme", "multinomial") != scheme):
        return None
    return panel


def _compare(reps: Mapping, by_model: pd.DataFrame, model_name: str, metrics: Sequence[str],
             ci: float, fdr: float) -> pd.DataFrame:
    cols = ["baseline", "domain", "metric", "model_value", "baseline_value", "difference",
            "ci_low", "ci_high", "p_value", "q_value", "model_better", "baseline_better", "n",
            "testable"]
    table = by_model.set_index(["model", "domain"])
    rows = []
    for bname in reps:
        if bname == model_name:
            continue
        for dname in reps[model_name]:
            for m in metrics:
                testable = bool(table.loc[(model_name, dname), "testable"])
                d = difference_summary(reps[model_name][dname][m] - reps[bname][dname][m], ci) \
                    if testable else {"ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
                a = float(table.loc[(model_name, dname), m])
                b = float(table.loc[(bname, dname), m])
                rows.append({"baseline": bname, "domain": dname, "metric": m, "model_value": a,
                             "baseline_value": b, "difference": a - b, "ci_low": d["ci_low"],
                             "ci_high": d["ci_high"], "p_value": d["p_value"],
                             "n": int(table.loc[(model_name, dname), "n"]),
                             "testable": testable})
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame(rows)
    out["q_value"] = bh_adjust(out["p_value"].to_numpy())
    sign = np.where([HIGHER_IS_BETTER[m] for m in out["metric"]], 1.0, -1.0)
    signif = out["q_value"].to_numpy() < fdr  # NaN (untestable) is never significant
    out["model_better"] = signif & (sign * out["difference"].to_numpy() > 0)
    out["baseline_better"] = signif & (sign * out["difference"].to_numpy() < 0)
    return out[cols]
