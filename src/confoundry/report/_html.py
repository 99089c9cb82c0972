"""One self-contained HTML file from an ``AuditResult``.

Jinja2 with autoescaping renders every user-supplied string (feature names, metadata columns and
levels, model names, error messages) as text; figures are PNG data URIs; there is no script, no
external URL and a Content-Security-Policy that forbids any request, so the file opens offline,
in any browser, without a server.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._result import SEVERITIES, to_jsonable
from ._figures import DPI, plot_result
from ._files import write_text_atomic

#: rows shown per table (the JSON record keeps every row).
MAX_ROWS = 50

# ----------------------------------------------------------------- formatting
#: longest text of one table cell (the JSON record keeps the whole value).
MAX_CELL = 300
#: a table with more columns than this shows its reading columns first, the rest behind a
#: "all N columns" disclosure (see :func:`reading_columns`).
MAX_COLUMNS = 8
#: columns that say which row it is, kept (in the table's order) among the reading columns.
IDENTITY = ("model", "model_a", "model_b", "baseline", "role", "metadata", "probe", "domain",
            "group", "feature", "rule", "slice", "metric", "curve", "attack", "layer", "step",
            "level", "config", "label", "source", "expected", "observed")
#: ranks and directions that say what the row's numbers mean, kept after the identity.
CONTEXT = ("rank", "rank_a", "rank_b", "direction_a", "direction_b", "direction_model",
           "direction_data")
#: the sample size of a row: the first of these a table has.
N_COLUMNS = ("n", "n_test", "n_members", "n_a")
#: estimates, most telling first: the one shown with its interval.
ESTIMATES = ("estimate", "effect", "difference", "gap", "error_rate", "effect_size", "auroc",
             "macro_auroc", "r2", "shape_correlation", "mean_share")
#: what the row concludes.
VERDICT_COLUMNS = ("significant", "violated", "confirmed", "disagree", "leak", "severity",
                   "selected", "testable", "note")


def _scalar(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return "–"
        if f == int(f) and abs(f) < 1e15:
            return str(int(f))
        return f"{f:.4g}"
    try:
        if pd.isna(v):
            return "–"
    except (TypeError, ValueError):
        pass
    return str(v)


def is_interval(v: Any) -> bool:
    """A mapping with ``estimate``, ``ci_low`` and ``ci_high``.

    Examples
    --------
    >>> is_interval({"estimate": 0.5, "ci_low": 0.4, "ci_high": 0.6}), is_interval({"a": 1})
    (True, False)
    """
    return isinstance(v, Mapping) and {"estimate", "ci_low", "ci_high"} <= set(map(str, v))


def interval_text(estimate: Any, low: Any, high: Any) -> str:
    """``"estimate (low to high)"``; ``"estimate"`` alone when the interval is missing.

    Examples
    --------
    >>> interval_text(-0.31416, -0.4, -0.2), interval_text(0.5, None, float("nan"))
    ('-0.3142 (-0.4 to -0.2)', '0.5')
    """
    lo, hi = _scalar(low), _scalar(high)
    if lo == "–" and hi == "–":
        return _scalar(estimate)
    return f"{_scalar(estimate)} ({lo} to {hi})"


def readable(v: Any, *, depth: int = 0) -> str:
    """Any value as text a reader can take in: an estimate with its interval as
    ``"estimate (low to high)"``, other mappings as ``"key: value; ..."`` (nested ones in
    parentheses), sequences comma-separated. Never JSON.

    Examples
    --------
    >>> readable({"estimate": -0.31416, "ci_low": -0.4, "ci_high": -0.2, "n": 50})
    '-0.3142 (-0.4 to -0.2); n: 50'
    >>> readable({"penalty": "l2", "C": 0.01, "grid": [0.1, 1]})
    'penalty: l2; C: 0.01; grid: 0.1, 1'
    >>> readable({"torch": {"deterministic": True, "threads": 2}})
    'torch: (deterministic: yes, threads: 2)'
    """
    if isinstance(v, Mapping):
        items = {str(k): x for k, x in v.items()}
        parts = []
        if is_interval(items):
            parts.append(interval_text(items.pop("estimate"), items.pop("ci_low"),
                                       items.pop("ci_high")))
        parts += [f"{k}: {readable(x, depth=depth + 1)}" for k, x in items.items()]
        if not parts:
            return "–"
        text = ("; " if depth == 0 else ", ").join(parts)
        return text if depth == 0 or len(parts) == 1 and is_interval(v) else f"({text})"
    if isinstance(v, (pd.DataFrame, pd.Series)):
        return readable(to_jsonable(v), depth=depth)
    if isinstance(v, np.ndarray):
        return readable(v.tolist(), depth=depth)
    if isinstance(v, (list, tuple, set, frozenset)):
        items = list(v)
        return ", ".join(readable(x, depth=depth + 1) for x in items) if items else "–"
    return _scalar(v)


def fmt(v: Any) -> str:
    """A cell as short text: 4 significant digits, '–' for missing values, mappings and
    sequences as readable text (:func:`readable`), never JSON.

    Examples
    --------
    >>> fmt(0.123456), fmt(float("nan")), fmt(12), fmt(True)
    ('0.1235', '–', '12', 'yes')
    >>> fmt({"estimate": 0.88, "ci_low": 0.86, "ci_high": 0.9})
    '0.88 (0.86 to 0.9)'
    """
    if isinstance(v, (Mapping, list, tuple, set, frozenset, np.ndarray, pd.Series,
                      pd.DataFrame)):
        text = readable(v)
        return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"
    return _scalar(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_))


def _numeric_columns(frame: pd.DataFrame) -> list[bool]:
    out = []
    for c in range(frame.shape[1]):
        vals = [v for v in frame.iloc[:, c].tolist() if v is not None and not (
            isinstance(v, float) and math.isnan(v))]
        out.append(bool(vals) and all(_is_number(v) for v in vals))
    return out


def reading_columns(frame: pd.DataFrame, *, ci: float = 0.95) -> list[tuple[str, Any]]:
    """The columns a reader needs first, as ``(header, column or (estimate, low, high))``.

    In this order: the row's identity (model, metadata, probe, domain, feature, rule,
    metric, ...), its ``n``, one estimate with its interval merged into one ``"95% CI"`` cell
    (``estimate``/``effect``/``difference``/``gap``/... with ``ci_low``/``ci_high``, or a
    metric with ``<metric>_ci_low``/``<metric>_ci_high``), the ``q_value`` (else the
    ``p_value``) and what the row concludes (``significant``, ``violated``, ``confirmed``,
    ``disagree``, ``testable``, ``note``, ...). Ranks and directions (``rank_a``,
    ``direction_model``, ...) follow the identity. A table with fewer than four such columns
    has no reading view (:func:`table` shows it whole).

    Examples
    --------
    >>> t = pd.DataFrame(columns=["domain", "n", "positives", "auroc", "auroc_ci_low",
    ...                           "auroc_ci_high", "brier", "brier_ci_low", "brier_ci_high",
    ...                           "testable", "note"])
    >>> [h for h, _ in reading_columns(t)]
    ['domain', 'n', 'auroc', '95% CI', 'testable', 'note']
    """
    cols = [str(c) for c in frame.columns]
    present = set(cols)
    groups: list[tuple[str, str, str]] = []
    if "ci_low" in present and "ci_high" in present:
        i = cols.index("ci_low")
        if i > 0 and cols[i - 1] not in ("ci_high",):
            groups.append((cols[i - 1], "ci_low", "ci_high"))
    for lo in cols:
        if not lo.endswith("_ci_low") or lo[:-3] + "high" not in present:
            continue
        hi, stem = lo[:-3] + "high", lo[:-len("_ci_low")]
        # "auroc_ci_low" is the interval of "auroc"; "diff_ci_low" of the column before it
        est = stem if stem in present else cols[cols.index(lo) - 1]
        if not est.startswith("direction") and not est.endswith(("_ci_low", "_ci_high")):
            groups.append((est, lo, hi))  # (the interval of a direction is no estimate)
    chosen: tuple[str, str, str] | None = None
    for name in ESTIMATES:
        chosen = next((g for g in groups if g[0] == name), None)
        if chosen:
            break
    if chosen is None and groups:
        chosen = groups[0]
    out: list[tuple[str, Any]] = [(c, c) for c in cols if c in IDENTITY]
    out += [(c, c) for c in cols if c in CONTEXT]
    n_col = next((c for c in N_COLUMNS if c in present), None)
    if n_col:
        out.append((n_col, n_col))
    estimate = chosen[0] if chosen else next((c for c in ESTIMATES if c in present), None)
    if estimate and estimate not in {c for _, c in out}:
        out.append((estimate, estimate))
        if f"{estimate}_name" in present:
            out.append((f"{estimate}_name", f"{estimate}_name"))
    if chosen:
        out.append((f"{ci:.0%} CI", chosen))
    q = "q_value" if "q_value" in present else "p_value" if "p_value" in present else None
    if q:
        out.append((q, q))
    out += [(c, c) for c in VERDICT_COLUMNS if c in present and c not in {x for _, x in out}]
    return out


def _cells(frame: pd.DataFrame) -> list[list[str]]:
    return [[fmt(v) for v in row] for row in frame.itertuples(index=False, name=None)]


def table(frame: Any, *, max_rows: int = MAX_ROWS, drop: tuple[str, ...] = (),
          ci: float = 0.95) -> dict | None:
    """A DataFrame (or mapping) as ``{"columns", "rows", "note", "n", "num", "full",
    "warnings"}`` for the template.

    A table wider than :data:`MAX_COLUMNS` shows its :func:`reading_columns` (``full`` holds
    every column, for the "all N columns" disclosure). A column (or key) named ``warnings``
    never becomes cells: its messages are returned in ``warnings`` for the collapsed block.
    """
    if frame is None:
        return None
    warned: list[str] = []
    if isinstance(frame, Mapping):
        items = {str(k): v for k, v in frame.items()}
        w = items.pop("warnings", None)
        if w:
            warned += [str(x) for x in (w if isinstance(w, (list, tuple)) else [w])]
        frame = pd.DataFrame({"quantity": list(items),
                              "value": [fmt(v) or "–" for v in items.values()]})
    if not isinstance(frame, pd.DataFrame):
        return None
    if "warnings" in frame.columns:
        for v in frame["warnings"].tolist():
            if isinstance(v, (list, tuple, np.ndarray)):
                warned += [str(x) for x in v]
            elif isinstance(v, str) and v:
                warned.append(v)
    frame = frame.drop(columns=[c for c in (*drop, "warnings") if c in frame.columns])
    frame = frame.loc[:, ~pd.Index(map(str, frame.columns)).duplicated()]
    n = len(frame)
    shown = frame.head(max_rows)
    note = f"first {max_rows} of {n} rows; the JSON record has all of them" if n > max_rows else ""
    full = {"columns": [str(c) for c in frame.columns], "rows": _cells(shown), "note": "",
            "n": n, "num": _numeric_columns(shown), "full": None, "warnings": []}
    out = dict(full, note=note, warnings=sorted(dict.fromkeys(warned)))
    spec = reading_columns(frame, ci=ci) if frame.shape[1] > MAX_COLUMNS else []
    if len(spec) >= 4:
        cols, rows, num = [], [[] for _ in range(len(shown))], []
        numeric = dict(zip(full["columns"], full["num"]))
        for header, what in spec:
            cols.append(header)
            if isinstance(what, str):
                vals = [fmt(v) for v in shown[what].tolist()]
                num.append(numeric.get(what, False))
            else:
                est, lo, hi = what
                vals = [("–" if _scalar(a) == "–" and _scalar(b) == "–"
                         else f"{_scalar(a)} to {_scalar(b)}")
                        for a, b in zip(shown[lo].tolist(), shown[hi].tolist())]
                num.append(False)
            for r, v in zip(rows, vals):
                r.append(v)
        out.update(columns=cols, rows=rows, num=num, full=full)
    return out


# -------------------------------------------------------------------- blocks
def _summary_table(res: Any, ci: float) -> dict | None:
    fn = getattr(res, "summary", None)
    if not callable(fn):
        return None
    try:
        s = fn()
    except Exception:
        return None
    if isinstance(s, pd.DataFrame):
        return table(s, ci=ci)
    if isinstance(s, Mapping):
        return table(dict(s), ci=ci)
    return None


#: the order of a tuning record's entries in the report (the rest follow).
TUNING_KEYS = ("kind", "feature_selection", "search", "search_space", "n_configs", "cv_folds", "scoring", "cv_score",
               "best_params", "internal_tuning", "grid_method", "n_fits", "fit_seconds",
               "n_train", "random_state")


def _tuning_tables(tuning: Mapping[str, Any], *, max_rows: int) -> list[dict[str, Any]]:
    """A baseline's tuning record: one table of its entries, one of its CV results."""
    rec = {str(k): v for k, v in tuning.items()}
    cv = rec.pop("cv_results", None)
    ordered = {k: rec.pop(k) for k in TUNING_KEYS if k in rec}
    ordered.update(rec)
    out = [{"caption": "tuning record", **table(ordered)}]
    if cv is not None:
        frame = cv if isinstance(cv, pd.DataFrame) else None
        if frame is None:
            try:
                frame = pd.DataFrame(cv)
            except (TypeError, ValueError):
                frame = None
        if frame is not None and len(frame):
            t = table(frame, max_rows=max_rows)
            if t is not None:
                out.append({"caption": "mean cross-validated score of every configuration", **t})
    return out


def _result_block(res: Any, heading: str, *, dpi: int, max_rows: int) -> dict[str, Any]:
    block: dict[str, Any] = {"heading": heading, "tables": [], "figures": [], "errors": [],
                             "findings": [], "warnings": [], "empty": ""}
    ci = getattr(res, "ci", 0.95)
    ci = float(ci) if isinstance(ci, (int, float)) and 0 < float(ci) < 1 else 0.95

    def add(caption: str, t: dict | None) -> None:
        if t is None:
            return
        block["warnings"] += t.get("warnings", [])
        if t["rows"] or t["columns"]:
            block["tables"].append({"caption": caption, **t})

    if hasattr(res, "tables") and hasattr(res, "overview"):  # the data description
        add("overview", table(dict(res.overview)))
        for col, t in res.tables.items():
            add(f"label by {col}", table(t, max_rows=max_rows))
    tuning = getattr(res, "tuning", None)
    if not hasattr(res, "to_frame") and isinstance(tuning, Mapping):  # a fitted baseline
        for t in _tuning_tables(tuning, max_rows=max_rows):
            block["warnings"] += t.pop("warnings", [])
            block["tables"].append(t)
    add("summary", _summary_table(res, ci))
    try:
        frame = res.to_frame() if hasattr(res, "to_frame") else None
        add("", table(frame, max_rows=max_rows, ci=ci))
    except Exception as exc:
        block["errors"].append(f"table unavailable: {type(exc).__name__}: {exc}")
    uri, err = plot_result(res, dpi=dpi)
    if uri is not None:
        block["figures"].append({"uri": uri, "alt": f"figure: {heading}"})
    if err is not None:
        block["errors"].append(err)
    try:
        block["findings"] = [f.title for f in res.findings()] if hasattr(res, "findings") else []
    except Exception as exc:
        block["errors"].append(f"findings unavailable: {type(exc).__name__}: {exc}")
    block["warnings"] = sorted(dict.fromkeys(block["warnings"]))
    if not (block["tables"] or block["figures"] or block["errors"] or block["findings"]):
        block["empty"] = (f"Nothing to show: this result ({type(res).__name__}) has no table, "
                          "figure or finding; the JSON record holds what it stores.")
    return block


def _step_blocks(result: Any, step: str, title: str, *, dpi: int,
                 max_rows: int) -> list[dict[str, Any]]:
    res = result.results.get(step)
    if res is None:
        return []
    if isinstance(res, Mapping) and not hasattr(res, "to_frame"):
        return [_result_block(v, f"{title}: {k}", dpi=dpi, max_rows=max_rows)
                for k, v in res.items()]
    blocks = [_result_block(res, title, dpi=dpi, max_rows=max_rows)]
    if isinstance(res, Mapping):  # e.g. the baselines: a mapping with a frame of its own
        for k, v in res.items():
            if (hasattr(v, "to_frame") and hasattr(v, "plot")) or isinstance(
                    getattr(v, "tuning", None), Mapping):
                blocks.append(_result_block(v, f"{title}: {k}", dpi=dpi, max_rows=max_rows))
    return blocks


def _status_label(st: Any) -> str:
    """``ran``, ``ran (from checkpoint)``, ``skipped``, ``failed`` or ``interrupted``."""
    return "ran (from checkpoint)" if st.status == "ran" and getattr(
        st, "from_checkpoint", False) else st.status


def _step_item(result: Any, name: str, title: str, *, dpi: int,
               max_rows: int) -> dict[str, Any]:
    """One step in its section: status, the error of a failed step, its warnings (shown
    collapsed, never in a table) and its result blocks; a step that ran and left nothing to
    show says so."""
    st = result.steps[name]
    blocks = _step_blocks(result, name, title, dpi=dpi, max_rows=max_rows)
    warned = list(dict.fromkeys([*st.warnings, *(w for b in blocks for w in b["warnings"])]))
    empty = ""
    if st.status == "ran" and not blocks:
        empty = "This step ran but left no result to show."
    elif st.status == "skipped" and not blocks:
        from ..audit._findings import NOT_REQUESTED, NOTHING_TO_DO

        question = getattr(st, "question", "") or "its question"
        if str(st.reason).startswith(NOTHING_TO_DO):
            empty = (f"Nothing to do here: {str(st.reason)[len(NOTHING_TO_DO):]}. "
                     f"That answers it: {question}")
        elif st.reason == NOT_REQUESTED:
            empty = f"Left out of this audit (steps=...), so it does not answer: {question}"
        else:
            empty = f"Not run ({st.reason}), so it does not answer: {question}"
    return {"step": name, "title": title, "status": st.status, "label": _status_label(st),
            "reason": st.reason, "warnings": warned, "empty": empty,
            "error": {"type": getattr(st, "error_type", ""),
                      "message": getattr(st, "error_message", "") or st.reason,
                      "where": getattr(st, "where", ""), "detail": st.detail,
                      "question": getattr(st, "question", "")}
            if st.status == "failed" else None,
            "blocks": blocks}


def _unanswered(verdict: Any) -> dict[str, list[dict[str, str]]]:
    """The verdict's unanswered questions by why: failed, interrupted, skipped."""
    out: dict[str, list[dict[str, str]]] = {"failed": [], "interrupted": [], "skipped": []}
    for u in getattr(verdict, "unanswered", ()) or ():
        out.setdefault(u["status"], []).append(dict(u))
    return out


def member_line(rec: Mapping[str, Any]) -> str:
    """One member of a grouped finding as a short line: its domain and severity, then its
    estimate with the CI, q (or p) and n.

    Examples
    --------
    >>> member_line({"domain": "site = b", "severity": "medium", "difference": -0.05,
    ...              "ci_low": -0.08, "ci_high": -0.02, "q_value": 0.01, "n": 120,
    ...              "title": "..."})
    'site = b (medium): difference -0.05 (-0.08 to -0.02); q 0.01; n 120'
    """
    parts = []
    est = next((k for k in ESTIMATES if k in rec), None)
    if est is not None:
        parts.append(f"{est} {interval_text(rec[est], rec.get('ci_low'), rec.get('ci_high'))}")
    for key, label in (("q_value", "q"), ("p_value", "p")):
        if key in rec:
            parts.append(f"{label} {fmt(rec[key])}")
            break
    if "n" in rec:
        parts.append(f"n {fmt(rec['n'])}")
    return f"{rec.get('domain', '?')} ({rec.get('severity', '?')}): " + "; ".join(parts)


def evidence_items(evidence: Any) -> list[dict[str, Any]]:
    """A finding's numbers as ``[{"key", "text"}]`` entries (a list of records as ``list``, one
    readable line per record), an estimate with its ``ci_low``/``ci_high`` merged into one
    entry.

    Examples
    --------
    >>> evidence_items({"effect": -0.62, "ci_low": -0.63, "ci_high": -0.61, "n": 500})
    [{'key': 'effect (CI)', 'text': '-0.62 (-0.63 to -0.61)'}, {'key': 'n', 'text': '500'}]
    """
    if not isinstance(evidence, Mapping):
        return [{"key": "evidence", "text": fmt(evidence)}] if evidence not in (None, "") \
            else []
    ev = {str(k): v for k, v in evidence.items() if str(k) != "warnings"}
    items: list[dict[str, Any]] = []
    if "ci_low" in ev and "ci_high" in ev:
        est = next((k for k in ESTIMATES if k in ev), None)
        if est is not None:
            items.append({"key": f"{est} (CI)",
                          "text": interval_text(ev.pop(est), ev.pop("ci_low"),
                                                ev.pop("ci_high"))})
    for k, v in ev.items():
        if k == "rows" and "n_grouped" in ev and isinstance(v, (list, tuple)):
            # a grouped finding (one kind across domains): one short line per member
            records = [member_line(x) for x in v[:MAX_ROWS] if isinstance(x, Mapping)]
            if len(v) > MAX_ROWS:
                records.append(f"... and {len(v) - MAX_ROWS} more (the JSON record has them)")
            items.append({"key": "domains", "list": records})
            continue
        if k == "n_grouped":
            continue
        if isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v):
            records = [readable(x) for x in v[:MAX_ROWS]]
            if len(v) > MAX_ROWS:
                records.append(f"... and {len(v) - MAX_ROWS} more (the JSON record has them)")
            items.append({"key": k, "list": records})
            continue
        items.append({"key": k, "text": fmt(v)})
    return items


def _questions(result: Any) -> list[dict[str, str]]:
    from ..audit._questions import four_questions

    try:
        return four_questions(result)
    except Exception:  # noqa: BLE001 - the report must render without them
        return []


def _context(result: Any, *, title: str | None, dpi: int, max_rows: int) -> dict[str, Any]:
    verdict = result.verdict()
    findings = result.summary()
    frows = []
    for _, f in findings.iterrows():
        frows.append({"severity": f["severity"], "kind": f["kind"], "tip": fmt(f["tip"]),
                      "title": f["title"], "subject": fmt(f["subject"]),
                      "model": fmt(f["model"]), "evidence": evidence_items(f["evidence"])})
    steps = [{"name": s.name, "status": s.status, "label": _status_label(s),
              "reason": s.reason, "seconds": f"{s.seconds:.2f}",
              "n_warnings": len(s.warnings)} for s in result.steps.values()]
    sections = []
    placed: set[str] = set()
    layout = list(getattr(result, "layout", ()) or ())
    for sec in layout:
        items = []
        for entry in sec.get("steps", ()):
            st, st_title = entry["name"], entry.get("title") or entry["name"]
            if st not in result.steps:
                continue
            placed.add(st)
            items.append(_step_item(result, st, st_title, dpi=dpi, max_rows=max_rows))
        sections.append({"id": str(sec["id"]), "title": str(sec["title"]),
                         "tips": ", ".join(map(str, sec.get("tips", ()))),
                         "intro": str(sec.get("intro", "")), "items": items})
    rest = [st for st in result.steps if st not in placed]
    if rest:  # a step the layout does not place is still shown, never dropped
        sections.append({"id": "other-steps", "title": "Other steps", "tips": "",
                         "intro": "Steps that no section of the layout names.",
                         "items": [_step_item(result, st, st, dpi=dpi, max_rows=max_rows)
                                   for st in rest]})
    extras = []
    for i, sec in enumerate(getattr(result, "sections", ()) or ()):
        blocks = []
        c = sec.content
        if isinstance(c, (pd.DataFrame, Mapping)):
            t = table(c if isinstance(c, pd.DataFrame) else dict(c), max_rows=max_rows)
            if t is not None:
                blocks.append({"heading": sec.title, "tables": [{"caption": "", **t}],
                               "figures": [], "errors": [], "findings": [],
                               "warnings": t["warnings"], "empty": ""})
        elif c is not None:
            blocks.append(_result_block(c, sec.title, dpi=dpi, max_rows=max_rows))
        empty = "" if (sec.intro or sec.figure or blocks) else "This section has no content."
        extras.append({"id": f"section-{i + 1}", "title": sec.title, "intro": sec.intro,
                       "figure": sec.figure, "blocks": blocks, "empty": empty})
    repro = dict(result.reproducibility)
    versions = repro.pop("versions", {})
    seeds = repro.pop("step_seeds", {})
    return {
        "title": title or f"confoundry audit of {result.model_name}",
        "model_name": result.model_name, "task": result.task,
        "verdict": to_jsonable(verdict), "severities": SEVERITIES, "findings": frows, "steps": steps,
        "questions": _questions(result),
        "unanswered": _unanswered(verdict),
        "sections": sections, "extras": extras, "notes": list(result.notes),
        "versions": table(versions), "seeds": table(seeds),
        "repro": table({k: v for k, v in repro.items()}),
        "options": table(dict(result.options)),
        "overview": dict(result.data),
        "summary_figure": plot_result(result, dpi=dpi)[0],
    }


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader

    return Environment(loader=PackageLoader("confoundry.report", "templates"), autoescape=True,
                       trim_blocks=True, lstrip_blocks=True)


def render_html(result: Any, *, title: str | None = None, dpi: int = DPI,
                max_rows: int = MAX_ROWS) -> str:
    """Render an :class:`~confoundry.AuditResult` as one self-contained HTML document.

    Parameters
    ----------
    result : AuditResult
    title : str, optional
        Page title (default "confoundry audit of <model>").
    dpi : int
        Resolution of the inlined PNG figures.
    max_rows : int
        Rows shown per table; the JSON record (``result.to_json()``) keeps every row.

    Returns
    -------
    str
        The HTML text: no script, no external URL, figures as data URIs, every user string
        escaped.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> import confoundry as cf
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.normal(size=(100, 2)), columns=["<b>a</b>", "b"])
    >>> y = (X.iloc[:, 0] > 0).astype(int).to_numpy()
    >>> res = cf.Audit(LogisticRegression().fit(X, y), X, y, verbose=False, n_boot=20,
    ...                random_state=0, steps=["data", "performance"]).run()
    >>> page = render_html(res)
    >>> "<b>a</b>" in page, "http://" in page or "https://" in page
    (False, False)
    """
    for attr in ("steps", "results", "summary", "verdict", "model_name"):
        if not hasattr(result, attr):
            raise TypeError(f"result has type {type(result).__name__}; expected an AuditResult "
                            "(from confoundry.Audit(...).run()).")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 20 <= dpi <= 300:
        raise ValueError(f"dpi={dpi!r} is not valid; expected an integer in [20, 300].")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows={max_rows!r} is not valid; expected an integer >= 1.")
    ctx = _context(result, title=title, dpi=dpi, max_rows=max_rows)
    return _environment().get_template("report.html").render(**ctx)


def write_html(result: Any, path: Any, **kwargs: Any) -> str:
    """Render ``result`` and write it to ``path`` (UTF-8); returns the path as a string.

    The page is written to a temporary file in the same folder and renamed into place, so the
    file at ``path`` is always a whole report: a render or a write that fails (or a process
    killed while writing) leaves an older report there intact.

    Parameters
    ----------
    result : AuditResult
    path : str or path-like
        Where to write the page (its folder must exist).
    **kwargs
        Passed to :func:`render_html` (``title``, ``dpi``, ``max_rows``).

    Returns
    -------
    str
        ``path``, as a string.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> import confoundry as cf
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2)); y = (X[:, 0] > 0).astype(int)
    >>> res = cf.Audit(LogisticRegression().fit(X, y), X, y, verbose=False, n_boot=20,
    ...                random_state=0, steps=["data", "performance"]).run()
    >>> out = write_html(res, os.path.join(tempfile.mkdtemp(), "audit.html"), title="Demo")
    >>> os.path.basename(out), open(out, encoding="utf-8").read().startswith("<!DOCTYPE html>")
    ('audit.html', True)
    """
    text = render_html(result, **kwargs)
    write_text_atomic(path, text)
    return str(path)
