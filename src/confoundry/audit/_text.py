"""The audit as plain text for a terminal: ``print(result)`` and the command line."""

from __future__ import annotations

import math
import shutil
import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

#: evidence keys shown on a finding's evidence line, in this order, with their label.
_EFFECT_KEYS = ("effect_size", "effect", "difference", "partial_r2", "spearman_abs", "lift",
                "auroc", "estimate", "gap")
_CI_PAIRS = (("ci_low", "ci_high"), ("auroc_ci_low", "auroc_ci_high"),
             ("gap_ci_low", "gap_ci_high"), ("diff_ci_low", "diff_ci_high"))


def _num(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None
    if not math.isfinite(float(v)):
        return None
    if float(v) == int(v) and abs(v) < 1e9:
        return str(int(v))
    return f"{float(v):.3g}"


def evidence_line(evidence: Mapping[str, Any]) -> str:
    """The numbers behind a finding in one line: its effect, CI, q (or p) and n.

    Examples
    --------
    >>> evidence_line({"effect_size": 0.0504, "effect_size_name": "partial R²",
    ...                "q_value": 0.003, "n": 4352, "probe": "output_conditional"})
    'partial R² = 0.0504 · q = 0.003 · n = 4352'
    >>> evidence_line({"difference": 0.005, "ci_low": -0.001, "ci_high": 0.011, "n": 10})
    'difference = 0.005 (CI -0.001 to 0.011) · n = 10'
    >>> evidence_line({"rows": [{}, {}], "n_grouped": 2})
    '2 rows in the table'
    """
    if "rows" in evidence and "n_grouped" in evidence:
        return f"{evidence['n_grouped']} rows in the table"
    parts = []
    for key in _EFFECT_KEYS:
        v = _num(evidence.get(key))
        if v is not None:
            name = str(evidence.get("effect_size_name") or key) if key == "effect_size" else key
            part = f"{name} = {v}"
            for lo, hi in _CI_PAIRS:
                a, b = _num(evidence.get(lo)), _num(evidence.get(hi))
                if a is not None and b is not None and (lo.startswith(key) or lo == "ci_low"):
                    if not a == b == v:  # a zero-width interval says nothing
                        part += f" (CI {a} to {b})"
                    break
            parts.append(part)
            break
    for key, label in (("q_value", "q"), ("p_value", "p")):
        v = _num(evidence.get(key))
        if v is not None:
            parts.append(f"{label} = {v}")
            break
    for key in ("n", "n_members", "n_high"):
        v = _num(evidence.get(key))
        if v is not None:
            parts.append(f"n = {v}")
            break
    return " · ".join(parts) if parts else ""


def format_findings(findings: Iterable[Any], verdict: Any = None, *, width: int | None = None,
                    limit: int | None = None, questions: Iterable[Mapping[str, str]] = ()
                    ) -> str:
    """The verdict, the ``questions`` (as from :meth:`AuditResult.questions`), then every
    finding worst first: ``[SEVERITY] sentence`` wrapped to ``width`` (default: the
    terminal's), then one line of its evidence.

    Examples
    --------
    >>> from confoundry import Finding
    >>> f = Finding("memorisation", "high", 7, "The model does no better than models trained on "
    ...             "shuffled labels.", evidence={"difference": 0.01, "p_value": 0.4, "n": 200})
    >>> print(format_findings([f], width=60))
    [HIGH] The model does no better than models trained on
           shuffled labels.
           difference = 0.01 · p = 0.4 · n = 200
    """
    width = width or max(60, min(shutil.get_terminal_size((100, 20)).columns, 120))
    lines: list[str] = []
    if verdict is not None:
        text = verdict["text"] if isinstance(verdict, Mapping) else getattr(verdict, "text", "")
        lines += textwrap.wrap(str(text), width=width) + [""]
    qs = list(questions)
    for i, q in enumerate(qs, 1):
        head = f"{i}. {q['question']} "
        num = f"{q['number']}. " if q.get("status") == "answered" else ""
        lines += textwrap.wrap(f"{head}{num}{q['answer']}", width=width,
                               subsequent_indent="   ")
    if qs:
        lines.append("")
    findings = list(findings)
    shown = findings if limit is None else findings[:limit]
    for f in shown:
        head = f"[{f.severity.upper()}] "
        pad = " " * len(head)
        lines += textwrap.wrap(head + f.title, width=width, subsequent_indent=pad)
        ev = evidence_line(f.evidence or {})
        if ev:
            lines += textwrap.wrap(ev, width=width, initial_indent=pad, subsequent_indent=pad)
    if len(shown) < len(findings):
        lines.append(f"... and {len(findings) - len(shown)} more finding(s) in the report.")
    if not findings:
        lines.append("No findings.")
    return "\n".join(lines)
