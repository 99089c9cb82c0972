"""The danger table: who a risk model would wrongly send home, judged on the ground truth."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, internal, to_jsonable
from .._utils import to_numpy
from ..data._validation import check_probability, describe
from ..stats import DEFAULT_FDR, wilson_interval


@dataclass(frozen=True, eq=False)
class DangerTableResult(ResultMixin):
    """Result of :func:`danger_table`.

    Attributes
    ----------
    table : DataFrame
        One row per group (``asthma``, ``no asthma``, ``all``); see :func:`danger_table`.
    comparison : dict
        Asthma vs no asthma: difference of the wrongly-sent-home rate among high-risk patients,
        Fisher exact p-value and odds ratio.
    scores, untreated_risk, asthma : ndarray
        Per patient (left out of :meth:`to_dict`).
    threshold : float
    model_name : str or None
        The model whose scores were judged (named in the finding).
    params : dict
        Provenance: ``threshold``, the interval and the test used.
    """

    table: pd.DataFrame
    comparison: dict
    scores: np.ndarray = internal()
    untreated_risk: np.ndarray = internal()
    asthma: np.ndarray = internal()
    threshold: float = 0.1
    model_name: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def findings(self) -> list[Finding]:
        row = self.table.set_index("group").loc["asthma"]
        if row["n_wrongly_sent_home"] == 0:
            return []
        c = self.comparison
        severe = row["wrongly_sent_home_rate"] > 0.2 or (c["p_value"] < DEFAULT_FDR
                                                         and c["difference"] > 0)
        return [Finding(
            "dangerous_triage", "high" if severe else "medium", 9,
            f"At a triage threshold of {self.threshold:.0%}, the model would send home "
            f"{int(row['n_wrongly_sent_home'])} of {int(row['n_high_risk'])} asthmatic patients "
            f"whose untreated risk is above it ({row['wrongly_sent_home_rate']:.0%}, 95% CI "
            f"{row['rate_ci_low']:.0%}-{row['rate_ci_high']:.0%}; non-asthmatic "
            f"{c['rate_no_asthma']:.0%}, Fisher p = {c['p_value']:.2g}).",
            subject="asthma", model=self.model_name, domain="asthma",
            evidence={"threshold": self.threshold, **{k: to_jsonable(v) for k, v in row.items()},
                      **to_jsonable(c)},
        )]

    def plot(self, ax: Any = None) -> Any:
        """Predicted risk against untreated (true) risk for asthmatic patients, with the
        triage threshold on both axes; the lower-right box holds the wrongly sent home."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
        else:
            fig = ax.figure
        a = self.asthma
        wrong = a & (self.scores < self.threshold) & (self.untreated_risk >= self.threshold)
        ax.scatter(self.untreated_risk[a & ~wrong], self.scores[a & ~wrong], s=8, alpha=0.5,
                   color="0.45", label="asthmatic patients")
        ax.scatter(self.untreated_risk[wrong], self.scores[wrong], s=10, alpha=0.8,
                   color="crimson", label=f"wrongly sent home (n = {int(wrong.sum())})")
        ax.axvline(self.threshold, color="k", lw=0.8, ls="--")
        ax.axhline(self.threshold, color="k", lw=0.8, ls="--")
        hi = max(float(np.max(self.untreated_risk[a], initial=0.0)),
                 float(np.max(self.scores[a], initial=0.0)), self.threshold) * 1.05
        ax.plot([0, hi], [0, hi], color="0.7", lw=0.8)
        ax.set_xlim(0, hi)
        ax.set_ylim(0, hi)
        ax.set_xlabel("true risk of death without aggressive care")
        ax.set_ylabel("model's predicted risk")
        ax.set_title(f"Asthmatic patients (n = {int(a.sum())}), triage at {self.threshold:.0%}")
        ax.legend(fontsize=8, loc="upper left")
        return fig


def danger_table(
    model_scores: Any,
    ground_truth: Any,
    asthma: Any,
    threshold: float = 0.1,
    *,
    model_name: str | None = None,
) -> DangerTableResult:
    """Who would be wrongly sent home if the model's risk decided admission.

    A patient is *sent home* when the model's predicted risk is below ``threshold``, and is at
    *high risk* when the true risk of death without aggressive care (``untreated_risk`` of the
    simulator's ground truth) is at or above it. Wrongly sent home = both.

    Parameters
    ----------
    model_scores : array-like (n,)
        Predicted probability of death.
    ground_truth : DataFrame with ``untreated_risk`` (and optionally ``treated_risk``), or
        array-like of untreated risks, aligned with ``model_scores``.
    asthma : array-like of bool or 0/1 (n,)
    threshold : float in (0, 1), default 0.1
    model_name : str, optional
        Name of the model whose risks ``model_scores`` are (the finding's ``model``).

    Returns
    -------
    DangerTableResult
        ``.to_frame()`` has one row per group (asthma, no asthma, all) with ``n``,
        ``n_sent_home``, ``n_high_risk``, ``n_wrongly_sent_home``, ``wrongly_sent_home_rate``
        (among the high-risk) with a Wilson 95 % CI (``rate_ci_low``, ``rate_ci_high``),
        ``mean_predicted_risk``, ``mean_untreated_risk``, ``expected_deaths_sent_home`` (sum of
        the untreated risks of the wrongly sent home) and ``expected_deaths_if_treated`` (sum of
        their treated risks, where known).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> gt = pd.DataFrame({"untreated_risk": [0.3, 0.3, 0.05, 0.3]})
    >>> t = danger_table([0.02, 0.4, 0.01, 0.05], gt, [1, 0, 1, 1], threshold=0.1)
    >>> t.to_frame().set_index("group").loc["asthma", "n_wrongly_sent_home"]
    np.int64(2)
    """
    threshold = check_probability(threshold, "threshold")
    scores = np.asarray(to_numpy(model_scores), dtype=np.float64).ravel()
    if isinstance(ground_truth, pd.DataFrame):
        if "untreated_risk" not in ground_truth:
            raise ValueError(f"ground_truth has columns {list(ground_truth.columns)}; expected "
                             "an 'untreated_risk' column (simulate_pneumonia().ground_truth).")
        untreated = ground_truth["untreated_risk"].to_numpy(dtype=np.float64)
        treated = (ground_truth["treated_risk"].to_numpy(dtype=np.float64)
                   if "treated_risk" in ground_truth else None)
    else:
        untreated = np.asarray(to_numpy(ground_truth), dtype=np.float64).ravel()
        treated = None
    a = np.asarray(to_numpy(asthma)).ravel()
    if a.dtype != bool:
        if not np.isin(a, (0, 1)).all():
            raise ValueError(f"asthma={describe(asthma)} is not valid; expected booleans or 0/1.")
        a = a.astype(bool)
    if not (len(scores) == len(untreated) == len(a)):
        raise ValueError(f"model_scores ({len(scores)}), ground_truth ({len(untreated)}) and "
                         f"asthma ({len(a)}) have different lengths; expected one row per patient.")
    if np.any(~np.isfinite(scores)) or np.any((scores < 0) | (scores > 1)):
        raise ValueError(f"model_scores={describe(model_scores)} holds values outside [0, 1]; "
                         "expected predicted probabilities of death.")

    home = scores < threshold
    high = untreated >= threshold
    wrong = home & high
    rows = []
    for name, mask in (("asthma", a), ("no asthma", ~a), ("all", np.ones_like(a))):
        n_high, n_wrong = int((high & mask).sum()), int((wrong & mask).sum())
        lo, hi = wilson_interval(n_wrong, n_high)
        w = wrong & mask
        rows.append({
            "group": name, "n": int(mask.sum()), "n_sent_home": int((home & mask).sum()),
            "n_high_risk": n_high, "n_wrongly_sent_home": n_wrong,
            "wrongly_sent_home_rate": n_wrong / n_high if n_high else np.nan,
            "rate_ci_low": lo, "rate_ci_high": hi,
            "mean_predicted_risk": float(scores[mask].mean()) if mask.any() else np.nan,
            "mean_untreated_risk": float(untreated[mask].mean()) if mask.any() else np.nan,
            "expected_deaths_sent_home": float(untreated[w].sum()),
            "expected_deaths_if_treated": float(treated[w].sum()) if treated is not None
            else np.nan,
            "threshold": threshold,
        })
    table = pd.DataFrame(rows)
    # asthma vs no asthma among the high-risk: Fisher exact test
    from scipy.stats import fisher_exact

    t = table.set_index("group")
    k1, n1 = int(t.loc["asthma", "n_wrongly_sent_home"]), int(t.loc["asthma", "n_high_risk"])
    k0, n0 = (int(t.loc["no asthma", "n_wrongly_sent_home"]),
              int(t.loc["no asthma", "n_high_risk"]))
    if n1 and n0:
        res = fisher_exact([[k1, n1 - k1], [k0, n0 - k0]])
        odds, p = float(res.statistic), float(res.pvalue)
    else:
        odds = p = np.nan
    r1 = k1 / n1 if n1 else np.nan
    r0 = k0 / n0 if n0 else np.nan
    comparison = {"rate_asthma": r1, "rate_no_asthma": r0, "difference": r1 - r0,
                  "odds_ratio": odds, "p_value": p, "test": "Fisher exact, two-sided",
                  "n_high_risk_asthma": n1, "n_high_risk_no_asthma": n0}
    return DangerTableResult(
        table=table, comparison=comparison, scores=scores, untreated_risk=untreated, asthma=a,
        threshold=threshold, model_name=model_name,
        params={"threshold": threshold, "interval": "Wilson score, 95%",
                "test": "Fisher exact, two-sided", "n": int(len(scores))})
