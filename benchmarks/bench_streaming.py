"""Streaming inputs: peak memory and wall time of ``Audit.run()`` on inputs read in batches.

Three cases, each run in a fresh subprocess (so that one case's memory never counts in
another's):

* ``images``: a map-style torch ``Dataset`` of 20,000 1 x 128 x 128 float32 images made on
  the fly from (seed, index) (1.3 GB if materialised as float32, 2.6 GB as float64). Class 1
  has a faint blob in the centre; each of 4 sites adds a stripe of its own intensity along the
  top edge (a scanner artefact) and the prevalence differs by site. A small CNN (two strided
  convolutions, ``AdaptiveAvgPool2d``, ``Linear``) is trained briefly on a separate generated
  training Dataset (4,000 images), then
  ``Audit(cnn, dataset, metadata=meta, layer=cnn[2], X_train=train_dataset)`` runs every
  step (the labels come from the datasets, which yield ``(x, y)``). Contract: peak memory
  growth during the audit < 700 MB.
* ``anndata``: an ``AnnData`` of 20,000 test + 20,000 training cells x 2,000 genes, sparse CSR
  at 5 % density (float32), ``obs["disease"]`` carried by 20 genes (expressed more often and
  higher in diseased cells) and ``obs["batch"]`` (4 batches, shifting 20 other genes, with a
  batch-dependent prevalence). An MLP is trained briefly on the training matrix (one dense
  minibatch at a time), then
  ``Audit(mlp, adata_test, "disease", metadata=["batch"], X_train=adata_train,
  y_train="disease")`` runs every step. Contract: peak memory growth < 640 MB (one dense
  float64 copy of the two matrices).
* ``tabular``: for comparison, an in-memory 10,000 x 50 DataFrame with a trained MLP (the path
  every other benchmark measures); no contract, its time and memory are printed.

Peak memory is ``ru_maxrss`` (the process's high-water mark, KiB on Linux) read just before
``Audit(...)`` (after the datasets and the trained model exist) and after ``run()``; the
growth is the difference ("growth MB", the contract). Just before the audit the high-water
mark is reset to the resident size (``5 > /proc/self/clear_refs``, Linux), so that what
building the data and training the model took does not hide the audit's own peak; "HWM
growth" is ``VmHWM`` after the audit minus ``VmRSS`` before it (the same figure read from
/proc; the two agree unless a thread that exited kept an older peak in ``ru_maxrss``). The
EBM baseline fits in joblib worker processes, which neither figure counts: "children MB" is
the peak summed PSS of the child processes, sampled every 0.2 s during the audit. Every
step's run function is wrapped (in this process only) to read ``ru_maxrss`` before and after
it, so the step tables show where the high-water mark rose ("+peak MB"); "(scoring)" is the
model's one scoring pass over the test set before the first step, "(record)" what ``run()``
did after the last step (the reproducibility record hashes the test and training data batch
by batch). Rendering the HTML report is measured after the audit (``--no-report`` skips it).

Run: ``OMP_NUM_THREADS=2 python benchmarks/bench_streaming.py`` (every case at the sizes
above, about 10 minutes on 2 cores). Options: ``--case {images,anndata,tabular,all}``,
``--n-images``, ``--n-train-images``, ``--n-cells``, ``--n-genes``, ``--n-rows``,
``--n-boot``, ``--n-permutations``, ``--max-attribution-rows`` (the Audit's, default None: 1000, fewer for large image rows),
``--mmap-threshold BYTES`` (glibc's ``MALLOC_MMAP_THRESHOLD_`` for the cases: a fixed
threshold; by default glibc raises it as large blocks are freed, and the heap of the image
case then grows by a different amount from run to run),
``--batch-size N`` (the model is passed as ``as_model(net, batch_size=N)`` instead of the
bare module, whose adapter uses 1024 rows per forward pass), ``--steps a,b,c`` (run only
those steps), ``--no-report``. A quick check: ``--n-images 600 --n-cells 1000 --n-genes 300
--n-boot 50 --n-permutations 50``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import json
import os
import resource
import subprocess
import sys
import threading
import time
import traceback
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

import confoundry as cf

#: the memory contracts of the issue (MB of peak growth during ``Audit.run()``).
CONTRACT_MB = {"images": 700.0, "anndata": 640.0}
MARK = "BENCH_RESULT "


# ---------------------------------------------------------------- memory
def maxrss_mb() -> float:
    """The process's peak resident set size so far (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Reset the high-water mark to the current RSS (Linux: ``5 > /proc/self/clear_refs``), so
    that what building the data and training the model used does not hide the audit's peak."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def hwm_mb() -> float:
    """The high-water mark of the RSS (``VmHWM``), or NaN where /proc is missing."""
    return _status("VmHWM")


def rss_mb() -> float:
    """The current resident set size (``VmRSS``), or NaN where /proc is missing."""
    return _status("VmRSS")


def _status(key: str) -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _kb(path: str, key: str) -> float:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


class ChildSampler(threading.Thread):
    """The peak summed PSS of this process's descendants (the EBM's joblib worker processes,
    whose memory ``ru_maxrss`` of this process does not include), sampled every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self.halt = threading.Event()

    def children(self) -> list[int]:
        parent: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as fh:
                        parent[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        out, todo = [], [os.getpid()]
        while todo:
            p = todo.pop()
            kids = [c for c, pp in parent.items() if pp == p]
            out += kids
            todo += kids
        return out

    def run(self) -> None:
        if not os.path.isdir("/proc"):
            return
        while not self.halt.is_set():
            total = sum(_kb(f"/proc/{c}/smaps_rollup", "Pss") or _kb(f"/proc/{c}/status", "VmRSS")
                        for c in self.children()) / 1024
            self.peak_mb = max(self.peak_mb, total)
            self.halt.wait(0.2)


def trace_steps() -> dict[str, tuple[float, float]]:
    """Wrap every audit step so that ``ru_maxrss`` is read before and after it runs.

    ``Audit.run()`` reads ``confoundry.audit._steps.STEPS`` when it starts; the wrappers keep
    the step functions' names and change nothing else.
    """
    from confoundry.audit import _steps

    trace: dict[str, tuple[float, float]] = {}

    def wrap(st: Any) -> Any:
        fn = st.run

        @functools.wraps(fn)
        def run(ctx: Any) -> Any:
            before = maxrss_mb()
            try:
                return fn(ctx)
            finally:
                trace[st.name] = (before, maxrss_mb())

        return dataclasses.replace(st, run=run)

    _steps.STEPS = tuple(wrap(st) for st in _steps.STEPS)
    return trace


# ---------------------------------------------------------------- images
SIDE = 128
_YY, _XX = np.mgrid[:SIDE, :SIDE]
#: the class-1 signal: a faint Gaussian blob in the centre of the image.
BLOB = np.exp(-((_YY - SIDE / 2) ** 2 + (_XX - SIDE / 2) ** 2) / (2 * 12.0 ** 2)).astype(
    np.float32)


class Images(Dataset):
    """1 x 128 x 128 float32 images made on the fly from (seed, index): unit noise, a faint
    central blob for class 1, and a stripe along the top edge whose intensity is the site's
    (0..3); the prevalence rises with the site, so the stripe is a shortcut to the label."""

    def __init__(self, n: int, seed: int, signal: float = 0.15) -> None:
        rng = np.random.default_rng(seed)
        self.n, self.seed, self.signal = n, seed, signal
        self.site = rng.integers(0, 4, n)
        prevalence = np.array([0.3, 0.4, 0.5, 0.7])[self.site]
        self.y = (rng.random(n) < prevalence).astype(np.int64)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        i = int(i)
        rng = np.random.default_rng((self.seed, i))
        x = rng.standard_normal((1, SIDE, SIDE), dtype=np.float32)
        x[0] += self.signal * self.y[i] * BLOB
        x[0, :6, :] += 0.4 * self.site[i]
        return torch.from_numpy(x), int(self.y[i])


def small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 5, stride=2, padding=2), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(16 * 16, 1))


def image_case(args: argparse.Namespace) -> dict[str, Any]:
    side = SIDE
    net = small_cnn()
    train, test = Images(args.n_train_images, 1), Images(args.n_images, 2)
    t0 = time.perf_counter()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(args.epochs):
        for xb, yb in DataLoader(train, batch_size=64, shuffle=True):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xb)[:, 0],
                                                                        yb.float())
            loss.backward()
            opt.step()
    net.eval()
    train_s = time.perf_counter() - t0
    meta = pd.DataFrame({"site": [f"s{s}" for s in test.site]})
    size = (f"{args.n_images} x 1 x {side} x {side} images "
            f"(+ {args.n_train_images} training)")
    dense_mb = args.n_images * side * side * 4 / 2**20

    def audit(kw: dict[str, Any]) -> Any:
        return cf.Audit(model(net, args), test, metadata=meta, layer=net[2], X_train=train,
                        **kw)

    out = run_audit(audit, args)
    res = out.pop("result")
    if res is not None and "probes" in res.results:
        out["notes"].append("embedding pooling: "
                            + str(res["probes"].info.get("embedding_pooling")))
    return {"case": "images", "size": size, "dense_mb": dense_mb, "train_s": train_s, **out}


# ---------------------------------------------------------------- AnnData
def _cells(n: int, genes: int, seed: int, density: float = 0.05):
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    batch = rng.integers(0, 4, n)
    y = (rng.random(n) < np.array([0.3, 0.45, 0.55, 0.7])[batch]).astype(np.int64)
    blocks = []
    for start in range(0, n, 2048):  # block by block: no dense or n x genes intermediate
        m = min(2048, n - start)
        mask = rng.random((m, genes)) < density
        # the disease switches on 20 genes: expressed in 15 % more of the diseased cells
        mask[:, :20] |= (rng.random((m, 20)) < 0.15) & (y[start:start + m, None] == 1)
        r, c = np.nonzero(mask)
        vals = rng.exponential(1.0, len(r)).astype(np.float32)
        blocks.append(sp.csr_matrix((vals, (r, c)), shape=(m, genes), dtype=np.float32))
    X = sp.vstack(blocks, format="csr")
    row = np.repeat(np.arange(n), np.diff(X.indptr))
    col = X.indices
    disease_genes = col < 20                     # and raises their level
    X.data[disease_genes] += 1.5 * y[row[disease_genes]]
    batch_genes = (col >= 20) & (col < 40)       # each batch shifts 20 others
    X.data[batch_genes] += 0.5 * batch[row[batch_genes]]
    obs = pd.DataFrame({"disease": y,
                        "batch": pd.Categorical([f"b{b}" for b in batch])},
                       index=[f"cell{seed}_{i}" for i in range(n)])
    var = pd.DataFrame(index=[f"g{j}" for j in range(genes)])
    return ad.AnnData(X, obs=obs, var=var)


def anndata_case(args: argparse.Namespace) -> dict[str, Any]:
    a_train = _cells(args.n_cells, args.n_genes, 1)
    a_test = _cells(args.n_cells, args.n_genes, 2)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(args.n_genes, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 1))
    t0 = time.perf_counter()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    X, y = a_train.X, a_train.obs["disease"].to_numpy()
    rng = np.random.default_rng(0)
    for _ in range(args.epochs):
        for idx in np.array_split(rng.permutation(X.shape[0]), max(1, X.shape[0] // 256)):
            xb = torch.from_numpy(X[np.sort(idx)].toarray())  # one dense minibatch
            yb = torch.from_numpy(y[np.sort(idx)].astype(np.float32))
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(net(xb)[:, 0], yb).backward()
            opt.step()
    net.eval()
    train_s = time.perf_counter() - t0
    size = (f"{args.n_cells} + {args.n_cells} cells x {args.n_genes} genes, CSR 5% "
            f"({a_test.X.nnz + a_train.X.nnz:,} stored values)")
    dense_mb = 2 * args.n_cells * args.n_genes * 8 / 2**20

    def audit(kw: dict[str, Any]) -> Any:
        return cf.Audit(model(net, args), a_test, "disease", metadata=["batch"], X_train=a_train,
                        y_train="disease", **kw)

    out = run_audit(audit, args)
    res = out.pop("result")
    if res is not None and "baselines" in res.results:
        for kind, m in res["baselines"].items():
            sel = m.tuning.get("feature_selection")
            if sel:
                out["notes"].append(f"{kind}: {sel['n_selected']} of {sel['n_features']} "
                                    f"genes selected ({sel.get('method', 'F-test')})")
            if m.tuning.get("sparse_input"):
                out["notes"].append(f"{kind}: fitted on the sparse matrix")
    return {"case": "anndata", "size": size, "dense_mb": dense_mb, "train_s": train_s, **out}


# ---------------------------------------------------------------- in-memory table
def tabular_case(args: argparse.Namespace) -> dict[str, Any]:
    n, d = args.n_rows, 50

    def table(seed: int):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, d))
        site = rng.choice(["a", "b", "c"], n)
        logit = 1.2 * X[:, 1] - 0.8 * X[:, 0] + 0.6 * X[:, 2] ** 2 - 0.5 + 0.7 * (site == "a")
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        return (pd.DataFrame(X, columns=[f"x{j}" for j in range(d)]), y,
                pd.DataFrame({"site": site}))

    Xtr, ytr, _ = table(1)
    Xte, yte, meta = table(2)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(d, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    t0 = time.perf_counter()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt = torch.tensor(Xtr.to_numpy(), dtype=torch.float32)
    yt = torch.tensor(ytr, dtype=torch.float32)
    for _ in range(args.epochs * 5):
        for idx in torch.randperm(n).split(256):
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(net(xt[idx])[:, 0],
                                                                 yt[idx]).backward()
            opt.step()
    net.eval()
    train_s = time.perf_counter() - t0

    def audit(kw: dict[str, Any]) -> Any:
        return cf.Audit(model(net, args), Xte, yte, metadata=meta, X_train=Xtr, y_train=ytr,
                        **kw)

    out = run_audit(audit, args)
    out.pop("result")
    return {"case": "tabular", "size": f"{n} x {d} DataFrame (+ {n} training), in memory",
            "dense_mb": 2 * n * d * 8 / 2**20, "train_s": train_s, **out}


# ---------------------------------------------------------------- one audit, measured
def model(net: torch.nn.Module, args: argparse.Namespace) -> Any:
    """The model as given to ``Audit``: the module itself, or (``--batch-size``) an adapter
    with that many rows per forward pass (``as_model``'s default is 1024)."""
    if args.batch_size is None:
        return net
    return cf.as_model(net, output="logits", batch_size=args.batch_size, name="net")


def run_audit(make: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Build and run the audit, reading the peak RSS before, after, and around each step."""
    trace = trace_steps()
    kw: dict[str, Any] = {"n_boot": args.n_boot, "n_permutations": args.n_permutations,
                          "max_attribution_rows": args.max_attribution_rows,
                          "random_state": 0, "verbose": False}
    if args.steps:
        kw["steps"] = args.steps.split(",")
    out: dict[str, Any] = {"peak_unreset_mb": maxrss_mb(), "reset": reset_peak(),
                           "rss_before_mb": rss_mb(), "peak_before_mb": maxrss_mb(),
                           "hwm_before_mb": hwm_mb(), "notes": [], "error": None,
                           "result": None}
    sampler = ChildSampler()
    sampler.start()
    t0 = time.perf_counter()
    try:
        res = make(kw).run()
    except Exception:  # the audit itself raised (not one step): reported, not hidden
        sampler.halt.set()
        out.update(audit_s=time.perf_counter() - t0, peak_after_mb=maxrss_mb(),
                   hwm_after_mb=hwm_mb(), error=traceback.format_exc(), steps=[], report_s=None,
                   peak_report_mb=None, children_mb=sampler.peak_mb)
        return out
    out["audit_s"] = time.perf_counter() - t0
    sampler.halt.set()
    sampler.join()
    out["children_mb"] = sampler.peak_mb
    out["peak_after_mb"] = maxrss_mb()
    out["hwm_after_mb"] = hwm_mb()
    out["result"] = res
    rows = []
    frame = res.steps_frame()
    for r in frame.itertuples(index=False):
        before, after = trace.get(r.name, (float("nan"), float("nan")))
        rows.append({"name": r.name, "status": r.status, "seconds": r.seconds,
                     "reason": r.reason, "peak_before_mb": before, "peak_after_mb": after,
                     "error_type": r.error_type, "error_message": r.error_message,
                     "where": r.where})
    out["steps"] = rows
    out["score_peak_mb"] = min((b for b, _ in trace.values()), default=float("nan"))
    if "performance" in res.results:
        perf = res["performance"].to_frame().set_index("metric")["estimate"]
        out["notes"].append(f"the model's test {perf.index[0]} = {perf.iloc[0]:.3f}")
    out["notes"].extend(str(n) for n in res.notes)
    out["report_s"] = out["peak_report_mb"] = None
    if not args.no_report:
        t0 = time.perf_counter()
        try:
            html = res.to_html()
            out["report_mb"] = len(html.encode()) / 2**20
        except Exception:
            out["notes"].append("to_html failed: " + traceback.format_exc())
        out["report_s"] = time.perf_counter() - t0
        out["peak_report_mb"] = maxrss_mb()
    return out


def worker(args: argparse.Namespace) -> None:
    fn = {"images": image_case, "anndata": anndata_case, "tabular": tabular_case}[args.worker]
    try:
        out = fn(args)
    except Exception:
        out = {"case": args.worker, "error": traceback.format_exc(), "steps": []}

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, (np.floating, np.integer)):
            return clean(v.item())
        return v

    out = {k: clean(v) for k, v in out.items()}
    out["steps"] = [{k: clean(v) for k, v in s.items()} for s in out.get("steps", [])]
    print(MARK + json.dumps(out, default=str), flush=True)


# ---------------------------------------------------------------- the parent: tables
def _fmt(v: Any, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def run_case(case: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", case]
    for flag in ("n_images", "n_train_images", "n_cells", "n_genes", "n_rows", "n_boot",
                 "n_permutations", "max_attribution_rows", "epochs"):
        if getattr(args, flag) is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.steps:
        cmd += ["--steps", args.steps]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    if args.no_report:
        cmd += ["--no-report"]
    env = dict(os.environ)
    if args.mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                              env=env)
    except subprocess.TimeoutExpired as exc:
        return {"case": case, "error": f"timed out after {args.timeout} s "
                f"(stderr tail: {(exc.stderr or b'')[-2000:]!r})", "steps": []}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if not lines:
        return {"case": case, "error": f"the worker exited with {proc.returncode} and no "
                f"result; stderr tail:\n{proc.stderr[-4000:]}", "steps": []}
    out = json.loads(lines[-1][len(MARK):])
    out["process_s"] = time.perf_counter() - t0
    return out


def print_case(out: dict[str, Any]) -> None:
    case = out["case"]
    print(f"\n=== {case}: {out.get('size', '')}")
    if out.get("steps"):
        print(f"  {'step':<20} {'status':<8} {'seconds':>8} {'+peak MB':>9}  reason")
        base = out.get("peak_before_mb")
        start = out.get("score_peak_mb")
        if base is not None and start is not None:
            print(f"  {'(scoring)':<20} {'ran':<8} {'':>8} {start - base:>9.0f}  "
                  "the one pass over the test set, before the steps")
        for s in out["steps"]:
            b, a = s.get("peak_before_mb"), s.get("peak_after_mb")
            grow = "" if a is None or b is None else f"{a - b:.0f}"
            reason = (s.get("reason") or "")[:110]
            print(f"  {s['name']:<20} {s['status']:<8} {_fmt(s.get('seconds')):>8} "
                  f"{grow:>9}  {reason}")
        last = max((s["peak_after_mb"] for s in out["steps"]
                    if s.get("peak_after_mb") is not None), default=None)
        end = out.get("peak_after_mb")
        if last is not None and end is not None:
            print(f"  {'(record)':<20} {'ran':<8} {'':>8} {end - last:>9.0f}  after the steps: "
                  "the reproducibility record (fingerprints of the data, batch by batch)")
        for s in out["steps"]:
            if s["status"] == "failed":
                print(f"  FAILED {s['name']}: {s.get('error_type')}: "
                      f"{(s.get('error_message') or '')[:2000]}\n    at {s.get('where')}")
    for note in out.get("notes", []):
        print(f"  note: {note[:300]}")
    if out.get("error"):
        print(f"  ERROR:\n{out['error']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=["images", "anndata", "tabular", "all"], default="all")
    ap.add_argument("--n-images", type=int, default=20_000, help="test images (default 20000)")
    ap.add_argument("--n-train-images", type=int, default=4_000,
                    help="training images for the CNN and X_train (default 4000)")
    ap.add_argument("--n-cells", type=int, default=20_000,
                    help="test cells, and as many training cells (default 20000)")
    ap.add_argument("--n-genes", type=int, default=2_000, help="genes (default 2000)")
    ap.add_argument("--n-rows", type=int, default=10_000,
                    help="rows of the in-memory tabular case (default 10000)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--n-permutations", type=int, default=1000)
    ap.add_argument("--max-attribution-rows", type=int, default=None,
                    help="the Audit's (default None: 1000, fewer for large image rows)")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs of the models")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="rows per forward pass (default: as_model's 1024)")
    ap.add_argument("--steps", default=None,
                    help="comma-separated audit steps to run (default: all)")
    ap.add_argument("--no-report", action="store_true", help="do not render the HTML report")
    ap.add_argument("--mmap-threshold", type=int, default=None,
                    help="run the cases with MALLOC_MMAP_THRESHOLD_ set to this many bytes "
                    "(glibc: fixed, no dynamic threshold)")
    ap.add_argument("--timeout", type=int, default=1500, help="seconds per case (default 1500)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    cases = ["images", "anndata", "tabular"] if args.case == "all" else [args.case]
    print(f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; n_boot {args.n_boot}, "
          f"n_permutations {args.n_permutations}; batch size {args.batch_size or 'default'}; "
          f"MALLOC_MMAP_THRESHOLD_ {args.mmap_threshold or 'unset'}; each case in a fresh "
          "process")
    results = []
    for case in cases:
        out = run_case(case, args)
        results.append(out)
        print_case(out)
    print(f"\n{'case':<8} {'dense MB':>9} {'train s':>8} {'audit s':>8} {'RSS MB':>7} "
          f"{'peak after':>10} {'growth MB':>9} {'HWM growth':>10} {'contract':>9} "
          f"{'children MB':>11} "
          f"{'report s':>8} {'+report MB':>10}")
    for out in results:
        case = out["case"]
        before, after = out.get("peak_before_mb"), out.get("peak_after_mb")
        growth = None if before is None or after is None else after - before
        h0, h1 = out.get("rss_before_mb"), out.get("hwm_after_mb")
        hwm = None if h0 is None or h1 is None else h1 - h0
        limit = CONTRACT_MB.get(case)
        verdict = ("-" if limit is None or growth is None
                   else f"{'<' if growth < limit else '>='} {limit:.0f}")
        rep = out.get("peak_report_mb")
        print(f"{case:<8} {_fmt(out.get('dense_mb'), '.0f'):>9} {_fmt(out.get('train_s')):>8} "
              f"{_fmt(out.get('audit_s')):>8} {_fmt(h0, '.0f'):>7} {_fmt(after, '.0f'):>10} "
              f"{_fmt(growth, '.0f'):>9} {_fmt(hwm, '.0f'):>10} {verdict:>9} "
              f"{_fmt(out.get('children_mb'), '.0f'):>11} "
              f"{_fmt(out.get('report_s')):>8} "
              f"{_fmt(None if rep is None or after is None else rep - after, '.0f'):>10}")
    if any(not o.get("reset", True) for o in results):
        print("(the high-water mark could not be reset: growth is measured from the peak of "
              "building the data and training the model)")
    failed = [o["case"] for o in results if o.get("error")
              or any(s["status"] == "failed" for s in o.get("steps", []))]
    if failed:
        print(f"\nfailures in: {', '.join(failed)} (see above)")


if __name__ == "__main__":
    main()
