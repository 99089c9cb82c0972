"""Row sources: inputs too large to copy, read batch by batch and row by row.

A :class:`RowSource` is what :class:`~confoundry.AuditData` keeps for a torch ``Dataset`` or
``DataLoader``, an ``anndata.AnnData``, a scipy sparse matrix or an array on disk
(``numpy.memmap``, ``h5py.Dataset``, ``zarr.Array``): a reference to the user's object and a way
to read rows by index. Nothing is copied at construction; ``read(idx)`` returns a dense float
batch (float32, or float64 when the source holds float64) and ``iter_batches`` walks every row
in order. In-memory DataFrames, ndarrays and tensors do not go through a source (they keep the
validated float64 copy :class:`AuditData` always made).

:class:`LazyRows` is the array-like face of a source (``AuditData.X`` of a lazy input):
``X[rows]`` reads those rows, so code that slices ``X`` in batches (the model adapter) streams
without knowing about sources.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

#: ``np.asarray(LazyRows)`` (a full dense float64 copy) is refused above this many bytes.
MAX_DENSE_BYTES = 256 * 2**20
#: ``AuditData.subset`` of a lazy input is materialised (an in-memory AuditData) when the rows
#: it holds take at most this many bytes as float64; above it the subset stays lazy.
MATERIALISE_BYTES = 256 * 2**20
#: rows read to infer the kind (continuous, binary, categorical) of lazy tabular features.
KIND_SAMPLE_ROWS = 2048
#: how each kind of source is named in messages.
KIND_NAMES = {"anndata": "an AnnData matrix", "sparse": "a scipy sparse matrix",
              "memmap": "a numpy.memmap", "h5py": "an h5py.Dataset", "zarr": "a zarr.Array"}
#: ``map_rows`` batches of a lazy input hold at most this many bytes as float64.
MAP_BATCH_BYTES = 16 * 2**20
#: rows per block when a whole lazy source is walked (fingerprint, labels, columns).
BLOCK_ROWS = 1024


def _float(block: np.ndarray) -> np.ndarray:
    """A dense batch as float32 (or float64 when it already is): exact for float32 and small
    integer inputs (images stored as uint8 or int16)."""
    if block.dtype == np.float64 or block.dtype == np.float32:
        return block
    if block.dtype.kind == "b" or (block.dtype.kind in "iu" and block.dtype.itemsize <= 2):
        return block.astype(np.float32)
    if block.dtype.kind not in "biuf":
        raise TypeError(f"X holds values of dtype {block.dtype}; expected numbers.")
    return block.astype(np.float64 if block.dtype.itemsize > 2 else np.float32)


def _check_finite(block: np.ndarray, idx: np.ndarray, what: str) -> None:
    if block.dtype.kind != "f":
        return
    bad = ~np.isfinite(block.reshape(len(block), -1))
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        kind = "NaN" if np.isnan(block.reshape(len(block), -1)[bad]).any() else "infinite"
        raise ValueError(
            f"X ({what}) contains {int(bad.sum())} {kind} value(s) in row(s) "
            f"{np.asarray(idx)[rows[:5]].tolist()}; expected finite numbers (impute or drop "
            "them before the audit).")


class RowSource:
    """Rows of a large input, read by index (the interface every lazy input implements).

    Attributes
    ----------
    kind : str
        What the user gave: ``"torch_dataset"``, ``"dataloader"``, ``"anndata"``, ``"sparse"``,
        ``"memmap"``, ``"h5py"`` or ``"zarr"``.
    n_rows : int
    feature_shape : tuple of int
        Shape of one row (``(d,)`` for a table, ``(C, H, W)`` for an image).
    feature_names : list of str
        Column names of a tabular source (``[]`` otherwise).
    index : pandas Index
        Row labels (AnnData's ``obs_names``; positions otherwise).
    is_sparse : bool
        Whether the rows are stored as a scipy sparse matrix.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> src = as_source(sp.eye(4, format="csr"))
    >>> src.kind, src.is_tabular, src.feature_names
    ('sparse', True, ['x0', 'x1', 'x2', 'x3'])
    """

    kind = "source"
    is_sparse = False

    def __init__(self, n_rows: int, feature_shape: tuple[int, ...],
                 feature_names: Sequence[str] | None = None, index: Any = None) -> None:
        self.n_rows = int(n_rows)
        self.feature_shape = tuple(int(s) for s in feature_shape)
        self.feature_names = list(feature_names or [])
        self.index = pd.RangeIndex(self.n_rows) if index is None else pd.Index(index)

    # ------------------------------------------------------------ interface
    @property
    def is_tabular(self) -> bool:
        return len(self.feature_shape) == 1

    @property
    def row_size(self) -> int:
        return int(np.prod(self.feature_shape)) if self.feature_shape else 1

    def read(self, idx: Any) -> np.ndarray:
        """Dense float batch of the rows ``idx`` (positions), in that order."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n_rows):
            raise IndexError(f"row positions {idx.min()}..{idx.max()} are outside 0.."
                             f"{self.n_rows - 1} of X ({self.kind}).")
        block = _float(self._read(idx))
        _check_finite(block, idx, self.describe())
        return block

    def iter_batches(self, batch_size: int) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(start, stop, batch)`` over every row in order."""
        for start in range(0, self.n_rows, batch_size):
            stop = min(start + batch_size, self.n_rows)
            yield start, stop, self.read(np.arange(start, stop))

    def n_batches(self, batch_size: int) -> int:
        return -(-self.n_rows // batch_size)

    def take(self, idx: np.ndarray) -> RowSource:
        """A lazy source of the rows ``idx`` of this one."""
        return _Taken(self, np.asarray(idx, dtype=np.int64))

    def user_rows(self, idx: np.ndarray) -> Any:
        """The user's object restricted to the rows ``idx`` (for ``train_fn``), or None."""
        return None

    def sparse_matrix(self) -> Any:
        """The whole source as a scipy CSR matrix when it is stored sparse, else None."""
        return None

    def columns(self, cols: Sequence[int]) -> np.ndarray:
        """Dense float64 (n_rows, len(cols)) block of some columns of a tabular source."""
        cols = np.asarray(cols, dtype=np.int64)
        out = np.empty((self.n_rows, len(cols)), dtype=np.float64)
        for start, stop, batch in self.iter_batches(BLOCK_ROWS):
            out[start:stop] = batch[:, cols]
        return out

    def describe(self) -> str:
        what = KIND_NAMES.get(self.kind, f"a {self.kind}")
        shape = " x ".join(str(d) for d in self.feature_shape)
        return f"{what} of {self.n_rows} rows x {shape}"

    def _read(self, idx: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, shape={(self.n_rows,) + self.feature_shape})"


class _Taken(RowSource):
    """Rows ``idx`` of another source (a lazy ``AuditData.subset``)."""

    def __init__(self, parent: RowSource, idx: np.ndarray) -> None:
        super().__init__(len(idx), parent.feature_shape, parent.feature_names,
                         parent.index[idx])
        self.parent, self.idx = parent, idx
        self.kind = parent.kind
        self.is_sparse = parent.is_sparse

    def _read(self, idx: np.ndarray) -> np.ndarray:
        return self.parent.read(self.idx[idx])

    def take(self, idx: np.ndarray) -> RowSource:
        return _Taken(self.parent, self.idx[np.asarray(idx, dtype=np.int64)])

    def user_rows(self, idx: np.ndarray) -> Any:
        return self.parent.user_rows(self.idx[idx])

    def sparse_matrix(self) -> Any:
        mat = self.parent.sparse_matrix()
        return None if mat is None else mat[self.idx]


class ArraySource(RowSource):
    """An array-like that slices lazily: ``numpy.memmap``, ``h5py.Dataset``, ``zarr.Array``,
    a scipy sparse matrix, or an AnnData matrix (``X``, a layer, an ``obsm`` entry)."""

    def __init__(self, arr: Any, kind: str, *, feature_names: Sequence[str] | None = None,
                 index: Any = None, user: Any = None) -> None:
        shape = tuple(int(s) for s in arr.shape)
        if len(shape) < 2:
            raise ValueError(f"X ({kind}) has shape {shape}; expected at least 2 dimensions "
                             "(n_samples, n_features).")
        super().__init__(shape[0], shape[1:], feature_names, index)
        self.arr, self.kind, self.user = arr, kind, user
        self.is_sparse = _is_sparse(arr) or _is_backed_sparse(arr)
        self._zarr = type(arr).__module__.startswith("zarr")
        if _is_sparse(arr):
            data = np.asarray(arr.data)
            if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
                bad = ~np.isfinite(data)
                rows = np.unique(arr.tocoo().row[~np.isfinite(arr.tocoo().data)])[:5]
                what = "NaN" if np.isnan(data[bad]).any() else "infinite"
                raise ValueError(
                    f"X ({self.describe()}) contains {int(bad.sum())} {what} value(s) among its "
                    f"stored entries, in row(s) {rows.tolist()}; expected finite numbers "
                    "(impute or drop them before the audit).")

    def _read(self, idx: np.ndarray) -> np.ndarray:
        if len(idx) == 0:
            return np.empty((0,) + self.feature_shape, dtype=np.float32)
        if idx[-1] - idx[0] + 1 == len(idx) and np.all(np.diff(idx) == 1):
            block = self.arr[int(idx[0]):int(idx[-1]) + 1]
        else:  # h5py and zarr want increasing unique positions
            uniq, inv = np.unique(idx, return_inverse=True)
            block = self.arr.oindex[uniq] if self._zarr else self.arr[uniq]
            block = _dense(block)[inv]
        return np.asarray(_dense(block))

    def user_rows(self, idx: np.ndarray) -> Any:
        if self.user is not None and type(self.user).__name__ == "AnnData":
            return self.user[np.asarray(idx)]
        return None

    def sparse_matrix(self) -> Any:
        if not self.is_sparse:
            return None
        import scipy.sparse as sp

        mat = self.arr if _is_sparse(self.arr) else self.arr[:]
        return sp.csr_matrix(mat, dtype=np.float64)

    def columns(self, cols: Sequence[int]) -> np.ndarray:
        mat = self.sparse_matrix()
        if mat is not None:
            return np.asarray(mat[:, np.asarray(cols)].toarray(), dtype=np.float64)
        return super().columns(cols)


class DatasetSource(RowSource):
    """A map-style torch ``Dataset`` (or the dataset of a sequential ``DataLoader``) yielding
    ``x`` or ``(x, y, ...)``; a ``DataLoader``'s batches (its batch size, workers and
    ``collate_fn``) are used for the passes over every row."""

    def __init__(self, dataset: Any, loader: Any = None) -> None:
        self.dataset, self.loader = dataset, loader
        self.kind = "dataloader" if loader is not None else "torch_dataset"
        try:
            n = len(dataset)
        except TypeError:
            raise TypeError(f"X is a torch Dataset ({type(dataset).__name__}) without __len__; "
                            "expected a map-style Dataset with a length.") from None
        if n < 2:
            raise ValueError(f"X is a torch Dataset of {n} item(s); expected at least 2 samples.")
        x0, y0 = _split_item(dataset[0], type(dataset).__name__)
        self.has_labels = y0 is not None
        super().__init__(n, np.shape(x0))
        self._labels: np.ndarray | None = None

    def _read(self, idx: np.ndarray) -> np.ndarray:
        xs = [_to_numpy(_split_item(self.dataset[int(i)], None)[0]) for i in idx]
        return _stack(xs, idx, self.feature_shape, type(self.dataset).__name__)

    def iter_batches(self, batch_size: int) -> Iterator[tuple[int, int, np.ndarray]]:
        if self.loader is None:
            yield from super().iter_batches(batch_size)
            return
        start = 0
        for batch in self.loader:
            xb = _to_numpy(batch[0] if isinstance(batch, (tuple, list)) else batch)
            stop = start + len(xb)
            xb = _float(xb)
            _check_finite(xb, np.arange(start, stop), self.describe())
            yield start, stop, xb
            start = stop
        if start != self.n_rows:
            raise ValueError(f"X (a DataLoader) yielded {start} rows but its dataset has "
                             f"{self.n_rows}; expected every row once, in order.")

    def n_batches(self, batch_size: int) -> int:
        return len(self.loader) if self.loader is not None else super().n_batches(batch_size)

    def labels(self) -> np.ndarray:
        """The ``y`` of every item (one pass over the dataset, read once)."""
        if self._labels is None:
            ys = []
            if self.loader is not None:
                for batch in self.loader:
                    ys.append(np.asarray(_to_numpy(batch[1])).reshape(-1))
            else:
                for i in range(self.n_rows):
                    ys.append(np.asarray(_to_numpy(_split_item(self.dataset[i], None)[1]))
                              .reshape(-1))
            self._labels = np.concatenate(ys)
        return self._labels

    def user_rows(self, idx: np.ndarray) -> Any:
        from torch.utils.data import Subset

        return Subset(self.dataset, [int(i) for i in idx])

    def describe(self) -> str:
        name = type(self.dataset).__name__
        what = "a DataLoader over" if self.loader is not None else "a torch Dataset"
        return f"{what} {name} of {self.n_rows} items of shape {self.feature_shape}"


# ---------------------------------------------------------------- detection
def _is_sparse(X: Any) -> bool:
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover
        return False
    return bool(sp.issparse(X))


def _is_backed_sparse(X: Any) -> bool:
    return type(X).__module__.startswith("anndata") and hasattr(X, "format") and hasattr(
        X, "shape")


def _module(X: Any) -> str:
    return type(X).__module__.split(".")[0]


def is_lazy_input(X: Any) -> bool:
    """Whether ``X`` is read through a :class:`RowSource` (not copied) by ``AuditData``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> is_lazy_input(np.zeros((3, 2))), is_lazy_input(sp.eye(3, format="csr"))
    (False, True)
    """
    if isinstance(X, np.memmap) or _is_sparse(X):
        return True
    if _module(X) == "anndata" and type(X).__name__ == "AnnData":
        return True
    if _module(X) == "h5py" and type(X).__name__ == "Dataset":
        return True
    if _module(X) == "zarr" and type(X).__name__ == "Array":
        return True
    if torch is not None:
        from torch.utils.data import DataLoader, Dataset

        return isinstance(X, (Dataset, DataLoader))
    return False


def as_source(X: Any, *, feature_names: Sequence[str] | None = None, layer: str | None = None,
              obsm: str | None = None) -> RowSource | None:
    """The :class:`RowSource` of a lazy input, or None for an in-memory one.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> as_source(np.zeros((3, 2))) is None
    True
    >>> src = as_source(sp.random(5, 3, density=0.5, format="csr", random_state=0))
    >>> src.kind, src.n_rows, src.feature_shape, src.read([4, 0]).shape
    ('sparse', 5, (3,), (2, 3))
    """
    if (layer is not None or obsm is not None) and not (
            _module(X) == "anndata" and type(X).__name__ == "AnnData"):
        which = "layer" if layer is not None else "obsm"
        raise TypeError(f"{which}={layer if layer is not None else obsm!r} was given but X has "
                        f"type {type(X).__name__}; expected an anndata.AnnData (layer= and obsm= "
                        "choose which of its matrices to audit).")
    if not is_lazy_input(X):
        return None
    if _module(X) == "anndata":
        return _anndata_source(X, layer, obsm, feature_names)
    if torch is not None:
        from torch.utils.data import DataLoader, Dataset, IterableDataset, SequentialSampler

        if isinstance(X, DataLoader):
            if isinstance(X.dataset, IterableDataset):
                raise TypeError(f"X is a DataLoader over an IterableDataset "
                                f"({type(X.dataset).__name__}); expected a map-style Dataset, "
                                "since the audit reads rows by index (its samples, and the rows "
                                "that must stay aligned with metadata).")
            if X.batch_size is None:
                raise ValueError("X is a DataLoader with batch_size=None; expected batches "
                                 "(batch_size >= 1).")
            if not isinstance(X.sampler, SequentialSampler):
                raise ValueError(f"X is a DataLoader with sampler {type(X.sampler).__name__} "
                                 "(shuffle=True or a custom sampler); expected shuffle=False, "
                                 "since rows must stay aligned with y and metadata.")
            if X.drop_last:
                raise ValueError("X is a DataLoader with drop_last=True; expected "
                                 "drop_last=False, since every row must be scored.")
            return DatasetSource(X.dataset, loader=X)
        if isinstance(X, IterableDataset):
            raise TypeError(f"X is an IterableDataset ({type(X).__name__}); expected a "
                            "map-style torch Dataset (with __len__ and __getitem__), since the "
                            "audit reads rows by index and keeps them aligned with metadata.")
        if isinstance(X, Dataset):
            return DatasetSource(X)
    kind = ("sparse" if _is_sparse(X) else "memmap" if isinstance(X, np.memmap)
            else _module(X))
    src = ArraySource(X, kind)
    src.feature_names = _names(src, feature_names)
    return src


def _names(src: RowSource, given: Sequence[str] | None) -> list[str]:
    if not src.is_tabular:
        return list(map(str, given)) if given is not None else []
    d = src.feature_shape[0]
    if given is None:
        return [f"x{j}" for j in range(d)]
    names = [str(n) for n in given]
    if len(names) != d:
        raise ValueError(f"feature_names has {len(names)} names but X has {d} columns; expected "
                         "one name per column.")
    return names


def _anndata_source(adata: Any, layer: str | None, obsm: str | None,
                    feature_names: Sequence[str] | None) -> RowSource:
    if layer is not None and obsm is not None:
        raise ValueError(f"layer={layer!r} and obsm={obsm!r} were both given; expected one "
                         "(the matrix to audit), or neither for adata.X.")
    index = pd.Index(adata.obs_names)
    if obsm is not None:
        keys = list(adata.obsm.keys())
        if obsm not in keys:
            raise ValueError(f"obsm={obsm!r} is not a key of adata.obsm; expected one of {keys}.")
        mat = adata.obsm[obsm]
        if isinstance(mat, pd.DataFrame):
            names = [str(c) for c in mat.columns]
            mat = mat.to_numpy()
        else:
            names = [f"{obsm}_{j + 1}" for j in range(int(mat.shape[1]))]
        src = ArraySource(mat, "anndata", feature_names=names, index=index, user=adata)
        return src
    if layer is not None:
        keys = list(adata.layers.keys())
        if layer not in keys:
            raise ValueError(f"layer={layer!r} is not a layer of the AnnData; expected one of "
                             f"{keys}.")
        mat = adata.layers[layer]
    else:
        mat = adata.X
        if mat is None:
            raise ValueError("X is an AnnData whose X is None; expected a matrix (or pass "
                             "layer= or obsm=).")
    names = ([str(n) for n in adata.var_names] if feature_names is None
             else list(map(str, feature_names)))
    return ArraySource(mat, "anndata", feature_names=names, index=index, user=adata)


# ---------------------------------------------------------------- helpers
def _dense(block: Any) -> Any:
    if hasattr(block, "toarray"):
        return block.toarray()
    return block


def _to_numpy(x: Any) -> Any:
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return x


def _split_item(item: Any, name: str | None) -> tuple[Any, Any]:
    """``(x, y)`` of a dataset item: ``x``, or ``(x, y, ...)``."""
    if isinstance(item, (tuple, list)):
        if not item:
            raise ValueError(f"the Dataset {name or ''} yields an empty item; expected x or "
                             "(x, y).")
        return item[0], (item[1] if len(item) > 1 else None)
    if isinstance(item, dict):
        raise TypeError(f"the Dataset {name or ''} yields dicts (keys {list(item)}); expected x "
                        "or (x, y) tuples (wrap it in a Dataset that returns them).")
    return item, None


def _stack(xs: list[Any], idx: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    if not xs:
        return np.empty((0,) + shape, dtype=np.float32)
    for i, x in zip(idx, xs):
        if np.shape(x) != shape:
            raise ValueError(f"item {int(i)} of the Dataset {name} has shape {np.shape(x)}; "
                             f"expected {shape} (the shape of item 0) for every item.")
    return np.stack([np.asarray(x) for x in xs])


class LazyRows:
    """Array-like view of a :class:`RowSource`: ``X[rows]`` reads those rows (dense).

    ``np.asarray(X)`` materialises every row as float64, refused above
    :data:`MAX_DENSE_BYTES` (the point of a lazy input is never to make that copy).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = LazyRows(as_source(sp.eye(4, format="csr")))
    >>> X.shape, X[1:3].tolist()
    ((4, 4), [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    """

    def __init__(self, source: RowSource) -> None:
        self.source = source

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.source.n_rows,) + self.source.feature_shape

    @property
    def ndim(self) -> int:
        return 1 + len(self.source.feature_shape)

    def __len__(self) -> int:
        return self.source.n_rows

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            out = self.source.read([int(key)])[0]
            return out[rest] if rest else out
        if isinstance(key, slice):
            idx = np.arange(self.source.n_rows)[key]
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
        out = self.source.read(idx)
        return out[(slice(None),) + rest] if rest else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        size = self.source.n_rows * self.source.row_size * 8
        if size > MAX_DENSE_BYTES:
            raise MemoryError(
                f"X ({self.source.describe()}) would take {size / 2**20:.0f} MB as a dense "
                f"float64 array; confoundry reads it in batches instead (this step asked for "
                f"all of it at once; the limit is {MAX_DENSE_BYTES // 2**20} MB).")
        out = np.concatenate([b for _, _, b in self.source.iter_batches(BLOCK_ROWS)], axis=0)
        return out.astype(dtype or np.float64, copy=False)

    def __repr__(self) -> str:
        return f"LazyRows({self.source!r})"


def map_rows(fn: Any, X: Any, batch_size: int = 4096) -> np.ndarray:
    """``fn`` applied to ``X`` (an AuditData or array); for a lazy input, batch by batch (dense
    batches of at most ``batch_size`` rows and :data:`MAP_BATCH_BYTES`), concatenated.

    Examples
    --------
    >>> import numpy as np
    >>> map_rows(lambda b: np.asarray(b).sum(axis=1), np.ones((3, 2))).tolist()
    [2.0, 2.0, 2.0]
    """
    src = getattr(X, "source", None)
    if src is None:
        return np.asarray(fn(X))
    # wide rows (thousands of genes): at most MAP_BATCH_BYTES of float64 per batch
    rows = max(1, min(batch_size, MAP_BATCH_BYTES // (8 * max(src.row_size, 1))))
    return np.concatenate([np.asarray(fn(b)) for _, _, b in src.iter_batches(rows)], axis=0)
