"""Confounder probes: wall time against n (1000 permutations, 3 metadata columns).

Three timings per n:

* ``outputs``: ``probe_confounders`` on precomputed binary scores (label association,
  metadata-only, output marginal / conditional and error probes; 15 rows). The target is
  under 5 s at n = 10k on 2 cores.
* ``+ embedding``: the same with a torch MLP and ``layer="3"`` (a 32-unit hidden layer), so
  the model's forward pass, the hook and the two embedding probes are included (21 rows).
* ``regression (CPT)``: a continuous label, where the conditional probes run the conditional
  permutation test of Berrett et al. (50 MCMC sweeps per draw) for each of the 3 columns.

For comparison, ANCHORS.md lists mlconfound's ``partial_confound_test`` (one 1-D output, one
metadata column, conditional probe only) at 94 s for n = 10k on the same kind of machine.

Run: ``OMP_NUM_THREADS=2 python benchmarks/bench_probes.py [--quick] [--no-cpt]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

import confoundry as cf


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    site = rng.integers(0, 4, n)
    meta = pd.DataFrame({"site": site, "batch": rng.choice(list("abcdef"), n),
                         "age": rng.normal(60, 10, n)})
    X = rng.normal(size=(n, 20)).astype(np.float32)
    X[:, 1] += 0.5 * site
    y = (rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] + 0.3 * site - 0.5)))).astype(int)
    s = 1 / (1 + np.exp(-(X[:, 0] + 0.2 * X[:, 1] + rng.normal(size=n))))
    yr = X[:, 0] + 0.3 * site + rng.normal(size=n)
    sr = yr + rng.normal(size=n)
    return X, y, s, yr, sr, meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="n up to 10k only")
    ap.add_argument("--no-cpt", action="store_true", help="skip the regression (CPT) timing")
    args = ap.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32),
                              torch.nn.ReLU(), torch.nn.Linear(32, 1))
    kw = {"n_permutations": 1000, "random_state": 0, "verbose": False}
    print(f"torch threads {torch.get_num_threads()}; 1000 permutations; 3 metadata columns")
    print(f"{'n':>8} {'outputs s':>10} {'+ embedding s':>14} {'regression (CPT) s':>19}")
    for n in sizes:
        X, y, s, yr, sr, meta = _data(n)
        t0 = time.perf_counter()
        cf.probe_confounders(y=y, metadata=meta, scores=s, **kw)
        t_out = time.perf_counter() - t0
        t0 = time.perf_counter()
        cf.probe_confounders(net, X, y, meta, layer="3", **kw)
        t_emb = time.perf_counter() - t0
        t_cpt = float("nan")
        if not args.no_cpt and n <= 10_000:
            t0 = time.perf_counter()
            cf.probe_confounders(y=yr, metadata=meta, scores=sr, **kw)
            t_cpt = time.perf_counter() - t0
        print(f"{n:>8} {t_out:>10.2f} {t_emb:>14.2f} {t_cpt:>19.2f}", flush=True)


if __name__ == "__main__":
    main()
