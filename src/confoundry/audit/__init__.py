"""The Audit: run every available step on one model and collect the findings.

Examples
--------
>>> from confoundry.audit import Audit, AuditResult
>>> Audit.__name__, AuditResult.__name__
('Audit', 'AuditResult')
>>> from confoundry.audit import STEPS
>>> STEPS[0].name, STEPS[0].section
('data', 'data')
"""

from .._severity import severity_rules
from ._audit import Audit
from ._audit_result import AuditResult, StepStatus
from ._context import ATTRIBUTION_SAMPLE_BYTES as ATTRIBUTION_SAMPLE_BYTES
from ._context import AuditContext as AuditContext
from ._context import Skip as Skip
from ._steps import SECTIONS as SECTIONS
from ._steps import STEPS as STEPS
from ._steps import AuditStep as AuditStep
from ._steps import ReportSection as ReportSection
from ._steps import audit_steps

__all__ = ["Audit", "AuditResult", "StepStatus", "audit_steps", "severity_rules"]
