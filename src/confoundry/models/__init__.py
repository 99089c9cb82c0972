"""Model adapters and glass-box baselines."""

from ._adapter import ModelAdapter, as_model

__all__ = ["ModelAdapter", "as_model"]
