"""Issue 20: findings a reader can trust — severity with a minimum effect and n, small groups
named as too small, findings grouped across domains, degenerate models, metadata that is also an
input, and ``print(result)``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import confoundry as cf
from confoundry import Finding
from confoundry._severity import MIN_N, SEVERITY_RULES, grade, severity_rules
from confoundry.audit._findings import group_findings
from confoundry.audit._text import evidence_line, format_findings

# --------------------------------------------------------------------------- the rules


def test_severity_rules_are_documented_and_graded():
    t = severity_rules()
    assert set(t["kind"]) == set(SEVERITY_RULES)
    assert (t["min_n"] == MIN_N).all() and t["why"].str.len().gt(10).all()
    r = t.set_index("kind")
    assert r.loc["baseline_outperforms", "min_effect"] == 0.02
    assert r.loc["confounded_output", "min_effect"] == 0.01
    # supported and large: the ceiling; small: one level down; tiny: two; too few rows: low
    assert grade("confounded_output", 0.02, n=500) == "high"
    assert grade("confounded_output", 0.005, n=500) == "medium"
    assert grade("confounded_output", 0.001, n=500) == "low"
    assert grade("confounded_output", 0.5, n=MIN_N - 1) == "low"
    assert grade("confounded_dataset", 0.3, n=500) == "medium"  # its ceiling
    assert grade("baseline_outperforms", -0.05, n=500, ceiling="medium") == "medium"


def test_grouping_keeps_overall_findings_and_merges_domains():
    fs = [Finding("baseline_outperforms", "medium", 2, f"In '{d}' ebm wins.", subject=d,
                  model="ebm", domain=d, evidence={"difference": -0.05, "n": 100})
          for d in ("s1", "s2", "s3")]
    fs.append(Finding("baseline_outperforms", "high", 2, "ebm wins overall.", subject="auroc",
                      model="ebm", domain="overall"))
    fs.append(Finding("baseline_outperforms", "medium", 2, "In 's1' tree wins.", subject="s1",
                      model="tree", domain="s1"))
    out = group_findings(fs)
    assert len(out) == 3
    grouped = out[0]
    assert grouped.domain == "3 domains" and grouped.evidence["n_grouped"] == 3
    assert [r["domain"] for r in grouped.evidence["rows"]] == ["s1", "s2", "s3"]
    assert "'s2', 's3'" in grouped.title
    assert out[1].domain == "overall" and out[2].model == "tree"  # a lone one stays itself


# ------------------------------------------------------------------ sites of 3, 4, 500


@pytest.fixture(scope="module")
def small_sites_audit():
    rng = np.random.default_rng(3)
    sizes = {"10": 3, "11": 4, "2": 500}
    site = np.concatenate([[k] * v for k, v in sizes.items()])
    n = len(site)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    logit = 1.2 * X["a"] - 0.8 * X["b"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    # the two small sites get the "perfect" labels a 3-patient site can give by chance
    y[:3], y[3:7] = [1, 0, 1], [0, 1, 0, 1]
    Xtr = pd.DataFrame(rng.normal(size=(600, 4)), columns=["a", "b", "c", "d"])
    ytr = (rng.random(600) < 1 / (1 + np.exp(-(1.2 * Xtr["a"] - 0.8 * Xtr["b"])))).astype(int)
    model = LogisticRegression().fit(Xtr[["a", "b"]].assign(c=0, d=0), ytr)
    meta = pd.DataFrame({"inst": site.astype(int)})
    audit = cf.Audit(model, X, y, metadata=meta, X_train=Xtr, y_train=ytr, n_boot=100,
                     n_permutations=100, random_state=0, verbose=False,
                     baseline_kinds=("logistic", "tree"),
                     steps=["data", "baselines", "performance", "comparison", "probes",
                            "domains"])
    return audit.run()


def test_no_finding_rests_on_the_two_small_sites(small_sites_audit):
    res = small_sites_audit
    small = [f for f in res.findings() if f.kind == "too_small_to_judge"]
    assert len(small) == 1
    assert "'inst = 10' (n = 3)" in small[0].title and "'inst = 11' (n = 4)" in small[0].title
    assert small[0].severity == "info"
    for f in res.findings():
        if f.kind == "too_small_to_judge":
            continue
        assert f.domain not in ("inst = 10", "inst = 11"), f.title
        assert "inst = 10" not in f.title and "inst = 11" not in f.title, f.title
        rows = f.evidence.get("rows", []) if isinstance(f.evidence, dict) else []
        assert all(r.get("domain") not in ("inst = 10", "inst = 11") for r in rows)


def test_report_says_the_small_sites_are_too_small(small_sites_audit):
    page = small_sites_audit.to_html()
    assert "Too small to judge" in page and "too small to test" in page
    # integer site codes in numeric order in the domain table
    t = small_sites_audit["domains"]["inst"].by_domain
    assert list(t["domain"]) == ["inst = 2", "inst = 10", "inst = 11"]


# --------------------------------------------------------------- domains grouped in one


def test_domain_findings_of_one_kind_are_one_finding():
    rng = np.random.default_rng(1)
    n_site, k = 300, 4
    X = pd.DataFrame(rng.normal(size=(n_site * k, 3)), columns=["a", "b", "c"])
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-2 * X["a"]))).astype(int)
    meta = pd.DataFrame({"site": np.repeat([f"s{i}" for i in range(k)], n_site)})
    # a model that is good nowhere: every site has the baseline winning
    def weak(Z):
        Z = np.asarray(Z, dtype=float)
        return 1 / (1 + np.exp(-(0.3 * Z[:, 0] + rng.normal(0, 1.5, len(Z)))))
    res = cf.Audit(weak, X, y, metadata=meta, X_train=X, y_train=y, n_boot=100,
                   n_permutations=50, random_state=0, verbose=False, baseline_kinds=("logistic",),
                   steps=["data", "baselines", "performance", "comparison", "domains"]).run()
    wins = [f for f in res.findings() if f.kind == "baseline_outperforms"
            and f.domain not in ("overall", None)]
    assert len(wins) == 1, [f.title for f in wins]
    assert wins[0].evidence["n_grouped"] == k
    assert {r["domain"] for r in wins[0].evidence["rows"]} == {f"site = s{i}" for i in range(k)}
    page = res.to_html()  # the report lists the members one short line each
    for i in range(k):
        assert f"site = s{i} (medium): difference" in page or f"site = s{i} (low): " \
            "difference" in page


# ------------------------------------------------------------------ degenerate models


def test_a_constant_baseline_is_flagged_and_left_out(monkeypatch, tabular):
    from confoundry.models._tree import TreeGlassBox

    X, y, meta = tabular
    monkeypatch.setattr(TreeGlassBox, "predict_scores",
                        lambda self, Z: np.full(len(np.asarray(getattr(Z, "values", Z))), 0.3))
    model = LogisticRegression().fit(X, y)
    res = cf.Audit(model, X, y, metadata=meta, X_train=X, y_train=y, n_boot=50,
                   n_permutations=50, random_state=0, verbose=False,
                   baseline_kinds=("logistic", "tree"),
                   steps=["data", "baselines", "performance", "comparison"]).run()
    deg = [f for f in res.findings() if f.kind == "degenerate_model"]
    assert len(deg) == 1 and deg[0].model == "tree" and deg[0].severity == "medium"
    assert "same score (0.3)" in deg[0].title
    assert "tree" in res["baselines"]  # kept in the record ...
    assert set(res["comparison"].models) == {"LogisticRegression", "logistic"}  # ... left out


def test_a_constant_model_is_a_high_finding(tabular):
    X, y, meta = tabular
    res = cf.Audit(lambda Z: np.full(len(Z), 0.4), X, y, n_boot=50, random_state=0,
                   verbose=False, steps=["data", "performance"]).run()
    deg = [f for f in res.findings() if f.kind == "degenerate_model"]
    assert len(deg) == 1 and deg[0].severity == "high" and "0.4" in deg[0].title


def test_tuning_at_the_edge_of_its_grid_is_said():
    from confoundry.models._baselines import grid_boundary

    rec = {"search": "grid", "search_space": {"C": [1e-4, 1e-2, 1.0], "penalty": "l2"},
           "best_params": {"C": 1.0, "penalty": "l2"}}
    assert grid_boundary(rec) == {"C": {"value": 1.0, "grid": [1e-4, 1e-2, 1.0],
                                        "edge": "highest"}}
    assert grid_boundary({**rec, "best_params": {"C": 1e-2}}) == {}
    assert grid_boundary({**rec, "search": "fixed"}) == {}
    # max_depth = 1 is the least a tree can have: not an edge with anything beyond it
    assert grid_boundary({"search": "grid", "search_space": {"max_depth": [1, 2, 3]},
                          "best_params": {"max_depth": 1}}) == {}
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] > 0).astype(int)  # one split is perfect: the smallest leaves tie and win
    base = cf.fit_baselines(X, y, kinds=("tree",), random_state=0, verbose=False)
    edge = [f for f in base.findings() if f.kind == "tuning_at_boundary"]
    assert len(edge) == 1 and edge[0].severity == "low"
    assert "min_samples_leaf = 5, the lowest value" in edge[0].title
    assert "max_depth" not in edge[0].title


# -------------------------------------------------------- metadata that is also an input


def test_metadata_that_is_an_input_is_warned_and_marked():
    rng = np.random.default_rng(2)
    n = 600
    X = pd.DataFrame({"age": rng.normal(size=n), "male": rng.integers(0, 2, n).astype(float)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(X["age"] + 1.5 * X["male"])))).astype(int)
    model = LogisticRegression().fit(X, y)
    meta = pd.DataFrame({"sex": np.where(X["male"] == 1, "M", "F"),
                         "site": rng.choice(["a", "b"], n)})
    with pytest.warns(UserWarning, match="'sex' is the input 'male'"):
        audit = cf.Audit(model, X, y, metadata=meta, n_permutations=100, random_state=0,
                         verbose=False, steps=["probes"])
    res = audit.run()
    kinds = {(f.kind, f.subject) for f in res.findings()}
    assert ("confounded_output", "sex") not in kinds
    assert ("metadata_is_input", "sex") in kinds
    t = res["probes"].table
    assert t.loc[t["metadata"] == "sex", "note"].str.contains("also a model input").all()
    assert (t.loc[t["metadata"] == "site", "note"] == "").all()
    assert any("also a model input" in n for n in res.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning without such a column
        cf.Audit(model, X, y, metadata=meta[["site"]], verbose=False, steps=["probes"])


# ----------------------------------------------------------- small effects stay visible


def test_a_real_but_tiny_expectation_violation_is_not_high():
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame({"age": rng.normal(size=n), "asthma": rng.integers(0, 2, n).astype(float)})

    def tiny(Z):  # asthma lowers the log-odds by 0.01 against an output spread of ~2
        Z = np.asarray(Z, dtype=float)
        return 1 / (1 + np.exp(-(2 * Z[:, 0] - 0.01 * Z[:, 1])))
    big = cf.check_expectations({"m": tiny}, X, {"asthma": "increasing", "age": "decreasing"},
                                n_boot=100, random_state=0, verbose=False)
    sev = {f.subject: f.severity for f in big.findings()}
    assert sev == {"asthma": "low", "age": "high"}
    row = big.table.set_index("feature").loc["asthma"]
    assert bool(row["violated"]) and abs(row["effect_sd"]) < 0.0125


def test_a_faint_membership_signal_does_not_say_do_not_publish():
    rng = np.random.default_rng(0)
    n = 4000
    y_tr, y_te = rng.integers(0, 2, n), rng.integers(0, 2, n)

    def probs(y, shift):  # members' true-class probability a little higher on average
        m = rng.normal(0.4 + shift, 1.0, len(y))
        p1 = 1 / (1 + np.exp(-m))
        return np.where(y == 1, p1, 1 - p1)

    res = cf.membership_risk(None, np.zeros((n, 1)), y_tr, np.zeros((n, 1)), y_te,
                             scores=probs(y_te, 0.0), train_scores=probs(y_tr, 0.12),
                             attacks=("loss",), n_boot=200, random_state=0, verbose=False)
    f = res.findings()[0]
    assert res._level(res.model_name) == "faint", res.table.T
    assert f.severity == "low"
    assert "Do not publish" not in f.title and "no more training records than chance" in f.title


# ------------------------------------------------------------------------ print(result)


def test_print_result_shows_findings_worst_first_wrapped(small_sites_audit, monkeypatch):
    monkeypatch.setenv("COLUMNS", "72")
    text = str(small_sites_audit)
    lines = text.splitlines()
    assert lines[0].startswith(small_sites_audit.verdict().text[:30])
    assert max(len(line) for line in lines) <= 72
    order = [line.split("]")[0][1:] for line in lines if line.startswith("[")]
    ranks = [("HIGH", "MEDIUM", "LOW", "INFO").index(s) for s in order]
    assert ranks == sorted(ranks) and len(order) == len(small_sites_audit.findings())
    assert "..." not in text.replace("... and", "").replace("steps=...", "")  # nothing cut
    assert text.count("\n1. Is deep learning even better here?") == 1  # the four questions
    assert isinstance(small_sites_audit.summary(), pd.DataFrame)


def test_evidence_line_and_format():
    assert evidence_line({}) == ""
    f = Finding("x", "low", 3, "word " * 30, evidence={"effect": -0.5, "ci_low": -0.6,
                                                     "ci_high": -0.4, "q_value": 0.01, "n": 50})
    out = format_findings([f], width=50)
    assert out.splitlines()[0].startswith("[LOW] word")
    assert "effect = -0.5 (CI -0.6 to -0.4) · q = 0.01 · n = 50" in out.replace("\n      ", " ")
    assert all(len(line) <= 50 for line in out.splitlines())


# ------------------------------------------------- pathways in the audit (issue 19, item 4)


def _batch_through_assay(n, seed):
    rng = np.random.default_rng(seed)
    batch = rng.integers(0, 2, n)
    y = rng.integers(0, 2, n)
    X = pd.DataFrame({"assay": y + rng.normal(size=n) + 1.5 * batch,  # the batch shifts it
                      "age": y + rng.normal(size=n)})
    return X, y, pd.DataFrame({"batch": batch})


def test_the_audit_traces_a_significant_probe_through_the_features():
    X, y, meta = _batch_through_assay(1500, 0)
    Xtr, ytr, _ = _batch_through_assay(1500, 1)
    model = LogisticRegression().fit(Xtr, ytr)
    res = cf.Audit(model, X, y, metadata=meta, n_permutations=200, n_boot=100,
                   random_state=0, verbose=False, steps=["probes", "pathways"]).run()
    assert res.steps["pathways"].status == "ran"
    conf = [f for f in res.findings() if f.kind == "confounded_output"]
    assert len(conf) == 1  # the pathway's finding replaces the probe's about the same column
    f = conf[0]
    assert f.severity == "high" and "goes through assay" in f.title, f.title
    assert "not a proof of cause" in f.title and "learned" not in f.title
    assert res["pathways"].verdict("batch") == "through features"
    # with a baseline fed the same features, the dependence is no more than the baseline's
    res2 = cf.Audit(model, X, y, metadata=meta, X_train=Xtr, y_train=ytr,
                    baseline_kinds=("logistic",), n_permutations=200, n_boot=100,
                    random_state=0, verbose=False,
                    steps=["baselines", "probes", "pathways"]).run()
    f2 = [f for f in res2.findings() if f.kind == "confounded_output"]
    assert len(f2) == 1 and f2[0].severity == "medium", f2[0].title
    assert "no more than logistic" in f2[0].title
    page = res2.to_html()
    assert "Confounder pathways" in page


def test_pathways_skip_without_a_significant_probe():
    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = (X["a"] + rng.normal(size=n) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    res = cf.Audit(model, X, y, metadata=pd.DataFrame({"site": rng.integers(0, 3, n)}),
                   n_permutations=100, random_state=0, verbose=False,
                   steps=["probes", "pathways"]).run()
    st = res.steps["pathways"]
    assert st.status == "skipped" and "no conditional output probe is significant" in st.reason
    assert st.reason.startswith("nothing to do: ")
    assert not [q for q in res.verdict().unanswered if q["step"] == "pathways"]  # answered
