"""Building blocks of the case studies: the pneumonia MLP and the ground-truth danger table.

Examples
--------
>>> from confoundry.demos import danger_table, train_pneumonia_mlp
>>> callable(danger_table) and callable(train_pneumonia_mlp)
True
"""

from .._result import deprecated_aliases
from ._danger import DangerTableResult, danger_table
from ._pneumonia_demo import (
    EXPECTATIONS,
    ParadoxTableResult,
    paradox_table,
    run_pneumonia_demo,
)
from ._pneumonia_model import (
    DEFAULT_CONFIGS,
    MLPSearchResult,
    PneumoniaMLP,
    train_pneumonia_mlp,
)

#: old result names, served with a DeprecationWarning for one release
_DEPRECATED = {"DangerTable": DangerTableResult, "ParadoxTable": ParadoxTableResult}
__getattr__ = deprecated_aliases(__name__, _DEPRECATED)

__all__ = [
    "DEFAULT_CONFIGS", "EXPECTATIONS", "DangerTableResult", "MLPSearchResult",
    "ParadoxTableResult", "PneumoniaMLP", "danger_table", "paradox_table", "run_pneumonia_demo",
    "train_pneumonia_mlp",
]
