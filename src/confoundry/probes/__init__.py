"""Confounder probes (Tips 4 and 7).

:func:`probe_confounders` asks whether metadata the model never saw (site, batch, scanner)
predicts its outputs, embeddings or errors, and whether it still does once the true label is
accounted for; :func:`confounder_pathways` traces a significant conditional effect through the
input features that carry it (and compares the model with its glass-box baselines).

The retraining controls (:func:`~confoundry.label_shuffle_control`,
:func:`~confoundry.leave_one_group_out`) have moved to :mod:`confoundry.controls`; their old
names here still work for one release, with a ``DeprecationWarning``.
"""

from .._result import deprecated_aliases
from ..controls import (
    LabelShuffleResult,
    LeaveOneGroupOutResult,
    label_shuffle_control,
    leave_one_group_out,
)
from ._pathway_result import PathwayResult
from ._pathways import confounder_pathways
from ._probe import ASYMPTOTIC_N, probe_confounders
from ._probe_result import ProbeResult

__all__ = ["ASYMPTOTIC_N", "PathwayResult", "ProbeResult", "confounder_pathways", "probe_confounders"]

#: names that moved to :mod:`confoundry.controls` (kept here for one release).
_DEPRECATED = {
    "LabelShuffleResult": LabelShuffleResult,
    "LeaveOneGroupOutResult": LeaveOneGroupOutResult,
    "label_shuffle_control": label_shuffle_control,
    "leave_one_group_out": leave_one_group_out,
}
del LabelShuffleResult, LeaveOneGroupOutResult, label_shuffle_control, leave_one_group_out

__getattr__ = deprecated_aliases(__name__, _DEPRECATED)
