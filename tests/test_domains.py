"""split_domains and contrast_attributions: values, CIs, baselines, inputs, plots."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

import confoundry as cf  # noqa: E402
from confoundry import AttributionResult as Attribution  # noqa: E402
from confoundry.domains import (  # noqa: E402
    ContrastResult,
    DomainResult,
    contrast_attributions,
    split_domains,
)


@pytest.fixture
def sites():
    """Binary data where the scores are informative at sites a and b and noise at site c."""
    rng = np.random.default_rng(3)
    n = 1500
    X = pd.DataFrame({"age": rng.normal(60, 10, n), "asthma": rng.integers(0, 2, n) * 1.0})
    y = rng.integers(0, 2, n)
    site = pd.Series(rng.choice(["a", "b", "c"], n, p=[0.4, 0.4, 0.2]), name="site")
    sex = rng.choice(["F", "M"], n)
    good = np.clip(0.5 + 0.35 * (y - 0.5) * 2 * rng.random(n) + rng.normal(0, 0.1, n), 0, 1)
    noise = rng.random(n)
    dl = np.where(site == "c", noise, good)
    baseline = np.clip(good + rng.normal(0, 0.05, n), 0, 1)
    meta = pd.DataFrame({"site": site.to_numpy(), "sex": sex})
    return X, y, site, meta, dl, baseline


def test_public_names():
    for name in ("split_domains", "discover_slices", "contrast_attributions", "DomainResult",
                 "SliceResult", "ContrastResult"):
        assert hasattr(cf, name)


def test_matches_fairlearn_metricframe(sites):
    from fairlearn.metrics import MetricFrame

    X, y, site, meta, dl, _ = sites
    res = split_domains(None, X, y, by=site, scores=dl, n_boot=50, random_state=0,
                        metrics=["auroc", "accuracy", "sensitivity", "brier", "log_loss"])
    mf = MetricFrame(
        metrics={"auroc": roc_auc_score,
                 "accuracy": lambda t, s: accuracy_score(t, s >= 0.5),
                 "sensitivity": lambda t, s: np.mean((s >= 0.5)[t == 1]),
                 "brier": brier_score_loss,
                 "log_loss": lambda t, s: log_loss(t, s, labels=[0, 1])},
        y_true=y, y_pred=dl, sensitive_features=site)
    ours = res.by_domain.set_index("domain")
    for level in ["a", "b", "c"]:
        for m in ["auroc", "accuracy", "sensitivity", "brier", "log_loss"]:
            assert ours.loc[f"site = {level}", m] == pytest.approx(mf.by_group.loc[level, m],
                                                                   rel=1e-9, abs=1e-12)
    for m in ["auroc", "accuracy"]:
        assert res.overall.loc[0, m] == pytest.approx(mf.overall[m], rel=1e-9)
    # fairlearn's difference() is max - min over groups
    gap = res.difference().set_index("metric")
    assert gap.loc["auroc", "difference"] == pytest.approx(mf.difference()["auroc"], rel=1e-9)
    assert ours["n"].tolist() == [int((site == v).sum()) for v in "abc"]
    assert ours["positives"].tolist() == [int(y[site == v].sum()) for v in "abc"]


def test_intersections_match_fairlearn(sites):
    from fairlearn.metrics import MetricFrame

    X, y, _, meta, dl, _ = sites
    res = split_domains(None, X, y, by=["site", "sex"], metadata=meta, scores=dl,
                        metrics=["auroc"], n_boot=20, random_state=0)
    mf = MetricFrame(metrics=roc_auc_score, y_true=y, y_pred=dl,
                     sensitive_features=meta[["site", "sex"]])
    assert len(res.by_domain) == 6
    for (s, x), v in mf.by_group.items():
        row = res.by_domain.set_index("domain").loc[f"site = {s} AND sex = {x}"]
        assert row["auroc"] == pytest.approx(v, rel=1e-9)
    assert res.by == ["site", "sex"]
    # a DataFrame gives the same domains
    res2 = split_domains(None, X, y, by=meta[["site", "sex"]], scores=dl, metrics=["auroc"],
                         n_boot=20, random_state=0)
    pd.testing.assert_frame_equal(res.by_domain, res2.by_domain)


def test_intervals_cover_and_are_reproducible(sites):
    X, y, site, _, dl, _ = sites
    a = split_domains(None, X, y, by=site, scores=dl, n_boot=200, random_state=1,
                      metrics=["auroc", "brier"])
    b = split_domains(None, X, y, by=site, scores=dl, n_boot=200, random_state=1,
                      metrics=["auroc", "brier"])
    pd.testing.assert_frame_equal(a.by_model, b.by_model)
    t = a.by_domain
    for m in ["auroc", "brier"]:
        assert (t[f"{m}_ci_low"] <= t[m]).all() and (t[m] <= t[f"{m}_ci_high"]).all()
    # the smaller site has the wider interval
    width = (t["auroc_ci_high"] - t["auroc_ci_low"]).to_numpy()
    assert width[2] > width[0]
    # site c is noise: its AUROC interval covers 0.5, the others are far above
    assert t.loc[2, "auroc_ci_low"] < 0.5 < t.loc[2, "auroc_ci_high"]
    assert t.loc[0, "auroc_ci_low"] > 0.7


def test_difference_and_domain_gap_finding(sites):
    X, y, site, _, dl, _ = sites
    res = split_domains(None, X, y, by=site, scores=dl, n_boot=300, random_state=0,
                        metrics=["auroc", "accuracy"])
    gap = res.difference("auroc").iloc[0]
    assert gap["domain_low"] == "site = c"
    assert gap["ci_low"] > 0 and gap["p_value"] < 0.01
    f = [x for x in res.findings() if x.kind == "domain_gap"]
    assert len(f) == 1 and f[0].tip == 9 and f[0].subject == "site = c"


def test_no_gap_without_a_real_difference():
    rng = np.random.default_rng(0)
    n = 1200
    y = rng.integers(0, 2, n)
    s = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, n), 0, 1)
    site = pd.Series(rng.choice(["a", "b"], n), name="site")
    res = split_domains(None, np.zeros((n, 1)), y, by=site, scores=s, n_boot=300,
                        random_state=0, metrics=["auroc"])
    assert res.difference().loc[0, "ci_low"] < 0 < res.difference().loc[0, "ci_high"]
    assert res.findings() == []


def test_baselines_paired_comparison(sites):
    X, y, site, _, dl, baseline = sites
    res = split_domains(None, X, y, by=site, scores=dl, baselines={"ebm": baseline},
                        n_boot=300, random_state=0, metrics=["auroc", "accuracy"])
    c = res.comparison.set_index(["domain", "metric"])
    assert set(res.by_model["model"]) == {"model", "ebm"}
    assert len(res.comparison) == 4 * 2  # (overall + 3 domains) x 2 metrics
    row = c.loc[("site = c", "auroc")]
    assert row["baseline_better"] and not row["model_better"]
    assert row["ci_high"] < 0
    assert row["difference"] == pytest.approx(row["model_value"] - row["baseline_value"])
    # where both are good, no significant loss for the model
    assert not c.loc[("site = a", "auroc"), "baseline_better"]
    assert np.all(res.comparison["q_value"] >= res.comparison["p_value"] - 1e-12)
    kinds = [f.kind for f in res.findings()]
    assert "baseline_outperforms" in kinds
    lost = [f for f in res.findings() if f.kind == "baseline_outperforms"]
    assert any(f.subject == "site = c" for f in lost)


def test_models_are_scored_through_as_model(sites):
    X, y, site, _, _, _ = sites
    lr = LogisticRegression().fit(X, y)
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    res = split_domains(lr, X, y, by=site, baselines={"tree": tree}, n_boot=30,
                        random_state=0, metrics=["auroc"])
    p = lr.predict_proba(X)[:, 1]
    mask = (site == "a").to_numpy()
    assert res.by_domain.loc[0, "auroc"] == pytest.approx(roc_auc_score(y[mask], p[mask]))
    assert res.model_name == "LogisticRegression"
    assert set(res.comparison["baseline"]) == {"tree"}


def test_by_feature_is_binned_into_quantiles(sites):
    X, y, _, _, dl, _ = sites
    res = split_domains(None, X, y, by="age", bins=4, scores=dl, n_boot=20, random_state=0,
                        metrics=["accuracy"])
    assert len(res.by_domain) == 4
    assert res.by_domain["n"].sum() == len(y)
    assert abs(res.by_domain["n"] - len(y) / 4).max() <= 1
    assert res.by_domain.loc[0, "domain"].startswith("age < ")
    assert res.by_domain.loc[3, "domain"].startswith("age >= ")
    # a binary feature keeps its levels
    res = split_domains(None, X, y, by="asthma", scores=dl, n_boot=20, random_state=0,
                        metrics=["accuracy"])
    assert res.by_domain["domain"].tolist() == ["asthma = 0", "asthma = 1"]


def test_by_masks_may_overlap(sites):
    X, y, site, _, dl, _ = sites
    old = (X["age"] >= 65).to_numpy()
    res = split_domains(None, X, y, by={"old": old, "site a": (site == "a").to_numpy()},
                        scores=dl, n_boot=20, random_state=0, metrics=["auroc"])
    assert res.by_domain["domain"].tolist() == ["old", "site a"]
    assert res.by_domain["n"].tolist() == [int(old.sum()), int((site == "a").sum())]
    assert res.by == []


def test_regression_and_multiclass():
    rng = np.random.default_rng(0)
    n = 600
    y = rng.normal(size=n)
    pred = y + rng.normal(0, np.where(np.arange(n) < 300, 0.2, 1.0))
    g = np.where(np.arange(n) < 300, "low", "high")
    res = split_domains(None, np.zeros((n, 1)), y, by=g, scores=pred, n_boot=100,
                        random_state=0)
    t = res.by_domain.set_index("domain")
    assert t.loc["domain = low", "rmse"] < t.loc["domain = high", "rmse"]
    assert np.isnan(t["positives"]).all()
    yk = rng.integers(0, 3, n)
    P = rng.dirichlet(np.ones(3), n)
    res = split_domains(None, np.zeros((n, 1)), yk, by=g, scores=P, n_boot=50, random_state=0)
    assert set(res.metrics) == {"macro_auroc", "accuracy", "log_loss"}


def test_result_surface(sites, tmp_path):
    X, y, site, _, dl, baseline = sites
    res = split_domains(None, X, y, by=site, scores=dl, baselines={"ebm": baseline},
                        n_boot=50, random_state=0)
    assert isinstance(res, DomainResult)
    with pytest.raises(AttributeError):
        res.task = "regression"
    text = res.to_json()
    d = json.loads(text)
    assert d["type"] == "DomainResult" and len(d["table"]) == 3 and d["comparison"]
    assert "<table" in res._repr_html_()
    fig = res.plot()
    assert len(fig.axes[0].get_yticklabels()) == 4
    fig2 = res.plot(metric="brier")
    plt.close(fig)
    plt.close(fig2)
    fig, ax = plt.subplots()
    assert res.plot(ax=ax) is fig
    plt.close(fig)


@pytest.mark.parametrize("kwargs, err, match", [
    ({"by": "nope"}, ValueError, "by='nope'"),
    ({"by": {"x": np.ones(5, bool)}}, ValueError, r"by\['x'\]"),
    ({"by": 3.0}, TypeError, "by has type float"),
    ({"by": "site", "n_boot": 0}, ValueError, "n_boot=0"),
    ({"by": "site", "metrics": ["r2"]}, ValueError, "metrics="),
    ({"by": "site", "baselines": [1, 2]}, TypeError, "baselines="),
    ({"by": "site", "scores": np.ones(7)}, ValueError, "scores="),
    ({"by": "site", "threshold": 1.5}, ValueError, "threshold=1.5"),
])
def test_bad_input_names_the_argument(sites, kwargs, err, match):
    X, y, _, meta, dl, _ = sites
    kwargs = {"scores": dl, "metadata": meta, **kwargs}
    with pytest.raises(err, match=match):
        split_domains(None, X, y, **kwargs)


def test_model_or_scores_required(sites):
    X, y, site, _, _, _ = sites
    with pytest.raises(ValueError, match="model=None and scores=None"):
        split_domains(None, X, y, by=site)


# ------------------------------------------------------------------- contrast_attributions
def _attr(values, names=None):
    names = names or [f"f{j}" for j in range(values.shape[1])]
    return Attribution(values, 0.0, values, names, method="manual", model_name="mlp")


def test_contrast_finds_the_feature_used_differently():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(400, 5))
    g = rng.random(400) < 0.3
    v[g, 2] += 0.6
    res = contrast_attributions(_attr(v), g, n_permutations=500, random_state=0, n_boot=300)
    assert isinstance(res, ContrastResult)
    t = res.table
    assert t.loc[0, "feature"] == "f2"
    assert t.loc[0, "q_value"] < 0.01
    assert t.loc[0, "ci_low"] < 0.6 < t.loc[0, "ci_high"]
    assert (t.loc[1:, "q_value"] > 0.05).all()
    assert t.loc[0, "difference"] == pytest.approx(v[g, 2].mean() - v[~g, 2].mean())
    assert t.loc[0, "n_a"] == g.sum() and t.loc[0, "n_b"] == (~g).sum()
    f = res.findings()
    assert len(f) == 1 and f[0].kind == "attribution_contrast" and "f2" in f[0].title
    fig = res.plot()
    plt.close(fig)
    json.loads(res.to_json())


def test_contrast_permutation_p_is_calibrated_under_the_null():
    rng = np.random.default_rng(1)
    v = rng.standard_t(df=4, size=(300, 400))  # 400 null features, heavy tails
    g = rng.random(300) < 0.25
    res = contrast_attributions(_attr(v), g, n_permutations=400, random_state=0, n_boot=50)
    frac = float(np.mean(res.table["p_value"] < 0.05))
    assert 0.02 <= frac <= 0.09
    assert (res.table["q_value"] > 0.05).all()


def test_contrast_mean_abs_and_two_levels():
    rng = np.random.default_rng(2)
    v = rng.normal(size=(300, 3))
    lab = np.where(np.arange(300) < 150, "fail", "ok")
    v[:150, 1] *= 3  # same mean, larger magnitude where the model fails
    signed = contrast_attributions(_attr(v), lab, n_permutations=300, random_state=0, n_boot=50)
    used = contrast_attributions(_attr(v), lab, n_permutations=300, random_state=0, n_boot=50,
                                 statistic="mean_abs")
    assert used.group_a == "ok" and used.group_b == "fail"
    assert used.table.loc[0, "feature"] == "f1" and used.table.loc[0, "difference"] < 0
    assert used.table.loc[0, "q_value"] < 0.01
    assert signed.table.set_index("feature").loc["f1", "q_value"] > 0.01


@pytest.mark.parametrize("groups, err, match", [
    (np.ones(10, bool), ValueError, "at least 2 in each group"),
    (np.arange(10) % 3, ValueError, "3 levels"),
    (np.ones(4, bool), ValueError, "by="),
])
def test_contrast_bad_groups(groups, err, match):
    with pytest.raises(err, match=match):
        contrast_attributions(_attr(np.zeros((10, 2))), groups)


def test_contrast_bad_attribution():
    with pytest.raises(TypeError, match="confoundry.Attribution"):
        contrast_attributions(np.zeros((10, 2)), np.arange(10) < 5)
    with pytest.raises(ValueError, match="statistic="):
        contrast_attributions(_attr(np.zeros((10, 2))), np.arange(10) < 5, statistic="max")


# ------------------------------------------------------------ small-n floors (issue 18)
def _three_sites():
    """Sites of 3, 4 and 500 patients; the model scores the two small sites backwards and the
    baseline scores them perfectly, so a claim resting on 7 patients is there to be made."""
    rng = np.random.default_rng(0)
    site = pd.Series(np.repeat(["tiny", "small", "big"], [3, 4, 500]), name="site")
    y = np.r_[[1, 1, 0], [1, 1, 0, 0], (rng.random(500) < 0.4).astype(int)]
    dl = np.clip(0.4 + 0.3 * (y - 0.4) + rng.normal(0, 0.2, len(y)), 0, 1)
    dl[:7] = 0.95 - 0.9 * y[:7]
    base = np.clip(0.4 + 0.1 * (y - 0.4) + rng.normal(0, 0.2, len(y)), 0, 1)
    base[:7] = 0.05 + 0.9 * y[:7]
    return site, y, dl, base


def test_domains_below_the_floor_keep_their_row_but_no_finding_rests_on_them():
    site, y, dl, base = _three_sites()
    kw = {"by": site, "scores": dl, "baseline_scores": {"glm": base}, "n_boot": 200,
          "random_state": 0, "verbose": False}
    res = split_domains(None, None, y, **kw)
    t = res.by_domain.set_index("domain")
    assert t["n"].to_dict() == {"site = big": 500, "site = small": 4, "site = tiny": 3}
    assert t["testable"].to_dict() == {"site = big": True, "site = small": False,
                                       "site = tiny": False}
    assert t.loc["site = small", "note"] == "too small to test: n = 4 < min_n = 20"
    assert t.loc["site = big", "note"] == ""
    # the descriptive row stays: the point estimate, no interval
    assert t.loc["site = small", "auroc"] == 0.0 and t.loc["site = small", "positives"] == 2
    assert np.isnan(t.loc["site = small", "auroc_ci_low"])
    assert t.loc["site = big", "auroc_ci_low"] < t.loc["site = big", "auroc"]
    c = res.comparison[res.comparison["domain"].isin(["site = small", "site = tiny"])]
    assert len(c) and not c["testable"].any() and c["p_value"].isna().all()
    assert c["q_value"].isna().all() and not (c["baseline_better"] | c["model_better"]).any()
    assert c["difference"].notna().all()
    findings = res.findings()
    assert not [f for f in findings if f.domain in ("site = small", "site = tiny")]
    assert res.difference("auroc").loc[0, "domain_high"] is None  # one testable domain
    assert res.params["min_n"] == 20 and res.params["min_events"] == 5
    plt.close(res.plot())
    # without the floor the same data gives findings resting on 3 and 4 patients
    loose = split_domains(None, None, y, min_n=1, min_events=1, **kw)
    assert {f.domain for f in loose.findings() if f.kind == "baseline_outperforms"} == {
        "site = small", "site = tiny"}
    # the domains above the floor are unchanged by it
    pd.testing.assert_frame_equal(res.by_model[res.by_model["domain"] == "site = big"],
                                  loose.by_model[loose.by_model["domain"] == "site = big"])


def test_domain_floor_counts_events_of_each_class():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(60, int), np.ones(3, int), (rng.random(200) < 0.5).astype(int)]
    site = pd.Series(np.repeat(["rare", "common"], [63, 200]), name="site")
    s = np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.2, len(y)), 0, 1)
    res = split_domains(None, None, y, by=site, scores=s, n_boot=50, random_state=0,
                        verbose=False, metrics=["auroc"])
    t = res.by_domain.set_index("domain")
    assert t.loc["site = rare", "note"] == "too small to test: 3 positives < min_events = 5"
    assert t.loc["site = common", "testable"]
    ok = split_domains(None, None, y, by=site, scores=s, n_boot=50, random_state=0,
                       verbose=False, metrics=["auroc"], min_events=3)
    assert ok.by_domain["testable"].all()
    yr = rng.normal(size=len(y))  # regression: rows only
    reg = split_domains(None, None, yr, by=site, scores=yr + rng.normal(size=len(y)),
                        n_boot=50, random_state=0, verbose=False, min_n=100)
    assert reg.by_domain.set_index("domain")["testable"].to_dict() == {
        "site = common": True, "site = rare": False}


@pytest.mark.parametrize("kw, match", [({"min_n": 0}, "min_n=0"), ({"min_n": 2.5}, "min_n=2.5"),
                                       ({"min_events": -1}, "min_events=-1")])
def test_domain_floor_is_validated(kw, match):
    site, y, dl, _ = _three_sites()
    with pytest.raises(ValueError, match=match):
        split_domains(None, None, y, by=site, scores=dl, n_boot=10, verbose=False, **kw)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_contrast_refuses_non_finite_attributions(bad):
    """Found by tests/test_fuzz.py: an infinite attribution gave an infinite mean and
    difference in the table (NaN a NaN one)."""
    v = np.random.default_rng(0).normal(size=(10, 2))
    v[3, 1] = bad
    attr = Attribution(v, 0.0, v, ["a", "b"], method="manual")
    with pytest.raises(ValueError, match="attribution has 1 NaN or infinite value"):
        contrast_attributions(attr, np.arange(10) < 5, n_permutations=10, n_boot=10)
