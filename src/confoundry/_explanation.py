"""``AttributionResult``: the one result type every explainer (Captum, SHAP, glass-box) returns.

It lives at the package root, below every layer, so that glass-box models (``models``) and the
attribution engines (``attribution``) share it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._result import ResultMixin, internal, to_jsonable


@dataclass(frozen=True, eq=False)
class AttributionResult(ResultMixin):
    """Per-sample, per-feature contributions to a model's output, with what produced them.

    Like ``shap.Explanation``: values, base values, data and names travel together.

    Parameters
    ----------
    values : ndarray
        ``(n, d)`` for tabular input; the input's shape for image or sequence tensors.
    base_values : ndarray or float
        The output for the reference input (expected value, intercept or baseline output),
        per sample ``(n,)`` or a scalar. For additive methods
        ``values.sum(axis=1) + base_values`` reproduces the explained output.
    data : ndarray
        The explained inputs, same shape as ``values``.
    feature_names : list of str
    method : str
        e.g. ``"integrated_gradients"``, ``"ebm_local"``, ``"logistic_linear"``, ``"tree_shap"``.
    params : dict
        Settings of the method (baseline, n_steps, target, ...).
    convergence_delta : ndarray or None
        Per-sample completeness error where the method has one.
    compute_time : float
        Seconds spent computing.
    output : str
        What is explained: ``"logit"``, ``"probability"`` or ``"value"``.
    model_name : str
        Name of the explained model, for reports.

    Examples
    --------
    >>> import numpy as np
    >>> a = AttributionResult(values=np.array([[1.0, -2.0], [0.5, 0.0]]), base_values=0.1,
    ...                       data=np.zeros((2, 2)), feature_names=["age", "asthma"],
    ...                       method="manual")
    >>> a.global_importance().to_dict()
    {'asthma': 1.0, 'age': 0.75}
    >>> sorted(a.to_dict())[:4]   # the arrays stay out of the JSON record
    ['compute_time', 'convergence_delta_max', 'feature_names', 'findings']
    """

    # the (n, d) arrays are internal: to_dict() summarises them (n_samples, shape, the largest
    # convergence delta) and keeps the per-feature table, so an audit's JSON does not grow by n
    values: np.ndarray = internal()
    base_values: Any = internal()
    data: np.ndarray = internal()
    feature_names: Sequence[str]
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    convergence_delta: np.ndarray | None = internal(default=None)
    compute_time: float = 0.0
    output: str = "logit"
    model_name: str = ""

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "data", np.asarray(self.data, dtype=np.float64))
        base = np.asarray(self.base_values, dtype=np.float64)
        object.__setattr__(self, "base_values", base)
        object.__setattr__(self, "feature_names", [str(f) for f in self.feature_names])
        if self.data.shape != values.shape:
            raise ValueError(f"AttributionResult data has shape {self.data.shape} but values have "
                             f"{values.shape}; expected the same shape.")
        if values.ndim == 2 and len(self.feature_names) != values.shape[1]:
            raise ValueError(f"AttributionResult has {len(self.feature_names)} feature names for "
                             f"{values.shape[1]} columns of values; expected one per column.")

    # ------------------------------------------------------------- properties
    @property
    def n_samples(self) -> int:
        return int(self.values.shape[0])

    @property
    def is_tabular(self) -> bool:
        return self.values.ndim == 2

    def _flat(self) -> np.ndarray:
        return self.values.reshape(self.n_samples, -1)

    def total(self) -> np.ndarray:
        """Per-sample sum of attributions plus the base value (the reconstructed output)."""
        return self._flat().sum(axis=1) + np.broadcast_to(self.base_values, (self.n_samples,))

    def global_importance(self) -> pd.Series:
        """Mean absolute attribution per feature, largest first."""
        if not self.is_tabular:
            raise ValueError("global_importance() needs tabular attributions (n, d); this one "
                             f"has shape {self.values.shape}.")
        imp = np.abs(self.values).mean(axis=0)
        s = pd.Series(imp, index=self.feature_names, name="mean_abs_attribution")
        return s.sort_values(ascending=False, kind="mergesort")

    def subset(self, rows: Any) -> AttributionResult:
        """The attributions of a subset of samples (boolean mask or positions)."""
        rows = np.asarray(rows)
        base = self.base_values if self.base_values.ndim == 0 else self.base_values[rows]
        delta = None if self.convergence_delta is None else np.asarray(self.convergence_delta)[rows]
        return AttributionResult(self.values[rows], base, self.data[rows], self.feature_names,
                           self.method, dict(self.params), delta, self.compute_time, self.output,
                           self.model_name)

    def pool(self, grid: tuple[int, int] = (4, 4), *, absolute: bool = False
             ) -> AttributionResult:
        """Tabular attributions over a coarse grid of image regions (or sequence segments).

        Each cell's value is the sum of the attributions of its pixels over all channels
        (``absolute=True``: the sum of their absolute values, i.e. how much the model looks
        there), so completeness is kept; its data is the cell's mean input intensity. Features
        are named ``"r{row}c{col}"`` (images) or ``"s{segment}"`` (sequences ``(n, C, L)``).
        Use it to run the tabular tools (:func:`confoundry.contrast_attributions`,
        :func:`confoundry.compare_attributions`) on image attributions.

        Parameters
        ----------
        grid : (int, int)
            Rows and columns of the grid (sequences use ``grid[0] * grid[1]`` segments); cells
            at the border take the remainder when the size does not divide evenly.
        absolute : bool, default False

        Returns
        -------
        AttributionResult

        Examples
        --------
        >>> import numpy as np
        >>> v = np.zeros((2, 1, 4, 4)); v[:, 0, 0, 0] = 1.0
        >>> a = AttributionResult(v, 0.0, v, [], "manual")
        >>> p = a.pool((2, 2))
        >>> p.feature_names, p.values[0].tolist()
        (['r0c0', 'r0c1', 'r1c0', 'r1c1'], [1.0, 0.0, 0.0, 0.0])
        """
        if self.is_tabular:
            raise ValueError(f"pool() needs image or sequence attributions; this one has shape "
                             f"{self.values.shape} (already tabular).")
        gr, gc = (int(g) for g in grid)
        if gr < 1 or gc < 1:
            raise ValueError(f"grid={grid!r}; expected two positive integers.")
        v = np.abs(self.values) if absolute else self.values
        x = self.data
        n = self.n_samples
        if v.ndim == 3 and self.values.shape[1] <= 4 and self.values.shape[2] > 4:
            v, x = v[:, :, None, :], x[:, :, None, :]  # (n, C, L) sequences: one row
            gr, gc = 1, gr * gc
        elif v.ndim == 3:  # (n, H, W) single-channel images
            v, x = v[:, None], x[:, None]
        if v.ndim != 4:
            raise ValueError(f"pool() supports (n, H, W), (n, C, H, W) and (n, C, L) "
                             f"attributions; got shape {self.values.shape}.")
        H, W = v.shape[2], v.shape[3]
        if gr > H or gc > W:
            raise ValueError(f"grid={grid!r} is finer than the input ({H} x {W}).")
        rb = np.linspace(0, H, gr + 1).astype(int)
        cb = np.linspace(0, W, gc + 1).astype(int)
        vals, data, names = [], [], []
        for i in range(gr):
            for j in range(gc):
                cell_v = v[:, :, rb[i]:rb[i + 1], cb[j]:cb[j + 1]].reshape(n, -1)
                cell_x = x[:, :, rb[i]:rb[i + 1], cb[j]:cb[j + 1]].reshape(n, -1)
                vals.append(cell_v.sum(axis=1))
                data.append(cell_x.mean(axis=1))
                names.append(f"r{i}c{j}" if gr > 1 else f"s{j}")
        params = dict(self.params) | {"pooled_grid": [gr, gc], "pooled_absolute": absolute}
        return AttributionResult(np.column_stack(vals), self.base_values, np.column_stack(data), names,
                           self.method, params, self.convergence_delta, self.compute_time,
                           self.output, self.model_name)

    # ---------------------------------------------------------------- surface
    def to_frame(self) -> pd.DataFrame:
        """One row per feature: mean |attribution|, mean attribution, rank, direction."""
        if not self.is_tabular:
            flat = np.abs(self._flat())
            return pd.DataFrame({"mean_abs_attribution": [float(flat.mean())],
                                 "n": [self.n_samples]})
        v, x = self.values, self.data
        rows = []
        imp = np.abs(v).mean(axis=0)
        ranks = pd.Series(-imp).rank(method="min").astype(int).to_numpy()
        for j, name in enumerate(self.feature_names):
            xj, vj = x[:, j], v[:, j]
            if np.std(xj) > 0 and np.std(vj) > 0:
                r = float(np.corrcoef(xj, vj)[0, 1])
            else:
                r = np.nan
            rows.append({"feature": name, "mean_abs_attribution": float(imp[j]),
                         "mean_attribution": float(vj.mean()), "rank": int(ranks[j]),
                         "value_attribution_corr": r, "n": self.n_samples})
        return pd.DataFrame(rows).sort_values("rank", kind="mergesort").reset_index(drop=True)

    def _extra_dict(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples, "shape": list(self.values.shape),
                "convergence_delta_max": (None if self.convergence_delta is None else
                                          to_jsonable(np.nanmax(np.abs(self.convergence_delta))))}

    def plot(self, ax: Any = None, *, max_features: int = 15) -> Any:
        """Bar chart of mean |attribution| (tabular) or mean |attribution| map (images)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.3 * max_features + 1), layout="constrained")
        if self.is_tabular:
            imp = self.global_importance().iloc[:max_features][::-1]
            ax.barh(imp.index, imp.values, color="#4C72B0")
            ax.set_xlabel("mean |attribution|")
            ax.set_title(f"{self.model_name or 'model'}: {self.method}")
        else:
            amap = np.abs(self.values).mean(axis=0)
            while amap.ndim > 2:
                amap = amap.mean(axis=0)
            ax.imshow(amap, cmap="magma")
            ax.set_axis_off()
            ax.set_title(f"mean |attribution| ({self.method})")
        return ax.figure


#: the old name, kept so that ``from .._explanation import Attribution`` keeps working while
#: the other packages move to ``AttributionResult`` (the public deprecated alias is
#: ``confoundry.attribution.Attribution``).
Attribution = AttributionResult
