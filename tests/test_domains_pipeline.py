"""The audit's calling convention for split_domains, discover_slices and contrast_attributions:
AuditData passed through, precomputed scores and the overall panel reused, renamed arguments."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from confoundry import AttributionResult as Attribution
from confoundry.data import AuditData
from confoundry.domains import contrast_attributions, discover_slices, split_domains
from confoundry.stats import HEADLINE_METRIC, bootstrap_panel

N_BOOT = 100


class Unscorable:
    """A model that fails the test if anyone scores it."""

    name = "unscorable"

    def predict_proba(self, X):
        raise AssertionError("the model must not be called when scores are given")


@pytest.fixture(scope="module")
def audit():
    rng = np.random.default_rng(5)
    n = 1200
    X = pd.DataFrame({"age": rng.normal(60, 10, n), "asthma": rng.integers(0, 2, n) * 1.0})
    y = rng.integers(0, 2, n)
    meta = pd.DataFrame({"site": rng.choice(["a", "b", "c"], n), "sex": rng.choice(["F", "M"], n)})
    good = np.clip(0.5 + 0.35 * (y - 0.5) * 2 * rng.random(n) + rng.normal(0, 0.1, n), 0, 1)
    dl = np.where(meta["site"] == "c", rng.random(n), good)
    bs = {"ebm": np.clip(good + rng.normal(0, 0.05, n), 0, 1), "tree": rng.random(n)}
    data = AuditData(X, y, meta)
    panel = bootstrap_panel(y, {"mlp": dl, **bs}, task="binary", n_boot=N_BOOT, random_state=7,
                            reference="mlp")
    return data, dl, bs, panel


@pytest.mark.parametrize("by", ["site", "asthma", ["site", "sex"], "series", "array"])
def test_split_domains_builds_no_audit_data(audit, count_audit_data, by):
    data, dl, bs, panel = audit
    by = {"series": data.metadata["site"], "array": data.metadata["sex"].to_numpy()}.get(
        by, by) if isinstance(by, str) else by
    res = split_domains(Unscorable(), data, None, by=by, baselines={"ebm": Unscorable()},
                        scores=dl, baseline_scores=bs, overall=panel, model_name="mlp",
                        n_boot=N_BOOT, random_state=0, verbose=False)
    assert count_audit_data == []
    assert set(res.by_model["model"]) == {"mlp", "ebm", "tree"}


def test_overall_rows_come_from_the_panel(audit):
    data, dl, bs, panel = audit
    res = split_domains(None, data, None, by="site", scores=dl, baseline_scores=bs,
                        overall=panel, model_name="mlp", n_boot=N_BOOT, random_state=0,
                        verbose=False)
    assert res.params["overall_from_panel"] is True
    frame = panel.frame().set_index(["model", "metric"])
    rows = res.by_model[res.by_model["domain"] == "overall"].set_index("model")
    for model in ("mlp", "ebm", "tree"):
        for m in res.metrics:
            assert rows.loc[model, m] == frame.loc[(model, m), "estimate"]
            assert rows.loc[model, f"{m}_ci_low"] == frame.loc[(model, m), "ci_low"]
            assert rows.loc[model, f"{m}_ci_high"] == frame.loc[(model, m), "ci_high"]
    # the paired overall difference uses the panel's shared replicates
    c = res.comparison.set_index(["baseline", "domain", "metric"])
    d = panel.replicates["mlp"]["auroc"] - panel.replicates["tree"]["auroc"]
    lo, hi = np.quantile(d, [0.025, 0.975])
    assert c.loc[("tree", "overall", "auroc"), "ci_low"] == pytest.approx(lo)
    assert c.loc[("tree", "overall", "auroc"), "ci_high"] == pytest.approx(hi)
    # the domain rows do not depend on where the overall rows came from
    alone = split_domains(None, data, None, by="site", scores=dl, baseline_scores=bs,
                          model_name="mlp", n_boot=N_BOOT, random_state=0, verbose=False)
    assert alone.params["overall_from_panel"] is False
    pd.testing.assert_frame_equal(alone.by_domain, res.by_domain)


def test_a_model_missing_from_the_panel_bootstraps_the_overall_here(audit):
    data, dl, bs, panel = audit
    res = split_domains(None, data, None, by="site", scores=dl, baseline_scores=bs,
                        overall=panel, n_boot=N_BOOT, random_state=0, verbose=False)
    assert res.model_name == "model" and res.params["overall_from_panel"] is False
    with pytest.raises(ValueError, match="overall holds 1200 rows"):
        split_domains(None, None, data.y[:600], by=data.metadata["site"].to_numpy()[:600],
                      scores=dl[:600], overall=panel)
    with pytest.raises(TypeError, match="not a MetricPanel"):
        split_domains(None, data, None, by="site", scores=dl, overall={"mlp": 1})


def test_split_domains_without_X_and_with_sklearn_metric_names(audit):
    data, dl, bs, _ = audit
    site = data.metadata["site"]
    res = split_domains(None, None, data.y, by=site, scores=dl, baseline_scores=bs,
                        metrics=["roc_auc", "average_precision"], n_boot=N_BOOT,
                        random_state=0, verbose=False)
    assert res.metrics == ("auroc", "auprc")
    ref = split_domains(None, data, None, by="site", scores=dl, baseline_scores=bs,
                        metrics=["auroc", "auprc"], n_boot=N_BOOT, random_state=0,
                        verbose=False)
    pd.testing.assert_frame_equal(res.by_model, ref.by_model)
    assert res.difference("roc_auc").loc[0, "metric"] == "auroc"
    import matplotlib.pyplot as plt

    plt.close(res.plot(metric="average_precision"))
    with pytest.raises(ValueError, match="was not computed"):
        res.plot(metric="brier")
    with pytest.raises(TypeError, match="baseline 'ebm' has no precomputed scores"):
        split_domains(None, None, data.y, by=site, scores=dl, baselines={"ebm": Unscorable()})


def test_split_domains_validates_a_by_series_like_metadata(audit):
    data, dl, _, _ = audit
    site = data.metadata["site"].copy()
    site.iloc[3] = None
    with pytest.raises(ValueError, match="1 missing value"):
        split_domains(None, data, None, by=site, scores=dl)
    with pytest.raises(ValueError, match="single level"):
        split_domains(None, data, None, by=np.zeros(data.n_samples), scores=dl)
    with pytest.raises(ValueError, match="1199 rows but X has 1200"):
        split_domains(None, data, None, by=pd.DataFrame({"s": np.arange(1199) % 2}), scores=dl)


def test_result_surface_params_json_and_finding_keys(audit):
    data, dl, bs, panel = audit
    res = split_domains(None, data, None, by="site", scores=dl, baseline_scores=bs,
                        overall=panel, model_name="mlp", n_boot=N_BOOT, random_state=0,
                        fdr=0.1, verbose=False)
    assert res.fdr == 0.1 and res.params["fdr"] == 0.1 and res.params["n_boot"] == N_BOOT
    d = json.loads(res.to_json())
    assert {"table", "by_model", "comparison", "difference", "overall", "params", "model"} <= set(d)
    assert "by_domain" not in d and "_replicates" not in d and d["model"] == "mlp"
    found = res.findings()
    keys = [f.key for f in found]
    assert len(set(keys)) == len(keys)
    gap = [f for f in found if f.kind == "domain_gap"]
    assert gap and gap[0].domain == "site = c" and gap[0].model == "mlp"
    lost = [f for f in found if f.kind == "baseline_outperforms"]
    assert lost and all(f.model in bs and f.domain == f.subject for f in lost)


def test_multiclass_headline_metric():
    rng = np.random.default_rng(0)
    n = 900
    y = rng.integers(0, 3, n)
    P = rng.dirichlet(np.ones(3), n)
    P[np.arange(n), y] += np.where(np.arange(n) < 450, 2.0, 0.0)
    P /= P.sum(axis=1, keepdims=True)
    g = np.where(np.arange(n) < 450, "good", "bad")
    res = split_domains(None, None, y, by=g, scores=P, n_boot=200, random_state=0,
                        verbose=False)
    assert res._metric(None) == HEADLINE_METRIC["multiclass"] == "macro_auroc"
    (gap,) = [f for f in res.findings() if f.kind == "domain_gap"]
    assert gap.evidence["metric"] == "macro_auroc" and gap.subject == "domain = bad"


# ------------------------------------------------------------------------- discover_slices
def test_discover_slices_from_scores_builds_nothing_and_calls_nothing(count_audit_data):
    rng = np.random.default_rng(1)
    n = 3000
    X = pd.DataFrame({"asthma": rng.integers(0, 2, n) * 1.0, "age": rng.uniform(20, 90, n)})
    y = rng.integers(0, 2, n)
    bad = ((X["asthma"] == 1) & (X["age"] >= 72)).to_numpy()
    wrong = rng.random(n) < np.where(bad, 0.45, 0.1)
    s = np.where(wrong, 1 - y, y) * 0.6 + 0.2
    data = AuditData(X, y, pd.DataFrame({"site": rng.choice(["a", "b"], n)}))
    count_audit_data.clear()
    res = discover_slices(Unscorable(), data, None, scores=s, random_state=0, verbose=False,
                          model_name="mlp")
    assert count_audit_data == []
    assert res.model_name == "mlp" and res.confirmed.loc[0, "rule"].startswith("asthma = 1")
    assert res.params["fdr"] == res.fdr and res.params["random_state"] == 0
    f = res.findings()[0]
    assert f.domain == f.subject == res.confirmed.loc[0, "rule"]
    d = json.loads(res.to_json())
    assert d["model"] == "mlp" and d["params"]["error"] == "misclassification"
    # only metadata is searched without X
    meta_only = discover_slices(None, None, y, metadata=data.metadata, scores=s,
                                random_state=0, verbose=False)
    assert all(r.startswith("site") for r in meta_only.table["rule"])


# ------------------------------------------------------------------- contrast_attributions
def _attr(values):
    names = [f"f{j}" for j in range(values.shape[1])]
    return Attribution(values, 0.0, values, names, method="manual", model_name="mlp")


def test_contrast_by_positional_keyword_and_deprecated_groups():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(200, 3))
    g = rng.random(200) < 0.3
    v[g, 0] += 1.0
    a = contrast_attributions(_attr(v), g, n_permutations=200, n_boot=50, random_state=0)
    b = contrast_attributions(_attr(v), by=g, n_permutations=200, n_boot=50, random_state=0)
    with pytest.warns(DeprecationWarning, match="groups"):
        c = contrast_attributions(_attr(v), groups=g, n_permutations=200, n_boot=50,
                                  random_state=0)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.table, c.table)
    with pytest.raises(TypeError, match="both by= and"):
        contrast_attributions(_attr(v), g, groups=g)
    with pytest.raises(TypeError, match="by is None"):
        contrast_attributions(_attr(v))
    assert a.params["n_permutations"] == 200 and a.fdr == 0.05
    (f,) = a.findings()
    assert f.domain == f.subject == "in group" and f.model == "mlp"
    d = json.loads(a.to_json())
    assert d["model"] == "mlp" and d["params"]["n_boot"] == 50
    strict = contrast_attributions(_attr(v), g, n_permutations=200, n_boot=50, random_state=0,
                                   fdr=1e-9)
    assert strict.findings() == []


# ------------------------------------------------- per-group claims: small-n floor (issue 18)
def test_leave_one_group_out_marks_groups_below_the_floor():
    """Two sites of 6 and 12 patients beside two of 150, every site's relation reversed but
    the first's: the small ones are held out and scored, but no p-value, no finding."""
    from sklearn.linear_model import LogisticRegression

    import confoundry as cf

    rng = np.random.default_rng(0)
    groups = np.repeat(["a", "b", "tiny", "small"], [150, 150, 6, 12])
    X = rng.normal(size=(len(groups), 2))
    sign = np.where(groups == "a", 1.0, -1.0)
    y = (2 * sign * X[:, 0] + rng.normal(size=len(groups)) > 0).astype(int)

    def fit(a, b):
        return LogisticRegression().fit(a, b)

    kw = {"n_boot": 200, "random_state": 0, "verbose": False}
    res = cf.leave_one_group_out(fit, X, y, groups, **kw)
    t = res.to_frame().set_index("group")
    assert t["testable"].to_dict() == {"a": True, "b": True, "small": False, "tiny": False,
                                       "(all, pooled)": True}
    assert t.loc["tiny", "note"] == "too small to test: n = 6 < min_n = 20"
    small = t.loc[["small", "tiny"]]
    assert small["estimate"].notna().all() and small["p_value"].isna().all()
    assert small["q_value"].isna().all() and small["ci_low"].isna().all()
    assert not small["significant"].any()
    assert {f.subject for f in res.findings()} & {"small", "tiny"} == set()
    assert res.params["min_n"] == 20 and list(res.to_frame().columns[-2:]) == ["testable",
                                                                                "note"]
    loose = cf.leave_one_group_out(fit, X, y, groups, min_n=1, min_events=0, **kw)
    lt = loose.to_frame().set_index("group")
    assert lt["p_value"].notna().all() and lt["testable"].all()
    # the BH family holds the testable groups only: two groups' q-values, not four
    from confoundry.stats import bh_adjust

    np.testing.assert_allclose(t.loc[["a", "b"], "q_value"],
                               bh_adjust(t.loc[["a", "b"], "p_value"].to_numpy()))
    with pytest.raises(ValueError, match="min_events=-1"):
        cf.leave_one_group_out(fit, X, y, groups, min_events=-1, **kw)
