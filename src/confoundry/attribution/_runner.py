"""The explained model as a torch function, and one engine call per chunk of samples.

:class:`Forward` wraps the user's model (never copied, never changed) so that Captum and SHAP
see the explained output; :class:`Runner` calls the engine a :class:`MethodSpec` names with
the keywords it declares.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from ..models import ModelAdapter
from ._common import head_torch
from ._methods import MethodSpec
from ._references import Output, Target

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]


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


def chunks(n: int, size: int) -> list[np.ndarray]:
    return np.array_split(np.arange(n), max(1, -(-n // size)))


@contextlib.contextmanager
def numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's legacy global RNG (used inside SHAP) and restore it afterwards."""
    state = np.random.get_state()  # noqa: NPY002 - SHAP uses the legacy global RNG
    np.random.seed(seed % (2**32))  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _param_dtype(module: Any) -> Any:
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def raw_function(adapter: ModelAdapter, feature_names: list[str] | None
                 ) -> Callable[[np.ndarray], np.ndarray]:
    """``arr -> adapter.predict_raw(arr)``, as a DataFrame with ``feature_names`` if given."""
    def raw(arr: np.ndarray) -> np.ndarray:
        batch = pd.DataFrame(arr, columns=feature_names) if feature_names is not None else arr
        return adapter.predict_raw(batch)

    return raw


class Forward:
    """The explained output of ``adapter``'s model as a function of torch tensors.

    Gradient methods (and torch models without ``preprocess``) run through the module itself
    (``net``); everything else calls the model through ``raw`` on numpy arrays.
    """

    def __init__(self, adapter: ModelAdapter, spec: MethodSpec, out: Output, target: Target,
                 raw: Callable[[np.ndarray], np.ndarray], batch_size: int) -> None:
        self.use_torch = adapter.is_torch and (adapter.preprocess is None or spec.needs_torch)
        self.module = adapter.module if adapter.is_torch else None
        self.dtype = _param_dtype(self.module) if self.use_torch else torch.float64
        self.device = adapter.device if self.use_torch else torch.device("cpu")
        self.preprocess = adapter.preprocess if spec.needs_torch else None
        self.target = target
        self.batch_size = batch_size
        self._out = out
        self._raw = raw
        self.net = (_Explained(self.module, self.preprocess, out.kind, out.n_out, out.task,
                               target.sign, self.dtype, target.column)
                    if self.use_torch else None)

    def __call__(self, x: Any) -> Any:
        if self.net is not None:
            return self.net(x)
        raw = self._raw(x.detach().cpu().numpy().astype(np.float64))
        out = head_torch(torch.as_tensor(raw, dtype=torch.float64), self._out.kind,
                         self._out.n_out, self._out.task)
        out = out * self.target.sign
        column = self.target.column
        if column is not None:
            out = out.unsqueeze(1) if out.ndim == 1 else out[:, column:column + 1]
        return out

    def tensor(self, a: np.ndarray) -> Any:
        return torch.as_tensor(a, dtype=self.dtype, device=self.device)

    def evaluate(self, a: np.ndarray) -> np.ndarray:
        """The explained output(s) on the rows of ``a``, in batches, without gradients."""
        outs = []
        for idx in chunks(len(a), self.batch_size):
            with torch.no_grad():
                o = self(self.tensor(a[idx]))
            outs.append(o.detach().cpu().to(torch.float64).numpy())
        return np.concatenate(outs, axis=0)

    def select(self, o: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """The explained class's column of outputs ``o`` (for the samples ``rows``)."""
        if o.ndim == 1:
            return o
        if self.target.column is not None:
            return o[:, 0]
        t = self.target.captum
        if isinstance(t, int):
            return o[:, t]
        t = t.numpy() if rows is None else t.numpy()[rows]
        return o[np.arange(len(o)), t]

    def check_differentiable(self, x: np.ndarray, method: str) -> None:
        """Gradients must flow through ``preprocess`` (a ``TypeError`` saying how otherwise)."""
        if self.preprocess is None or not self.use_torch:
            return
        msg = (f"method={method!r} needs gradients through preprocess, but preprocess "
               "{why}; expected a function of torch tensors built from differentiable torch "
               "operations. Either make preprocess torch-differentiable, or apply it yourself "
               "(X_model = preprocess(X)) and explain the model on X_model, or use a "
               "perturbation method such as 'shapley_value_sampling'.")
        probe = self.tensor(x[:2]).clone().requires_grad_(True)
        try:
            z = self.preprocess(probe)
        except Exception as exc:  # noqa: BLE001 - report what the user's function did
            raise TypeError(msg.format(why=f"failed on a tensor ({type(exc).__name__}: {exc})")
                            ) from exc
        if not isinstance(z, torch.Tensor):
            raise TypeError(msg.format(why=f"returned {type(z).__name__} for a tensor input"))
        if not z.requires_grad:
            raise TypeError(msg.format(why="returned a tensor detached from its input"))


class Runner:
    """Runs one method on one chunk of samples, as its :class:`MethodSpec` describes."""

    def __init__(self, spec: MethodSpec, fwd: Forward, n_steps: int, batch_size: int,
                 seed: int, shape: tuple[int, ...]) -> None:
        self.spec = spec
        self.fwd = fwd
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.seed = seed
        self.shape = shape
        self.settings: dict[str, Any] = spec.settings(n_steps, shape)
        #: the model's outputs on the chunk, where the engine computed them anyway
        self.last_output: np.ndarray | None = None

    def chunk_rows(self, n_ref: int) -> int:
        """Samples per call, so that one forward pass holds about ``batch_size`` rows."""
        return self.spec.rows_per_call(self.batch_size, self.n_steps, n_ref)

    def _ppe(self, rows: int) -> int:
        return max(1, self.batch_size // max(rows, 1))

    def _keyword(self, name: str, n_rows: int, rt: Any) -> Any:
        if name == "baselines":
            return rt
        if name == "n_steps":
            return self.n_steps
        if name in ("n_samples", "sliding_window_shapes"):
            v = self.settings[name]
            return tuple(v) if isinstance(v, list) else v
        if name == "internal_batch_size":
            return self.batch_size
        if name == "return_convergence_delta":
            return True
        if name == "perturbations_per_eval":
            return self._ppe(1 if self.spec.one_sample_per_call else n_rows)
        raise ValueError(f"MethodSpec {self.spec.name!r} names an unknown keyword {name!r}.")

    def run(self, x: np.ndarray, ref: np.ndarray | None, target: Any
            ) -> tuple[np.ndarray, np.ndarray | None]:
        """(attributions, Captum's convergence delta or None) for the samples ``x``."""
        self.last_output = None
        if self.spec.engine == "shap":
            return self._shap(x, ref), None
        from captum import attr as ca

        spec = self.spec
        xt = self.fwd.tensor(x)
        rt = None if ref is None else self.fwd.tensor(ref)
        fn: Any = self.fwd.net if spec.wraps == "net" else self.fwd
        seen: dict[str, Any] = {}
        if spec.reuses_forward:
            # Captum evaluates the unperturbed batch first; keep that output so the
            # completeness check needs no extra forward pass
            inner = fn

            def fn(inp: Any, *args: Any) -> Any:
                out = inner(inp, *args)
                if "fx" not in seen and inp.shape == xt.shape and torch.equal(inp, xt):
                    seen["fx"] = out.detach()
                return out

        kwargs = {"target": target, **spec.fixed,
                  **{k: self._keyword(k, len(x), rt) for k in spec.call}}
        result = getattr(ca, spec.explainer)(fn).attribute(xt, **kwargs)
        a, delta = result if spec.has_convergence_delta else (result, None)
        if "fx" in seen:
            self.last_output = seen["fx"].cpu().to(torch.float64).numpy().reshape(len(x), -1)
        vals = a.detach().cpu().to(torch.float64).numpy()
        if delta is not None:
            delta = delta.detach().cpu().to(torch.float64).numpy().reshape(-1)
        return vals, delta

    def _f_numpy(self, arr: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self.fwd(self.fwd.tensor(np.asarray(arr)))
        return out.detach().cpu().to(torch.float64).numpy()[:, 0]

    def _shap(self, x: np.ndarray, ref: np.ndarray) -> np.ndarray:
        import shap

        name = self.spec.explainer
        if name == "PermutationExplainer":
            masker = shap.maskers.Independent(ref, max_samples=len(ref))
            explainer = shap.PermutationExplainer(self._f_numpy, masker, seed=self.seed)
            exp = explainer(x, max_evals=self.settings["max_evals"],
                            batch_size=max(1, self.batch_size // max(len(ref), 1)), silent=True)
            return np.asarray(exp.values, dtype=np.float64)
        if name == "KernelExplainer":
            vals = shap.KernelExplainer(self._f_numpy, ref).shap_values(
                x, nsamples=self.settings["nsamples"], silent=True)
            vals = np.asarray(vals, dtype=np.float64)
            return vals[..., 0] if vals.ndim == 3 else vals
        xt, rt = self.fwd.tensor(x), self.fwd.tensor(ref)
        if name == "GradientExplainer":
            explainer = shap.GradientExplainer(self.fwd.net, rt, batch_size=self.batch_size)
            vals = explainer.shap_values(xt, nsamples=self.settings["nsamples"], rseed=self.seed)
        else:
            vals = shap.DeepExplainer(self.fwd.net, rt).shap_values(xt, check_additivity=False)
        if isinstance(vals, list):
            vals = vals[0]
        vals = np.asarray(vals, dtype=np.float64)
        if vals.ndim == len(self.shape) + 1 and vals.shape[-1] == 1:
            vals = vals[..., 0]
        return vals
