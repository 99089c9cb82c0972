"""Generate a real audit report and save a screenshot of it for the docs.

Runs a small version of the pneumonia/asthma case study (simulated cohort, a PyTorch MLP, the
glass-box baselines, the full Audit), writes the report, opens it in headless Chromium and saves
``docs/img/report.png``. Nothing is drawn by hand.

Usage::

    python scripts/screenshot_report.py [--out docs/img/report.png] [--html report.html]
                                        [--n 3000] [--height 2200]
    python scripts/screenshot_report.py --from-html report.html   # e.g. the demo's report

Needs the Debian packages ``chromium`` and ``chromium-driver`` and the ``selenium`` package.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")


def build_result(n: int, seed: int = 0):
    import confoundry as cf

    if not hasattr(cf, "datasets") or not hasattr(cf.datasets, "simulate_pneumonia"):
        raise SystemExit("confoundry.datasets.simulate_pneumonia is missing")
    from confoundry.datasets import simulate_pneumonia
    from confoundry.demos import train_pneumonia_mlp

    cohort = simulate_pneumonia(n, random_state=seed)
    tr, te = cohort.train, cohort.test
    net, _ = train_pneumonia_mlp(tr.X, tr.y.to_numpy(), random_state=seed, search=False,
                                 max_epochs=40, verbose=False)
    audit = cf.Audit(
        net, te.X, te.y.to_numpy(), metadata=te.metadata, X_train=tr.X, y_train=tr.y.to_numpy(),
        expectations={"asthma": "increasing", "chest_pain": "increasing",
                      "heart_disease": "increasing", "age": "increasing"},
        random_state=seed, model_name="MLP", n_boot=200, n_permutations=200,
        max_attribution_rows=500, verbose=True)
    return audit.run()


def screenshot(html_path: Path, png_path: Path, *, width: int = 1280, height: int = 2200) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--window-size={width},{height}")
    with tempfile.TemporaryDirectory() as profile:
        opts.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            driver.get(html_path.resolve().as_uri())
            png_path.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(png_path))
        finally:
            driver.quit()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/img/report.png", help="screenshot path")
    p.add_argument("--html", default=None, help="also keep the report here")
    p.add_argument("--n", type=int, default=3000, help="simulated patients (default 3000)")
    p.add_argument("--height", type=int, default=2200, help="window height in pixels")
    p.add_argument("--from-html", default=None,
                   help="screenshot this existing report (e.g. from 'confoundry demo pneumonia') "
                        "instead of running a small audit")
    args = p.parse_args(argv)
    if args.from_html:
        src = Path(args.from_html)
        if not src.is_file():
            p.error(f"--from-html {src}: no such file")
        screenshot(src, Path(args.out), height=args.height)
        print(f"Screenshot of {src}: {args.out}", file=sys.stderr)
        return 0
    result = build_result(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        html_path = Path(args.html) if args.html else Path(tmp) / "report.html"
        result.to_html(html_path)
        screenshot(html_path, Path(args.out), height=args.height)
    print(f"{result.verdict()['text']} Screenshot: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
