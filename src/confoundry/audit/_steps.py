"""The audit's steps, declared once: what runs is what :data:`STEPS` says, in its order.

Each :class:`AuditStep` names its report section, its title, the Tip it enforces, what it needs
(inputs the user must give, and earlier steps whose results it uses) and the function it runs.
The function is a plain module-level function of the :class:`AuditContext` that calls one public
step function of the library, imported directly and called with explicit keyword arguments:
nothing is looked up by name at run time and no signature is sniffed, so a wrong keyword is a
``TypeError`` (a failed step, shown in the report), never a silently dropped option.

Adding a step = one :class:`AuditStep` entry in :data:`STEPS` + its function. The report renders
its sections and step titles from this list (carried by every ``AuditResult`` as ``layout``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._explanation import AttributionResult
from ..attribution import (
    attribute,
    check_expectations,
    compare_attributions,
    effect_curve,
    sanity_check,
    shadow_glassbox,
)
from ..controls import (
    label_shuffle_control,
    leave_one_group_out,
    membership_risk,
    overfitting_gap,
)
from ..data._coerce import metadata_also_inputs
from ..domains import contrast_attributions, discover_slices, split_domains
from ..models import compare_models, fit_baselines
from ..models._baselines import degenerate_reason
from ..probes import confounder_pathways, probe_confounders
from ..stats import HEADLINE_METRIC
from ._context import AuditContext, Skip
from ._findings import NOTHING_TO_DO
from ._tables import DataSummaryResult, MetricTableResult

ATTRIBUTION_AUTO = {"torch": "integrated_gradients", "other": "shap_permutation"}
MAX_EFFECT_CURVES = 6
#: a multiclass model's effect curves and shadow glass-box are drawn for at most this many
#: classes (the most frequent in the test labels), one per class.
MAX_TARGET_CLASSES = 4
MAX_DOMAIN_SPLITS = 8
SANITY_ROWS = 200
SHADOW_ROWS = 20_000


@dataclass(frozen=True)
class ReportSection:
    """A section of the report: its anchor id, heading, Tips and the question it answers."""

    id: str
    title: str
    tips: tuple[int, ...]
    intro: str


@dataclass(frozen=True)
class AuditStep:
    """One step of the audit.

    Parameters
    ----------
    name : str
        Identifier (``Audit(steps=[...])``, ``AuditResult.steps``, the JSON record, the seeds).
    title : str
        Heading in the report.
    section : str
        Id of the :class:`ReportSection` it is shown in.
    tip : int
        Number of the Tip of "Ten Quick Tips for Deep Learning in Biology" it enforces.
    needs : tuple of str
        Inputs it needs, from :data:`NEEDS` (e.g. ``"train"``, ``"metadata"``, ``"tabular"``).
        A step whose needs are not met is skipped with the reason.
    uses : tuple of str
        Earlier steps whose results it needs; skipped (with the reason) if one did not run.
    run : callable
        ``run(ctx: AuditContext) -> result``; raises :class:`Skip` to skip with a reason.
    lost : {"high", "medium", "low"}
        Severity of the finding raised when the step fails: what its unanswered question
        costs the reader (the model's performance, the baselines, the probes: ``"high"``; an
        optional plot: ``"low"``).
    question : str
        The question the step answers, as the verdict lists it when the step failed.
    """

    name: str
    title: str
    section: str
    tip: int
    needs: tuple[str, ...]
    uses: tuple[str, ...]
    run: Callable[[AuditContext], Any]
    lost: str = "medium"
    question: str = ""


#: what a step may need: the check on the audit's inputs and the reason shown when it fails.
NEEDS: dict[str, tuple[Callable[[AuditContext], bool], str]] = {
    "train": (lambda c: c.train is not None, "needs training data (X_train= and y_train=)"),
    "tabular": (lambda c: c.data.is_tabular,
                "needs tabular inputs (X_test is not a 2-D table)"),
    "metadata": (lambda c: c.data.metadata is not None,
                 "needs metadata= (site, batch, scanner, ...)"),
    "columns": (lambda c: c.data.is_tabular or c.data.metadata is not None,
                "needs tabular inputs or metadata= (the columns a slice is defined on)"),
    "metadata_train": (lambda c: c.train is not None and c.train.metadata is not None,
                       "needs metadata_train= (the group of every training row)"),
    "torch": (lambda c: bool(getattr(c.adapter, "is_torch", False)),
              "needs a torch model"),
    "train_fn": (lambda c: c.options.train_fn is not None,
                 "needs train_fn(X_train, y_train) -> model to retrain the model"),
    "expectations": (lambda c: bool(c.options.expectations),
                     "needs expectations= (e.g. {'feature': 'increasing'})"),
}

SECTIONS = (
    ReportSection(
        "data", "The data", (4,),
        "How many samples, how balanced the label is, and how the label is distributed over "
        "each metadata column: an unbalanced design is where confounders come from."),
    ReportSection(
        "baselines", "Deep learning against glass-box baselines", (2,),
        "Is the model better than equally tuned glass-box models on the same test data? Every "
        "metric carries its bootstrap confidence interval; differences are paired."),
    ReportSection(
        "attributions", "What the model relies on: attributions, agreement, expectations",
        (8, 9),
        "Which features drive the model, whether glass-box models trained on the same data "
        "agree, and whether any model contradicts what the domain knows."),
    ReportSection(
        "probes", "Confounder probes", (4, 7),
        "Does metadata the model never saw predict its outputs, embeddings or errors, and does "
        "it still predict them once the true label is accounted for? q-values are "
        "Benjamini-Hochberg adjusted over the whole table."),
    ReportSection(
        "domains", "Domains and slices", (9,),
        "Where the model succeeds and where it fails, with intervals per domain, failing slices "
        "confirmed on held-out data with false-discovery-rate control, and what the "
        "attributions do differently where the model is wrong."),
    ReportSection(
        "controls", "Controls: overfitting and memorisation", (7,),
        "Does performance drop from training to test data, does the model beat a copy trained "
        "on shuffled labels, and does it hold up on a site it never saw?"),
    ReportSection(
        "privacy", "Privacy", (10,),
        "Could someone with the model tell who was in the training set?"),
)


# -------------------------------------------------------------------- the steps
def run_data(ctx: AuditContext) -> DataSummaryResult:
    return DataSummaryResult.compute(ctx.data, ctx.train)


def run_baselines(ctx: AuditContext) -> Any:
    if not ctx.options.baseline_kinds:
        raise Skip("baseline_kinds is empty")
    return fit_baselines(ctx.train, None, kinds=ctx.options.baseline_kinds,
                         random_state=ctx.seeds["baselines"], verbose=ctx.options.verbose,
                         max_ebm_features=ctx.options.max_ebm_features)


def run_performance(ctx: AuditContext) -> MetricTableResult:
    return MetricTableResult.from_panel(ctx.panel, ctx.model_name,
                                        degenerate=degenerate_reason(ctx.scores))


def run_comparison(ctx: AuditContext) -> Any:
    models = {ctx.model_name: ctx.adapter, **ctx.baselines}
    return compare_models(models, ctx.data, None, scores=ctx.all_scores, panel=ctx.panel,
                          reference=ctx.model_name, n_boot=ctx.options.n_boot,
                          random_state=ctx.seeds["performance"], verbose=ctx.options.verbose)


def attribution_method(ctx: AuditContext) -> str:
    """The method of ``attribution_method="auto"``: integrated gradients for a torch model
    whose inputs gradients can reach, SHAP permutation otherwise (said in the notes when a
    ``preprocess`` outside torch rules the gradients out)."""
    method = ctx.options.attribution_method
    if method != "auto":
        return method
    if not ctx.adapter.is_torch:
        return ATTRIBUTION_AUTO["other"]
    if not _gradients_reach_inputs(ctx):
        note = ("preprocess does not keep torch gradients (it goes through numpy or detaches), "
                "so the attributions use SHAP permutation, a perturbation method, instead of "
                "integrated gradients.")
        ctx.note(note)
        return ATTRIBUTION_AUTO["other"]
    return ATTRIBUTION_AUTO["torch"]


def _gradients_reach_inputs(ctx: AuditContext) -> bool:
    """Whether ``preprocess`` (if any) maps a tensor to a tensor that still needs its grad."""
    pre = getattr(ctx.adapter, "preprocess", None)
    if pre is None:
        return True
    import torch

    X = ctx.data.X
    rows = np.asarray(X.iloc[:2] if hasattr(X, "iloc") else X[:2], dtype=np.float32)
    probe = torch.as_tensor(rows).clone().requires_grad_(True)
    try:
        out = pre(probe)
    except Exception:  # noqa: BLE001 - a preprocess that only takes numpy / DataFrames
        return False
    return isinstance(out, torch.Tensor) and bool(out.requires_grad)


def run_attributions(ctx: AuditContext) -> dict[str, Any]:
    method = attribution_method(ctx)
    ctx.info["attribution_method"] = method
    sub = ctx.data_sub
    out = {ctx.model_name: attribute(ctx.adapter, sub, method=method,
                                     random_state=ctx.seeds["attributions"],
                                     verbose=ctx.options.verbose)}
    for k, m in (ctx.baselines or {}).items():
        try:
            out[str(k)] = m.explain(sub)
        except Exception as exc:  # recorded, never silent
            ctx.notes.append(f"The native explanation of baseline '{k}' failed: "
                             f"{type(exc).__name__}: {exc}")
    return out


def run_agreement(ctx: AuditContext) -> dict[str, Any]:
    attrs = ctx.results["attributions"]
    dl = attrs[ctx.model_name]
    others = {k: v for k, v in attrs.items() if k != ctx.model_name}
    if not others:
        raise Skip("no glass-box explanation to compare with (needs the baselines)")
    k_top = max(1, min(5, len(dl.feature_names) - 1))
    return {f"{ctx.model_name} vs {k}": compare_attributions(
        dl, v, k=k_top, n_boot=ctx.options.n_boot, random_state=ctx.seeds["agreement"])
        for k, v in others.items()}


def run_expectations(ctx: AuditContext) -> Any:
    models = {ctx.model_name: ctx.adapter, **(ctx.baselines or {})}
    target = None
    if ctx.data.task == "multiclass":
        # an expectation of a K-class model is read on its highest class (e.g. the most severe
        # grade of an ordinal label), said in the notes
        target = len(ctx.data.classes) - 1
        note = (f"Expectations of the multiclass model are checked on the probability of its "
                f"highest class (target = {target}).")
        ctx.note(note)
    return check_expectations(models, ctx.data_sub, dict(ctx.options.expectations),
                              n_boot=ctx.options.n_boot, target=target,
                              random_state=ctx.seeds["expectations"],
                              verbose=ctx.options.verbose)


def target_classes(ctx: AuditContext) -> list[int | None]:
    """The ``target=`` policy of the per-output steps: ``[None]`` (the model's one output)
    unless the task is multiclass; then each class, the most frequent first (at most
    :data:`MAX_TARGET_CLASSES`, said in the report's notes)."""
    if ctx.data.task != "multiclass":
        return [None]
    counts = np.bincount(ctx.data.y, minlength=len(ctx.data.classes))
    order = [int(k) for k in np.argsort(-counts, kind="stable")]
    keep = order[:MAX_TARGET_CLASSES]
    note = ("The multiclass model's effect curves and shadow glass-box explain the probability "
            f"of each class (target = {', '.join(map(str, sorted(keep)))})")
    note += (f", the {len(keep)} most frequent of {len(order)} classes." if len(keep) < len(order)
             else "; its attributions explain each row's predicted class.")
    ctx.note(note)
    return sorted(keep)


def _per_class(name: str, target: int | None) -> str:
    return name if target is None else f"{name} (class {target})"


def run_effect_curves(ctx: AuditContext) -> dict[str, Any]:
    feats = list(ctx.options.expectations)
    attrs = ctx.results.get("attributions")
    if attrs is not None:
        imp = attrs[ctx.model_name].global_importance()
        feats += [f for f in imp.index[:3] if f not in feats]
    if not feats:
        raise Skip("no feature to show: no expectations and no attributions")
    return {_per_class(f, k): effect_curve(
        ctx.adapter, ctx.data_sub, f, baselines=ctx.baselines, target=k,
        random_state=ctx.seeds["effect_curves"], verbose=ctx.options.verbose)
        for f in feats[:MAX_EFFECT_CURVES] for k in target_classes(ctx)}


def run_shadow_glassbox(ctx: AuditContext) -> Any:
    # the shadow EBM is cheap (no interactions, 2 bags): fit it on up to SHADOW_ROWS test rows,
    # not the attribution subsample; "what the data say" is the tuned baseline EBM when there
    # is one
    n = ctx.data.n_samples
    idx = np.arange(n)
    if n > SHADOW_ROWS:
        rng = np.random.default_rng(ctx.seeds["shadow_glassbox"])
        idx = np.sort(rng.choice(n, size=SHADOW_ROWS, replace=False))
    if ctx.data.lazy:  # read by index: the attribution sample, never the whole input
        if ctx.data.n_features > ctx.options.max_ebm_features:
            raise Skip(f"the shadow EBM would model all {ctx.data.n_features} features of an "
                       f"input read in batches (more than max_ebm_features="
                       f"{ctx.options.max_ebm_features})")
        idx = ctx.sub_idx
    rows = ctx.data if len(idx) == n and not ctx.data.lazy else ctx.data.subset(idx)
    base = ctx.baselines
    ref = base["ebm"] if base is not None and "ebm" in base else None
    targets = target_classes(ctx)
    out = {_per_class("shadow", k): shadow_glassbox(
        ctx.adapter, rows, rows.y, scores=ctx.scores[idx], reference=ref, target=k,
        random_state=ctx.seeds["shadow_glassbox"], verbose=ctx.options.verbose)
        for k in targets}
    return out["shadow"] if targets == [None] else out


def run_sanity_check(ctx: AuditContext) -> Any:
    method = ctx.info.get("attribution_method") or attribution_method(ctx)
    rows = ctx.data.subset(ctx.sub_idx[:SANITY_ROWS])
    return sanity_check(ctx.adapter, rows, method=method, random_state=ctx.seeds["sanity_check"],
                        verbose=ctx.options.verbose)


def run_probes(ctx: AuditContext) -> Any:
    res = probe_confounders(ctx.adapter, ctx.data, None, None, scores=ctx.scores,
                            layer=ctx.options.layer, n_permutations=ctx.options.n_permutations,
                            random_state=ctx.seeds["probes"], verbose=ctx.options.verbose)
    also = metadata_also_inputs(ctx.data)
    if also:
        ctx.note("Metadata that is also a model input: " + "; ".join(
            f"'{c}' is {d}" for c, d in also.items()) + ". Its probes are marked: a "
            "dependence of the outputs on it is expected, not a sign of confounding.")
        res = res.mark_inputs(also)
    return res


def run_pathways(ctx: AuditContext) -> Any:
    """Trace the metadata columns whose conditional output probe is significant (not those
    that are also model inputs) through the tabular features, with the glass-box baselines
    as the reference."""
    probes = ctx.results["probes"]
    t = probes.table
    also = set(getattr(probes, "also_inputs", {}) or {})
    hit = t[(t["probe"] == "output_conditional") & t["significant"].astype(bool)
            & ~t["metadata"].isin(also)]
    if hit.empty:
        raise Skip(f"{NOTHING_TO_DO}no conditional output probe is significant, so there is "
                   "no pathway to trace")
    if ctx.data.lazy:
        raise Skip(f"the pathways perturb every feature of X in memory; X_test is "
                   f"{ctx.data.source.describe()}, read in batches")
    attr = ctx.results.get("attributions")
    if not isinstance(attr, AttributionResult):  # multiclass: one result per class
        attr = None
    return confounder_pathways(
        ctx.adapter, ctx.data, None, None, attribution=attr, baselines=ctx.baselines or None,
        columns=list(dict.fromkeys(hit["metadata"])),
        n_permutations=ctx.options.n_permutations, n_boot=min(ctx.options.n_boot, 200),
        random_state=ctx.seeds["pathways"], verbose=ctx.options.verbose)


def domain_splits(ctx: AuditContext) -> dict[str, Any]:
    """What the domains step splits by: every metadata column, then every binary or
    categorical feature named in the expectations (at most :data:`MAX_DOMAIN_SPLITS`)."""
    splits: dict[str, Any] = {}
    if ctx.data.metadata is not None:
        for col in ctx.data.metadata.columns:
            splits[col] = col  # by name: split_domains reads the column's declared kind
    if ctx.data.is_tabular:
        for f in ctx.options.expectations:
            if ctx.data.feature_kinds.get(f) in ("binary", "categorical"):
                splits.setdefault(f, f)
    return splits


def run_domains(ctx: AuditContext) -> dict[str, Any]:
    splits = domain_splits(ctx)
    if not splits:
        raise Skip("no metadata and no binary/categorical expected feature to split by")
    if len(splits) > MAX_DOMAIN_SPLITS:
        ctx.notes.append(f"Domain splits are shown for the first {MAX_DOMAIN_SPLITS} of "
                         f"{len(splits)} columns.")
    return {k: split_domains(ctx.adapter, ctx.data, None, by=by, baselines=ctx.baselines,
                             scores=ctx.scores, baseline_scores=ctx.baseline_scores,
                             overall=ctx.panel, n_boot=ctx.options.n_boot,
                             model_name=ctx.model_name, random_state=ctx.seeds["domains"],
                             verbose=ctx.options.verbose)
            for k, by in list(splits.items())[:MAX_DOMAIN_SPLITS]}


def run_slices(ctx: AuditContext) -> Any:
    data = ctx.data
    if data.lazy and data.is_tabular:  # the features of a lazy input are not coded one by one
        if data.metadata is None:
            raise Skip("needs metadata= for an input read in batches (its features are not "
                       "searched column by column)")
        data = data.with_labels()
        data.is_tabular = False
        ctx.note("Failing slices of an input read in batches are searched over the metadata "
                 "only, not over its features.")
    elif not data.is_tabular:
        ctx.note("Failing slices of image or sequence inputs are searched over the metadata.")
    return discover_slices(ctx.adapter, data, None, scores=ctx.scores,
                           model_name=ctx.model_name, random_state=ctx.seeds["slices"],
                           verbose=ctx.options.verbose)


def run_error_contrast(ctx: AuditContext) -> Any:
    attr = ctx.results["attributions"][ctx.model_name]
    idx = ctx.sub_idx
    task = ctx.data.task
    y, s = ctx.data.y[idx], ctx.scores[idx]
    if task == "binary":
        wrong = (s >= 0.5).astype(int) != y
    elif task == "multiclass":
        wrong = np.argmax(s, axis=1) != y
    else:
        r = np.abs(s - y)
        wrong = r > np.quantile(r, 0.75)
    n_wrong = int(wrong.sum())
    if n_wrong < 10 or len(wrong) - n_wrong < 10:
        raise Skip(f"too few errors to contrast ({n_wrong} of {len(wrong)} rows wrong; need at "
                   "least 10 on each side)")
    ctx.notes.append(
        "The attribution contrast compares rows the model gets wrong "
        + ("(the worst quarter of absolute residuals) " if task == "regression"
           else "(thresholded at 0.5) " if task == "binary" else "")
        + f"with the rest: {n_wrong} of {len(wrong)} attributed rows.")
    # named levels so that the finding reads "misclassified" vs "correct"
    a_name, b_name = (("worst quarter", "rest") if task == "regression"
                      else ("misclassified", "correct"))
    groups = np.where(wrong, a_name, b_name)
    if not attr.is_tabular:
        # images: where the model looks, as |attribution| summed over a 4 x 4 grid
        attr = attr.pool((4, 4), absolute=True)
        ctx.notes.append("For image inputs the attribution contrast compares the |attribution| "
                         "summed over a 4 x 4 grid of regions (r0c0 is the top-left cell).")
    return contrast_attributions(attr, groups, random_state=ctx.seeds["error_contrast"])


def run_overfitting(ctx: AuditContext) -> Any:
    return overfitting_gap(ctx.adapter, ctx.train, None, ctx.data, None,
                           baselines=ctx.baselines, scores=ctx.scores,
                           train_scores=ctx.train_scores, baseline_scores=ctx.baseline_scores,
                           baseline_train_scores=ctx.baseline_train_scores, panel=ctx.panel,
                           model_name=ctx.model_name, n_boot=ctx.options.n_boot,
                           random_state=ctx.seeds["overfitting"], verbose=ctx.options.verbose)


def run_label_shuffle(ctx: AuditContext) -> Any:
    return label_shuffle_control(ctx.options.train_fn, ctx.train, None, ctx.data, None,
                                 n_repeats=ctx.options.n_repeats,
                                 random_state=ctx.seeds["label_shuffle"],
                                 verbose=ctx.options.verbose)


def run_leave_one_group_out(ctx: AuditContext) -> Any:
    col = ctx.options.group_column
    if col is None:
        cats = [c for c, k in ctx.train.metadata_kinds.items() if k == "categorical"]
        if not cats:
            raise Skip("metadata_train has no categorical column to hold out")
        col = cats[0]
    return leave_one_group_out(ctx.options.train_fn, ctx.train, None,
                               by=ctx.train.metadata[col].to_numpy(),
                               metric=HEADLINE_METRIC[str(ctx.data.task)],
                               random_state=ctx.seeds["leave_one_group_out"],
                               verbose=ctx.options.verbose)


def run_membership(ctx: AuditContext) -> Any:
    return membership_risk(ctx.adapter, ctx.train, None, ctx.data, None,
                           baselines=ctx.baselines, scores=ctx.scores,
                           train_scores=ctx.train_scores, baseline_scores=ctx.baseline_scores,
                           baseline_train_scores=ctx.baseline_train_scores,
                           model_name=ctx.model_name, random_state=ctx.seeds["membership"],
                           verbose=ctx.options.verbose)


#: every step, in the order it runs.
STEPS: tuple[AuditStep, ...] = (
    AuditStep("data", "Data description", "data", 4, (), (), run_data,
              lost="medium", question="How is the label distributed over the metadata?"),
    AuditStep("baselines", "Glass-box baselines", "baselines", 2, ("train", "tabular"), (),
              run_baselines,
              lost="high", question="How well do equally tuned glass-box models do?"),
    AuditStep("performance", "The model's metric panel", "baselines", 2, (), (),
              run_performance,
              lost="high", question="How well does the model perform on held-out data?"),
    AuditStep("comparison", "Model comparison", "baselines", 2, (), ("baselines",),
              run_comparison,
              lost="high", question="Is the model better than the glass-box baselines?"),
    AuditStep("attributions", "Attributions", "attributions", 8, (), (), run_attributions,
              lost="medium", question="Which features drive the model?"),
    AuditStep("agreement", "Agreement with glass-box explanations", "attributions", 8, (),
              ("attributions",), run_agreement,
              lost="medium", question="Do the glass-box models rely on the same features?"),
    AuditStep("expectations", "Domain expectations", "attributions", 9,
              ("expectations", "tabular"), (), run_expectations,
              lost="high", question="Does any model contradict the domain expectations?"),
    AuditStep("effect_curves", "Effect curves", "attributions", 9, ("tabular",), (),
              run_effect_curves,
              lost="low", question="How does the output change with each important feature?"),
    AuditStep("shadow_glassbox", "Shadow glass-box", "attributions", 8, ("tabular",), (),
              run_shadow_glassbox,
              lost="medium", question="Does an additive model of the outputs match what the data say?"),
    AuditStep("sanity_check", "Attribution sanity check", "attributions", 8, ("torch",),
              ("attributions",), run_sanity_check,
              lost="low", question="Do the attributions depend on the model's parameters?"),
    AuditStep("probes", "Confounder probes", "probes", 4, ("metadata",), (), run_probes,
              lost="high", question="Does metadata the model never saw predict its outputs?"),
    AuditStep("pathways", "Confounder pathways", "probes", 4, ("metadata", "tabular"),
              ("probes",), run_pathways,
              lost="medium", question="Which inputs carry the metadata into the outputs, and "
              "does the model depend on it more than the glass-box baselines?"),
    AuditStep("domains", "Per-domain metrics", "domains", 9, (), (), run_domains,
              lost="high", question="How does the model do in each domain?"),
    AuditStep("slices", "Failing slices", "domains", 9, ("columns",), (), run_slices,
              lost="medium", question="Is there a subgroup where the model fails?"),
    AuditStep("error_contrast", "Attributions where the model is wrong vs right", "domains", 9,
              (), ("attributions",), run_error_contrast,
              lost="low", question="Do attributions differ where the model is wrong?"),
    AuditStep("overfitting", "Overfitting gap", "controls", 7, ("train",), (),
              run_overfitting,
              lost="medium", question="Does performance drop from training to test data?"),
    AuditStep("label_shuffle", "Label-shuffle control", "controls", 7, ("train_fn", "train"),
              (), run_label_shuffle,
              lost="medium", question="Does the model beat copies trained on shuffled labels?"),
    AuditStep("leave_one_group_out", "Leave one group out", "controls", 7,
              ("train_fn", "train", "metadata_train"), (), run_leave_one_group_out,
              lost="medium", question="Does the model hold up on a group it never saw?"),
    AuditStep("membership", "Membership-inference risk", "privacy", 10, ("train",), (),
              run_membership,
              lost="medium", question="Could someone tell who was in the training set?"),
)


def step_names(steps: tuple[AuditStep, ...] | None = None) -> tuple[str, ...]:
    return tuple(s.name for s in (STEPS if steps is None else steps))


def layout(steps: tuple[AuditStep, ...] | None = None,
           sections: tuple[ReportSection, ...] | None = None) -> tuple[dict[str, Any], ...]:
    """The report's sections with their steps (JSON-safe; carried by ``AuditResult``)."""
    steps = STEPS if steps is None else steps
    sections = SECTIONS if sections is None else sections
    out = []
    known = {s.id for s in sections}
    for sec in sections:
        out.append({"id": sec.id, "title": sec.title, "tips": list(sec.tips),
                    "intro": sec.intro,
                    "steps": [{"name": st.name, "title": st.title} for st in steps
                              if st.section == sec.id]})
    orphans = [st for st in steps if st.section not in known]
    if orphans:  # a step with a section of its own: shown after the others, never lost
        for sid in dict.fromkeys(st.section for st in orphans):
            out.append({"id": sid, "title": sid.replace("_", " ").capitalize(),
                        "tips": sorted({st.tip for st in orphans if st.section == sid}),
                        "intro": "",
                        "steps": [{"name": st.name, "title": st.title} for st in orphans
                                  if st.section == sid]})
    return tuple(out)


def audit_steps() -> pd.DataFrame:
    """The audit's steps, in the order they run: what each shows, where, and what it needs.

    Pass any of the names to ``Audit(steps=[...])`` to run only those.

    Returns
    -------
    DataFrame
        Columns ``name``, ``title``, ``section``, ``tip``, ``needs`` (inputs, and earlier steps
        as ``step:<name>``).

    Examples
    --------
    >>> import confoundry as cf
    >>> t = cf.audit_steps()
    >>> list(t.columns)
    ['name', 'title', 'section', 'tip', 'needs']
    >>> t.set_index("name").loc["probes", "needs"]
    'metadata'
    """
    rows = [{"name": s.name, "title": s.title, "section": s.section, "tip": s.tip,
             "needs": ", ".join(list(s.needs) + [f"step:{u}" for u in s.uses])}
            for s in STEPS]
    return pd.DataFrame(rows, columns=["name", "title", "section", "tip", "needs"])
