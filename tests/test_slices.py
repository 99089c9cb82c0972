"""discover_slices: calibration and power by simulation, the lattice, the result surface."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from confoundry.domains import SliceResult, discover_slices  # noqa: E402
from confoundry.domains._slices import _lattice  # noqa: E402

N_SIM = 50


def _cohort(seed, *, planted, n=4000, base=0.1, factor=3.0):
    """Six features and a site; errors independent of everything except, when ``planted``,
    a slice ``asthma = 1 AND age in its top quartile`` (about 5% of rows) with ``factor`` x
    the base error rate."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "asthma": (rng.random(n) < 0.2).astype(float),
        "smoker": rng.integers(0, 2, n).astype(float),
        "age": rng.uniform(20, 90, n),
        "bmi": rng.normal(27, 4, n),
        "bun": rng.gamma(2, 8, n),
        "hr": rng.normal(80, 10, n),
    })
    meta = pd.DataFrame({"site": rng.choice(["a", "b", "c"], n)})
    y = rng.integers(0, 2, n)
    bad = ((X["asthma"] == 1) & (X["age"] >= X["age"].quantile(0.75))).to_numpy()
    wrong = rng.random(n) < np.where(bad & planted, base * factor, base)
    s = np.clip(np.where(wrong, 1 - y, y) * 0.6 + 0.2 + rng.normal(0, 0.05, n), 0, 1)
    return X, y, meta, s, bad


def _describes_planted(res, bad):
    c = res.confirmed
    if len(c) == 0 or c.loc[0, "n_conditions"] != 2:
        return False
    conds = c.loc[0, "rule"].split(" AND ")
    if conds[0] != "asthma = 1" or not conds[1].startswith("age >= "):
        return False
    m = res.mask(0)
    return (m & bad).sum() / (m | bad).sum() > 0.8


def test_null_no_confirmed_slice_in_90_percent():
    clean = 0
    for seed in range(N_SIM):
        X, y, meta, s, _ = _cohort(seed, planted=False)
        res = discover_slices(None, X, y, metadata=meta, scores=s, random_state=seed)
        clean += not res.table["confirmed"].any()
        assert (res.table["q_value"] >= res.table["p_value"] - 1e-12).all()
    assert clean >= 0.9 * N_SIM


def test_planted_slice_found_and_described_in_90_percent():
    found = 0
    for seed in range(N_SIM):
        X, y, meta, s, bad = _cohort(10_000 + seed, planted=True)
        assert 0.03 < bad.mean() < 0.07
        res = discover_slices(None, X, y, metadata=meta, scores=s, random_state=seed)
        found += _describes_planted(res, bad)
    assert found >= 0.9 * N_SIM


def test_planted_slice_table_and_finding():
    X, y, meta, s, bad = _cohort(8, planted=True)
    res = discover_slices(None, X, y, metadata=meta, scores=s, random_state=0)
    assert isinstance(res, SliceResult)
    t = res.to_frame()
    for col in ("rule", "n", "error_rate", "ci_low", "ci_high", "lift", "p_value", "q_value",
                "confirmed"):
        assert col in t.columns
    top = t.iloc[0]
    assert top["confirmed"] and top["lift"] > 2
    assert top["ci_low"] < 0.3 < top["ci_high"]
    assert res.n_discovery + res.n_confirmation == len(y)
    f = res.findings()
    assert f and f[0].kind == "failing_slice" and f[0].tip == 9 and f[0].severity == "high"
    assert f[0].subject == top["rule"]
    # the halves are disjoint: confirmation n + discovery n = the slice in the full data
    assert top["n"] + top["n_discovery"] == res.mask(0).sum()


def test_reproducible_and_seed_dependent():
    X, y, meta, s, _ = _cohort(3, planted=True)
    a = discover_slices(None, X, y, metadata=meta, scores=s, random_state=5)
    b = discover_slices(None, X, y, metadata=meta, scores=s, random_state=5)
    pd.testing.assert_frame_equal(a.table, b.table)
    c = discover_slices(None, X, y, metadata=meta, scores=s, random_state=6)
    assert not c.table["n"].equals(a.table["n"]) or len(c.table) != len(a.table)


def test_lattice_counts_match_brute_force():
    rng = np.random.default_rng(0)
    n, m = 500, 9
    col = np.repeat(np.arange(3), 3)
    codes = rng.integers(0, 3, (n, 3))
    onehot = np.zeros((n, m), np.float32)
    onehot[np.arange(n)[:, None], np.array([0, 3, 6])[None, :] + codes] = 1
    e = (rng.random(n) < 0.3).astype(float)
    flat = np.array([0, 3, 6])[None, :] + codes  # the condition index of each row and column
    slices, cnt, es, z = _lattice(flat, col, e, True, 3, 10)
    for sl, c, s in zip(slices, cnt, es):
        mask = np.all(onehot[:, list(sl)] == 1, axis=1)
        assert c == mask.sum() and s == pytest.approx(e[mask].sum())
        assert len({col[k] for k in sl}) == len(sl)  # never two conditions on one column
    assert len(set(slices)) == len(slices)
    # every conjunction with support >= 10 is there (exhaustive up to 3 conditions)
    import itertools

    expected = 0
    for k in (1, 2, 3):
        for cols in itertools.combinations(range(3), k):
            for lv in itertools.product(range(3), repeat=k):
                mask = np.all([codes[:, c] == v for c, v in zip(cols, lv)], axis=0)
                expected += mask.sum() >= 10
    assert len(slices) == expected


def test_min_support_prunes():
    X, y, meta, s, _ = _cohort(1, planted=True)
    big = discover_slices(None, X, y, metadata=meta, scores=s, random_state=0, min_support=0.2)
    assert (big.table["n_discovery"] >= 0.2 * big.n_discovery).all()
    assert big.n_searched < discover_slices(None, X, y, metadata=meta, scores=s,
                                            random_state=0).n_searched
    # the 5% slice cannot be found with a 20% minimum support
    assert not any(r.startswith("asthma = 1 AND age >= ") for r in big.table["rule"])


def test_metadata_slice_and_model_path():
    rng = np.random.default_rng(4)
    n = 3000
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    site = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    logit = 1.5 * X["x1"].to_numpy()
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    y_noisy = np.where((site == "d") & (rng.random(n) < 0.4), 1 - y, y)  # labels bad at d
    model = LogisticRegression().fit(X, y)
    res = discover_slices(model, X, y_noisy, metadata=pd.DataFrame({"site": site}),
                          random_state=0)
    assert res.model_name == "LogisticRegression"
    assert res.confirmed.loc[0, "rule"] == "site = d"


def test_regression_absolute_error_and_three_conditions():
    rng = np.random.default_rng(5)
    n = 4000
    X = pd.DataFrame({"a": rng.integers(0, 2, n) * 1.0, "b": rng.integers(0, 2, n) * 1.0,
                      "c": rng.integers(0, 2, n) * 1.0, "d": rng.normal(size=n)})
    y = rng.normal(size=n)
    bad = (X["a"] == 1) & (X["b"] == 1) & (X["c"] == 0)
    pred = y + rng.normal(0, np.where(bad, 1.5, 0.5))
    res = discover_slices(None, X, y, scores=pred, random_state=0, max_conditions=3)
    assert res.error == "absolute"
    assert res.confirmed.loc[0, "rule"] == "a = 1 AND b = 1 AND c = 0"
    assert res.table.loc[0, "lift"] > 1.5
    sq = discover_slices(None, X, y, scores=pred, random_state=0, max_conditions=3,
                         error="squared")
    assert sq.confirmed.loc[0, "rule"] == "a = 1 AND b = 1 AND c = 0"


def test_log_loss_error_and_multiclass():
    X, y, meta, s, bad = _cohort(2, planted=True)
    res = discover_slices(None, X, y, metadata=meta, scores=s, random_state=0, error="log_loss")
    assert res.error == "log_loss" and res.table["confirmed"].any()
    rng = np.random.default_rng(0)
    n = 2000
    yk = rng.integers(0, 3, n)
    P = np.full((n, 3), 0.1)
    P[np.arange(n), yk] = 0.8
    res = discover_slices(None, np.c_[rng.normal(size=n)], yk, scores=P, random_state=0)
    assert res.overall_error == 0 and len(res.table) == 0


def test_surface_and_plot():
    X, y, meta, s, _ = _cohort(9, planted=True)
    res = discover_slices(None, X, y, metadata=meta, scores=s, random_state=0)
    d = json.loads(res.to_json())
    assert d["type"] == "SliceResult" and d["table"][0]["confirmed"] is True
    assert "<table" in res._repr_html_()
    fig = res.plot()
    assert len(fig.axes[0].get_yticklabels()) == len(res.table)
    plt.close(fig)
    with pytest.raises(ValueError, match="i=99"):
        res.mask(99)
    empty = discover_slices(None, X, y, scores=np.where(np.arange(len(y)) % 2, y, y) * 1.0,
                            random_state=0)
    assert len(empty.table) == 0 and empty.findings() == []
    plt.close(empty.plot())


@pytest.mark.parametrize("kwargs, err, match", [
    ({"max_conditions": 0}, ValueError, "max_conditions=0"),
    ({"min_support": 1.5}, ValueError, "min_support=1.5"),
    ({"fdr": 0}, ValueError, "fdr=0"),
    ({"error": "hinge"}, ValueError, "error='hinge'"),
    ({"error": "absolute"}, ValueError, "error='absolute' is not valid for task='binary'"),
    ({"bins": 1}, ValueError, "bins=1"),
    ({"scores": np.ones(3)}, ValueError, "scores="),
])
def test_bad_input(kwargs, err, match):
    X, y, _, s, _ = _cohort(0, planted=False, n=200)
    kwargs = {"scores": s, **kwargs}
    with pytest.raises(err, match=match):
        discover_slices(None, X, y, **kwargs)


def test_severity_needs_large_and_well_measured_lift():
    """'high' needs lift >= 2 and the CI's lower end >= 1.5x the overall error."""
    X, y, meta, s, bad = _cohort(8, planted=True)
    res = discover_slices(None, X, y, metadata=meta, scores=s, random_state=0)
    t = res.to_frame()
    top = t[t["confirmed"]].head(1).copy()
    overall = res.overall_error
    cases = [(2.5 * overall, 1.6 * overall, "high"),   # big and well measured
             (2.5 * overall, 1.1 * overall, "medium"),  # big but a wide CI (small slice)
             (1.8 * overall, 1.6 * overall, "medium")]  # well measured but < 2x
    from dataclasses import replace

    for rate, lo, sev in cases:
        row = top.assign(error_rate=rate, ci_low=lo, lift=rate / overall)
        f = replace(res, table=row).findings()
        assert [x.severity for x in f] == [sev]


# ------------------------------------------------------------ small-n floors (issue 18)
@pytest.fixture(scope="module")
def diabetes():
    """scikit-learn's diabetes data (442 patients, a regression): a random forest fitted on
    one half, audited on the other."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=50, random_state=0).fit(X.iloc[::2], y.iloc[::2])
    return model, X.iloc[1::2], y.iloc[1::2]


def test_diabetes_no_slice_of_a_few_rows_is_confirmed(diabetes):
    model, X, y = diabetes
    # without an absolute floor a 5-row slice is "confirmed on the held-out half"
    loose = discover_slices(model, X, y, random_state=1, min_n=1, verbose=False)
    assert loose.confirmed["n"].min() <= 5 and loose.confirmed["q_value"].min() < 0.05
    for seed in (1, 6, 11):
        res = discover_slices(model, X, y, random_state=seed, verbose=False)
        t = res.table
        assert t["testable"].to_numpy().dtype == bool and res.params["min_n"] == 20
        assert ((t["n"] >= 20) & (t["n_discovery"] >= 20) == t["testable"]).all()
        assert not (t["confirmed"] & ~t["testable"]).any()
        assert (res.confirmed["n"] >= 20).all() and (res.confirmed["n_discovery"] >= 20).all()
        small = t[~t["testable"]]
        assert small["p_value"].isna().all() and small["q_value"].isna().all()
        assert small["ci_low"].isna().all() and small["error_rate"].notna().all()
        assert all(n.startswith("too small to test") for n in small["note"])
        assert (t.loc[t["testable"], "note"] == "").all()
        assert all(f.evidence["n"] >= 20 for f in res.findings())
    res = discover_slices(model, X, y, random_state=11, verbose=False)
    small = res.table[~res.table["testable"]]
    assert len(small) == 1 and small["note"].iloc[0] == (
        "too small to test: n = 9 < min_n = 20 on the confirmation half")
    plt.close(res.plot())


def test_slice_floor_on_errors_of_the_discovery_half():
    X, y, meta, s, _ = _cohort(0, planted=True, n=4000)
    base = discover_slices(None, X, y, metadata=meta, scores=s, random_state=0, verbose=False)
    strict = discover_slices(None, X, y, metadata=meta, scores=s, random_state=0,
                             verbose=False, min_events=10_000)
    assert base.confirmed.shape[0] >= 1 and strict.confirmed.shape[0] == 0
    assert strict.table["note"].str.contains("errors < min_events = 10000 on the discovery").all()
    # candidates are the same: the event floor decides what is tested, not what is searched
    assert set(strict.table["rule"]) == set(base.table["rule"])
    assert strict.table["p_value"].isna().all() and base.table["p_value"].notna().all()
    with pytest.raises(ValueError, match="min_n=0"):
        discover_slices(None, X, y, scores=s, min_n=0, verbose=False)
