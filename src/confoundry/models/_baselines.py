"""``fit_baselines``: equally tuned glass-box baselines (EBM, penalised linear model, shallow tree).

Tip 2 of "Ten Quick Tips for Deep Learning in Biology": compare the deep model with simple
models tuned as carefully as it was ("Continental Breakfast Included": a baseline that got a
fraction of the tuning budget proves nothing). Every baseline records its tuning budget so a
report can say how equally the models were tuned.
"""

from __future__ import annotations

import html
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin, to_jsonable
from .._utils import check_random_state, int_seed, progress
from ..data import AuditData, ensure_data
from ..data._sources import MATERIALISE_BYTES, map_rows
from ..data._sources import _is_sparse as sp_issparse
from ..data._validation import check_positive_int, describe
from ..stats import LABELS, canonical_metric
from ._ebm import EBMGlassBox, ebm_class, ebm_params
from ._glassbox import KINDS, LINEAR_KINDS, GlassBoxModel
from ._linear import (
    LinearGlassBox,
    centre_after_sparse_fit,
    linear_best_params,
    linear_fixed,
    linear_search,
)
from ._tree import TreeGlassBox, tree_depth_path_search, tree_fixed, tree_search

TUNINGS = ("cv", "none")
#: default CV scoring per task (one criterion for every baseline, so tuning is comparable).
SCORING = {"binary": "roc_auc", "multiclass": "neg_log_loss", "regression": "r2"}
OPTIONS = ("cv", "ebm_params", "ebm_grid", "logistic_grid", "tree_grid", "scoring", "n_jobs",
           "task", "feature_names", "n_background", "max_ebm_features")
#: the kinds fitted on at most ``max_ebm_features`` features (the linear model sees them all).
SELECTED_KINDS = ("ebm", "tree")
_CLASSES = {"ebm": EBMGlassBox, "logistic": LinearGlassBox, "linear": LinearGlassBox,
            "tree": TreeGlassBox}


def linear_name(task: str) -> str:
    """The name of the penalised linear baseline of a task: ``"linear"`` for a regression,
    ``"logistic"`` for a classification.

    Examples
    --------
    >>> linear_name("regression"), linear_name("binary")
    ('linear', 'logistic')
    """
    return "linear" if task == "regression" else "logistic"


class BaselinesResult(ResultMixin, Mapping):
    """Read-only mapping of name (``"ebm"``, ``"logistic"`` or, for a regression,
    ``"linear"``, ``"tree"``) to a fitted :class:`GlassBoxModel`, returned by
    :func:`fit_baselines`.

    Looking a name up accepts the other spelling of the linear baseline (``base["logistic"]``
    of a regression is its ``"linear"`` model), as ``kinds=`` does; the keys, the tables and
    the models' names are the task's own spelling.

    Attributes
    ----------
    task : str
    feature_names : list of str
    n_train : int
        Rows the baselines were fitted on.
    tuning : {"cv", "none"}
    random_state : int
        The seed every baseline was derived from.
    params : dict
        What the baselines were fitted with: ``kinds``, ``tuning``, ``cv``, ``scoring``,
        ``random_state``, ``n_background``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = (2 * X[:, 0] - X[:, 1] + rng.normal(size=200) > 0).astype(int)
    >>> base = fit_baselines(X, y, kinds=("logistic",), tuning="none", random_state=0,
    ...                      verbose=False)
    >>> list(base), base.task, base.n_train, base.feature_names
    (['logistic'], 'binary', 200, ['x0', 'x1', 'x2'])
    >>> base["logistic"] is base.get("logistic")
    True
    """

    def __init__(self, models: Mapping[str, GlassBoxModel], *, task: str,
                 feature_names: Sequence[str], n_train: int, tuning: str,
                 random_state: Any, params: Mapping[str, Any] | None = None) -> None:
        self._models = dict(models)
        self.task = task
        self.feature_names = list(feature_names)
        self.n_train = int(n_train)
        self.tuning = tuning
        self.random_state = random_state
        self.params = dict(params or {"kinds": list(self._models), "tuning": tuning,
                                      "random_state": random_state})

    def __getitem__(self, name: str) -> GlassBoxModel:
        if name in LINEAR_KINDS and name not in self._models:
            name = linear_name(self.task)
        try:
            return self._models[name]
        except KeyError:
            raise KeyError(f"no baseline named {name!r}; this BaselinesResult holds "
                           f"{list(self._models)}.") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    @property
    def degenerate(self) -> dict[str, str]:
        """Baselines whose scores on the training data are constant, with the reason; the
        audit leaves them out of every comparison (a constant model has no ranking to compare)."""
        return {n: str(m.tuning.get("degenerate") or "") for n, m in self._models.items()
                if m.tuning.get("degenerate")}

    def usable(self) -> BaselinesResult:
        """The same result without the :attr:`degenerate` baselines.

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
        >>> base = fit_baselines(X, y, kinds=("logistic",), random_state=0, verbose=False)
        >>> list(base.usable()), base.degenerate
        (['logistic'], {})
        """
        bad = self.degenerate
        if not bad:
            return self
        return BaselinesResult({k: m for k, m in self._models.items() if k not in bad},
                               task=self.task, feature_names=self.feature_names,
                               n_train=self.n_train, tuning=self.tuning,
                               random_state=self.random_state, params=self.params)

    def findings(self) -> list[Finding]:
        """``degenerate_model`` (*medium*) for a baseline with constant scores, left out of the
        comparisons; ``tuning_at_boundary`` (*low*) for a baseline whose tuned setting is an
        edge of its grid, so that the comparison may understate it."""
        out: list[Finding] = []
        for name, m in self._models.items():
            t = m.tuning
            if t.get("degenerate"):
                out.append(Finding(
                    "degenerate_model", "medium", 2,
                    f"The glass-box {name} is degenerate: {t['degenerate']} of its "
                    f"{self.n_train} training rows, so it is left out of the comparisons, "
                    "which it would distort (a constant score has no ranking). A larger "
                    "training set or a wider tuning grid may give it signal.",
                    subject="degenerate", model=name, domain="overall",
                    evidence={"reason": t["degenerate"], "n_train": self.n_train,
                              "best_params": to_jsonable(t.get("best_params"))}))
            edges = t.get("at_boundary") or {}
            if edges:
                what = "; ".join(f"{p} = {b['value']}, the {b['edge']} value of {b['grid']}"
                                 for p, b in edges.items())
                out.append(Finding(
                    "tuning_at_boundary", "low", 2,
                    f"The tuning of the glass-box {name} chose an edge of its grid ({what}): "
                    "a better setting may lie outside the grid, so the comparison may "
                    "understate this baseline.",
                    subject="tuning", model=name, domain="overall",
                    evidence={"parameters": to_jsonable(edges)}))
        return out

    def tuning_table(self) -> pd.DataFrame:
        """One row per model: how it was tuned and what it cost.

        Columns ``model``, ``kind``, ``features`` (how many of the features it was fitted
        on, and how they were chosen), ``search``, ``n_configs``, ``cv_folds``, ``scoring``,
        ``cv_score``, ``best_params``, ``n_fits``, ``fit_seconds``.
        """
        cols = ["model", "kind", "features", "search", "n_configs", "cv_folds", "scoring",
                "cv_score", "best_params", "n_fits", "fit_seconds"]
        rows = []
        for name, m in self._models.items():
            t = m.tuning
            sel = t.get("feature_selection")
            used = (f"all {m.n_features}" if not sel else
                    f"{sel['n_selected']} of {sel['n_features']} ({sel['method']})")
            rows.append({"model": name, "kind": m.kind, "features": used,
                         **{c: t.get(c) for c in cols[3:]}})
        return pd.DataFrame(rows, columns=cols)

    def to_frame(self) -> pd.DataFrame:
        """:meth:`tuning_table`: one row per baseline."""
        return self.tuning_table()

    def _extra_dict(self) -> dict[str, Any]:
        return {"task": self.task, "n_train": self.n_train, "tuning": self.tuning,
                "feature_names": self.feature_names, "params": self.params,
                "models": {n: m.tuning for n, m in self._models.items()}}

    def explain(self, X: Any, **kwargs: Any) -> dict[str, Any]:
        """``{name: model.explain(X)}`` for every baseline."""
        return {name: m.explain(X, **kwargs) for name, m in self._models.items()}

    def plot(self, ax: Any = None) -> Any:
        """Cross-validated score of every baseline (what the tuning reached), with its budget."""
        import matplotlib.pyplot as plt

        t = self.tuning_table()
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.45 * len(t) + 1.2), layout="constrained")
        score = pd.to_numeric(t["cv_score"], errors="coerce").to_numpy(dtype=float)
        ypos = np.arange(len(t))[::-1]
        ax.barh(ypos, np.nan_to_num(score), color="#4C72B0")
        for y0, sc in zip(ypos, score):
            if not np.isfinite(sc):  # a fixed configuration has no cross-validated score
                ax.text(0.01, y0, "fixed settings: not cross-validated", va="center",
                        fontsize=8, color="#555555", transform=ax.get_yaxis_transform())
        labels = [f"{m}  ({s}, {int(k or 0)} config(s))"
                  for m, s, k in zip(t["model"], t["search"], t["n_configs"])]
        ax.set_yticks(ypos, labels)
        scoring = next((s for s in t["scoring"] if isinstance(s, str) and s), None)
        label = LABELS.get(canonical_metric(scoring), scoring) if scoring else "score"
        ax.set_xlabel(f"cross-validated {label} (training data)")
        ax.set_title(f"Glass-box baselines ({self.task}, n_train = {self.n_train})")
        return ax.figure

    def __repr__(self) -> str:
        return (f"BaselinesResult({list(self._models)}, task={self.task!r}, "
                f"n_train={self.n_train}, tuning={self.tuning!r})")

    def _repr_html_(self) -> str:
        head = (f"<p><b>BaselinesResult</b> ({html.escape(self.task)}, "
                f"n_train={self.n_train})</p>")
        return head + self.tuning_table().to_html(float_format=lambda v: f"{v:.4g}", escape=True)


#: the former name, kept for the other packages of confoundry that import it from here (the
#: public ``confoundry.models.Baselines`` warns; this one does not).
Baselines = BaselinesResult


def fit_baselines(
    X_train: Any,
    y_train: Any,
    *,
    kinds: Sequence[str] = ("ebm", "logistic", "tree"),
    tuning: str = "cv",
    random_state: Any = None,
    verbose: bool = True,
    **options: Any,
) -> BaselinesResult:
    """Fit glass-box baselines on the training data, each tuned by cross-validation.

    Parameters
    ----------
    X_train : DataFrame, ndarray, tensor of shape (n, d), or AuditData
        An :class:`~confoundry.AuditData` is used as it is (``y_train=None`` then takes its
        labels).
    y_train : array-like of shape (n,)
        Binary, multiclass (``0..K-1``) or regression target; the task is inferred by
        :class:`~confoundry.AuditData` unless ``task=`` is given.
    kinds : sequence of {"ebm", "logistic", "linear", "tree"}
        Which baselines to fit. ``"logistic"`` and ``"linear"`` both ask for the penalised
        linear baseline, which is named for what it is: ``"logistic"`` (logistic regression)
        for a classification task, ``"linear"`` (ridge or lasso) for a regression.
    tuning : {"cv", "none"}
        ``"cv"``: grid search by (stratified) k-fold cross-validation with one scoring rule for
        every model: logistic regression over the L2 penalty ``C`` (regression: ridge and lasso
        over ``alpha``), the tree over ``max_depth <= 5`` and ``min_samples_leaf``; the EBM is
        fitted once with its internal early stopping on validation splits, or grid-searched when
        ``ebm_grid`` is given. ``"none"``: fixed settings (C = 1 / alpha = 1, depth 3).
    random_state : None, int or numpy Generator
        Seeds the CV splits and every estimator; the same value gives the same models.
    verbose : bool
        Progress bar over the baselines.
    **options
        ``cv`` (int, default 5) folds; ``scoring`` (sklearn scorer name; default ``roc_auc``,
        ``neg_log_loss`` for multiclass, ``r2`` for regression); ``ebm_params`` (dict of
        interpret EBM arguments overriding :data:`EBM_DEFAULTS`); ``ebm_grid``,
        ``logistic_grid`` (``{"C": [...]}``, or ``{"ridge_alpha": [...], "lasso_alpha": [...]}``),
        ``tree_grid`` (``{"max_depth": [...], "min_samples_leaf": [...]}``) search spaces;
        ``n_jobs`` for the grid searches; ``task``; ``feature_names``; ``n_background``
        (training rows kept for global importance and shape curves, default 1000);
        ``max_ebm_features`` (int or None, default None: every feature): with more features
        than this (omics: thousands of genes), the EBM and the tree are fitted on the
        ``max_ebm_features`` features most associated with the label on the training data
        alone (univariate F-test), recorded as ``tuning["feature_selection"]``; the penalised
        linear baseline always sees every feature.

    Returns
    -------
    BaselinesResult
        Mapping of name to :class:`GlassBoxModel`; ``tuning_table()`` shows the budgets.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 4))
    >>> y = (2 * X[:, 0] - X[:, 1] + rng.normal(size=300) > 0).astype(int)
    >>> base = fit_baselines(X, y, kinds=("logistic", "tree"), random_state=0, verbose=False)
    >>> list(base), base["tree"].tuning["n_configs"]
    (['logistic', 'tree'], 15)
    >>> base["logistic"].global_importance().index[:2].tolist()
    ['x0', 'x1']
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"fit_baselines() got unknown option(s) {unknown}; expected keyword "
                        f"arguments from {list(OPTIONS)}.")
    kinds = _check_kinds(kinds)  # the linear baseline's spelling is settled once the task is
    if tuning not in TUNINGS:
        raise ValueError(f"tuning={tuning!r} is not valid; expected one of {TUNINGS}.")
    cv = check_positive_int(options.get("cv", 5), "cv", minimum=2)
    n_background = check_positive_int(options.get("n_background", 1000), "n_background")
    verbose = bool(verbose)
    n_jobs = options.get("n_jobs")
    max_sel = options.get("max_ebm_features")
    if max_sel is not None:
        max_sel = check_positive_int(max_sel, "max_ebm_features")
    if not isinstance(X_train, AuditData) and y_train is None:
        raise TypeError("y_train is None; expected labels or targets, one per row of "
                        "X_train.")
    data = ensure_data(X_train, y_train, task=options.get("task"),
                       feature_names=options.get("feature_names"))
    if data.y is None:
        raise TypeError("X_train is an AuditData without y; expected labels or targets.")
    if not data.is_tabular:
        raise ValueError(f"X_train has rows of shape {tuple(data.X.shape[1:])}; glass-box "
                         "baselines need tabular (n_samples, n_features) input.")
    task = data.task
    kinds = _task_kinds(kinds, task)
    X, X_linear = _training_matrices(data)
    y = data.y
    n_rows, n_cols = data.n_samples, data.n_features
    scoring = options.get("scoring") or SCORING[task]
    if task != "regression":
        counts = np.bincount(y)
        if tuning == "cv" and counts.min() < cv:
            raise ValueError(f"y_train has only {int(counts.min())} sample(s) of class "
                             f"{int(np.argmin(counts))}; expected at least cv={cv} per class for "
                             "stratified cross-validation (lower cv or use tuning='none').")

    rng = check_random_state(random_state)
    seeds = {name: int_seed(rng) for name in ("cv", "ebm", linear_name(task), "tree",
                                              "background")}
    bg_rng = np.random.default_rng(seeds["background"])
    bg_rows = (np.sort(bg_rng.choice(n_rows, n_background, replace=False))
               if n_rows > n_background else np.arange(n_rows))
    background = (X[bg_rows] if X is not None
                  else data.source.read(bg_rows).astype(np.float64))
    splitter = _splitter(task, cv, seeds["cv"])
    common = {"task": task, "feature_names": data.feature_names, "classes": data.classes,
              "background": background}

    selection = (select_features(X_linear, y, task, max_sel, data.feature_names)
                 if max_sel is not None and n_cols > max_sel else None)
    models: dict[str, GlassBoxModel] = {}
    for kind in progress(kinds, desc="fitting baselines", verbose=verbose):
        t0 = time.perf_counter()
        cols = selection["columns"] if selection is not None and kind in SELECTED_KINDS else None
        if kind in LINEAR_KINDS:
            Xk = X_linear
        elif cols is None:
            Xk = X if X is not None else _dense_columns(data, X_linear, np.arange(n_cols))
        else:
            Xk = X[:, cols] if X is not None else _dense_columns(data, X_linear, cols)
        names = (data.feature_names if cols is None
                 else [data.feature_names[c] for c in cols])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est, record = _fit_one(kind, task, Xk, y, tuning=tuning, splitter=splitter, cv=cv,
                                   scoring=scoring, n_jobs=n_jobs, seed=seeds[kind],
                                   options=options, feature_names=names)
            del Xk
        if cols is not None:
            record["feature_selection"] = {k: v for k, v in selection.items()
                                           if k != "columns"}
        record["fit_seconds"] = time.perf_counter() - t0
        record["n_train"] = int(n_rows)
        if kind in LINEAR_KINDS and sp_issparse(X_linear):
            record["sparse_input"] = True
        record["random_state"] = seeds[kind]
        record["warnings"] = sorted({f"{w.category.__name__}: {w.message}"[:200] for w in caught})
        model = _CLASSES[kind](est, name=kind, tuning=record, columns=cols, **common)
        model.tuning["degenerate"] = degenerate_reason(
            model.predict_scores(X) if X is not None else map_rows(model.predict_scores, data))
        model.tuning["at_boundary"] = grid_boundary(record)
        models[kind] = model
    params = {"kinds": list(kinds), "tuning": tuning, "cv": cv, "scoring": scoring,
              "random_state": random_state if isinstance(random_state, (int, np.integer))
              or random_state is None else type(random_state).__name__,
              "n_background": n_background, "seeds": seeds, "max_ebm_features": max_sel}
    return BaselinesResult(models, task=task, feature_names=data.feature_names, n_train=n_rows,
                           tuning=tuning, random_state=random_state, params=params)


# ---------------------------------------------------------------------- helpers
def _training_matrices(data: AuditData) -> tuple[np.ndarray | None, Any]:
    """``(X, X_linear)``: the dense float64 training matrix (None when the input is read in
    batches and too large to hold densely) and the matrix the linear baseline is fitted on
    (a scipy CSR matrix for sparse input: it stays sparse)."""
    if not data.lazy:
        X = data.values
        return X, X
    src = data.source
    sparse = src.sparse_matrix() if src.is_sparse else None  # converted once, reused below
    dense_bytes = data.n_samples * data.n_features * 8
    X = None
    if dense_bytes <= MATERIALISE_BYTES:
        X = (np.asarray(sparse.toarray(), dtype=np.float64) if sparse is not None
             else src.columns(np.arange(data.n_features)))
    if sparse is not None:
        return X, sparse
    if X is None:
        raise MemoryError(
            f"X_train ({src.describe()}) would take {dense_bytes / 2**20:.0f} MB as a dense "
            f"float64 matrix and is not stored sparse; the glass-box baselines need it in memory "
            f"(at most {MATERIALISE_BYTES // 2**20} MB for an input read in batches). Pass a "
            "sample of the training rows, or a sparse matrix.")
    return X, X


def _dense_columns(data: AuditData, X_linear: Any, cols: np.ndarray) -> np.ndarray:
    """Dense float64 columns of a lazy training input: from the CSR matrix already built for
    the linear baseline when there is one (not converted again), else read batch by batch."""
    if sp_issparse(X_linear):
        return np.asarray(X_linear[:, np.asarray(cols)].toarray(), dtype=np.float64)
    return data.source.columns(cols)


def select_features(X: Any, y: np.ndarray, task: str, k: int,
                    names: Sequence[str]) -> dict[str, Any]:
    """The ``k`` features most associated with the label on the training data (univariate
    F-test: ANOVA for a class label, the correlation's F for a regression), in their original
    order, with what was done.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 5)); y = (X[:, 3] + 0.3 * X[:, 1] > 0).astype(int)
    >>> sel = select_features(X, y, "binary", 2, ["a", "b", "c", "d", "e"])
    >>> sel["selected"], sel["n_features"]
    (['b', 'd'], 5)
    """
    from sklearn.feature_selection import f_classif, f_regression

    with warnings.catch_warnings():  # a constant gene gives F = NaN: never selected
        warnings.simplefilter("ignore")
        F = (f_regression if task == "regression" else f_classif)(X, y)[0]
    F = np.nan_to_num(np.asarray(F, dtype=np.float64), nan=-1.0)
    cols = np.sort(np.argsort(-F, kind="stable")[:k])
    return {"columns": cols, "method": "univariate F-test on the training data",
            "n_selected": int(len(cols)), "n_features": int(X.shape[1]),
            "selected": [str(names[c]) for c in cols]}


def degenerate_reason(scores: Any) -> str:
    """Why a model's scores are degenerate ("" when they are not): the same value (or class
    probabilities) for every row, to 1e-9 of their scale.

    Examples
    --------
    >>> degenerate_reason([0.3, 0.3, 0.3]), degenerate_reason([0.1, 0.9])
    ('it predicts the same score (0.3) for every row', '')
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return ""
    s = s.reshape(len(s), -1)
    spread = np.ptp(s, axis=0).max()
    if spread <= 1e-9 * max(1.0, float(np.abs(s).max())):
        what = f"{s[0, 0]:.3g}" if s.shape[1] == 1 else "class probabilities"
        return f"it predicts the same score ({what}) for every row"
    return ""


def grid_boundary(record: Mapping[str, Any]) -> dict[str, Any]:
    """The tuned settings that sit on an edge of their grid (a better value may lie outside
    it): ``{parameter: {"value", "grid"}}``, from a tuning record's ``search_space`` and
    ``best_params``. Grids of fewer than 3 numeric values have no interior and are ignored.

    Examples
    --------
    >>> grid_boundary({"search": "grid", "search_space": {"C": [0.01, 1, 100]},
    ...                "best_params": {"C": 0.01}})
    {'C': {'value': 0.01, 'grid': [0.01, 1, 100], 'edge': 'lowest'}}
    """
    if record.get("search") != "grid":
        return {}
    out: dict[str, Any] = {}
    best = record.get("best_params") or {}
    for name, grid in (record.get("search_space") or {}).items():
        if name not in best or not isinstance(grid, (list, tuple)) or len(grid) < 3:
            continue
        try:
            vals = sorted(float(v) for v in grid)
            v = float(best[name])
        except (TypeError, ValueError):
            continue
        if v == vals[0] and v <= _HARD_LIMITS.get(name, -np.inf):
            continue  # the smallest value the parameter can take: nothing lies beyond it
        if v in (vals[0], vals[-1]):
            out[name] = {"value": best[name], "grid": list(grid),
                         "edge": "lowest" if v == vals[0] else "highest"}
    return out


#: the smallest value a tuned parameter can take (an optimum there is not at a grid's edge).
_HARD_LIMITS = {"max_depth": 1, "min_samples_leaf": 1, "max_leaf_nodes": 2}


def _check_kinds(kinds: Any) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = (kinds,)
    try:
        kinds = tuple(kinds)
    except TypeError:
        raise TypeError(f"kinds={describe(kinds)} is not a sequence; expected names from "
                        f"{KINDS}.") from None
    if not kinds:
        raise ValueError(f"kinds is empty; expected one or more of {KINDS}.")
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"kinds={list(kinds)} has unknown kind(s) {bad}; expected names from "
                         f"{KINDS}.")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"kinds={list(kinds)} has duplicates; expected each kind once.")
    return kinds


def _task_kinds(kinds: tuple[str, ...], task: str) -> tuple[str, ...]:
    """``kinds`` with the linear baseline spelled for ``task`` (``"linear"`` for a
    regression, ``"logistic"`` otherwise)."""
    named = tuple(linear_name(task) if k in LINEAR_KINDS else k for k in kinds)
    if len(set(named)) != len(named):
        raise ValueError(f"kinds={list(kinds)} asks for the linear baseline twice ('logistic' "
                         "and 'linear' are two spellings of it); expected each kind once.")
    return named


def _splitter(task: str, cv: int, seed: int) -> Any:
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "regression":
        return KFold(n_splits=cv, shuffle=True, random_state=seed)
    return StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)


def _grid_search(est: Any, param_grid: list[dict[str, Any]], X: np.ndarray, y: np.ndarray, *,
                 splitter: Any, scoring: str, n_jobs: Any) -> tuple[Any, dict[str, Any]]:
    from sklearn.model_selection import GridSearchCV, ParameterGrid

    search = GridSearchCV(est, param_grid, cv=splitter, scoring=scoring, n_jobs=n_jobs,
                          refit=True, error_score="raise")
    search.fit(X, y)
    n_configs = len(ParameterGrid(param_grid))
    record = {"search": "grid", "n_configs": n_configs, "cv_folds": splitter.get_n_splits(),
              "scoring": scoring, "cv_score": float(search.best_score_),
              "n_fits": n_configs * splitter.get_n_splits() + 1}
    return search.best_estimator_, record


def _fit_one(kind: str, task: str, X: np.ndarray, y: np.ndarray, *, tuning: str, splitter: Any,
             cv: int, scoring: str, n_jobs: Any, seed: int, options: Mapping[str, Any],
             feature_names: list[str]) -> tuple[Any, dict[str, Any]]:
    fixed = {"search": "fixed", "n_configs": 1, "cv_folds": 0, "scoring": None,
             "cv_score": float("nan"), "n_fits": 1}
    if kind == "ebm":
        params = ebm_params(task, options.get("ebm_params"), feature_names, seed)
        cls = ebm_class(task)
        internal = (f"early stopping on a {params.get('validation_size', 0.15)} validation split "
                    f"in each of {params.get('outer_bags')} outer bags")
        grid = options.get("ebm_grid")
        if tuning == "cv" and grid:
            grid_list = [dict(grid)] if isinstance(grid, Mapping) else list(grid)
            bad = sorted({k for g in grid_list for k in g} - set(cls().get_params()))
            if bad:
                raise ValueError(f"ebm_grid has unknown key(s) {bad}; expected EBM arguments.")
            est, record = _grid_search(cls(**params), grid_list, X, y, splitter=splitter,
                                       scoring=scoring, n_jobs=n_jobs)
            space = {k: list(v) for g in grid_list for k, v in g.items()}
            best = {k: est.get_params()[k] for k in space}
        else:
            est = cls(**params).fit(X, y)
            record, space, best = dict(fixed), {}, {}
        shown = {k: v for k, v in params.items() if k != "feature_names"}
        record.update(search_space=space, params=shown, internal_tuning=internal,
                      best_params={**{k: shown[k] for k in ("outer_bags", "interactions",
                                                            "max_bins", "learning_rate")
                                      if k in shown}, **best})
        return est, record
    if kind in LINEAR_KINDS:
        sparse = sp_issparse(X)
        if tuning == "cv":
            pipe, grid, space = linear_search(task, options.get("logistic_grid"), seed,
                                              sparse=sparse)
            est, record = _grid_search(pipe, grid, X, y, splitter=splitter, scoring=scoring,
                                       n_jobs=n_jobs)
        else:
            est, _ = linear_fixed(task, seed, sparse=sparse)
            est.fit(X, y)
            record, space = dict(fixed), {}
        if sparse:
            est = centre_after_sparse_fit(est)
        record.update(search_space=space, best_params=linear_best_params(est, task),
                      internal_tuning="features standardised on the training data")
        return est, record
    # tree
    if tuning == "cv":
        est, grid, space = tree_search(task, options.get("tree_grid"), seed)
        est, record = tree_depth_path_search(est, space["max_depth"], space["min_samples_leaf"],
                                             X, y, splitter=splitter, scoring=scoring)
    else:
        est, _ = tree_fixed(task, seed)
        est.fit(X, y)
        record, space = dict(fixed), {}
    record.update(search_space=space,
                  best_params={"max_depth": int(est.get_params()["max_depth"]),
                               "min_samples_leaf": est.get_params()["min_samples_leaf"],
                               "n_leaves": int(est.get_n_leaves())},
                  internal_tuning="none")
    return est, record
