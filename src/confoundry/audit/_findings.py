"""Collect the findings of every step, add the Audit's own, and state a verdict."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .._result import SEVERITIES, Finding, to_jsonable

#: Tip each step enforces (numbers of "Ten Quick Tips for Deep Learning in Biology").
STEP_TIPS = {
    "data": 4, "performance": 2, "baselines": 2, "comparison": 2, "attributions": 8,
    "agreement": 8, "expectations": 9, "effect_curves": 9, "shadow_glassbox": 8, "probes": 4,
    "domains": 9, "slices": 9, "error_contrast": 9, "label_shuffle": 7,
    "leave_one_group_out": 7, "overfitting": 7, "membership": 10,
}

#: Within a severity, findings are listed in this order of kind: what the model learned that
#: contradicts domain knowledge and what it would do to patients first, then confounding, then
#: the rest (unknown kinds last, in order of arrival).
KIND_PRIORITY = (
    "expectation_violation", "dangerous_triage", "confounded_output", "confounded_embedding",
    "confounded_errors", "confounded_dataset", "baseline_outperforms", "memorisation",
    "domain_gap", "failing_slice", "attribution_disagreement",
)

VERDICTS = {
    "high": "Do not rely on this model yet: {n} high-severity finding(s) must be resolved first.",
    "medium": "Use with caution: {n} medium-severity finding(s) need a closer look.",
    "low": "No serious problem found in the steps that ran; {n} minor finding(s) to read.",
    "info": "No problem found in the steps that ran.",
}


def iter_results(results: Mapping[str, Any]) -> Iterable[tuple[str, str | None, Any]]:
    """Yield ``(step, key, result)`` for every result object, unpacking per-key dicts."""
    for step, res in results.items():
        if isinstance(res, Mapping):
            for key, sub in res.items():
                yield step, str(key), sub
        else:
            yield step, None, res


def collect_findings(results: Mapping[str, Any], steps: Mapping[str, Any],
                     model_name: str) -> list[Finding]:
    """Findings of every result, plus one per failed step, in a stable order.

    Duplicates (same kind, subject, model and title up to its parenthesised numbers) are kept
    once. A step's result that fails
    to produce its findings becomes a finding of its own, so nothing disappears silently.
    """
    out: list[Finding] = []
    seen: set[tuple[Any, ...]] = set()

    def add(f: Finding) -> None:
        key = (f.kind, f.subject, f.model, _core(f.title))
        if key not in seen:
            seen.add(key)
            out.append(f)

    for step, key, res in iter_results(results):
        fn = getattr(res, "findings", None)
        if not callable(fn):
            continue
        try:
            found = list(fn())
        except Exception as exc:  # a broken findings() must not hide the rest
            add(Finding("step_failed", "low", STEP_TIPS.get(step, 3),
                        f"The findings of step '{step}' could not be read: "
                        f"{type(exc).__name__}: {exc}", subject=key or step,
                        evidence={"step": step}))
            continue
        for f in found:
            if isinstance(f, Finding):
                add(f)
    for name, st in steps.items():
        if st.status == "failed":
            add(Finding("step_failed", "low", STEP_TIPS.get(name, 3),
                        f"Step '{name}' failed, so its question is unanswered: {st.reason}",
                        subject=name, model=model_name,
                        evidence={"step": name, "error": st.reason}))
    return rank_findings(out)


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


def _core(title: str) -> str:
    """A title without its parenthesised numbers: the same finding reported by two steps (e.g.
    the overall row of several domain splits, with different bootstrap draws) is kept once."""
    return re.sub(r"\s+", " ", re.sub(r"\([^()]*\)", "", title)).strip()


def verdict(findings: list[Finding]) -> dict[str, Any]:
    """The worst severity, the counts per severity and one sentence for the reader.

    Examples
    --------
    >>> verdict([Finding("memorisation", "high", 7, "t")])["level"]
    'high'
    >>> verdict([])["text"]
    'No problem found in the steps that ran.'
    """
    counts = {s: 0 for s in SEVERITIES}
    for f in findings:
        counts[f.severity] += 1
    level = next((s for s in SEVERITIES[:3] if counts[s]), "info")
    text = VERDICTS[level].format(n=counts[level])
    return to_jsonable({"level": level, "text": text, "counts": counts})
