"""Controls for memorisation, generalisation across groups and privacy (Tips 4, 7 and 10).

- :func:`overfitting_gap`: training vs test performance of the model and its baselines, the gap
  with a bootstrap CI, and the model's gap against the baselines'.
- :func:`membership_risk`: membership-inference attacks without shadow models (loss, confidence,
  entropy thresholds): attack AUROC and TPR at a low FPR with CIs, and the share of training
  records exposed.
- :func:`label_shuffle_control` and :func:`leave_one_group_out` retrain the model through a
  user-supplied ``train_fn(X_train, y_train) -> model``: on shuffled labels (Chuang & Keiser
  2018), and with each site or batch held out in turn.

Every function takes an :class:`~confoundry.AuditData` for its ``X`` arguments (carrying ``y``)
and uses it as it is; the first two also take precomputed scores (``scores=``,
``train_scores=``, ``baseline_scores=``, ``baseline_train_scores=``).
"""

from ._label_shuffle import LabelShuffleResult, label_shuffle_control
from ._leave_one_group_out import LeaveOneGroupOutResult, leave_one_group_out
from ._membership import MembershipRiskResult, membership_risk
from ._overfitting import OverfittingResult, overfitting_gap

__all__ = [
    "LabelShuffleResult", "LeaveOneGroupOutResult", "MembershipRiskResult", "OverfittingResult",
    "label_shuffle_control", "leave_one_group_out", "membership_risk", "overfitting_gap",
]
