"""compare_models: bootstrap panel, paired differences, findings, plot, errors."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402

import confoundry as cf  # noqa: E402
from confoundry.models import ModelComparisonResult  # noqa: E402
from confoundry.models._compare import _check_scores  # noqa: E402
from confoundry.stats import bootstrap_metrics, paired_bootstrap  # noqa: E402

N_TRAIN, N_TEST, D = 500, 600, 4
N_BOOT = 300


def _binary(seed: int = 0):
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    X = rng.normal(size=(n, D))
    y = (1.5 * X[:, 0] - X[:, 1] + rng.normal(size=n) > 0).astype(int)
    cols = ["age", "dose", "bmi", "site_noise"]
    X = pd.DataFrame(X, columns=cols)
    return X.iloc[:N_TRAIN], y[:N_TRAIN], X.iloc[N_TRAIN:].reset_index(drop=True), y[N_TRAIN:]


@pytest.fixture(scope="module")
def setting():
    Xtr, ytr, Xte, yte = _binary()
    good = LogisticRegression().fit(Xtr, ytr)
    # a "deep model" that only saw two weak features
    weak = LogisticRegression().fit(Xtr[["bmi", "site_noise"]], ytr)
    base = cf.fit_baselines(Xtr, ytr, kinds=("logistic", "tree"), random_state=0, cv=3,
                            verbose=False)
    return Xtr, ytr, Xte, yte, good, weak, base


def _weak_fn(weak):
    return lambda X: weak.predict_proba(X[["bmi", "site_noise"]])[:, 1]


def test_table_columns_and_intervals(setting):
    _, _, Xte, yte, good, weak, base = setting
    cmp = cf.compare_models({"good": good, "weak": _weak_fn(weak), **base}, Xte, yte,
                            n_boot=N_BOOT, random_state=0)
    assert isinstance(cmp, ModelComparisonResult)
    t = cmp.to_frame()
    assert list(t.columns[:6]) == ["model", "metric", "estimate", "ci_low", "ci_high", "n"]
    assert set(t["model"]) == {"good", "weak", "logistic", "tree"}
    assert set(t["metric"]) == set(cf.stats.default_metrics("binary"))
    assert (t["n"] == N_TEST).all() and (t["n_boot"] == N_BOOT).all()
    smooth = t[t["metric"].isin(["auroc", "auprc", "brier", "log_loss", "accuracy"])]
    assert (smooth["ci_low"] <= smooth["estimate"]).all()
    assert (smooth["estimate"] <= smooth["ci_high"]).all()
    assert (smooth["ci_high"] - smooth["ci_low"] > 0).all()
    assert cmp.reference == "good" and cmp.models == ["good", "weak", "logistic", "tree"]
    assert cmp.estimates().shape == (4, 9)
    # scores are kept for reuse, with the adapter's convention
    assert set(cmp.scores) == {"good", "weak", "logistic", "tree"}
    np.testing.assert_allclose(cmp.scores["good"], good.predict_proba(Xte)[:, 1])
    np.testing.assert_allclose(cmp.scores["tree"], base["tree"].predict_scores(Xte))
    assert cmp.glass_box == {"good": False, "weak": False, "logistic": True, "tree": True}


def test_shared_replicates_equal_the_stats_functions(setting):
    """The one pass of shared replicates reproduces stats.bootstrap_metrics (reference model)
    exactly for the same seed, and agrees with stats.paired_bootstrap."""
    _, _, Xte, yte, good, weak, _ = setting
    mets = ["auroc", "brier", "accuracy"]
    cmp = cf.compare_models({"good": good, "weak": _weak_fn(weak)}, Xte, yte, n_boot=N_BOOT,
                            random_state=5, metrics=mets)
    ref = bootstrap_metrics(yte, cmp.scores["good"], task="binary", metrics=mets, n_boot=N_BOOT,
                            random_state=cmp.seed)
    got = cmp.table[cmp.table["model"] == "good"].reset_index(drop=True)
    for col in ("estimate", "ci_low", "ci_high", "se"):
        np.testing.assert_allclose(got[col], ref[col], rtol=0, atol=1e-12)
    # the other model: the same bootstrap in another row order -> close, not identical
    other = bootstrap_metrics(yte, cmp.scores["weak"], task="binary", metrics=mets,
                              n_boot=N_BOOT, random_state=cmp.seed)
    got = cmp.table[cmp.table["model"] == "weak"].reset_index(drop=True)
    np.testing.assert_allclose(got["estimate"], other["estimate"], atol=1e-12)
    np.testing.assert_allclose(got["se"], other["se"], rtol=0.25)
    pb = paired_bootstrap(yte, cmp.scores["good"], cmp.scores["weak"], task="binary",
                          metrics=mets, n_boot=N_BOOT, random_state=cmp.seed)
    mine = cmp.difference("good", "weak")
    # paired_bootstrap orders rows symmetrically in (a, b), compare_models by the reference's
    # scores: the same paired bootstrap in another row order -> equal estimates, close intervals
    np.testing.assert_allclose(mine["difference"], pb["difference"], atol=1e-12)
    width = (pb["ci_high"] - pb["ci_low"]).to_numpy()
    for col in ("ci_low", "ci_high"):
        np.testing.assert_allclose(mine[col].to_numpy(float), pb[col].to_numpy(float),
                                   atol=0.2 * width.max())
    np.testing.assert_array_equal(mine["a_better"], pb["a_better"])
    stored = cmp.differences.drop(columns="q_value")
    pd.testing.assert_frame_equal(stored, cmp.difference("weak", "good"))
    assert stored["model_a"].eq("weak").all() and stored["model_b"].eq("good").all()
    with pytest.raises(ValueError, match="did not compute"):
        cmp.difference("good", "weak", metrics=["ece"])


def test_difference_signs(setting):
    _, _, Xte, yte, good, weak, _ = setting
    cmp = cf.compare_models({"good": good, "weak": _weak_fn(weak)}, Xte, yte, n_boot=N_BOOT,
                            random_state=0)
    d = cmp.difference("good", "weak").set_index("metric")
    assert list(cmp.difference("good", "weak").columns[:3]) == ["model_a", "model_b", "metric"]
    assert d.loc["auroc", "difference"] > 0.2
    assert d.loc["auroc", "ci_low"] > 0 and d.loc["auroc", "a_better"]
    assert d.loc["brier", "difference"] < 0 and d.loc["brier", "a_better"]  # lower is better
    assert d.loc["auroc", "p_value"] < 0.01
    r = cmp.difference("weak", "good").set_index("metric")
    np.testing.assert_allclose(r["difference"], -d["difference"], atol=1e-12)
    np.testing.assert_allclose(r["ci_low"], -d["ci_high"], atol=1e-12)
    assert r.loc["auroc", "b_better"] and not r.loc["auroc", "a_better"]


def test_same_seed_same_result(setting):
    _, _, Xte, yte, good, weak, _ = setting
    models = {"good": good, "weak": _weak_fn(weak)}
    a = cf.compare_models(models, Xte, yte, n_boot=100, random_state=1).to_frame()
    b = cf.compare_models(models, Xte, yte, n_boot=100, random_state=1).to_frame()
    c = cf.compare_models(models, Xte, yte, n_boot=100, random_state=2).to_frame()
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_low"], c["ci_low"])


def test_findings_when_a_baseline_beats_the_deep_model(setting):
    _, _, Xte, yte, _, weak, base = setting
    cmp = cf.compare_models({"dl": _weak_fn(weak), **base}, Xte, yte, n_boot=N_BOOT,
                            random_state=0)
    found = {f.model: f for f in cmp.findings()}
    assert found["logistic"].kind == "baseline_outperforms"
    assert found["logistic"].severity == "high" and found["logistic"].tip == 2
    ev = found["logistic"].evidence
    assert ev["difference"] > 0 and ev["ci_low"] > 0 and ev["q_value"] < 0.05
    assert ev["n"] == N_TEST and ev["correction"] == "Benjamini-Hochberg"


def test_findings_when_the_deep_model_is_better_or_equal(setting):
    _, _, Xte, yte, good, _, base = setting
    # the "DL model" equals the logistic baseline: not significantly different -> medium
    same = cf.compare_models({"dl": base["logistic"].predict_scores, "logistic": base["logistic"]},
                             Xte, yte, n_boot=N_BOOT, random_state=0)
    (f,) = same.findings()
    assert f.kind == "baseline_outperforms" and f.severity == "medium"
    assert f.evidence["difference"] == pytest.approx(0.0, abs=1e-12)
    # a deep model clearly better than a stump-like tree -> info only
    stump = cf.fit_baselines(*setting[:2], kinds="tree", tuning="none", random_state=0,
                             verbose=False)
    cmp = cf.compare_models({"dl": good, **stump}, Xte, yte, n_boot=N_BOOT, random_state=0)
    kinds = {(f.kind, f.severity) for f in cmp.findings()}
    assert ("untuned_baseline", "low") in kinds
    if cmp.differences.set_index("metric").loc["auroc", "b_better"]:
        assert ("reference_outperforms", "info") in kinds
    # a Baselines value inside the dict is flattened
    nested = cf.compare_models({"dl": good, "base": base}, Xte, yte, n_boot=20, random_state=0)
    assert nested.models == ["dl", "logistic", "tree"]
    with pytest.raises(ValueError, match="two models named 'tree'"):
        cf.compare_models({"tree": good, "base": base}, Xte, yte, n_boot=20)
    # only baselines: no Tip-2 verdict about a deep model
    only = cf.compare_models(base, Xte, yte, n_boot=50, random_state=0)
    assert only.reference == "logistic" and only.findings() == []


def test_plot_and_serialisation(setting):
    _, _, Xte, yte, good, _, base = setting
    cmp = cf.compare_models({"good": good, **base}, Xte, yte, n_boot=100, random_state=0)
    fig = cmp.plot()
    assert len([a for a in fig.axes if a.get_visible()]) == 9
    plt.close(fig)
    fig, ax = plt.subplots()
    assert cmp.plot(ax=ax, metrics=["auroc"]) is fig
    assert {t.get_text() for t in ax.get_yticklabels()} == {"good", "logistic", "tree"}
    plt.close(fig)
    payload = json.loads(cmp.to_json())
    assert payload["type"] == "ModelComparisonResult" and payload["n"] == N_TEST
    assert payload["tuning"]["tree"]["search"] == "grid"
    assert "<table" in cmp._repr_html_()


def test_multiclass_and_regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 3))
    yr = X[:, 0] - 0.5 * X[:, 1] + rng.normal(scale=0.5, size=500)
    lin = LinearRegression().fit(X[:250], yr[:250])
    cmp = cf.compare_models({"lin": lin, "mean": lambda x: np.zeros(len(x))}, X[250:], yr[250:],
                            n_boot=100, random_state=0, task="regression")
    t = cmp.to_frame().set_index(["model", "metric"])
    assert set(cmp.metrics) == {"r2", "mae", "rmse"}
    assert t.loc[("lin", "r2"), "ci_low"] > 0.5
    assert cmp.difference("lin", "mean").set_index("metric").loc["r2", "a_better"]
    ym = np.digitize(X[:, 0] + rng.normal(scale=0.5, size=500), [-0.5, 0.5])
    clf = LogisticRegression().fit(X[:250], ym[:250])
    cm = cf.compare_models({"clf": clf}, X[250:], ym[250:], n_boot=100, random_state=0)
    assert cm.task == "multiclass" and cm.scores["clf"].shape == (250, 3)
    assert cm.differences.empty and cm.findings() == []
    row = cm.to_frame().set_index("metric").loc["macro_auroc"]
    assert row["ci_low"] <= row["estimate"] <= row["ci_high"]


def test_bad_input(setting):
    _, _, Xte, yte, good, weak, _ = setting
    with pytest.raises(ValueError, match="y has 599 values but X has 600 rows"):
        cf.compare_models({"good": good}, Xte, yte[:-1], n_boot=10)
    with pytest.raises(ValueError, match="models is empty"):
        cf.compare_models({}, Xte, yte)
    with pytest.raises(TypeError, match="expected a dict"):
        cf.compare_models([good], Xte, yte)
    with pytest.raises(TypeError, match="string names"):
        cf.compare_models({1: good}, Xte, yte)
    with pytest.raises(ValueError, match="n_boot=0"):
        cf.compare_models({"good": good}, Xte, yte, n_boot=0)
    with pytest.raises(ValueError, match="reference='mlp'"):
        cf.compare_models({"good": good}, Xte, yte, reference="mlp")
    with pytest.raises(ValueError, match="not valid for task='binary'"):
        cf.compare_models({"good": good}, Xte, yte, metrics=["r2"])
    # refused where the model is scored (the adapter), before compare_models' own shape check
    with pytest.raises(ValueError, match="'bad' returns 3 outputs per row, but the task is "
                                         "'binary'"):
        cf.compare_models({"bad": lambda X: np.full((len(X), 3), 0.3)}, Xte, yte, n_boot=10)
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        _check_scores(np.full(len(yte), 1.5), "bad", "binary", len(yte), np.array([0, 1]))
    with pytest.raises(RuntimeError, match="model 'broken' failed"):
        cf.compare_models({"broken": lambda X: X["nope"]}, Xte, yte, n_boot=10)
    cmp = cf.compare_models({"good": good, "weak": _weak_fn(weak)}, Xte, yte, n_boot=10)
    with pytest.raises(ValueError, match="b='mlp' is not a compared model"):
        cmp.difference("good", "mlp")
    with pytest.raises(ValueError, match="two different models"):
        cmp.difference("good", "good")

