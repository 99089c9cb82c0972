"""Controls for memorisation and privacy (Tips 7 and 10).

- :func:`overfitting_gap`: training vs test performance of the model and its baselines, the gap
  with a bootstrap CI, and the model's gap against the baselines'.
- :func:`membership_risk`: membership-inference attacks without shadow models (loss, confidence,
  entropy thresholds): attack AUROC and TPR at a low FPR with CIs, and the share of training
  records exposed.

The label-shuffle control lives with the probes (:func:`confoundry.label_shuffle_control`).
"""

from ._membership import MembershipRiskResult, membership_risk
from ._overfitting import OverfittingResult, overfitting_gap

__all__ = ["MembershipRiskResult", "OverfittingResult", "membership_risk", "overfitting_gap"]
