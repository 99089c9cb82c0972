"""Vectorised bootstrap of the metric panel: time against n (1000 replicates).

Also times scikit-learn's ``roc_auc_score`` called once per replicate, the loop that the
vectorised engine replaces, so the printed ratio is measured in the same run; and the panel of
two models against the number of weight cells per chunk (``stats._bootstrap._MAX_CELLS``), the
measurement behind its default.

Run: ``python benchmarks/bench_stats.py [--quick]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from confoundry.stats import bootstrap_metrics, bootstrap_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="n up to 10k only")
    args = ap.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    print(f"{'n':>8} {'panel (9 metrics) s':>20} {'auroc only s':>13} {'sklearn loop s':>15} {'ratio':>6}")
    for n in sizes:
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, n)
        s = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
        t0 = time.perf_counter()
        bootstrap_metrics(y, s, task="binary", n_boot=1000, random_state=0)
        t_panel = time.perf_counter() - t0
        t0 = time.perf_counter()
        bootstrap_metrics(y, s, task="binary", metrics=["auroc"], n_boot=1000, random_state=0)
        t_auc = time.perf_counter() - t0
        t0 = time.perf_counter()
        for W in bootstrap_weights(n, 1000, strata=y, random_state=0):
            for w in W:
                idx = np.repeat(np.arange(n), w.astype(int))
                roc_auc_score(y[idx], s[idx])
        t_sk = time.perf_counter() - t0
        print(f"{n:>8} {t_panel:>20.2f} {t_auc:>13.2f} {t_sk:>15.2f} {t_sk / t_auc:>6.1f}")


def chunk_scan(quick: bool) -> None:
    """Two models' binary panel, 1000 replicates, against the cells per chunk."""
    from confoundry.stats import weighted_metrics

    print(f"\n{'n':>8} {'cells/chunk':>12} {'rows/chunk':>11} {'2 models s':>11}")
    for n in ([10_000] if quick else [10_000, 100_000]):
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, n)
        s1 = np.sort(np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1))
        s2 = rng.random(n)
        n_boot = 1000 if n <= 10_000 else 200
        for cells in (8_000_000, 2_000_000, 1_000_000, 500_000):
            chunk = max(1, min(n_boot, cells // n))
            t0 = time.perf_counter()
            for W in bootstrap_weights(n, n_boot, strata=y, random_state=0, chunk_size=chunk):
                weighted_metrics(y, s1, W, task="binary")
                weighted_metrics(y, s2, W, task="binary")
            print(f"{n:>8} {cells:>12,} {chunk:>11} {time.perf_counter() - t0:>11.2f}")


if __name__ == "__main__":
    main()
    chunk_scan("--quick" in sys.argv)
