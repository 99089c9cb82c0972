"""End-to-end ``Audit`` time and report size as n and d grow.

A PyTorch MLP (d-64-32-1, 30 epochs) on synthetic tabular data with two metadata columns (one
of them confounded with the label), the training data for the glass-box baselines and two
expectations. Prints the wall time of ``Audit.run()``, the time of its ``baselines`` step
(``fit_baselines`` on the same training data, in the same run) and the ratio of the two, the
domains step, its three slowest steps, and the size of the HTML and JSON reports (under 5 MB for
10k x 50). The last row is a harder 10k x 50 set with pairwise interactions.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_audit.py [--quick]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import confoundry as cf  # noqa: E402


def _data(n: int, d: int, seed: int, interactions: bool = False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:, 0] = (X[:, 0] > 0.5).astype(float)
    site = rng.choice(["a", "b", "c"], n)
    logit = 1.2 * X[:, 1] - 0.8 * X[:, 0] + 0.6 * X[:, 2] ** 2 - 0.5 + 0.7 * (site == "a")
    if interactions:  # the harder set: pairwise interactions the EBM has to search for
        logit = logit + 0.8 * X[:, 3] * X[:, 4] - 0.6 * X[:, 5] * X[:, 0] + 0.5 * np.sin(2 * X[:, 6])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    meta = pd.DataFrame({"site": site, "batch": rng.choice(["b1", "b2"], n)})
    cols = [f"x{j}" for j in range(d)]
    return pd.DataFrame(X, columns=cols), y, meta


def _mlp(X: pd.DataFrame, y: np.ndarray, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    d = X.shape[1]
    net = torch.nn.Sequential(torch.nn.Linear(d, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32),
                              torch.nn.ReLU(), torch.nn.Linear(32, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    xt = torch.tensor(X.to_numpy(), dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32)
    loss = torch.nn.BCEWithLogitsLoss()
    for _ in range(30):
        for idx in torch.randperm(len(xt)).split(256):
            opt.zero_grad()
            loss(net(xt[idx]).squeeze(-1), yt[idx]).backward()
            opt.step()
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 1k, d = 20 only")
    args = ap.parse_args()
    grid = ([(1_000, 20, False)] if args.quick else
            [(1_000, 20, False), (10_000, 20, False), (10_000, 50, False), (10_000, 50, True)])
    print(f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"{'n test':>7} {'d':>3} {'inter':>5} {'audit s':>8} {'base s':>7} {'ratio':>6} "
          f"{'dom s':>6} {'HTML MB':>8} {'JSON MB':>8}  slowest steps (s)")
    for n, d, inter in grid:
        Xtr, ytr, _ = _data(n, d, 1, inter)
        Xte, yte, meta = _data(n, d, 2, inter)
        net = _mlp(Xtr, ytr)
        t0 = time.perf_counter()
        res = cf.Audit(net, Xte, yte, metadata=meta, X_train=Xtr, y_train=ytr,
                       expectations={"x1": "increasing", "x0": "increasing"}, random_state=0,
                       verbose=False).run()
        dt = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            html, js = Path(tmp) / "r.html", Path(tmp) / "r.json"
            res.to_html(html)
            res.to_json(js)
            mb_h, mb_j = html.stat().st_size / 2**20, js.stat().st_size / 2**20
        slow = sorted(((s.seconds or 0.0, k) for k, s in res.steps.items()), reverse=True)[:3]
        steps = ", ".join(f"{k} {t:.1f}" for t, k in slow)
        base_s = res.steps["baselines"].seconds
        dom_s = res.steps["domains"].seconds
        print(f"{n:>7} {d:>3} {'yes' if inter else 'no':>5} {dt:>8.1f} {base_s:>7.1f} "
              f"{dt / base_s:>6.2f} {dom_s:>6.1f} {mb_h:>8.2f} {mb_j:>8.2f}  {steps}", flush=True)


if __name__ == "__main__":
    main()
