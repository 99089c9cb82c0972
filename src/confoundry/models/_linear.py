"""Standardised, penalised linear baseline: logistic regression (classification) or ridge/lasso
(regression), explained exactly as coefficient x standardised feature."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._glassbox import GlassBoxModel

#: default grid of inverse penalties C for logistic regression (L2).
LOGISTIC_CS = tuple(float(c) for c in np.logspace(-4, 3, 8))
#: default grid of penalties alpha for the regression linear model.
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 7))
LASSO_ALPHAS = tuple(float(a) for a in np.logspace(-4, 0, 5))


def linear_search(task: str, grid: dict[str, Any] | None, random_state: int, *,
                  sparse: bool = False) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """Pipeline (scaler + penalised linear model), sklearn param grid and a JSON-safe space.

    ``sparse=True``: the scaler does not centre (a scipy sparse matrix stays sparse); call
    :func:`centre_after_sparse_fit` on the fitted pipeline.
    """
    from sklearn.linear_model import Lasso, LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    StandardScaler = _scaler(sparse)

    if task == "regression":
        grid = dict(grid or {})
        ridge = tuple(float(a) for a in grid.pop("ridge_alpha", RIDGE_ALPHAS))
        lasso = tuple(float(a) for a in grid.pop("lasso_alpha", LASSO_ALPHAS))
        if grid:
            raise ValueError(f"logistic_grid has unknown key(s) {sorted(grid)} for a regression "
                             "task; expected 'ridge_alpha' and/or 'lasso_alpha'.")
        pipe = Pipeline([("scale", StandardScaler()), ("model", Ridge())])
        param_grid = []
        if ridge:
            param_grid.append({"model": [Ridge()], "model__alpha": list(ridge)})
        if lasso:
            param_grid.append({"model": [Lasso(max_iter=5000, random_state=random_state)],
                               "model__alpha": list(lasso)})
        if not param_grid:
            raise ValueError("logistic_grid has empty 'ridge_alpha' and 'lasso_alpha'; expected "
                             "at least one penalty value.")
        space = {"ridge_alpha": list(ridge), "lasso_alpha": list(lasso)}
        return pipe, param_grid, space
    grid = dict(grid or {})
    cs = tuple(float(c) for c in grid.pop("C", LOGISTIC_CS))
    if grid:
        raise ValueError(f"logistic_grid has unknown key(s) {sorted(grid)}; expected 'C' (inverse "
                         "L2 penalty values).")
    if not cs or any(c <= 0 for c in cs):
        raise ValueError(f"logistic_grid['C']={list(cs)} is not valid; expected positive values.")
    pipe = Pipeline([("scale", StandardScaler()),
                     ("model", LogisticRegression(max_iter=2000, random_state=random_state))])
    return pipe, [{"model__C": list(cs)}], {"C": list(cs), "penalty": "l2"}


def linear_fixed(task: str, random_state: int, *, sparse: bool = False
                 ) -> tuple[Any, dict[str, Any]]:
    """Untuned linear baseline (``tuning="none"``): C = 1 or ridge alpha = 1."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    StandardScaler = _scaler(sparse)

    if task == "regression":
        return (Pipeline([("scale", StandardScaler()), ("model", Ridge(alpha=1.0))]),
                {"penalty": "l2", "alpha": 1.0})
    return (Pipeline([("scale", StandardScaler()),
                      ("model", LogisticRegression(C=1.0, max_iter=2000,
                                                   random_state=random_state))]),
            {"penalty": "l2", "C": 1.0})


def _scaler(sparse: bool) -> Any:
    from functools import partial

    from sklearn.preprocessing import StandardScaler

    return partial(StandardScaler, with_mean=False) if sparse else StandardScaler


def centre_after_sparse_fit(pipe: Any) -> Any:
    """Turn a pipeline fitted on a sparse matrix (scaled, not centred) into the same function
    written with a centring scaler: ``x / s @ w + b == (x - m) / s @ w + (b + (m / s) @ w)``.

    The fitted model is unchanged as a function of ``x``; it is now expressed like every other
    linear baseline (contribution ``w_j (x_j - m_j) / s_j``) and predicts on dense batches.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.random(200, 5, density=0.3, format="csr", random_state=0)
    >>> y = (X[:, 0].toarray().ravel() > 0).astype(int)
    >>> pipe, _ = linear_fixed("binary", 0, sparse=True)
    >>> before = pipe.fit(X, y).decision_function(X)
    >>> after = centre_after_sparse_fit(pipe).decision_function(X.toarray())
    >>> bool(np.allclose(before, after))
    True
    """
    scaler = pipe.named_steps["scale"]
    model = pipe.named_steps["model"]
    shift = np.asarray(scaler.mean_, dtype=np.float64) / np.asarray(scaler.scale_,
                                                                  dtype=np.float64)
    coef = np.asarray(model.coef_, dtype=np.float64)
    if coef.ndim == 1:  # ridge / lasso: a scalar intercept
        model.intercept_ = float(model.intercept_) + float(coef @ shift)
    else:  # logistic regression: one intercept per row of coef_
        model.intercept_ = np.asarray(model.intercept_, dtype=np.float64) + coef @ shift
    scaler.with_mean = True
    return pipe


def linear_best_params(pipe: Any, task: str) -> dict[str, Any]:
    model = pipe.named_steps["model"]
    if task == "regression":
        return {"penalty": "l1" if type(model).__name__ == "Lasso" else "l2",
                "alpha": float(model.alpha)}
    return {"penalty": "l2", "C": float(model.C)}


class LinearGlassBox(GlassBoxModel):
    """Standardised penalised linear model; contribution of feature j = w_j * (x_j - mean_j) / sd_j,
    base value = the decision at the training mean (the intercept)."""

    kind = "logistic"

    def __init__(self, estimator: Any, **kwargs: Any) -> None:
        super().__init__(estimator, **kwargs)
        # named for what it is: a logistic regression classifies, ridge/lasso regress
        self.kind = "linear" if self.task == "regression" else "logistic"

    def _parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        scaler = self.estimator.named_steps["scale"]
        model = self.estimator.named_steps["model"]
        mean = np.asarray(scaler.mean_, dtype=np.float64)
        scale = np.asarray(scaler.scale_, dtype=np.float64)
        coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))  # (K or 1, d)
        intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
        return mean, scale, coef, intercept

    def _decision(self, X: np.ndarray) -> np.ndarray:
        mean, scale, coef, intercept = self._parts()
        z = (X - mean) / scale
        out = z @ coef.T + intercept
        return out[:, 0] if out.shape[1] == 1 else out

    def _contributions(self, X: np.ndarray, target: np.ndarray | None
                       ) -> tuple[np.ndarray, Any, dict[str, Any]]:
        mean, scale, coef, intercept = self._parts()
        z = (X - mean) / scale
        params: dict[str, Any] = {
            "formula": "coef_j * (x_j - train_mean_j) / train_sd_j",
            "base_value": "decision at the training mean (intercept)",
        }
        if target is None:
            return z * coef[0], float(intercept[0]), params
        return z * coef[target], intercept[target], params

    def _shape(self, j: int, k: int | None) -> pd.DataFrame:
        mean, scale, coef, _ = self._parts()
        grid = self._grid(j)
        w = coef[0 if k is None else k, j]
        effect = w * (grid - mean[j]) / scale[j]
        nan = np.full(len(grid), np.nan)
        return pd.DataFrame({"value": grid, "effect": effect, "ci_low": nan, "ci_high": nan})
