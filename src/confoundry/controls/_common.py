"""Shared input handling of the controls: validate train/test data once, score every model once.

Both splits go through :func:`confoundry.data.ensure_data`, so an :class:`~confoundry.AuditData`
passed in is used as it is (no second validation, no copy), and precomputed scores are used
instead of calling a model again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._utils import to_numpy
from ..data import AuditData, ensure_data
from ..data._coerce import check_aligned
from ..data._validation import describe
from ..models._adapter import ModelAdapter, as_model

#: name of the audited model when only its precomputed scores are given.
DEFAULT_MODEL_NAME = "model"


@dataclass
class Scored:
    """Validated train/test data and every model's scores on both."""

    task: str
    y_train: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    names: list[str]  # the DL model first, then the baselines
    train_scores: dict[str, np.ndarray]
    test_scores: dict[str, np.ndarray]


def as_split(X: Any, y: Any, which: str, task: str | None) -> tuple[AuditData, Any]:
    """Validate one split (once); return its AuditData and the object a model is scored on.

    An ``AuditData`` is passed through :func:`~confoundry.data.ensure_data` as it is; labels
    given beside it are validated alone.

    Examples
    --------
    >>> d = AuditData(np.zeros((4, 2)), [0, 1, 0, 1])
    >>> as_split(d, None, "train", None)[0] is d
    True
    >>> as_split(np.zeros((4, 2)), None, "test", None)
    Traceback (most recent call last):
    ...
    ValueError: y_test is None; expected one label per row of X_test.
    """
    if X is None:
        raise ValueError(f"X_{which} is None; expected the {which} inputs (an array, DataFrame, "
                         "tensor or AuditData).")
    from ..data._sources import is_lazy_input

    if y is None and not isinstance(X, AuditData) and not is_lazy_input(X):
        raise ValueError(f"y_{which} is None; expected one label per row of X_{which}.")
    try:
        data = ensure_data(X, y, task=task)
    except (TypeError, ValueError) as exc:
        # keep the message, but say which split it is about
        raise type(exc)(f"X_{which}, y_{which} (the {which} set): {exc}") from None
    if data.y is None:
        raise ValueError(f"y_{which} is None and X_{which} holds no labels; expected the "
                         f"labels of the {which} set (or a Dataset yielding (x, y)).")
    if isinstance(X, AuditData) or data.lazy:
        return data, data.X
    return data, data.values if isinstance(X, (list, tuple)) else X


def user_objects(X: Any, y: Any, data: AuditData) -> tuple[Any, Any]:
    """The user's own ``X`` and ``y`` (for a ``train_fn``): ``X_source`` / ``y_source`` of an
    ``AuditData``, else the objects given.

    ``X_source`` is used when it has the AuditData's rows (a :meth:`~AuditData.subset` holds
    the same rows of the user's object) and ``y_source`` when it holds the AuditData's labels;
    otherwise the validated ``X`` / ``y``.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"a": [0.0, 1, 2, 3]}); y = pd.Series([0, 1, 0, 1])
    >>> d = AuditData(X, y)
    >>> Xu, yu = user_objects(d, None, d)
    >>> Xu is X, yu is y
    (True, True)
    >>> s = d.subset([0, 1, 2])
    >>> Xs, ys = user_objects(s, None, s)
    >>> list(Xs.index), list(ys)
    ([0, 1, 2], [0, 1, 0])
    """
    if not isinstance(X, AuditData):
        return X, y
    src = X.X_source
    X_user = src if src is not None and _n_rows(src) == data.n_samples else data.X
    if y is None:
        y = data.y
        src_y = X.y_source
        if src_y is not None and _n_rows(src_y) == data.n_samples:
            try:
                same = np.array_equal(np.asarray(to_numpy(src_y)).ravel(), data.y)
            except (TypeError, ValueError):
                same = False
            if same:
                y = src_y
    return X_user, y


def _n_rows(obj: Any) -> int | None:
    shape = getattr(obj, "shape", None)
    if shape is not None and len(shape):
        return int(shape[0])
    try:
        return len(obj)
    except TypeError:
        return None


def check_baselines(baselines: Any) -> dict[str, Any]:
    """``None`` or a mapping of name to model; return a plain dict (name -> object)."""
    if baselines is None:
        return {}
    if isinstance(baselines, Mapping):
        items = list(baselines.items())
    elif hasattr(baselines, "items") and callable(baselines.items):
        items = list(baselines.items())
    else:
        raise TypeError(
            f"baselines={describe(baselines)} has type {type(baselines).__name__}; expected a "
            "mapping of name to fitted model (an object with predict_scores, an estimator or a "
            "callable), e.g. {'logistic': model} or the Baselines from fit_baselines."
        )
    out: dict[str, Any] = {}
    for name, obj in items:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"baselines has the key {name!r}; expected non-empty string names.")
        if obj is None:
            raise TypeError(f"baselines[{name!r}] is None; expected a fitted model.")
        out[name] = obj
    return out


def _check_score_map(scores: Any, name: str) -> dict[str, Any]:
    if scores is None:
        return {}
    if not isinstance(scores, Mapping):
        raise TypeError(f"{name}={describe(scores)} has type {type(scores).__name__}; expected "
                        "a mapping of baseline name to precomputed scores.")
    return dict(scores)


def score_models(
    model: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    baselines: Any,
    *,
    scores: Any = None,
    train_scores: Any = None,
    baseline_scores: Mapping[str, Any] | None = None,
    baseline_train_scores: Mapping[str, Any] | None = None,
    model_name: str | None = None,
) -> Scored:
    """Validate both splits, and score every model on both unless its scores are given.

    ``scores`` / ``train_scores`` are the audited model's precomputed test / training scores,
    ``baseline_scores`` / ``baseline_train_scores`` map baseline names to theirs. Whatever is
    given is checked (shape, finite) and used; whatever is missing is computed with
    :func:`confoundry.as_model`. ``model`` may be ``None`` when both its scores are given.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> tr = AuditData(rng.normal(size=(20, 2)), np.tile([0, 1], 10))
    >>> te = AuditData(rng.normal(size=(10, 2)), np.tile([0, 1], 5))
    >>> sc = score_models(None, tr, None, te, None, None, scores=np.full(10, 0.5),
    ...                   train_scores=np.full(20, 0.5))
    >>> sc.names, sc.test_scores["model"].shape
    (['model'], (10,))
    """
    base = check_baselines(baselines)
    b_test = _check_score_map(baseline_scores, "baseline_scores")
    b_train = _check_score_map(baseline_train_scores, "baseline_train_scores")
    for name in dict.fromkeys([*b_test, *b_train]):
        if name not in base and not (name in b_test and name in b_train):
            raise ValueError(f"baseline_scores / baseline_train_scores have {name!r}, which is "
                             f"not in baselines ({describe(list(base))}); expected the scores "
                             "of a baseline passed in baselines, or both its test and "
                             "training scores.")
    adapter_task = model.task if isinstance(model, ModelAdapter) else None
    train, X_tr = as_split(X_train, y_train, "train", adapter_task)
    test, X_te = as_split(X_test, y_test, "test", train.task)
    if train.X.shape[1:] != test.X.shape[1:]:
        raise ValueError(
            f"X_train has shape {tuple(train.X.shape)} and X_test {tuple(test.X.shape)}; expected "
            "the same features (same shape apart from the number of rows)."
        )
    if train.is_tabular and train.feature_names != test.feature_names:
        raise ValueError(
            f"X_train's columns {describe(train.feature_names)} differ from X_test's "
            f"{describe(test.feature_names)}; expected the same features in the same order."
        )
    task = train.task
    n_classes = None
    if task == "multiclass":
        n_classes = int(max(train.y.max(), test.y.max())) + 1

    if model is None:
        if scores is None or train_scores is None:
            raise TypeError("model is None; expected the model under audit, or both its "
                            "precomputed scores= (test) and train_scores= (training).")
        dl_name, dl = DEFAULT_MODEL_NAME, None
    else:
        dl = as_model(model, task=task)
        dl_name = dl.name
    if model_name is not None:
        dl_name = str(model_name)
    # name -> (adapter or None, precomputed test scores, precomputed training scores)
    plan: dict[str, tuple[Any, Any, Any]] = {dl_name: (dl, scores, train_scores)}
    for name in dict.fromkeys([*base, *b_test, *b_train]):
        if name in plan:
            raise ValueError(f"baselines has the name {name!r}, which is the model's own name; "
                             "expected distinct names (pass as_model(model, name=...)).")
        adapter = None
        if name in base and not (name in b_test and name in b_train):
            try:
                adapter = as_model(base[name], task=task, name=name)
            except TypeError as exc:
                raise TypeError(f"baselines[{name!r}]: {exc}") from None
        plan[name] = (adapter, b_test.get(name), b_train.get(name))
    train_scores_, test_scores_ = {}, {}
    for name, (adapter, s_te, s_tr) in plan.items():
        arg = "{}" if name == dl_name else f"baseline_{{}}[{name!r}]"
        check_aligned(s_tr, train, arg.format("train_scores"))
        check_aligned(s_te, test, arg.format("scores"))
        train_scores_[name] = _scores(adapter, X_tr, s_tr, train.n_samples, task, n_classes,
                                      name, "X_train", arg.format("train_scores"))
        test_scores_[name] = _scores(adapter, X_te, s_te, test.n_samples, task, n_classes,
                                     name, "X_test", arg.format("scores"))
    return Scored(task=task, y_train=np.asarray(train.y), y_test=np.asarray(test.y),
                  n_classes=n_classes, names=list(plan), train_scores=train_scores_,
                  test_scores=test_scores_)


def _scores(adapter: Any, X: Any, given: Any, n: int, task: str, n_classes: int | None,
            name: str, where: str, arg: str) -> np.ndarray:
    """The given scores (``arg`` names them in errors), checked, or the adapter's on ``X``."""
    if given is None:
        return check_scores(adapter.predict_scores(X), task, n_classes, name, where)
    s = coerce_scores(given, n, task, what=arg, rows=where)
    return check_scores(s, task, n_classes, name, where)


def coerce_scores(scores: Any, n: int, task: str, *, what: str = "scores",
                  rows: str = "y") -> np.ndarray:
    """Precomputed scores as finite float64, one per sample: an (n, 1) column becomes 1-D and
    binary (n, 2) probabilities become P(y = 1). ``what`` and ``rows`` name them in errors.

    Examples
    --------
    >>> coerce_scores([[0.8, 0.2], [0.4, 0.6]], 2, "binary")
    array([0.2, 0.6])
    >>> coerce_scores([0.1, 0.2, 0.3], 2, "binary")
    Traceback (most recent call last):
    ...
    ValueError: scores has 3 rows but y has 2; expected one score per sample.
    """
    s = np.asarray(to_numpy(scores))
    if s.dtype.kind not in "biuf":
        raise TypeError(f"{what} has dtype {s.dtype}; expected numbers.")
    s = s.astype(np.float64)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim == 2 and task == "binary" and s.shape[1] == 2:
        s = s[:, 1]
    if s.ndim == 0 or s.shape[0] != n:
        k = s.shape[0] if s.ndim else 0
        raise ValueError(f"{what} has {k} rows but {rows} has {n}; expected one score per "
                         "sample.")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{what} contains NaN or infinite values; expected finite numbers.")
    return s


def check_scores(s: np.ndarray, task: str, n_classes: int | None, name: str,
                 where: str) -> np.ndarray:
    """Scores in the ``predict_scores`` convention for ``task`` (float64), or an error naming
    the model and the split."""
    s = np.asarray(s, dtype=np.float64)
    if task == "multiclass":
        if s.ndim != 2 or s.shape[1] < n_classes:
            raise ValueError(
                f"model {name!r} returned scores of shape {s.shape} on {where}; expected class "
                f"probabilities of shape (n, {n_classes}) for a {n_classes}-class task."
            )
    elif s.ndim != 1:
        raise ValueError(
            f"model {name!r} returned scores of shape {s.shape} on {where}; expected one score per "
            f"row for task={task!r}."
        )
    return s


def fmt_ci(est: float, lo: float, hi: float, digits: int = 2) -> str:
    """``"0.64 (95% CI 0.60 to 0.68)"``."""
    return f"{est:.{digits}f} (95% CI {lo:.{digits}f} to {hi:.{digits}f})"


def seed_param(random_state: Any) -> Any:
    """``random_state`` as recorded in ``params``: an int (or None) as is, else its type."""
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return None if random_state is None else int(random_state)
    return type(random_state).__name__
