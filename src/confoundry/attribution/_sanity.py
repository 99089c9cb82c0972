"""``sanity_check``: model-parameter randomisation test (Adebayo et al., 2018)."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._explanation import AttributionResult
from .._result import Finding, ResultMixin
from .._utils import check_random_state, int_seed, progress, torch_seed
from ..data import ensure_data
from ..data._validation import check_positive_int, check_probability, describe
from ..models import as_model
from ..stats import DEFAULT_CI, bootstrap_weights, percentile_ci
from ._common import adapter_for, rowwise_corr, seed_record, weighted_rank
from ._engines import attribute

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class SanityResult(ResultMixin):
    """Similarity of attributions before and after randomising the model's layers.

    Build it with :func:`sanity_check`.

    Attributes
    ----------
    table : DataFrame
        One row per cascade step (``step`` 0 is the first randomised layer, counted from the
        output): ``layer``, ``spearman`` (mean over samples of the Spearman correlation between
        original and randomised attributions), ``spearman_abs`` (the same on |values|),
        ``ci_low``, ``ci_high`` (bootstrap CI of ``spearman_abs``), ``global_rank_correlation``
        (Spearman of the global importance), ``n``, ``n_boot``.
    method : str
        The attribution method that was checked.
    model_name : str
    threshold : float
        The check passes when the upper CI of ``spearman_abs`` after the last step is below it
        (the attributions changed once every layer was randomised).
    ci : float
        Coverage of the bootstrap interval.
    params : dict
        ``method``, ``threshold``, ``n_boot``, ``ci``, ``random_state`` and the ``attribute``
        keywords.

    Examples
    --------
    >>> import torch
    >>> from confoundry import as_model
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    >>> res = sanity_check(as_model(net, output="logits"), torch.randn(40, 5), n_boot=50,
    ...                    random_state=0, verbose=False)
    >>> res.method, res.table["layer"].tolist(), res.table.shape
    ('integrated_gradients', ['2', '0'], (2, 9))
    """

    table: pd.DataFrame
    method: str
    model_name: str
    threshold: float
    ci: float
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    @property
    def passed(self) -> bool:
        """True when attributions of the fully randomised model no longer resemble the
        originals (the upper CI of ``spearman_abs`` at the last step is below ``threshold``)."""
        last = self.table.iloc[-1]
        return bool(last["ci_high"] < self.threshold)

    def findings(self) -> list[Finding]:
        if self.passed:
            return []
        last = self.table.iloc[-1]
        return [Finding(
            "sanity_check_failed", "high", 9,
            f"{self.method} attributions barely change when every layer of {self.model_name} is "
            f"randomised (Spearman {last['spearman_abs']:.2f}, {self.ci:.0%} CI "
            f"{last['ci_low']:.2f} to {last['ci_high']:.2f}): they do not explain the model.",
            subject=self.method, model=self.model_name,
            evidence={"spearman_abs": last["spearman_abs"], "ci_low": last["ci_low"],
                      "ci_high": last["ci_high"], "threshold": self.threshold,
                      "n": last["n"], "n_boot": last["n_boot"]})]

    def plot(self, ax: Any = None) -> Any:
        """Similarity to the original attributions as layers are randomised (cascade)."""
        import matplotlib.pyplot as plt

        t = self.table
        if ax is None:
            _, ax = plt.subplots(figsize=(max(4, 0.6 * len(t) + 2), 3.5))
        x = np.arange(len(t))
        ax.plot(x, t["spearman_abs"], "o-", color="#4C72B0", label="Spearman |attribution|")
        ax.fill_between(x, t["ci_low"], t["ci_high"], color="#4C72B0", alpha=0.2)
        ax.plot(x, t["spearman"], "s--", color="#DD8452", label="Spearman (signed)")
        ax.axhline(self.threshold, color="#C44E52", lw=0.8, ls=":", label="threshold")
        ax.set_xticks(x, t["layer"], rotation=45, ha="right")
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("similarity to original")
        ax.set_xlabel("layers randomised (cumulative, from the output)")
        ax.set_title(f"sanity check: {self.method}")
        ax.legend(fontsize=8)
        return ax.figure


def _layers(module: Any) -> list[tuple[str, Any]]:
    return [(name or type(m).__name__, m) for name, m in module.named_modules()
            if len(list(m.children())) == 0 and any(True for _ in m.parameters(recurse=False))]


def _randomise(layer: Any) -> None:
    if hasattr(layer, "reset_parameters"):
        layer.reset_parameters()
        return
    with torch.no_grad():
        for p in layer.parameters(recurse=False):
            p.normal_(0.0, float(p.detach().std()) if p.numel() > 1 else 1.0)


def sanity_check(
    model: Any,
    X: Any,
    *,
    method: str | Callable[[Any, Any], Any] = "integrated_gradients",
    threshold: float = 0.5,
    n_boot: int = 200,
    ci: float = DEFAULT_CI,
    random_state: Any = None,
    verbose: bool = True,
    **attribute_kwargs: Any,
) -> SanityResult:
    """Model-parameter randomisation test: do the attributions depend on what the model learned?

    A *copy* of the torch model is randomised layer by layer, from the output towards the
    input (cascading: earlier randomisations are kept); after each step the attributions are
    recomputed and compared with the originals by the Spearman correlation of each sample's
    |attributions| (and signed attributions), averaged over samples, with a bootstrap CI. A
    faithful explanation changes as the model is destroyed; one whose similarity stays high
    (upper CI >= ``threshold`` after every layer is randomised) is flagged.

    Parameters
    ----------
    model : torch.nn.Module or ModelAdapter of one
        The user's model is not modified.
    X : DataFrame, ndarray, tensor or AuditData
        A modest sample (a few hundred rows is plenty).
    method : str or callable
        A method of :func:`attribute`, or a function ``(model, X) -> AttributionResult or array``
        (e.g. to test a custom explainer).
    threshold : float
        Similarity above which attributions are considered unchanged.
    n_boot, ci : bootstrap replicates and confidence level.
    random_state : None, int or Generator
    verbose : bool
        Show a progress bar over the randomised layers.
    **attribute_kwargs
        Passed to :func:`attribute` (e.g. ``n_steps``, ``baseline``).

    Returns
    -------
    SanityResult

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    >>> from confoundry import as_model
    >>> model = as_model(net, output="logits")
    >>> res = sanity_check(model, torch.randn(40, 5), n_boot=50, random_state=0, verbose=False)
    >>> list(res.to_frame()["layer"])
    ['2', '0']
    """
    data = ensure_data(X)
    adapter = adapter_for(model)
    if not adapter.is_torch:
        raise TypeError(f"sanity_check re-initialises layer weights, so it needs a torch.nn.Module;"
                        f" the model is a {adapter.kind} model ({type(adapter.model).__name__}).")
    threshold = float(threshold)
    if not -1 <= threshold <= 1:
        raise ValueError(f"threshold={threshold!r} is not valid; expected a number in [-1, 1].")
    n_boot = check_positive_int(n_boot, "n_boot")
    ci = check_probability(ci, "ci")
    rng = check_random_state(random_state)
    seed = int_seed(rng)
    attribute_kwargs.setdefault("random_state", seed)
    if isinstance(method, str):
        label = method

        def explain(m: Any) -> np.ndarray:
            return attribute(m, data, method=method, verbose=False, **attribute_kwargs).values
    elif callable(method):
        label = getattr(method, "__name__", "custom")

        def explain(m: Any) -> np.ndarray:
            out = method(m, data.X)
            return (out.values if isinstance(out, AttributionResult)
                    else np.asarray(out, np.float64))
    else:
        raise TypeError(f"method={describe(method)} is not valid; expected a method name or a "
                        "callable (model, X) -> attributions.")

    def wrap(module: Any) -> Any:
        return as_model(module, preprocess=adapter.preprocess, output=adapter.output,
                        batch_size=adapter.batch_size, task=adapter.task, name=adapter.name)

    original = explain(wrap(adapter.module)).reshape(data.n_samples, -1)
    clone = copy.deepcopy(adapter.module)
    layers = _layers(clone)[::-1]
    if not layers:
        raise ValueError("the model has no layers with parameters to randomise.")
    rows = []
    r_abs_orig = weighted_rank(np.abs(original))
    r_orig = weighted_rank(original)
    W_all = np.vstack(list(bootstrap_weights(data.n_samples, n_boot, random_state=rng)))
    with torch_seed(seed):
        for name, layer in progress(layers, desc="sanity check", verbose=verbose):
            _randomise(layer)
            with warnings.catch_warnings():  # completeness of a random net is not the question
                warnings.simplefilter("ignore", RuntimeWarning)
                new = explain(wrap(clone)).reshape(data.n_samples, -1)
            s_abs = rowwise_corr(r_abs_orig, weighted_rank(np.abs(new)))
            s = rowwise_corr(r_orig, weighted_rank(new))
            s_abs_f = np.nan_to_num(s_abs, nan=0.0)
            reps = W_all @ s_abs_f / data.n_samples
            lo, hi = percentile_ci(reps, ci)
            g = rowwise_corr(weighted_rank(np.abs(original).mean(axis=0))[None],
                             weighted_rank(np.abs(new).mean(axis=0))[None])[0]
            rows.append({"step": len(rows), "layer": name, "spearman": float(np.nanmean(s)),
                         "spearman_abs": float(s_abs_f.mean()), "ci_low": float(lo),
                         "ci_high": float(hi), "global_rank_correlation": float(g),
                         "n": data.n_samples, "n_boot": n_boot})
    params = {"method": label, "threshold": threshold, "n_boot": n_boot, "ci": ci,
              "random_state": seed_record(random_state),
              **{k: v for k, v in attribute_kwargs.items()  # settings, not arrays
                 if k != "random_state" and isinstance(v, (bool, int, float, str))}}
    return SanityResult(table=pd.DataFrame(rows), method=label, model_name=adapter.name,
                        threshold=threshold, ci=ci, params=params)
