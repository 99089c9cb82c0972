"""Domain-split analysis: slice discovery and per-domain bootstrap metrics against n and d.

Slice discovery (``discover_slices``: 2 conditions, 4 bins, split-half confirmation and BH) at
n in {10k, 100k} and d in {20, 100}; ANCHORS lists sliceline 0.3 (search only, no significance)
at 3.9 s (n = 10k) and 14.6 s (n = 100k) for d = 20. Per-domain metrics with 1000 bootstrap
CIs at n = 100k over 4 domains (``split_domains``); ANCHORS lists fairlearn ``MetricFrame
(n_boot=1000)`` for accuracy and recall at 100 s (n = 10k) and 617 s (n = 100k).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_domains.py [--quick]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from confoundry.domains import discover_slices, split_domains


def _data(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, d)), columns=[f"x{j}" for j in range(d)])
    X["x0"] = (X["x0"] > 0.8).astype(float)
    y = rng.integers(0, 2, n)
    bad = ((X["x0"] == 1) & (X["x1"] >= X["x1"].quantile(0.75))).to_numpy()
    wrong = rng.random(n) < np.where(bad, 0.3, 0.1)
    s = np.clip(np.where(wrong, 1 - y, y) * 0.6 + 0.2 + rng.normal(0, 0.05, n), 0, 1)
    meta = pd.DataFrame({"site": rng.choice(list("abcd"), n)})
    return X, y, s, meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="n = 10k only")
    args = ap.parse_args()
    sizes = [10_000] if args.quick else [10_000, 100_000]
    print("discover_slices (max_conditions=2, bins=4, split-half + BH)")
    print(f"{'n':>8} {'d':>4} {'slices searched':>16} {'seconds':>8} {'top confirmed rule'}")
    for n in sizes:
        for d in (20, 100):
            X, y, s, _ = _data(n, d)
            t0 = time.perf_counter()
            res = discover_slices(None, X, y, scores=s, random_state=0)
            dt = time.perf_counter() - t0
            top = res.confirmed["rule"].iloc[0] if len(res.confirmed) else "-"
            print(f"{n:>8} {d:>4} {res.n_searched:>16} {dt:>8.2f} {top}")
    print("\nsplit_domains, 4 domains + overall, n_boot=1000")
    print(f"{'n':>8} {'metrics':>28} {'seconds':>8}")
    for n in sizes:
        X, y, s, meta = _data(n, 2)
        for metrics in (["accuracy", "sensitivity"], ["auroc", "accuracy", "sensitivity"], None):
            t0 = time.perf_counter()
            split_domains(None, X, y, by=meta["site"], scores=s, metrics=metrics, n_boot=1000,
                          random_state=0)
            dt = time.perf_counter() - t0
            label = "all 9 (default panel)" if metrics is None else ",".join(metrics)
            print(f"{n:>8} {label:>28} {dt:>8.2f}")


if __name__ == "__main__":
    main()
