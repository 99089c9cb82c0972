"""Scale: ``probe_confounders``, ``split_domains`` and ``discover_slices`` at large n, in memory.

The data of issue 16: precomputed binary scores, 20 float features, two metadata columns (8
sites, 6 batches), 1000 permutations / bootstrap replicates (the defaults). Each function runs
in a fresh subprocess, so the peak memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of
that process, data included) is its own and not the largest of the previous ones.

Figures measured before the large-n path (issue 16, 2 cores): at n = 100k 7.9 s / 22.9 s /
0.4 s, at n = 1M 164 s / 239 s / 7.2 s. Targets at n = 1M on 2 cores: ``probe_confounders``
and ``split_domains`` each under 20 s, ``discover_slices`` under 10 s.

Run: ``OMP_NUM_THREADS=2 python benchmarks/bench_scale.py [--sizes 100000 1000000] [--big]
[--profile NAME --n 200000]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

#: the figures of issue 16 (seconds, 2 cores), before the large-n path.
BEFORE = {
    "probe_confounders": {100_000: 7.9, 1_000_000: 164.0},
    "split_domains": {100_000: 22.9, 1_000_000: 239.0},
    "discover_slices": {100_000: 0.4, 1_000_000: 7.2},
}
TARGET_1M = {"probe_confounders": 20.0, "split_domains": 20.0, "discover_slices": 10.0}
STEPS = tuple(BEFORE)


def data(n: int, seed: int = 0):
    """Features, labels, scores and metadata (8 sites, 6 batches) of ``n`` rows."""
    rng = np.random.default_rng(seed)
    site = rng.integers(0, 8, n)
    batch = rng.integers(0, 6, n)
    X = rng.normal(size=(n, 20)).astype(np.float32)
    X[:, 1] += 0.3 * site
    logit = X[:, 0] + 0.1 * site - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    s = 1 / (1 + np.exp(-(X[:, 0] + 0.2 * X[:, 1] + 0.05 * batch + rng.normal(size=n))))
    meta = pd.DataFrame({"site": site, "batch": batch})
    X = pd.DataFrame(X, columns=[f"x{j}" for j in range(20)])
    return X, y, s, meta


def run_step(name: str, n: int) -> dict:
    """Seconds of one step on ``n`` rows (in this process)."""
    import confoundry as cf

    X, y, s, meta = data(n)
    t0 = time.perf_counter()
    if name == "probe_confounders":
        res = cf.probe_confounders(y=y, metadata=meta, scores=s, n_permutations=1000,
                                   random_state=0, verbose=False)
        info = sorted(set(res.table["test"]))
    elif name == "split_domains":
        res = cf.split_domains(None, None, y, by=meta["site"], scores=s, n_boot=1000,
                               random_state=0, verbose=False)
        info = [res.params.get("bootstrap", "multinomial")]
    else:
        res = cf.discover_slices(None, X, y, metadata=meta, scores=s, random_state=0,
                                 verbose=False)
        info = [f"{len(res.confirmed)} confirmed"]
    dt = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"seconds": dt, "info": info, "peak_mb": peak_kb / 1024}


def measure(name: str, n: int) -> dict:
    """Run one step in a fresh interpreter: seconds and its peak resident memory (MB)."""
    code = ("import json, sys; sys.path.insert(0, 'benchmarks'); import bench_scale as b; "
            f"print(json.dumps(b.run_step({name!r}, {n})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--big", action="store_true", help="also n = 5M (minutes, about 6 GB)")
    ap.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    ap.add_argument("--profile", choices=STEPS, help="cProfile one step at --n rows")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--plot", help="also draw seconds against n to this PNG (docs/img/scale.png)")
    args = ap.parse_args()
    if args.profile:
        import cProfile
        import pstats

        cProfile.runctx("run_step(args.profile, args.n)", globals(), locals(), "/tmp/scale.prof")
        pstats.Stats("/tmp/scale.prof").sort_stats("cumulative").print_stats(35)
        return
    sizes = sorted(args.sizes + ([5_000_000] if args.big else []))
    if not args.big:
        print("n = 5M skipped (pass --big: about 6 GB of memory and several minutes)")
    print(f"{'step':<18} {'n':>9} {'seconds':>8} {'peak MB':>8} {'before s':>9} "
          f"{'speed-up':>8}  notes")
    rows = []
    for name in args.steps:
        for n in sizes:
            r = measure(name, n)
            rows.append((name, n, r["seconds"], r["peak_mb"]))
            before = BEFORE[name].get(n)
            ratio = f"{before / r['seconds']:.1f}x" if before else "-"
            note = ", ".join(r["info"])
            if n == 1_000_000:
                ok = "meets" if r["seconds"] < TARGET_1M[name] else "MISSES"
                note += f"; {ok} the {TARGET_1M[name]:.0f} s target"
            print(f"{name:<18} {n:>9} {r['seconds']:>8.2f} {r['peak_mb']:>8.0f} "
                  f"{before if before else '-':>9} {ratio:>8}  {note}", flush=True)
    if args.plot:
        plot(rows, args.plot)


def plot(rows: list[tuple[str, int, float, float]], path: str) -> None:
    """Seconds and peak memory against n, one line per step (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    for name in dict.fromkeys(r[0] for r in rows):
        pts = [(n, t, m) for s, n, t, m in rows if s == name]
        a.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name)
        b.plot([p[0] for p in pts], [p[2] for p in pts], "o-", label=name)
    for ax, what in ((a, "seconds (2 cores)"), (b, "peak memory (MB, data included)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows (n)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    a.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
