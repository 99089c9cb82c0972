"""``AuditContext``: what every step of one audit shares, computed once.

The test and training data are validated once (one :class:`~confoundry.AuditData` each); the
audited model scores the test set once; every baseline scores the test (and training) set once;
the metric panel of all models is bootstrapped once. Steps read these from the context and hand
them to the step functions explicitly (``scores=``, ``baseline_scores=``, ``overall=``,
``panel=``), so nothing is recomputed and nothing is cached behind a step function's back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import AuditData
from ..data._sources import map_rows
from ..stats import HEADLINE_METRIC, MetricPanel, bootstrap_panel


class Skip(Exception):
    """Raised inside a step to skip it with a reason (recorded, shown in the report)."""


#: context attributes whose reads make a step depend on an input (the checkpoint's keys).
TRACKED_INPUTS = {"data": "data", "train": "train", "adapter": "model", "scores": "model",
                  "model_name": "model_name"}
#: options that never change a result (left out of the checkpoint's keys).
UNTRACKED_OPTIONS = frozenset({"verbose"})


class _OptionsView:
    """``ctx.options`` while a step runs: reads through, recording every option it reads."""

    __slots__ = ("_options", "_reads")

    def __init__(self, options: Any, reads: set[str]) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_reads", reads)

    def __getattr__(self, name: str) -> Any:
        value = getattr(object.__getattribute__(self, "_options"), name)
        if name not in UNTRACKED_OPTIONS:
            object.__getattribute__(self, "_reads").add(f"option:{name}")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the audit's options are read-only inside a step")


class TrackedDict(dict):
    """A dict whose reads are recorded as ``"<prefix>:<key>"`` by the running step: the
    results of the steps so far (``step:``) and ``ctx.info`` (``info:``)."""

    def __init__(self, reads: list[set[str]], prefix: str) -> None:
        super().__init__()
        self._reads = reads
        self._prefix = prefix

    def _note(self, key: Any) -> None:
        if self._reads:
            self._reads[-1].add(f"{self._prefix}:{key}")

    def __getitem__(self, key: Any) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._note(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._note(key)
        return super().__contains__(key)


#: with ``max_attribution_rows=None``, the attribution sample of image or sequence rows read in
#: batches holds at most this many bytes as float64 (the attributions, the randomised copies of
#: the sanity check and Captum's buffers each hold a few such copies).
ATTRIBUTION_SAMPLE_BYTES = 48 * 2**20


@dataclass
class AuditOptions:
    """The knobs of one audit, validated by :class:`~confoundry.Audit`."""

    n_boot: int = 1000
    n_permutations: int = 1000
    max_attribution_rows: int = 1000
    #: max_attribution_rows was not given: lowered for large rows read in batches
    auto_attribution_rows: bool = False
    baseline_kinds: tuple[str, ...] = ("ebm", "logistic", "tree")
    attribution_method: str = "auto"
    expectations: Mapping[str, str] = field(default_factory=dict)
    layer: Any = None
    train_fn: Any = None
    group_column: str | None = None
    n_repeats: int = 5
    verbose: bool = True
    max_ebm_features: int = 100


@dataclass
class AuditContext:
    """Shared state of one ``Audit.run()``; lazily computed values are computed once.

    Attributes
    ----------
    data, train : AuditData (train may be None)
    adapter : ModelAdapter of the audited model
    model_name : str
        The audited model's display name in every table ("<name> (DL)" if it clashes with a
        baseline's name).
    scores : ndarray
        The audited model's test scores (the one forward pass over the test set).
    seeds : dict of step name -> int
    options : AuditOptions
    results : dict of step name -> result (filled as steps run)
    notes : list of str
        What the audit did that a reader must know.

    While a step runs (inside :meth:`recording`) the context records what it reads: the
    inputs (``data``, ``train``, the model), the options and the results of earlier steps,
    including through the values computed once (the panel reads the baselines). These reads
    key the step's checkpoint, so that a changed option or input invalidates exactly the steps
    that read it (and the steps that read those).

    Examples
    --------
    >>> import numpy as np
    >>> from confoundry.data import AuditData
    >>> d = AuditData(np.zeros((4, 2)), [0, 1, 0, 1])
    >>> ctx = AuditContext(d, None, None, "m", np.zeros(4), {}, AuditOptions())
    >>> with ctx.recording() as reads:
    ...     _ = ctx.options.n_boot, ctx.data, ctx.results.get("baselines")
    >>> sorted(reads)
    ['input:data', 'option:n_boot', 'step:baselines']
    """

    data: AuditData
    train: AuditData | None
    adapter: Any
    model_name: str
    scores: np.ndarray
    seeds: Mapping[str, int]
    options: AuditOptions
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _cache_reads: dict[str, set[str]] = field(default_factory=dict, repr=False)
    _reads: list[set[str]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        results, info = TrackedDict(self._reads, "step"), TrackedDict(self._reads, "info")
        results.update(self.results)
        info.update(self.info)
        self.results, self.info = results, info

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if name == "options" or name in TRACKED_INPUTS:
            reads = object.__getattribute__(self, "_reads")
            if reads:
                if name == "options":
                    return _OptionsView(value, reads[-1])
                reads[-1].add(f"input:{TRACKED_INPUTS[name]}")
        return value

    @contextmanager
    def recording(self) -> Iterator[set[str]]:
        """Record what the code inside reads (inputs, options, earlier results) in a set."""
        reads: set[str] = set()
        self._reads.append(reads)
        try:
            yield reads
        finally:
            self._reads.pop()

    # ---------------------------------------------------------------- results
    def note(self, text: str) -> None:
        """Add a note for the reader once (a step may say the same thing for every class)."""
        if text not in self.notes:
            self.notes.append(text)

    def result(self, step: str, why: str, statuses: Mapping[str, Any]) -> Any:
        """The result of an earlier step, or :class:`Skip` saying why it is missing."""
        if step not in self.results:
            st = statuses.get(step)
            label = st.label if st is not None else "not run"
            raise Skip(f"{why} (step '{step}' {label})")
        return self.results[step]

    @property
    def baselines(self) -> Any:
        """The fitted baselines (``BaselinesResult``) without the degenerate ones (constant
        scores: :attr:`BaselinesResult.degenerate`), or None when that step did not run."""
        base = self.results.get("baselines")
        usable = getattr(base, "usable", None)
        return usable() if callable(usable) else base

    @property
    def headline_metric(self) -> str:
        return HEADLINE_METRIC[str(self.data.task)]

    # ------------------------------------------------------------ computed once
    def _once(self, key: str, fn: Any) -> Any:
        if key not in self._cache:
            with self.recording() as reads:
                value = fn()
            self._cache[key], self._cache_reads[key] = value, reads
        if self._reads:  # whoever reads a value computed once depends on what it read
            self._reads[-1].update(self._cache_reads[key])
        return self._cache[key]

    @property
    def baseline_scores(self) -> dict[str, np.ndarray]:
        """Every baseline's test scores (computed once, on first use)."""
        base = self.baselines
        if base is None:
            return {}
        return self._once("baseline_scores", lambda: {  # a lazy input: batch by batch
            str(k): np.asarray(map_rows(m.predict_scores, self.data), dtype=np.float64)
            for k, m in base.items()})

    @property
    def train_scores(self) -> np.ndarray:
        """The audited model's training-set scores (computed once, on first use)."""
        if self.train is None:
            raise Skip("needs training data (X_train= and y_train=)")
        return self._once("train_scores", lambda: np.asarray(
            self.adapter.predict_scores(self.train.X, verbose=None if self.options.verbose
                                        else False), dtype=np.float64))

    @property
    def baseline_train_scores(self) -> dict[str, np.ndarray]:
        base = self.baselines
        if base is None or self.train is None:
            return {}
        return self._once("baseline_train_scores", lambda: {
            str(k): np.asarray(map_rows(m.predict_scores, self.train), dtype=np.float64)
            for k, m in base.items()})

    @property
    def all_scores(self) -> dict[str, np.ndarray]:
        """The audited model's and every baseline's test scores, the audited model first."""
        return {self.model_name: self.scores, **self.baseline_scores}

    @property
    def panel(self) -> MetricPanel:
        """The metric panel of every model, bootstrapped once on shared replicates.

        The performance table, the model comparison and the overall row of every domain table
        are views of it, so they agree to the last digit.
        """
        return self._once("panel", lambda: bootstrap_panel(
            self.data.y, self.all_scores, task=str(self.data.task),
            n_boot=self.options.n_boot, random_state=self.seeds["performance"],
            reference=self.model_name))

    @property
    def sub_idx(self) -> np.ndarray:
        """Rows of the attribution subsample (sorted; at most ``max_attribution_rows``)."""
        def draw() -> np.ndarray:
            n, m = self.data.n_samples, self.options.max_attribution_rows
            why = f"max_attribution_rows={m}"
            src = self.data.source
            if (self.options.auto_attribution_rows and src is not None
                    and not self.data.is_tabular):
                cap = max(10, ATTRIBUTION_SAMPLE_BYTES // (8 * max(src.row_size, 1)))
                if cap < min(m, n):
                    m = cap
                    why = (f"rows of {src.row_size} values read in batches: at most "
                           f"{ATTRIBUTION_SAMPLE_BYTES // 2**20} MB per float64 copy of the "
                           "sample; pass max_attribution_rows= for more")
            if n <= m:
                return np.arange(n)
            rng = np.random.default_rng(self.seeds["attributions"])
            self.notes.append(
                f"Attributions, expectations and effect curves use a random subsample of {m} "
                f"of the {n} test rows ({why}).")
            return np.sort(rng.choice(n, size=m, replace=False))

        return self._once("sub_idx", draw)

    @property
    def data_sub(self) -> AuditData:
        """The attribution subsample as a view of the test data (no copy of the validation)."""
        return self._once("data_sub", lambda: self.data.subset(self.sub_idx))
