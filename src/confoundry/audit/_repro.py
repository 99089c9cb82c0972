"""The reproducibility record of an audit (Tip 3): versions, seeds, determinism, fingerprints."""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import sys
from typing import Any

PACKAGES = ("confoundry", "numpy", "scipy", "pandas", "scikit-learn", "torch", "captum", "shap",
            "interpret-core", "matplotlib", "jinja2")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages an audit depends on ("not installed" otherwise).

    Examples
    --------
    >>> "numpy" in package_versions()
    True
    """
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def torch_settings() -> dict[str, Any]:
    """Determinism-relevant torch settings at the time of the call."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return {}
    return {
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "deterministic_warn_only": bool(torch.is_deterministic_algorithms_warn_only_enabled()),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "num_threads": int(torch.get_num_threads()),
    }


def model_fingerprint(model: Any) -> dict[str, Any]:
    """Type, size and a SHA-256 of a torch model's parameters and buffers (type only otherwise)."""
    out: dict[str, Any] = {"type": f"{type(model).__module__}.{type(model).__qualname__}"}
    try:
        import torch
    except ImportError:  # pragma: no cover
        return out
    if isinstance(model, torch.nn.Module):
        h = hashlib.sha256()
        n_params = 0
        for key, t in sorted(model.state_dict().items()):
            h.update(key.encode())
            arr = t.detach().to("cpu").contiguous()
            h.update(arr.numpy().tobytes() if arr.dtype != torch.bfloat16
                     else arr.float().numpy().tobytes())
        for p in model.parameters():
            n_params += int(p.numel())
        out["n_parameters"] = n_params
        out["sha256"] = h.hexdigest()
    return out


def record(*, base_seed: int, step_seeds: dict[str, int], data: Any, train: Any,
           model: Any, random_state: Any, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python_executable": sys.executable,
        "versions": package_versions(),
        "random_state": random_state if isinstance(random_state, (int, type(None))) else
        type(random_state).__name__,
        "base_seed": base_seed,
        "step_seeds": step_seeds,
        "torch": settings,
        "data_sha256": {"test": data.fingerprint(),
                        "train": None if train is None else train.fingerprint()},
        "model": model_fingerprint(model),
    }
