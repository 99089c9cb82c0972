"""Tests of agreement metrics, expectations, effect curves, shadow glass-box, sanity check."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import confoundry as cf  # noqa: E402
from confoundry.attribution._agreement import SUMMARY_KEYS  # noqa: E402

NAMES = ["f0", "f1", "f2", "f3", "f4", "f5"]


def _attr(w, n=300, seed=0, name="m"):
    X = np.random.default_rng(seed).normal(size=(n, len(w)))
    return cf.AttributionResult(X * np.asarray(w), 0.0, X, NAMES[:len(w)], "manual", model_name=name)


def _estimates(ag):
    return ag.summary().set_index("metric")["estimate"].to_dict()


# ----------------------------------------------------------------------------- agreement
def test_identical_explanations_agree_perfectly():
    a = _attr([6, -5, 4, 3, -2, 1])
    ag = cf.compare_attributions(a, a, k=3, n_boot=50, random_state=0)
    assert isinstance(ag, cf.AgreementResult)
    summary = ag.summary()
    assert isinstance(summary, pd.DataFrame) and list(summary["metric"]) == list(SUMMARY_KEYS)
    assert {"estimate", "ci_low", "ci_high", "k", "n", "n_boot"} <= set(summary.columns)
    s = summary.set_index("metric")
    for key in SUMMARY_KEYS:
        assert s.loc[key, "estimate"] == pytest.approx(1.0)
        assert s.loc[key, "ci_low"] <= s.loc[key, "estimate"] <= s.loc[key, "ci_high"]
    assert not ag.to_frame()["disagree"].any()
    assert ag.findings() == []


def test_pairwise_agreement_of_many_features_is_the_direct_count(monkeypatch):
    """Above PAIRWISE_DIRECT_D features the share of concordant pairs comes from Kendall's
    tau-b and the tie counts: the same numbers as comparing every pair, ties included."""
    from confoundry.attribution import _agreement

    rng = np.random.default_rng(3)
    d = 40
    X = rng.normal(size=(120, d))
    w = rng.normal(size=d)
    w_b = np.where(np.arange(d) < 25, w + 0.5 * rng.normal(size=d), 0.0)  # 15 zero features
    names = [f"g{j}" for j in range(d)]
    a = cf.AttributionResult(X * w, 0.0, X, names, "manual", model_name="dl")
    b = cf.AttributionResult(X * w_b, 0.0, X, names, "manual", model_name="ebm")
    direct = cf.compare_attributions(a, b, k=5, n_boot=30, random_state=0).summary()
    monkeypatch.setattr(_agreement, "PAIRWISE_DIRECT_D", 10)
    fast = cf.compare_attributions(a, b, k=5, n_boot=30, random_state=0).summary()
    pd.testing.assert_frame_equal(direct, fast, check_exact=False, rtol=1e-12)


def test_reversed_ranking_and_known_topk_values():
    w = np.array([6.0, 5, 4, 3, 2, 1])
    a = _attr(w, seed=1, name="dl")
    b = _attr(w[::-1], seed=1, name="ebm")  # same samples, reversed importance
    s = _estimates(cf.compare_attributions(a, b, k=3, n_boot=50, random_state=0))
    assert s["rank_correlation"] == pytest.approx(-1.0)
    assert s["pairwise_rank_agreement"] == pytest.approx(0.0)
    assert s["feature_agreement"] == pytest.approx(0.0)
    # swap ranks 2 and 3 and flip the direction of the top feature
    wb = np.array([-6.0, 4, 5, 3, 2, 1])
    c = cf.AttributionResult(a.data * wb, 0.0, a.data, NAMES, "manual", model_name="ebm")
    ag = cf.compare_attributions(a, c, k=3, n_boot=100, random_state=0)
    s = _estimates(ag)
    assert s["feature_agreement"] == pytest.approx(1.0)
    assert s["rank_agreement"] == pytest.approx(1 / 3)
    assert s["sign_agreement"] == pytest.approx(2 / 3)
    assert s["signed_rank_agreement"] == pytest.approx(0.0)
    assert s["pairwise_rank_agreement"] == pytest.approx(14 / 15)
    t = ag.to_frame().set_index("feature")
    assert t.loc["f0", "disagree"] and t.loc["f0", "direction_a"] == 1
    assert t.loc["f0", "direction_b"] == -1 and not t.loc["f3", "disagree"]
    f = ag.findings()
    assert [x.subject for x in f] == ["f0"]
    assert f[0].kind == "attribution_disagreement" and f[0].tip == 9
    # the finding is about the pair, so another glass-box model gives another key
    assert f[0].key == ("attribution_disagreement", "f0", "dl:manual vs ebm:manual", "overall")
    d = json.loads(ag.to_json())
    assert d["type"] == "AgreementResult" and len(d["table"]) == 6
    # the summary keeps its JSON shape: metric -> {estimate, ci_low, ci_high}
    assert d["summary"]["sign_agreement"]["estimate"] == pytest.approx(2 / 3)
    assert d["params"] == {"k": 3, "n_boot": 100, "ci": 0.95, "random_state": 0}
    plt.close(ag.plot())


def test_agreement_ci_reflects_sampling_noise_and_feature_order():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 4))
    a = cf.AttributionResult(X * [1.0, 0.95, 0.1, 0.05], 0, X, NAMES[:4], "m1")
    # b has its columns in another order
    b = cf.AttributionResult((X * [1.0, 0.95, 0.1, 0.05])[:, ::-1], 0, X[:, ::-1], NAMES[:4][::-1],
                       "m2")
    ag = cf.compare_attributions(a, b, k=1, n_boot=200, random_state=0)
    s = ag.summary().set_index("metric")
    assert s.loc["rank_correlation", "estimate"] == pytest.approx(1.0)
    # f0 vs f1 nearly tied: the top-1 agreement is uncertain under resampling...
    assert s.loc["rank_agreement", "ci_low"] <= 1.0
    with pytest.raises(ValueError, match="k=9"):
        cf.compare_attributions(a, b, k=9)
    with pytest.raises(TypeError, match="expected an AttributionResult"):
        cf.compare_attributions(a, X)


# ----------------------------------------------------------------------------- expectations
@pytest.fixture(scope="module")
def asthma_data():
    rng = np.random.default_rng(0)
    n = 800
    X = pd.DataFrame({"age": rng.normal(60, 10, n), "asthma": rng.integers(0, 2, n).astype(float),
                      "albumin": rng.normal(4, 0.5, n)})
    z = 0.06 * (X["age"] - 60) - 1.5 * X["asthma"] - 0.8 * (X["albumin"] - 4)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return X, y


def test_expectations_flag_planted_violation_only(asthma_data):
    from sklearn.linear_model import LogisticRegression

    X, y = asthma_data
    lr = LogisticRegression().fit(X, y)
    attr = cf.AttributionResult(lr.coef_[0] * (X.to_numpy() - X.mean().to_numpy()), 0, X.to_numpy(),
                          list(X.columns), "logistic_linear")
    exp = {"asthma": "increasing", "age": "increasing", "albumin": "decreasing"}
    res = cf.check_expectations({"lr": lr, "lr_attr": attr}, X, exp, n_boot=200, random_state=0)
    t = res.to_frame()
    for col in ["model", "feature", "expected", "observed", "effect", "ci_low", "ci_high",
                "violated"]:
        assert col in t.columns
    v = t.set_index(["model", "feature"])["violated"]
    assert v[("lr", "asthma")] and v[("lr_attr", "asthma")]
    assert not v[("lr", "age")] and not v[("lr", "albumin")]
    assert not v[("lr_attr", "age")] and not v[("lr_attr", "albumin")]
    # model effect of asthma = coefficient (0 -> 1, logit scale); attribution slope the same
    row = t[(t.model == "lr") & (t.feature == "asthma")].iloc[0]
    assert row["effect"] == pytest.approx(lr.coef_[0][1], rel=1e-6)
    row2 = t[(t.model == "lr_attr") & (t.feature == "asthma")].iloc[0]
    assert row2["effect"] == pytest.approx(lr.coef_[0][1], rel=1e-6)
    f = res.findings()
    assert len(f) == 2 and {x.model for x in f} == {"lr", "lr_attr"}
    assert all(x.kind == "expectation_violation" and x.tip == 9 and x.severity == "high"
               for x in f)
    assert "asthma" in f[0].title
    json.loads(res.to_json())
    plt.close(res.plot())


def test_expectation_observed_direction_and_bad_input():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    model = cf.as_model(lambda A: -0.001 * np.asarray(A)[:, 0],
                        output="values", task="regression")
    res = cf.check_expectations({"m": model}, X, {"a": "+"}, n_boot=100, random_state=0)
    row = res.to_frame().iloc[0]
    # a deterministic, tiny negative slope is still a violation; CI is a point here
    assert row["observed"] == "decreasing"
    with pytest.raises(ValueError, match="expectations\\['a'\\]='up-ish'"):
        cf.check_expectations({"m": model}, X, {"a": "up-ish"})
    with pytest.raises(ValueError, match="'zzz'"):
        cf.check_expectations({"m": model}, X, {"zzz": "increasing"})


# ----------------------------------------------------------------------------- effect curves
def test_effect_curve_pd_and_ale_recover_a_known_shape():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.uniform(-2, 2, 300), "z": rng.normal(size=300)})
    model = cf.as_model(lambda A: np.asarray(A)[:, 0] ** 2 + np.asarray(A)[:, 1],
                        output="values", task="regression")

    class FakeGlassBox:
        name = "fake"

        def shape(self, feature):
            v = np.linspace(-2, 2, 5)
            return pd.DataFrame({"value": v, "effect": v ** 2 - 4 / 3, "ci_low": np.nan,
                                 "ci_high": np.nan})

        def explain(self, X):  # pragma: no cover - only needed to be recognised
            raise NotImplementedError

    ec = cf.effect_curve(model, X, "x", baselines=FakeGlassBox(), n_boot=50, random_state=0,
                         verbose=False)
    assert isinstance(ec, cf.EffectCurveResult) and ec.params["baselines"] == ["fake"]
    t = ec.to_frame()
    assert set(t["curve"]) == {"pd", "ale", "fake"}
    for curve in ("pd", "ale"):
        g = t[t.curve == curve]
        # centred x^2: differences between grid points are exact
        np.testing.assert_allclose(np.diff(g["effect"]), np.diff(g["value"] ** 2), atol=1e-9)
        assert (g["ci_low"] <= g["effect"] + 1e-9).all()
        assert (g["ci_high"] >= g["effect"] - 1e-9).all()
    plt.close(ec.plot())
    with pytest.raises(ValueError, match="feature='nope'"):
        cf.effect_curve(model, X, "nope")
    # the old keyword still works, with a DeprecationWarning
    with pytest.warns(DeprecationWarning, match="baselines="):
        old = cf.effect_curve(model, X, "x", glassbox=FakeGlassBox(), n_boot=50,
                              random_state=0, verbose=False)
    pd.testing.assert_frame_equal(old.to_frame(), t)
    with pytest.raises(TypeError, match="baselines"):
        cf.effect_curve(model, X, "x", baselines=3, verbose=False)


def test_shadow_glassbox_finds_what_the_model_learned_against_the_data(asthma_data):
    pytest.importorskip("interpret")
    X, y = asthma_data
    X = X.iloc[:400]
    y = y[:400]
    # a "model" that learned asthma the wrong way round compared with the labels
    model = cf.as_model(lambda A: 0.06 * (np.asarray(A)[:, 0] - 60) + 1.5 * np.asarray(A)[:, 1],
                        output="values", task="regression", name="dl")
    res = cf.shadow_glassbox(model, X, y, n_boot=50, random_state=0,
                             ebm_params={"outer_bags": 1, "max_rounds": 300})
    t = res.to_frame().set_index("feature")
    assert res.fidelity["r2"] > 0.9
    assert t.loc["asthma", "disagree"] and not t.loc["age", "disagree"]
    assert t.loc["asthma", "direction_model"] == 1 and t.loc["asthma", "direction_data"] == -1
    assert any(f.subject == "asthma" and f.tip == 9 for f in res.findings())
    json.loads(res.to_json())
    plt.close(res.plot())


# ----------------------------------------------------------------------------- sanity check
@pytest.fixture(scope="module")
def trained_net():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 6)).astype(np.float32)
    y = (X[:, 0] - 2 * X[:, 1] + X[:, 2] * X[:, 3] > 0).astype(np.float32)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16),
                              torch.nn.ReLU(), torch.nn.Linear(16, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(150):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt)[:, 0], yt)
        loss.backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return net, X[:60]


def test_sanity_check_passes_ig_on_a_trained_net(trained_net):
    net, X = trained_net
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = cf.sanity_check(cf.as_model(net, output="logits"), X, n_boot=100, random_state=0,
                          verbose=False, n_steps=16)
    t = res.to_frame()
    assert list(t["layer"]) == ["4", "2", "0"]
    assert res.passed and res.findings() == []
    assert t["spearman_abs"].iloc[-1] < 0.5
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    plt.close(res.plot())
    json.loads(res.to_json())


def test_sanity_check_flags_an_explanation_that_ignores_the_model(trained_net):
    net, X = trained_net

    def input_values(model, data):
        return np.asarray(data, dtype=np.float64)

    res = cf.sanity_check(cf.as_model(net, output="logits"), X, method=input_values,
                          n_boot=100, random_state=0, verbose=False)
    assert not res.passed
    f = res.findings()
    assert len(f) == 1 and f[0].severity == "high" and f[0].tip == 9
    assert res.to_frame()["spearman_abs"].min() == pytest.approx(1.0)


def test_sanity_check_needs_a_torch_model():
    from sklearn.linear_model import LinearRegression

    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        cf.sanity_check(LinearRegression().fit(X, X[:, 0]), X)


def test_u_shaped_feature_is_never_a_direction_disagreement():
    """A U-shaped attribution has a covariance sign that is noise: no 'high' finding for it,
    while a monotone feature learned the opposite way is still flagged."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3))
    X[200:, 0] = -X[:200, 0]  # symmetric: the U itself has no covariance with x
    names = ["u", "lin", "z"]
    va = np.column_stack([X[:, 0] ** 2 - 1 + 0.2 * X[:, 0], 2 * X[:, 1], 0.1 * X[:, 2]])
    vb = np.column_stack([X[:, 0] ** 2 - 1 - 0.2 * X[:, 0], -2 * X[:, 1], 0.1 * X[:, 2]])
    a = cf.AttributionResult(va, 0.0, X, names, "manual", model_name="dl")
    b = cf.AttributionResult(vb, 0.0, X, names, "manual", model_name="ebm")
    ag = cf.compare_attributions(a, b, k=2, n_boot=200, random_state=0)
    t = ag.to_frame().set_index("feature")
    assert t.loc["u", "direction_a"] * t.loc["u", "direction_b"] < 0   # signs flip ...
    assert t.loc["u", "monotonicity_a"] < 0.2                          # ... but U-shaped
    assert t.loc["lin", "monotonicity_a"] > 0.99
    assert t.loc["lin", "direction_a_ci_low"] > 0 > t.loc["lin", "direction_b_ci_high"]
    assert [f.subject for f in ag.findings() if f.severity == "high"] == ["lin"]


def test_pool_image_attributions_keeps_totals_and_feeds_contrast():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(40, 1, 8, 8))
    v[:20, 0, :2, :2] += 3.0  # group a looks at the top-left corner
    a = cf.AttributionResult(v, 0.0, v, [], "manual", model_name="cnn")
    p = a.pool((4, 4))
    assert p.values.shape == (40, 16) and p.feature_names[0] == "r0c0"
    np.testing.assert_allclose(p.values.sum(axis=1), v.reshape(40, -1).sum(axis=1))
    pa = a.pool((2, 2), absolute=True)
    np.testing.assert_allclose(pa.values.sum(axis=1), np.abs(v).reshape(40, -1).sum(axis=1))
    groups = np.array(["look"] * 20 + ["rest"] * 20)
    c = cf.contrast_attributions(p, groups == "look", n_permutations=2000, n_boot=100,
                                 random_state=0)
    sig = c.to_frame().query("q_value < 0.05")["feature"].tolist()
    assert sig == ["r0c0"]
    with pytest.raises(ValueError, match="already tabular"):
        p.pool()
    with pytest.raises(ValueError, match="finer than"):
        a.pool((9, 9))
