"""AuditResult.add_section: extra report sections, escaped, with findings merged and ranked."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import confoundry as cf  # noqa: E402
from confoundry._result import Finding  # noqa: E402
from confoundry.audit._findings import rank_findings  # noqa: E402


@pytest.fixture(scope="module")
def result():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 2)), columns=["a", "b"])
    y = (X["a"] + rng.normal(size=120) > 0).astype(int).to_numpy()
    return cf.Audit(LogisticRegression().fit(X, y), X, y, verbose=False, n_boot=20,
                    random_state=0, steps=["data", "performance"]).run()


class _Res:
    def to_frame(self):
        return pd.DataFrame({"<i>col</i>": ["<script>x</script>"]})

    def plot(self, ax=None):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        return fig

    def findings(self):
        return [Finding("expectation_violation", "high", 9, "<b>bad</b> finding", "a", "m")]

    def to_dict(self):
        return {"x": 1}


def test_add_section_is_escaped_and_merges_findings(result) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    r2 = result.add_section("Truth <b>", _Res(), intro="<em>intro</em>", figure=fig)
    assert len(result.sections) == 0 and len(r2.sections) == 1  # immutable
    assert r2.summary().iloc[0]["title"] == "<b>bad</b> finding"
    page = r2.to_html()
    assert "<b>bad</b>" not in page and "&lt;b&gt;bad&lt;/b&gt;" in page
    assert "<script>" not in page and "&lt;em&gt;intro&lt;/em&gt;" in page
    assert "Truth &lt;b&gt;" in page and page.count("data:image/png;base64,") >= 3
    d = json.loads(r2.to_json())
    assert d["sections"][0]["content"] == {"x": 1} and d["sections"][0]["has_figure"]
    r3 = result.add_section("table only", pd.DataFrame({"q": [1.5]}), findings=False)
    assert "table only" in r3.to_html() and len(r3.findings()) == len(result.findings())


def test_add_section_validation(result) -> None:
    with pytest.raises(TypeError, match="title"):
        result.add_section("", None)
    with pytest.raises(TypeError, match="figure"):
        result.add_section("t", None, figure=3)
    with pytest.raises(ValueError, match="data URI"):
        result.add_section("t", None, figure="http://example.org/x.png")


def test_rank_findings_orders_kinds_within_severity() -> None:
    fs = [Finding("attribution_disagreement", "high", 9, "z"),
          Finding("baseline_outperforms", "high", 2, "y"),
          Finding("expectation_violation", "medium", 9, "m"),
          Finding("expectation_violation", "high", 9, "x")]
    assert [f.title for f in rank_findings(fs)] == ["x", "y", "z", "m"]
