"""Imaging case study: the radiograph simulator, attribution mass, its by-site test, and a reduced
run of the case study (the shortcut findings appear with the site token, vanish without it)."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.stats import kruskal  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.utils import Bunch  # noqa: E402

from confoundry._explanation import Attribution  # noqa: E402
from confoundry.attribution._mass import (  # noqa: E402
    MassByGroupResult,
    attribution_mass,
    mass_by_group,
)
from confoundry.datasets._radiographs import simulate_radiographs  # noqa: E402


# ----------------------------------------------------------------------------- simulator
@pytest.fixture(scope="module")
def sim():
    return simulate_radiographs(300, image_size=32, random_state=3)


def test_simulator_shapes_and_types(sim):
    n = 900
    assert sim.images.shape == (n, 1, 32, 32) and sim.images.dtype == np.float32
    assert sim.y.shape == (n,) and set(np.unique(sim.y)) == {0, 1}
    assert list(sim.metadata.columns) == ["site", "scanner"] and len(sim.metadata) == n
    assert sim.lung_mask.shape == (n, 32, 32) and sim.lung_mask.dtype == bool
    assert sim.lung_mask.sum(axis=(1, 2)).min() > 20
    assert sim.params["marker"] is True and "Zech" in sim.DESCR
    assert np.isfinite(sim.images).all()
    # a scikit-learn Bunch: keys and attributes are the same objects
    assert isinstance(sim, Bunch) and sim["images"] is sim.images and "lung_mask" in sim


def test_simulator_is_reproducible():
    a = simulate_radiographs(10, image_size=16, random_state=1)
    b = simulate_radiographs(10, image_size=16, random_state=1)
    c = simulate_radiographs(10, image_size=16, random_state=2)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_prevalence_by_site(sim):
    prev = pd.Series(sim.y).groupby(sim.metadata["site"].astype(str).to_numpy()).mean()
    for site, p in zip("ABC", (0.7, 0.05, 0.3)):
        assert abs(prev[site] - p) < 0.1, (site, prev[site])


def test_marker_is_outside_lungs_and_only_difference_in_control(sim):
    assert not (sim.marker_mask & sim.lung_mask).any()
    assert sim.marker_mask.sum(axis=(1, 2)).min() > 0
    ctrl = simulate_radiographs(300, image_size=32, random_state=3, marker=False)
    assert not ctrl.marker_mask.any()
    diff = sim.images[:, 0] != ctrl.images[:, 0]
    assert diff.any() and not (diff & ~sim.marker_mask).any()   # same patients, token only
    np.testing.assert_array_equal(sim.y, ctrl.y)
    # the token identifies the site: its position differs between sites
    site = sim.metadata["site"].astype(str).to_numpy()
    centroids = {s: np.argwhere(sim.marker_mask[site == s].any(axis=0)).mean(axis=0)
                 for s in "ABC"}
    assert min(np.linalg.norm(centroids[a] - centroids[b])
               for a, b in (("A", "B"), ("A", "C"), ("B", "C"))) > 8


def test_label_lives_in_the_lungs_only(sim):
    img = sim.images[:, 0].astype(float)
    site = sim.metadata["site"].astype(str).to_numpy()
    lung_max = np.where(sim.lung_mask, img, -np.inf).max(axis=(1, 2))
    lung_med = np.array([np.median(im[m]) for im, m in zip(img, sim.lung_mask)])
    assert roc_auc_score(sim.y, lung_max - lung_med) > 0.8
    outside = ~sim.lung_mask & ~sim.marker_mask
    out_mean = np.where(outside, img, 0).sum(axis=(1, 2)) / outside.sum(axis=(1, 2))
    for s in "ABC":   # within a site, pixels outside the lungs carry no label information
        m = site == s
        assert abs(roc_auc_score(sim.y[m], out_mean[m]) - 0.5) < 0.15


@pytest.mark.parametrize("kwargs, exc", [
    ({"n_per_site": 1}, ValueError), ({"n_per_site": "x"}, TypeError),
    ({"n_per_site": (5, 5)}, TypeError), ({"image_size": 8}, ValueError),
    ({"prevalence": (0.5, 1.2, 0.1)}, ValueError), ({"marker": "yes"}, TypeError),
    ({"opacity": -1.0}, ValueError),
])
def test_simulator_rejects_bad_input(kwargs, exc):
    args = {"n_per_site": 5, **kwargs}
    with pytest.raises(exc):
        simulate_radiographs(args.pop("n_per_site"), **args)


# ---------------------------------------------------------------------- attribution mass
def test_attribution_mass_constructed():
    a = np.zeros((3, 1, 4, 4))
    a[0, 0, 0, 0], a[0, 0, 3, 3] = 3.0, -1.0     # 3 of 4 inside
    a[1, 0, 3, 3] = 2.0                          # all outside
    a[2, 0, 1, 1] = -5.0                         # all inside, negative sign counts
    mask = np.zeros((4, 4), dtype=bool)
    mask[:2, :2] = True
    np.testing.assert_allclose(attribution_mass(a, mask), [0.75, 0.0, 1.0])
    # the same with per-image masks, with a channel axis, and from an Attribution object
    per = np.broadcast_to(mask, (3, 4, 4))
    np.testing.assert_allclose(attribution_mass(a, per), [0.75, 0.0, 1.0])
    np.testing.assert_allclose(attribution_mass(a, per[:, None]), [0.75, 0.0, 1.0])
    attr = Attribution(values=a, base_values=0.0, data=np.zeros_like(a), feature_names=[],
                       method="manual")
    np.testing.assert_allclose(attribution_mass(attr, mask.astype(int)), [0.75, 0.0, 1.0])
    # a per-image mask is used per image
    per2 = np.zeros((3, 4, 4), dtype=bool)
    per2[1, 3, 3] = True
    np.testing.assert_allclose(attribution_mass(a, per2), [0.0, 1.0, 0.0])


def test_attribution_mass_multichannel_tabular_and_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 3, 6, 6))
    mask = rng.random((6, 6)) < 0.4
    expected = (np.abs(a) * mask).sum(axis=(1, 2, 3)) / np.abs(a).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(attribution_mass(a, mask), expected)
    tab = np.array([[1.0, -1.0, 2.0], [0.0, 0.0, 0.0]])
    out = attribution_mass(tab, [True, False, True])
    assert out[0] == pytest.approx(0.75) and np.isnan(out[1])


@pytest.mark.parametrize("mask, exc", [
    (np.ones((3, 3), dtype=bool), ValueError),
    (np.full((4, 4), 0.5), ValueError),
])
def test_attribution_mass_rejects_bad_mask(mask, exc):
    with pytest.raises(exc, match="mask"):
        attribution_mass(np.ones((2, 1, 4, 4)), mask)


def test_attribution_mass_rejects_bad_attribution():
    with pytest.raises(TypeError, match="attribution"):
        attribution_mass("x", np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="attribution"):
        attribution_mass(np.array([np.nan, 1.0, 2.0])[None], np.ones(3, dtype=bool))


# ------------------------------------------------------------------------ mass by group
def test_mass_by_group_statistic_equals_scipy():
    rng = np.random.default_rng(1)
    s = np.round(rng.random(120), 1)               # ties on purpose
    g = np.repeat(["a", "b", "c"], 40)
    s[g == "c"] += 0.4
    res = mass_by_group(s, g, n_permutations=500, random_state=0)
    assert res.statistic == pytest.approx(kruskal(*[s[g == k] for k in "abc"]).statistic)
    assert res.effect_size == pytest.approx(res.statistic / 119)
    assert res.p_value < 0.01 and res.significant
    f = res.findings()
    assert len(f) == 1 and f[0].kind == "attribution_by_group" and "c" in f[0].title
    y = rng.integers(0, 2, 120)
    cond = mass_by_group(s, g, strata=y, n_permutations=200, random_state=0)
    within = sum(kruskal(*[s[(g == k) & (y == lab)] for k in "abc"]).statistic for lab in (0, 1))
    assert cond.statistic == pytest.approx(within) and cond.conditional


def test_mass_by_group_calibrated_under_null():
    rng = np.random.default_rng(7)
    pvals = []
    for rep in range(300):
        s = rng.beta(2, 5, 60)
        g = rng.integers(0, 3, 60)
        pvals.append(mass_by_group(s, g, n_permutations=99, n_boot=10,
                                   random_state=rep).p_value)
    rate = np.mean(np.array(pvals) <= 0.05)
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 300), rate   # at most alpha (+3 SE)
    assert rate > 0.005


def test_mass_by_group_conditions_on_the_label():
    # shares depend on the label only, the label on the site: a confounded dataset, not a
    # model that looks elsewhere by site. Only the stratified test says so.
    rng = np.random.default_rng(2)
    g = rng.integers(0, 3, 600)
    y = (rng.random(600) < np.array([0.6, 0.1, 0.3])[g]).astype(int)
    s = 0.2 + 0.2 * y + rng.normal(0, 0.05, 600)
    assert mass_by_group(s, g, n_permutations=300, random_state=0).p_value < 0.01
    cond = mass_by_group(s, g, strata=y, n_permutations=300, random_state=0)
    assert cond.p_value > 0.05
    # raw means differ with the label mix; standardised to the pooled mix they agree
    t = cond.to_frame()
    assert t["mean_share"].max() - t["mean_share"].min() > 0.05
    assert t["adjusted_mean_share"].max() - t["adjusted_mean_share"].min() < 0.02
    assert (t["adjusted_ci_low"] <= t["adjusted_mean_share"]).all()
    assert (t["adjusted_mean_share"] <= t["adjusted_ci_high"]).all()
    assert "adjusted_mean_share" not in mass_by_group(s, g, n_permutations=50,
                                                      random_state=0).to_frame()


def test_mass_by_group_reproducible_and_surface():
    rng = np.random.default_rng(3)
    s = rng.random(80)
    g = pd.Series(np.repeat(["A", "B"], 40), name="site")
    r1 = mass_by_group(s, g, n_permutations=200, random_state=5)
    r2 = mass_by_group(s, g, n_permutations=200, random_state=5)
    assert r1.p_value == r2.p_value and isinstance(r1, MassByGroupResult)
    assert r1.group_name == "site"
    frame = r1.to_frame()
    assert list(frame["group"]) == ["A", "B"] and (frame["n"] == 40).all()
    assert (frame["ci_low"] <= frame["mean_share"]).all()
    assert (frame["mean_share"] <= frame["ci_high"]).all()
    json.loads(r1.to_json())
    assert "<table" in r1._repr_html_()
    fig = r1.plot()
    assert fig is not None
    plt.close(fig)
    with pytest.raises(ValueError, match="groups"):
        mass_by_group(s, np.repeat(["A"], 80))
    with pytest.raises(ValueError, match="groups"):
        mass_by_group(s, np.repeat(["A", "B"], 20))
    with pytest.raises(ValueError, match="n_permutations"):
        mass_by_group(s, g, n_permutations=0)


# --------------------------------------------------------------- reduced case study
@pytest.fixture(scope="module")
def case(tmp_path_factory):
    from confoundry.demos._radiographs import run_radiograph_case_study

    out = tmp_path_factory.mktemp("radiographs")
    return run_radiograph_case_study(out, quick=True, random_state=0, verbose=False,
                                     loso=False, audit=False)


def test_case_study_writes_outputs(case):
    from pathlib import Path

    out = Path(case.out_dir)
    for name in ("summary.csv", "summary.md", "results.json", "marker_maps_by_site.png",
                 "control_maps_by_outcome.png", "marker_overlays.png", "control_mass_by_site.png"):
        assert (out / name).exists(), name
    results = json.loads((out / "results.json").read_text())
    assert "figure_uris" not in results["arms"]["marker"]
    assert {"arm", "quantity", "estimate", "ci_low", "ci_high", "p_value", "n"} <= set(
        case.summary.columns)
    # each figure is encoded once: the file is the report's inlined copy, with no URL inside
    import base64

    for name, uri in case.marker["figure_uris"].items():
        data = (out / name).read_bytes()
        assert base64.b64decode(uri.split(",", 1)[1]) == data and b"http" not in data


def test_shortcut_findings_appear_with_marker(case):
    m = case.marker
    auroc = m["metrics"].query("metric == 'auroc'").set_index("split")["estimate"]
    assert auroc["internal"] > auroc["external"] + 0.05
    assert m["auroc_gap"]["ci_low"] > 0 and m["auroc_gap"]["p_value"] < 0.05
    assert m["mass_by_site"].p_value < 0.05
    assert np.nanmean(m["marker_share"]) > 0.05     # attribution lands on the token
    p = m["probes"].set_index("probe")
    assert p.loc["output_conditional", "p_value"] < 0.01
    assert p.loc["embedding_conditional", "p_value"] < 0.05
    assert case.log == ["leave-one-site-out skipped (loso=False)."]


def test_the_hospital_shortcut_stays_high(case):
    # issue 20: the severity rules (minimum effect, minimum n) keep the finding that matters
    found = {(f.kind, f.subject): f.severity for f in case.marker["probe_result"].findings()}
    assert found[("confounded_output", "site")] == "high", found
    assert ("confounded_output", "site") not in {
        (f.kind, f.subject) for f in case.control["probe_result"].findings()}


def test_shortcut_findings_vanish_in_control(case):
    c, m = case.control, case.marker
    pc, pm = c["probes"].set_index("probe"), m["probes"].set_index("probe")
    assert pc.loc["output_conditional", "p_value"] > 0.05
    assert pc.loc["output_conditional", "statistic"] < \
        0.2 * pm.loc["output_conditional", "statistic"]
    assert pc.loc["embedding_conditional", "statistic"] < \
        pm.loc["embedding_conditional", "statistic"]
    assert c["mass_by_site"].p_value > 0.05
    assert c["auroc_gap"]["ci_low"] < 0 < c["auroc_gap"]["ci_high"] or \
        c["auroc_gap"]["estimate"] < m["auroc_gap"]["estimate"]


def test_summary_rows_come_from_the_library(case):
    s = case.summary.set_index(["arm", "quantity"])
    gap = case.marker["auroc_gap"]
    row = s.loc[("marker", "AUROC gap, internal - external")]
    assert row["estimate"] == gap["estimate"] and row["p_value"] == gap["p_value"]
    probe = case.marker["probes"].set_index("probe").loc["output_conditional"]
    assert s.loc[("marker", "probe output_conditional (site): statistic"),
                 "estimate"] == probe["statistic"]
    # one conditional output test, the probe's (no private copy beside it)
    assert not s.index.get_level_values("quantity").str.startswith("output ranks").any()


def test_internal_external_metrics_matches_stats():
    from confoundry._utils import int_seed
    from confoundry.demos._radiograph_arm import internal_external_metrics
    from confoundry.stats import bootstrap_metrics

    rng = np.random.default_rng(4)
    y1, y2 = rng.integers(0, 2, 150), rng.integers(0, 2, 120)
    s1, s2 = np.clip(0.5 * y1 + rng.random(150), 0, 1.5) / 1.5, rng.random(120)
    metrics, gap = internal_external_metrics({"internal": (y1, s1), "external": (y2, s2)},
                                             n_boot=400, random_state=np.random.default_rng(9))
    assert gap["estimate"] == pytest.approx(roc_auc_score(y1, s1) - roc_auc_score(y2, s2))
    assert gap["ci_low"] < gap["estimate"] < gap["ci_high"] and gap["n_boot"] == 400
    assert gap["p_value"] < 0.05
    # each set's interval is bootstrap_metrics' with the seed drawn for it, in order
    seeds = np.random.default_rng(9)
    for split, (yy, ss) in (("internal", (y1, s1)), ("external", (y2, s2))):
        ref = bootstrap_metrics(yy, ss, task="binary", metrics=["auroc"], n_boot=400,
                                random_state=int_seed(seeds)).iloc[0]
        got = metrics[(metrics["split"] == split) & (metrics["metric"] == "auroc")].iloc[0]
        assert got["ci_low"] == pytest.approx(ref["ci_low"])
        assert got["ci_high"] == pytest.approx(ref["ci_high"])
    # two sets from one distribution: the gap's interval covers 0
    y3 = rng.integers(0, 2, 150)
    _, null = internal_external_metrics({"internal": (y1, s1), "external": (y3, np.clip(
        0.5 * y3 + rng.random(150), 0, 1.5) / 1.5)}, n_boot=400, random_state=1)
    assert null["ci_low"] < 0 < null["ci_high"] and null["p_value"] > 0.05
    with pytest.raises(ValueError, match="sets"):
        internal_external_metrics({"a": (y1, s1), "b": (y2, s2)}, n_boot=10)


def test_case_study_script_writes_readme_tables(tmp_path, monkeypatch):
    """run.py --update-readme rewrites only the marked block, from the summary table."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "case_studies" / "radiograph_site_shortcut" / "run.py"
    spec = importlib.util.spec_from_file_location("rad_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    nan = np.nan
    summary = pd.DataFrame([
        ["marker", "AUROC, internal", 0.89, 0.85, 0.93, nan, 240],
        ["control", "AUROC, internal", 0.96, 0.93, 0.99, nan, 240],
        ["marker", "share of |IG| inside lungs, site A", 0.07, 0.05, 0.08, nan, 57],
        ["control", "share of |IG| inside lungs, site A", 0.5, 0.4, 0.6, nan, 57],
        ["marker", "leave-one-site-out AUROC, held out A", 0.52, 0.46, 0.58, 0.002, 400],
    ], columns=["arm", "quantity", "estimate", "ci_low", "ci_high", "p_value", "n"])
    loso = pd.DataFrame([{"group": "A", "n": 400, "estimate": 0.52, "ci_low": 0.46,
                          "ci_high": 0.58, "internal": 0.83, "internal_ci_low": 0.81,
                          "internal_ci_high": 0.86, "difference": -0.31, "diff_ci_low": -0.38,
                          "diff_ci_high": -0.25, "p_value": 0.001998}])
    text = mod.results_markdown(summary, 100.0, 0, loso)
    assert "| AUROC, internal | 240 | 0.890 (0.850 to 0.930) | 0.960 (0.930 to 0.990) |" in text
    assert "share of \\|IG\\|" in text and "held out A" not in text
    assert ("| A | 400 | 0.520 (0.460 to 0.580) | 0.830 (0.810 to 0.860) | -0.310 (-0.380 to "
            "-0.250), p = 0.002 |") in text
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{mod.START}\nOBSOLETE\n{mod.END}\nafter\n", encoding="utf-8")
    monkeypatch.setattr(mod, "README", readme)
    mod.update_readme(text)
    body = readme.read_text(encoding="utf-8")
    assert body.startswith("intro\n") and body.endswith("after\n") and "OBSOLETE" not in body
    assert text in body
