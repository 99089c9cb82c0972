"""Tests of confoundry.attribute: exactness, completeness, pitfalls, no mutation."""

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
from confoundry.attribution import ATTRIBUTION_METHODS as METHODS  # noqa: E402
from confoundry.attribution._methods import METHODS as SPECS  # noqa: E402
from confoundry.attribution._methods import method_table  # noqa: E402


def _linear_net(d=4, seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Linear(d, 1).double()
    return net


def _additive_relu_net():
    """f(x) = sum_j relu(w_j x_j + c_j): additive, with exact per-feature contributions."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.diag(torch.tensor([1.5, -2.0, 0.7])))
        net[0].bias.copy_(torch.tensor([0.2, 0.1, -0.3]))
        net[2].weight.fill_(1.0)
        net[2].bias.zero_()
    return net.double()


def _g(X):
    """Per-feature terms of _additive_relu_net."""
    w = np.array([1.5, -2.0, 0.7])
    c = np.array([0.2, 0.1, -0.3])
    return np.maximum(X * w + c, 0)


@pytest.fixture(scope="module")
def X_small():
    return np.random.default_rng(0).normal(size=(8, 3))


# ----------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("baseline", ["zeros", "mean", "array"])
def test_ig_linear_model_is_exact(baseline):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 4))
    net = _linear_net()
    ref = {"zeros": np.zeros(4), "mean": X.mean(axis=0), "array": rng.normal(size=4)}[baseline]
    a = cf.attribute(cf.as_model(net, output="logits"), X,
                     baseline=ref if baseline == "array" else baseline, verbose=False)
    w = net.weight.detach().numpy()[0]
    np.testing.assert_allclose(a.values, w * (X - ref), atol=1e-5)
    assert a.output == "logit" and a.method == "integrated_gradients"
    assert a.params["relative_delta"] < 1e-6
    np.testing.assert_allclose(a.total(), net(torch.as_tensor(X)).detach().numpy()[:, 0],
                               atol=1e-5)


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap", "shap_deep",
                                    "shapley_value_sampling", "shap_kernel", "shap_permutation"])
def test_shap_style_methods_recover_additive_contributions(method, X_small):
    net = _additive_relu_net()
    bg = np.random.default_rng(5).normal(size=(6, 3))
    kwargs = {"background": bg} if method in ("deeplift_shap", "shap_deep", "shap_kernel",
                                              "shap_permutation") else {"baseline": bg[0]}
    a = cf.attribute(cf.as_model(net, output="values"), X_small, method=method, verbose=False,
                     random_state=0, n_steps=10, **kwargs)
    ref = bg if "background" in kwargs else bg[:1]
    expected = _g(X_small) - _g(ref).mean(axis=0)
    np.testing.assert_allclose(a.values, expected, atol=1e-5)
    assert a.output == "value"
    assert a.params["relative_delta"] < 1e-4


@pytest.mark.parametrize("method", ["kernel_shap", "feature_ablation", "occlusion"])
def test_perturbation_methods_on_non_torch_model(method, X_small):
    """Any callable works; on an additive model these methods give g_j(x_j) - g_j(ref_j)."""
    model = cf.as_model(lambda A: _g(np.asarray(A)).sum(axis=1), output="values",
                        task="regression")
    a = cf.attribute(model, X_small, method=method, baseline="zeros", verbose=False,
                     random_state=0)
    expected = _g(X_small) - _g(np.zeros((1, 3)))
    np.testing.assert_allclose(a.values, expected, atol=1e-4)


def test_binary_probability_model_is_explained_on_the_logit():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    y = (X["a"] - X["b"] + rng.normal(size=120) > 0).astype(int)
    lr = LogisticRegression().fit(X, y)
    a = cf.attribute(lr, X.iloc[:10], method="feature_ablation", verbose=False)
    assert a.output == "logit" and a.feature_names == ["a", "b", "c"]
    ref = X.iloc[:10].mean().to_numpy()
    np.testing.assert_allclose(a.values, lr.coef_[0] * (X.iloc[:10].to_numpy() - ref),
                               atol=1e-6)
    neg = cf.attribute(lr, X.iloc[:10], method="feature_ablation", target=0, verbose=False)
    np.testing.assert_allclose(neg.values, -a.values, atol=1e-9)


def test_multiclass_target_selects_the_class():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 4).double()
    X = np.random.default_rng(0).normal(size=(10, 3))
    a = cf.attribute(cf.as_model(net, output="logits"), X, target=2, baseline="zeros",
                     verbose=False)
    np.testing.assert_allclose(a.values, net.weight.detach().numpy()[2] * X, atol=1e-6)
    per = cf.attribute(cf.as_model(net, output="logits"), X, baseline="zeros", verbose=False)
    pred = net(torch.as_tensor(X)).argmax(1).numpy()
    np.testing.assert_allclose(per.values, net.weight.detach().numpy()[pred] * X, atol=1e-6)
    with pytest.raises(ValueError, match="target=7"):
        cf.attribute(cf.as_model(net, output="logits"), X, target=7, verbose=False)


@pytest.mark.parametrize("method", ["integrated_gradients", "shapley_value_sampling"])
def test_multiclass_base_values_are_each_samples_own_class(method):
    """With each sample's predicted class, base_values[i] is f(ref) of sample i's class (an
    earlier release indexed the class by sample position: wrong bases, false delta warnings)."""
    torch.manual_seed(3)
    net = torch.nn.Linear(2, 3).double()
    X = np.random.default_rng(0).normal(size=(40, 2)) * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        a = cf.attribute(cf.as_model(net, output="logits"), X, method=method,
                         baseline="zeros", n_steps=20, verbose=False, random_state=0)
    pred = net(torch.as_tensor(X)).argmax(1).numpy()
    assert len(np.unique(pred)) == 3
    f0 = torch.nn.functional.softmax(net(torch.zeros(1, 2).double()), dim=1)
    ref = (net(torch.zeros(1, 2).double()) if a.output == "logit" else f0).detach().numpy()[0]
    np.testing.assert_allclose(a.base_values, ref[pred], atol=1e-9)
    assert a.params["relative_delta"] < 1e-3


def test_background_baseline_averages_over_references():
    net = _linear_net(3)
    X = np.random.default_rng(0).normal(size=(10, 3))
    bg = np.random.default_rng(1).normal(size=(5, 3))
    a = cf.attribute(cf.as_model(net, output="logits"), X, baseline="background",
                     background=bg, verbose=False)
    w = net.weight.detach().numpy()[0]
    np.testing.assert_allclose(a.values, w * (X - bg.mean(axis=0)), atol=1e-6)


def test_image_shaped_input_keeps_its_shape():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(2 * 6 * 6, 1))
    X = torch.randn(4, 1, 8, 8)
    a = cf.attribute(cf.as_model(net, output="logits"), X, n_steps=16, verbose=False)
    assert a.values.shape == (4, 1, 8, 8)
    occ = cf.attribute(cf.as_model(net, output="logits"), X, method="occlusion", verbose=False)
    assert occ.values.shape == (4, 1, 8, 8)


# ----------------------------------------------------------------------------- method table
def test_method_table_lists_every_method_once():
    assert set(METHODS) == set(SPECS)
    assert len(METHODS) == len(set(METHODS)) == 16
    assert [m for m in METHODS if SPECS[m].needs_torch] == list(METHODS[:8])
    t = method_table()
    assert list(t["method"]) == list(METHODS)
    assert t.set_index("method").loc["integrated_gradients", "completeness"] == "exact"


@pytest.mark.parametrize("method", METHODS)
def test_spec_describes_what_the_method_reports(method):
    """Completeness check, base value and reference in the result follow the method's spec."""
    spec = SPECS[method]
    net = _additive_relu_net().float()
    X = np.random.default_rng(0).normal(size=(6, 3))
    a = cf.attribute(cf.as_model(net, output="values"), X, method=method, n_steps=4,
                     verbose=False, random_state=0)
    checked = "relative_delta" in a.params or "additivity_gap" in a.params
    assert checked == spec.has_completeness_check
    assert ("additivity_gap" in a.params) == (spec.completeness == "gap")
    assert (a.convergence_delta is not None) == (spec.completeness in ("exact", "approximate"))
    assert bool(np.all(np.isnan(a.base_values))) == (spec.base_value is None)
    assert (a.params["n_reference_rows"] == 0) == (spec.reference is None)
    if spec.reference == "background":
        assert a.params["n_reference_rows"] == 6  # min(DEFAULT_BACKGROUND, n)
    for key, value in spec.settings(4, X.shape).items():
        assert a.params[key] == value


def test_tabular_only_methods_refuse_images():
    X = torch.randn(2, 1, 4, 4)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    for method in (m for m in METHODS if SPECS[m].tabular_only):
        with pytest.raises(ValueError, match=f"method='{method}' supports tabular X"):
            cf.attribute(cf.as_model(net, output="logits"), X, method=method, verbose=False)


# ----------------------------------------------------------------------------- checks
def test_convergence_delta_warning_with_too_few_steps():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    with torch.no_grad():
        net[0].weight.mul_(8)
    X = np.random.default_rng(0).normal(size=(20, 4))
    m = cf.as_model(net, output="logits")
    with pytest.warns(RuntimeWarning, match="increase n_steps"):
        a = cf.attribute(m, X, n_steps=2, verbose=False)
    assert a.params["relative_delta"] > 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        b = cf.attribute(m, X, n_steps=300, verbose=False)
    assert b.params["relative_delta"] < 0.05


def test_gradient_method_on_non_torch_model_is_a_clear_error(X_small):
    from sklearn.linear_model import LinearRegression

    lr = LinearRegression().fit(X_small, X_small[:, 0])
    with pytest.raises(TypeError, match="needs gradients.*torch.nn.Module.*perturbation"):
        cf.attribute(lr, X_small, method="integrated_gradients", verbose=False)


def test_bad_arguments_name_the_argument(X_small):
    net = _linear_net(3)
    with pytest.raises(ValueError, match="method='ig'"):
        cf.attribute(net, X_small, method="ig")
    with pytest.raises(ValueError, match="baseline='maen'"):
        cf.attribute(net, X_small, baseline="maen", verbose=False)
    with pytest.raises(ValueError, match="baseline has shape"):
        cf.attribute(net, X_small, baseline=np.zeros(5), verbose=False)
    with pytest.raises(ValueError, match="n_steps=0"):
        cf.attribute(net, X_small, n_steps=0)


class _FunctionalNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3, 4)
        self.b = torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap", "shap_deep"])
@pytest.mark.parametrize("kind", ["reused", "functional"])
def test_deeplift_pitfall_is_refused(method, kind, X_small):
    if kind == "reused":
        relu = torch.nn.ReLU()
        net = torch.nn.Sequential(torch.nn.Linear(3, 4), relu, torch.nn.Linear(4, 4), relu,
                                  torch.nn.Linear(4, 1))
    else:
        net = _FunctionalNet()
    with pytest.raises(ValueError, match="1082 and 1104; SHAP issue 3938"):
        cf.attribute(cf.as_model(net, output="logits"), X_small, method=method, verbose=False)
    # integrated gradients is unaffected by the pitfall
    a = cf.attribute(cf.as_model(net, output="logits"), X_small, verbose=False)
    assert a.params["relative_delta"] < 0.05


def test_differentiable_preprocess_and_refusal_of_a_numpy_one(X_small):
    net = _linear_net(3)
    m = cf.as_model(net, output="logits", preprocess=lambda x: 2.0 * x)
    a = cf.attribute(m, X_small, baseline="zeros", verbose=False)
    np.testing.assert_allclose(a.values, 2 * net.weight.detach().numpy()[0] * X_small,
                               atol=1e-6)
    bad = cf.as_model(net, output="logits",
                      preprocess=lambda x: torch.as_tensor(np.asarray(x) * 2.0))
    with pytest.raises(TypeError, match="preprocess"):
        cf.attribute(bad, X_small, verbose=False)
    ok = cf.attribute(bad, X_small, method="feature_ablation", baseline="zeros", verbose=False)
    np.testing.assert_allclose(ok.values, a.values, atol=1e-6)


# ----------------------------------------------------------------------------- no mutation
def _state(net):
    return {
        "params": {k: v.detach().clone() for k, v in net.state_dict().items()},
        "training": [m.training for m in net.modules()],
        "requires_grad": [p.requires_grad for p in net.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in net.parameters()],
        "hooks": [len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                  for m in net.modules()],
    }


@pytest.mark.parametrize("method", METHODS)
def test_model_is_not_mutated(method):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                              torch.nn.Linear(5, 1))
    net.train()
    net[0].eval()  # mixed training flags
    net[3].bias.requires_grad_(False)
    net[0].weight.grad = torch.ones_like(net[0].weight)
    before = _state(net)
    torch.manual_seed(123)
    rng_before = torch.random.get_rng_state()
    np_before = np.random.get_state()[1].copy()  # noqa: NPY002
    X = np.random.default_rng(0).normal(size=(6, 3))
    a = cf.attribute(cf.as_model(net, output="logits"), X, method=method, n_steps=5,
                     verbose=False, random_state=0)
    assert a.values.shape == (6, 3) and np.all(np.isfinite(a.values))
    after = _state(net)
    for k, v in before["params"].items():
        assert torch.equal(v, after["params"][k]), k
    assert before["training"] == after["training"]
    assert before["requires_grad"] == after["requires_grad"]
    assert after["grads"][1:] == [None] * (len(after["grads"]) - 1)
    assert torch.equal(before["grads"][0], after["grads"][0])
    assert before["hooks"] == after["hooks"]
    assert torch.equal(rng_before, torch.random.get_rng_state())
    assert np.array_equal(np_before, np.random.get_state()[1])  # noqa: NPY002


# ----------------------------------------------------------------------------- surface
def test_attribution_surface_and_reproducibility(X_small):
    net = _additive_relu_net()
    m = cf.as_model(net, output="values")
    a = cf.attribute(m, X_small, method="gradient_shap", random_state=3, verbose=False)
    b = cf.attribute(m, X_small, method="gradient_shap", random_state=3, verbose=False)
    np.testing.assert_array_equal(a.values, b.values)
    d = json.loads(a.to_json())
    assert d["type"] == "AttributionResult" and isinstance(a, cf.AttributionResult)
    assert d["method"] == "gradient_shap" and d["n_samples"] == 8 and d["shape"] == [8, 3]
    assert d["params"]["n_samples"] == 50 and len(d["table"]) == 3
    fig = a.plot()
    plt.close(fig)
    assert a.compute_time > 0 and a.params["batch_size"] == m.batch_size


def test_attribution_json_does_not_grow_with_n():
    """The (n, d) arrays stay out of to_dict(): it summarises them, per feature."""
    net = cf.as_model(_linear_net(3), output="logits")
    X = np.random.default_rng(0).normal(size=(2000, 3))
    small = cf.attribute(net, X[:10], baseline="zeros", verbose=False, random_state=0)
    big = cf.attribute(net, X, baseline="zeros", verbose=False, random_state=0)
    d = big.to_dict()
    assert not {"values", "data", "base_values", "convergence_delta"} & set(d)
    assert d["convergence_delta_max"] == pytest.approx(np.abs(big.convergence_delta).max())
    assert abs(len(big.to_json()) - len(small.to_json())) < 200


class _Product(torch.nn.Module):
    def forward(self, x):
        return (x[:, :1] * x[:, 1:2] + x[:, 2:3]).squeeze(-1)


def test_feature_ablation_additivity_gap_reuses_captums_forward():
    """The gap is 0 for an additive model, > 0 with an interaction, and equals the gap from an
    explicit forward pass (which the engine no longer runs)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    lin = cf.attribute(_linear_net(), X, method="feature_ablation", baseline="zeros",
                       verbose=False)
    assert lin.params["additivity_gap"] == pytest.approx(0.0, abs=1e-5)
    net = _Product()
    a = cf.attribute(net, X, method="feature_ablation", baseline="zeros", verbose=False,
                     batch_size=128)
    with torch.no_grad():
        fx = net(torch.as_tensor(X)).double().numpy()
    gap = np.abs(a.values.sum(axis=1) - fx).mean() / np.abs(fx).mean()
    assert a.params["additivity_gap"] == pytest.approx(gap, rel=1e-4) and gap > 0.3
