"""AuditData: alignment, inference, and clear errors for bad input."""

import re

import numpy as np
import pandas as pd
import pytest
import torch

from confoundry.data import AuditData


def _X(n=6):
    return pd.DataFrame({"age": np.linspace(20.5, 80, n), "asthma": [0, 1] * (n // 2),
                         "stage": [0, 1, 2] * (n // 3)})


def test_infers_kinds_task_and_keeps_names():
    d = AuditData(_X(), [0, 1, 0, 1, 1, 0], metadata=pd.DataFrame({"site": list("aabbcc")}))
    assert d.feature_names == ["age", "asthma", "stage"]
    assert d.feature_kinds == {"age": "continuous", "asthma": "binary", "stage": "categorical"}
    assert d.task == "binary" and d.prevalence == 0.5
    assert d.metadata_kinds == {"site": "categorical"}
    assert list(d.metadata.index) == list(d.X.index)


@pytest.mark.parametrize("y, task", [([0, 1, 2, 0, 1, 2], "multiclass"),
                                     ([0.1, 2.5, 3.3, 1.0, 0.0, 7.0], "regression"),
                                     ([True, False] * 3, "binary")])
def test_task_inference(y, task):
    assert AuditData(_X(), y).task == task


def test_overrides():
    d = AuditData(_X(), [0, 1, 2, 0, 1, 2], task="regression",
                  feature_kinds={"stage": "continuous"})
    assert d.task == "regression" and d.feature_kinds["stage"] == "continuous"


def test_ndarray_and_tensor_inputs_get_names():
    a = np.random.default_rng(0).normal(size=(5, 2))
    d = AuditData(a, [0, 1, 0, 1, 0], feature_names=["g1", "g2"])
    assert d.feature_names == ["g1", "g2"]
    t = AuditData(torch.tensor(a, dtype=torch.float32, requires_grad=True), [0, 1, 0, 1, 0])
    assert t.feature_names == ["x0", "x1"] and t.X.dtypes.iloc[0] == np.float64


def test_images_are_kept_as_arrays():
    imgs = torch.zeros(4, 1, 8, 8)
    d = AuditData(imgs, [0, 1, 0, 1])
    assert not d.is_tabular and d.X.shape == (4, 1, 8, 8)


def test_user_data_not_mutated():
    X = _X()
    before = X.copy()
    meta = pd.DataFrame({"site": list("aabbcc")})
    d = AuditData(X, [0, 1, 0, 1, 1, 0], metadata=meta)
    d.X.iloc[0, 0] = -1
    d.metadata.iloc[0, 0] = "z"
    pd.testing.assert_frame_equal(X, before)
    assert meta.iloc[0, 0] == "a"


def test_subset_and_fingerprint():
    d = AuditData(_X(), [0, 1, 0, 1, 1, 0], metadata=pd.DataFrame({"site": list("aabbcc")}))
    s = d.subset(np.array([True, False, True, False, True, False]))
    assert s.n_samples == 3 and list(s.y) == [0, 0, 1] and len(s.metadata) == 3
    assert d.fingerprint() == AuditData(_X(), [0, 1, 0, 1, 1, 0], metadata=pd.DataFrame(
        {"site": list("aabbcc")})).fingerprint()
    assert d.fingerprint() != s.fingerprint()


X6 = _X()
Y6 = [0, 1, 0, 1, 1, 0]
META = pd.DataFrame({"site": list("aabbcc")})

BAD_INPUTS = [
    # (id, kwargs, exception, regex the message must match)
    ("X is None", dict(X=None, y=Y6), TypeError, r"X is None; expected"),
    ("X is a string", dict(X="data.csv", y=Y6), TypeError, r"X has type str; expected"),
    ("X is a Series", dict(X=X6["age"], y=Y6), TypeError, r"X is a pandas Series"),
    ("X is 1-D", dict(X=np.arange(6.0), y=Y6), ValueError, r"X has shape \(6,\); expected at least 2"),
    ("X has zero rows", dict(X=X6.iloc[:0], y=[]), ValueError, r"zero rows"),
    ("X has one row", dict(X=X6.iloc[:1], y=[1]), ValueError, r"a single sample"),
    ("X has zero columns", dict(X=np.zeros((6, 0)), y=Y6), ValueError, r"zero columns"),
    ("NaN in X", dict(X=X6.assign(age=[np.nan, 1, 2, 3, 4, 5]), y=Y6), ValueError,
     r"X contains 1 NaN value\(s\) in column\(s\) \['age'\]"),
    ("inf in X", dict(X=X6.assign(stage=[np.inf, 1, 2, 0, 1, 2]), y=Y6), ValueError,
     r"X contains 1 infinite value\(s\) in column\(s\) \['stage'\]"),
    ("string column in X", dict(X=X6.assign(sex=list("mfmfmf")), y=Y6), TypeError,
     r"X has non-numeric column\(s\) \{'sex'"),
    ("object ndarray", dict(X=np.array([["a", "b"]] * 6, dtype=object), y=Y6), TypeError,
     r"X is an ndarray of dtype object"),
    ("duplicate names", dict(X=pd.DataFrame(np.zeros((6, 2)), columns=["a", "a"]), y=Y6),
     ValueError, r"duplicate feature names \['a'\]"),
    ("names clash as strings", dict(X=pd.DataFrame(np.ones((6, 2)), columns=[1, "1"]), y=Y6),
     ValueError, r"not unique once turned into strings"),
    ("empty feature name", dict(X=np.ones((6, 2)), y=Y6, feature_names=["a", " "]), ValueError,
     r"feature names at position\(s\) \[1\] are empty"),
    ("feature_names wrong length", dict(X=np.ones((6, 2)), y=Y6, feature_names=["a"]),
     ValueError, r"feature_names has 1 names but X has 2 columns"),
    ("feature_names differ from DataFrame", dict(X=X6, y=Y6, feature_names=["a", "b", "c"]),
     ValueError, r"differ from X's columns"),
    ("y too short", dict(X=X6, y=[0, 1, 0]), ValueError, r"y has 3 values but X has 6 rows"),
    ("y 2-D", dict(X=X6, y=np.zeros((6, 2))), ValueError, r"y has shape \(6, 2\); expected a 1-D"),
    ("NaN in y", dict(X=X6, y=[0, 1, np.nan, 1, 0, 1]), ValueError, r"y contains 1 NaN"),
    ("inf in y", dict(X=X6, y=[0.5, 1, np.inf, 1, 0, 1]), ValueError, r"y contains 1 infinite"),
    ("single class", dict(X=X6, y=[1] * 6), ValueError, r"y has a single class \(1\)"),
    ("labels outside 0/1", dict(X=X6, y=[1, 2, 1, 2, 1, 2], task="binary"), ValueError,
     r"y has labels \[2\] outside \{0, 1\} for task='binary'"),
    ("labels -1/1", dict(X=X6, y=[-1, 1, -1, 1, 1, -1]), ValueError, r"labels \[-1\] outside"),
    ("string labels", dict(X=X6, y=list("yynnyn")), TypeError, r"non-numeric labels"),
    ("non-integer class labels", dict(X=X6, y=[0, 0.5, 1, 0, 1, 0], task="binary"), ValueError,
     r"non-integer values"),
    ("multiclass gaps", dict(X=X6, y=[0, 2, 5, 0, 2, 5], task="multiclass"), ValueError,
     r"consecutive integers 0..K-1"),
    ("constant regression target", dict(X=X6, y=[1.5] * 6, task="regression"), ValueError,
     r"y is constant"),
    ("unknown task", dict(X=X6, y=Y6, task="classification"), ValueError,
     r"task='classification' is not valid"),
    ("y index misaligned", dict(X=X6.set_axis(list("abcdef")), y=pd.Series(Y6, index=list("uvwxyz"))),
     ValueError, r"y's index does not match X's index"),
    ("metadata not a DataFrame", dict(X=X6, y=Y6, metadata=np.zeros((6, 1))), TypeError,
     r"metadata has type ndarray"),
    ("metadata wrong length", dict(X=X6, y=Y6, metadata=META.iloc[:4]), ValueError,
     r"metadata has 4 rows but X has 6"),
    ("metadata index misaligned", dict(X=X6, y=Y6, metadata=META.set_axis(range(10, 16))),
     ValueError, r"metadata's index does not match X's index"),
    ("metadata reordered", dict(X=X6, y=Y6, metadata=META.iloc[::-1]), ValueError,
     r"different order"),
    ("metadata one level", dict(X=X6, y=Y6, metadata=pd.DataFrame({"scanner": ["A"] * 6})),
     ValueError, r"metadata column 'scanner' has a single level \('A'\)"),
    ("metadata missing values", dict(X=X6, y=Y6, metadata=pd.DataFrame(
        {"site": ["a", None, "b", "b", "a", "a"]})), ValueError,
     r"metadata column 'site' has 1 missing value"),
    ("metadata duplicate columns", dict(X=X6, y=Y6, metadata=pd.DataFrame(
        [["a", "b"]] * 3 + [["b", "a"]] * 3, columns=["s", "s"])), ValueError,
     r"duplicate column names \['s'\]"),
    ("metadata no columns", dict(X=X6, y=Y6, metadata=pd.DataFrame(index=X6.index)), ValueError,
     r"metadata has no columns"),
    ("feature_kinds unknown feature", dict(X=X6, y=Y6, feature_kinds={"weight": "binary"}),
     ValueError, r"feature_kinds names 'weight', which is not a feature"),
    ("feature_kinds unknown kind", dict(X=X6, y=Y6, feature_kinds={"age": "ordinal"}),
     ValueError, r"feature_kinds\['age'\]='ordinal' is not valid"),
    ("complex tensor", dict(X=torch.zeros(6, 2, dtype=torch.complex64), y=Y6), TypeError,
     r"complex tensor"),
]


@pytest.mark.parametrize("kwargs, exc, pattern", [b[1:] for b in BAD_INPUTS],
                         ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_a_clear_error(kwargs, exc, pattern):
    kwargs = dict(kwargs)
    X = kwargs.pop("X")
    with pytest.raises(exc, match=pattern) as info:
        AuditData(X, **kwargs)
    msg = str(info.value)
    # every message says what was expected (or how to fix it)
    assert re.search(r"expected|use |pass |drop", msg), msg


def test_at_least_twenty_distinct_bad_inputs():
    assert len({b[0] for b in BAD_INPUTS}) >= 20
