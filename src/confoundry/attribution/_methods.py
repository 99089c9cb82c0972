"""One description per attribution method: the table :func:`confoundry.attribute` runs from.

Like Captum, where each attribution class declares what it supports
(``has_convergence_delta()``, ``multiplies_by_inputs``), every method here is one
:class:`MethodSpec` in :data:`METHODS`: its family, its engine, the reference it needs, its
completeness check, the Captum keywords it takes and its default settings. ``attribute`` and
the runner read the spec; they never branch on a method's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: accepted ``baseline=`` strings of single-reference methods.
BASELINES = ("zeros", "mean", "median", "background")
#: default size of the background sample drawn from X for distribution methods.
DEFAULT_BACKGROUND = 50
#: single-reference methods with ``baseline="background"`` average over this many rows.
MAX_REFERENCE_ROWS = 20


# ------------------------------------------------------------------ default settings
def _no_settings(n_steps: int, shape: tuple[int, ...]) -> dict[str, Any]:
    return {}


def _n_features(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape[1:]))


def _draws(n_steps: int, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"n_samples": n_steps}


def _captum_surrogate(n_steps: int, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"n_samples": max(4 * n_steps, 2 * _n_features(shape) + 10)}


def _shap_permutation(n_steps: int, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"max_evals": max(10 * n_steps, 2 * _n_features(shape) + 1)}


def _shap_kernel(n_steps: int, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"nsamples": 2 * _n_features(shape) + 10 * n_steps}


def _shap_gradient(n_steps: int, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"nsamples": 4 * n_steps}


def _occlusion(n_steps: int, shape: tuple[int, ...]) -> dict[str, Any]:
    window = (1,) if len(shape) == 2 else (shape[1],) + tuple(max(1, s // 8) for s in shape[2:])
    return {"sliding_window_shapes": list(window)}


# ------------------------------------------------------------ samples per engine call
def _per_batch(batch: int, n_steps: int, n_ref: int) -> int:
    return batch


def _per_reference(batch: int, n_steps: int, n_ref: int) -> int:
    return max(1, batch // max(n_ref, 1))


def _per_step(batch: int, n_steps: int, n_ref: int) -> int:
    return max(1, batch // n_steps)


def _capped(batch: int, n_steps: int, n_ref: int) -> int:
    return max(1, min(batch, 256))


def _at_least_two(batch: int, n_steps: int, n_ref: int) -> int:
    return max(2, batch)


@dataclass(frozen=True)
class MethodSpec:
    """What one attribution method is, needs and checks.

    Attributes
    ----------
    name : str
    family : {"gradient", "perturbation"}
        Gradient methods need a torch module (:attr:`needs_torch`).
    engine : {"captum", "shap"}
    explainer : str
        The Captum class (``"IntegratedGradients"``) or SHAP explainer (``"DeepExplainer"``).
    reference : {"baseline", "background"} or None
        ``"baseline"``: one reference input (``baseline=``; ``"background"`` averages over up
        to 20 rows); ``"background"``: a distribution of rows (``background=``, default 50
        rows of X); None: no reference.
    completeness : {"exact", "approximate", "gap"} or None
        ``"exact"``: attributions sum to ``f(x) - f(ref)`` and a relative convergence delta
        above ``delta_tolerance`` warns; ``"approximate"``: complete in expectation only
        (stochastic), the delta is reported without a warning; ``"gap"``: not additive, the
        additivity gap is reported; None: no check.
    base_value : {"reference", "zeros"} or None
        What ``base_values`` holds: the output at the reference, at the zero input, or NaN.
    call : tuple of str
        Captum keywords the runner fills (``baselines``, ``n_steps``, ``n_samples``,
        ``internal_batch_size``, ``return_convergence_delta``, ``perturbations_per_eval``,
        ``sliding_window_shapes``); ``target`` is always passed.
    fixed : dict
        Constant keywords (``abs=False`` for saliency: signed gradients).
    wraps : {"forward", "net"}
        Whether the explainer gets the forward function or the module (DeepLift needs hooks).
    settings : callable ``(n_steps, shape) -> dict``
        The method's default settings derived from ``n_steps`` (recorded in ``params``).
    rows_per_call : callable ``(batch_size, n_steps, n_reference_rows) -> int``
        Samples per engine call, so that one forward pass holds about ``batch_size`` rows.
    deeplift_rules : bool
        Uses DeepLift's rules: refused for reused or functional non-linearities.
    tabular_only : bool
    min_rows : int
    one_sample_per_call : bool
        The engine explains one sample at a time (``perturbations_per_eval`` counts one row).
    reuses_forward : bool
        The unperturbed output is captured from the engine's own first forward pass.
    """

    name: str
    family: str
    engine: str
    explainer: str
    reference: str | None
    completeness: str | None
    base_value: str | None
    call: tuple[str, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    wraps: str = "forward"
    settings: Callable[[int, tuple[int, ...]], dict[str, Any]] = _no_settings
    rows_per_call: Callable[[int, int, int], int] = _per_batch
    deeplift_rules: bool = False
    tabular_only: bool = False
    min_rows: int = 1
    one_sample_per_call: bool = False
    reuses_forward: bool = False

    @property
    def needs_torch(self) -> bool:
        """True for gradient methods (they differentiate a torch module)."""
        return self.family == "gradient"

    @property
    def has_completeness_check(self) -> bool:
        """True where ``params`` reports ``relative_delta`` or ``additivity_gap``."""
        return self.completeness is not None

    @property
    def has_convergence_delta(self) -> bool:
        """True where Captum returns the per-sample convergence delta itself."""
        return "return_convergence_delta" in self.call


_B, _PPE = "baselines", "perturbations_per_eval"
_SPECS = (
    MethodSpec("integrated_gradients", "gradient", "captum", "IntegratedGradients", "baseline",
               "exact", "reference",
               call=(_B, "n_steps", "internal_batch_size", "return_convergence_delta")),
    MethodSpec("deeplift", "gradient", "captum", "DeepLift", "baseline", "exact", "reference",
               call=(_B, "return_convergence_delta"), wraps="net", deeplift_rules=True),
    MethodSpec("deeplift_shap", "gradient", "captum", "DeepLiftShap", "background", "exact",
               "reference", call=(_B,), wraps="net", deeplift_rules=True,
               rows_per_call=_per_reference),
    MethodSpec("gradient_shap", "gradient", "captum", "GradientShap", "background",
               "approximate", "reference", call=(_B, "n_samples"), fixed={"stdevs": 0.0},
               settings=_draws, rows_per_call=_per_step),
    MethodSpec("saliency", "gradient", "captum", "Saliency", None, None, None,
               fixed={"abs": False}),
    MethodSpec("input_x_gradient", "gradient", "captum", "InputXGradient", None, None, "zeros"),
    MethodSpec("shap_gradient", "gradient", "shap", "GradientExplainer", "background",
               "approximate", "reference", settings=_shap_gradient, rows_per_call=_capped),
    MethodSpec("shap_deep", "gradient", "shap", "DeepExplainer", "background", "exact",
               "reference", deeplift_rules=True),
    MethodSpec("occlusion", "perturbation", "captum", "Occlusion", "baseline", None, None,
               call=("sliding_window_shapes", _B, _PPE), settings=_occlusion),
    MethodSpec("feature_ablation", "perturbation", "captum", "FeatureAblation", "baseline", "gap",
               "reference", call=(_B, _PPE), reuses_forward=True),
    MethodSpec("feature_permutation", "perturbation", "captum", "FeaturePermutation", None, None,
               None, call=(_PPE,), rows_per_call=_at_least_two, min_rows=2),
    MethodSpec("shapley_value_sampling", "perturbation", "captum", "ShapleyValueSampling",
               "baseline", "exact", "reference", call=(_B, "n_samples", _PPE), settings=_draws),
    MethodSpec("kernel_shap", "perturbation", "captum", "KernelShap", "baseline", "approximate",
               "reference", call=(_B, "n_samples", _PPE), settings=_captum_surrogate,
               rows_per_call=_capped, tabular_only=True, one_sample_per_call=True),
    MethodSpec("lime", "perturbation", "captum", "Lime", "baseline", None, None,
               call=(_B, "n_samples", _PPE), settings=_captum_surrogate, rows_per_call=_capped,
               tabular_only=True, one_sample_per_call=True),
    MethodSpec("shap_permutation", "perturbation", "shap", "PermutationExplainer", "background",
               "exact", "reference", settings=_shap_permutation, tabular_only=True),
    MethodSpec("shap_kernel", "perturbation", "shap", "KernelExplainer", "background", "exact",
               "reference", settings=_shap_kernel, rows_per_call=_capped, tabular_only=True),
)

#: every attribution method, by name.
METHODS: Mapping[str, MethodSpec] = {s.name: s for s in _SPECS}
#: the method names ``attribute(method=...)`` accepts: gradient methods first.
ATTRIBUTION_METHODS: tuple[str, ...] = tuple(
    [s.name for s in _SPECS if s.family == "gradient"]
    + [s.name for s in _SPECS if s.family == "perturbation"])
GRADIENT_METHODS = tuple(m for m in ATTRIBUTION_METHODS if METHODS[m].family == "gradient")
PERTURBATION_METHODS = tuple(m for m in ATTRIBUTION_METHODS
                             if METHODS[m].family == "perturbation")


def method_spec(method: Any) -> MethodSpec:
    """The :class:`MethodSpec` of ``method``; a ``ValueError`` naming the valid ones otherwise.

    Examples
    --------
    >>> spec = method_spec("integrated_gradients")
    >>> spec.family, spec.reference, spec.has_completeness_check, spec.needs_torch
    ('gradient', 'baseline', True, True)
    >>> method_spec("ig")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: method='ig' is not valid; expected one of ('integrated_gradients', ...
    """
    spec = METHODS.get(method) if isinstance(method, str) else None
    if spec is None:
        raise ValueError(f"method={method!r} is not valid; expected one of "
                         f"{ATTRIBUTION_METHODS}.")
    return spec


def method_table() -> pd.DataFrame:
    """The method table as a DataFrame: one row per method (for documentation and notebooks).

    Examples
    --------
    >>> t = method_table().set_index("method")
    >>> t.loc["shap_kernel", ["family", "engine", "reference", "completeness"]].tolist()
    ['perturbation', 'shap', 'background', 'exact']
    """
    rows = [{"method": s.name, "family": s.family, "engine": s.engine,
             "explainer": s.explainer, "reference": s.reference,
             "completeness": s.completeness, "needs_torch": s.needs_torch,
             "tabular_only": s.tabular_only,
             "settings": ", ".join(s.settings(1, (1, 1))) or "-"}
            for s in (METHODS[m] for m in ATTRIBUTION_METHODS)]
    return pd.DataFrame(rows)
