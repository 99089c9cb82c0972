"""confoundry: can this trained biomedical model be trusted?

Compare it with equally tuned glass-box baselines, explain it and check domain expectations,
probe it for confounders, find where it fails, and write one self-contained report.

Examples
--------
>>> import confoundry as cf
>>> sorted(n for n in ("AuditData", "as_model", "Attribution") if hasattr(cf, n))
['Attribution', 'AuditData', 'as_model']
"""

from . import datasets as datasets
from ._explanation import Attribution as Attribution
from ._result import Finding as Finding
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
    {"Attribution", "AuditData", "Finding", "__version__"}
    | set(_attribution_all) | set(_audit_all) | set(_controls_all) | set(_domains_all)
    | set(_models_all) | set(_probes_all) | set(_report_all)
)
