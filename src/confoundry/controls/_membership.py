"""Membership-inference risk (Tip 10): threshold attacks that need no shadow models."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import entr

from .._result import Finding, ResultMixin, to_jsonable
from .._utils import check_random_state, int_seed
from ..data._validation import check_positive_int, check_probability, describe
from ..stats import bh_adjust, bootstrap_weights
from ._common import ALPHA, CI_LEVEL, fmt_ci, percentile_ci, score_models

ATTACKS = ("loss", "confidence", "entropy")
#: attacks that need predicted probabilities (not defined for regression).
_PROBABILITY_ATTACKS = ("confidence", "entropy")
_CHUNK_CELLS = 2_000_000
_EPS = 1e-12
#: an attack AUROC at or above this, or a TPR at the low FPR at least this many times the FPR,
#: counts as a strong leak (with significance).
_STRONG_AUROC = 0.6
_STRONG_TPR_RATIO = 5.0

_ACTIONS = (
    "Do not publish the weights as they are. Retrain with differential privacy (e.g. DP-SGD) "
    "if they must be shared, or share only predictions (hard labels rather than probabilities) "
    "through an access-controlled service; regularisation and early stopping reduce "
    "memorisation but give no guarantee."
)


def _round_sig(x: np.ndarray, digits: int = 12) -> np.ndarray:
    """Round to ``digits`` significant digits, so that outputs equal up to floating-point noise
    (e.g. the order of a sum) tie instead of being ordered by that noise."""
    x = np.asarray(x, dtype=np.float64)
    mag = np.floor(np.log10(np.where(x != 0, np.abs(x), 1.0)))
    scale = 10.0 ** (digits - 1 - mag)
    return np.round(x * scale) / scale


def attack_scores(
    y: np.ndarray, scores: np.ndarray, task: str, attack: str
) -> np.ndarray:
    """Per-sample membership scores: the higher, the more the record looks like a member.

    ``loss`` is minus the per-sample loss (log-loss for classifiers, squared error for
    regression; Yeom et al. 2018), ``confidence`` the largest predicted class probability,
    ``entropy`` minus the entropy of the predicted distribution.

    Examples
    --------
    >>> attack_scores(np.array([1, 0]), np.array([0.9, 0.9]), "binary", "loss").round(3)
    array([-0.105, -2.303])
    """
    y = np.asarray(y)
    s = np.asarray(scores, dtype=np.float64)
    if task == "regression":
        if attack != "loss":
            raise ValueError(f"attack={attack!r} needs class probabilities; for task='regression' "
                             "only the 'loss' attack (squared error) is defined.")
        return _round_sig(-((y.astype(np.float64) - s) ** 2))
    if task == "binary":
        p = np.clip(s, 0.0, 1.0)
        P = np.column_stack([1 - p, p])
    else:
        P = np.clip(s, 0.0, None)
        P = P / np.where(P.sum(axis=1, keepdims=True) > 0, P.sum(axis=1, keepdims=True), 1.0)
    if attack == "loss":
        out = np.log(np.clip(P[np.arange(len(y)), y.astype(np.int64)], _EPS, None))
    elif attack == "confidence":
        out = P.max(axis=1)
    elif attack == "entropy":
        out = -entr(P).sum(axis=1)
    else:
        out = None
    if out is not None:
        return _round_sig(out)
    raise ValueError(f"attack={attack!r} is not valid; expected one of {ATTACKS}.")


def _roc_stats(z: np.ndarray, s: np.ndarray, W: np.ndarray, fpr: float,
               order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attack AUROC, TPR at FPR = ``fpr`` and the maximal advantage TPR - FPR, per row of ``W``.

    One sort serves every bootstrap replicate (rows of ``W`` hold sample counts). The TPR is read
    from the ROC interpolated between its vertices, which an attacker attains by flipping a biased
    coin at the threshold, so the value is attainable, not optimistic. Ties count one half in the
    AUROC, as in scikit-learn.
    """
    if order is None:
        order = np.argsort(-s, kind="mergesort")
    so = s[order]
    ends = np.r_[np.flatnonzero(so[1:] != so[:-1]), len(so) - 1]  # last position of tie groups
    Wo = W[:, order]
    tp = np.cumsum(Wo * z[order].astype(W.dtype), axis=1)[:, ends].astype(np.float64)
    fp = np.cumsum(Wo, axis=1)[:, ends].astype(np.float64) - tp
    P, N = tp[:, -1], fp[:, -1]
    pos = np.diff(tp, axis=1, prepend=0.0)
    neg = np.diff(fp, axis=1, prepend=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auroc = np.sum(pos * (N[:, None] - fp + 0.5 * neg), axis=1) / (P * N)
        tpr = tp / P[:, None]
        fpr_ = fp / N[:, None]
    zeros = np.zeros((W.shape[0], 1))
    tpr = np.hstack([zeros, tpr])
    fpr_ = np.hstack([zeros, fpr_])
    rows = np.arange(W.shape[0])
    k = np.sum(fpr_ <= fpr + 1e-12, axis=1) - 1  # last vertex with FPR <= target
    k1 = np.minimum(k + 1, fpr_.shape[1] - 1)
    x0, x1 = fpr_[rows, k], fpr_[rows, k1]
    y0, y1 = tpr[rows, k], tpr[rows, k1]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(x1 > x0, (fpr - x0) / np.where(x1 > x0, x1 - x0, 1.0), 0.0)
    tpr_at = y0 + np.clip(t, 0, 1) * (y1 - y0)
    adv = np.max(tpr - fpr_, axis=1)
    return auroc, tpr_at, adv


def roc_curve_points(z: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC vertices (FPR, TPR) of scores ``s`` for members ``z == 1``, starting at (0, 0)."""
    order = np.argsort(-s, kind="mergesort")
    so = s[order]
    zo = z[order].astype(bool)
    starts = np.flatnonzero(np.r_[True, so[1:] != so[:-1]])
    tp = np.r_[0.0, np.cumsum(np.add.reduceat(zo.astype(float), starts))]
    fp = np.r_[0.0, np.cumsum(np.add.reduceat((~zo).astype(float), starts))]
    return fp / max(fp[-1], 1), tp / max(tp[-1], 1)


def _mann_whitney_p(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """One-sided p-value of "members score no higher than non-members" (tie-corrected)."""
    from scipy.stats import mannwhitneyu

    if np.ptp(np.r_[members, nonmembers]) == 0:
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = mannwhitneyu(members, nonmembers, alternative="greater", method="asymptotic").pvalue
    return float(p) if np.isfinite(p) else 1.0


@dataclass(frozen=True, eq=False)
class MembershipRiskResult(ResultMixin):
    """How well simple attacks tell training records (members) from unseen ones.

    Members are the training records and non-members the test records, subsampled to equal
    size so that an attack AUROC of 0.5 means no leak.

    Attributes
    ----------
    table : DataFrame
        One row per model and attack: ``model``, ``role`` ("model" or "baseline"), ``attack``,
        ``auroc``, ``auroc_ci_low``, ``auroc_ci_high``, ``p_value`` (one-sided Mann-Whitney test
        of no leak), ``q_value`` (Benjamini-Hochberg over all rows), ``fpr``, ``tpr_at_fpr``,
        ``tpr_ci_low``, ``tpr_ci_high``, ``exposed_share`` (TPR - FPR at that FPR: the share of
        training records identified beyond the false alarms, Yeom et al.'s membership advantage
        at a fixed FPR), ``exposed_ci_low``, ``exposed_ci_high``, ``exposed_n`` (that share of
        the whole training set), ``advantage`` (maximal TPR - FPR over thresholds),
        ``advantage_ci_low``, ``advantage_ci_high``, ``leak`` (q < alpha and AUROC > 0.5),
        ``n_members``, ``n_nonmembers``, ``n_train``, ``n_test``, ``n_boot``.
    model_name : str
    task : str
    attacks : tuple of str
        The attacks that were run.
    skipped : tuple of str
        Requested attacks that are undefined for the task (confidence and entropy for regression).
    fpr : float
    n_members, n_train, n_test, n_boot : int
    """

    table: pd.DataFrame
    model_name: str
    task: str
    attacks: tuple[str, ...]
    skipped: tuple[str, ...]
    fpr: float
    n_members: int
    n_train: int
    n_test: int
    n_boot: int
    random_state: Any = None
    alpha: float = ALPHA
    curves: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """The per-model, per-attack table (a copy)."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({
            "model": self.model_name, "task": self.task, "attacks": list(self.attacks),
            "skipped": list(self.skipped), "fpr": self.fpr, "n_members": self.n_members,
            "n_nonmembers": self.n_members, "n_train": self.n_train, "n_test": self.n_test,
            "n_boot": self.n_boot, "alpha": self.alpha, "ci_level": CI_LEVEL,
            "random_state": to_jsonable(self.random_state),
            "verdict": self.verdict(),
        })
        return out

    def worst(self, model: str | None = None) -> pd.Series:
        """The strongest attack (highest AUROC) on ``model`` (default: the audited model)."""
        model = self.model_name if model is None else model
        sub = self.table[self.table["model"] == model]
        if sub.empty:
            raise ValueError(f"model={model!r} is not in this result; expected one of "
                             f"{sorted(self.table['model'].unique())}.")
        return sub.loc[sub["auroc"].idxmax()]

    def _level(self, model: str) -> str:
        sub = self.table[self.table["model"] == model]
        leaking = sub[sub["leak"]]
        if leaking.empty:
            return "none"
        strong = (leaking["auroc_ci_low"] >= _STRONG_AUROC) | (
            leaking["tpr_ci_low"] >= _STRONG_TPR_RATIO * self.fpr)
        return "strong" if bool(strong.any()) else "weak"

    def verdict(self, model: str | None = None) -> str:
        """A plain-language verdict for ``model`` (default: the audited model)."""
        model = self.model_name if model is None else model
        w = self.worst(model)
        level = self._level(model)
        auc = fmt_ci(w["auroc"], w["auroc_ci_low"], w["auroc_ci_high"])
        pct = 100 * self.fpr
        tpr = (f"{100 * w['tpr_at_fpr']:.1f}% of training records "
               f"(95% CI {100 * w['tpr_ci_low']:.1f} to {100 * w['tpr_ci_high']:.1f}%) are "
               f"flagged at a {pct:g}% false-positive rate")
        if level == "none":
            return (f"No measurable membership leak from {model}: the strongest attack "
                    f"({w['attack']}) reaches AUROC {auc} on {self.n_members} members vs "
                    f"{self.n_members} non-members, and {tpr}. This rules out only these simple "
                    "attacks; stronger ones (shadow models, LiRA) can do better.")
        how = "clearly" if level == "strong" else "measurably, if weakly,"
        return (f"Sharing {model} (its weights, or even its full output scores) {how} exposes "
                f"who was in the training set: a {w['attack']}-threshold attack reaches AUROC "
                f"{auc}, and {tpr}; about {int(w['exposed_n'])} of {self.n_train} training "
                f"records are exposed beyond the false alarms. {_ACTIONS}")

    def findings(self) -> list[Finding]:
        out = []
        for model in dict.fromkeys(self.table["model"]):
            level = self._level(model)
            is_dl = model == self.model_name
            if level == "none" and not is_dl:
                continue
            severity = {"strong": "high", "weak": "medium", "none": "info"}[level]
            w = self.worst(model)
            evidence = {
                "attack": w["attack"], "auroc": w["auroc"], "auroc_ci_low": w["auroc_ci_low"],
                "auroc_ci_high": w["auroc_ci_high"], "p_value": w["p_value"],
                "q_value": w["q_value"], "fpr": self.fpr, "tpr_at_fpr": w["tpr_at_fpr"],
                "tpr_ci_low": w["tpr_ci_low"], "tpr_ci_high": w["tpr_ci_high"],
                "exposed_share": w["exposed_share"], "exposed_n": w["exposed_n"],
                "n_members": self.n_members, "n_nonmembers": self.n_members,
                "n_train": self.n_train, "n_boot": self.n_boot,
                "correction": "Benjamini-Hochberg over models x attacks",
                "verdict": self.verdict(model),
            }
            out.append(Finding("membership_risk", severity, 10, self.verdict(model),
                               subject="training set membership", model=model,
                               evidence=evidence))
        return out

    def plot(self, ax: Any = None) -> Any:
        """ROC curves of every attack on a log FPR axis (where privacy is decided), with the
        chance diagonal and the chosen FPR marked; the legend gives each AUROC with its CI."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6.0, 5.0))
        else:
            fig = ax.figure
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        styles = {"loss": "-", "confidence": "--", "entropy": ":"}
        models = list(dict.fromkeys(self.table["model"]))
        floor = 1.0 / max(self.n_members, 1)
        for _, r in self.table.iterrows():
            f, t = self.curves[(r["model"], r["attack"])]
            # the ROC is linear between vertices (randomised thresholds); sample it densely so
            # that the log axes show that line, not a chord between distant vertices
            xs = np.union1d(np.logspace(np.log10(floor / 2), 0, 200), f[f > 0])
            ys = np.interp(xs, f, t)
            c = colors[models.index(r["model"]) % len(colors)]
            ax.plot(xs, np.maximum(ys, floor / 2),
                    ls=styles.get(r["attack"], "-"), color=c, lw=1.5,
                    label=f"{r['model']} / {r['attack']}: AUROC {r['auroc']:.2f} "
                          f"[{r['auroc_ci_low']:.2f}, {r['auroc_ci_high']:.2f}]")
        grid = np.logspace(np.log10(floor / 2), 0, 50)
        ax.plot(grid, grid, color="grey", lw=1, ls="-.", label="chance")
        ax.axvline(self.fpr, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("false-positive rate (non-members flagged)")
        ax.set_ylabel("true-positive rate (members flagged)")
        ax.set_title(f"Membership inference, {self.n_members} members vs {self.n_members} "
                     "non-members", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        return fig


def _check_attacks(attacks: Any) -> tuple[str, ...]:
    if isinstance(attacks, str):
        attacks = (attacks,)
    try:
        attacks = tuple(attacks)
    except TypeError:
        raise TypeError(f"attacks={describe(attacks)} is not a sequence; expected names from "
                        f"{ATTACKS}.") from None
    if not attacks:
        raise ValueError(f"attacks={attacks!r} is empty; expected at least one of {ATTACKS}.")
    bad = [a for a in attacks if a not in ATTACKS]
    if bad:
        raise ValueError(f"attacks={list(attacks)} has {bad}, not valid; expected names from "
                         f"{ATTACKS}.")
    return tuple(dict.fromkeys(attacks))


def membership_risk(
    model: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    attacks: Sequence[str] = ("loss", "confidence"),
    random_state: Any = None,
    baselines: Any = None,
    n_boot: int = 1000,
    fpr: float = 0.01,
) -> MembershipRiskResult:
    """Membership-inference risk: can an attacker tell who was in the training set?

    Threshold attacks that need no shadow models score every record from the model's output:
    ``"loss"`` (minus the per-sample loss, Yeom et al. 2018; squared error for regression),
    ``"confidence"`` (the largest class probability) and ``"entropy"`` (minus the entropy of the
    predicted distribution). Members are the training records and non-members the test records;
    the larger set is subsampled so both have the same size, so 0.5 means no leak. For every
    model (the audited one and each baseline, side by side) and attack it reports the attack
    AUROC and the true-positive rate at the false-positive rate ``fpr``, each with a stratified
    bootstrap CI (the same replicates for every model), a one-sided Mann-Whitney p-value of no
    leak with Benjamini-Hochberg correction, and the share of training records exposed at that
    FPR (TPR - FPR).

    Parameters
    ----------
    model : torch.nn.Module, estimator, callable or ModelAdapter
    X_train, y_train : the records the model was trained on (members).
    X_test, y_test : records from the same population it never saw (non-members).
    attacks : sequence of {"loss", "confidence", "entropy"}
        Confidence and entropy are skipped for regression (recorded in ``skipped``).
    random_state : int, Generator or None
        Seeds the subsampling and the bootstrap.
    baselines : mapping of str to model, optional
        Glass-box models fitted on the same training data, attacked the same way.
    n_boot : int
        Bootstrap replicates.
    fpr : float
        The low false-positive rate at which the TPR and the exposed share are read (0.01).

    Returns
    -------
    MembershipRiskResult

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(800, 3)); y = (X[:, 0] + rng.normal(size=800) > 0).astype(int)
    >>> knn = KNeighborsClassifier(1).fit(X[:400], y[:400])
    >>> res = membership_risk(knn, X[:400], y[:400], X[400:], y[400:], attacks=["loss"],
    ...                       n_boot=200, random_state=0)
    >>> bool(res.to_frame().loc[0, "auroc_ci_low"] > 0.5)
    True
    >>> res.findings()[0].severity
    'high'
    """
    attacks = _check_attacks(attacks)
    n_boot = check_positive_int(n_boot, "n_boot")
    fpr = check_probability(fpr, "fpr")
    if fpr > 0.5:
        raise ValueError(f"fpr={fpr!r} is not valid; expected a low false-positive rate in "
                         "(0, 0.5], e.g. 0.01.")
    rng = check_random_state(random_state)
    sc = score_models(model, X_train, y_train, X_test, y_test, baselines)
    task = sc.task
    run = tuple(a for a in attacks if task != "regression" or a not in _PROBABILITY_ATTACKS)
    skipped = tuple(a for a in attacks if a not in run)
    if not run:
        raise ValueError(f"attacks={list(attacks)} are all undefined for task='regression'; "
                         "expected 'loss' (squared error).")
    n_tr, n_te = len(sc.y_train), len(sc.y_test)
    m = min(n_tr, n_te)
    if m * fpr < 1:
        warnings.warn(
            f"with {m} members and {m} non-members, fpr={fpr} is below one non-member "
            f"(1/{m}); the TPR at that FPR is read from the first ROC step and is very noisy. "
            "Use more test records or a larger fpr.", stacklevel=2)
    sub_rng = np.random.default_rng(int_seed(rng))
    idx_tr = np.sort(sub_rng.choice(n_tr, m, replace=False)) if n_tr > m else np.arange(n_tr)
    idx_te = np.sort(sub_rng.choice(n_te, m, replace=False)) if n_te > m else np.arange(n_te)
    z = np.r_[np.ones(m), np.zeros(m)]
    boot_seed = int_seed(rng)

    def _s(s: np.ndarray) -> np.ndarray:
        return s[:, : sc.n_classes] if task == "multiclass" else s

    combos = [(name, a) for name in sc.names for a in run]
    att: dict[tuple[str, str], np.ndarray] = {}
    for name, a in combos:
        s_tr = attack_scores(sc.y_train, _s(sc.train_scores[name]), task, a)
        s_te = attack_scores(sc.y_test, _s(sc.test_scores[name]), task, a)
        att[(name, a)] = np.r_[s_tr[idx_tr], s_te[idx_te]]

    orders = {c: np.argsort(-att[c], kind="mergesort") for c in combos}
    reps = {c: {"auroc": [], "tpr": [], "adv": []} for c in combos}
    chunk = max(1, min(n_boot, _CHUNK_CELLS // (2 * m)))
    for W in bootstrap_weights(2 * m, n_boot, strata=z, random_state=boot_seed,
                               chunk_size=chunk):
        W = W.astype(np.float32)  # counts: exact in float32, half the memory traffic
        for c in combos:
            auc_b, tpr_b, adv_b = _roc_stats(z, att[c], W, fpr, orders[c])
            reps[c]["auroc"].append(auc_b)
            reps[c]["tpr"].append(tpr_b)
            reps[c]["adv"].append(adv_b)

    ones = np.ones((1, 2 * m))
    rows = []
    curves = {}
    for name, a in combos:
        s = att[(name, a)]
        auc, tpr_pt, adv_pt = (float(v[0]) for v in _roc_stats(z, s, ones, fpr,
                                                                 orders[(name, a)]))
        auc_b = np.concatenate(reps[(name, a)]["auroc"])
        tpr_b = np.concatenate(reps[(name, a)]["tpr"])
        adv_b = np.concatenate(reps[(name, a)]["adv"])
        exp_b = tpr_b - fpr
        exposed = tpr_pt - fpr
        curves[(name, a)] = roc_curve_points(z, s)
        rows.append({
            "model": name, "role": "model" if name == sc.names[0] else "baseline",
            "attack": a, "auroc": auc,
            **dict(zip(("auroc_ci_low", "auroc_ci_high"), percentile_ci(auc_b))),
            "p_value": _mann_whitney_p(s[:m], s[m:]), "fpr": fpr, "tpr_at_fpr": tpr_pt,
            **dict(zip(("tpr_ci_low", "tpr_ci_high"), percentile_ci(tpr_b))),
            "exposed_share": exposed,
            **dict(zip(("exposed_ci_low", "exposed_ci_high"), percentile_ci(exp_b))),
            "exposed_n": int(round(max(exposed, 0.0) * n_tr)),
            "advantage": adv_pt,
            **dict(zip(("advantage_ci_low", "advantage_ci_high"), percentile_ci(adv_b))),
            "n_members": m, "n_nonmembers": m, "n_train": n_tr, "n_test": n_te,
            "n_boot": n_boot,
        })
    table = pd.DataFrame(rows)
    table.insert(table.columns.get_loc("p_value") + 1, "q_value",
                 bh_adjust(table["p_value"].to_numpy()))
    table.insert(table.columns.get_loc("advantage_ci_high") + 1, "leak",
                 (table["q_value"] < ALPHA) & (table["auroc"] > 0.5))
    return MembershipRiskResult(
        table=table, model_name=sc.names[0], task=task, attacks=run, skipped=skipped, fpr=fpr,
        n_members=m, n_train=n_tr, n_test=n_te, n_boot=n_boot,
        random_state=random_state if isinstance(random_state, (int, np.integer)) else None,
        curves=curves,
    )
