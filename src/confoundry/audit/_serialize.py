"""One generic serializer for the audit's results: JSON plus numpy arrays, never pickle.

:func:`dump` writes a result as ``result.json`` (the structure, every scalar and string) and
``arrays.npz`` (every numeric, boolean, string or datetime array, saved with
``allow_pickle=False``); :func:`load` rebuilds it. It walks what it finds:

- scalars, lists, tuples, sets and dicts (any keys) recursively; non-finite floats and numpy
  scalars keep their value and type;
- ndarrays (object arrays element by element), pandas DataFrames, Series and Index objects
  (every dtype: numeric, categorical, extension, datetime, interval; the index and the column
  labels too);
- frozen result dataclasses through :func:`dataclasses.fields`, and other objects (the fitted
  glass-box baselines and their scikit-learn / interpret estimators) through their attribute
  dictionary, or their ``__reduce__`` state for the Cython tree of scikit-learn.

Classes are rebuilt only from the packages in :data:`ALLOWED`, without calling ``__init__``; a
result that holds anything else (a user's model, a function) raises :class:`NotStorable`, and
the audit then simply recomputes that step on the next run. Nothing here unpickles anything.

Examples
--------
>>> import tempfile, numpy as np, pandas as pd
>>> from confoundry._result import Finding
>>> obj = {"f": Finding("x", "low", 3, "t"), "a": np.arange(3), (1, 2): pd.Series([1.5])}
>>> with tempfile.TemporaryDirectory() as d:
...     dump(obj, d)
...     back = load(d)
>>> back["f"] == obj["f"], back["a"].tolist(), back[(1, 2)].tolist()
(True, [0, 1, 2], [1.5])
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

#: packages whose classes may be rebuilt from a checkpoint (data-only state, no code).
ALLOWED = ("confoundry", "sklearn", "interpret")
#: the only classes rebuilt by calling them (with data arguments), from their ``__reduce__``.
REDUCE_ALLOWED = ("sklearn.tree._tree:Tree",)
FORMAT = 1
_ARRAY_KINDS = "biufcmMSU"


class NotStorable(TypeError):
    """A value the checkpoint format cannot hold (a user's object, a function, ...)."""


def _cls_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_cls(path: str) -> type:
    module, _, qual = path.partition(":")
    if module.split(".")[0] not in ALLOWED:
        raise NotStorable(f"class {path!r} is not from {ALLOWED}; refusing to rebuild it.")
    obj: Any = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise NotStorable(f"{path!r} is not a class.")
    return obj


class _Writer:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, a: np.ndarray) -> dict[str, Any]:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = a  # np.save keeps a Fortran order (sums stay bit-equal)
        return {"__t": "nd", "k": key}

    def enc(self, o: Any, where: str = "result") -> Any:  # noqa: C901 - one dispatch table
        if o is None or isinstance(o, (bool, str)):
            return o
        if isinstance(o, int) and not isinstance(o, np.integer):
            return o
        if isinstance(o, float) and not isinstance(o, np.floating):
            return o if math.isfinite(o) else {"__t": "float", "v": repr(o)}
        if isinstance(o, np.generic):
            if o.dtype.kind not in _ARRAY_KINDS:
                raise NotStorable(f"{where}: numpy scalar of dtype {o.dtype}")
            return {"__t": "npscalar", "v": self.array(np.asarray(o))}
        if isinstance(o, np.ndarray):
            if o.dtype.kind in _ARRAY_KINDS or (o.dtype.kind == "V" and o.dtype.names
                                                and not o.dtype.hasobject):
                return self.array(o)
            if o.dtype.kind == "O":
                return {"__t": "objarray", "shape": list(o.shape),
                        "v": [self.enc(v, where) for v in o.ravel().tolist()]}
            raise NotStorable(f"{where}: array of dtype {o.dtype}")
        if isinstance(o, list):
            return [self.enc(v, f"{where}[{i}]") for i, v in enumerate(o)]
        if isinstance(o, tuple):
            return {"__t": "tuple", "v": [self.enc(v, f"{where}[{i}]") for i, v in enumerate(o)]}
        if isinstance(o, (set, frozenset)):
            return {"__t": type(o).__name__, "v": [self.enc(v, where) for v in o]}
        if isinstance(o, pd.DataFrame):
            return {"__t": "frame", "index": self.enc(o.index, where),
                    "columns": self.enc(o.columns, where),
                    "data": [self._values(o.iloc[:, i], f"{where}[{i}]")
                             for i in range(o.shape[1])]}
        if isinstance(o, pd.Series):
            return {"__t": "series", "v": self._values(o, where), "index": self.enc(o.index),
                    "name": self.enc(o.name)}
        if isinstance(o, pd.Index):
            return self._index(o, where)
        if isinstance(o, pd.Categorical):
            return self._values(pd.Series(o), where)
        if isinstance(o, pd.Interval):
            return {"__t": "interval", "l": self.enc(o.left), "r": self.enc(o.right),
                    "closed": o.closed}
        if isinstance(o, (pd.Timestamp, pd.Timedelta)):
            return {"__t": type(o).__name__, "v": o.isoformat()}
        if o is pd.NaT:
            return {"__t": "NaT"}
        if o is pd.NA:
            return {"__t": "NA"}
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            self._check_class(type(o), where)
            return {"__t": "dataclass", "cls": _cls_path(type(o)),
                    "f": {f.name: self.enc(getattr(o, f.name), f"{where}.{f.name}")
                          for f in dataclasses.fields(o)}}
        if isinstance(o, dict) or (isinstance(o, Mapping) and not hasattr(o, "__dict__")):
            items = list(o.items())
            return {"__t": "dict", "k": [self.enc(k, where) for k, _ in items],
                    "v": [self.enc(v, f"{where}[{k!r}]") for k, v in items]}
        return self._object(o, where)

    def _check_class(self, cls: type, where: str) -> None:
        if cls.__module__.split(".")[0] not in ALLOWED:
            raise NotStorable(f"{where} holds a {_cls_path(cls)}, which a checkpoint does not "
                              f"store (only objects of {ALLOWED}).")

    def _object(self, o: Any, where: str) -> dict[str, Any]:
        cls = type(o)
        self._check_class(cls, where)
        state = getattr(o, "__dict__", None)
        if state is not None and cls.__reduce_ex__ is object.__reduce_ex__:
            out = {}
            for k, v in state.items():
                try:
                    out[k] = self.enc(v, f"{where}.{k}")
                except NotStorable:
                    if not k.startswith("_"):
                        raise
                    out[k] = None  # a private cache (e.g. a shap explainer): rebuilt on use
            return {"__t": "object", "cls": _cls_path(cls), "state": out}
        if _cls_path(cls) not in REDUCE_ALLOWED:
            raise NotStorable(f"{where}: {_cls_path(cls)} has no data-only state")
        rv = o.__reduce__()  # scikit-learn's Cython Tree: (Tree, args, state)
        if not isinstance(rv, tuple) or rv[0] is not cls or len(rv) < 2:
            raise NotStorable(f"{where}: {_cls_path(cls)} has no data-only state")
        return {"__t": "reduce", "cls": _cls_path(cls), "args": self.enc(tuple(rv[1]), where),
                "state": self.enc(rv[2] if len(rv) > 2 else None, where)}

    def _index(self, idx: pd.Index, where: str) -> dict[str, Any]:
        if isinstance(idx, pd.RangeIndex):
            return {"__t": "range", "v": [idx.start, idx.stop, idx.step],
                    "name": self.enc(idx.name)}
        if isinstance(idx, pd.MultiIndex):
            return {"__t": "multiindex", "levels": [self._index(lv, where) for lv in idx.levels],
                    "codes": [self.array(np.asarray(c)) for c in idx.codes],
                    "names": self.enc(list(idx.names))}
        return {"__t": "index", "v": self._values(pd.Series(idx, copy=False), where),
                "name": self.enc(idx.name)}

    def _values(self, s: pd.Series, where: str) -> dict[str, Any]:
        dtype = s.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            return {"__t": "categorical", "codes": self.array(np.asarray(s.cat.codes)),
                    "categories": self._index(dtype.categories, where),
                    "ordered": bool(dtype.ordered)}
        if isinstance(dtype, np.dtype):
            return {"__t": "col", "v": self.enc(s.to_numpy(), where)}
        return {"__t": "ext", "dtype": str(dtype),
                "v": [self.enc(v, where) for v in s.astype(object).tolist()]}


class _Reader:
    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.arrays = arrays

    def dec(self, o: Any) -> Any:  # noqa: C901 - one dispatch table
        if isinstance(o, list):
            return [self.dec(v) for v in o]
        if not isinstance(o, dict):
            return o
        t = o["__t"]
        if t == "nd":
            return np.array(self.arrays[o["k"]])
        if t == "npscalar":
            return self.dec(o["v"])[()]
        if t == "float":
            return float(o["v"])
        if t == "objarray":
            out = np.empty(len(o["v"]), dtype=object)
            out[:] = [self.dec(v) for v in o["v"]]
            return out.reshape(o["shape"])
        if t == "tuple":
            return tuple(self.dec(v) for v in o["v"])
        if t in ("set", "frozenset"):
            return (set if t == "set" else frozenset)(self.dec(v) for v in o["v"])
        if t == "dict":
            return {self.dec(k): self.dec(v) for k, v in zip(o["k"], o["v"])}
        if t == "frame":
            index, columns = self.dec(o["index"]), self.dec(o["columns"])
            cols = [self.dec(c) for c in o["data"]]
            frame = pd.DataFrame(dict(enumerate(cols)), index=index) if cols else \
                pd.DataFrame(index=index, columns=range(0))
            frame.columns = columns
            return frame
        if t == "series":
            return pd.Series(self.dec(o["v"]), index=self.dec(o["index"]), name=self.dec(o["name"]),
                             copy=False)
        if t == "range":
            return pd.RangeIndex(*o["v"], name=self.dec(o["name"]))
        if t == "multiindex":
            return pd.MultiIndex(levels=[self.dec(lv) for lv in o["levels"]],
                                 codes=[self.dec(c) for c in o["codes"]],
                                 names=self.dec(o["names"]))
        if t == "index":
            return pd.Index(self.dec(o["v"]), name=self.dec(o["name"]), tupleize_cols=False)
        if t == "categorical":
            return pd.Categorical.from_codes(self.dec(o["codes"]), self.dec(o["categories"]),
                                             ordered=o["ordered"])
        if t == "col":
            return self.dec(o["v"])
        if t == "ext":
            return pd.array([self.dec(v) for v in o["v"]], dtype=o["dtype"])
        if t == "interval":
            return pd.Interval(self.dec(o["l"]), self.dec(o["r"]), closed=o["closed"])
        if t == "Timestamp":
            return pd.Timestamp(o["v"])
        if t == "Timedelta":
            return pd.Timedelta(o["v"])
        if t == "NaT":
            return pd.NaT
        if t == "NA":
            return pd.NA
        if t == "dataclass":
            cls = _import_cls(o["cls"])
            obj = object.__new__(cls)
            for k, v in o["f"].items():
                object.__setattr__(obj, k, self.dec(v))
            return obj
        if t == "object":
            cls = _import_cls(o["cls"])
            obj = object.__new__(cls)
            obj.__dict__.update({k: self.dec(v) for k, v in o["state"].items()})
            return obj
        if t == "reduce":
            if o["cls"] not in REDUCE_ALLOWED:
                raise NotStorable(f"class {o['cls']!r} is not rebuilt by calling it; refusing.")
            cls = _import_cls(o["cls"])
            obj = cls(*self.dec(o["args"]))
            state = self.dec(o["state"])
            if state is not None:
                obj.__setstate__(state)
            return obj
        raise ValueError(f"unknown tag {t!r} in a checkpoint; expected one written by "
                         f"confoundry's checkpoint format {FORMAT}.")


def encode(obj: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """``(tree, arrays)``: a JSON-safe tree and the arrays it refers to by name."""
    w = _Writer()
    return w.enc(obj), w.arrays


def decode(tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """The object :func:`encode` encoded."""
    return _Reader(arrays).dec(tree)


def dump(obj: Any, folder: str | os.PathLike, *, meta: Mapping[str, Any] | None = None) -> None:
    """Write ``obj`` to ``folder`` as ``result.json`` and ``arrays.npz`` (no pickle)."""
    tree, arrays = encode(obj)
    text = json.dumps({"format": FORMAT, "meta": dict(meta or {}), "result": tree},
                      allow_nan=False)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "arrays.npz"), "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    with open(os.path.join(folder, "result.json"), "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def read_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``meta`` mapping :func:`dump` stored with a result (without decoding the result)."""
    with open(os.path.join(folder, "result.json"), encoding="utf-8") as fh:
        doc = json.load(fh)
    if doc.get("format") != FORMAT:
        raise ValueError(f"format={doc.get('format')!r} is not valid; expected {FORMAT}.")
    return dict(doc["meta"])


def load(folder: str | os.PathLike) -> Any:
    """The object stored in ``folder`` by :func:`dump`."""
    with open(os.path.join(folder, "result.json"), encoding="utf-8") as fh:
        doc = json.load(fh)
    if doc.get("format") != FORMAT:
        raise ValueError(f"format={doc.get('format')!r} is not valid; expected {FORMAT}.")
    with np.load(os.path.join(folder, "arrays.npz"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return decode(doc["result"], arrays)
