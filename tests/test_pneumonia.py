"""Tests of the pneumonia/asthma simulator, the case-study MLP trainer and the danger table."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy.stats import chi2_contingency  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from confoundry.datasets import (  # noqa: E402
    PNEUMONIA_FEATURES,
    Bunch,
    pneumonia_untreated_log_odds,
    simulate_pneumonia,
)
from confoundry.demos import (  # noqa: E402
    DangerTableResult,
    MLPSearchResult,
    danger_table,
    train_pneumonia_mlp,
)


@pytest.fixture(scope="module")
def cohort() -> Bunch:
    return simulate_pneumonia(random_state=0)


def _logit_coefs(X: pd.DataFrame, y: pd.Series) -> pd.Series:
    sd = X.std().replace(0, 1)
    m = LogisticRegression(C=np.inf, max_iter=5000).fit((X - X.mean()) / sd, y)
    return pd.Series(m.coef_[0] / sd.to_numpy(), index=X.columns)


# ----------------------------------------------------------------------------- simulator
def test_shapes_names_units_and_split(cohort: Bunch) -> None:
    d = cohort
    assert d.X.shape == (14199, len(PNEUMONIA_FEATURES))
    assert 20 <= d.X.shape[1] <= 46
    assert list(d.X.columns) == list(PNEUMONIA_FEATURES)
    assert (d.X.dtypes == np.float64).all()
    assert d.y.name == "death" and set(np.unique(d.y)) == {0, 1}
    assert 0.09 < d.y.mean() < 0.12  # Cooper et al. (1997): about 10.6 % died
    assert set(d.metadata.columns) == {"hospital", "aggressive_care", "icu_admission"}
    assert not set(d.metadata.columns) & set(d.X.columns)  # care is never a model input
    assert d.metadata.hospital.nunique() == 5
    assert (d.metadata.icu_admission <= d.metadata.aggressive_care).all()
    for name in d.X.columns:  # every feature described, with a unit in brackets
        assert d.feature_descriptions[name].endswith(f"({d.feature_units[name]})")
    assert d.feature_units["bun"] == "mg/dL" and d.feature_units["temperature"] == "degC"
    assert {"asthma", "chest_pain", "heart_disease", "copd", "diabetes", "bun", "creatinine",
            "sodium", "potassium", "wbc", "po2", "pco2", "age"} <= set(d.X.columns)
    gt = d.ground_truth
    assert list(gt.index) == list(d.X.index)
    for col in ("untreated_risk", "treated_risk", "observed_risk", "expected_risk"):
        assert gt[col].between(0, 1).all()
    assert (gt.treated_risk < gt.untreated_risk).all()  # care helps everyone
    care = d.metadata.aggressive_care == 1
    np.testing.assert_allclose(gt.observed_risk[care], gt.treated_risk[care])
    np.testing.assert_allclose(gt.observed_risk[~care], gt.untreated_risk[~care])
    assert list(d.feature_effects.feature) == list(d.X.columns)
    assert d.feature_effects.set_index("feature").loc["creatinine", "shape"] == "none"
    assert "sources" in d.params and "DESCR" in d and "asthma" in d.DESCR
    # the Cooper et al. (1997) split
    assert len(d.train.X) == 9847 and len(d.test.X) == 4352
    assert not set(d.train_index) & set(d.test_index)
    assert d.train.y.index.equals(d.train.X.index)
    assert d.test.ground_truth.index.equals(d.test.X.index)


def test_reproducible_and_fast() -> None:
    import time

    t = time.perf_counter()
    a = simulate_pneumonia(random_state=3)
    elapsed = time.perf_counter() - t
    b = simulate_pneumonia(random_state=3)
    c = simulate_pneumonia(random_state=4)
    pd.testing.assert_frame_equal(a.X, b.X)
    pd.testing.assert_series_equal(a.y, b.y)
    pd.testing.assert_frame_equal(a.metadata, b.metadata)
    np.testing.assert_array_equal(a.test_index, b.test_index)
    assert not a.X.equals(c.X)
    assert elapsed < 3.0  # well under 1 s on an idle core; slack for a loaded CI machine


def test_ground_truth_function_matches(cohort: Bunch) -> None:
    d = cohort
    np.testing.assert_allclose(d.untreated_log_odds(d.X), d.ground_truth.untreated_log_odds)
    np.testing.assert_allclose(pneumonia_untreated_log_odds(d.X),
                               d.ground_truth.untreated_log_odds)
    # setting asthma 0 -> 1 raises the untreated log-odds by the documented amount
    delta = (pneumonia_untreated_log_odds(d.X.assign(asthma=1.0))
             - pneumonia_untreated_log_odds(d.X.assign(asthma=0.0)))
    np.testing.assert_allclose(delta, d.params["risk"]["asthma"])
    with pytest.raises(ValueError, match="lacks the feature"):
        pneumonia_untreated_log_odds(d.X.drop(columns="sodium"))


@pytest.mark.parametrize("feature", ["asthma", "chest_pain", "heart_disease"])
def test_paradox_observed_protective_truly_harmful(cohort: Bunch, feature: str) -> None:
    d = cohort
    true = d.feature_effects.set_index("feature").loc[feature, "effect_logit"]
    assert true > 0.3  # truly raises the untreated risk
    marginal = _logit_coefs(d.X[[feature]], d.y)[feature]
    adjusted = _logit_coefs(d.X, d.y)[feature]
    if feature != "heart_disease":  # heart disease is confounded by age and CHF marginally
        assert marginal < 0, (feature, marginal)
    assert adjusted < -0.1, (feature, adjusted)  # protective given every other feature
    # the mechanism: those patients got aggressive care far more often
    care = d.metadata.aggressive_care
    assert care[d.X[feature] == 1].mean() > care[d.X[feature] == 0].mean() + 0.25


def test_paradox_disappears_without_the_care_policy() -> None:
    d = simulate_pneumonia(random_state=0, policy_strength=0.0)
    adjusted = _logit_coefs(d.X, d.y)["asthma"]
    assert adjusted > 0.2  # without escalation the data show asthma as harmful
    d2 = simulate_pneumonia(random_state=0, care_effect=0.0)
    assert _logit_coefs(d2.X, d2.y)["asthma"] > 0.2


def test_hospitals_differ_in_case_mix_and_policy(cohort: Bunch) -> None:
    d = cohort
    h = d.metadata.hospital
    age = d.X.age.groupby(h).mean()
    assert age.max() - age.min() > 8
    for feature in ("asthma", "copd", "male"):
        _, p, _, _ = chi2_contingency(pd.crosstab(h, d.X[feature]))
        assert p < 1e-6, feature
    # care policy: among asthmatics, escalation differs strongly between hospitals
    asth = d.X.asthma == 1
    rate = d.metadata.aggressive_care[asth].groupby(h[asth]).mean()
    assert rate["university"] - rate["veterans"] > 0.3
    _, p, _, _ = chi2_contingency(pd.crosstab(h[asth], d.metadata.aggressive_care[asth]))
    assert p < 1e-6


def test_logistic_is_misspecified_on_ground_truth(cohort: Bunch) -> None:
    """The true untreated log-odds are far from linear in the features (U shapes, thresholds,
    interactions), so a linear-logistic model cannot represent them; an additive spline model
    gets most of the way."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer

    d = cohort
    X, L = d.X.iloc[:5000], d.ground_truth.untreated_log_odds.iloc[:5000]
    r2_linear = LinearRegression().fit(X, L).score(X, L)
    cont = [c for c, k in d.feature_kinds.items() if k == "continuous"]
    spline = make_pipeline(ColumnTransformer([("s", SplineTransformer(n_knots=8), cont)],
                                             remainder="passthrough"), LinearRegression())
    r2_spline = spline.fit(X, L).score(X, L)
    assert r2_linear < 0.8, r2_linear
    assert r2_spline > r2_linear + 0.15, (r2_linear, r2_spline)
    non_monotone = set(d.feature_effects.query("shape == 'non-monotone'").feature)
    assert {"temperature", "systolic_bp", "sodium"} <= non_monotone


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n": 0}, "n=0"),
    ({"n": 100, "n_train": 100}, "n_train=100"),
    ({"policy_strength": -1}, "policy_strength"),
    ({"care_effect": float("nan")}, "care_effect"),
    ({"params": {"not_a_param": 1}}, "not_a_param"),
])
def test_simulator_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        simulate_pneumonia(**kwargs)


def test_bunch_is_sklearn_bunch(cohort: Bunch) -> None:
    import pickle

    from sklearn.utils import Bunch as SkBunch

    assert Bunch is SkBunch
    b = Bunch(X=1)
    assert b.X == b["X"] == 1
    b.z = 2
    assert b["z"] == 2 and "z" in dir(b)
    with pytest.raises(AttributeError, match="y"):
        _ = b.y
    with pytest.raises(KeyError):
        _ = b["y"]
    # the simulator's record and its parts: key and attribute access reach the same objects
    assert isinstance(cohort, SkBunch) and isinstance(cohort.train, SkBunch)
    assert cohort["X"] is cohort.X and cohort.test["metadata"] is cohort.test.metadata
    assert {"X", "y", "metadata", "ground_truth", "train", "test", "params", "DESCR"} <= set(cohort)
    back = pickle.loads(pickle.dumps(cohort.train))
    assert isinstance(back, SkBunch) and back.X.equals(cohort.train.X)


# ----------------------------------------------------------------------------- MLP trainer
_SMALL_CONFIGS = [{"width": 32, "depth": 1, "dropout": 0.0, "weight_decay": 1e-3, "lr": 4e-3},
                  {"width": 16, "depth": 2, "dropout": 0.1, "weight_decay": 1e-2, "lr": 4e-3}]


@pytest.fixture(scope="module")
def small() -> Bunch:
    return simulate_pneumonia(3000, random_state=1)


def test_mlp_trainer_reproducible_eval_mode_and_beats_chance(small: Bunch) -> None:
    rng_before = torch.random.get_rng_state().clone()
    det_before = torch.are_deterministic_algorithms_enabled()
    kw = dict(random_state=5, max_epochs=20, batch_size=128, verbose=False,
              configs=_SMALL_CONFIGS)
    m1, r1 = train_pneumonia_mlp(small.train.X, small.train.y, **kw)
    m2, r2 = train_pneumonia_mlp(small.train.X, small.train.y, **kw)
    # the user's torch RNG and determinism setting are left as they were
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    assert torch.are_deterministic_algorithms_enabled() == det_before
    assert not m1.training and not any(mod.training for mod in m1.modules())
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v1, v2), k
    pd.testing.assert_frame_equal(r1.search.drop(columns="seconds"),
                                  r2.search.drop(columns="seconds"))
    x = torch.tensor(small.test.X.to_numpy(np.float32))
    with torch.no_grad():
        out = m1(x)
    assert out.shape == (len(x), 1)
    auc = roc_auc_score(small.test.y, out[:, 0].numpy())
    assert auc > 0.7, auc
    # the record
    assert isinstance(r1, MLPSearchResult)
    frame = r1.to_frame()
    assert len(frame) == 2 and frame.selected.sum() == 1
    assert frame.n_tune.iloc[0] + frame.n_fit.iloc[0] == len(small.train.X)
    assert (frame.tuning_auroc_ci_low <= frame.tuning_auroc).all()
    assert (frame.tuning_auroc <= frame.tuning_auroc_ci_high).all()
    sel = frame.loc[frame.selected].iloc[0]
    assert sel.tuning_auroc == frame.tuning_auroc.max()
    assert r1.best_config == _SMALL_CONFIGS[int(sel.config)]
    rec = json.loads(r1.to_json())
    assert rec["type"] == "MLPSearchResult" and len(rec["table"]) == 2
    assert {"history", "best_config", "refit", "seconds", "random_state", "deterministic",
            "params"} <= set(rec) and "search" not in rec   # the search is the table
    assert rec["params"]["random_state"] == r1.random_state == rec["random_state"]
    assert r1.findings()[0].tip == 6
    fig = r1.plot()
    assert fig.axes
    plt.close(fig)


def test_mlp_different_seed_differs_and_works_with_adapter(small: Bunch) -> None:
    from confoundry.models import as_model

    kw = dict(max_epochs=3, verbose=False, search=False)
    m1, _ = train_pneumonia_mlp(small.train.X, small.train.y, random_state=1, **kw)
    m2, rec = train_pneumonia_mlp(small.train.X, small.train.y, random_state=2, **kw)
    w1, w2 = m1.net[0].weight, m2.net[0].weight
    assert not torch.equal(w1, w2)
    assert len(rec.to_frame()) == 1  # search=False trains one configuration
    adapter = as_model(m1, output="logits", task="binary")
    s = adapter.predict_scores(small.test.X)
    assert s.shape == (len(small.test.X),) and np.all((s > 0) & (s < 1))
    assert not m1.training


def test_mlp_refit_and_validation(small: Bunch) -> None:
    m, rec = train_pneumonia_mlp(small.train.X, small.train.y, random_state=0, max_epochs=3,
                                 verbose=False, search=False, refit=True)
    assert rec.refit and not m.training
    with pytest.raises(ValueError, match="max_epochs"):
        train_pneumonia_mlp(small.train.X, small.train.y, max_epochs=0, verbose=False)
    with pytest.raises(ValueError, match="configs"):
        train_pneumonia_mlp(small.train.X, small.train.y, configs=[{"depthh": 2}], verbose=False)
    with pytest.raises(ValueError, match="class"):
        train_pneumonia_mlp(small.train.X, np.zeros(len(small.train.X)), verbose=False)


# ----------------------------------------------------------------------------- danger table
def test_danger_table_counts_by_hand() -> None:
    gt = pd.DataFrame({"untreated_risk": [0.30, 0.30, 0.05, 0.30, 0.20, 0.02],
                       "treated_risk": [0.05, 0.05, 0.01, 0.05, 0.03, 0.01]})
    scores = [0.02, 0.40, 0.01, 0.05, 0.03, 0.50]
    asthma = [1, 0, 1, 1, 0, 0]
    dt = danger_table(scores, gt, asthma, threshold=0.1)
    assert isinstance(dt, DangerTableResult)
    t = dt.to_frame().set_index("group")
    assert t.loc["asthma", "n"] == 3 and t.loc["asthma", "n_sent_home"] == 3
    assert t.loc["asthma", "n_high_risk"] == 2 and t.loc["asthma", "n_wrongly_sent_home"] == 2
    assert t.loc["no asthma", "n_high_risk"] == 2
    assert t.loc["no asthma", "n_wrongly_sent_home"] == 1
    assert t.loc["all", "n_wrongly_sent_home"] == 3
    assert t.loc["asthma", "expected_deaths_sent_home"] == pytest.approx(0.6)
    assert t.loc["asthma", "expected_deaths_if_treated"] == pytest.approx(0.1)
    assert t.loc["asthma", "rate_ci_low"] < 1.0 <= t.loc["asthma", "rate_ci_high"] + 1e-12
    assert dt.comparison["difference"] == pytest.approx(0.5)
    assert 0 < dt.comparison["p_value"] <= 1
    assert dt.findings() and dt.findings()[0].kind == "dangerous_triage"
    rec = json.loads(dt.to_json())
    assert rec["type"] == "DangerTableResult" and rec["threshold"] == 0.1
    assert rec["comparison"]["test"] == "Fisher exact, two-sided"
    assert rec["params"]["threshold"] == 0.1 and rec["params"]["n"] == 6
    assert not {"scores", "untreated_risk", "asthma"} & set(rec)   # per-patient arrays stay out
    # the Wilson interval is the shared one
    from confoundry.stats import wilson_interval

    assert (t.loc["asthma", "rate_ci_low"], t.loc["asthma", "rate_ci_high"]) == \
        pytest.approx(wilson_interval(2, 2))
    named = danger_table(scores, gt, asthma, threshold=0.1, model_name="MLP").findings()[0]
    assert named.key == ("dangerous_triage", "asthma", "MLP", "asthma")
    fig = dt.plot()
    assert fig.axes
    plt.close(fig)


def test_danger_table_validation() -> None:
    gt = pd.DataFrame({"untreated_risk": [0.3, 0.1]})
    with pytest.raises(ValueError, match="threshold"):
        danger_table([0.1, 0.2], gt, [1, 0], threshold=1.5)
    with pytest.raises(ValueError, match="lengths"):
        danger_table([0.1, 0.2, 0.3], gt, [1, 0])
    with pytest.raises(ValueError, match="untreated_risk"):
        danger_table([0.1, 0.2], gt.rename(columns={"untreated_risk": "r"}), [1, 0])
    with pytest.raises(ValueError, match="outside"):
        danger_table([1.1, 0.2], gt, [1, 0])
    with pytest.raises(ValueError, match="asthma"):
        danger_table([0.1, 0.2], gt, [2, 0])


def test_danger_on_simulated_cohort_reflects_the_paradox(cohort: Bunch) -> None:
    """A model that has learned the observed association (here: the ground-truth expected
    risk, what a perfect observational model estimates) under-triages asthmatic patients much
    more often than the rest."""
    te = cohort.test
    asthma = te.X.asthma.to_numpy() == 1
    dt = danger_table(te.ground_truth.expected_risk, te.ground_truth, asthma, threshold=0.1)
    c = dt.comparison
    assert c["rate_asthma"] > c["rate_no_asthma"] + 0.2
    assert c["p_value"] < 1e-4
    # the untreated risk itself never sends a high-risk patient home
    safe = danger_table(te.ground_truth.untreated_risk, te.ground_truth, asthma, threshold=0.1)
    assert safe.to_frame().n_wrongly_sent_home.sum() == 0


def test_deprecated_result_names() -> None:
    import confoundry.demos as demos
    from confoundry.demos import ParadoxTableResult

    with pytest.warns(DeprecationWarning, match="DangerTableResult"):
        assert demos.DangerTable is DangerTableResult
    with pytest.warns(DeprecationWarning, match="ParadoxTableResult"):
        assert demos.ParadoxTable is ParadoxTableResult
    assert "DangerTable" not in demos.__all__ and "DangerTableResult" in demos.__all__
    with pytest.raises(AttributeError):
        _ = demos.NoSuchTable
