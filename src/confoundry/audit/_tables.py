"""The two tables the Audit computes itself: the data description and the model's metric panel.

Everything else comes from the step functions of the other subpackages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, internal, to_jsonable
from ..stats import HEADLINE_METRIC, LABELS, Z95, MetricPanel, bh_adjust, wilson_interval


@dataclass(frozen=True, eq=False)
class MetricTableResult(ResultMixin):
    """The model's metric panel on the test data, each metric with a bootstrap CI and its n.

    A view of the audit's one :class:`~confoundry.stats.MetricPanel` (the model comparison and
    the overall rows of the domain tables are views of the same panel).

    Examples
    --------
    >>> import numpy as np
    >>> from confoundry.stats import bootstrap_panel
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200); s = np.clip(0.3 * y + 0.7 * rng.random(200), 0, 1)
    >>> p = bootstrap_panel(y, {"m": s}, task="binary", n_boot=50, random_state=0)
    >>> t = MetricTableResult.from_panel(p, "m")
    >>> list(t.to_frame().columns[:4])
    ['model', 'metric', 'estimate', 'ci_low']
    """

    table: pd.DataFrame
    model_name: str = "model"
    findings_: tuple[Finding, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_panel(cls, panel: MetricPanel, model_name: str, *,
                   degenerate: str = "") -> MetricTableResult:
        """The rows of ``model_name`` in ``panel``, and a finding if it is no better than
        chance on the headline metric, or ``degenerate`` (why its scores are constant, by
        the baselines' check)."""
        t = panel.frame(model_name)
        task = panel.task
        findings: list[Finding] = []
        if degenerate:
            findings.append(Finding(
                "degenerate_model", "high", 7,
                f"{model_name} is degenerate: {degenerate} of the {panel.n} test rows. Its "
                "metrics and every comparison with it measure nothing; check the trained "
                "weights, the output= setting and the preprocessing.",
                subject="degenerate", model=model_name, domain="overall",
                evidence={"reason": degenerate, "n": int(panel.n)}))
        main = HEADLINE_METRIC[task]
        row = t.loc[t["metric"] == main].iloc[0]
        chance = 0.0 if task == "regression" else 0.5
        if np.isfinite(row["ci_low"]) and row["ci_low"] <= chance:
            findings.append(Finding(
                "no_signal", "high", 7,
                f"The model's {LABELS[main]} ({row['estimate']:.3f}, 95% CI {row['ci_low']:.3f} "
                f"to {row['ci_high']:.3f}, n={int(row['n'])}) is not distinguishable from chance.",
                subject=main, model=model_name, evidence=to_jsonable(row.to_dict()),
                domain="overall"))
        params = {"n_boot": panel.n_boot, "ci": panel.ci, "seed": panel.seed,
                  "threshold": panel.threshold, "task": task}
        return cls(t, model_name, tuple(findings), params)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def plot(self, ax: Any = None) -> Any:
        """Forest plot of the metric panel (point estimate and 95% CI)."""
        import matplotlib.pyplot as plt

        t = self.table
        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 0.35 * len(t) + 1), layout="constrained")
        ypos = np.arange(len(t))[::-1]
        est = t["estimate"].to_numpy(float)
        err = np.vstack([est - t["ci_low"].to_numpy(float), t["ci_high"].to_numpy(float) - est])
        ax.errorbar(est, ypos, xerr=np.nan_to_num(np.abs(err)), fmt="o", color="#4C72B0",
                    capsize=3)
        ax.set_yticks(ypos, [LABELS.get(m, m) for m in t["metric"]])
        ax.set_xlabel("estimate with 95% bootstrap CI")
        ax.set_title(f"{self.model_name}: test metrics (n={int(t['n'].iloc[0])})")
        return ax.figure


@dataclass(frozen=True, eq=False)
class DataSummaryResult(ResultMixin):
    """n, label balance, and metadata × label tables with intervals and association tests.

    ``tables`` maps each metadata column to one row per level (continuous columns: per quartile)
    with ``n``, the label rate (binary: share of positives with a Wilson 95% CI; regression: mean
    with a normal 95% CI; multiclass: the share of each class). ``to_frame()`` has one row per
    metadata column: the chi-square (or Kruskal–Wallis) test of association with the label and its
    Benjamini–Hochberg q-value across columns (Tip 4: know your data).
    """

    overview: Mapping[str, Any]
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    tests: pd.DataFrame = internal(default_factory=pd.DataFrame)  # = to_frame(), the "table"
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def compute(cls, data: Any, train: Any = None) -> DataSummaryResult:
        ov: dict[str, Any] = {"n_test": data.n_samples, "n_features": data.n_features,
                              "task": data.task, "tabular": data.is_tabular}
        if train is not None:
            ov["n_train"] = train.n_samples
        for label, d in (("test", data), ("train", train)):
            if d is None or d.y is None:
                continue
            if d.task == "binary":
                ov[f"positives_{label}"] = int(d.y.sum())
                ov[f"prevalence_{label}"] = float(d.y.mean())
            elif d.task == "multiclass":
                ov[f"class_counts_{label}"] = {str(k): int(v) for k, v in
                                               zip(*np.unique(d.y, return_counts=True))}
            else:
                ov[f"y_mean_{label}"] = float(d.y.mean())
                ov[f"y_sd_{label}"] = float(d.y.std(ddof=1))
        kinds = pd.Series(data.feature_kinds).value_counts().to_dict() if data.is_tabular else {}
        ov["feature_kinds"] = {str(k): int(v) for k, v in kinds.items()}
        # the inferred (or declared: feature_kinds=, metadata_kinds=) kind of every column, so a
        # reader can see how each was treated; categorical and binary features are listed
        for kind in ("binary", "categorical"):
            names = [f for f, k in data.feature_kinds.items() if k == kind]
            if names:
                ov[f"{kind}_features"] = ", ".join(names[:30]) + (
                    f" and {len(names) - 30} more" if len(names) > 30 else "")
        ov["metadata_columns"] = dict(data.metadata_kinds)
        tables: dict[str, pd.DataFrame] = {}
        tests = []
        if data.metadata is not None:
            for col in data.metadata.columns:
                levels = _levels(data.metadata[col], data.metadata_kinds[col])
                tables[col] = _label_table(levels, data.y, data.task)
                tests.append({"metadata": col, "kind": data.metadata_kinds[col],
                              "levels": int(levels.nunique()),
                              **_association(levels, data.y, data.task)})
        tests_df = pd.DataFrame(tests, columns=["metadata", "kind", "levels", "test", "statistic",
                                                "dof", "p_value", "n"])
        if len(tests_df):
            tests_df["q_value"] = bh_adjust(tests_df["p_value"].to_numpy(float))
        params = {"tests": {"categorical": "chi_square" if data.task != "regression"
                            else "kruskal_wallis"}, "continuous_levels": "quartiles",
                  "fdr_correction": "benjamini_hochberg"}
        return cls(ov, tables, tests_df, params)

    def to_frame(self) -> pd.DataFrame:
        return self.tests.copy()


    def plot(self, ax: Any = None) -> Any:
        """Label rate (or mean) per level of each metadata column, with 95% CIs."""
        import matplotlib.pyplot as plt

        rows = []
        for col, t in self.tables.items():
            if "rate" in t.columns:
                for _, r in t.iterrows():
                    rows.append((f"{col} = {r['level']}", r["rate"], r["ci_low"], r["ci_high"]))
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.3 * max(len(rows), 2) + 1), layout="constrained")
        if not rows:
            ax.text(0.5, 0.5, "no metadata", ha="center", va="center")
            ax.set_axis_off()
            return ax.figure
        rows = rows[:30]
        ypos = np.arange(len(rows))[::-1]
        est = np.array([r[1] for r in rows], float)
        lo = np.array([r[2] for r in rows], float)
        hi = np.array([r[3] for r in rows], float)
        ax.errorbar(est, ypos, xerr=np.nan_to_num(np.abs(np.vstack([est - lo, hi - est]))),
                    fmt="o", color="#55A868", capsize=3)
        ax.set_yticks(ypos, [r[0][:40] for r in rows])
        ax.set_xlabel("label rate (binary) or mean label, 95% CI")
        ax.set_title("label by metadata level")
        return ax.figure


def _levels(s: pd.Series, kind: str) -> pd.Series:
    if kind == "continuous":
        q = pd.qcut(s.astype(float), 4, duplicates="drop")
        return q.astype(str)
    return s.astype(str)


def _label_table(levels: pd.Series, y: np.ndarray | None, task: str | None) -> pd.DataFrame:
    from .._utils import natural_order

    df = pd.DataFrame({"level": levels.to_numpy(), "y": y if y is not None else 0})
    df["level"] = pd.Categorical(df["level"], categories=natural_order(df["level"]))  # 2 < 10
    g = df.groupby("level", sort=True, observed=True)["y"]
    n = g.size().to_numpy(float)
    out = pd.DataFrame({"level": g.size().index.astype(str), "n": n.astype(int)})
    if y is None:
        return out
    if task == "binary":
        k = g.sum().to_numpy(float)
        lo, hi = wilson_interval(k, n)
        out["positives"] = k.astype(int)
        out["rate"], out["ci_low"], out["ci_high"] = k / n, lo, hi
    elif task == "regression":
        m, sd = g.mean().to_numpy(float), g.std(ddof=1).to_numpy(float)
        se = sd / np.sqrt(n)
        out["rate"], out["ci_low"], out["ci_high"] = m, m - Z95 * se, m + Z95 * se
    else:
        ct = pd.crosstab(df["level"], df["y"], normalize="index")
        for c in ct.columns:
            out[f"share_class_{c}"] = ct[c].to_numpy()
    return out


def _association(levels: pd.Series, y: np.ndarray | None, task: str | None) -> dict[str, Any]:
    from scipy import stats

    n = len(levels)
    if y is None or levels.nunique() < 2:
        return {"test": "none", "statistic": np.nan, "dof": np.nan, "p_value": np.nan, "n": n}
    if task == "regression":
        groups = [y[(levels == lv).to_numpy()] for lv in levels.unique()]
        stat, p = stats.kruskal(*groups)
        return {"test": "kruskal_wallis", "statistic": float(stat), "dof": len(groups) - 1,
                "p_value": float(p), "n": n}
    ct = pd.crosstab(levels.to_numpy(), y)
    stat, p, dof, _ = stats.chi2_contingency(ct.to_numpy(), correction=False)
    return {"test": "chi_square", "statistic": float(stat), "dof": int(dof), "p_value": float(p),
            "n": n}
