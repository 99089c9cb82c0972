"""``attribute``: Captum and SHAP attribution engines behind one call.

The call runs in phases: validate -> resolve the output and the target -> references -> run in
batches -> completeness check -> build the :class:`AttributionResult`. What differs between
methods is read from their :class:`MethodSpec` (``_methods.METHODS``), never from their names.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._explanation import AttributionResult
from .._utils import check_random_state, int_seed, progress, torch_seed
from ..data import ensure_data
from ..data._validation import check_positive_int
from ..models import ModelAdapter
from ..models._adapter import rows_per_batch
from ._common import adapter_for, frozen_module, rows_for_model, wants_frame
from ._methods import ATTRIBUTION_METHODS, PERTURBATION_METHODS, MethodSpec, method_spec
from ._pitfalls import deeplift_pitfalls
from ._references import (
    References,
    Target,
    check_baseline,
    references,
    resolve_output,
    resolve_target,
)
from ._runner import Forward, Runner, chunks, numpy_seed, raw_function

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

#: kept for ``from confoundry.attribution._engines import METHODS`` (the names, in order).
METHODS = ATTRIBUTION_METHODS


def attribute(
    model: Any,
    X: Any,
    *,
    method: str = "integrated_gradients",
    baseline: Any = "mean",
    target: Any = None,
    background: Any = None,
    batch_size: int | None = None,
    n_steps: int = 50,
    random_state: Any = None,
    verbose: bool = True,
    delta_tolerance: float = 0.05,
) -> AttributionResult:
    """Attribute a model's output to its input features with Captum or SHAP.

    Parameters
    ----------
    model : torch.nn.Module, estimator, callable or ModelAdapter
        Anything :func:`confoundry.as_model` accepts. Gradient methods need a torch model;
        perturbation methods work for any model. The model is never changed: training flags,
        ``requires_grad`` and ``.grad`` of every parameter are restored afterwards.
    X : DataFrame, ndarray, tensor or AuditData
        The inputs to explain, ``(n, d)`` or ``(n, ...)`` for images and sequences. An
        ``AuditData`` (or a view from ``AuditData.subset``) is used as it is.
    method : str
        One of :data:`confoundry.ATTRIBUTION_METHODS`. Captum: ``"integrated_gradients"``,
        ``"deeplift"``, ``"deeplift_shap"``, ``"gradient_shap"``, ``"saliency"``,
        ``"input_x_gradient"`` (gradient methods), ``"occlusion"``, ``"feature_ablation"``,
        ``"feature_permutation"``, ``"shapley_value_sampling"``, ``"kernel_shap"``, ``"lime"``
        (perturbation methods). SHAP: ``"shap_permutation"``, ``"shap_kernel"`` (any model),
        ``"shap_gradient"``, ``"shap_deep"`` (torch). Saliency is signed (the raw gradient,
        not its absolute value). What each needs and checks is its ``MethodSpec`` in
        ``confoundry.attribution._methods.METHODS``.
    baseline : {"mean", "zeros", "median", "background"} or array
        The reference input of single-reference methods: column means, zeros, medians, an
        explicit input (``(d,)``) or one per sample (``(n, d)``). ``"background"`` averages the
        attributions over up to 20 rows of ``background`` (or of X), expected-gradients style.
        Distribution methods (``deeplift_shap``, ``gradient_shap``, ``shap_*``) always use
        ``background``; saliency, input x gradient and feature permutation use no reference.
    target : int, array of int or None
        Class to explain for multiclass models (None: each sample's predicted class). For
        binary models None explains the log-odds of class 1 (0: the log-odds of class 0).
    background : array or DataFrame, optional
        Reference rows for distribution methods (default: 50 random rows of X).
    batch_size : int, optional
        Rows per forward pass (default: the adapter's ``batch_size``, lowered for large image
        rows so a batch holds at most 8 MB of float32 input). Passed to Captum as
        ``internal_batch_size`` / used to set ``perturbations_per_eval``; samples are processed
        in chunks, so memory stays bounded whatever the size of X.
    n_steps : int
        Integration steps (IG), or the number of samples of sampling methods (gradient_shap,
        shapley_value_sampling: ``n_steps`` draws; kernel_shap and lime:
        ``max(4 n_steps, 2 d + 10)``; shap_permutation: ``max(10 n_steps, 2 d + 1)``
        evaluations; shap_kernel: ``2 d + 10 n_steps``; shap_gradient: ``4 n_steps``).
    random_state : None, int or Generator
        Seeds the background sample and every stochastic method (torch's global RNG and
        numpy's are restored afterwards).
    verbose : bool
        Show a progress bar over chunks of samples.
    delta_tolerance : float
        For methods that should be complete, warn when the relative convergence delta
        ``mean |sum(attr) - (f(x) - f(ref))| / mean |f(x) - f(ref)|`` exceeds it.

    Returns
    -------
    AttributionResult
        ``output`` says what is explained: ``"logit"`` (binary classifiers: the log-odds, also
        for models that return probabilities), ``"probability"`` or ``"value"``.
        ``params["relative_delta"]`` holds the completeness check where it applies.

    Raises
    ------
    TypeError
        A gradient method on a non-torch model, or a non-differentiable ``preprocess``.
    ValueError
        Unknown method or baseline; DeepLift-family methods on a model with a reused or
        functional non-linearity (Captum issues 1082, 1104; SHAP issue 3938).

    Examples
    --------
    >>> import torch
    >>> from confoundry import as_model
    >>> net = torch.nn.Linear(3, 1)
    >>> X = torch.randn(20, 3)
    >>> model = as_model(net, output="logits")   # say what the network returns
    >>> a = attribute(model, X, baseline="zeros", verbose=False)
    >>> a.values.shape, a.output
    ((20, 3), 'logit')
    >>> w = net.weight.detach().numpy()[0]
    >>> bool(abs(a.values - X.numpy() * w).max() < 1e-5)
    True
    """
    t0 = time.perf_counter()
    # ---- validate
    spec = method_spec(method)
    n_steps = check_positive_int(n_steps, "n_steps")
    if not isinstance(delta_tolerance, (int, float)) or delta_tolerance <= 0:
        raise ValueError(f"delta_tolerance={delta_tolerance!r} is not valid; expected a "
                         "positive number.")
    check_baseline(baseline)
    if torch is None:  # pragma: no cover
        raise ImportError("confoundry.attribute needs torch and captum.")
    data = ensure_data(X)
    adapter = adapter_for(model)
    batch_size = (rows_per_batch(adapter.batch_size, tuple(data.X.shape[1:]))
                  if batch_size is None else check_positive_int(batch_size, "batch_size"))
    rng = check_random_state(random_state)
    seed = int_seed(rng)
    values = _check_inputs(spec, adapter, data)
    n = values.shape[0]

    # ---- resolve the output and the target
    out = resolve_output(adapter, rows_for_model(data, np.arange(min(64, data.n_samples))))
    raw = raw_function(adapter, data.feature_names if values.ndim == 2 and wants_frame(data)
                       else None)
    tgt = resolve_target(target, spec, out, n,
                         lambda: np.asarray(raw(values)).reshape(n, -1).argmax(axis=1))
    # ---- references
    refs = references(spec, baseline, background, values, rng)
    fwd = Forward(adapter, spec, out, tgt, raw, batch_size)

    with frozen_module(fwd.module):
        fwd.check_differentiable(values, spec.name)
        if spec.deeplift_rules:
            _refuse_deeplift_pitfalls(spec, fwd, values)
        # ---- run in batches
        runner = Runner(spec, fwd, n_steps, batch_size, seed, values.shape)
        run = _run_batches(runner, values, refs, tgt, verbose)
        # ---- completeness check
        base_values = _base_values(spec, fwd, values, refs, tgt)
        check = _completeness(spec, fwd, run, values, base_values)
    # ---- build the result
    params: dict[str, Any] = {
        "baseline": refs.description, "target": tgt.param, "n_steps": n_steps,
        "batch_size": batch_size, "random_state": seed if random_state is not None else None,
        "n_reference_rows": refs.n_rows, "explained_output": out.name,
    }
    params.update(runner.settings)
    if check is not None:
        params[check.key] = check.relative
        if spec.completeness == "exact" and check.relative > delta_tolerance:
            fix = ("check that every non-linearity is an nn.Module called once, or use "
                   "method='integrated_gradients'" if spec.deeplift_rules
                   else f"increase n_steps (now {n_steps})")
            warnings.warn(
                f"{spec.name}: attributions miss completeness by {check.relative:.1%} of "
                f"|f(x) - f(ref)| (relative convergence delta > delta_tolerance="
                f"{delta_tolerance}); {fix}.", RuntimeWarning, stacklevel=2)
    return AttributionResult(
        values=run.values, base_values=base_values, data=values,
        feature_names=data.feature_names, method=spec.name, params=params,
        convergence_delta=None if check is None else check.delta,
        compute_time=time.perf_counter() - t0, output=out.name, model_name=adapter.name)


# ------------------------------------------------------------------------------- phases
@dataclass
class _Run:
    values: np.ndarray
    captum_delta: np.ndarray | None
    #: the model's outputs on X where the engine computed them anyway (else None)
    fx_raw: np.ndarray | None


@dataclass(frozen=True)
class _Check:
    key: str                    # "relative_delta" or "additivity_gap"
    relative: float
    delta: np.ndarray | None    # per-sample delta (None for a non-additive method)


def _check_inputs(spec: MethodSpec, adapter: ModelAdapter, data: Any) -> np.ndarray:
    """A writable float64 copy of the inputs, after the checks the method's spec asks for."""
    if spec.needs_torch and not adapter.is_torch:
        raise TypeError(
            f"method={spec.name!r} needs gradients, so it needs a torch.nn.Module, but the "
            f"model is a {adapter.kind} model ({type(adapter.model).__name__}); use a "
            f"perturbation method ({', '.join(PERTURBATION_METHODS)}).")
    values = np.array(data.values, dtype=np.float64)  # writable copy for torch
    if spec.tabular_only and values.ndim != 2:
        raise ValueError(f"method={spec.name!r} supports tabular X (n, d) only; X has shape "
                         f"{values.shape}. Use a gradient method or 'occlusion' for images.")
    if values.shape[0] < spec.min_rows:
        raise ValueError(f"method={spec.name!r} permutes values across samples; expected at "
                         f"least {spec.min_rows} rows.")
    return values


def _refuse_deeplift_pitfalls(spec: MethodSpec, fwd: Forward, values: np.ndarray) -> None:
    problems = deeplift_pitfalls(fwd.module, fwd.tensor(values[:2]))
    if problems:
        raise ValueError(
            f"method={spec.name!r} would return wrong attributions for this model: "
            + "; ".join(problems) + ". DeepLift's rules are attached to nn.Module "
            "non-linearities, each called once (Captum issues 1082 and 1104; SHAP issue "
            "3938). Give every non-linearity its own nn.Module, or use "
            "method='integrated_gradients'.")


def _run_batches(runner: Runner, values: np.ndarray, refs: References, tgt: Target,
                 verbose: bool) -> _Run:
    """Attributions for every chunk of samples (averaged over the reference rows one by one
    for a single-reference method given ``baseline="background"``)."""
    spec = runner.spec
    n = values.shape[0]
    one_by_one = refs.kind == "distribution" and spec.reference != "background"
    ref_list = ([refs.rows[i:i + 1] for i in range(refs.n_rows)] if one_by_one
                else [refs.rows])
    parts = chunks(n, runner.chunk_rows(refs.n_rows if refs.kind == "distribution" else 1))
    attr = np.zeros(values.shape)
    cap_delta = np.zeros(n) if spec.has_convergence_delta else None
    fx_raw: np.ndarray | None = None
    bar = progress(total=len(parts) * len(ref_list), desc=f"attribute ({spec.name})",
                   verbose=verbose)
    with torch_seed(runner.seed), numpy_seed(runner.seed), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*multiple inputs for Lime.*")
        warnings.filterwarnings("ignore", message=".*Setting forward, backward hooks.*")
        warnings.filterwarnings("ignore", message=".*did not already require gradients.*")
        for ref in ref_list:
            for idx in parts:
                ref_chunk = ref[idx] if refs.kind == "per_sample" else ref
                t = tgt.captum[idx] if tgt.per_sample else tgt.captum
                vals, delta = runner.run(values[idx], ref_chunk, t)
                attr[idx] += vals / len(ref_list)
                if runner.last_output is not None and len(ref_list) == 1:
                    if fx_raw is None:
                        fx_raw = np.full((n, runner.last_output.shape[1]), np.nan)
                    fx_raw[idx] = runner.last_output
                if cap_delta is not None and delta is not None:
                    cap_delta[idx] += delta / len(ref_list)
                bar.update(1)
    bar.close()
    return _Run(attr, cap_delta, fx_raw)


def _base_values(spec: MethodSpec, fwd: Forward, values: np.ndarray, refs: References,
                 tgt: Target) -> Any:
    """The explained output at the reference (see :attr:`MethodSpec.base_value`)."""
    n = values.shape[0]
    if spec.base_value is None:
        return np.nan
    if spec.base_value == "zeros":
        return float(fwd.select(fwd.evaluate(np.zeros((1,) + values.shape[1:])), None)[0])
    ref_out = fwd.evaluate(refs.rows)
    if refs.kind == "per_sample":
        return fwd.select(ref_out, np.arange(n))
    if tgt.per_sample:  # each sample's own class: the reference output of that class
        return ref_out.mean(axis=0)[tgt.captum.numpy()]
    return float(fwd.select(ref_out, None).mean())


def _completeness(spec: MethodSpec, fwd: Forward, run: _Run, values: np.ndarray,
                  base_values: Any) -> _Check | None:
    """``mean |sum(attr) - (f(x) - f(ref))| / mean |f(x) - f(ref)|`` where the spec has one."""
    if not spec.has_completeness_check:
        return None
    n = values.shape[0]
    total = run.values.reshape(n, -1).sum(axis=1)
    if run.captum_delta is not None:  # Captum's delta: f(x) - f(ref) = sum(attr) - delta
        delta = run.captum_delta
        fx_minus = total - delta
    else:
        raw = (run.fx_raw if run.fx_raw is not None and np.isfinite(run.fx_raw).all()
               else fwd.evaluate(values))
        if raw.ndim == 2 and raw.shape[1] == 1:
            raw = raw[:, 0]
        fx_minus = fwd.select(raw, np.arange(n)) - base_values
        delta = total - fx_minus
    scale = float(np.mean(np.abs(fx_minus)))
    rel = float(np.mean(np.abs(delta)) / scale) if scale > 0 else 0.0
    if spec.completeness == "gap":  # not an additive method: the gap, not a delta
        return _Check("additivity_gap", rel, None)
    return _Check("relative_delta", rel, delta)
