"""``Audit``: run every available step on one model, share its predictions, collect findings.

Steps are looked up on the ``confoundry`` package at run time (``hasattr(confoundry, name)``),
so each capability joins the audit as soon as its module is installed. A step whose inputs or
function are missing is *skipped with a reason*; a step that raises is *failed with the error*;
neither stops the audit, and both are recorded in ``AuditResult.steps`` and shown in the report.
"""

from __future__ import annotations

import inspect
import time
import traceback
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._utils import check_random_state, progress, torch_seed
from ..data import AuditData
from ..data._validation import check_positive_int, describe
from ..models import as_model
from ._audit_result import AuditResult, StepStatus
from ._findings import collect_findings
from ._repro import record, torch_settings
from ._tables import DataSummary, MetricTable

#: every step, in the order it runs.
STEPS = (
    "data", "performance", "baselines", "comparison", "attributions", "agreement",
    "expectations", "effect_curves", "shadow_glassbox", "sanity_check", "probes", "domains",
    "slices", "error_contrast", "overfitting", "label_shuffle", "leave_one_group_out",
    "membership",
)
ATTRIBUTION_AUTO = {"torch": "integrated_gradients", "other": "shap_permutation"}
MAX_EFFECT_CURVES = 6
MAX_DOMAIN_SPLITS = 8
SANITY_ROWS = 200
SHADOW_ROWS = 20_000


class _Skip(Exception):
    """Raised inside a step to skip it with a reason."""


class _CachedScorer:
    """Returns the model's cached test scores for the test inputs, and delegates otherwise.

    Wrapped by ``as_model`` (kind "scorer", one batch) so that steps which only need predictions
    reuse the scores computed once by the audit instead of running the model again.
    """

    def __init__(self, adapter: Any, X_test: Any, scores: np.ndarray) -> None:
        self.adapter = adapter
        self._key = np.ascontiguousarray(_as_array(X_test))
        self._scores = scores
        self.hits = 0

    def predict_scores(self, X: Any) -> np.ndarray:
        arr = _as_array(X)
        if arr is not None and arr.shape == self._key.shape and np.array_equal(arr, self._key):
            self.hits += 1
            return self._scores.copy()
        return self.adapter.predict_scores(X)


def _as_array(X: Any) -> np.ndarray | None:
    try:
        from .._utils import to_numpy

        arr = to_numpy(X.X if isinstance(X, AuditData) else X)
        return arr if arr.dtype.kind in "biuf" else None
    except Exception:
        return None


def _accepts(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _call(fn: Callable, *args: Any, optional: Mapping[str, Any] | None = None,
          **required: Any) -> Any:
    """Call ``fn`` with ``required`` keywords and those ``optional`` ones its signature has."""
    kwargs = dict(required)
    for k, v in (optional or {}).items():
        if _accepts(fn, k):
            kwargs[k] = v
    return fn(*args, **kwargs)


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
        Held-out inputs and labels; every finding is measured on them.
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
    max_attribution_rows : int, keyword-only
        Attributions, expectations, effect curves and the shadow glass-box use a random subsample
        of at most this many test rows (default 1000); the report says so.
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
    steps : sequence of str, optional, keyword-only
        Run only these steps (the others are recorded as skipped on request).

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
        y_test: Any,
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
        max_attribution_rows: int = 1000,
        baseline_kinds: Sequence[str] = ("ebm", "logistic", "tree"),
        metadata_train: Any = None,
        group_column: str | None = None,
        n_repeats: int = 5,
        model_name: str | None = None,
        steps: Sequence[str] | None = None,
    ) -> None:
        if y_test is None:
            raise ValueError("y_test is None; expected the test labels (one per row of X_test).")
        self.data = AuditData(X_test, y_test, metadata)
        if (X_train is None) != (y_train is None):
            given, missing = ("X_train", "y_train") if y_train is None else ("y_train", "X_train")
            raise ValueError(f"{given} was given but {missing} is None; expected both (to fit "
                             "the baselines and run the training controls) or neither.")
        self.train = None
        if X_train is not None:
            self.train = AuditData(X_train, y_train, metadata_train, task=self.data.task)
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
        self.max_attribution_rows = check_positive_int(max_attribution_rows,
                                                       "max_attribution_rows", minimum=10)
        self.n_repeats = check_positive_int(n_repeats, "n_repeats")
        if isinstance(baseline_kinds, str):
            baseline_kinds = (baseline_kinds,)
        self.baseline_kinds = tuple(baseline_kinds)
        if steps is not None:
            steps = [steps] if isinstance(steps, str) else list(steps)
            bad = [s for s in steps if s not in STEPS]
            if bad:
                raise ValueError(f"steps={steps!r} has unknown step(s) {bad}; expected names "
                                 f"from {STEPS}.")
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
        self._raw = {"X_test": X_test, "y_test": y_test, "X_train": X_train, "y_train": y_train}

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
    def run(self) -> AuditResult:
        """Run every available step and return an :class:`AuditResult`.

        The model's test predictions are computed once and shared with every step that accepts
        them. Torch's deterministic algorithms are requested for the duration of the run (and
        the previous setting restored); torch's global RNG is forked, so the user's RNG state is
        untouched.
        """
        rs = self.random_state
        if isinstance(rs, (int, np.integer)):
            base = int(rs)
        elif rs is None:
            base = int(np.random.SeedSequence().entropy % (2**31 - 1))
        else:
            base = int(check_random_state(rs).integers(0, 2**31 - 1))
        self._seeds = {s: _step_seed(base, s) for s in STEPS}
        self._results: dict[str, Any] = {}
        self._steps: dict[str, StepStatus] = {}
        self._notes: list[str] = []
        self._ctx: dict[str, Any] = {}
        import torch

        prev = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())
        try:
            torch.use_deterministic_algorithms(True, warn_only=True)
            settings = torch_settings()
            with torch_seed(base):
                self._run_steps()
        finally:
            torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        findings = collect_findings(self._results, self._steps, self.name)
        repro = record(base_seed=base, step_seeds=self._seeds, data=self.data, train=self.train,
                       model=self.model, random_state=rs, settings=settings)
        data_res = self._results.get("data")
        data_info = dict(data_res.overview) if isinstance(data_res, DataSummary) else {}
        return AuditResult(
            steps=dict(self._steps), results=dict(self._results), model_name=self.name,
            task=str(self.data.task), data=data_info, reproducibility=repro,
            options=self._options(), notes=tuple(self._notes), findings_=tuple(findings))

    def _options(self) -> dict[str, Any]:
        return {
            "attribution_method": self._ctx.get("method", self.attribution_method),
            "n_boot": self.n_boot, "n_permutations": self.n_permutations,
            "max_attribution_rows": self.max_attribution_rows,
            "baseline_kinds": list(self.baseline_kinds), "expectations": dict(self.expectations),
            "layer": None if self.layer is None else str(self.layer) if isinstance(self.layer, str)
            else type(self.layer).__name__,
            "train_fn": None if self.train_fn is None else getattr(self.train_fn, "__name__",
                                                                   type(self.train_fn).__name__),
            "preprocess": None if self.preprocess is None else getattr(
                self.preprocess, "__name__", type(self.preprocess).__name__),
            "steps": list(self.only_steps) if self.only_steps else "all",
        }

    def _run_steps(self) -> None:
        d = self.data
        t0 = time.perf_counter()
        scores = self.adapter.predict_scores(d.X)  # the one forward pass over the test set
        self._ctx["scores"] = scores
        self._ctx["score_seconds"] = time.perf_counter() - t0
        out = "values" if d.task == "regression" else "probabilities"
        self._ctx["cached"] = as_model(_CachedScorer(self.adapter, d.X, scores), output=out,
                                       task=d.task, name=self.name, batch_size=2**31 - 1)
        bar = progress(total=len(STEPS), desc="audit", verbose=self.verbose)
        try:
            for name in STEPS:
                bar.set_description(f"audit: {name}")
                self._run_one(name)
                bar.update(1)
        finally:
            bar.close()

    def _run_one(self, name: str) -> None:
        t0 = time.perf_counter()
        if self.only_steps is not None and name not in self.only_steps:
            self._steps[name] = StepStatus(name, "skipped", "not requested (steps=...)")
            return
        status: StepStatus
        res: Any = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = getattr(self, f"_step_{name}")()
                status = StepStatus(name, "ran")
            except _Skip as why:
                status = StepStatus(name, "skipped", str(why))
            except Exception as exc:
                tb = traceback.format_exc(limit=6).strip().splitlines()[-12:]
                msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
                status = StepStatus(name, "failed", msg, detail="\n".join(tb))
        msgs = tuple(sorted({f"{w.category.__name__}: {w.message}".splitlines()[0][:300]
                             for w in caught}))
        self._steps[name] = StepStatus(name, status.status, status.reason,
                                       time.perf_counter() - t0, status.detail, msgs)
        if status.status == "ran":
            self._results[name] = res

    # ---------------------------------------------------------------- helpers
    def _call(self, fn: Callable, *args: Any, optional: Mapping[str, Any] | None = None,
              **required: Any) -> Any:
        """``_call`` with ``verbose`` passed to every step function that takes it."""
        opt = {"verbose": self.verbose, **(optional or {})}
        return _call(fn, *args, optional=opt, **required)

    @staticmethod
    def _fn(name: str) -> Callable:
        import confoundry

        fn = getattr(confoundry, name, None)
        if fn is None:
            raise _Skip(f"confoundry.{name} is not available in this installation")
        return fn

    def _need_train(self, what: str) -> None:
        if self.train is None:
            raise _Skip(f"{what} needs training data (X_train= and y_train=)")

    def _need_tabular(self, what: str) -> None:
        if not self.data.is_tabular:
            raise _Skip(f"{what} needs tabular inputs (X_test has shape {self.data.X.shape})")

    def _result_of(self, step: str, why: str) -> Any:
        if step not in self._results:
            st = self._steps.get(step)
            label = st.label if st is not None else "not run"
            raise _Skip(f"{why} (step '{step}' {label})")
        return self._results[step]

    def _subsample(self) -> np.ndarray:
        if "sub_idx" not in self._ctx:
            n = self.data.n_samples
            m = self.max_attribution_rows
            if n > m:
                rng = np.random.default_rng(self._seeds["attributions"])
                idx = np.sort(rng.choice(n, size=m, replace=False))
                self._notes.append(
                    f"Attributions, expectations and effect curves use a "
                    f"random subsample of {m} of the {n} test rows (max_attribution_rows={m}).")
            else:
                idx = np.arange(n)
            self._ctx["sub_idx"] = idx
        return self._ctx["sub_idx"]

    def _X_sub(self) -> Any:
        X = self.data.X
        idx = self._subsample()
        return X.iloc[idx] if isinstance(X, pd.DataFrame) else X[idx]

    def _models(self) -> dict[str, Any]:
        """The DL model (as its cached adapter) and every fitted baseline, by display name."""
        models = {self._dl_name(): self._ctx["cached"]}
        base = self._results.get("baselines")
        if base is not None:
            for k, v in base.items():
                models[str(k)] = v
        return models

    def _dl_name(self) -> str:
        name = self.name
        return f"{name} (DL)" if name in self.baseline_kinds else name

    # ------------------------------------------------------------------ steps
    def _step_data(self) -> Any:
        return DataSummary.compute(self.data, self.train)

    def _step_performance(self) -> Any:
        return MetricTable.compute(self.data.y, self._ctx["scores"], task=self.data.task,
                                   model_name=self._dl_name(), n_boot=self.n_boot,
                                   random_state=self._seeds["performance"])

    def _step_baselines(self) -> Any:
        fn = self._fn("fit_baselines")
        self._need_train("fitting the glass-box baselines")
        self._need_tabular("fitting the glass-box baselines")
        if not self.baseline_kinds:
            raise _Skip("baseline_kinds is empty")
        return self._call(fn, self.train.X, self.train.y, kinds=self.baseline_kinds,
                     optional={"random_state": self._seeds["baselines"]})

    def _step_comparison(self) -> Any:
        fn = self._fn("compare_models")
        self._result_of("baselines", "no baselines to compare the model with")
        return self._call(fn, self._models(), self.data.X, self.data.y,
                     optional={"n_boot": self.n_boot, "random_state": self._seeds["comparison"]})

    def _step_attributions(self) -> Any:
        fn = self._fn("attribute")
        method = self.attribution_method
        if method == "auto":
            method = ATTRIBUTION_AUTO["torch" if self.adapter.is_torch else "other"]
        self._ctx["method"] = method
        X_sub = self._X_sub()
        out = {self._dl_name(): self._call(fn, self.adapter, X_sub, method=method, optional={
            "random_state": self._seeds["attributions"], "verbose": self.verbose})}
        base = self._results.get("baselines")
        if base is not None:
            for k, m in base.items():
                if hasattr(m, "explain"):
                    try:
                        out[str(k)] = m.explain(X_sub)
                    except Exception as exc:
                        self._notes.append(f"The native explanation of baseline '{k}' failed: "
                                           f"{type(exc).__name__}: {exc}")
        return out

    def _step_agreement(self) -> Any:
        fn = self._fn("compare_attributions")
        attrs = self._result_of("attributions", "no attributions to compare")
        dl = attrs[self._dl_name()]
        others = {k: v for k, v in attrs.items() if k != self._dl_name()}
        if not others:
            raise _Skip("no glass-box explanation to compare with (needs the baselines)")
        k_top = max(1, min(5, len(dl.feature_names) - 1))
        return {f"{self._dl_name()} vs {k}": self._call(fn, dl, v, optional={
            "k": k_top, "n_boot": self.n_boot, "random_state": self._seeds["agreement"]})
            for k, v in others.items()}

    def _step_expectations(self) -> Any:
        fn = self._fn("check_expectations")
        if not self.expectations:
            raise _Skip("no expectations were given (expectations={'feature': 'increasing'})")
        self._need_tabular("checking expectations")
        models = self._models()
        models[self._dl_name()] = self.adapter
        return self._call(fn, models, self._X_sub(), self.expectations, optional={
            "n_boot": self.n_boot, "random_state": self._seeds["expectations"]})

    def _step_effect_curves(self) -> Any:
        fn = self._fn("effect_curve")
        self._need_tabular("effect curves")
        feats = list(self.expectations)
        attrs = self._results.get("attributions")
        if attrs is not None:
            imp = attrs[self._dl_name()].global_importance()
            feats += [f for f in imp.index[:3] if f not in feats]
        if not feats:
            raise _Skip("no feature to show: no expectations and no attributions")
        base = self._results.get("baselines")
        out = {}
        for f in feats[:MAX_EFFECT_CURVES]:
            out[f] = self._call(fn, self.adapter, self._X_sub(), f, optional={
                "baselines": base, "random_state": self._seeds["effect_curves"]})
        return out

    def _step_shadow_glassbox(self) -> Any:
        fn = self._fn("shadow_glassbox")
        self._need_tabular("the shadow glass-box")
        # the shadow EBM is cheap (no interactions, 2 bags): fit it on up to SHADOW_ROWS test
        # rows, not the attribution subsample; "what the data say" is the tuned baseline EBM,
        # fitted on the training data, when there is one
        n = self.data.n_samples
        idx = np.arange(n)
        if n > SHADOW_ROWS:
            rng = np.random.default_rng(self._seeds["shadow_glassbox"])
            idx = np.sort(rng.choice(n, size=SHADOW_ROWS, replace=False))
        X = self.data.X
        X = X.iloc[idx] if isinstance(X, pd.DataFrame) else X[idx]
        opt: dict[str, Any] = {"y": self.data.y[idx],
                               "random_state": self._seeds["shadow_glassbox"]}
        base = self._results.get("baselines")
        if base is not None and "ebm" in base:
            opt["reference"] = base["ebm"]
        return self._call(fn, self._ctx["cached"], X, optional=opt)

    def _step_sanity_check(self) -> Any:
        fn = self._fn("sanity_check")
        if not self.adapter.is_torch:
            raise _Skip("the parameter-randomisation check needs a torch model")
        method = self._ctx.get("method")
        if method is None:
            raise _Skip("no attribution method ran (step 'attributions')")
        idx = self._subsample()[:SANITY_ROWS]
        X = self.data.X
        X = X.iloc[idx] if isinstance(X, pd.DataFrame) else X[idx]
        return self._call(fn, self.adapter, X, method=method,
                     optional={"random_state": self._seeds["sanity_check"]})

    def _step_probes(self) -> Any:
        fn = self._fn("probe_confounders")
        if self.data.metadata is None:
            raise _Skip("no metadata was given (metadata= site, batch, scanner, ...)")
        return self._call(fn, self.adapter, self.data.X, self.data.y, self.data.metadata,
                     scores=self._ctx["scores"], layer=self.layer, optional={
                         "n_permutations": self.n_permutations,
                         "random_state": self._seeds["probes"], "verbose": self.verbose})

    def _step_domains(self) -> Any:
        fn = self._fn("split_domains")
        splits: dict[str, Any] = {}
        if self.data.metadata is not None:
            for col in self.data.metadata.columns:
                splits[col] = self.data.metadata[col]
        if self.data.is_tabular:
            for f in self.expectations:
                if self.data.feature_kinds.get(f) in ("binary", "categorical"):
                    splits.setdefault(f, f)
        if not splits:
            raise _Skip("no metadata and no binary/categorical expected feature to split by")
        if len(splits) > MAX_DOMAIN_SPLITS:
            self._notes.append(f"Domain splits are shown for the first {MAX_DOMAIN_SPLITS} of "
                               f"{len(splits)} columns.")
        opt = {"baselines": self._results.get("baselines"), "n_boot": self.n_boot,
               "random_state": self._seeds["domains"], "scores": self._ctx["scores"]}
        return {k: self._call(fn, self._ctx["cached"], self.data.X, self.data.y, by=by, optional=opt)
                for k, by in list(splits.items())[:MAX_DOMAIN_SPLITS]}

    def _step_slices(self) -> Any:
        fn = self._fn("discover_slices")
        self._need_tabular("slice discovery")
        return self._call(fn, self._ctx["cached"], self.data.X, self.data.y, optional={
            "metadata": self.data.metadata, "random_state": self._seeds["slices"],
            "scores": self._ctx["scores"]})

    def _step_error_contrast(self) -> Any:
        fn = self._fn("contrast_attributions")
        attrs = self._result_of("attributions", "no attributions to contrast")
        idx = self._subsample()
        y, s = self.data.y[idx], self._ctx["scores"][idx]
        if self.data.task == "binary":
            wrong = (s >= 0.5).astype(int) != y
        elif self.data.task == "multiclass":
            wrong = np.argmax(s, axis=1) != y
        else:
            r = np.abs(s - y)
            wrong = r > np.quantile(r, 0.75)
        n_wrong = int(wrong.sum())
        if n_wrong < 10 or len(wrong) - n_wrong < 10:
            raise _Skip(f"too few errors to contrast ({n_wrong} of {len(wrong)} rows wrong; "
                        "need at least 10 on each side)")
        self._notes.append(
            "The attribution contrast compares rows the model gets wrong "
            + ("(the worst quarter of absolute residuals) " if self.data.task == "regression"
               else "(thresholded at 0.5) " if self.data.task == "binary" else "")
            + f"with the rest: {n_wrong} of {len(wrong)} attributed rows.")
        # named levels so that the finding reads "misclassified" vs "correct" (the larger
        # sorted level is group a)
        a_name, b_name = (("worst quarter", "rest") if self.data.task == "regression"
                          else ("misclassified", "correct"))
        groups = np.where(wrong, a_name, b_name)
        attr = attrs[self._dl_name()]
        if not attr.is_tabular:
            # images: where the model looks, as |attribution| summed over a 4 x 4 grid
            attr = attr.pool((4, 4), absolute=True)
            self._notes.append("For image inputs the attribution contrast compares the "
                               "|attribution| summed over a 4 x 4 grid of regions (r0c0 is the "
                               "top-left cell).")
        return self._call(fn, attr, groups, optional={
            "random_state": self._seeds["error_contrast"]})

    def _step_overfitting(self) -> Any:
        fn = self._fn("overfitting_gap")
        self._need_train("the overfitting gap")
        return self._call(fn, self._ctx["cached"], self.train.X, self.train.y, self.data.X,
                     self.data.y, optional={
                         "baselines": self._results.get("baselines"), "n_boot": self.n_boot,
                         "random_state": self._seeds["overfitting"]})

    def _step_label_shuffle(self) -> Any:
        fn = self._fn("label_shuffle_control")
        if self.train_fn is None:
            raise _Skip("needs train_fn(X_train, y_train) -> model to retrain on shuffled labels")
        self._need_train("the label-shuffle control")
        r = self._raw
        return self._call(fn, self.train_fn, r["X_train"], r["y_train"], r["X_test"], r["y_test"],
                     n_repeats=self.n_repeats,
                     optional={"random_state": self._seeds["label_shuffle"],
                               "verbose": self.verbose})

    def _step_leave_one_group_out(self) -> Any:
        fn = self._fn("leave_one_group_out")
        if self.train_fn is None:
            raise _Skip("needs train_fn(X_train, y_train) -> model to retrain per held-out group")
        self._need_train("leave-one-group-out")
        meta = self.train.metadata
        if meta is None:
            raise _Skip("needs metadata_train= (the group of every training row)")
        col = self.group_column
        if col is None:
            cats = [c for c, k in self.train.metadata_kinds.items() if k == "categorical"]
            if not cats:
                raise _Skip("metadata_train has no categorical column to hold out")
            col = cats[0]
        metric = {"binary": "auroc", "multiclass": "macro_auroc", "regression": "r2"}[
            str(self.data.task)]
        return self._call(fn, self.train_fn, self._raw["X_train"], self._raw["y_train"],
                     meta[col].to_numpy(), metric=metric,
                     optional={"random_state": self._seeds["leave_one_group_out"]})

    def _step_membership(self) -> Any:
        fn = self._fn("membership_risk")
        self._need_train("the membership-inference risk")
        return self._call(fn, self._ctx["cached"], self.train.X, self.train.y, self.data.X,
                     self.data.y, optional={
                         "baselines": self._results.get("baselines"),
                         "random_state": self._seeds["membership"]})
