"""The Poisson bootstrap of large test sets: counter-based weights and a fused binary kernel.

Above :data:`POISSON_N` rows the metric panel is bootstrapped with independent Poisson(1)
weights per row (the Poisson bootstrap, Hanley & MacGibbon 2006; Chamandy et al. 2012)
instead of a multinomial resample. Its weights need no global constraint (a multinomial
replicate must sum to n), so each one is a pure function of ``(seed, replicate, row)``: a
SplitMix64 hash of the three, read as a 32-bit uniform and inverted through the Poisson(1)
distribution function. Any chunking of rows or replicates, any number of threads, and any
order the rows are visited in give the same weights; models scored on the same rows share
them (the replicates are paired), and memory stays bounded by the chunk.

The binary kernel (:func:`binary_sums`, compiled by numba) evaluates one replicate in one
pass over the rows in descending score order, drawing each row's weight as it goes: the
running sums of AUROC and AUPRC (tied scores as one group) and the linear sums of Brier,
log-loss, the confusion matrix and the calibration bins. No ``(replicates, n)`` weight matrix
is built, so the pass costs a few nanoseconds per row and replicate.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from numba import njit
from scipy.stats import poisson

#: from this many rows on, the bootstrap of the metric panel is the Poisson bootstrap.
POISSON_N = 200_000
#: replicate chunks hold at most this many weight cells (replicates x rows) where a weight
#: matrix is built (multiclass and regression panels).
MAX_CELLS = 1_000_000

# Poisson(1) by inversion of a 32-bit uniform: X = #{k : u >= T_k}. The thresholds resolve the
# probabilities to 2^-32 (P(X >= 14) < 2^-32, so the table stops at 13).
_T = np.floor(poisson.cdf(np.arange(14), 1.0) * 2.0**32).astype(np.uint64)
_T = _T[_T < 2**32]
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    """SplitMix64's finaliser."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _replicate_key(seed: np.uint64, b: np.int64) -> np.uint64:  # pragma: no cover - compiled
    return _mix(_mix(seed + _GOLDEN) + np.uint64(b + 1) * _GOLDEN)


@njit(cache=True, inline="always")
def _weight(key: np.uint64, row: np.int64, T: np.ndarray) -> np.int64:  # pragma: no cover
    """The Poisson(1) weight of ``row`` in the replicate of ``key``."""
    u = _mix(key + np.uint64(row + 1) * _GOLDEN) >> np.uint64(32)
    # branch-free for the first four values (98% of draws), a loop for the tail
    x = (np.int64(u >= T[0]) + np.int64(u >= T[1]) + np.int64(u >= T[2])
         + np.int64(u >= T[3]))
    if x == 4:
        while x < T.shape[0] and u >= T[x]:
            x += 1
    return x


@njit(cache=True, nogil=True)
def _fill_weights(seed: np.uint64, b0: np.int64, b1: np.int64, n: np.int64,
                  T: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    W = np.empty((b1 - b0, n), dtype=np.uint8)
    for j in range(b1 - b0):
        key = _replicate_key(seed, b0 + j)
        for i in range(n):
            W[j, i] = _weight(key, i, T)
    return W


def _seed64(seed: int) -> np.uint64:
    return np.uint64(int(seed) % 2**64)


def poisson_weights(n: int, n_boot: int, *, seed: int, chunk_size: int | None = None,
                    start: int = 0) -> Iterator[np.ndarray]:
    """Yield Poisson(1) bootstrap weights, chunks of shape ``(b, n)`` (uint8), replicates
    ``start`` to ``n_boot - 1``.

    The weight of row ``i`` in replicate ``b`` is a function of ``(seed, b, i)`` only: it
    depends neither on ``chunk_size``, ``start`` nor ``n``.

    Examples
    --------
    >>> a = np.vstack(list(poisson_weights(1000, 6, seed=1, chunk_size=4)))
    >>> b = np.vstack(list(poisson_weights(1000, 6, seed=1, chunk_size=1)))
    >>> a.shape, bool((a == b).all()), bool(abs(a.mean() - 1) < 0.1)
    ((6, 1000), True, True)
    """
    if chunk_size is None:
        chunk_size = max(1, min(n_boot, MAX_CELLS // max(n, 1)))
    done = start
    while done < n_boot:
        b = min(chunk_size, n_boot - done)
        yield _fill_weights(_seed64(seed), done, done + b, n, _T)
        done += b


#: replicates per task of the binary kernel (the unit the threads share out).
BINARY_CHUNK = 25
#: the sums :func:`binary_sums` returns per replicate, before the calibration bins.
SUMS = ("tot", "pos", "auroc_num", "auprc_num", "brier", "ll", "pred", "y_pred")


@njit(cache=True, nogil=True)
def binary_sums(rows: np.ndarray, y: np.ndarray, start: np.ndarray, brier_i: np.ndarray,
                ll_i: np.ndarray, pred_i: np.ndarray, dev_i: np.ndarray, ece_bin: np.ndarray,
                n_ece: np.int64, seed: np.uint64, b0: np.int64, b1: np.int64,
                T: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The sums of every binary metric for replicates ``b0`` to ``b1 - 1``: one pass per
    replicate over the rows in descending score order (``rows``: their positions in the test
    set, which the weights are drawn for; ``start``: whether a row opens a new group of tied
    scores; the per-row Brier and log-loss terms, the decision at the threshold, ``y - s``
    and the calibration bin). Returns ``(b1 - b0, len(SUMS) + n_ece)``."""
    n = rows.shape[0]
    out = np.zeros((b1 - b0, 8 + n_ece))
    for j in range(b1 - b0):
        key = _replicate_key(seed, b0 + j)
        tot = 0.0
        tp_above = 0.0
        called = 0.0
        auroc = 0.0
        auprc = 0.0
        gpos = 0.0
        gneg = 0.0
        brier = 0.0
        ll = 0.0
        pred = 0.0
        y_pred = 0.0
        ece_acc = 0.0  # rows come in score order: the calibration bin changes in runs
        cur = ece_bin[0] if n > 0 else 0
        for i in range(n):
            if start[i] and i > 0:  # close the previous tie group
                auroc += gneg * (tp_above + 0.5 * gpos)
                tp_above += gpos
                called += gpos + gneg
                auprc += gpos * tp_above / max(called, 1.0)  # branch-free: 0 when gpos = 0
                gpos = 0.0
                gneg = 0.0
            wf = float(_weight(key, rows[i], T))
            yi = y[i]
            tot += wf
            gpos += wf * yi
            gneg += wf * (1 - yi)
            brier += wf * brier_i[i]
            ll += wf * ll_i[i]
            pred += wf * pred_i[i]
            y_pred += wf * (pred_i[i] * yi)
            if n_ece > 0:
                if ece_bin[i] != cur:
                    out[j, 8 + cur] += ece_acc
                    ece_acc = 0.0
                    cur = ece_bin[i]
                ece_acc += wf * dev_i[i]
        if n_ece > 0 and n > 0:
            out[j, 8 + cur] += ece_acc
        auroc += gneg * (tp_above + 0.5 * gpos)
        tp_above += gpos
        called += gpos + gneg
        if gpos > 0:
            auprc += gpos * tp_above / called
        out[j, 0] = tot
        out[j, 1] = tp_above
        out[j, 2] = auroc
        out[j, 3] = auprc
        out[j, 4] = brier
        out[j, 5] = ll
        out[j, 6] = pred
        out[j, 7] = y_pred
    return out


def binary_kernel_data(y: np.ndarray, s: np.ndarray, threshold: float,
                       metrics: Sequence[str]) -> dict:
    """What :func:`binary_replicates` needs of one model, computed once: the rows in
    descending score order, where tie groups start, and the calibration bins."""
    from ._metrics import ECE_BINS

    order = np.argsort(-np.asarray(s, dtype=np.float64), kind="mergesort")
    sd = np.ascontiguousarray(s[order], dtype=np.float64)
    start = np.r_[True, sd[1:] != sd[:-1]] if len(sd) else np.zeros(0, dtype=bool)
    n_ece = ECE_BINS if "ece" in metrics else 0
    ece = (np.clip((sd * ECE_BINS).astype(np.int64), 0, ECE_BINS - 1) if n_ece
           else np.zeros(len(sd), dtype=np.int64))
    yd = np.ascontiguousarray(y[order], dtype=np.int64)
    eps = np.finfo(np.float64).eps
    p = np.clip(sd, eps, 1 - eps)
    return {"rows": order.astype(np.int64), "y": yd, "start": start,
            "brier": (sd - yd) ** 2, "ll": -(yd * np.log(p) + (1 - yd) * np.log(1 - p)),
            "pred": (sd >= threshold).astype(np.int64), "dev": yd - sd, "ece": ece,
            "n_ece": n_ece}


def binary_replicates(k: dict, metrics: Sequence[str], *, seed: int, start: int, stop: int
                      ) -> dict[str, np.ndarray]:
    """Every binary metric of ``metrics`` for the Poisson replicates ``start`` to
    ``stop - 1`` of ``seed``; equal to :func:`weighted_metrics` with the weights of
    :func:`poisson_weights` (tested).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 500); s = np.clip(0.3 * y + 0.7 * rng.random(500), 0, 1)
    >>> reps = binary_replicates(binary_kernel_data(y, s, 0.5, ["auroc"]), ["auroc"], seed=3,
    ...                          start=0, stop=4)
    >>> reps["auroc"].shape, bool(np.all((reps["auroc"] > 0.5) & (reps["auroc"] < 1)))
    ((4,), True)
    """
    from ._metrics import _ratio

    S = binary_sums(k["rows"], k["y"], k["start"], k["brier"], k["ll"], k["pred"], k["dev"],
                    k["ece"], k["n_ece"], _seed64(seed), start, stop, _T)
    c = dict(zip(SUMS, S[:, :len(SUMS)].T))
    tot, pos_tot = c["tot"], c["pos"]
    tp_, fp = c["y_pred"], c["pred"] - c["y_pred"]
    fn, tn = pos_tot - tp_, (tot - pos_tot) - fp
    sens, spec = _ratio(tp_, tp_ + fn), _ratio(tn, tn + fp)
    simple = {"auroc": lambda: _ratio(c["auroc_num"], pos_tot * (tot - pos_tot)),
              "auprc": lambda: _ratio(c["auprc_num"], pos_tot),
              "brier": lambda: _ratio(c["brier"], tot), "log_loss": lambda: _ratio(c["ll"], tot),
              "accuracy": lambda: _ratio(tp_ + tn, tot), "sensitivity": lambda: sens,
              "specificity": lambda: spec, "balanced_accuracy": lambda: (sens + spec) / 2,
              "ece": lambda: _ratio(np.abs(S[:, len(SUMS):]).sum(axis=1), tot)}
    return {m: simple[m]() for m in metrics}


def poisson_panel_replicates(y: np.ndarray, scores: dict[str, np.ndarray], *, task: str,
                             metrics: Sequence[str], n_boot: int, threshold: float, seed: int,
                             chunk_size: int | None = None
                             ) -> dict[str, dict[str, np.ndarray]]:
    """Replicates of every metric of every model under the Poisson bootstrap: model ->
    metric -> ``(n_boot,)``. Chunks of replicates run on parallel threads (the compiled
    kernel releases the GIL); each draws its own weights, so the result depends neither on
    ``chunk_size`` nor on the threads."""
    from .._utils import thread_map
    from ._metrics import weighted_metrics

    n = len(y)
    if chunk_size is None:  # binary: no weight matrix, chunks only spread the threads
        chunk_size = (BINARY_CHUNK if task == "binary"
                      else max(1, min(n_boot, MAX_CELLS // max(n, 1))))
    kern = ({m: binary_kernel_data(y, s, threshold, metrics) for m, s in scores.items()}
            if task == "binary" else None)

    def one(start: int) -> dict[str, dict[str, np.ndarray]]:
        stop = min(n_boot, start + chunk_size)
        if kern is not None:
            return {m: binary_replicates(kern[m], metrics, seed=seed, start=start, stop=stop)
                    for m in scores}
        W = next(poisson_weights(n, stop, seed=seed, chunk_size=chunk_size, start=start))
        Wf = W.astype(np.float64)
        return {m: weighted_metrics(y, s, Wf, task=task, metrics=metrics, threshold=threshold)
                for m, s in scores.items()}

    parts = thread_map(one, range(0, n_boot, chunk_size))
    return {m: {k: np.concatenate([p[m][k] for p in parts]) for k in metrics} for m in scores}
