"""The imaging case study's model: a small CNN with a named embedding layer, and its trainer."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._utils import progress, torch_seed
from ..data._validation import check_positive_int, describe

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]
    nn = None  # type: ignore[assignment]

#: name of the penultimate layer (the embedding the probes read)
EMBEDDING_LAYER = "penultimate"


class RadiographCNN(nn.Module):
    """A small CNN for 1-channel radiographs with a named penultimate layer.

    Three 3x3 convolution blocks (ReLU, 2x2 max pooling), global average and max pooling
    (concatenated), the
    ``penultimate`` block (linear + ReLU, the embedding) and a linear ``head`` returning one
    logit per image (shape ``(n,)``). Every ReLU is its own module (safe for DeepLift hooks).

    Examples
    --------
    >>> import torch
    >>> net = RadiographCNN()
    >>> net(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2])
    """

    def __init__(self, channels: tuple[int, int, int] = (8, 16, 32), embedding_dim: int = 16
                 ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
        )
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.penultimate = nn.Sequential(nn.Linear(2 * c3, embedding_dim), nn.ReLU())
        self.head = nn.Linear(embedding_dim, 1)

    def forward(self, x: Any) -> Any:
        f = self.features(x)
        pooled = torch.cat([self.avg_pool(f).flatten(1), self.max_pool(f).flatten(1)], dim=1)
        return self.head(self.penultimate(pooled))[:, 0]


def _as_image_tensor(images: Any, name: str = "images") -> Any:
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] != 1 or arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} has shape {arr.shape} and dtype {arr.dtype}; expected numeric "
                         "images of shape (n, 1, H, W) or (n, H, W).")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; expected finite pixels.")
    return torch.as_tensor(np.ascontiguousarray(arr, dtype=np.float32))


def train_radiograph_cnn(
    images: Any,
    y: Any,
    *,
    random_state: int = 0,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 3e-3,
    verbose: bool = True,
) -> RadiographCNN:
    """Train :class:`RadiographCNN` with Adam on binary labels; returned in eval mode.

    Deterministic given ``random_state``: the initialisation and the mini-batch order come from
    it, in a forked torch RNG (the caller's torch RNG state is left as it was).

    Parameters
    ----------
    images : ndarray or tensor of shape (n, 1, H, W) or (n, H, W)
    y : array-like of shape (n,) with values in {0, 1}
    random_state : int, default 0
    epochs : int, default 10
    batch_size : int, default 32
    lr : float, default 3e-3
    verbose : bool, default True
        Show a progress bar over epochs.

    Returns
    -------
    RadiographCNN

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((40, 1, 16, 16)).astype("float32"); y = np.arange(40) % 2
    >>> net = train_radiograph_cnn(X, y, epochs=1, verbose=False)
    >>> net.training
    False
    """
    x = _as_image_tensor(images)
    yy = np.asarray(y)
    if yy.shape != (x.shape[0],) or not np.isin(yy, (0, 1)).all():
        raise ValueError(f"y={describe(y)}; expected {x.shape[0]} labels in {{0, 1}}.")
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise ValueError(f"random_state={describe(random_state)}; expected a non-negative int.")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr={describe(lr)}; expected a positive number.")
    target = torch.as_tensor(yy, dtype=torch.float32)
    rng = np.random.default_rng(int(random_state))
    n = x.shape[0]
    with torch_seed(int(random_state)):
        net = RadiographCNN()
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        loss_fn = nn.BCEWithLogitsLoss()
        net.train()
        for _ in progress(range(epochs), desc="training CNN", verbose=verbose):
            order = torch.as_tensor(rng.permutation(n))
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                opt.zero_grad()
                loss = loss_fn(net(x[idx]), target[idx])
                loss.backward()
                opt.step()
    net.eval()
    for p in net.parameters():
        p.grad = None
    return net

