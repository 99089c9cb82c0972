"""Data contract: :class:`AuditData` aligns and validates X, y and metadata."""

from ._audit_data import AuditData
from ._validation import FEATURE_KINDS, TASKS

__all__ = ["AuditData", "FEATURE_KINDS", "TASKS"]
