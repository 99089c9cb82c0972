"""The label-shuffle control (Chuang & Keiser 2018): retrain on shuffled labels and compare."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, to_jsonable
from .._utils import check_random_state, int_seed, progress
from ..data import AuditData, ensure_data
from ..data._validation import check_positive_int
from ..stats import DEFAULT_CI, HEADLINE_METRIC, LABELS, Z95, percentile_ci
from ._common import seed_param, user_objects
from ._retrain import (
    CHANCE,
    boot_reps,
    check_train_fn,
    fit_and_score,
    normal_p,
    p_greater,
    shuffled_like,
)

#: bootstrap replicates of the label-shuffle control.
SHUFFLE_N_BOOT = 1000
#: level of the label-shuffle control's findings (one-sided tests, no multiple testing).
SHUFFLE_ALPHA = 0.05


@dataclass(frozen=True, eq=False)
class LabelShuffleResult(ResultMixin):
    """Real model vs models trained on shuffled labels, on the same test set.

    Attributes
    ----------
    table : DataFrame
        One row per model (``real``, ``shuffled_1``, ...): ``model``, ``metric``, ``estimate``,
        ``ci_low``, ``ci_high``, ``difference`` (real minus this model), ``diff_ci_low``,
        ``diff_ci_high``, ``p_value`` (one-sided paired bootstrap p that the real model is
        better), ``p_above_chance`` (one-sided p that this model beats chance), ``n``,
        ``n_boot``.
    contrast : dict
        ``real``, ``shuffled_mean``, ``difference`` (real minus mean shuffled) with its standard
        error, 95% CI and one-sided p-value, ``chance`` and the p-value that the shuffled models
        beat chance. These standard errors add the spread between the shuffled models to the
        paired-bootstrap test-set error (normal approximation).
    metric, task : str
    alpha : float
        Level of the findings' one-sided tests.
    params : dict
        ``n_repeats``, ``n_boot``, ``metric``, ``alpha``, ``ci``, ``random_state``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    >>> res = label_shuffle_control(lambda a, b: LogisticRegression().fit(a, b),
    ...                             X[:100], y[:100], X[100:], y[100:], n_repeats=3,
    ...                             random_state=0, verbose=False)
    >>> res.table["model"].tolist(), res.metric
    (['real', 'shuffled_1', 'shuffled_2', 'shuffled_3'], 'auroc')
    >>> bool(res.contrast["p_value"] < 0.05)      # the real labels beat the shuffled ones
    True
    """

    table: pd.DataFrame
    contrast: dict[str, Any]
    metric: str
    task: str
    alpha: float = SHUFFLE_ALPHA
    params: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> pd.DataFrame:
        """The real model against the mean shuffled-label model, as one row (:attr:`contrast`)."""
        return pd.DataFrame([{"metric": self.metric, **self.contrast}])

    def findings(self) -> list[Finding]:
        s = self.contrast
        label = LABELS.get(self.metric, self.metric)
        ev = {k: to_jsonable(v) for k, v in s.items()}
        out = []
        if not (s["p_value"] < self.alpha):
            out.append(Finding(
                "memorisation", "high", 7,
                f"The model ({label} {s['real']:.3f}) does not beat models trained on shuffled "
                f"labels ({label} {s['shuffled_mean']:.3f}; difference "
                f"{s['difference']:+.3f}, 95% CI [{s['diff_ci_low']:.3f}, "
                f"{s['diff_ci_high']:.3f}], p = {s['p_value']:.2g}): its test performance is "
                "what memorising noise achieves.",
                subject="label", evidence=ev, domain="overall"))
        if s["p_above_chance"] < self.alpha:
            out.append(Finding(
                "shuffled_above_chance", "medium", 7,
                f"Models trained on shuffled labels still score above chance ({label} "
                f"{s['shuffled_mean']:.3f} vs {s['chance']:g}, p = {s['p_above_chance']:.2g}): "
                "the test set shares structure with the training set that does not need the "
                "labels (duplicates, leakage, or an evaluation artefact).",
                subject="label", evidence=ev, domain="overall"))
        return out

    def plot(self, ax: Any = None) -> Any:
        """Metric with 95% CI of the real model and each shuffled-label model; chance dashed."""
        import matplotlib.pyplot as plt

        t = self.table
        if ax is None:
            fig, ax = plt.subplots(figsize=(5.5, 0.35 * len(t) + 1.8), layout="constrained")
        else:
            fig = ax.figure
        ypos = np.arange(len(t))[::-1]
        colors = ["tab:blue" if m == "real" else "tab:gray" for m in t["model"]]
        err = np.vstack([t["estimate"] - t["ci_low"], t["ci_high"] - t["estimate"]])
        ax.errorbar(t["estimate"], ypos, xerr=np.nan_to_num(err), fmt="none", ecolor=colors)
        ax.scatter(t["estimate"], ypos, c=colors, zorder=3)
        ax.axvline(self.contrast["chance"], ls="--", color="k", lw=1, label="chance")
        ax.set_yticks(ypos, t["model"])
        label = LABELS.get(self.metric, self.metric)
        ax.set_xlabel(f"test {label} (95% bootstrap CI, n = {int(t['n'].iloc[0])})")
        ax.set_title("Label-shuffle control", fontsize=10)
        ax.legend(loc="best", fontsize=8)
        return fig


def label_shuffle_control(
    train_fn: Callable[[Any, Any], Any],
    X_train: Any,
    y_train: Any = None,
    X_test: Any = None,
    y_test: Any = None,
    *,
    n_repeats: int = 5,
    random_state: Any = None,
    verbose: bool = True,
) -> LabelShuffleResult:
    """Chuang & Keiser's control: retrain on shuffled labels and compare with the real model.

    ``train_fn`` is called once on the real labels and ``n_repeats`` times on randomly
    permuted training labels (same type as ``y_train``; torch's RNG is seeded for each call and
    restored afterwards). Every model is scored on the same test set, and paired bootstrap
    replicates (stratified by class, 1000 of them) give each metric a 95% CI, the difference
    real minus shuffled with its CI and a one-sided p-value, and a test of whether the
    shuffled models beat chance (which a sound evaluation never lets them do).

    The metric is AUROC (binary), macro AUROC (multiclass) or R² (regression).

    Parameters
    ----------
    train_fn : callable
        ``train_fn(X_train, y_train) -> model``; the model is scored with
        :func:`confoundry.as_model`.
    X_train, y_train, X_test, y_test : array-likes or AuditData
        Passed to ``train_fn`` / the model unchanged (only the labels are shuffled). An
        :class:`~confoundry.AuditData` carries its labels (``y_*`` may then be ``None``), and
        ``train_fn`` and the models receive the objects it was built from (``X_source``,
        ``y_source``).
    n_repeats : int
        Shuffled-label models to train.
    random_state : None, int or numpy Generator
    verbose : bool
        Show a progress bar over the fits.

    Returns
    -------
    LabelShuffleResult

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3)); y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)
    >>> res = label_shuffle_control(lambda a, b: LogisticRegression().fit(a, b),
    ...                             X[:200], y[:200], X[200:], y[200:], n_repeats=3,
    ...                             random_state=0, verbose=False)
    >>> bool(res.contrast["p_value"] < 0.05), res.findings()
    (True, [])
    """
    check_train_fn(train_fn)
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    rng = check_random_state(random_state)
    if y_train is None and not isinstance(X_train, AuditData):
        raise ValueError("y_train is None; expected the training labels (or X_train an "
                         "AuditData that carries them).")
    if X_test is None:
        raise ValueError("X_test is None; expected the test inputs the models are scored on.")
    if y_test is None and not isinstance(X_test, AuditData):
        raise ValueError("y_test is None; expected the test labels (or X_test an AuditData "
                         "that carries them).")
    train = ensure_data(X_train, y_train)
    test = ensure_data(X_test, y_test, task=train.task)
    for which, d in (("train", train), ("test", test)):
        if d.y is None:
            raise ValueError(f"y_{which} is None and X_{which} (an AuditData) holds no labels; "
                             f"expected the labels of the {which} set.")
    if train.n_features != test.n_features and train.is_tabular:
        raise ValueError(f"X_test has {test.n_features} features but X_train has "
                         f"{train.n_features}; expected the same features.")
    X_tr, y_tr = user_objects(X_train, y_train, train)
    X_te, _ = user_objects(X_test, y_test, test)
    task = train.task
    metric = HEADLINE_METRIC[task]
    seeds = [int_seed(rng) for _ in range(n_repeats + 2)]
    bar = progress(total=n_repeats + 1, desc="label-shuffle control", verbose=verbose)
    try:
        scores = [fit_and_score(train_fn, X_tr, y_tr, X_te, task, seeds[0], "the real model")]
        bar.update(1)
        for r in range(n_repeats):
            perm = np.random.default_rng(seeds[r + 1]).permutation(train.n_samples)
            scores.append(fit_and_score(train_fn, X_tr, shuffled_like(y_tr, perm), X_te,
                                        task, seeds[r + 1], f"shuffled-label model {r + 1}"))
            bar.update(1)
    finally:
        bar.close()
    yt = np.asarray(test.y)
    point, reps = boot_reps(yt, scores, task, metric, SHUFFLE_N_BOOT, seeds[-1])
    table = _table(point, reps, metric, len(yt))
    summary = _summary(point, reps, metric, n_test=len(yt), n_train=train.n_samples)
    params = {"n_repeats": n_repeats, "n_boot": SHUFFLE_N_BOOT, "metric": metric,
              "alpha": SHUFFLE_ALPHA, "ci": DEFAULT_CI, "random_state": seed_param(random_state)}
    return LabelShuffleResult(table, summary, metric, task, SHUFFLE_ALPHA, params)


def _table(point: np.ndarray, reps: np.ndarray, metric: str, n: int) -> pd.DataFrame:
    chance = CHANCE[metric]
    rows = []
    for i in range(len(point)):
        d = reps[0] - reps[i]
        lo, hi = percentile_ci(reps[i])
        dlo, dhi = percentile_ci(d) if i else (np.nan, np.nan)
        rows.append({
            "model": "real" if i == 0 else f"shuffled_{i}", "metric": metric,
            "estimate": point[i], "ci_low": lo, "ci_high": hi,
            "difference": point[0] - point[i] if i else np.nan,
            "diff_ci_low": dlo, "diff_ci_high": dhi,
            "p_value": p_greater(d) if i else np.nan,
            "p_above_chance": p_greater(reps[i] - chance), "n": n,
            "n_boot": SHUFFLE_N_BOOT,
        })
    return pd.DataFrame(rows)


def _summary(point: np.ndarray, reps: np.ndarray, metric: str, *, n_test: int,
             n_train: int) -> dict[str, Any]:
    """Real vs the mean of the shuffled models. Its standard error adds the spread between
    shuffled models (a random-direction model can score far from chance on its own) to the
    test-set sampling error from the paired bootstrap; normal approximation."""
    n_repeats = len(point) - 1
    chance = CHANCE[metric]
    shuf_mean = float(point[1:].mean())
    between = float(np.var(point[1:], ddof=1) / n_repeats) if n_repeats > 1 else 0.0
    d = reps[0] - reps[1:].mean(axis=0)
    se_d = float(np.sqrt(np.nanvar(d, ddof=1) + between))
    se_s = float(np.sqrt(np.nanvar(reps[1:].mean(axis=0), ddof=1) + between))
    diff = float(point[0]) - shuf_mean
    return {
        "metric": metric, "real": float(point[0]), "shuffled_mean": shuf_mean,
        "difference": diff, "difference_se": se_d, "diff_ci_low": diff - Z95 * se_d,
        "diff_ci_high": diff + Z95 * se_d, "p_value": normal_p(diff, se_d),
        "chance": chance, "shuffled_se": se_s,
        "p_above_chance": normal_p(shuf_mean - chance, se_s), "n_test": n_test,
        "n_train": n_train, "n_repeats": n_repeats, "n_boot": SHUFFLE_N_BOOT,
    }
