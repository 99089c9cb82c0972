"""The Audit: runs every available step, shares predictions, records skips and failures."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

import confoundry as cf  # noqa: E402
from confoundry.audit import STEPS, AuditResult, StepStatus, _steps  # noqa: E402
from confoundry.audit._findings import verdict  # noqa: E402

FAST = {"n_boot": 40, "n_permutations": 40, "baseline_kinds": ("logistic", "tree"),
        "max_attribution_rows": 120, "n_repeats": 2, "verbose": False}


def make_data(n: int = 360, seed: int = 0):
    rng = np.random.default_rng(seed)
    site = rng.choice(["north", "south"], n)
    X = pd.DataFrame({
        "age": rng.normal(60, 10, n),
        "asthma": rng.integers(0, 2, n).astype(float),
        "bun": rng.normal(0, 1, n),
        "noise": rng.normal(0, 1, n),
    })
    logit = 0.08 * (X["age"] - 60) - 1.0 * X["asthma"] + 0.8 * X["bun"] + 0.6 * (site == "north")
    # an array: X's rows are split and re-indexed, and a pandas y would have to follow
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    meta = pd.DataFrame({"site": site, "care": rng.integers(0, 2, n)})
    return X, y, meta


def train_mlp(X, y, seed: int = 0, epochs: int = 60):
    Xt = torch.tensor(np.asarray(X, dtype=np.float32))
    Xt = (Xt - Xt.mean(0)) / Xt.std(0)
    mu, sd = torch.tensor(np.asarray(X, np.float32)).mean(0), torch.tensor(
        np.asarray(X, np.float32)).std(0)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        body = torch.nn.Sequential(torch.nn.Linear(Xt.shape[1], 16), torch.nn.ReLU(),
                                   torch.nn.Linear(16, 1))
        net = torch.nn.Sequential(_Standardise(mu, sd), body)
        opt = torch.optim.Adam(net.parameters(), lr=0.03)
        yt = torch.tensor(np.asarray(y, np.float32))[:, None]
        for _ in range(epochs):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(torch.tensor(np.asarray(X, np.float32))), yt)
            loss.backward()
            opt.step()
    return net


class _Standardise(torch.nn.Module):
    def __init__(self, mu, sd):
        super().__init__()
        self.register_buffer("mu", mu)
        self.register_buffer("sd", sd)

    def forward(self, x):
        return (x - self.mu) / self.sd


def sk_train_fn(X, y):
    return LogisticRegression(max_iter=200).fit(np.asarray(X, float), np.asarray(y))


@pytest.fixture(scope="module")
def setup():
    X, y, meta = make_data()
    tr, te = slice(0, 200), slice(200, None)
    net = train_mlp(X.iloc[tr], y[tr])
    return {"net": net, "X_train": X.iloc[tr].reset_index(drop=True), "y_train": y[tr],
            "X_test": X.iloc[te].reset_index(drop=True), "y_test": y[te],
            "meta_test": meta.iloc[te].reset_index(drop=True),
            "meta_train": meta.iloc[tr].reset_index(drop=True)}


@pytest.fixture(scope="module")
def full_result(setup):
    s = setup
    audit = cf.Audit(s["net"], s["X_test"], s["y_test"], metadata=s["meta_test"],
                     X_train=s["X_train"], y_train=s["y_train"],
                     expectations={"asthma": "increasing", "age": "increasing"},
                     train_fn=sk_train_fn, metadata_train=s["meta_train"], random_state=0,
                     model_name="mlp", **FAST)
    return audit.run()


# ---------------------------------------------------------------- full run
def test_every_step_has_a_status(full_result):
    assert list(full_result.steps) == [st.name for st in STEPS]
    for name, st in full_result.steps.items():
        assert isinstance(st, StepStatus)
        assert st.status in ("ran", "skipped", "failed")
        if st.status != "ran":
            assert st.reason, f"step {name} is {st.status} without a reason"
        assert (name in full_result.results) == (st.status == "ran")


def test_available_steps_run_and_none_fails(full_result):
    """With every input given, every step runs (or says it had nothing to do: no probe is
    significant in this data, so the pathways have nothing to trace)."""
    for name, st in full_result.steps.items():
        assert st.status == "ran" or st.reason.startswith("nothing to do: "), \
            f"step {name}: {st.label}\n{st.detail}"
    for step in ("data", "performance"):
        assert full_result.steps[step].status == "ran"


def test_summary_is_worst_first_with_contract_columns(full_result):
    s = full_result.summary()
    assert list(s.columns) == ["kind", "severity", "tip", "title", "subject", "model",
                               "evidence"]
    order = {"high": 0, "medium": 1, "low": 2, "info": 3}
    ranks = [order[v] for v in s["severity"]]
    assert ranks == sorted(ranks)
    assert full_result.to_frame().equals(s)
    assert len(s) == len(full_result.findings())


def test_json_round_trip(full_result, tmp_path):
    d = full_result.to_dict()
    text = full_result.to_json(tmp_path / "audit.json")
    assert json.loads(text) == d
    assert json.loads((tmp_path / "audit.json").read_text()) == d
    assert d["type"] == "AuditResult"
    assert set(d["steps"]) == {st.name for st in STEPS}
    assert len(d["findings"]) == len(full_result.findings())
    assert set(d["results"]) == set(full_result.results)
    assert d["verdict"]["level"] in ("high", "medium", "low", "info")
    repro = d["reproducibility"]
    assert repro["base_seed"] == 0 and len(repro["data_sha256"]["test"]) == 64
    assert repro["model"]["n_parameters"] > 0 and len(repro["model"]["sha256"]) == 64
    assert "torch" in repro["versions"]


def test_result_surface(full_result):
    fig = full_result.plot()
    assert hasattr(fig, "savefig")
    plt.close("all")
    assert "AuditResult" in full_result._repr_html_()
    assert full_result["performance"] is full_result.results["performance"]
    with pytest.raises(KeyError, match="no result"):
        full_result["no_such_step"]


def test_performance_table_has_ci_and_n(full_result):
    t = full_result.results["performance"].to_frame()
    assert {"metric", "estimate", "ci_low", "ci_high", "n", "n_boot"} <= set(t.columns)
    assert (t["n"] == 160).all()
    ok = t.dropna(subset=["ci_low", "ci_high"])
    assert (ok["ci_low"] <= ok["estimate"] + 1e-12).all()
    assert (ok["estimate"] <= ok["ci_high"] + 1e-12).all()


def test_data_summary_tables(full_result):
    data = full_result.results["data"]
    assert data.overview["n_test"] == 160 and data.overview["n_train"] == 200
    site = data.tables["site"]
    assert site["n"].sum() == 160
    assert ((site["ci_low"] <= site["rate"]) & (site["rate"] <= site["ci_high"])).all()
    tests = data.to_frame()
    assert set(tests["metadata"]) == {"site", "care"}
    assert ((tests["q_value"] >= tests["p_value"] - 1e-12) & (tests["q_value"] <= 1)).all()


def test_attribution_subsample_is_noted(full_result):
    if full_result.steps["attributions"].status != "ran":
        pytest.skip("confoundry.attribute is not available")
    assert full_result.options["attribution_method"] == "integrated_gradients"
    assert any("120 of the 160" in n for n in full_result.notes)
    attr = full_result.results["attributions"]["mlp"]
    assert attr.n_samples == 120


# --------------------------------------------------------- sharing, state
class CountingModel:
    """A scikit-learn style model that counts how often it sees exactly the test inputs."""

    def __init__(self, X_test):
        self.key = np.asarray(X_test, float)
        self.test_calls = 0
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X):
        arr = np.asarray(X, float)
        if arr.shape == self.key.shape and np.array_equal(arr, self.key):
            self.test_calls += 1
        p = 1 / (1 + np.exp(-(arr[:, 0] - 60) / 10))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


def test_test_predictions_are_computed_once(setup):
    s = setup
    model = CountingModel(s["X_test"])
    res = cf.Audit(model, s["X_test"], s["y_test"], metadata=s["meta_test"],
                   X_train=s["X_train"], y_train=s["y_train"], random_state=1,
                   steps=["performance", "baselines", "comparison", "probes", "domains",
                          "slices", "overfitting", "membership"], **FAST).run()
    assert res.steps["performance"].status == "ran"
    assert model.test_calls == 1


def test_model_and_global_state_untouched(setup):
    s = setup
    net = s["net"]
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grads = [p.requires_grad for p in net.parameters()]
    rng_state = torch.get_rng_state().clone()
    det = torch.are_deterministic_algorithms_enabled()
    cf.Audit(net, s["X_test"], s["y_test"], metadata=s["meta_test"], random_state=0,
             steps=["performance", "attributions", "probes", "sanity_check"], **FAST).run()
    assert all(m.training for m in net.modules())
    assert [p.requires_grad for p in net.parameters()] == grads
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.are_deterministic_algorithms_enabled() == det


def test_reproducible_with_random_state(setup):
    s = setup

    def run():
        return cf.Audit(s["net"], s["X_test"], s["y_test"], metadata=s["meta_test"],
                        random_state=7, steps=["data", "performance", "probes", "domains"],
                        **FAST).run()

    a, b = run(), run()
    for step in a.results:
        assert json.dumps(a.to_dict()["results"][step], sort_keys=True) == json.dumps(
            b.to_dict()["results"][step], sort_keys=True), step
    assert a.reproducibility["step_seeds"] == b.reproducibility["step_seeds"]
    c = cf.Audit(s["net"], s["X_test"], s["y_test"], random_state=8, steps=["performance"],
                 **FAST).run()
    assert c.reproducibility["step_seeds"] != a.reproducibility["step_seeds"]


def test_random_state_none_records_a_seed(setup):
    s = setup
    res = cf.Audit(s["net"], s["X_test"], s["y_test"], random_state=None,
                   steps=["performance"], **FAST).run()
    assert isinstance(res.reproducibility["base_seed"], int)


# ------------------------------------------------------- skips and failures
def test_missing_inputs_are_skipped_with_reasons(setup):
    s = setup
    res = cf.Audit(s["net"], s["X_test"], s["y_test"], random_state=0, **FAST).run()
    st = res.steps
    expect = {"baselines": "X_train", "probes": "metadata", "expectations": "expectations",
              "label_shuffle": "train_fn", "leave_one_group_out": "train_fn",
              "overfitting": "X_train", "membership": "X_train", "comparison": "baselines",
              "domains": "metadata"}
    for step, word in expect.items():
        assert st[step].status == "skipped", (step, st[step].label)
        assert word in st[step].reason, (step, st[step].reason)
    assert st["performance"].status == "ran"
    html = res.to_html()
    assert "skipped: " in html
    assert "needs training data (X_train= and y_train=)" in html


def test_failing_step_is_recorded_and_audit_goes_on(setup, monkeypatch):
    s = setup

    def broken(*args, **kwargs):
        raise RuntimeError("probe exploded <b>loudly</b>")

    monkeypatch.setattr(_steps, "probe_confounders", broken)
    res = cf.Audit(s["net"], s["X_test"], s["y_test"], metadata=s["meta_test"], random_state=0,
                   steps=["data", "performance", "probes"], **FAST).run()
    st = res.steps["probes"]
    assert st.status == "failed"
    assert st.reason == "RuntimeError: probe exploded <b>loudly</b>"
    assert "broken" in st.detail
    assert res.steps["data"].status == "ran" and res.steps["performance"].status == "ran"
    failed = res.summary().query("kind == 'step_failed'")
    assert list(failed["subject"]) == ["probes"]
    html = res.to_html()
    assert "probe exploded &lt;b&gt;loudly&lt;/b&gt;" in html
    assert "<b>loudly</b>" not in html


def test_step_warnings_are_recorded(setup, monkeypatch):
    s = setup
    import warnings

    def noisy(*args, **kwargs):
        warnings.warn("completeness delta is large", UserWarning, stacklevel=2)
        return cf.Audit  # any object: the audit only stores it

    monkeypatch.setattr(_steps, "discover_slices", noisy)
    res = cf.Audit(s["net"], s["X_test"], s["y_test"], random_state=0, steps=["slices"],
                   **FAST).run()
    assert res.steps["slices"].status == "ran"
    assert res.steps["slices"].warnings == ("UserWarning: completeness delta is large",)


def test_steps_call_functions_with_explicit_keywords(setup, monkeypatch):
    """A step function that does not take a keyword the step passes fails the step loudly
    (no signature sniffing, no silently dropped option)."""
    s = setup
    seen = {}

    def split_domains(model, X, y, *, by, n_boot=10, random_state=None):  # no overall=, ...
        seen.update(by=by)
        return None

    monkeypatch.setattr(_steps, "split_domains", split_domains)
    res = cf.Audit(s["net"], s["X_test"], s["y_test"], metadata=s["meta_test"][["site"]],
                   random_state=0, steps=["domains"], **FAST).run()
    st = res.steps["domains"]
    assert st.status == "failed"
    assert st.reason.startswith("TypeError") and "unexpected keyword argument" in st.reason
    assert not seen
    assert list(res.summary().query("kind == 'step_failed'")["subject"]) == ["domains"]


# --------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs, exc, match", [
    ({"X_train": "X"}, ValueError, "y_train is None"),
    ({"y_train": "y"}, ValueError, "X_train is None"),
    ({"expectations": {"height": "increasing"}}, ValueError, "'height'"),
    ({"expectations": ["asthma"]}, TypeError, "expectations="),
    ({"expectations": {"asthma": 1}}, TypeError, "expectations\\['asthma'\\]"),
    ({"steps": ["probes", "bogus"]}, ValueError, "bogus"),
    ({"n_boot": 0}, ValueError, "n_boot=0"),
    ({"n_permutations": -3}, ValueError, "n_permutations=-3"),
    ({"train_fn": 3}, TypeError, "train_fn=3"),
    ({"attribution_method": None}, TypeError, "attribution_method=None"),
    ({"random_state": "seed"}, TypeError, "random_state='seed'"),
    ({"metadata_train": "m"}, ValueError, "metadata_train"),
    ({"group_column": "site"}, ValueError, "group_column='site'"),
])
def test_bad_arguments(setup, kwargs, exc, match):
    s = setup
    kw = dict(kwargs)
    if kw.get("X_train") == "X":
        kw["X_train"] = s["X_train"]
    if kw.get("y_train") == "y":
        kw["y_train"] = s["y_train"]
    if kw.get("metadata_train") == "m":
        kw["metadata_train"] = s["meta_train"]
    with pytest.raises(exc, match=match):
        cf.Audit(s["net"], s["X_test"], s["y_test"], **kw)


def test_bad_data_goes_through_audit_data(setup):
    s = setup
    with pytest.raises(ValueError, match="y has 3 values but X has 160 rows"):
        cf.Audit(s["net"], s["X_test"], [0, 1, 0])
    with pytest.raises(ValueError, match="y_test is None"):
        cf.Audit(s["net"], s["X_test"], None)
    with pytest.raises(ValueError, match="differ from X_test"):
        cf.Audit(s["net"], s["X_test"], s["y_test"],
                 X_train=s["X_train"][["bun", "age", "asthma", "noise"]], y_train=s["y_train"])
    with pytest.raises(TypeError, match="model has type"):
        cf.Audit(object(), s["X_test"], s["y_test"])


def test_verdict_levels():
    high = cf.Finding("memorisation", "high", 7, "t")
    low = cf.Finding("x", "low", 2, "t")
    assert verdict([low, high])["level"] == "high"
    assert verdict([low])["level"] == "low"
    assert verdict([])["counts"] == {"high": 0, "medium": 0, "low": 0, "info": 0}


def test_audit_result_is_frozen(full_result):
    assert isinstance(full_result, AuditResult)
    with pytest.raises(AttributeError):
        full_result.model_name = "other"
