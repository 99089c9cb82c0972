"""Figures of the imaging case study: mean attribution maps by group, images with overlays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._explanation import Attribution


def _mean_maps(attr: Attribution, groups: np.ndarray) -> dict[str, np.ndarray]:
    a = np.abs(attr.values).sum(axis=1)  # (n, H, W)
    return {str(g): a[groups == g].mean(axis=0) for g in pd.unique(groups)}


def plot_attribution_maps(attr: Attribution, groups: Any, *, title: str = "",
                          lung_mask: np.ndarray | None = None) -> Any:
    """One panel per group: the mean |attribution| map, on a shared colour scale, with the
    outline of the mean lung mask.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> rng = np.random.default_rng(0)
    >>> a = Attribution(values=rng.normal(size=(6, 1, 8, 8)), base_values=0.0,
    ...                 data=np.zeros((6, 1, 8, 8)), feature_names=[], method="manual")
    >>> fig = plot_attribution_maps(a, ["A", "B"] * 3, lung_mask=rng.random((6, 8, 8)) < 0.5)
    >>> [ax.get_title() for ax in fig.axes]
    ['A (n=3)', 'B (n=3)']
    """
    import matplotlib.pyplot as plt

    groups = np.asarray(groups).astype(str)
    maps = _mean_maps(attr, groups)
    keys = sorted(maps)
    vmax = max(float(m.max()) for m in maps.values()) or 1.0
    fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys), 2.9), squeeze=False)
    for ax, k in zip(axes[0], keys):
        ax.imshow(maps[k], cmap="magma", vmin=0, vmax=vmax)
        if lung_mask is not None:
            ax.contour(lung_mask[groups == k].mean(axis=0), levels=[0.5], colors="cyan",
                       linewidths=0.6)
        ax.set_title(f"{k} (n={int((groups == k).sum())})", fontsize=9)
        ax.set_axis_off()
    fig.suptitle(title or "mean |attribution|", fontsize=10)
    fig.tight_layout()
    return fig


def plot_overlays(images: np.ndarray, attr: Attribution, labels: list[str], *,
                  lung_mask: np.ndarray | None = None, title: str = "") -> Any:
    """Images with their |attribution| overlaid (and the lung outline), one column each.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> x = np.random.default_rng(0).random((2, 1, 8, 8))
    >>> a = Attribution(values=x - 0.5, base_values=0.0, data=x, feature_names=[],
    ...                 method="manual")
    >>> len(plot_overlays(x, a, ["first", "second"]).axes)
    4
    """
    import matplotlib.pyplot as plt

    n = len(labels)
    fig, axes = plt.subplots(2, n, figsize=(2.3 * n, 4.8), squeeze=False)
    a = np.abs(attr.values).sum(axis=1)
    for j in range(n):
        axes[0, j].imshow(images[j, 0], cmap="gray")
        axes[0, j].set_title(labels[j], fontsize=8)
        axes[1, j].imshow(images[j, 0], cmap="gray")
        axes[1, j].imshow(a[j], cmap="magma", alpha=0.6)
        if lung_mask is not None:
            axes[1, j].contour(lung_mask[j], levels=[0.5], colors="cyan", linewidths=0.6)
        axes[0, j].set_axis_off()
        axes[1, j].set_axis_off()
    fig.suptitle(title or "images and |attribution|", fontsize=10)
    fig.tight_layout()
    return fig

