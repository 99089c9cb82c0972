"""What the conditional probes condition on: the true label and, with ``adjust_for``, the
covariates the user considers legitimate (age, sex, ...).

Two ways to condition, one per kind of label, each keeping the calibration of the probe
without adjustment:

* **categorical label**: the permutation strata become label x covariate strata (a categorical
  covariate's levels; a continuous one in :data:`ADJUST_BINS` quantile bins), and the output is
  also residualised on a cubic basis of the ranks of each continuous covariate. Permuting the
  metadata within these strata is exact for the hypothesis that the metadata is exchangeable
  within them; the residualisation removes most of the within-bin covariate signal, so that a
  model that follows a continuous covariate is not flagged for the residual variation of the
  covariate inside a bin (the statistic only sees the output after the covariate basis is
  projected out, and a projection fixed by the covariates does not change under the
  permutation).
* **continuous label**: the conditional permutation test draws the metadata from a model of
  metadata given the label *and* the covariates (Gaussian with a cubic mean in the label ranks
  plus a linear term in the covariate basis; multinomial logistic on the label ranks and the
  covariate basis), and the output is residualised on the label basis and the covariate basis.

Residualising both sides alone and keeping the label-only permutations would not be calibrated:
a metadata column that goes with a covariate the model uses would still move with the output
under the label-only null. Stratifying (or modelling metadata | covariates) is what keeps it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import _engine as E

#: quantile bins of a continuous ``adjust_for`` covariate in the permutation strata.
ADJUST_BINS = 5
#: quantile bins of a continuous label in the cells a pathway's feature replacement works in.
LABEL_BINS = 10


@dataclass
class Conditioning:
    """The label (and covariates) a conditional probe conditions on.

    Attributes
    ----------
    classification : bool
        Categorical label: permutation within ``strata``; else the conditional permutation test.
    strata : ndarray or None
        Permutation strata (codes of label x covariate bins) for a categorical label.
    basis : ndarray or None
        Columns projected out of the output besides the strata (covariate bases for a
        categorical label; ``[label basis, covariate basis]`` for a continuous one).
    covariates : tuple of str
        The ``adjust_for`` columns (empty: the label alone).
    cov_basis : ndarray or None
        The covariate basis alone (what the metadata model of the CPT adds).
    cells : ndarray
        Codes of the cells within which a pathway removes metadata information from a feature:
        ``strata`` for a categorical label, label deciles x covariate bins for a continuous one.
    """

    classification: bool
    strata: np.ndarray | None
    basis: np.ndarray | None
    covariates: tuple[str, ...]
    cov_basis: np.ndarray | None
    cells: np.ndarray
    _basis_r: np.ndarray | None = None  # the basis residualised within the strata

    @property
    def adjusted(self) -> bool:
        return bool(self.covariates)

    @property
    def n_params(self) -> int:
        """Columns the residualisation spends (strata means, or intercept, plus the basis)."""
        k = int(self.strata.max()) + 1 if self.strata is not None else 1
        return k + (0 if self.basis is None else int(self.basis.shape[1]))

    def residualize(self, Z: np.ndarray) -> np.ndarray:
        """``Z`` minus its projection on the strata (or an intercept) and the basis."""
        Z = np.asarray(Z, dtype=np.float64).reshape(len(Z), -1)
        if self.strata is None:
            return E.residualize(Z, basis=self.basis)
        R = E.residualize(Z, strata=self.strata)
        if self._basis_r is not None:
            coef, *_ = np.linalg.lstsq(self._basis_r, R, rcond=None)
            R = R - self._basis_r @ coef
        return R

    def orthonormal(self, Z: np.ndarray, max_dim: int | None = E.MAX_COMPONENTS) -> np.ndarray:
        """Orthonormal basis of the residualised ``Z`` (the conditional probes' ``U``)."""
        return E.orthonormal(self.residualize(Z), max_dim)

    def partial_r2(self, U: np.ndarray, D: np.ndarray) -> float:
        """Pillai trace / rank of the residualised output basis ``U`` on the residualised
        design ``D``: the partial R² given the label (and covariates)."""
        Dr = self.residualize(D)
        A = np.linalg.pinv(Dr.T @ Dr, hermitian=True)
        G = Dr.T @ U
        r = min(int(np.linalg.matrix_rank(Dr)), U.shape[1])
        return float(np.trace(G.T @ A @ G) / r) if r > 0 else np.nan

    def test_name(self) -> str:
        given = " x ".join(("label",) + self.covariates)
        if self.classification:
            return f"permutation within {given} strata"
        if not self.adjusted:
            return "conditional permutation (Berrett et al. 2020)"
        return f"conditional permutation (Berrett et al. 2020) given {', '.join(('label',) + self.covariates)}"

    def cpt_factors(self, c: np.ndarray, kind: str, y: np.ndarray,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The CPT factors of metadata ``c`` given the label and the covariates."""
        return E.cpt_log_odds_factors(c, kind, y, seed, covariates=self.cov_basis)

    def metadata_permutations(self, c: np.ndarray, kind: str, y: np.ndarray,
                              n_permutations: int, seed: int,
                              chunk: int) -> Iterator[np.ndarray]:
        """Blocks ``Q`` (b, n) of null draws: row ``i`` of the permuted metadata is ``c[Q[b, i]]``.

        Within the strata (categorical label; a uniform within-strata permutation and its
        inverse have the same law) or by the conditional permutation test.
        """
        n = len(y)
        if self.classification:
            yield from E.permutation_chunks(n, n_permutations, strata=self.strata, seed=seed,
                                            chunk=chunk)
            return
        f, g = self.cpt_factors(c, kind, y, seed)
        yield from E.cpt_permutations(f, g, n_permutations, seed=seed, chunk=chunk)


def covariate_basis(values: np.ndarray, kind: str) -> np.ndarray:
    """Columns a covariate is regressed out with: the cubic basis of the ranks of a continuous
    covariate, the one-hot levels (first dropped) of a categorical one.

    Examples
    --------
    >>> covariate_basis(np.array(["a", "b", "a", "c"]), "categorical").tolist()
    [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]
    >>> covariate_basis(np.arange(5.0), "continuous").shape
    (5, 3)
    """
    if kind == "categorical":
        return E.metadata_design(values, "categorical")[:, 1:]
    return E.label_basis(np.asarray(values, dtype=np.float64))


def covariate_codes(values: np.ndarray, kind: str, bins: int = ADJUST_BINS) -> np.ndarray:
    """Stratum codes of a covariate: its levels, or ``bins`` quantile bins."""
    if kind == "categorical":
        return E.stratum_codes(values)
    v = np.asarray(values, dtype=np.float64)
    edges = np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]))
    return E.stratum_codes(np.searchsorted(edges, v, side="right"))


def joint_codes(codes: Sequence[np.ndarray]) -> np.ndarray:
    """Codes 0..S-1 of the combinations of several code arrays (the non-empty cells)."""
    stacked = np.column_stack([np.asarray(c).ravel() for c in codes])
    return np.unique(stacked, axis=0, return_inverse=True)[1].ravel()


def build_conditioning(y: np.ndarray, classification: bool, covariates: pd.DataFrame | None,
                       kinds: dict[str, str]) -> Conditioning:
    """The :class:`Conditioning` of the label ``y`` and the ``covariates`` (may be ``None``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 100)
    >>> cov = pd.DataFrame({"age": rng.normal(60, 10, 100)})
    >>> c = build_conditioning(y, True, cov, {"age": "continuous"})
    >>> int(c.strata.max()) + 1, c.basis.shape, c.test_name()
    (10, (100, 3), 'permutation within label x age strata')
    >>> build_conditioning(y, True, None, {}).test_name()
    'permutation within label strata'
    """
    y = np.asarray(y)
    names = tuple(covariates.columns) if covariates is not None else ()
    bases = [covariate_basis(covariates[c].to_numpy(), kinds[c]) for c in names]
    cov_basis = np.column_stack(bases) if bases else None
    cov_codes = [covariate_codes(covariates[c].to_numpy(), kinds[c]) for c in names]
    if classification:
        strata = joint_codes([E.stratum_codes(y)] + cov_codes)
        cont = [b for b, c in zip(bases, names) if kinds[c] != "categorical"]
        basis = np.column_stack(cont) if cont else None
        basis_r = None if basis is None else E.residualize(basis, strata=strata)
        return Conditioning(True, strata, basis, names, cov_basis, strata, basis_r)
    lb = E.label_basis(y.astype(np.float64))
    basis = lb if cov_basis is None else np.column_stack([lb, cov_basis])
    cells = joint_codes([covariate_codes(y, "continuous", LABEL_BINS)] + cov_codes)
    return Conditioning(False, None, basis, names, cov_basis, cells)


def check_adjust_for(adjust_for: object, metadata: pd.DataFrame | None) -> tuple[str, ...]:
    """``adjust_for`` as a tuple of metadata column names, or a ``ValueError`` naming it.

    Examples
    --------
    >>> meta = pd.DataFrame({"site": ["a", "b"], "age": [50.0, 60.0]})
    >>> check_adjust_for("age", meta), check_adjust_for(None, meta)
    (('age',), ())
    >>> check_adjust_for(["agee"], meta)
    Traceback (most recent call last):
    ...
    ValueError: adjust_for=['agee'] names 'agee', which is not a metadata column; expected names among ['site', 'age'].
    """
    if adjust_for is None:
        return ()
    given = adjust_for
    if isinstance(adjust_for, str):
        adjust_for = [adjust_for]
    if not isinstance(adjust_for, (list, tuple, pd.Index)) or not all(
            isinstance(a, str) for a in adjust_for):
        raise TypeError(f"adjust_for={given!r} is not valid; expected a metadata column name or "
                        "a list of them.")
    cols = [] if metadata is None else list(metadata.columns)
    for a in adjust_for:
        if a not in cols:
            raise ValueError(f"adjust_for={given!r} names {a!r}, which is not a metadata "
                             f"column; expected names among {cols}.")
    out = tuple(dict.fromkeys(adjust_for))
    if len(out) == len(cols):
        raise ValueError(f"adjust_for={given!r} names every metadata column; expected at least "
                         "one column left to probe (adjust_for columns are conditioned on, not "
                         "probed).")
    return out
