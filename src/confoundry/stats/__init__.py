"""Shared statistics: the metric panel, bootstrap CIs, permutation p-values, BH correction."""

from ._bootstrap import bootstrap_metrics, bootstrap_weights, paired_bootstrap
from ._metrics import (
    HIGHER_IS_BETTER,
    LABELS,
    METRICS,
    default_metrics,
    metric_panel,
    weighted_metrics,
)
from ._tests import bh_adjust, bootstrap_p_value, monte_carlo_se, permutation_p_value

__all__ = [
    "HIGHER_IS_BETTER", "LABELS", "METRICS", "bh_adjust", "bootstrap_metrics", "bootstrap_p_value",
    "bootstrap_weights", "default_metrics", "metric_panel", "monte_carlo_se",
    "paired_bootstrap", "permutation_p_value", "weighted_metrics",
]
