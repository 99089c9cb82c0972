"""The Poisson bootstrap of large test sets: block-seeded weights and a one-sort binary kernel.

Above :data:`POISSON_N` rows the metric panel is bootstrapped with independent Poisson(1)
weights per row (the Poisson bootstrap, Hanley & MacGibbon 2006; Chamandy et al. 2012)
instead of a multinomial resample. Its weights need no global constraint (a multinomial
replicate must sum to n), so they are drawn block by block: the weight of row ``i`` in
replicate ``b`` depends only on ``(seed, i // ROW_BLOCK, b, i % ROW_BLOCK)``. Row block ``k``
has its own PCG64 stream (seeded by ``SeedSequence([seed, k])``) and replicate ``b`` starts a
fixed number of draws into it (``PCG64.advance``), so any chunking of rows or replicates gives
the same weights, and memory stays bounded by the chunk.

The binary kernel evaluates every metric of the panel for a chunk of replicates with one
matrix product (the sums: Brier, log-loss, the confusion matrix, the calibration bins) and one
pass of running sums in descending score order (AUROC and AUPRC): the rows are sorted once,
and only the weights change between replicates.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy.stats import poisson

#: from this many rows on, the bootstrap of the metric panel is the Poisson bootstrap.
POISSON_N = 200_000
#: rows per seeding block of the Poisson weights (the chunking of rows is a multiple of it).
ROW_BLOCK = 65_536
#: replicate chunks hold at most this many weight cells (replicates x rows).
MAX_CELLS = 1_000_000

# Poisson(1) by inversion of a 32-bit uniform: X = #{k : u >= T_k}. The thresholds resolve the
# probabilities to 2^-32 (P(X >= 14) < 2^-32, so the table stops at 13).
_T = np.floor(poisson.cdf(np.arange(14), 1.0) * 2.0**32).astype(np.uint64)
_T = _T[_T < 2**32]


def _table() -> np.ndarray:
    """X for each value of the top 16 bits of u, or 255 where a threshold falls in the bin."""
    lo = np.arange(65536, dtype=np.uint64) << np.uint64(16)
    hi = lo + np.uint64(65535)
    x_lo = np.searchsorted(_T, lo, side="right")
    x_hi = np.searchsorted(_T, hi, side="right")
    return np.where(x_lo == x_hi, x_lo, 255).astype(np.uint8)


_LOOKUP = _table()


def _to_poisson(u: np.ndarray) -> np.ndarray:
    """Poisson(1) counts (uint8) of 32-bit uniforms ``u``."""
    x = _LOOKUP[u >> np.uint32(16)]
    fix = np.flatnonzero(x.ravel() == 255)
    if fix.size:
        x.ravel()[fix] = np.searchsorted(_T, u.ravel()[fix].astype(np.uint64), side="right")
    return x


def poisson_weights(n: int, n_boot: int, *, seed: int, chunk_size: int | None = None,
                    start: int = 0) -> Iterator[np.ndarray]:
    """Yield Poisson(1) bootstrap weights, chunks of shape ``(b, n)`` (uint8), replicates
    ``start`` to ``n_boot - 1``.

    The weights of replicate ``b`` do not depend on ``chunk_size`` or ``start``: row block
    ``k`` (rows ``k * ROW_BLOCK`` to ``(k + 1) * ROW_BLOCK - 1``) draws from its own stream
    seeded by ``(seed, k)``, and replicate ``b`` reads it from a fixed offset.

    Examples
    --------
    >>> a = np.vstack(list(poisson_weights(1000, 6, seed=1, chunk_size=4)))
    >>> b = np.vstack(list(poisson_weights(1000, 6, seed=1, chunk_size=1)))
    >>> a.shape, bool((a == b).all()), bool(abs(a.mean() - 1) < 0.1)
    ((6, 1000), True, True)
    """
    if chunk_size is None:
        chunk_size = max(1, min(n_boot, MAX_CELLS // max(n, 1)))
    blocks = [(k0, min(n, k0 + ROW_BLOCK)) for k0 in range(0, n, ROW_BLOCK)]
    done = start
    while done < n_boot:
        b = min(chunk_size, n_boot - done)
        W = np.empty((b, n), dtype=np.uint8)
        for k, (r0, r1) in enumerate(blocks):
            m = r1 - r0
            per_rep = (m + 1) // 2                     # 64-bit draws per replicate
            bg = np.random.PCG64(np.random.SeedSequence([int(seed), k]))
            bg.advance(done * per_rep)
            u = bg.random_raw(b * per_rep).view(np.uint32).reshape(b, 2 * per_rep)[:, :m]
            W[:, r0:r1] = _to_poisson(u)
        done += b
        yield W


def binary_kernel_data(y: np.ndarray, s: np.ndarray, threshold: float,
                       metrics: Sequence[str]) -> dict:
    """What :func:`binary_replicates` needs of one model, computed once: the rows in
    descending score order, the tie groups and the columns of the linear sums."""
    from ._metrics import ECE_BINS

    ascending = len(s) < 2 or bool(np.all(s[1:] >= s[:-1]))
    # rows sorted ascending (the reference model of a panel) are read backwards: no gather
    order = None if ascending else np.argsort(-s, kind="mergesort")
    yd = (y[::-1] if ascending else y[order]).astype(np.float64)
    sd = s[::-1] if ascending else s[order]
    starts = np.flatnonzero(np.r_[True, sd[1:] != sd[:-1]])
    eps = np.finfo(np.float64).eps
    p = np.clip(sd, eps, 1 - eps)
    pred = (sd >= threshold).astype(np.float64)
    cols = {"one": np.ones_like(yd), "y": yd, "pred": pred, "y_pred": yd * pred,
            "brier": (sd - yd) ** 2,
            "ll": -(yd * np.log(p) + (1 - yd) * np.log(1 - p))}
    names = list(cols)
    V = [cols[k] for k in names]
    if "ece" in metrics:
        bins = np.clip((sd * ECE_BINS).astype(int), 0, ECE_BINS - 1)
        for j in range(ECE_BINS):
            V.append(np.where(bins == j, yd - sd, 0.0))
    # (columns, n), C order: ``VT @ W.T`` is the fast orientation of the product
    return {"order": order, "y": yd.astype(np.uint8), "VT": np.ascontiguousarray(np.vstack(V)),
            "names": names, "starts": starts if len(starts) < len(sd) else None}


def binary_replicates(k: dict, W: np.ndarray, metrics: Sequence[str]) -> dict[str, np.ndarray]:
    """Every binary metric of ``metrics`` for each replicate (row) of the integer weights
    ``W`` (``(b, n)`` in the row order the kernel was built on); equal to
    :func:`weighted_metrics` (tested).

    The running sums are integer (exact, and several times faster than floating point);
    the products with the weights are accumulated in float64.
    """
    from ._metrics import _ratio

    # descending score order, C order (the running sums and the product read rows)
    Wd = np.ascontiguousarray(W[:, ::-1]) if k["order"] is None else W[:, k["order"]]
    S = (k["VT"] @ Wd.astype(np.float64).T).T              # (b, columns)
    c = dict(zip(k["names"], S.T))
    tot, pos_tot = c["one"], c["y"]
    out: dict[str, np.ndarray] = {}
    if "auroc" in metrics or "auprc" in metrics:
        pos = Wd * k["y"]
        neg = Wd - pos
        acc = np.int32 if W.shape[1] * 255 < 2**31 else np.int64
        if k["starts"] is not None:                      # ties: one column per tie group
            pos = np.add.reduceat(pos, k["starts"], axis=1, dtype=acc)
            neg = np.add.reduceat(neg, k["starts"], axis=1, dtype=acc)
        tp = np.cumsum(pos, axis=1, dtype=acc)           # positives at or above each group
        if "auroc" in metrics:
            # each negative group: positives strictly above it, plus half the tied ones
            num = np.einsum("ij,ij->i", neg, tp, dtype=np.float64)
            if k["starts"] is not None:  # without ties a row is either positive or negative
                num -= 0.5 * np.einsum("ij,ij->i", neg, pos, dtype=np.float64)
            out["auroc"] = _ratio(num, pos_tot * (tot - pos_tot))
        if "auprc" in metrics:
            called = np.cumsum(pos + neg if k["starts"] is not None else Wd, axis=1,
                               dtype=acc)
            prec = tp / np.maximum(called, 1)            # tp = 0 where nothing is called
            out["auprc"] = _ratio(np.einsum("ij,ij->i", pos, prec, dtype=np.float64),
                                  pos_tot)
    tp_, fp = c["y_pred"], c["pred"] - c["y_pred"]
    fn, tn = pos_tot - tp_, (tot - pos_tot) - fp
    sens, spec = _ratio(tp_, tp_ + fn), _ratio(tn, tn + fp)
    simple = {"brier": lambda: _ratio(c["brier"], tot), "log_loss": lambda: _ratio(c["ll"], tot),
              "accuracy": lambda: _ratio(tp_ + tn, tot), "sensitivity": lambda: sens,
              "specificity": lambda: spec, "balanced_accuracy": lambda: (sens + spec) / 2,
              "ece": lambda: _ratio(np.abs(S[:, len(k["names"]):]).sum(axis=1), tot)}
    for m in metrics:
        if m in simple:
            out[m] = simple[m]()
    return {m: out[m] for m in metrics}


def poisson_panel_replicates(y: np.ndarray, scores: dict[str, np.ndarray], *, task: str,
                             metrics: Sequence[str], n_boot: int, threshold: float, seed: int,
                             chunk_size: int | None = None
                             ) -> dict[str, dict[str, np.ndarray]]:
    """Replicates of every metric of every model under the Poisson bootstrap: model ->
    metric -> ``(n_boot,)``. Chunks of replicates run on parallel threads; each draws its
    own weights, so the result depends neither on ``chunk_size`` nor on the threads."""
    from .._utils import thread_map
    from ._metrics import weighted_metrics

    n = len(y)
    if chunk_size is None:
        chunk_size = max(1, min(n_boot, MAX_CELLS // max(n, 1)))
    kern = ({m: binary_kernel_data(y, s, threshold, metrics) for m, s in scores.items()}
            if task == "binary" else None)

    def one(start: int) -> dict[str, dict[str, np.ndarray]]:
        W = next(poisson_weights(n, min(n_boot, start + chunk_size), seed=seed,
                                 chunk_size=chunk_size, start=start))
        if kern is not None:
            return {m: binary_replicates(kern[m], W, metrics) for m in scores}
        Wf = W.astype(np.float64)
        return {m: weighted_metrics(y, s, Wf, task=task, metrics=metrics, threshold=threshold)
                for m, s in scores.items()}

    parts = thread_map(one, range(0, n_boot, chunk_size))
    return {m: {k: np.concatenate([p[m][k] for p in parts]) for k in metrics} for m in scores}
