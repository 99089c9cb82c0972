"""``GlassBoxModel``: the common face of the fitted glass-box baselines.

A glass-box model is additive on one scale, its *decision* scale (the logit for a binary task,
class logits for multiclass, the prediction for regression). ``explain(X)`` splits that decision
into a base value plus one contribution per feature, exactly: ``values.sum(1) + base_values``
equals ``decision(X)`` (for multiclass, the column of the explained class).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._explanation import AttributionResult
from .._result import to_jsonable
from ..data._audit_data import AuditData
from ..data._validation import check_finite, describe

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

#: the baselines ``fit_baselines(kinds=...)`` accepts: ``"logistic"`` and ``"linear"`` are two
#: spellings of the penalised linear baseline, named ``"logistic"`` for a classification task
#: and ``"linear"`` for a regression (what it is) whichever spelling asked for it.
KINDS = ("ebm", "logistic", "linear", "tree")
#: the two spellings of the penalised linear baseline.
LINEAR_KINDS = ("logistic", "linear")
#: what ``explain`` reports as ``AttributionResult.method`` for each kind.
METHODS = {"ebm": "ebm_local", "logistic": "logistic_linear", "linear": "linear",
           "tree": "tree_shap"}
#: number of grid points of a shape curve for continuous features.
SHAPE_GRID = 50


def _sigmoid(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(z)


def _softmax(z: np.ndarray) -> np.ndarray:
    from scipy.special import softmax

    return softmax(z, axis=1)


class GlassBoxModel:
    """A fitted glass-box baseline (EBM, penalised linear model or shallow tree).

    Build them with :func:`confoundry.fit_baselines`; do not instantiate this class directly.

    Attributes
    ----------
    name : str
        Display name (``"ebm"``, ``"logistic"``, ``"linear"`` or ``"tree"``).
    kind : {"ebm", "logistic", "linear", "tree"}
        ``"logistic"`` is the penalised linear model of a classification task, ``"linear"``
        that of a regression.
    task : {"binary", "multiclass", "regression"}
    feature_names : list of str
    classes : ndarray or None
        Class labels (``0..K-1``) for classification tasks.
    estimator : object
        The fitted scikit-learn / interpret estimator.
    tuning : dict
        The tuning record: ``search`` ("grid" or "fixed"), ``search_space``, ``n_configs``,
        ``cv_folds``, ``scoring``, ``best_params``, ``cv_score``, ``n_fits``, ``fit_seconds``;
        the tree adds ``grid_method`` ("depth path") and ``cv_results`` (every configuration's
        mean CV score); with more features than ``max_ebm_features`` (EBM and tree),
        ``feature_selection`` names the features the estimator was fitted on.
    columns : ndarray of int or None
        The positions, among ``feature_names``, of the features the estimator sees (None: all).
        The model takes every feature as input and explains every feature; those it was not
        fitted on get a contribution of exactly 0.

    Examples
    --------
    >>> import numpy as np
    >>> from confoundry import fit_baselines
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    >>> m = fit_baselines(X, y, kinds=("logistic",), random_state=0, verbose=False)["logistic"]
    >>> a = m.explain(X[:5])
    >>> bool(np.allclose(a.values.sum(1) + a.base_values, m.decision(X[:5])))
    True
    """

    kind: str = ""

    def __init__(self, estimator: Any, *, name: str, task: str, feature_names: Sequence[str],
                 classes: np.ndarray | None, tuning: Mapping[str, Any],
                 background: np.ndarray, columns: Sequence[int] | None = None) -> None:
        self.estimator = estimator
        self.name = name
        self.task = task
        self.feature_names = [str(f) for f in feature_names]
        self.classes = None if classes is None else np.asarray(classes)
        self.tuning = dict(tuning)
        self._background = np.asarray(background, dtype=np.float64)
        self._importance: pd.Series | None = None
        self.columns = None if columns is None else np.asarray(columns, dtype=np.intp)

    @property
    def _est_names(self) -> list[str]:
        """The names of the features the estimator was fitted on, in its column order."""
        if self.columns is None:
            return self.feature_names
        return [self.feature_names[c] for c in self.columns]

    @property
    def _est_background(self) -> np.ndarray:
        """The background sample in the estimator's columns."""
        return self._background if self.columns is None else self._background[:, self.columns]

    def _sub(self, arr: np.ndarray) -> np.ndarray:
        return arr if self.columns is None else arr[:, self.columns]

    # ----------------------------------------------------------------- public
    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_train(self) -> int:
        """Rows the model was fitted on."""
        return int(self.tuning.get("n_train", 0))

    @property
    def n_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)

    def decision(self, X: Any) -> np.ndarray:
        """The additive scale ``explain`` adds up to.

        Logit of P(y=1) for binary tasks (shape ``(n,)``), class logits for multiclass
        (``(n, K)``; ``softmax`` gives ``predict_scores``), the prediction for regression.
        """
        return self._decision(self._sub(self._as_array(X)))

    def predict_scores(self, X: Any) -> np.ndarray:
        """Scores with the convention of :meth:`ModelAdapter.predict_scores`.

        P(y=1) for binary tasks (``(n,)``), class probabilities for multiclass (``(n, K)``),
        predictions for regression (``(n,)``).
        """
        z = self.decision(X)
        if self.task == "binary":
            return _sigmoid(z)
        if self.task == "multiclass":
            return _softmax(z)
        return z

    def explain(self, X: Any, *, target: Any = None) -> AttributionResult:
        """Exact additive explanation of :meth:`decision` for every row of ``X``.

        Parameters
        ----------
        X : DataFrame, ndarray, tensor or AuditData
            Rows to explain, with the training features (DataFrame columns are matched by name).
        target : int or array of int, optional
            Multiclass only: the class whose logit is explained, for all rows (int) or per row
            (array of length n). Default: each row's predicted class.

        Returns
        -------
        AttributionResult
            ``values`` (n, d), ``base_values`` (scalar, or (n,) for multiclass), ``data`` (n, d),
            ``output`` ``"logit"`` (classification) or ``"value"`` (regression).
            ``values.sum(1) + base_values`` equals the explained decision.
        """
        arr = self._as_array(X)
        t0 = time.perf_counter()
        sub = self._sub(arr)
        tgt = self._target(sub, target)
        values, base, params = self._contributions(sub, tgt)
        params = dict(params)
        if self.columns is not None:  # features the estimator never saw contribute exactly 0
            full = np.zeros((values.shape[0], self.n_features) + values.shape[2:])
            full[:, self.columns] = values
            values = full
            params["fitted_on"] = self._est_names
        params["decision_scale"] = "logit" if self.task != "regression" else "value"
        if tgt is not None:
            params["target"] = "predicted class" if target is None else to_jsonable(target)
            base = np.asarray(base, dtype=np.float64)
        return AttributionResult(
            values=values, base_values=base, data=arr, feature_names=self.feature_names,
            method=METHODS[self.kind], params=params, convergence_delta=None,
            compute_time=time.perf_counter() - t0,
            output="value" if self.task == "regression" else "logit", model_name=self.name,
        )

    def global_importance(self) -> pd.Series:
        """Mean absolute contribution of each feature on (a sample of up to 1000 rows of) the
        training data, largest first: the same definition as
        :meth:`AttributionResult.global_importance`, so it compares across kinds and with DL models."""
        if self._importance is None:
            imp = self.explain(self._background).global_importance()
            self._importance = imp.rename("importance")
        return self._importance.copy()

    def shape(self, feature: str, *, target: Any = None) -> pd.DataFrame:
        """The learned effect of one feature as a curve over its values.

        Parameters
        ----------
        feature : str
            A feature name.
        target : int, optional
            Multiclass only: the class whose logit is shown (default: every class, with a
            ``class`` column).

        Returns
        -------
        DataFrame
            Columns ``value``, ``effect`` (on the decision scale: logit or prediction),
            ``ci_low``, ``ci_high`` (NaN where the model has no uncertainty for it), and for
            multiclass without ``target`` a ``class`` column.
        """
        if not isinstance(feature, str) or feature not in self.feature_names:
            raise ValueError(f"feature={feature!r} is not a feature of model {self.name!r}; "
                             f"expected one of {describe(self.feature_names)}.")
        j = self.feature_names.index(feature)
        if self.columns is not None:
            where = np.flatnonzero(self.columns == j)
            if not len(where):  # not among the features the estimator was fitted on: flat 0
                grid = np.unique(np.quantile(self._background[:, j],
                                             np.linspace(0, 1, SHAPE_GRID)))
                nan = np.full(len(grid), np.nan)
                flat = pd.DataFrame({"value": grid, "effect": np.zeros(len(grid)),
                                     "ci_low": nan, "ci_high": nan})
                if self.task == "multiclass" and target is None:
                    return pd.concat([flat.assign(**{"class": k})
                                      for k in range(self.n_classes or 0)], ignore_index=True)
                return flat
            j = int(where[0])
        if self.task == "multiclass":
            if target is None:
                frames = [self._shape(j, k).assign(**{"class": k})
                          for k in range(self.n_classes or 0)]
                return pd.concat(frames, ignore_index=True)
            k = self._check_class(target)
            return self._shape(j, k)
        if target is not None:
            raise ValueError(f"target={target!r} is only valid for a multiclass task; this "
                             f"model's task is {self.task!r}.")
        return self._shape(j, None)

    def plot_shape(self, feature: str, ax: Any = None, *, target: Any = None) -> Any:
        """Line plot of :meth:`shape` with its band where available; returns the figure."""
        import matplotlib.pyplot as plt

        df = self.shape(feature, target=target)
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        groups = [(None, df)] if "class" not in df else list(df.groupby("class"))
        for key, g in groups:
            label = None if key is None else f"class {key}"
            linear = self.kind in LINEAR_KINDS
            ax.plot(g["value"], g["effect"], drawstyle="default" if linear else "steps-mid",
                    label=label)
            if g["ci_low"].notna().any():
                ax.fill_between(g["value"], g["ci_low"], g["ci_high"], alpha=0.25,
                                step=None if linear else "mid")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xlabel(feature)
        ax.set_ylabel("effect on " + ("prediction" if self.task == "regression" else "logit"))
        ax.set_title(f"{self.name}: {feature}")
        if len(groups) > 1:
            ax.legend(fontsize=8)
        return ax.figure

    def __repr__(self) -> str:
        return (f"GlassBoxModel(name={self.name!r}, kind={self.kind!r}, task={self.task!r}, "
                f"n_features={self.n_features})")

    # ------------------------------------------------------- subclass hooks
    def _decision(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _contributions(self, X: np.ndarray, target: np.ndarray | None
                       ) -> tuple[np.ndarray, Any, dict[str, Any]]:  # pragma: no cover
        raise NotImplementedError

    def _shape(self, j: int, k: int | None) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers
    def _as_array(self, X: Any) -> np.ndarray:
        """Float64 (n, d) array of ``X`` with the training feature order."""
        names = self.feature_names
        if isinstance(X, AuditData):
            X = X.X
        if isinstance(X, pd.Series):
            raise TypeError(f"X is a pandas Series ({describe(X)}); expected a 2-D DataFrame.")
        if isinstance(X, pd.DataFrame):
            cols = [str(c) for c in X.columns]
            missing = [f for f in names if f not in cols]
            if missing:
                raise ValueError(f"X lacks the feature(s) {describe(missing)} that model "
                                 f"{self.name!r} was trained on; expected columns {describe(names)}.")
            extra = [c for c in cols if c not in names]
            if extra:
                raise ValueError(f"X has column(s) {describe(extra)} that model {self.name!r} was "
                                 f"not trained on; expected columns {describe(names)}.")
            frame = X.copy()
            frame.columns = cols
            try:
                arr = frame[names].to_numpy(dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError("X has non-numeric columns; expected numeric features.") from None
        elif torch is not None and isinstance(X, torch.Tensor):
            arr = X.detach().to("cpu", dtype=torch.float64).numpy()
        else:
            try:
                arr = np.asarray(X, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"X={describe(X)} could not be read as numbers; expected a numeric "
                                "DataFrame, ndarray or tensor.") from None
        if arr.ndim != 2 or arr.shape[1] != len(names):
            raise ValueError(f"X has shape {arr.shape}; expected (n_samples, {len(names)}) for "
                             f"model {self.name!r}.")
        if arr.shape[0] == 0:
            raise ValueError("X has zero rows; expected at least one sample.")
        check_finite(arr, "X", names)
        return arr

    def _check_class(self, k: Any) -> int:
        K = self.n_classes or 0
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < K:
            raise ValueError(f"target={k!r} is not valid; expected a class index in 0..{K - 1}.")
        return int(k)

    def _target(self, X: np.ndarray, target: Any) -> np.ndarray | None:
        if self.task != "multiclass":
            if target is not None:
                raise ValueError(f"target={target!r} is only valid for a multiclass task; this "
                                 f"model's task is {self.task!r}.")
            return None
        n = X.shape[0]
        if target is None:
            return np.argmax(self._decision(X), axis=1)
        if np.ndim(target) == 0:
            return np.full(n, self._check_class(target))
        t = np.asarray(target)
        if t.shape != (n,):
            raise ValueError(f"target has shape {t.shape}; expected an int or one class index "
                             f"per row ({n},).")
        for k in np.unique(t):
            self._check_class(k.item() if hasattr(k, "item") else k)
        return t.astype(np.int64)

    def _grid(self, j: int, extra: np.ndarray | None = None) -> np.ndarray:
        """Evaluation grid of feature ``j``: its unique training values if few, else quantiles."""
        col = self._est_background[:, j]
        uniq = np.unique(col)
        if len(uniq) <= SHAPE_GRID:
            grid = uniq
        else:
            grid = np.unique(np.quantile(col, np.linspace(0, 1, SHAPE_GRID)))
        if extra is not None and len(extra):
            lo, hi = grid.min(), grid.max()
            extra = extra[(extra >= lo) & (extra <= hi)]
            grid = np.unique(np.concatenate([grid, extra]))
        return grid
