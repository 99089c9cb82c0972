"""``PathwayResult``: which inputs carry each metadata column into the model's outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, to_jsonable
from .._severity import grade

#: the verdicts of a metadata column, in the order the summary explains them.
VERDICTS = ("through features", "direct", "explained by adjust_for", "no effect", "not traced")

SUMMARY_COLUMNS = [
    "metadata", "metadata_kind", "traced", "verdict", "through", "total_effect",
    "total_ci_low", "total_ci_high", "p_value", "q_value", "significant", "effect_given_label",
    "p_given_label", "q_given_label", "top_k_features", "top_k_share", "top_k_ci_low",
    "top_k_ci_high", "remaining_share", "remaining_ci_low", "remaining_ci_high",
    "remaining_p", "remaining_q", "input_predictability", "input_predictability_name",
    "derived_from_inputs", "more_than_baselines", "n", "n_features", "text",
]
FEATURE_COLUMNS = [
    "metadata", "feature", "rank", "in_top_k", "mediated_share", "share_ci_low",
    "share_ci_high", "effect_without", "carries", "carries_ci_low", "carries_ci_high",
    "carries_p", "carries_q", "uses", "uses_ci_low", "uses_ci_high", "n",
]
BASELINE_COLUMNS = [
    "metadata", "baseline", "effect_model", "effect_baseline", "baseline_ci_low",
    "baseline_ci_high", "p_baseline", "q_baseline", "difference", "ci_low", "ci_high",
    "p_difference", "model_more", "n", "n_boot",
]


@dataclass(frozen=True, eq=False)
class PathwayResult(ResultMixin):
    """Confounder pathways: for each metadata column whose conditional probe is significant,
    which input features carry it into the model's outputs, and how much of the effect each
    one mediates. Returned by :func:`~confoundry.confounder_pathways`.

    Every quantity is measured, none is a causal claim: a feature "carries" a metadata column
    when its values differ between levels of the column among samples with the same label; it
    "mediates" a share of the effect when the model's outputs lose that share of their
    dependence on the column once the column's information is removed from that feature.

    Attributes
    ----------
    table : DataFrame
        The summary, one row per probed metadata column (:meth:`summary`):
        ``metadata``,
        ``metadata_kind``, ``traced`` (pathways computed), ``verdict`` (one of
        :data:`VERDICTS`), ``through`` (the features named by the verdict, a list),
        ``total_effect`` (partial R² of the outputs on the column given the label and
        ``adjust_for``) with ``total_ci_low`` / ``total_ci_high`` (bootstrap), ``p_value``,
        ``q_value`` (BH over the probed columns), ``significant``; ``effect_given_label``,
        ``p_given_label``, ``q_given_label`` (the same given the label alone, when
        ``adjust_for`` is given); ``top_k_features``, ``top_k_share`` (the mediated share of the
        top-k features replaced together) with its CI; ``remaining_share`` (what is left when
        every candidate feature is replaced) with its CI, ``remaining_p`` and ``remaining_q``
        (its conditional permutation test); ``input_predictability`` and
        ``input_predictability_name`` (how well X alone predicts the column, cross-validated),
        ``derived_from_inputs`` (``input_predictability >= 0.95``); ``more_than_baselines``
        (the model's effect exceeds every baseline's, paired CI above 0; None without
        baselines); ``n``, ``n_features``, ``text`` (one sentence with the numbers).
    features : DataFrame
        One row per traced column x candidate feature: ``rank`` (by mediated share),
        ``in_top_k``, ``mediated_share`` with ``share_ci_low`` / ``share_ci_high``,
        ``effect_without`` (the outputs' partial R² with the feature replaced), ``carries``
        (partial R² of the feature's ranks on the column given the label and ``adjust_for``)
        with its CI, ``carries_p`` (same permutation scheme as the probe) and ``carries_q``
        (BH over the features of the column), ``uses`` (share of the model's mean absolute
        attribution) with its CI, ``n``.
    baselines : DataFrame
        One row per traced column x baseline model: ``effect_model``, ``effect_baseline`` with
        its CI and permutation ``p_baseline`` / ``q_baseline``, the paired ``difference``
        (model minus baseline, the same bootstrap rows for both) with ``ci_low``,
        ``ci_high``, ``p_difference``, and ``model_more`` (``ci_low > 0``).
    task : str
    fdr : float
    n_permutations, n_boot, top_k : int
    adjust_for : tuple of str
    model_name : str or None
    params : dict
        The arguments and settings of the run (``features``, ``columns``, ``ci``, the removal
        and attribution methods, ``random_state``, ...).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> from confoundry import confounder_pathways
    >>> rng = np.random.default_rng(0)
    >>> n = 1000
    >>> batch = rng.integers(0, 2, n)
    >>> y = rng.integers(0, 2, n)
    >>> X = pd.DataFrame({"assay": y + rng.normal(size=n) + 1.5 * batch,   # batch shifts it
    ...                   "age": y + rng.normal(size=n)})
    >>> model = LogisticRegression().fit(X, y)
    >>> res = confounder_pathways(model, X, y, pd.DataFrame({"batch": batch}),
    ...                           n_permutations=100, n_boot=50, random_state=0, verbose=False)
    >>> res.verdict("batch"), res.row("batch")["through"]
    ('through features', ['assay'])
    >>> res.pathways("batch")["feature"].tolist()
    ['assay', 'age']
    """

    table: pd.DataFrame
    features: pd.DataFrame
    baselines: pd.DataFrame
    task: str
    fdr: float
    n_permutations: int
    n_boot: int
    top_k: int
    adjust_for: tuple[str, ...] = ()
    model_name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The feature rows: one per traced metadata column x candidate feature (``carries``,
        ``uses``, ``mediated_share`` with their CIs), largest share first within a column; the
        per-column verdicts are :meth:`summary`."""
        if self.features.empty:
            return self.features.copy()
        return self.features.sort_values(["metadata", "rank"], kind="mergesort") \
            .reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        """One row per probed metadata column: the verdict, the features it names, the total,
        top-k and remaining effects with their CIs, and the sentence."""
        return self.table.copy()

    def _extra_dict(self) -> dict[str, Any]:
        return {"model": self.model_name}

    def _traced(self) -> pd.DataFrame:
        t = self.table
        return t[t["traced"].astype(bool) & t["significant"].astype(bool)]

    def findings(self) -> list[Finding]:
        """One ``confounded_output`` finding per traced column, which says what was measured:
        the dependence beyond the label, the features it goes through (or that it is direct),
        and whether the model depends on the column more than the glass-box baselines fed the
        same features. It replaces the probe's finding about the same column
        (:meth:`supersedes`) and is graded by :func:`confoundry.severity_rules`, except:
        *low* when the column is derived from the inputs (X predicts it almost perfectly) or
        explained by ``adjust_for``; at most *medium* when it goes through the features and
        some baseline fed the same features depends on it as much (the data carry it, the deep
        model adds nothing of its own: a covariate shift to know about, not a shortcut the
        network found)."""
        out: list[Finding] = []
        for _, r in self._traced().iterrows():
            col = str(r["metadata"])
            more = r["more_than_baselines"]
            if bool(r["derived_from_inputs"]) or r["verdict"] == "explained by adjust_for":
                level = "low"
            else:
                shared = more is False and r["verdict"] == "through features"
                level = grade("confounded_output", float(r["total_effect"]), n=int(r["n"]),
                              ceiling="medium" if shared else None)
            base = self.baselines[self.baselines["metadata"] == col] if len(self.baselines) \
                else self.baselines
            evidence = {k: to_jsonable(r[k]) for k in (
                "verdict", "through", "total_effect", "total_ci_low", "total_ci_high",
                "p_value", "q_value", "top_k_features", "top_k_share", "top_k_ci_low",
                "top_k_ci_high", "remaining_share", "remaining_ci_low", "remaining_ci_high",
                "input_predictability", "derived_from_inputs", "more_than_baselines", "n")}
            evidence["effect_size"] = evidence["total_effect"]
            evidence["effect_size_name"] = "partial R²"
            evidence["ci_low"], evidence["ci_high"] = r["total_ci_low"], r["total_ci_high"]
            if len(base):
                evidence["baselines"] = to_jsonable(base[[
                    "baseline", "effect_baseline", "difference", "ci_low", "ci_high",
                    "model_more"]])
            out.append(Finding(
                "confounded_output", level, 7,
                f"{r['text']} An association measured on the outputs, not a proof of cause.",
                subject=col, model=self.model_name, evidence=evidence, domain="overall"))
        return out

    def supersedes(self) -> list[tuple[str, str, str | None, str]]:
        """The :attr:`Finding.key` of the probe findings that :meth:`findings` replaces (the
        conditional output probe of every traced column): the audit keeps this result's
        finding, which says more, in their place.

        Examples
        --------
        >>> t = pd.DataFrame({"metadata": ["site"], "traced": [True], "significant": [True]})
        >>> PathwayResult(t, pd.DataFrame(), pd.DataFrame(), "binary", 0.05, 100, 50, 3,
        ...               model_name="mlp").supersedes()
        [('confounded_output', 'site', 'mlp', 'overall')]
        """
        return [("confounded_output", str(c), self.model_name, "overall")
                for c in self._traced()["metadata"]]

    def row(self, metadata: str) -> pd.Series:
        """The summary row of one metadata column."""
        hit = self.table[self.table["metadata"] == metadata]
        if hit.empty:
            raise KeyError(f"no row for metadata={metadata!r}; expected one of "
                           f"{self.table['metadata'].tolist()}.")
        return hit.iloc[0]

    def verdict(self, metadata: str) -> str:
        """The verdict of one metadata column (one of :data:`VERDICTS`)."""
        return str(self.row(metadata)["verdict"])

    def pathways(self, metadata: str) -> pd.DataFrame:
        """The feature rows of one metadata column, largest mediated share first (empty when
        the column was not traced)."""
        self.row(metadata)
        t = self.features[self.features["metadata"] == metadata]
        return t.sort_values("rank", kind="mergesort").reset_index(drop=True)

    def plot(self, ax: Any = None, *, max_features: int = 10) -> Any:
        """Per traced column, the mediated share of the top features (bars, 95% CI), with what
        each feature carries (partial R² on the column) and how much the model uses it."""
        import matplotlib.pyplot as plt

        traced = [m for m in self.table["metadata"] if not self.pathways(m).empty]
        if ax is not None:
            axes, fig = [ax], ax.figure
            traced = traced[:1]
        else:
            fig, axs = plt.subplots(max(1, len(traced)), 1, squeeze=False,
                                    figsize=(7.5, 0.45 * max_features * max(1, len(traced)) + 1.5))
            axes = list(axs[:, 0])
        if not traced:
            axes[0].text(0.5, 0.5, "no metadata column was traced (no significant conditional "
                         "effect)", ha="center", va="center", fontsize=9)
            axes[0].set_axis_off()
            return fig
        for a, col in zip(axes, traced):
            t = self.pathways(col).head(max_features)
            ypos = np.arange(len(t))[::-1]
            share = t["mediated_share"].to_numpy(dtype=float)
            err = np.vstack([share - t["share_ci_low"].to_numpy(dtype=float),
                             t["share_ci_high"].to_numpy(dtype=float) - share])
            a.barh(ypos, np.nan_to_num(share), xerr=np.nan_to_num(np.abs(err)),
                   color=np.where(t["in_top_k"], "#C44E52", "#8C8C8C"), capsize=2)
            a.axvline(0, color="black", lw=0.6)
            a.axvline(1, color="black", lw=0.6, ls=":")
            labels = [f"{f}  (carries {c:.2g}{'*' if q < self.fdr else ''}, uses {u:.0%})"
                      if np.isfinite(u) else f"{f}  (carries {c:.2g}{'*' if q < self.fdr else ''})"
                      for f, c, q, u in zip(t["feature"], t["carries"], t["carries_q"],
                                            t["uses"])]
            a.set_yticks(ypos, labels, fontsize=8)
            r = self.row(col)
            a.set_title(f"'{col}': {r['verdict']} (partial R² = {r['total_effect']:.3g}, "
                        f"n = {int(r['n'])}); * carries q < {self.fdr:g}", fontsize=9)
            a.set_xlabel("mediated share of the conditional effect (95% bootstrap CI)")
        fig.tight_layout()
        return fig
