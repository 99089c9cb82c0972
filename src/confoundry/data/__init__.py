"""Data contract: :class:`AuditData` aligns and validates X, y and metadata."""

from ._audit_data import AuditData, ensure_data
from ._validation import FEATURE_KINDS, TASKS

__all__ = ["AuditData", "ensure_data", "FEATURE_KINDS", "TASKS"]
