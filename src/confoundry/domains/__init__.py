"""Domain-split analysis: where the model succeeds, where it fails, and what differs (Tip 9).

- :func:`split_domains`: per-domain metrics with bootstrap CIs, and the audited model against
  glass-box baselines domain by domain (paired bootstrap).
- :func:`discover_slices`: failing slices found by a pruned lattice search on one half of the
  data and confirmed on the other, with Benjamini–Hochberg control of the false discovery rate.
- :func:`contrast_attributions`: what the model does differently in one group of samples.
"""

from .._result import deprecated_aliases
from ._contrast import ContrastResult, contrast_attributions
from ._slices import SliceResult, discover_slices
from ._split import DomainResult, split_domains

__all__ = [
    "ContrastResult", "DomainResult", "SliceResult", "contrast_attributions", "discover_slices",
    "split_domains",
]

#: former names, served with a DeprecationWarning for one release (none renamed here yet).
_DEPRECATED: dict[str, type] = {}
__getattr__ = deprecated_aliases(__name__, _DEPRECATED)
