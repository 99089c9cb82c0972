"""Overhead of ``confoundry.attribute`` over the equivalent direct Captum call, and scaling in n.

For integrated gradients, DeepLift and feature ablation, the wrapper and the direct Captum call
run on the same model, data and batch size in one process, alternating, best of ``--repeat``;
the ratio wrapper / direct is printed (target <= 1.10) with the absolute extra time: the
wrapper's cost is mostly fixed per call (input validation, a 64-row probe of the output, saving
and restoring the global RNG states), so a cheap method on few rows shows the largest ratio;
try ``--n 50000``. Then ``attribute`` is timed over n.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_attribution.py [--sizes 1000 10000 100000]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from captum.attr import DeepLift, FeatureAblation, IntegratedGradients

import confoundry as cf


def make_net(d: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(d, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32),
                               torch.nn.ReLU(), torch.nn.Linear(32, 1)).eval()


def direct(method: str, net: torch.nn.Module, X: np.ndarray, bs: int, n_steps: int) -> None:
    """The user's own Captum loop: chunks of bs rows, mean baseline, delta where it exists."""
    base = torch.as_tensor(X.mean(axis=0, keepdims=True), dtype=torch.float32)
    for s in range(0, len(X), bs):
        x = torch.as_tensor(X[s:s + bs], dtype=torch.float32)
        if method == "integrated_gradients":
            IntegratedGradients(net).attribute(x, baselines=base, n_steps=n_steps,
                                               internal_batch_size=bs,
                                               return_convergence_delta=True)
        elif method == "deeplift":
            DeepLift(net).attribute(x, baselines=base, return_convergence_delta=True)
        else:
            FeatureAblation(net).attribute(x, baselines=base,
                                           perturbations_per_eval=max(1, bs // len(x)))


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=5000, help="rows for the overhead ratio")
    p.add_argument("--d", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--n-steps", type=int, default=50)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000])
    a = p.parse_args()
    torch.set_num_threads(1)
    X = np.random.default_rng(0).normal(size=(a.n, a.d))
    net = make_net(a.d)
    model = cf.as_model(net, output="logits", batch_size=a.batch_size)
    print(f"overhead, n={a.n}, d={a.d}, batch_size={a.batch_size}, n_steps={a.n_steps}")
    print(f"{'method':22s} {'confoundry_s':>12s} {'captum_s':>10s} {'ratio':>7s} "
          f"{'extra_ms':>9s}")
    for method in ("integrated_gradients", "deeplift", "feature_ablation"):
        ours = best(lambda m=method: cf.attribute(model, X, method=m, n_steps=a.n_steps,
                                                  batch_size=a.batch_size, verbose=False),
                    a.repeat)
        theirs = best(lambda m=method: direct(m, net, X, a.batch_size, a.n_steps), a.repeat)
        print(f"{method:22s} {ours:12.3f} {theirs:10.3f} {ours / theirs:7.3f} "
              f"{1000 * (ours - theirs):9.1f}")
    print("\nscaling of confoundry.attribute (seconds)")
    print(f"{'n':>8s} " + " ".join(f"{m:>22s}" for m in ("integrated_gradients", "deeplift",
                                                            "feature_ablation")))
    for n in a.sizes:
        Xn = np.random.default_rng(1).normal(size=(n, a.d))
        row = [best(lambda m=m, Xn=Xn: cf.attribute(model, Xn, method=m, n_steps=a.n_steps,
                                             batch_size=a.batch_size, verbose=False), 1)
               for m in ("integrated_gradients", "deeplift", "feature_ablation")]
        print(f"{n:8d} " + " ".join(f"{t:22.3f}" for t in row))


if __name__ == "__main__":
    main()
