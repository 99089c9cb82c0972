"""Building blocks of the case studies: the pneumonia MLP and the ground-truth danger table.

Examples
--------
>>> from confoundry.demos import danger_table, train_pneumonia_mlp
>>> callable(danger_table) and callable(train_pneumonia_mlp)
True
"""

from ._danger import DangerTable, danger_table
from ._pneumonia_demo import EXPECTATIONS, ParadoxTable, paradox_table, run_pneumonia_demo
from ._pneumonia_model import (
    DEFAULT_CONFIGS,
    MLPSearchResult,
    PneumoniaMLP,
    train_pneumonia_mlp,
)

__all__ = [
    "DEFAULT_CONFIGS", "EXPECTATIONS", "DangerTable", "MLPSearchResult", "ParadoxTable",
    "PneumoniaMLP", "danger_table", "paradox_table", "run_pneumonia_demo",
    "train_pneumonia_mlp",
]
