"""Shared statistics: the metric panel, bootstrap CIs, permutation p-values, BH correction."""

from ._bootstrap import bootstrap_metrics, bootstrap_weights, paired_bootstrap
from ._conventions import (
    DEFAULT_CI,
    DEFAULT_FDR,
    HEADLINE_METRIC,
    METRIC_ALIASES,
    Z95,
    canonical_metric,
)
from ._intervals import difference_summary, percentile_ci, wilson_interval
from ._loss import ERROR_KINDS, per_sample_loss
from ._metrics import (
    HIGHER_IS_BETTER,
    LABELS,
    METRICS,
    default_metrics,
    metric_panel,
    weighted_metrics,
)
from ._panel import MetricPanel, bootstrap_panel, bootstrap_scheme
from ._poisson import POISSON_N, poisson_weights
from ._tests import bh_adjust, bootstrap_p_value, monte_carlo_se, permutation_p_value

__all__ = [
    "DEFAULT_CI", "DEFAULT_FDR", "MetricPanel", "bootstrap_panel", "ERROR_KINDS", "HEADLINE_METRIC", "METRIC_ALIASES", "Z95",
    "canonical_metric", "difference_summary", "per_sample_loss", "percentile_ci",
    "wilson_interval",
    "HIGHER_IS_BETTER", "LABELS", "METRICS", "bh_adjust", "bootstrap_metrics", "bootstrap_p_value",
    "bootstrap_weights", "default_metrics", "metric_panel", "monte_carlo_se",
    "paired_bootstrap", "permutation_p_value", "weighted_metrics",
    "POISSON_N", "bootstrap_scheme", "poisson_weights",
]
