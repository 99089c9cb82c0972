"""``confounder_pathways``: which inputs carry a site or a batch into the model's outputs?

A significant conditional probe says *that* the outputs depend on a metadata column beyond the
label; this says *how*. The function runs in phases: validate (``_setup``), score the model
and the baselines once, test every metadata column's conditional effect with its bootstrap CI
and the baselines' (``_totals``), trace the significant columns through the features
(``_trace``: remove the column's information from each feature, re-score, permute, bootstrap),
then judge and tabulate (``_pathway_summary.summarise``). The statistics live in
``_pathway_stats``. One module past 450 lines: the phases pass the ``_Setup``, ``_Totals``
and ``_Trace`` records along and read best in call order; the arithmetic is elsewhere.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._utils import check_random_state, int_seed, progress
from ..data import AuditData, ensure_data
from ..data._validation import check_positive_int, check_probability, describe
from ..models import as_model
from ..stats import (
    DEFAULT_CI,
    DEFAULT_FDR,
    bh_adjust,
    bootstrap_weights,
    percentile_ci,
)
from . import _engine as E
from ._conditioning import Conditioning, build_conditioning, check_adjust_for
from ._outputs import check_scores
from ._pathway_result import PathwayResult
from ._pathway_stats import (
    OutputTransform,
    bootstrap_effects,
    permutation_p_values,
    remove_information,
    weighted_effects,
)
from ._pathway_summary import DERIVED_THRESHOLD, summarise
from ._probe import check_probe_metadata

#: rows of X the model's attribution (``uses``) is computed on when none is given.
N_ATTRIBUTION = 512
#: rows the input-predictability model is cross-validated on (a seeded sample).
DERIVED_MAX_ROWS = 3000
#: conditional-permutation draws are kept in memory (reused by the tracing) up to this size.
_MAX_CACHED_DRAWS = 20_000_000


def confounder_pathways(
    model: Any,
    X: Any,
    y: Any = None,
    metadata: Any = None,
    *,
    attribution: Any = None,
    adjust_for: Any = None,
    baselines: Any = None,
    columns: Any = None,
    features: Any = None,
    top_k: int = 3,
    n_permutations: int = 1000,
    n_boot: int = 200,
    fdr: float = DEFAULT_FDR,
    random_state: Any = None,
    verbose: bool = True,
) -> PathwayResult:
    """Which input features carry a metadata column into the model's outputs, and how much of
    the outputs' dependence on it goes through each?

    For every metadata column whose conditional output probe (outputs ⟂ column | label, as in
    :func:`probe_confounders`) is significant - or every column named in ``columns`` - and
    every candidate feature:

    ``carries``
        partial R² of the feature's ranks on the column given the label (and ``adjust_for``),
        tested with the probe's permutation scheme, BH-corrected over the features.
    ``uses``
        the feature's share of the model's mean absolute attribution (``attribution``, or
        :func:`confoundry.attribute` on a seeded sample of 512 rows: integrated gradients for a
        torch model, feature ablation otherwise).
    ``mediated_share``
        how much of the outputs' dependence on the column disappears when the column's
        information is removed from that feature alone: within each label (x ``adjust_for``)
        stratum the feature's values in every level of the column are mapped onto the
        stratum's pooled quantiles (a continuous column: its regression on the column's ranks
        is subtracted), the model is re-scored once, and the share is ``1 - <e_removed,
        e_full> / <e_full, e_full>``, where ``e`` is the vector of the column's effects on the
        (label-residualised) output ranks, both corrected for their null expectation. Shares
        are additive over paths (two paths of equal weight get one half each), and their
        bootstrap CI re-weights rows without re-scoring. Then the top-k features replaced
        together, and every candidate feature replaced at once: what remains is the part of
        the effect that the features do not carry.

    Each column gets a verdict: ``"through features"`` (naming the features whose share CI
    is above 0 and that carry the column, with their shares), ``"direct"`` (the effect left
    when every candidate feature is replaced is significant and at least half the total, or
    the inputs are not tabular: the model uses something the features do not explain),
    ``"explained by adjust_for"`` (significant given the label, not given the label and the
    ``adjust_for`` covariates) or ``"no effect"`` (a column named in ``columns`` without a
    significant effect). A column that X predicts almost perfectly (cross-validated AUROC or
    R² >= 0.95) is marked as derived from the inputs. With ``baselines``, the conditional probe
    also runs on each baseline's outputs, and the paired bootstrap difference says whether the
    model depends on the column more than models restricted to the same features.

    Parameters
    ----------
    model : torch.nn.Module, estimator, callable or ModelAdapter
        Anything :func:`confoundry.as_model` accepts; it is called once on X, then once per
        replaced feature (batched).
    X : DataFrame, ndarray, tensor or AuditData
        The model inputs (an :class:`~confoundry.AuditData` carries ``y`` and ``metadata``).
        Feature pathways need tabular inputs; for images or sequences every effect is
        ``"direct"``.
    y : array-like of shape (n,)
        True labels or targets.
    metadata : DataFrame or Series
        Site, batch, scanner, ...: one column per variable, one row per sample.
    attribution : AttributionResult or Series, optional
        The model's attributions on (a sample of) X, or global importances per feature; the
        ``uses`` column. Default: computed.
    adjust_for : str or list of str, optional
        Metadata columns considered legitimate (age, sex, ...): every conditional statistic
        conditions on them too (see :func:`probe_confounders`), they are not probed, and a
        column whose effect they explain gets the verdict ``"explained by adjust_for"``.
    baselines : mapping or BaselinesResult, optional
        ``{name: fitted model}`` (anything :func:`~confoundry.as_model` accepts) or the result of
        :func:`~confoundry.fit_baselines`: the reference models fed the same features.
    columns : str or list of str, optional
        Metadata columns to trace whatever their probe says (default: the significant ones).
    features : list of str, optional
        The candidate features (default: every column of X). A feature the model reads but
        that is left out here is not removed: the effect it carries shows as ``"direct"``.
    top_k : int
        How many features (largest individual shares) are replaced together.
    n_permutations : int
        Permutations (or conditional-permutation draws) per test.
    n_boot : int
        Bootstrap replicates of every CI (rows resampled, stratified by class).
    fdr : float
        False discovery rate of every ``significant`` / ``q`` decision.
    random_state : None, int or numpy Generator
    verbose : bool
        Show a progress bar over the re-scoring.

    Returns
    -------
    PathwayResult

    Examples
    --------
    The batch shifts one assay value; the model uses it (and the label signal in age):

    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> n = 1000
    >>> batch = rng.integers(0, 2, n)
    >>> y = rng.integers(0, 2, n)
    >>> X = pd.DataFrame({"assay": y + rng.normal(size=n) + 1.5 * batch,
    ...                   "age": y + rng.normal(size=n)})
    >>> model = LogisticRegression().fit(X, y)
    >>> res = confounder_pathways(model, X, y, pd.DataFrame({"batch": batch}),
    ...                           n_permutations=200, n_boot=100, random_state=0,
    ...                           verbose=False)
    >>> row = res.row("batch")
    >>> row["verdict"], row["through"], bool(row["significant"])
    ('through features', ['assay'], True)
    >>> top = res.pathways("batch").iloc[0]
    >>> top["feature"], bool(top["share_ci_low"] < 1 < top["share_ci_high"])
    ('assay', True)
    """
    n_permutations = check_positive_int(n_permutations, "n_permutations")
    n_boot = check_positive_int(n_boot, "n_boot")
    top_k = check_positive_int(top_k, "top_k")
    fdr = check_probability(fdr, "fdr")
    st = _setup(model, X, y, metadata, attribution, adjust_for, baselines, columns, features,
                random_state)
    tot = _totals(st, n_permutations, n_boot, fdr)
    traced = st.columns if st.columns is not None else [
        c for c in st.probed if tot.sig[c] or (st.cond0 is not None and tot.sig0[c])]
    explained = {c for c in traced if st.cond0 is not None and tot.sig0[c] and not tot.sig[c]}
    to_trace = [c for c in traced if c not in explained] if st.data.is_tabular else []
    traces: dict[str, _Trace] = {}
    uses = _uses(st) if to_trace else None
    bar = progress(total=len(to_trace) * (len(st.features) + 2), desc="confounder pathways",
                   verbose=verbose)
    try:
        for c in to_trace:
            traces[c] = _trace(st, tot, c, top_k, n_permutations, n_boot, bar, fdr)
    finally:
        bar.close()
    derived = {c: _input_predictability(st, c) for c in traced if st.data.is_tabular}
    return summarise(st, tot, traces, uses, derived, traced, explained, top_k, fdr,
                     n_permutations, n_boot, random_state)


# ---------------------------------------------------------------------- set-up
@dataclass
class _Setup:
    """Validated inputs, the scored model and baselines, what the probes condition on."""

    data: AuditData
    meta: pd.DataFrame             # the probed metadata columns
    kinds: dict[str, str]
    probed: list[str]
    columns: list[str] | None      # the columns the user asked to trace
    features: list[str]
    feature_pos: list[int]
    adjust: tuple[str, ...]
    cond: Conditioning             # label (+ adjust_for)
    cond0: Conditioning | None     # label alone, when adjust_for is given
    adapter: Any
    scores: np.ndarray
    transform: OutputTransform
    baselines: dict[str, np.ndarray]
    attribution: Any
    seed: int
    model_input_frame: bool

    @property
    def n(self) -> int:
        return self.data.n_samples

    def column_seed(self, what: str, column: str) -> int:
        """A seed of its own per (phase, column): tracing one column more or less never
        shifts another's random numbers."""
        ss = np.random.SeedSequence([self.seed, zlib.crc32(what.encode()),
                                     zlib.crc32(column.encode())])
        return int(ss.generate_state(1)[0])

    def model_rows(self, values: np.ndarray) -> Any:
        """Rows of X (a float copy, features possibly replaced) as the model expects them."""
        if not self.model_input_frame:
            return values
        return pd.DataFrame(values, index=self.data.X.index, columns=self.data.feature_names)

    def score(self, values: np.ndarray) -> np.ndarray:
        d = self.data
        return check_scores(self.adapter.predict_scores(self.model_rows(values)), d.n_samples,
                            d.task, None if d.classes is None else len(d.classes))


def _setup(model: Any, X: Any, y: Any, metadata: Any, attribution: Any, adjust_for: Any,
           baselines: Any, columns: Any, features: Any, random_state: Any) -> _Setup:
    if X is None:
        raise ValueError("X is None; expected the model inputs (DataFrame, array, tensor or "
                         "AuditData).")
    given = isinstance(X, AuditData)
    if y is None and not (given and X.y is not None):
        raise ValueError("y is None; expected the true labels (the conditional probes need "
                         "them).")
    if metadata is None and not (given and X.metadata is not None):
        raise ValueError("metadata is None; expected a DataFrame of site / batch / scanner ... "
                         "columns, one row per sample.")
    data = ensure_data(X, y, metadata)
    adjust = check_adjust_for(adjust_for, data.metadata)
    probed = [c for c in data.metadata.columns if c not in adjust]
    kinds = dict(data.metadata_kinds)
    check_probe_metadata(data.metadata[probed], {c: kinds[c] for c in probed})
    cols = _check_names(columns, "columns", probed, "metadata column", adjust)
    feats = (_check_names(features, "features", data.feature_names, "feature of X", ())
             if data.is_tabular else [])
    if data.is_tabular and feats is None:
        feats = list(data.feature_names)
    if features is not None and not data.is_tabular:
        raise ValueError(f"features={describe(features)} was given but X is not tabular (shape "
                         f"{tuple(data.X.shape)}); feature pathways need a table of features.")
    rng = check_random_state(random_state)
    seed = int_seed(rng)
    classification = data.task in ("binary", "multiclass")
    covs = data.metadata[list(adjust)] if adjust else None
    cond = build_conditioning(np.asarray(data.y), classification, covs, kinds)
    cond0 = build_conditioning(np.asarray(data.y), classification, None, {}) if adjust else None
    adapter = as_model(model, task=data.task)
    from ..attribution._common import wants_frame

    frame = wants_frame(data)
    st = _Setup(data, data.metadata[probed], kinds, probed, cols, feats or [],
                [data.feature_names.index(f) for f in feats or []], adjust, cond, cond0,
                adapter, np.empty(0), OutputTransform(data.task), {}, attribution, seed, frame)
    X0 = data.values.copy() if data.is_tabular else data.X
    st.scores = st.score(X0) if data.is_tabular else check_scores(
        adapter.predict_scores(data), data.n_samples, data.task,
        None if data.classes is None else len(data.classes))
    st.transform = OutputTransform.fit(st.scores, data.task)
    st.baselines = _score_baselines(baselines, st, X0)
    _check_attribution(attribution, st)
    return st


def _check_names(value: Any, name: str, allowed: list[str], what: str,
                 adjust: tuple[str, ...]) -> list[str] | None:
    if value is None:
        return None
    vals = [value] if isinstance(value, str) else value
    if not isinstance(vals, (list, tuple, pd.Index)) or not all(isinstance(v, str)
                                                                 for v in vals):
        raise TypeError(f"{name}={describe(value)} is not valid; expected a {what} name or a "
                        "list of them.")
    if not len(vals):
        raise ValueError(f"{name}={list(vals)!r} is empty; expected at least one {what}.")
    for v in vals:
        if v in adjust:
            raise ValueError(f"{name}={describe(value)} names {v!r}, which is in adjust_for; "
                             "expected columns to probe (adjust_for columns are conditioned "
                             "on, not traced).")
        if v not in allowed:
            raise ValueError(f"{name}={describe(value)} names {v!r}, which is not a {what}; "
                             f"expected names among {describe(allowed, 200)}.")
    return list(dict.fromkeys(vals))


def _score_baselines(baselines: Any, st: _Setup, X0: Any) -> dict[str, np.ndarray]:
    if baselines is None:
        return {}
    if not isinstance(baselines, Mapping):
        raise TypeError(f"baselines has type {type(baselines).__name__}; expected a mapping "
                        "name -> fitted model, or the result of fit_baselines.")
    out = {}
    for name, m in baselines.items():
        try:
            adapter = as_model(m, task=st.data.task, name=str(name))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"baselines[{name!r}]: {exc}") from None
        rows = st.model_rows(X0) if st.data.is_tabular else st.data
        d = st.data
        out[str(name)] = check_scores(adapter.predict_scores(rows), d.n_samples, d.task,
                                      None if d.classes is None else len(d.classes))
    return out


def _check_attribution(attribution: Any, st: _Setup) -> None:
    if attribution is None:
        return
    from .._explanation import AttributionResult

    if isinstance(attribution, AttributionResult):
        if not attribution.is_tabular:
            raise ValueError(f"attribution has values of shape {attribution.values.shape}; "
                             "expected tabular (n, d) attributions of the features.")
        names = list(attribution.feature_names)
    elif isinstance(attribution, pd.Series):
        names = [str(i) for i in attribution.index]
    else:
        raise TypeError(f"attribution has type {type(attribution).__name__}; expected an "
                        "AttributionResult (confoundry.attribute) or a Series of global "
                        "importances indexed by feature.")
    missing = [f for f in st.features if f not in names]
    if missing:
        raise ValueError(f"attribution has no values for the features {describe(missing)}; "
                         f"expected one per candidate feature (it has {describe(names)}).")


# ---------------------------------------------------------------------- total effects
@dataclass
class _Column:
    """One metadata column's design, residualised, and its null draws."""

    values: np.ndarray
    kind: str
    D: np.ndarray
    Dr: np.ndarray
    A: np.ndarray
    rank: int
    draws: Any  # a list of (b, n) blocks, or a function giving a fresh iterator


@dataclass
class _Totals:
    """Conditional effect of the model (and baselines) on every probed column."""

    columns: dict[str, _Column] = field(default_factory=dict)
    effect: dict[str, np.ndarray] = field(default_factory=dict)     # (1 + n_baselines,)
    p: dict[str, np.ndarray] = field(default_factory=dict)
    boot: dict[str, np.ndarray] = field(default_factory=dict)       # (B, 1 + n_baselines)
    q: dict[str, float] = field(default_factory=dict)
    sig: dict[str, bool] = field(default_factory=dict)
    effect0: dict[str, float] = field(default_factory=dict)
    p0: dict[str, float] = field(default_factory=dict)
    q0: dict[str, float] = field(default_factory=dict)
    sig0: dict[str, bool] = field(default_factory=dict)
    q_baselines: dict[str, np.ndarray] = field(default_factory=dict)


def _column(st: _Setup, c: str, cond: Conditioning, n_permutations: int) -> _Column:
    values = st.meta[c].to_numpy()
    kind = st.kinds[c]
    D = E.metadata_design(values, kind)
    Dr = cond.residualize(D)
    A = np.linalg.pinv(Dr.T @ Dr, hermitian=True)
    chunk = int(max(1, min(n_permutations, E.MAX_CELLS // max(st.n * D.shape[1], 1))))
    seed = st.column_seed("permutations", c)
    y = np.asarray(st.data.y)

    def draws() -> Any:
        return cond.metadata_permutations(values, kind, y, n_permutations, seed, chunk)

    cache = not cond.classification and st.n * n_permutations <= _MAX_CACHED_DRAWS
    return _Column(values, kind, D, Dr, A, int(np.linalg.matrix_rank(Dr)),
                   list(draws()) if cache else draws)


def _iter_draws(col: _Column) -> Any:
    return iter(col.draws) if isinstance(col.draws, list) else col.draws()


def _weights(st: _Setup, n_boot: int, c: str) -> Any:
    strata = E.stratum_codes(st.data.y) if st.cond.classification else None
    return bootstrap_weights(st.n, n_boot, strata=strata,
                             random_state=st.column_seed("bootstrap", c))


def _outputs_R(cond: Conditioning, st: _Setup, scores: list[np.ndarray]) -> np.ndarray:
    """Residualised outputs (n, O, d) in the full model's coordinates."""
    return np.stack([cond.residualize(st.transform(s)) for s in scores], axis=1)


def _totals(st: _Setup, n_permutations: int, n_boot: int, fdr: float) -> _Totals:
    tot = _Totals()
    scores = [st.scores, *st.baselines.values()]
    for c in st.probed:
        col = _column(st, c, st.cond, n_permutations)
        tot.columns[c] = col
        R = _outputs_R(st.cond, st, scores)
        U = [E.orthonormal(R[:, o, :], E.MAX_COMPONENTS) for o in range(R.shape[1])]
        _, tot.p[c], _ = permutation_p_values(U, col.D, col.A, _iter_draws(col))
        eff = weighted_effects(np.ones((1, st.n)), col.Dr, R, st.cond.n_params, col.rank)
        tot.effect[c] = eff.effect[0]
        tot.boot[c] = bootstrap_effects(_weights(st, n_boot, c), col.Dr, R, st.cond.n_params,
                                        col.rank).effect
        if st.cond0 is not None:
            col0 = _column(st, c, st.cond0, n_permutations)
            R0 = _outputs_R(st.cond0, st, [st.scores])
            U0 = [E.orthonormal(R0[:, 0, :], E.MAX_COMPONENTS)]
            _, p0, _ = permutation_p_values(U0, col0.D, col0.A, _iter_draws(col0))
            tot.p0[c] = float(p0[0])
            tot.effect0[c] = float(weighted_effects(np.ones((1, st.n)), col0.Dr, R0,
                                                    st.cond0.n_params, col0.rank).effect[0, 0])
    q = bh_adjust(np.array([tot.p[c][0] for c in st.probed], dtype=float))
    tot.q = dict(zip(st.probed, map(float, q)))
    tot.sig = {c: bool(tot.q[c] < fdr) for c in st.probed}
    if st.cond0 is not None:
        q0 = bh_adjust(np.array([tot.p0[c] for c in st.probed], dtype=float))
        tot.q0 = dict(zip(st.probed, map(float, q0)))
        tot.sig0 = {c: bool(tot.q0[c] < fdr) for c in st.probed}
    if st.baselines:
        pb = np.array([tot.p[c][1:] for c in st.probed], dtype=float)
        qb = bh_adjust(pb.ravel()).reshape(pb.shape)
        tot.q_baselines = dict(zip(st.probed, qb))
    return tot


# ---------------------------------------------------------------------- tracing
@dataclass
class _Trace:
    """The pathways of one metadata column."""

    share: np.ndarray          # (F,) observed mediated share of each feature alone
    share_ci: np.ndarray       # (F, 2)
    effect_without: np.ndarray  # (F,)
    top: list[int]
    top_share: float
    top_ci: tuple[float, float]
    remaining: float
    remaining_ci: tuple[float, float]
    remaining_p: float
    carries: np.ndarray        # (F,)
    carries_ci: np.ndarray     # (F, 2)
    carries_p: np.ndarray      # (F,)


def _trace(st: _Setup, tot: _Totals, c: str, top_k: int, n_permutations: int, n_boot: int,
           bar: Any, fdr: float = DEFAULT_FDR) -> _Trace:
    col = tot.columns[c]
    cond = st.cond
    X0 = st.data.values.copy()
    pos = st.feature_pos
    discrete = np.array([st.data.feature_kinds.get(f) != "continuous" for f in st.features])
    rng = np.random.default_rng(st.column_seed("removal", c))
    Xt = remove_information(X0[:, pos], col.values, col.kind, cond.cells, discrete, rng)

    def rescore(js: list[int]) -> np.ndarray:
        Xw = X0.copy()
        Xw[:, [pos[j] for j in js]] = Xt[:, js]
        return st.score(Xw)

    F = len(pos)
    singles = []
    for j in range(F):
        singles.append(rescore([j]))
        bar.update(1)
    s_all = rescore(list(range(F)))
    bar.update(1)
    R = _outputs_R(cond, st, [st.scores, *singles, s_all])
    ones = np.ones((1, st.n))
    obs = weighted_effects(ones, col.Dr, R, cond.n_params, col.rank)
    share_obs = obs.share()[0]
    # the features' own association with the column (carries), as 1-D outputs, tested first:
    # the top-k are chosen among the features that carry the column (a feature that carries
    # nothing can mediate nothing; a share there is the noise of the removal)
    Rc = np.stack([cond.residualize(E.standard_ranks(X0[:, p])[:, None]) for p in pos], axis=1)
    U = [_unit(Rc[:, j, 0]) for j in range(F)]
    _, p_c, _ = permutation_p_values(U, col.D, col.A, _iter_draws(col))
    carriers = bh_adjust(np.asarray(p_c, dtype=float)) < fdr
    rank_by = np.where(carriers, np.nan_to_num(share_obs[1:F + 1], nan=-np.inf), -np.inf)
    order = np.argsort(-rank_by, kind="stable")
    top = [int(j) for j in order[:top_k] if carriers[j]] or [int(order[0])]
    s_top = s_all if len(top) == F else rescore(top)
    bar.update(1)
    R = np.concatenate([R, _outputs_R(cond, st, [s_top])], axis=1)   # full, F singles, all, top
    obs_top = weighted_effects(ones, col.Dr, R[:, [0, F + 2]], cond.n_params, col.rank)
    U += [E.orthonormal(R[:, o, :], E.MAX_COMPONENTS) for o in (F + 1, F + 2)]
    _, p, _ = permutation_p_values(U, col.D, col.A, _iter_draws(col))
    boot = bootstrap_effects(_weights(st, n_boot, c), col.Dr, R, cond.n_params, col.rank)
    boot_c = bootstrap_effects(_weights(st, n_boot, c), col.Dr, Rc, cond.n_params, col.rank)
    carries_obs = weighted_effects(ones, col.Dr, Rc, cond.n_params, col.rank).effect[0]
    shares = boot.share()
    lo, hi = percentile_ci(shares, DEFAULT_CI, axis=0)
    clo, chi = percentile_ci(boot_c.effect, DEFAULT_CI, axis=0)
    return _Trace(
        share=share_obs[1:F + 1], share_ci=np.column_stack([lo[1:F + 1], hi[1:F + 1]]),
        effect_without=obs.effect[0, 1:F + 1], top=top,
        top_share=float(obs_top.share()[0, 1]), top_ci=(float(lo[F + 2]), float(hi[F + 2])),
        remaining=float(1 - share_obs[F + 1]),
        remaining_ci=(float(1 - hi[F + 1]), float(1 - lo[F + 1])),
        remaining_p=float(p[F]), carries=carries_obs,
        carries_ci=np.column_stack([clo, chi]), carries_p=p[:F])


def _unit(v: np.ndarray) -> np.ndarray:
    """``v`` as a unit-norm column (no column for a constant: nothing to test)."""
    nrm = float(np.linalg.norm(v))
    return (v / nrm)[:, None] if nrm > 0 else np.zeros((len(v), 0))


# ---------------------------------------------------------------------- uses, derived
def _uses(st: _Setup) -> dict[str, Any]:
    """Share of the mean absolute attribution per candidate feature, with a bootstrap CI over
    the attributed rows."""
    a = st.attribution
    method = None
    if a is None:
        from ..attribution import attribute

        rng = np.random.default_rng(st.column_seed("attribution", ""))
        rows = np.sort(rng.choice(st.n, size=min(N_ATTRIBUTION, st.n), replace=False))
        method = "integrated_gradients" if st.adapter.is_torch else "feature_ablation"
        try:
            a = attribute(st.adapter, st.data.subset(rows), method=method,
                          random_state=st.column_seed("attribution", "method"), verbose=False)
        except Exception as exc:  # pathways do not need it: say so, and go on without
            warnings.warn(f"confounder_pathways could not attribute the model ({method}: "
                          f"{type(exc).__name__}: {exc}); 'uses' is left empty. Pass "
                          "attribution= to provide it.", RuntimeWarning, stacklevel=3)
            return {"share": np.full(len(st.features), np.nan),
                    "ci": np.full((len(st.features), 2), np.nan), "n": 0, "method": method}
    if isinstance(a, pd.Series):
        imp = np.abs(a.astype(float))
        share = (imp / imp.sum()).reindex(st.features).to_numpy(dtype=float)
        return {"share": share, "ci": np.full((len(st.features), 2), np.nan), "n": None,
                "method": "given importances"}
    vals = np.abs(np.asarray(a.values, dtype=np.float64))
    idx = [list(a.feature_names).index(f) for f in st.features]
    share = vals.mean(axis=0)[idx] / max(vals.mean(axis=0).sum(), 1e-300)
    reps = []
    for W in bootstrap_weights(len(vals), 200, random_state=st.column_seed("uses", "")):
        m = W @ vals
        reps.append(m[:, idx] / np.maximum(m.sum(axis=1, keepdims=True), 1e-300))
    lo, hi = percentile_ci(np.vstack(reps), DEFAULT_CI, axis=0)
    return {"share": share, "ci": np.column_stack([lo, hi]), "n": len(vals),
            "method": method or a.method}


def _input_predictability(st: _Setup, c: str) -> tuple[float, str]:
    """Cross-validated score of the column from X alone: AUROC (two levels), macro AUROC
    (more) or R² (continuous); a penalised linear model first, extremely randomised trees
    (single-threaded: no OpenMP contention) when that falls short of
    :data:`DERIVED_THRESHOLD`."""
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.metrics import r2_score, roc_auc_score
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    seed = st.column_seed("derived", c) % (2**31 - 1)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(st.n, size=min(DERIVED_MAX_ROWS, st.n), replace=False))
    Xv = st.data.values[rows]
    v = st.meta[c].to_numpy()[rows]
    if st.kinds[c] == "continuous":
        t = np.asarray(v, dtype=np.float64)
        cv = KFold(3, shuffle=True, random_state=seed)
        models = [make_pipeline(StandardScaler(), RidgeCV()),
                  ExtraTreesRegressor(100, min_samples_leaf=3, random_state=seed)]
        best = -np.inf
        for m in models:
            best = max(best, float(r2_score(t, cross_val_predict(m, Xv, t, cv=cv))))
            if best >= DERIVED_THRESHOLD:
                break
        return best, "CV R²"
    codes = E.stratum_codes(v)
    counts = np.bincount(codes)
    if counts.min() < 3:
        return np.nan, "CV AUROC"
    cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    models = [make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
              ExtraTreesClassifier(100, min_samples_leaf=3, random_state=seed)]
    best = -np.inf
    name = "CV AUROC" if len(counts) == 2 else "CV macro AUROC"
    for m in models:
        P = cross_val_predict(m, Xv, codes, cv=cv, method="predict_proba")
        score = (roc_auc_score(codes, P[:, 1]) if len(counts) == 2
                 else roc_auc_score(codes, P, multi_class="ovr", average="macro"))
        best = max(best, float(score))
        if best >= DERIVED_THRESHOLD:
            break
    return best, name
