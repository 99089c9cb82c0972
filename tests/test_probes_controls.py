"""Retraining controls: label-shuffle control and leave-one-group-out."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

import confoundry as cf

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _logreg(X, y):
    return LogisticRegression(max_iter=500).fit(X, y)


def _data(n=400, seed=0, signal=1.5):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=list("abcd"))
    y = (signal * X["a"] + rng.normal(size=n) > 0).astype(int)
    return X, pd.Series(y, index=X.index, name="y")


def test_label_shuffle_control_separates_real_signal_from_noise():
    X, y = _data()
    calls = []

    def train(Xt, yt):
        calls.append(type(yt))
        return _logreg(Xt, yt)

    res = cf.label_shuffle_control(train, X[:250], y[:250], X[250:], y[250:], n_repeats=4,
                                   random_state=0)
    t = res.to_frame()
    assert t["model"].tolist() == ["real"] + [f"shuffled_{i}" for i in range(1, 5)]
    assert calls == [pd.Series] * 5  # labels keep their type
    assert t.loc[0, "estimate"] > 0.8
    # a model fit to shuffled labels points in a random direction: alone it can score far
    # from 0.5 either way, but the shuffled models average to chance
    assert abs(res.contrast["shuffled_mean"] - 0.5) < 0.15
    assert res.contrast["p_above_chance"] > 0.05
    assert t.loc[0, "ci_low"] < t.loc[0, "estimate"] < t.loc[0, "ci_high"]
    assert res.contrast["p_value"] < 0.05 and res.contrast["difference"] > 0.2
    assert res.findings() == []
    again = cf.label_shuffle_control(_logreg, X[:250], y[:250], X[250:], y[250:], n_repeats=4,
                                     random_state=0)
    pd.testing.assert_frame_equal(t, again.to_frame())
    json.loads(res.to_json())
    fig = res.plot()
    plt.close(fig)


def test_label_shuffle_control_flags_a_model_that_learned_nothing():
    X, y = _data(signal=0.0, seed=1)
    res = cf.label_shuffle_control(_logreg, X[:250], y[:250], X[250:], y[250:], n_repeats=3,
                                   random_state=0)
    f = [f for f in res.findings() if f.kind == "memorisation"]
    assert len(f) == 1 and f[0].severity == "high" and f[0].tip == 7
    assert "shuffled labels" in f[0].title


def test_label_shuffle_control_flags_shuffled_models_above_chance():
    # the "model" looks at the test rows' own features: a leak that needs no labels
    X, y = _data(seed=2)

    class Leaky:
        classes_ = np.array([0, 1])

        def predict_proba(self, Z):
            p = 1 / (1 + np.exp(-3 * np.asarray(Z)[:, 0]))
            return np.column_stack([1 - p, p])

        def predict(self, Z):
            return (self.predict_proba(Z)[:, 1] > 0.5).astype(int)

    res = cf.label_shuffle_control(lambda a, b: Leaky(), X[:200], y[:200], X[200:], y[200:],
                                   n_repeats=2, random_state=0)
    kinds = {f.kind for f in res.findings()}
    assert kinds == {"memorisation", "shuffled_above_chance"}


def test_label_shuffle_control_validates_inputs():
    X, y = _data(n=100)
    with pytest.raises(TypeError, match="train_fn"):
        cf.label_shuffle_control("fit", X, y, X, y)
    with pytest.raises(ValueError, match="n_repeats=0"):
        cf.label_shuffle_control(_logreg, X, y, X, y, n_repeats=0)
    with pytest.raises(RuntimeError, match="train_fn failed while fitting the real model"):
        cf.label_shuffle_control(lambda a, b: 1 / 0, X, y, X, y)
    with pytest.raises(TypeError, match="returned None"):
        cf.label_shuffle_control(lambda a, b: None, X, y, X, y)


def _sites(n_per=150, seed=0):
    """Three sites; at site 'c' the feature-label relation is reversed."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(["a", "b", "c"], n_per)
    X = rng.normal(size=(3 * n_per, 2))
    sign = np.where(groups == "c", -1.0, 1.0)
    y = (2 * sign * X[:, 0] + rng.normal(size=3 * n_per) > 0).astype(int)
    return X, y, groups


def test_leave_one_group_out_finds_the_site_that_does_not_transfer():
    X, y, groups = _sites()
    res = cf.leave_one_group_out(_logreg, X, y, groups, n_boot=300, random_state=0)
    t = res.to_frame()
    assert t["group"].tolist() == ["a", "b", "c", "(all, pooled)"]
    assert t["n"].tolist() == [150, 150, 150, 450]
    c = t.set_index("group").loc["c"]
    assert c["estimate"] < 0.3 and c["significant"] and c["difference"] < 0
    assert c["ci_low"] <= c["estimate"] <= c["ci_high"]
    assert t.set_index("group").loc["a", "difference"] > 0  # better than internal: no finding
    findings = res.findings()
    assert {f.subject for f in findings} >= {"c"}
    assert all(f.kind == "group_generalisation_gap" and f.tip == 4 for f in findings)
    again = cf.leave_one_group_out(_logreg, X, y, groups, n_boot=300, random_state=0)
    pd.testing.assert_frame_equal(t, again.to_frame())
    fig = res.plot()
    plt.close(fig)
    assert json.loads(res.to_json())["metric"] == "auroc"


def test_leave_one_group_out_regression_default_metric_and_validation():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(240, 3))
    y = X @ np.array([1.0, -1.0, 0.5]) + rng.normal(scale=0.5, size=240)
    groups = pd.Series(np.repeat([1, 2, 3, 4], 60))
    res = cf.leave_one_group_out(lambda a, b: LinearRegression().fit(a, b), X, y, groups,
                                 n_boot=200, random_state=0)
    assert res.metric == "r2" and (res.to_frame()["estimate"] > 0.7).all()
    assert res.findings() == []
    with pytest.raises(ValueError, match="single level"):
        cf.leave_one_group_out(_logreg, X, (y > 0).astype(int), np.zeros(240))
    with pytest.raises(ValueError, match="by="):
        cf.leave_one_group_out(_logreg, X, (y > 0).astype(int), np.zeros(10))
    with pytest.raises(ValueError, match="metrics=\\['mae'\\]"):
        cf.leave_one_group_out(_logreg, X, (y > 0).astype(int), groups, metric="mae")


# ---------------------------------------------------------------- pipeline contract (issue 14)
def test_controls_moved_with_deprecated_aliases():
    import warnings

    import confoundry.controls as controls
    import confoundry.probes as probes

    assert controls.label_shuffle_control is cf.label_shuffle_control
    assert "label_shuffle_control" not in probes.__all__
    assert {"label_shuffle_control", "leave_one_group_out", "LabelShuffleResult",
            "LeaveOneGroupOutResult"} <= set(controls.__all__) & set(cf.__all__)
    for name in ("label_shuffle_control", "leave_one_group_out", "LabelShuffleResult",
                 "LeaveOneGroupOutResult"):
        with pytest.warns(DeprecationWarning, match=name):
            assert getattr(probes, name) is getattr(controls, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cf.leave_one_group_out is controls.leave_one_group_out  # no warning at the top


def test_label_shuffle_control_takes_audit_data_and_hands_train_fn_the_users_objects(
        count_audit_data):
    X, y = _data()
    train = cf.AuditData(X[:250], y[:250])
    test = cf.AuditData(X[250:], y[250:])
    seen = []

    def train_fn(Xt, yt):
        seen.append((Xt, yt))
        return _logreg(Xt, yt)

    calls = count_audit_data
    calls.clear()
    res = cf.label_shuffle_control(train_fn, train, None, test, None, n_repeats=2,
                                   random_state=0, verbose=False)
    assert not calls
    assert seen[0][0] is train.X_source and seen[0][1] is train.y_source
    assert all(Xt is train.X_source and isinstance(yt, pd.Series) for Xt, yt in seen)
    ref = cf.label_shuffle_control(_logreg, X[:250], y[:250], X[250:], y[250:], n_repeats=2,
                                   random_state=0, verbose=False)
    pd.testing.assert_frame_equal(ref.to_frame(), res.to_frame())
    assert res.params == {"n_repeats": 2, "n_boot": 1000, "metric": "auroc", "alpha": 0.05,
                          "ci": 0.95, "random_state": 0}
    assert json.loads(res.to_json())["params"]["n_repeats"] == 2
    with pytest.raises(ValueError, match="y_train is None"):
        cf.label_shuffle_control(_logreg, X, None, X, y)
    with pytest.raises(ValueError, match="X_test is None"):
        cf.label_shuffle_control(_logreg, train)


def test_leave_one_group_out_by_audit_data_and_the_deprecated_groups(count_audit_data):
    X, y, groups = _sites(n_per=80)
    Xdf = pd.DataFrame(X, columns=["a", "b"], index=np.arange(240) + 1000)
    ys = pd.Series(y, index=Xdf.index)
    meta = pd.DataFrame({"site": groups}, index=Xdf.index)
    data = cf.AuditData(Xdf, ys, meta)
    seen = []

    def train_fn(Xt, yt):
        seen.append((type(Xt), type(yt), Xt.index[0]))
        return _logreg(Xt, yt)

    calls = count_audit_data
    calls.clear()
    res = cf.leave_one_group_out(train_fn, data, None, by=meta["site"].to_numpy(), n_boot=100,
                                 metric="roc_auc", random_state=0, verbose=False)
    assert not calls
    assert {(a, b) for a, b, _ in seen} == {(pd.DataFrame, pd.Series)}  # iloc rows of the user's
    assert seen[0][2] == 1080  # first row without site 'a'
    by_name = cf.leave_one_group_out(_logreg, data, by="site", n_boot=100, random_state=0,
                                     verbose=False)
    positional = cf.leave_one_group_out(_logreg, X, y, groups, n_boot=100, random_state=0,
                                        verbose=False)
    pd.testing.assert_frame_equal(res.to_frame(), by_name.to_frame())
    pd.testing.assert_frame_equal(res.to_frame(), positional.to_frame())
    assert by_name.params["by"] == "site" and res.params["fdr"] == 0.05
    assert res.params["metric"] == "auroc" and res.params["n_boot"] == 100
    with pytest.warns(DeprecationWarning, match="by="):
        old = cf.leave_one_group_out(_logreg, X, y, groups=groups, n_boot=100, random_state=0,
                                     verbose=False)
    pd.testing.assert_frame_equal(res.to_frame(), old.to_frame())
    with pytest.raises(TypeError, match="both by= and groups="):
        cf.leave_one_group_out(_logreg, X, y, groups, groups=groups)
    strict = cf.leave_one_group_out(_logreg, X, y, groups, n_boot=100, fdr=1e-9,
                                    random_state=0, verbose=False)
    assert not strict.to_frame()["significant"].any() and strict.alpha == 1e-9
