"""``as_model``: one face for torch modules, scikit-learn estimators and plain callables.

One module past 450 lines: batching, output resolution (logits, probabilities, values), the
output-width and device checks all serve one contract, ``predict_scores``, and read the same
adapter state; split apart, each piece would need the others' internals.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from .._utils import progress
from ..data._audit_data import AuditData
from ..data._sources import LazyRows, as_source, is_lazy_input
from ..data._validation import check_positive_int, describe

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

OUTPUTS = ("auto", "logits", "probabilities", "values")
#: a pass over a lazy input (Dataset, AnnData, array on disk) of at least this many batches
#: shows a progress bar unless ``verbose=False``.
PROGRESS_MIN_BATCHES = 10
#: a batch of image or sequence rows holds at most this many bytes of float32 input (the
#: activations of a convolutional network are many times that); tabular rows keep
#: ``batch_size``. A ``DataLoader`` keeps its own batches.
IMAGE_BATCH_BYTES = 8 * 2**20


def rows_per_batch(batch_size: int, row_shape: tuple[int, ...]) -> int:
    """``batch_size``, lowered for large image or sequence rows (:data:`IMAGE_BATCH_BYTES`).

    Examples
    --------
    >>> rows_per_batch(1024, (20,)), rows_per_batch(1024, (1, 128, 128))
    (1024, 128)
    """
    if len(row_shape) <= 1:
        return batch_size
    size = int(np.prod(row_shape)) * 4
    return max(1, min(batch_size, IMAGE_BATCH_BYTES // max(size, 1)))
#: an object with any of these is scored as an estimator (the first one it has, in this order,
#: for a classifier; ``predict`` for a regressor).
_ESTIMATOR_METHODS = ("predict_proba", "decision_function", "predict")


def _is_torch_module(obj: Any) -> bool:
    return torch is not None and isinstance(obj, torch.nn.Module)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(z)


def _softmax(z: np.ndarray) -> np.ndarray:
    from scipy.special import softmax

    return softmax(z, axis=1)


class ModelAdapter:
    """A model seen through one interface. Build it with :func:`as_model`.

    Attributes
    ----------
    model : the wrapped object (never modified)
    kind : {"torch", "sklearn", "callable", "scorer"}
    output : {"auto", "logits", "probabilities", "values"}
        What the raw model returns; ``output_`` holds the resolved choice after the first call.
    batch_size : int
    device : torch.device or None

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)); y = (X[:, 0] > 0).astype(int)
    >>> m = as_model(LogisticRegression().fit(X, y))
    >>> m.kind, m.output, m.output_
    ('sklearn', 'auto', None)
    >>> m.predict_scores(X[:3]).shape, m.output_          # resolved on the first call
    ((3,), 'probabilities')
    """

    def __init__(self, model: Any, kind: str, *, preprocess: Callable | None, output: str,
                 batch_size: int, device: Any, task: str | None = None,
                 name: str | None = None) -> None:
        self.model = model
        self.kind = kind
        self.preprocess = preprocess
        self.output = output
        self.output_: str | None = None if output == "auto" else output
        self.batch_size = batch_size
        self.device = device
        self.task = task
        self.name = name or type(model).__name__
        self._module = model
        if kind == "torch":
            own = _module_device(model)
            if device is not None:
                check_device(device)
            if device is not None and torch.device(device) != own:
                # never move the user's model: run a copy on the requested device
                self._module = copy.deepcopy(model).to(device)
                self.device = torch.device(device)
            else:
                self.device = own
            self._dtype = _module_dtype(model)

    # ----------------------------------------------------------------- public
    def check_outputs(self, X: Any, *, task: str, n_classes: int | None = None) -> None:
        """Raise a clear error when the model's output width does not fit ``task``.

        One output (or two class columns) for a binary task, one for a regression, ``K`` for a
        multiclass task with ``K`` classes. Runs the model on at most 8 rows of ``X``.

        Examples
        --------
        >>> import torch
        >>> m = as_model(torch.nn.Linear(3, 1), output="logits")
        >>> m.check_outputs(torch.zeros(4, 3), task="multiclass", n_classes=3)
        Traceback (most recent call last):
        ...
        ValueError: model 'Linear' returns 1 output(s) per row, but the labels have 3 classes ...
        """
        raw = self.predict_raw(_take(X, slice(0, min(8, _n_rows(X)))))
        width = 1 if raw.ndim == 1 else int(raw.shape[1])
        if task == "multiclass" and n_classes is not None and width != n_classes:
            raise ValueError(
                f"model {self.name!r} returns {width} output(s) per row, but the labels have "
                f"{n_classes} classes (task='multiclass'); expected {n_classes} outputs, one per "
                "class. If y is not a class label (e.g. an integer score), pass "
                "task='regression'; if the model is binary, recode y to 0/1.")
        if task == "binary" and width > 2:
            raise ValueError(
                f"model {self.name!r} returns {width} outputs per row, but the labels are binary "
                "(task='binary'); expected 1 output (a logit or P(y = 1)) or 2 class columns. "
                "If there are more classes, pass task='multiclass' with y coded 0..K-1.")
        if task == "regression" and width != 1:
            raise ValueError(
                f"model {self.name!r} returns {width} outputs per row, but the task is "
                "'regression'; expected one predicted value per row (or pass task= to say "
                "what y is).")

    @property
    def module(self) -> Any:
        """The torch module used for inference (the user's, or a device copy); None otherwise."""
        return self._module if self.kind == "torch" else None

    @property
    def is_torch(self) -> bool:
        return self.kind == "torch"

    def predict_scores(self, X: Any, *, verbose: bool | None = None) -> np.ndarray:
        """Scores for every row of ``X``, computed in batches.

        Returns the probability of the positive class for binary tasks (shape ``(n,)``), class
        probabilities for multiclass (``(n, K)``) and predicted values for regression (``(n,)``).
        A lazy input (an :class:`~confoundry.AuditData` of a torch Dataset, AnnData or array on
        disk) is read batch by batch (a ``DataLoader``'s own batches); ``verbose`` shows a
        progress bar over the batches (``None``: for a lazy input of at least
        :data:`PROGRESS_MIN_BATCHES` batches).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.linear_model import LogisticRegression
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
        >>> m = as_model(LogisticRegression().fit(X, y))
        >>> m.predict_scores(X).shape
        (4,)
        """
        X = self._inputs(X)
        outs = []
        for start, stop, batch in self._batches(X, verbose):
            try:
                raw = self._raw_batch(batch)
            except Exception as exc:  # name the batch: the user needs to find it
                raise RuntimeError(
                    f"model {self.name!r} failed on the batch of rows {start}..{stop - 1} "
                    f"(batch_size={self.batch_size}): {type(exc).__name__}: {exc}"
                ) from exc
            if raw.shape[0] != stop - start:
                raise ValueError(
                    f"model {self.name!r} returned {raw.shape[0]} outputs for a batch of "
                    f"{stop - start} rows (rows {start}..{stop - 1}); expected one output per row."
                )
            outs.append(raw)
        raw = np.concatenate(outs, axis=0)
        if not np.all(np.isfinite(raw)):
            bad = np.flatnonzero(~np.isfinite(raw.reshape(len(raw), -1)).all(axis=1))
            raise ValueError(
                f"model {self.name!r} returned NaN or infinite outputs for {len(bad)} row(s) "
                f"(first rows {bad[:5].tolist()}); expected finite scores."
            )
        return self._to_scores(raw)

    def predict_raw(self, X: Any) -> np.ndarray:
        """The model's own outputs (logits for a logit model), batched, without transformation."""
        X = self._inputs(X)
        return np.concatenate([self._raw_batch(b) for _, _, b in self._batches(X, False)],
                              axis=0)

    def _batches(self, X: Any, verbose: bool | None) -> Any:
        """``(start, stop, batch)`` over the rows of ``X``: slices of an in-memory input, the
        source's own batches for a lazy one (with a progress bar when the pass is long)."""
        if isinstance(X, LazyRows):
            src = X.source
            rows = rows_per_batch(self.batch_size, src.feature_shape)
            total = src.n_batches(rows)
            show = total >= PROGRESS_MIN_BATCHES if verbose is None else bool(verbose)
            return progress(src.iter_batches(rows), total=total,
                            desc=f"scoring {self.name}", verbose=show)
        n = _n_rows(X)
        return ((s, min(s + self.batch_size, n), _take(X, slice(s, min(s + self.batch_size, n))))
                for s in range(0, n, self.batch_size))

    def __repr__(self) -> str:
        return (f"ModelAdapter(kind={self.kind!r}, model={self.name}, output={self.output!r}, "
                f"batch_size={self.batch_size})")

    # ---------------------------------------------------------------- helpers
    def _inputs(self, X: Any) -> Any:
        if isinstance(X, AuditData):
            X = X.X
        elif not isinstance(X, LazyRows) and is_lazy_input(X):  # a Dataset, AnnData, memmap...
            X = LazyRows(as_source(X))
        if isinstance(X, pd.Series):
            raise TypeError(f"X is a pandas Series ({describe(X)}); expected a 2-D DataFrame.")
        if _n_rows(X) == 0:
            raise ValueError("X has zero rows; expected at least one sample to score.")
        return X

    def _raw_batch(self, batch: Any) -> np.ndarray:
        if self.preprocess is not None:
            batch = self.preprocess(batch)
        if self.kind == "torch":
            return self._torch_batch(batch)
        if self.kind == "scorer":
            return np.asarray(self.model.predict_scores(batch), dtype=np.float64)
        if self.kind == "sklearn":
            return self._sklearn_batch(batch)
        out = self.model(batch)
        return _as_float_array(out)

    def _torch_batch(self, batch: Any) -> np.ndarray:
        module = self._module
        x = to_tensor(batch, device=self.device, dtype=self._dtype)
        modes = [m.training for m in module.modules()]
        try:
            module.eval()
            with torch.no_grad():
                out = module(x)
        finally:
            for m, mode in zip(module.modules(), modes):
                m.training = mode
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.detach().to("cpu", dtype=torch.float64).numpy()

    def _sklearn_batch(self, batch: Any) -> np.ndarray:
        m = self.model
        if (isinstance(batch, pd.DataFrame) and self.preprocess is None
                and hasattr(m, "n_features_in_") and not hasattr(m, "feature_names_in_")):
            # fitted on an array: give it an array (same column order), as it was trained
            batch = batch.to_numpy()
        has = {a: callable(getattr(m, a, None)) for a in _ESTIMATOR_METHODS}
        # a classifier: says so (classes_, sklearn tags), or can only give class scores, or
        # gives them for a task known to be a classification
        classifier = (_is_classifier(m) or not has["predict"] or (
            self.task in ("binary", "multiclass")
            and (has["predict_proba"] or has["decision_function"])))
        if has["predict"] and (self.task == "regression" or not classifier):
            self.output_ = "values"
            return np.asarray(m.predict(batch), dtype=np.float64)
        if has["predict_proba"]:
            self.output_ = "probabilities"
            return np.asarray(m.predict_proba(batch), dtype=np.float64)
        if has["decision_function"]:
            if self.output_ != "logits":
                warnings.warn(
                    f"model {self.name!r} has no predict_proba; its decision_function is turned "
                    "into scores with a sigmoid/softmax, so calibration metrics (Brier, log-loss, "
                    "ECE) describe that transform, not a calibrated probability.",
                    stacklevel=4,
                )
            self.output_ = "logits"
            return np.asarray(m.decision_function(batch), dtype=np.float64)
        warnings.warn(f"model {self.name!r} has only predict(); hard labels are used as scores.",
                      stacklevel=4)
        self.output_ = "labels"
        return np.asarray(m.predict(batch), dtype=np.float64)

    def _resolve_output(self, raw: np.ndarray) -> str:
        if self.output_ is not None:
            return self.output_
        if self.task == "regression":
            return "values"
        in_unit = bool(np.all((raw >= 0) & (raw <= 1)))
        if raw.ndim == 2 and raw.shape[1] > 1:
            sums_to_one = bool(np.allclose(raw.sum(axis=1), 1.0, atol=1e-4))
            return "probabilities" if (in_unit and sums_to_one) else "logits"
        if in_unit:
            return "probabilities"
        if self.task in ("binary", "multiclass"):
            return "logits"
        warnings.warn(
            f"output='auto' could not tell whether model {self.name!r} returns logits or "
            "regression values (outputs outside [0, 1], task unknown); treating them as logits. "
            "Pass output='logits' or output='values' to say which.", stacklevel=4)
        return "logits"

    def _to_scores(self, raw: np.ndarray) -> np.ndarray:
        self._check_multiclass_width(raw)
        out = self._resolve_output(raw)
        self.output_ = out
        if raw.ndim == 2 and raw.shape[1] == 1:
            raw = raw[:, 0]
        if out == "labels":
            return raw
        if out == "values":
            if raw.ndim != 1:
                raise ValueError(f"model {self.name!r} returned outputs of shape {raw.shape}; "
                                 "expected one value per row for a regression model.")
            return raw
        if out == "logits":
            if raw.ndim == 1:
                return _sigmoid(raw)
            p = _softmax(raw)
        else:
            if np.any((raw < 0) | (raw > 1)):
                raise ValueError(f"model {self.name!r} was declared output='probabilities' "
                                 "but returned values outside [0, 1]; pass output='logits'.")
            if raw.ndim == 1:
                return raw
            p = raw
        if self.task == "binary" and p.shape[1] > 2:
            raise ValueError(f"model {self.name!r} returns {p.shape[1]} outputs per row, but the "
                             "task is 'binary'; expected 1 output (a logit or P(y = 1)) or 2 "
                             "class columns (pass task='multiclass' for more classes).")
        if p.shape[1] == 2 and self.task != "multiclass":
            return p[:, 1]
        return p

    def _check_multiclass_width(self, raw: np.ndarray) -> None:
        if self.task == "multiclass" and (raw.ndim == 1 or raw.shape[1] == 1):
            raise ValueError(f"model {self.name!r} returns one output per row, but the task is "
                             "'multiclass'; expected one output per class (or pass "
                             "task='binary' / task='regression' to say what y is).")


def _is_classifier(est: Any) -> bool:
    if hasattr(est, "classes_"):
        return True
    try:
        from sklearn.base import is_classifier

        return bool(is_classifier(est))
    except Exception:  # non-sklearn objects without tags
        return getattr(est, "_estimator_type", None) == "classifier"


def check_device(device: Any) -> None:
    """Refuse a device this machine does not have, before anything runs on it.

    Examples
    --------
    >>> check_device("cpu")
    >>> check_device("tpu")
    Traceback (most recent call last):
    ...
    ValueError: device='tpu' is not valid; expected a torch device such as 'cpu' or 'cuda:0' ...
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device={device!r} is not valid; expected a torch device such as "
                         "'cpu' or 'cuda:0' (or None: the model's own device).") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} is not available: this torch "
                             f"({torch.__version__}) sees no CUDA GPU; expected device='cpu' or "
                             "None (the model's own device).")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} is not available: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s); expected an index "
                             f"below {torch.cuda.device_count()}.")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device={device!r} is not available on this machine; expected "
                             "device='cpu' or None.")
    elif dev.type not in ("cpu", "meta"):
        if not getattr(getattr(torch, dev.type, None), "is_available", lambda: False)():
            raise ValueError(f"device={device!r} is not available on this machine; expected "
                             "device='cpu' or None.")


def _module_device(module: Any) -> Any:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


def _module_dtype(module: Any) -> Any:
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def to_tensor(x: Any, *, device: Any = None, dtype: Any = None) -> Any:
    """A torch tensor view or copy of a DataFrame, ndarray or tensor (inputs are never written)."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        arr = np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x)
        if not arr.flags.writeable:  # pandas 3 hands out read-only views; torch wants writable
            arr = arr.copy()
        t = torch.as_tensor(arr)
    if dtype is not None:
        t = t.to(dtype)
    if device is not None:
        t = t.to(device)
    return t


def _as_float_array(out: Any) -> np.ndarray:
    if torch is not None and isinstance(out, torch.Tensor):
        return out.detach().cpu().to(torch.float64).numpy()
    if hasattr(out, "to_numpy"):
        out = out.to_numpy()
    arr = np.asarray(out)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"the model returned {arr.dtype} outputs; expected numbers.")
    return arr.astype(np.float64)


def _n_rows(X: Any) -> int:
    if hasattr(X, "shape"):
        return int(X.shape[0])
    return len(X)


def _take(X: Any, rows: slice) -> Any:
    if isinstance(X, (pd.DataFrame, pd.Series)):
        return X.iloc[rows]
    return X[rows]


def as_model(
    obj: Any,
    *,
    preprocess: Callable[[Any], Any] | None = None,
    output: str = "auto",
    batch_size: int = 1024,
    device: Any = None,
    task: str | None = None,
    name: str | None = None,
) -> ModelAdapter:
    """Wrap a model so that every confoundry step can score it the same way.

    Parameters
    ----------
    obj : torch.nn.Module, scikit-learn style estimator, callable or ModelAdapter
        Torch modules run batched in eval mode under ``torch.no_grad()``, and every module's
        ``training`` flag is restored afterwards. Estimators are scored with ``predict_proba``,
        else ``decision_function``, else ``predict``. A callable maps a batch of inputs to scores.
        Objects with a ``predict_scores`` method (confoundry's glass-box baselines) are used as is.
    preprocess : callable, optional
        Applied to each batch before the model (e.g. DataFrame -> tensor, scaling).
    output : {"auto", "logits", "probabilities", "values"}
        What the raw model returns. Logits become probabilities with a sigmoid (one output) or a
        softmax (several). ``"auto"`` decides from the task and the first outputs.
    batch_size : int
        Rows per forward pass.
    device : str or torch.device, optional
        Where a torch model runs. Defaults to the device of its parameters; another device runs a
        *copy* of the model there (the user's model is never moved).
    task : {"binary", "multiclass", "regression"}, optional
        Lets ``output="auto"`` tell logits from regression values.
    name : str, optional
        Display name in reports and error messages.

    Returns
    -------
    ModelAdapter

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 1))
    >>> m = as_model(net, output="logits")
    >>> m.predict_scores(torch.zeros(5, 3)).shape
    (5,)
    >>> net.training   # mode restored
    True
    """
    if isinstance(obj, ModelAdapter):
        if task is not None and obj.task is None:
            obj = copy.copy(obj)  # a view with the task filled in; the caller's adapter is kept
            obj.task = task
        return obj
    if output not in OUTPUTS:
        raise ValueError(f"output={output!r} is not valid; expected one of {OUTPUTS}.")
    batch_size = check_positive_int(batch_size, "batch_size")
    if preprocess is not None and not callable(preprocess):
        raise TypeError(f"preprocess={describe(preprocess)} is not callable; expected a function "
                        "that maps a batch of X to model inputs.")
    if task is not None and task not in ("binary", "multiclass", "regression"):
        raise ValueError(f"task={task!r} is not valid; expected 'binary', 'multiclass', "
                         "'regression' or None.")
    if _is_torch_module(obj):
        kind = "torch"
    elif hasattr(obj, "predict_scores") and callable(obj.predict_scores):
        kind = "scorer"
    elif any(callable(getattr(obj, a, None)) for a in _ESTIMATOR_METHODS):
        kind = "sklearn"
        _check_fitted(obj)
    elif callable(obj):
        kind = "callable"
    else:
        raise TypeError(
            f"model has type {type(obj).__name__}; expected a torch.nn.Module, an estimator with "
            "predict_proba/decision_function/predict, or a callable mapping X to scores."
        )
    if device is not None and kind != "torch":
        warnings.warn(f"device={device!r} is ignored for a {kind} model.", stacklevel=2)
    return ModelAdapter(obj, kind, preprocess=preprocess, output=output, batch_size=batch_size,
                        device=device, task=task, name=name)


def _check_fitted(est: Any) -> None:
    try:
        from sklearn.base import BaseEstimator
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted
    except ImportError:  # pragma: no cover
        return
    if isinstance(est, BaseEstimator):
        try:
            check_is_fitted(est)
        except NotFittedError:
            raise ValueError(f"model {type(est).__name__} is not fitted; expected a trained "
                             "estimator (call fit first).") from None
