"""Large n in memory: the Poisson bootstrap (chunk-invariant, equal to the weighted metrics,
close to the multinomial bootstrap) and the asymptotic probe p-values (calibrated on null data
at the n where they take over, powered against a planted effect)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import confoundry as cf
from confoundry.probes import ASYMPTOTIC_N
from confoundry.stats import POISSON_N, bootstrap_panel, poisson_weights, weighted_metrics
from confoundry.stats._poisson import (
    binary_kernel_data,
    binary_replicates,
    poisson_panel_replicates,
)

BINARY = ("auroc", "auprc", "brier", "log_loss", "accuracy", "sensitivity", "specificity",
          "balanced_accuracy", "ece")


def _binary(n: int, seed: int = 0, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(size=n))))
    if ties:
        s = np.round(s, 2)
    return y, s


# ---------------------------------------------------------------- Poisson bootstrap
def test_poisson_weights_do_not_depend_on_the_chunking():
    n = 70_000
    ref = np.vstack(list(poisson_weights(n, 9, seed=3, chunk_size=9)))
    for chunk in (1, 2, 4):
        np.testing.assert_array_equal(
            np.vstack(list(poisson_weights(n, 9, seed=3, chunk_size=chunk))), ref)
    # replicates 5.. started on their own are the same replicates
    np.testing.assert_array_equal(np.vstack(list(poisson_weights(n, 9, seed=3, start=5))),
                                  ref[5:])
    # a weight is a function of (seed, replicate, row): the first rows of a longer test set
    np.testing.assert_array_equal(np.vstack(list(poisson_weights(1000, 9, seed=3))),
                                  ref[:, :1000])
    w = ref.astype(float).ravel()
    assert abs(w.mean() - 1) < 0.01 and abs(w.var() - 1) < 0.02  # Poisson(1)
    assert not np.array_equal(np.vstack(list(poisson_weights(n, 9, seed=4))), ref)


@pytest.mark.parametrize("ties", [False, True])
def test_binary_kernel_equals_the_weighted_metrics(ties):
    y, s = _binary(3000, seed=1, ties=ties)
    W = next(poisson_weights(len(y), 7, seed=0))
    # the compiled kernel draws each row's weight itself, in score order: the same weights
    got = binary_replicates(binary_kernel_data(y, s, 0.5, BINARY), BINARY, seed=0, start=0,
                            stop=7)
    want = weighted_metrics(y, s, W.astype(np.float64), task="binary", metrics=BINARY,
                            threshold=0.5)
    for m in BINARY:
        np.testing.assert_allclose(got[m], want[m], rtol=1e-10, atol=1e-12, err_msg=m)


def test_poisson_panel_is_chunk_invariant_and_close_to_the_multinomial():
    y, s = _binary(20_000, seed=2)
    scores = {"model": s, "other": np.clip(s + 0.05, 0, 1)}
    a = poisson_panel_replicates(y, scores, task="binary", metrics=("auroc", "brier"),
                                 n_boot=40, threshold=0.5, seed=11, chunk_size=40)
    b = poisson_panel_replicates(y, scores, task="binary", metrics=("auroc", "brier"),
                                 n_boot=40, threshold=0.5, seed=11, chunk_size=3)
    for m in scores:
        for k in ("auroc", "brier"):
            np.testing.assert_allclose(a[m][k], b[m][k], rtol=1e-12)
    pois = bootstrap_panel(y, scores, task="binary", metrics=("auroc", "brier"), n_boot=400,
                           random_state=0, bootstrap="poisson")
    mult = bootstrap_panel(y, scores, task="binary", metrics=("auroc", "brier"), n_boot=400,
                           random_state=0, bootstrap="multinomial")
    assert pois.scheme == "poisson" and mult.scheme == "multinomial"
    for k in ("auroc", "brier"):
        assert pois.point["model"][k] == mult.point["model"][k]  # the same point estimate
        sd_p, sd_m = np.std(pois.replicates["model"][k]), np.std(mult.replicates["model"][k])
        assert 0.8 < sd_p / sd_m < 1.25, (k, sd_p, sd_m)  # the same sampling variability


def test_the_scheme_follows_n_and_is_recorded():
    assert POISSON_N == 200_000 and ASYMPTOTIC_N == 200_000
    y, s = _binary(600, seed=3)
    meta = pd.DataFrame({"site": np.arange(600) % 3})
    auto = cf.split_domains(None, None, y, by=meta, scores=s, n_boot=50, random_state=0,
                            verbose=False)
    assert auto.params["bootstrap"] == "multinomial"
    pois = cf.split_domains(None, None, y, by=meta, scores=s, n_boot=50, random_state=0,
                            verbose=False, bootstrap="poisson")
    assert pois.params["bootstrap"] == "poisson"
    with pytest.raises(ValueError, match="bootstrap='bayes' is not valid"):
        bootstrap_panel(y, {"m": s}, task="binary", bootstrap="bayes")


# ---------------------------------------------------------------- asymptotic probes
def _null_tables(n: int, reps: int, task: str = "binary", n_permutations: int = 100
                 ) -> pd.DataFrame:
    out = []
    for rep in range(reps):
        rng = np.random.default_rng(100 + rep)
        if task == "binary":
            y = rng.integers(0, 2, n)
            s = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(size=n))))
        else:
            y = rng.normal(size=n)
            s = y + rng.normal(size=n)
        # metadata independent of the label and of the outputs
        meta = pd.DataFrame({"site": rng.integers(0, 8, n).astype(str),
                             "batch": rng.integers(0, 3, n).astype(str),
                             "age": rng.normal(size=n)})
        res = cf.probe_confounders(None, None, y, meta, scores=s,
                                   n_permutations=n_permutations, random_state=rep, verbose=False)
        assert res.params["p_values"] == "asymptotic"
        out.append(res.to_frame())
    return pd.concat(out, ignore_index=True)


@pytest.mark.slow
def test_asymptotic_probes_are_calibrated_on_null_data_at_their_n():
    df = _null_tables(ASYMPTOTIC_N, 12)
    asym = df[df["test"].str.startswith("asymptotic")]
    assert set(asym["probe"]) >= {"label_association", "output_marginal",
                                  "output_conditional", "error"}
    for (probe, test), g in asym.groupby(["probe", "test"]):
        assert len(g) == 36
        assert stats.kstest(g["p_value"], "uniform").pvalue > 0.001, (probe, test)
    # pooled: the rejection rate at 0.05 of 144 null tests (binomial 95% range ~0.02-0.09)
    rate = float((asym["p_value"] < 0.05).mean())
    assert rate <= 0.10, rate
    assert (asym["p_value_min"] == 0).all() and (asym["p_value_se"] == 0).all()


@pytest.mark.slow
def test_asymptotic_conditional_probe_of_a_continuous_label_is_calibrated():
    # (the metadata-only probe keeps its permutations; few are drawn, it is not tested here)
    df = _null_tables(ASYMPTOTIC_N, 8, task="regression", n_permutations=10)
    cond = df[df["probe"] == "output_conditional"]
    assert cond["test"].str.startswith("asymptotic partial chi-square given").all()
    assert stats.kstest(cond["p_value"], "uniform").pvalue > 0.001
    assert float((cond["p_value"] < 0.05).mean()) <= 0.15


def test_asymptotic_and_permutation_p_values_agree_and_detect_a_planted_effect():
    rng = np.random.default_rng(5)
    n = 20_000
    y = rng.integers(0, 2, n)
    site = rng.integers(0, 4, n)
    s = 1 / (1 + np.exp(-(2 * y - 1 + 0.03 * site + rng.normal(size=n))))  # weak site effect
    meta = pd.DataFrame({"site": site.astype(str)})
    kw = dict(scores=s, n_permutations=2000, random_state=0, verbose=False)
    perm = cf.probe_confounders(None, None, y, meta, p_values="permutation", **kw).to_frame()
    asym = cf.probe_confounders(None, None, y, meta, p_values="asymptotic", **kw).to_frame()
    a = asym.set_index("probe")
    p = perm.set_index("probe")
    for probe in ("output_marginal", "output_conditional"):
        assert a.loc[probe, "effect_size"] == pytest.approx(p.loc[probe, "effect_size"])
        pa, pp = a.loc[probe, "p_value"], p.loc[probe, "p_value"]
        # the same statistic: p-values agree within Monte-Carlo error of the permutation one
        assert abs(pa - pp) < 4 * max(p.loc[probe, "p_value_se"], 1 / 2000) + 0.01, (
            probe, pa, pp)
        assert a.loc[probe, "test"].startswith("asymptotic")
    strong = 1 / (1 + np.exp(-(2 * y - 1 + 0.3 * site + rng.normal(size=n))))
    hit = cf.probe_confounders(None, None, y, meta, p_values="asymptotic",
                               **{**kw, "scores": strong}).to_frame().set_index("probe")
    assert hit.loc["output_conditional", "p_value"] < 1e-12
    with pytest.raises(ValueError, match="p_values='exact' is not valid"):
        cf.probe_confounders(None, None, y, meta, p_values="exact", **kw)
