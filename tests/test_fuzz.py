"""Fuzz the public functions with random shapes, dtypes, NaN/inf patterns, label encodings and
metadata kinds (issue 18).

Every call either succeeds with finite, correctly shaped results, or raises ``ValueError`` /
``TypeError`` from confoundry's own code (the traceback's last frame is in the package, or the
message names an argument). Any other exception (``IndexError``, ``KeyError``,
``AssertionError``, ``ZeroDivisionError`` ...) escapes and fails the test with the example.

The examples are derandomised (the same ones on every run, so CI is reproducible) and small;
together the tests draw well over 500 examples in a few seconds of the suite's time.
"""

from __future__ import annotations

import os
import re
import traceback
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import confoundry as cf
from confoundry import stats

PACKAGE = os.path.dirname(cf.__file__)


def fuzz(max_examples: int) -> settings:
    """Reproducible settings: derandomised, no example database, no deadline."""
    return settings(deadline=None, derandomize=True, database=None, max_examples=max_examples,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

LABELS = ("01", "pm1", "12", "strings", "floats01", "bool", "three", "continuous", "one_class",
          "nan", "inf")
META = ("strings", "ints", "floats", "one_level", "unique", "nan", "bool")
FEATURES = ("float", "int", "bool", "object", "nan", "inf", "constant")


# ---------------------------------------------------------------------- strategies
def _labels(kind: str, n: int, rng: np.random.Generator) -> Any:
    b = rng.integers(0, 2, n)
    if n >= 2:
        b[:2] = [0, 1]  # both classes, unless the kind says otherwise
    if kind == "01":
        return b
    if kind == "pm1":
        return 2 * b - 1
    if kind == "12":
        return b + 1
    if kind == "strings":
        return np.where(b == 1, "case", "control").astype(object)
    if kind == "floats01":
        return b.astype(float)
    if kind == "bool":
        return b.astype(bool)
    if kind == "three":
        return rng.integers(0, 3, n)
    if kind == "continuous":
        return rng.normal(size=n)
    if kind == "one_class":
        return np.ones(n, dtype=int)
    y = b.astype(float)
    y[rng.integers(0, n)] = np.nan if kind == "nan" else np.inf
    return y


def _feature(kind: str, n: int, rng: np.random.Generator) -> Any:
    if kind == "float":
        return rng.normal(size=n)
    if kind == "int":
        return rng.integers(0, 5, n)
    if kind == "bool":
        return rng.random(n) < 0.5
    if kind == "object":
        return rng.choice(["a", "b", "c"], n).astype(object)
    if kind == "constant":
        return np.ones(n)
    x = rng.normal(size=n)
    x[rng.integers(0, n)] = np.nan if kind == "nan" else np.inf
    return x


def _meta(kind: str, n: int, rng: np.random.Generator) -> Any:
    if kind == "strings":
        return rng.choice(["site A", "site B", "site C"], n).astype(object)
    if kind == "ints":
        return rng.integers(0, 3, n)
    if kind == "floats":
        return rng.normal(size=n)
    if kind == "one_level":
        return np.full(n, "only")
    if kind == "unique":
        return np.array([f"patient {i}" for i in range(n)], dtype=object)
    if kind == "bool":
        return rng.random(n) < 0.5
    m = rng.normal(size=n)
    m[rng.integers(0, n)] = np.nan
    return m


#: what AuditData takes as it is (-1/1, 1/2 and string labels are refused with a clear error,
#: so they are drawn among the bad inputs)
CLEAN_LABELS = ("01", "floats01", "bool", "three", "continuous")
CLEAN_META = ("strings", "ints", "floats", "bool")
CLEAN_FEATURES = ("float", "int", "bool")


def _scores(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "multiclass":
        return rng.dirichlet(np.ones(3), n)
    if kind == "regression":
        return rng.normal(size=n)
    s = rng.random(n)
    if kind == "logit":
        return rng.normal(0, 3, n)
    if kind == "nan" and n:
        s[0] = np.nan
    elif kind == "short":
        return s[: max(n - 1, 0)]
    elif kind == "int":
        return rng.integers(0, 2, n)
    return s


@st.composite
def cases(draw: Any, *, max_n: int = 40) -> dict[str, Any]:
    """A small random data set: features, labels, metadata and scores. Three cases in four
    are well formed (so the calls get past the door and into the statistics); the fourth
    draws every kind of bad input."""
    bad = draw(st.integers(0, 3)) == 0
    n = draw(st.integers(1, max_n) if bad else st.integers(6, max_n))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    kinds = draw(st.lists(st.sampled_from(FEATURES if bad else CLEAN_FEATURES),
                          min_size=0 if bad else 1, max_size=3))
    X = pd.DataFrame({f"f{j}": _feature(k, n, rng) for j, k in enumerate(kinds)},
                     index=range(n))
    if draw(st.booleans()) and all(k in ("float", "int", "bool", "constant") for k in kinds):
        X = X.to_numpy(dtype=float)  # an array as often as a frame
    label = draw(st.sampled_from(LABELS if bad else CLEAN_LABELS))
    y = _labels(label, n, rng)
    meta_kinds = draw(st.lists(st.sampled_from(META if bad else CLEAN_META), min_size=1,
                               max_size=2))
    meta = pd.DataFrame({f"m{j}": _meta(k, n, rng) for j, k in enumerate(meta_kinds)})
    natural = {"three": "multiclass", "continuous": "regression"}.get(label, "prob")
    score_kind = draw(st.sampled_from(("prob", "logit", "nan", "multiclass", "short", "int",
                                       "regression"))) if bad else natural
    task = draw(st.sampled_from((None, "binary", "multiclass", "regression"))) if bad else None
    return {"n": n, "X": X, "y": y, "label": label, "meta": meta, "meta_kinds": meta_kinds,
            "scores": _scores(score_kind, n, rng), "score_kind": score_kind, "task": task,
            "seed": seed, "bad": bad}


# ----------------------------------------------------------------------- the oracle
def _names_an_argument(message: str, arguments: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<![\w.]){re.escape(a)}(?![\w])", message) for a in arguments)


def outcome(call: Any, arguments: tuple[str, ...]) -> Any:
    """``call()``; a ValueError/TypeError is accepted (and None returned) when it comes from
    confoundry's own code or names an argument; anything else propagates."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()
    except (ValueError, TypeError) as e:
        last = traceback.extract_tb(e.__traceback__)[-1]
        ours = os.path.abspath(last.filename).startswith(PACKAGE)
        assert ours or _names_an_argument(str(e), arguments), (
            f"{type(e).__name__} from {last.filename}:{last.lineno} ({last.name}) names no "
            f"argument of {arguments}: {e}")
        return None


def finite(a: Any) -> bool:
    return bool(np.all(np.isfinite(np.asarray(a, dtype=float))))


def no_inf(frame: pd.DataFrame) -> bool:
    num = frame.select_dtypes(include="number").to_numpy(dtype=float)
    return not np.isinf(num).any()


def _data(c: dict[str, Any]) -> Any:
    """An AuditData of the case, or None where its inputs are refused (as they must be)."""
    return outcome(lambda: cf.AuditData(c["X"], c["y"], c["meta"], task=c["task"]),
                   ("X", "y", "metadata", "task"))


# -------------------------------------------------------------------------- tests
@fuzz(150)
@given(cases())
def test_audit_data(c):
    data = _data(c)
    if data is None:
        return
    assert data.n_samples == c["n"] and data.task in ("binary", "multiclass", "regression")
    assert finite(data.y)
    if data.is_tabular:
        assert data.values.shape == (c["n"], len(data.feature_names)) and finite(data.values)
    assert list(data.metadata.columns) == list(c["meta"].columns)
    if data.task == "binary":
        assert set(np.unique(data.y)) <= {0, 1}
    if c["label"] in ("nan", "inf"):
        pytest.fail(f"labels with {c['label']} were accepted")


def _callable_model(width: int, kind: str) -> Any:
    def f(x):
        x = pd.DataFrame(np.asarray(x, dtype=object).reshape(len(x), -1)).apply(
            pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        n = len(x)
        z = np.nan_to_num(x).sum(axis=1) if x.ndim == 2 else np.zeros(n)
        out = np.column_stack([z + k for k in range(width)]) if width else z
        if kind == "prob":
            out = 1 / (1 + np.exp(-out))
        elif kind == "nan" and n:
            out = out.astype(float)
            out.flat[0] = np.nan
        return out
    return f


@fuzz(120)
@given(cases(), st.sampled_from((0, 1, 2, 3)), st.sampled_from(("prob", "logit", "nan")),
       st.sampled_from(("auto", "probabilities", "logits")))
def test_as_model_predict_scores(c, width, kind, output):
    adapter = outcome(lambda: cf.as_model(_callable_model(width, kind), task=c["task"] or
                                          "binary", output=output), ("obj", "output", "task"))
    if adapter is None:
        return
    s = outcome(lambda: adapter.predict_scores(c["X"]), ("X", "output", "task", "model"))
    if s is None:
        return
    assert len(s) == c["n"] and finite(s)
    if (c["task"] or "binary") == "binary":
        assert s.shape == (c["n"],) and np.all((s >= 0) & (s <= 1))


@fuzz(120)
@given(cases(), st.sampled_from(("binary", "multiclass", "regression")))
def test_bootstrap_metrics(c, task):
    y = c["y"]
    res = outcome(lambda: stats.bootstrap_metrics(y, c["scores"], task=task, n_boot=20,
                                                  random_state=0),
                  ("y", "scores", "task", "metrics"))
    if res is None:
        return
    assert len(res) >= 1 and {"metric", "estimate", "ci_low", "ci_high"} <= set(res.columns)
    assert no_inf(res)
    assert (res["n"] == c["n"]).all()


@fuzz(100)
@given(cases(), st.sampled_from(("m0", "f0", "masks", "array")))
def test_split_domains(c, by_kind):
    data = _data(c)
    if data is None:
        return
    by: Any = by_kind
    if by_kind == "masks":
        by = {"first": np.arange(c["n"]) < c["n"] // 2, "all": np.ones(c["n"], bool)}
    elif by_kind == "array":
        by = c["meta"]["m0"].to_numpy()
    res = outcome(lambda: cf.split_domains(None, data, None, by=by, scores=c["scores"],
                                           baseline_scores={"b": c["scores"]}, n_boot=20,
                                           random_state=0, verbose=False),
                  ("by", "scores", "baseline_scores", "X", "y", "metadata"))
    if res is None:
        return
    assert res.by_domain["n"].sum() >= c["n"] or by_kind == "masks"
    assert no_inf(res.by_model) and no_inf(res.comparison)
    assert res.by_domain["testable"].dtype == bool
    for f in res.findings():
        assert f.domain in set(res.by_domain.loc[res.by_domain["testable"], "domain"]) | {
            "overall"}
    res.difference()
    res.to_dict()


@fuzz(100)
@given(cases(max_n=60), st.sampled_from(("auto", "log_loss", "brier", "squared")))
def test_discover_slices(c, error):
    data = _data(c)
    if data is None:
        return
    res = outcome(lambda: cf.discover_slices(None, data, None, scores=c["scores"], error=error,
                                             random_state=0, min_support=0.05, verbose=False),
                  ("X", "scores", "error", "metadata", "y"))
    if res is None:
        return
    t = res.table
    assert no_inf(t) and np.isfinite(res.overall_error)
    assert (t.loc[t["confirmed"], "n"] >= 20).all() and not (t["confirmed"] & ~t["testable"]).any()
    for i in range(len(t)):
        assert res.mask(i).shape == (c["n"],)
    res.findings()


@fuzz(80)
@given(cases(), st.integers(1, 3))
def test_compare_models(c, n_models):
    rng = np.random.default_rng(c["seed"])
    s = c["scores"]
    scores = {"ref": s, **{f"m{k}": np.clip(np.asarray(s, dtype=float) + rng.normal(0, 0.1,
                                                                                    np.shape(s)),
                                            0, 1) for k in range(1, n_models)}}
    res = outcome(lambda: cf.compare_models(None, None, c["y"], scores=scores, n_boot=20,
                                            random_state=0, task=c["task"], verbose=False),
                  ("models", "scores", "y_test", "task", "X_test"))
    if res is None:
        return
    assert res.models == list(scores)
    assert no_inf(res.to_frame())
    res.findings()


@fuzz(80)
@given(cases())
def test_probe_confounders(c):
    s = c["scores"]
    res = outcome(lambda: cf.probe_confounders(None, c["X"], c["y"], c["meta"], scores=s,
                                               n_permutations=20, random_state=0,
                                               verbose=False),
                  ("model", "X", "y", "metadata", "scores", "layer"))
    if res is None:
        return
    t = res.to_frame()
    assert len(t) >= 1 and no_inf(t)
    res.findings()


@st.composite
def attributions(draw: Any) -> tuple[Any, Any]:
    """Tabular attributions and a grouping; one case in four draws bad values or groups."""
    bad = draw(st.integers(0, 3)) == 0
    n = draw(st.integers(1, 40) if bad else st.integers(6, 40))
    d = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.normal(size=(n, d))
    pattern = draw(st.sampled_from(("none", "nan", "inf", "zeros") if bad else ("none", "zeros")))
    if pattern == "nan":
        values[0, 0] = np.nan
    elif pattern == "inf":
        values[0, 0] = np.inf
    elif pattern == "zeros":
        values[:] = 0.0
    by_kind = draw(st.sampled_from(("bool", "strings", "ints", "one_level", "unique", "short",
                                    "mask_dict", "floats") if bad else
                                   ("bool", "strings", "ints", "floats")))
    two = np.arange(n) % 2 == 0  # both groups of at least 2 rows when n >= 4
    if by_kind == "bool":
        by: Any = rng.permutation(two)
    elif by_kind == "strings":
        by = np.where(rng.permutation(two), "a", "b").astype(object)
    elif by_kind == "ints":
        by = rng.permutation(two).astype(int) + (0 if not bad else rng.integers(0, 2, n))
    elif by_kind == "one_level":
        by = np.zeros(n, dtype=int)
    elif by_kind == "unique":
        by = np.arange(n)
    elif by_kind == "short":
        by = rng.random(max(n - 1, 0)) < 0.5
    elif by_kind == "mask_dict":
        by = {"x": rng.random(n) < 0.5}
    else:
        by = np.where(rng.permutation(two), 0.5, -1.25) if not bad else rng.normal(size=n)
    return cf.AttributionResult(values=values, base_values=0.0, data=values,
                                feature_names=[f"f{j}" for j in range(d)], method="fuzz"), by


@fuzz(100)
@given(attributions(), st.sampled_from(("mean", "mean_abs", "median")))
def test_contrast_attributions(case, statistic):
    attr, by = case
    res = outcome(lambda: cf.contrast_attributions(attr, by, n_permutations=20, n_boot=20,
                                                   random_state=0, statistic=statistic),
                  ("attribution", "by", "statistic", "n_permutations", "n_boot"))
    if res is None:
        return
    t = res.to_frame()
    assert len(t) >= 1 and no_inf(t)
    res.findings()


# ------------------------------------------- what the fuzz found in files of other owners
def test_fixed_three_outputs_on_a_binary_task():
    adapter = cf.as_model(lambda x: np.column_stack([np.zeros(len(x))] * 3), task="binary")
    try:
        s = adapter.predict_scores(pd.DataFrame({"f0": [0.1, 0.2]}))
    except ValueError as exc:
        assert "3 outputs per row, but the task is 'binary'" in str(exc)
        return
    raise AssertionError(f"a 3-output model on a binary task gave scores of shape {s.shape}")


def test_fixed_bootstrap_metrics_multiclass_with_one_dimensional_scores():
    with pytest.raises(ValueError, match="scores"):
        stats.bootstrap_metrics(np.array([1]), np.array([0.27]), task="multiclass", n_boot=20,
                                random_state=0)


def test_fixed_bootstrap_metrics_infinite_label():
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="y"):
        stats.bootstrap_metrics(np.array([np.inf]), np.array([0.27]), task="binary",
                                n_boot=20, random_state=0)


def test_fixed_bootstrap_metrics_binary_with_three_columns():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="scores"):
        stats.bootstrap_metrics(np.array([1, 0, 1, 0, 1, 0]), rng.dirichlet(np.ones(3), 6),
                                task="binary", n_boot=20, random_state=0)


def test_fixed_logits_declared_as_probabilities():
    adapter = cf.as_model(lambda x: np.column_stack([np.full(len(x), 1.1), np.full(len(x), 2.3)]),
                          task="binary", output="probabilities")
    try:
        s = adapter.predict_scores(pd.DataFrame({"f0": [0.1, 0.2]}))
    except ValueError as exc:
        assert "output='probabilities'" in str(exc) and "outside [0, 1]" in str(exc)
        return
    raise AssertionError(f"values outside [0, 1] were taken as probabilities: {s}")
