"""Fit time (and held-out AUROC) of each glass-box baseline as n and d grow.

Usage::

    python benchmarks/bench_baselines.py            # n in {1k, 10k, 100k} x d in {20, 100}
    python benchmarks/bench_baselines.py --quick    # n in {1k, 10k} x d = 20
    python benchmarks/bench_baselines.py --n 10000 --d 50 --ebm-vs-interpret
        # confoundry's EBM defaults against interpret's own defaults (slow: minutes)

The data are simulated (binary outcome with non-linear main effects and two interactions), so
the AUROC column shows what each baseline recovers; the Bayes AUROC is not 1.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import pandas as pd


def simulate(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:, 5:10] = (X[:, 5:10] > 0.3).astype(float)
    z = (0.8 * X[:, 0] - 0.6 * X[:, 1] ** 2 + np.sin(2 * X[:, 2]) + 0.7 * X[:, 5]
         - 0.5 * X[:, 6] + 0.6 * X[:, 3] * X[:, 4] + 0.4 * np.maximum(X[:, 7] * X[:, 8], 0)
         + 0.1 * X[:, 9:20].sum(axis=1))
    y = (rng.random(n) < 1 / (1 + np.exp(-(z - 0.3)))).astype(int)
    return X, y


def bench_baselines(ns: list[int], ds: list[int], kinds: tuple[str, ...], n_test: int,
                    seed: int, n_jobs: int) -> pd.DataFrame:
    import confoundry as cf
    from confoundry.stats import metric_panel

    rows = []
    for d in ds:
        for n in ns:
            X, y = simulate(n + n_test, d, seed)
            Xtr, ytr, Xte, yte = X[:n], y[:n], X[n:], y[n:]
            for name in kinds:
                c0 = time.process_time()
                m = cf.fit_baselines(Xtr, ytr, kinds=(name,), random_state=seed, verbose=False,
                                     n_jobs=n_jobs, ebm_params={"n_jobs": n_jobs})[name]
                cpu = time.process_time() - c0
                t0 = time.perf_counter()
                s = m.predict_scores(Xte)
                pred_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                m.explain(Xte[:1000])
                expl_s = time.perf_counter() - t0
                rows.append({
                    "model": name, "n": n, "d": d,
                    "fit_s": round(m.tuning["fit_seconds"], 2), "fit_cpu_s": round(cpu, 2),
                    "n_configs": m.tuning["n_configs"], "cv_folds": m.tuning["cv_folds"],
                    "n_fits": m.tuning["n_fits"],
                    "predict_s": round(pred_s, 3), "explain_1k_s": round(expl_s, 3),
                    "auroc": round(metric_panel(yte, s, task="binary",
                                                metrics=["auroc"])["auroc"], 4),
                })
                print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1),
                      flush=True)
    return pd.DataFrame(rows)


def bench_ebm_vs_interpret(n: int, d: int, n_test: int, seed: int, n_jobs: int
                           ) -> pd.DataFrame:
    from interpret.glassbox import ExplainableBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from confoundry.models import EBM_DEFAULTS

    X, y = simulate(n + n_test, d, seed)
    Xtr, ytr, Xte, yte = X[:n], y[:n], X[n:], y[n:]
    configs = {
        "confoundry defaults": {**EBM_DEFAULTS, "n_jobs": n_jobs},
        "1 bag, no interactions": {"outer_bags": 1, "interactions": 0, "n_jobs": n_jobs},
        "interpret defaults": {"n_jobs": n_jobs},
    }
    rows = []
    for label, params in configs.items():
        t0, c0 = time.perf_counter(), time.process_time()
        m = ExplainableBoostingClassifier(random_state=seed, **params).fit(Xtr, ytr)
        fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        auc = roc_auc_score(yte, m.predict_proba(Xte)[:, 1])
        rows.append({"config": label, "n": n, "d": d, "fit_s": round(fit_s, 1),
                     "fit_cpu_s": round(cpu_s, 1), "auroc": round(auc, 4), "params": params})
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="n in {1k, 10k}, d = 20")
    p.add_argument("--n", type=int, nargs="*", help="training sizes")
    p.add_argument("--d", type=int, nargs="*", help="numbers of features")
    p.add_argument("--kinds", nargs="*", default=["ebm", "logistic", "tree"])
    p.add_argument("--n-test", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-jobs", type=int, default=1,
                   help="n_jobs of the EBM and the grid searches (1: fit_cpu_s is all the work)")
    p.add_argument("--ebm-vs-interpret", action="store_true",
                   help="compare confoundry's EBM defaults with interpret's (one n, one d)")
    args = p.parse_args(argv)
    ns = args.n or ([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])
    ds = args.d or ([20] if args.quick else [20, 100])
    print(f"# {platform.platform()}, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} logical cores", flush=True)
    if args.ebm_vs_interpret:
        table = bench_ebm_vs_interpret(ns[0], ds[0], args.n_test, args.seed, args.n_jobs)
    else:
        table = bench_baselines(ns, ds, tuple(args.kinds), args.n_test, args.seed, args.n_jobs)
    print()
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
