"""``probe_confounders``: does metadata the model never saw predict its outputs, embeddings or
errors, and does it still predict them once the true label is accounted for?"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, to_jsonable
from .._utils import check_random_state, int_seed, progress, to_numpy
from ..data import AuditData
from ..data._validation import check_positive_int, check_probability, describe
from ..models import as_model
from ..stats import bh_adjust, monte_carlo_se
from . import _engine as E

PROBES = (
    "label_association", "metadata_only", "output_marginal", "output_conditional",
    "embedding_marginal", "embedding_conditional", "error",
)
_CONDITIONAL = ("output_conditional", "embedding_conditional")


@dataclass(frozen=True, eq=False)
class ProbeResult(ResultMixin):
    """Confounder probes: one row per metadata column x probe.

    Attributes
    ----------
    table : DataFrame
        Columns ``metadata``, ``metadata_kind``, ``probe``, ``statistic``, ``statistic_name``,
        ``effect_size``, ``effect_size_name``, ``df``, ``p_value``, ``p_value_se`` (Monte-Carlo
        standard error), ``p_value_min`` (resolution, ``1 / (n_permutations + 1)``), ``q_value``
        (Benjamini-Hochberg over the whole table), ``significant`` (``q_value < alpha``), ``n``,
        ``n_permutations``, ``test``.
    alpha : float
    n_permutations : int
    task : str
    layer : str or None
    model_name : str or None
    """

    table: pd.DataFrame
    alpha: float
    n_permutations: int
    task: str
    layer: str | None = None
    model_name: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({"alpha": self.alpha, "n_permutations": self.n_permutations,
                    "task": self.task, "layer": self.layer, "model": self.model_name,
                    "info": to_jsonable(self.info)})
        return out

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
                    subject=col, model=self.model_name, evidence=ev("label_association")))
            for probe, what in (("output_conditional", "outputs"),
                                ("embedding_conditional", f"layer '{self.layer}' activations")):
                if sig(probe):
                    out.append(Finding(
                        "confounded_output", "high", 7,
                        f"The model's {what} depend on '{col}' even after accounting for the "
                        f"true label ({num(probe)}): the model has learned '{col}', not only "
                        "the biology.",
                        subject=col, model=self.model_name, evidence=ev(probe)))
            for probe, cond, what in (
                    ("output_marginal", "output_conditional", "outputs"),
                    ("embedding_marginal", "embedding_conditional",
                     f"layer '{self.layer}' activations")):
                if sig(probe) and not sig(cond):
                    why = (" which the label association explains: the conditional probe "
                           "finds nothing beyond the label" if dataset else
                           " but not significantly beyond the label")
                    out.append(Finding(
                        "metadata_predicts_output", "info" if dataset else "medium", 4,
                        f"'{col}' predicts the model's {what} ({num(probe)}),{why}.",
                        subject=col, model=self.model_name, evidence=ev(probe)))
            if sig("error"):
                out.append(Finding(
                    "metadata_predicts_error", "medium", 9,
                    f"Where the model is wrong depends on '{col}' ({num('error')}): its "
                    f"performance differs across '{col}'; compare it per level with "
                    "split_domains.",
                    subject=col, model=self.model_name, evidence=ev("error")))
        return out

    def plot(self, ax: Any = None) -> Any:
        """Heat map of -log10(q) per metadata column x probe, annotated with effect sizes
        (a star marks ``q < alpha``)."""
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


# ---------------------------------------------------------------------- helpers
def _check_scores(scores: Any, n: int, task: str, n_classes: int | None) -> np.ndarray:
    s = np.asarray(to_numpy(scores))
    if s.dtype.kind not in "biuf":
        raise TypeError(f"scores has dtype {s.dtype}; expected numbers.")
    s = s.astype(np.float64)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim == 2 and task == "binary" and s.shape[1] == 2:
        s = s[:, 1]
    if s.shape[0] != n:
        raise ValueError(f"scores has {s.shape[0]} rows but y has {n}; expected one score per "
                         "sample.")
    if task == "multiclass":
        if s.ndim != 2 or s.shape[1] != n_classes:
            raise ValueError(f"scores has shape {s.shape}; expected ({n}, {n_classes}) class "
                             "probabilities for a multiclass task.")
    elif s.ndim != 1:
        raise ValueError(f"scores has shape {s.shape}; expected ({n},) for task={task!r}.")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contains NaN or infinite values; expected finite numbers.")
    return s


def _resolve_layer(adapter: Any, model: Any, layer: Any) -> tuple[Any, str]:
    import torch

    module = adapter.module
    named = dict(module.named_modules())
    if isinstance(layer, str):
        if layer not in named:
            names = [k for k in named if k]
            raise ValueError(f"layer={layer!r} is not a module of the model; expected one of "
                             f"{describe(names, 200)} (names as in dict(model.named_modules())).")
        return named[layer], layer
    if isinstance(layer, torch.nn.Module):
        owner = model if isinstance(model, torch.nn.Module) else module
        for name, m in owner.named_modules():
            if m is layer:
                return named[name], name or type(layer).__name__
        raise ValueError(f"layer={type(layer).__name__} module is not part of the model; "
                         "expected one of its submodules or a name from named_modules().")
    raise TypeError(f"layer has type {type(layer).__name__}; expected a module name (str) or a "
                    "torch.nn.Module of the model.")


def collect_activations(adapter: Any, model: Any, X: Any, layer: Any
                        ) -> tuple[np.ndarray, np.ndarray, str]:
    """Scores and the flattened activations of ``layer``, in the adapter's batches, through a
    forward hook that is always removed. The model is not changed."""
    target, name = _resolve_layer(adapter, model, layer)
    chunks: list[np.ndarray] = []

    def hook(_mod: Any, _inp: Any, out: Any) -> None:
        if isinstance(out, (tuple, list)):
            out = out[0]
        chunks.append(out.detach().reshape(out.shape[0], -1).to("cpu").double().numpy())

    handle = target.register_forward_hook(hook)
    try:
        scores = adapter.predict_scores(X)
    finally:
        handle.remove()
    acts = np.concatenate(chunks, axis=0)
    if acts.shape[0] != len(scores):
        raise ValueError(f"layer {name!r} produced {acts.shape[0]} activation rows for "
                         f"{len(scores)} samples; expected one per sample (is it called more "
                         "than once per forward pass?).")
    return scores, acts, name


def _loss(y: np.ndarray, s: np.ndarray, task: str) -> np.ndarray:
    eps = 1e-12
    if task == "binary":
        p = np.clip(s, eps, 1 - eps)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))
    if task == "multiclass":
        return -np.log(np.clip(s[np.arange(len(y)), y.astype(int)], eps, 1))
    return np.abs(y - s)


def _output_matrix(s: np.ndarray, task: str) -> np.ndarray:
    if task == "multiclass":
        L = np.log(np.clip(s, 1e-12, None))
        L -= L.mean(axis=1, keepdims=True)
        return E.principal_components(L, min(s.shape[1] - 1, E.MAX_COMPONENTS))
    return E.standard_ranks(s)[:, None]


@dataclass
class _Counter:
    obs: dict[tuple, float]
    hits: dict[tuple, int] = field(default_factory=dict)

    def add(self, null: dict[tuple, np.ndarray]) -> None:
        for k, v in null.items():
            o = self.obs[k]
            self.hits[k] = self.hits.get(k, 0) + int(np.sum(v >= o - 1e-9 * abs(o) - 1e-12))


# ---------------------------------------------------------------------- public
def probe_confounders(
    model: Any = None,
    X: Any = None,
    y: Any = None,
    metadata: Any = None,
    *,
    scores: Any = None,
    layer: Any = None,
    n_permutations: int = 1000,
    alpha: float = 0.05,
    random_state: Any = None,
    verbose: bool = True,
) -> ProbeResult:
    """Does metadata the model never saw predict its outputs, embeddings or errors, and does it
    still once the true label is accounted for?

    For each metadata column, the probes (rows of the result, ``probe`` column) are:

    ``label_association``
        metadata vs label: is the *dataset* confounded? Cramér's V when both are categorical
        (the statistic is ``chi²/n``), else R² of ranks (eta² / Spearman rho²).
    ``metadata_only``
        5-fold cross-validated AUROC (binary), macro AUROC (multiclass) or R² (regression) of a
        straw model that sees only the metadata column (smoothed level means; deciles of a
        continuous column): the score to show next to the model's.
    ``output_marginal``
        does the column predict the model's outputs? R² of a linear probe of the output ranks
        (1-D scores) or of the whitened principal components of the centred log class
        probabilities (multiclass) on the column.
    ``output_conditional``
        outputs independent of the column given the label: partial R² after removing the label,
        tested by permuting the column within label strata (exact) for a categorical label, or
        by the conditional permutation test of Berrett et al. (2020) for a continuous label.
    ``embedding_marginal``, ``embedding_conditional``
        the same two questions for the activations of ``layer`` (top 10 principal components).
    ``error``
        does the column predict the per-sample loss (log-loss; absolute residual for
        regression)? Tested within label strata for classification.

    Every statistic is permuted ``n_permutations`` times without refitting anything; p-values
    are ``(1 + #{null >= observed}) / (1 + n_permutations)``, and ``q_value`` applies
    Benjamini-Hochberg to the whole table.

    Parameters
    ----------
    model : torch.nn.Module, estimator or callable, optional
        Scored with :func:`confoundry.as_model` unless ``scores`` is given; needed for ``layer``.
    X : DataFrame, ndarray or tensor, optional
        Model inputs (needed with ``model``).
    y : array-like of shape (n,)
        True labels or targets.
    metadata : DataFrame or Series
        Site, batch, scanner, sex, ...: one column per variable, one row per sample.
    scores : array-like, optional
        Precomputed scores (binary P(y=1), multiclass (n, K) probabilities, regression values).
    layer : str or torch.nn.Module, optional
        A layer of a torch model (name as in ``dict(model.named_modules())``) whose activations
        are probed; adds the two embedding rows.
    n_permutations : int
        Permutations (or conditional-permutation draws) per test.
    alpha : float
        False discovery rate for ``significant``.
    random_state : None, int or numpy Generator
    verbose : bool
        Show progress bars.

    Returns
    -------
    ProbeResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> n = 400
    >>> site = rng.integers(0, 2, n)
    >>> y = (rng.random(n) < 0.3 + 0.4 * site).astype(int)       # site confounds the data set
    >>> s = 1 / (1 + np.exp(-(2 * y - 1 + 0.8 * site + rng.normal(size=n))))  # ...and the model
    >>> res = probe_confounders(y=y, metadata=pd.DataFrame({"site": site}), scores=s,
    ...                         n_permutations=200, random_state=0, verbose=False)
    >>> bool(res.row("site", "output_conditional")["significant"])
    True
    >>> sorted({f.kind for f in res.findings()})
    ['confounded_dataset', 'confounded_output']
    """
    n_permutations = check_positive_int(n_permutations, "n_permutations")
    alpha = check_probability(alpha, "alpha")
    if y is None:
        raise ValueError("y is None; expected the true labels (the conditional probes need them).")
    if metadata is None:
        raise ValueError("metadata is None; expected a DataFrame of site / batch / scanner ... "
                         "columns, one row per sample.")
    if model is None and scores is None:
        raise TypeError("probe_confounders needs a model (with X) or precomputed scores; got "
                        "model=None and scores=None.")
    if model is not None and X is None:
        raise ValueError("X is None but a model was given; expected the model inputs X.")
    rng = check_random_state(random_state)
    if X is None:
        n0 = len(y) if hasattr(y, "__len__") else len(to_numpy(y))
        data = AuditData(np.zeros((n0, 1)), y, metadata)
    else:
        data = AuditData(X, y, metadata)
    task, n = data.task, data.n_samples
    yv = np.asarray(data.y)
    n_classes = None if data.classes is None else len(data.classes)
    adapter = as_model(model, task=task) if model is not None else None
    acts, layer_name = None, None
    if layer is not None:
        if adapter is None or not adapter.is_torch:
            raise TypeError("layer was given but the model is not a torch.nn.Module; expected a "
                            "torch model to probe its activations (pass layer=None otherwise).")
        model_scores, acts, layer_name = collect_activations(adapter, model, X, layer)
        if scores is None:
            scores = model_scores
    if scores is None:
        scores = adapter.predict_scores(X)
    s = _check_scores(scores, n, task, n_classes)
    meta = data.metadata
    kinds = data.metadata_kinds
    columns = list(meta.columns)

    # ------------------------------------------------------- bases
    classification = task in ("binary", "multiclass")
    strata = E.stratum_codes(yv) if classification else None
    lbasis = None if classification else E.label_basis(yv)

    def cond(Z: np.ndarray) -> np.ndarray:
        return E.orthonormal(E.residualize(Z, strata=strata, basis=lbasis), E.MAX_COMPONENTS)

    def marg(Z: np.ndarray) -> np.ndarray:
        return E.orthonormal(E.residualize(Z), E.MAX_COMPONENTS)

    if classification:
        Ylab = np.zeros((n, n_classes))
        Ylab[np.arange(n), yv.astype(int)] = 1.0
        U_label = marg(Ylab)
    else:
        U_label = marg(E.standard_ranks(yv)[:, None])
    Z_out = _output_matrix(s, task)
    U_out_m, U_out_c = marg(Z_out), cond(Z_out)
    Z_err = E.standard_ranks(_loss(yv.astype(np.float64), s, task))[:, None]
    U_err = cond(Z_err) if classification else marg(Z_err)
    if acts is not None:
        Z_emb = E.principal_components(acts, E.MAX_COMPONENTS)
        U_emb_m, U_emb_c = marg(Z_emb), cond(Z_emb)
    designs = {c: E.metadata_design(meta[c].to_numpy(), kinds[c]) for c in columns}

    marginal_tasks, strat_tasks, cpt_tasks = [], [], {}
    for c in columns:
        D = designs[c]
        marginal_tasks.append(E.make_task((c, "label_association"), U_label, D, strata=None))
        marginal_tasks.append(E.make_task((c, "output_marginal"), U_out_m, D, strata=None))
        if acts is not None:
            marginal_tasks.append(E.make_task((c, "embedding_marginal"), U_emb_m, D, strata=None))
        if classification:
            strat_tasks.append(E.make_task((c, "output_conditional"), U_out_c, D, strata=strata))
            if acts is not None:
                strat_tasks.append(
                    E.make_task((c, "embedding_conditional"), U_emb_c, D, strata=strata))
            strat_tasks.append(E.make_task((c, "error"), U_err, D, strata=strata))
        else:
            marginal_tasks.append(E.make_task((c, "error"), U_err, D, strata=None))
            cpt_tasks[c] = [E.make_task((c, "output_conditional"), U_out_c, D, strata=None)]
            if acts is not None:
                cpt_tasks[c].append(
                    E.make_task((c, "embedding_conditional"), U_emb_c, D, strata=None))

    folds = rng.permutation(np.arange(n) % E.N_FOLDS)
    straws = {c: E.make_straw(E.metadata_codes(meta[c].to_numpy(), kinds[c]), task, folds)
              for c in columns}
    seeds = {"marginal": int_seed(rng), "strata": int_seed(rng)}
    cpt_seeds = {c: int_seed(rng) for c in columns}

    all_tasks = marginal_tasks + strat_tasks + [t for ts in cpt_tasks.values() for t in ts]
    obs = E.evaluate(all_tasks, None)
    obs = {k: float(v[0]) for k, v in obs.items()}
    for c in columns:
        obs[(c, "metadata_only")] = float(E.straw_scores(straws[c], yv, None)[0])
    counter = _Counter(obs)
    d_max = max(t.U.shape[1] for t in all_tasks)
    chunk = E.chunk_size(n, d_max, n_permutations)
    n_chunks = -(-n_permutations // chunk)
    n_cpt = -(-n_permutations // max(1, min(n_permutations, 8_000_000 // n)))
    total = n_chunks * (1 + int(classification)) + (0 if classification else n_cpt * len(columns))
    bar = progress(total=total, desc="confounder probes", verbose=verbose)
    try:
        for P in E.permutation_chunks(n, n_permutations, strata=None, seed=seeds["marginal"],
                                      chunk=chunk):
            counter.add(E.evaluate(marginal_tasks, P))
            counter.add({(c, "metadata_only"): E.straw_scores(straws[c], yv, P)
                         for c in columns})
            bar.update(1)
        if classification:
            for P in E.permutation_chunks(n, n_permutations, strata=strata,
                                          seed=seeds["strata"], chunk=chunk):
                counter.add(E.evaluate(strat_tasks, P))
                bar.update(1)
        else:
            for c in columns:
                f, g = E.cpt_log_odds_factors(meta[c].to_numpy(), kinds[c], yv, cpt_seeds[c])
                for perm in E.cpt_permutations(f, g, n_permutations, seed=cpt_seeds[c]):
                    counter.add(E.evaluate(cpt_tasks[c], E.invert(perm)))
                    bar.update(1)
    finally:
        bar.close()

    # ------------------------------------------------------- table
    task_by_key = {t.key: t for t in all_tasks}
    cv_name = {"binary": "CV AUROC", "multiclass": "CV macro AUROC", "regression": "CV R²"}[task]
    rows = []
    for c in columns:
        for probe in PROBES:
            key = (c, probe)
            if key not in obs:
                continue
            T = obs[key]
            p = (1 + counter.hits.get(key, 0)) / (1 + n_permutations)
            if probe == "metadata_only":
                stat_name, es_name, es, df = cv_name, cv_name, T, np.nan
                test = "label permutation"
            else:
                t = task_by_key[key]
                df = t.rank
                stat_name = "Pillai trace"
                es = T / t.rank if t.rank > 0 else np.nan
                if probe == "label_association":
                    both_cat = kinds[c] == "categorical" and classification
                    es_name = "Cramér's V" if both_cat else "R² (ranks)"
                    if both_cat:
                        es = float(np.sqrt(es)) if t.rank > 0 else np.nan
                    test = "permutation"
                elif probe in _CONDITIONAL or (probe == "error" and classification):
                    es_name = "partial R²"
                    if classification:
                        test = "permutation within label strata"
                    else:
                        test = "conditional permutation (Berrett et al. 2020)"
                        es = _partial_r2(t, lbasis)
                else:
                    es_name = "R²"
                    test = "permutation"
                if t.rank == 0:
                    p = np.nan
            rows.append({
                "metadata": c, "metadata_kind": kinds[c], "probe": probe, "statistic": T,
                "statistic_name": stat_name, "effect_size": es, "effect_size_name": es_name,
                "df": df, "p_value": p,
                "p_value_se": monte_carlo_se(p, n_permutations) if np.isfinite(p) else np.nan,
                "p_value_min": 1.0 / (n_permutations + 1), "n": n,
                "n_permutations": n_permutations, "test": test,
            })
    table = pd.DataFrame(rows)
    table["q_value"] = bh_adjust(table["p_value"].to_numpy(dtype=float))
    table["significant"] = (table["q_value"] < alpha).fillna(False).astype(bool)
    order = ["metadata", "metadata_kind", "probe", "statistic", "statistic_name", "effect_size",
             "effect_size_name", "df", "p_value", "p_value_se", "p_value_min", "q_value",
             "significant", "n", "n_permutations", "test"]
    info = {"random_state": random_state if isinstance(random_state, (int, type(None)))
            else str(random_state), "n_folds": E.N_FOLDS, "max_components": E.MAX_COMPONENTS,
            "cpt_steps": None if classification else E.CPT_STEPS,
            "embedding_dim": None if acts is None else int(acts.shape[1])}
    return ProbeResult(table[order], alpha, n_permutations, task, layer_name,
                       None if adapter is None else adapter.name, info)


def _partial_r2(t: E.StatTask, lbasis: np.ndarray) -> float:
    """R² of the label-residualised output on the label-residualised metadata design."""
    Dr = E.residualize(t.D, basis=lbasis)
    A = np.linalg.pinv(Dr.T @ Dr, hermitian=True)
    G = Dr.T @ t.U
    r = min(int(np.linalg.matrix_rank(Dr)), t.U.shape[1])
    return float(np.trace(G.T @ A @ G) / r) if r > 0 else np.nan


def conditional_test(scores: np.ndarray, y: np.ndarray, c: np.ndarray, *, task: str, kind: str,
                     n_permutations: int, seed: int) -> tuple[float, float]:
    """The ``output_conditional`` probe alone, without validation: (partial R², p-value).

    The same computation as the corresponding row of :func:`probe_confounders`; used by the
    simulation studies of the test suite, where the public wrapper's overhead would dominate.
    """
    classification = task in ("binary", "multiclass")
    Z = _output_matrix(np.asarray(scores, dtype=np.float64), task)
    D = E.metadata_design(c, kind)
    if classification:
        strata = E.stratum_codes(y)
        U = E.orthonormal(E.residualize(Z, strata=strata), E.MAX_COMPONENTS)
        t = E.make_task(("c",), U, D, strata=strata)
        chunks = E.permutation_chunks(len(y), n_permutations, strata=strata, seed=seed,
                                      chunk=E.chunk_size(len(y), U.shape[1], n_permutations))
    else:
        lb = E.label_basis(y)
        U = E.orthonormal(E.residualize(Z, basis=lb), E.MAX_COMPONENTS)
        t = E.make_task(("c",), U, D, strata=None)
        f, g = E.cpt_log_odds_factors(c, kind, y, seed)
        chunks = (E.invert(p) for p in E.cpt_permutations(f, g, n_permutations, seed=seed))
    obs = float(E.evaluate([t], None)[("c",)][0])
    hits = sum(int(np.sum(E.evaluate([t], P)[("c",)] >= obs - 1e-9 * abs(obs) - 1e-12))
               for P in chunks)
    es = obs / t.rank if t.rank else np.nan
    return es, (1 + hits) / (1 + n_permutations)
