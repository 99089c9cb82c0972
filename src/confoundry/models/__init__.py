"""Model adapters, glass-box baselines and model comparison."""

from .._result import deprecated_aliases
from ._adapter import ModelAdapter, as_model
from ._baselines import BaselinesResult, fit_baselines
from ._compare import ModelComparisonResult, compare_models
from ._ebm import EBM_DEFAULTS
from ._glassbox import GlassBoxModel

__all__ = ["EBM_DEFAULTS", "BaselinesResult", "GlassBoxModel", "ModelAdapter",
           "ModelComparisonResult", "as_model", "compare_models", "fit_baselines"]

#: former names, served with a DeprecationWarning for one release.
_DEPRECATED = {"Baselines": BaselinesResult, "ModelComparison": ModelComparisonResult}
__getattr__ = deprecated_aliases(__name__, _DEPRECATED)
