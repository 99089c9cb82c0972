"""Verdicts, sentences and tables of :func:`~confoundry.confounder_pathways`: the last phase,
which reads the records of the earlier ones (``_pathways``) and builds the
:class:`PathwayResult`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..stats import DEFAULT_CI, bh_adjust, difference_summary, percentile_ci
from ._pathway_result import BASELINE_COLUMNS, FEATURE_COLUMNS, SUMMARY_COLUMNS, PathwayResult

#: metadata that X predicts at least this well (cross-validated) is derived from the inputs.
DERIVED_THRESHOLD = 0.95
#: features a sentence names by name (the largest shares; the feature table has every one).
NAMED_FEATURES = 4
#: the remaining effect is "direct" when significant and at least this share of the total.
DIRECT_SHARE = 0.5


def summarise(st: Any, tot: Any, traces: dict[str, Any], uses: Any,
              derived: dict[str, tuple[float, str]], traced: list[str], explained: set[str],
              top_k: int, fdr: float, n_permutations: int, n_boot: int,
              random_state: Any) -> PathwayResult:
    """The :class:`PathwayResult` of the set-up ``st``, the totals ``tot`` and the ``traces``
    of ``_pathways``: one summary row per probed column with its verdict and sentence, one
    row per traced column x feature, one per traced column x baseline."""
    feat_rows: list[dict[str, Any]] = []
    base_rows: list[dict[str, Any]] = []
    summary = []
    q_rem = _bh({c: tr.remaining_p for c, tr in traces.items()})
    names = list(st.baselines)
    for c in st.probed:
        col = tot.columns[c]
        eff, boot = tot.effect[c], tot.boot[c]
        lo, hi = percentile_ci(boot[:, 0], DEFAULT_CI)
        row: dict[str, Any] = {k: None for k in SUMMARY_COLUMNS}
        row.update(metadata=c, metadata_kind=col.kind, traced=c in traced,
                   total_effect=float(eff[0]), total_ci_low=lo, total_ci_high=hi,
                   p_value=float(tot.p[c][0]), q_value=tot.q[c], significant=tot.sig[c],
                   effect_given_label=tot.effect0.get(c, np.nan),
                   p_given_label=tot.p0.get(c, np.nan), q_given_label=tot.q0.get(c, np.nan),
                   n=st.n, n_features=len(st.features), through=[], top_k_features=[])
        more = []
        if c in traced:
            for b, name in enumerate(names, start=1):
                d = boot[:, 0] - boot[:, b]
                ds = difference_summary(d, DEFAULT_CI)
                blo, bhi = percentile_ci(boot[:, b], DEFAULT_CI)
                base_rows.append({
                    "metadata": c, "baseline": name, "effect_model": float(eff[0]),
                    "effect_baseline": float(eff[b]), "baseline_ci_low": blo,
                    "baseline_ci_high": bhi, "p_baseline": float(tot.p[c][b]),
                    "q_baseline": float(tot.q_baselines[c][b - 1]),
                    "difference": float(eff[0] - eff[b]), "ci_low": ds["ci_low"],
                    "ci_high": ds["ci_high"], "p_difference": ds["p_value"],
                    "model_more": bool(ds["ci_low"] > 0), "n": st.n, "n_boot": n_boot})
                more.append(bool(ds["ci_low"] > 0))
        row["more_than_baselines"] = (all(more) if more else None)
        if c in derived:
            score, sname = derived[c]
            row.update(input_predictability=score, input_predictability_name=sname,
                       derived_from_inputs=bool(np.isfinite(score)
                                                and score >= DERIVED_THRESHOLD))
        tr = traces.get(c)
        if tr is not None:
            feat_rows += _feature_rows(st, c, tr, uses, top_k, fdr)
            row.update(top_k_features=[st.features[j] for j in tr.top],
                       top_k_share=tr.top_share, top_k_ci_low=tr.top_ci[0],
                       top_k_ci_high=tr.top_ci[1], remaining_share=tr.remaining,
                       remaining_ci_low=tr.remaining_ci[0], remaining_ci_high=tr.remaining_ci[1],
                       remaining_p=tr.remaining_p, remaining_q=q_rem[c])
        row["verdict"], row["through"] = _verdict(st, c, row, tr, traced, explained, fdr)
        row["text"] = _text(st, c, row, tr, base_rows, fdr)
        summary.append(row)
    params = {"features": list(st.features), "columns": st.columns, "top_k": top_k,
              "n_permutations": n_permutations, "n_boot": n_boot, "fdr": fdr, "ci": DEFAULT_CI,
              "adjust_for": list(st.adjust), "baselines": names,
              "random_state": random_state if isinstance(random_state, (int, type(None)))
              else str(random_state),
              "removal": {"categorical": "quantile mapping within label x level cells",
                          "continuous": "regression on the column's ranks within label cells"},
              "uses_method": None if uses is None else uses["method"],
              "uses_n": None if uses is None else uses["n"],
              "test": st.cond.test_name(), "derived_threshold": DERIVED_THRESHOLD,
              "direct_share": DIRECT_SHARE}
    return PathwayResult(
        pd.DataFrame(summary, columns=SUMMARY_COLUMNS),
        pd.DataFrame(feat_rows, columns=FEATURE_COLUMNS),
        pd.DataFrame(base_rows, columns=BASELINE_COLUMNS),
        st.data.task, fdr, n_permutations, n_boot, top_k, st.adjust, st.adapter.name, params)


def _bh(p: dict[str, float]) -> dict[str, float]:
    if not p:
        return {}
    q = bh_adjust(np.array(list(p.values()), dtype=float))
    return dict(zip(p, map(float, q)))


def _feature_rows(st: Any, c: str, tr: Any, uses: Any, top_k: int,
                  fdr: float) -> list[dict[str, Any]]:
    F = len(st.features)
    q = bh_adjust(tr.carries_p.astype(float))
    order = np.argsort(-np.nan_to_num(tr.share, nan=-np.inf), kind="stable")
    rank = np.empty(F, dtype=int)
    rank[order] = np.arange(1, F + 1)
    u = uses["share"] if uses is not None else np.full(F, np.nan)
    uci = uses["ci"] if uses is not None else np.full((F, 2), np.nan)
    return [{
        "metadata": c, "feature": f, "rank": int(rank[j]), "in_top_k": j in tr.top,
        "mediated_share": float(tr.share[j]), "share_ci_low": float(tr.share_ci[j, 0]),
        "share_ci_high": float(tr.share_ci[j, 1]), "effect_without": float(tr.effect_without[j]),
        "carries": float(tr.carries[j]), "carries_ci_low": float(tr.carries_ci[j, 0]),
        "carries_ci_high": float(tr.carries_ci[j, 1]), "carries_p": float(tr.carries_p[j]),
        "carries_q": float(q[j]), "uses": float(u[j]), "uses_ci_low": float(uci[j, 0]),
        "uses_ci_high": float(uci[j, 1]), "n": st.n,
    } for j, f in enumerate(st.features)]


def _verdict(st: Any, c: str, row: dict[str, Any], tr: Any, traced: list[str],
             explained: set[str], fdr: float) -> tuple[str, list[str]]:
    if c in explained:
        return "explained by adjust_for", []
    if not row["significant"]:
        return "no effect", []
    if c not in traced:  # significant, but columns= named others
        return "not traced", []
    if tr is None:       # the inputs are not tabular
        return "direct", []
    if row["remaining_q"] < fdr and row["remaining_share"] >= DIRECT_SHARE:
        return "direct", []
    q = bh_adjust(tr.carries_p.astype(float))
    named = [j for j in np.argsort(-np.nan_to_num(tr.share, nan=-np.inf), kind="stable")
             if tr.share_ci[j, 0] > 0 and q[j] < fdr]
    if not named:
        named = list(tr.top)
    return "through features", [st.features[j] for j in named]


def _pct(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.0%}"


def _ci(lo: float, hi: float, pct: bool = True) -> str:
    f = _pct if pct else (lambda v: "n/a" if not np.isfinite(v) else f"{v:.3g}")
    return f"[{f(lo)}, {f(hi)}]"


def _text(st: Any, c: str, row: dict[str, Any], tr: Any,
          base_rows: list[dict[str, Any]], fdr: float) -> str:
    given = "the label" + "".join(f" and '{a}'" for a in st.adjust)
    head = (f"Outputs depend on '{c}' beyond {given} (partial R² = {row['total_effect']:.3g} "
            f"{_ci(row['total_ci_low'], row['total_ci_high'], pct=False)}, "
            f"q = {row['q_value']:.2g}, n = {st.n})")
    v = row["verdict"]
    if v == "explained by adjust_for":
        text = (f"Outputs depend on '{c}' beyond the label (partial R² = "
                f"{row['effect_given_label']:.3g}, q = {row['q_given_label']:.2g}) but not "
                f"beyond {given} (partial R² = {row['total_effect']:.3g}, q = "
                f"{row['q_value']:.2g}): explained by adjust_for.")
    elif v == "not traced":
        text = (f"{head}; not traced (columns= named other columns).")
    elif v == "no effect":
        text = (f"No significant dependence of the outputs on '{c}' beyond {given} (partial "
                f"R² = {row['total_effect']:.3g}, q = {row['q_value']:.2g}); no pathway is "
                "reported.")
    elif tr is None:
        text = (f"{head}; the inputs are not tabular, so no feature path can be removed: "
                "direct.")
    elif v == "direct":
        text = (f"{head}; {_pct(row['remaining_share'])} "
                f"{_ci(row['remaining_ci_low'], row['remaining_ci_high'])} of it remains after "
                f"'{c}' is removed from every candidate feature (p = {row['remaining_p']:.2g}): "
                "the model uses something the features do not carry (direct).")
    else:
        j = {f: i for i, f in enumerate(st.features)}
        named = row["through"][:NAMED_FEATURES]
        parts = [f"{f} ({_pct(tr.share[j[f]])} {_ci(*tr.share_ci[j[f]])})" for f in named]
        rest = row["through"][NAMED_FEATURES:]
        if rest:  # the sentence names the largest; the table has them all
            parts.append(f"{len(rest)} more ({_pct(sum(tr.share[j[f]] for f in rest))} "
                         "together)")
        differ = "differs" if len(parts) == 1 else "differ"
        how = (f"{differ} between levels of '{c}'" if row["metadata_kind"] == "categorical"
               else f"{'varies' if len(parts) == 1 else 'vary'} with '{c}'")
        text = (f"{head}; it goes through {', '.join(parts)}, which {how} among samples with "
                f"the same label; the top {len(tr.top)} together "
                f"mediate {_pct(row['top_k_share'])} "
                f"{_ci(row['top_k_ci_low'], row['top_k_ci_high'])}, and "
                f"{_pct(row['remaining_share'])} remains when every feature is replaced "
                f"(p = {row['remaining_p']:.2g}).")
    if row.get("derived_from_inputs"):
        text += (f" '{c}' is predicted from X alone ({row['input_predictability_name']} = "
                 f"{row['input_predictability']:.3f}): it is derived from the inputs.")
    mine = [b for b in base_rows if b["metadata"] == c]
    if mine:
        more = [b["baseline"] for b in mine if b["model_more"]]
        same = [b["baseline"] for b in mine if not b["model_more"]]
        diffs = ", ".join(f"{b['baseline']} {b['difference']:+.3g} "
                          f"{_ci(b['ci_low'], b['ci_high'], pct=False)}" for b in mine)
        if same:
            but = f", but more than {', '.join(more)}" if more else ""
            text += (f" The model depends on '{c}' no more than {', '.join(same)}{but} "
                     f"(baselines fed the same features; difference in partial R²: {diffs}).")
        else:
            text += (f" The model depends on '{c}' more than every baseline fed the same "
                     f"features (difference in partial R²: {diffs}).")
    return text
