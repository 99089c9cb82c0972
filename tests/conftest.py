import os

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def tabular():
    """A small binary dataset with a site column (as metadata) and a known signal."""
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({
        "age": rng.normal(60, 10, n),
        "asthma": rng.integers(0, 2, n).astype(float),
        "bun": rng.gamma(2.0, 8.0, n),
    })
    logit = 0.05 * (X["age"] - 60) + 0.8 * X["asthma"] - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    meta = pd.DataFrame({"site": rng.choice(["a", "b", "c"], n)}, index=X.index)
    return X, y, meta


@pytest.fixture
def count_audit_data(monkeypatch):
    """Calls of ``AuditData.__init__`` while the test runs; ``.clear()`` it after the set-up.

    The audit builds one AuditData per data set and every step function passes it through, so
    the tests that a step builds no second one count with this.
    """
    from confoundry.data import AuditData

    calls: list[int] = []
    original = AuditData.__init__

    def counting(self, *args, **kwargs):
        calls.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(AuditData, "__init__", counting)
    return calls
