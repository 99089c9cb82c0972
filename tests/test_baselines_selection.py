"""Glass-box baselines on many features: the EBM and the tree on the ``max_ebm_features``
features chosen on the training data, the linear model on all of them (issue 15, item 3)."""

import numpy as np
import pytest

from confoundry import fit_baselines
from confoundry.models._baselines import select_features


@pytest.fixture(scope="module")
def wide():
    rng = np.random.default_rng(3)
    n, d = 600, 300
    X = rng.normal(size=(n, d))
    logit = 1.5 * X[:, 7] - 1.2 * X[:, 150] + 0.9 * X[:, 299]
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    base = fit_baselines(X, y, kinds=("ebm", "logistic", "tree"), random_state=0, verbose=False,
                         cv=3, max_ebm_features=20, ebm_params={"outer_bags": 2,
                                                                "interactions": 0})
    return X, y, base


def test_selection_is_recorded_and_finds_the_planted_genes(wide):
    X, _, base = wide
    for kind in ("ebm", "tree"):
        sel = base[kind].tuning["feature_selection"]
        assert sel["n_selected"] == 20 and sel["n_features"] == 300
        assert {"x7", "x150", "x299"} <= set(sel["selected"])
        assert "training data" in sel["method"]
    assert "feature_selection" not in base["logistic"].tuning
    table = base.tuning_table().set_index("model")["features"]
    assert table["logistic"] == "all 300" and table["ebm"].startswith("20 of 300")


def test_selected_models_take_and_explain_every_feature(wide):
    X, _, base = wide
    cols = base["ebm"].columns
    for kind in ("ebm", "tree"):
        m = base[kind]
        assert m.predict_scores(X[:50]).shape == (50,)
        a = m.explain(X[:50])
        assert a.values.shape == (50, 300)
        unused = np.setdiff1d(np.arange(300), m.columns)
        assert np.all(a.values[:, unused] == 0)
        assert np.allclose(a.values.sum(1) + a.base_values, m.decision(X[:50]))
        imp = m.global_importance()
        assert len(imp) == 300 and imp.index[0] in {"x7", "x150", "x299"}
    unused_name = f"x{np.setdiff1d(np.arange(300), cols)[0]}"
    flat = base["ebm"].shape(unused_name)
    assert (flat["effect"] == 0).all() and len(flat) > 2
    assert base["ebm"].shape("x7")["effect"].abs().max() > 0.1


def test_no_selection_below_the_limit_and_a_bad_limit_is_named():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    base = fit_baselines(X, y, kinds=("tree",), random_state=0, verbose=False,
                         max_ebm_features=10)
    assert base["tree"].columns is None and "feature_selection" not in base["tree"].tuning
    with pytest.raises(ValueError, match="max_ebm_features"):
        fit_baselines(X, y, kinds=("tree",), verbose=False, max_ebm_features=0)


def test_select_features_uses_the_training_rows_only():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 50))
    y = (X[:, 10] > 0).astype(int)
    sel = select_features(X, y, "binary", 5, [f"g{j}" for j in range(50)])
    assert "g10" in sel["selected"] and list(sel["columns"]) == sorted(sel["columns"])
    X[:, 3] = 1.0  # a constant gene is never chosen (its F is undefined)
    assert "g3" not in select_features(X, y, "binary", 49, [f"g{j}" for j in range(50)])[
        "selected"]
