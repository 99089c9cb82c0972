"""``MetricPanel``: the metric panel of several models on one test set, bootstrapped once.

The audit computes it once (the audited model and every baseline, on ONE set of stratified
bootstrap replicates shared by all models) and hands it to the performance table, the model
comparison and the overall rows of the domain tables, so those three agree to the last digit
and nothing is bootstrapped twice (fairlearn's ``MetricFrame`` idea: compute once, expose views).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._utils import check_random_state, int_seed, thread_map
from ._bootstrap import bootstrap_weights, check_labels_scores
from ._conventions import DEFAULT_CI
from ._intervals import percentile_ci
from ._metrics import check_metrics, weighted_metrics
from ._poisson import POISSON_N, poisson_panel_replicates

#: the bootstrap schemes: a stratified multinomial resample, or Poisson(1) weights per row.
SCHEMES = ("multinomial", "poisson")


def bootstrap_scheme(n: int, bootstrap: str = "auto") -> str:
    """The bootstrap scheme of ``n`` rows: ``"poisson"`` from :data:`POISSON_N` rows on
    (``bootstrap="auto"``), else ``"multinomial"``; or the one asked for.

    Examples
    --------
    >>> bootstrap_scheme(1_000), bootstrap_scheme(1_000_000), bootstrap_scheme(10, "poisson")
    ('multinomial', 'poisson', 'poisson')
    """
    if bootstrap == "auto":
        return "poisson" if n >= POISSON_N else "multinomial"
    if bootstrap not in SCHEMES:
        raise ValueError(f"bootstrap={bootstrap!r} is not valid; expected 'auto' or one of "
                         f"{SCHEMES}.")
    return bootstrap

PANEL_COLUMNS = ["model", "metric", "estimate", "ci_low", "ci_high", "n", "se", "n_boot"]


@dataclass(frozen=True, eq=False)
class MetricPanel:
    """Point estimates and shared bootstrap replicates of every metric of every model.

    Attributes
    ----------
    point : dict of model -> metric -> float
    replicates : dict of model -> metric -> ndarray of shape (n_boot,)
        Replicate ``b`` of every model uses the same resampled rows, so differences between
        models are paired.
    task, metrics, n, n_boot, ci, threshold, seed
        What the panel was computed with.
    scheme : {"multinomial", "poisson"}
        The bootstrap: a resample stratified by class (below
        :data:`~confoundry.stats.POISSON_N` rows by default), or independent Poisson(1)
        weights per row (the Poisson bootstrap, from that many rows on).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300); s = np.clip(0.4 * y + 0.6 * rng.random(300), 0, 1)
    >>> p = bootstrap_panel(y, {"m": s, "coin": rng.random(300)}, task="binary",
    ...                     metrics=["auroc"], n_boot=100, random_state=0)
    >>> list(p.frame()["model"]), p.n
    (['m', 'coin'], 300)
    """

    point: Mapping[str, Mapping[str, float]]
    replicates: Mapping[str, Mapping[str, np.ndarray]] = field(repr=False)
    task: str
    metrics: tuple[str, ...]
    n: int
    n_boot: int
    ci: float = DEFAULT_CI
    threshold: float = 0.5
    seed: int | None = None
    scheme: str = "multinomial"

    @property
    def models(self) -> list[str]:
        return list(self.point)

    def frame(self, models: str | Sequence[str] | None = None, *,
              ci: float | None = None) -> pd.DataFrame:
        """One row per model x metric: ``estimate``, percentile ``ci_low``/``ci_high``, ``n``,
        bootstrap ``se`` and ``n_boot``."""
        ci = self.ci if ci is None else ci
        names = self.models if models is None else (
            [models] if isinstance(models, str) else list(models))
        rows = []
        for name in names:
            if name not in self.point:
                raise KeyError(f"model {name!r} is not in the panel; expected one of "
                               f"{self.models}.")
            for k in self.metrics:
                v = self.replicates[name][k]
                lo, hi = percentile_ci(v, ci)
                fin = np.isfinite(v)
                rows.append({"model": name, "metric": k, "estimate": self.point[name][k],
                             "ci_low": lo, "ci_high": hi, "n": int(self.n),
                             "se": float(np.std(v[fin], ddof=1)) if fin.sum() > 1 else np.nan,
                             "n_boot": int(self.n_boot)})
        return pd.DataFrame(rows, columns=PANEL_COLUMNS)

    def subset(self, models: Sequence[str]) -> MetricPanel:
        """The panel of some of the models (same replicates)."""
        missing = [m for m in models if m not in self.point]
        if missing:
            raise KeyError(f"models {missing} are not in the panel; expected some of "
                           f"{self.models}.")
        return MetricPanel({m: self.point[m] for m in models},
                           {m: self.replicates[m] for m in models}, self.task, self.metrics,
                           self.n, self.n_boot, self.ci, self.threshold, self.seed,
                           self.scheme)


def bootstrap_panel(y: Any, scores: Mapping[str, Any], *, task: str, metrics: Any = None,
                    n_boot: int = 1000, ci: float = DEFAULT_CI, threshold: float = 0.5,
                    random_state: Any = None, reference: str | None = None,
                    bootstrap: str = "auto") -> MetricPanel:
    """Bootstrap the metric panel of several models on one set of shared, stratified replicates.

    Rows are visited in the order of the reference's scores (the first model unless
    ``reference`` is given), exactly as :func:`bootstrap_metrics` does for one model, so with
    the same seed the reference's intervals equal :func:`bootstrap_metrics`'s (tested).

    Parameters
    ----------
    y : ndarray of shape (n,)
    scores : dict of str to ndarray
        Each model's test scores (``(n,)``, or ``(n, K)`` for multiclass).
    task : {"binary", "multiclass", "regression"}
    metrics : sequence of str, optional
        Default: the task's whole panel. scikit-learn spellings are accepted.
    n_boot, ci, threshold, random_state
        Replicates, interval level, binary decision threshold, seed.
    reference : str, optional
        The model whose score order the rows are visited in.
    bootstrap : {"auto", "multinomial", "poisson"}
        ``"multinomial"``: each replicate resamples every class to its own size (the default
        below :data:`~confoundry.stats.POISSON_N` rows). ``"poisson"``: every row gets an
        independent Poisson(1) weight, drawn per block of rows and replicate from the seed,
        so the replicates do not depend on how they are chunked (the default from
        ``POISSON_N`` rows on: bounded memory, one sort per model, and for a binary task one
        matrix product and one pass of running sums per chunk of replicates). The class
        balance then varies between replicates, as it does between test sets drawn from the
        same population. The panel's ``scheme`` records which.

    Returns
    -------
    MetricPanel
    """
    metrics = check_metrics(metrics, task)
    if not scores:
        raise ValueError("scores is empty; expected at least one model's scores.")
    reference = next(iter(scores)) if reference is None else reference
    seed = (int(random_state) if isinstance(random_state, (int, np.integer))
            else int_seed(check_random_state(random_state)))
    for s in scores.values():
        y, _ = check_labels_scores(y, s, task)
    y = np.asarray(y)
    order = (np.argsort(np.asarray(scores[reference]), kind="mergesort")
             if task == "binary" else np.arange(len(y)))
    y = y[order]
    sc = {m: np.asarray(s, dtype=np.float64)[order] for m, s in scores.items()}
    point = {m: {k: float(v[0]) for k, v in weighted_metrics(
        y, s, None, task=task, metrics=metrics, threshold=threshold).items()}
        for m, s in sc.items()}
    scheme = bootstrap_scheme(len(y), bootstrap)
    if scheme == "poisson":
        replicates = poisson_panel_replicates(y, sc, task=task, metrics=metrics,
                                              n_boot=n_boot, threshold=threshold, seed=seed)
        return MetricPanel(point, replicates, task, tuple(metrics), int(len(y)), int(n_boot),
                           ci, threshold, seed, scheme)
    reps: dict[str, dict[str, list[np.ndarray]]] = {m: {k: [] for k in metrics} for m in sc}
    strata = y if task in ("binary", "multiclass") else None
    names = list(sc)
    for W in bootstrap_weights(len(y), n_boot, strata=strata, random_state=seed):
        # the models of one chunk of replicates on parallel threads (numpy releases the GIL)
        out = thread_map(lambda name, W=W: weighted_metrics(
            y, sc[name], W, task=task, metrics=metrics, threshold=threshold), names)
        for name, res in zip(names, out):
            for k in metrics:
                reps[name][k].append(res[k])
    replicates = {m: {k: np.concatenate(v) for k, v in d.items()} for m, d in reps.items()}
    return MetricPanel(point, replicates, task, tuple(metrics), int(len(y)), int(n_boot), ci,
                       threshold, seed, scheme)
