"""Overfitting gap and membership-inference risk (Tips 7 and 10), tested by simulation."""

import dataclasses
import json
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn import metrics as skm  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor  # noqa: E402

import confoundry as cf  # noqa: E402
from confoundry.controls import (  # noqa: E402
    MembershipRiskResult,
    OverfittingResult,
    membership_risk,
    overfitting_gap,
)
from confoundry.controls._membership import attack_scores  # noqa: E402
from confoundry.stats import metric_panel  # noqa: E402


def _binary(n, seed, d=3, noise=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] - 0.5 * X[:, 1] + noise * rng.normal(size=n) > 0).astype(int)
    return X, y


@pytest.fixture(scope="module")
def split():
    X, y = _binary(1200, 0)
    return X[:600], y[:600], X[600:], y[600:]


@pytest.fixture(scope="module")
def knn_lr(split):
    Xtr, ytr, _, _ = split
    return (KNeighborsClassifier(1).fit(Xtr, ytr), LogisticRegression().fit(Xtr, ytr))


def test_public_names_exported():
    for name in ("overfitting_gap", "membership_risk", "OverfittingResult",
                 "MembershipRiskResult"):
        assert hasattr(cf, name) and name in cf.__all__


# ----------------------------------------------------------------------- membership risk
def test_one_nearest_neighbour_leaks_membership(split, knn_lr):
    Xtr, ytr, Xte, yte = split
    knn, lr = knn_lr
    res = membership_risk(knn, Xtr, ytr, Xte, yte, attacks=("loss", "confidence"),
                          baselines={"logistic": lr}, n_boot=300, random_state=0)
    t = res.to_frame().set_index(["model", "attack"])
    loss = t.loc[("KNeighborsClassifier", "loss")]
    # 1-NN is always right on its members and wrong on ~30% of non-members
    assert loss["auroc"] > 0.6 and loss["auroc_ci_low"] > 0.55
    assert loss["q_value"] < 1e-6 and loss["leak"]
    assert loss["advantage_ci_low"] > 0.15
    # its outputs are all 0/1: the confidence attack cannot see anything
    assert t.loc[("KNeighborsClassifier", "confidence"), "auroc"] == pytest.approx(0.5)
    # the logistic baseline, side by side, does not leak
    lr_loss = t.loc[("logistic", "loss")]
    assert lr_loss["auroc_ci_low"] < 0.5 < lr_loss["auroc_ci_high"] and not lr_loss["leak"]
    fs = res.findings()
    assert [(f.kind, f.tip, f.model, f.severity) for f in fs] == [
        ("membership_risk", 10, "KNeighborsClassifier", "high")]
    assert "differential privacy" in fs[0].title and "exposes" in fs[0].title


def test_logistic_on_plenty_of_data_stays_within_noise():
    X, y = _binary(6000, 3, d=4)
    lr = LogisticRegression().fit(X[:3000], y[:3000])
    res = membership_risk(lr, X[:3000], y[:3000], X[3000:], y[3000:],
                          attacks=("loss", "confidence", "entropy"), n_boot=300, random_state=1)
    t = res.to_frame()
    assert (t["auroc_ci_low"] < 0.5).all() and (t["auroc_ci_high"] > 0.5).all()
    assert (np.abs(t["auroc"] - 0.5) < 0.03).all()
    assert not t["leak"].any()
    assert (t["tpr_ci_low"] < 0.05).all()
    [f] = res.findings()
    assert f.severity == "info" and f.kind == "membership_risk"
    v = res.verdict()
    assert isinstance(v, cf._result.Verdict) and v.level == "info"
    assert v.text.startswith("No measurable membership leak") and v.text == f.title


def test_attack_calibrated_under_the_null():
    """A fixed scorer (not fitted on the members): AUROC CIs cover 0.5, p-values are uniform."""
    cover, small_p = 0, 0
    reps = 20
    for seed in range(reps):
        X, y = _binary(800, 100 + seed)
        f = lambda A: 1 / (1 + np.exp(-1.5 * A[:, 0]))  # noqa: E731
        r = membership_risk(f, X[:400], y[:400], X[400:], y[400:], attacks="loss",
                            n_boot=200, random_state=seed).to_frame().iloc[0]
        cover += r["auroc_ci_low"] <= 0.5 <= r["auroc_ci_high"]
        small_p += r["p_value"] < 0.05
    assert cover >= 16  # expected 19 of 20
    assert small_p <= 3  # expected 1 of 20


def test_equal_sized_member_sets_and_exposed_count(split, knn_lr):
    Xtr, ytr, Xte, yte = split
    res = membership_risk(knn_lr[0], Xtr, ytr, Xte[:150], yte[:150], attacks=["loss"],
                          n_boot=100, random_state=0)
    r = res.to_frame().iloc[0]
    assert r["n_members"] == r["n_nonmembers"] == 150 == res.n_members
    assert r["n_train"] == 600 and r["n_test"] == 150
    assert r["exposed_share"] == pytest.approx(r["tpr_at_fpr"] - 0.01)
    assert r["exposed_n"] == round(max(r["exposed_share"], 0) * 600)
    # subsample the test side instead
    res2 = membership_risk(knn_lr[0], Xtr[:100], ytr[:100], Xte, yte, attacks=["loss"],
                           n_boot=100, random_state=0)
    assert res2.n_members == 100


def test_point_estimates_match_sklearn():
    X, y = _binary(600, 5)
    lr = LogisticRegression().fit(X[:300], y[:300])
    res = membership_risk(lr, X[:300], y[:300], X[300:], y[300:], attacks=("loss", "entropy"),
                          n_boot=50, random_state=0, fpr=0.05)
    z = np.r_[np.ones(300), np.zeros(300)]
    for _, r in res.to_frame().iterrows():
        p = lr.predict_proba(X)[:, 1]
        s = attack_scores(y, p, "binary", r["attack"])
        assert r["auroc"] == pytest.approx(skm.roc_auc_score(z, s), abs=1e-12)
        fpr, tpr, _ = skm.roc_curve(z, s, drop_intermediate=False)
        assert r["tpr_at_fpr"] == pytest.approx(np.interp(0.05, fpr, tpr), abs=1e-12)
        assert r["advantage"] == pytest.approx(np.max(tpr - fpr), abs=1e-12)
        assert r["auroc_ci_low"] <= r["auroc"] <= r["auroc_ci_high"]
    # the loss attack is minus the log-loss
    pl = np.array([0.8, 0.3])
    assert attack_scores(np.array([1, 1]), pl, "binary", "loss") == pytest.approx(np.log(pl))


def test_multiclass_and_regression():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(600, 3))
    y = np.digitize(X[:, 0] + rng.normal(size=600), [-0.5, 0.5])  # 3 classes, noisy
    knn = KNeighborsClassifier(1).fit(X[:300], y[:300])
    res = membership_risk(knn, X[:300], y[:300], X[300:], y[300:],
                          attacks=("loss", "entropy"), n_boot=150, random_state=0)
    assert res.task == "multiclass"
    t = res.to_frame().set_index("attack")
    assert t.loc["loss", "auroc_ci_low"] > 0.55
    assert t.loc["entropy", "auroc"] == pytest.approx(0.5)

    yr = X[:, 0] + rng.normal(size=600)
    knr = KNeighborsRegressor(1).fit(X[:300], yr[:300])
    linr = LinearRegression().fit(X[:300], yr[:300])
    res = membership_risk(knr, X[:300], yr[:300], X[300:], yr[300:], baselines={"linear": linr},
                          n_boot=150, random_state=0)
    assert res.task == "regression" and res.attacks == ("loss",)
    assert res.skipped == ("confidence",)
    t = res.to_frame().set_index("model")
    assert t.loc["KNeighborsRegressor", "auroc_ci_low"] > 0.8  # squared error 0 on members
    assert t.loc["linear", "auroc_ci_low"] < 0.5 < t.loc["linear", "auroc_ci_high"]
    with pytest.raises(ValueError, match="regression"):
        membership_risk(knr, X[:300], yr[:300], X[300:], yr[300:], attacks=["entropy"])


def test_overfitted_torch_mlp_leaks_and_is_not_modified():
    X, y = _binary(160, 11, d=10, noise=2.0)
    Xt = torch.tensor(X, dtype=torch.float32)
    with cf._utils.torch_seed(0):
        net = torch.nn.Sequential(torch.nn.Linear(10, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
        opt = torch.optim.Adam(net.parameters(), lr=0.02)
        for _ in range(300):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(Xt[:80])[:, 0], torch.tensor(y[:80], dtype=torch.float32))
            loss.backward()
            opt.step()
    net.train()
    before = [p.detach().clone() for p in net.parameters()]
    model = cf.as_model(net, output="logits")
    res = membership_risk(model, Xt[:80], y[:80], Xt[80:], y[80:], n_boot=200, random_state=0,
                          fpr=0.05)
    t = res.to_frame().set_index("attack")
    assert t.loc["loss", "auroc_ci_low"] > 0.6
    assert t.loc["confidence", "auroc"] > 0.6
    assert net.training
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    gap = overfitting_gap(model, Xt[:80], y[:80], Xt[80:], y[80:], metrics=["auroc", "log_loss"],
                          n_boot=200, random_state=0)
    assert (gap.to_frame()["gap_ci_low"] > 0).all()


# ------------------------------------------------------------------------ overfitting gap
def test_gap_against_baseline(split, knn_lr):
    Xtr, ytr, Xte, yte = split
    knn, lr = knn_lr
    res = overfitting_gap(knn, Xtr, ytr, Xte, yte, n_boot=300, random_state=0,
                          baselines={"logistic": lr})
    t = res.to_frame().set_index(["model", "metric"])
    for name, est in (("KNeighborsClassifier", knn), ("logistic", lr)):
        tr = metric_panel(ytr, est.predict_proba(Xtr)[:, 1], task="binary")
        te = metric_panel(yte, est.predict_proba(Xte)[:, 1], task="binary")
        for m in ("auroc", "accuracy"):
            assert t.loc[(name, m), "train"] == pytest.approx(tr[m])
            assert t.loc[(name, m), "gap"] == pytest.approx(tr[m] - te[m])
        # losses are oriented so that positive means worse on test
        assert t.loc[(name, "brier"), "gap"] == pytest.approx(te["brier"] - tr["brier"])
    assert t.loc[("KNeighborsClassifier", "auroc"), "gap_ci_low"] > 0.15
    assert t.loc[("KNeighborsClassifier", "brier"), "gap_ci_low"] > 0.1
    lr_auc = t.loc[("logistic", "auroc")]
    assert lr_auc["gap_ci_low"] < 0 < lr_auc["gap_ci_high"]
    c = res.comparison.set_index("metric")
    assert c.loc["auroc", "larger_gap"] and c.loc["auroc", "ci_low"] > 0.1
    assert c.loc["auroc", "difference"] == pytest.approx(
        t.loc[("KNeighborsClassifier", "auroc"), "gap"] - lr_auc["gap"])
    [f] = res.findings()
    assert (f.kind, f.tip, f.severity, f.subject) == ("overfitting", 7, "high", "auroc")
    # and the other way round: the logistic model is not flagged against 1-NN
    res2 = overfitting_gap(lr, Xtr, ytr, Xte, yte, metrics=["auroc"], n_boot=200,
                           random_state=0, baselines={"knn": knn})
    assert res2.findings() == []
    assert not res2.comparison["larger_gap"].any()


def test_gap_without_baselines_flags_a_significant_drop(split, knn_lr):
    Xtr, ytr, Xte, yte = split
    res = overfitting_gap(knn_lr[0], Xtr, ytr, Xte, yte, metrics=["auroc", "brier"],
                          n_boot=200, random_state=0)
    assert res.comparison.empty and list(res.comparison.columns)[:3] == [
        "model", "baseline", "metric"]
    [f] = res.findings()
    assert f.kind == "overfitting" and f.severity == "medium"


def test_gap_is_zero_within_ci_when_train_and_test_are_exchangeable():
    # a model fitted with far more samples than parameters
    X, y = _binary(3000, 21)
    lr = LogisticRegression().fit(X[:1500], y[:1500])
    res = overfitting_gap(lr, X[:1500], y[:1500], X[1500:], y[1500:], n_boot=300,
                          random_state=0)
    t = res.to_frame()
    assert ((t["gap_ci_low"] < 0) & (t["gap_ci_high"] > 0)).all()
    assert res.findings() == []
    # coverage of the independent bootstrap for a fixed scorer over repeated draws
    cover = 0
    for seed in range(20):
        X, y = _binary(600, 200 + seed)
        f = lambda A: 1 / (1 + np.exp(-1.5 * A[:, 0]))  # noqa: E731
        r = overfitting_gap(f, X[:300], y[:300], X[300:], y[300:], metrics=["auroc"],
                            n_boot=200, random_state=seed).to_frame().iloc[0]
        cover += r["gap_ci_low"] <= 0 <= r["gap_ci_high"]
    assert cover >= 16  # expected 19 of 20


def test_gap_regression_and_dataframe_inputs():
    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"])
    yv = X["a"].to_numpy() + rng.normal(size=400)
    knr = KNeighborsRegressor(1).fit(X.iloc[:200], yv[:200])
    linr = LinearRegression().fit(X.iloc[:200], yv[:200])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # models fitted on DataFrames get DataFrames
        res = overfitting_gap(knr, X.iloc[:200], yv[:200], X.iloc[200:], yv[200:], n_boot=200,
                              random_state=0, baselines={"linear": linr})
    t = res.to_frame().set_index(["model", "metric"])
    assert res.task == "regression" and res.headline == "r2"
    assert t.loc[("KNeighborsRegressor", "r2"), "train"] == pytest.approx(1.0)
    assert t.loc[("KNeighborsRegressor", "rmse"), "gap"] > 0.5
    assert res.findings()[0].severity == "high"


# ---------------------------------------------------------------- surface, errors, seeds
def test_result_surface(split, knn_lr):
    Xtr, ytr, Xte, yte = split
    gap = overfitting_gap(knn_lr[0], Xtr, ytr, Xte, yte, metrics=["auroc", "log_loss"],
                          n_boot=100, random_state=0, baselines={"logistic": knn_lr[1]})
    mem = membership_risk(knn_lr[0], Xtr, ytr, Xte, yte, n_boot=100, random_state=0,
                          baselines={"logistic": knn_lr[1]})
    for res, cls in ((gap, OverfittingResult), (mem, MembershipRiskResult)):
        assert isinstance(res, cls)
        d = json.loads(res.to_json())
        assert d["type"] == cls.__name__ and d["findings"] and d["table"]
        assert "<table" in res._repr_html_()
        fig = res.plot()
        assert isinstance(fig, plt.Figure)
        plt.close(fig)
        fig, ax = plt.subplots()
        assert res.plot(ax=ax) is fig
        plt.close(fig)
        with pytest.raises(dataclasses.FrozenInstanceError):
            res.n_boot = 5
    assert json.loads(gap.to_json())["comparison"][0]["baseline"] == "logistic"
    assert "verdict" in json.loads(mem.to_json())
    assert {"auroc", "auroc_ci_low", "auroc_ci_high", "tpr_at_fpr", "tpr_ci_low", "tpr_ci_high",
            "exposed_share", "exposed_n", "p_value", "q_value", "n_members"} <= set(mem.table)


def test_reproducible(split, knn_lr):
    Xtr, ytr, Xte, yte = split
    args = (knn_lr[0], Xtr, ytr, Xte[:300], yte[:300])
    kw = {"n_boot": 100, "baselines": {"logistic": knn_lr[1]}}
    a = membership_risk(*args, random_state=3, **kw).to_frame()
    b = membership_risk(*args, random_state=3, **kw).to_frame()
    c = membership_risk(*args, random_state=4, **kw).to_frame()
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)  # another member subsample and other replicates
    g1 = overfitting_gap(*args, metrics=["auroc"], random_state=3, **kw)
    g2 = overfitting_gap(*args, metrics=["auroc"], random_state=3, **kw)
    pd.testing.assert_frame_equal(g1.to_frame(), g2.to_frame())
    pd.testing.assert_frame_equal(g1.comparison, g2.comparison)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"attacks": "shadow"}, ValueError, "attacks"),
    ({"attacks": []}, ValueError, "attacks"),
    ({"attacks": 3}, TypeError, "attacks"),
    ({"fpr": 0.0}, ValueError, "fpr"),
    ({"fpr": 0.7}, ValueError, "fpr"),
    ({"n_boot": 0}, ValueError, "n_boot"),
    ({"random_state": "x"}, TypeError, "random_state"),
    ({"baselines": ["lr"]}, TypeError, "baselines"),
    ({"baselines": {"lr": 3}}, TypeError, r"baselines\['lr'\]"),
    ({"baselines": {"KNeighborsClassifier": "same"}}, ValueError, "name"),
])
def test_membership_bad_arguments(split, knn_lr, kwargs, exc, match):
    Xtr, ytr, Xte, yte = split
    with pytest.raises(exc, match=match):
        membership_risk(knn_lr[0], Xtr, ytr, Xte, yte, **kwargs)


@pytest.mark.parametrize("fn", [overfitting_gap, membership_risk])
def test_bad_data(split, knn_lr, fn):
    Xtr, ytr, Xte, yte = split
    knn = knn_lr[0]
    with pytest.raises(ValueError, match="y_train"):
        fn(knn, Xtr, ytr[:-1], Xte, yte)
    with pytest.raises(ValueError, match="y_test"):
        fn(knn, Xtr, ytr, Xte, None)
    with pytest.raises(ValueError, match="X_test"):
        fn(knn, Xtr, ytr, Xte[:, :2], yte)
    with pytest.raises(ValueError, match="X_test.*NaN"):
        Xbad = Xte.copy()
        Xbad[0, 0] = np.nan
        fn(knn, Xtr, ytr, Xbad, yte)
    with pytest.raises(TypeError, match="model"):
        fn(object(), Xtr, ytr, Xte, yte)


def test_overfitting_bad_metrics(split, knn_lr):
    Xtr, ytr, Xte, yte = split
    with pytest.raises(ValueError, match="metrics"):
        overfitting_gap(knn_lr[0], Xtr, ytr, Xte, yte, metrics=["r2"])
    with pytest.raises(ValueError, match="n_boot"):
        overfitting_gap(knn_lr[0], Xtr, ytr, Xte, yte, n_boot=-1)


def test_tiny_sets_warn_about_the_fpr(knn_lr):
    X, y = _binary(80, 9)
    knn = KNeighborsClassifier(1).fit(X[:40], y[:40])
    with pytest.warns(UserWarning, match="fpr"):
        membership_risk(knn, X[:40], y[:40], X[40:], y[40:], n_boot=20, random_state=0)


# ---------------------------------------------------------------- pipeline contract (issue 14)
class _NeverCalled:
    classes_ = np.array([0, 1])

    def predict_proba(self, X):
        raise AssertionError("a model was called although its scores were given")

    def predict(self, X):
        raise AssertionError("a model was called although its scores were given")


@pytest.mark.parametrize("fn", [overfitting_gap, membership_risk])
def test_precomputed_scores_and_audit_data_are_used_as_given(split, knn_lr, fn,
                                                             count_audit_data):
    Xtr, ytr, Xte, yte = split
    knn, lr = knn_lr
    ref = fn(knn, Xtr, ytr, Xte, yte, baselines={"logistic": lr}, n_boot=100, random_state=0,
             verbose=False)
    train, test = cf.AuditData(Xtr, ytr), cf.AuditData(Xte, yte)
    s, s_tr = knn.predict_proba(Xte)[:, 1], knn.predict_proba(Xtr)[:, 1]
    b, b_tr = lr.predict_proba(Xte)[:, 1], lr.predict_proba(Xtr)[:, 1]
    calls = count_audit_data
    calls.clear()
    model = cf.as_model(_NeverCalled(), name="KNeighborsClassifier")
    res = fn(model, train, None, test, None, baselines={"logistic": _NeverCalled()},
             scores=s, train_scores=s_tr, baseline_scores={"logistic": b},
             baseline_train_scores={"logistic": b_tr}, n_boot=100, random_state=0,
             verbose=False)
    assert not calls
    pd.testing.assert_frame_equal(ref.to_frame(), res.to_frame())
    assert res.params["precomputed"] == {"scores": True, "train_scores": True,
                                         "baseline_scores": ["logistic"],
                                         "baseline_train_scores": ["logistic"]}
    # the scores of a baseline that is missing here are computed; no model needs no name
    res2 = fn(None, train, None, test, None, baselines={"logistic": lr}, scores=s,
              train_scores=s_tr, n_boot=100, random_state=0, verbose=False)
    t2 = res2.to_frame()
    assert res2.model_name == "model" and set(t2["model"]) == {"model", "logistic"}
    cols = [c for c in t2.columns if c != "model"]
    pd.testing.assert_frame_equal(ref.to_frame()[cols], t2[cols])
    # (n, 2) probabilities are taken as P(y=1)
    res3 = fn(None, train, None, test, None, scores=np.column_stack([1 - s, s]),
              train_scores=s_tr, n_boot=100, random_state=0, verbose=False)
    assert res3.to_frame().iloc[0]["model"] == "model"
    with pytest.raises(TypeError, match="model is None"):
        fn(None, train, None, test, None, scores=s)
    with pytest.raises(ValueError, match="scores has 3 rows but X_test has 600"):
        fn(None, train, None, test, None, scores=s[:3], train_scores=s_tr)
    with pytest.raises(ValueError, match=r"baseline_train_scores\['logistic'\] contains NaN"):
        fn(None, train, None, test, None, scores=s, train_scores=s_tr,
           baseline_scores={"logistic": b}, baseline_train_scores={"logistic": b_tr * np.nan})
    with pytest.raises(ValueError, match="'ghost'"):
        fn(knn, train, None, test, None, baseline_scores={"ghost": b})
    with pytest.raises(ValueError, match="y_train is None and X_train"):
        fn(knn, cf.AuditData(Xtr), None, test, None)
    with pytest.raises(ValueError, match="fdr"):
        fn(knn, train, None, test, None, fdr=0)


def test_params_fdr_verdict_and_json(split, knn_lr):
    Xtr, ytr, Xte, yte = split
    knn, lr = knn_lr
    mem = membership_risk(knn, Xtr, ytr, Xte, yte, baselines={"logistic": lr}, n_boot=100,
                          random_state=0, verbose=False)
    v = mem.verdict()
    assert isinstance(v, cf._result.Verdict) and v.level == "high"
    assert v.text == mem.findings()[0].title and v.counts["leaking"] >= 1
    assert mem.verdict("logistic").level == "info"
    d = json.loads(mem.to_json())
    assert d["verdict"]["level"] == "high" and d["params"]["fdr"] == 0.05
    assert "curves" not in d and d["n_nonmembers"] == mem.n_members
    assert d["model"] == "KNeighborsClassifier" and d["ci_level"] == 0.95
    strict = membership_risk(knn, Xtr, ytr, Xte, yte, n_boot=100, random_state=0, fdr=1e-300,
                             verbose=False)
    assert not strict.to_frame()["leak"].any() and strict.alpha == 1e-300
    gap = overfitting_gap(knn, Xtr, ytr, Xte, yte, baselines={"logistic": lr}, n_boot=100,
                          metrics=["auroc"], random_state=0, verbose=False)
    g = json.loads(gap.to_json())
    assert g["params"]["fdr"] == 0.05 and g["params"]["metrics"] == ["auroc"]
    assert g["headline"] == "auroc" and g["model"] == "KNeighborsClassifier"
    assert all(f.domain == "overall" for f in gap.findings() + mem.findings())
    lax = overfitting_gap(knn, Xtr, ytr, Xte, yte, baselines={"logistic": lr}, n_boot=100,
                          metrics=["auroc"], random_state=0, fdr=1e-300, verbose=False)
    assert not lax.comparison["larger_gap"].any() and lax.alpha == 1e-300


def test_roc_curve_points_are_every_vertex_with_ties():
    from confoundry.controls._attacks import roc_curve_points

    rng = np.random.default_rng(0)
    z = np.r_[np.ones(50), np.zeros(50)]
    s = np.round(rng.normal(size=100), 1)  # with ties
    f, t = roc_curve_points(z, s)
    thr = np.unique(s)[::-1]
    tp = np.r_[0, [np.sum(z[s >= u]) for u in thr]] / 50
    fp = np.r_[0, [np.sum(1 - z[s >= u]) for u in thr]] / 50
    np.testing.assert_allclose(f, fp)
    np.testing.assert_allclose(t, tp)
