"""probe_confounders end to end: models, torch layers, result surface, validation."""

import dataclasses
import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

import confoundry as cf

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLUMNS = ["metadata", "probe", "statistic", "effect_size", "p_value", "q_value", "n",
           "significant"]


def _confounded(n=400, seed=0, effect=1.0):
    """Site confounds the data set (and, with effect > 0, the model's outputs)."""
    rng = np.random.default_rng(seed)
    site = rng.choice(["a", "b"], n)
    y = (rng.random(n) < np.where(site == "b", 0.7, 0.3)).astype(int)
    X = pd.DataFrame({"x0": y + rng.normal(size=n), "x1": rng.normal(size=n),
                      "x2": (site == "b") * effect + rng.normal(scale=0.3, size=n)})
    meta = pd.DataFrame({"site": site, "age": rng.normal(50, 10, n)}, index=X.index)
    return X, y, meta


@pytest.fixture(scope="module")
def fitted():
    from sklearn.linear_model import LogisticRegression

    X, y, meta = _confounded()
    return LogisticRegression().fit(X, y), X, y, meta


def test_sklearn_model_end_to_end_finds_the_learned_site(fitted):
    model, X, y, meta = fitted
    res = cf.probe_confounders(model, X, y, meta, n_permutations=200, random_state=0,
                               verbose=False)
    t = res.to_frame()
    assert set(COLUMNS) <= set(t.columns)
    assert len(t) == 2 * 5
    assert set(t["probe"]) == {"label_association", "metadata_only", "output_marginal",
                               "output_conditional", "error"}
    assert np.allclose(t["q_value"], cf.stats.bh_adjust(t["p_value"].to_numpy()))
    assert (t["significant"] == (t["q_value"] < 0.05)).all()
    assert (t["n"] == len(y)).all()
    assert (t["p_value"] >= 1 / 201 - 1e-12).all()
    assert res.row("site", "output_conditional")["significant"]
    assert res.row("site", "label_association")["significant"]
    assert res.row("site", "metadata_only")["effect_size"] > 0.6
    assert not res.row("age", "output_conditional")["significant"]
    assert not res.row("age", "label_association")["significant"]
    kinds = {(f.kind, f.subject) for f in res.findings()}
    assert ("confounded_output", "site") in kinds and ("confounded_dataset", "site") in kinds
    high = [f for f in res.findings() if f.kind == "confounded_output"]
    assert high[0].severity == "high" and high[0].tip == 7 and "site" in high[0].title
    assert all(f.subject == "site" for f in res.findings())


def test_model_that_ignores_site_gives_marginal_only_info(fitted):
    from sklearn.linear_model import LogisticRegression

    X, y, meta = _confounded(n=600, seed=1, effect=0.0)
    model = LogisticRegression().fit(X[["x0", "x1"]], y)
    res = cf.probe_confounders(model, X[["x0", "x1"]], y, meta, n_permutations=200,
                               random_state=0, verbose=False)
    assert res.row("site", "output_marginal")["significant"]
    assert not res.row("site", "output_conditional")["significant"]
    kinds = {f.kind: f for f in res.findings() if f.subject == "site"}
    assert "confounded_output" not in kinds
    assert kinds["metadata_predicts_output"].severity == "info"
    assert kinds["confounded_dataset"].tip == 4


def test_reproducible_with_random_state_and_scores_equivalent(fitted):
    model, X, y, meta = fitted
    a = cf.probe_confounders(model, X, y, meta, n_permutations=100, random_state=3,
                             verbose=False).to_frame()
    b = cf.probe_confounders(model, X, y, meta, n_permutations=100, random_state=3,
                             verbose=False).to_frame()
    pd.testing.assert_frame_equal(a, b)
    s = model.predict_proba(X)[:, 1]
    c = cf.probe_confounders(y=y, metadata=meta, scores=s, n_permutations=100, random_state=3,
                             verbose=False).to_frame()
    pd.testing.assert_frame_equal(a, c)
    d = cf.probe_confounders(y=y, metadata=meta, scores=s, n_permutations=100, random_state=4,
                             verbose=False).to_frame()
    assert not np.allclose(a["p_value"], d["p_value"])


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(),
                                           torch.nn.Linear(16, 8), torch.nn.ReLU())
        self.dropout = torch.nn.Dropout(0.5)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.dropout(self.encoder(x)))


def test_embedding_probe_on_a_named_torch_layer_leaves_the_model_untouched():
    X, y, meta = _confounded(n=300, seed=2)
    torch.manual_seed(0)
    net = _Net().double()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    xt, yt = torch.tensor(X.to_numpy()), torch.tensor(y, dtype=torch.float64)
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt)[:, 0], yt)
        loss.backward()
        opt.step()
    net.train()
    net.head.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng_before = torch.random.get_rng_state()
    res = cf.probe_confounders(net, X, y, meta, layer="encoder.3", n_permutations=100,
                               random_state=0, verbose=False)
    t = res.to_frame()
    assert {"embedding_marginal", "embedding_conditional"} <= set(t["probe"])
    assert res.layer == "encoder.3"
    assert res.row("site", "embedding_conditional")["significant"]
    assert res.row("site", "embedding_marginal")["effect_size"] > 0.1
    assert res.info["embedding_dim"] == 8
    # the model is exactly as it was: mode, grad flags, weights, no hooks left, RNG untouched
    assert net.training and net.encoder.training and net.dropout.training
    assert not net.head.weight.requires_grad and net.encoder[0].weight.requires_grad
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(not m._forward_hooks for m in net.modules())
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    # a module object works like its name
    res2 = cf.probe_confounders(net, X, y, meta, layer=net.encoder[3], n_permutations=100,
                                random_state=0, verbose=False)
    pd.testing.assert_frame_equal(t, res2.to_frame())
    res3 = cf.probe_confounders(cf.as_model(net, output="logits"), X, y, meta, layer=net.encoder[3],
                                n_permutations=100, random_state=0, verbose=False)
    pd.testing.assert_frame_equal(t, res3.to_frame())
    assert any(f.kind == "confounded_output" and "encoder.3" in f.title
               for f in res.findings())


def test_bad_layer_and_bad_inputs_raise_clear_errors(fitted):
    model, X, y, meta = fitted
    net = _Net().double()
    with pytest.raises(ValueError, match="layer='nope'.*encoder"):
        cf.probe_confounders(net, X, y, meta, layer="nope", verbose=False)
    with pytest.raises(ValueError, match="not part of the model"):
        cf.probe_confounders(net, X, y, meta, layer=torch.nn.Linear(2, 2), verbose=False)
    with pytest.raises(TypeError, match="not a torch.nn.Module"):
        cf.probe_confounders(model, X, y, meta, layer="encoder", verbose=False)
    with pytest.raises(TypeError, match="model.*scores"):
        cf.probe_confounders(X=X, y=y, metadata=meta, verbose=False)
    with pytest.raises(ValueError, match="metadata is None"):
        cf.probe_confounders(model, X, y, verbose=False)
    with pytest.raises(ValueError, match="y is None"):
        cf.probe_confounders(model, X, metadata=meta, verbose=False)
    with pytest.raises(ValueError, match="n_permutations=0"):
        cf.probe_confounders(model, X, y, meta, n_permutations=0, verbose=False)
    with pytest.raises(ValueError, match="fdr=2"):
        cf.probe_confounders(model, X, y, meta, fdr=2, verbose=False)
    with pytest.raises(ValueError, match="scores has 3 rows"):
        cf.probe_confounders(y=y, metadata=meta, scores=[0.1, 0.2, 0.3], verbose=False)
    with pytest.raises(ValueError, match="metadata has 10 rows"):
        cf.probe_confounders(model, X, y, meta.iloc[:10], verbose=False)
    bad = meta.copy()
    bad.loc[bad.index[0], "site"] = None
    with pytest.raises(ValueError, match="metadata column 'site' has 1 missing"):
        cf.probe_confounders(model, X, y, bad, verbose=False)


def test_multiclass_and_regression_outputs():
    rng = np.random.default_rng(5)
    n = 300
    site = rng.integers(0, 3, n)
    y = (rng.integers(0, 3, n) + (site == 2)) % 3
    logits = np.eye(3)[y] * 2 + rng.normal(size=(n, 3))
    logits[:, 0] += 1.0 * (site == 1)
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    meta = pd.DataFrame({"site": site, "batch": rng.integers(0, 2, n)})
    res = cf.probe_confounders(y=y, metadata=meta, scores=P, n_permutations=100,
                               random_state=0, verbose=False)
    assert res.task == "multiclass"
    assert res.row("site", "output_conditional")["significant"]
    assert res.row("site", "output_conditional")["df"] == 2
    assert not res.row("batch", "output_conditional")["significant"]
    assert res.row("site", "metadata_only")["effect_size_name"] \
        == "CV macro AUROC"
    yr = rng.normal(size=n) + 0.5 * site
    s = yr + 0.5 * rng.normal(size=n) + 0.4 * (site == 1)
    res = cf.probe_confounders(y=yr, metadata=pd.DataFrame({"site": site}), scores=s,
                               n_permutations=100, random_state=0, verbose=False)
    row = res.row("site", "output_conditional")
    assert res.task == "regression" and row["significant"]
    assert "Berrett" in row["test"] and row["effect_size_name"] == "partial R²"
    assert res.row("site", "metadata_only")["effect_size_name"] == "CV R²"


def test_result_surface_plot_json_html(fitted):
    model, X, y, meta = fitted
    res = cf.probe_confounders(model, X, y, meta, n_permutations=50, random_state=0,
                               verbose=False)
    fig = res.plot()
    assert len(fig.axes) >= 1 and fig.axes[0].get_title().startswith("Confounder probes")
    plt.close(fig)
    fig, ax = plt.subplots()
    assert res.plot(ax=ax) is fig
    plt.close(fig)
    d = json.loads(res.to_json())
    assert d["type"] == "ProbeResult" and len(d["table"]) == 10 and d["n_permutations"] == 50
    assert d["findings"]
    assert "<table" in res._repr_html_()
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.alpha = 0.1
    assert res.to_frame() is not res.table


# ---------------------------------------------------------------- pipeline contract (issue 14)
class _NeverCalled:
    """A model that fails the test if it is ever scored."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X):
        raise AssertionError("the model was called although scores were given")

    def predict(self, X):
        raise AssertionError("the model was called although scores were given")


def test_audit_data_passes_through_and_scores_are_not_recomputed(fitted, count_audit_data):
    model, X, y, meta = fitted
    s = model.predict_proba(X)[:, 1]
    ref = cf.probe_confounders(model, X, y, meta, n_permutations=100, random_state=1,
                               verbose=False)
    data = cf.AuditData(X, y, meta)
    count_audit_data.clear()
    res = cf.probe_confounders(_NeverCalled(), data, None, None, scores=s, n_permutations=100,
                               random_state=1, verbose=False)
    assert count_audit_data == []  # the AuditData is used as it is
    pd.testing.assert_frame_equal(ref.to_frame(), res.to_frame())
    assert res.model_name == "_NeverCalled"
    # model given with scores but no X: the model is still not called
    res2 = cf.probe_confounders(_NeverCalled(), None, y, meta, scores=s, n_permutations=100,
                                random_state=1, verbose=False)
    pd.testing.assert_frame_equal(ref.to_frame(), res2.to_frame())
    # y and metadata alone build no AuditData either
    cf.probe_confounders(y=y, metadata=meta, scores=s, n_permutations=20, verbose=False)
    assert count_audit_data == []
    # without scores the AuditData's inputs are scored
    res3 = cf.probe_confounders(model, data, n_permutations=100, random_state=1, verbose=False)
    pd.testing.assert_frame_equal(ref.to_frame(), res3.to_frame())
    with pytest.raises(ValueError, match="X is None but a model"):
        cf.probe_confounders(model, None, y, meta, verbose=False)
    with pytest.raises(ValueError, match="metadata is None"):
        cf.probe_confounders(model, cf.AuditData(X, y), verbose=False)


def test_fdr_params_and_the_deprecated_alpha(fitted):
    model, X, y, meta = fitted
    res = cf.probe_confounders(model, X, y, meta, n_permutations=50, fdr=0.2, random_state=0,
                               verbose=False)
    t = res.to_frame()
    assert (t["significant"] == (t["q_value"] < 0.2)).all()
    assert res.fdr == res.alpha == 0.2
    assert res.params["fdr"] == 0.2 and res.params["n_permutations"] == 50
    assert res.params["random_state"] == 0 and res.params["scores_given"] is False
    d = json.loads(res.to_json())
    assert d["params"]["fdr"] == 0.2 and d["alpha"] == 0.2 and d["model"] == "LogisticRegression"
    with pytest.warns(DeprecationWarning, match="fdr="):
        old = cf.probe_confounders(model, X, y, meta, n_permutations=50, alpha=0.2,
                                   random_state=0, verbose=False)
    pd.testing.assert_frame_equal(t, old.to_frame())
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="alpha=2"):
        cf.probe_confounders(model, X, y, meta, alpha=2, verbose=False)
    with pytest.raises(TypeError, match="fdr=0.1 and alpha=0.2"):
        cf.probe_confounders(model, X, y, meta, fdr=0.1, alpha=0.2, verbose=False)


def test_findings_keys_tell_outputs_from_embeddings():
    X, y, meta = _confounded(n=300, seed=2)
    torch.manual_seed(0)
    net = _Net().double()
    s = torch.sigmoid(net.eval()(torch.tensor(X.to_numpy()))[:, 0]).detach().numpy()
    net.train()
    res = cf.probe_confounders(net, X, y, meta, scores=s, layer="encoder.3",
                               n_permutations=50, fdr=0.5, random_state=0, verbose=False)
    keys = [f.key for f in res.findings()]
    assert len(keys) == len(set(keys))  # the audit de-duplicates by key
    assert all(f.domain == "overall" for f in res.findings())
    subjects = {f.subject for f in res.findings()}
    assert subjects <= {"site", "age", "site @ encoder.3", "age @ encoder.3"}
