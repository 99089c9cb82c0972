"""Membership-inference risk (Tip 10): threshold attacks that need no shadow models."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, Verdict, internal
from .._utils import check_random_state, int_seed, progress, thread_map
from ..data._validation import check_positive_int, check_probability
from ..stats import DEFAULT_CI, DEFAULT_FDR, bh_adjust, bootstrap_weights, percentile_ci
from ._attacks import (
    ATTACKS,
    PROBABILITY_ATTACKS,
    attack_scores,
    check_attacks,
    mann_whitney_p,
    roc_curve_points,
    roc_stats,
)
from ._common import Scored, fmt_ci, score_models, seed_param

__all__ = ["ATTACKS", "MembershipRiskResult", "attack_scores", "membership_risk"]

_CHUNK_CELLS = 1_000_000
#: an attack AUROC at or above this, or a TPR at the low FPR at least this many times the FPR,
#: counts as a strong leak (with significance).
_STRONG_AUROC = 0.6
_STRONG_TPR_RATIO = 5.0
#: severity of the finding (and level of the verdict) per leak level.
_SEVERITY = {"strong": "high", "weak": "medium", "faint": "low", "none": "info"}

_ACTIONS = (
    "Do not publish the weights as they are. Retrain with differential privacy (e.g. DP-SGD) "
    "if they must be shared, or share only predictions (hard labels rather than probabilities) "
    "through an access-controlled service; regularisation and early stopping reduce "
    "memorisation but give no guarantee."
)


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
    random_state : int or None
    alpha : float
        The false discovery rate of ``leak`` (``fdr``).
    params : dict
        ``attacks``, ``fpr``, ``n_boot``, ``fdr``, ``ci``, ``random_state``, and which scores
        were given precomputed (``precomputed``).
    curves : dict
        ``(model, attack) -> (fpr, tpr)`` ROC vertices for :meth:`plot` (left out of
        :meth:`to_dict`).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    >>> knn = KNeighborsClassifier(1).fit(X[:100], y[:100])       # memorises its training set
    >>> res = membership_risk(knn, X[:100], y[:100], X[100:], y[100:], attacks=["loss"],
    ...                       n_boot=50, random_state=0, verbose=False)
    >>> res.attacks, res.skipped, res.n_members, res.table.shape
    (('loss',), (), 100, (1, 25))
    >>> bool(res.table.loc[0, "leak"]), res.verdict().level
    (True, 'high')
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
    alpha: float = DEFAULT_FDR
    params: dict[str, Any] = field(default_factory=dict)
    curves: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = internal(
        default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The per-model, per-attack table (a copy)."""
        return self.table.copy()

    def _extra_dict(self) -> dict[str, Any]:
        return {"model": self.model_name, "n_nonmembers": self.n_members,
                "ci_level": self.params.get("ci", DEFAULT_CI), "verdict": self.verdict()}

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
        if bool(strong.any()):
            return "strong"
        w = self.worst(model)
        # a leak in AUROC that singles out nobody at the low FPR: real, but minor
        faint = not (w["exposed_ci_low"] > 0) or int(round(w["exposed_n"])) < 1
        return "faint" if faint else "weak"

    def _sentence(self, model: str, level: str) -> str:
        w = self.worst(model)
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
        if level == "faint":
            exp = fmt_ci(100 * w["exposed_share"], 100 * w["exposed_ci_low"],
                         100 * w["exposed_ci_high"], 2)
            return (f"A weak membership signal in {model}: a {w['attack']}-threshold attack "
                    f"reaches AUROC {auc} on {self.n_members} members vs {self.n_members} "
                    f"non-members, but at a {pct:g}% false-positive rate it flags no more "
                    f"training records than chance ({tpr}; exposed share {exp} percentage "
                    "points). No record is singled out by these simple attacks; stronger "
                    "attacks may do better, so keep the weights access-controlled if the data "
                    "are sensitive.")
        how = "clearly" if level == "strong" else "measurably, if weakly,"
        return (f"Sharing {model} (its weights, or even its full output scores) {how} exposes "
                f"who was in the training set: a {w['attack']}-threshold attack reaches AUROC "
                f"{auc}, and {tpr}; about {int(w['exposed_n'])} of {self.n_train} training "
                f"records are exposed beyond the false alarms. {_ACTIONS}")

    def verdict(self, model: str | None = None) -> Verdict:
        """The plain-language verdict for ``model`` (default: the audited model).

        ``level`` is the severity of its ``membership_risk`` finding (``"high"`` for a strong
        leak, ``"medium"`` for a weak one, ``"info"`` for none), ``text`` one paragraph, and
        ``counts`` the number of attacks run and of those that leak.
        """
        model = self.model_name if model is None else model
        level = self._level(model)
        sub = self.table[self.table["model"] == model]
        return Verdict(_SEVERITY[level], self._sentence(model, level),
                       {"attacks": len(sub), "leaking": int(sub["leak"].sum())})

    def findings(self) -> list[Finding]:
        out = []
        for model in dict.fromkeys(self.table["model"]):
            level = self._level(model)
            is_dl = model == self.model_name
            if level == "none" and not is_dl:
                continue
            w = self.worst(model)
            text = self._sentence(model, level)
            evidence = {
                "attack": w["attack"], "auroc": w["auroc"], "auroc_ci_low": w["auroc_ci_low"],
                "auroc_ci_high": w["auroc_ci_high"], "p_value": w["p_value"],
                "q_value": w["q_value"], "fpr": self.fpr, "tpr_at_fpr": w["tpr_at_fpr"],
                "tpr_ci_low": w["tpr_ci_low"], "tpr_ci_high": w["tpr_ci_high"],
                "exposed_share": w["exposed_share"], "exposed_n": w["exposed_n"],
                "n_members": self.n_members, "n_nonmembers": self.n_members,
                "n_train": self.n_train, "n_boot": self.n_boot,
                "correction": "Benjamini-Hochberg over models x attacks",
                "verdict": text,
            }
            out.append(Finding("membership_risk", _SEVERITY[level], 10, text,
                               subject="training set membership", model=model,
                               evidence=evidence, domain="overall"))
        return out

    def plot(self, ax: Any = None) -> Any:
        """ROC curves of every attack on a log FPR axis (where privacy is decided), with the
        chance diagonal and the chosen FPR marked; the legend gives each AUROC with its CI."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6.0, 5.0), layout="constrained")
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
        return fig


def membership_risk(
    model: Any,
    X_train: Any,
    y_train: Any = None,
    X_test: Any = None,
    y_test: Any = None,
    *,
    attacks: Sequence[str] = ("loss", "confidence"),
    random_state: Any = None,
    baselines: Any = None,
    n_boot: int = 1000,
    fpr: float = 0.01,
    fdr: float = DEFAULT_FDR,
    scores: Any = None,
    train_scores: Any = None,
    baseline_scores: Mapping[str, Any] | None = None,
    baseline_train_scores: Mapping[str, Any] | None = None,
    model_name: str | None = None,
    verbose: bool = True,
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
        May be ``None`` when ``scores`` and ``train_scores`` are given.
    X_train, y_train : the records the model was trained on (members).
        ``X_train`` may be an :class:`~confoundry.AuditData` carrying ``y_train`` (then
        ``None``); it is used as it is.
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
    fdr : float
        False discovery rate of ``leak`` (Benjamini-Hochberg over models x attacks).
    scores, train_scores : array-like, optional
        The audited model's precomputed test and training scores (the ``predict_scores``
        convention); not recomputed.
    baseline_scores, baseline_train_scores : mapping of str to array-like, optional
        Precomputed test / training scores of the baselines, by name; a baseline whose scores
        are missing here is scored.
    model_name : str, optional
        Display name of the audited model (default: its adapter's name).
    verbose : bool
        Show a progress bar over the bootstrap.

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
    ...                       n_boot=200, random_state=0, verbose=False)
    >>> bool(res.to_frame().loc[0, "auroc_ci_low"] > 0.5)
    True
    >>> res.findings()[0].severity, res.verdict().level
    ('high', 'high')
    """
    attacks = check_attacks(attacks)
    n_boot = check_positive_int(n_boot, "n_boot")
    fpr = check_probability(fpr, "fpr")
    if fpr > 0.5:
        raise ValueError(f"fpr={fpr!r} is not valid; expected a low false-positive rate in "
                         "(0, 0.5], e.g. 0.01.")
    fdr = check_probability(fdr, "fdr")
    rng = check_random_state(random_state)
    sc = score_models(model, X_train, y_train, X_test, y_test, baselines, scores=scores,
                      train_scores=train_scores, baseline_scores=baseline_scores,
                      baseline_train_scores=baseline_train_scores, model_name=model_name)
    task = sc.task
    run = tuple(a for a in attacks if task != "regression" or a not in PROBABILITY_ATTACKS)
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
    att = _attack_members(sc, run, m, np.random.default_rng(int_seed(rng)))
    boot_seed = int_seed(rng)
    reps = _bootstrap(att, m, fpr, n_boot, boot_seed, verbose)
    table, curves = _table(sc, att, reps, m, fpr, n_boot, fdr)
    params = {"attacks": list(run), "fpr": fpr, "n_boot": n_boot, "fdr": fdr, "ci": DEFAULT_CI,
              "random_state": seed_param(random_state),
              "precomputed": {"scores": scores is not None,
                              "train_scores": train_scores is not None,
                              "baseline_scores": sorted(baseline_scores or ()),
                              "baseline_train_scores": sorted(baseline_train_scores or ())}}
    return MembershipRiskResult(
        table=table, model_name=sc.names[0], task=task, attacks=run, skipped=skipped, fpr=fpr,
        n_members=m, n_train=n_tr, n_test=n_te, n_boot=n_boot,
        random_state=random_state if isinstance(random_state, (int, np.integer)) else None,
        alpha=fdr, params=params, curves=curves,
    )


def _attack_members(sc: Scored, run: tuple[str, ...], m: int,
                    sub_rng: np.random.Generator) -> dict[tuple[str, str], np.ndarray]:
    """Attack scores of ``m`` members then ``m`` non-members, per (model, attack)."""
    n_tr, n_te = len(sc.y_train), len(sc.y_test)
    idx_tr = np.sort(sub_rng.choice(n_tr, m, replace=False)) if n_tr > m else np.arange(n_tr)
    idx_te = np.sort(sub_rng.choice(n_te, m, replace=False)) if n_te > m else np.arange(n_te)

    def _s(s: np.ndarray) -> np.ndarray:
        return s[:, : sc.n_classes] if sc.task == "multiclass" else s

    att: dict[tuple[str, str], np.ndarray] = {}
    for name in sc.names:
        for a in run:
            s_tr = attack_scores(sc.y_train, _s(sc.train_scores[name]), sc.task, a)
            s_te = attack_scores(sc.y_test, _s(sc.test_scores[name]), sc.task, a)
            att[(name, a)] = np.r_[s_tr[idx_tr], s_te[idx_te]]
    return att


def _bootstrap(att: dict[tuple[str, str], np.ndarray], m: int, fpr: float, n_boot: int,
               seed: int, verbose: bool) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Bootstrap replicates (stratified by membership, shared by every model and attack) of
    the attack AUROC, the TPR at ``fpr`` and the advantage."""
    z = np.r_[np.ones(m), np.zeros(m)]
    orders = {c: np.argsort(-v, kind="mergesort") for c, v in att.items()}
    reps: dict[tuple[str, str], dict[str, list]] = {
        c: {"auroc": [], "tpr": [], "adv": []} for c in att}
    chunk = max(1, min(n_boot, _CHUNK_CELLS // (2 * m)))
    bar = progress(total=-(-n_boot // chunk), desc="membership risk", verbose=verbose)
    try:
        for W in bootstrap_weights(2 * m, n_boot, strata=z, random_state=seed,
                                   chunk_size=chunk):
            W = W.astype(np.float32)  # counts: exact in float32, half the memory traffic
            out = thread_map(lambda c, W=W: roc_stats(z, att[c], W, fpr, orders[c]), list(att))
            for c, (auc_b, tpr_b, adv_b) in zip(att, out):
                reps[c]["auroc"].append(auc_b)
                reps[c]["tpr"].append(tpr_b)
                reps[c]["adv"].append(adv_b)
            bar.update(1)
    finally:
        bar.close()
    return {c: {k: np.concatenate(v) for k, v in r.items()} for c, r in reps.items()}


def _table(sc: Scored, att: dict[tuple[str, str], np.ndarray], reps: dict, m: int, fpr: float,
           n_boot: int, fdr: float) -> tuple[pd.DataFrame, dict]:
    z = np.r_[np.ones(m), np.zeros(m)]
    n_tr, n_te = len(sc.y_train), len(sc.y_test)
    ones = np.ones((1, 2 * m))
    rows = []
    curves = {}
    for (name, a), s in att.items():
        auc, tpr_pt, adv_pt = (float(v[0]) for v in roc_stats(z, s, ones, fpr))
        r = reps[(name, a)]
        exposed = tpr_pt - fpr
        curves[(name, a)] = roc_curve_points(z, s)
        rows.append({
            "model": name, "role": "model" if name == sc.names[0] else "baseline",
            "attack": a, "auroc": auc,
            **dict(zip(("auroc_ci_low", "auroc_ci_high"), percentile_ci(r["auroc"]))),
            "p_value": mann_whitney_p(s[:m], s[m:]), "fpr": fpr, "tpr_at_fpr": tpr_pt,
            **dict(zip(("tpr_ci_low", "tpr_ci_high"), percentile_ci(r["tpr"]))),
            "exposed_share": exposed,
            **dict(zip(("exposed_ci_low", "exposed_ci_high"), percentile_ci(r["tpr"] - fpr))),
            "exposed_n": int(round(max(exposed, 0.0) * n_tr)),
            "advantage": adv_pt,
            **dict(zip(("advantage_ci_low", "advantage_ci_high"), percentile_ci(r["adv"]))),
            "n_members": m, "n_nonmembers": m, "n_train": n_tr, "n_test": n_te,
            "n_boot": n_boot,
        })
    table = pd.DataFrame(rows)
    table.insert(table.columns.get_loc("p_value") + 1, "q_value",
                 bh_adjust(table["p_value"].to_numpy()))
    table.insert(table.columns.get_loc("advantage_ci_high") + 1, "leak",
                 (table["q_value"] < fdr) & (table["auroc"] > 0.5))
    return table, curves
