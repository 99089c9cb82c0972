"""``Audit``: run the declared steps on one model, on data validated and scored once.

What runs is what :data:`confoundry.audit._steps.STEPS` says, in its order (see
:func:`confoundry.audit_steps`). The test and training data are validated once (one
``AuditData`` each), the model scores the test set once, every baseline scores it once, and the
metric panel of all models is bootstrapped once (:class:`~confoundry.audit._context.AuditContext`).
A step whose needs are not met is *skipped with a reason*; a step that raises is *failed with the
error* (type, message, last frame; a finding as severe as what its question costs, and the
question listed as unanswered in the verdict); neither stops the audit (unless
``strict=True``), and both are recorded in ``AuditResult.steps`` and shown in the report. With
``run(checkpoint_dir=...)`` every finished step is stored as it finishes and loaded, not
recomputed, by a re-run (:mod:`confoundry.audit._checkpoint`).
"""

from __future__ import annotations

import os
import time
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .._utils import check_random_state, torch_seed
from ..data import AuditData
from ..data._validation import check_positive_int, describe
from ..models import as_model
from . import _steps
from ._audit_result import AuditResult, StepStatus
from ._checkpoint import Checkpoint, data_fingerprint, scores_fingerprint
from ._context import AuditContext, AuditOptions
from ._door import check_audit_inputs
from ._findings import collect_findings
from ._repro import record, torch_settings
from ._runner import StepRunner, mark_interrupted
from ._tables import DataSummaryResult


def _check_folder(path: Any) -> str | None:
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"checkpoint_dir={path!r} is not valid; expected a folder path (str or "
                        "os.PathLike).")
    folder = os.path.abspath(os.fspath(path))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"checkpoint_dir={os.fspath(path)!r} is not valid; expected a folder, "
                         "not a file.")
    return folder


def _yields_labels(X: Any) -> bool:
    """Whether a torch Dataset / DataLoader given as X carries its own labels (x, y)."""
    from ..data._sources import DatasetSource, as_source, is_lazy_input

    if not is_lazy_input(X) or type(X).__module__.startswith("anndata"):
        return False
    src = as_source(X)
    return isinstance(src, DatasetSource) and src.has_labels


def _step_seed(base: int, step: str) -> int:
    """A seed per step that depends only on the audit's seed and the step's name."""
    ss = np.random.SeedSequence([base, zlib.crc32(step.encode())])
    return int(ss.generate_state(1)[0] % (2**31 - 1))


class Audit:
    """Audit a trained model: baselines, attributions, expectations, probes, domains, controls.

    Parameters
    ----------
    model : torch.nn.Module, scikit-learn style estimator or callable
        The trained model (anything :func:`confoundry.as_model` takes). Never modified.
    X_test, y_test : DataFrame / ndarray / tensor, array-like
        Held-out inputs and labels; every finding is measured on them (lazy inputs: below).
    metadata : DataFrame, optional
        Variables the model never saw (site, batch, scanner, care, ...), one row per test sample.
        Needed for the confounder probes and the domain splits.
    X_train, y_train : optional
        Training data, to fit the glass-box baselines on the same data and to run the
        overfitting and membership controls. Give both or neither.
    expectations : mapping of str to str, optional
        Domain knowledge such as ``{"asthma": "increasing"}``, checked against the model and every
        baseline.
    preprocess : callable, optional
        Maps a batch of X to the model's input (see :func:`confoundry.as_model`).
    layer : str or torch module, optional
        A layer whose activations the embedding probes examine.
    train_fn : callable, optional
        ``train_fn(X_train, y_train) -> model``; enables the retraining controls (label shuffle;
        leave-one-group-out when ``metadata_train`` is given).
    attribution_method : str
        ``"auto"`` (integrated gradients for torch models, SHAP permutation otherwise) or any
        method :func:`confoundry.attribute` accepts.
    random_state : int, numpy Generator or None
        Seeds every step (each step gets its own seed derived from this one, recorded in the
        report). ``None`` draws a seed and records it, so the audit can be repeated.
    verbose : bool
        Progress display.
    n_boot : int, keyword-only
        Bootstrap replicates for every confidence interval (default 1000).
    n_permutations : int, keyword-only
        Permutations for the probe tests (default 1000).
    max_attribution_rows : int or None, keyword-only
        Attributions, expectations, effect curves and the shadow glass-box use a random subsample
        of at most this many test rows; the report says so. ``None`` (the default): 1000, or
        fewer for image or sequence inputs read in batches, so that one float64 copy of the
        sample stays under :data:`~confoundry.audit.ATTRIBUTION_SAMPLE_BYTES` (48 MB: 384
        images of 1 x 128 x 128); an int is used as given.
    baseline_kinds : sequence of str, keyword-only
        Glass-box baselines to fit (default ``("ebm", "logistic", "tree")``).
    metadata_train : DataFrame, optional, keyword-only
        Metadata of the training rows, for leave-one-group-out.
    group_column : str, optional, keyword-only
        Column of ``metadata_train`` to hold out group by group (default: the first categorical).
    n_repeats : int, keyword-only
        Repeats of the label-shuffle control (default 5).
    model_name : str, optional, keyword-only
        Display name of the model.
    task : {"binary", "multiclass", "regression"}, optional, keyword-only
        Overrides the task inferred from ``y_test`` (e.g. an integer regression target 0..15,
        which is inferred multiclass).
    feature_kinds : mapping of str to {"continuous", "binary", "categorical"}, optional
        Overrides the inferred kind of the named features (test and training data).
    metadata_kinds : mapping of str to {"categorical", "continuous"}, optional
        Overrides the inferred kind of the named metadata columns, e.g.
        ``{"inst": "categorical"}`` for integer site codes with more than 10 levels.
    steps : sequence of str, optional, keyword-only
        Run only these steps (names, or entries of ``confoundry.audit.STEPS``); the others are
        recorded as skipped on request. :func:`confoundry.audit_steps` lists them with what
        each needs.
    strict : bool, keyword-only
        Re-raise the first exception a step raises (the original exception, with a note naming
        the step) instead of recording the step as failed and going on. Default False.
    max_ebm_features : int, keyword-only
        With more features than this (omics: thousands of genes), the EBM and tree baselines
        use the ``max_ebm_features`` features most associated with the label on the training
        data (univariate F-test), recorded in the tuning table; the penalised linear baseline
        uses every feature. Default 100.

    Notes
    -----
    Inputs read in batches (the Inputs page of the user guide): ``X_test`` / ``X_train`` may be a torch ``Dataset`` or
    ``DataLoader`` (``y_test=None``: labels from a dataset yielding ``(x, y)``), an AnnData
    (``y_test="obs column"``, ``metadata=["batch", ...]``), a scipy sparse matrix or an array
    on disk (``numpy.memmap``, ``h5py.Dataset``, ``zarr.Array``), or an
    :class:`~confoundry.AuditData` of one (e.g. built with ``layer=`` or ``obsm=``). They are
    read in batches, never copied whole; a step that cannot run on the input kind (glass-box
    baselines on images, say) is skipped with the reason.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    >>> y = (X["a"] + rng.normal(size=200) > 0).astype(int).to_numpy()
    >>> clf = LogisticRegression().fit(X, y)
    >>> res = Audit(clf, X, y, random_state=0, verbose=False, n_boot=50,
    ...             steps=["data", "performance"]).run()
    >>> res.steps["performance"].status, res.steps["probes"].label
    ('ran', 'skipped: not requested (steps=...)')
    """

    def __init__(
        self,
        model: Any,
        X_test: Any,
        y_test: Any = None,
        *,
        metadata: Any = None,
        X_train: Any = None,
        y_train: Any = None,
        expectations: Mapping[str, str] | None = None,
        preprocess: Callable[[Any], Any] | None = None,
        layer: Any = None,
        train_fn: Callable[[Any, Any], Any] | None = None,
        attribution_method: str = "auto",
        random_state: Any = None,
        verbose: bool = True,
        n_boot: int = 1000,
        n_permutations: int = 1000,
        max_attribution_rows: int | None = None,
        baseline_kinds: Sequence[str] = ("ebm", "logistic", "tree"),
        metadata_train: Any = None,
        group_column: str | None = None,
        n_repeats: int = 5,
        model_name: str | None = None,
        steps: Sequence[str] | None = None,
        task: str | None = None,
        feature_kinds: Mapping[str, str] | None = None,
        metadata_kinds: Mapping[str, str] | None = None,
        strict: bool = False,
        max_ebm_features: int = 100,
    ) -> None:
        if isinstance(X_test, AuditData) and y_test is None and metadata is None and (
                task is None or task == X_test.task):
            self.data = X_test  # validated already (e.g. an AnnData with layer= or obsm=)
        else:
            self.data = AuditData(X_test, y_test, metadata, task=task,
                                  feature_kinds=feature_kinds, metadata_kinds=metadata_kinds)
        if self.data.y is None:
            raise ValueError("y_test is None; expected the test labels (one per row of X_test; "
                             "an obs column name for an AnnData, or a Dataset yielding (x, y)).")
        if (X_train is None) != (y_train is None) and not isinstance(X_train, AuditData) and not (
                X_train is not None and _yields_labels(X_train)):
            given, missing = ("X_train", "y_train") if y_train is None else ("y_train", "X_train")
            raise ValueError(f"{given} was given but {missing} is None; expected both (to fit "
                             "the baselines and run the training controls) or neither.")
        self.train = None
        if X_train is not None:
            train_meta_kinds = None
            if metadata_kinds and metadata_train is not None:
                cols = {str(c) for c in getattr(metadata_train, "columns", ())}
                train_meta_kinds = {k: v for k, v in metadata_kinds.items() if str(k) in cols}
            self.train = (X_train if isinstance(X_train, AuditData) and y_train is None
                          and metadata_train is None else
                          AuditData(X_train, y_train, metadata_train, task=self.data.task,
                                    feature_kinds=feature_kinds,
                                    metadata_kinds=train_meta_kinds))
            if self.train.feature_names != self.data.feature_names:
                raise ValueError(
                    f"X_train's features {describe(self.train.feature_names)} differ from "
                    f"X_test's {describe(self.data.feature_names)}; expected the same columns in "
                    "the same order.")
            if self.data.is_tabular != self.train.is_tabular or (
                    not self.data.is_tabular
                    and self.data.X.shape[1:] != self.train.X.shape[1:]):
                raise ValueError(
                    f"X_train has sample shape {self.train.X.shape[1:]} but X_test has "
                    f"{self.data.X.shape[1:]}; expected the same.")
        elif metadata_train is not None:
            raise ValueError("metadata_train was given without X_train/y_train; expected the "
                             "training data too.")
        self.expectations = self._check_expectations(expectations)
        if train_fn is not None and not callable(train_fn):
            raise TypeError(f"train_fn={describe(train_fn)} is not callable; expected a function "
                            "train_fn(X_train, y_train) -> model.")
        if not isinstance(attribution_method, str) or not attribution_method:
            raise TypeError(f"attribution_method={attribution_method!r} is not valid; expected "
                            "'auto' or a method name such as 'integrated_gradients'.")
        check_random_state(random_state)  # validates the type now
        self.n_boot = check_positive_int(n_boot, "n_boot")
        self.n_permutations = check_positive_int(n_permutations, "n_permutations")
        self.auto_attribution_rows = max_attribution_rows is None
        self.max_attribution_rows = (1000 if max_attribution_rows is None else check_positive_int(
            max_attribution_rows, "max_attribution_rows", minimum=10))
        self.n_repeats = check_positive_int(n_repeats, "n_repeats")
        self.max_ebm_features = check_positive_int(max_ebm_features, "max_ebm_features")
        if isinstance(baseline_kinds, str):
            baseline_kinds = (baseline_kinds,)
        self.baseline_kinds = tuple(baseline_kinds)
        if steps is not None:
            steps = [steps] if isinstance(steps, (str, _steps.AuditStep)) else list(steps)
            steps = [st.name if isinstance(st, _steps.AuditStep) else st for st in steps]
            names = _steps.step_names()
            bad = [s for s in steps if s not in names]
            if bad:
                raise ValueError(f"steps={describe(steps)} has unknown step(s) {bad}; expected names "
                                 f"from {names} (see confoundry.audit_steps()).")
        self.only_steps = None if steps is None else tuple(steps)
        if group_column is not None and (
                self.train is None or self.train.metadata is None
                or group_column not in self.train.metadata.columns):
            raise ValueError(f"group_column={group_column!r} is not a column of metadata_train; "
                             "expected one of its columns.")
        self.group_column = group_column
        self.model = model
        if model_name is not None:
            self.name = str(model_name)
        else:  # a ModelAdapter carries the user's name for the model
            from ..models import ModelAdapter

            self.name = (str(model.name) if isinstance(model, ModelAdapter) and model.name
                         else type(model).__name__)
        self.adapter = as_model(model, preprocess=preprocess, task=self.data.task, name=self.name)
        self.preprocess = preprocess
        self.layer = layer
        self.train_fn = train_fn
        self.attribution_method = attribution_method
        self.random_state = random_state
        self.verbose = bool(verbose)
        if not isinstance(strict, (bool, np.bool_)):
            raise TypeError(f"strict={strict!r} is not valid; expected True or False.")
        self.strict = bool(strict)
        check_audit_inputs(self)  # what needs the data and the model together (audit/_door.py)

    @property
    def options(self) -> AuditOptions:
        """The knobs the steps read (built from this audit's validated attributes)."""
        return AuditOptions(
            n_boot=self.n_boot, n_permutations=self.n_permutations,
            max_attribution_rows=self.max_attribution_rows, baseline_kinds=self.baseline_kinds,
            attribution_method=self.attribution_method, expectations=dict(self.expectations),
            layer=self.layer, train_fn=self.train_fn, group_column=self.group_column,
            n_repeats=self.n_repeats, verbose=self.verbose,
            max_ebm_features=self.max_ebm_features,
            auto_attribution_rows=self.auto_attribution_rows)

    # ------------------------------------------------------------ validation
    def _check_expectations(self, expectations: Any) -> dict[str, str]:
        if expectations is None:
            return {}
        if not isinstance(expectations, Mapping):
            raise TypeError(f"expectations={describe(expectations)} is not a mapping; expected a "
                            "dict such as {'asthma': 'increasing'}.")
        out = {}
        for feat, direction in expectations.items():
            if str(feat) not in self.data.feature_names:
                raise ValueError(f"expectations names {feat!r}, which is not a feature of X_test; "
                                 f"expected one of {describe(self.data.feature_names)}.")
            if not isinstance(direction, str):
                raise TypeError(f"expectations[{feat!r}]={direction!r} is not a string; expected "
                                "e.g. 'increasing' or 'decreasing'.")
            out[str(feat)] = direction
        return out

    # ------------------------------------------------------------------ run
    def run(self, *, checkpoint_dir: Any = None) -> AuditResult:
        """Run the declared steps and return an :class:`AuditResult`.

        The test set is validated and scored once, and so is every baseline; the metric panel
        is bootstrapped once; each step gets them explicitly. Torch's deterministic algorithms
        are requested for the duration of the run (and the previous setting restored); torch's
        global RNG is forked, so the user's RNG state is untouched.

        Parameters
        ----------
        checkpoint_dir : str or path-like, optional
            A folder (created if missing) where each step's result is stored as soon as it
            finishes (JSON and numpy arrays, no pickle), keyed by the data, the model, the seed
            and the options the step read. A re-run with the same folder loads every step
            whose key still matches instead of recomputing it (``"ran (from checkpoint)"``);
            a changed input or option recomputes only the steps that read it and the steps
            that used those. With ``random_state=None`` the seed drawn by the first run is
            kept in the folder and reused. A ``KeyboardInterrupt`` then returns the finished
            steps, the others marked ``"interrupted"`` (without a folder it propagates).

        Examples
        --------
        >>> import tempfile, numpy as np
        >>> from sklearn.linear_model import LogisticRegression
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(120, 2)); y = (X[:, 0] > 0).astype(int)
        >>> audit = Audit(LogisticRegression().fit(X, y), X, y, random_state=0, verbose=False,
        ...               n_boot=20, steps=["data", "performance"])
        >>> folder = tempfile.mkdtemp()
        >>> first, again = audit.run(checkpoint_dir=folder), audit.run(checkpoint_dir=folder)
        >>> first.steps["performance"].label, again.steps["performance"].label
        ('ran', 'ran (from checkpoint)')
        """
        folder = _check_folder(checkpoint_dir)
        rs = self.random_state
        reused = None
        if isinstance(rs, (int, np.integer)):
            base = int(rs)
        elif rs is None:
            reused = None if folder is None else Checkpoint.stored_seed(folder)
            base = reused if reused is not None else int(
                np.random.SeedSequence().entropy % (2**31 - 1))
        else:
            base = int(check_random_state(rs).integers(0, 2**31 - 1))
        steps = _steps.STEPS  # read at run time: the list is the single source of truth
        seeds = {st.name: _step_seed(base, st.name) for st in steps}
        statuses: dict[str, StepStatus] = {}
        ctx: AuditContext | None = None
        import torch

        prev = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())
        try:
            torch.use_deterministic_algorithms(True, warn_only=True)
            settings = torch_settings()
            with torch_seed(base):
                try:
                    ctx = self._context(seeds)
                except KeyboardInterrupt:
                    if folder is None:
                        raise
                    mark_interrupted(steps, statuses, started=False)
                if ctx is not None:
                    ckpt = None
                    if folder is not None:
                        ckpt = Checkpoint(folder, base_seed=base, inputs=self._inputs(ctx))
                        if rs is None:
                            ckpt.store_seed()
                            if reused is not None:
                                ctx.notes.append(
                                    f"random_state=None: the base seed {base} drawn by the "
                                    "first run into checkpoint_dir was reused, so the run "
                                    "resumes instead of starting over.")
                    runner = StepRunner(only_steps=self.only_steps, strict=self.strict,
                                        checkpoint=ckpt, verbose=self.verbose)
                    runner.run_all(ctx, steps, statuses)
        finally:
            torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        results = {} if ctx is None else dict(ctx.results)
        notes = () if ctx is None else tuple(dict.fromkeys(ctx.notes))
        findings = collect_findings(results, statuses, self.name,
                                    tips={st.name: st.tip for st in steps})
        repro = record(base_seed=base, step_seeds=seeds, data=self.data, train=self.train,
                       model=self.model, random_state=rs, settings=settings)
        if folder is not None:
            repro["checkpoint_dir"] = folder
        data_res = results.get("data")
        data_info = dict(data_res.overview) if isinstance(data_res, DataSummaryResult) else {}
        return AuditResult(
            steps=dict(statuses), results=results, model_name=self.name,
            task=str(self.data.task), data=data_info, reproducibility=repro,
            options=self._options(ctx), notes=notes, findings_=tuple(findings),
            layout=_steps.layout(steps))

    def _inputs(self, ctx: AuditContext) -> dict[str, Any]:
        """Fingerprints of what a step may read (the checkpoint's keys)."""
        return {"data": data_fingerprint(self.data), "train": data_fingerprint(self.train),
                "model": scores_fingerprint(self.model, ctx.scores, self.preprocess),
                "model_name": ctx.model_name}

    def _context(self, seeds: Mapping[str, int]) -> AuditContext:
        d = self.data
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:  # into the notes, not the console
            warnings.simplefilter("always")
            # the one forward pass over the test set (a lazy input: batch by batch)
            scores = self.adapter.predict_scores(d.X, verbose=None if self.verbose else False)
        ctx = AuditContext(data=d, train=self.train, adapter=self.adapter,
                           model_name=self._dl_name(), scores=np.asarray(scores),
                           seeds=seeds, options=self.options)
        ctx.info["score_seconds"] = time.perf_counter() - t0
        for msg in sorted({f"{w.category.__name__}: {w.message}".splitlines()[0][:300]
                           for w in caught}):
            ctx.notes.append(f"Warning while the model scored the test set: {msg}")
        return ctx

    def _options(self, ctx: AuditContext | None) -> dict[str, Any]:
        o = self.options
        info = {} if ctx is None else ctx.info
        return {
            "attribution_method": info.get("attribution_method", o.attribution_method),
            "n_boot": o.n_boot, "n_permutations": o.n_permutations,
            "max_attribution_rows": o.max_attribution_rows,
            "baseline_kinds": list(o.baseline_kinds), "expectations": dict(o.expectations),
            "layer": None if o.layer is None else str(o.layer) if isinstance(o.layer, str)
            else type(o.layer).__name__,
            "train_fn": None if o.train_fn is None else getattr(o.train_fn, "__name__",
                                                                type(o.train_fn).__name__),
            "preprocess": None if self.preprocess is None else getattr(
                self.preprocess, "__name__", type(self.preprocess).__name__),
            "steps": list(self.only_steps) if self.only_steps else "all",
            "strict": self.strict,
        }

    def _dl_name(self) -> str:
        name = self.name
        taken = set(self.baseline_kinds)
        if taken & {"linear", "logistic"}:  # the linear baseline is "linear" for a regression
            taken |= {"linear", "logistic"}
        return f"{name} (DL)" if name in taken else name
