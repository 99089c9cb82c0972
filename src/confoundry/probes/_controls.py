"""Controls that retrain the model: the label-shuffle control and leave-one-group-out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, to_jsonable
from .._utils import check_random_state, int_seed, torch_seed
from ..data import AuditData
from ..data._validation import check_positive_int, describe
from ..models import as_model
from ..stats import HIGHER_IS_BETTER, LABELS, bh_adjust, bootstrap_weights, weighted_metrics
from ..stats._metrics import check_metrics

#: bootstrap replicates of the label-shuffle control.
SHUFFLE_N_BOOT = 1000
#: folds of the random-split internal estimate in leave_one_group_out.
INTERNAL_FOLDS = 5
_DEFAULT_METRIC = {"binary": "auroc", "multiclass": "macro_auroc", "regression": "r2"}
_CHANCE = {"auroc": 0.5, "macro_auroc": 0.5, "balanced_accuracy": 0.5, "r2": 0.0}


# ---------------------------------------------------------------------- helpers
def _check_train_fn(train_fn: Any) -> None:
    if not callable(train_fn):
        raise TypeError(f"train_fn={describe(train_fn)} is not callable; expected a function "
                        "train_fn(X_train, y_train) -> fitted model.")


def _take_rows(obj: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a DataFrame, Series, ndarray, tensor or list, keeping its type."""
    if isinstance(obj, (pd.DataFrame, pd.Series)):
        return obj.iloc[idx]
    try:
        import torch

        if isinstance(obj, torch.Tensor):
            return obj[torch.as_tensor(idx, dtype=torch.long)]
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, np.ndarray):
        return obj[idx]
    return np.asarray(obj)[idx]


def _shuffled_like(y: Any, perm: np.ndarray) -> Any:
    """``y`` with its values permuted by ``perm``, same type (a Series keeps its index)."""
    if isinstance(y, pd.Series):
        return pd.Series(y.to_numpy()[perm], index=y.index, name=y.name)
    if isinstance(y, pd.DataFrame):
        return pd.DataFrame(y.to_numpy()[perm], index=y.index, columns=y.columns)
    return _take_rows(y, perm)


def _fit_and_score(train_fn: Callable, X_tr: Any, y_tr: Any, X_te: Any, task: str,
                   seed: int, what: str) -> np.ndarray:
    with torch_seed(seed):
        try:
            model = train_fn(X_tr, y_tr)
        except Exception as exc:
            raise RuntimeError(f"train_fn failed while fitting {what}: "
                               f"{type(exc).__name__}: {exc}") from exc
    if model is None:
        raise TypeError(f"train_fn returned None while fitting {what}; expected the fitted model.")
    return as_model(model, task=task, name=what).predict_scores(X_te)


def _resolve_metric(metric: str, task: str) -> str:
    if metric == "auroc" and task != "binary":
        return _DEFAULT_METRIC[task]
    return check_metrics([metric], task)[0]


def _boot_reps(y: np.ndarray, scores: list[np.ndarray], task: str, metric: str, n_boot: int,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Point estimates (m,) and paired bootstrap replicates (m, B) of ``metric`` for several
    score vectors on the same samples."""
    strata = y if task in ("binary", "multiclass") else None
    point = np.array([weighted_metrics(y, s, None, task=task, metrics=[metric])[metric][0]
                      for s in scores])
    reps: list[list[np.ndarray]] = [[] for _ in scores]
    for W in bootstrap_weights(len(y), n_boot, strata=strata, random_state=seed):
        for i, s in enumerate(scores):
            reps[i].append(weighted_metrics(y, s, W, task=task, metrics=[metric])[metric])
    return point, np.array([np.concatenate(r) for r in reps])


def _ci(r: np.ndarray) -> tuple[float, float]:
    r = r[np.isfinite(r)]
    if len(r) < 2:
        return np.nan, np.nan
    lo, hi = np.quantile(r, [0.025, 0.975])
    return float(lo), float(hi)


def _p_greater(d: np.ndarray) -> float:
    """One-sided bootstrap p of ``d > 0``: ``(1 + #{d <= 0}) / (1 + B)``."""
    d = d[np.isfinite(d)]
    return float((1 + np.sum(d <= 0)) / (1 + len(d))) if len(d) else np.nan


def _normal_p(estimate: float, se: float) -> float:
    """One-sided p of ``estimate > 0`` under a normal approximation."""
    from scipy.stats import norm

    if not np.isfinite(se) or not np.isfinite(estimate):
        return np.nan
    if se <= 0:
        return 0.0 if estimate > 0 else 1.0
    return float(norm.sf(estimate / se))


def _p_two_sided(d: np.ndarray) -> float:
    d = d[np.isfinite(d)]
    if not len(d):
        return np.nan
    return float(min(1.0, 2 * (1 + min(np.sum(d <= 0), np.sum(d >= 0))) / (1 + len(d))))


# ---------------------------------------------------------------------- label shuffle
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
    summary : dict
        ``real``, ``shuffled_mean``, ``difference`` (real minus mean shuffled) with its standard
        error, 95% CI and one-sided p-value, ``chance`` and the p-value that the shuffled models
        beat chance. These standard errors add the spread between the shuffled models to the
        paired-bootstrap test-set error (normal approximation).
    """

    table: pd.DataFrame
    summary: dict[str, Any]
    metric: str
    task: str
    alpha: float = 0.05

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({"summary": to_jsonable(self.summary), "metric": self.metric,
                    "task": self.task})
        return out

    def findings(self) -> list[Finding]:
        s = self.summary
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
                subject="label", evidence=ev))
        if s["p_above_chance"] < self.alpha:
            out.append(Finding(
                "shuffled_above_chance", "medium", 7,
                f"Models trained on shuffled labels still score above chance ({label} "
                f"{s['shuffled_mean']:.3f} vs {s['chance']:g}, p = {s['p_above_chance']:.2g}): "
                "the test set shares structure with the training set that does not need the "
                "labels (duplicates, leakage, or an evaluation artefact).",
                subject="label", evidence=ev))
        return out

    def plot(self, ax: Any = None) -> Any:
        """Metric with 95% CI of the real model and each shuffled-label model; chance dashed."""
        import matplotlib.pyplot as plt

        t = self.table
        if ax is None:
            fig, ax = plt.subplots(figsize=(5.5, 0.35 * len(t) + 1.8))
        else:
            fig = ax.figure
        ypos = np.arange(len(t))[::-1]
        colors = ["tab:blue" if m == "real" else "tab:gray" for m in t["model"]]
        err = np.vstack([t["estimate"] - t["ci_low"], t["ci_high"] - t["estimate"]])
        ax.errorbar(t["estimate"], ypos, xerr=np.nan_to_num(err), fmt="none", ecolor=colors)
        ax.scatter(t["estimate"], ypos, c=colors, zorder=3)
        ax.axvline(self.summary["chance"], ls="--", color="k", lw=1, label="chance")
        ax.set_yticks(ypos, t["model"])
        label = LABELS.get(self.metric, self.metric)
        ax.set_xlabel(f"test {label} (95% bootstrap CI, n = {int(t['n'].iloc[0])})")
        ax.set_title("Label-shuffle control", fontsize=10)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        return fig


def label_shuffle_control(
    train_fn: Callable[[Any, Any], Any],
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    n_repeats: int = 5,
    random_state: Any = None,
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
    X_train, y_train, X_test, y_test : array-likes
        Passed to ``train_fn`` / the model unchanged (only the labels are shuffled).
    n_repeats : int
        Shuffled-label models to train.
    random_state : None, int or numpy Generator

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
    ...                             random_state=0)
    >>> bool(res.summary["p_value"] < 0.05), res.findings()
    (True, [])
    """
    _check_train_fn(train_fn)
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    rng = check_random_state(random_state)
    train = AuditData(X_train, y_train)
    test = AuditData(X_test, y_test, task=train.task)
    if train.n_features != test.n_features and train.is_tabular:
        raise ValueError(f"X_test has {test.n_features} features but X_train has "
                         f"{train.n_features}; expected the same features.")
    task = train.task
    metric = _DEFAULT_METRIC[task]
    seeds = [int_seed(rng) for _ in range(n_repeats + 2)]
    scores = [_fit_and_score(train_fn, X_train, y_train, X_test, task, seeds[0], "the real model")]
    for r in range(n_repeats):
        perm = np.random.default_rng(seeds[r + 1]).permutation(train.n_samples)
        scores.append(_fit_and_score(train_fn, X_train, _shuffled_like(y_train, perm), X_test,
                                     task, seeds[r + 1], f"shuffled-label model {r + 1}"))
    yt = np.asarray(test.y)
    point, reps = _boot_reps(yt, scores, task, metric, SHUFFLE_N_BOOT, seeds[-1])
    chance = _CHANCE[metric]
    rows = []
    for i in range(n_repeats + 1):
        d = reps[0] - reps[i]
        lo, hi = _ci(reps[i])
        dlo, dhi = _ci(d) if i else (np.nan, np.nan)
        rows.append({
            "model": "real" if i == 0 else f"shuffled_{i}", "metric": metric,
            "estimate": point[i], "ci_low": lo, "ci_high": hi,
            "difference": point[0] - point[i] if i else np.nan,
            "diff_ci_low": dlo, "diff_ci_high": dhi,
            "p_value": _p_greater(d) if i else np.nan,
            "p_above_chance": _p_greater(reps[i] - chance), "n": len(yt),
            "n_boot": SHUFFLE_N_BOOT,
        })
    # Summary: real vs the mean of the shuffled models. Its standard error adds the spread
    # between shuffled models (a random-direction model can score far from chance on its own)
    # to the test-set sampling error from the paired bootstrap; normal approximation.
    shuf_mean = float(point[1:].mean())
    between = float(np.var(point[1:], ddof=1) / n_repeats) if n_repeats > 1 else 0.0
    d = reps[0] - reps[1:].mean(axis=0)
    se_d = float(np.sqrt(np.nanvar(d, ddof=1) + between))
    se_s = float(np.sqrt(np.nanvar(reps[1:].mean(axis=0), ddof=1) + between))
    diff = float(point[0]) - shuf_mean
    summary = {
        "metric": metric, "real": float(point[0]), "shuffled_mean": shuf_mean,
        "difference": diff, "difference_se": se_d, "diff_ci_low": diff - 1.96 * se_d,
        "diff_ci_high": diff + 1.96 * se_d, "p_value": _normal_p(diff, se_d),
        "chance": chance, "shuffled_se": se_s,
        "p_above_chance": _normal_p(shuf_mean - chance, se_s), "n_test": len(yt),
        "n_train": train.n_samples, "n_repeats": n_repeats, "n_boot": SHUFFLE_N_BOOT,
    }
    return LabelShuffleResult(pd.DataFrame(rows), summary, metric, task)


# ---------------------------------------------------------------------- leave one group out
@dataclass(frozen=True, eq=False)
class LeaveOneGroupOutResult(ResultMixin):
    """Each group held out in turn, against the pooled internal (random-split) estimate.

    Attributes
    ----------
    table : DataFrame
        One row per group plus a last row ``"(all, pooled)"``: ``group``, ``n``, ``metric``,
        ``estimate``, ``ci_low``, ``ci_high`` (the model trained without the group, tested on
        it), ``internal``, ``internal_ci_low``, ``internal_ci_high`` (random-split
        cross-validation on all samples), ``difference`` (held-out minus internal),
        ``diff_ci_low``, ``diff_ci_high``, ``p_value`` (two-sided bootstrap), ``q_value`` (BH over
        the groups; the pooled row is tested on its own, paired on the same samples),
        ``significant``, ``n_boot``.
    """

    table: pd.DataFrame
    metric: str
    task: str
    alpha: float = 0.05
    info: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({"metric": self.metric, "task": self.task, "info": to_jsonable(self.info)})
        return out

    def findings(self) -> list[Finding]:
        out = []
        label = LABELS.get(self.metric, self.metric)
        sign = 1 if HIGHER_IS_BETTER[self.metric] else -1
        for _, r in self.table.iterrows():
            if not (r["significant"] and sign * r["difference"] < 0):
                continue
            pooled = r["group"] == "(all, pooled)"
            who = "Every group held out in turn" if pooled else f"Group '{r['group']}' held out"
            out.append(Finding(
                "group_generalisation_gap", "high" if pooled else "medium", 4,
                f"{who} scores {label} {r['estimate']:.3f} [{r['ci_low']:.3f}, "
                f"{r['ci_high']:.3f}] against {r['internal']:.3f} with random splits "
                f"(q = {r['q_value']:.2g}): internal validation overstates performance on new "
                "groups.",
                subject=str(r["group"]),
                evidence={k: to_jsonable(r[k]) for k in (
                    "group", "n", "metric", "estimate", "ci_low", "ci_high", "internal",
                    "difference", "diff_ci_low", "diff_ci_high", "p_value", "q_value")}))
        return out

    def plot(self, ax: Any = None) -> Any:
        """Forest plot: held-out metric per group with 95% CI; the internal estimate and its CI
        as a line and band."""
        import matplotlib.pyplot as plt

        t = self.table
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 0.35 * len(t) + 1.8))
        else:
            fig = ax.figure
        ypos = np.arange(len(t))[::-1]
        colors = ["tab:red" if s else "tab:blue" for s in t["significant"]]
        err = np.vstack([t["estimate"] - t["ci_low"], t["ci_high"] - t["estimate"]])
        ax.errorbar(t["estimate"], ypos, xerr=np.nan_to_num(np.abs(err)), fmt="none",
                    ecolor=colors)
        ax.scatter(t["estimate"], ypos, c=colors, zorder=3)
        last = t.iloc[-1]
        ax.axvline(last["internal"], color="k", lw=1, label="internal (random split)")
        ax.axvspan(last["internal_ci_low"], last["internal_ci_high"], color="k", alpha=0.1)
        ax.set_yticks(ypos, [f"{g} (n={n})" for g, n in zip(t["group"], t["n"])])
        ax.set_xlabel(f"held-out {LABELS.get(self.metric, self.metric)} (95% bootstrap CI)")
        ax.set_title("Leave one group out (red: differs from internal, q < "
                     f"{self.alpha:g})", fontsize=10)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        return fig


def leave_one_group_out(
    train_fn: Callable[[Any, Any], Any],
    X: Any,
    y: Any,
    groups: Any,
    *,
    metric: str = "auroc",
    n_boot: int = 1000,
    random_state: Any = None,
) -> LeaveOneGroupOutResult:
    """Hold out each group (site, batch) in turn; compare with the internal random-split score.

    For every group ``g``, ``train_fn`` fits on the other groups and the model is scored on
    ``g``. The internal estimate is a random 5-fold cross-validation over all samples (what a
    study that ignores the groups reports). Each group's metric gets a stratified bootstrap
    95% CI and is compared with the internal estimate (difference, CI, two-sided p, BH q over
    groups); the pooled out-of-group predictions are compared with the internal ones on the
    same samples by a paired bootstrap.

    Parameters
    ----------
    train_fn : callable
        ``train_fn(X_train, y_train) -> model``, scored with :func:`confoundry.as_model`.
    X, y : array-likes
        All samples; rows are passed to ``train_fn`` in the type given.
    groups : array-like of shape (n,)
        Group of each sample (at least two groups).
    metric : str
        A metric of :func:`confoundry.stats.default_metrics` for the task. The default
        ``"auroc"`` means macro AUROC for multiclass tasks and R² for regression.
    n_boot : int
        Bootstrap replicates.
    random_state : None, int or numpy Generator

    Returns
    -------
    LeaveOneGroupOutResult

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2)); y = (X[:, 0] + rng.normal(size=300) > 0).astype(int)
    >>> res = leave_one_group_out(lambda a, b: LogisticRegression().fit(a, b), X, y,
    ...                           np.repeat(["a", "b", "c"], 100), n_boot=200, random_state=0)
    >>> res.to_frame()["group"].tolist()
    ['a', 'b', 'c', '(all, pooled)']
    """
    _check_train_fn(train_fn)
    n_boot = check_positive_int(n_boot, "n_boot")
    rng = check_random_state(random_state)
    data = AuditData(X, y)
    task, n = data.task, data.n_samples
    if not isinstance(metric, str):
        raise TypeError(f"metric={describe(metric)} is not a string; expected a metric name.")
    metric = _resolve_metric(metric, task)
    g = np.asarray(groups.to_numpy() if hasattr(groups, "to_numpy") else groups)
    if g.ndim != 1 or len(g) != n:
        raise ValueError(f"groups={describe(groups)} must be 1-D with one entry per row of X "
                         f"({n}); expected an array of group labels.")
    if pd.isna(pd.Series(g)).any():
        raise ValueError("groups has missing values; expected a group for every sample.")
    levels, codes = np.unique(g, return_inverse=True)
    if len(levels) < 2:
        raise ValueError(f"groups has a single level ({levels[0]!r}); expected at least two "
                         "groups to hold out.")
    yv = np.asarray(data.y)
    seeds = [int_seed(rng) for _ in range(len(levels) + INTERNAL_FOLDS + 2)]
    logo = np.zeros((n,) if task != "multiclass" else (n, len(data.classes)))
    for k, lev in enumerate(levels):
        te, tr = np.flatnonzero(codes == k), np.flatnonzero(codes != k)
        logo[te] = _fit_and_score(train_fn, _take_rows(X, tr), _take_rows(y, tr),
                                  _take_rows(X, te), task, seeds[k], f"model without {lev!r}")
    folds = np.random.default_rng(seeds[-2]).permutation(np.arange(n) % INTERNAL_FOLDS)
    internal = np.zeros_like(logo)
    for f in range(INTERNAL_FOLDS):
        te, tr = np.flatnonzero(folds == f), np.flatnonzero(folds != f)
        internal[te] = _fit_and_score(train_fn, _take_rows(X, tr), _take_rows(y, tr),
                                      _take_rows(X, te), task, seeds[len(levels) + f],
                                      f"internal fold {f + 1}")
    boot_seed = np.random.default_rng(seeds[-1])
    (pt_logo, pt_int), (r_logo, r_int) = _boot_reps(
        yv, [logo, internal], task, metric, n_boot, int_seed(boot_seed))
    ilo, ihi = _ci(r_int)
    rows = []
    for k, lev in enumerate(levels):
        idx = np.flatnonzero(codes == k)
        try:
            (pt,), (rk,) = _boot_reps(yv[idx], [logo[idx]], task, metric, n_boot,
                                      int_seed(boot_seed))
        except (ValueError, IndexError):
            pt, rk = np.nan, np.full(n_boot, np.nan)
        d = rk - r_int
        lo, hi = _ci(rk)
        dlo, dhi = _ci(d)
        rows.append({"group": lev, "n": len(idx), "metric": metric, "estimate": pt,
                     "ci_low": lo, "ci_high": hi, "internal": pt_int, "internal_ci_low": ilo,
                     "internal_ci_high": ihi, "difference": pt - pt_int, "diff_ci_low": dlo,
                     "diff_ci_high": dhi, "p_value": _p_two_sided(d) if np.isfinite(pt)
                     else np.nan})
    q = bh_adjust(np.array([r["p_value"] for r in rows], dtype=float))
    for r, qq in zip(rows, q):
        r["q_value"] = qq
    d = r_logo - r_int
    lo, hi = _ci(r_logo)
    dlo, dhi = _ci(d)
    p = _p_two_sided(d)
    rows.append({"group": "(all, pooled)", "n": n, "metric": metric, "estimate": pt_logo,
                 "ci_low": lo, "ci_high": hi, "internal": pt_int, "internal_ci_low": ilo,
                 "internal_ci_high": ihi, "difference": pt_logo - pt_int, "diff_ci_low": dlo,
                 "diff_ci_high": dhi, "p_value": p, "q_value": p})
    table = pd.DataFrame(rows)
    table["group"] = table["group"].astype(str)
    table["significant"] = (table["q_value"] < 0.05).fillna(False).astype(bool)
    table["n_boot"] = n_boot
    info = {"n_groups": len(levels), "internal_folds": INTERNAL_FOLDS, "n_fits":
            len(levels) + INTERNAL_FOLDS}
    return LeaveOneGroupOutResult(table, metric, task, 0.05, info)
