"""What the probes look at: the model's scores (checked), the activations of a torch layer
(through a forward hook that is always removed), and the bases the probes test."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..controls._common import coerce_scores
from ..data._validation import describe
from ..stats import per_sample_loss
from . import _engine as E


def check_scores(scores: Any, n: int, task: str, n_classes: int | None) -> np.ndarray:
    """Scores as float64 in the ``predict_scores`` convention, one per sample, finite.

    Examples
    --------
    >>> check_scores([[0.8, 0.2], [0.4, 0.6]], 2, "binary", 2)
    array([0.2, 0.6])
    """
    s = coerce_scores(scores, n, task)
    if task == "multiclass":
        if s.ndim != 2 or s.shape[1] != n_classes:
            raise ValueError(f"scores has shape {s.shape}; expected ({n}, {n_classes}) class "
                             "probabilities for a multiclass task.")
    elif s.ndim != 1:
        raise ValueError(f"scores has shape {s.shape}; expected ({n},) for task={task!r}.")
    return s


def resolve_layer(adapter: Any, model: Any, layer: Any) -> tuple[Any, str]:
    """The module of ``adapter`` that ``layer`` (a name or a module of ``model``) designates,
    and its name."""
    import torch

    module = adapter.module
    named = dict(module.named_modules())
    if isinstance(layer, str):
        if layer not in named:
            names = [k for k in named if k]
            raise ValueError(f"layer={layer!r} is not a module of the model; expected one of "
                             f"{describe(names, 200)} (names as in dict(model.named_modules())).")
        return named[layer], layer
    if isinstance(layer, torch.nn.Module):
        owner = model if isinstance(model, torch.nn.Module) else module
        for name, m in owner.named_modules():
            if m is layer:
                return named[name], name or type(layer).__name__
        raise ValueError(f"layer={type(layer).__name__} module is not part of the model; "
                         "expected one of its submodules or a name from named_modules().")
    raise TypeError(f"layer has type {type(layer).__name__}; expected a module name (str) or a "
                    "torch.nn.Module of the model.")


#: how the activations of a layer become one embedding row per sample (recorded as
#: ``ProbeResult.info["embedding_pooling"]``).
POOLING = {"none": "none (activations flattened)",
           "spatial": "global average over the spatial dimensions (one value per channel)"}


def _pools(module: Any, ndim: int) -> bool:
    """Whether a layer's output is pooled over its spatial dimensions: a convolutional,
    pooling or batch-norm layer's (N, C, ...) output, or any output with 4 or more
    dimensions (N, C, H, W); sequence outputs (N, T, D) of other layers are flattened."""
    import torch

    if ndim >= 4:
        return True
    spatial = (torch.nn.modules.conv._ConvNd, torch.nn.modules.pooling._MaxPoolNd,
               torch.nn.modules.pooling._AvgPoolNd, torch.nn.modules.pooling._AdaptiveAvgPoolNd,
               torch.nn.modules.pooling._AdaptiveMaxPoolNd, torch.nn.modules.batchnorm._BatchNorm)
    return ndim == 3 and isinstance(module, spatial)


def collect_activations(adapter: Any, model: Any, X: Any, layer: Any
                        ) -> tuple[np.ndarray, np.ndarray, str]:
    """Scores and the activations of ``layer``, in the adapter's batches (a lazy input is read
    batch by batch), through a forward hook that is always removed. The model is not changed.

    A convolutional layer's (N, C, H, W) output is averaged over its spatial dimensions (one
    value per channel: the embedding of 20,000 images stays 20,000 x C); other outputs are
    flattened. The choice is kept as ``adapter.embedding_pooling_`` (see :data:`POOLING`).

    Examples
    --------
    >>> import torch
    >>> from confoundry import as_model
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.Flatten(),
    ...                           torch.nn.Linear(3 * 6 * 6, 1))
    >>> m = as_model(net, output="logits")
    >>> s, acts, name = collect_activations(m, net, torch.zeros(5, 1, 8, 8), "0")
    >>> acts.shape, m.embedding_pooling_
    ((5, 3), 'global average over the spatial dimensions (one value per channel)')
    """
    target, name = resolve_layer(adapter, model, layer)
    chunks: list[np.ndarray] = []
    pooled: list[bool] = []

    def hook(_mod: Any, _inp: Any, out: Any) -> None:
        if isinstance(out, (tuple, list)):
            out = out[0]
        out = out.detach()
        if _pools(target, out.ndim):
            out = out.mean(dim=tuple(range(2, out.ndim)))
            pooled.append(True)
        chunks.append(out.reshape(out.shape[0], -1).to("cpu").double().numpy())

    handle = target.register_forward_hook(hook)
    try:
        scores = adapter.predict_scores(X)
    finally:
        handle.remove()
    adapter.embedding_pooling_ = POOLING["spatial" if pooled else "none"]
    acts = np.concatenate(chunks, axis=0)
    if acts.shape[0] != len(scores):
        raise ValueError(f"layer {name!r} produced {acts.shape[0]} activation rows for "
                         f"{len(scores)} samples; expected one per sample (is it called more "
                         "than once per forward pass?).")
    return scores, acts, name


def output_matrix(s: np.ndarray, task: str) -> np.ndarray:
    """The output basis: ranks of 1-D scores, or the top principal components of the centred
    log class probabilities (multiclass)."""
    if task == "multiclass":
        L = np.log(np.clip(s, 1e-12, None))
        L -= L.mean(axis=1, keepdims=True)
        return E.principal_components(L, min(s.shape[1] - 1, E.MAX_COMPONENTS))
    return E.standard_ranks(s)[:, None]


def error_matrix(y: np.ndarray, s: np.ndarray, task: str) -> np.ndarray:
    """Ranks of the per-sample loss (log-loss; absolute residual for regression)."""
    return E.standard_ranks(per_sample_loss(y, s, task))[:, None]


def partial_r2(t: E.StatTask, lbasis: np.ndarray) -> float:
    """R² of the label-residualised output on the label-residualised metadata design."""
    Dr = E.residualize(t.D, basis=lbasis)
    A = np.linalg.pinv(Dr.T @ Dr, hermitian=True)
    G = Dr.T @ t.U
    r = min(int(np.linalg.matrix_rank(Dr)), t.U.shape[1])
    return float(np.trace(G.T @ A @ G) / r) if r > 0 else np.nan
