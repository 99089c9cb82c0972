"""Imaging case study: a CNN that learned the hospital (site shortcut), caught by probes and
attributions. Writes its tables and figures into ./output (or the directory given).

    python case_studies/radiograph_site_shortcut/run.py [OUT_DIR] [--quick] [--no-loso]
                                                       [--update-readme]

With --update-readme (full settings only) the tables of README.md between the markers
``<!-- results:start -->`` and ``<!-- results:end -->`` are rewritten from this run, so the
README's numbers are produced by the script, never typed by hand.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from confoundry.demos._radiographs import run_radiograph_case_study

README = Path(__file__).parent / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _p(p: float) -> str:
    return f"p = {p:.2g}"


def _cell(r: pd.Series) -> str:
    est = f"{r['estimate']:.3f}"
    if np.isfinite(r["ci_low"]):
        est += f" ({r['ci_low']:.3f} to {r['ci_high']:.3f})"
    if np.isfinite(r["p_value"]):
        est += f", {_p(r['p_value'])}"
    return est


def results_markdown(summary: pd.DataFrame, elapsed: float, seed: int,
                     loso: pd.DataFrame | None = None) -> str:
    """The README's results tables: both arms side by side, then leave-one-site-out (the
    ``confoundry.leave_one_group_out`` table of the arm with the token)."""
    main = summary[~summary["quantity"].str.startswith("leave-one-site-out")]
    order = list(dict.fromkeys(main["quantity"]))
    arms = {a: t.set_index("quantity") for a, t in main.groupby("arm")}
    lines = [f"Seed {seed}, {elapsed:.0f} s on 2 CPU cores. 95% bootstrap CIs in brackets; "
             "p-values are permutation p-values (resolution 0.001).", "",
             "| quantity | n | with site token | control (no token) |", "|---|---|---|---|"]
    for q in order:
        cells = [_cell(arms[a].loc[q]) if a in arms and q in arms[a].index else ""
                 for a in ("marker", "control")]
        n = arms["marker"].loc[q, "n"] if q in arms.get("marker", pd.DataFrame()).index else ""
        n = "" if pd.isna(n) else int(n)
        lines.append(f"| {q.replace('|', chr(92) + '|')} | {n} | {cells[0]} | {cells[1]} |")
    if loso is not None and len(loso):
        lines += ["", "Leave-one-site-out (arm with the token), against the internal random "
                  "5-fold cross-validation:", "",
                  "| held-out site | n | AUROC | internal CV AUROC | difference |",
                  "|---|---|---|---|---|"]
        for _, r in loso.iterrows():
            lines.append(
                f"| {r['group']} | {int(r['n'])} | {r['estimate']:.3f} ({r['ci_low']:.3f} to "
                f"{r['ci_high']:.3f}) | {r['internal']:.3f} ({r['internal_ci_low']:.3f} to "
                f"{r['internal_ci_high']:.3f}) | {r['difference']:+.3f} ({r['diff_ci_low']:+.3f}"
                f" to {r['diff_ci_high']:+.3f}), {_p(r['p_value'])} |")
    return "\n".join(lines)


def update_readme(text: str) -> None:
    body = README.read_text(encoding="utf-8")
    if START not in body or END not in body:
        raise SystemExit(f"{README} has no {START} ... {END} block to update")
    head, rest = body.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=str(Path(__file__).parent / "output"))
    parser.add_argument("--quick", action="store_true", help="small images, few epochs")
    parser.add_argument("--no-loso", action="store_true", help="skip leave-one-site-out")
    parser.add_argument("--no-audit", action="store_true", help="skip confoundry.Audit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--update-readme", action="store_true",
                        help="rewrite README.md's results tables from this run")
    args = parser.parse_args()
    if args.update_readme and args.quick:
        parser.error("--update-readme needs the full settings (drop --quick)")
    res = run_radiograph_case_study(args.out_dir, quick=args.quick, random_state=args.seed,
                                    loso=not args.no_loso, audit=not args.no_audit)
    with pd.option_context("display.width", 160, "display.max_colwidth", 70,
                           "display.max_rows", 200):
        print(res.summary.round(4).to_string(index=False))
    for line in res.log:
        print("note:", line)
    print(f"elapsed: {res.elapsed_s:.0f} s; outputs in {res.out_dir}")
    if args.update_readme:
        update_readme(results_markdown(res.summary, res.elapsed_s, args.seed,
                                        res.marker.get("loso")))
        print(f"updated {README}")


if __name__ == "__main__":
    main()
