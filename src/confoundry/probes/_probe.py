"""``probe_confounders``: does metadata the model never saw predict its outputs, embeddings or
errors, and does it still predict them once the true label is accounted for?

The function runs in phases, one private helper each: validate the inputs (``_inputs``), get
the outputs and embeddings (``_outputs``), build the test tasks (``_plan``), permute
(``_permute``), and tabulate (``_table``). One module past 450 lines: the phases share the
``_Inputs`` and ``_Plan`` records and the probe definitions, and read best in call order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._utils import check_random_state, int_seed, progress, renamed_keyword, to_numpy
from ..data import AuditData, ensure_data
from ..data._coerce import check_aligned, check_same_index
from ..data._coerce import coerce_metadata as _coerce_metadata
from ..data._coerce import coerce_y as _coerce_y
from ..data._coerce import metadata_kind as _metadata_kind
from ..data._validation import check_positive_int, check_probability
from ..models import as_model
from ..stats import DEFAULT_FDR, bh_adjust, monte_carlo_se
from . import _engine as E
from ._conditioning import Conditioning, build_conditioning, check_adjust_for
from ._outputs import (
    check_scores,
    collect_activations,
    error_matrix,
    output_matrix,
    partial_r2,
)
from ._probe_result import PROBES, ProbeResult

_CONDITIONAL = ("output_conditional", "embedding_conditional")
_COLUMNS = ["metadata", "metadata_kind", "probe", "statistic", "statistic_name", "effect_size",
            "effect_size_name", "df", "p_value", "p_value_se", "p_value_min", "q_value",
            "significant", "n", "n_permutations", "test"]


def probe_confounders(
    model: Any = None,
    X: Any = None,
    y: Any = None,
    metadata: Any = None,
    *,
    scores: Any = None,
    layer: Any = None,
    n_permutations: int = 1000,
    fdr: float = DEFAULT_FDR,
    random_state: Any = None,
    verbose: bool = True,
    alpha: float | None = None,
    adjust_for: Any = None,
    p_values: str = "auto",
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
        With ``scores`` and no ``layer`` it is never called (only its name is used).
    X : DataFrame, ndarray, tensor or AuditData, optional
        Model inputs (needed when the model is called). An :class:`~confoundry.AuditData`
        carries ``y`` and ``metadata`` (which may then be ``None``) and is used as it is.
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
    fdr : float
        False discovery rate for ``significant`` (``q_value < fdr``).
    random_state : None, int or numpy Generator
    verbose : bool
        Show progress bars.
    alpha : float, optional
        Deprecated spelling of ``fdr``.
    adjust_for : str or list of str, optional
        Metadata columns the conditional probes also condition on: covariates the user
        considers legitimate reasons for the outputs to differ (age, sex, ...). They are not
        probed themselves (no rows). With a categorical label the conditional probes permute
        within label x covariate strata (a continuous covariate in 5 quantile bins) and project
        a cubic basis of each continuous covariate's ranks out of the output; with a
        continuous label the conditional permutation test models the metadata given the label
        and the covariates. The ``test`` column says which; ``params["adjust_for"]`` records
        the columns. The other probes are unchanged.
    p_values : {"auto", "permutation", "asymptotic"}
        ``"permutation"``: every p-value from ``n_permutations`` permutations (the default
        below :data:`ASYMPTOTIC_N` = 200,000 rows). ``"asymptotic"`` (the default from that
        many rows on): the Pillai-trace probes take the chi-square limit of the same
        statistic, ``(n - k) T ~ chi²(df)`` with ``df = rank(design) x dim(output)``
        (``k``: the strata, or intercept and basis, conditioned on; a Kruskal-Wallis test of
        the output ranks for a 1-D output, Pearson's chi-square for the label association);
        the conditional probes of a continuous label take the chi-square limit of the
        partial Pillai trace given the label basis (and covariates) instead of the
        conditional permutation test; the metadata-only probe keeps its label permutations,
        drawn as cell counts for a categorical label (exact, O(cells) per permutation). The
        ``test`` column names the test of each row; ``params["p_values"]`` records the
        choice. ``docs/scale.md`` shows the calibration on null data.

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

    A model that follows age, in a data set where the older patients come from site b: the
    outputs depend on the site given the label, but not given the label and age.

    >>> age = rng.normal(60, 10, n) + 8 * site
    >>> s2 = 1 / (1 + np.exp(-(2 * y - 1 + 0.1 * (age - 60) + rng.normal(size=n))))
    >>> meta = pd.DataFrame({"site": site, "age": age})
    >>> plain = probe_confounders(y=y, metadata=meta, scores=s2, n_permutations=200,
    ...                           random_state=0, verbose=False)
    >>> adj = probe_confounders(y=y, metadata=meta, scores=s2, n_permutations=200,
    ...                         random_state=0, verbose=False, adjust_for=["age"])
    >>> bool(plain.row("site", "output_conditional")["significant"])
    True
    >>> bool(adj.row("site", "output_conditional")["significant"]), adj.params["adjust_for"]
    (False, ['age'])
    >>> adj.row("site", "output_conditional")["test"]
    'permutation within label x age strata'
    """
    n_permutations = check_positive_int(n_permutations, "n_permutations")
    fdr = _check_fdr(fdr, alpha)
    inp = _inputs(model, X, y, metadata, scores, layer)
    adjust = check_adjust_for(adjust_for, inp.meta)
    inp, cond = _split_covariates(inp, adjust)
    rng = check_random_state(random_state)
    s, acts, layer_name, adapter = _outputs(inp, model, scores, layer)
    plan = _plan(inp, s, acts, rng, cond)
    plan.asymptotic = _check_p_values(p_values, inp.n) == "asymptotic"
    obs, hits, asym = _permute(inp, plan, n_permutations, verbose)
    table = _table(inp, plan, obs, hits, n_permutations, fdr, asym)
    info = {"random_state": random_state if isinstance(random_state, (int, type(None)))
            else str(random_state), "n_folds": E.N_FOLDS, "max_components": E.MAX_COMPONENTS,
            "cpt_steps": None if plan.classification else E.CPT_STEPS,
            "embedding_dim": None if acts is None else int(acts.shape[1]),
            "embedding_pooling": getattr(adapter, "embedding_pooling_", None) if acts is not None
            else None}
    params = {"n_permutations": n_permutations, "fdr": fdr, "layer": layer_name,
              "scores_given": scores is not None, "adjust_for": list(adjust),
              "p_values": "asymptotic" if plan.asymptotic else "permutation",
              "asymptotic_n": E.ASYMPTOTIC_N, **info}
    return ProbeResult(table, fdr, n_permutations, inp.task, layer_name,
                       None if adapter is None else adapter.name, info, params)


#: from this many rows on, ``p_values="auto"`` takes the asymptotic tests (see ``p_values``).
ASYMPTOTIC_N = E.ASYMPTOTIC_N


def _check_p_values(p_values: Any, n: int) -> str:
    if p_values == "auto":
        return "asymptotic" if n >= ASYMPTOTIC_N else "permutation"
    if p_values not in ("permutation", "asymptotic"):
        raise ValueError(f"p_values={p_values!r} is not valid; expected 'auto', 'permutation' "
                         "or 'asymptotic'.")
    return p_values


#: a categorical metadata column needs on average this many rows per level to be probed.
MIN_ROWS_PER_LEVEL = 5


def check_probe_metadata(metadata: pd.DataFrame | None, kinds: dict[str, str]) -> None:
    """Refuse identifiers and very-high-cardinality categorical metadata before any work starts.

    A column unique per row (a patient ID) or with fewer than :data:`MIN_ROWS_PER_LEVEL` rows
    per level on average cannot be tested as a categorical confounder (every level would be its
    own tiny group, and the test has no power: p = 1 says nothing). Continuous metadata is
    allowed.

    Examples
    --------
    >>> meta = pd.DataFrame({"patient": [f"p{i}" for i in range(40)], "site": ["a", "b"] * 20})
    >>> check_probe_metadata(meta, {"patient": "categorical", "site": "categorical"})
    Traceback (most recent call last):
    ...
    ValueError: metadata column 'patient' has 40 levels for 40 rows (unique per row: an identifier?); ...
    """
    if metadata is None:
        return
    n = len(metadata)
    for col, kind in kinds.items():
        if kind != "categorical":
            continue
        levels = int(metadata[col].nunique())
        if levels == n or levels * MIN_ROWS_PER_LEVEL > n:
            what = ("unique per row: an identifier?" if levels == n else
                    f"{n / levels:.1f} rows per level on average")
            raise ValueError(
                f"metadata column {col!r} has {levels} levels for {n} rows ({what}); expected a "
                f"categorical confounder with at least {MIN_ROWS_PER_LEVEL} rows per level on "
                "average (at most "
                f"{n // MIN_ROWS_PER_LEVEL} levels). Drop it, pass a coarser variable (the site, "
                "not the patient), hold its groups out with leave_one_group_out "
                "(Audit(group_column=...) with metadata_train), or, if it is a number, declare "
                f"metadata_kinds={{{col!r}: 'continuous'}}.")


# ---------------------------------------------------------------------- phases
def _check_fdr(fdr: Any, alpha: Any) -> float:
    if alpha is None:
        return check_probability(fdr, "fdr")
    alpha = renamed_keyword("probe_confounders", "alpha", "fdr", alpha, fdr,
                            new_default=DEFAULT_FDR, stacklevel=4)
    return check_probability(alpha, "alpha")


@dataclass
class _Inputs:
    """Validated labels and metadata, and what the model is called on."""

    task: str
    n: int
    y: np.ndarray
    n_classes: int | None
    meta: pd.DataFrame
    kinds: dict[str, str]
    X: Any  # the model input: the user's X, or the AuditData (adapters read it), or None

    @property
    def columns(self) -> list[str]:
        return list(self.meta.columns)

    @property
    def classification(self) -> bool:
        return self.task in ("binary", "multiclass")


def _inputs(model: Any, X: Any, y: Any, metadata: Any, scores: Any, layer: Any) -> _Inputs:
    """Validate once: an AuditData as it is, else y and metadata (and X, when given)."""
    from ..data._sources import is_lazy_input

    if X is not None and not isinstance(X, AuditData) and is_lazy_input(X):
        X, y, metadata = ensure_data(X, y, metadata), None, None  # y may come from a Dataset
    given = isinstance(X, AuditData)
    if y is None and not (given and X.y is not None):
        raise ValueError("y is None; expected the true labels (the conditional probes need them).")
    if metadata is None and not (given and X.metadata is not None):
        raise ValueError("metadata is None; expected a DataFrame of site / batch / scanner ... "
                         "columns, one row per sample.")
    if model is None and scores is None:
        raise TypeError("probe_confounders needs a model (with X) or precomputed scores; got "
                        "model=None and scores=None.")
    if model is not None and X is None and (scores is None or layer is not None):
        raise ValueError("X is None but a model was given; expected the model inputs X.")
    if X is not None:
        data = ensure_data(X, y, metadata)
        check_probe_metadata(data.metadata, data.metadata_kinds)
        return _Inputs(data.task, data.n_samples, np.asarray(data.y),
                       None if data.classes is None else len(data.classes), data.metadata,
                       data.metadata_kinds, X)
    # only labels, metadata and scores: validate them as AuditData would, without inputs
    n = len(y) if hasattr(y, "__len__") else len(to_numpy(y))
    index = pd.RangeIndex(n)
    yv, task, classes = _coerce_y(y, n, index, None)
    meta = _coerce_metadata(metadata, n, index, None)
    kinds = {c: _metadata_kind(meta[c]) for c in meta.columns}
    check_probe_metadata(meta, kinds)
    return _Inputs(task, n, np.asarray(yv), None if classes is None else len(classes), meta,
                   kinds, None)


def _split_covariates(inp: _Inputs, adjust: tuple[str, ...]) -> tuple[_Inputs, Conditioning]:
    """The inputs without the ``adjust_for`` columns (they are conditioned on, not probed),
    and what the conditional probes condition on."""
    covs = inp.meta[list(adjust)] if adjust else None
    cond = build_conditioning(inp.y, inp.classification, covs,
                              {c: inp.kinds[c] for c in adjust})
    if adjust:
        keep = [c for c in inp.meta.columns if c not in adjust]
        inp = _Inputs(inp.task, inp.n, inp.y, inp.n_classes, inp.meta[keep],
                      {c: inp.kinds[c] for c in keep}, inp.X)
    return inp, cond


def _outputs(inp: _Inputs, model: Any, scores: Any, layer: Any
             ) -> tuple[np.ndarray, np.ndarray | None, str | None, Any]:
    """Scores (the given ones, or the model's), the activations of ``layer`` and its name, and
    the adapter (``None`` without a model). The model is called at most once."""
    adapter = as_model(model, task=inp.task) if model is not None else None
    acts, layer_name = None, None
    if layer is not None:
        if adapter is None or not adapter.is_torch:
            raise TypeError("layer was given but the model is not a torch.nn.Module; expected a "
                            "torch model to probe its activations (pass layer=None otherwise).")
        model_scores, acts, layer_name = collect_activations(adapter, model, inp.X, layer)
        if scores is None:
            scores = model_scores
    if scores is None:
        scores = adapter.predict_scores(inp.X)
    elif isinstance(inp.X, pd.DataFrame):
        check_same_index(scores, inp.X.index, "scores")
    else:
        check_aligned(scores, inp.X, "scores")
    return check_scores(scores, inp.n, inp.task, inp.n_classes), acts, layer_name, adapter


@dataclass
class _Plan:
    """The test tasks of every probe, and what permutes them."""

    classification: bool
    strata: np.ndarray | None
    lbasis: np.ndarray | None
    cond: Conditioning
    marginal: list[E.StatTask] = field(default_factory=list)
    stratified: list[E.StatTask] = field(default_factory=list)
    #: conditional probes of a categorical label with adjust_for: permuted within cond.strata
    adjusted: list[E.StatTask] = field(default_factory=list)
    cpt: dict[str, list[E.StatTask]] = field(default_factory=dict)
    straws: dict[str, Any] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)
    cpt_seeds: dict[str, int] = field(default_factory=dict)
    #: p-values from the chi-square limits (see ``p_values`` of probe_confounders)
    asymptotic: bool = False

    @property
    def all_tasks(self) -> list[E.StatTask]:
        return (self.marginal + self.stratified + self.adjusted
                + [t for ts in self.cpt.values() for t in ts])


def _plan(inp: _Inputs, s: np.ndarray, acts: np.ndarray | None,
          rng: np.random.Generator, conditioning: Conditioning) -> _Plan:
    """Reduce labels, outputs, errors and activations to orthonormal bases and pair each with
    each metadata design; draw the folds of the straw models and the permutation seeds."""
    n, yv, classification = inp.n, inp.y, inp.classification
    strata = E.stratum_codes(yv) if classification else None
    lbasis = None if classification else E.label_basis(yv)
    plan = _Plan(classification, strata, lbasis, conditioning)
    adjusted = conditioning.adjusted

    def cond(Z: np.ndarray) -> np.ndarray:
        if adjusted:
            return conditioning.orthonormal(Z, E.MAX_COMPONENTS)
        return E.orthonormal(E.residualize(Z, strata=strata, basis=lbasis), E.MAX_COMPONENTS)

    def err_cond(Z: np.ndarray) -> np.ndarray:  # the error probe conditions on the label only
        return E.orthonormal(E.residualize(Z, strata=strata, basis=lbasis), E.MAX_COMPONENTS)

    def marg(Z: np.ndarray) -> np.ndarray:
        return E.orthonormal(E.residualize(Z), E.MAX_COMPONENTS)

    if classification:
        Ylab = np.zeros((n, inp.n_classes))
        Ylab[np.arange(n), yv.astype(int)] = 1.0
        U_label = marg(Ylab)
    else:
        U_label = marg(E.standard_ranks(yv)[:, None])
    Z_out = output_matrix(s, inp.task)
    U_out_m, U_out_c = marg(Z_out), cond(Z_out)
    Z_err = error_matrix(yv.astype(np.float64), s, inp.task)
    U_err = err_cond(Z_err) if classification else marg(Z_err)
    U_emb_m = U_emb_c = None
    if acts is not None:
        Z_emb = E.principal_components(acts, E.MAX_COMPONENTS)
        U_emb_m, U_emb_c = marg(Z_emb), cond(Z_emb)

    for c in inp.columns:
        D = E.metadata_design(inp.meta[c].to_numpy(), inp.kinds[c])

        def task(probe: str, U: np.ndarray, stratified: bool, c: str = c,
                 D: np.ndarray = D, by: np.ndarray | None = strata) -> E.StatTask:
            return E.make_task((c, probe), U, D, strata=by if stratified else None)

        plan.marginal.append(task("label_association", U_label, False))
        plan.marginal.append(task("output_marginal", U_out_m, False))
        if acts is not None:
            plan.marginal.append(task("embedding_marginal", U_emb_m, False))
        if classification:
            into = plan.adjusted if adjusted else plan.stratified
            by = conditioning.strata if adjusted else strata
            into.append(task("output_conditional", U_out_c, True, by=by))
            if acts is not None:
                into.append(task("embedding_conditional", U_emb_c, True, by=by))
            plan.stratified.append(task("error", U_err, True))
        else:
            plan.marginal.append(task("error", U_err, False))
            plan.cpt[c] = [task("output_conditional", U_out_c, False)]
            if acts is not None:
                plan.cpt[c].append(task("embedding_conditional", U_emb_c, False))

    folds = rng.permutation(np.arange(n) % E.N_FOLDS)
    plan.straws = {c: E.make_straw(E.metadata_codes(inp.meta[c].to_numpy(), inp.kinds[c]),
                                   inp.task, folds) for c in inp.columns}
    plan.seeds = {"marginal": int_seed(rng), "strata": int_seed(rng)}
    plan.cpt_seeds = {c: int_seed(rng) for c in inp.columns}
    if plan.adjusted:  # drawn last: without adjust_for every other stream stays as it was
        plan.seeds["adjusted"] = int_seed(rng)
    return plan


def _asymptotic(inp: _Inputs, plan: _Plan, obs: dict[tuple, float], n_permutations: int,
                hits: dict[tuple, int], add: Any) -> dict[tuple, float]:
    """The large-n path: chi-square p-values of the Pillai-trace probes (no permutation), and
    the metadata-only probe's label permutations (as cell counts for a categorical label)."""
    n, cond = inp.n, plan.cond
    p: dict[tuple, float] = {}
    for t in plan.marginal + plan.stratified:
        p[t.key] = E.chi2_p_value(obs[t.key], t.n_eff, t.design_rank * t.U.shape[1])
    for t in plan.adjusted + [t for ts in plan.cpt.values() for t in ts]:
        p[t.key] = E.partial_chi2(t.U, cond.residualize(t.D), n - cond.n_params)
    if plan.classification:
        for c in inp.columns:
            for null in E.straw_null_scores(plan.straws[c], inp.y, n_permutations,
                                            seed=plan.seeds["marginal"]):
                add({(c, "metadata_only"): null})
    else:  # one pass of permutations, shared by every column (the same seed for each)
        chunk = max(1, min(n_permutations, E.MAX_CELLS // n))
        for P in E.permutation_chunks(n, n_permutations, strata=None,
                                      seed=plan.seeds["marginal"], chunk=chunk):
            add({(c, "metadata_only"): E.straw_scores(plan.straws[c], inp.y, P)
                 for c in inp.columns})
    return p


def _permute(inp: _Inputs, plan: _Plan, n_permutations: int, verbose: bool
             ) -> tuple[dict[tuple, float], dict[tuple, int], dict[tuple, float]]:
    """Observed statistics, per statistic how many permuted ones reach it, and the
    asymptotic p-values (the large-n path; empty otherwise)."""
    n, yv, columns = inp.n, inp.y, inp.columns
    all_tasks = plan.all_tasks
    obs = {k: float(v[0]) for k, v in E.evaluate(all_tasks, None).items()}
    for c in columns:
        obs[(c, "metadata_only")] = float(E.straw_scores(plan.straws[c], yv, None)[0])
    hits: dict[tuple, int] = {}

    def add(null: dict[tuple, np.ndarray]) -> None:
        for k, v in null.items():
            o = obs[k]
            hits[k] = hits.get(k, 0) + int(np.sum(v >= o - 1e-9 * abs(o) - 1e-12))

    if plan.asymptotic:
        return obs, hits, _asymptotic(inp, plan, obs, n_permutations, hits, add)
    d_max = max(t.U.shape[1] for t in all_tasks)
    chunk = E.chunk_size(n, d_max, n_permutations)
    n_chunks = -(-n_permutations // chunk)
    n_cpt = -(-n_permutations // max(1, min(n_permutations, 8_000_000 // n)))
    total = (n_chunks * (1 + int(plan.classification) + int(bool(plan.adjusted)))
             + (0 if plan.classification else n_cpt * len(columns)))
    bar = progress(total=total, desc="confounder probes", verbose=verbose)
    try:
        for P in E.permutation_chunks(n, n_permutations, strata=None,
                                      seed=plan.seeds["marginal"], chunk=chunk):
            add(E.evaluate(plan.marginal, P))
            add({(c, "metadata_only"): E.straw_scores(plan.straws[c], yv, P) for c in columns})
            bar.update(1)
        if plan.classification:
            for P in E.permutation_chunks(n, n_permutations, strata=plan.strata,
                                          seed=plan.seeds["strata"], chunk=chunk):
                add(E.evaluate(plan.stratified, P))
                bar.update(1)
            if plan.adjusted:
                for P in E.permutation_chunks(n, n_permutations, strata=plan.cond.strata,
                                              seed=plan.seeds["adjusted"], chunk=chunk):
                    add(E.evaluate(plan.adjusted, P))
                    bar.update(1)
        else:
            for c in columns:
                seed = plan.cpt_seeds[c]
                f, g = plan.cond.cpt_factors(inp.meta[c].to_numpy(), inp.kinds[c], yv, seed)
                for perm in E.cpt_permutations(f, g, n_permutations, seed=seed):
                    add(E.evaluate(plan.cpt[c], E.invert(perm)))
                    bar.update(1)
    finally:
        bar.close()
    return obs, hits, {}


def _table(inp: _Inputs, plan: _Plan, obs: dict[tuple, float], hits: dict[tuple, int],
           n_permutations: int, fdr: float, asym: dict[tuple, float] | None = None
           ) -> pd.DataFrame:
    """One row per metadata column x probe, BH-corrected over the whole table."""
    task_by_key = {t.key: t for t in plan.all_tasks}
    cv_name = {"binary": "CV AUROC", "multiclass": "CV macro AUROC",
               "regression": "CV R²"}[inp.task]
    rows = []
    for c in inp.columns:
        for probe in PROBES:
            key = (c, probe)
            if key not in obs:
                continue
            T = obs[key]
            p = (1 + hits.get(key, 0)) / (1 + n_permutations)
            p_min = 1.0 / (n_permutations + 1)
            if probe == "metadata_only":
                stat_name, es_name, es, df = cv_name, cv_name, T, np.nan
                test = ("label permutation (cell counts)"
                        if plan.asymptotic and plan.classification else "label permutation")
            else:
                t = task_by_key[key]
                df = t.rank
                stat_name = "Pillai trace"
                es, es_name, test = _effect_size(t, T, probe, inp.kinds[c], plan)
                if asym and key in asym:
                    p, p_min, test = asym[key], 0.0, _asymptotic_name(test)
                if t.rank == 0:
                    p = np.nan
            rows.append({
                "metadata": c, "metadata_kind": inp.kinds[c], "probe": probe, "statistic": T,
                "statistic_name": stat_name, "effect_size": es, "effect_size_name": es_name,
                "df": df, "p_value": p,
                "p_value_se": (0.0 if p_min == 0.0 else monte_carlo_se(p, n_permutations))
                if np.isfinite(p) else np.nan,
                "p_value_min": p_min, "n": inp.n,
                "n_permutations": n_permutations, "test": test,
            })
    table = pd.DataFrame(rows)
    table["q_value"] = bh_adjust(table["p_value"].to_numpy(dtype=float))
    table["significant"] = (table["q_value"] < fdr).fillna(False).astype(bool)
    return table[_COLUMNS]


def _asymptotic_name(test: str) -> str:
    """The name of the asymptotic test that replaces the permutation test ``test``."""
    if test.startswith("permutation"):
        return "asymptotic chi-square" + test[len("permutation"):]
    given = test.partition(" given ")[2] or "the label"
    return f"asymptotic partial chi-square given {given}"


def _effect_size(t: E.StatTask, T: float, probe: str, kind: str, plan: _Plan
                 ) -> tuple[float, str, str]:
    """(effect size, its name, the test) of one probe's statistic ``T``."""
    es = T / t.rank if t.rank > 0 else np.nan
    if probe == "label_association":
        both_cat = kind == "categorical" and plan.classification
        if both_cat and t.rank > 0:
            es = float(np.sqrt(es))
        return es, "Cramér's V" if both_cat else "R² (ranks)", "permutation"
    if probe in _CONDITIONAL and plan.cond.adjusted:
        return plan.cond.partial_r2(t.U, t.D), "partial R²", plan.cond.test_name()
    if probe in _CONDITIONAL or (probe == "error" and plan.classification):
        if plan.classification:
            return es, "partial R²", "permutation within label strata"
        return (partial_r2(t, plan.lbasis), "partial R²",
                "conditional permutation (Berrett et al. 2020)")
    return es, "R²", "permutation"


# ---------------------------------------------------------------------- simulation helper
def conditional_test(scores: np.ndarray, y: np.ndarray, c: np.ndarray, *, task: str, kind: str,
                     n_permutations: int, seed: int) -> tuple[float, float]:
    """The ``output_conditional`` probe alone, without validation: (partial R², p-value).

    The same computation as the corresponding row of :func:`probe_confounders`; used by the
    simulation studies of the test suite, where the public wrapper's overhead would dominate.
    """
    classification = task in ("binary", "multiclass")
    Z = output_matrix(np.asarray(scores, dtype=np.float64), task)
    D = E.metadata_design(c, kind)
    chunks: Any
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
