"""Collect the findings of every step, add the Audit's own, and state a verdict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._result import SEVERITIES, Finding, Verdict

#: Tip of a failed step whose own Tip is unknown (Tip 3: know your tools).
DEFAULT_TIP = 3

#: Within a severity, findings are listed in this order of kind: what the model learned that
#: contradicts domain knowledge and what it would do to patients first, then confounding, then
#: the rest (unknown kinds last, in order of arrival).
KIND_PRIORITY = (
    "expectation_violation", "dangerous_triage", "confounded_output", "confounded_embedding",
    "confounded_errors", "confounded_dataset", "baseline_outperforms", "memorisation",
    "domain_gap", "failing_slice", "attribution_disagreement",
)

#: the reason of a step left out with ``Audit(steps=[...])``.
NOT_REQUESTED = "not requested (steps=...)"
#: how the reason of a step that had nothing to do begins (its question is answered: e.g. no
#: significant probe leaves no pathway to trace); such a step is not an unanswered question.
NOTHING_TO_DO = "nothing to do: "

VERDICTS = {
    "high": "Do not rely on this model yet: {n} high-severity finding(s) must be resolved first.",
    "medium": "Use with caution: {n} medium-severity finding(s) need a closer look.",
    "low": "No serious problem found in the steps that ran; {n} minor finding(s) to read.",
    "info": "No problem found in the steps that ran.",
}


def iter_results(results: Mapping[str, Any]) -> Iterable[tuple[str, str | None, Any]]:
    """Yield ``(step, key, result)`` for every result object, unpacking per-key dicts (a
    mapping with findings of its own, such as the baselines, is one result)."""
    for step, res in results.items():
        if isinstance(res, Mapping) and not callable(getattr(res, "findings", None)):
            for key, sub in res.items():
                yield step, str(key), sub
        else:
            yield step, None, res


def collect_findings(results: Mapping[str, Any], steps: Mapping[str, Any], model_name: str,
                     *, tips: Mapping[str, int] | None = None) -> list[Finding]:
    """Findings of every result, plus one per failed step, in a stable order.

    The same finding reported by two results (e.g. the overall row of every domain split and
    the model comparison, all views of one metric panel) is kept once: findings are matched by
    their structured :attr:`Finding.key` ``(kind, subject, model, domain)``, never by their
    wording; the first to arrive is kept, unless a later result declares with
    ``supersedes()`` that its finding replaces it (the pathways say more than the probe about
    the same column). The findings of one result are all kept (a result
    never reports the same thing twice). A result that fails to produce its findings becomes a
    finding of its own, so nothing disappears silently.

    Examples
    --------
    >>> class R:
    ...     def __init__(self, fs): self.fs = fs
    ...     def findings(self): return self.fs
    >>> f = Finding("domain_gap", "medium", 9, "gap (q = 0.01)", subject="auroc", model="m",
    ...             domain="overall")
    >>> g = Finding("domain_gap", "medium", 9, "gap (q = 0.02)", subject="auroc", model="m",
    ...             domain="overall")
    >>> len(collect_findings({"a": R([f]), "b": R([g])}, {}, "m"))
    1
    """
    tips = dict(tips or {})
    out: list[Finding] = []
    seen: set[tuple[Any, ...]] = set()
    # a later result may replace an earlier one's finding with one that says more (the
    # pathways replace the probe's "outputs depend on the site"): those keys wait for it
    superseded: dict[tuple[Any, ...], str] = {}
    for step, _key, res in iter_results(results):
        sup = getattr(res, "supersedes", None)
        if callable(sup):
            try:
                superseded.update({tuple(k): step for k in sup()})
            except Exception:  # noqa: BLE001 - its findings() will report the failure
                pass

    for step, key, res in iter_results(results):
        fn = getattr(res, "findings", None)
        if not callable(fn):
            continue
        try:
            found = [f for f in fn() if isinstance(f, Finding)]
        except Exception as exc:  # a broken findings() must not hide the rest
            found = [Finding("step_failed", "low", tips.get(step, DEFAULT_TIP),
                             f"The findings of step '{step}' could not be read: "
                             f"{type(exc).__name__}: {exc}", subject=key or step,
                             evidence={"step": step})]
        if superseded:
            found = [f for f in found if superseded.get(f.key, step) == step]
        mine = [f for f in found if f.key not in seen]
        seen.update(f.key for f in found)
        out.extend(mine)
    for name, st in steps.items():
        if st.status == "failed":
            out.append(failed_finding(name, st, model_name, tips.get(name, DEFAULT_TIP)))
    return rank_findings(group_findings(rank_findings(out)))


#: how many members a grouped finding names in its title (the evidence lists them all).
GROUP_NAMED = 4


def group_findings(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per kind and model for findings about single domains or slices.

    Findings of one ``kind`` about one ``model`` in several domains (``domain`` other than
    ``None`` and ``"overall"``: a site, a slice, a held-out group) become one finding: the
    worst member's sentence, then the other domains by name, with every member's numbers in
    ``evidence["rows"]`` (one row each: ``domain``, ``severity``, ``title`` and the member's
    evidence). Its severity is the worst member's; its ``domain`` reads "3 domains". Lone
    findings and whole-test-set findings are kept as they are, in their order.

    Examples
    --------
    >>> fs = [Finding("failing_slice", "high", 9, "m fails where a.", model="m", domain="a",
    ...               evidence={"n": 50}),
    ...       Finding("failing_slice", "medium", 9, "m fails where b.", model="m", domain="b",
    ...               evidence={"n": 40}),
    ...       Finding("memorisation", "high", 7, "noise", domain="overall")]
    >>> out = group_findings(fs)
    >>> [(f.kind, f.severity, f.domain) for f in out]
    [('failing_slice', 'high', '2 slices'), ('memorisation', 'high', 'overall')]
    >>> out[0].title
    "m fails where a. The same kind of finding holds in 1 more slice: 'b' (all 2 in the table)."
    >>> [r["domain"] for r in out[0].evidence["rows"]]
    ['a', 'b']
    """
    findings = list(findings)
    groups: dict[tuple[str, str | None], list[int]] = {}
    for i, f in enumerate(findings):
        if f.domain not in (None, "overall"):
            groups.setdefault((f.kind, f.model), []).append(i)
    merged: dict[int, Finding] = {}
    drop: set[int] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        fs = rank_findings(findings[i] for i in members)
        merged[members[0]] = _grouped(fs)
        drop.update(members[1:])
    return [merged.get(i, f) for i, f in enumerate(findings) if i not in drop]


def _grouped(fs: list[Finding]) -> Finding:
    head, rest = fs[0], fs[1:]
    noun = "slice" if head.kind == "failing_slice" else "domain"
    names = ", ".join(f"'{f.domain}'" for f in rest[:GROUP_NAMED])
    if len(rest) > GROUP_NAMED:
        names += f" and {len(rest) - GROUP_NAMED} more"
    title = (f"{head.title} The same kind of finding holds in {len(rest)} more {noun}"
             f"{'s' if len(rest) > 1 else ''}: {names} (all {len(fs)} in the table).")
    rows = [{"domain": f.domain, "severity": f.severity, "title": f.title, **dict(f.evidence)}
            for f in fs]
    return Finding(head.kind, head.severity, head.tip, title, subject=head.subject,
                   model=head.model, evidence={"rows": rows, "n_grouped": len(fs)},
                   domain=f"{len(fs)} {noun}s")


def failed_finding(name: str, st: Any, model_name: str | None, tip: int) -> Finding:
    """The finding of a failed step: as severe as what its unanswered question costs.

    Examples
    --------
    >>> from confoundry.audit import StepStatus
    >>> st = StepStatus("performance", "failed", "IndexError: tuple index out of range",
    ...                 question="How well does the model perform?", lost="high")
    >>> f = failed_finding("performance", st, "mlp", 2)
    >>> f.severity, f.title
    ('high', "Unanswered: How well does the model perform? (step 'performance' failed: \
IndexError: tuple index out of range)")
    """
    lost = getattr(st, "lost", "") or "low"
    question = getattr(st, "question", "") or f"the question of step '{name}'"
    evidence = {"step": name, "error": st.reason, "question": question, "lost": lost}
    for key in ("error_type", "where"):
        if getattr(st, key, ""):
            evidence[key] = getattr(st, key)
    return Finding("step_failed", lost if lost in SEVERITIES else "low", tip,
                   f"Unanswered: {question} (step '{name}' failed: {st.reason})", subject=name,
                   model=model_name, evidence=evidence)


def unanswered(steps: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
    """The questions of the steps that did not run: failed (or blocked by a failed step),
    interrupted, or skipped because an input was missing; steps left out on request, and steps
    that had nothing to do (reason starting with :data:`NOTHING_TO_DO`), are not unanswered
    questions.

    Examples
    --------
    >>> from confoundry.audit import StepStatus
    >>> st = {"probes": StepStatus("probes", "skipped", "needs metadata=", question="Q?"),
    ...       "slices": StepStatus("slices", "skipped", NOT_REQUESTED, question="S?")}
    >>> [(u["step"], u["status"]) for u in unanswered(st)]
    [('probes', 'skipped')]
    """
    out = []
    for name, st in steps.items():
        if st.status == "ran" or (st.status == "skipped" and (
                st.reason == NOT_REQUESTED or str(st.reason).startswith(NOTHING_TO_DO))):
            continue
        status = st.status
        if status == "skipped" and getattr(st, "blocked_by", ""):
            status = "failed"  # its question is lost to the failure of the step it uses
        out.append({"step": name, "question": getattr(st, "question", "") or
                    f"the question of step '{name}'", "status": status, "reason": st.reason})
    return tuple(out)


def rank_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Findings worst first; within a severity in the order of ``KIND_PRIORITY`` (stable).

    Examples
    --------
    >>> fs = [Finding("failing_slice", "high", 9, "a"), Finding("expectation_violation",
    ...       "high", 9, "b"), Finding("note", "info", 3, "c")]
    >>> [f.title for f in rank_findings(fs)]
    ['b', 'a', 'c']
    """
    from .._result import _SEVERITY_RANK

    prio = {k: i for i, k in enumerate(KIND_PRIORITY)}
    return sorted(findings, key=lambda f: (_SEVERITY_RANK[f.severity],
                                           prio.get(f.kind, len(prio))))


def verdict(findings: list[Finding], steps: Mapping[str, Any] | None = None) -> Verdict:
    """The worst severity, the counts per severity, one sentence for the reader, and the
    questions left unanswered by the ``steps`` that did not run.

    An audit in which a step failed never reads "no (serious) problem found": the sentence
    says how many questions went unanswered, and :attr:`Verdict.unanswered` lists them.

    Examples
    --------
    >>> verdict([Finding("memorisation", "high", 7, "t")])["level"]
    'high'
    >>> verdict([]).text
    'No problem found in the steps that ran.'
    >>> from confoundry.audit import StepStatus
    >>> st = StepStatus("effect_curves", "failed", "ValueError: x", question="Q?", lost="low")
    >>> v = verdict([failed_finding("effect_curves", st, "m", 9)], {"effect_curves": st})
    >>> v.text
    'The audit is incomplete: 1 question is unanswered because its step failed; 1 minor \
finding(s) to read.'
    """
    counts = {s: 0 for s in SEVERITIES}
    for f in findings:
        counts[f.severity] += 1
    level = next((s for s in SEVERITIES[:3] if counts[s]), "info")
    todo = unanswered(steps or {})
    n_failed = sum(u["status"] == "failed" for u in todo)
    n_stopped = sum(u["status"] == "interrupted" for u in todo)
    if n_failed and level in ("low", "info"):
        lost = (f"{n_failed} question is unanswered because its step failed" if n_failed == 1
                else f"{n_failed} questions are unanswered because their steps failed")
        n_minor = counts["low"]
        text = (f"The audit is incomplete: {lost}; {n_minor} minor finding(s) to read."
                if n_minor else f"The audit is incomplete: {lost}.")
    else:
        text = VERDICTS[level].format(n=counts[level])
        if n_failed:
            text += (f" {n_failed} question(s) are unanswered because a step failed.")
    if n_stopped:
        ran = sum(st.status == "ran" for st in (steps or {}).values())
        text = (f"The audit was interrupted: {n_stopped} step(s) did not finish ({ran} ran; run "
                f"it again with the same checkpoint_dir to resume). " + text)
    return Verdict(level, text, counts, todo)
