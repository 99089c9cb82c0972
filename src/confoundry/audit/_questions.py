"""The four questions of an audit, each answered in one sentence with one number.

1. Is deep learning even better here? (the model against the best glass-box baseline on the
   task's headline metric, a paired bootstrap difference with its CI)
2. What did it learn, and does a glass-box model learn the same? (domain expectations it
   contradicts; how its attributions rank the features against a glass-box model's)
3. Did it learn the site or the batch instead of the biology? (the strongest conditional
   probe: partial R² of the outputs on a metadata column beyond the label, with its q-value)
4. Where does it fail? (failing slices confirmed on held-out rows; the domain with the worst
   headline metric)

Each answer is read from an :class:`~confoundry.AuditResult` as it is, for any subset of
steps: a question whose steps did not run (skipped, failed, interrupted, left out) is
*unanswered*, and its sentence says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._result import SEVERITIES
from ..stats import HEADLINE_METRIC, HIGHER_IS_BETTER, LABELS

#: the four questions, in the order of the README.
QUESTIONS = (
    "Is deep learning even better here?",
    "What did it learn, and does a glass-box model learn the same?",
    "Did it learn the site or the batch instead of the biology?",
    "Where does it fail?",
)

#: finding kinds behind each question (their worst severity is the question's severity).
KINDS: tuple[frozenset[str], ...] = (
    frozenset({"baseline_outperforms", "reference_outperforms", "untuned_baseline",
               "tuning_at_boundary", "degenerate_model", "no_signal"}),
    frozenset({"expectation_violation", "attribution_disagreement", "sanity_check_failed",
               "learned_opposite_of_truth"}),
    frozenset({"confounded_output", "confounded_embedding", "confounded_errors",
               "confounded_dataset", "metadata_predicts_output", "metadata_is_input",
               "attribution_by_group"}),
    frozenset({"domain_gap", "failing_slice", "metadata_predicts_error", "too_small_to_judge",
               "attribution_contrast", "group_generalisation_gap", "dangerous_triage"}),
)

#: the audit steps behind each question (a failed one makes its finding count here).
STEPS: tuple[tuple[str, ...], ...] = (
    ("comparison", "baselines", "performance"),
    ("expectations", "agreement", "shadow_glassbox", "attributions", "sanity_check"),
    ("probes",),
    ("slices", "domains", "leave_one_group_out"),
)

_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def four_questions(result: Any) -> list[dict[str, str]]:
    """The four questions of the audit, each with a one-sentence answer and one number.

    Parameters
    ----------
    result : AuditResult
        From :meth:`confoundry.Audit.run`, with any subset of its steps.

    Returns
    -------
    list of dict
        Four dicts, in the order of :data:`QUESTIONS`, with the keys ``question``;
        ``answer`` (one sentence; for an unanswered question, why: the step that was skipped,
        failed or left out); ``number`` (short text: a difference with its CI, a count, an
        effect size with its q-value; ``"–"`` when unanswered); ``severity`` (the worst
        severity of the findings behind the question, ``"info"`` when there are none);
        ``step`` (the anchor of the report's step to read more, ``"step-<name>"``); and
        ``status`` (``"answered"`` or ``"unanswered"``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> import confoundry as cf
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    >>> site = rng.integers(0, 2, 200)
    >>> y = (X["a"] + rng.normal(size=200) > 0).astype(int).to_numpy()
    >>> res = cf.Audit(LogisticRegression().fit(X, y), X, y,
    ...                metadata=pd.DataFrame({"site": site}), n_boot=20, n_permutations=50,
    ...                random_state=0, verbose=False,
    ...                steps=["data", "performance", "probes"]).run()
    >>> qs = four_questions(res)
    >>> [q["status"] for q in qs]
    ['unanswered', 'unanswered', 'answered', 'unanswered']
    >>> qs[0]["answer"]
    "Not asked: step 'comparison' was left out (steps=...)."
    >>> qs[2]["step"], qs[2]["number"].startswith("partial R²")
    ('step-probes', True)
    """
    for attr in ("results", "steps", "findings", "model_name"):
        if not hasattr(result, attr):
            raise TypeError(f"result has type {type(result).__name__}; expected an AuditResult "
                            "(from confoundry.Audit(...).run()).")
    try:
        findings = list(result.findings())
    except Exception:  # noqa: BLE001 - the questions must never break the report
        findings = []
    answers: list[Callable[[Any], dict[str, str]]] = [_better, _learned, _confounded, _fails]
    out = []
    for i, fn in enumerate(answers):
        try:
            a = fn(result)
        except Exception as exc:  # noqa: BLE001 - one unreadable result must not hide the rest
            a = _unanswered(result, STEPS[i][0],
                            f"its result could not be read ({type(exc).__name__}: {exc})")
        a["severity"] = _worst(findings, i)
        out.append({"question": QUESTIONS[i], "answer": a["answer"], "number": a["number"],
                    "severity": a["severity"], "step": a["step"], "status": a["status"]})
    return out


# ------------------------------------------------------------------ helpers
def _worst(findings: list[Any], i: int) -> str:
    """Worst severity of the findings behind question ``i`` ("info" when none)."""
    worst = "info"
    for f in findings:
        kind = getattr(f, "kind", "")
        if kind == "step_failed":
            mine = getattr(f, "subject", "") in STEPS[i]
        elif kind == "baseline_outperforms":  # in one domain it is about where it fails
            overall = getattr(f, "domain", None) in (None, "overall")
            mine = (i == 0) if overall else (i == 3)
        else:
            mine = kind in KINDS[i]
        sev = getattr(f, "severity", "info")
        if mine and _RANK.get(sev, 3) < _RANK[worst]:
            worst = sev
    return worst


def _why(result: Any, step: str) -> str:
    """Why ``step`` left no result, as a sentence fragment."""
    from ._findings import NOT_REQUESTED

    st = result.steps.get(step)
    if st is None:
        return f"step '{step}' is not part of this audit"
    if st.status == "failed":
        return f"step '{step}' failed ({st.reason})"
    if st.status == "interrupted":
        return f"step '{step}' was interrupted before it finished"
    if st.status == "skipped" and st.reason == NOT_REQUESTED:
        return f"step '{step}' was left out (steps=...)"
    if st.status == "skipped":
        return f"step '{step}' was skipped: {st.reason}"
    return f"step '{step}' ran but left no result"


def _unanswered(result: Any, step: str, why: str | None = None) -> dict[str, str]:
    from ._findings import NOT_REQUESTED

    st = result.steps.get(step)
    asked = not (st is not None and st.status == "skipped" and st.reason == NOT_REQUESTED)
    text = why if why is not None else _why(result, step)
    lead = "Unanswered" if asked or why is not None else "Not asked"
    return {"answer": f"{lead}: {_sentence(text)}", "number": "–", "step": f"step-{step}",
            "status": "unanswered"}


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _result(result: Any, step: str) -> Any:
    st = result.steps.get(step)
    if st is not None and st.status != "ran":
        return None
    return result.results.get(step)


def _f(v: Any, digits: int = 3) -> str:
    """A number for a sentence: ``digits`` decimals, '–' when missing."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "–"
    return f"{x:.{digits}f}" if np.isfinite(x) else "–"


def _q(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "q = –"
    if not np.isfinite(x):
        return "q = –"
    return "q < 0.001" if x < 0.001 else f"q = {x:.2g}"


def _names(items: list[str], k: int = 3) -> str:
    shown = ", ".join(f"'{x}'" for x in items[:k])
    return shown + (f" and {len(items) - k} more" if len(items) > k else "")


def _ci_pct(level: Any) -> str:
    try:
        return f"{float(level):.0%}"
    except (TypeError, ValueError):
        return "95%"


# ------------------------------------------------- 1. is deep learning better?
def _better(result: Any) -> dict[str, str]:
    cmp = _result(result, "comparison")
    if cmp is None:
        for step in ("comparison", "baselines"):
            st = result.steps.get(step)
            if st is not None and st.status in ("failed", "interrupted"):
                return _unanswered(result, step)
        st = result.steps.get("comparison")
        if st is not None and st.status == "skipped" and "baselines" in st.reason:
            return _unanswered(result, "baselines")
        return _unanswered(result, "comparison")
    ref = str(cmp.reference)
    glass = [m for m, g in dict(cmp.glass_box).items() if g and m != ref]
    metric = HEADLINE_METRIC.get(cmp.task, "auroc")
    label = LABELS.get(metric, metric)
    if not glass or cmp.glass_box.get(ref, False):
        return _unanswered(result, "comparison", "no glass-box baseline was compared with the "
                           "model")
    t = cmp.table[cmp.table["metric"] == metric].set_index("model")["estimate"]
    hib = HIGHER_IS_BETTER.get(metric, True)
    scored = [m for m in glass if m in t.index and np.isfinite(float(t[m]))]
    if not scored or ref not in t.index:
        return _unanswered(result, "comparison", f"the {label} of the models is missing")
    best = (max if hib else min)(scored, key=lambda m: float(t[m]))
    d = cmp.differences
    row = d[(d["model_a"] == best) & (d["model_b"] == ref) & (d["metric"] == metric)]
    if row.empty:
        return _unanswered(result, "comparison", f"no paired difference of {ref} and {best}")
    r = row.iloc[0]
    diff, lo, hi = -float(r["difference"]), -float(r["ci_high"]), -float(r["ci_low"])
    q = float(r["q_value"]) if "q_value" in r else float(r["p_value"])
    sig = q < float(cmp.fdr) and not (lo <= 0 <= hi)
    dl_better = (diff > 0) == hib
    e_ref, e_best = _f(t[ref]), _f(t[best])
    pct = _ci_pct(cmp.ci)
    if sig and dl_better:
        answer = (f"Yes: {ref} beats the best glass-box baseline, {best}, on {label} "
                  f"({e_ref} vs {e_best}; {ref} minus {best}, {pct} CI {lo:+.3f} to "
                  f"{hi:+.3f}).")
    elif sig:
        answer = (f"No: the glass-box {best} is better than {ref} on {label} ({e_best} vs "
                  f"{e_ref}); the simpler model does the job.")
    else:
        answer = (f"Not measurably: {ref} and the best glass-box baseline, {best}, do not "
                  f"differ significantly on {label} ({e_ref} vs {e_best}; {ref} minus {best}, "
                  f"{pct} CI {lo:+.3f} to {hi:+.3f}, {_q(q)}).")
    number = f"{diff:+.3f} {label} ({pct} CI {lo:+.3f} to {hi:+.3f})"
    return {"answer": answer, "number": number, "step": "step-comparison",
            "status": "answered"}


# -------------------------------------------------------- 2. what did it learn?
def _rank_correlations(result: Any) -> list[tuple[str, dict[str, float]]]:
    agr = _result(result, "agreement")
    out = []
    if isinstance(agr, Mapping):
        for key, a in agr.items():
            m = getattr(a, "metrics", None)
            if not isinstance(m, pd.DataFrame) or "metric" not in m:
                continue
            hit = m[m["metric"] == "rank_correlation"]
            if hit.empty:
                continue
            name = str(key).split(" vs ", 1)[-1]
            h = hit.iloc[0]
            out.append((name, {"estimate": float(h["estimate"]), "ci_low": float(h["ci_low"]),
                               "ci_high": float(h["ci_high"])}))
    return out


def _learned(result: Any) -> dict[str, str]:
    exp = _result(result, "expectations")
    rhos = _rank_correlations(result)
    ref = str(result.model_name)
    agree = ""
    rho_num = ""
    if rhos:
        name, s = max(rhos, key=lambda x: x[1]["estimate"] if np.isfinite(x[1]["estimate"])
                      else -np.inf)
        how = ("much as" if s["estimate"] >= 0.7 else "partly as" if s["estimate"] >= 0.4
               else "differently from how")
        agree = (f"its attributions rank the features {how} the glass-box {name}'s do "
                 f"(rank correlation {_f(s['estimate'], 2)}, 95% CI {_f(s['ci_low'], 2)} to "
                 f"{_f(s['ci_high'], 2)})")
        rho_num = (f"rank correlation {_f(s['estimate'], 2)} ({_f(s['ci_low'], 2)} to "
                   f"{_f(s['ci_high'], 2)})")
    table = getattr(exp, "table", None)
    if isinstance(table, pd.DataFrame) and len(table) and "violated" in table:
        mine = table[table["model"].astype(str) == ref]
        if mine.empty:
            mine = table
        feats = list(dict.fromkeys(mine["feature"].astype(str)))
        bad = list(dict.fromkeys(mine.loc[mine["violated"].astype(bool), "feature"]
                                 .astype(str)))
        others = table[(table["model"].astype(str) != ref) & table["violated"].astype(bool)]
        also = sorted(set(others["feature"].astype(str)) & set(bad))
        if bad:
            first = (f"{ref} contradicts {len(bad)} of {len(feats)} domain expectation"
                     f"{'s' if len(feats) > 1 else ''} ({_names(bad)})")
            if also:
                first += (", and so do glass-box models trained on the same data: the data "
                          "teach it" if len(also) == len(bad) else
                          f"; glass-box models contradict {_names(also)} too")
        else:
            first = (f"{ref} follows all {len(feats)} domain expectation"
                     f"{'s' if len(feats) > 1 else ''} it was given")
        answer = _sentence(first + ("; " + agree if agree else ""))
        number = f"{len(bad)} of {len(feats)} expectations violated"
        return {"answer": answer, "number": number, "step": "step-expectations",
                "status": "answered"}
    if rhos:
        answer = _sentence(agree[0].upper() + agree[1:] + " (no domain expectation was "
                           "checked)")
        return {"answer": answer, "number": rho_num, "step": "step-agreement",
                "status": "answered"}
    for step in ("expectations", "agreement"):
        st = result.steps.get(step)
        if st is not None and st.status in ("failed", "interrupted"):
            return _unanswered(result, step)
    return _unanswered(result, "expectations" if "expectations" in result.steps
                       else "agreement")


# ----------------------------------------------- 3. did it learn the site?
def _confounded(result: Any) -> dict[str, str]:
    pr = _result(result, "probes")
    table = getattr(pr, "table", None)
    if not isinstance(table, pd.DataFrame) or table.empty:
        return _unanswered(result, "probes")
    cond = table[table["probe"].isin(["output_conditional", "embedding_conditional"])]
    cond = cond[pd.to_numeric(cond["effect_size"], errors="coerce").notna()]
    if cond.empty:
        return _unanswered(result, "probes", "the probes ran without the model's outputs, so "
                           "they cannot tell what the model learned")
    r = cond.loc[pd.to_numeric(cond["effect_size"]).idxmax()]
    col = str(r["metadata"])
    es = float(r["effect_size"])
    name = str(r.get("effect_size_name", "partial R²")) or "partial R²"
    what = ("outputs" if r["probe"] == "output_conditional"
            else f"layer '{getattr(pr, 'layer', '')}' activations")
    note = str(r.get("note", "") or "")
    qtxt = _q(r["q_value"])
    n = int(r["n"]) if pd.notna(r.get("n")) else 0
    if bool(r["significant"]) and "model input" in note:
        answer = (f"'{col}' is also a model input, so its {what} depend on it beyond the label "
                  f"as expected ({name} {_f(es)}, {qtxt}, n = {n}); the probe cannot tell "
                  "confounding from use here.")
    elif bool(r["significant"]):
        answer = (f"Possibly: its {what} depend on '{col}' beyond the true label ({name} "
                  f"{_f(es)}, {qtxt}, n = {n}); an association, not a proof of cause.")
    else:
        answer = (f"No measurable dependence on the metadata beyond the label: the strongest, "
                  f"'{col}', has {name} {_f(es)} ({qtxt}, n = {n}).")
    return {"answer": answer, "number": f"{name} {_f(es)}, {qtxt}", "step": "step-probes",
            "status": "answered"}


# --------------------------------------------------------- 4. where does it fail?
def _worst_domain(result: Any) -> dict[str, Any] | None:
    doms = _result(result, "domains")
    if doms is None:
        return None
    items = doms.items() if isinstance(doms, Mapping) else [("", doms)]
    cands: list[dict[str, Any]] = []
    for _, d in items:
        frame = getattr(d, "by_domain", None)
        if not isinstance(frame, pd.DataFrame):
            try:
                frame = d.to_frame()
            except Exception:  # noqa: BLE001
                continue
        metric = HEADLINE_METRIC.get(getattr(d, "task", ""), "auroc")
        if metric not in frame:
            metrics = [m for m in getattr(d, "metrics", ()) if m in frame]
            if not metrics:
                continue
            metric = metrics[0]
        f = frame[frame["domain"].astype(str) != "overall"]
        if "testable" in f:
            f = f[f["testable"].astype(bool)]  # a domain below the floor cannot be the worst
        vals = pd.to_numeric(f[metric], errors="coerce")
        f, vals = f[vals.notna()], vals[vals.notna()]
        if f.empty:
            continue
        hib = HIGHER_IS_BETTER.get(metric, True)
        r = f.loc[vals.idxmin() if hib else vals.idxmax()]
        ov = getattr(d, "overall", None)
        overall = (float(ov[metric].iloc[0]) if isinstance(ov, pd.DataFrame) and metric in ov
                   and len(ov) else np.nan)
        cands.append({"domain": str(r["domain"]), "metric": metric, "value": float(r[metric]),
                      "ci_low": float(r.get(f"{metric}_ci_low", np.nan)),
                      "ci_high": float(r.get(f"{metric}_ci_high", np.nan)),
                      "n": int(r["n"]), "overall": overall, "hib": hib,
                      "ci": getattr(d, "ci", 0.95)})
    if not cands:
        return None
    same = [c for c in cands if c["metric"] == cands[0]["metric"]]
    return (min if same[0]["hib"] else max)(same, key=lambda c: c["value"])


def _fails(result: Any) -> dict[str, str]:
    sl = _result(result, "slices")
    dom = _worst_domain(result)
    dom_txt = ""
    if dom is not None:
        label = LABELS.get(dom["metric"], dom["metric"])
        dom_txt = (f"its {'lowest' if dom['hib'] else 'worst'} {label} is in '{dom['domain']}' "
                   f"({_f(dom['value'])}, {_ci_pct(dom['ci'])} CI {_f(dom['ci_low'])} to "
                   f"{_f(dom['ci_high'])}, n = {dom['n']}"
                   + (f", against {_f(dom['overall'])} overall)" if np.isfinite(dom["overall"])
                      else ")"))
    table = getattr(sl, "table", None)
    if isinstance(table, pd.DataFrame) and "confirmed" in table:
        conf = table[table["confirmed"].astype(bool)]
        k = len(conf)
        err = getattr(sl, "error", "misclassification")
        what = "error rate" if err == "misclassification" else f"mean {err} error"
        overall = _f(getattr(sl, "overall_error", np.nan))
        if k:
            w = conf.loc[pd.to_numeric(conf["error_rate"]).idxmax()]
            first = (f"{k} failing slice{'s' if k > 1 else ''} confirmed on held-out rows; "
                     f"the worst, '{w['rule']}', has {what} {_f(w['error_rate'])} "
                     f"(95% CI {_f(w['ci_low'])} to {_f(w['ci_high'])}, n = {int(w['n'])}) "
                     f"against {overall} overall")
        else:
            first = (f"No failing slice was confirmed on held-out rows ({what} {overall} "
                     "overall)")
        answer = _sentence(first + ("; " + dom_txt if dom_txt else ""))
        return {"answer": answer, "number": f"{k} failing slice{'' if k == 1 else 's'}",
                "step": "step-slices", "status": "answered"}
    if dom is not None:
        label = LABELS.get(dom["metric"], dom["metric"])
        answer = _sentence(dom_txt[0].upper() + dom_txt[1:])
        return {"answer": answer, "number": f"{label} {_f(dom['value'])} in {dom['domain']}",
                "step": "step-domains", "status": "answered"}
    for step in ("slices", "domains"):
        st = result.steps.get(step)
        if st is not None and st.status in ("failed", "interrupted"):
            return _unanswered(result, step)
    return _unanswered(result, "slices" if "slices" in result.steps else "domains")
