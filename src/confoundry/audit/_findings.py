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


def collect_findings(results: Mapping[str, Any], steps: Mapping[str, Any], model_name: str,
                     *, tips: Mapping[str, int] | None = None) -> list[Finding]:
    """Findings of every result, plus one per failed step, in a stable order.

    The same finding reported by two results (e.g. the overall row of every domain split and
    the model comparison, all views of one metric panel) is kept once: findings are matched by
    their structured :attr:`Finding.key` ``(kind, subject, model, domain)``, never by their
    wording; the first to arrive is kept. The findings of one result are all kept (a result
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
        mine = [f for f in found if f.key not in seen]
        seen.update(f.key for f in found)
        out.extend(mine)
    for name, st in steps.items():
        if st.status == "failed":
            out.append(Finding("step_failed", "low", tips.get(name, DEFAULT_TIP),
                               f"Step '{name}' failed, so its question is unanswered: "
                               f"{st.reason}", subject=name, model=model_name,
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


def verdict(findings: list[Finding]) -> Verdict:
    """The worst severity, the counts per severity and one sentence for the reader.

    Examples
    --------
    >>> verdict([Finding("memorisation", "high", 7, "t")])["level"]
    'high'
    >>> verdict([]).text
    'No problem found in the steps that ran.'
    """
    counts = {s: 0 for s in SEVERITIES}
    for f in findings:
        counts[f.severity] += 1
    level = next((s for s in SEVERITIES[:3] if counts[s]), "info")
    text = VERDICTS[level].format(n=counts[level])
    return Verdict(level, text, counts)
