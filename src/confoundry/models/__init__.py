"""Model adapters, glass-box baselines and model comparison."""

from ._adapter import ModelAdapter, as_model
from ._baselines import Baselines, fit_baselines
from ._compare import ModelComparison, compare_models
from ._ebm import EBM_DEFAULTS
from ._glassbox import GlassBoxModel

__all__ = ["EBM_DEFAULTS", "Baselines", "GlassBoxModel", "ModelAdapter", "ModelComparison",
           "as_model", "compare_models", "fit_baselines"]
