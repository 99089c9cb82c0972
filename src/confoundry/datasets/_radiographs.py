"""Simulated chest radiographs from three hospitals: a label in the lungs, a shortcut in the corner.

Modelled on Zech et al. (PLOS Medicine 2018): CNNs trained on radiographs pooled from hospitals
with very different pneumonia prevalence learned to recognise the hospital (from laterality
tokens, borders and acquisition signatures) instead of the lungs. Here the true label lives only
in the texture of the lung fields (opacities for pneumonia); each site adds its own acquisition
signature (scanner gain, offset and noise) and, unless ``marker=False``, a bright site token
outside the lung field. Because prevalence differs by site, the token is an easier shortcut
than the opacities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._utils import check_random_state
from ..data._validation import check_positive_int, describe

#: the three simulated sites, their pneumonia prevalence and the scanners they use
_SITES = ("A", "B", "C")
_PREVALENCE = (0.7, 0.05, 0.3)
_SCANNERS = {
    "A": (("vendor1", 0.7), ("vendor2", 0.3)),
    "B": (("vendor3", 0.8), ("vendor2", 0.2)),
    "C": (("vendor1", 0.4), ("vendor3", 0.6)),
}
#: scanner signatures: (gain, offset, noise sd)
_SCANNER_SIGNATURE = {
    "vendor1": (1.00, 0.000, 0.050),
    "vendor2": (0.98, 0.005, 0.051),
    "vendor3": (1.02, -0.005, 0.052),
}

_DESCR = """\
Simulated chest radiographs with a site shortcut
================================================

Grey-scale images (n x 1 x H x W, float32) of a stylised chest: a body silhouette with two lung
fields. Pneumonia (y = 1) adds 2-4 Gaussian opacities of random severity inside the lung fields;
healthy lungs (y = 0) carry at most one faint opacity, so the label is learnable from the lungs
alone but not perfectly. Three sites (A, B, C) differ in prevalence (default 0.7, 0.05, 0.3), use
different scanners (gain, offset and noise level; metadata column ``scanner``) and, with
``marker=True``, stamp a site-specific bright token in a corner outside the lung field. A model
trained on sites A and B pooled can therefore score pneumonia by reading the token (the
shortcut) instead of the lungs: Zech et al. (PLOS Medicine 2018) found exactly this on real
radiographs from three hospital systems.

Keys: images, y, metadata (site, scanner), lung_mask (bool n x H x W), marker_mask
(bool n x H x W; all False without a marker), params, DESCR.
"""


def _check_sites(n_per_site: Any, prevalence: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(n_per_site, (int, np.integer)) and not isinstance(n_per_site, bool):
        counts = np.full(3, check_positive_int(n_per_site, "n_per_site", minimum=2))
    elif isinstance(n_per_site, Sequence) and len(n_per_site) == 3:
        counts = np.array([check_positive_int(v, "n_per_site", minimum=2) for v in n_per_site])
    else:
        raise TypeError(f"n_per_site={describe(n_per_site)}; expected an int >= 2 or a sequence "
                        "of three ints (one per site A, B, C).")
    try:
        prev = np.asarray(prevalence, dtype=float)
    except (TypeError, ValueError):
        prev = np.array([])
    if prev.shape != (3,) or not np.all((prev > 0) & (prev < 1)):
        raise ValueError(f"prevalence={describe(prevalence)}; expected three probabilities in "
                         "(0, 1), one per site A, B, C.")
    return counts, prev


def _ellipse(xx: np.ndarray, yy: np.ndarray, cx: np.ndarray, cy: np.ndarray, rx: np.ndarray,
             ry: np.ndarray) -> np.ndarray:
    """Boolean (n, H, W) masks of axis-aligned ellipses with per-image centres and radii."""
    c = (slice(None), None, None)
    return ((xx - cx[c]) / rx[c]) ** 2 + ((yy - cy[c]) / ry[c]) ** 2 <= 1.0


def _marker_masks(site_idx: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Site tokens outside the lung field: an 'L' top left (A), a ring top right (B), a bar
    bottom left (C). Position jitters by a pixel or two."""
    n = len(site_idx)
    s = max(4, round(size / 6))  # token size in pixels
    masks = np.zeros((n, size, size), dtype=bool)
    jitter = rng.integers(0, max(1, size // 32) + 1, size=(n, 2))
    margin = max(1, size // 32)
    tok = np.zeros((3, s, s), dtype=bool)
    w = max(1, s // 3)
    tok[0, :, :w] = True          # 'L'
    tok[0, -w:, :] = True
    tok[1, :w, :] = True          # ring
    tok[1, -w:, :] = True
    tok[1, :, :w] = True
    tok[1, :, -w:] = True
    tok[2, s // 2 - w // 2: s // 2 - w // 2 + w, :] = True  # bar
    corners = {0: (margin, margin), 1: (margin, size - margin - s),
               2: (size - margin - s, margin)}
    for k in range(3):  # three sites: loop over sites, vectorised over images
        idx = np.flatnonzero(site_idx == k)
        if idx.size == 0:
            continue
        r0, c0 = corners[k]
        dr = jitter[idx, 0] * (1 if k != 2 else -1)
        dc = jitter[idx, 1] * (1 if k != 1 else -1)
        rr = r0 + dr[:, None, None] + np.arange(s)[None, :, None]
        cc = c0 + dc[:, None, None] + np.arange(s)[None, None, :]
        rr = np.clip(rr, 0, size - 1)
        cc = np.clip(cc, 0, size - 1)
        sub = np.broadcast_to(tok[k], (idx.size, s, s))
        ii = np.broadcast_to(idx[:, None, None], (idx.size, s, s))
        masks[ii[sub], np.broadcast_to(rr, (idx.size, s, s))[sub],
              np.broadcast_to(cc, (idx.size, s, s))[sub]] = True
    return masks


def simulate_radiographs(
    n_per_site: int | Sequence[int] = 400,
    *,
    image_size: int = 64,
    random_state: Any = None,
    marker: bool = True,
    prevalence: Sequence[float] = _PREVALENCE,
    opacity: float = 0.5,
    marker_intensity: float = 1.0,
) -> Bunch:
    """Simulate chest radiographs from three sites whose token is a shortcut for the label.

    Parameters
    ----------
    n_per_site : int or sequence of 3 ints, default 400
        Images per site (A, B, C).
    image_size : int, default 64
        Height and width in pixels (at least 16).
    random_state : None, int or numpy Generator
        Seed; the same seed gives the same images.
    marker : bool, default True
        Stamp the site token outside the lung field. ``False`` gives the control data set: the
        same patients, lungs, scanners and prevalence, without the token.
    prevalence : sequence of 3 floats, default (0.7, 0.05, 0.3)
        Pneumonia prevalence at sites A, B and C.
    opacity : float, default 0.5
        Peak intensity of a pneumonia opacity (severity is drawn between 0.4 and 1.2 times it).
    marker_intensity : float, default 1.0
        Brightness of the site token.

    Returns
    -------
    Bunch
        ``images`` (float32, n x 1 x H x W), ``y`` (int64, n), ``metadata`` (DataFrame with
        ``site`` and ``scanner``), ``lung_mask`` (bool, n x H x W), ``marker_mask`` (bool,
        n x H x W), ``params`` (dict of the settings) and ``DESCR``.

    Examples
    --------
    >>> d = simulate_radiographs(20, image_size=32, random_state=0)
    >>> d.images.shape, d.images.dtype, d.lung_mask.shape
    ((60, 1, 32, 32), dtype('float32'), (60, 32, 32))
    >>> sorted(d.metadata["site"].unique())
    ['A', 'B', 'C']
    >>> bool((d.lung_mask & d.marker_mask).any())   # the token never touches the lungs
    False
    """
    counts, prev = _check_sites(n_per_site, prevalence)
    size = check_positive_int(image_size, "image_size", minimum=16)
    if not isinstance(marker, (bool, np.bool_)):
        raise TypeError(f"marker={describe(marker)}; expected True or False.")
    for name, val in (("opacity", opacity), ("marker_intensity", marker_intensity)):
        if not isinstance(val, (int, float, np.number)) or not np.isfinite(val) or val <= 0:
            raise ValueError(f"{name}={describe(val)}; expected a positive finite number.")
    rng = check_random_state(random_state)
    n = int(counts.sum())
    site_idx = np.repeat(np.arange(3), counts)
    y = (rng.random(n) < prev[site_idx]).astype(np.int64)

    # scanners per site
    scanner = np.empty(n, dtype=object)
    u = rng.random(n)
    for k, site in enumerate(_SITES):
        idx = np.flatnonzero(site_idx == k)
        names = [s for s, _ in _SCANNERS[site]]
        cum = np.cumsum([p for _, p in _SCANNERS[site]])
        scanner[idx] = np.asarray(names, dtype=object)[np.searchsorted(cum, u[idx] * cum[-1])]
    gain0, offset0, noise_sd = (np.array([_SCANNER_SIGNATURE[s][j] for s in scanner])
                                for j in range(3))

    # anatomy with per-patient jitter
    ax = np.linspace(-1.0, 1.0, size)
    yy, xx = np.meshgrid(ax, ax, indexing="ij")
    jit = rng.normal(0.0, 1.0, size=(n, 6))
    body = _ellipse(xx, yy, 0.02 * jit[:, 0], 0.05 + 0.02 * jit[:, 1],
                    0.78 * (1 + 0.04 * jit[:, 2]), 0.92 * np.ones(n))
    lung_rx = 0.25 * (1 + 0.06 * jit[:, 3])
    lung_ry = 0.52 * (1 + 0.06 * jit[:, 4])
    lung_cy = -0.05 + 0.03 * jit[:, 5]
    sep = 0.37 + 0.02 * rng.normal(size=n)
    left = _ellipse(xx, yy, -sep, lung_cy, lung_rx, lung_ry)
    right = _ellipse(xx, yy, sep, lung_cy, lung_rx, lung_ry)
    lung = left | right
    img = np.where(body, 0.35, 0.05).astype(np.float64)
    img[lung] = 0.12

    # opacities: 2-4 for pneumonia, at most one faint one for healthy lungs
    k_max = 4
    n_blobs = np.where(y == 1, rng.integers(2, k_max + 1, size=n),
                       (rng.random(n) < 0.3).astype(int))
    sev = np.where(y == 1, rng.uniform(0.4, 1.2, size=n), rng.uniform(0.1, 0.4, size=n))
    sigma = 4.5 / 64 * 2  # in the [-1, 1] coordinates: 4.5 px at 64 px
    for k in range(k_max):
        active = n_blobs > k
        side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        r = 0.75 * np.sqrt(rng.random(n))
        t = rng.uniform(0, 2 * np.pi, size=n)
        cx = side * sep + r * np.cos(t) * lung_rx
        cy = lung_cy + r * np.sin(t) * lung_ry
        amp = opacity * sev * active * rng.uniform(0.8, 1.2, size=n)
        d2 = (xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2
        img += amp[:, None, None] * np.exp(-d2 / (2 * sigma**2)) * lung

    # acquisition: per-image exposure around the scanner's signature, then noise
    gain = gain0 * np.exp(rng.normal(0.0, 0.08, size=n))
    offset = offset0 + rng.normal(0.0, 0.03, size=n)
    img = gain[:, None, None] * img + offset[:, None, None]
    img += noise_sd[:, None, None] * rng.standard_normal((n, size, size))

    markers = _marker_masks(site_idx, size, rng)
    markers &= ~lung
    if marker:
        img[markers] = marker_intensity
    else:
        markers[:] = False

    metadata = pd.DataFrame({"site": pd.Categorical(np.asarray(_SITES)[site_idx],
                                                    categories=list(_SITES)),
                             "scanner": scanner.astype(str)})
    params = {"n_per_site": counts.tolist(), "image_size": size, "marker": bool(marker),
              "prevalence": prev.tolist(), "opacity": float(opacity),
              "marker_intensity": float(marker_intensity), "sites": list(_SITES),
              "scanners": {k: dict(v) for k, v in _SCANNERS.items()},
              "scanner_signature": {k: list(v) for k, v in _SCANNER_SIGNATURE.items()},
              "random_state": random_state if isinstance(random_state, (int, type(None)))
              else repr(random_state)}
    return Bunch(images=img[:, None].astype(np.float32), y=y, metadata=metadata,
                 lung_mask=lung, marker_mask=markers, params=params, DESCR=_DESCR)
