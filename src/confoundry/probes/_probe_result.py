"""``ProbeResult``: the table of confounder probes, its findings and its heat map."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, to_jsonable

PROBES = (
    "label_association", "metadata_only", "output_marginal", "output_conditional",
    "embedding_marginal", "embedding_conditional", "error",
)


@dataclass(frozen=True, eq=False)
class ProbeResult(ResultMixin):
    """Confounder probes: one row per metadata column x probe.

    Findings are about the whole test set (``domain="overall"``), with the metadata column as
    ``subject``; those about the activations of ``layer`` have ``subject`` ``"<column> @
    <layer>"``, so that they differ from the findings about the outputs.

    Attributes
    ----------
    table : DataFrame
        Columns ``metadata``, ``metadata_kind``, ``probe``, ``statistic``, ``statistic_name``,
        ``effect_size``, ``effect_size_name``, ``df``, ``p_value``, ``p_value_se`` (Monte-Carlo
        standard error), ``p_value_min`` (resolution, ``1 / (n_permutations + 1)``), ``q_value``
        (Benjamini-Hochberg over the whole table), ``significant`` (``q_value < fdr``), ``n``,
        ``n_permutations``, ``test``.
    alpha : float
        The false discovery rate of ``significant`` (the ``fdr`` argument; also :attr:`fdr`).
    n_permutations : int
    task : str
    layer : str or None
    model_name : str or None
    info : dict
        ``random_state``, ``n_folds``, ``max_components``, ``cpt_steps``, ``embedding_dim``.
    params : dict
        The arguments and settings of the run: ``n_permutations``, ``fdr``, ``random_state``,
        ``layer``, ``scores_given`` and the engine settings of ``info``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from confoundry import probe_confounders
    >>> rng = np.random.default_rng(0)
    >>> n = 200
    >>> site = rng.integers(0, 2, n)
    >>> y = (rng.random(n) < 0.3 + 0.4 * site).astype(int)       # site confounds the data set
    >>> s = 1 / (1 + np.exp(-(2 * y - 1 + 0.8 * site + rng.normal(size=n))))  # ...and the model
    >>> res = probe_confounders(y=y, metadata=pd.DataFrame({"site": site}), scores=s,
    ...                         n_permutations=50, random_state=0, verbose=False)
    >>> res.table["probe"].tolist()
    ['label_association', 'metadata_only', 'output_marginal', 'output_conditional', 'error']
    >>> bool(res.row("site", "output_conditional")["significant"])      # the planted effect
    True
    """

    table: pd.DataFrame
    alpha: float
    n_permutations: int
    task: str
    layer: str | None = None
    model_name: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def fdr(self) -> float:
        """The false discovery rate of ``significant`` (same as :attr:`alpha`)."""
        return self.alpha

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def _extra_dict(self) -> dict[str, Any]:
        return {"model": self.model_name}

    def row(self, metadata: str, probe: str) -> pd.Series:
        """The row of one metadata column and probe."""
        t = self.table
        hit = t[(t["metadata"] == metadata) & (t["probe"] == probe)]
        if hit.empty:
            raise KeyError(f"no row for metadata={metadata!r}, probe={probe!r}; expected one of "
                           f"{sorted(set(t['metadata']))} x {sorted(set(t['probe']))}.")
        return hit.iloc[0]

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        t = self.table
        for col in dict.fromkeys(t["metadata"]):
            rows = {r["probe"]: r for _, r in t[t["metadata"] == col].iterrows()}

            def sig(p: str, rows: dict = rows) -> bool:
                return p in rows and bool(rows[p]["significant"])

            def ev(p: str, rows: dict = rows) -> dict[str, Any]:
                r = rows[p]
                return {k: to_jsonable(r[k]) for k in (
                    "probe", "statistic", "effect_size", "effect_size_name", "p_value",
                    "q_value", "n", "n_permutations")}

            def num(p: str, rows: dict = rows) -> str:
                r = rows[p]
                return f"{r['effect_size_name']} = {r['effect_size']:.3g}, q = {r['q_value']:.2g}"

            dataset = sig("label_association")
            if dataset:
                out.append(Finding(
                    "confounded_dataset", "medium", 4,
                    f"Metadata column '{col}' is associated with the label "
                    f"({num('label_association')}): the dataset is confounded by '{col}', so "
                    f"performance must also be judged on data split by '{col}'.",
                    subject=col, model=self.model_name, evidence=ev("label_association"),
                    domain="overall"))
            emb = f"{col} @ {self.layer}"
            for probe, what, subject in (
                    ("output_conditional", "outputs", col),
                    ("embedding_conditional", f"layer '{self.layer}' activations", emb)):
                if sig(probe):
                    out.append(Finding(
                        "confounded_output", "high", 7,
                        f"The model's {what} depend on '{col}' even after accounting for the "
                        f"true label ({num(probe)}): the model has learned '{col}', not only "
                        "the biology.",
                        subject=subject, model=self.model_name, evidence=ev(probe),
                        domain="overall"))
            for probe, cond, what, subject in (
                    ("output_marginal", "output_conditional", "outputs", col),
                    ("embedding_marginal", "embedding_conditional",
                     f"layer '{self.layer}' activations", emb)):
                if sig(probe) and not sig(cond):
                    why = (" which the label association explains: the conditional probe "
                           "finds nothing beyond the label" if dataset else
                           " but not significantly beyond the label")
                    out.append(Finding(
                        "metadata_predicts_output", "info" if dataset else "medium", 4,
                        f"'{col}' predicts the model's {what} ({num(probe)}),{why}.",
                        subject=subject, model=self.model_name, evidence=ev(probe),
                        domain="overall"))
            if sig("error"):
                out.append(Finding(
                    "metadata_predicts_error", "medium", 9,
                    f"Where the model is wrong depends on '{col}' ({num('error')}): its "
                    f"performance differs across '{col}'; compare it per level with "
                    "split_domains.",
                    subject=col, model=self.model_name, evidence=ev("error"), domain="overall"))
        return out

    def plot(self, ax: Any = None) -> Any:
        """Heat map of -log10(q) per metadata column x probe, annotated with effect sizes
        (a star marks ``q < fdr``)."""
        import matplotlib.pyplot as plt

        t = self.table
        metas = list(dict.fromkeys(t["metadata"]))
        probes = [p for p in PROBES if p in set(t["probe"])]
        Q = np.full((len(metas), len(probes)), np.nan)
        labels = np.full(Q.shape, "", dtype=object)
        for _, r in t.iterrows():
            i, j = metas.index(r["metadata"]), probes.index(r["probe"])
            q = r["q_value"]
            Q[i, j] = -np.log10(max(q, 1e-300)) if np.isfinite(q) else np.nan
            es = r["effect_size"]
            labels[i, j] = ("n/a" if not np.isfinite(es) else f"{es:.2f}") + (
                "*" if r["significant"] else "")
        if ax is None:
            fig, ax = plt.subplots(figsize=(1.3 * len(probes) + 2.5, 0.6 * len(metas) + 2))
        else:
            fig = ax.figure
        vmax = max(-np.log10(1.0 / (self.n_permutations + 1)), -np.log10(self.alpha) + 0.5)
        im = ax.imshow(np.nan_to_num(Q, nan=0.0), cmap="Reds", vmin=0, vmax=vmax, aspect="auto")
        for i in range(len(metas)):
            for j in range(len(probes)):
                ax.text(j, i, labels[i, j], ha="center", va="center", fontsize=8,
                        color="white" if np.nan_to_num(Q[i, j]) > 0.6 * vmax else "black")
        ax.set_xticks(range(len(probes)), [p.replace("_", "\n") for p in probes], fontsize=8)
        ax.set_yticks(range(len(metas)), metas)
        ax.set_title(f"Confounder probes (n = {int(t['n'].max())}, "
                     f"{self.n_permutations} permutations; * q < {self.alpha:g})", fontsize=9)
        fig.colorbar(im, ax=ax, label="-log10 q (BH)")
        fig.tight_layout()
        return fig
