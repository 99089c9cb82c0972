"""A failed step is never quiet: its error, its severity, the unanswered question, strict=True."""

from __future__ import annotations

import dataclasses
import re
import warnings

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

import confoundry as cf  # noqa: E402
from confoundry.audit import _steps  # noqa: E402
from confoundry.audit._findings import VERDICTS  # noqa: E402
from test_audit import FAST, make_data, train_mlp  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    X, y, meta = make_data()
    tr, te = slice(0, 200), slice(200, None)
    return {"net": train_mlp(X.iloc[tr], y[tr]),
            "X_train": X.iloc[tr].reset_index(drop=True), "y_train": y[tr],
            "X_test": X.iloc[te].reset_index(drop=True), "y_test": y[te],
            "meta_test": meta.iloc[te].reset_index(drop=True)}


def step(name):
    return next(st for st in _steps.STEPS if st.name == name)


def break_steps(monkeypatch, *names, lost=None, exc=None):
    """Make the named steps raise ``exc`` (from a function named ``explode``)."""
    exc = IndexError("tuple index out of range") if exc is None else exc

    def explode(ctx):
        raise exc

    def wrap(st):
        if st.name not in names:
            return st
        return dataclasses.replace(st, run=explode, **({} if lost is None else {"lost": lost}))

    monkeypatch.setattr(_steps, "STEPS", tuple(wrap(st) for st in _steps.STEPS))


def small_audit(s, **kw):
    return cf.Audit(s["net"], s["X_test"], s["y_test"], metadata=s["meta_test"], random_state=0,
                    **{**FAST, **kw})


def test_failed_step_records_type_message_and_last_frame(setup, monkeypatch):
    break_steps(monkeypatch, "probes", exc=KeyError("no column 'site'"))
    res = small_audit(setup, steps=["data", "performance", "probes"]).run()
    st = res.steps["probes"]
    assert st.status == "failed"
    assert st.error_type == "KeyError" and st.error_message == "\"no column 'site'\""
    assert re.fullmatch(r".*test_failures_audit\.py:\d+ in explode", st.where), st.where
    assert "explode" in st.detail and "KeyError" in st.detail
    assert st.question == step("probes").question and st.lost == step("probes").lost
    assert res.steps_frame().set_index("name").loc["probes", "error_type"] == "KeyError"
    page = res.to_html()
    assert "raised at" in page and "in explode" in page


@pytest.mark.parametrize("name", ["performance", "effect_curves", "domains"])
def test_failed_step_severity_follows_what_was_lost(setup, monkeypatch, name):
    break_steps(monkeypatch, name)
    res = small_audit(setup, steps=["data", name]).run()
    (f,) = [f for f in res.findings() if f.kind == "step_failed"]
    assert f.severity == step(name).lost
    assert step(name).question in f.title and "IndexError" in f.title
    assert f.evidence["question"] == step(name).question


def test_failed_high_loss_step_is_high():
    # the case: a failed performance step was reported as "low"
    assert step("performance").lost == "high" and step("probes").lost == "high"


@pytest.mark.parametrize("lost", [None, "low"])
def test_verdict_with_performance_probes_and_domains_failed(setup, monkeypatch, capsys, lost):
    """With the performance, probe and domain steps all failed the verdict must not read
    "No serious problem found in the steps that ran" (whatever severity they carry)."""
    break_steps(monkeypatch, "performance", "probes", "domains", lost=lost)
    res = small_audit(setup, steps=["data", "performance", "probes", "domains"]).run()
    v = res.verdict()
    assert "No serious problem found in the steps that ran" not in v.text
    assert "No problem found" not in v.text
    assert not any(re.fullmatch(re.escape(t).replace(re.escape("{n}"), r"\d+"), v.text)
                   for t in VERDICTS.values() if t.startswith("No"))
    assert "3 question" in v.text
    failed = v.questions("failed")
    assert failed == [step(n).question for n in ("performance", "probes", "domains")]
    if lost is None:
        assert v.level == "high"
    page = res.to_html()
    head = page[page.index('id="verdict"'):page.index("<h3>Steps</h3>")]
    assert "Unanswered: a step failed" in head
    assert all(q in head for q in failed)
    assert res.to_dict()["verdict"]["unanswered"][0]["step"] == "performance"
    assert capsys.readouterr().out == ""  # nothing printed by the audit itself


def test_skipped_for_missing_inputs_is_listed_apart_from_failed(setup, monkeypatch):
    res = small_audit(setup).run()  # no training data: baselines & co. skipped
    v = res.verdict()
    skipped = {u["step"]: u for u in v.unanswered if u["status"] == "skipped"}
    assert "baselines" in skipped and "needs training data" in skipped["baselines"]["reason"]
    assert skipped["baselines"]["question"] == step("baselines").question
    assert not v.questions("failed")
    assert "unanswered" not in v.text  # nothing failed: the sentence is the usual one
    page = res.to_html()
    assert "Not asked: an input is missing" in page and "Unanswered: a step failed" not in page
    # left out on request: not an unanswered question
    only = small_audit(setup, steps=["data", "performance"]).run()
    assert not only.verdict().unanswered or all(
        u["status"] == "skipped" and "not requested" not in u["reason"]
        for u in only.verdict().unanswered)


def test_a_step_blocked_by_a_failed_step_counts_as_failed(setup, monkeypatch):
    s = setup
    break_steps(monkeypatch, "attributions")
    res = small_audit(s, steps=["data", "attributions", "agreement", "error_contrast"]).run()
    assert res.steps["agreement"].status == "skipped"
    assert res.steps["agreement"].blocked_by == "attributions"
    failed = {u["step"] for u in res.verdict().unanswered if u["status"] == "failed"}
    assert failed == {"attributions", "agreement", "error_contrast"}


def test_strict_reraises_the_original_exception_with_the_step_named(setup, monkeypatch):
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    break_steps(monkeypatch, "performance")
    with pytest.raises(IndexError, match="tuple index out of range") as info:
        small_audit(setup, steps=["data", "performance", "probes"], strict=True).run()
    notes = getattr(info.value, "__notes__", [])
    assert any("audit step 'performance'" in n for n in notes), notes
    assert torch.are_deterministic_algorithms_enabled() == before
    with pytest.raises(TypeError, match="strict='yes' is not valid"):
        small_audit(setup, strict="yes")
    # a skip is not a failure, even when strict
    res = cf.Audit(setup["net"], setup["X_test"], setup["y_test"], random_state=0,
                   steps=["data", "probes"], strict=True, **FAST).run()
    assert res.steps["probes"].status == "skipped"


def test_step_warnings_are_collapsed_per_step_never_in_a_table(setup, monkeypatch, capfd):
    def noisy(*args, **kwargs):
        warnings.warn("lbfgs failed to converge <b>x</b>", UserWarning, stacklevel=2)
        warnings.warn("non-finite gradients", RuntimeWarning, stacklevel=2)
        return None

    monkeypatch.setattr(_steps, "discover_slices", noisy)
    res = cf.Audit(setup["net"], setup["X_test"], setup["y_test"], random_state=0,
                   steps=["data", "slices"], **FAST).run()
    out, err = capfd.readouterr()
    assert out == "" and "converge" not in err and "gradients" not in err
    assert res.steps["slices"].warnings == ("RuntimeWarning: non-finite gradients",
                                            "UserWarning: lbfgs failed to converge <b>x</b>")
    page = res.to_html()
    block = re.search(r'<details class="warnings"><summary>2 warnings raised in this step'
                      r'</summary>(.*?)</details>', page, re.S)
    assert block and "lbfgs failed to converge &lt;b&gt;x&lt;/b&gt;" in block.group(1)
    for table in re.findall(r"<table.*?</table>", page, re.S):
        assert "converge" not in table and "non-finite gradients" not in table
    assert "2 warnings, shown with the step" in page


def test_full_audit_prints_nothing(setup, capfd):
    s = setup
    cf.Audit(s["net"], s["X_test"], s["y_test"], metadata=s["meta_test"],
             X_train=s["X_train"], y_train=s["y_train"], random_state=0,
             expectations={"asthma": "increasing"}, **FAST).run()
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out[-500:], err[-500:])
