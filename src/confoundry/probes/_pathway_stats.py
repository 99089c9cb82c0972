"""The statistics of confounder pathways, vectorised over features, outputs and replicates.

* :func:`remove_information`: a feature with one metadata column's information removed within
  the label (x covariate) cells, every feature at once.
* :class:`OutputTransform`: the output basis of the probes (ranks of a 1-D score; for
  multiclass scores the full model's principal directions, applied to every re-scored output,
  so that all outputs live in the same coordinates).
* :func:`weighted_effects`: the conditional statistic of many outputs for a block of bootstrap
  weights, from weighted cross-products (one matrix product per block), with the projection of
  each output's metadata effect on the full model's (the mediated share).
* :func:`permutation_p_values`: p-values of many outputs under the same null draws of the
  metadata (one gather of the design per block of draws, see
  :func:`~confoundry.probes._engine.column_statistics`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _engine as E

#: a block of weighted cross-products holds at most this many cells (n x columns).
MAX_CELLS = 4_000_000


# ------------------------------------------------------------------ feature replacement
def remove_information(X: np.ndarray, values: np.ndarray, kind: str, cells: np.ndarray,
                       discrete: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every column of ``X`` (n, F) with the information of the metadata ``values`` removed
    within ``cells`` (label, or label x covariate strata).

    Categorical metadata: within each cell, each level's values are mapped to the quantiles of
    the whole cell (a quantile normalisation: every level then has the cell's distribution -
    location, scale and shape - while each sample keeps its rank within its level, so the
    feature's relation to the label and to the other features survives). Discrete features
    (``discrete``) are mapped onto observed values, ties broken at random. Continuous metadata:
    the feature's regression on the standardised ranks of the metadata and their square,
    within each cell, is subtracted (the residual added back to the cell mean).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> batch = rng.integers(0, 2, 400)
    >>> X = rng.normal(size=(400, 2)); X[:, 0] += 2 * batch        # batch shifts column 0
    >>> Xt = remove_information(X, batch, "categorical", np.zeros(400, int),
    ...                         np.array([False, False]), rng)
    >>> shift = [Xt[batch == 1, j].mean() - Xt[batch == 0, j].mean() for j in (0, 1)]
    >>> [round(float(v), 2) for v in shift]
    [0.0, 0.0]
    """
    X = np.asarray(X, dtype=np.float64)
    out = X.copy()
    if kind == "categorical":
        levels = E.stratum_codes(values)
        for s in np.unique(cells):
            idx = np.flatnonzero(cells == s)
            if len(np.unique(levels[idx])) < 2:
                continue
            pooled = np.sort(X[idx], axis=0)                      # (n_s, F)
            for k in np.unique(levels[idx]):
                sub = idx[levels[idx] == k]
                sub = sub[rng.permutation(len(sub))]              # random tie-breaking
                out[sub] = _quantile_map(X[sub], pooled, discrete)
        return out
    d = E.standard_ranks(np.asarray(values, dtype=np.float64))
    B = np.column_stack([d, d * d])
    for s in np.unique(cells):
        idx = np.flatnonzero(cells == s)
        if len(idx) < 4:
            continue
        Bc = B[idx] - B[idx].mean(axis=0)
        coef, *_ = np.linalg.lstsq(Bc, X[idx] - X[idx].mean(axis=0), rcond=None)
        out[idx] = X[idx] - Bc @ coef
    return out


def _quantile_map(Xc: np.ndarray, pooled: np.ndarray, discrete: np.ndarray) -> np.ndarray:
    """The values of the cell quantiles ``pooled`` (sorted, (n_s, F)) at the mid-ranks of the
    rows of ``Xc`` (stable sort: ties keep their (random) row order)."""
    m, F = Xc.shape
    n_s = len(pooled)
    order = np.argsort(Xc, axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(m)[:, None], axis=0)
    u = (ranks + 0.5) / m                                          # (m, F) in (0, 1)
    pos = np.clip(u * n_s - 0.5, 0, n_s - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_s - 1)
    frac = pos - lo
    cont = (np.take_along_axis(pooled, lo, axis=0) * (1 - frac)
            + np.take_along_axis(pooled, hi, axis=0) * frac)
    if discrete.any():
        pick = np.minimum(np.floor(u * n_s).astype(np.int64), n_s - 1)
        disc = np.take_along_axis(pooled, pick, axis=0)
        cont[:, discrete] = disc[:, discrete]
    return cont


# ------------------------------------------------------------------ output basis
@dataclass
class OutputTransform:
    """Scores -> the output matrix of the probes, with the coordinates of the full model.

    1-D scores: standardised ranks (each output its own: ranks need no shared coordinates).
    Multiclass: centred log probabilities projected on the full model's top principal
    directions (:data:`~confoundry.probes._engine.MAX_COMPONENTS` at most).
    """

    task: str
    V: np.ndarray | None = None

    @classmethod
    def fit(cls, scores: np.ndarray, task: str) -> OutputTransform:
        if task != "multiclass":
            return cls(task)
        L = _centred_log(scores)
        k = min(scores.shape[1] - 1, E.MAX_COMPONENTS)
        Lc = L - L.mean(axis=0)
        w, V = np.linalg.eigh(Lc.T @ Lc)
        return cls(task, V[:, ::-1][:, :k])

    @property
    def dim(self) -> int:
        return 1 if self.V is None else int(self.V.shape[1])

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        if self.V is None:
            return E.standard_ranks(np.asarray(scores, dtype=np.float64))[:, None]
        L = _centred_log(scores)
        return (L - L.mean(axis=0)) @ self.V


def _centred_log(s: np.ndarray) -> np.ndarray:
    L = np.log(np.clip(np.asarray(s, dtype=np.float64), 1e-12, None))
    return L - L.mean(axis=1, keepdims=True)


# ------------------------------------------------------------------ weighted statistics
@dataclass
class Effects:
    """Per replicate (rows) and output (columns): the Pillai trace ``T``, the projection
    ``C`` of the output's metadata effect on the reference output's (output 0), and the null
    expectation ``E0`` of ``C`` (``q / (n - p)`` times the reference-normalised covariance of
    the two outputs' residuals)."""

    T: np.ndarray
    C: np.ndarray
    E0: np.ndarray
    rank: int

    @property
    def effect(self) -> np.ndarray:
        """Partial R² (Pillai trace / rank)."""
        return self.T / self.rank if self.rank > 0 else np.full_like(self.T, np.nan)

    def share(self) -> np.ndarray:
        """Mediated share of each output: the part of the reference output's metadata effect
        that the output no longer has, ``1 - (C - E0) / (C_ref - E0_ref)`` (both in excess
        of their null expectation; NaN where the reference has no excess effect)."""
        den = self.C[:, :1] - self.E0[:, :1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = 1 - (self.C - self.E0) / den
        out[np.broadcast_to(~(den > 0), out.shape)] = np.nan
        return out

    @staticmethod
    def concat(parts: Sequence[Effects]) -> Effects:
        return Effects(np.vstack([p.T for p in parts]), np.vstack([p.C for p in parts]),
                       np.vstack([p.E0 for p in parts]), parts[0].rank)


def weighted_effects(W: np.ndarray, Dr: np.ndarray, R: np.ndarray, n_params: int,
                     rank_D: int) -> Effects:
    """The conditional statistics of the outputs ``R`` (n, O, d) on the design ``Dr`` (n, m),
    both already residualised on what the probe conditions on, for each row of the weights
    ``W`` (b, n) (``np.ones((1, n))``: the observed statistics).

    The residualisation is not refitted per replicate (the weights re-weight the residuals):
    its estimation error is of second order next to the sampling error of the statistic.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> site = rng.integers(0, 2, n)
    >>> a, b = 0.5 * site, 0.5 * site             # two paths of the site into the output
    >>> z = rng.normal(size=n) + a + b
    >>> Dr = E.residualize(E.metadata_design(site, "categorical"))
    >>> R = np.stack([E.residualize(v) for v in (z, z - a, z - a - b)], axis=1)  # (n, 3, 1)
    >>> eff = weighted_effects(np.ones((1, n)), Dr, R, 1, 1)
    >>> r2 = np.corrcoef(z, site)[0, 1] ** 2
    >>> bool(np.isclose(eff.effect[0, 0], r2))    # the partial R² of the reference output
    True
    >>> [round(float(v), 1) for v in eff.share()[0]]   # removing a: half; a and b: all
    [0.0, 0.5, 1.0]
    """
    W = np.asarray(W, dtype=np.float64)
    b, n = W.shape
    _, n_out, d = R.shape
    m = Dr.shape[1]
    DD = (W @ (Dr[:, :, None] * Dr[:, None, :]).reshape(n, m * m)).reshape(b, m, m)
    A = np.linalg.pinv(DD, hermitian=True)
    Rf = R[:, 0, :]
    RRff = (W @ (Rf[:, :, None] * Rf[:, None, :]).reshape(n, d * d)).reshape(b, d, d)
    Mf = np.linalg.pinv(RRff, hermitian=True)
    GDf = (W @ (Dr[:, :, None] * Rf[:, None, :]).reshape(n, m * d)).reshape(b, m, d)
    scale = rank_D / max(n - n_params, 1)
    T = np.empty((b, n_out))
    C = np.empty((b, n_out))
    E0 = np.empty((b, n_out))
    step = max(1, MAX_CELLS // max(n * d * max(m, d), 1))
    for o0 in range(0, n_out, step):
        Rc = R[:, o0:o0 + step, :]
        c = Rc.shape[1]
        GD = (W @ (Dr[:, :, None, None] * Rc[:, None]).reshape(n, m * c * d)).reshape(b, m, c, d)
        RRoo = (W @ (Rc[:, :, :, None] * Rc[:, :, None, :]).reshape(n, c * d * d)
                ).reshape(b, c, d, d)
        RRof = (W @ (Rc[:, :, :, None] * Rf[:, None, None, :]).reshape(n, c * d * d)
                ).reshape(b, c, d, d)
        H = np.einsum("bkcd,bkl,blce->bcde", GD, A, GD, optimize=True)
        T[:, o0:o0 + c] = np.einsum("bcde,bced->bc", np.linalg.pinv(RRoo, hermitian=True), H)
        Hc = np.einsum("bkcd,bkl,ble->bcde", GD, A, GDf, optimize=True)
        C[:, o0:o0 + c] = np.einsum("bcde,bed->bc", Hc, Mf)
        E0[:, o0:o0 + c] = scale * np.einsum("bcde,bed->bc", RRof, Mf)
    return Effects(T, C, E0, min(rank_D, d))


def bootstrap_effects(weights: Iterator[np.ndarray], Dr: np.ndarray, R: np.ndarray,
                      n_params: int, rank_D: int) -> Effects:
    """:func:`weighted_effects` over every block of bootstrap weights, stacked."""
    return Effects.concat([weighted_effects(W, Dr, R, n_params, rank_D) for W in weights])


# ------------------------------------------------------------------ permutation tests
def permutation_p_values(U_blocks: Sequence[np.ndarray], D: np.ndarray, A: np.ndarray,
                         draws: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Observed statistics and permutation p-values of many outputs under the same null draws.

    ``U_blocks`` holds one orthonormal output basis (n, d_o) per output, orthogonal to what
    the test conditions on; ``draws`` yields blocks ``Q`` (b, n) such that row ``i`` of the
    permuted design is ``D[Q[b, i]]``. Returns (observed (O,), p (O,), number of draws);
    ``p = (1 + #{null >= observed}) / (1 + draws)``, NaN for an output with no dimension.
    """
    sizes = [u.shape[1] for u in U_blocks]
    U = np.hstack(U_blocks) if U_blocks else np.zeros((len(D), 0))
    owner = np.zeros((U.shape[1], len(U_blocks)))
    owner[np.arange(U.shape[1]), np.repeat(np.arange(len(U_blocks)), sizes)] = 1.0

    def per_output(stats: np.ndarray) -> np.ndarray:  # (b, F) -> (b, O): a block's trace
        return stats @ owner

    obs = per_output(E.column_statistics(U, D, A, None))[0]
    hits = np.zeros(len(U_blocks), dtype=np.int64)
    total = 0
    tol = 1e-9 * np.abs(obs) + 1e-12
    for Q in draws:
        null = per_output(E.column_statistics(U, D, A, Q))
        hits += np.sum(null >= obs - tol, axis=0)
        total += len(Q)
    p = (1 + hits) / (1 + total)
    p = np.where(np.asarray(sizes) > 0, p, np.nan)
    return obs, p, total
