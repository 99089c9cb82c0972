"""``discover_slices``: failing slices, found on one half of the data and confirmed on the other.

(One module past 450 lines: the lattice search, the greedy selection and the confirmation share
the slice encoding and are only correct together.)

The search is a lattice over conjunctions of conditions (``column = level`` for categorical
columns, ``a <= column < b`` for quantile bins of continuous ones), in the style of SliceLine
(Sagadeeva & Boehm, SIGMOD 2021): slice sizes and error sums of a whole level come from one
matrix product of 0/1 indicator matrices, and a slice below ``min_support`` is never extended
(its children are smaller still). Slices are scored by the one-sided z statistic of their error
against their complement, which grows with the error lift and the square root of the size.

Selection and testing use disjoint halves, so the confirmation p-values are valid whatever the
search did; Benjamini–Hochberg over the candidates carried to the confirmation half controls the
false discovery rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from .._result import Finding, ResultMixin
from .._utils import check_random_state, progress
from ..data._validation import check_positive_int, check_probability
from ..models._labels import step_data
from ..stats import DEFAULT_CI, Z95, bh_adjust, per_sample_loss, wilson_interval
from ._common import MIN_EVENTS, MIN_N, TOO_SMALL, check_floor, model_scores
from ._groups import Coded, code_column

#: one-sided discovery z a slice needs to be carried to the confirmation half (p < 0.05).
Z_DISCOVERY = float(sps.norm.isf(0.05))
#: at most this many slices of one level are extended to the next level (levels >= 3).
MAX_PARENTS = 1000
ERRORS = ("misclassification", "log_loss", "brier", "absolute", "squared")


@dataclass(frozen=True, eq=False)
class SliceResult(ResultMixin):
    """Candidate failing slices, each tested on the confirmation half.

    Attributes
    ----------
    table : DataFrame
        One row per candidate carried to the confirmation half (see :meth:`to_frame`).
    model_name : str
    task : str
    error : str
        The per-sample error that was compared (``"misclassification"`` by default for
        classifiers, ``"absolute"`` residual for regression).
    overall_error : float
        Mean error on the confirmation half.
    n_discovery, n_confirmation : int
        Rows in each half.
    n_searched : int
        Slices evaluated by the lattice search (at least ``min_support`` of the discovery half
        and at least ``min_n`` rows).
    fdr, min_support : float
    max_conditions : int
    params : dict
        What the search was run with (``fdr``, ``min_support``, ``max_conditions``, ``bins``,
        ``error``, ``threshold``, ``max_candidates``, ``random_state``, ``min_n``,
        ``min_events``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> n = 2000
    >>> X = pd.DataFrame({"asthma": rng.integers(0, 2, n), "age": rng.uniform(20, 90, n)})
    >>> y = rng.integers(0, 2, n)
    >>> bad = (X["asthma"] == 1) & (X["age"] >= 70)        # the planted failing slice
    >>> wrong = rng.random(n) < np.where(bad, 0.5, 0.1)
    >>> scores = np.where(wrong, 1 - y, y) * 0.6 + 0.2
    >>> res = discover_slices(None, X, y, scores=scores, random_state=0, verbose=False)
    >>> res.error, res.n_discovery, res.n_confirmation
    ('misclassification', 1000, 1000)
    >>> row = res.table.iloc[0]
    >>> row["rule"].startswith("asthma = 1 AND age >= "), bool(row["confirmed"])
    (True, True)
    """

    table: pd.DataFrame
    model_name: str
    task: str
    error: str
    overall_error: float
    n_discovery: int
    n_confirmation: int
    n_searched: int
    fdr: float
    min_support: float
    max_conditions: int
    params: dict[str, Any] = field(default_factory=dict)
    _columns: tuple[Coded, ...] = field(default=(), repr=False)
    _codes: np.ndarray | None = field(default=None, repr=False)
    _rules: tuple[tuple[tuple[int, int], ...], ...] = field(default=(), repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per candidate slice, confirmed ones first (largest lift first).

        Columns: ``rule``, ``n_conditions``, ``n`` (rows of the confirmation half in the slice),
        ``support`` (its fraction), ``error_rate`` with ``ci_low``/``ci_high`` (Wilson interval
        for misclassification, normal interval otherwise), ``complement_error_rate``, ``lift``
        (error rate / overall error rate), ``p_value`` (one-sided test of slice against
        complement), ``q_value`` (Benjamini–Hochberg over the testable rows), ``confirmed``
        (``q_value <= fdr``), ``n_discovery``, ``error_rate_discovery``, ``z_discovery``,
        ``testable`` and ``note``: a slice below the floor (``min_n`` rows on either half, or
        fewer than ``min_events`` errors on the discovery half for a 0/1 error) keeps its
        error rate but has no interval, p- or q-value, is never confirmed and its ``note``
        says it is too small to test.
        """
        return self.table.copy()

    @property
    def confirmed(self) -> pd.DataFrame:
        """The confirmed slices only."""
        return self.table[self.table["confirmed"]].reset_index(drop=True)

    def mask(self, i: int = 0) -> np.ndarray:
        """Boolean mask over all rows of the audited data for slice ``i`` (row of the table).

        Use it to contrast attributions: ``contrast_attributions(attr, result.mask(0))``.
        """
        if not 0 <= int(i) < len(self._rules):
            raise ValueError(f"i={i!r} is not a row of this result; expected 0 <= i < "
                             f"{len(self._rules)}.")
        m = np.ones(self._codes.shape[0], dtype=bool)
        for col, level in self._rules[int(i)]:
            m &= self._codes[:, col] == level
        return m

    def findings(self) -> list[Finding]:
        """One ``failing_slice`` finding (Tip 9) per confirmed slice: "high" when its error
        is at least twice the overall error and even the lower end of its CI is at least 1.5
        times the overall error (a large and well-measured failure), "medium" otherwise."""
        out = []
        what = "error rate" if self.error == "misclassification" else f"mean {self.error} error"
        for _, r in self.confirmed.iterrows():
            big = r["lift"] >= 2 and r["ci_low"] >= 1.5 * self.overall_error
            out.append(Finding(
                "failing_slice", "high" if big else "medium", 9,
                f"{self.model_name} fails more where {r['rule']}: {what} {r['error_rate']:.3g} "
                f"(95% CI {r['ci_low']:.3g} to {r['ci_high']:.3g}, n = {r['n']}) against "
                f"{r['complement_error_rate']:.3g} elsewhere, {r['lift']:.2g}x the overall "
                f"{self.overall_error:.3g} (q = {r['q_value']:.2g}, confirmed on held-out half).",
                subject=str(r["rule"]), model=self.model_name, domain=str(r["rule"]),
                evidence={k: r[k] for k in ("rule", "n", "support", "error_rate", "ci_low",
                                            "ci_high", "complement_error_rate", "lift",
                                            "p_value", "q_value", "n_discovery")}
                | {"error": self.error, "fdr": self.fdr}))
        return out

    def _extra_dict(self) -> dict[str, Any]:
        return {"model": self.model_name}

    def plot(self, ax: Any = None, *, max_slices: int = 15) -> Any:
        """Slice table as a forest plot: error with CI per candidate, confirmed ones in red."""
        import matplotlib.pyplot as plt

        t = self.table.head(max_slices)
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 0.4 * max(len(t), 1) + 1.4), layout="constrained")
        if len(t) == 0:
            ax.text(0.5, 0.5, "no candidate slice passed the discovery half", ha="center",
                    va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return ax.figure
        ypos = np.arange(len(t))[::-1]
        est = t["error_rate"].to_numpy(dtype=float)
        # a slice too small to test has no interval: its point is drawn without one
        err = np.nan_to_num(np.vstack([est - t["ci_low"].to_numpy(dtype=float),
                                       t["ci_high"].to_numpy(dtype=float) - est]))
        colors = np.where(t["confirmed"].to_numpy(dtype=bool), "#C44E52", "#8C8C8C")
        for k in range(len(t)):
            ax.errorbar(est[k], ypos[k], xerr=err[:, k:k + 1], fmt="o", color=colors[k],
                        capsize=2)
        ax.axvline(self.overall_error, color="grey", ls="--", lw=1, label="overall")
        ax.set_yticks(ypos, [f"{r}  (n={n}, " + (f"q={q:.2g})" if ok else "too small to test)")
                             for r, n, q, ok in zip(t["rule"], t["n"], t["q_value"],
                                                    t["testable"])], fontsize="small")
        label = "error rate" if self.error == "misclassification" else f"mean {self.error} error"
        ax.set_xlabel(f"{label} on the confirmation half (95% CI)")
        ax.set_title(f"Candidate failing slices of {self.model_name} (red: confirmed at "
                     f"FDR {self.fdr:g})")
        return ax.figure


# ============================================================================ search
def _slice_z(cnt: np.ndarray, es: np.ndarray, es2: np.ndarray | None, N: int, E: float,
             E2: float | None) -> np.ndarray:
    """One-sided z of slice error against complement error (pooled two-proportion z for 0/1
    errors, Welch z otherwise). NaN where the slice or its complement is too small."""
    n1 = cnt.astype(float)
    n0 = N - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = es / n1
        m0 = (E - es) / n0
        if es2 is None:
            p = E / N
            se = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n0))
        else:
            v1 = (es2 - n1 * m1**2) / (n1 - 1)
            v0 = ((E2 - es2) - n0 * m0**2) / (n0 - 1)
            se = np.sqrt(np.maximum(v1, 0) / n1 + np.maximum(v0, 0) / n0)
        z = (m1 - m0) / se
    z[(n1 < 2) | (n0 < 2) | ~np.isfinite(z)] = np.nan
    return z


def _lattice(flat: np.ndarray, cond_col: np.ndarray, e: np.ndarray, binary: bool,
             max_conditions: int, min_count: int, *, verbose: bool = False
             ) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray, np.ndarray]:
    """All slices of up to ``max_conditions`` conditions with support >= ``min_count``.

    ``flat`` is ``(n, n_columns)``: the condition index (column offset + level) of each row in
    each coded column. The sizes and error sums of the children of a slice are counted with
    one ``np.bincount`` over that slice's own rows (``O(rows x columns)``, not
    ``O(n x conditions)``), the rows of a slice being those of its rarest condition filtered
    by the others.

    Returns the slices (tuples of condition indices, in increasing column order), their sizes,
    error sums and discovery z on this half.
    """
    N, J = flat.shape
    K = len(cond_col)
    e = np.asarray(e, dtype=np.float64)
    E = float(e.sum())
    E2 = None if binary else float((e**2).sum())
    ravel = flat.ravel()
    cnt1 = np.bincount(ravel, minlength=K).astype(np.float64)
    es1 = np.bincount(ravel, weights=np.repeat(e, J), minlength=K)
    es21 = None if binary else np.bincount(ravel, weights=np.repeat(e**2, J), minlength=K)
    keep = np.flatnonzero(cnt1 >= min_count)
    kept = np.zeros(K, dtype=bool)
    kept[keep] = True
    slices: list[tuple[int, ...]] = [(int(c),) for c in keep]
    cnts = [cnt1[keep]]
    ess = [es1[keep]]
    z_all = [_slice_z(cnt1[keep], es1[keep], None if binary else es21[keep], N, E, E2)]
    parents = slices
    parent_z = z_all[0]
    rows_of: dict[int, np.ndarray] = {}

    def rows(sl: tuple[int, ...]) -> np.ndarray:
        first = min(sl, key=lambda c: cnt1[c])
        if first not in rows_of:
            rows_of[first] = np.flatnonzero(flat[:, cond_col[first]] == first)
        r = rows_of[first]
        for c in sl:
            if c != first:
                r = r[flat[r, cond_col[c]] == c]
        return r

    for _level in progress(range(2, max_conditions + 1), desc="slice search",
                           verbose=verbose and max_conditions > 2):
        if not parents:
            break
        if len(parents) > MAX_PARENTS:  # heuristic cap beyond level 2: extend the worst slices
            order = np.argsort(-np.nan_to_num(parent_z, nan=-np.inf), kind="stable")
            parents = [parents[i] for i in order[:MAX_PARENTS]]
        new_slices, new_cnt, new_es, new_es2 = [], [], [], []
        for sl in parents:
            last = int(cond_col[sl[-1]])
            if last + 1 >= J:
                continue
            r = rows(sl)
            sub = flat[r, last + 1:]
            k = sub.shape[1]
            G = np.bincount(sub.ravel(), minlength=K)
            ok = np.flatnonzero((G >= min_count) & kept)
            if not len(ok):
                continue
            Ge = np.bincount(sub.ravel(), weights=np.repeat(e[r], k), minlength=K)
            new_slices.extend(sl + (int(c),) for c in ok)
            new_cnt.append(G[ok].astype(np.float64))
            new_es.append(Ge[ok])
            if not binary:
                Ge2 = np.bincount(sub.ravel(), weights=np.repeat(e[r] ** 2, k), minlength=K)
                new_es2.append(Ge2[ok])
        if not new_slices:
            break
        cnt = np.concatenate(new_cnt)
        es = np.concatenate(new_es)
        z = _slice_z(cnt, es, None if binary else np.concatenate(new_es2), N, E, E2)
        slices.extend(new_slices)
        cnts.append(cnt)
        ess.append(es)
        z_all.append(z)
        parents, parent_z = new_slices, z
    return slices, np.concatenate(cnts), np.concatenate(ess), np.concatenate(z_all)


def _masks(codes: np.ndarray, cond: np.ndarray, slices: list[tuple[int, ...]]) -> np.ndarray:
    """(n, len(slices)) boolean membership of each slice."""
    cols = np.ascontiguousarray(codes.T)  # one contiguous row per column: fast comparisons
    out = np.empty((len(slices), codes.shape[0]), dtype=bool)
    for j, sl in enumerate(slices):
        m = out[j]
        m[:] = True
        for c in sl:
            col, level = cond[c]
            m &= cols[col] == level
    return out.T


def _select(slices, z, masks_fn, e: np.ndarray, binary: bool, min_count: int,
            max_candidates: int) -> list[int]:
    """Greedy forward selection on the discovery half.

    The slice with the largest z is taken; its rows are then set aside and the z of every
    remaining slice is recomputed on the rows left (its *residual* z), so a slice that only
    looked bad because it overlaps a chosen one is not carried forward. Slices whose residual
    z falls below the discovery threshold are dropped (their own support was checked by the
    search; ``min_count`` is kept in the signature for callers that want a residual floor).
    """
    ok = np.flatnonzero(np.isfinite(z) & (z >= Z_DISCOVERY))
    ok = ok[np.argsort(-z[ok], kind="stable")][: 20 * max_candidates]
    if len(ok) == 0:
        return []
    M = masks_fn([slices[i] for i in ok]).astype(np.float32)
    e32 = e.astype(np.float32)
    free = np.ones(M.shape[0], dtype=np.float32)
    alive = np.ones(len(ok), dtype=bool)
    chosen: list[int] = []
    while alive.any() and len(chosen) < max_candidates:
        cnt = (free @ M).astype(np.float64)
        es = ((free * e32) @ M).astype(np.float64)
        es2 = None if binary else ((free * e32**2) @ M).astype(np.float64)
        N = float(free.sum())
        E = float(free @ e32)
        E2 = None if binary else float(free @ e32**2)
        zr = _slice_z(cnt, es, es2, int(N), E, E2)
        alive &= np.isfinite(zr) & (zr >= Z_DISCOVERY)
        if not alive.any():
            break
        k = int(np.flatnonzero(alive)[np.argmax(zr[alive])])
        k = _most_specific(k, M, free, e32, cnt, es, es2, zr, alive, N, E, E2)
        chosen.append(k)
        alive[k] = False
        free = free * (1 - M[:, k])
    return [int(ok[k]) for k in chosen]


def _most_specific(k, M, free, e32, cnt, es, es2, zr, alive, N, E, E2) -> int:
    """Replace slice ``k`` by a sub-slice that explains its excess error, if there is one.

    A sub-slice ``j`` of ``k`` (every row of ``j`` is in ``k``) explains ``k`` when ``j`` is
    itself significant and ``k`` without ``j``'s rows is not (residual z below the discovery
    threshold). Among such sub-slices the one with the largest z wins; repeated until none.
    """
    binary = es2 is None
    while True:
        inter = (free * M[:, k]) @ M
        sub = alive & (inter >= cnt - 0.5) & (cnt < cnt[k])
        sub[k] = False
        if not sub.any():
            return k
        j = np.flatnonzero(sub)
        rest = _slice_z(cnt[k] - cnt[j], es[k] - es[j],
                        None if binary else es2[k] - es2[j], N - cnt[j], E - es[j],
                        None if binary else E2 - es2[j])
        explains = j[~(rest >= Z_DISCOVERY)]
        if len(explains) == 0:
            return k
        k = int(explains[np.argmax(zr[explains])])


# ============================================================================ function
def discover_slices(
    model: Any,
    X: Any = None,
    y: Any = None,
    *,
    metadata: pd.DataFrame | None = None,
    max_conditions: int = 2,
    min_support: float = 0.02,
    fdr: float = 0.1,
    random_state: Any = None,
    scores: Any = None,
    bins: int = 4,
    error: str = "auto",
    threshold: float = 0.5,
    max_candidates: int = 10,
    model_name: str | None = None,
    min_n: int = MIN_N,
    min_events: int = MIN_EVENTS,
    verbose: bool = True,
) -> SliceResult:
    """Find slices of the data where the model fails, with false-discovery-rate control.

    1. The rows are split at random into a discovery half and a confirmation half.
    2. On the discovery half, a lattice search (SliceLine style) scores every conjunction of up
       to ``max_conditions`` conditions over binned features and metadata columns whose support
       is at least ``min_support`` and at least ``min_n`` rows; a smaller slice is never
       extended. Each slice
       is scored by the one-sided z of its error against its complement.
    3. Up to ``max_candidates`` slices are carried to the confirmation half by greedy forward
       selection: the slice with the largest z first, then, with the rows of the slices already
       chosen set aside, the slice with the largest z on the rows left, as long as that
       residual z exceeds 1.645 (one-sided p < 0.05). A slice that looks bad only because it
       overlaps a worse one is therefore not carried forward.
    4. On the confirmation half each candidate's error is tested against its complement
       (one-sided Fisher exact test for misclassification; one-sided Welch z for continuous
       losses), and Benjamini–Hochberg at ``fdr`` decides which are ``confirmed``. A candidate
       with fewer than ``min_n`` rows on the confirmation half, or (0/1 error) fewer than
       ``min_events`` errors on the discovery half, is kept in the table as too small to test:
       no p- or q-value, never confirmed, left out of the Benjamini–Hochberg family. The floor
       reads only the rows' sizes on the confirmation half, not their errors (the test
       conditions on those sizes), so leaving such a candidate out keeps the FDR control.

    Parameters
    ----------
    model : torch module, estimator, callable or ModelAdapter
        May be ``None`` when ``scores`` is given.
    X : DataFrame, ndarray or AuditData
        Model inputs. Tabular features are searched; for image inputs only ``metadata`` is. An
        :class:`~confoundry.AuditData` is used as it is, with its labels and metadata. May be
        ``None`` with ``scores``: then only ``metadata`` is searched.
    y : array-like of shape (n,)
        Labels (``None`` takes those of an AuditData ``X``).
    metadata : DataFrame, optional
        Columns the model never saw (site, batch, sex ...), searched like features.
    max_conditions : int
        Largest number of conditions in a slice (2 searches every pair exhaustively; above 2,
        only the ``1000`` worst slices of a level are extended).
    min_support : float
        Smallest slice, as a fraction of the discovery half.
    fdr : float
        False discovery rate of the confirmed slices (Benjamini–Hochberg).
    random_state : None, int or Generator
        Seeds the split into halves.
    scores : array, optional
        Precomputed scores of ``model`` on ``X``.
    bins : int
        Quantile bins of continuous columns.
    error : {"auto", "misclassification", "log_loss", "brier", "absolute", "squared"}
        The per-sample error. ``"auto"``: misclassification at ``threshold`` (arg-max for
        multiclass) for classifiers, absolute residual for regression.
    threshold : float
        Decision threshold for binary misclassification.
    max_candidates : int
        Slices carried to the confirmation half (fewer candidates, more power).
    model_name : str, optional
        Display name of the model (default: the model's own name, ``"model"`` without one).
    min_n : int
        Smallest slice, in rows, on each half: the search never scores a smaller one on the
        discovery half, and a candidate with fewer rows on the confirmation half is not tested.
    min_events : int
        For a 0/1 error (misclassification): smallest number of errors of a candidate on the
        discovery half; fewer and it is not tested.
    verbose : bool
        Progress bar over the levels of the search.

    Returns
    -------
    SliceResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> n = 4000
    >>> X = pd.DataFrame({"asthma": rng.integers(0, 2, n), "age": rng.uniform(20, 90, n),
    ...                   "bmi": rng.normal(27, 4, n)})
    >>> y = rng.integers(0, 2, n)
    >>> bad = (X["asthma"] == 1) & (X["age"] >= X["age"].quantile(0.75))
    >>> wrong = rng.random(n) < np.where(bad, 0.45, 0.1)
    >>> scores = np.where(wrong, 1 - y, y) * 0.6 + 0.2
    >>> res = discover_slices(None, X, y, scores=scores, random_state=0, verbose=False)
    >>> res.confirmed.loc[0, "rule"]
    'asthma = 1 AND age >= 72.82'
    """
    data = step_data(X, y, metadata)
    max_conditions = check_positive_int(max_conditions, "max_conditions")
    min_support = check_probability(min_support, "min_support")
    fdr = check_probability(fdr, "fdr")
    threshold = check_probability(threshold, "threshold")
    bins = check_positive_int(bins, "bins", minimum=2)
    max_candidates = check_positive_int(max_candidates, "max_candidates")
    min_n, min_events = check_floor(min_n, min_events)
    if error == "auto":
        error = "absolute" if data.task == "regression" else "misclassification"
    if error not in ERRORS:
        raise ValueError(f"error={error!r} is not valid; expected 'auto' or one of {ERRORS}.")
    rng = check_random_state(random_state)
    s, model_name = model_scores(model, X, data, scores, model_name=model_name)
    e = per_sample_loss(np.asarray(data.y), s, data.task, error, threshold=threshold)
    binary = error == "misclassification"

    columns = _coded_columns(data, bins)
    if not columns:
        raise ValueError("X has no tabular feature and metadata is None; expected columns to "
                         "define slices by.")
    codes = np.column_stack([c.codes for c in columns]).astype(np.int32)
    cond = np.array([(j, lv) for j, c in enumerate(columns) for lv in range(c.n_levels)])
    cond_col = cond[:, 0]
    labels = [columns[j].labels[lv] for j, lv in cond]

    n = data.n_samples
    perm = rng.permutation(n)
    disc, conf = np.sort(perm[: n // 2]), np.sort(perm[n // 2:])
    offsets = np.r_[0, np.cumsum([c.n_levels for c in columns])[:-1]].astype(np.int32)
    flat = codes[disc] + offsets[None, :]
    min_count = max(2, int(np.ceil(min_support * len(disc))), min_n)
    slices, cnt, es, z = _lattice(flat, cond_col, e[disc], binary, max_conditions, min_count,
                                  verbose=verbose)
    del flat
    chosen = _select(slices, z, lambda sl: _masks(codes[disc], cond, sl), e[disc], binary,
                     min_count, max_candidates)
    cand = [slices[i] for i in chosen]

    # ---- confirmation half
    ec = e[conf]
    Nc, Ec = len(conf), float(ec.sum())
    M = _masks(codes[conf], cond, cand).astype(np.float64)
    n1 = M.sum(axis=0)
    s1 = ec @ M
    n0 = Nc - n1
    n_disc = cnt[chosen] if chosen else np.zeros(0)
    notes = [_slice_note(int(nd), int(nc), float(ed), binary, min_n, min_events)
             for nd, nc, ed in zip(n_disc, n1, es[chosen] if chosen else [])]
    testable = np.array([not t for t in notes], dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = s1 / n1
        comp = (Ec - s1) / n0
        if binary:
            p = sps.hypergeom.sf(s1 - 1, Nc, Ec, n1)
            lo, hi = wilson_interval(s1, n1)
        else:
            s2 = (ec**2) @ M
            zc = _slice_z(n1, s1, s2, Nc, Ec, float((ec**2).sum()))
            p = sps.norm.sf(zc)
            sd = np.sqrt(np.maximum((s2 - n1 * rate**2) / (n1 - 1), 0))
            half = Z95 * sd / np.sqrt(n1)
            lo, hi = rate - half, rate + half
        overall = Ec / Nc
        lift = rate / overall if overall > 0 else np.full_like(rate, np.nan)
    p = np.where(testable, p, np.nan)
    lo, hi = np.where(testable, lo, np.nan), np.where(testable, hi, np.nan)
    q = bh_adjust(p) if len(p) else p
    table = pd.DataFrame({
        "rule": [" AND ".join(labels[c] for c in sl) for sl in cand],
        "n_conditions": [len(sl) for sl in cand],
        "n": n1.astype(int), "support": n1 / Nc, "error_rate": rate, "ci_low": lo,
        "ci_high": hi, "complement_error_rate": comp, "lift": lift, "p_value": p,
        "q_value": q, "confirmed": (q <= fdr) & testable,
        "n_discovery": cnt[chosen].astype(int) if chosen else np.array([], dtype=int),
        "error_rate_discovery": (es[chosen] / cnt[chosen]) if chosen else np.array([]),
        "z_discovery": z[chosen] if chosen else np.array([]),
        "testable": testable, "note": np.array(notes, dtype=object),
    })
    order = np.lexsort((table["p_value"].to_numpy(),
                        -np.where(table["confirmed"], table["lift"], 0.0),
                        ~table["confirmed"].to_numpy()))
    table = table.iloc[order].reset_index(drop=True)
    rules = tuple(tuple((int(cond[c][0]), int(cond[c][1])) for c in cand[i]) for i in order)
    params = {"fdr": fdr, "min_support": min_support, "max_conditions": max_conditions,
              "bins": bins, "error": error, "threshold": threshold,
              "max_candidates": max_candidates, "ci": DEFAULT_CI, "min_n": min_n,
              "min_events": min_events,
              "random_state": random_state if random_state is None
              or isinstance(random_state, (int, np.integer)) else type(random_state).__name__}
    return SliceResult(
        table=table, model_name=model_name, task=data.task, error=error,
        overall_error=float(overall), n_discovery=len(disc), n_confirmation=Nc,
        n_searched=len(slices), fdr=fdr, min_support=min_support,
        max_conditions=max_conditions, params=params, _columns=tuple(columns), _codes=codes,
        _rules=rules)


def _slice_note(n_disc: int, n_conf: int, errors_disc: float, binary: bool, min_n: int,
                min_events: int) -> str:
    """Why a candidate is too small to test (``""`` when it is not): rows on each half, and
    for a 0/1 error the errors on the discovery half."""
    for half, n in (("discovery", n_disc), ("confirmation", n_conf)):
        if n < min_n:
            return f"{TOO_SMALL}: n = {n} < min_n = {min_n} on the {half} half"
    if binary and errors_disc < min_events:
        return (f"{TOO_SMALL}: {int(round(errors_disc))} errors < min_events = {min_events} "
                "on the discovery half")
    return ""


def _coded_columns(data: Any, bins: int) -> list[Coded]:
    cols: list[Coded] = []
    names: set[str] = set()
    if data.is_tabular:
        for f in data.feature_names:
            c = code_column(f, data.X[f].to_numpy(), data.feature_kinds[f], bins)
            if c.n_levels > 1:
                cols.append(c)
                names.add(f)
    if data.metadata is not None:
        for m in data.metadata.columns:
            label = m if m not in names else f"{m} (metadata)"
            c = code_column(label, data.metadata[m], data.metadata_kinds[m], bins)
            if c.n_levels > 1:
                cols.append(c)
    return cols
