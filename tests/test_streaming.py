"""Inputs too large to copy: torch Datasets and DataLoaders, AnnData, sparse matrices and arrays
on disk are read in batches, never copied densely, and every audit step either runs on them or
says why it cannot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

import confoundry as cf
from confoundry.data import _sources
from confoundry.data._sources import LazyRows, as_source
from confoundry.models import _baselines

FAST = {"n_boot": 60, "n_permutations": 60, "max_attribution_rows": 80, "verbose": False,
        "random_state": 0}


class Images(Dataset):
    """1 x 16 x 16 images made on the fly from (seed, index): a bright corner for class 1 and a
    site-dependent stripe; ``reads`` counts item reads."""

    def __init__(self, n: int, seed: int, with_labels: bool = True) -> None:
        rng = np.random.default_rng(seed)
        self.n, self.seed, self.with_labels = n, seed, with_labels
        self.y = rng.integers(0, 2, n)
        self.site = rng.integers(0, 3, n)
        self.reads = 0

    def __len__(self) -> int:
        return self.n

    def image(self, i: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, i))
        x = rng.normal(size=(1, 16, 16)).astype(np.float32)
        x[0, :4, :4] += 1.0 * self.y[i]
        x[0, -2:, :] += 0.5 * self.site[i]
        return x

    def __getitem__(self, i: int):
        self.reads += 1
        x = torch.from_numpy(self.image(int(i)))
        return (x, int(self.y[i])) if self.with_labels else x

    def dense(self) -> np.ndarray:
        return np.stack([self.image(i) for i in range(self.n)])


class Stream(IterableDataset):
    def __iter__(self):
        yield from (torch.zeros(3) for _ in range(4))


class Dicts(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        return {"x": torch.zeros(3), "y": 0}


def _cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(),
                               torch.nn.Linear(64, 1))


def _trained_cnn(ds: Images) -> torch.nn.Module:
    net = _cnn()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(2):
        for xb, yb in DataLoader(ds, batch_size=100):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xb)[:, 0],
                                                                        yb.float())
            loss.backward()
            opt.step()
    return net.eval()


# ---------------------------------------------------------------- torch Dataset / DataLoader
def test_a_dataset_is_kept_by_reference_and_takes_its_labels():
    ds = Images(300, 1)
    data = cf.AuditData(ds, metadata=pd.DataFrame({"site": ds.site}))
    assert data.lazy and data.source.dataset is ds and not data.is_tabular
    assert data.X.shape == (300, 1, 16, 16)
    # y=None: the dataset's own labels, in one pass (item 0 for the shape, then every item)
    assert ds.reads == 1 + 300
    np.testing.assert_array_equal(data.y, ds.y)
    assert data.task == "binary"
    ds.reads = 0
    cf.AuditData(ds, ds.y)  # labels given: only item 0 is read (its shape)
    assert ds.reads == 1
    np.testing.assert_allclose(data.X[[5, 2]], ds.dense()[[5, 2]])


def test_scores_of_a_dataset_and_a_dataloader_match_the_tensor():
    ds = Images(250, 2)
    net = _cnn()
    dense = cf.as_model(net, output="logits").predict_scores(ds.dense())
    calls = []

    def collate(items):
        calls.append(len(items))
        return torch.utils.data.default_collate(items)

    loader = DataLoader(ds, batch_size=64, collate_fn=collate)
    np.testing.assert_allclose(cf.as_model(net, output="logits").predict_scores(ds), dense, rtol=1e-5)
    np.testing.assert_allclose(cf.as_model(net, output="logits").predict_scores(cf.AuditData(loader)),
                               dense,
                               rtol=1e-5)
    assert calls[:4] == [64, 64, 64, 58]  # the loader's own batches and collate_fn


@pytest.mark.parametrize("loader, match", [
    (lambda ds: DataLoader(ds, batch_size=8, shuffle=True), "shuffle=False"),
    (lambda ds: DataLoader(ds, batch_size=8, drop_last=True), "drop_last=False"),
    (lambda ds: DataLoader(ds, batch_size=None), "batch_size"),
])
def test_a_loader_that_would_misalign_rows_is_refused(loader, match):
    with pytest.raises(ValueError, match=match):
        cf.AuditData(loader(Images(40, 0)))


def test_iterable_and_dict_datasets_get_clear_errors():
    with pytest.raises(TypeError, match="IterableDataset.*map-style"):
        cf.AuditData(Stream())
    with pytest.raises(TypeError, match="IterableDataset"):
        cf.AuditData(DataLoader(Stream(), batch_size=2))
    with pytest.raises(TypeError, match="yields dicts"):
        cf.AuditData(Dicts())


def test_a_dense_copy_of_a_large_lazy_input_is_refused(monkeypatch):
    monkeypatch.setattr(_sources, "MAX_DENSE_BYTES", 1000)
    data = cf.AuditData(Images(50, 0))
    with pytest.raises(MemoryError, match="reads it in batches"):
        np.asarray(data.X)
    assert data.X[:3].shape == (3, 1, 16, 16)  # rows by index are fine


def test_a_nan_in_a_batch_names_the_rows(tmp_path):
    arr = np.ones((20, 3))
    arr[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*\[7\]|row\(s\) \[7\]"):
        as_source(sp.csr_matrix(arr))
    mm = _memmap(arr, tmp_path)
    with pytest.raises(ValueError, match=r"\[7\]"):
        LazyRows(as_source(mm))[5:10]


def _memmap(arr: np.ndarray, tmp_path) -> np.memmap:
    path = tmp_path / "x.dat"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=arr.shape)
    mm[:] = arr
    mm.flush()
    return np.memmap(path, dtype=np.float32, mode="r", shape=arr.shape)


# ---------------------------------------------------------------- arrays on disk
def _tabular(n=400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] + rng.normal(size=n) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("kind", ["memmap", "h5py", "zarr", "sparse"])
def test_arrays_on_disk_score_like_the_array(kind, tmp_path):
    X, y = _tabular()
    if kind == "memmap":
        arr = _memmap(X, tmp_path)
    elif kind == "h5py":
        h5py = pytest.importorskip("h5py")
        f = h5py.File(tmp_path / "x.h5", "w")
        arr = f.create_dataset("X", data=X, chunks=(64, 6))
    elif kind == "zarr":
        zarr = pytest.importorskip("zarr")
        arr = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=X.shape,
                              chunks=(64, 6), dtype="f4")
        arr[:] = X
    else:
        arr = sp.csr_matrix(X)
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit(X, y)
    data = cf.AuditData(arr, y)
    assert data.lazy and data.source.kind == kind and data.feature_names[0] == "x0"
    np.testing.assert_allclose(cf.as_model(clf).predict_scores(data),
                               clf.predict_proba(X)[:, 1], rtol=1e-6)
    # rows out of order (h5py and zarr want sorted unique positions: read, then reordered)
    np.testing.assert_allclose(data.X[[9, 3, 3, 0]], X[[9, 3, 3, 0]])
    probe = cf.probe_confounders(clf, data, y, pd.DataFrame({"m": np.arange(len(y)) % 2}),
                                 n_permutations=50, random_state=0, verbose=False)
    assert set(probe.to_frame()["metadata"]) == {"m"}


# ---------------------------------------------------------------- AnnData
def _adata(n=600, genes=200, seed=0, density=0.05):
    ad = pytest.importorskip("anndata")
    rng = np.random.default_rng(seed)
    X = sp.random(n, genes, density=density, format="csr", random_state=seed,
                  dtype=np.float32)
    y = rng.integers(0, 2, n)
    batch = rng.integers(0, 3, n)
    X = X.tolil()
    X[:, :5] = X[:, :5].toarray() + y[:, None] * 1.0
    X = X.tocsr()
    obs = pd.DataFrame({"disease": y, "batch": pd.Categorical([f"b{b}" for b in batch]),
                        "donor": pd.Categorical([f"d{i % 7}" for i in range(n)])},
                       index=[f"cell{seed}_{i}" for i in range(n)])
    a = ad.AnnData(X, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(genes)]))
    a.layers["counts"] = X.copy() * 10
    a.obsm["X_pca"] = rng.normal(size=(n, 4))
    return a


def _mlp(d: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


def test_anndata_columns_layers_and_obsm():
    a = _adata()
    data = cf.AuditData(a, "disease", ["batch", "donor"])
    assert data.lazy and data.source.is_sparse and data.feature_names[:2] == ["g0", "g1"]
    assert list(data.metadata.columns) == ["batch", "donor"]
    np.testing.assert_array_equal(data.y, a.obs["disease"].to_numpy())
    assert data.index.equals(pd.Index(a.obs_names))
    np.testing.assert_allclose(cf.AuditData(a, "disease", layer="counts").X[:3],
                               a.layers["counts"][:3].toarray())
    pca = cf.AuditData(a, "disease", obsm="X_pca")
    assert pca.feature_names == ["X_pca_1", "X_pca_2", "X_pca_3", "X_pca_4"]
    np.testing.assert_allclose(pca.X[:2], a.obsm["X_pca"][:2])
    with pytest.raises(ValueError, match="'diagnosis' is not a column of adata.obs"):
        cf.AuditData(a, "diagnosis")
    with pytest.raises(ValueError, match="names \\['site'\\]"):
        cf.AuditData(a, "disease", ["site"])
    with pytest.raises(ValueError, match="layer='raw' is not a layer"):
        cf.AuditData(a, "disease", layer="raw")
    with pytest.raises(TypeError, match="layer='counts' was given"):
        cf.AuditData(np.zeros((3, 2)), [0, 1, 0], layer="counts")
    assert sp.issparse(a.X)  # the user's object is untouched


def test_sparse_logistic_baseline_equals_the_dense_fit(monkeypatch):
    a = _adata(n=500, genes=60)
    dense = cf.fit_baselines(a.X.toarray(), a.obs["disease"].to_numpy(), kinds=("logistic",),
                             tuning="none", random_state=0, verbose=False)
    monkeypatch.setattr(_baselines, "MATERIALISE_BYTES", 0)  # as if too large to densify
    sparse = cf.fit_baselines(cf.AuditData(a, "disease"), None, kinds=("logistic", "tree"),
                              tuning="none", random_state=0, verbose=False,
                              max_ebm_features=10)
    assert sparse["logistic"].tuning["sparse_input"] is True
    Xd = a.X.toarray()
    # the same penalised problem (centring moves only the unpenalised intercept), solved by
    # lbfgs to its tolerance from another starting geometry
    p_sparse = sparse["logistic"].predict_scores(Xd)
    p_dense = dense["logistic"].predict_scores(Xd)
    np.testing.assert_allclose(p_sparse, p_dense, atol=5e-3)
    assert np.corrcoef(p_sparse, p_dense)[0, 1] > 0.9999
    sel = sparse["tree"].tuning["feature_selection"]
    assert sel["n_selected"] == 10 and sel["n_features"] == 60
    assert {"g0", "g1", "g2"} <= set(sel["selected"])  # the genes that carry the label


def test_audit_of_an_anndata_runs_every_step_with_sparse_baselines(monkeypatch):
    a_test, a_train = _adata(seed=1), _adata(seed=2)
    net = _mlp(a_test.n_vars)
    mode = net.training
    monkeypatch.setattr(_baselines, "MATERIALISE_BYTES", 0)
    res = cf.Audit(net, a_test, "disease", metadata=["batch"], X_train=a_train,
                   y_train="disease", max_ebm_features=20, baseline_kinds=("logistic", "tree"),
                   **FAST).run()
    ran = {k for k, st in res.steps.items() if st.status == "ran"}
    assert {"baselines", "performance", "comparison", "attributions", "agreement", "probes",
            "domains", "slices", "overfitting", "membership"} <= ran, res.steps_frame()
    for name, st in res.steps.items():
        assert st.status in ("ran", "skipped"), (name, st.status, st.reason)
        if st.status == "skipped":
            assert st.reason, name
    assert res["baselines"]["tree"].tuning["feature_selection"]["n_selected"] == 20
    assert res["baselines"]["logistic"].tuning["sparse_input"] is True
    assert net.training == mode and sp.issparse(a_test.X)
    html = res.to_html()
    assert "univariate F-test on the training data" in html


# ---------------------------------------------------------------- the audit on images
def test_audit_of_an_image_dataset_streams_and_says_what_it_skipped():
    train, test = Images(400, 3), Images(300, 4)
    net = _trained_cnn(train)
    meta = pd.DataFrame({"site": [f"s{s}" for s in test.site]})
    res = cf.Audit(net, test, metadata=meta, layer=net[2], X_train=train, **FAST).run()
    ran = {k for k, st in res.steps.items() if st.status == "ran"}
    assert {"performance", "attributions", "sanity_check", "probes", "domains", "slices",
            "overfitting", "membership"} <= ran, res.steps_frame()
    reasons = {k: st.reason for k, st in res.steps.items() if st.status == "skipped"}
    assert "tabular" in reasons["baselines"]
    assert "tabular" in reasons["effect_curves"]
    assert res["attributions"][res.model_name].values.shape[1:] == (1, 16, 16)
    info = res["probes"].info
    assert "spatial" in info["embedding_pooling"]
    emb = res["probes"].to_frame()
    assert (emb["probe"].astype(str).str.contains("embedding")).any()
    assert net.training is False


def test_the_attribution_sample_of_large_lazy_rows_is_capped_by_memory(monkeypatch):
    from confoundry.audit import _context

    test = Images(200, 5)
    net = _cnn().eval()
    monkeypatch.setattr(_context, "ATTRIBUTION_SAMPLE_BYTES", 50 * 256 * 8)  # 50 images
    kw = {k: v for k, v in FAST.items() if k != "max_attribution_rows"}
    res = cf.Audit(net, test, steps=["attributions"], **kw).run()
    assert res["attributions"][res.model_name].values.shape[0] == 50
    assert any("subsample of 50 of the 200" in n and "read in batches" in n
               for n in res.notes), res.notes
    given = cf.Audit(net, test, steps=["attributions"], max_attribution_rows=120, **kw).run()
    assert given["attributions"][given.model_name].values.shape[0] == 120  # as given


def test_retraining_controls_take_rows_of_lazy_inputs_in_their_own_type():
    from torch.utils.data import Subset

    from confoundry.controls._retrain import take_rows

    ds = Images(30, 0)
    sub = take_rows(ds, np.array([3, 7]))
    assert isinstance(sub, Subset) and len(sub) == 2 and ds.reads == 1  # item 0 (its shape)
    a = _adata(n=40, genes=10)
    view = take_rows(a, np.array([1, 5, 9]))
    assert view.n_obs == 3 and list(view.obs_names) == [a.obs_names[i] for i in (1, 5, 9)]


def test_every_step_function_takes_a_dataset_with_its_labels():
    ds = Images(160, 1)
    net = _cnn().eval()
    meta = pd.DataFrame({"site": ds.site.astype(str)})
    attr = cf.attribute(net, ds, method="integrated_gradients", random_state=0, verbose=False)
    assert attr.values.shape == (160, 1, 16, 16)
    probe = cf.probe_confounders(net, ds, None, meta, n_permutations=30, random_state=0,
                                 verbose=False)
    assert (probe.table["n"] == 160).all() and "output_conditional" in set(probe.table["probe"])
    dom = cf.split_domains(net, ds, None, by=meta["site"], n_boot=30, random_state=0,
                           verbose=False)
    assert set(dom.to_frame()["domain"]) >= {f"site = {s}" for s in sorted(set(meta["site"]))}
    cf.discover_slices(net, ds, None, metadata=meta, random_state=0, verbose=False)
    risk = cf.membership_risk(net, Images(160, 2), None, ds, None, random_state=0,
                              verbose=False)
    assert risk.n_train == 160 and risk.n_test == 160
