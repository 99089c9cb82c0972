"""Contracts at the door: bad input is an error naming the argument before any step runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression

import confoundry as cf

FAST = {"n_boot": 30, "n_permutations": 30, "verbose": False, "random_state": 0}


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    y = (X["a"] + rng.normal(size=n) > 0).astype(int)
    return X, y, rng


def _mlp(d_out=1, d_in=3, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d_in, 8), torch.nn.ReLU(),
                               torch.nn.Linear(8, d_out))


def test_y_is_aligned_by_index_never_by_position():
    X, y, _ = _data()
    model = LogisticRegression().fit(X, y)
    shuffled = y.sample(frac=1, random_state=0)
    with pytest.raises(ValueError, match="same samples as X's but in a different order"):
        cf.Audit(model, X, shuffled, **FAST)
    with pytest.raises(ValueError, match="y's index does not match X's index"):
        cf.AuditData(X, y.set_axis(y.index + 1000))
    # aligned: fine; an array y is positional by nature
    assert cf.AuditData(X, y.loc[X.index]).n_samples == len(X)
    assert cf.AuditData(X.to_numpy(), shuffled).n_samples == len(X)


def test_output_width_is_checked_against_the_task():
    X, y, rng = _data()
    y3 = np.digitize(X["a"], [-0.5, 0.5])
    with pytest.raises(ValueError, match="returns 1 output.*3 classes.*task='regression'"):
        cf.Audit(_mlp(1), X, y3, **FAST)
    with pytest.raises(ValueError, match="returns 4 outputs per row, but the labels are binary"):
        cf.Audit(_mlp(4), X, y.to_numpy(), **FAST)


def test_expectation_directions_are_checked_with_a_suggestion():
    X, y, _ = _data()
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match=r"expectations\['a'\]='increasng' is not valid.*"
                                         r"did you mean 'increasing'"):
        cf.Audit(model, X, y, expectations={"a": "increasng"}, **FAST)
    audit = cf.Audit(model, X, y, expectations={"a": "Up", "b": "-"}, **FAST)
    assert audit.expectations == {"a": "increasing", "b": "decreasing"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_device_is_a_clear_error():
    with pytest.raises(ValueError, match="device='cuda' is not available"):
        cf.as_model(_mlp(), device="cuda")
    with pytest.raises(ValueError, match="device='cuda:3' is not available"):
        cf.as_model(_mlp(), device="cuda:3")
    assert cf.as_model(_mlp(), device="cpu").predict_scores(np.zeros((2, 3))).shape == (2,)


def test_identifier_metadata_is_refused_and_continuous_allowed():
    X, y, rng = _data()
    model = LogisticRegression().fit(X, y)
    ids = pd.DataFrame({"patient": [f"p{i:03d}" for i in range(len(X))]})
    with pytest.raises(ValueError, match="'patient' has 300 levels for 300 rows.*identifier"):
        cf.Audit(model, X, y, metadata=ids, **FAST)
    with pytest.raises(ValueError, match="group_column"):
        cf.probe_confounders(y=y.to_numpy(), metadata=ids, scores=np.full(len(y), 0.5),
                             n_permutations=10, verbose=False)
    fine = pd.DataFrame({"age_at_scan": rng.normal(50, 10, len(X)),
                         "site": rng.choice(["a", "b", "c"], len(X))})
    res = cf.Audit(model, X, y, metadata=fine, steps=["probes"], **FAST).run()
    assert res.steps["probes"].status == "ran"


def test_metadata_kinds_override_keeps_site_codes_categorical():
    X, y, rng = _data(n=400)
    model = LogisticRegression().fit(X, y)
    meta = pd.DataFrame({"inst": rng.integers(1, 14, len(X)).astype(float)})  # 13 site codes
    inferred = cf.Audit(model, X, y, metadata=meta, **FAST)
    assert inferred.data.metadata_kinds == {"inst": "continuous"}
    res = cf.Audit(model, X, y, metadata=meta, metadata_kinds={"inst": "categorical"},
                   steps=["domains"], **FAST).run()
    domains = list(res["domains"]["inst"].to_frame()["domain"])
    assert len(domains) == 13 and all("<" not in d for d in domains), domains
    with pytest.raises(ValueError, match=r"metadata_kinds\['inst'\]='nominal' is not valid"):
        cf.Audit(model, X, y, metadata=meta, metadata_kinds={"inst": "nominal"}, **FAST)
    with pytest.raises(ValueError, match="metadata_kinds names 'site'"):
        cf.Audit(model, X, y, metadata=meta, metadata_kinds={"site": "categorical"}, **FAST)


def test_task_override_for_an_integer_regression_target():
    X, _, rng = _data()
    score = np.clip(np.round(7 + 3 * X["a"] + rng.normal(size=len(X))), 0, 15).astype(int)
    score[:16] = np.arange(16)  # every grade 0..15 occurs
    model = LinearRegression().fit(X, score)
    assert cf.AuditData(X, score).task == "multiclass"  # what inference says
    res = cf.Audit(model, X, score, task="regression", X_train=X, y_train=score,
                   baseline_kinds=("logistic", "tree"),
                   steps=["performance", "baselines", "comparison"], **FAST).run()
    assert res.task == "regression"
    assert all(res.steps[s].status == "ran" for s in ("performance", "baselines",
                                                       "comparison")), res.steps_frame()
    assert "r2" in set(res["performance"].to_frame()["metric"])


def test_a_numpy_preprocess_gets_perturbation_attributions():
    X, y, _ = _data()
    net = _mlp()

    def pre(batch):  # goes through numpy: no gradients reach the inputs
        return torch.tensor(np.asarray(batch, dtype=np.float32))

    res = cf.Audit(net, X, y.to_numpy(), preprocess=pre,
                   steps=["attributions", "sanity_check"], **FAST).run()
    assert res.steps["attributions"].status == "ran", res.steps["attributions"].label
    assert res.steps["sanity_check"].status == "ran", res.steps["sanity_check"].label
    assert res.options["attribution_method"] == "shap_permutation"
    assert any("SHAP permutation" in n for n in res.notes)


def test_a_multiclass_model_gets_every_step():
    X, _, rng = _data()
    y3 = np.digitize(X["a"] + 0.5 * rng.normal(size=len(X)), [-0.5, 0.5])
    meta = pd.DataFrame({"site": rng.choice(["a", "b"], len(X))})
    res = cf.Audit(_mlp(3), X, y3, metadata=meta, X_train=X, y_train=y3,
                   expectations={"a": "increasing"}, baseline_kinds=("logistic", "tree"),
                   **FAST).run()
    for name, st in res.steps.items():
        assert (st.status == "ran" or "train_fn" in st.reason
                or st.reason.startswith("nothing to do: ")), (name, st.label)
    assert set(res["effect_curves"]) >= {"a (class 0)", "a (class 1)", "a (class 2)"}
    assert set(res["shadow_glassbox"]) == {"shadow (class 0)", "shadow (class 1)",
                                           "shadow (class 2)"}
    assert any("highest class (target = 2)" in n for n in res.notes)


def test_layer_names_are_checked_at_the_door():
    X, y, _ = _data()
    meta = pd.DataFrame({"site": np.tile(["a", "b"], len(X) // 2)})
    with pytest.raises(ValueError, match=r"layer='encoder' is not a module.*'0', '1', '2'"):
        cf.Audit(_mlp(), X, y.to_numpy(), metadata=meta, layer="encoder", **FAST)
    with pytest.raises(TypeError, match="not a torch.nn.Module"):
        cf.Audit(LogisticRegression().fit(X, y), X, y, metadata=meta, layer="0", **FAST)


def test_pandas_scores_are_aligned_by_index_too():
    X, y, rng = _data()
    model = LogisticRegression().fit(X, y)
    s = pd.Series(model.predict_proba(X)[:, 1], index=X.index)
    meta = pd.DataFrame({"site": rng.choice(["a", "b"], len(X))}, index=X.index)
    data = cf.AuditData(X, y, meta)
    shuffled = s.sample(frac=1, random_state=1)
    match = "scores's index holds the same samples as X's but in a different order"
    with pytest.raises(ValueError, match=match):
        cf.split_domains(model, data, None, by="site", scores=shuffled, n_boot=20,
                         verbose=False)
    with pytest.raises(ValueError, match=match):
        cf.probe_confounders(model, X, y, meta, scores=shuffled, n_permutations=20,
                             verbose=False)
    with pytest.raises(ValueError, match="index holds the same samples"):
        cf.overfitting_gap(model, data, None, data, None, scores=shuffled,
                           train_scores=s, n_boot=20, verbose=False)
    # aligned pandas scores and plain arrays are fine
    res = cf.split_domains(model, data, None, by="site", scores=s, n_boot=20, verbose=False)
    assert len(res.to_frame()) == 2
