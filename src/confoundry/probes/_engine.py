"""Permutation engine of the confounder probes: cheap statistics, permuted in (B, n) blocks.

Every output probe reduces to one quantity. ``U`` (n, d) is an orthonormal basis of the output
(ranks of a 1-D score, whitened principal components of multiclass scores or embeddings),
orthogonal to the intercept (marginal tests) or to the label (conditional tests). ``D`` (n, m)
is the design of one metadata column (one-hot levels, or standardised ranks of a continuous
column). The statistic

    T = trace(G' A G),   G = D' U,   A = pinv(D_r' D_r)

is the Pillai trace of a linear probe of the output on the metadata (the sum of squared canonical
correlations): eta² of ranks (a Kruskal-Wallis statistic) for a 1-D output and categorical
metadata, Spearman's rho² for continuous metadata, ``chi²/n`` when both sides are categorical.
``D_r`` is ``D`` centred within the permutation strata, so ``T / min(rank, d)`` is an R² (a
partial R² in the conditional tests). Permuting the metadata is the same as permuting the rows
of ``U`` with the inverse permutation, so one gather ``U[P]`` and one matrix product serve every
metadata column at once, for B permutations.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.stats import rankdata

#: permutation blocks hold at most this many cells (B_chunk * n * d).
MAX_CELLS = 4_000_000
#: at most this many principal components of multi-dimensional outputs / embeddings.
MAX_COMPONENTS = 10
#: quantile bins of a continuous metadata column in the metadata-only straw model.
N_BINS = 10
#: folds of the metadata-only straw model.
N_FOLDS = 5
#: MCMC sweeps of the conditional permutation test (Berrett et al. 2020 use 50).
CPT_STEPS = 50
#: size of the pool of random pairings the CPT sampler draws from at each step.
CPT_POOL = 64
#: from this many rows on (``p_values="auto"``), the p-values of the Pillai-trace probes come
#: from the chi-square limit of the statistic, ``(n - k) T ~ chi²(rank(D_r) d)`` (``k``: the
#: strata, or the intercept and the conditioning basis, that the residualisation spends), and
#: the metadata-only probe draws its label permutations as cell counts (multivariate
#: hypergeometric): no (B, n) permutation matrix at all.
ASYMPTOTIC_N = 200_000


# ------------------------------------------------------------------ bases
def standard_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks of ``x``, centred and scaled to unit variance (ties share a rank)."""
    r = rankdata(x).astype(np.float64)
    r -= r.mean()
    sd = r.std()
    return r / sd if sd > 0 else r


def stratum_codes(labels: np.ndarray) -> np.ndarray:
    """Integer codes 0..S-1 of the levels of ``labels``."""
    return np.unique(labels, return_inverse=True)[1].ravel()


def residualize(Z: np.ndarray, *, strata: np.ndarray | None = None,
                basis: np.ndarray | None = None) -> np.ndarray:
    """Residuals of the columns of ``Z`` after stratum means (or a least-squares fit on ``basis``
    plus an intercept, or the grand mean when neither is given)."""
    Z = np.asarray(Z, dtype=np.float64)
    Z = Z.reshape(len(Z), -1)
    if strata is not None:
        counts = np.bincount(strata).astype(np.float64)
        means = np.stack([np.bincount(strata, weights=Z[:, j]) for j in range(Z.shape[1])], 1)
        means /= np.maximum(counts, 1)[:, None]
        return Z - means[strata]
    if basis is not None:
        X = np.column_stack([np.ones(len(Z)), basis])
        coef, *_ = np.linalg.lstsq(X, Z, rcond=None)
        return Z - X @ coef
    return Z - Z.mean(axis=0)


def orthonormal(Z: np.ndarray, max_dim: int | None = None) -> np.ndarray:
    """Orthonormal basis (n, d) of the column space of ``Z``, largest directions first."""
    Z = Z.reshape(len(Z), -1)
    if Z.shape[1] == 0:
        return Z
    U, s, _ = np.linalg.svd(Z, full_matrices=False)
    if s.size == 0 or s[0] <= 0:
        return U[:, :0]
    keep = s > s[0] * 1e-8 * max(Z.shape)
    U = U[:, keep]
    return U[:, :max_dim] if max_dim is not None else U


def principal_components(Z: np.ndarray, k: int = MAX_COMPONENTS) -> np.ndarray:
    """Scores of the top ``k`` principal components of ``Z`` (n, p), computed from the p x p
    covariance (cheap for the tall matrices of embeddings)."""
    Z = np.asarray(Z, dtype=np.float64).reshape(len(Z), -1)
    Z = Z - Z.mean(axis=0)
    n, p = Z.shape
    if p <= k:
        return Z
    if p <= 4000:
        w, V = np.linalg.eigh(Z.T @ Z)
        V = V[:, ::-1][:, :k]
        return Z @ V
    from sklearn.utils.extmath import randomized_svd

    U, s, _ = randomized_svd(Z, n_components=k, random_state=0)
    return U * s


def label_basis(y: np.ndarray) -> np.ndarray:
    """Flexible basis of a continuous label: standardised ranks and their square and cube."""
    r = standard_ranks(y)
    B = np.column_stack([r, r**2, r**3])
    return (B - B.mean(0)) / np.where(B.std(0) > 0, B.std(0), 1)


def metadata_design(values: np.ndarray, kind: str) -> np.ndarray:
    """One-hot levels of a categorical column, standardised ranks of a continuous one."""
    if kind == "categorical":
        codes = stratum_codes(values)
        D = np.zeros((len(codes), int(codes.max()) + 1))
        D[np.arange(len(codes)), codes] = 1.0
        return D
    return standard_ranks(np.asarray(values, dtype=np.float64))[:, None]


# ------------------------------------------------------------------ statistic
@dataclass
class StatTask:
    """One (output basis, metadata design) pair whose statistic is permuted."""

    key: tuple
    U: np.ndarray          # (n, d) orthonormal, orthogonal to the strata / intercept
    D: np.ndarray          # (n, m) metadata design
    A: np.ndarray          # (m, m) pinv of the centred design's cross-product
    rank: int              # min(rank of centred design, d)
    design_rank: int = 0   # rank of the centred design
    n_eff: int = 0         # rows minus the strata (or the intercept) the centring spends


def make_task(key: tuple, U: np.ndarray, D: np.ndarray, *, strata: np.ndarray | None) -> StatTask:
    """Build a task; ``D`` is centred within ``strata`` (or overall) to compute ``A``."""
    Dr = residualize(D, strata=strata)
    A = np.linalg.pinv(Dr.T @ Dr, hermitian=True)
    r = int(np.linalg.matrix_rank(Dr))
    k = 1 if strata is None else int(strata.max()) + 1
    return StatTask(key, U, D, A, min(r, U.shape[1]) if U.shape[1] else 0, r, len(D) - k)


def chi2_p_value(T: float, n_eff: int, df: int) -> float:
    """Asymptotic p-value of a Pillai trace ``T``: ``P(chi²(df) >= n_eff * T)``.

    Under the null (the output independent of the metadata, given what was residualised)
    ``n_eff T`` tends to chi² with ``df = rank(D_r) * d`` degrees of freedom: the large-sample
    limit of Pillai's trace (for a 1-D output and categorical metadata, the Kruskal-Wallis
    test on the output ranks; for two categorical variables, Pearson's chi-square test).

    Examples
    --------
    >>> round(chi2_p_value(3.84 / 1000, 1000, 1), 3)
    0.05
    """
    from scipy.stats import chi2

    if df <= 0 or not np.isfinite(T):
        return float("nan")
    return float(chi2.sf(max(float(n_eff) * T, 0.0), df))


def partial_chi2(U: np.ndarray, Dr: np.ndarray, n_eff: int) -> float:
    """Asymptotic p-value of the Pillai trace of ``U`` on a design ``Dr`` residualised on what
    the test conditions on (see :func:`chi2_p_value`)."""
    if U.shape[1] == 0:
        return float("nan")
    A = np.linalg.pinv(Dr.T @ Dr, hermitian=True)
    G = Dr.T @ U
    T = float(np.trace(G.T @ A @ G))
    return chi2_p_value(T, n_eff, int(np.linalg.matrix_rank(Dr)) * U.shape[1])


def group_sums_statistic(t: StatTask, codes: np.ndarray, P: np.ndarray) -> np.ndarray:
    """The statistic of a task with a categorical design (level ``codes``) for each row
    permutation in ``P`` (b, n), from per-level sums of the permuted output
    (``np.bincount``): the same numbers as :func:`evaluate`, without the design matrix.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> c = rng.integers(0, 3, 60); D = metadata_design(c, "categorical")
    >>> t = make_task(("a",), orthonormal(residualize(rng.normal(size=(60, 1)))), D, strata=None)
    >>> P = np.stack([rng.permutation(60) for _ in range(4)])
    >>> bool(np.allclose(group_sums_statistic(t, stratum_codes(c), P), evaluate([t], P)[("a",)]))
    True
    """
    b, n = P.shape
    m = t.D.shape[1]
    d = t.U.shape[1]
    flat = (codes[None, :] + m * np.arange(b)[:, None]).ravel()
    G = np.stack([np.bincount(flat, weights=t.U[:, j][P].ravel(), minlength=b * m)
                  .reshape(b, m) for j in range(d)], axis=2)            # (b, m, d)
    return np.einsum("bkd,kl,bld->b", G, t.A, G, optimize=True)


def evaluate(tasks: Sequence[StatTask], P: np.ndarray | None) -> dict[tuple, np.ndarray]:
    """Statistic of every task for each row-permutation in ``P`` (B, n) applied to ``U``
    (``P=None``: the observed statistic, returned with shape (1,)).

    Tasks sharing one ``U`` share one gather ``U[P]`` and one batched product with the stacked
    designs of all their metadata columns.
    """
    out: dict[tuple, np.ndarray] = {}
    by_U: dict[int, list[StatTask]] = {}
    for t in tasks:
        by_U.setdefault(id(t.U), []).append(t)
    for group in by_U.values():
        U = group[0].U
        n, d = U.shape
        b = 1 if P is None else len(P)
        if d == 0:
            for t in group:
                out[t.key] = np.zeros(b)
            continue
        Dall = np.hstack([t.D for t in group])                 # (n, M)
        if d == 1:
            Up = U[:, 0][None, :] if P is None else U[:, 0][P]   # (b, n)
            G = (Up @ Dall)[:, :, None]                          # (b, M, 1)
        else:
            Up = U[:, None, :] if P is None else U[P.T]          # (n, b, d), contiguous
            # (b*d, n) @ (n, M): the orientation BLAS handles fast for a small M
            G = (Up.reshape(n, b * d).T @ Dall).reshape(b, d, -1).transpose(0, 2, 1)
        start = 0
        for t in group:
            m = t.D.shape[1]
            Gt = G[:, start:start + m]
            start += m
            out[t.key] = np.einsum("bkd,kl,bld->b", Gt, t.A, Gt, optimize=True)
    return out


def column_statistics(U: np.ndarray, D: np.ndarray, A: np.ndarray,
                      Q: np.ndarray | None) -> np.ndarray:
    """The statistic ``g_j' A g_j``, ``g_j = D[Q_b]' U[:, j]``, of every column ``j`` of ``U``
    for each row ``Q_b`` of ``Q`` (b, n): row ``i`` of the permuted design is ``D[Q_b[i]]``
    (``Q=None``: the observed design; the result has shape (1, F)).

    The columns of ``U`` are the unit-norm 1-D output bases of many outputs (or orthonormal
    blocks of multi-dimensional ones: a block's Pillai trace is the sum of its columns), all
    orthogonal to what the test conditions on. One gather of the design and one matrix product
    serve every column, for every permutation of the block.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> D = metadata_design(rng.integers(0, 3, 50), "categorical")
    >>> U = orthonormal(residualize(rng.normal(size=(50, 2))))
    >>> t = make_task(("a",), U[:, :1], D, strata=None)
    >>> bool(np.isclose(column_statistics(U, D, t.A, None)[0, 0], evaluate([t], None)[("a",)][0]))
    True
    """
    if Q is None:
        G = (D.T @ U)[None]                                         # (1, m, F)
    else:
        b, n = Q.shape
        m = D.shape[1]
        Dp = np.ascontiguousarray(D[Q].transpose(0, 2, 1)).reshape(b * m, n)
        G = (Dp @ U).reshape(b, m, U.shape[1])                      # (b, m, F)
    return np.einsum("bkf,kl,blf->bf", G, A, G, optimize=True)


# ------------------------------------------------------------------ permutations
def chunk_size(n: int, d: int, n_permutations: int) -> int:
    return int(max(1, min(n_permutations, MAX_CELLS // max(n * max(d, 1), 1))))


def permutation_chunks(n: int, n_permutations: int, *, strata: np.ndarray | None, seed: int,
                       chunk: int) -> Iterator[np.ndarray]:
    """Yield blocks of random permutations (rows of a (b, n) index matrix), within ``strata``
    when given. The sequence depends only on the arguments."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if strata is None else [
        np.flatnonzero(strata == s) for s in np.unique(strata)]
    done = 0
    while done < n_permutations:
        b = min(chunk, n_permutations - done)
        if strata is None:
            yield rng.permuted(np.broadcast_to(np.arange(n, dtype=np.int32), (b, n)), axis=1)
            done += b
            continue
        P = np.empty((b, n), dtype=np.int32)
        for idx in groups:
            if len(idx) == 1:
                P[:, idx] = idx
                continue
            base = np.broadcast_to(np.arange(len(idx), dtype=np.int32), (b, len(idx)))
            local = rng.permuted(base, axis=1)
            P[:, idx] = local if strata is None else idx.astype(np.int32)[local]
        done += b
        yield P


# ------------------------------------------------------------------ conditional permutation test
def cpt_log_odds_factors(c: np.ndarray, kind: str, y: np.ndarray, seed: int,
                         covariates: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Factors ``f`` and ``g`` of metadata and conditioning variables such that the model of the
    metadata given the label (and ``covariates``) has ``log q(c_a | z_i) = f_a . g_i + terms in
    c_a or z_i alone``.

    Continuous metadata: Gaussian with a mean cubic in the label ranks and linear in the
    ``covariates`` columns (f = c / sigma², g = mean; both of shape (n,)). Categorical metadata:
    multinomial logistic regression on the standardised label ranks (f = class coefficients,
    g = label ranks, shape (n,)), plus the ``covariates`` columns when given (then f and g have
    shape (n, 1 + q): the cross term is the dot product of the class coefficients and the
    predictors).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=200); c = y + rng.normal(size=200)
    >>> f, g = cpt_log_odds_factors(c, "continuous", y, seed=0)
    >>> f.shape, g.shape
    ((200,), (200,))
    >>> f, g = cpt_log_odds_factors((c > 0).astype(int), "categorical", y, seed=0,
    ...                             covariates=rng.normal(size=(200, 2)))
    >>> f.shape, g.shape
    ((200, 3), (200, 3))
    """
    basis = label_basis(y)
    cov = None if covariates is None else np.asarray(covariates, dtype=np.float64).reshape(
        len(y), -1)
    if kind == "continuous":
        c = np.asarray(c, dtype=np.float64)
        X = np.column_stack([np.ones(len(c)), basis] + ([] if cov is None else [cov]))
        coef, *_ = np.linalg.lstsq(X, c, rcond=None)
        mu = X @ coef
        var = max(float(np.mean((c - mu) ** 2)), 1e-12)
        return c / var, mu
    from sklearn.linear_model import LogisticRegression

    codes = stratum_codes(c)
    r = basis[:, :1]
    Xc = r if cov is None else np.column_stack([r, cov])
    clf = LogisticRegression(C=10.0, max_iter=500, random_state=seed).fit(Xc, codes)
    coef = clf.coef_
    if coef.shape[0] == 1:  # two levels: sklearn keeps one row for class 1
        coef = np.vstack([np.zeros_like(coef), coef])
    if cov is None:
        return coef[codes, 0], r[:, 0]
    return coef[codes], Xc


def cpt_permutations(f: np.ndarray, g: np.ndarray, n_permutations: int, *, seed: int,
                     chunk: int | None = None, steps: int = CPT_STEPS) -> Iterator[np.ndarray]:
    """Exchangeable draws of the conditional permutation test (Berrett et al. 2020, Alg. 2).

    ``perm[b, i]`` is the sample whose metadata is given to sample ``i``. A hub permutation is
    reached from the identity by ``steps`` sweeps of the parallel pairwise sampler; every draw
    then runs ``steps`` independent sweeps from the hub. Each sweep swaps the metadata of
    disjoint pairs (i, j) with probability ``sigmoid((f_b - f_a) (g_i - g_j))``, where ``a`` and
    ``b`` are the samples whose metadata sit at i and j. The pairing of a sweep is drawn from a
    fixed pool of random pairings: a mixture of reversible kernels is reversible, which is all
    the exchangeability argument needs. ``f`` and ``g`` of shape (n, q) (a model with
    covariates, see :func:`cpt_log_odds_factors`) swap with probability
    ``sigmoid((f_b - f_a) . (g_i - g_j))``.
    """
    rng = np.random.default_rng(seed)
    multi = np.ndim(f) == 2  # vector factors (covariates): the cross term is a dot product
    f = np.asarray(f, dtype=np.float32)
    g = np.asarray(g, dtype=np.float64)
    if not multi:
        f, g = f.ravel(), g.ravel()
    n = len(f)
    half = n // 2
    if chunk is None:
        chunk = max(1, min(n_permutations, 8_000_000 // max(n * (f.shape[1] if multi else 1), 1)))
    pool = np.stack([rng.permutation(n)[: 2 * half] for _ in range(CPT_POOL)])
    pi, pj = pool[:, :half], pool[:, half:]
    dg = (g[pi] - g[pj]).astype(np.float32)  # (pool, half) or (pool, half, q)

    def sweep(perm: np.ndarray) -> None:
        b = len(perm)
        flat = perm.reshape(-1)
        choice = rng.integers(0, CPT_POOL, size=b)
        off = (np.arange(b, dtype=np.int64) * n)[:, None]
        ii = pi[choice] + off
        jj = pj[choice] + off
        a = flat[ii]
        c = flat[jj]
        if multi:
            logit = np.einsum("bhq,bhq->bh", f[a] - f[c], dg[choice])
        else:
            logit = f[a] - f[c]
            logit *= dg[choice]
        # u < sigmoid(x)  <=>  u * (1 + exp(-x)) < 1   (exp overflow gives "no swap")
        with np.errstate(over="ignore", invalid="ignore"):
            np.exp(logit, out=logit)
            logit += 1
            logit *= rng.random((b, half), dtype=np.float32)
        swap = logit < 1
        flat[ii] = np.where(swap, c, a)
        flat[jj] = np.where(swap, a, c)

    hub = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)[None, :].copy()
    for _ in range(steps):
        sweep(hub)
    done = 0
    while done < n_permutations:
        b = min(chunk, n_permutations - done)
        perm = np.repeat(hub, b, axis=0)
        for _ in range(steps):
            sweep(perm)
        done += b
        yield perm


def invert(perm: np.ndarray) -> np.ndarray:
    """Row-wise inverse of a (b, n) permutation matrix."""
    inv = np.empty_like(perm)
    np.put_along_axis(inv, perm, np.broadcast_to(np.arange(perm.shape[1]), perm.shape), axis=1)
    return inv


# ------------------------------------------------------------------ metadata-only straw model
@dataclass
class StrawModel:
    """Cross-validated target encoding of one (binned) metadata column, vectorised over
    permutations of the label."""

    cells: sparse.csr_matrix   # (n, F*K) one-hot of (fold, level)
    n_folds: int
    n_levels: int
    counts: np.ndarray         # (F, K)
    task: str
    smoothing: float = 1.0


def metadata_codes(values: np.ndarray, kind: str) -> np.ndarray:
    """Level codes of a categorical column, quantile-bin codes of a continuous one."""
    if kind == "categorical":
        return stratum_codes(values)
    v = np.asarray(values, dtype=np.float64)
    edges = np.unique(np.quantile(v, np.linspace(0, 1, N_BINS + 1)[1:-1]))
    return stratum_codes(np.searchsorted(edges, v, side="right"))


def make_straw(codes: np.ndarray, task: str, folds: np.ndarray) -> StrawModel:
    K = int(codes.max()) + 1
    F = int(folds.max()) + 1
    cell = folds * K + codes
    n = len(codes)
    H = sparse.csr_matrix((np.ones(n), (np.arange(n), cell)), shape=(n, F * K))
    counts = np.bincount(cell, minlength=F * K).reshape(F, K).astype(np.float64)
    return StrawModel(H, F, K, counts, task)


def _encode(m: StrawModel, S: np.ndarray) -> np.ndarray:
    """Out-of-fold smoothed level means (b, F, K) from held-out cell sums S (b, F, K)."""
    N = m.counts
    tot_k = S.sum(axis=1, keepdims=True)                 # (b, 1, K)
    n_k = N.sum(axis=0, keepdims=True)                   # (1, K)
    train_sum = tot_k - S
    train_n = n_k - N
    fold_sum = S.sum(axis=2, keepdims=True)              # (b, F, 1)
    n_all = N.sum()
    train_mean = (S.sum(axis=(1, 2))[:, None, None] - fold_sum) / np.maximum(
        n_all - N.sum(axis=1)[None, :, None], 1)
    lam = m.smoothing
    return (train_sum + lam * train_mean) / (train_n + lam)


def _cell_auroc(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUROC of cell-level scores (b, c) with positive / negative counts per cell."""
    out = np.empty(len(scores))
    c = scores.shape[1]
    step = max(1, 4_000_000 // max(c * c, 1))
    for s in range(0, len(scores), step):
        sc = scores[s:s + step]
        cmp = (sc[:, :, None] > sc[:, None, :]).astype(np.float64)
        cmp += 0.5 * (sc[:, :, None] == sc[:, None, :])
        num = np.einsum("bc,bcd,bd->b", pos[s:s + step], cmp, neg[s:s + step], optimize=True)
        den = pos[s:s + step].sum(1) * neg[s:s + step].sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s:s + step] = num / den
    return out


def straw_null_scores(m: StrawModel, y: np.ndarray, n_permutations: int, *, seed: int,
                      chunk: int = 1000) -> Iterator[np.ndarray]:
    """Chunks of :func:`straw_scores` under random permutations of a categorical label,
    drawn as the per-cell class counts they produce (multivariate hypergeometric: the law of
    the counts of a random permutation), at O(cells) per permutation instead of O(n).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 500); codes = rng.integers(0, 3, 500)
    >>> straw = make_straw(codes, "binary", rng.permutation(np.arange(500) % 5))
    >>> null = np.concatenate(list(straw_null_scores(straw, y, 300, seed=0)))
    >>> null.shape, bool(abs(null.mean() - 0.5) < 0.05)
    ((300,), True)
    """
    rng = np.random.default_rng(seed)
    F, K = m.n_folds, m.n_levels
    N = m.counts.reshape(F * K).astype(np.int64)
    classes = [1] if m.task == "binary" else list(range(int(y.max()) + 1))
    totals = np.bincount(y.astype(np.int64), minlength=max(classes) + 1)
    done = 0
    while done < n_permutations:
        b = min(chunk, n_permutations - done)
        left = np.broadcast_to(N, (b, F * K)).copy()
        sums = []
        for i, k in enumerate(classes):  # class k among the rows the earlier classes left
            S = (rng.multivariate_hypergeometric(N, int(totals[k]), size=b, method="marginals")
                 if i == 0 else np.stack([rng.multivariate_hypergeometric(
                     row, int(totals[k]), method="marginals") for row in left]))
            left -= S
            sums.append(S.reshape(b, F, K).astype(np.float64))
        done += b
        yield straw_scores(m, y, None, sums=sums)


def straw_scores(m: StrawModel, y: np.ndarray, P: np.ndarray | None, *,
                 sums: list[np.ndarray] | None = None) -> np.ndarray:
    """Cross-validated AUROC (binary), macro AUROC (multiclass) or R² (regression) of the
    metadata-only model, for the label permuted by each row of ``P`` (None: observed), or
    from the per-cell class counts ``sums`` (one (b, F, K) array per class scored) of the
    permuted labels."""
    Y = y[None, :] if P is None else y[P]
    b = len(Y) if sums is None else len(sums[0])
    F, K = m.n_folds, m.n_levels
    N = m.counts.reshape(1, F * K)

    def cell_sums(V: np.ndarray) -> np.ndarray:
        return np.asarray((m.cells.T @ V.T).T).reshape(b, F, K)

    if m.task == "regression":
        Yf = Y.astype(np.float64)
        S = cell_sums(Yf)
        enc = _encode(m, S).reshape(b, F * K)
        yy = float(np.sum(y.astype(np.float64) ** 2))
        sse = yy - 2 * np.sum(enc * S.reshape(b, F * K), 1) + np.sum(N * enc**2, 1)
        sst = float(np.sum((y - y.mean()) ** 2))
        return 1 - sse / sst
    classes = [1] if m.task == "binary" else list(range(int(y.max()) + 1))
    res = []
    for i, k in enumerate(classes):
        S = cell_sums((Y == k).astype(np.float64)) if sums is None else sums[i]
        enc = _encode(m, S).reshape(b, F * K)
        pos = S.reshape(b, F * K)
        res.append(_cell_auroc(enc, pos, N - pos))
    return np.mean(res, axis=0)
