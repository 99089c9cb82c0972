"""One arm of the imaging case study: simulate, split, train the CNN, and measure the shortcut.

Every number comes from the library's own functions: the metric panels and the AUROC gap from
:mod:`confoundry.stats`, the probes from :func:`confoundry.probe_confounders`, the attributions
from :func:`confoundry.attribute`, the attribution mass by site from
:func:`confoundry.attribution._mass.mass_by_group`, leave-one-site-out from
:func:`confoundry.leave_one_group_out` and the audit from :class:`confoundry.Audit`.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils import check_random_state, int_seed
from ..datasets._radiographs import simulate_radiographs
from ._radiograph_model import EMBEDDING_LAYER, train_radiograph_cnn
from ._radiograph_plots import plot_attribution_maps, plot_overlays

#: settings of the full run (the README's tables) and of the quick run (tests, smoke runs)
_FULL = {"n_per_site": 400, "image_size": 64, "epochs": 10, "n_steps": 32, "n_attr": 300,
         "n_permutations": 1000, "n_boot": 1000, "loso_epochs": 5}
_QUICK = {"n_per_site": 200, "image_size": 32, "epochs": 10, "n_steps": 16, "n_attr": 150,
          "n_permutations": 300, "n_boot": 300, "loso_epochs": 4}

#: the metric panel of the internal and the external test set
_METRICS = ("auroc", "auprc", "brier")


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


def _site_sort_scores(site_train: np.ndarray, y_train: np.ndarray, site_test: np.ndarray
                      ) -> np.ndarray:
    """Score = the training prevalence of the image's site (sorting by hospital alone)."""
    s = pd.Series(y_train).groupby(np.asarray(site_train)).mean()
    return pd.Series(np.asarray(site_test)).map(s).fillna(float(np.mean(y_train))).to_numpy()


def internal_external_metrics(
    sets: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    n_boot: int,
    random_state: Any = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Metric panels of two independent test sets and the unpaired AUROC gap between them.

    Each set (``{"internal": (y, scores), "external": (y, scores)}``) is bootstrapped on its
    own (stratified by label, :func:`confoundry.stats.bootstrap_panel`); replicate ``b`` of the
    gap is ``AUROC_internal[b] - AUROC_external[b]``, summarised with
    :func:`confoundry.stats.difference_summary` (percentile CI, two-sided bootstrap p).

    Returns
    -------
    metrics : DataFrame
        One row per split and metric: ``metric``, ``estimate``, ``ci_low``, ``ci_high``, ``n``,
        ``se``, ``n_boot``, ``split``.
    gap : dict
        ``estimate``, ``ci_low``, ``ci_high``, ``p_value``, ``n_boot``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y1, y2 = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    >>> m, gap = internal_external_metrics(
    ...     {"internal": (y1, 0.6 * y1 + 0.4 * rng.random(200)), "external": (y2, rng.random(200))},
    ...     n_boot=200, random_state=0)
    >>> sorted(set(m["split"])), bool(gap["ci_low"] > 0 and gap["p_value"] < 0.05)
    (['external', 'internal'], True)
    """
    from ..stats import bootstrap_panel, difference_summary

    rng = check_random_state(random_state)
    if set(sets) != {"internal", "external"}:
        raise ValueError(f"sets has the keys {sorted(sets)}; expected 'internal' and "
                         "'external'.")
    panels = {split: bootstrap_panel(np.asarray(yy), {"model": np.asarray(ss)}, task="binary",
                                     metrics=list(_METRICS), n_boot=n_boot,
                                     random_state=int_seed(rng))
              for split, (yy, ss) in sets.items()}
    metrics = pd.concat([p.frame().drop(columns="model").assign(split=k)
                         for k, p in panels.items()], ignore_index=True)
    a, b = panels["internal"], panels["external"]
    reps = a.replicates["model"]["auroc"] - b.replicates["model"]["auroc"]
    gap = {"estimate": float(a.point["model"]["auroc"] - b.point["model"]["auroc"]),
           **difference_summary(reps, a.ci)}
    return metrics, gap


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
    res: dict[str, Any] = {"arm": arm, "train_time_s": train_time, "n_train": int(len(tr)),
                           "n_internal": int(n_int), "n_external": int(len(external))}
    res["metrics"], res["auroc_gap"] = internal_external_metrics(
        {"internal": (y[internal], scores[:n_int]), "external": (y[external], scores[n_int:])},
        n_boot=cfg["n_boot"], random_state=rng)
    sort = _site_sort_scores(site[tr], y[tr], site[internal])
    res["site_sort"] = bootstrap_metrics(y[internal], sort, task="binary", metrics=["auroc"],
                                         n_boot=cfg["n_boot"], random_state=int_seed(rng))
    y_test, site_test = y[test], site[test]
    meta_test = meta.iloc[test].reset_index(drop=True)

    # probes with site as metadata: the conditional output probe (site given the label) and the
    # embedding probes of the penultimate layer
    pr = cf.probe_confounders(adapter, X[test], y_test, meta_test[["site"]], scores=scores,
                              layer=EMBEDDING_LAYER, n_permutations=cfg["n_permutations"],
                              random_state=int_seed(rng), verbose=verbose)
    res["probes"] = pr.to_frame()
    res["probe_result"] = pr

    # attributions: integrated gradients from a black image on a random subsample of the test
    n_attr = min(cfg["n_attr"], len(test))
    sub = np.sort(rng.choice(len(test), size=n_attr, replace=False))
    attr = cf.attribute(adapter, X[test][sub], method="integrated_gradients", baseline="zeros",
                        n_steps=cfg["n_steps"], random_state=int_seed(rng), verbose=False)
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
        lo = cf.leave_one_group_out(train_fn, X, y, pd.Series(site, name="site"),
                                    metric="auroc", n_boot=cfg["n_boot"],
                                    random_state=int_seed(rng))
        res["loso"] = lo.to_frame()
    elif marker:
        log.append("leave-one-site-out skipped (loso=False).")

    # the full audit with site as metadata and the penultimate layer as layer
    if audit:
        res["audit_result"] = cf.Audit(
            adapter, X[test], y_test, metadata=meta_test, layer=EMBEDDING_LAYER,
            train_fn=train_fn if loso else None, attribution_method="integrated_gradients",
            max_attribution_rows=max(10, cfg["n_attr"]), n_boot=cfg["n_boot"],
            n_permutations=cfg["n_permutations"], random_state=int_seed(rng),
            verbose=verbose).run()
    res["model"] = net
    return res
