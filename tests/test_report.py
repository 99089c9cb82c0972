"""The HTML report: self-contained, escaped, small, with every section and every step status."""

from __future__ import annotations

import base64
import functools
import re
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

import confoundry as cf  # noqa: E402
from confoundry.report import render_html, write_html  # noqa: E402
from confoundry.report._html import fmt, table  # noqa: E402
from test_audit import FAST, make_data, sk_train_fn, train_mlp  # noqa: E402

EVIL = "<img src=x onerror=alert(1)>"
SECTION_IDS = ("verdict", "data", "baselines", "attributions", "probes", "domains", "controls",
               "privacy", "reproducibility")


class TagCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parse(html: str) -> list[tuple[str, dict]]:
    p = TagCollector()
    p.feed(html)
    return p.tags


@functools.cache
def build_evil():
    """A full audit whose feature, metadata column, metadata level and model name are HTML,
    and its report (built once per test session, shared with the browser test)."""
    X, y, meta = make_data(seed=3)
    X = X.rename(columns={"noise": EVIL})
    meta = meta.rename(columns={"site": EVIL})
    meta["care"] = np.where(meta["care"] == 1, EVIL, "none")
    tr, te = slice(0, 200), slice(200, None)
    net = train_mlp(X.iloc[tr], y[tr], seed=3)
    audit = cf.Audit(net, X.iloc[te].reset_index(drop=True), y[te],
                     metadata=meta.iloc[te].reset_index(drop=True),
                     X_train=X.iloc[tr].reset_index(drop=True), y_train=y[tr],
                     expectations={"asthma": "increasing", EVIL: "decreasing"},
                     train_fn=sk_train_fn, random_state=0, model_name=EVIL, **FAST)
    result = audit.run()
    return result, result.to_html()


@pytest.fixture
def evil_result():
    return build_evil()[0]


@pytest.fixture
def evil_html():
    return build_evil()[1]


def test_user_strings_are_escaped(evil_html):
    assert EVIL not in evil_html
    assert "&lt;img src=x onerror=alert(1)&gt;" in evil_html
    tags = parse(evil_html)
    assert not [a for t, a in tags if t == "img" and a.get("src") == "x"]
    assert not [a for t, a in tags if any(k.startswith("on") for k in a)]


def test_self_contained_no_external_urls_no_script(evil_html):
    assert "http://" not in evil_html and "https://" not in evil_html
    assert "<script" not in evil_html.lower()
    tags = parse(evil_html)
    for tag, attrs in tags:
        for key in ("src", "href", "action", "data", "poster"):
            val = attrs.get(key)
            if val is None:
                continue
            assert val.startswith(("data:", "#")), (tag, key, val[:60])
        assert tag not in ("script", "iframe", "object", "embed", "link") or (
            tag == "link" and attrs.get("href", "").startswith("data:"))
    csp = [a for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]
    # decoded figures are PNGs without URLs in their metadata
    imgs = [a["src"] for t, a in tags if t == "img"]
    assert len(imgs) >= 3
    for src in imgs:
        raw = base64.b64decode(src.split(",", 1)[1])
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"http" not in raw


def test_sections_and_step_statuses(evil_result, evil_html):
    tags = parse(evil_html)
    ids = {a.get("id") for _, a in tags}
    for sid in SECTION_IDS:
        assert sid in ids, sid
    for name, st in evil_result.steps.items():
        assert f"<td>{name}</td>" in evil_html
        if st.status != "ran":
            assert st.reason.replace("'", "&#39;").replace("<", "&lt;")[:40] in evil_html
    assert evil_result.verdict()["text"] in evil_html
    # reproducibility: versions, seeds and the data hash are in the file
    assert evil_result.reproducibility["data_sha256"]["test"] in evil_html
    assert "torch" in evil_html and "base_seed" in evil_html
    # the privacy section explains the numbers
    assert "Membership inference" in evil_html


def test_findings_table_lists_every_finding(evil_result, evil_html):
    body = evil_html.split('id="findings"', 1)[1].split("</table>", 1)[0] if len(
        evil_result.findings()) else ""
    assert body.count("<tr>") == len(evil_result.findings()) + (1 if body else 0)


@pytest.fixture
def small_result(evil_result):
    """The evil audit with only its cheap-to-draw results (rendering every figure is slow)."""
    from dataclasses import replace

    keep = {k: v for k, v in evil_result.results.items() if k in ("data", "performance")}
    return replace(evil_result, results=keep)


def test_write_html_and_to_html_path(small_result, tmp_path):
    p = tmp_path / "r.html"
    text = small_result.to_html(p)
    assert p.read_text(encoding="utf-8") == text
    assert write_html(small_result, tmp_path / "w.html") == str(tmp_path / "w.html")
    assert (tmp_path / "w.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("how", ["render raises", "text cannot be encoded", "rename fails"])
@pytest.mark.parametrize("writer", ["to_html", "to_json", "write_html"])
def test_a_failing_write_leaves_the_older_file_whole(small_result, tmp_path, monkeypatch,
                                                     writer, how):
    import os

    import confoundry.report as report_pkg
    from confoundry.report import _files

    path = tmp_path / ("r.json" if writer == "to_json" else "r.html")
    path.write_text("the older report", encoding="utf-8")
    os.chmod(path, 0o644)
    if how == "render raises":
        def boom(*a, **k):
            raise RuntimeError("render failed")

        monkeypatch.setattr(report_pkg, "render_html", boom)
        monkeypatch.setattr("confoundry.report._html.render_html", boom)
        monkeypatch.setattr("confoundry._result.dumps", boom)
        exc = RuntimeError
    elif how == "text cannot be encoded":  # fails half-way through in a plain open("w")
        monkeypatch.setattr(report_pkg, "render_html", lambda *a, **k: "<html>" + "\ud800")
        monkeypatch.setattr("confoundry.report._html.render_html",
                            lambda *a, **k: "<html>" + "\ud800")
        monkeypatch.setattr("confoundry._result.dumps", lambda *a, **k: "{" + "\ud800")
        exc = UnicodeEncodeError
    else:
        def no_rename(src, dst):
            raise OSError("disk full")

        monkeypatch.setattr(_files.os, "replace", no_rename)
        exc = OSError
    with pytest.raises(exc):
        if writer == "to_html":
            small_result.to_html(path)
        elif writer == "to_json":
            small_result.to_json(path)
        else:
            write_html(small_result, path)
    assert path.read_text(encoding="utf-8") == "the older report"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_atomic_write_keeps_permissions_of_a_plain_write(small_result, tmp_path):
    import json
    import os

    small_result.to_html(tmp_path / "new.html")
    with open(tmp_path / "plain.html", "w") as fh:
        fh.write("x")
    assert (os.stat(tmp_path / "new.html").st_mode & 0o777
            == os.stat(tmp_path / "plain.html").st_mode & 0o777)
    small_result.to_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["type"] == "AuditResult"


def test_render_html_rejects_bad_input(evil_result):
    with pytest.raises(TypeError, match="expected an AuditResult"):
        render_html({"steps": 1})
    with pytest.raises(ValueError, match="dpi=5"):
        render_html(evil_result, dpi=5)
    with pytest.raises(ValueError, match="max_rows=0"):
        render_html(evil_result, max_rows=0)


def test_title_is_escaped(small_result):
    page = render_html(small_result, title="</title><script>alert(3)</script>")
    assert "<script>" not in page
    assert "&lt;/title&gt;&lt;script&gt;" in page


def test_broken_result_surface_does_not_break_the_report(small_result):
    class Broken:
        def to_frame(self):
            raise RuntimeError("no frame")

        def plot(self, ax=None):
            raise RuntimeError("no plot")

        def findings(self):
            return []

        def to_dict(self):
            raise RuntimeError("no dict")

    from dataclasses import replace

    res = replace(small_result, results={**small_result.results, "probes": Broken()})
    page = res.to_html()
    assert "table unavailable: RuntimeError: no frame" in page
    assert "figure unavailable: RuntimeError: no plot" in page
    assert res.to_dict()["results"]["probes"] == {"error": "to_dict() failed: RuntimeError: "
                                                  "no dict"}


def test_fmt_and_table_helpers():
    assert fmt(None) == "–" and fmt(np.nan) == "–" and fmt(np.float64(2.0)) == "2"
    assert fmt(1234567.891) == "1.235e+06" and fmt(False) == "no"
    t = table(pd.DataFrame({"a": range(60)}), max_rows=10)
    assert len(t["rows"]) == 10 and t["n"] == 60 and "first 10 of 60" in t["note"]
    assert table(None) is None
    assert table({"x": 1})["rows"] == [["x", "1"]]


@pytest.mark.slow
def test_report_size_for_10k_by_50():
    """An audit of 10k x 50 makes a report under 5 MB (figures are small PNGs, tables capped).

    The test set has 10k rows; the training set is kept at 2k rows so that fitting the baselines
    and the membership attack stay quick (neither changes the size of the report).
    """
    rng = np.random.default_rng(0)
    n, n_train, d = 10_000, 2_000, 50
    X = pd.DataFrame(rng.normal(size=(n + n_train, d)),
                     columns=[f"feature_{j}" for j in range(d)])
    y = (X.iloc[:, 0] + X.iloc[:, 1] * X.iloc[:, 2] + rng.normal(size=n + n_train) > 0).astype(
        int)
    meta = pd.DataFrame({"site": rng.choice(list("abcd"), n + n_train),
                         "batch": rng.integers(0, 6, n + n_train)})
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(d, 32), torch.nn.ReLU(),
                                  torch.nn.Linear(32, 1))
    t0 = time.perf_counter()
    res = cf.Audit(net, X.iloc[n_train:].reset_index(drop=True), y.iloc[n_train:].to_numpy(),
                   metadata=meta.iloc[n_train:].reset_index(drop=True),
                   X_train=X.iloc[:n_train].reset_index(drop=True),
                   y_train=y.iloc[:n_train].to_numpy(),
                   expectations={"feature_0": "increasing"}, random_state=0, verbose=False,
                   n_boot=50, n_permutations=50, baseline_kinds=("logistic", "tree"),
                   max_attribution_rows=300,
                   steps=[s for s in cf.audit.STEPS if s != "shadow_glassbox"]).run()
    html = res.to_html()
    size = len(html.encode("utf-8"))
    assert size < 5_000_000, f"report is {size / 1e6:.2f} MB"
    assert "feature_49" in html  # 50 features still listed (tables are capped at 50 rows)
    assert res.data["n_test"] == n and res.data["n_features"] == d
    assert time.perf_counter() - t0 < 300
    ran = [k for k, s in res.steps.items() if s.status == "ran"]
    assert len(re.findall("<img ", html)) >= len(ran) - 3
