"""Imaging case study: a CNN that learned the hospital, caught by probes and attributions.

Train a small CNN on simulated radiographs pooled from two sites with very different pneumonia
prevalence (sites A and B), evaluate it internally and at a third site (C), and audit it with
site as metadata: internal vs external AUROC, the site-sort AUROC, the embedding and conditional
output probes, the share of attribution inside the lung field by site, and a leave-one-site-out
table. Then the control: the same pipeline on the same patients without the site token, where
the model-level shortcut findings must disappear.

This module runs both arms and writes the tables; the CNN is in :mod:`._radiograph_model`,
one arm in :mod:`._radiograph_arm` and the figures in :mod:`._radiograph_plots`.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._result import to_jsonable
from ..data._validation import describe
from ._radiograph_arm import _FULL, _QUICK, _run_arm, internal_external_metrics
from ._radiograph_model import EMBEDDING_LAYER, RadiographCNN, train_radiograph_cnn
from ._radiograph_plots import plot_attribution_maps, plot_overlays

__all__ = ["EMBEDDING_LAYER", "RadiographCNN", "internal_external_metrics",
           "plot_attribution_maps", "plot_overlays", "run_radiograph_case_study",
           "train_radiograph_cnn"]



def _summary(arms: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One tidy table of the headline numbers of both arms."""
    rows = []
    for arm, r in arms.items():
        m = r["metrics"]
        for split in ("internal", "external"):
            row = m[(m["split"] == split) & (m["metric"] == "auroc")].iloc[0]
            rows.append({"arm": arm, "quantity": f"AUROC, {split}", "estimate": row["estimate"],
                         "ci_low": row["ci_low"], "ci_high": row["ci_high"], "p_value": np.nan,
                         "n": row["n"]})
        g = r["auroc_gap"]
        rows.append({"arm": arm, "quantity": "AUROC gap, internal - external",
                     "estimate": g["estimate"], "ci_low": g["ci_low"], "ci_high": g["ci_high"],
                     "p_value": g["p_value"], "n": r["n_internal"] + r["n_external"]})
        s = r["site_sort"].iloc[0]
        rows.append({"arm": arm, "quantity": "site-sort AUROC (site prevalence only), internal",
                     "estimate": s["estimate"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
                     "p_value": np.nan, "n": s["n"]})
        p = r["probes"]
        for probe in ("metadata_only", "output_conditional", "embedding_marginal",
                      "embedding_conditional"):
            sel = p[p["probe"] == probe]
            if len(sel):
                q = sel.iloc[0]
                rows.append({"arm": arm, "quantity": f"probe {probe} (site): statistic",
                             "estimate": q["statistic"], "ci_low": np.nan, "ci_high": np.nan,
                             "p_value": q["p_value"], "n": q["n"]})
        mt = r["mass_by_site"]
        for _, row in mt.table.iterrows():
            rows.append({"arm": arm, "quantity": f"share of |IG| inside lungs, site {row['group']}",
                         "estimate": row["mean_share"], "ci_low": row["ci_low"],
                         "ci_high": row["ci_high"], "p_value": np.nan, "n": row["n"]})
        if "adjusted_mean_share" in mt.table:
            for _, row in mt.table.iterrows():
                rows.append({"arm": arm, "quantity": "share of |IG| inside lungs, site "
                             f"{row['group']}, standardised to the pooled label mix",
                             "estimate": row["adjusted_mean_share"],
                             "ci_low": row["adjusted_ci_low"], "ci_high": row["adjusted_ci_high"],
                             "p_value": np.nan, "n": row["n"]})
        rows.append({"arm": arm, "quantity": "lung share differs by site (Kruskal-Wallis "
                     "epsilon^2)", "estimate": mt.effect_size, "ci_low": np.nan,
                     "ci_high": np.nan, "p_value": mt.p_value, "n": mt.n})
        if "loso" in r:
            for _, row in r["loso"].iterrows():
                est = row.get("estimate", row.get("metric_value", np.nan))
                rows.append({"arm": arm, "quantity": f"leave-one-site-out AUROC, held out "
                             f"{row['group']}", "estimate": est,
                             "ci_low": row.get("ci_low", np.nan),
                             "ci_high": row.get("ci_high", np.nan),
                             "p_value": row.get("p_value", np.nan), "n": row.get("n", np.nan)})
    return pd.DataFrame(rows)


def run_radiograph_case_study(
    out_dir: str | Path,
    *,
    quick: bool = False,
    random_state: int = 0,
    verbose: bool = True,
    loso: bool = True,
    audit: bool = True,
    report: str | None = "report.html",
    audit_control: bool = True,
) -> Bunch:
    """Run the imaging case study (with the site token, then the control without it).

    Writes into ``out_dir``: ``summary.csv`` and ``summary.md`` (the headline numbers, both
    arms), ``results.json``, figures (``{arm}_maps_by_site.png``, ``{arm}_maps_by_outcome.png``,
    ``{arm}_mass_by_site.png``, ``{arm}_overlays.png``) and, with ``audit``, the HTML report of
    the audit of the shortcut model (``report``).

    Parameters
    ----------
    out_dir : str or Path
        Created if missing.
    quick : bool, default False
        Smaller images and fewer samples, epochs and permutations (for tests and smoke runs).
    random_state : int, default 0
        Seeds the simulation, the split, the training and every test.
    verbose : bool, default True
    loso : bool, default True
        Also run leave-one-site-out on the arm with the token (retrains the CNN once per site,
        plus the internal cross-validation of :func:`confoundry.leave_one_group_out`).
    audit : bool, default True
        Also run :class:`confoundry.Audit` on the arm with the token.
    report : str or None, default "report.html"
        File name (in ``out_dir``) of the HTML report of the marker arm's audit; it gains a
        section with both arms' headline numbers and the attribution figures. With
        ``audit_control`` the control's report is written as ``control_<report>``.
    audit_control : bool, default True
        Also audit the control arm (``audit`` must be True); the demo turns it off to stay
        within its time budget, since the control's numbers are in the summary anyway.

    Returns
    -------
    Bunch
        ``summary`` (DataFrame), ``marker`` and ``control`` (dicts of results per arm),
        ``log`` (what was skipped), ``config``, ``elapsed_s``, ``out_dir``.

    Examples
    --------
    >>> res = run_radiograph_case_study("out", quick=True, loso=False,
    ...                                 audit=False)  # doctest: +SKIP
    >>> res.summary.query("quantity == 'AUROC gap, internal - external'")  # doctest: +SKIP
    """
    if not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise ValueError(f"random_state={describe(random_state)}; expected a non-negative int.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = dict(_QUICK if quick else _FULL)
    log: list[str] = []
    t0 = time.perf_counter()
    arms = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tight_layout.*")
        for marker in (True, False):
            arm = "marker" if marker else "control"
            arms[arm] = _run_arm(marker, cfg, int(random_state), verbose, log, out, loso,
                                 audit and (marker or audit_control))
    summary = _summary(arms)
    elapsed = time.perf_counter() - t0
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(_markdown(summary, cfg, elapsed, log), encoding="utf-8")
    payload = {"config": cfg, "random_state": int(random_state), "elapsed_s": elapsed,
               "log": log, "summary": summary,
               "arms": {a: {k: v for k, v in r.items()
                            if k not in ("model", "probe_result", "audit_result", "lung_share",
                                         "marker_share", "figure_uris")}
                        for a, r in arms.items()}}
    (out / "results.json").write_text(json.dumps(to_jsonable(payload), indent=2,
                                                 allow_nan=False), encoding="utf-8")
    if report:
        uris = {**arms["marker"]["figure_uris"], **arms["control"]["figure_uris"]}
        for arm, name in (("marker", report), ("control", f"control_{report}")):
            if "audit_result" not in arms[arm]:
                continue
            result = _with_case_study_section(arms[arm]["audit_result"], arm, summary, uris,
                                              elapsed)
            arms[arm]["audit_result"] = result
            result.to_html(str(out / name))
    return Bunch(summary=summary, marker=arms["marker"], control=arms["control"], log=log,
                 config=cfg, elapsed_s=elapsed, out_dir=str(out))


def _with_case_study_section(result: Any, arm: str, summary: pd.DataFrame,
                             uris: dict[str, str], elapsed: float) -> Any:
    """The audit result with the case study's headline table and attribution figures added
    (``uris``: the PNG data URIs of both arms' figures, by file name)."""
    table = summary.copy()
    result = result.add_section(
        "Case study: internal vs external, with and without the site token", table,
        intro=("Three simulated hospitals (A, B, C) with different pneumonia prevalence and "
               "acquisition; the CNN is trained on A and B pooled and tested on held-out A and "
               "B images (internal) and on C (external). The 'marker' arm carries a site token "
               "outside the lung field; the 'control' arm is the same pipeline without it. A "
               "shortcut shows as an internal-external AUROC gap, a high site-sort AUROC, "
               "significant embedding and conditional output probes and attribution mass that "
               f"moves out of the lungs by site; in the control these must vanish. This audit is "
               f"of the '{arm}' arm. Case study run time {elapsed:.0f} s."),
        findings=False)
    for a in ("marker", "control"):
        for kind, what, intro in (
                ("maps_by_site", "attribution maps by site",
                 "Mean |integrated gradients| per site; the lung mask is outlined."),
                ("mass_by_site", "attribution in the lungs by site",
                 "Share of |attribution| inside the lung field per image, by site, with a "
                 "permutation test within labels (a model that looks outside the lungs at one "
                 "site and inside at another is using the site)."),
                ("overlays", "example images", "One image per site and label with its "
                                                "|attribution| overlaid.")):
            fig = uris.get(f"{a}_{kind}.png")
            if fig is not None:
                result = result.add_section(f"{a.capitalize()} arm: {what}", None, figure=fig,
                                            intro=intro, findings=False)
    return result


def _markdown(summary: pd.DataFrame, cfg: dict[str, Any], elapsed: float, log: list[str]
              ) -> str:
    def fmt(v: Any, digits: int = 3) -> str:
        return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else \
            f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| arm | quantity | estimate | 95% CI | p | n |", "|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        ci = (f"{r['ci_low']:.3f} to {r['ci_high']:.3f}" if np.isfinite(r["ci_low"]) else "")
        p = fmt(r["p_value"], 4) if np.isfinite(r["p_value"]) else ""
        n = "" if pd.isna(r["n"]) else str(int(r["n"]))
        quantity = str(r["quantity"]).replace("|", "\\|")
        lines.append(f"| {r['arm']} | {quantity} | {fmt(float(r['estimate']))} | {ci} | "
                     f"{p} | {n} |")
    lines += ["", f"Settings: {cfg}. Elapsed: {elapsed:.0f} s."]
    if log:
        lines += ["", "Notes:"] + [f"- {m}" for m in log]
    return "\n".join(lines) + "\n"
