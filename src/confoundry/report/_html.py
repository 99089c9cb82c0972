"""One self-contained HTML file from an ``AuditResult``.

Jinja2 with autoescaping renders every user-supplied string (feature names, metadata columns and
levels, model names, error messages) as text; figures are PNG data URIs; there is no script, no
external URL and a Content-Security-Policy that forbids any request, so the file opens offline,
in any browser, without a server.
"""

from __future__ import annotations

import json
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
def fmt(v: Any) -> str:
    """A cell as short text: 4 significant digits, '–' for missing values.

    Examples
    --------
    >>> fmt(0.123456), fmt(float("nan")), fmt(12), fmt(True)
    ('0.1235', '–', '12', 'yes')
    """
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
    if isinstance(v, (Mapping, list, tuple, np.ndarray)):
        text = json.dumps(to_jsonable(v), allow_nan=False)
        return text if len(text) <= 200 else text[:197] + "..."
    try:
        if pd.isna(v):
            return "–"
    except (TypeError, ValueError):
        pass
    return str(v)


def table(frame: Any, *, max_rows: int = MAX_ROWS, drop: tuple[str, ...] = ()) -> dict | None:
    """A DataFrame (or mapping) as ``{"columns", "rows", "note"}`` for the template."""
    if frame is None:
        return None
    if isinstance(frame, Mapping):
        frame = pd.DataFrame({"quantity": [str(k) for k in frame],
                              "value": [to_jsonable(v) for v in frame.values()]})
    if not isinstance(frame, pd.DataFrame):
        return None
    frame = frame.drop(columns=[c for c in drop if c in frame.columns])
    n = len(frame)
    shown = frame.head(max_rows)
    rows = [[fmt(v) for v in row] for row in shown.itertuples(index=False, name=None)]
    note = f"first {max_rows} of {n} rows; the JSON record has all of them" if n > max_rows else ""
    return {"columns": [str(c) for c in frame.columns], "rows": rows, "note": note, "n": n}


# -------------------------------------------------------------------- blocks
def _summary_table(res: Any) -> dict | None:
    fn = getattr(res, "summary", None)
    if not callable(fn):
        return None
    try:
        s = fn()
    except Exception:
        return None
    if isinstance(s, pd.DataFrame):
        return table(s)
    if isinstance(s, Mapping):
        return table(dict(s))
    return None


def _result_block(res: Any, heading: str, *, dpi: int, max_rows: int) -> dict[str, Any]:
    block: dict[str, Any] = {"heading": heading, "tables": [], "figures": [], "errors": [],
                             "findings": []}
    if hasattr(res, "tables") and hasattr(res, "overview"):  # the data description
        block["tables"].append({"caption": "overview", **table(dict(res.overview))})
        for col, t in res.tables.items():
            block["tables"].append({"caption": f"label by {col}", **table(t, max_rows=max_rows)})
    summ = _summary_table(res)
    if summ is not None:
        block["tables"].append({"caption": "summary", **summ})
    try:
        frame = res.to_frame() if hasattr(res, "to_frame") else None
        t = table(frame, max_rows=max_rows)
        if t is not None:
            block["tables"].append({"caption": "", **t})
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
    if isinstance(res, Mapping):  # e.g. Baselines: a mapping with a frame of its own
        for k, v in res.items():
            if hasattr(v, "to_frame") and hasattr(v, "plot"):
                blocks.append(_result_block(v, f"{title}: {k}", dpi=dpi, max_rows=max_rows))
    return blocks


def _status_label(st: Any) -> str:
    """``ran``, ``ran (from checkpoint)``, ``skipped``, ``failed`` or ``interrupted``."""
    return "ran (from checkpoint)" if st.status == "ran" and getattr(
        st, "from_checkpoint", False) else st.status


def _step_item(result: Any, name: str, title: str, *, dpi: int,
               max_rows: int) -> dict[str, Any]:
    """One step in its section: status, the error of a failed step, its warnings (shown
    collapsed, never in a table) and its result blocks."""
    st = result.steps[name]
    return {"step": name, "title": title, "status": st.status, "label": _status_label(st),
            "reason": st.reason, "warnings": list(st.warnings),
            "error": {"type": getattr(st, "error_type", ""),
                      "message": getattr(st, "error_message", "") or st.reason,
                      "where": getattr(st, "where", ""), "detail": st.detail,
                      "question": getattr(st, "question", "")}
            if st.status == "failed" else None,
            "blocks": _step_blocks(result, name, title, dpi=dpi, max_rows=max_rows)}


def _unanswered(verdict: Any) -> dict[str, list[dict[str, str]]]:
    """The verdict's unanswered questions by why: failed, interrupted, skipped."""
    out: dict[str, list[dict[str, str]]] = {"failed": [], "interrupted": [], "skipped": []}
    for u in getattr(verdict, "unanswered", ()) or ():
        out.setdefault(u["status"], []).append(dict(u))
    return out


def _context(result: Any, *, title: str | None, dpi: int, max_rows: int) -> dict[str, Any]:
    verdict = result.verdict()
    findings = result.summary()
    frows = []
    for _, f in findings.iterrows():
        frows.append({"severity": f["severity"], "kind": f["kind"], "tip": fmt(f["tip"]),
                      "title": f["title"], "subject": fmt(f["subject"]),
                      "model": fmt(f["model"]),
                      "evidence": json.dumps(to_jsonable(f["evidence"]), allow_nan=False,
                                             indent=None)})
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
                               "figures": [], "errors": [], "findings": []})
        elif c is not None:
            blocks.append(_result_block(c, sec.title, dpi=dpi, max_rows=max_rows))
        extras.append({"id": f"section-{i + 1}", "title": sec.title, "intro": sec.intro,
                       "figure": sec.figure, "blocks": blocks})
    repro = dict(result.reproducibility)
    versions = repro.pop("versions", {})
    seeds = repro.pop("step_seeds", {})
    return {
        "title": title or f"confoundry audit of {result.model_name}",
        "model_name": result.model_name, "task": result.task,
        "verdict": to_jsonable(verdict), "severities": SEVERITIES, "findings": frows, "steps": steps,
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
