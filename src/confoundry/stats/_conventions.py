"""Conventions every step shares: the headline metric per task, the default levels, aliases.

One place, so that a plot, a finding and a table of two different steps speak about the same
metric and the same level. Before writing ``{"binary": "auroc", ...}`` anywhere, import it from
here.
"""

from __future__ import annotations

#: the metric a finding, a plot or a verdict speaks about when the user names none.
HEADLINE_METRIC = {"binary": "auroc", "multiclass": "macro_auroc", "regression": "r2"}

#: the default false-discovery rate of every multiple-testing correction (``fdr=``).
DEFAULT_FDR = 0.05

#: the default level of every confidence interval (``ci=``).
DEFAULT_CI = 0.95

#: z quantile of a two-sided 95% normal interval.
Z95 = 1.959963984540054

#: scikit-learn's scorer and metric spellings, accepted wherever a metric name is.
METRIC_ALIASES = {
    "roc_auc": "auroc", "roc_auc_score": "auroc", "auc": "auroc",
    "average_precision": "auprc", "average_precision_score": "auprc", "pr_auc": "auprc",
    "brier_score_loss": "brier", "neg_brier_score": "brier",
    "neg_log_loss": "log_loss", "logloss": "log_loss", "cross_entropy": "log_loss",
    "accuracy_score": "accuracy", "balanced_accuracy_score": "balanced_accuracy",
    "recall": "sensitivity", "recall_score": "sensitivity", "tpr": "sensitivity",
    "true_positive_rate": "sensitivity", "tnr": "specificity", "true_negative_rate": "specificity",
    "roc_auc_ovr": "macro_auroc", "roc_auc_ovr_weighted": None, "macro_roc_auc": "macro_auroc",
    "r2_score": "r2", "neg_mean_absolute_error": "mae", "mean_absolute_error": "mae",
    "neg_root_mean_squared_error": "rmse", "root_mean_squared_error": "rmse",
}


def canonical_metric(name: str, task: str | None = None) -> str:
    """The confoundry name of a metric given in confoundry's or scikit-learn's spelling.

    ``"roc_auc"`` means the macro AUROC for a multiclass task.

    Examples
    --------
    >>> canonical_metric("roc_auc"), canonical_metric("neg_log_loss"), canonical_metric("mae")
    ('auroc', 'log_loss', 'mae')
    >>> canonical_metric("roc_auc", "multiclass")
    'macro_auroc'
    """
    if not isinstance(name, str):
        return name
    key = name.strip().lower()
    out = METRIC_ALIASES.get(key, key)
    if out is None:  # an alias we know but do not compute: keep the user's spelling for the error
        return name
    if task == "multiclass" and out == "auroc":
        return "macro_auroc"
    return out
