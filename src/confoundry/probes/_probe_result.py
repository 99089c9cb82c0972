"""``ProbeResult``: the table of confounder probes, its findings and its heat map."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, to_jsonable
from .._severity import grade

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
    also_inputs : dict
        Metadata columns that are also model inputs (same name, or a feature equal to the
        column), mapped to a description of that input (see :meth:`mark_inputs`): their rows
        carry a ``note`` and their conditional probes raise ``metadata_is_input`` (*low*)
        instead of ``confounded_output``, since "the outputs depend on it" is then expected.

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
    also_inputs: dict[str, str] = field(default_factory=dict)

    @property
    def fdr(self) -> float:
        """The false discovery rate of ``significant`` (same as :attr:`alpha`)."""
        return self.alpha

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def _extra_dict(self) -> dict[str, Any]:
        return {"model": self.model_name}

    def mark_inputs(self, also_inputs: dict[str, str]) -> ProbeResult:
        """A copy whose rows of the metadata columns in ``also_inputs`` (column -> which input
        it is) carry a ``note`` saying so; see :attr:`also_inputs`.

        Examples
        --------
        >>> t = pd.DataFrame({"metadata": ["sex", "site"], "probe": ["error", "error"]})
        >>> r = ProbeResult(t, 0.05, 100, "binary").mark_inputs({"sex": "the input 'sex'"})
        >>> r.table["note"].tolist()
        ["also a model input (the input 'sex'): a dependence is expected", '']
        """
        import dataclasses

        marks = {str(k): str(v) for k, v in also_inputs.items()}
        t = self.table.copy()
        prior = t["note"].fillna("").astype(str) if "note" in t else pd.Series("", index=t.index)
        extra = t["metadata"].astype(str).map(
            lambda c: f"also a model input ({marks[c]}): a dependence is expected"
            if c in marks else "")
        t["note"] = [" ".join(x for x in (a, b) if x) for a, b in zip(prior, extra)]
        return dataclasses.replace(self, table=t, also_inputs={**self.also_inputs, **marks})

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

            def level(kind: str, p: str, rows: dict = rows) -> str:
                r = rows[p]
                floor = (None if kind != "confounded_dataset" or "Cram" in
                         str(r["effect_size_name"]) else 0.01)  # R² of ranks: r = 0.1
                return grade(kind, r["effect_size"], n=int(r["n"]), min_effect=floor)

            also = self.also_inputs.get(col)
            dataset = sig("label_association")
            if dataset:
                out.append(Finding(
                    "confounded_dataset", level("confounded_dataset", "label_association"), 4,
                    f"Metadata column '{col}' is associated with the label "
                    f"({num('label_association')}): the dataset is confounded by '{col}', so "
                    f"performance must also be judged on data split by '{col}'.",
                    subject=col, model=self.model_name, evidence=ev("label_association"),
                    domain="overall"))
            emb = f"{col} @ {self.layer}"
            for probe, what, subject in (
                    ("output_conditional", "outputs", col),
                    ("embedding_conditional", f"layer '{self.layer}' activations", emb)):
                if sig(probe) and also:
                    out.append(Finding(
                        "metadata_is_input", "low", 4,
                        f"The model's {what} depend on '{col}' beyond the true label "
                        f"({num(probe)}), as expected: '{col}' is also a model input "
                        f"({also}), so this probe cannot tell confounding from use.",
                        subject=subject, model=self.model_name,
                        evidence={**ev(probe), "input": also}, domain="overall"))
                elif sig(probe):
                    kind = "confounded_output" if probe == "output_conditional" else \
                        "confounded_embedding"
                    out.append(Finding(
                        "confounded_output", level(kind, probe), 7,
                        f"The model's {what} depend on '{col}' even after accounting for the "
                        f"true label ({num(probe)}, n = {int(rows[probe]['n'])}): the model "
                        f"uses information that goes with '{col}' beyond what the label "
                        "explains. This is an association, not a proof of cause; see which "
                        "inputs carry it before concluding the model learned the site.",
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
                        "metadata_predicts_output", "info" if dataset or also else
                        level("metadata_predicts_output", probe), 4,
                        f"'{col}' predicts the model's {what} ({num(probe)}),{why}.",
                        subject=subject, model=self.model_name, evidence=ev(probe),
                        domain="overall"))
            if sig("error"):
                out.append(Finding(
                    "metadata_predicts_error", level("metadata_predicts_error", "error"), 9,
                    f"Where the model is wrong depends on '{col}' ({num('error')}): its "
                    f"performance differs across '{col}'; compare it per level with "
                    "split_domains.",
                    subject=col, model=self.model_name, evidence=ev("error"), domain="overall"))
        return out

    def plot(self, ax: Any = None) -> Any:
        """Heat map of the effect size per metadata column x probe, on one scale for every
        probe, the share of variance explained: R² and partial R² as they are, Cramér's V
        squared, a cross-validated AUROC as ``(2 * |AUROC - 0.5|) ** 2`` (0: chance, 1:
        perfect), a cross-validated R² clipped at 0. (V and ``2|AUROC - 0.5|`` are on the
        scale of a correlation, R² on that of its square: as they are, an AUROC of 0.57 would
        outshine a partial R² of 0.03 that is the stronger effect.) Each cell is labelled with
        the effect size as reported; a star and a bold border mark ``q < fdr``. Colour is
        effect size, never significance: a large test set makes a tiny effect significant,
        and it stays pale."""
        import matplotlib.pyplot as plt
        from matplotlib.colors import PowerNorm
        from matplotlib.patches import Rectangle

        short = {"Cramér's V": "V", "partial R²": "pR²", "R² (ranks)": "R²", "R²": "R²",
                 "CV AUROC": "AUROC", "CV macro AUROC": "AUROC", "CV R²": "CV R²"}
        t = self.table
        metas = list(dict.fromkeys(t["metadata"]))
        probes = [p for p in PROBES if p in set(t["probe"])]
        E = np.full((len(metas), len(probes)), np.nan)
        labels = np.full(E.shape, "", dtype=object)
        sig = np.zeros(E.shape, dtype=bool)
        for _, r in t.iterrows():
            i, j = metas.index(r["metadata"]), probes.index(r["probe"])
            es = float(r["effect_size"]) if pd.notna(r["effect_size"]) else np.nan
            name = str(r.get("effect_size_name", ""))
            if "AUROC" in name:
                E[i, j] = min(1.0, 2 * abs(es - 0.5)) ** 2
            elif "Cram" in name:
                E[i, j] = min(1.0, abs(es)) ** 2
            else:
                E[i, j] = float(np.clip(es, 0.0, 1.0))
            sig[i, j] = bool(r["significant"])
            value = "n/a" if not np.isfinite(es) else (f"{es:.2f}" if abs(es) >= 0.1
                                                      else f"{es:.3f}")
            labels[i, j] = f"{short.get(name, '')} {value}".strip() + ("*" if sig[i, j] else "")
        if ax is None:
            fig, ax = plt.subplots(figsize=(1.35 * len(probes) + 3.2, 0.55 * len(metas) + 2.4),
                                   layout="constrained")
        else:
            fig = ax.figure
        norm = PowerNorm(0.5, vmin=0.0, vmax=1.0)
        cmap = plt.get_cmap("Reds").with_extremes(bad="#eeeeee")
        im = ax.imshow(np.ma.masked_invalid(E), cmap=cmap, norm=norm, aspect="auto")
        for i in range(len(metas)):
            for j in range(len(probes)):
                dark = np.isfinite(E[i, j]) and norm(E[i, j]) > 0.6
                ax.text(j, i, labels[i, j], ha="center", va="center", fontsize=9,
                        color="white" if dark else "black",
                        fontweight="bold" if sig[i, j] else "normal")
                if sig[i, j]:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.2,
                                           ec="black", clip_on=True))
        ax.set_xticks(range(len(probes)), [p.replace("_", "\n") for p in probes], fontsize=8)
        ax.set_yticks(range(len(metas)), metas)
        ax.set_title(f"Confounder probes (n = {int(t['n'].max())}, {self.n_permutations} "
                     f"permutations)\ncolour: effect size; * and bold border: q < {self.alpha:g}",
                     fontsize=9)
        cb = fig.colorbar(im, ax=ax, ticks=[0, 0.01, 0.05, 0.1, 0.25, 0.5, 1])
        cb.set_label("effect size, as variance explained:\nR², partial R²; Cramér's V²; "
                     "(2·|AUROC − 0.5|)²", fontsize=8)
        cb.ax.tick_params(labelsize=7)
        return fig
