"""``attribute``: Captum and SHAP attribution engines behind one call, returning ``Attribution``."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from .._explanation import Attribution
from .._utils import check_random_state, int_seed, progress, torch_seed
from ..data._validation import check_positive_int, describe
from ._common import (
    adapter_for,
    as_audit_data,
    explained_output,
    frozen_module,
    head_torch,
    resolve_output,
)
from ._pitfalls import deeplift_pitfalls

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

GRADIENT_METHODS = ("integrated_gradients", "deeplift", "deeplift_shap", "gradient_shap",
                    "saliency", "input_x_gradient", "shap_gradient", "shap_deep")
PERTURBATION_METHODS = ("occlusion", "feature_ablation", "feature_permutation",
                        "shapley_value_sampling", "kernel_shap", "lime", "shap_permutation",
                        "shap_kernel")
METHODS = GRADIENT_METHODS + PERTURBATION_METHODS
#: methods whose reference is a background sample (expected over a distribution).
DISTRIBUTION_METHODS = ("deeplift_shap", "gradient_shap", "shap_gradient", "shap_deep",
                        "shap_permutation", "shap_kernel")
#: methods whose attributions must sum to f(x) - f(reference) (up to numerical error).
COMPLETE_METHODS = ("integrated_gradients", "deeplift", "deeplift_shap", "shap_deep",
                    "shapley_value_sampling", "shap_permutation", "shap_kernel")
#: methods complete only in expectation (stochastic estimates): delta reported, no warning.
APPROX_COMPLETE_METHODS = ("gradient_shap", "shap_gradient", "kernel_shap")
DEEPLIFT_FAMILY = ("deeplift", "deeplift_shap", "shap_deep")
BASELINES = ("zeros", "mean", "median", "background")
#: default size of the background sample drawn from X for distribution methods.
DEFAULT_BACKGROUND = 50
#: single-reference methods with ``baseline="background"`` average over this many rows.
MAX_REFERENCE_ROWS = 20


class _Explained(torch.nn.Module if torch is not None else object):  # type: ignore[misc]
    """The user's module followed by the map to the explained output (the module is not
    copied and not changed; it is only called)."""

    def __init__(self, inner: Any, preprocess: Callable | None, kind: str, n_out: int,
                 task: str | None, sign: float, dtype: Any, column: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self._preprocess = preprocess
        self._spec = (kind, n_out, task)
        self._sign = sign
        self._dtype = dtype
        self._column = column

    def forward(self, x: Any) -> Any:
        if self._preprocess is not None:
            x = self._preprocess(x)
            if x.is_floating_point() and x.dtype != self._dtype:
                x = x.to(self._dtype)
        out = head_torch(self.inner(x), *self._spec)
        if self._sign != 1.0:
            out = out * self._sign
        if self._column is not None:  # shap explainers want (n, outputs)
            out = out.unsqueeze(1) if out.ndim == 1 else out[:, self._column:self._column + 1]
        return out


def _check_differentiable(preprocess: Callable, x: Any, method: str) -> None:
    msg = (f"method={method!r} needs gradients through preprocess, but preprocess "
           "{why}; expected a function of torch tensors built from differentiable torch "
           "operations. Either make preprocess torch-differentiable, or apply it yourself "
           "(X_model = preprocess(X)) and explain the model on X_model, or use a perturbation "
           "method such as 'shapley_value_sampling'.")
    probe = x[:2].clone().requires_grad_(True)
    try:
        z = preprocess(probe)
    except Exception as exc:  # noqa: BLE001 - report what the user's function did
        raise TypeError(msg.format(why=f"failed on a tensor ({type(exc).__name__}: {exc})")) from exc
    if not isinstance(z, torch.Tensor):
        raise TypeError(msg.format(why=f"returned {type(z).__name__} for a tensor input"))
    if not z.requires_grad:
        raise TypeError(msg.format(why="returned a tensor detached from its input"))


def _resolve_target(target: Any, multiclass: bool, n_out: int, n: int,
                    predicted: Callable[[], np.ndarray]) -> tuple[Any, float, Any]:
    """(target for Captum, sign multiplier, target recorded in params)."""
    if not multiclass:
        if target is None or (np.ndim(target) == 0 and int(target) == 1):
            return None, 1.0, target
        if np.ndim(target) == 0 and int(target) == 0:
            return None, -1.0, 0  # the log-odds of class 0
        raise ValueError(f"target={describe(target)} is not valid for a model with one explained "
                         "output; expected None (or 1, or 0 for the negative class).")
    if target is None:
        t = predicted()
        return torch.as_tensor(t, dtype=torch.long), 1.0, "predicted"
    if np.ndim(target) == 0:
        t = int(target)
        if not 0 <= t < n_out:
            raise ValueError(f"target={target!r} is not valid; expected a class index in "
                             f"0..{n_out - 1}.")
        return t, 1.0, t
    t = np.asarray(target)
    if t.shape != (n,) or t.dtype.kind not in "iu" or t.min() < 0 or t.max() >= n_out:
        raise ValueError(f"target={describe(target)} is not valid; expected an int class index "
                         f"or {n} indices in 0..{n_out - 1}, one per row of X.")
    return torch.as_tensor(t, dtype=torch.long), 1.0, "per_sample"


def _as_rows(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (pd.DataFrame, pd.Series)):
        value = value.to_numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={describe(value)} could not be read as numbers; expected an "
                        "array of model inputs.") from None
    if arr.shape == shape[1:]:
        arr = arr[None]
    if arr.ndim != len(shape) or arr.shape[1:] != shape[1:]:
        raise ValueError(f"{name} has shape {arr.shape}; expected {shape[1:]} (one input) or "
                         f"(m, {', '.join(map(str, shape[1:]))}) (rows of inputs).")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; expected finite inputs.")
    return arr


def _references(method: str, baseline: Any, background: Any, values: np.ndarray,
                rng: np.random.Generator) -> tuple[str, np.ndarray, str]:
    """(kind, reference rows, description); kind is 'single', 'per_sample' or 'distribution'."""
    n = values.shape[0]

    def sample_rows(k: int) -> np.ndarray:
        if background is not None:
            bg = _as_rows(background, values.shape, "background")
            if len(bg) > k and method not in ("shap_permutation", "shap_kernel"):
                bg = bg[np.sort(rng.choice(len(bg), k, replace=False))]
            return bg
        idx = np.sort(rng.choice(n, min(k, n), replace=False))
        return values[idx]

    if method in DISTRIBUTION_METHODS:
        bg = sample_rows(DEFAULT_BACKGROUND if background is None else 10**9)
        desc = "background" if background is not None else f"sample of {len(bg)} rows of X"
        return "distribution", bg, desc
    if isinstance(baseline, str):
        if baseline not in BASELINES:
            raise ValueError(f"baseline={baseline!r} is not valid; expected one of {BASELINES} "
                             "or an array of inputs.")
        if baseline == "zeros":
            return "single", np.zeros((1,) + values.shape[1:]), "zeros"
        if baseline == "mean":
            return "single", values.mean(axis=0, keepdims=True), "mean"
        if baseline == "median":
            return "single", np.median(values, axis=0, keepdims=True), "median"
        bg = sample_rows(MAX_REFERENCE_ROWS)
        return "distribution", bg, f"background ({len(bg)} rows, averaged)"
    arr = _as_rows(baseline, values.shape, "baseline")
    if len(arr) == 1:
        return "single", arr, "array"
    if len(arr) == n:
        return "per_sample", arr, "array (one row per sample)"
    raise ValueError(f"baseline has {len(arr)} rows; expected 1 row or {n} rows (one per sample "
                     "of X).")


@contextlib.contextmanager
def _numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's legacy global RNG (used inside SHAP) and restore it afterwards."""
    state = np.random.get_state()  # noqa: NPY002 - SHAP uses the legacy global RNG
    np.random.seed(seed % (2**32))  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _chunks(n: int, size: int) -> list[np.ndarray]:
    return np.array_split(np.arange(n), max(1, -(-n // size)))


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
) -> Attribution:
    """Attribute a model's output to its input features with Captum or SHAP.

    Parameters
    ----------
    model : torch.nn.Module, estimator, callable or ModelAdapter
        Anything :func:`confoundry.as_model` accepts. Gradient methods need a torch model;
        perturbation methods work for any model. The model is never changed: training flags,
        ``requires_grad`` and ``.grad`` of every parameter are restored afterwards.
    X : DataFrame, ndarray, tensor or AuditData
        The inputs to explain, ``(n, d)`` or ``(n, ...)`` for images and sequences.
    method : str
        Captum: ``"integrated_gradients"``, ``"deeplift"``, ``"deeplift_shap"``,
        ``"gradient_shap"``, ``"saliency"``, ``"input_x_gradient"`` (gradient methods),
        ``"occlusion"``, ``"feature_ablation"``, ``"feature_permutation"``,
        ``"shapley_value_sampling"``, ``"kernel_shap"``, ``"lime"`` (perturbation methods).
        SHAP: ``"shap_permutation"``, ``"shap_kernel"`` (any model), ``"shap_gradient"``,
        ``"shap_deep"`` (torch). Saliency is signed (the raw gradient, not its absolute value).
    baseline : {"mean", "zeros", "median", "background"} or array
        The reference input of single-reference methods: column means, zeros, medians, an
        explicit input (``(d,)``) or one per sample (``(n, d)``). ``"background"`` averages the
        attributions over up to 20 rows of ``background`` (or of X), expected-gradients style.
        Distribution methods (``deeplift_shap``, ``gradient_shap``, ``shap_*``) always use
        ``background``.
    target : int, array of int or None
        Class to explain for multiclass models (None: each sample's predicted class). For
        binary models None explains the log-odds of class 1 (0: the log-odds of class 0).
    background : array or DataFrame, optional
        Reference rows for distribution methods (default: 50 random rows of X).
    batch_size : int, optional
        Rows per forward pass (default: the adapter's ``batch_size``). Passed to Captum as
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
    Attribution
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
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not valid; expected one of {METHODS}.")
    n_steps = check_positive_int(n_steps, "n_steps")
    if not isinstance(delta_tolerance, (int, float)) or delta_tolerance <= 0:
        raise ValueError(f"delta_tolerance={delta_tolerance!r} is not valid; expected a "
                         "positive number.")
    if torch is None:  # pragma: no cover
        raise ImportError("confoundry.attribute needs torch and captum.")
    user_frame = isinstance(X, pd.DataFrame)
    data = as_audit_data(X)
    adapter = adapter_for(model)
    batch_size = adapter.batch_size if batch_size is None else check_positive_int(
        batch_size, "batch_size")
    rng = check_random_state(random_state)
    seed = int_seed(rng)
    gradient = method in GRADIENT_METHODS
    if gradient and not adapter.is_torch:
        raise TypeError(
            f"method={method!r} needs gradients, so it needs a torch.nn.Module, but the model is "
            f"a {adapter.kind} model ({type(adapter.model).__name__}); use a perturbation method "
            f"({', '.join(PERTURBATION_METHODS)}).")
    values = np.array(data.values, dtype=np.float64)  # writable copy for torch
    n = values.shape[0]
    if method in ("shap_permutation", "shap_kernel", "kernel_shap", "lime") and values.ndim != 2:
        raise ValueError(f"method={method!r} supports tabular X (n, d) only; X has shape "
                         f"{values.shape}. Use a gradient method or 'occlusion' for images.")
    if method == "feature_permutation" and n < 2:
        raise ValueError("method='feature_permutation' permutes values across samples; expected "
                         "at least 2 rows.")

    kind, n_out = resolve_output(adapter, data)
    task = adapter.task or ("multiclass" if n_out > 2 else None)
    multiclass = kind not in ("values", "labels") and (n_out > 2 or task == "multiclass")
    out_name = explained_output(kind, n_out, task)

    use_torch = adapter.is_torch and (adapter.preprocess is None or gradient)
    module = adapter.module if adapter.is_torch else None
    dtype = _param_dtype(module) if use_torch else torch.float64
    device = adapter.device if use_torch else torch.device("cpu")

    def raw_numpy(arr: np.ndarray) -> np.ndarray:
        batch = pd.DataFrame(arr, columns=data.feature_names) if (
            user_frame or (values.ndim == 2 and isinstance(data.X, pd.DataFrame)
                           and not isinstance(X, np.ndarray)
                           and not (torch is not None and isinstance(X, torch.Tensor)))) else arr
        return adapter.predict_raw(batch)

    def predicted() -> np.ndarray:
        raw = raw_numpy(values)
        return np.asarray(raw).reshape(n, -1).argmax(axis=1)

    cap_target, sign, target_param = _resolve_target(target, multiclass, n_out, n, predicted)
    ref_kind, ref_rows, ref_desc = _references(method, baseline, background, values, rng)
    if method.startswith("shap_") and isinstance(cap_target, torch.Tensor):
        raise ValueError(f"method={method!r} explains one output for all samples; pass an int "
                         "target for a multiclass model.")
    column = (cap_target if isinstance(cap_target, int) else 0) if method.startswith("shap_") \
        else None

    with frozen_module(module):
        if use_torch:
            if gradient and adapter.preprocess is not None:
                _check_differentiable(adapter.preprocess,
                                      torch.as_tensor(values[:2], dtype=dtype, device=device),
                                      method)
            net = _Explained(module, adapter.preprocess if gradient else None, kind, n_out, task,
                             sign, dtype, column)

            def forward(x: Any) -> Any:
                return net(x)
        else:
            net = None

            def forward(x: Any) -> Any:
                raw = raw_numpy(x.detach().cpu().numpy().astype(np.float64))
                out = head_torch(torch.as_tensor(raw, dtype=torch.float64), kind, n_out, task)
                out = out * sign
                if column is not None:
                    out = out.unsqueeze(1) if out.ndim == 1 else out[:, column:column + 1]
                return out

        if method in DEEPLIFT_FAMILY:
            problems = deeplift_pitfalls(module, torch.as_tensor(values[:2], dtype=dtype,
                                                                 device=device))
            if problems:
                raise ValueError(
                    f"method={method!r} would return wrong attributions for this model: "
                    + "; ".join(problems) + ". DeepLift's rules are attached to nn.Module "
                    "non-linearities, each called once (Captum issues 1082 and 1104; SHAP issue "
                    "3938). Give every non-linearity its own nn.Module, or use "
                    "method='integrated_gradients'.")

        def tensor(a: np.ndarray) -> Any:
            return torch.as_tensor(a, dtype=dtype, device=device)

        def f_eval(a: np.ndarray) -> np.ndarray:
            outs = []
            for idx in _chunks(len(a), batch_size):
                with torch.no_grad():
                    o = forward(tensor(a[idx]))
                outs.append(o.detach().cpu().to(torch.float64).numpy())
            return np.concatenate(outs, axis=0)

        def select(o: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
            if o.ndim == 1:
                return o
            if column is not None:
                return o[:, 0]
            if isinstance(cap_target, int):
                return o[:, cap_target]
            t = cap_target.numpy() if rows is None else cap_target.numpy()[rows]
            return o[np.arange(len(o)), t]

        runner = _Runner(method, forward, net, n_steps, batch_size, seed, values.shape,
                         dtype, device)
        refs = [ref_rows[i:i + 1] for i in range(len(ref_rows))] if (
            ref_kind == "distribution" and method not in DISTRIBUTION_METHODS) else [ref_rows]
        chunks = _chunks(n, runner.chunk_rows(len(ref_rows) if ref_kind == "distribution" else 1))
        attr = np.zeros(values.shape)
        cap_delta = np.zeros(n) if method in ("integrated_gradients", "deeplift") else None
        shap_base: list[float] = []
        fx_raw: np.ndarray | None = None  # the model's outputs, when a method saw them anyway
        bar = progress(total=len(chunks) * len(refs), desc=f"attribute ({method})",
                       verbose=verbose)
        with torch_seed(seed), _numpy_seed(seed), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*multiple inputs for Lime.*")
            warnings.filterwarnings("ignore", message=".*Setting forward, backward hooks.*")
            warnings.filterwarnings("ignore", message=".*did not already require gradients.*")
            for ref in refs:
                for idx in chunks:
                    ref_chunk = ref[idx] if ref_kind == "per_sample" else ref
                    tgt = cap_target[idx] if isinstance(cap_target, torch.Tensor) else cap_target
                    runner.last_output = None
                    vals, delta, base = runner.run(values[idx], ref_chunk, tgt)
                    attr[idx] += vals / len(refs)
                    if runner.last_output is not None and len(refs) == 1:
                        if fx_raw is None:
                            fx_raw = np.full((n, runner.last_output.shape[1]), np.nan)
                        fx_raw[idx] = runner.last_output
                    if cap_delta is not None and delta is not None:
                        cap_delta[idx] += delta / len(refs)
                    if base is not None:
                        shap_base.append(base)
                    bar.update(1)
        bar.close()

        # ---- reference output and completeness
        fx = None
        base_values: Any
        if method in ("saliency", "feature_permutation", "lime", "occlusion"):
            base_values = np.nan
        elif method == "input_x_gradient":
            base_values = float(select(f_eval(np.zeros((1,) + values.shape[1:])), None)[0])
        else:
            ref_out = f_eval(ref_rows)
            if ref_kind == "per_sample":
                base_values = select(ref_out, np.arange(n))
            elif isinstance(cap_target, torch.Tensor):
                base_values = np.stack([select(ref_out, np.full(len(ref_rows), c)).mean()
                                        for c in range(n_out)])[cap_target.numpy()]
            else:
                base_values = float(select(ref_out, None).mean())
        delta = None
        rel = None
        if method in COMPLETE_METHODS + APPROX_COMPLETE_METHODS or method == "feature_ablation":
            if cap_delta is not None:  # Captum's delta: f(x) - f(ref) = sum(attr) - delta
                delta = cap_delta
                fx_minus = attr.reshape(n, -1).sum(axis=1) - delta
            else:
                raw = (fx_raw if fx_raw is not None and np.isfinite(fx_raw).all()
                       else f_eval(values))
                if raw.ndim == 2 and raw.shape[1] == 1:
                    raw = raw[:, 0]
                fx = select(raw, np.arange(n))
                delta = attr.reshape(n, -1).sum(axis=1) - (fx - base_values)
                fx_minus = fx - base_values
            scale = float(np.mean(np.abs(fx_minus)))
            rel = float(np.mean(np.abs(delta)) / scale) if scale > 0 else 0.0
            if method == "feature_ablation":
                delta = None  # not an additive method: the gap is reported, not a delta
                rel_key = "additivity_gap"
            else:
                rel_key = "relative_delta"
        params: dict[str, Any] = {
            "baseline": ref_desc, "target": target_param, "n_steps": n_steps,
            "batch_size": batch_size, "random_state": seed if random_state is not None else None,
            "n_reference_rows": int(len(ref_rows)), "explained_output": out_name,
        }
        params.update(runner.settings)
        if rel is not None:
            params[rel_key] = rel
            if method in COMPLETE_METHODS and rel > delta_tolerance:
                fix = (f"increase n_steps (now {n_steps})"
                       if method in ("integrated_gradients", "shapley_value_sampling",
                                     "shap_permutation", "shap_kernel")
                       else "check that every non-linearity is an nn.Module called once, or "
                            "use method='integrated_gradients'")
                warnings.warn(
                    f"{method}: attributions miss completeness by {rel:.1%} of |f(x) - f(ref)| "
                    f"(relative convergence delta > delta_tolerance={delta_tolerance}); "
                    f"{fix}.", RuntimeWarning, stacklevel=2)
    return Attribution(
        values=attr, base_values=base_values, data=values, feature_names=data.feature_names,
        method=method, params=params, convergence_delta=delta,
        compute_time=time.perf_counter() - t0, output=out_name, model_name=adapter.name)


def _param_dtype(module: Any) -> Any:
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


class _Runner:
    """Runs one method on one chunk of samples."""

    def __init__(self, method: str, forward: Callable, net: Any, n_steps: int, batch_size: int,
                 seed: int, shape: tuple[int, ...], dtype: Any, device: Any) -> None:
        self.method = method
        self.forward = forward
        self.net = net
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.seed = seed
        self.shape = shape
        self.dtype = dtype
        self.device = device
        d = int(np.prod(shape[1:]))
        self.n_features = d
        self.settings: dict[str, Any] = {}
        self.last_output: np.ndarray | None = None
        if method in ("kernel_shap", "lime"):
            self.settings["n_samples"] = max(4 * n_steps, 2 * d + 10)
        elif method == "shap_permutation":
            self.settings["max_evals"] = max(10 * n_steps, 2 * d + 1)
        elif method == "shap_kernel":
            self.settings["nsamples"] = 2 * d + 10 * n_steps
        elif method == "shap_gradient":
            self.settings["nsamples"] = 4 * n_steps
        elif method in ("gradient_shap", "shapley_value_sampling"):
            self.settings["n_samples"] = n_steps
        if method == "occlusion":
            if len(shape) == 2:
                window: tuple[int, ...] = (1,)
            else:
                window = (shape[1],) + tuple(max(1, s // 8) for s in shape[2:])
            self.settings["sliding_window_shapes"] = list(window)

    def chunk_rows(self, n_ref: int) -> int:
        """Samples per call, so that one forward pass holds about ``batch_size`` rows."""
        b = self.batch_size
        if self.method in ("deeplift_shap",):
            return max(1, b // max(n_ref, 1))
        if self.method == "gradient_shap":
            return max(1, b // self.n_steps)
        if self.method in ("kernel_shap", "lime", "shap_kernel", "shap_gradient"):
            return max(1, min(b, 256))
        if self.method == "feature_permutation":
            return max(2, b)
        return b

    def _ppe(self, rows: int) -> int:
        return max(1, self.batch_size // max(rows, 1))

    def run(self, x: np.ndarray, ref: np.ndarray, target: Any) -> tuple[np.ndarray, Any, Any]:
        from captum import attr as ca

        m = self.method
        xt = torch.as_tensor(x, dtype=self.dtype, device=self.device)
        rt = torch.as_tensor(ref, dtype=self.dtype, device=self.device)
        delta = None
        if m == "integrated_gradients":
            a, delta = ca.IntegratedGradients(self.forward).attribute(
                xt, baselines=rt, target=target, n_steps=self.n_steps,
                internal_batch_size=self.batch_size, return_convergence_delta=True)
        elif m == "deeplift":
            a, delta = ca.DeepLift(self.net).attribute(
                xt, baselines=rt, target=target, return_convergence_delta=True)
        elif m == "deeplift_shap":
            a = ca.DeepLiftShap(self.net).attribute(xt, baselines=rt, target=target)
        elif m == "gradient_shap":
            a = ca.GradientShap(self.forward).attribute(
                xt, baselines=rt, n_samples=self.n_steps, stdevs=0.0, target=target)
        elif m == "saliency":
            a = ca.Saliency(self.forward).attribute(xt, target=target, abs=False)
        elif m == "input_x_gradient":
            a = ca.InputXGradient(self.forward).attribute(xt, target=target)
        elif m == "occlusion":
            a = ca.Occlusion(self.forward).attribute(
                xt, sliding_window_shapes=tuple(self.settings["sliding_window_shapes"]),
                baselines=rt, target=target, perturbations_per_eval=self._ppe(len(x)))
        elif m == "feature_ablation":
            # Captum evaluates the unablated batch first; keep that output so the additivity
            # gap needs no extra forward pass
            seen: dict[str, torch.Tensor] = {}

            def forward(inp: torch.Tensor, *args: Any) -> torch.Tensor:
                out = self.forward(inp, *args)
                if "fx" not in seen and inp.shape == xt.shape and torch.equal(inp, xt):
                    seen["fx"] = out.detach()
                return out

            a = ca.FeatureAblation(forward).attribute(
                xt, baselines=rt, target=target, perturbations_per_eval=self._ppe(len(x)))
            fx = seen.get("fx")
            self.last_output = (None if fx is None
                                else fx.cpu().to(torch.float64).numpy().reshape(len(x), -1))
        elif m == "feature_permutation":
            a = ca.FeaturePermutation(self.forward).attribute(
                xt, target=target, perturbations_per_eval=self._ppe(len(x)))
        elif m == "shapley_value_sampling":
            a = ca.ShapleyValueSampling(self.forward).attribute(
                xt, baselines=rt, target=target, n_samples=self.n_steps,
                perturbations_per_eval=self._ppe(len(x)))
        elif m in ("kernel_shap", "lime"):
            cls = ca.KernelShap if m == "kernel_shap" else ca.Lime
            a = cls(self.forward).attribute(
                xt, baselines=rt, target=target, n_samples=self.settings["n_samples"],
                perturbations_per_eval=self._ppe(1))
        elif m in ("shap_permutation", "shap_kernel"):
            return self._shap_model_agnostic(x, ref)
        elif m in ("shap_gradient", "shap_deep"):
            return self._shap_torch(xt, rt)
        else:  # pragma: no cover - validated earlier
            raise ValueError(m)
        vals = a.detach().cpu().to(torch.float64).numpy()
        if delta is not None:
            delta = delta.detach().cpu().to(torch.float64).numpy().reshape(-1)
        return vals, delta, None

    def _f_numpy(self, arr: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self.forward(torch.as_tensor(np.asarray(arr), dtype=self.dtype,
                                               device=self.device))
        return out.detach().cpu().to(torch.float64).numpy()[:, 0]

    def _shap_model_agnostic(self, x: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, Any, Any]:
        import shap

        if self.method == "shap_permutation":
            masker = shap.maskers.Independent(ref, max_samples=len(ref))
            explainer = shap.PermutationExplainer(self._f_numpy, masker, seed=self.seed)
            exp = explainer(x, max_evals=self.settings["max_evals"],
                            batch_size=max(1, self.batch_size // max(len(ref), 1)), silent=True)
            return np.asarray(exp.values, dtype=np.float64), None, None
        explainer = shap.KernelExplainer(self._f_numpy, ref)
        vals = explainer.shap_values(x, nsamples=self.settings["nsamples"], silent=True)
        vals = np.asarray(vals, dtype=np.float64)
        if vals.ndim == 3:
            vals = vals[..., 0]
        return vals, None, None

    def _shap_torch(self, xt: Any, rt: Any) -> tuple[np.ndarray, Any, Any]:
        import shap

        if self.method == "shap_gradient":
            explainer = shap.GradientExplainer(self.net, rt, batch_size=self.batch_size)
            vals = explainer.shap_values(xt, nsamples=self.settings["nsamples"], rseed=self.seed)
        else:
            explainer = shap.DeepExplainer(self.net, rt)
            vals = explainer.shap_values(xt, check_additivity=False)
        if isinstance(vals, list):
            vals = vals[0]
        vals = np.asarray(vals, dtype=np.float64)
        if vals.ndim == len(self.shape) + 1 and vals.shape[-1] == 1:
            vals = vals[..., 0]
        return vals, None, None
