"""Confounder probes: wall time against n (1000 permutations, 3 metadata columns).

Three timings per n:

* ``outputs``: ``probe_confounders`` on precomputed binary scores (label association,
  metadata-only, output marginal / conditional and error probes; 15 rows). The target is
  under 5 s at n = 10k on 2 cores.
* ``+ embedding``: the same with a torch MLP and ``layer="3"`` (a 32-unit hidden layer), so
  the model's forward pass, the hook and the two embedding probes are included (21 rows).
* ``regression (CPT)``: a continuous label, where the conditional probes run the conditional
  permutation test of Berrett et al. (50 MCMC sweeps per draw) for each of the 3 columns.

A fourth timing, ``pathways``: ``confounder_pathways`` for 2 metadata columns (4 sites, 6
batches, both shifting a few of the inputs) x 50 features at n = 10k, with the defaults (1000
permutations, 200 bootstrap replicates, top 3) and a torch MLP: 2 x 52 batched re-scorings,
the permutation tests of what every feature carries, the bootstrap CIs of every share, the
model's attribution (integrated gradients on 512 rows) and the derived-from-inputs check.
The target is under 30 s on 2 cores.

For comparison, ANCHORS.md lists mlconfound's ``partial_confound_test`` (one 1-D output, one
metadata column, conditional probe only) at 94 s for n = 10k on the same kind of machine.

Run: ``OMP_NUM_THREADS=2 python benchmarks/bench_probes.py [--quick] [--no-cpt]
[--pathways-only]``
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


def bench_pathways(n: int = 10_000, n_features: int = 50, seed: int = 0) -> float:
    """Seconds of ``confounder_pathways`` for 2 metadata columns x ``n_features`` features."""
    rng = np.random.default_rng(seed)
    site = rng.integers(0, 4, n)
    batch = rng.integers(0, 6, n)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    X[:, 1] += 0.4 * site          # the site shifts two inputs, the batch two others
    X[:, 2] += 0.2 * site
    X[:, 3] += 0.5 * (batch % 3)
    X[:, 4] += 0.5 * (batch > 2)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] + 0.5 * X[:, 5] - 0.2)))).astype(int)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(n_features, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 1))
    meta = pd.DataFrame({"site": site, "batch": batch})
    names = [f"f{j}" for j in range(n_features)]
    model = cf.as_model(net, output="logits")
    t0 = time.perf_counter()
    res = cf.confounder_pathways(model, pd.DataFrame(X, columns=names), y, meta,
                                 columns=["site", "batch"], random_state=0, verbose=False)
    elapsed = time.perf_counter() - t0
    for c in ("site", "batch"):
        r = res.row(c)
        print(f"  {c}: {r['verdict']} {list(r['through'])}, partial R² = "
              f"{r['total_effect']:.3g}, top-3 share {r['top_k_share']:.2f}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="n up to 10k only")
    ap.add_argument("--no-cpt", action="store_true", help="skip the regression (CPT) timing")
    ap.add_argument("--pathways-only", action="store_true",
                    help="only the confounder_pathways timing")
    args = ap.parse_args()
    if args.pathways_only:
        print(f"pathways, 2 metadata columns x 50 features, n = 10000: "
              f"{bench_pathways():.2f} s (target < 30 s)")
        return
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
    print(f"pathways, 2 metadata columns x 50 features, n = 10000: {bench_pathways():.2f} s "
          "(target < 30 s)")


if __name__ == "__main__":
    main()
