"""The Audit: run every available step on one model and collect the findings.

Examples
--------
>>> from confoundry.audit import Audit, AuditResult
>>> Audit.__name__, AuditResult.__name__
('Audit', 'AuditResult')
"""

from ._audit import STEPS as STEPS  # re-exported for confoundry.audit.STEPS
from ._audit import Audit
from ._audit_result import AuditResult, StepStatus

__all__ = ["Audit", "AuditResult", "StepStatus"]
