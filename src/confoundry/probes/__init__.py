"""Confounder probes and retraining controls (Tips 4 and 7).

:func:`probe_confounders` asks whether metadata the model never saw (site, batch, scanner)
predicts its outputs, embeddings or errors, and whether it still does once the true label is
accounted for. :func:`label_shuffle_control` and :func:`leave_one_group_out` retrain the model
through a user-supplied ``train_fn(X_train, y_train) -> model``.
"""

from ._controls import (
    LabelShuffleResult,
    LeaveOneGroupOutResult,
    label_shuffle_control,
    leave_one_group_out,
)
from ._probe import ProbeResult, probe_confounders

__all__ = [
    "LabelShuffleResult", "LeaveOneGroupOutResult", "ProbeResult",
    "label_shuffle_control", "leave_one_group_out", "probe_confounders",
]
