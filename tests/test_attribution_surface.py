"""The attribution step functions as the audit calls them: AuditData passed through, renamed
results and arguments, glass-box overlays from fit_baselines, scores instead of the model."""

import json
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import confoundry as cf  # noqa: E402
import confoundry.attribution as ca  # noqa: E402
from confoundry.data import AuditData  # noqa: E402


@pytest.fixture(scope="module")
def asthma():
    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame({"age": rng.normal(60, 10, n), "asthma": rng.integers(0, 2, n).astype(float),
                      "albumin": rng.normal(4, 0.5, n)})
    z = 0.06 * (X["age"] - 60) - 1.5 * X["asthma"] - 0.8 * (X["albumin"] - 4)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def lr(asthma):
    from sklearn.linear_model import LogisticRegression

    X, y = asthma
    return LogisticRegression().fit(X, y)


# --------------------------------------------------------------------------- renamed names
@pytest.mark.parametrize("old, new", [("Attribution", "AttributionResult"),
                                      ("Agreement", "AgreementResult"),
                                      ("EffectCurve", "EffectCurveResult"),
                                      ("ShadowGlassBox", "ShadowGlassBoxResult")])
def test_old_result_names_warn_and_resolve_to_the_new_classes(old, new):
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated.*{new}"):
        cls = getattr(ca, old)
    assert cls is getattr(ca, new)
    assert new in ca.__all__ and old not in ca.__all__
    with pytest.raises(AttributeError):
        ca.NoSuchResult  # noqa: B018


def test_result_classes_end_in_result():
    from confoundry._explanation import Attribution

    assert Attribution is cf.AttributionResult  # the internal alias, for other packages
    for name in ca.__all__:
        obj = getattr(ca, name)
        if isinstance(obj, type):
            assert name.endswith("Result"), name


# --------------------------------------------------------------------------- pass-through
@pytest.mark.filterwarnings("ignore:integrated_gradients. attributions miss")
def test_step_functions_build_no_second_audit_data(asthma, lr, count_audit_data):
    """Given an AuditData (or a subset view), no step function constructs another one."""
    pytest.importorskip("interpret")
    X, y = asthma
    data = AuditData(X, y)
    sub = data.subset(np.arange(0, 600, 3))
    timg = AuditData(np.random.default_rng(0).normal(size=(30, 3)))
    count_audit_data.clear()
    a = cf.attribute(lr, sub, method="feature_ablation", verbose=False)
    b = cf.attribute(lr, sub, method="shap_permutation", n_steps=2, random_state=0,
                     verbose=False)
    cf.compare_attributions(a, b, k=2, n_boot=20, random_state=0)
    cf.check_expectations({"lr": lr, "attr": a}, sub, {"asthma": "increasing"}, n_boot=20,
                          random_state=0, verbose=False)
    cf.effect_curve(lr, sub, "age", n_boot=10, random_state=0, verbose=False)
    cf.shadow_glassbox(lr, sub, sub.y, n_boot=10, random_state=0, verbose=False,
                       ebm_params={"outer_bags": 1, "max_rounds": 50})
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    cf.sanity_check(cf.as_model(net, output="logits"), timg, n_boot=10, random_state=0,
                    verbose=False, n_steps=4)
    assert count_audit_data == []
    assert a.n_samples == sub.n_samples == 200


def test_audit_data_and_raw_input_give_the_same_attributions(asthma, lr):
    X, _ = asthma
    raw = cf.attribute(lr, X.iloc[:50], method="feature_ablation", verbose=False)
    view = cf.attribute(lr, AuditData(X).subset(np.arange(50)), method="feature_ablation",
                        verbose=False)
    np.testing.assert_array_equal(raw.values, view.values)


def test_models_fitted_on_arrays_get_arrays_from_an_audit_data():
    """A callable that indexes columns like an array works whether X is an array or an
    AuditData built from one (the user's input type decides)."""
    X = np.random.default_rng(0).normal(size=(30, 2))
    model = cf.as_model(lambda A: A[:, 0] * 2.0 + A[:, 1], output="values", task="regression")
    a = cf.attribute(model, AuditData(X), method="feature_ablation", baseline="zeros",
                     verbose=False)
    np.testing.assert_allclose(a.values, X * [2.0, 1.0])
    res = cf.check_expectations({"m": model}, AuditData(X), {"x0": "+"}, n_boot=20,
                                random_state=0, verbose=False)
    assert res.to_frame()["effect"].iloc[0] > 0


# --------------------------------------------------------------------------- effect curves
def test_effect_curve_draws_the_baselines_of_fit_baselines(asthma, lr):
    """The audit passes baselines=fit_baselines(...): every glass-box shape is overlaid."""
    X, y = asthma
    base = cf.fit_baselines(X, y, kinds=("logistic", "tree"), tuning="none", random_state=0,
                            verbose=False)
    ec = cf.effect_curve(lr, X, "age", baselines=base, n_boot=20, random_state=0,
                         verbose=False)
    t = ec.to_frame()
    assert set(t["curve"]) == {"pd", "ale", "logistic", "tree"}
    assert ec.params["baselines"] == ["logistic", "tree"]
    lin = t[t.curve == "logistic"]
    slope = np.diff(lin["effect"]) / np.diff(lin["value"])
    np.testing.assert_allclose(slope, slope[0], rtol=1e-6)  # a line on the logit scale
    fig = ec.plot()
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "logistic shape" in labels and "tree shape" in labels
    plt.close(fig)
    one = cf.effect_curve(lr, X, "age", baselines=base["tree"], kind="pd", n_boot=20,
                          random_state=0, verbose=False)
    assert set(one.to_frame()["curve"]) == {"pd", "tree"}
    d = json.loads(ec.to_json())
    assert d["type"] == "EffectCurveResult" and d["params"]["n_boot"] == 20


def test_effect_curve_glassbox_and_baselines_together_is_an_error(asthma, lr):
    X, _ = asthma
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="glassbox="):
        cf.effect_curve(lr, X, "age", baselines={}, glassbox={}, verbose=False)


# --------------------------------------------------------------------------- shadow glass-box
def test_shadow_glassbox_from_scores_does_not_call_the_model(asthma, lr):
    pytest.importorskip("interpret")
    X, y = asthma
    data = AuditData(X, y).subset(np.arange(300))
    kw = {"n_boot": 30, "random_state": 0, "verbose": False,
          "ebm_params": {"outer_bags": 1, "max_rounds": 200}}
    called = cf.shadow_glassbox(lr, data, data.y, **kw)

    def refuse(A):
        raise AssertionError("the model was called although scores were given")

    scores = lr.predict_proba(X.iloc[:300])[:, 1]
    adapter = cf.as_model(refuse, output="probabilities", task="binary", name="lr")
    res = cf.shadow_glassbox(adapter, data, data.y, scores=scores, **kw)
    none = cf.shadow_glassbox(None, data, data.y, scores=scores, **kw)
    assert isinstance(res, cf.ShadowGlassBoxResult)
    assert res.model_name == "lr" and none.model_name == "model"
    assert res.params["from_scores"] and not called.params["from_scores"]
    # the log-odds of the probabilities are the model's own log-odds: the same fits
    pd.testing.assert_frame_equal(res.to_frame(), called.to_frame(), rtol=1e-6)
    pd.testing.assert_frame_equal(none.to_frame(), res.to_frame())
    d = json.loads(res.to_json())
    assert "shadow" not in d and "reference" not in d and d["fidelity"]["n_test"] == 90
    with pytest.raises(ValueError, match="scores has shape"):
        cf.shadow_glassbox(None, data, data.y, scores=scores[:10], **kw)
    with pytest.raises(TypeError, match="model or scores"):
        cf.shadow_glassbox(None, data, data.y, **kw)


def test_output_from_scores_conventions():
    from confoundry.attribution._common import output_from_scores

    np.testing.assert_allclose(output_from_scores([0.5, 0.9], 2, task="binary"),
                               [0.0, np.log(9.0)])
    np.testing.assert_array_equal(output_from_scores([3.0, -1.0], 2, task="regression"),
                                  [3.0, -1.0])
    np.testing.assert_array_equal(output_from_scores([[0.2, 0.8], [0.6, 0.4]], 2,
                                                     task="multiclass", target=1), [0.8, 0.4])
    with pytest.raises(ValueError, match="target=<class index>"):
        output_from_scores([[0.2, 0.8], [0.6, 0.4]], 2, task="multiclass")
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        output_from_scores([2.0, 0.1], 2, task="binary")


# --------------------------------------------------------------------------- mass by group
def test_mass_by_group_by_and_fdr_with_the_old_names_deprecated():
    rng = np.random.default_rng(0)
    s = np.r_[rng.uniform(0.6, 0.9, 30), rng.uniform(0.4, 0.7, 30)]
    g = np.repeat(["A", "B"], 30)
    new = ca.mass_by_group(s, by=g, fdr=0.01, n_permutations=200, n_boot=50, random_state=0)
    assert new.fdr == 0.01 and new.alpha == 0.01
    assert new.params == {"n_permutations": 200, "n_boot": 50, "fdr": 0.01, "ci": 0.95,
                          "strata": False, "random_state": 0}
    with pytest.warns(DeprecationWarning) as record:
        old = ca.mass_by_group(s, groups=g, alpha=0.01, n_permutations=200, n_boot=50,
                               random_state=0)
    messages = " ".join(str(w.message) for w in record)
    assert "groups=" in messages and "alpha=" in messages
    assert old.p_value == new.p_value and old.fdr == 0.01
    pd.testing.assert_frame_equal(old.to_frame(), new.to_frame())
    with pytest.raises(TypeError, match="both by= and groups="):
        ca.mass_by_group(s, g, groups=g)
    with pytest.raises(TypeError, match="by="):
        ca.mass_by_group(s)
    with pytest.raises(ValueError, match="fdr=2"):
        ca.mass_by_group(s, g, fdr=2)
    # a finding needs p < fdr
    loose = ca.mass_by_group(s, g, fdr=0.5, n_permutations=200, n_boot=50, random_state=0)
    strict = ca.mass_by_group(s, g, fdr=1e-9, n_permutations=200, n_boot=50, random_state=0)
    assert loose.findings() and not strict.findings()
    d = json.loads(new.to_json())
    assert d["fdr"] == 0.01 and "significant" in d and "shares" not in d and "groups" not in d


# --------------------------------------------------------------------------- params, verbose
@pytest.mark.filterwarnings("ignore:integrated_gradients. attributions miss")
def test_every_result_records_its_params(asthma, lr):
    X, _ = asthma
    exp = cf.check_expectations({"lr": lr}, X, {"asthma": "+"}, n_boot=30, random_state=3,
                                verbose=False)
    assert exp.params["n_boot"] == 30 and exp.params["random_state"] == 3
    assert exp.params["expectations"] == {"asthma": "increasing"}
    ec = cf.effect_curve(lr, X, "age", n_boot=10, random_state=np.random.default_rng(0),
                         verbose=False)
    assert ec.params["random_state"] == "Generator" and ec.params["baselines"] == []
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    sc = cf.sanity_check(cf.as_model(net, output="logits"), torch.randn(20, 3), n_boot=10,
                         random_state=1, verbose=False, n_steps=4)
    assert sc.params == {"method": "integrated_gradients", "threshold": 0.5, "n_boot": 10,
                         "ci": 0.95, "random_state": 1, "n_steps": 4}


@pytest.mark.parametrize("step", ["attribute", "check_expectations", "effect_curve",
                                  "sanity_check"])
def test_verbose_false_silences_the_progress_bars(step, asthma, lr, capsys):
    X, _ = asthma
    torch.manual_seed(0)
    net = cf.as_model(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(),
                                          torch.nn.Linear(2, 1)), output="logits")
    calls = {
        "attribute": lambda v: cf.attribute(lr, X.iloc[:20], method="feature_ablation",
                                            verbose=v),
        "check_expectations": lambda v: cf.check_expectations(
            {"lr": lr}, X, {"age": "+"}, n_boot=10, random_state=0, verbose=v),
        "effect_curve": lambda v: cf.effect_curve(lr, X, "age", n_boot=10, random_state=0,
                                                  verbose=v),
        "sanity_check": lambda v: cf.sanity_check(net, X.to_numpy()[:20], n_boot=10,
                                                  random_state=0, verbose=v, n_steps=4),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calls[step](False)
        assert capsys.readouterr().err == ""
        calls[step](True)
        assert capsys.readouterr().err != ""
