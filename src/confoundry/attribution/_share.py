"""``attribution_mass``: the per-sample share of absolute attribution inside a region."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._explanation import AttributionResult
from ..data._validation import describe


def _abs_values(attribution: Any) -> np.ndarray:
    if isinstance(attribution, AttributionResult):
        values = attribution.values
    elif isinstance(attribution, (np.ndarray, list, tuple)) or hasattr(attribution, "__array__"):
        try:
            values = np.asarray(getattr(attribution, "detach", lambda: attribution)(),
                                dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"attribution={describe(attribution)}; expected an "
                            "AttributionResult or a numeric array of per-sample "
                            "attributions.") from None
    else:
        raise TypeError(f"attribution={describe(attribution)}; expected an AttributionResult or "
                        "a numeric array of per-sample attributions.")
    if values.ndim < 2:
        raise ValueError(f"attribution has values of shape {values.shape}; expected at least 2 "
                         "dimensions (n_samples, ...).")
    if not np.all(np.isfinite(values)):
        raise ValueError("attribution has NaN or infinite values; expected finite attributions.")
    return np.abs(values)


def _broadcast_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A boolean mask broadcast to the attribution's ``shape`` = ``(n, *sample_shape)``.

    Accepted: the sample shape (one region for all samples), ``(n, *sample_shape)``, or a
    mask that omits the channel axis of ``(n, C, H, W)`` values: ``(H, W)`` or ``(n, H, W)``.
    """
    m = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
    if m.dtype != bool:
        if m.dtype.kind not in "biuf" or not np.isin(m, (0, 1)).all():
            raise ValueError(f"mask has dtype {m.dtype} with values other than 0/1; expected a "
                             "boolean mask.")
        m = m.astype(bool)
    n, sample = shape[0], shape[1:]
    if m.shape == sample:
        m = m[None]
    elif m.shape == shape:
        pass
    elif len(sample) == 3 and m.shape == sample[1:]:          # (H, W) for (n, C, H, W)
        m = m[None, None]
    elif len(sample) == 3 and m.shape == (n, *sample[1:]):    # (n, H, W) for (n, C, H, W)
        m = m[:, None]
    else:
        raise ValueError(f"mask has shape {m.shape}; expected {sample}, {shape}"
                         + (f", {sample[1:]} or {(n, *sample[1:])}" if len(sample) == 3 else "")
                         + " to match attributions of shape " + f"{shape}.")
    return np.broadcast_to(m, shape)


def attribution_mass(attribution: AttributionResult | np.ndarray, mask: Any) -> np.ndarray:
    """Per-sample share of absolute attribution that falls inside ``mask``.

    ``share_i = sum(|a_i| * mask_i) / sum(|a_i|)``, summed over channels and pixels (or over
    features for tabular attributions). 1 means the model's attribution lies entirely inside the
    region, 0 entirely outside. A sample whose attributions are all zero gets NaN.

    Parameters
    ----------
    attribution : AttributionResult or ndarray
        Per-sample attributions ``(n, ...)``: images ``(n, C, H, W)`` or ``(n, H, W)``, or
        tabular ``(n, d)``.
    mask : array-like of bool
        The region: one mask for all samples (the sample shape, e.g. ``(H, W)`` or ``(d,)``) or
        one per sample (``(n, H, W)``); a mask without the channel axis applies to every channel.

    Returns
    -------
    ndarray of shape (n,)
        Shares in ``[0, 1]`` (NaN where the total attribution is zero).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((2, 1, 4, 4)); a[0, 0, 0, 0] = 3.0; a[0, 0, 3, 3] = -1.0; a[1, 0, 3, 3] = 2.0
    >>> mask = np.zeros((4, 4), dtype=bool); mask[:2, :2] = True
    >>> attribution_mass(a, mask).tolist()
    [0.75, 0.0]
    """
    v = _abs_values(attribution)
    m = _broadcast_mask(mask, v.shape)
    n = v.shape[0]
    flat = v.reshape(n, -1)
    total = flat.sum(axis=1)
    inside = np.where(m.reshape(n, -1), flat, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)
    return np.clip(share, 0.0, 1.0)
