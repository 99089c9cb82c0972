"""Imaging case study: a CNN that learned the hospital (site shortcut), caught by probes and
attributions. Writes its tables and figures into ./output (or the directory given).

    python case_studies/radiograph_site_shortcut/run.py [OUT_DIR] [--quick] [--no-loso]

The numbers in README.md are copied from output/summary.md written by this script.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from confoundry.demos._radiographs import run_radiograph_case_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=str(Path(__file__).parent / "output"))
    parser.add_argument("--quick", action="store_true", help="small images, few epochs")
    parser.add_argument("--no-loso", action="store_true", help="skip leave-one-site-out")
    parser.add_argument("--no-audit", action="store_true", help="skip confoundry.Audit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    res = run_radiograph_case_study(args.out_dir, quick=args.quick, random_state=args.seed,
                                    loso=not args.no_loso, audit=not args.no_audit)
    with pd.option_context("display.width", 160, "display.max_colwidth", 70,
                           "display.max_rows", 200):
        print(res.summary.round(4).to_string(index=False))
    for line in res.log:
        print("note:", line)
    print(f"elapsed: {res.elapsed_s:.0f} s; outputs in {res.out_dir}")


if __name__ == "__main__":
    main()
