"""Glass-box baselines: exact additivity of explain(), scores, tuning record, shapes, errors."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.special import expit  # noqa: E402

import confoundry as cf  # noqa: E402
from confoundry.models import EBM_DEFAULTS, BaselinesResult, GlassBoxModel  # noqa: E402

KINDS = ("ebm", "logistic", "tree")
TASKS = ("binary", "multiclass", "regression")
FAST_EBM = {"outer_bags": 2, "interactions": 2, "n_jobs": 1, "max_rounds": 500}
N, D = 400, 4


def _data(task: str, seed: int = 0, n: int = N):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    X[:, 3] = (X[:, 3] > 0).astype(float)  # a binary feature
    z = 1.5 * X[:, 0] - 0.8 * X[:, 1] + 0.5 * X[:, 1] * X[:, 2] + 0.3 * X[:, 3]
    noise = rng.normal(size=n)
    if task == "binary":
        y = (z + noise > 0).astype(int)
    elif task == "multiclass":
        y = np.digitize(z + noise, [-0.7, 0.7])
    else:
        y = z + noise
    cols = ["age", "dose", "bmi", "asthma"]
    return pd.DataFrame(X, columns=cols), y


@pytest.fixture(scope="module")
def fitted():
    out = {}
    for task in TASKS:
        X, y = _data(task)
        out[task] = (X, y, cf.fit_baselines(X, y, random_state=0, cv=3, verbose=False,
                                            ebm_params=FAST_EBM))
    return out


def _explained_decision(model: GlassBoxModel, X, target=None) -> np.ndarray:
    dec = model.decision(X)
    if dec.ndim == 1:
        return dec
    if target is None:
        target = dec.argmax(axis=1)
    target = np.broadcast_to(target, (len(dec),))
    return dec[np.arange(len(dec)), target]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("kind", KINDS)
def test_explain_is_additive_to_the_decision(fitted, task, kind):
    X, _, base = fitted[task]
    m = base[kind]
    a = m.explain(X)
    assert isinstance(a, cf.AttributionResult)
    assert a.values.shape == (N, D)
    assert a.feature_names == list(X.columns)
    # the linear baseline of a regression is named for what it is (issue 18): "linear"
    linear = "linear" if task == "regression" else "logistic_linear"
    assert a.method == {"ebm": "ebm_local", "logistic": linear, "tree": "tree_shap"}[kind]
    assert a.output == ("value" if task == "regression" else "logit")
    np.testing.assert_allclose(a.values.sum(1) + a.base_values, _explained_decision(m, X),
                               atol=1e-6, rtol=0)
    np.testing.assert_allclose(a.total(), _explained_decision(m, X), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(a.data, X.to_numpy())


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("kind", ("ebm", "logistic"))
def test_decision_matches_the_fitted_estimator(fitted, task, kind):
    """decision() is the estimator's own additive output, not a re-implementation that drifts."""
    X, _, base = fitted[task]
    m = base[kind]
    est = m.estimator
    if task == "regression":
        np.testing.assert_allclose(m.decision(X), est.predict(X.to_numpy()), atol=1e-9)
        np.testing.assert_allclose(m.predict_scores(X), est.predict(X.to_numpy()), atol=1e-9)
    else:
        np.testing.assert_allclose(m.decision(X), est.decision_function(X.to_numpy()), atol=1e-9)
        proba = est.predict_proba(X.to_numpy())
        expected = proba[:, 1] if task == "binary" else proba
        np.testing.assert_allclose(m.predict_scores(X), expected, atol=1e-9)


def test_tree_decision_is_the_clipped_leaf_logit(fitted):
    X, _, base = fitted["binary"]
    m = base["tree"]
    p = m.estimator.predict_proba(X.to_numpy(dtype=np.float32))[:, 1]
    np.testing.assert_allclose(expit(m.decision(X)), np.clip(p, 1e-3, 1 - 1e-3), atol=1e-9)
    Xr, _, rbase = fitted["regression"]
    np.testing.assert_allclose(rbase["tree"].decision(Xr),
                               rbase["tree"].estimator.predict(Xr.to_numpy()), atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_multiclass_explains_a_chosen_target(fitted, kind):
    X, _, base = fitted["multiclass"]
    m = base[kind]
    for target in (0, 2):
        a = m.explain(X, target=target)
        np.testing.assert_allclose(a.total(), m.decision(X)[:, target], atol=1e-6)
    per_row = np.arange(N) % 3
    a = m.explain(X, target=per_row)
    assert a.base_values.shape == (N,)
    np.testing.assert_allclose(a.total(), m.decision(X)[np.arange(N), per_row], atol=1e-6)
    with pytest.raises(ValueError, match="target=3"):
        m.explain(X, target=3)
    with pytest.raises(ValueError, match="target has shape"):
        m.explain(X, target=np.zeros(5, dtype=int))


@pytest.mark.parametrize("task", TASKS)
def test_predict_scores_follow_the_adapter_convention(fitted, task):
    X, y, base = fitted[task]
    for m in base.values():
        s = m.predict_scores(X)
        if task == "binary":
            assert s.shape == (N,)
            assert np.all((s >= 0) & (s <= 1))
        elif task == "multiclass":
            assert s.shape == (N, 3)
            assert np.all((s >= 0) & (s <= 1))
            np.testing.assert_allclose(s.sum(1), 1.0, atol=1e-9)
        else:
            assert s.shape == (N,)
        # as_model wraps a glass-box model as a scorer with the same scores
        adapter = cf.as_model(m, task=task)
        assert adapter.kind == "scorer"
        np.testing.assert_allclose(adapter.predict_scores(X), s, atol=1e-12)


def test_baselines_learn_the_signal(fitted):
    """On held-out data every baseline beats chance, and ranks the strongest feature first."""
    from sklearn.metrics import roc_auc_score

    Xt, yt = _data("binary", seed=1)
    _, _, base = fitted["binary"]
    for name, m in base.items():
        assert roc_auc_score(yt, m.predict_scores(Xt)) > 0.75, name
        imp = m.global_importance()
        assert imp.index[0] == "age", (name, imp)
        assert list(imp.values) == sorted(imp.values, reverse=True)
        assert set(imp.index) == set(Xt.columns)


def test_ebm_interaction_split_equally(fitted):
    X, _, base = fitted["binary"]
    m = base["ebm"]
    est = m.estimator
    pairs = [t for t in est.term_features_ if len(t) == 2]
    assert pairs, "FAST_EBM should fit interaction terms"
    terms = est.eval_terms(X.to_numpy())
    a = m.explain(X)
    assert "split equally" in a.params["interaction_split"]
    assert len(a.params["interaction_terms"]) == len(pairs)
    # contribution of feature j = its main term + half of every pair containing it
    j = 1
    expected = terms[:, est.term_features_.index((j,))].copy()
    for t, feats in enumerate(est.term_features_):
        if len(feats) == 2 and j in feats:
            expected += terms[:, t] / 2
    np.testing.assert_allclose(a.values[:, j], expected, atol=1e-12)


def test_logistic_contribution_is_coef_times_standardised_feature(fitted):
    X, _, base = fitted["binary"]
    m = base["logistic"]
    scaler = m.estimator.named_steps["scale"]
    coef = m.estimator.named_steps["model"].coef_[0]
    a = m.explain(X)
    z = (X.to_numpy() - scaler.mean_) / scaler.scale_
    np.testing.assert_allclose(a.values, z * coef, atol=1e-12)
    # base value = logit at the training mean
    np.testing.assert_allclose(a.base_values, m.decision(scaler.mean_[None, :])[0], atol=1e-12)


def test_shapes(fitted):
    X, _, base = fitted["binary"]
    for name, m in base.items():
        df = m.shape("age")
        assert {"value", "effect", "ci_low", "ci_high"} <= set(df.columns)
        assert df["value"].is_monotonic_increasing
        assert np.isfinite(df["effect"]).all()
        # the true effect of age is increasing: the learned curve rises
        assert df["effect"].iloc[-1] > df["effect"].iloc[0], name
    ebm = base["ebm"].shape("age")
    assert ebm["ci_low"].notna().all()  # 2 outer bags give a band
    assert (ebm["ci_low"] <= ebm["effect"] + 1e-12).all()
    assert (ebm["effect"] <= ebm["ci_high"] + 1e-12).all()
    lin = base["logistic"].shape("dose")
    slope = np.polyfit(lin["value"], lin["effect"], 1)[0]
    assert slope < 0 and lin["ci_low"].isna().all()
    binary = base["tree"].shape("asthma")
    assert set(binary["value"]).issuperset({0.0, 1.0})
    ebm_bin = base["ebm"].shape("asthma")   # two bins: drawn at the levels, not at 0.25 / 0.75
    assert list(ebm_bin["value"]) == [0.0, 1.0]
    assert list(ebm_bin["bin_low"]) == [0.0, 0.5] and list(ebm_bin["bin_high"]) == [0.5, 1.0]
    fig = base["ebm"].plot_shape("age")
    plt.close(fig)
    mc = fitted["multiclass"][2]["logistic"].shape("age")
    assert set(mc["class"]) == {0, 1, 2}
    one = fitted["multiclass"][2]["ebm"].shape("age", target=2)
    assert "class" not in one


def test_ebm_without_bags_has_no_band():
    X, y = _data("binary", n=200)
    base = cf.fit_baselines(X, y, kinds="ebm", random_state=0, verbose=False,
                            ebm_params={"outer_bags": 1, "interactions": 0, "n_jobs": 1})
    df = base["ebm"].shape("age")
    assert df["ci_low"].isna().all() and df["ci_high"].isna().all()
    assert base["ebm"].tuning["best_params"]["outer_bags"] == 1


def test_tuning_is_recorded(fitted):
    _, _, base = fitted["binary"]
    table = base.tuning_table()
    assert list(table["model"]) == list(KINDS)
    for col in ("kind", "n_configs", "cv_folds", "best_params", "fit_seconds"):
        assert col in table
    rec = base["logistic"].tuning
    assert rec["search"] == "grid" and rec["cv_folds"] == 3 and rec["scoring"] == "roc_auc"
    assert rec["n_configs"] == len(rec["search_space"]["C"]) == 8
    assert rec["n_fits"] == 8 * 3 + 1
    assert rec["best_params"]["C"] in rec["search_space"]["C"]
    tree = base["tree"].tuning
    assert tree["n_configs"] == 15 and tree["best_params"]["max_depth"] <= 5
    assert base["tree"].estimator.get_depth() <= 5
    ebm = base["ebm"].tuning
    assert ebm["search"] == "fixed" and "early stopping" in ebm["internal_tuning"]
    assert ebm["params"]["outer_bags"] == 2
    assert all(t > 0 for t in table["fit_seconds"])
    assert base["tree"].n_train == N and base.n_train == N
    json.dumps(base.to_dict())  # JSON-safe
    assert "Baselines" in base._repr_html_()
    reg = fitted["regression"][2]["logistic"].tuning
    assert reg["scoring"] == "r2" and reg["n_configs"] == 12
    assert reg["best_params"]["penalty"] in ("l1", "l2")


def test_custom_grids_and_no_tuning():
    X, y = _data("binary", n=200)
    base = cf.fit_baselines(X, y, kinds=("logistic", "tree"), random_state=0, verbose=False,
                            cv=2, logistic_grid={"C": [0.1, 1.0]},
                            tree_grid={"max_depth": [2], "min_samples_leaf": [5, 10]})
    assert base["logistic"].tuning["n_configs"] == 2
    assert base["tree"].tuning["n_configs"] == 2 and base["tree"].estimator.get_depth() <= 2
    fixed = cf.fit_baselines(X, y, kinds=("logistic", "tree"), tuning="none", random_state=0,
                             verbose=False)
    assert fixed.tuning_table()["n_configs"].tolist() == [1, 1]
    assert fixed["logistic"].tuning["best_params"]["C"] == 1.0


def test_ebm_grid_search():
    X, y = _data("binary", n=200)
    base = cf.fit_baselines(X, y, kinds="ebm", random_state=0, verbose=False, cv=2,
                            ebm_params={"outer_bags": 1, "n_jobs": 1},
                            ebm_grid={"interactions": [0, 2]})
    rec = base["ebm"].tuning
    assert rec["search"] == "grid" and rec["n_configs"] == 2 and rec["cv_folds"] == 2
    assert rec["best_params"]["interactions"] in (0, 2)


def test_reproducible_with_random_state():
    X, y = _data("binary", n=150)
    kw = {"random_state": 3, "verbose": False, "cv": 3, "ebm_params": FAST_EBM}
    a = cf.fit_baselines(X, y, **kw)
    b = cf.fit_baselines(X, y, **kw)
    for name in KINDS:
        np.testing.assert_array_equal(a[name].decision(X), b[name].decision(X))
        np.testing.assert_array_equal(a[name].explain(X).values, b[name].explain(X).values)
        assert a[name].tuning["best_params"] == b[name].tuning["best_params"]
    c = cf.fit_baselines(X, y, kinds="ebm", random_state=4, verbose=False, ebm_params=FAST_EBM)
    assert not np.array_equal(a["ebm"].decision(X), c["ebm"].decision(X))


def test_defaults_are_the_documented_fast_ones():
    assert EBM_DEFAULTS["outer_bags"] < 14  # interpret's default is 14
    X, y = _data("regression", n=120)
    base = cf.fit_baselines(X, y, kinds="ebm", random_state=0, verbose=False,
                            ebm_params={"n_jobs": 1, "max_rounds": 200})
    params = base["ebm"].estimator.get_params()
    assert params["max_rounds"] == 200
    for k, v in EBM_DEFAULTS.items():
        if k != "n_jobs":
            assert params[k] == v


def test_inputs_by_name_and_as_arrays(fitted):
    X, _, base = fitted["binary"]
    m = base["ebm"]
    shuffled = X[["bmi", "asthma", "age", "dose"]]
    np.testing.assert_allclose(m.decision(shuffled), m.decision(X))
    np.testing.assert_allclose(m.decision(X.to_numpy()), m.decision(X))
    np.testing.assert_allclose(m.decision(cf.AuditData(X)), m.decision(X))


def test_mapping_is_read_only(fitted):
    _, _, base = fitted["binary"]
    assert isinstance(base, BaselinesResult) and len(base) == 3 and "ebm" in base
    with pytest.raises(TypeError):
        base["ebm"] = None  # type: ignore[index]
    with pytest.raises(KeyError, match="no baseline named 'mlp'"):
        base["mlp"]
    assert "GlassBoxModel(name='tree'" in repr(base["tree"])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kinds": ("ebm", "forest")}, ValueError, "unknown kind"),
        ({"kinds": ()}, ValueError, "kinds is empty"),
        ({"kinds": ("tree", "tree")}, ValueError, "duplicates"),
        ({"tuning": "bayes"}, ValueError, "tuning='bayes'"),
        ({"cv": 1}, ValueError, "cv=1"),
        ({"n_folds": 3}, TypeError, "unknown option"),
        ({"kinds": "ebm", "ebm_params": {"bags": 3}}, ValueError, "ebm_params has unknown"),
        ({"kinds": "logistic", "logistic_grid": {"alpha": [1]}}, ValueError, "logistic_grid"),
        ({"kinds": "logistic", "logistic_grid": {"C": [-1.0]}}, ValueError, "positive"),
        ({"kinds": "tree", "tree_grid": {"depth": [2]}}, ValueError, "tree_grid"),
        ({"random_state": -1}, ValueError, "random_state=-1"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    X, y = _data("binary", n=60)
    with pytest.raises(error, match=match):
        cf.fit_baselines(X, y, verbose=False, **kwargs)


def test_bad_data():
    X, y = _data("binary", n=60)
    with pytest.raises(ValueError, match="y has 59 values but X has 60 rows"):
        cf.fit_baselines(X, y[:-1], kinds="tree", verbose=False)
    with pytest.raises(TypeError, match="y_train is None"):
        cf.fit_baselines(X, None, kinds="tree", verbose=False)
    bad = X.copy()
    bad.iloc[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cf.fit_baselines(bad, y, kinds="tree", verbose=False)
    y_rare = np.zeros(60, dtype=int)
    y_rare[:2] = 1
    with pytest.raises(ValueError, match="at least cv=5 per class"):
        cf.fit_baselines(X, y_rare, kinds="tree", verbose=False)
    with pytest.raises(ValueError, match="single class"):
        cf.fit_baselines(X, np.zeros(60, dtype=int), kinds="tree", verbose=False)


def test_bad_inputs_to_a_fitted_model(fitted):
    X, _, base = fitted["binary"]
    m = base["logistic"]
    with pytest.raises(ValueError, match="lacks the feature"):
        m.decision(X.drop(columns="age"))
    with pytest.raises(ValueError, match="not trained on"):
        m.explain(X.assign(site=1.0))
    with pytest.raises(ValueError, match=r"expected \(n_samples, 4\)"):
        m.predict_scores(X.to_numpy()[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        m.explain(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="feature='height'"):
        m.shape("height")
    with pytest.raises(ValueError, match="only valid for a multiclass"):
        m.explain(X, target=1)
    with pytest.raises(TypeError, match="Series"):
        m.decision(X["age"])


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_tree_depth_path_search_equals_grid_search(task):
    """One fit per min_samples_leaf and fold, shallower depths read off the deepest tree: the
    same CV scores and the same choice as GridSearchCV (continuous features: no ties)."""
    from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    from confoundry.models._tree import tree_depth_path_search

    rng = np.random.default_rng(4)
    X = rng.normal(size=(1500, 6))
    z = X[:, 0] + 0.7 * X[:, 1] * X[:, 2] - 0.5 * X[:, 3] ** 2
    if task == "regression":
        y, est, scoring = z + rng.normal(size=1500), DecisionTreeRegressor(random_state=0), "r2"
        sp = KFold(4, shuffle=True, random_state=1)
    else:
        y = np.digitize(z + rng.normal(size=1500), [0.0] if task == "binary" else [-0.5, 0.5])
        est, sp = DecisionTreeClassifier(random_state=0), StratifiedKFold(4, shuffle=True,
                                                                           random_state=1)
        scoring = "roc_auc" if task == "binary" else "neg_log_loss"
    depths, leaves = [1, 2, 3, 4, 5], [5, 50]
    gs = GridSearchCV(est, {"max_depth": depths, "min_samples_leaf": leaves}, cv=sp,
                      scoring=scoring).fit(X, y)
    m, rec = tree_depth_path_search(est, depths, leaves, X, y, splitter=sp, scoring=scoring)
    theirs = {(p["max_depth"], p["min_samples_leaf"]): sc
              for p, sc in zip(gs.cv_results_["params"], gs.cv_results_["mean_test_score"])}
    ours = {(r["max_depth"], r["min_samples_leaf"]): r["mean_score"] for r in rec["cv_results"]}
    assert set(ours) == set(theirs) and rec["n_configs"] == 10 and rec["n_fits"] == 2 * 4 + 1
    diff = np.array([abs(ours[k] - theirs[k]) for k in ours])
    # identical except where sklearn broke a tie between equally good splits differently
    assert np.mean(diff < 1e-12) >= 0.8 and diff.max() < 0.01, diff
    chosen = (m.get_params()["max_depth"], m.get_params()["min_samples_leaf"])
    assert theirs[chosen] >= gs.best_score_ - 0.005
    assert rec["cv_score"] == pytest.approx(ours[chosen], rel=1e-12)
    refit = type(est)(random_state=0, max_depth=chosen[0], min_samples_leaf=chosen[1]).fit(X, y)
    np.testing.assert_allclose(m.predict(X), refit.predict(X))


# ------------------------------------------------------------ names (issue 18)
def test_linear_baseline_of_a_regression_is_named_linear():
    """load_diabetes is a regression: its penalised linear baseline is a ridge/lasso model,
    named "linear" in the keys, the model, the tuning table and the comparison; "logistic"
    and "linear" both ask for it, and both look it up."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    base = cf.fit_baselines(X, y, kinds=("logistic", "tree"), tuning="none", random_state=0,
                            verbose=False)
    assert list(base) == ["linear", "tree"]
    lin = base["linear"]
    assert lin.name == "linear" and lin.kind == "linear" and base["logistic"] is lin
    assert type(lin.estimator.named_steps["model"]).__name__ == "Ridge"
    assert base.tuning_table()[["model", "kind"]].values.tolist() == [["linear", "linear"],
                                                                     ["tree", "tree"]]
    assert lin.explain(X[:5]).method == "linear" and "linear" in base.params["seeds"]
    assert "logistic" not in json.dumps(base.to_dict())
    alias = cf.fit_baselines(X, y, kinds="linear", tuning="none", random_state=0, verbose=False)
    assert list(alias) == ["linear"]
    np.testing.assert_array_equal(alias["linear"].decision(X), lin.decision(X))
    comp = cf.compare_models({"dl": lambda x: lin.predict_scores(x) + 1.0, **base}, X, y,
                             n_boot=50, random_state=0, verbose=False)
    assert "linear" in set(comp.to_frame()["model"]) and "logistic" not in str(comp.to_dict())
    with pytest.raises(ValueError, match="linear baseline twice"):
        cf.fit_baselines(X, y, kinds=("logistic", "linear"), verbose=False)
    # a classification task keeps "logistic", whichever spelling asked for it
    Xb, yb = _data("binary", n=120)
    cls = cf.fit_baselines(Xb, yb, kinds=("linear",), tuning="none", verbose=False)
    assert list(cls) == ["logistic"] and cls["logistic"].kind == "logistic"
    assert cls["linear"] is cls["logistic"]
