"""Simulated cohorts with a known ground truth (the pneumonia/asthma paradox first).

Examples
--------
>>> from confoundry.datasets import simulate_pneumonia
>>> d = simulate_pneumonia(500, random_state=0)
>>> d.X.shape[1], d.y.name, sorted(d.metadata.columns)
(31, 'death', ['aggressive_care', 'hospital', 'icu_admission'])
>>> d["X"] is d.X and d.train["y"] is d.train.y   # a scikit-learn Bunch: keys are attributes
True
"""

from sklearn.utils import Bunch

from ._pneumonia import (
    DEFAULT_PARAMS as PNEUMONIA_PARAMS,
)
from ._pneumonia import (
    FEATURE_NAMES as PNEUMONIA_FEATURES,
)
from ._pneumonia import (
    simulate_pneumonia,
)
from ._pneumonia import (
    untreated_log_odds as pneumonia_untreated_log_odds,
)
from ._radiographs import simulate_radiographs

__all__ = [
    "Bunch", "PNEUMONIA_FEATURES", "PNEUMONIA_PARAMS", "pneumonia_untreated_log_odds",
    "simulate_pneumonia", "simulate_radiographs",
]
