"""Leave one group out: each site or batch held out in turn, against the random-split estimate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, to_jsonable
from .._severity import grade
from .._utils import check_random_state, int_seed, progress, renamed_keyword
from ..data import AuditData, ensure_data
from ..data._validation import check_positive_int, check_probability, describe
from ..domains._common import MIN_EVENTS, MIN_N, check_floor, floor_note, label_events
from ..stats import (
    DEFAULT_CI,
    DEFAULT_FDR,
    HIGHER_IS_BETTER,
    LABELS,
    bh_adjust,
    difference_summary,
    percentile_ci,
)
from ._common import seed_param, user_objects
from ._retrain import boot_reps, check_train_fn, fit_and_score, resolve_metric, take_rows

#: folds of the random-split internal estimate in leave_one_group_out.
INTERNAL_FOLDS = 5
#: the ``group`` of the last row: every group's out-of-group predictions pooled.
POOLED = "(all, pooled)"


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
        ``significant`` (``q_value < alpha``), ``n_boot``, ``testable`` and ``note``: a group
        below the floor (``min_n`` rows, ``min_events`` of each outcome) keeps its ``n`` and
        ``estimate`` but has no interval, p- or q-value and is never ``significant``; its
        ``note`` says it is too small to test.
    metric, task : str
    alpha : float
        The false discovery rate of ``significant`` (``fdr``).
    info : dict
        ``n_groups``, ``internal_folds``, ``n_fits``.
    params : dict
        ``metric``, ``n_boot``, ``fdr``, ``ci``, ``internal_folds``, ``random_state``, ``by``,
        ``min_n``, ``min_events``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)); y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    >>> res = leave_one_group_out(lambda a, b: LogisticRegression().fit(a, b), X, y,
    ...                           by=np.repeat(["a", "b"], 100), n_boot=50, random_state=0,
    ...                           verbose=False)
    >>> res.table["group"].tolist(), res.metric, res.info["n_groups"]
    (['a', 'b', '(all, pooled)'], 'auroc', 2)
    >>> res.table.columns[:4].tolist()
    ['group', 'n', 'metric', 'estimate']
    """

    table: pd.DataFrame
    metric: str
    task: str
    alpha: float = DEFAULT_FDR
    info: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def findings(self) -> list[Finding]:
        out = []
        label = LABELS.get(self.metric, self.metric)
        sign = 1 if HIGHER_IS_BETTER[self.metric] else -1
        for _, r in self.table.iterrows():
            if not (r["significant"] and sign * r["difference"] < 0):
                continue
            pooled = r["group"] == POOLED
            who = "Every group held out in turn" if pooled else f"Group '{r['group']}' held out"
            level = grade("group_generalisation_gap", r["difference"], n=int(r["n"]),
                          ceiling="high" if pooled else "medium")
            out.append(Finding(
                "group_generalisation_gap", level, 4,
                f"{who} scores {label} {r['estimate']:.3f} [{r['ci_low']:.3f}, "
                f"{r['ci_high']:.3f}] against {r['internal']:.3f} with random splits "
                f"(q = {r['q_value']:.2g}): internal validation overstates performance on new "
                "groups.",
                subject=str(r["group"]), domain="overall" if pooled else str(r["group"]),
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
            fig, ax = plt.subplots(figsize=(6, 0.35 * len(t) + 1.8), layout="constrained")
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
        return fig


def _check_by(by: Any, data: AuditData) -> tuple[np.ndarray, str | None]:
    """The group of every row (1-D, no missing values, at least two levels) and its name."""
    name = None
    if isinstance(by, str) and data.metadata is not None and by in data.metadata.columns:
        name, by = by, data.metadata[by]
    elif isinstance(by, pd.Series) and by.name is not None:
        name = str(by.name)
    g = np.asarray(by.to_numpy() if hasattr(by, "to_numpy") else by)
    n = data.n_samples
    if g.ndim != 1 or len(g) != n:
        raise ValueError(f"by={describe(by)} must be 1-D with one entry per row of X ({n}); "
                         "expected an array of group labels (or a metadata column name when X "
                         "is an AuditData).")
    if pd.isna(pd.Series(g)).any():
        raise ValueError("by has missing values; expected a group for every sample.")
    return g, name


def leave_one_group_out(
    train_fn: Callable[[Any, Any], Any],
    X: Any,
    y: Any = None,
    by: Any = None,
    *,
    metric: str = "auroc",
    n_boot: int = 1000,
    fdr: float = DEFAULT_FDR,
    random_state: Any = None,
    verbose: bool = True,
    groups: Any = None,
    min_n: int = MIN_N,
    min_events: int = MIN_EVENTS,
) -> LeaveOneGroupOutResult:
    """Hold out each group (site, batch) in turn; compare with the internal random-split score.

    For every group ``g``, ``train_fn`` fits on the other groups and the model is scored on
    ``g``. The internal estimate is a random 5-fold cross-validation over all samples (what a
    study that ignores the groups reports). Each group's metric gets a stratified bootstrap
    95% CI and is compared with the internal estimate (difference, CI, two-sided bootstrap p,
    BH q over groups); the pooled out-of-group predictions are compared with the internal ones
    on the same samples by a paired bootstrap.

    Parameters
    ----------
    train_fn : callable
        ``train_fn(X_train, y_train) -> model``, scored with :func:`confoundry.as_model`.
    X, y : array-likes or AuditData
        All samples; rows are passed to ``train_fn`` in the type given (``iloc`` rows of a
        DataFrame, indexed rows of an array or tensor). An :class:`~confoundry.AuditData`
        carries ``y`` (which may then be ``None``), and its rows are taken from the objects it
        was built from (``X_source``, ``y_source``).
    by : array-like of shape (n,) or str
        Group of each sample (at least two groups), or the name of a metadata column of ``X``
        when ``X`` is an AuditData.
    metric : str
        A metric of :func:`confoundry.stats.default_metrics` for the task (scikit-learn
        spellings accepted). The default ``"auroc"`` means macro AUROC for multiclass tasks and
        R² for regression.
    n_boot : int
        Bootstrap replicates.
    fdr : float
        False discovery rate of ``significant`` (Benjamini-Hochberg over the groups).
    random_state : None, int or numpy Generator
    verbose : bool
        Show a progress bar over the fits.
    groups : array-like, optional
        Deprecated keyword spelling of ``by``.
    min_n : int
        Smallest held-out group a claim may rest on (rows).
    min_events : int
        Smallest count of each outcome in a held-out group: positives and negatives (binary),
        rows of every class (multiclass); none for regression. A group below either floor is
        still held out and scored (its model is part of the pooled row), but it gets no
        interval and no p- or q-value (it is left out of the Benjamini–Hochberg family: the
        floor reads the labels only, so leaving it out is the same as never testing it) and
        no finding rests on it.

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
    ...                           by=np.repeat(["a", "b", "c"], 100), n_boot=200,
    ...                           random_state=0, verbose=False)
    >>> res.to_frame()["group"].tolist()
    ['a', 'b', 'c', '(all, pooled)']
    """
    by = renamed_keyword("leave_one_group_out", "groups", "by", groups, by)
    if by is None:
        raise ValueError("by is None; expected the group of every sample (site, batch ...).")
    check_train_fn(train_fn)
    n_boot = check_positive_int(n_boot, "n_boot")
    fdr = check_probability(fdr, "fdr")
    min_n, min_events = check_floor(min_n, min_events)
    rng = check_random_state(random_state)
    if y is None and not isinstance(X, AuditData):
        raise ValueError("y is None; expected one label per row of X (or X an AuditData that "
                         "carries them).")
    data = ensure_data(X, y)
    if data.y is None:
        raise ValueError("y is None and X (an AuditData) holds no labels; expected the labels.")
    task, n = data.task, data.n_samples
    metric = resolve_metric(metric, task)
    g, by_name = _check_by(by, data)
    from .._utils import natural_order

    levels = np.array(natural_order(g.tolist()), dtype=object)  # 1, 2, ..., 10: not 1, 10, 2
    codes = pd.Categorical(g.tolist(), categories=levels.tolist()).codes.astype(np.int64)
    if len(levels) < 2:
        raise ValueError(f"by has a single level ({levels[0]!r}); expected at least two "
                         "groups to hold out.")
    X_user, y_user = user_objects(X, y, data)
    yv = np.asarray(data.y)
    seeds = [int_seed(rng) for _ in range(len(levels) + INTERNAL_FOLDS + 2)]

    def fit(te: np.ndarray, tr: np.ndarray, seed: int, what: str) -> np.ndarray:
        return fit_and_score(train_fn, take_rows(X_user, tr), take_rows(y_user, tr),
                             take_rows(X_user, te), task, seed, what)

    logo = np.zeros((n,) if task != "multiclass" else (n, len(data.classes)))
    internal = np.zeros_like(logo)
    folds = np.random.default_rng(seeds[-2]).permutation(np.arange(n) % INTERNAL_FOLDS)
    bar = progress(total=len(levels) + INTERNAL_FOLDS, desc="leave one group out",
                   verbose=verbose)
    try:
        for k, lev in enumerate(levels):
            te, tr = np.flatnonzero(codes == k), np.flatnonzero(codes != k)
            logo[te] = fit(te, tr, seeds[k], f"model without {lev!r}")
            bar.update(1)
        for f in range(INTERNAL_FOLDS):
            te, tr = np.flatnonzero(folds == f), np.flatnonzero(folds != f)
            internal[te] = fit(te, tr, seeds[len(levels) + f], f"internal fold {f + 1}")
            bar.update(1)
    finally:
        bar.close()
    n_classes = None if data.classes is None else len(data.classes)
    notes = [floor_note(int(np.sum(codes == k)), min_n,
                        label_events(yv[codes == k], task, n_classes), min_events)
             for k in range(len(levels))]
    notes.append(floor_note(n, min_n, label_events(yv, task, n_classes), min_events))
    table = _table(yv, codes, levels, logo, internal, task, metric, n_boot, fdr,
                   np.random.default_rng(seeds[-1]), notes)
    info = {"n_groups": len(levels), "internal_folds": INTERNAL_FOLDS,
            "n_fits": len(levels) + INTERNAL_FOLDS}
    params = {"metric": metric, "n_boot": n_boot, "fdr": fdr, "ci": DEFAULT_CI,
              "internal_folds": INTERNAL_FOLDS, "random_state": seed_param(random_state),
              "by": by_name, "min_n": min_n, "min_events": min_events}
    return LeaveOneGroupOutResult(table, metric, task, fdr, info, params)


def _table(yv: np.ndarray, codes: np.ndarray, levels: np.ndarray, logo: np.ndarray,
           internal: np.ndarray, task: str, metric: str, n_boot: int, fdr: float,
           boot_seed: np.random.Generator, notes: list[str]) -> pd.DataFrame:
    """One row per held-out group and the pooled row, each against the internal estimate;
    ``notes`` (one per group, then the pooled row) blank the intervals and p-values of the
    rows too small to test."""
    (pt_logo, pt_int), (r_logo, r_int) = boot_reps(
        yv, [logo, internal], task, metric, n_boot, int_seed(boot_seed))
    ilo, ihi = percentile_ci(r_int)

    def row(group: Any, n: int, pt: float, reps: np.ndarray, note: str) -> dict[str, Any]:
        lo, hi = percentile_ci(reps) if not note else (np.nan, np.nan)
        d = difference_summary(reps - r_int) if not note else {
            "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
        return {"group": group, "n": n, "metric": metric, "estimate": pt,
                "ci_low": lo, "ci_high": hi, "internal": pt_int, "internal_ci_low": ilo,
                "internal_ci_high": ihi, "difference": pt - pt_int,
                "diff_ci_low": d["ci_low"], "diff_ci_high": d["ci_high"],
                "p_value": d["p_value"] if np.isfinite(pt) else np.nan,
                "testable": not note, "note": note}

    rows = []
    for k, lev in enumerate(levels):
        idx = np.flatnonzero(codes == k)
        try:
            (pt,), (rk,) = boot_reps(yv[idx], [logo[idx]], task, metric, n_boot,
                                     int_seed(boot_seed))
        except (ValueError, IndexError):
            pt, rk = np.nan, np.full(n_boot, np.nan)
        rows.append(row(lev, len(idx), pt, rk, notes[k]))
    q = bh_adjust(np.array([r["p_value"] for r in rows], dtype=float))
    for r, qq in zip(rows, q):
        r["q_value"] = qq
    pooled = row(POOLED, len(yv), pt_logo, r_logo, notes[-1])
    pooled["q_value"] = pooled["p_value"]
    rows.append(pooled)
    table = pd.DataFrame(rows)
    table["group"] = table["group"].astype(str)
    table["significant"] = (table["q_value"] < fdr).fillna(False).astype(bool)
    table["n_boot"] = n_boot
    return table[[c for c in table.columns if c not in ("testable", "note")]
                 + ["testable", "note"]]
