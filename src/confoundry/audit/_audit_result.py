"""``AuditResult``: everything one ``Audit.run()`` found, as frames, JSON and one HTML file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import pandas as pd

from .._result import Finding, ResultMixin, Verdict, findings_frame, to_jsonable
from ._findings import iter_results, verdict
from ._questions import four_questions
from ._text import format_findings

STATUSES = ("ran", "skipped", "failed", "interrupted")


@dataclass(frozen=True)
class StepStatus:
    """What happened to one step of the audit.

    Parameters
    ----------
    name : str
        Step name, e.g. ``"probes"``.
    status : {"ran", "skipped", "failed", "interrupted"}
        ``"interrupted"``: the run was stopped (Ctrl-C) before the step finished; only with
        ``Audit.run(checkpoint_dir=...)``, which keeps the steps that had finished.
    reason : str
        Why it was skipped, or ``"<ExceptionType>: <first line of the message>"`` when it
        failed ("" when it ran).
    seconds : float
        Wall time spent in the step (loading it, for a step read from a checkpoint).
    detail : str
        The last lines of the traceback of a failed step (for the JSON record).
    warnings : tuple of str
        Warnings the step raised (shown in the report rather than lost in a console).
    error_type, error_message : str
        The exception's type name and its whole message (a failed step).
    where : str
        The traceback's last frame, ``"file:line in function"``: where the error was raised.
    question : str
        The question the step answers (unanswered unless it ran).
    lost : {"high", "medium", "low"} or ""
        Severity of the finding raised when the step fails (from its ``AuditStep``).
    from_checkpoint : bool
        The result was read from ``checkpoint_dir`` instead of being recomputed.
    blocked_by : str
        A skipped step: the earlier step it uses, when that one failed or was interrupted.

    Examples
    --------
    >>> StepStatus("probes", "skipped", "no metadata was given").label
    'skipped: no metadata was given'
    >>> StepStatus("probes", "ran", from_checkpoint=True).label
    'ran (from checkpoint)'
    """

    name: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    detail: str = ""
    warnings: tuple[str, ...] = ()
    error_type: str = ""
    error_message: str = ""
    where: str = ""
    question: str = ""
    lost: str = ""
    from_checkpoint: bool = False
    blocked_by: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status={self.status!r} is not valid; expected one of {STATUSES}.")

    @property
    def label(self) -> str:
        if self.status == "ran":
            return "ran (from checkpoint)" if self.from_checkpoint else "ran"
        return f"{self.status}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reason": self.reason,
                "seconds": round(float(self.seconds), 4), "detail": self.detail,
                "warnings": list(self.warnings), "error_type": self.error_type,
                "error_message": self.error_message, "where": self.where,
                "question": self.question, "lost": self.lost,
                "from_checkpoint": bool(self.from_checkpoint), "blocked_by": self.blocked_by}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StepStatus:
        """The inverse of :meth:`to_dict` (unknown keys are ignored).

        Examples
        --------
        >>> s = StepStatus("probes", "failed", "KeyError: 'x'", error_type="KeyError")
        >>> StepStatus.from_dict(s.to_dict()) == s
        True
        """
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["warnings"] = tuple(kw.get("warnings", ()))
        return cls(**kw)


@dataclass(frozen=True, eq=False)
class Section:
    """An extra section of the report, added with :meth:`AuditResult.add_section`.

    Parameters
    ----------
    title : str
        Heading (escaped when rendered).
    content : result object, DataFrame or mapping, optional
        A result object (anything with ``to_frame``/``plot``/``findings``), or a table.
    intro : str
        One paragraph of plain text under the heading (escaped).
    figure : str, optional
        A PNG data URI (``data:image/png;base64,...``) shown under the intro.
    """

    title: str
    content: Any = None
    intro: str = ""
    figure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        c = self.content
        if c is None:
            body: Any = None
        elif hasattr(c, "to_dict") and not isinstance(c, (pd.DataFrame, pd.Series)):
            try:
                body = to_jsonable(c.to_dict())
            except Exception as exc:
                body = {"error": f"to_dict() failed: {type(exc).__name__}: {exc}"}
        else:
            body = to_jsonable(c)
        return {"title": self.title, "intro": self.intro, "content": body,
                "has_figure": self.figure is not None}


@dataclass(frozen=True, eq=False)
class AuditResult(ResultMixin):
    """The outcome of :meth:`confoundry.Audit.run`.

    Attributes
    ----------
    steps : dict of str to StepStatus
        Every step, in the order it was considered: ran, skipped (with the reason) or failed
        (with the error message). Nothing is left out silently.
    results : dict of str to result
        Step name to its result object (``ModelComparison``, ``ProbeResult``, ...), or to a dict
        of such objects for steps that produce several (one per baseline or metadata column).
    model_name : str
    task : str
    data : dict
        Description of the test (and training) data: n, prevalence, metadata × label tables.
    reproducibility : dict
        Package versions, seeds, determinism settings, data and model fingerprints.
    options : dict
        The options the audit ran with.
    notes : list of str
        What the audit did that a reader must know (e.g. a subsample for attributions).
    sections : tuple of Section
        Extra sections added with :meth:`add_section` (e.g. a case study's ground truth),
        rendered after the verdict.
    layout : tuple of dict
        The report's sections and the steps shown in each (id, title, tips, intro, steps:
        name and title), from the audit's step list (:func:`confoundry.audit_steps`).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from confoundry import Audit
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2)); y = (X[:, 0] + rng.normal(size=100) > 0).astype(int)
    >>> res = Audit(LogisticRegression().fit(X, y), X, y, random_state=0, verbose=False,
    ...             n_boot=20, steps=["data", "performance"]).run()
    >>> res.model_name, res.task, list(res.results)
    ('LogisticRegression', 'binary', ['data', 'performance'])
    >>> res.steps["performance"].status, res.steps["probes"].status
    ('ran', 'skipped')
    """

    steps: Mapping[str, StepStatus]
    results: Mapping[str, Any]
    model_name: str
    task: str
    data: Mapping[str, Any] = field(default_factory=dict)
    reproducibility: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    findings_: tuple[Finding, ...] = ()
    sections: tuple[Section, ...] = ()
    layout: tuple[Mapping[str, Any], ...] = field(default_factory=lambda: _default_layout())

    def add_section(self, title: str, content: Any = None, *, intro: str = "",
                    figure: Any = None, findings: bool = True) -> AuditResult:
        """A copy of this result with one more report section (the result is immutable).

        Parameters
        ----------
        title : str
            Heading of the section.
        content : result object, DataFrame or mapping, optional
            Rendered like a step's result: its findings, its ``plot()`` and its
            ``to_frame()`` (a DataFrame or mapping is shown as a table). Every string is
            escaped.
        intro : str
            A paragraph of plain text under the heading.
        figure : matplotlib Figure or PNG data URI, optional
            An extra figure (a Figure is encoded now and closed).
        findings : bool, default True
            Merge ``content.findings()`` into the audit's findings (and so into the verdict).

        Returns
        -------
        AuditResult

        Examples
        --------
        >>> import pandas as pd
        >>> r = AuditResult(steps={}, results={}, model_name="m", task="binary")
        >>> r2 = r.add_section("Ground truth", pd.DataFrame({"a": [1]}), intro="Known truth.")
        >>> len(r.sections), r2.sections[0].title
        (0, 'Ground truth')
        """
        from ._findings import rank_findings

        if not isinstance(title, str) or not title.strip():
            raise TypeError(f"title={title!r} is not valid; expected a non-empty string.")
        if not isinstance(intro, str):
            raise TypeError(f"intro={intro!r} is not a string; expected plain text.")
        if figure is not None and not isinstance(figure, str):
            if not hasattr(figure, "savefig"):
                raise TypeError(f"figure has type {type(figure).__name__}; expected a "
                                "matplotlib Figure or a PNG data URI.")
            from ..report._figures import figure_to_data_uri

            figure = figure_to_data_uri(figure)
        elif isinstance(figure, str) and not figure.startswith("data:image/png;base64,"):
            raise ValueError("figure is a string that is not a PNG data URI; expected "
                             "'data:image/png;base64,...' or a matplotlib Figure.")
        new = list(self.findings_)
        if findings and callable(getattr(content, "findings", None)):
            new += [f for f in content.findings() if isinstance(f, Finding)]
        return replace(self, sections=(*self.sections, Section(title, content, intro, figure)),
                       findings_=tuple(rank_findings(new)))

    # ---------------------------------------------------------------- surface
    def findings(self) -> list[Finding]:
        """Every finding of every step (and one per failed step), in order of arrival."""
        return list(self.findings_)

    def summary(self) -> pd.DataFrame:
        """Findings as a DataFrame, worst first.

        Columns ``kind``, ``severity``, ``tip``, ``title``, ``subject``, ``model``, ``evidence``.
        """
        return findings_frame(self.findings())

    def to_frame(self) -> pd.DataFrame:
        """Same as :meth:`summary`."""
        return self.summary()

    def steps_frame(self) -> pd.DataFrame:
        """One row per step: name, status, reason, seconds, the error of a failed step, ..."""
        rows = [s.to_dict() for s in self.steps.values()]
        return pd.DataFrame(rows, columns=["name", "status", "reason", "seconds", "detail",
                                           "warnings", "error_type", "error_message", "where",
                                           "question", "lost", "from_checkpoint",
                                           "blocked_by"])

    def verdict(self) -> Verdict:
        """Worst severity, counts per severity, one sentence for the reader and the questions
        left unanswered (:attr:`Verdict.unanswered`: failed, interrupted, skipped steps)."""
        return verdict(self.findings(), self.steps)

    def __getitem__(self, step: str) -> Any:
        try:
            return self.results[step]
        except KeyError:
            st = self.steps.get(step)
            why = f" ({st.label})" if st is not None else ""
            raise KeyError(f"step {step!r} has no result{why}; steps with results: "
                           f"{sorted(self.results)}") from None

    @property
    def params(self) -> dict[str, Any]:
        """What the audit ran with: its options, the seed it was given and the base seed."""
        repro = self.reproducibility
        return {**dict(self.options), "random_state": repro.get("random_state"),
                "base_seed": repro.get("base_seed")}

    # The one hand-written to_dict of a result: the audit's record nests every step's own
    # to_dict (one per result object, a failing one recorded in its place) under "results".
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record of the whole audit (findings, steps, every result's own dict)."""
        results: dict[str, Any] = {}
        for step, key, res in iter_results(self.results):
            try:
                d = to_jsonable(res.to_dict()) if hasattr(res, "to_dict") else to_jsonable(res)
            except Exception as exc:  # keep the record whole; say what is missing
                d = {"error": f"to_dict() failed: {type(exc).__name__}: {exc}"}
            if key is None:
                results[step] = d
            else:
                results.setdefault(step, {})[key] = d
        return to_jsonable({
            "type": "AuditResult",
            "model_name": self.model_name,
            "task": self.task,
            "verdict": self.verdict(),
            "questions": self.questions(),
            "findings": [f.to_dict() for f in findings_order(self.findings())],
            "steps": {k: v.to_dict() for k, v in self.steps.items()},
            "data": dict(self.data),
            "notes": list(self.notes),
            "options": dict(self.options),
            "reproducibility": dict(self.reproducibility),
            "results": results,
            "sections": [sec.to_dict() for sec in self.sections],
            "layout": [dict(sec) for sec in self.layout],
        })

    def to_html(self, path: Any = None, *, title: str | None = None) -> str:
        """Write the self-contained HTML report to ``path`` (if given) and return its text.

        The file needs no server, no network and no JavaScript; figures are inlined as PNG
        data URIs and every user-supplied string is escaped.
        """
        from ..report import render_html
        from ..report._files import write_text_atomic

        text = render_html(self, title=title)
        if path is not None:  # a temporary file renamed into place: the file is always whole
            write_text_atomic(path, text)
        return text

    def to_json(self, path: Any = None, **kwargs: Any) -> str:
        """The JSON record (:meth:`to_dict`) as text, written to ``path`` if given.

        Like :meth:`to_html`, the file is written to a temporary file in the same folder and
        renamed into place, so it is never left half-written.
        """
        from .._result import dumps
        from ..report._files import write_text_atomic

        text = dumps(self.to_dict(), indent=kwargs.pop("indent", 2), **kwargs)
        if path is not None:
            write_text_atomic(path, text)
        return text

    def plot(self, ax: Any = None) -> Any:
        """Bar chart of the number of findings per severity."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 2.4))
        counts = self.verdict()["counts"]
        colors = {"high": "#c0392b", "medium": "#e67e22", "low": "#f1c40f", "info": "#7f8c8d"}
        names = list(counts)
        ax.barh(names[::-1], [counts[n] for n in names[::-1]],
                color=[colors[n] for n in names[::-1]])
        ax.set_xlabel("number of findings")
        ax.set_title(f"audit of {self.model_name}")
        ax.figure.tight_layout()
        return ax.figure

    def _repr_html_(self) -> str:
        import html

        v = self.verdict()
        ran = sum(s.status == "ran" for s in self.steps.values())
        head = (f"<p><b>AuditResult</b> of {html.escape(self.model_name)}: "
                f"{html.escape(v['text'])} ({ran}/{len(self.steps)} steps ran)</p>")
        frame = self.summary().drop(columns=["evidence"])
        return head + frame.head(self._html_max_rows).to_html(escape=True, index=False)

    def questions(self) -> list[dict[str, str]]:
        """The four questions of the audit, each answered in one sentence with one number:
        ``question``, ``answer``, ``number``, ``severity``, ``step`` (the report's anchor,
        ``"step-<name>"``) and ``status`` (``"answered"`` or ``"unanswered"``); the top of
        the report and of ``print(result)``, and ``"questions"`` in the JSON record."""
        return four_questions(self)

    def __str__(self) -> str:
        """The verdict and the four questions, then every finding worst first, wrapped to the
        terminal's width: the sentence with its severity, and one line of the numbers behind
        it (what ``print(result)`` shows; :meth:`summary` is the same as a DataFrame)."""
        return format_findings(self.findings(), self.verdict(), questions=self.questions())

    def __repr__(self) -> str:
        ran = [k for k, s in self.steps.items() if s.status == "ran"]
        return (f"AuditResult(model={self.model_name!r}, task={self.task!r}, "
                f"findings={len(self.findings_)}, steps_ran={ran})")


def findings_order(findings: list[Finding]) -> list[Finding]:
    """Findings worst first, stable within a severity."""
    from .._result import _SEVERITY_RANK

    return sorted(findings, key=lambda f: _SEVERITY_RANK[f.severity])


def _default_layout() -> tuple[dict[str, Any], ...]:
    from ._steps import layout

    return layout()
