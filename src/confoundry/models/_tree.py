"""Shallow decision-tree baseline, explained exactly by TreeSHAP on the logit (or value) scale."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from ._glassbox import GlassBoxModel

#: default search space of the tree (``max_depth <= 5``: a tree a person can read).
TREE_DEPTHS = (1, 2, 3, 4, 5)
TREE_MIN_LEAF = (5, 20, 100)
#: leaf probabilities are clipped to [EPS, 1 - EPS] before taking logits (pure leaves).
EPS = 1e-3


def tree_search(task: str, grid: dict[str, Any] | None, random_state: int
                ) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    grid = dict(grid or {})
    depths = [int(v) for v in grid.pop("max_depth", TREE_DEPTHS)]
    leaves = list(grid.pop("min_samples_leaf", TREE_MIN_LEAF))
    if grid:
        raise ValueError(f"tree_grid has unknown key(s) {sorted(grid)}; expected 'max_depth' "
                         "and/or 'min_samples_leaf'.")
    if not depths or any(d < 1 for d in depths):
        raise ValueError(f"tree_grid['max_depth']={depths} is not valid; expected integers >= 1.")
    if not leaves:
        raise ValueError("tree_grid['min_samples_leaf'] is empty; expected at least one value.")
    cls = DecisionTreeRegressor if task == "regression" else DecisionTreeClassifier
    est = cls(random_state=random_state)
    return (est, [{"max_depth": depths, "min_samples_leaf": leaves}],
            {"max_depth": depths, "min_samples_leaf": leaves})


def _node_depths(tree: Any) -> np.ndarray:
    """Depth of every node of a fitted sklearn tree (root 0); parents precede children."""
    t = tree.tree_
    depth = np.zeros(t.node_count, dtype=np.int64)
    for node in range(t.node_count):  # node ids are assigned parents-first
        for child in (t.children_left[node], t.children_right[node]):
            if child != -1:
                depth[child] = depth[node] + 1
    return depth


class _Scored(BaseEstimator):
    """A stand-in estimator returning precomputed predictions, so that any sklearn scorer scores
    the truncated tree exactly as ``GridSearchCV`` would score a refitted one."""

    def __init__(self, out: Any = None, classes: Any = None) -> None:
        self.out = out
        self.classes = classes

    def predict(self, X: Any) -> np.ndarray:
        return self.out if self.classes is None else self.classes[self.out.argmax(axis=1)]


class _ScoredClassifier(ClassifierMixin, _Scored):
    @property
    def classes_(self) -> np.ndarray:
        return self.classes

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.out


class _ScoredRegressor(RegressorMixin, _Scored):
    pass


def tree_depth_path_search(est: Any, depths: list[int], leaves: list[Any], X: np.ndarray,
                           y: np.ndarray, *, splitter: Any, scoring: str
                           ) -> tuple[Any, dict[str, Any]]:
    """The grid search of ``max_depth x min_samples_leaf`` with one fit per
    ``min_samples_leaf`` and fold instead of one per configuration.

    sklearn grows a tree depth first and decides each split without looking at ``max_depth``,
    so the tree grown to the largest depth, cut at depth k, is the tree grown with
    ``max_depth=k``, up to ties between equally good splits: sklearn breaks those by a random
    feature order whose draws depend on how many nodes were split before, so in small nodes
    (few samples, several splits isolating the same rows) the two trees can pick different but
    equally good splits. An internal node's value is what the shallower tree's leaf predicts. Each
    configuration is scored on the validation fold with the same sklearn scorer and the best is
    chosen as ``GridSearchCV`` does (highest mean, first in grid order on ties), then refitted
    on all rows with its own ``max_depth``.
    """
    from sklearn.base import clone
    from sklearn.metrics import check_scoring

    depths = sorted(set(int(d) for d in depths))
    scorer = check_scoring(est, scoring=scoring)
    task = "regression" if not hasattr(est, "predict_proba") else "classification"
    folds = list(splitter.split(X, y))
    scores = np.zeros((len(depths), len(leaves), len(folds)))
    for j, leaf in enumerate(leaves):
        for f, (tr, va) in enumerate(folds):
            m = clone(est).set_params(max_depth=max(depths), min_samples_leaf=leaf)
            m.fit(X[tr], y[tr])
            node_depth = _node_depths(m)
            is_leaf = m.tree_.children_left == -1
            path = m.decision_path(X[va]).tocsr()
            nodes = path.indices
            rows = np.repeat(np.arange(len(va)), np.diff(path.indptr))
            value = m.tree_.value[:, :, :]
            for i, k in enumerate(depths):
                pick = (node_depth[nodes] == k) | (is_leaf[nodes] & (node_depth[nodes] < k))
                at = np.empty(len(va), dtype=np.int64)
                at[rows[pick]] = nodes[pick]
                if task == "regression":
                    fake = _ScoredRegressor(value[at, 0, 0])
                else:
                    proba = value[at, 0, :]
                    fake = _ScoredClassifier(proba / proba.sum(axis=1, keepdims=True),
                                             m.classes_)
                scores[i, j, f] = scorer(fake, X[va], y[va])
    mean = scores.mean(axis=2)
    best = int(np.argmax(mean.ravel()))  # first maximum in (depth, leaf) grid order
    bd, bl = np.unravel_index(best, mean.shape)
    final = clone(est).set_params(max_depth=depths[bd], min_samples_leaf=leaves[bl]).fit(X, y)
    record = {"search": "grid", "grid_method": "depth path", "n_configs": int(mean.size),
              "cv_folds": len(folds), "scoring": scoring, "cv_score": float(mean[bd, bl]),
              "n_fits": len(leaves) * len(folds) + 1,
              "cv_results": [{"max_depth": d, "min_samples_leaf": leaf,
                              "mean_score": float(mean[i, j])}
                             for i, d in enumerate(depths) for j, leaf in enumerate(leaves)]}
    return final, record


def tree_fixed(task: str, random_state: int) -> tuple[Any, dict[str, Any]]:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    cls = DecisionTreeRegressor if task == "regression" else DecisionTreeClassifier
    params = {"max_depth": 3, "min_samples_leaf": 20}
    return cls(random_state=random_state, **params), params


class TreeGlassBox(GlassBoxModel):
    """Decision tree whose leaves hold the decision (logit of the leaf's class proportion,
    clipped to [1e-3, 1 - 1e-3]; or the leaf mean for regression), explained by TreeSHAP
    (path-dependent, exact for a single tree)."""

    kind = "tree"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._node_values = self._leaf_decisions()
        self._explainer: Any = None

    def _leaf_decisions(self) -> np.ndarray:
        """(n_nodes, n_out) decision value of every node: leaves from the tree, internal nodes
        the sample-weighted mean of their children (what TreeSHAP's expected values use)."""
        tree = self.estimator.tree_
        value = np.asarray(tree.value, dtype=np.float64)  # (n_nodes, n_outputs=1, n_classes)
        value = value[:, 0, :]
        if self.task == "regression":
            out = value[:, :1]
        else:
            p = value / value.sum(axis=1, keepdims=True)
            p = np.clip(p, EPS, 1 - EPS)
            out = np.log(p[:, 1:2] / p[:, 0:1]) if self.task == "binary" else np.log(p)
        out = out.copy()
        left, right = tree.children_left, tree.children_right
        w = np.asarray(tree.weighted_n_node_samples, dtype=np.float64)
        for node in range(tree.node_count - 1, -1, -1):  # children come after their parent
            if left[node] != -1:
                lw, rw = w[left[node]], w[right[node]]
                out[node] = (lw * out[left[node]] + rw * out[right[node]]) / (lw + rw)
        return out

    def _decision(self, X: np.ndarray) -> np.ndarray:
        leaves = self.estimator.apply(X.astype(np.float32))
        out = self._node_values[leaves]
        return out[:, 0] if out.shape[1] == 1 else out

    def _shap_explainer(self) -> Any:
        if self._explainer is None:
            import shap

            tree = self.estimator.tree_
            model = {
                "trees": [{
                    "children_left": tree.children_left.astype(np.int32),
                    "children_right": tree.children_right.astype(np.int32),
                    "children_default": tree.children_left.astype(np.int32),
                    "features": tree.feature.astype(np.int32),
                    "thresholds": tree.threshold.astype(np.float64),
                    "values": self._node_values,
                    "node_sample_weight": tree.weighted_n_node_samples.astype(np.float64),
                }],
                "input_dtype": np.float32,
                "internal_dtype": np.float64,
                "tree_output": "raw_value",
            }
            self._explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
        return self._explainer

    def _contributions(self, X: np.ndarray, target: np.ndarray | None
                       ) -> tuple[np.ndarray, Any, dict[str, Any]]:
        expl = self._shap_explainer()
        sv = np.asarray(expl.shap_values(X.astype(np.float32), check_additivity=False),
                        dtype=np.float64)
        ev = np.atleast_1d(np.asarray(expl.expected_value, dtype=np.float64))
        params: dict[str, Any] = {
            "explainer": "shap.TreeExplainer",
            "feature_perturbation": "tree_path_dependent",
            "leaf_values": ("logit of the leaf class proportion clipped to "
                            f"[{EPS}, {1 - EPS}]" if self.task != "regression" else "leaf mean"),
        }
        if sv.ndim == 3:  # (n, d, outputs)
            if target is None:
                return sv[:, :, 0], float(ev[0]), params
            rows = np.arange(sv.shape[0])
            return sv[rows, :, target], ev[target], params
        return sv, float(ev[0]), params

    def _shape(self, j: int, k: int | None) -> pd.DataFrame:
        """Partial dependence of the tree's decision on feature j over the background sample."""
        tree = self.estimator.tree_
        cuts = tree.threshold[tree.feature == j]
        extra = np.concatenate([cuts, np.nextafter(cuts.astype(np.float32), np.float32(np.inf))])
        grid = self._grid(j, extra.astype(np.float64))
        bg = self._est_background
        m = bg.shape[0]
        Xg = np.repeat(bg[None, :, :], len(grid), axis=0)  # (G, m, d)
        Xg[:, :, j] = grid[:, None]
        dec = self._decision(Xg.reshape(-1, bg.shape[1]))
        centre = self._decision(bg)
        if dec.ndim == 2:
            dec, centre = dec[:, k], centre[:, k]
        # centred like the EBM's term scores: 0 = the average decision on the training sample
        effect = dec.reshape(len(grid), m).mean(axis=1) - centre.mean()
        nan = np.full(len(grid), np.nan)
        return pd.DataFrame({"value": grid, "effect": effect, "ci_low": nan, "ci_high": nan})
