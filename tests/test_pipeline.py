"""The audit pipeline: one declared step list, data validated and scored once, one panel."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

import confoundry as cf  # noqa: E402
from confoundry._result import Finding, ResultMixin  # noqa: E402
from confoundry.audit import STEPS, AuditStep, _steps  # noqa: E402
from confoundry.audit._findings import collect_findings  # noqa: E402
from confoundry.data import AuditData  # noqa: E402
from confoundry.models._glassbox import GlassBoxModel  # noqa: E402

FAST = {"n_boot": 40, "n_permutations": 40, "baseline_kinds": ("logistic", "tree"),
        "max_attribution_rows": 120, "n_repeats": 2, "verbose": False}


def make_data(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    site = rng.choice(["north", "south", "east"], n)
    X = pd.DataFrame({"age": rng.normal(60, 10, n), "asthma": rng.integers(0, 2, n) * 1.0,
                      "bun": rng.normal(0, 1, n), "noise": rng.normal(0, 1, n)})
    logit = 0.08 * (X["age"] - 60) - 1.0 * X["asthma"] + 0.8 * X["bun"] + 0.6 * (site == "north")
    # an array: X's rows are split and re-indexed, and a pandas y would have to follow
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    meta = pd.DataFrame({"site": site, "batch": rng.choice(["b1", "b2"], n)})
    return X, y, meta


class CountingModel:
    """A scikit-learn-style model that counts how often it sees the whole test set."""

    def __init__(self, model, X_test):
        self.model = model
        self.key = np.asarray(X_test, dtype=float)
        self.test_calls = 0

    def predict_proba(self, X):
        arr = np.asarray(X, dtype=float)
        if arr.shape == self.key.shape and np.array_equal(arr, self.key):
            self.test_calls += 1
        return self.model.predict_proba(arr)


@pytest.fixture(scope="module")
def data():
    X, y, meta = make_data()
    tr, te = slice(0, 220), slice(220, None)  # 220 training rows, 180 test rows
    lr = LogisticRegression(max_iter=500).fit(X.iloc[tr].to_numpy(), y[tr])
    return {"model": lr, "X_train": X.iloc[tr].reset_index(drop=True), "y_train": y[tr],
            "X_test": X.iloc[te].reset_index(drop=True), "y_test": y[te],
            "meta_test": meta.iloc[te].reset_index(drop=True)}


def _audit(d, model=None, **kw):
    opts = {**FAST, **kw}
    return cf.Audit(model if model is not None else d["model"], d["X_test"], d["y_test"],
                    metadata=d["meta_test"], X_train=d["X_train"], y_train=d["y_train"],
                    expectations={"asthma": "increasing", "age": "increasing"},
                    random_state=0, model_name="lr", **opts)


def test_one_audit_data_per_data_set(data, count_audit_data):
    """AuditData is built once for the test set and once for the training set; every step
    receives those and builds none of its own."""
    calls = count_audit_data
    audit = _audit(data)
    assert len(calls) == 2  # X_test, X_train
    res = audit.run()
    ran = [k for k, s in res.steps.items() if s.status == "ran"]
    assert {"baselines", "comparison", "probes", "domains", "slices", "expectations",
            "effect_curves", "overfitting", "membership"} <= set(ran), res.steps_frame()
    assert len(calls) == 2, f"AuditData built again during run(): {calls}"


def test_every_model_scores_the_test_set_once(data, monkeypatch):
    model = CountingModel(data["model"], data["X_test"])
    seen = []
    orig = GlassBoxModel.predict_scores

    def counting(self, X):
        if isinstance(X, AuditData) and X.n_samples == len(data["y_test"]):
            seen.append(self.kind)
        return orig(self, X)

    monkeypatch.setattr(GlassBoxModel, "predict_scores", counting)
    res = _audit(data, model=model, steps=["baselines", "performance", "comparison", "probes",
                                           "domains", "slices", "overfitting",
                                           "membership"]).run()
    assert all(res.steps[s].status == "ran" for s in ("baselines", "comparison", "domains",
                                                       "overfitting", "membership"))
    assert model.test_calls == 1
    assert sorted(seen) == ["logistic", "tree"]  # each baseline once, whatever the steps


def test_one_metric_panel_for_performance_comparison_and_domains(data):
    res = _audit(data, steps=["baselines", "performance", "comparison", "domains"]).run()
    perf = res["performance"].to_frame().set_index("metric")
    comp = res["comparison"].table
    comp = comp[comp["model"] == "lr"].set_index("metric")
    for m in ("auroc", "brier"):
        for col in ("estimate", "ci_low", "ci_high"):
            assert perf.loc[m, col] == comp.loc[m, col], (m, col)
    for dom in res["domains"].values():
        ov = dom.overall.iloc[0]
        assert ov["auroc"] == perf.loc["auroc", "estimate"]
        assert ov["auroc_ci_low"] == perf.loc["auroc", "ci_low"]
        assert ov["auroc_ci_high"] == perf.loc["auroc", "ci_high"]


def test_glassbox_overlays_reach_the_audit_effect_curves(data):
    res = _audit(data, steps=["baselines", "attributions", "effect_curves"]).run()
    assert res.steps["effect_curves"].status == "ran", res.steps["effect_curves"].label
    curves = res["effect_curves"]
    assert set(curves) >= {"asthma", "age"}
    for feat, curve in curves.items():
        drawn = set(curve.to_frame()["curve"])
        assert {"pd", "logistic", "tree"} <= drawn, (feat, drawn)
        assert curve.params["baselines"] == ["logistic", "tree"]


def test_audit_steps_is_the_step_list():
    t = cf.audit_steps()
    assert list(t.columns) == ["name", "title", "section", "tip", "needs"]
    assert list(t["name"]) == [s.name for s in STEPS]
    row = t.set_index("name").loc["leave_one_group_out"]
    assert row["needs"] == "train_fn, train, metadata_train"
    assert t.set_index("name").loc["comparison", "needs"] == "step:baselines"
    assert {s.section for s in STEPS} <= {sec.id for sec in _steps.SECTIONS}


@dataclasses.dataclass(frozen=True, eq=False)
class _PrevalenceResult(ResultMixin):
    table: pd.DataFrame

    def to_frame(self):
        return self.table

    def findings(self):
        return [Finding("note", "info", 4, "prevalence is known", subject="y")]

    def plot(self, ax=None):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.bar(["prevalence"], self.table["prevalence"])
        return fig


def _run_prevalence(ctx):
    return _PrevalenceResult(pd.DataFrame({"prevalence": [float(ctx.data.y.mean())],
                                           "n": [ctx.data.n_samples]}))


def test_a_step_entry_alone_adds_a_step(data, monkeypatch):
    entry = AuditStep("prevalence_check", "Prevalence check (new step)", "data", 4, (), (),
                      _run_prevalence)
    monkeypatch.setattr(_steps, "STEPS", (*_steps.STEPS, entry))
    res = _audit(data, steps=["data", "performance"]).run()
    assert res.steps["prevalence_check"].status == "skipped"  # not requested
    res = cf.Audit(data["model"], data["X_test"], data["y_test"], random_state=0,
                   verbose=False, n_boot=20, steps=["data", "prevalence_check"]).run()
    assert res.steps["prevalence_check"].status == "ran"
    assert "prevalence_check" in res.reproducibility["step_seeds"]
    assert "prevalence is known" in list(res.summary()["title"])
    html = res.to_html()
    assert "Prevalence check (new step)" in html
    assert html.index("Prevalence check (new step)") > html.index("Data description")
    assert cf.audit_steps()["name"].iloc[-1] == "prevalence_check"


def test_a_step_in_a_new_section_is_shown(data, monkeypatch):
    entry = AuditStep("extra", "An extra step", "extras", 3, (), (), _run_prevalence)
    monkeypatch.setattr(_steps, "STEPS", (*_steps.STEPS, entry))
    res = cf.Audit(data["model"], data["X_test"], data["y_test"], random_state=0,
                   verbose=False, n_boot=20, steps=["extra"]).run()
    html = res.to_html()
    assert "An extra step" in html and 'id="extras"' in html


def test_unmet_needs_skip_with_the_reason(data):
    res = cf.Audit(data["model"], data["X_test"], data["y_test"], random_state=0,
                   **FAST).run()
    assert res.steps["membership"].reason == "needs training data (X_train= and y_train=)"
    assert res.steps["comparison"].reason.startswith("needs the result of step 'baselines'")


def test_findings_are_deduplicated_by_key_not_text():
    class R:
        def __init__(self, fs):
            self.fs = fs

        def findings(self):
            return self.fs

    same_a = Finding("baseline_outperforms", "medium", 2, "logistic beats lr (q = 0.01)",
                     subject="auroc", model="lr", domain="overall")
    same_b = Finding("baseline_outperforms", "medium", 2, "logistic beats lr (q = 0.02, other "
                     "bootstrap)", subject="auroc", model="lr", domain="overall")
    other_domain = Finding("baseline_outperforms", "medium", 2, "logistic beats lr (q = 0.01)",
                           subject="auroc", model="lr", domain="site = north")
    twin_in_one_result = Finding("failing_slice", "low", 9, "slice", subject="age < 50")
    out = collect_findings({"comparison": R([same_a]),
                            "domains": {"site": R([same_b, other_domain]),
                                        "batch": R([same_b])},
                            "slices": R([twin_in_one_result, twin_in_one_result])}, {}, "lr")
    titles = [f.title for f in out]
    assert titles.count("logistic beats lr (q = 0.01)") == 2  # overall once + north
    assert not any("other bootstrap" in t for t in titles)
    assert titles.count("slice") == 2  # one result's own findings are all kept


def test_verdict_is_one_type(data):
    res = cf.Audit(data["model"], data["X_test"], data["y_test"], random_state=0,
                   steps=["performance"], **FAST).run()
    v = res.verdict()
    assert isinstance(v, cf.Verdict)
    assert v["level"] == v.level and v.text == str(v)
    assert res.to_dict()["verdict"]["level"] == v.level


def _result_classes():
    import importlib
    import pkgutil

    for m in pkgutil.walk_packages(cf.__path__, "confoundry."):
        importlib.import_module(m.name)

    def subs(c):
        for s in c.__subclasses__():
            yield s
            yield from subs(s)

    return sorted({c for c in subs(ResultMixin) if c.__module__.startswith("confoundry.")},
                  key=lambda c: c.__name__)


def test_one_result_surface():
    """Every result class: a name ending in Result, to_frame/plot/findings/_repr_html_, the
    generic to_dict (only AuditResult nests its steps' records), provenance in params, and
    summary() (where there is one) a method."""
    classes = _result_classes()
    assert len(classes) >= 20
    for c in classes:
        assert c.__name__.endswith("Result"), c
        for attr in ("to_frame", "plot", "findings", "_repr_html_", "to_dict"):
            assert callable(getattr(c, attr, None)), (c, attr)
        assert c.__name__ == "AuditResult" or "to_dict" not in c.__dict__, (
            f"{c.__name__} writes its own to_dict")
        fields = ({f.name for f in dataclasses.fields(c)} if dataclasses.is_dataclass(c)
                  else set())
        assert "params" in fields or isinstance(getattr(c, "params", None), property) or (
            "self.params" in __import__("inspect").getsource(c)), f"{c.__name__} has no params"
        assert "summary" not in fields, f"{c.__name__}.summary is a field, not summary()"


def test_old_names_warn_and_resolve():
    pairs = {"Attribution": cf.AttributionResult, "Agreement": cf.AgreementResult,
             "Baselines": cf.BaselinesResult, "ModelComparison": cf.ModelComparisonResult,
             "EffectCurve": cf.EffectCurveResult, "ShadowGlassBox": cf.ShadowGlassBoxResult}
    for old, new in pairs.items():
        with pytest.warns(DeprecationWarning, match=f"confoundry.{old} is deprecated.*"
                                                    f"{new.__name__}"):
            assert getattr(cf, old) is new
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        cf.NoSuchThing  # noqa: B018


def test_metric_names_accept_sklearn_spellings(data):
    res = _audit(data, steps=["baselines", "comparison"]).run()
    cmp = cf.compare_models({"lr": data["model"]}, data["X_test"], data["y_test"],
                            metrics=["roc_auc", "average_precision", "neg_log_loss"],
                            n_boot=30, random_state=0, verbose=False)
    assert list(cmp.table["metric"]) == ["auroc", "auprc", "log_loss"]
    assert res.steps["comparison"].status == "ran"


def test_overfitting_reads_the_test_side_from_the_panel(data):
    res = _audit(data, steps=["baselines", "performance", "overfitting"]).run()
    over = res["overfitting"]
    assert over.params["test_panel"] == sorted(["lr", "logistic", "tree"])
    perf = res["performance"].to_frame().set_index("metric")
    row = over.to_frame().query("model == 'lr' and metric == 'auroc'").iloc[0]
    assert row["test"] == perf.loc["auroc", "estimate"]
    assert (row["test_ci_low"], row["test_ci_high"]) == (perf.loc["auroc", "ci_low"],
                                                         perf.loc["auroc", "ci_high"])
