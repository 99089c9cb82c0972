"""``split_domains``: per-domain metrics with bootstrap CIs, and DL against glass-box baselines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, to_jsonable
from .._utils import check_random_state
from ..data import AuditData
from ..data._validation import check_positive_int, check_probability, describe
from ..models import as_model
from ..stats import (
    HIGHER_IS_BETTER,
    LABELS,
    bh_adjust,
    bootstrap_p_value,
    bootstrap_weights,
    weighted_metrics,
)
from ..stats._metrics import check_metrics
from ._common import PRIMARY_METRIC, check_scores, model_scores
from ._groups import resolve_domains

OVERALL = "overall"
#: q-value under which a per-domain DL-minus-baseline difference counts as a win or a loss.
ALPHA = 0.05


@dataclass(frozen=True, eq=False)
class DomainResult(ResultMixin):
    """Per-domain metrics of a model (and its baselines), shaped like fairlearn's MetricFrame.

    Attributes
    ----------
    overall : DataFrame
        One row (``domain = "overall"``) with ``n``, ``positives`` and every metric with its
        ``_ci_low`` / ``_ci_high`` bootstrap percentile interval, for the audited model.
    by_domain : DataFrame
        The same columns, one row per domain (the audited model).
    by_model : DataFrame
        ``model`` column plus the same columns, for the audited model and every baseline, over
        ``"overall"`` and every domain.
    comparison : DataFrame
        With baselines: one row per baseline x domain x metric, ``difference`` = audited model
        minus baseline, paired bootstrap CI (the same resampled rows for both models),
        two-sided bootstrap ``p_value``, Benjamini–Hochberg ``q_value`` over all rows, and
        ``model_better`` / ``baseline_better`` (q < 0.05 in that model's favour, taking into
        account whether higher is better). Empty without baselines.
    metrics : tuple of str
    task : str
    model_name : str
    by : list of str
        Columns that define the domains (empty for masks).
    n_boot : int
    ci : float
    """

    overall: pd.DataFrame
    by_domain: pd.DataFrame
    by_model: pd.DataFrame
    comparison: pd.DataFrame
    metrics: tuple[str, ...]
    task: str
    model_name: str
    by: list[str]
    n_boot: int
    ci: float = 0.95
    threshold: float = 0.5
    _replicates: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]] = field(
        default_factory=dict, repr=False)

    # ------------------------------------------------------------------ tables
    def to_frame(self) -> pd.DataFrame:
        """``by_domain``: one row per domain for the audited model."""
        return self.by_domain.copy()

    def difference(self, metric: str | None = None, *, model: str | None = None) -> pd.DataFrame:
        """Largest gap between two domains, per metric, with a bootstrap CI.

        The gap is ``max - min`` over domains (as in fairlearn's ``MetricFrame.difference``).
        Domains are resampled independently, so replicate ``b`` of the domain with the highest
        value minus replicate ``b`` of the domain with the lowest gives the percentile interval
        and a two-sided bootstrap p-value of that gap. The pair is chosen on the same data, so
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
                              & (self.by_model["domain"] != OVERALL)].set_index("domain")
        alpha = (1 - self.ci) / 2
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
            d = reps[hi][m] - reps[lo][m]
            d = d[np.isfinite(d)]
            if len(d):
                ci_lo, ci_hi = np.quantile(d, [alpha, 1 - alpha])
                p = bootstrap_p_value(d)
            else:
                ci_lo = ci_hi = p = np.nan
            rows.append({**row, "domain_high": hi, "domain_low": lo,
                         "value_high": float(vals[hi]), "value_low": float(vals[lo]),
                         "difference": float(vals[hi] - vals[lo]), "ci_low": float(ci_lo),
                         "ci_high": float(ci_hi), "p_value": float(p),
                         "n_high": int(table.loc[hi, "n"]), "n_low": int(table.loc[lo, "n"])})
        return pd.DataFrame(rows)

    # ---------------------------------------------------------------- findings
    def findings(self) -> list[Finding]:
        """A ``domain_gap`` when the headline metric differs between domains (CI excludes 0),
        and ``baseline_outperforms`` for each domain where a baseline beats the model."""
        out: list[Finding] = []
        m = PRIMARY_METRIC[self.task] if PRIMARY_METRIC[self.task] in self.metrics \
            else self.metrics[0]
        gap = self.difference(m)
        if len(gap) and np.isfinite(gap.loc[0, "ci_low"]) and gap.loc[0, "ci_low"] > 0:
            g = gap.iloc[0]
            worse, better = (g["domain_low"], g["domain_high"]) if HIGHER_IS_BETTER[m] else \
                (g["domain_high"], g["domain_low"])
            out.append(Finding(
                "domain_gap", "medium", 9,
                f"{LABELS[m]} of {self.model_name} differs between domains: "
                f"{g['value_high']:.3g} in '{g['domain_high']}' (n = {g['n_high']}) vs "
                f"{g['value_low']:.3g} in '{g['domain_low']}' (n = {g['n_low']}); gap "
                f"{g['difference']:.3g}, {self.ci:.0%} CI {g['ci_low']:.3g} to {g['ci_high']:.3g}.",
                subject=str(worse), model=self.model_name,
                evidence={"metric": m, "worse_domain": worse, "better_domain": better,
                          **{k: g[k] for k in ("value_high", "value_low", "difference",
                                               "ci_low", "ci_high", "p_value", "n_high",
                                               "n_low")}}))
        if len(self.comparison):
            c = self.comparison
            # the overall row is the model comparison's finding (reported once by that step);
            # here only the domains where a baseline wins
            lost = c[c["baseline_better"] & (c["metric"] == m) & (c["domain"] != OVERALL)]
            for _, r in lost.iterrows():
                out.append(Finding(
                    "baseline_outperforms", "medium", 2,
                    f"In '{r['domain']}' (n = {r['n']}), baseline {r['baseline']} beats "
                    f"{self.model_name} on {LABELS[m]}: {r['baseline_value']:.3g} vs "
                    f"{r['model_value']:.3g} ({self.model_name} minus {r['baseline']} "
                    f"{r['difference']:+.3g}, {self.ci:.0%} "
                    f"CI {r['ci_low']:.3g} to {r['ci_high']:.3g}, q = {r['q_value']:.2g}).",
                    subject=str(r["domain"]), model=self.model_name,
                    evidence={k: r[k] for k in ("baseline", "domain", "metric", "model_value",
                                                "baseline_value", "difference", "ci_low",
                                                "ci_high", "p_value", "q_value", "n")}))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "DomainResult", "model": self.model_name, "task": self.task, "by": self.by,
            "metrics": list(self.metrics), "n_boot": self.n_boot, "ci": self.ci,
            "overall": to_jsonable(self.overall), "table": to_jsonable(self.by_domain),
            "by_model": to_jsonable(self.by_model),
            "comparison": to_jsonable(self.comparison),
            "difference": to_jsonable(self.difference()),
            "findings": [f.to_dict() for f in self.findings()],
        }

    # ------------------------------------------------------------------- plot
    def plot(self, ax: Any = None, *, metric: str | None = None) -> Any:
        """Forest plot: the metric with its CI in every domain, audited model and baselines."""
        import matplotlib.pyplot as plt

        m = metric or (PRIMARY_METRIC[self.task] if PRIMARY_METRIC[self.task] in self.metrics
                       else self.metrics[0])
        check_metrics(m, self.task)
        domains = [OVERALL] + list(self.by_domain["domain"])
        models = list(dict.fromkeys(self.by_model["model"]))
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.45 * len(domains) * max(1, len(models) / 2) + 1.2))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        height = 0.8 / len(models)
        ypos = np.arange(len(domains))[::-1].astype(float)
        for k, name in enumerate(models):
            t = self.by_model[self.by_model["model"] == name].set_index("domain").reindex(domains)
            y = ypos + 0.4 - height * (k + 0.5)
            est = t[m].to_numpy(dtype=float)
            lo = est - t[f"{m}_ci_low"].to_numpy(dtype=float)
            hi = t[f"{m}_ci_high"].to_numpy(dtype=float) - est
            ax.errorbar(est, y, xerr=np.vstack([lo, hi]), fmt="o" if k == 0 else "s",
                        color=colors[k % len(colors)], capsize=2, ms=5 if k == 0 else 4,
                        label=name)
        ref = float(self.overall[m].iloc[0])
        ax.axvline(ref, color="grey", ls="--", lw=1)
        ns = self.by_model[self.by_model["model"] == self.model_name].set_index("domain")["n"]
        ax.set_yticks(ypos, [f"{d}  (n={int(ns.get(d, 0))})" for d in domains])
        ax.set_xlabel(f"{LABELS[m]} ({self.ci:.0%} bootstrap CI)")
        ax.set_title(f"{LABELS[m]} by domain")
        if len(models) > 1:
            ax.legend(loc="best", fontsize="small")
        ax.figure.tight_layout()
        return ax.figure


# ============================================================================ function
def split_domains(
    model: Any,
    X: Any,
    y: Any,
    *,
    by: Any,
    baselines: Mapping[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
    threshold: float = 0.5,
    bins: int = 4,
    n_boot: int = 1000,
    random_state: Any = None,
    metadata: pd.DataFrame | None = None,
    scores: Any = None,
    ci: float = 0.95,
) -> DomainResult:
    """Metrics of a model in every domain, with bootstrap CIs, and against glass-box baselines.

    Parameters
    ----------
    model : torch module, estimator, callable or ModelAdapter
        Anything :func:`confoundry.as_model` accepts. May be ``None`` when ``scores`` is given.
    X : DataFrame, ndarray or tensor
        Model inputs.
    y : array-like of shape (n,)
        Labels or targets.
    by : Series, str, list of str, DataFrame or mapping of str to boolean mask
        What defines the domains: a metadata Series (one domain per level); the name of a
        ``metadata`` column or of a feature; several names or a DataFrame (every observed
        intersection of their levels is a domain); or a mapping of domain name to boolean mask
        (masks may overlap). Continuous columns are cut into ``bins`` quantile bins.
    baselines : mapping of str to model or score array, optional
        Glass-box models (anything with ``predict_scores`` or that :func:`as_model` accepts), or
        their precomputed scores. Each gets the same table, and the audited model minus the
        baseline gets a paired bootstrap CI in every domain.
    metrics : sequence of str, optional
        Subset of :func:`confoundry.stats.default_metrics` for the task (all by default).
    threshold : float
        Decision threshold of the thresholded binary metrics.
    bins : int
        Number of quantile bins for a continuous ``by`` column.
    n_boot : int
        Bootstrap replicates. Each domain is resampled on its own, stratified by class, and all
        models are scored on the same replicates.
    random_state : None, int or Generator
    metadata : DataFrame, optional
        Metadata columns that ``by`` may name.
    scores : array, optional
        Precomputed scores of ``model`` on ``X`` (shared predictions; ``model`` is then not
        called).
    ci : float
        Coverage of the percentile intervals.

    Returns
    -------
    DomainResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"age": rng.normal(60, 10, 600)})
    >>> y = (rng.random(600) < 0.4).astype(int)
    >>> s = np.clip(0.4 + 0.3 * (y - 0.4) + rng.normal(0, 0.2, 600), 0, 1)
    >>> site = pd.Series(rng.choice(["A", "B"], 600), name="site")
    >>> res = split_domains(None, X, y, by=site, scores=s, metrics=["auroc", "accuracy"],
    ...                     n_boot=200, random_state=0)
    >>> res.by_domain[["domain", "n"]].to_dict("records")
    [{'domain': 'site = A', 'n': 341}, {'domain': 'site = B', 'n': 259}]
    >>> bool((res.by_domain["auroc_ci_low"] < res.by_domain["auroc"]).all())
    True
    """
    data = AuditData(X, y, metadata=metadata)
    metrics = check_metrics(metrics, data.task)
    n_boot = check_positive_int(n_boot, "n_boot")
    threshold = check_probability(threshold, "threshold")
    ci = check_probability(ci, "ci")
    rng = check_random_state(random_state)
    names, rows, by_cols = resolve_domains(by, data, bins=bins)

    s_main, model_name = model_scores(model, X, data, scores)
    all_scores = {model_name: s_main}
    if baselines is not None:
        if not isinstance(baselines, Mapping):
            raise TypeError(f"baselines={describe(baselines)} is not a mapping; expected a dict "
                            "of name -> model (or score array).")
        for bname, obj in baselines.items():
            bname = str(bname)
            if bname in all_scores:
                raise ValueError(f"baselines has the name {bname!r}, which is also the audited "
                                 "model's name; expected distinct names.")
            if isinstance(obj, (np.ndarray, pd.Series)) or (
                    isinstance(obj, (list, tuple)) and len(obj) == data.n_samples):
                all_scores[bname] = check_scores(obj, data, name=f"baselines[{bname!r}]")
            else:
                adapter = as_model(obj, task=data.task, name=bname)
                all_scores[bname] = check_scores(adapter.predict_scores(X), data,
                                                 name=f"the scores of baseline {bname!r}")

    y_arr = np.asarray(data.y)
    groups = [(OVERALL, np.arange(data.n_samples))] + list(zip(names, rows))
    records: list[dict[str, Any]] = []
    reps: dict[str, dict[str, dict[str, np.ndarray]]] = {m: {} for m in all_scores}
    alpha = (1 - ci) / 2
    for gname, idx in groups:
        yg = y_arr[idx]
        point = {mn: weighted_metrics(yg, s[idx], None, task=data.task, metrics=metrics,
                                      threshold=threshold) for mn, s in all_scores.items()}
        acc: dict[str, dict[str, list[np.ndarray]]] = {
            mn: {m: [] for m in metrics} for mn in all_scores}
        strata = yg if data.task in ("binary", "multiclass") else None
        for W in bootstrap_weights(len(idx), n_boot, strata=strata, random_state=rng):
            for mn, s in all_scores.items():
                res = weighted_metrics(yg, s[idx], W, task=data.task, metrics=metrics,
                                       threshold=threshold)
                for m in metrics:
                    acc[mn][m].append(res[m])
        positives = int(yg.sum()) if data.task == "binary" else np.nan
        for mn in all_scores:
            reps[mn][gname] = {m: np.concatenate(acc[mn][m]) for m in metrics}
            rec: dict[str, Any] = {"model": mn, "domain": gname, "n": len(idx),
                                   "positives": positives}
            for m in metrics:
                r = reps[mn][gname][m]
                fin = r[np.isfinite(r)]
                lo, hi = np.quantile(fin, [alpha, 1 - alpha]) if len(fin) else (np.nan, np.nan)
                rec[m] = float(point[mn][m][0])
                rec[f"{m}_ci_low"] = float(lo)
                rec[f"{m}_ci_high"] = float(hi)
            records.append(rec)
    by_model = pd.DataFrame(records)
    main = by_model[by_model["model"] == model_name].drop(columns="model")
    overall = main[main["domain"] == OVERALL].reset_index(drop=True)
    by_domain = main[main["domain"] != OVERALL].reset_index(drop=True)
    comparison = _compare(reps, by_model, model_name, metrics, ci)
    return DomainResult(overall=overall, by_domain=by_domain, by_model=by_model,
                        comparison=comparison, metrics=metrics, task=data.task,
                        model_name=model_name, by=by_cols, n_boot=n_boot, ci=ci,
                        threshold=threshold, _replicates=reps)


def _compare(reps: Mapping, by_model: pd.DataFrame, model_name: str, metrics: Sequence[str],
             ci: float) -> pd.DataFrame:
    cols = ["baseline", "domain", "metric", "model_value", "baseline_value", "difference",
            "ci_low", "ci_high", "p_value", "q_value", "model_better", "baseline_better", "n"]
    alpha = (1 - ci) / 2
    table = by_model.set_index(["model", "domain"])
    rows = []
    for bname in reps:
        if bname == model_name:
            continue
        for dname in reps[model_name]:
            for m in metrics:
                d = reps[model_name][dname][m] - reps[bname][dname][m]
                d = d[np.isfinite(d)]
                a = float(table.loc[(model_name, dname), m])
                b = float(table.loc[(bname, dname), m])
                if len(d):
                    lo, hi = np.quantile(d, [alpha, 1 - alpha])
                    p = bootstrap_p_value(d)
                else:
                    lo = hi = p = np.nan
                rows.append({"baseline": bname, "domain": dname, "metric": m, "model_value": a,
                             "baseline_value": b, "difference": a - b, "ci_low": float(lo),
                             "ci_high": float(hi), "p_value": float(p),
                             "n": int(table.loc[(model_name, dname), "n"])})
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame(rows)
    out["q_value"] = bh_adjust(out["p_value"].to_numpy())
    sign = np.where([HIGHER_IS_BETTER[m] for m in out["metric"]], 1.0, -1.0)
    signif = out["q_value"].to_numpy() < ALPHA
    out["model_better"] = signif & (sign * out["difference"].to_numpy() > 0)
    out["baseline_better"] = signif & (sign * out["difference"].to_numpy() < 0)
    return out[cols]
