"""Detect the DeepLift / DeepExplainer pitfall: a reused or functional non-linearity.

DeepLift's rescale rule is implemented with hooks on ``nn.Module`` non-linearities. A module
object called twice in one forward pass (a reused ``nn.ReLU``) overwrites the stored reference
activations, and a functional non-linearity (``torch.relu``, ``F.relu``, ``x.sigmoid()``) is not
hooked at all and is treated as linear. Both silently give wrong attributions (Captum issues
1082 and 1104, SHAP issue 3938).
"""

from __future__ import annotations

from typing import Any

try:
    import torch
    from torch.overrides import TorchFunctionMode
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]
    TorchFunctionMode = object  # type: ignore[assignment,misc]

_FUNCTIONAL = {
    "relu", "relu_", "relu6", "sigmoid", "sigmoid_", "tanh", "tanh_", "softmax", "log_softmax",
    "elu", "elu_", "leaky_relu", "leaky_relu_", "gelu", "silu", "softplus", "hardtanh",
    "hardtanh_", "selu", "celu", "mish", "hardswish", "hardsigmoid", "prelu", "threshold",
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
    "max_pool2d_with_indices", "max_pool3d_with_indices", "exp", "log", "sin", "cos", "sqrt",
    "square", "pow", "__pow__", "abs", "maximum", "minimum", "clamp", "clamp_", "clip",
}


def _nonlinear_module_types() -> tuple[type, ...]:
    nn = torch.nn
    names = ["ReLU", "ReLU6", "ELU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
             "GELU", "SiLU", "Softplus", "Hardtanh", "SELU", "CELU", "Mish", "Hardswish",
             "Hardsigmoid", "PReLU", "MaxPool1d", "MaxPool2d", "MaxPool3d", "Threshold"]
    return tuple(getattr(nn, n) for n in names if hasattr(nn, n))


def _is_builtin(module: Any) -> bool:
    return type(module).__module__.startswith("torch.nn")


class _Spy(TorchFunctionMode):  # type: ignore[misc]
    def __init__(self, stack: list[bool], found: set[str]) -> None:
        super().__init__()
        self.stack = stack
        self.found = found

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = getattr(func, "__name__", "")
        if name in _FUNCTIONAL and not (self.stack and self.stack[-1]):
            self.found.add(name)
        return func(*args, **(kwargs or {}))


def deeplift_pitfalls(module: Any, x: Any) -> list[str]:
    """Problems that make DeepLift-family attributions wrong for ``module``, as sentences.

    Runs one forward pass on ``x`` (a couple of rows) with hooks that count how often each
    non-linear module is called, and a torch-function mode that records functional
    non-linearities called outside a built-in ``torch.nn`` module. The model is not changed
    (hooks are removed; the caller puts it in eval mode).

    Examples
    --------
    >>> import torch
    >>> relu = torch.nn.ReLU()
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), relu, torch.nn.Linear(2, 2), relu)
    >>> deeplift_pitfalls(net, torch.zeros(2, 2))[0][:40]
    'the non-linear module ReLU is called 2 t'
    """
    nonlin = _nonlinear_module_types()
    counts: dict[int, int] = {}
    names: dict[int, str] = {}
    stack: list[bool] = []
    found: set[str] = set()
    handles = []

    def pre(mod: Any, _inp: Any) -> None:
        stack.append(_is_builtin(mod) and len(list(mod.children())) == 0)
        if isinstance(mod, nonlin):
            counts[id(mod)] = counts.get(id(mod), 0) + 1
            names[id(mod)] = type(mod).__name__

    def post(_mod: Any, _inp: Any, _out: Any) -> None:
        if stack:
            stack.pop()

    try:
        for m in module.modules():
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
        with torch.no_grad(), _Spy(stack, found):
            module(x)
    finally:
        for h in handles:
            h.remove()
    problems = [
        f"the non-linear module {names[k]} is called {c} times in one forward pass (a reused "
        "module)" for k, c in counts.items() if c > 1
    ]
    if found:
        problems.append("functional non-linearities are called inside forward() "
                        f"({', '.join(sorted(found))}) instead of nn.Module layers")
    return problems
