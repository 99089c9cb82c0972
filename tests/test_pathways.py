"""Confounder pathways (issue 19): simulated ground truth for ``confounder_pathways`` and the
``adjust_for`` conditioning of ``probe_confounders``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier

import confoundry as cf
from confoundry.probes import _engine as E

KW = {"n_permutations": 200, "n_boot": 200, "verbose": False}


def _batch_data(seed: int = 0, *, n: int = 2000, through: tuple[str, ...] = ("assay",),
                effect: float = 1.0, flag: bool = False):
    """Binary label; the batch shifts the features in ``through`` (assay values); ``age``
    carries label signal only, ``noise`` nothing. ``flag`` adds a batch-indicator column."""
    rng = np.random.default_rng(seed)
    batch = rng.integers(0, 2, n)
    y = rng.integers(0, 2, n)
    X = pd.DataFrame({
        "assay": y + rng.normal(size=n) + (effect * batch if "assay" in through else 0),
        "marker": y + rng.normal(size=n) + (effect * batch if "marker" in through else 0),
        "age": y + rng.normal(size=n),
        "noise": rng.normal(size=n),
    })
    if flag:
        X["batch_flag"] = batch + 0.1 * rng.normal(size=n)
    return X, y, pd.DataFrame({"batch": batch}, index=X.index)


# ---------------------------------------------------------------------- ground truth
def test_batch_through_one_feature_is_named_first_with_a_share_covering_the_truth():
    X, y, meta = _batch_data(1)
    model = LogisticRegression().fit(X, y)   # uses assay (label signal + batch) and age
    res = cf.confounder_pathways(model, X, y, meta, random_state=0, **KW)
    row = res.row("batch")
    assert row["significant"] and row["verdict"] == "through features"
    assert row["through"] == ["assay"]
    t = res.pathways("batch")
    first = t.iloc[0]
    assert first["feature"] == "assay" and first["rank"] == 1
    # the model's only path from the batch is the assay: the true share is 1
    assert first["share_ci_low"] <= 1 <= first["share_ci_high"]
    assert first["share_ci_high"] - first["share_ci_low"] < 0.5
    assert first["carries_q"] < 0.05 and first["carries"] > 0.1
    assert first["effect_without"] < 0.01 * row["total_effect"] + 0.005
    others = t.iloc[1:]
    assert (others["mediated_share"].abs() < 0.15).all(), others
    assert (others[others["feature"] != "assay"]["carries_q"] > 0.05).all()
    # nothing left once the batch is removed from every feature
    assert row["remaining_q"] > 0.05 and abs(row["remaining_share"]) < 0.2
    # uses: the model's attribution shares sum to 1 over the features, noise ~ 0
    assert t["uses"].sum() == pytest.approx(1.0)
    assert t.set_index("feature").loc["noise", "uses"] < 0.05


def test_total_effect_is_the_conditional_probes_partial_r2():
    X, y, meta = _batch_data(2)
    model = LogisticRegression().fit(X, y)
    res = cf.confounder_pathways(model, X, y, meta, random_state=0, **KW)
    probe = cf.probe_confounders(model, X, y, meta, n_permutations=200, random_state=0,
                                 verbose=False)
    assert res.row("batch")["total_effect"] == pytest.approx(
        probe.row("batch", "output_conditional")["effect_size"], rel=1e-9)
    r = res.row("batch")
    assert r["total_ci_low"] < r["total_effect"] < r["total_ci_high"]


def test_batch_through_two_features_names_both_and_their_shares_add_up():
    X, y, meta = _batch_data(3, through=("assay", "marker"))
    model = LogisticRegression().fit(X, y)
    res = cf.confounder_pathways(model, X, y, meta, top_k=2, random_state=0, **KW)
    row = res.row("batch")
    assert row["verdict"] == "through features"
    assert sorted(row["through"]) == ["assay", "marker"]
    assert sorted(row["top_k_features"]) == ["assay", "marker"]
    s = res.pathways("batch").set_index("feature")
    for f in ("assay", "marker"):
        assert 0.25 < s.loc[f, "mediated_share"] < 0.75      # equal paths: about half each
        assert s.loc[f, "share_ci_low"] > 0
    total = s.loc["assay", "mediated_share"] + s.loc["marker", "mediated_share"]
    assert row["top_k_ci_low"] <= total <= row["top_k_ci_high"]
    assert row["top_k_ci_low"] <= 1 <= row["top_k_ci_high"]
    assert "assay" in row["text"] and "marker" in row["text"]


def _shortcut_model(seed: int) -> LogisticRegression:
    """Trained where the batch went with the label: it learns to read ``batch_flag``."""
    Xt, yt, mt = _batch_data(seed, through=(), flag=True)
    yt = np.where(np.random.default_rng(seed).random(len(yt)) < 0.3, mt["batch"], yt)
    return LogisticRegression().fit(Xt, yt)


def test_model_reading_the_batch_directly_is_direct():
    X, y, meta = _batch_data(4, through=(), flag=True)
    model = _shortcut_model(40)                # batch_flag is read, but not a candidate
    assert model.coef_[0, list(X.columns).index("batch_flag")] > 0.5
    res = cf.confounder_pathways(model, X, y, meta,
                                 features=["assay", "marker", "age", "noise"],
                                 random_state=0, **KW)
    row = res.row("batch")
    assert row["significant"] and row["verdict"] == "direct"
    assert row["remaining_q"] < 0.05 and row["remaining_share"] > 0.8
    assert row["through"] == []
    assert "direct" in row["text"]
    # with the flag among the candidates, the same effect goes through it
    res2 = cf.confounder_pathways(model, X, y, meta, random_state=0, **KW)
    assert res2.verdict("batch") == "through features"
    assert res2.row("batch")["through"] == ["batch_flag"]


def test_no_conditional_effect_reports_no_pathway_in_90_percent_of_simulations():
    # the batch goes with the label (a confounded data set), the model only with the label
    reported = 0
    w = np.array([1.0, 1.0, 0.0])
    n_sim = 100
    for r in range(n_sim):
        rng = np.random.default_rng(10_000 + r)
        n = 400
        y = rng.integers(0, 2, n)
        batch = (rng.random(n) < 0.3 + 0.4 * y).astype(int)
        X = np.column_stack([y + rng.normal(size=n), y + rng.normal(size=n),
                             rng.normal(size=n)])
        res = cf.confounder_pathways(lambda A: 1 / (1 + np.exp(-(A @ w - 1))), X, y,
                                     pd.DataFrame({"batch": batch}), n_permutations=100,
                                     n_boot=20, random_state=r, verbose=False)
        reported += res.verdict("batch") in ("through features", "direct")
        if r == 0:
            assert res.features.empty and not res.row("batch")["traced"]
            assert res.verdict("batch") == "no effect"
    assert reported <= 0.1 * n_sim


def test_baselines_as_reference_difference_covers_zero_when_they_share_the_path():
    X, y, meta = _batch_data(5)
    deep = MLPClassifier((16,), max_iter=400, random_state=0).fit(X, y)
    base = cf.fit_baselines(X, y, kinds=("logistic",), tuning="none", random_state=0,
                            verbose=False)
    res = cf.confounder_pathways(deep, X, y, meta, baselines=base, random_state=0, **KW)
    b = res.baselines.set_index("baseline").loc["logistic"]
    assert b["p_baseline"] < 0.05                  # the baseline depends on the batch too
    assert b["ci_low"] <= 0 <= b["ci_high"]
    assert not b["model_more"] and res.row("batch")["more_than_baselines"] == False  # noqa: E712
    assert "no more than logistic" in res.row("batch")["text"]


def test_baselines_difference_is_positive_when_only_the_model_reads_the_batch():
    X, y, meta = _batch_data(6, through=(), flag=True)
    model = _shortcut_model(60)
    cols = ["assay", "marker", "age", "noise"]

    def restricted(A):  # a baseline on the same table that never looks at the flag
        return ref.predict_proba(A[cols])[:, 1]

    ref = LogisticRegression().fit(X[cols], y)
    res = cf.confounder_pathways(model, X, y, meta, baselines={"restricted": restricted},
                                 features=cols, random_state=0, **KW)
    b = res.baselines.iloc[0]
    assert b["baseline"] == "restricted" and b["model_more"] and b["ci_low"] > 0
    assert res.row("batch")["more_than_baselines"] == True  # noqa: E712


# ---------------------------------------------------------------------- adjust_for
def _age_data(seed: int, n: int = 2000):
    """Site b recruits older patients; the model follows age (an input) and an assay that a
    batch shifts. The site effect goes only through age, the batch effect only through the
    assay."""
    rng = np.random.default_rng(seed)
    site = rng.integers(0, 2, n)
    batch = rng.integers(0, 3, n)
    y = rng.integers(0, 2, n)
    age = rng.normal(60, 8, n) + 8 * site
    X = pd.DataFrame({"age": age, "assay": y + rng.normal(size=n) + 0.6 * batch})
    logit = 1.5 * (2 * y - 1) + 0.12 * (age - 64) + 0.8 * X["assay"] - 1.0
    yy = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    meta = pd.DataFrame({"site": site, "batch": batch, "age": age}, index=X.index)
    return X, yy, meta


def test_adjust_for_age_removes_the_effect_through_age_and_only_that_one():
    X, y, meta = _age_data(7)
    model = LogisticRegression(max_iter=500).fit(X, y)
    plain = cf.probe_confounders(model, X, y, meta, n_permutations=200, random_state=0,
                                 verbose=False)
    adj = cf.probe_confounders(model, X, y, meta, n_permutations=200, random_state=0,
                               verbose=False, adjust_for=["age"])
    assert plain.row("site", "output_conditional")["significant"]
    assert not adj.row("site", "output_conditional")["significant"]
    assert adj.row("batch", "output_conditional")["significant"]
    assert "age" not in set(adj.table["metadata"])            # conditioned on, not probed
    assert adj.params["adjust_for"] == ["age"] and plain.params["adjust_for"] == []
    assert adj.row("site", "output_conditional")["test"] == \
        "permutation within label x age strata"
    assert adj.row("site", "error")["test"] == "permutation within label strata"
    # the other probes do not change
    for probe in ("label_association", "output_marginal", "error"):
        assert adj.row("batch", probe)["statistic"] == pytest.approx(
            plain.row("batch", probe)["statistic"])

    res = cf.confounder_pathways(model, X, y, meta, adjust_for="age", random_state=0, **KW)
    assert res.verdict("site") == "explained by adjust_for"
    s = res.row("site")
    assert s["q_given_label"] < 0.05 and s["q_value"] >= 0.05
    assert s["effect_given_label"] > 5 * s["total_effect"]
    assert res.verdict("batch") == "through features"
    assert res.row("batch")["through"] == ["assay"]
    assert res.adjust_for == ("age",) and "age" not in set(res.table["metadata"])


def test_adjust_for_keeps_the_probe_calibrated():
    # site goes with age, the outputs follow age (non-linearly) and the label only
    rejected = []
    for r in range(80):
        rng = np.random.default_rng(20_000 + r)
        n = 300
        age = rng.normal(60, 10, n)
        site = (rng.random(n) < 1 / (1 + np.exp(-(age - 60) / 5))).astype(int)
        y = rng.integers(0, 2, n)
        s = 1 / (1 + np.exp(-(2 * y - 1 + 0.15 * (age - 60) + 0.002 * (age - 60) ** 2
                              + rng.normal(size=n))))
        res = cf.probe_confounders(y=y, metadata=pd.DataFrame({"site": site, "age": age}),
                                   scores=s, n_permutations=100, random_state=r,
                                   verbose=False, adjust_for="age")
        rejected.append(res.row("site", "output_conditional")["p_value"] <= 0.05)
    assert np.mean(rejected) <= 0.05 + 0.06


def test_adjust_for_with_a_continuous_label_uses_the_conditional_permutation_test():
    rng = np.random.default_rng(8)
    n = 600
    age = rng.normal(60, 10, n)
    site = (rng.random(n) < 1 / (1 + np.exp(-(age - 60) / 5))).astype(int)
    y = rng.normal(size=n)
    s = y + 0.1 * (age - 60) + 0.5 * rng.normal(size=n)
    meta = pd.DataFrame({"site": site, "age": age})
    plain = cf.probe_confounders(y=y, metadata=meta, scores=s, n_permutations=100,
                                 random_state=0, verbose=False)
    adj = cf.probe_confounders(y=y, metadata=meta, scores=s, n_permutations=100,
                               random_state=0, verbose=False, adjust_for="age")
    assert plain.row("site", "output_conditional")["significant"]
    row = adj.row("site", "output_conditional")
    assert not row["significant"] and "given label, age" in row["test"]


def test_cpt_with_covariates_draws_permutations():
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    cov = rng.normal(size=(300, 2))
    c = rng.integers(0, 3, 300)
    f, g = E.cpt_log_odds_factors(c, "categorical", y, 0, covariates=cov)
    assert f.shape == g.shape == (300, 3)
    perms = np.vstack(list(E.cpt_permutations(f, g, 20, seed=1)))
    assert perms.shape == (20, 300)
    assert all(np.array_equal(np.sort(p), np.arange(300)) for p in perms)
    assert not all(np.array_equal(p, np.arange(300)) for p in perms)


# ---------------------------------------------------------------------- other tasks, inputs
def test_regression_and_multiclass_tasks_trace_the_shifted_feature():
    X, _, meta = _batch_data(9, n=1500)
    rng = np.random.default_rng(9)
    yr = X["age"].to_numpy() + rng.normal(size=len(X))
    X = X.assign(assay=yr + rng.normal(size=len(X)) + meta["batch"].to_numpy())
    reg = LinearRegression().fit(X, yr)
    res = cf.confounder_pathways(reg, X, yr, meta, n_permutations=100, n_boot=100,
                                 random_state=0, verbose=False)
    assert res.task == "regression" and res.verdict("batch") == "through features"
    assert res.row("batch")["through"] == ["assay"]
    assert "conditional permutation" in res.params["test"]

    ym = np.digitize(X["age"].to_numpy() + rng.normal(size=len(X)), [-0.5, 0.5])
    X = X.assign(assay=ym + rng.normal(size=len(X)) + meta["batch"].to_numpy())
    clf = LogisticRegression(max_iter=500).fit(X, ym)
    res = cf.confounder_pathways(clf, X, ym, meta, n_permutations=100, n_boot=100,
                                 random_state=0, verbose=False)
    assert res.task == "multiclass" and res.verdict("batch") == "through features"
    first = res.pathways("batch").iloc[0]
    assert first["feature"] == "assay" and first["share_ci_low"] <= 1 <= first["share_ci_high"]


def test_image_inputs_are_direct_and_audit_data_is_accepted():
    rng = np.random.default_rng(10)
    n = 600
    batch = rng.integers(0, 2, n)
    y = rng.integers(0, 2, n)
    imgs = rng.normal(size=(n, 1, 4, 4)) + y[:, None, None, None]
    imgs[:, :, 0, 0] += 2 * batch[:, None]                   # a batch mark in one corner

    def net(A):
        A = np.asarray(A)
        return 1 / (1 + np.exp(-(A.reshape(len(A), -1).sum(1) / 4)))

    data = cf.AuditData(imgs, y, metadata=pd.DataFrame({"batch": batch}))
    res = cf.confounder_pathways(net, data, n_permutations=100, n_boot=50, random_state=0,
                                 verbose=False)
    assert res.verdict("batch") == "direct" and res.features.empty
    assert "not tabular" in res.row("batch")["text"]


def test_derived_metadata_is_reported_with_its_cross_validated_score():
    rng = np.random.default_rng(11)
    n = 1500
    X = pd.DataFrame({"kappa": rng.gamma(2, 1, n), "lambda_": rng.gamma(2, 1, n),
                      "age": rng.normal(size=n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(X["kappa"] + X["lambda_"] - 4)))).astype(int)
    grp = pd.qcut(X["kappa"] + X["lambda_"], 4, labels=False).to_numpy()
    model = MLPClassifier((16,), max_iter=300, random_state=0).fit(X, y)
    res = cf.confounder_pathways(model, X, y, pd.DataFrame({"flc_grp": grp}),
                                 columns="flc_grp", n_permutations=100, n_boot=50,
                                 random_state=0, verbose=False)
    row = res.row("flc_grp")
    assert row["derived_from_inputs"] and row["input_predictability"] >= 0.95
    assert row["input_predictability_name"] == "CV macro AUROC"
    assert "derived from the inputs" in row["text"]


def test_result_surface_is_reproducible_and_json_safe():
    X, y, meta = _batch_data(12, n=800)
    meta = meta.assign(site=np.random.default_rng(0).integers(0, 3, len(X)))
    model = LogisticRegression().fit(X, y)
    kw = {"n_permutations": 100, "n_boot": 50, "verbose": False, "random_state": 3}
    a = cf.confounder_pathways(model, X, y, meta, **kw)
    b = cf.confounder_pathways(model, X, y, meta, **kw)
    pd.testing.assert_frame_equal(a.features, b.features)
    pd.testing.assert_frame_equal(a.summary(), b.summary())
    assert list(a.table["metadata"]) == ["batch", "site"]
    assert a.verdict("site") == "no effect" and a.pathways("site").empty
    assert set(a.summary()["verdict"]) <= set(cf.probes._pathway_result.VERDICTS)
    d = json.loads(a.to_json())
    assert d["type"] == "PathwayResult" and d["params"]["n_permutations"] == 100
    assert len(d["features"]) == 4 and d["table"][0]["metadata"] == "batch"
    fig = a.plot()
    assert fig.axes and "batch" in fig.axes[0].get_title()
    import matplotlib.pyplot as plt

    plt.close("all")
    # a given attribution is used as it is
    att = pd.Series({"assay": 3.0, "marker": 1.0, "age": 1.0, "noise": 0.0,
                     "extra": 5.0})
    c = cf.confounder_pathways(model, X, y, meta, attribution=att, **kw)
    assert c.pathways("batch").set_index("feature").loc["assay", "uses"] == pytest.approx(0.3)
    assert c.params["uses_method"] == "given importances"


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,match", [
    ({"adjust_for": ["agee"]}, r"adjust_for=\['agee'\] names 'agee'.*expected names among"),
    ({"adjust_for": 3}, r"adjust_for=3 is not valid"),
    ({"adjust_for": ["batch"]}, r"adjust_for=\['batch'\] names every metadata column"),
    ({"columns": ["site"]}, r"columns=\['site'\] names 'site', which is not a metadata column"),
    ({"features": ["assay", "bmi"]}, r"features=.*names 'bmi', which is not a feature of X"),
    ({"features": []}, r"features=\[\] is empty"),
    ({"top_k": 0}, r"top_k=0"),
    ({"n_boot": -1}, r"n_boot=-1"),
    ({"fdr": 2.0}, r"fdr=2.0"),
    ({"baselines": [LogisticRegression()]}, r"baselines has type list; expected a mapping"),
    ({"baselines": {"lr": LogisticRegression()}}, r"baselines\['lr'\]: .*not fitted"),
    ({"attribution": pd.Series({"assay": 1.0})}, r"attribution has no values for the features"),
    ({"attribution": "ig"}, r"attribution has type str"),
])
def test_bad_input_names_the_argument_and_the_value(kwargs, match):
    X, y, meta = _batch_data(13, n=200)
    model = LogisticRegression().fit(X, y)
    with pytest.raises((ValueError, TypeError), match=match):
        cf.confounder_pathways(model, X, y, meta, verbose=False, **kwargs)


def test_bad_adjust_for_in_probe_confounders_and_missing_inputs():
    X, y, meta = _batch_data(14, n=200)
    with pytest.raises(ValueError, match=r"adjust_for='nope' names 'nope'"):
        cf.probe_confounders(y=y, metadata=meta, scores=np.full(len(y), 0.5),
                             adjust_for="nope", verbose=False)
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="metadata is None"):
        cf.confounder_pathways(model, X, y, None, verbose=False)
    with pytest.raises(ValueError, match="y is None"):
        cf.confounder_pathways(model, X, None, meta, verbose=False)
