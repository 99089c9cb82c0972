"""``check_expectations``: does any model contradict what the domain knows?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._explanation import AttributionResult
from .._result import Finding, ResultMixin
from .._severity import grade
from .._utils import check_random_state, progress
from ..data import ensure_data
from ..data._validation import check_positive_int, check_probability, describe
from ..stats import DEFAULT_CI, bh_adjust, bootstrap_weights, difference_summary
from ._common import adapter_for, model_output, seed_record, wants_frame

_ALIASES = {
    "increasing": "increasing", "increase": "increasing", "+": "increasing",
    "positive": "increasing", "up": "increasing", "monotone_increasing": "increasing",
    "decreasing": "decreasing", "decrease": "decreasing", "-": "decreasing",
    "negative": "decreasing", "down": "decreasing", "monotone_decreasing": "decreasing",
}


def expectation_direction(feature: Any, direction: Any) -> str:
    """``"increasing"`` or ``"decreasing"`` from a user's spelling, or a clear error.

    Examples
    --------
    >>> expectation_direction("age", "Up")
    'increasing'
    >>> expectation_direction("f0", "increasng")
    Traceback (most recent call last):
    ...
    ValueError: expectations['f0']='increasng' is not valid; expected 'increasing' or 'decreasing' (did you mean 'increasing'?).
    """
    import difflib

    key = str(direction).strip().lower() if isinstance(direction, str) else None
    if key in _ALIASES:
        return _ALIASES[key]
    near = difflib.get_close_matches(key or "", list(_ALIASES), n=1, cutoff=0.6)
    hint = f" (did you mean {_ALIASES[near[0]]!r}?)" if near else ""
    raise ValueError(f"expectations[{feature!r}]={direction!r} is not valid; expected "
                     f"'increasing' or 'decreasing'{hint}.")


def _contrast(x: np.ndarray) -> tuple[float, float]:
    """The two values of a feature that an effect compares: 0/1 for a binary feature, the
    quartiles otherwise (min/max when the quartiles coincide)."""
    u = np.unique(x)
    if len(u) <= 2:
        return float(u[0]), float(u[-1])
    lo, hi = np.quantile(x, [0.25, 0.75])
    if hi <= lo:
        lo, hi = float(u[0]), float(u[-1])
    return float(lo), float(hi)


@dataclass(frozen=True, eq=False)
class ExpectationResult(ResultMixin):
    """Observed direction and effect of every (model, feature) pair against the expectation.

    Build it with :func:`check_expectations`.

    Attributes
    ----------
    table : DataFrame
        One row per (model, feature): ``model``, ``feature``, ``expected``, ``observed``,
        ``effect``, ``ci_low``, ``ci_high``, ``p_value``, ``q_value`` (Benjamini-Hochberg over
        all rows), ``violated``, ``source`` (``"model"`` or the attribution method), ``low``,
        ``high`` (the compared feature values), ``n``, ``n_boot``, ``output_sd`` (standard
        deviation of the explained output over the rows; for attributions, of their row sums)
        and ``effect_sd`` (``effect / output_sd``, the scale of the finding's minimum effect).
    ci : float
        Coverage of the bootstrap interval.
    n_boot : int
        Bootstrap replicates.
    params : dict
        ``n_boot``, ``ci``, ``target``, ``random_state``, ``expectations``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"age": rng.normal(60, 10, 200), "asthma": rng.integers(0, 2, 200)})
    >>> logit = 0.05 * (X.age - 60) - 2 * X.asthma        # asthma lowers the risk in this data
    >>> y = (rng.random(200) < 1 / (1 + np.exp(-logit))).astype(int)
    >>> m = LogisticRegression().fit(X, y)
    >>> res = check_expectations({"lr": m}, X, {"asthma": "increasing"}, n_boot=50,
    ...                          random_state=0, verbose=False)
    >>> res.table.loc[0, ["model", "feature", "expected", "observed"]].tolist()
    ['lr', 'asthma', 'increasing', 'decreasing']
    >>> bool(res.table.loc[0, "violated"]), res.n_boot
    (True, 50)
    """

    table: pd.DataFrame
    ci: float
    n_boot: int
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    @property
    def violations(self) -> pd.DataFrame:
        return self.table[self.table["violated"]].reset_index(drop=True)

    def findings(self) -> list[Finding]:
        out = []
        for _, r in self.violations.iterrows():
            verb = "raises" if r["effect"] > 0 else "lowers"
            if abs(float(r["ci_high"]) - float(r["ci_low"])) <= 1e-9 * max(1.0, abs(r["effect"])):
                # an additive model's effect is one number for every row: the bootstrap over
                # rows has nothing to vary (the fit's own uncertainty is not part of this CI)
                ci_txt = (f"the same for every row, as the model is additive in it; "
                          f"n={r['n']}")
            else:
                ci_txt = (f"{self.ci:.0%} CI {r['ci_low']:+.3g} to {r['ci_high']:+.3g}, "
                          f"n={r['n']}")
            size = r["effect_sd"] if np.isfinite(r["effect_sd"]) else np.inf  # flat output
            level = grade("expectation_violation", size, n=int(r["n"]))
            out.append(Finding(
                "expectation_violation", level, 9,
                f"{r['model']}: '{r['feature']}' {verb} the output although it is expected to "
                f"be {r['expected']} (effect {r['effect']:+.3g}, {ci_txt}).",
                subject=str(r["feature"]), model=str(r["model"]), domain="overall",
                evidence={k: r[k] for k in ("expected", "observed", "effect", "ci_low", "ci_high",
                                            "p_value", "q_value", "source", "low", "high", "n",
                                            "n_boot", "output_sd", "effect_sd")}))
        return out

    def plot(self, ax: Any = None) -> Any:
        """Forest plot: effect and CI per (model, feature); violations in red."""
        import matplotlib.pyplot as plt

        t = self.table.iloc[::-1]
        if ax is None:
            longest = max((len(f"{m} · {f} (expected ↑)") for m, f in
                           zip(t["model"], t["feature"])), default=0)
            _, ax = plt.subplots(figsize=(max(7.0, 4.5 + 0.08 * longest),
                                          0.35 * len(t) + 1.2), layout="constrained")
        y = np.arange(len(t))
        colors = np.where(t["violated"], "#C44E52", "#4C72B0")
        xerr = np.clip([t["effect"] - t["ci_low"], t["ci_high"] - t["effect"]], 0, None)
        ax.errorbar(t["effect"], y, xerr=np.nan_to_num(xerr),
                    fmt="none", ecolor=colors, elinewidth=1.5)
        ax.scatter(t["effect"], y, c=colors, zorder=3)
        ax.axvline(0, color="black", lw=0.8)
        arrow = {"increasing": "↑", "decreasing": "↓"}
        ax.set_yticks(y, [f"{m} · {f} (expected {arrow[e]})"
                          for m, f, e in zip(t["model"], t["feature"], t["expected"])])
        ax.set_xlabel("effect of the feature (low → high value) on the explained output")
        ax.set_title("domain expectations (red: violated)")
        return ax.figure


def check_expectations(
    models: Mapping[str, Any],
    X: Any,
    expectations: Mapping[str, str],
    *,
    n_boot: int = 500,
    ci: float = DEFAULT_CI,
    target: int | None = None,
    random_state: Any = None,
    verbose: bool = True,
) -> ExpectationResult:
    """Check declared directions ("asthma must not lower the risk") against every model.

    For a model the effect of a feature is the mean, over the samples of ``X``, of the change
    in the model's explained output (log-odds for binary classifiers) when the feature moves
    from a low to a high value with everything else held at the sample's values (0 -> 1 for a
    binary feature, first -> third quartile otherwise): what the model does, not what the data
    say. For an ``AttributionResult`` it is the slope of the feature's attribution on its value,
    times the same step. The CI is a percentile bootstrap over samples; ``violated`` is True
    only when the whole CI lies on the wrong side of zero.

    Parameters
    ----------
    models : dict of str to model or AttributionResult
        Anything :func:`confoundry.as_model` accepts (glass-box models included), or an
        ``AttributionResult`` computed on any rows.
    X : DataFrame, ndarray or AuditData
        Samples on which model effects are computed.
    expectations : dict of str to {"increasing", "decreasing"}
        Feature name to expected direction (aliases: "+", "-", "positive", "negative").
    n_boot : int
    ci : float
    target : int, optional
        Class whose probability is examined, for multiclass models.
    random_state : None, int or Generator
    verbose : bool
        Show a progress bar over the models.

    Returns
    -------
    ExpectationResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"age": rng.normal(60, 10, 400), "asthma": rng.integers(0, 2, 400)})
    >>> y = (rng.random(400) < 1 / (1 + np.exp(-(0.05 * (X.age - 60) - 1.5 * X.asthma)))).astype(int)
    >>> m = LogisticRegression().fit(X, y)
    >>> res = check_expectations({"lr": m}, X, {"asthma": "increasing", "age": "increasing"},
    ...                          n_boot=100, random_state=0, verbose=False)
    >>> res.to_frame().set_index("feature")["violated"].to_dict()
    {'asthma': True, 'age': False}
    """
    if not isinstance(models, Mapping) or not models:
        raise TypeError(f"models={describe(models)} is not valid; expected a non-empty dict of "
                        "name to model or AttributionResult.")
    if not isinstance(expectations, Mapping) or not expectations:
        raise TypeError(f"expectations={describe(expectations)} is not valid; expected a "
                        "non-empty dict of feature name to 'increasing' or 'decreasing'.")
    expected: dict[str, str] = {}
    for feat, direction in expectations.items():
        expected[str(feat)] = expectation_direction(feat, direction)
    n_boot = check_positive_int(n_boot, "n_boot")
    ci = check_probability(ci, "ci")
    rng = check_random_state(random_state)
    data = None
    needs_X = any(not isinstance(m, AttributionResult) for m in models.values())
    if needs_X or X is not None:
        data = ensure_data(X)
        if not data.is_tabular:
            raise ValueError(f"X has shape {data.values.shape}; expected tabular (n, d) inputs.")
        missing = [f for f in expected if f not in data.feature_names]
        if missing:
            raise ValueError(f"expectations name feature(s) {missing} that are not columns of X; "
                             f"expected some of {describe(data.feature_names)}.")
    rows = []
    for name, obj in progress(list(models.items()), desc="expectations", verbose=verbose):
        if isinstance(obj, AttributionResult):
            rows.extend(_attribution_rows(str(name), obj, expected, n_boot, ci, rng))
        else:
            rows.extend(_model_rows(str(name), obj, data, expected, n_boot, ci, target, rng))
    table = pd.DataFrame(rows)
    table["q_value"] = bh_adjust(table["p_value"].to_numpy())
    cols = ["model", "feature", "expected", "observed", "effect", "ci_low", "ci_high", "p_value",
            "q_value", "violated", "source", "low", "high", "n", "n_boot", "output_sd",
            "effect_sd"]
    params = {"n_boot": n_boot, "ci": ci, "target": target,
              "random_state": seed_record(random_state), "expectations": expected}
    return ExpectationResult(table=table[cols], ci=ci, n_boot=n_boot, params=params)


def _summarise(name: str, feat: str, exp: str, est: float, reps: np.ndarray, ci: float,
               source: str, lo: float, hi: float, n: int, n_boot: int,
               sd: float) -> dict[str, Any]:
    diff = difference_summary(reps, ci)  # the effect's CI and its p-value against 0
    c_lo, c_hi, p = diff["ci_low"], diff["ci_high"], diff["p_value"]
    violated = bool(c_hi < 0) if exp == "increasing" else bool(c_lo > 0)
    observed = "increasing" if est > 0 else ("decreasing" if est < 0 else "flat")
    return {"model": name, "feature": feat, "expected": exp, "observed": observed,
            "effect": float(est), "ci_low": float(c_lo), "ci_high": float(c_hi),
            "p_value": float(p), "violated": violated, "source": source, "low": lo, "high": hi,
            "n": int(n), "n_boot": n_boot, "output_sd": sd,
            "effect_sd": float(est) / sd if sd > 0 else float("nan")}


def _model_rows(name: str, model: Any, data: Any, expected: dict[str, str], n_boot: int,
                ci: float, target: int | None, rng: np.random.Generator) -> list[dict[str, Any]]:
    adapter = adapter_for(model)
    X = data.X
    n = data.n_samples
    feats = list(expected)
    steps = [_contrast(X[f].to_numpy()) for f in feats]
    # one batched pass over all (feature, low/high) copies of X
    blocks = []
    for f, (lo, hi) in zip(feats, steps):
        blocks.append(X.assign(**{f: lo}))
        blocks.append(X.assign(**{f: hi}))
    blocks.append(X)  # the output itself, for its spread
    big = pd.concat(blocks, ignore_index=True)
    frame = wants_frame(data)  # models fitted on arrays get arrays
    out = model_output(adapter, big if frame else big.to_numpy(), target=target)
    sd = float(np.std(out[-n:]))
    out = out[:-n].reshape(len(feats), 2, n)
    E = out[:, 1, :] - out[:, 0, :]  # (features, n) per-sample effects
    est = E.mean(axis=1)
    reps = np.concatenate([(W @ E.T) / n for W in bootstrap_weights(n, n_boot, random_state=rng)])
    return [_summarise(name, f, expected[f], est[i], reps[:, i], ci, "model", lo, hi, n, n_boot,
                       sd) for i, (f, (lo, hi)) in enumerate(zip(feats, steps))]


def _attribution_rows(name: str, attr: AttributionResult, expected: dict[str, str], n_boot: int,
                      ci: float, rng: np.random.Generator) -> list[dict[str, Any]]:
    if not attr.is_tabular:
        raise ValueError(f"models[{name!r}] is an AttributionResult of shape {attr.values.shape}; "
                         "expected tabular attributions.")
    missing = [f for f in expected if f not in attr.feature_names]
    if missing:
        raise ValueError(f"models[{name!r}] has no attributions for feature(s) {missing}; "
                         "expected every feature named in expectations.")
    idx = [attr.feature_names.index(f) for f in expected]
    x = attr.data[:, idx]
    a = attr.values[:, idx]
    n = attr.n_samples
    steps = [_contrast(x[:, j]) for j in range(len(idx))]
    width = np.array([hi - lo for lo, hi in steps])

    def slopes(W: np.ndarray) -> np.ndarray:
        tot = W.sum(axis=1, keepdims=True)
        ex, ea = W @ x / tot, W @ a / tot
        cov = W @ (x * a) / tot - ex * ea
        var = W @ (x * x) / tot - ex * ex
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(var > 0, cov / np.where(var > 0, var, 1.0), np.nan) * width

    est = slopes(np.ones((1, n)))[0]
    reps = np.concatenate([slopes(W) for W in bootstrap_weights(n, n_boot, random_state=rng)])
    sd = float(np.std(attr.values.reshape(n, -1).sum(axis=1)))  # spread of output - baseline
    return [_summarise(name, f, expected[f], est[i], reps[:, i], ci, attr.method, steps[i][0],
                       steps[i][1], n, n_boot, sd) for i, f in enumerate(expected)]
