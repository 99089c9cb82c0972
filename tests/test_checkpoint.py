"""No lost work: checkpoints of finished steps, resume after SIGKILL or Ctrl-C, whole files."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import confoundry as cf  # noqa: E402
from confoundry._result import Finding, to_jsonable  # noqa: E402
from confoundry.audit import _serialize, _steps  # noqa: E402
from confoundry.audit._findings import iter_results  # noqa: E402
from test_audit import FAST, make_data, sk_train_fn, train_mlp  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    X, y, meta = make_data()
    # the site shifts an input, so the model's outputs depend on it beyond the label and every
    # step (the pathways too) has something to do and a result to checkpoint
    X = X.assign(bun=X["bun"] + 4.0 * (meta["site"] == "north"))
    tr, te = slice(0, 200), slice(200, None)
    return {"net": train_mlp(X.iloc[tr], y[tr]),
            "X_train": X.iloc[tr].reset_index(drop=True), "y_train": y[tr],
            "X_test": X.iloc[te].reset_index(drop=True), "y_test": y[te],
            "meta_test": meta.iloc[te].reset_index(drop=True),
            "meta_train": meta.iloc[tr].reset_index(drop=True)}


def full_audit(s, **kw):
    opts = {**FAST, "baseline_kinds": ("ebm", "logistic", "tree"), "random_state": 0,
            "n_permutations": 200, **kw}  # enough for a q-value below 0.05 (the pathways run)
    return cf.Audit(s["net"], s["X_test"], s["y_test"], metadata=s["meta_test"],
                    X_train=s["X_train"], y_train=s["y_train"],
                    expectations={"asthma": "increasing", "age": "increasing"},
                    train_fn=sk_train_fn, metadata_train=s["meta_train"], model_name="mlp",
                    **opts)


@pytest.fixture
def counted(monkeypatch):
    """Calls of every step's function while the test runs (the steps list is wrapped)."""
    calls: list[str] = []

    def wrap(st):
        def run(ctx, _st=st):
            calls.append(_st.name)
            return _st.run(ctx)

        run.__qualname__ = f"counted.{st.name}"
        return dataclasses.replace(st, run=run)

    monkeypatch.setattr(_steps, "STEPS", tuple(wrap(st) for st in _steps.STEPS))
    return calls


def _dicts(res):
    return json.dumps(res.to_dict()["results"], sort_keys=True)


def _equal(a, b, where="result"):
    """Deep equality of two results, field by field (arrays and frames exactly, NaN = NaN)."""
    assert type(a) is type(b), where
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=where)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, obj=where)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), where
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _equal(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _equal(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    elif hasattr(a, "__dict__") and not callable(a):
        _equal(vars(a), vars(b), where)
    else:
        assert a == b, where


# --------------------------------------------------------------- serializer
def test_every_result_class_of_a_full_audit_round_trips(setup, tmp_path):
    res = full_audit(setup).run()
    assert all(s.status == "ran" for s in res.steps.values()), res.steps_frame()
    classes = set()
    for i, (step, r) in enumerate(res.results.items()):
        folder = tmp_path / f"r{i}"
        _serialize.dump(r, folder)
        back = _serialize.load(folder)
        classes.add(type(r).__name__)
        pairs = [(r, back)] if hasattr(r, "to_frame") else []
        pairs += [(a, b) for (_, _, a), (_, _, b) in zip(iter_results({step: r}),
                                                         iter_results({step: back}))]
        for a, b in pairs:
            classes.add(type(a).__name__)
            if hasattr(a, "to_dict"):
                assert json.dumps(to_jsonable(b.to_dict()), sort_keys=True) == json.dumps(
                    to_jsonable(a.to_dict()), sort_keys=True), step
            if step != "baselines":  # fitted models: compared by what they predict below
                _equal(a, b, step)
    assert {"DataSummaryResult", "BaselinesResult", "MetricTableResult", "AttributionResult",
            "ShadowGlassBoxResult", "ProbeResult", "DomainResult", "SliceResult",
            "MembershipRiskResult", "LeaveOneGroupOutResult"} <= classes
    # the fitted baselines come back as working models, bit-equal in what they predict
    _serialize.dump(res["baselines"], tmp_path / "b")
    back = _serialize.load(tmp_path / "b")
    X = setup["X_test"]
    for name, m in res["baselines"].items():
        assert np.array_equal(back[name].predict_scores(X), m.predict_scores(X)), name
        assert np.array_equal(back[name].explain(X).values, m.explain(X).values), name


def test_serializer_keeps_dtypes_indexes_and_odd_values(tmp_path):
    frame = pd.DataFrame({
        "cat": pd.Categorical(["a", "b", "a"], categories=["b", "a"], ordered=True),
        "int": pd.array([1, None, 3], dtype="Int64"),
        "str": ["x", None, "z"],
        "f": [1.5, np.nan, np.inf],
        "when": pd.to_datetime(["2020-01-01", "2021-06-30", None]),
        "bin": pd.cut([0.1, 0.5, 0.9], [0, 0.3, 1]),
    }, index=pd.MultiIndex.from_tuples([("s", 1), ("s", 2), ("t", 1)], names=["site", "k"]))
    obj = {"frame": frame, 3: (np.float32(2.5), np.int64(-1), float("nan")),
           ("a", 1): {"nested": [np.array([[1, 2], [3, 4]], order="F"), None, True]},
           "obj": np.array([{"k": 1}, "s", 2.0], dtype=object),
           "finding": Finding("x", "high", 2, "title", evidence={"p": 0.01}),
           "s": frozenset({1, 2}), "series": pd.Series([1, 2], index=["u", "v"], name="n")}
    _serialize.dump(obj, tmp_path)
    back = _serialize.load(tmp_path)
    pd.testing.assert_frame_equal(back["frame"], frame)
    assert type(back[3][0]) is np.float32 and type(back[3][1]) is np.int64
    assert np.isnan(back[3][2])
    arr = back[("a", 1)]["nested"][0]
    assert arr.flags.f_contiguous and arr.tolist() == [[1, 2], [3, 4]]
    assert back["obj"].tolist() == [{"k": 1}, "s", 2.0]
    assert back["finding"] == obj["finding"] and back["s"] == frozenset({1, 2})
    pd.testing.assert_series_equal(back["series"], obj["series"])
    with open(tmp_path / "result.json") as fh:  # strict JSON, no pickle anywhere
        json.loads(fh.read(), parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    with np.load(tmp_path / "arrays.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_serializer_refuses_foreign_objects(tmp_path):
    class UserModel:
        def __init__(self):
            self.w = np.ones(3)

    with pytest.raises(_serialize.NotStorable, match="UserModel, which a checkpoint does not"):
        _serialize.dump({"user": UserModel()}, tmp_path / "a")
    with pytest.raises(_serialize.NotStorable, match="function"):
        _serialize.dump({"user": lambda x: x}, tmp_path / "a")
    # a tampered file naming a class outside confoundry/sklearn/interpret is not rebuilt
    _serialize.dump(Finding("x", "low", 1, "t"), tmp_path / "b")
    path = tmp_path / "b" / "result.json"
    doc = json.loads(path.read_text())
    doc["result"]["cls"] = "os:system"
    path.write_text(json.dumps(doc))
    with pytest.raises(_serialize.NotStorable, match="refusing"):
        _serialize.load(tmp_path / "b")
    # nor is an allowed package's class called, except scikit-learn's Cython tree
    doc["result"] = {"__t": "reduce", "cls": "sklearn.pipeline:Pipeline",
                     "args": {"__t": "tuple", "v": []}, "state": None}
    path.write_text(json.dumps(doc))
    with pytest.raises(_serialize.NotStorable, match="not rebuilt by calling it"):
        _serialize.load(tmp_path / "b")


# ------------------------------------------------------------------- resume
def test_rerun_loads_every_finished_step(setup, tmp_path, counted):
    audit = full_audit(setup)
    first = audit.run(checkpoint_dir=tmp_path)
    n_first = len(counted)
    assert n_first == sum(s.status == "ran" for s in first.steps.values()) > 10
    counted.clear()
    again = audit.run(checkpoint_dir=tmp_path)
    assert counted == []  # no step function ran
    ran = [s for s in again.steps.values() if s.status == "ran"]
    assert ran and all(s.from_checkpoint for s in ran)
    assert again.steps["probes"].label == "ran (from checkpoint)"
    assert _dicts(again) == _dicts(first)
    assert again.verdict() == first.verdict()
    assert [f.to_dict() for f in again.findings()] == [f.to_dict() for f in first.findings()]
    assert again.notes == first.notes
    html = again.to_html()
    assert "ran (from checkpoint)" in html
    # the reloaded baselines are working models: a step that needs them can still use them
    X = setup["X_test"]
    assert np.array_equal(again["baselines"]["tree"].predict_scores(X),
                          first["baselines"]["tree"].predict_scores(X))


def test_a_changed_option_or_input_invalidates_only_what_read_it(setup, tmp_path, counted):
    full_audit(setup).run(checkpoint_dir=tmp_path)
    counted.clear()
    full_audit(setup, n_permutations=41).run(checkpoint_dir=tmp_path)
    assert counted == ["probes", "pathways"]  # the only steps that read n_permutations
    counted.clear()
    res = full_audit(setup, baseline_kinds=("logistic", "tree")).run(checkpoint_dir=tmp_path)
    # the baselines, and every step that used them (directly or through the metric panel)
    assert {"baselines", "performance", "comparison", "attributions", "agreement", "domains",
            "overfitting", "membership"} <= set(counted)
    assert not {"data", "probes", "slices", "label_shuffle"} & set(counted)
    assert res.steps["probes"].from_checkpoint and not res.steps["comparison"].from_checkpoint
    counted.clear()
    s = dict(setup)
    s["y_test"] = 1 - setup["y_test"]  # other test labels: every step reading the test set
    full_audit(s).run(checkpoint_dir=tmp_path)
    assert "baselines" not in counted and {"data", "performance", "probes"} <= set(counted)
    counted.clear()
    full_audit(setup, random_state=1).run(checkpoint_dir=tmp_path)  # another seed: all
    assert set(counted) >= {"data", "baselines", "probes", "membership"}


def test_random_state_none_reuses_the_stored_seed(setup, tmp_path, counted):
    kw = dict(random_state=None)
    a = cf.Audit(setup["net"], setup["X_test"], setup["y_test"], metadata=setup["meta_test"],
                 steps=["data", "performance", "probes"], **FAST, **kw)
    first = a.run(checkpoint_dir=tmp_path)
    counted.clear()
    again = a.run(checkpoint_dir=tmp_path)
    assert counted == []
    assert again.reproducibility["base_seed"] == first.reproducibility["base_seed"]
    assert any("was reused" in n for n in again.notes)


def test_unstorable_result_is_recomputed_not_fatal(setup, tmp_path, monkeypatch):
    monkeypatch.setattr(_steps, "discover_slices", lambda *a, **k: lambda: None)
    a = cf.Audit(setup["net"], setup["X_test"], setup["y_test"], random_state=0,
                 steps=["data", "slices"], **FAST)
    res = a.run(checkpoint_dir=tmp_path)
    assert res.steps["slices"].status == "ran"
    assert any("'slices' was not stored in the checkpoint" in n for n in res.notes)
    again = a.run(checkpoint_dir=tmp_path)
    assert again.steps["data"].from_checkpoint and not again.steps["slices"].from_checkpoint


def test_damaged_entry_is_recomputed(setup, tmp_path, counted):
    a = cf.Audit(setup["net"], setup["X_test"], setup["y_test"], random_state=0,
                 steps=["data", "performance"], **FAST)
    a.run(checkpoint_dir=tmp_path)
    (entry,) = (tmp_path / "steps" / "performance").iterdir()
    (entry / "arrays.npz").write_bytes(b"garbage")
    counted.clear()
    res = a.run(checkpoint_dir=tmp_path)
    assert counted == ["performance"] and res.steps["performance"].status == "ran"


def test_checkpoint_dir_is_validated(setup, tmp_path):
    a = cf.Audit(setup["net"], setup["X_test"], setup["y_test"], random_state=0,
                 steps=["data"], **FAST)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="checkpoint_dir=.* is not valid; expected a folder"):
        a.run(checkpoint_dir=tmp_path / "f")
    with pytest.raises(TypeError, match="checkpoint_dir=3 is not valid"):
        a.run(checkpoint_dir=3)


# ----------------------------------------------------------- interruptions
def _interrupt_at(monkeypatch, name):
    def wrap(st):
        if st.name != name:
            return st

        def run(ctx):
            raise KeyboardInterrupt

        return dataclasses.replace(st, run=run)

    monkeypatch.setattr(_steps, "STEPS", tuple(wrap(st) for st in _steps.STEPS))


def test_keyboard_interrupt_keeps_the_finished_steps(setup, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        _interrupt_at(m, "probes")
        res = full_audit(setup).run(checkpoint_dir=tmp_path)
    names = [st.name for st in _steps.STEPS]
    cut = names.index("probes")
    assert all(res.steps[n].status == "ran" for n in names[:cut])
    assert all(res.steps[n].status == "interrupted" for n in names[cut:])
    assert res.steps["probes"].reason.startswith("interrupted (KeyboardInterrupt) while")
    assert "attributions" in res.results and "probes" not in res.results
    v = res.verdict()
    assert v.text.startswith("The audit was interrupted")
    assert set(v.questions("interrupted")) == {st.question for st in _steps.STEPS[cut:]}
    html = res.to_html()
    assert "the audit was interrupted" in html
    resumed = full_audit(setup).run(checkpoint_dir=tmp_path)
    assert all(resumed.steps[n].from_checkpoint for n in names[:cut])
    assert resumed.steps["probes"].status == "ran" and not resumed.steps["probes"].from_checkpoint


def test_keyboard_interrupt_without_checkpoint_propagates(setup, monkeypatch):
    import torch

    _interrupt_at(monkeypatch, "performance")
    before = torch.are_deterministic_algorithms_enabled()
    with pytest.raises(KeyboardInterrupt):
        cf.Audit(setup["net"], setup["X_test"], setup["y_test"], random_state=0,
                 steps=["data", "performance"], **FAST).run()
    assert torch.are_deterministic_algorithms_enabled() == before


KILLED_AUDIT = textwrap.dedent('''
    import dataclasses, json, os, signal, sys
    import numpy as np, pandas as pd
    from sklearn.linear_model import LogisticRegression
    import confoundry as cf
    from confoundry.audit import _steps

    log, folder, kill_at = sys.argv[1:4]

    def counted(st):
        def run(ctx):
            with open(log, "a") as fh:
                fh.write(st.name + "\\n")
            if st.name == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return st.run(ctx)
        run.__qualname__ = "counted." + st.name
        return dataclasses.replace(st, run=run)

    _steps.STEPS = tuple(counted(st) for st in _steps.STEPS)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    y = (X["a"] + rng.normal(size=300) > 0).astype(int).to_numpy()
    meta = pd.DataFrame({"site": rng.choice(["n", "s"], 300)})
    model = LogisticRegression().fit(X[:150], y[:150])
    res = cf.Audit(model, X[150:].reset_index(drop=True), y[150:],
                   metadata=meta[150:].reset_index(drop=True), X_train=X[:150], y_train=y[:150],
                   expectations={"a": "increasing"}, random_state=0, verbose=False, n_boot=30,
                   n_permutations=30, max_attribution_rows=40,
                   baseline_kinds=("logistic", "tree")).run(checkpoint_dir=folder)
    print(json.dumps({k: [s.status, s.from_checkpoint] for k, s in res.steps.items()}))
''')


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_sigkill_then_rerun_recomputes_no_finished_step(tmp_path):
    script = tmp_path / "audit_job.py"
    script.write_text(KILLED_AUDIT)
    folder, log1, log2, log3 = (tmp_path / n for n in ("ckpt", "log1", "log2", "log3"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    kill_at = "domains"

    def job(log, kill):
        # its own session, output to files: worker processes the job started (joblib's) are
        # ended with it and cannot hold a pipe open after the SIGKILL
        out, err = tmp_path / f"{log.name}.out", tmp_path / f"{log.name}.err"
        with open(out, "w") as fo, open(err, "w") as fe:
            proc = subprocess.Popen([sys.executable, str(script), str(log), str(folder), kill],
                                    stdout=fo, stderr=fe, env=env, start_new_session=True)
            try:
                code = proc.wait(timeout=600)
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return subprocess.CompletedProcess(proc.args, code, out.read_text(), err.read_text())

    killed = job(log1, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    started = log1.read_text().split()
    finished = started[:-1]
    assert started[-1] == kill_at and len(finished) >= 5  # k steps had finished
    done = job(log2, "none")
    assert done.returncode == 0, done.stderr[-2000:]
    recomputed = log2.read_text().split()
    status = json.loads(done.stdout.strip().splitlines()[-1])
    # a step that skipped itself (the pathways: nothing to trace) keeps no checkpoint and only
    # re-checks its skip; every step that ran is loaded, never recomputed
    skipped = {n for n, v in status.items() if v[0] == "skipped"}
    assert not (set(recomputed) & set(finished)) - skipped, recomputed
    assert kill_at in recomputed
    assert all(status[n] == ["ran", True] for n in finished if n not in skipped)
    assert status[kill_at] == ["ran", False]
    again = job(log3, "none")  # a third run computes nothing (only re-checks its skips)
    assert again.returncode == 0, again.stderr[-2000:]
    rerun = log3.read_text().split() if log3.exists() else []
    status = json.loads(again.stdout.strip().splitlines()[-1])
    assert all(status[n][0] == "skipped" for n in rerun), (rerun, status)
    assert all(v == ["ran", True] for v in status.values() if v[0] == "ran")
