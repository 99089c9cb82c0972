"""Explainable Boosting Machine baseline (InterpretML), with defaults chosen for speed.

interpret's own defaults (14 outer bags, ``3x`` interaction terms) cost minutes on two cores at
10k x 50; its cost is dominated by the number of outer bags and interaction terms. The defaults
below keep a few bags (for shape bands) and a handful of pairwise interactions; see
``docs/baselines.md`` for the measurements behind them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._glassbox import GlassBoxModel

#: confoundry's EBM defaults (everything else is interpret's default). Override with
#: ``fit_baselines(..., ebm_params={...})``.
EBM_DEFAULTS: dict[str, Any] = {
    "outer_bags": 4,
    "interactions": 10,
    "max_bins": 256,
    "learning_rate": 0.04,
    "n_jobs": -1,
}
#: z value of the pointwise band drawn from the outer-bag standard deviation.
BAND_Z = 1.959963984540054


def ebm_class(task: str) -> Any:
    from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor

    return ExplainableBoostingRegressor if task == "regression" else ExplainableBoostingClassifier


def ebm_params(task: str, params: dict[str, Any] | None, feature_names: list[str],
               random_state: int) -> dict[str, Any]:
    """Resolved constructor arguments (defaults, then the user's), validated by name."""
    cls = ebm_class(task)
    allowed = set(cls().get_params())
    user = dict(params or {})
    bad = sorted(set(user) - allowed)
    if bad:
        raise ValueError(f"ebm_params has unknown key(s) {bad}; expected arguments of "
                         f"interpret's {cls.__name__} (e.g. outer_bags, interactions, max_bins).")
    out = {**EBM_DEFAULTS, "random_state": random_state, **user}
    out.setdefault("feature_names", list(feature_names))
    return out


class EBMGlassBox(GlassBoxModel):
    """EBM: the decision is the intercept plus one score per term; a pairwise interaction term's
    score is split equally between its two features in ``explain``."""

    kind = "ebm"

    def _term_matrix(self) -> np.ndarray:
        """(n_terms, d) matrix sharing each term's score equally among its features."""
        terms = self.estimator.term_features_
        M = np.zeros((len(terms), len(self._est_names)))
        for t, feats in enumerate(terms):
            M[t, list(feats)] = 1.0 / len(feats)
        return M

    def _intercept(self) -> np.ndarray:
        return np.atleast_1d(np.asarray(self.estimator.intercept_, dtype=np.float64))

    def _decision(self, X: np.ndarray) -> np.ndarray:
        est = self.estimator
        if self.task == "regression":
            return np.asarray(est.predict(X), dtype=np.float64)
        return np.asarray(est.decision_function(X), dtype=np.float64)

    def _contributions(self, X: np.ndarray, target: np.ndarray | None
                       ) -> tuple[np.ndarray, Any, dict[str, Any]]:
        terms = np.asarray(self.estimator.eval_terms(X), dtype=np.float64)
        M = self._term_matrix()
        pairs = [list(map(str, (self._est_names[f] for f in feats)))
                 for feats in self.estimator.term_features_ if len(feats) > 1]
        params: dict[str, Any] = {
            "terms": list(self.estimator.term_names_),
            "interaction_terms": pairs,
            "interaction_split": ("each interaction term's local score is split equally "
                                  "between its features"),
            "base_value": "EBM intercept",
        }
        intercept = self._intercept()
        if target is None:
            return terms @ M, float(intercept[0]), params
        rows = np.arange(terms.shape[0])
        per_class = terms[rows, :, target]  # (n, n_terms)
        return per_class @ M, intercept[target], params

    def _shape(self, j: int, k: int | None) -> pd.DataFrame:
        est = self.estimator
        try:
            t = list(est.term_features_).index((j,))
        except ValueError:
            raise ValueError(f"feature {self._est_names[j]!r} has no main-effect term in the "
                             "EBM (it was excluded); no shape to show.") from None
        scores = np.asarray(est.term_scores_[t], dtype=np.float64)
        sds = np.asarray(est.standard_deviations_[t], dtype=np.float64)
        weights = np.asarray(est.bin_weights_[t], dtype=np.float64)
        if k is not None:
            scores, sds = scores[..., k], sds[..., k]
        bins = est.bins_[j][0]
        if isinstance(bins, dict):  # categorical: category -> bin index
            cats = list(bins.items())
            idx = np.array([i for _, i in cats])
            values: Any = [_as_number(c) for c, _ in cats]
            low = high = np.full(len(idx), np.nan)
        else:
            cuts = np.asarray(bins, dtype=np.float64)
            lo, hi = est.feature_bounds_[j]
            edges = np.concatenate([[lo], cuts, [hi]])
            idx = np.arange(1, len(cuts) + 2)
            low, high = edges[:-1], edges[1:]
            # two bins: a two-valued feature (0/1) whose bins are its two levels, shown at the
            # levels rather than at bin midpoints such as 0.25 and 0.75
            values = np.array([lo, hi]) if len(cuts) == 1 else (low + high) / 2
        effect = scores[idx]
        sd = sds[idx]
        bagged = int(getattr(est, "outer_bags", 1)) >= 2 and bool(np.any(sd > 0))
        band = BAND_Z * sd if bagged else np.full(len(idx), np.nan)
        df = pd.DataFrame({
            "value": values, "effect": effect, "ci_low": effect - band, "ci_high": effect + band,
            "bin_low": low, "bin_high": high, "weight": weights[idx],
        })
        df.attrs["band"] = ("effect +/- 1.96 x outer-bag standard deviation (pointwise, not a "
                            "formal confidence interval)" if bagged else "none (outer_bags < 2)")
        df.attrs["interactions"] = [n for n, f in zip(est.term_names_, est.term_features_)
                                    if len(f) > 1 and j in f]
        if isinstance(bins, dict):
            try:
                df = df.sort_values("value", kind="mergesort").reset_index(drop=True)
            except TypeError:
                pass
        return df


def _as_number(v: Any) -> Any:
    try:
        return float(v)
    except (TypeError, ValueError):
        return v
