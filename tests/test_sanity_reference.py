"""The attribution sanity check read against what the input alone explains (issue 20).

Integrated gradients is (x - baseline) x average gradient, so a trained MLP's attributions and a
randomised copy's correlate through the (x - baseline) factor alone; the fixed threshold of 0.5
then fired on well-trained models. The check now compares with the agreement between fully
randomised copies.
"""

import dataclasses
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

import confoundry as cf
from confoundry.attribution._sanity import N_RANDOM_COPIES, REFERENCE_MARGIN


def _reference(res):
    return res.reference.set_index("quantity")


@pytest.fixture(scope="module")
def planted():
    """An MLP trained (< 1 s) on 6 features, 3 of them binary, where only features 0 and 1
    matter (y = 1 when 2 x0 - 1.5 x1 + noise > 0)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    X[:, 3:] = (X[:, 3:] > 0.3).astype(np.float32)
    y = (2 * X[:, 0] - 1.5 * X[:, 1] + 0.5 * rng.normal(size=400) > 0).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32),
                              torch.nn.ReLU(), torch.nn.Linear(32, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(net(xt)[:, 0], yt).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        accuracy = float(((net(xt)[:, 0] > 0).float() == yt).float().mean())
    return net, X[:200], accuracy


def test_planted_mlp_recovers_its_features_and_passes(planted):
    net, X, accuracy = planted
    assert accuracy > 0.85
    model = cf.as_model(net, output="logits")
    ig = cf.attribute(model, X, random_state=0, verbose=False)
    importance = np.abs(ig.values).mean(axis=0)
    assert set(np.argsort(-importance)[:2]) == {0, 1}
    assert importance[[0, 1]].min() > 2 * importance[2:].max()

    old_rule_fired = []
    for seed in (0, 1, 2):
        res = cf.sanity_check(model, X, n_boot=200, random_state=seed, verbose=False)
        assert res.passed, res.reference
        assert res.findings() == []
        last = res.table.iloc[-1]
        old_rule_fired.append(bool(last["ci_high"] >= res.threshold))
        ref = _reference(res)
        # integrated gradients distinguishes unrelated random models...
        assert ref.loc["randomised_vs_randomised", "ci_high"] < 1 - REFERENCE_MARGIN
        # ...and the trained model is not closer to them than they are to each other
        assert ref.loc["model_specificity", "ci_high"] >= -REFERENCE_MARGIN
    # the fixed threshold alone fired on this well-trained model: the reference is what saves it
    assert any(old_rule_fired)


@pytest.mark.parametrize("centre", [False, True], ids=["x_times_1", "x_minus_mean_times_2"])
def test_an_explainer_that_ignores_the_model_fires(planted, centre):
    net, X, _ = planted

    def constant_gradient(model, data):  # (x - baseline) * a gradient replaced by a constant
        A = np.asarray(data, dtype=np.float64)
        return (A - A.mean(axis=0)) * 2.0 if centre else A * 1.0

    res = cf.sanity_check(cf.as_model(net, output="logits"), X, method=constant_gradient,
                          n_boot=100, random_state=0, verbose=False)
    assert not res.passed
    ref = _reference(res)
    assert ref.loc["randomised_vs_randomised", "estimate"] == pytest.approx(1.0)
    assert ref.loc["model_specificity", "estimate"] == pytest.approx(0.0)
    (f,) = res.findings()
    assert f.kind == "sanity_check_failed" and f.severity == "high" and f.tip == 9
    assert f.subject == "constant_gradient"
    ev = f.evidence
    assert ev["failed"] == ["explainer"] and ev["n"] == 200 and ev["n_copies"] == N_RANDOM_COPIES
    assert ev["reference"] == pytest.approx(1.0) and ev["specificity_ci_high"] == pytest.approx(0)
    assert ev["margin"] == REFERENCE_MARGIN and ev["threshold"] == 0.5
    for text in ("agree with each other at Spearman 1.00", "95% CI", "a difference of +0.00",
                 "n = 200 samples", "3 randomised copies"):
        assert text in f.title
    json.loads(res.to_json())


def test_few_samples_never_give_a_high_finding(planted):
    net, X, _ = planted
    res = cf.sanity_check(cf.as_model(net, output="logits"), X[:15],
                          method=lambda model, data: np.asarray(data, dtype=np.float64),
                          n_boot=50, random_state=0, verbose=False)
    (f,) = res.findings()
    assert f.severity == "medium" and f.evidence["n"] == 15


def test_attributions_that_are_mostly_the_input_are_a_medium_finding():
    """A linear model with equal weights: IG is exactly (x - mean) * 1, faithful, yet no
    randomisation test can tell it from an explainer that ignores the model. Random copies
    disagree with each other (the explainer works), but the model's attributions resemble
    theirs more than they resemble each other: flagged, at medium."""
    X = np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)
    lin = torch.nn.Linear(16, 1)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.zero_()
    for seed in (0, 1):
        res = cf.sanity_check(cf.as_model(lin, output="values", task="regression"), X,
                              n_boot=200, random_state=seed, verbose=False)
        assert not res.passed
        ref = _reference(res)
        assert ref.loc["randomised_vs_randomised", "ci_high"] < 1 - REFERENCE_MARGIN
        assert ref.loc["model_specificity", "ci_high"] < -REFERENCE_MARGIN
        (f,) = res.findings()
        assert f.severity == "medium" and f.evidence["failed"] == ["model"]
        assert "cannot show that they explain the model" in f.title


def test_reproducible_and_the_model_is_untouched(planted):
    net, X, _ = planted
    net.train()
    net[2].eval()
    net[0].bias.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    grads = [p.requires_grad for p in net.parameters()]
    rng_state = torch.get_rng_state().clone()
    try:
        model = cf.as_model(net, output="logits")
        a = cf.sanity_check(model, X, n_boot=50, random_state=7, verbose=False, n_steps=16)
        b = cf.sanity_check(model, X, n_boot=50, random_state=7, verbose=False, n_steps=16)
        c = cf.sanity_check(model, X, n_boot=50, random_state=8, verbose=False, n_steps=16)
        assert [m.training for m in net.modules()] == modes
        assert [p.requires_grad for p in net.parameters()] == grads
        for k, v in net.state_dict().items():
            assert torch.equal(v, before[k]), k
        assert torch.equal(torch.get_rng_state(), rng_state)
    finally:
        net.eval()
        net[0].bias.requires_grad_(True)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.reference, b.reference)
    assert a.passed == b.passed
    assert not np.allclose(a.reference["estimate"], c.reference["estimate"])
    assert list(a.table.columns) == ["step", "layer", "spearman", "spearman_abs", "ci_low",
                                     "ci_high", "global_rank_correlation", "n", "n_boot"]
    assert list(a.reference.columns) == ["quantity", "estimate", "ci_low", "ci_high", "n",
                                         "n_boot", "n_copies"]
    assert a.params == {"method": "integrated_gradients", "threshold": 0.5, "n_boot": 50,
                        "ci": 0.95, "random_state": 7, "n_steps": 16}


def test_without_a_reference_only_the_threshold_counts(planted):
    net, X, _ = planted
    res = cf.sanity_check(cf.as_model(net, output="logits"), X, n_boot=50, random_state=0,
                          verbose=False, n_steps=16)
    bare = dataclasses.replace(res, reference=None)
    absolute = bool(res.table.iloc[-1]["ci_high"] < res.threshold)
    assert bare.passed == absolute
    assert dataclasses.replace(res, threshold=1.0).passed   # every similarity is below 1.0 here
    lenient = dataclasses.replace(bare, threshold=-1.0)
    (f,) = lenient.findings()
    assert f.severity == "medium" and "no reference was measured" in f.title
    plt.close(bare.plot())


def test_plot_shows_the_reference(planted):
    net, X, _ = planted
    res = cf.sanity_check(cf.as_model(net, output="logits"), X, n_boot=50, random_state=0,
                          verbose=False, n_steps=16)
    fig = res.plot()
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "two randomised copies (reference, CI band)" in labels
    assert any(label.startswith("model vs 3 randomised copies") for label in labels)
    ref = _reference(res).loc["randomised_vs_randomised", "estimate"]
    assert any(np.allclose(line.get_ydata(), ref) for line in ax.get_lines())
    assert fig.get_layout_engine() is not None
    plt.close(fig)
