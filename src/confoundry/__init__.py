"""confoundry: can this trained biomedical model be trusted?

Compare it with equally tuned glass-box baselines, explain it and check domain expectations,
probe it for confounders, find where it fails, and write one self-contained report.

Examples
--------
>>> import confoundry as cf
>>> sorted(n for n in ("AuditData", "as_model", "AttributionResult") if hasattr(cf, n))
['AttributionResult', 'AuditData', 'as_model']
"""

from . import datasets as datasets
from ._result import Finding as Finding
from ._result import Verdict as Verdict
from ._version import __version__ as __version__
from .attribution import *  # noqa: F403
from .attribution import __all__ as _attribution_all
from .audit import *  # noqa: F403
from .audit import __all__ as _audit_all
from .controls import *  # noqa: F403
from .controls import __all__ as _controls_all
from .data import AuditData as AuditData
from .domains import *  # noqa: F403
from .domains import __all__ as _domains_all
from .models import *  # noqa: F403
from .models import __all__ as _models_all
from .probes import *  # noqa: F403
from .probes import __all__ as _probes_all
from .report import *  # noqa: F403
from .report import __all__ as _report_all

__all__ = sorted(
    {"AuditData", "Finding", "Verdict", "__version__"}
    | set(_attribution_all) | set(_audit_all) | set(_controls_all) | set(_domains_all)
    | set(_models_all) | set(_probes_all) | set(_report_all)
)


def __getattr__(name: str) -> object:
    """Old names of renamed classes and functions, with a ``DeprecationWarning`` (one release)."""
    import importlib

    for sub in ("attribution", "audit", "controls", "domains", "models", "probes", "demos",
                "datasets"):
        mod = importlib.import_module(f"{__name__}.{sub}")
        new = getattr(mod, "_DEPRECATED", {}).get(name)
        if new is not None:
            import warnings

            warnings.warn(f"confoundry.{name} is deprecated and will be removed in the next "
                          f"release; use confoundry.{new.__name__}.", DeprecationWarning,
                          stacklevel=2)
            return new
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
