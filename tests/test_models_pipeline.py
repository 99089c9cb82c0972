"""The audit's calling convention for fit_baselines, compare_models and as_model: AuditData passed
through, precomputed scores and panels, renamed arguments and results, sklearn metric names."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import confoundry as cf
import confoundry.models as cm
from confoundry.data import AuditData
from confoundry.models import BaselinesResult, ModelComparisonResult, as_model
from confoundry.stats import bootstrap_panel

N_BOOT = 200


@pytest.fixture(scope="module")
def setting():
    rng = np.random.default_rng(0)
    n = 900
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["age", "dose", "bmi"])
    y = (1.2 * X["age"] - X["dose"] + rng.normal(size=n) > 0).astype(int).to_numpy()
    train = AuditData(X.iloc[:500], y[:500])
    test = AuditData(X.iloc[500:].reset_index(drop=True), y[500:])
    base = cf.fit_baselines(train, None, kinds=("logistic", "tree"), random_state=0, cv=3,
                            verbose=False)
    dl = LogisticRegression().fit(X.iloc[:500][["age", "bmi"]], y[:500])
    s = dl.predict_proba(test.X[["age", "bmi"]])[:, 1]
    bs = {k: m.predict_scores(test) for k, m in base.items()}
    return train, test, base, dl, s, bs


def test_fit_baselines_uses_the_audit_data_as_is(setting, count_audit_data):
    train = setting[0]
    base = cf.fit_baselines(train, None, kinds="tree", tuning="none", random_state=0,
                            verbose=False)
    assert count_audit_data == []
    assert isinstance(base, BaselinesResult) and base.n_train == train.n_samples
    assert base.params["kinds"] == ["tree"] and base.params["random_state"] == 0
    d = json.loads(base.to_json())
    assert d["type"] == "BaselinesResult" and d["params"]["tuning"] == "none"
    assert d["table"][0]["model"] == "tree" and d["models"]["tree"]["search"] == "fixed"
    pd.testing.assert_frame_equal(base.to_frame(), base.tuning_table())
    import matplotlib.pyplot as plt

    plt.close(base.plot())


def test_compare_models_from_scores_and_panel_needs_no_model_and_no_audit_data(
        setting, count_audit_data):
    _, test, base, dl, s, bs = setting
    scores = {"dl": s, **bs}
    # compare_models bootstrapping itself ...
    again = cf.compare_models(None, None, test.y, scores=scores, n_boot=N_BOOT, random_state=3,
                              reference="dl", verbose=False)
    assert again.params["panel"] is False
    # ... and the audit's panel with the same seed
    panel = bootstrap_panel(test.y, scores, task="binary", n_boot=N_BOOT,
                            random_state=again.seed, reference="dl")

    class Unscorable:
        def predict_proba(self, X):
            raise AssertionError("the model must not be called when scores are given")

    res = cf.compare_models({"dl": Unscorable(), **base}, test, None, scores=scores,
                            panel=panel, reference="dl", verbose=False)
    assert count_audit_data == []
    assert isinstance(res, ModelComparisonResult)
    # the panel's numbers, not a second bootstrap
    pd.testing.assert_frame_equal(res.table, panel.frame(["dl", *bs]))
    assert res.n_boot == N_BOOT and res.seed == panel.seed and res.params["panel"] is True
    assert res.glass_box == {"dl": False, "logistic": True, "tree": True}
    assert res.tuning["tree"]["kind"] == "tree"
    np.testing.assert_array_equal(res.scores["dl"], s)
    # give the same numbers
    pd.testing.assert_frame_equal(again.table, res.table)
    pd.testing.assert_frame_equal(again.differences, res.differences)


def test_compare_models_scores_equal_scoring_the_models(setting):
    _, test, base, _, _, bs = setting
    a = cf.compare_models(base, test, None, n_boot=N_BOOT, random_state=0, verbose=False)
    b = cf.compare_models(dict(base), test, None, scores=bs, n_boot=N_BOOT, random_state=0,
                          verbose=False)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert b.glass_box == {"logistic": True, "tree": True}


def test_compare_models_panel_errors(setting):
    _, test, _, _, s, bs = setting
    panel = bootstrap_panel(test.y, {"dl": s}, task="binary", metrics=["auroc"], n_boot=20,
                            random_state=0)
    with pytest.raises(ValueError, match="panel has no model"):
        cf.compare_models(None, test, None, scores={"dl": s, **bs}, panel=panel)
    with pytest.raises(ValueError, match="the panel did not compute"):
        cf.compare_models(None, test, None, scores={"dl": s}, panel=panel, metrics=["brier"])
    with pytest.raises(TypeError, match="not a MetricPanel"):
        cf.compare_models(None, test, None, scores={"dl": s}, panel={"dl": 1})
    with pytest.raises(TypeError, match="X_test is None"):
        cf.compare_models({"dl": LogisticRegression()}, None, test.y)
    with pytest.raises(TypeError, match="models is None and scores is None"):
        cf.compare_models(None, test, None)
    # the metrics of the panel are the default
    res = cf.compare_models(None, test, None, scores={"dl": s}, panel=panel)
    assert res.metrics == ("auroc",)


def test_compare_models_sklearn_metric_names_and_fdr(setting):
    _, test, _, _, s, bs = setting
    res = cf.compare_models(None, test, None, scores={"dl": s, **bs},
                            metrics=["roc_auc", "average_precision", "neg_log_loss"],
                            n_boot=50, random_state=0, fdr=0.01, verbose=False)
    assert res.metrics == ("auroc", "auprc", "log_loss") and res.fdr == 0.01
    assert res.params["fdr"] == 0.01 and res.alpha == 0.01
    with pytest.warns(DeprecationWarning, match="alpha"):
        old = cf.compare_models(None, test, None, scores={"dl": s}, metrics=["roc_auc"],
                                n_boot=20, alpha=0.2)
    assert old.fdr == 0.2


def test_comparison_json_keeps_arrays_out(setting):
    _, test, base, _, s, bs = setting
    res = cf.compare_models({"dl": None, **base}, test, None, scores={"dl": s, **bs},
                            n_boot=50, random_state=0)
    d = json.loads(res.to_json())
    assert {"table", "differences", "params", "models", "n", "reference"} <= set(d)
    assert not {"scores", "y", "replicates", "point"} & set(d)
    assert len(res.to_json()) < 40_000
    f = [x for x in res.findings() if x.kind in ("baseline_outperforms", "reference_outperforms")]
    assert f and all(x.domain == "overall" for x in f)
    assert len({x.key for x in f}) == len(f)


def test_deprecated_aliases():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert cm.Baselines is BaselinesResult
        assert cm.ModelComparison is ModelComparisonResult
    assert [x.category for x in w] == [DeprecationWarning, DeprecationWarning]
    assert "Baselines" not in cm.__all__ and "BaselinesResult" in cm.__all__
    assert set(cm._DEPRECATED) == {"Baselines", "ModelComparison"}
    from confoundry.models._baselines import Baselines  # internal name: no warning

    assert Baselines is BaselinesResult
    with pytest.raises(AttributeError):
        cm.NotAThing  # noqa: B018


# ------------------------------------------------------------------------------ as_model
class OnlyProba:
    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-np.asarray(X)[:, 0]))
        return np.column_stack([1 - p, p])


class OnlyDecision:
    def decision_function(self, X):
        return np.asarray(X)[:, 0] * 2.0


def test_as_model_accepts_predict_proba_only():
    X = np.linspace(-2, 2, 9)[:, None]
    m = as_model(OnlyProba())
    assert m.kind == "sklearn"
    np.testing.assert_allclose(m.predict_scores(X), 1 / (1 + np.exp(-X[:, 0])))
    assert m.output_ == "probabilities"
    mc = as_model(OnlyProba(), task="multiclass")
    assert mc.predict_scores(X).shape == (9, 2)


def test_as_model_accepts_decision_function_only():
    X = np.linspace(-2, 2, 9)[:, None]
    m = as_model(OnlyDecision(), task="binary")
    with pytest.warns(UserWarning, match="no predict_proba"):
        s = m.predict_scores(X)
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-2 * X[:, 0])))
    assert m.output_ == "logits"


def test_as_model_still_rejects_objects_without_a_scoring_method():
    with pytest.raises(TypeError, match="predict_proba/decision_function/predict"):
        as_model(object())
