"""Imaging case study: a CNN that learned the hospital, caught by probes and attributions.

Train a small CNN on simulated radiographs pooled from two sites with very different pneumonia
prevalence (sites A and B), evaluate it internally and at a third site (C), and audit it with
site as metadata: internal vs external AUROC, the site-sort AUROC, the embedding and conditional
output probes, the share of attribution inside the lung field by site, and a leave-one-site-out
table. Then the control: the same pipeline on the same patients without the site token, where
the model-level shortcut findings must disappear.
"""

from __future__ import annotations

import base64
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._explanation import Attribution
from .._result import to_jsonable
from .._utils import check_random_state, int_seed, progress, torch_seed
from ..data._validation import check_positive_int, describe
from ..datasets._bunch import Bunch
from ..datasets._radiographs import simulate_radiographs

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]
    nn = None  # type: ignore[assignment]

#: name of the penultimate layer (the embedding the probes read)
EMBEDDING_LAYER = "penultimate"


class RadiographCNN(nn.Module):
    """A small CNN for 1-channel radiographs with a named penultimate layer.

    Three 3x3 convolution blocks (ReLU, 2x2 max pooling), global average and max pooling
    (concatenated), the
    ``penultimate`` block (linear + ReLU, the embedding) and a linear ``head`` returning one
    logit per image (shape ``(n,)``). Every ReLU is its own module (safe for DeepLift hooks).

    Examples
    --------
    >>> import torch
    >>> net = RadiographCNN()
    >>> net(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2])
    """

    def __init__(self, channels: tuple[int, int, int] = (8, 16, 32), embedding_dim: int = 16
                 ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
        )
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.penultimate = nn.Sequential(nn.Linear(2 * c3, embedding_dim), nn.ReLU())
        self.head = nn.Linear(embedding_dim, 1)

    def forward(self, x: Any) -> Any:
        f = self.features(x)
        pooled = torch.cat([self.avg_pool(f).flatten(1), self.max_pool(f).flatten(1)], dim=1)
        return self.head(self.penultimate(pooled))[:, 0]


def _as_image_tensor(images: Any, name: str = "images") -> Any:
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] != 1 or arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} has shape {arr.shape} and dtype {arr.dtype}; expected numeric "
                         "images of shape (n, 1, H, W) or (n, H, W).")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; expected finite pixels.")
    return torch.as_tensor(np.ascontiguousarray(arr, dtype=np.float32))


def train_radiograph_cnn(
    images: Any,
    y: Any,
    *,
    random_state: int = 0,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 3e-3,
    verbose: bool = True,
) -> RadiographCNN:
    """Train :class:`RadiographCNN` with Adam on binary labels; returned in eval mode.

    Deterministic given ``random_state``: the initialisation and the mini-batch order come from
    it, in a forked torch RNG (the caller's torch RNG state is left as it was).

    Parameters
    ----------
    images : ndarray or tensor of shape (n, 1, H, W) or (n, H, W)
    y : array-like of shape (n,) with values in {0, 1}
    random_state : int, default 0
    epochs : int, default 10
    batch_size : int, default 32
    lr : float, default 3e-3
    verbose : bool, default True
        Show a progress bar over epochs.

    Returns
    -------
    RadiographCNN

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((40, 1, 16, 16)).astype("float32"); y = np.arange(40) % 2
    >>> net = train_radiograph_cnn(X, y, epochs=1, verbose=False)
    >>> net.training
    False
    """
    x = _as_image_tensor(images)
    yy = np.asarray(y)
    if yy.shape != (x.shape[0],) or not np.isin(yy, (0, 1)).all():
        raise ValueError(f"y={describe(y)}; expected {x.shape[0]} labels in {{0, 1}}.")
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise ValueError(f"random_state={describe(random_state)}; expected a non-negative int.")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr={describe(lr)}; expected a positive number.")
    target = torch.as_tensor(yy, dtype=torch.float32)
    rng = np.random.default_rng(int(random_state))
    n = x.shape[0]
    with torch_seed(int(random_state)):
        net = RadiographCNN()
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        loss_fn = nn.BCEWithLogitsLoss()
        net.train()
        for _ in progress(range(epochs), desc="training CNN", verbose=verbose):
            order = torch.as_tensor(rng.permutation(n))
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                opt.zero_grad()
                loss = loss_fn(net(x[idx]), target[idx])
                loss.backward()
                opt.step()
    net.eval()
    for p in net.parameters():
        p.grad = None
    return net


# --------------------------------------------------------------------------- statistics
def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def _auroc_gap(y_a: np.ndarray, s_a: np.ndarray, y_b: np.ndarray, s_b: np.ndarray, *,
               n_boot: int, rng: np.random.Generator) -> dict[str, float]:
    """AUROC(a) - AUROC(b) for two independent samples, stratified bootstrap CI and p."""
    from ..stats import bootstrap_weights, weighted_metrics

    def reps(y: np.ndarray, s: np.ndarray) -> np.ndarray:
        out = [weighted_metrics(y, s, W, task="binary", metrics=["auroc"])["auroc"]
               for W in bootstrap_weights(len(y), n_boot, strata=y, random_state=rng)]
        return np.concatenate(out)

    d = reps(y_a, s_a) - reps(y_b, s_b)
    est = (weighted_metrics(y_a, s_a, None, task="binary", metrics=["auroc"])["auroc"][0]
           - weighted_metrics(y_b, s_b, None, task="binary", metrics=["auroc"])["auroc"][0])
    lo, hi = np.nanquantile(d, [0.025, 0.975])
    p = min(1.0, 2 * min((1 + np.sum(d <= 0)) / (1 + len(d)), (1 + np.sum(d >= 0)) / (1 + len(d))))
    return {"estimate": float(est), "ci_low": float(lo), "ci_high": float(hi), "p_value": float(p),
            "n_boot": n_boot}


def _site_sort_scores(site_train: np.ndarray, y_train: np.ndarray, site_test: np.ndarray
                      ) -> np.ndarray:
    """Score = the training prevalence of the image's site (sorting by hospital alone)."""
    s = pd.Series(y_train).groupby(np.asarray(site_train)).mean()
    return pd.Series(np.asarray(site_test)).map(s).fillna(float(np.mean(y_train))).to_numpy()


def _captum_ig(model: Any, images: np.ndarray, *, n_steps: int, batch_size: int = 64
               ) -> Attribution:
    """Integrated gradients from a black image with Captum directly (fallback when
    :func:`confoundry.attribute` cannot take image tensors)."""
    from captum.attr import IntegratedGradients

    from ..attribution._common import frozen_module

    t0 = time.perf_counter()
    x = _as_image_tensor(images)
    vals, deltas = [], []
    with frozen_module(model):
        ig = IntegratedGradients(model)
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size]
            a, d = ig.attribute(xb, baselines=torch.zeros_like(xb), n_steps=n_steps,
                                return_convergence_delta=True)
            vals.append(a.detach().double().numpy())
            deltas.append(d.detach().double().numpy())
        with torch.no_grad():
            base = model(torch.zeros_like(x[:1])).double().numpy()
    return Attribution(values=np.concatenate(vals), base_values=float(base[0]),
                       data=x.double().numpy(), feature_names=[],
                       method="integrated_gradients",
                       params={"baseline": "zeros", "n_steps": n_steps, "engine": "captum"},
                       convergence_delta=np.concatenate(deltas),
                       compute_time=time.perf_counter() - t0, output="logit",
                       model_name="RadiographCNN")


def _attribute(model: Any, images: np.ndarray, *, n_steps: int, seed: int,
               log: list[str]) -> Attribution:
    import confoundry as cf

    if hasattr(cf, "attribute"):
        try:
            from ..models import as_model

            adapter = as_model(model, output="logits", task="binary", name="RadiographCNN")
            return cf.attribute(adapter, images, method="integrated_gradients",
                                baseline="zeros", n_steps=n_steps, random_state=seed,
                                verbose=False)
        except Exception as exc:  # noqa: BLE001 - record and fall back, never hide
            log.append(f"confoundry.attribute failed on image tensors ({type(exc).__name__}: "
                       f"{exc}); used Captum integrated gradients directly.")
    else:
        log.append("confoundry.attribute is not available; used Captum integrated gradients "
                   "directly.")
    return _captum_ig(model, images, n_steps=n_steps)


def _conditional_site_test(scores: np.ndarray, y: np.ndarray, site: np.ndarray, *,
                           n_permutations: int, rng: np.random.Generator) -> dict[str, float]:
    """Fallback conditional probe: does site explain the output ranks within each label?
    Statistic: within-label eta-squared of the output ranks on site; null: site permuted within
    label strata."""
    from scipy.stats import rankdata

    r = rankdata(scores)
    codes = np.unique(np.asarray(site).astype(str), return_inverse=True)[1]
    k = codes.max() + 1
    resid = r.astype(float).copy()
    for lab in (0, 1):
        m = y == lab
        resid[m] -= resid[m].mean()
    tot = float((resid**2).sum())

    def stat(c: np.ndarray) -> np.ndarray:  # c: (B, n) codes
        b = c.shape[0]
        strata = c + k * y[None]
        flat = (np.arange(b)[:, None] * 2 * k + strata).ravel()
        sums = np.bincount(flat, weights=np.broadcast_to(resid, c.shape).ravel(),
                           minlength=b * 2 * k).reshape(b, 2 * k)
        cnt = np.bincount(flat, minlength=b * 2 * k).reshape(b, 2 * k)
        with np.errstate(invalid="ignore", divide="ignore"):
            ss = np.where(cnt > 0, sums**2 / np.maximum(cnt, 1), 0.0).sum(axis=1)
        return ss / tot

    obs = float(stat(codes[None])[0])
    perms = np.empty((n_permutations, len(y)), dtype=np.int64)
    for lab in (0, 1):
        idx = np.flatnonzero(y == lab)
        perms[:, idx] = rng.permuted(np.broadcast_to(codes[idx], (n_permutations, len(idx))),
                                     axis=1)
    null = stat(perms)
    p = float((1 + np.sum(null >= obs - 1e-12)) / (1 + n_permutations))
    return {"statistic": obs, "p_value": p, "n": len(y), "n_permutations": n_permutations}


# ---------------------------------------------------------------------------- figures
def _mean_maps(attr: Attribution, groups: np.ndarray) -> dict[str, np.ndarray]:
    a = np.abs(attr.values).sum(axis=1)  # (n, H, W)
    return {str(g): a[groups == g].mean(axis=0) for g in pd.unique(groups)}


def plot_attribution_maps(attr: Attribution, groups: Any, *, title: str = "",
                          lung_mask: np.ndarray | None = None) -> Any:
    """One panel per group: the mean |attribution| map, on a shared colour scale, with the
    outline of the mean lung mask."""
    import matplotlib.pyplot as plt

    groups = np.asarray(groups).astype(str)
    maps = _mean_maps(attr, groups)
    keys = sorted(maps)
    vmax = max(float(m.max()) for m in maps.values()) or 1.0
    fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys), 2.9), squeeze=False)
    for ax, k in zip(axes[0], keys):
        ax.imshow(maps[k], cmap="magma", vmin=0, vmax=vmax)
        if lung_mask is not None:
            ax.contour(lung_mask[groups == k].mean(axis=0), levels=[0.5], colors="cyan",
                       linewidths=0.6)
        ax.set_title(f"{k} (n={int((groups == k).sum())})", fontsize=9)
        ax.set_axis_off()
    fig.suptitle(title or "mean |attribution|", fontsize=10)
    fig.tight_layout()
    return fig


def plot_overlays(images: np.ndarray, attr: Attribution, labels: list[str], *,
                  lung_mask: np.ndarray | None = None, title: str = "") -> Any:
    """Images with their |attribution| overlaid (and the lung outline), one column each."""
    import matplotlib.pyplot as plt

    n = len(labels)
    fig, axes = plt.subplots(2, n, figsize=(2.3 * n, 4.8), squeeze=False)
    a = np.abs(attr.values).sum(axis=1)
    for j in range(n):
        axes[0, j].imshow(images[j, 0], cmap="gray")
        axes[0, j].set_title(labels[j], fontsize=8)
        axes[1, j].imshow(images[j, 0], cmap="gray")
        axes[1, j].imshow(a[j], cmap="magma", alpha=0.6)
        if lung_mask is not None:
            axes[1, j].contour(lung_mask[j], levels=[0.5], colors="cyan", linewidths=0.6)
        axes[0, j].set_axis_off()
        axes[1, j].set_axis_off()
    fig.suptitle(title or "images and |attribution|", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------- case study
_FULL = {"n_per_site": 400, "image_size": 64, "epochs": 10, "n_steps": 32, "n_attr": 300,
         "n_permutations": 1000, "n_boot": 1000, "loso_epochs": 5}
_QUICK = {"n_per_site": 200, "image_size": 32, "epochs": 10, "n_steps": 16, "n_attr": 150,
          "n_permutations": 300, "n_boot": 300, "loso_epochs": 4}


def _split(meta: pd.DataFrame, y: np.ndarray, rng: np.random.Generator, test_share: float = 0.3
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / internal test (sites A and B, stratified by site and label) / external (site C)."""
    site = meta["site"].astype(str).to_numpy()
    train, internal = [], []
    for s in ("A", "B"):
        for lab in (0, 1):
            idx = np.flatnonzero((site == s) & (y == lab))
            idx = rng.permutation(idx)
            k = int(round(test_share * len(idx)))
            internal.append(idx[:k])
            train.append(idx[k:])
    return (np.sort(np.concatenate(train)), np.sort(np.concatenate(internal)),
            np.flatnonzero(site == "C"))


def _run_arm(marker: bool, cfg: dict[str, Any], seed: int, verbose: bool, log: list[str],
             out: Path, loso: bool, audit: bool) -> dict[str, Any]:
    import confoundry as cf

    from ..attribution._mass import attribution_mass, mass_by_group
    from ..models import as_model
    from ..report._figures import figure_to_data_uri
    from ..stats import bootstrap_metrics

    arm = "marker" if marker else "control"
    rng = check_random_state(seed)
    data = simulate_radiographs(cfg["n_per_site"], image_size=cfg["image_size"],
                                random_state=seed, marker=marker)
    X, y, meta = data.images, data.y, data.metadata
    site = meta["site"].astype(str).to_numpy()
    split_rng = np.random.default_rng(seed + 1)
    tr, internal, external = _split(meta, y, split_rng)
    t0 = time.perf_counter()
    net = train_radiograph_cnn(X[tr], y[tr], random_state=seed, epochs=cfg["epochs"],
                               verbose=verbose)
    train_time = time.perf_counter() - t0
    adapter = as_model(net, output="logits", task="binary", name=f"RadiographCNN ({arm})")
    test = np.concatenate([internal, external])
    scores = adapter.predict_scores(X[test])
    n_int = len(internal)
    s_int, s_ext = scores[:n_int], scores[n_int:]
    res: dict[str, Any] = {"arm": arm, "train_time_s": train_time, "n_train": int(len(tr)),
                           "n_internal": int(n_int), "n_external": int(len(external))}
    bm = {name: bootstrap_metrics(yy, ss, task="binary", metrics=["auroc", "auprc", "brier"],
                                  n_boot=cfg["n_boot"], random_state=int_seed(rng))
          for name, yy, ss in (("internal", y[internal], s_int), ("external", y[external], s_ext))}
    res["metrics"] = pd.concat([t.assign(split=k) for k, t in bm.items()], ignore_index=True)
    res["auroc_gap"] = _auroc_gap(y[internal], s_int, y[external], s_ext, n_boot=cfg["n_boot"],
                                  rng=rng)
    sort = _site_sort_scores(site[tr], y[tr], site[internal])
    res["site_sort"] = bootstrap_metrics(y[internal], sort, task="binary", metrics=["auroc"],
                                         n_boot=cfg["n_boot"], random_state=int_seed(rng))
    y_test, site_test = y[test], site[test]
    meta_test = meta.iloc[test].reset_index(drop=True)

    # probes: embedding and conditional output probes with site as metadata
    if hasattr(cf, "probe_confounders"):
        try:
            pr = cf.probe_confounders(adapter, X[test], y_test, meta_test[["site"]],
                                      layer=EMBEDDING_LAYER,
                                      n_permutations=cfg["n_permutations"],
                                      random_state=int_seed(rng), verbose=verbose)
            res["probes"] = pr.to_frame()
            res["probe_result"] = pr
        except Exception as exc:  # noqa: BLE001 - record and go on
            log.append(f"[{arm}] probe_confounders failed: {type(exc).__name__}: {exc}")
    else:
        log.append("confoundry.probe_confounders is not available; only the case study's "
                   "within-label permutation test of the output was run.")
    res["conditional_output_test"] = _conditional_site_test(
        _logit(scores), y_test, site_test, n_permutations=cfg["n_permutations"], rng=rng)

    # attributions: integrated gradients on a stratified subsample of the test images
    n_attr = min(cfg["n_attr"], len(test))
    sub = np.sort(rng.choice(len(test), size=n_attr, replace=False))
    attr = _attribute(net, X[test][sub], n_steps=cfg["n_steps"], seed=int_seed(rng), log=log)
    lungs = data.lung_mask[test][sub]
    share = attribution_mass(attr, lungs)
    res["lung_share"] = share
    res["marker_share"] = attribution_mass(attr, data.marker_mask[test][sub]) if marker else None
    groups = pd.Series(site_test[sub], name="site")
    mres = mass_by_group(share, groups, strata=y_test[sub], n_permutations=cfg["n_permutations"],
                         n_boot=cfg["n_boot"], region="lung field", random_state=int_seed(rng))
    res["mass_by_site"] = mres
    if attr.convergence_delta is not None:
        res["ig_max_abs_delta"] = float(np.nanmax(np.abs(attr.convergence_delta)))

    # figures
    figs = {
        f"{arm}_maps_by_site.png": plot_attribution_maps(
            attr, site_test[sub], lung_mask=lungs,
            title=f"{arm}: mean |IG attribution| by site"),
        f"{arm}_maps_by_outcome.png": plot_attribution_maps(
            attr, np.where(y_test[sub] == 1, "pneumonia", "healthy"), lung_mask=lungs,
            title=f"{arm}: mean |IG attribution| by outcome"),
        f"{arm}_mass_by_site.png": mres.plot(),
    }
    pick = [int(np.flatnonzero((site_test[sub] == s) & (y_test[sub] == lab))[0])
            for s in ("A", "B", "C") for lab in (0, 1)
            if np.any((site_test[sub] == s) & (y_test[sub] == lab))]
    figs[f"{arm}_overlays.png"] = plot_overlays(
        X[test][sub][pick], attr.subset(np.array(pick)),
        [f"site {site_test[sub][i]}, y={y_test[sub][i]}, p={scores[sub][i]:.2f}" for i in pick],
        lung_mask=lungs[pick], title=f"{arm}: images and |IG attribution|")
    # encoded once, without matplotlib's URL-bearing metadata: the file and the report's
    # inlined copy are the same bytes
    uris = {name: figure_to_data_uri(fig, dpi=90) for name, fig in figs.items()}
    for name, uri in uris.items():
        (out / name).write_bytes(base64.b64decode(uri.split(",", 1)[1]))
    res["figures"] = sorted(figs)
    res["figure_uris"] = uris

    # leave one site out, retraining through train_fn
    def train_fn(Xtr: Any, ytr: Any) -> Any:
        return as_model(train_radiograph_cnn(Xtr, ytr, random_state=seed,
                                             epochs=cfg["loso_epochs"], verbose=False),
                        output="logits", task="binary")

    if loso and marker:  # retraining is the costly step: leave-one-site-out on the main arm
        if hasattr(cf, "leave_one_group_out"):
            try:
                lo = cf.leave_one_group_out(train_fn, X, y, pd.Series(site, name="site"),
                                            metric="auroc", n_boot=cfg["n_boot"],
                                            random_state=int_seed(rng))
                res["loso"] = lo.to_frame()
            except Exception as exc:  # noqa: BLE001
                log.append(f"[{arm}] leave_one_group_out failed: {type(exc).__name__}: {exc}")
        else:
            log.append("confoundry.leave_one_group_out is not available; leave-one-site-out "
                       "skipped.")

    # the full audit with site as metadata and the penultimate layer as layer
    if audit and hasattr(cf, "Audit"):
        try:
            result = cf.Audit(adapter, X[test], y_test, metadata=meta_test,
                              layer=EMBEDDING_LAYER, train_fn=train_fn if loso else None,
                              attribution_method="integrated_gradients",
                              max_attribution_rows=max(10, cfg["n_attr"]),
                              n_boot=cfg["n_boot"], n_permutations=cfg["n_permutations"],
                              random_state=int_seed(rng), verbose=verbose).run()
            res["audit_result"] = result
        except Exception as exc:  # noqa: BLE001
            log.append(f"[{arm}] Audit failed: {type(exc).__name__}: {exc}")
    res["model"] = net
    return res


def _summary(arms: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One tidy table of the headline numbers of both arms."""
    rows = []
    for arm, r in arms.items():
        m = r["metrics"]
        for split in ("internal", "external"):
            row = m[(m["split"] == split) & (m["metric"] == "auroc")].iloc[0]
            rows.append({"arm": arm, "quantity": f"AUROC, {split}", "estimate": row["estimate"],
                         "ci_low": row["ci_low"], "ci_high": row["ci_high"], "p_value": np.nan,
                         "n": row["n"]})
        g = r["auroc_gap"]
        rows.append({"arm": arm, "quantity": "AUROC gap, internal - external",
                     "estimate": g["estimate"], "ci_low": g["ci_low"], "ci_high": g["ci_high"],
                     "p_value": g["p_value"], "n": r["n_internal"] + r["n_external"]})
        s = r["site_sort"].iloc[0]
        rows.append({"arm": arm, "quantity": "site-sort AUROC (site prevalence only), internal",
                     "estimate": s["estimate"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
                     "p_value": np.nan, "n": s["n"]})
        if "probes" in r:
            p = r["probes"]
            for probe in ("metadata_only", "output_conditional", "embedding_marginal",
                          "embedding_conditional"):
                sel = p[p["probe"] == probe]
                if len(sel):
                    q = sel.iloc[0]
                    rows.append({"arm": arm, "quantity": f"probe {probe} (site): "
                                 "statistic", "estimate": q["statistic"], "ci_low": np.nan,
                                 "ci_high": np.nan, "p_value": q["p_value"], "n": q["n"]})
        c = r["conditional_output_test"]
        rows.append({"arm": arm, "quantity": "output ranks ~ site given label (eta^2, within-label "
                     "permutation)", "estimate": c["statistic"], "ci_low": np.nan,
                     "ci_high": np.nan, "p_value": c["p_value"], "n": c["n"]})
        mt = r["mass_by_site"]
        for _, row in mt.table.iterrows():
            rows.append({"arm": arm, "quantity": f"share of |IG| inside lungs, site {row['group']}",
                         "estimate": row["mean_share"], "ci_low": row["ci_low"],
                         "ci_high": row["ci_high"], "p_value": np.nan, "n": row["n"]})
        if "adjusted_mean_share" in mt.table:
            for _, row in mt.table.iterrows():
                rows.append({"arm": arm, "quantity": "share of |IG| inside lungs, site "
                             f"{row['group']}, standardised to the pooled label mix",
                             "estimate": row["adjusted_mean_share"],
                             "ci_low": row["adjusted_ci_low"], "ci_high": row["adjusted_ci_high"],
                             "p_value": np.nan, "n": row["n"]})
        rows.append({"arm": arm, "quantity": "lung share differs by site (Kruskal-Wallis "
                     "epsilon^2)", "estimate": mt.effect_size, "ci_low": np.nan,
                     "ci_high": np.nan, "p_value": mt.p_value, "n": mt.n})
        if "loso" in r:
            for _, row in r["loso"].iterrows():
                est = row.get("estimate", row.get("metric_value", np.nan))
                rows.append({"arm": arm, "quantity": f"leave-one-site-out AUROC, held out "
                             f"{row['group']}", "estimate": est,
                             "ci_low": row.get("ci_low", np.nan),
                             "ci_high": row.get("ci_high", np.nan),
                             "p_value": row.get("p_value", np.nan), "n": row.get("n", np.nan)})
    return pd.DataFrame(rows)


def run_radiograph_case_study(
    out_dir: str | Path,
    *,
    quick: bool = False,
    random_state: int = 0,
    verbose: bool = True,
    loso: bool = True,
    audit: bool = True,
    report: str | None = "report.html",
    audit_control: bool = True,
) -> Bunch:
    """Run the imaging case study (with the site token, then the control without it).

    Writes into ``out_dir``: ``summary.csv`` and ``summary.md`` (the headline numbers, both
    arms), ``results.json``, figures (``{arm}_maps_by_site.png``, ``{arm}_maps_by_outcome.png``,
    ``{arm}_mass_by_site.png``, ``{arm}_overlays.png``) and, when :class:`confoundry.Audit` is
    available, the HTML report of the audit of the shortcut model (``report``).

    Parameters
    ----------
    out_dir : str or Path
        Created if missing.
    quick : bool, default False
        Smaller images and fewer samples, epochs and permutations (for tests and smoke runs).
    random_state : int, default 0
        Seeds the simulation, the split, the training and every test.
    verbose : bool, default True
    loso : bool, default True
        Also run leave-one-site-out on the arm with the token (retrains the CNN once per site,
        plus the internal cross-validation of :func:`confoundry.leave_one_group_out`).
    audit : bool, default True
        Also run :class:`confoundry.Audit` on the arm with the token (when available).
    report : str or None, default "report.html"
        File name (in ``out_dir``) of the HTML report of the marker arm's audit; it gains a
        section with both arms' headline numbers and the attribution figures. With
        ``audit_control`` the control's report is written as ``control_<report>``.
    audit_control : bool, default True
        Also audit the control arm (``audit`` must be True); the demo turns it off to stay
        within its time budget, since the control's numbers are in the summary anyway.

    Returns
    -------
    Bunch
        ``summary`` (DataFrame), ``marker`` and ``control`` (dicts of results per arm),
        ``log`` (what was skipped or fell back), ``config``, ``elapsed_s``, ``out_dir``.
    """
    if not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise ValueError(f"random_state={describe(random_state)}; expected a non-negative int.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = dict(_QUICK if quick else _FULL)
    log: list[str] = []
    t0 = time.perf_counter()
    arms = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tight_layout.*")
        for marker in (True, False):
            arm = "marker" if marker else "control"
            arms[arm] = _run_arm(marker, cfg, int(random_state), verbose, log, out, loso,
                                 audit and (marker or audit_control))
    summary = _summary(arms)
    elapsed = time.perf_counter() - t0
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(_markdown(summary, cfg, elapsed, log), encoding="utf-8")
    payload = {"config": cfg, "random_state": int(random_state), "elapsed_s": elapsed,
               "log": log, "summary": summary,
               "arms": {a: {k: v for k, v in r.items()
                            if k not in ("model", "probe_result", "audit_result", "lung_share",
                                         "marker_share", "figure_uris")}
                        for a, r in arms.items()}}
    (out / "results.json").write_text(json.dumps(to_jsonable(payload), indent=2,
                                                 allow_nan=False), encoding="utf-8")
    if report:
        for arm, name in (("marker", report), ("control", f"control_{report}")):
            if "audit_result" not in arms[arm]:
                continue
            try:
                uris = {**arms["marker"]["figure_uris"], **arms["control"]["figure_uris"]}
                result = _with_case_study_section(arms[arm]["audit_result"], arm, summary,
                                                  uris, elapsed)
                arms[arm]["audit_result"] = result
                result.to_html(str(out / name))
            except Exception as exc:  # noqa: BLE001
                log.append(f"writing {name} failed: {type(exc).__name__}: {exc}")
    return Bunch(summary=summary, marker=arms["marker"], control=arms["control"], log=log,
                 config=cfg, elapsed_s=elapsed, out_dir=str(out))


def _with_case_study_section(result: Any, arm: str, summary: pd.DataFrame,
                             uris: dict[str, str], elapsed: float) -> Any:
    """The audit result with the case study's headline table and attribution figures added
    (``uris``: the PNG data URIs of both arms' figures, by file name)."""
    table = summary.copy()
    result = result.add_section(
        "Case study: internal vs external, with and without the site token", table,
        intro=("Three simulated hospitals (A, B, C) with different pneumonia prevalence and "
               "acquisition; the CNN is trained on A and B pooled and tested on held-out A and "
               "B images (internal) and on C (external). The 'marker' arm carries a site token "
               "outside the lung field; the 'control' arm is the same pipeline without it. A "
               "shortcut shows as an internal-external AUROC gap, a high site-sort AUROC, "
               "significant embedding and conditional output probes and attribution mass that "
               f"moves out of the lungs by site; in the control these must vanish. This audit is "
               f"of the '{arm}' arm. Case study run time {elapsed:.0f} s."),
        findings=False)
    for a in ("marker", "control"):
        for kind, what, intro in (
                ("maps_by_site", "attribution maps by site",
                 "Mean |integrated gradients| per site; the lung mask is outlined."),
                ("mass_by_site", "attribution in the lungs by site",
                 "Share of |attribution| inside the lung field per image, by site, with a "
                 "permutation test within labels (a model that looks outside the lungs at one "
                 "site and inside at another is using the site)."),
                ("overlays", "example images", "One image per site and label with its "
                                                "|attribution| overlaid.")):
            fig = uris.get(f"{a}_{kind}.png")
            if fig is not None:
                result = result.add_section(f"{a.capitalize()} arm: {what}", None, figure=fig,
                                            intro=intro, findings=False)
    return result


def _markdown(summary: pd.DataFrame, cfg: dict[str, Any], elapsed: float, log: list[str]
              ) -> str:
    def fmt(v: Any, digits: int = 3) -> str:
        return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else \
            f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| arm | quantity | estimate | 95% CI | p | n |", "|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        ci = (f"{r['ci_low']:.3f} to {r['ci_high']:.3f}" if np.isfinite(r["ci_low"]) else "")
        p = fmt(r["p_value"], 4) if np.isfinite(r["p_value"]) else ""
        n = "" if pd.isna(r["n"]) else str(int(r["n"]))
        quantity = str(r["quantity"]).replace("|", "\\|")
        lines.append(f"| {r['arm']} | {quantity} | {fmt(float(r['estimate']))} | {ci} | "
                     f"{p} | {n} |")
    lines += ["", f"Settings: {cfg}. Elapsed: {elapsed:.0f} s."]
    if log:
        lines += ["", "Notes:"] + [f"- {m}" for m in log]
    return "\n".join(lines) + "\n"
