"""``sanity_check``: model-parameter randomisation test (Adebayo et al., 2018), read against
what the input alone makes unrelated models agree on.

Why a reference, and why this one. Integrated gradients is ``(x - baseline)`` times an average
gradient (input x gradient, DeepLift and ablation behave alike), so the ``(x - baseline)``
factor makes the |attributions| of *any* two models correlate: on small tabular MLPs the
Spearman similarity between a trained model and its fully randomised copy reaches 0.5 and
more, and the fixed threshold of 0.5 fired on well-trained models (7 of 48 runs on MLPs with a
planted effect; the reference criteria below pass all 48). Two fully randomised copies measure
that input-only agreement directly, for any method (a custom callable, images) and with no
baseline to know; the similarity to ``|x - baseline|`` needs the method's baseline and has no
known level for a healthy explainer (about 0.6 for random MLPs, not 1), so it is not used.

The difference ``model_specificity`` = (randomised vs randomised) - (model vs randomised) is
*not* used as "pass only when clearly above 0": its value for a healthy explainer is about 0
whenever the trained model is, to the explainer, just another model (measured over 16 random
copies on 16 trained MLPs with a planted effect: +0.01 to +0.21), and it is exactly 0 for an
explainer that ignores the model too, so it cannot tell the two apart. What tells them apart is
the *level* of the reference: an explainer that ignores the model gives unrelated models the
same attributions (similarity 1); integrated gradients, DeepLift, input x gradient and
feature ablation give them 0.2 to 0.5, saliency about 0. Hence two reference criteria, both
required: the randomised copies disagree (upper CI below ``1 - margin``), and the model's
attributions are not clearly closer to the copies' than the copies' are to each other (upper
CI of ``model_specificity`` not below ``-margin``).

The bootstrap behind the reference is crossed (samples and copies): the three copies' similarity
to the model has a spread of 0.07 to 0.17 between random draws, larger than the sampling error
over 200 rows, and an interval over samples alone would be far too narrow.

One module (past 450 lines): the result's criteria, its finding and plot read the reference
table that the randomisation below builds; split, each half would only make sense with the other.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from .._explanation import AttributionResult
from .._result import Finding, ResultMixin
from .._utils import check_random_state, int_seed, progress, torch_seed
from ..data import ensure_data
from ..data._validation import check_positive_int, check_probability, describe
from ..models import as_model
from ..stats import DEFAULT_CI, bootstrap_weights, percentile_ci
from ._common import adapter_for, rowwise_corr, seed_record, weighted_rank
from ._engines import attribute

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

#: the reference criteria's margin: randomised copies must agree below ``1 - margin``, and the
#: model's attributions may resemble theirs at most ``margin`` more than they resemble each other.
REFERENCE_MARGIN = 0.05
#: fully randomised copies behind the reference: the cascade's last step and two more.
N_RANDOM_COPIES = 3
#: the fewest samples a ``high`` finding may rest on.
MIN_N_HIGH = 20

_QUANTITIES = ("model_vs_randomised", "randomised_vs_randomised", "model_specificity")


@dataclass(frozen=True, eq=False)
class SanityResult(ResultMixin):
    """Similarity of attributions before and after randomising the model's layers, with the
    similarity that the input alone explains as reference.

    Build it with :func:`sanity_check`.

    Attributes
    ----------
    table : DataFrame
        One row per cascade step (``step`` 0 is the first randomised layer, counted from the
        output): ``layer``, ``spearman`` (mean over samples of the Spearman correlation between
        original and randomised attributions), ``spearman_abs`` (the same on |values|),
        ``ci_low``, ``ci_high`` (bootstrap CI of ``spearman_abs``), ``global_rank_correlation``
        (Spearman of the global importance), ``n``, ``n_boot``.
    method : str
        The attribution method that was checked.
    model_name : str
    threshold : float
        Absolute criterion: the check passes when the upper CI of ``spearman_abs`` after the
        last step is below it (the attributions changed once every layer was randomised).
    ci : float
        Coverage of the bootstrap intervals.
    params : dict
        ``method``, ``threshold``, ``n_boot``, ``ci``, ``random_state`` and the ``attribute``
        keywords.
    reference : DataFrame or None
        The reference, one row per ``quantity``: ``model_vs_randomised`` (per sample, the
        Spearman of |attributions| of the model and of a fully randomised copy, averaged over
        the three copies), ``randomised_vs_randomised`` (the same between two copies, averaged
        over the three pairs: what the input alone makes unrelated models agree on) and
        ``model_specificity`` (the second minus the first: positive when the model's
        attributions differ from a randomised copy's more than two copies differ). Columns
        ``estimate`` (mean over samples and copies), ``ci_low``, ``ci_high`` (crossed bootstrap:
        the sample weights of ``table`` and a resampling of the copies), ``n``, ``n_boot``,
        ``n_copies``. None for a result built without it (then only ``threshold`` counts).
    margin : float
        :data:`REFERENCE_MARGIN`, see :attr:`passed`.

    Examples
    --------
    >>> import torch
    >>> from confoundry import as_model
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    >>> res = sanity_check(as_model(net, output="logits"), torch.randn(40, 5), n_boot=50,
    ...                    random_state=0, verbose=False)
    >>> res.method, res.table["layer"].tolist(), res.table.shape
    ('integrated_gradients', ['2', '0'], (2, 9))
    >>> res.reference["quantity"].tolist()
    ['model_vs_randomised', 'randomised_vs_randomised', 'model_specificity']
    >>> res.passed == (res.findings() == [])
    True
    """

    table: pd.DataFrame
    method: str
    model_name: str
    threshold: float
    ci: float
    params: Mapping[str, Any] = field(default_factory=dict)
    reference: pd.DataFrame | None = None
    margin: float = REFERENCE_MARGIN

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def _ref(self, quantity: str) -> pd.Series:
        assert self.reference is not None
        return self.reference.set_index("quantity").loc[quantity]

    def _checks(self) -> dict[str, bool]:
        """Each criterion, True where it is met: ``absolute`` (upper CI of ``spearman_abs``
        after the last step below ``threshold``), ``explainer`` (upper CI of
        ``randomised_vs_randomised`` below ``1 - margin``: unrelated models get different
        attributions) and ``model`` (the upper CI of ``model_specificity`` is not below
        ``-margin``: the model's attributions are not clearly closer to those of randomised
        copies than the copies' are to each other)."""
        out = {"absolute": bool(self.table.iloc[-1]["ci_high"] < self.threshold)}
        if self.reference is not None:
            out["explainer"] = bool(
                self._ref("randomised_vs_randomised")["ci_high"] < 1 - self.margin)
            out["model"] = not bool(self._ref("model_specificity")["ci_high"] < -self.margin)
        return out

    @property
    def passed(self) -> bool:
        """True when the attributions depend on the model: the fully randomised model's
        attributions no longer resemble the originals (upper CI of ``spearman_abs`` at the last
        step below ``threshold``), or, against the reference, randomised copies get clearly
        different attributions from each other (upper CI of ``randomised_vs_randomised`` below
        ``1 - margin``) and the model's attributions are not clearly closer to theirs than they
        are to each other (upper CI of ``model_specificity`` not below ``-margin``)."""
        c = self._checks()
        return c["absolute"] or (c.get("explainer", False) and c.get("model", False))

    def findings(self) -> list[Finding]:
        if self.passed:
            return []
        last = self.table.iloc[-1]
        n = int(last["n"])
        evidence: dict[str, Any] = {
            "spearman_abs": float(last["spearman_abs"]), "ci_low": float(last["ci_low"]),
            "ci_high": float(last["ci_high"]), "threshold": self.threshold, "n": n,
            "n_boot": int(last["n_boot"])}

        def num(est: float, lo: float, hi: float, signed: bool = False) -> str:
            f = "+.2f" if signed else ".2f"
            return f"{est:{f}} ({self.ci:.0%} CI {lo:{f}} to {hi:{f}})"

        absolute = (f"after every layer is randomised the similarity to the original "
                    f"attributions is {num(last['spearman_abs'], last['ci_low'], last['ci_high'])}"
                    f", not below {self.threshold:.2f}")
        if self.reference is None:
            return [Finding(
                "sanity_check_failed", "medium", 9,
                f"{self.method} attributions of {self.model_name} barely change when the model "
                f"is randomised: {absolute}; n = {n} samples (no reference was measured).",
                subject=self.method, model=self.model_name, evidence=evidence)]
        mod, ref, spec = (self._ref(q) for q in _QUANTITIES)
        for key, row in zip(("model_vs_randomised", "reference", "specificity"),
                            (mod, ref, spec), strict=True):
            evidence.update({key: float(row["estimate"]), f"{key}_ci_low": float(row["ci_low"]),
                             f"{key}_ci_high": float(row["ci_high"])})
        checks = self._checks()
        evidence.update({"margin": self.margin, "n_copies": int(ref["n_copies"]),
                         "failed": [k for k in ("explainer", "model") if not checks[k]]})
        measured = (f"fully randomised copies of {self.model_name} get attributions that agree with "
                    f"each other at Spearman {num(ref['estimate'], ref['ci_low'], ref['ci_high'])}"
                    f" and with the model's at "
                    f"{num(mod['estimate'], mod['ci_low'], mod['ci_high'])}, a difference of "
                    f"{num(spec['estimate'], spec['ci_low'], spec['ci_high'], True)}; {absolute}; "
                    f"n = {n} samples, {int(ref['n_copies'])} randomised copies")
        if not checks["explainer"]:
            clear = bool(ref["ci_low"] >= 1 - self.margin) and n >= MIN_N_HIGH
            title = (f"{self.method} gives {'the same' if clear else 'nearly the same'} "
                     f"attributions to unrelated models: {measured}. "
                     + ("On these samples the attributions do not depend on the model's parameters."
                        if clear else "The check cannot rule out that they ignore the model."))
        else:
            clear = False
            title = (f"{self.method} attributions of {self.model_name} resemble those of its "
                     f"randomised copies more than the copies resemble each other (by more "
                     f"than {self.margin:.2f}): {measured}. Their pattern is mostly what the input "
                     f"gives every model (as for a model that weighs every feature about "
                     f"equally), so this check cannot show that they explain the model.")
        return [Finding("sanity_check_failed", "high" if clear else "medium", 9, title,
                        subject=self.method, model=self.model_name, evidence=evidence)]

    def plot(self, ax: Any = None) -> Any:
        """Similarity to the original attributions as layers are randomised (cascade), with the
        similarity between two randomised copies (the reference) as a band."""
        import matplotlib.pyplot as plt

        t = self.table
        if ax is None:
            _, ax = plt.subplots(figsize=(max(4.5, 0.6 * len(t) + 2.5) + 2.5, 3.5),
                                 layout="constrained")
        x = np.arange(len(t))
        ax.plot(x, t["spearman_abs"], "o-", color="#4C72B0", label="Spearman |attribution|")
        ax.fill_between(x, t["ci_low"], t["ci_high"], color="#4C72B0", alpha=0.2)
        ax.plot(x, t["spearman"], "s--", color="#DD8452", label="Spearman (signed)")
        ax.axhline(self.threshold, color="#C44E52", lw=0.8, ls=":", label="threshold")
        if self.reference is not None:
            mod, ref = self._ref("model_vs_randomised"), self._ref("randomised_vs_randomised")
            ax.axhspan(ref["ci_low"], ref["ci_high"], color="0.5", alpha=0.25, lw=0)
            ax.axhline(ref["estimate"], color="0.35", lw=1, ls="--",
                       label="two randomised copies (reference, CI band)")
            ax.axhline(ref["estimate"] + self.margin, color="0.35", lw=0.8, ls=":",
                       label=f"reference + margin ({self.margin:g})")
            xm = len(t) - 1 + 0.25
            ax.errorbar([xm], [mod["estimate"]], yerr=[[mod["estimate"] - mod["ci_low"]],
                                                        [mod["ci_high"] - mod["estimate"]]],
                        fmt="D", color="#55A868", capsize=3,
                        label=f"model vs {int(mod['n_copies'])} randomised copies")
        ax.set_xticks(x, t["layer"], rotation=45, ha="right")
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("similarity to original")
        ax.set_xlabel("layers randomised (cumulative, from the output)")
        ax.set_title(f"sanity check: {self.method}")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return ax.figure


def _layers(module: Any) -> list[tuple[str, Any]]:
    return [(name or type(m).__name__, m) for name, m in module.named_modules()
            if len(list(m.children())) == 0 and any(True for _ in m.parameters(recurse=False))]


def _randomise(layer: Any) -> None:
    if hasattr(layer, "reset_parameters"):
        layer.reset_parameters()
        return
    with torch.no_grad():
        for p in layer.parameters(recurse=False):
            p.normal_(0.0, float(p.detach().std()) if p.numel() > 1 else 1.0)


def _abs_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample Spearman correlation of |a| and |b| (0 where a row is constant)."""
    return np.nan_to_num(rowwise_corr(weighted_rank(np.abs(a)), weighted_rank(np.abs(b))),
                         nan=0.0)


def _reference(original: np.ndarray, copies: list[np.ndarray], W: np.ndarray, ci: float,
               rng: np.random.Generator) -> pd.DataFrame:
    """The reference table of :class:`SanityResult` from the attributions of the model and of
    its fully randomised copies. The bootstrap is crossed: each replicate reweights the samples
    (a row of ``W``, shape ``(n_boot, n)``) and resamples the copies, so the CI includes the
    luck of the random draws."""
    k, n = len(copies), original.shape[0]
    mod = np.vstack([_abs_similarity(original, c) for c in copies])            # (k, n)
    pairs = list(combinations(range(k), 2))
    ref = np.vstack([_abs_similarity(copies[i], copies[j]) for i, j in pairs])  # (pairs, n)
    est_mod, est_ref = float(mod.mean()), float(ref.mean())
    counts = rng.multinomial(k, np.full(k, 1.0 / k), size=W.shape[0]).astype(np.float64)
    pair_w = np.column_stack([counts[:, i] * counts[:, j] for i, j in pairs])
    rep_mod = (counts * (W @ mod.T / n)).sum(axis=1) / k
    with np.errstate(invalid="ignore", divide="ignore"):  # one distinct copy: no pair, NaN
        rep_ref = (pair_w * (W @ ref.T / n)).sum(axis=1) / pair_w.sum(axis=1)
    reps = np.column_stack([rep_mod, rep_ref, rep_ref - rep_mod])
    lo, hi = percentile_ci(reps, ci, axis=0)
    return pd.DataFrame({"quantity": list(_QUANTITIES),
                         "estimate": [est_mod, est_ref, est_ref - est_mod],
                         "ci_low": lo, "ci_high": hi, "n": n, "n_boot": W.shape[0],
                         "n_copies": k})


def sanity_check(
    model: Any,
    X: Any,
    *,
    method: str | Callable[[Any, Any], Any] = "integrated_gradients",
    threshold: float = 0.5,
    n_boot: int = 200,
    ci: float = DEFAULT_CI,
    random_state: Any = None,
    verbose: bool = True,
    **attribute_kwargs: Any,
) -> SanityResult:
    """Model-parameter randomisation test: do the attributions depend on what the model learned?

    A *copy* of the torch model is randomised layer by layer, from the output towards the
    input (cascading: earlier randomisations are kept); after each step the attributions are
    recomputed and compared with the originals by the Spearman correlation of each sample's
    |attributions| (and signed attributions), averaged over samples, with a bootstrap CI
    (``table``).

    A high similarity alone is no proof that the explanation ignores the model: integrated
    gradients is ``(x - baseline)`` times an average gradient, and that factor makes the
    attributions of *any* two models correlate. So two more fully randomised copies are
    explained (seeds drawn from ``random_state``); with the cascade's last step they are three
    unrelated random models, and their agreement (``randomised_vs_randomised``) is what the
    input alone explains. The model's agreement with them is ``model_vs_randomised``; the
    difference is ``model_specificity`` (``reference``).

    The check **passes** when either

    * the upper CI of ``spearman_abs`` after the last step is below ``threshold`` (the
      absolute criterion of Adebayo et al.), or
    * the randomised copies get clearly different attributions (upper CI of
      ``randomised_vs_randomised`` below ``1 - margin``: the explainer responds to the model)
      **and** the model's attributions are not clearly closer to the copies' than the copies'
      are to each other (upper CI of ``model_specificity`` not below ``-margin``), with
      ``margin`` = :data:`REFERENCE_MARGIN` (0.05).

    Otherwise it gives a ``sanity_check_failed`` finding: ``high`` when the copies' agreement
    is at least ``1 - margin`` over its whole CI and n >= 20 (the explainer gives unrelated
    models the same attributions), ``medium`` otherwise (nearly the same; or the model's
    attributions carry more of the input than of the model, as for a model that weighs every
    feature about equally, whose attributions no randomisation test can tell from ones that
    ignore the model). Why the criterion is not "``model_specificity`` clearly above 0" is in
    the module's docstring: that difference is about 0 both for a healthy explainer on an
    ordinary model and for an explainer that ignores the model. The reference's CI is a
    crossed bootstrap over samples and copies (with three copies, a coarse one); it costs two
    extra attribution passes.

    Parameters
    ----------
    model : torch.nn.Module or ModelAdapter of one
        The user's model is not modified (its parameters, training flags and
        ``requires_grad`` are left as they were; the copies are deep copies).
    X : DataFrame, ndarray, tensor or AuditData
        A modest sample (a few hundred rows is plenty).
    method : str or callable
        A method of :func:`attribute`, or a function ``(model, X) -> AttributionResult or array``
        (e.g. to test a custom explainer).
    threshold : float
        Similarity above which attributions are considered unchanged (absolute criterion).
    n_boot, ci : bootstrap replicates and confidence level.
    random_state : None, int or Generator
        The same int gives the same tables.
    verbose : bool
        Show a progress bar over the randomised layers and copies.
    **attribute_kwargs
        Passed to :func:`attribute` (e.g. ``n_steps``, ``baseline``).

    Returns
    -------
    SanityResult

    Examples
    --------
    >>> import numpy as np, torch
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    >>> from confoundry import as_model
    >>> model = as_model(net, output="logits")
    >>> X = torch.randn(40, 5)
    >>> res = sanity_check(model, X, n_boot=50, random_state=0, verbose=False)
    >>> list(res.to_frame()["layer"])
    ['2', '0']

    An explainer that ignores the model (here: the gradient replaced by 1) gives unrelated
    random models the same attributions, so the reference is 1 and the check fails:

    >>> def input_only(model, X):
    ...     return np.asarray(X) * 1.0
    >>> bad = sanity_check(model, X, method=input_only, n_boot=50, random_state=0,
    ...                    verbose=False)
    >>> bad.passed, [f.severity for f in bad.findings()]
    (False, ['high'])
    >>> ref = bad.reference.set_index("quantity")["estimate"]
    >>> float(ref["randomised_vs_randomised"]), float(ref["model_specificity"])
    (1.0, 0.0)
    """
    data = ensure_data(X)
    adapter = adapter_for(model)
    if not adapter.is_torch:
        raise TypeError(f"sanity_check re-initialises layer weights, so it needs a torch.nn.Module;"
                        f" the model is a {adapter.kind} model ({type(adapter.model).__name__}).")
    threshold = float(threshold)
    if not -1 <= threshold <= 1:
        raise ValueError(f"threshold={threshold!r} is not valid; expected a number in [-1, 1].")
    n_boot = check_positive_int(n_boot, "n_boot")
    ci = check_probability(ci, "ci")
    rng = check_random_state(random_state)
    seed = int_seed(rng)
    attribute_kwargs.setdefault("random_state", seed)
    if isinstance(method, str):
        label = method

        def explain(m: Any) -> np.ndarray:
            return attribute(m, data, method=method, verbose=False, **attribute_kwargs).values
    elif callable(method):
        label = getattr(method, "__name__", "custom")

        def explain(m: Any) -> np.ndarray:
            out = method(m, data.X)
            return (out.values if isinstance(out, AttributionResult)
                    else np.asarray(out, np.float64))
    else:
        raise TypeError(f"method={describe(method)} is not valid; expected a method name or a "
                        "callable (model, X) -> attributions.")

    def wrap(module: Any) -> Any:
        return as_model(module, preprocess=adapter.preprocess, output=adapter.output,
                        batch_size=adapter.batch_size, task=adapter.task, name=adapter.name)

    def explain_random(module: Any) -> np.ndarray:
        with warnings.catch_warnings():  # completeness of a random net is not the question
            warnings.simplefilter("ignore", RuntimeWarning)
            return explain(wrap(module)).reshape(data.n_samples, -1)

    original = explain(wrap(adapter.module)).reshape(data.n_samples, -1)
    clone = copy.deepcopy(adapter.module)
    layers = _layers(clone)[::-1]
    if not layers:
        raise ValueError("the model has no layers with parameters to randomise.")
    rows = []
    r_abs_orig = weighted_rank(np.abs(original))
    r_orig = weighted_rank(original)
    W_all = np.vstack(list(bootstrap_weights(data.n_samples, n_boot, random_state=rng)))
    copy_seeds = [int_seed(rng) for _ in range(N_RANDOM_COPIES - 1)]
    bar = progress(total=len(layers) + len(copy_seeds), desc="sanity check", verbose=verbose)
    with torch_seed(seed):
        for name, layer in layers:
            _randomise(layer)
            new = explain_random(clone)
            s_abs = rowwise_corr(r_abs_orig, weighted_rank(np.abs(new)))
            s = rowwise_corr(r_orig, weighted_rank(new))
            s_abs_f = np.nan_to_num(s_abs, nan=0.0)
            reps = W_all @ s_abs_f / data.n_samples
            lo, hi = percentile_ci(reps, ci)
            g = rowwise_corr(weighted_rank(np.abs(original).mean(axis=0))[None],
                             weighted_rank(np.abs(new).mean(axis=0))[None])[0]
            rows.append({"step": len(rows), "layer": name, "spearman": float(np.nanmean(s)),
                         "spearman_abs": float(s_abs_f.mean()), "ci_low": float(lo),
                         "ci_high": float(hi), "global_rank_correlation": float(g),
                         "n": data.n_samples, "n_boot": n_boot})
            bar.update(1)
    del clone
    copies = [new]  # the cascade's last step is a fully randomised copy too
    for copy_seed in copy_seeds:
        fresh = copy.deepcopy(adapter.module)
        with torch_seed(copy_seed):
            for _, layer in _layers(fresh)[::-1]:
                _randomise(layer)
            copies.append(explain_random(fresh))
        del fresh
        bar.update(1)
    bar.close()
    params = {"method": label, "threshold": threshold, "n_boot": n_boot, "ci": ci,
              "random_state": seed_record(random_state),
              **{k: v for k, v in attribute_kwargs.items()  # settings, not arrays
                 if k != "random_state" and isinstance(v, (bool, int, float, str))}}
    return SanityResult(table=pd.DataFrame(rows), method=label, model_name=adapter.name,
                        threshold=threshold, ci=ci, params=params,
                        reference=_reference(original, copies, W_all, ci, rng))
