"""A report a reader can trust at a glance (issue 20): no empty heading, no JSON in the visible
text, no warning inside a table, no clipped figure, the reading columns of wide tables first,
numeric levels in numeric order, the probe heat map coloured by effect size, and the four
questions answered (or said to be unanswered) at the top."""

from __future__ import annotations

import sys
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

import confoundry as cf  # noqa: E402
from confoundry._utils import natural_order  # noqa: E402
from confoundry.audit._questions import QUESTIONS, four_questions  # noqa: E402
from confoundry.report import _figures  # noqa: E402
from confoundry.report._html import MAX_COLUMNS, fmt, reading_columns, table  # noqa: E402
from test_audit import FAST, sk_train_fn, train_mlp  # noqa: E402

#: sites of very different sizes, coded 1..12 (11 and 12 are far below any floor).
SITE_SIZES = np.array([160, 90, 60, 40, 30, 25, 20, 12, 8, 5, 3, 2], float)
INJECTED = "PendingDeprecationWarning: The set_bad function will be deprecated"
TUNING_WARNING = "ConvergenceWarning: lbfgs failed to converge"
TOLERANCE_PX = 2.0


def make_data(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    site = rng.choice(np.arange(1, 13), n, p=SITE_SIZES / SITE_SIZES.sum())
    X = pd.DataFrame({"age": rng.normal(60, 10, n),
                      "asthma": rng.integers(0, 2, n).astype(float),
                      "a_rather_long_feature_name_for_the_labels": rng.normal(0, 1, n),
                      "noise": rng.normal(0, 1, n)})
    logit = (0.08 * (X["age"] - 60) - 1.0 * X["asthma"] + 0.8 * X.iloc[:, 2]
             + 0.5 * (site <= 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    meta = pd.DataFrame({"site": site, "batch": rng.choice(["b1", "b2", "b3"], n)})
    return X, y, meta


class Page(HTMLParser):
    """The visible text, the headings with what follows them, and every table cell."""

    HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4}

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0
        self.text: list[str] = []
        self.events: list[tuple[str, int, str]] = []  # ("heading", level, text) / ("content",)
        self.in_heading = 0
        self.heading_text: list[str] = []
        self.cell_depth = 0
        self.cells: list[list[str]] = []  # one list per open cell
        self.done_cells: list[str] = []
        self.rows: list[tuple[bool, list[str]]] = []  # (inside an "all columns" block, cells)
        self.row_stack: list[list[str]] = []
        self.details: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("style", "script", "title"):
            self.hidden += 1
        if tag in self.HEADINGS:
            self.in_heading = self.HEADINGS[tag]
            self.heading_text = []
        if tag in ("img", "table") and not self.in_heading:
            self.events.append(("content", 0, tag))
        if tag in ("td", "th"):
            self.cells.append([])
        if tag == "tr":
            self.row_stack.append([])
        if tag == "details":
            self.details.append(a.get("class", "") or "")

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self.hidden -= 1
        if tag in self.HEADINGS and self.in_heading:
            self.events.append(("heading", self.in_heading, " ".join(self.heading_text)))
            self.in_heading = 0
        if tag in ("td", "th") and self.cells:
            text = " ".join(self.cells.pop())
            self.done_cells.append(text)
            if self.row_stack:
                self.row_stack[-1].append(text)
            for outer in self.cells:  # a cell holds the text of the cells nested in it
                outer.append(text)
        if tag == "tr" and self.row_stack:
            self.rows.append(("allcols" in self.details, self.row_stack.pop()))
        if tag == "details" and self.details:
            self.details.pop()

    def handle_data(self, data):
        if self.hidden or not data.strip():
            return
        self.text.append(data)
        if self.in_heading:
            self.heading_text.append(data.strip())
        else:
            self.events.append(("content", 0, data.strip()[:40]))
        for c in self.cells:
            c.append(data.strip())


def parse(html: str) -> Page:
    p = Page()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def audited():
    """A small audit (torch MLP, glass-box baselines, every step) and its report, rendered with
    every figure's drawn extent measured against its canvas."""
    X, y, meta = make_data()
    tr, te = slice(0, 300), slice(300, None)
    net = train_mlp(X.iloc[tr], y[tr])
    res = cf.Audit(net, X.iloc[te].reset_index(drop=True), y[te],
                   metadata=meta.iloc[te].reset_index(drop=True),
                   X_train=X.iloc[tr].reset_index(drop=True), y_train=y[tr],
                   expectations={"asthma": "increasing", "age": "increasing"},
                   train_fn=sk_train_fn, metadata_train=meta.iloc[tr].reset_index(drop=True),
                   metadata_kinds={"site": "categorical"}, group_column="site",
                   random_state=0, model_name="mlp", **FAST).run()
    # warnings where they used to leak: a step's own, and a baseline's tuning record
    steps = dict(res.steps)
    steps["probes"] = replace(steps["probes"], warnings=(INJECTED + " in a future version.",))
    res = replace(res, steps=steps)
    res.results["baselines"]["logistic"].tuning["warnings"] = [TUNING_WARNING]
    figures: list[dict] = []
    real = _figures.overflow_px

    def spy(fig):
        renderer = fig.canvas.get_renderer()
        bb = fig.get_tightbbox(renderer)  # inches
        w, h = fig.get_size_inches()
        over = max(0.0, -bb.x0, -bb.y0, bb.x1 - w, bb.y1 - h) * fig.dpi
        title = next((a.get_title() for a in fig.axes if a.get_title()), "") or \
            fig.get_suptitle()
        figures.append({"overflow_px": over, "title": title})
        return real(fig)

    _figures.overflow_px = spy
    try:
        html = res.to_html()
    finally:
        _figures.overflow_px = real
    return res, html, parse(html), figures


# ----------------------------------------------------------------- the contract (item 10)
def test_no_heading_is_empty(audited):
    _, _, page, _ = audited
    events = page.events
    empty = []
    for i, (kind, level, text) in enumerate(events):
        if kind != "heading" or level == 1:
            continue
        for kind2, level2, _ in events[i + 1:]:
            if kind2 == "content":
                break
            if level2 <= level:
                empty.append(text)
                break
        else:
            empty.append(text)
    assert not empty, f"headings with nothing under them: {empty}"
    assert sum(k == "heading" for k, _, _ in events) > 30


def test_no_json_in_the_visible_text(audited):
    _, _, page, _ = audited
    text = "".join(page.text)
    assert '{"' not in text, text[max(0, text.find('{"') - 80):text.find('{"') + 80]
    assert "{'" not in text


def test_no_warning_inside_a_table(audited):
    res, html, page, _ = audited
    assert INJECTED in html and TUNING_WARNING in html  # shown, collapsed, with the step
    bad = [c[:120] for c in page.done_cells if "Warning" in c]
    assert not bad, bad
    assert '<details class="warnings"><summary>1 warning raised in this step' in html


def test_every_figure_lies_within_its_canvas(audited):
    res, html, page, figures = audited
    n_img = html.count("<img ")
    assert len(figures) == n_img > 15  # every figure of the report was measured
    clipped = [(f["title"], round(f["overflow_px"], 1)) for f in figures
               if f["overflow_px"] > TOLERANCE_PX]
    assert not clipped, f"figures whose content reaches past the canvas: {clipped}"


def test_the_four_questions_are_at_the_top(audited):
    res, html, page, _ = audited
    top = html.split('id="questions"', 1)
    assert len(top) == 2 and html.index('id="questions"') < html.index('id="findings"')
    block = top[1].split("</div>\n</div>", 1)[0]
    for q in QUESTIONS:
        assert q in block
    qs = four_questions(res)
    assert [q["question"] for q in qs] == list(QUESTIONS)
    assert all(q["status"] == "answered" for q in qs), qs
    for q in qs:
        assert set(q) == {"question", "answer", "number", "severity", "step", "status"}
        assert q["severity"] in ("high", "medium", "low", "info")
        assert f'id="{q["step"]}"' in html  # "read more" lands on the step
        assert q["answer"].endswith(".") and q["number"] not in ("", "–")


# ------------------------------------------------------------------ 1. no empty heading
def test_baselines_show_their_tuning_records(audited):
    res, html, page, _ = audited
    for name in res.results["baselines"]:
        part = html.split(f"<h4>Glass-box baselines: {name}</h4>", 1)
        assert len(part) == 2, name
        body = part[1].split("<h", 1)[0]
        assert "<caption>tuning record</caption>" in body and "best_params" in body
    tree = html.split("<h4>Glass-box baselines: tree</h4>", 1)[1].split("<h", 1)[0]
    assert "score of every configuration" in tree


def test_a_result_with_nothing_to_show_says_so():
    from confoundry.report._html import _result_block

    class Bare:
        pass

    b = _result_block(Bare(), "bare", dpi=40, max_rows=5)
    assert b["empty"].startswith("Nothing to show") and "Bare" in b["empty"]


# --------------------------------------------------------------- 2. readable, never JSON
def test_mappings_render_as_readable_text():
    assert fmt({"estimate": -0.31416, "ci_low": -0.4, "ci_high": -0.2}) == "-0.3142 (-0.4 to -0.2)"
    assert fmt({"C": 0.01, "penalty": "l2"}) == "C: 0.01; penalty: l2"
    assert fmt({"rank_correlation": {"estimate": 0.88, "ci_low": 0.86, "ci_high": 0.9}}) == \
        "rank_correlation: 0.88 (0.86 to 0.9)"
    assert fmt([{"a": 1}, {"a": 2}]) == "(a: 1), (a: 2)"
    t = table({"summary": {"estimate": 0.5, "ci_low": 0.4, "ci_high": 0.6}})
    assert t["rows"] == [["summary", "0.5 (0.4 to 0.6)"]]


def test_finding_evidence_is_readable(audited):
    res, html, page, _ = audited
    assert '<dl class="evidence">' in html
    assert "(CI)</dt>" in html  # an estimate and its interval in one entry


# ----------------------------------------------------- 5. + 7. reading columns, notes
def test_wide_tables_show_their_reading_columns_first(audited):
    res, html, page, _ = audited
    t = table(res.results["domains"]["site"].to_frame())
    assert len(t["full"]["columns"]) > MAX_COLUMNS >= len(t["columns"])
    assert t["columns"] == ["domain", "n", "auroc", "95% CI", "testable", "note"]
    probes = table(res.results["probes"].to_frame())
    assert {"metadata", "probe", "effect_size", "q_value", "significant"} <= set(
        probes["columns"]) and len(probes["columns"]) <= MAX_COLUMNS
    assert "all 32 columns</summary>" in html
    narrow = table(pd.DataFrame({c: [1] for c in "abcdefgh"}))
    assert narrow["full"] is None and narrow["columns"] == list("abcdefgh")


def test_reading_columns_find_the_estimate_and_its_interval():
    cols = ["model", "role", "metric", "train", "train_ci_low", "train_ci_high", "gap",
            "gap_ci_low", "gap_ci_high", "p_value", "q_value", "n_test"]
    spec = dict(reading_columns(pd.DataFrame(columns=cols)))
    assert spec["gap"] == "gap" and spec["95% CI"] == ("gap", "gap_ci_low", "gap_ci_high")
    assert "q_value" in spec and "p_value" not in spec


def test_a_domain_below_the_floor_says_why_in_its_row(audited):
    res, html, page, _ = audited
    frame = res.results["domains"]["site"].to_frame()
    small = frame[~frame["testable"]]
    assert len(small) >= 3 and small["note"].str.startswith("too small").all()
    rows = {r[0]: r for hidden, r in page.rows if not hidden and r and r[0].startswith("site = ")}
    for dom in small["domain"]:
        row = rows[dom]
        assert any(c.startswith("too small to test: n = ") for c in row), row
        assert "no" in row  # testable: no
    assert any("too small" not in c for c in rows["site = 1"])


# ------------------------------------------------------------------ 6. numeric levels
def test_natural_order():
    codes = list(range(12, 0, -1))
    assert natural_order(codes) == list(range(1, 13))
    assert natural_order([str(c) for c in codes]) == [str(c) for c in range(1, 13)]
    assert natural_order(["site 10", "site 2", "site 1"]) == ["site 1", "site 2", "site 10"]
    assert natural_order(["b", 2, "a", 10, None]) == [2, 10, "a", "b", None]


def test_integer_site_codes_sort_numerically_everywhere(audited):
    res, html, page, _ = audited
    want = [str(i) for i in range(1, 13)]
    assert res.results["data"].tables["site"]["level"].tolist() == want
    assert res.results["domains"]["site"].to_frame()["domain"].tolist() == \
        [f"site = {i}" for i in want]
    logo = res.results["leave_one_group_out"].to_frame()["group"].tolist()
    assert [g for g in logo if g in want] == [g for g in want if g in logo]
    shown = [r[0] for hidden, r in page.rows if not hidden and r and r[0].startswith("site = ")]
    assert shown[:12] == [f"site = {i}" for i in want]


def test_string_codes_and_mass_groups_sort_numerically():
    from confoundry.attribution import mass_by_group
    from confoundry.domains._groups import code_levels

    labels = code_levels("site", pd.Series([str(i) for i in (10, 2, 1, 12, 11, 3)])).labels
    assert labels == ("site = 1", "site = 2", "site = 3", "site = 10", "site = 11", "site = 12")
    rng = np.random.default_rng(0)
    r = mass_by_group(rng.uniform(size=60), np.repeat([10, 2, 1], 20), n_permutations=20,
                      random_state=0)
    assert r.table["group"].tolist() == ["1", "2", "10"]


# ------------------------------------------------------------- 8. the probe heat map
def test_probe_heatmap_is_coloured_by_effect_size_with_significance_marked():
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from confoundry.probes import ProbeResult

    t = pd.DataFrame({
        "metadata": ["site", "site", "site"],
        "probe": ["label_association", "metadata_only", "output_conditional"],
        "effect_size": [0.05, 0.57, 0.30],
        "effect_size_name": ["Cramér's V", "CV AUROC", "partial R²"],
        "q_value": [0.5, 0.001, 0.2], "significant": [False, True, False], "n": [900] * 3})
    fig = ProbeResult(t, 0.05, 200, "binary").plot()
    try:
        ax = fig.axes[0]
        colour = np.ma.filled(ax.images[0].get_array(), np.nan)[0]
        # one scale, variance explained: V 0.05 -> 0.0025; AUROC 0.57 -> (2|0.57 - 0.5|)² =
        # 0.0196, far paler than a partial R² of 0.30
        assert np.allclose(colour, [0.05 ** 2, 0.14 ** 2, 0.30])
        assert colour[1] < colour[2]
        label = fig.axes[1].get_ylabel()
        assert "effect size" in label and "(2·|AUROC − 0.5|)²" in label
        texts = [x.get_text() for x in ax.texts]
        assert "AUROC 0.57*" in texts and not any(x.endswith("*") for x in texts if "pR²" in x)
        boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(boxes) == 1 and boxes[0].get_xy() == (0.5, -0.5)  # the significant cell
    finally:
        plt.close(fig)


# ------------------------------------------------------------------ 9. unanswered
def test_questions_of_steps_that_did_not_run_say_why(audited):
    res, _, _, _ = audited
    steps = dict(res.steps)
    steps["probes"] = cf.audit.StepStatus("probes", "failed", "KeyError: 'x'",
                                          question="Did it learn the site?", lost="high")
    failed = replace(res, steps=steps,
                     results={k: v for k, v in res.results.items() if k != "probes"})
    q = four_questions(failed)[2]
    assert q["status"] == "unanswered" and "failed (KeyError: 'x')" in q["answer"]
    assert q["number"] == "–" and q["step"] == "step-probes"

    from sklearn.linear_model import LogisticRegression

    X, y, _ = make_data(200)
    small = cf.Audit(LogisticRegression().fit(X, y), X, y, verbose=False, n_boot=20,
                     random_state=0, steps=["data", "performance"]).run()
    qs = four_questions(small)
    assert [q["status"] for q in qs] == ["unanswered"] * 4
    assert qs[0]["answer"] == "Not asked: step 'comparison' was left out (steps=...)."
    assert all(q["severity"] == "info" for q in qs)
    page = small.to_html()
    assert all(q in page for q in QUESTIONS) and "Not asked: step" in page
