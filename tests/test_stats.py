"""The metric panel equals scikit-learn; bootstrap CIs cover at the nominal rate."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn import metrics as skm

from confoundry.stats import (
    bh_adjust,
    bootstrap_metrics,
    bootstrap_weights,
    metric_panel,
    paired_bootstrap,
    permutation_p_value,
    weighted_metrics,
)


@pytest.fixture
def binary():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    s = np.round(np.clip(0.3 * y + 0.7 * rng.random(500), 0, 1), 2)  # ties on purpose
    return y, s


def test_binary_panel_equals_sklearn(binary):
    y, s = binary
    p = metric_panel(y, s, task="binary", threshold=0.4)
    pred = s >= 0.4
    expected = {
        "auroc": skm.roc_auc_score(y, s), "auprc": skm.average_precision_score(y, s),
        "brier": skm.brier_score_loss(y, s), "log_loss": skm.log_loss(y, s),
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "sensitivity": skm.recall_score(y, pred), "specificity": skm.recall_score(1 - y, ~pred),
    }
    for k, v in expected.items():
        assert p[k] == pytest.approx(v, abs=1e-12), k
    # ECE by hand: 10 equal-width bins, weighted gap between mean label and mean score
    bins = np.clip((s * 10).astype(int), 0, 9)
    ece = sum(abs(y[bins == b].mean() - s[bins == b].mean()) * np.mean(bins == b)
              for b in np.unique(bins))
    assert p["ece"] == pytest.approx(ece, abs=1e-12)


def test_weighted_metrics_equal_sklearn_sample_weight(binary):
    y, s = binary
    w = np.random.default_rng(2).integers(0, 4, len(y)).astype(float)
    res = weighted_metrics(y, s, w[None, :], task="binary")
    assert res["auroc"][0] == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w), abs=1e-12)
    assert res["auprc"][0] == pytest.approx(
        skm.average_precision_score(y, s, sample_weight=w), abs=1e-12)
    assert res["log_loss"][0] == pytest.approx(skm.log_loss(y, s, sample_weight=w), abs=1e-12)


def test_multiclass_and_regression_equal_sklearn():
    rng = np.random.default_rng(3)
    P = rng.dirichlet([1, 2, 3], 400)
    y = rng.integers(0, 3, 400)
    p = metric_panel(y, P, task="multiclass")
    assert p["macro_auroc"] == pytest.approx(skm.roc_auc_score(y, P, multi_class="ovr"))
    assert p["accuracy"] == pytest.approx(skm.accuracy_score(y, P.argmax(1)))
    assert p["log_loss"] == pytest.approx(skm.log_loss(y, P))
    yr = rng.normal(size=300)
    sr = yr + rng.normal(size=300)
    r = metric_panel(yr, sr, task="regression")
    assert r["r2"] == pytest.approx(skm.r2_score(yr, sr))
    assert r["mae"] == pytest.approx(skm.mean_absolute_error(yr, sr))
    assert r["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(yr, sr)))


def test_bad_metric_name():
    with pytest.raises(ValueError, match=r"\['r2'\] not valid for task='binary'"):
        metric_panel([0, 1], [0.2, 0.8], task="binary", metrics=["r2"])


def test_stratified_weights_keep_class_counts():
    y = np.array([0] * 30 + [1] * 10)
    W = np.vstack(list(bootstrap_weights(40, 50, strata=y, random_state=0, chunk_size=7)))
    assert W.shape == (50, 40)
    np.testing.assert_array_equal(W[:, y == 1].sum(axis=1), 10)
    np.testing.assert_array_equal(W[:, y == 0].sum(axis=1), 30)
    W2 = np.vstack(list(bootstrap_weights(40, 50, strata=y, random_state=0, chunk_size=7)))
    np.testing.assert_array_equal(W, W2)


def test_bootstrap_ci_coverage_is_nominal():
    """95% percentile intervals for AUROC cover the true value ~95% of the time."""
    d = 1.0
    true_auc = norm.cdf(d / np.sqrt(2))  # binormal model
    rng = np.random.default_rng(0)
    hits = []
    for rep in range(200):
        y = np.r_[np.zeros(150, int), np.ones(150, int)]
        s = np.r_[rng.normal(0, 1, 150), rng.normal(d, 1, 150)]
        t = bootstrap_metrics(y, s, task="binary", metrics=["auroc"], n_boot=300,
                              random_state=rep)
        hits.append(t.loc[0, "ci_low"] <= true_auc <= t.loc[0, "ci_high"])
    coverage = np.mean(hits)
    assert 0.90 <= coverage <= 0.985, coverage


def test_paired_bootstrap_detects_better_model_and_not_a_copy():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 800)
    good = 0.6 * y + 0.4 * rng.random(800)
    bad = 0.2 * y + 0.8 * rng.random(800)
    t = paired_bootstrap(y, good, bad, task="binary", metrics=["auroc", "brier"], n_boot=300,
                         random_state=0).set_index("metric")
    assert t.loc["auroc", "difference"] > 0 and t.loc["auroc", "ci_low"] > 0
    assert t.loc["auroc", "a_better"] and not t.loc["auroc", "b_better"]
    assert t.loc["brier", "a_better"]  # lower Brier is better
    assert t.loc["auroc", "p_value"] < 0.01
    flipped = paired_bootstrap(y, bad, good, task="binary", metrics=["auroc", "brier"],
                               n_boot=300, random_state=0).set_index("metric")
    np.testing.assert_allclose(flipped["difference"], -t["difference"], atol=1e-12)
    np.testing.assert_allclose(flipped["ci_low"], -t["ci_high"], atol=1e-12)
    same = paired_bootstrap(y, good, good, task="binary", metrics=["auroc"], n_boot=100,
                            random_state=0)
    assert same.loc[0, "difference"] == 0 and same.loc[0, "ci_low"] == 0
    assert not same.loc[0, "a_better"]


def test_bootstrap_reproducible_and_validated(binary):
    y, s = binary
    a = bootstrap_metrics(y, s, task="binary", n_boot=50, random_state=7)
    b = bootstrap_metrics(y, s, task="binary", n_boot=50, random_state=7)
    assert a.equals(b)
    assert (a["n"] == len(y)).all()
    with pytest.raises(ValueError, match="n_boot=0 is not valid"):
        bootstrap_metrics(y, s, task="binary", n_boot=0)
    with pytest.raises(ValueError, match="ci=1.5 is not valid"):
        bootstrap_metrics(y, s, task="binary", ci=1.5)


def test_bh_and_permutation_p():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    from scipy.stats import false_discovery_control

    np.testing.assert_allclose(bh_adjust(p), false_discovery_control(p))
    assert permutation_p_value(10.0, np.zeros(99)) == 0.01
    assert permutation_p_value(0.0, np.zeros(99)) == 1.0
