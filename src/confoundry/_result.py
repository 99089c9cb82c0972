"""Shared surface of every confoundry result object and the ``Finding`` record.

Every step returns a frozen dataclass with ``to_frame()``, ``plot()``, ``to_dict()``,
``findings()`` and ``_repr_html_()``. ``ResultMixin`` provides the generic parts.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import html
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SEVERITIES = ("high", "medium", "low", "info")
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Finding:
    """One thing a reader of the audit must know, with the numbers behind it.

    Parameters
    ----------
    kind : str
        Machine-readable category, e.g. ``"expectation_violation"``, ``"confounded_output"``,
        ``"confounded_dataset"``, ``"failing_slice"``, ``"baseline_outperforms"``,
        ``"attribution_disagreement"``, ``"memorisation"``.
    severity : {"high", "medium", "low", "info"}
    tip : int
        Number of the tip of "Ten Quick Tips for Deep Learning in Biology" that it enforces.
    title : str
        One readable sentence.
    subject : str
        The feature, metadata column or slice concerned.
    model : str or None
        Model the finding is about, if any.
    evidence : dict
        The numbers behind it (JSON-safe).
    domain : str or None
        The domain or slice the finding is about (``"overall"`` for the whole test set), if
        any. With ``kind``, ``subject`` and ``model`` it forms :attr:`key`, by which the audit
        keeps one finding where two steps report the same thing.

    Examples
    --------
    >>> f = Finding("memorisation", "high", 7, "The model does no better than chance.",
    ...             subject="label", model="mlp", evidence={"auroc": 0.51})
    >>> f.severity
    'high'
    """

    kind: str
    severity: str
    tip: int
    title: str
    subject: str = ""
    model: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    domain: str | None = None

    @property
    def key(self) -> tuple[str, str, str | None, str | None]:
        """``(kind, subject, model, domain)``: what the finding is about, never its wording."""
        return (self.kind, self.subject, self.model, self.domain)

    def __post_init__(self) -> None:
        if self.severity not in _SEVERITY_RANK:
            raise ValueError(
                f"severity={self.severity!r} is not valid; expected one of {SEVERITIES}."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "tip": int(self.tip),
            "title": self.title,
            "subject": self.subject,
            "model": self.model,
            "domain": self.domain,
            "evidence": to_jsonable(dict(self.evidence)),
        }


def findings_frame(findings: list[Finding]) -> pd.DataFrame:
    """Findings as a DataFrame, worst first (severity, then order of arrival)."""
    cols = ["kind", "severity", "tip", "title", "subject", "model", "evidence"]
    if not findings:
        return pd.DataFrame(columns=cols)
    order = sorted(range(len(findings)), key=lambda i: (_SEVERITY_RANK[findings[i].severity], i))
    rows = [findings[i].to_dict() for i in order]
    return pd.DataFrame(rows, columns=cols).reset_index(drop=True)


def to_jsonable(obj: Any) -> Any:
    """Convert numpy / pandas / dataclass objects into JSON-safe Python values.

    Non-finite floats become ``None`` so that the output is strict JSON.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()] if obj.ndim else to_jsonable(obj.item())
    if isinstance(obj, pd.DataFrame):
        return [
            {str(k): to_jsonable(v) for k, v in row.items()}
            for row in obj.to_dict(orient="records")
        ]
    if isinstance(obj, pd.Series):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (_dt.date, _dt.datetime)):
        return obj.isoformat()
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return to_jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj):
        return to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "item"):
        try:
            return to_jsonable(obj.item())
        except (TypeError, ValueError):
            pass
    return str(obj)


def dumps(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``obj`` (see :func:`to_jsonable`)."""
    return json.dumps(to_jsonable(obj), allow_nan=False, **kwargs)


class ResultMixin:
    """Generic parts of the result surface. Subclasses implement ``to_frame`` and ``plot``.

    ``to_dict()`` is generic: the type, ``to_frame()`` as ``"table"``, the findings, and every
    dataclass field except those whose name starts with ``_`` or that are declared with
    ``field(metadata={"to_dict": False})`` (large arrays, fitted models, replicates). A field
    named ``findings_`` is the findings already. Subclasses add to it with ``_extra_dict()``
    instead of writing their own ``to_dict``.

    Provenance (the arguments a result was computed with: ``n_boot``, ``ci``, ``fdr``,
    ``random_state`` ...) lives in a field named ``params``.
    """

    _html_max_rows = 20

    def to_frame(self) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def findings(self) -> list[Finding]:
        return list(getattr(self, "findings_", ()) or ())

    def _extra_dict(self) -> dict[str, Any]:
        """Derived quantities to add to :meth:`to_dict` (none by default)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record: type, table, findings, every public field, and derived extras."""
        out: dict[str, Any] = {"type": type(self).__name__,
                               "table": to_jsonable(self.to_frame()),
                               "findings": [f.to_dict() for f in self.findings()]}
        if dataclasses.is_dataclass(self):
            for f in dataclasses.fields(self):
                if f.name.startswith("_") or f.name == "findings_" or not f.metadata.get(
                        "to_dict", True):
                    continue
                out.setdefault(f.name, to_jsonable(getattr(self, f.name)))
        for k, v in self._extra_dict().items():
            out[k] = to_jsonable(v)
        return out

    def to_json(self, path: str | None = None, **kwargs: Any) -> str:
        text = dumps(self.to_dict(), indent=kwargs.pop("indent", 2), **kwargs)
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return text

    def _repr_html_(self) -> str:
        frame = self.to_frame()
        head = f"<p><b>{html.escape(type(self).__name__)}</b> ({len(frame)} rows)</p>"
        return head + frame.head(self._html_max_rows).to_html(
            float_format=lambda v: f"{v:.4g}", escape=True
        )


#: a field left out of the generic ``to_dict`` (large arrays, models, replicates).
def internal(**kwargs: Any) -> Any:
    """``dataclasses.field`` for a field that ``to_dict`` leaves out (e.g. replicates).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class R(ResultMixin):
    ...     table: pd.DataFrame
    ...     reps: Any = internal(default=None)
    ...     def to_frame(self): return self.table
    >>> sorted(R(pd.DataFrame({"a": [1]}), reps=[1, 2]).to_dict())
    ['findings', 'table', 'type']
    """
    meta = dict(kwargs.pop("metadata", None) or {})
    meta["to_dict"] = False
    kwargs.setdefault("repr", False)
    return field(metadata=meta, **kwargs)


@dataclass(frozen=True)
class Verdict:
    """A verdict: the worst severity, one sentence for the reader, and counts per severity.

    Reads like a mapping too (``verdict["level"]``), so code written for the dict keeps working.

    Parameters
    ----------
    level : {"high", "medium", "low", "info"}
    text : str
    counts : mapping of severity to int
    unanswered : tuple of dict
        The questions the audit did not answer, one dict per step with ``step``, ``question``,
        ``status`` (``"failed"``: the step raised, or a step it uses did; ``"interrupted"``;
        ``"skipped"``: an input it needs was not given) and ``reason``. Steps left out on
        request (``steps=``) are not listed.

    Examples
    --------
    >>> v = Verdict("high", "Do not rely on this model yet.", {"high": 1})
    >>> v.level, v["text"], v.unanswered
    ('high', 'Do not rely on this model yet.', ())
    """

    level: str
    text: str
    counts: Mapping[str, int] = field(default_factory=dict)
    unanswered: tuple[Mapping[str, str], ...] = ()

    _KEYS = ("level", "text", "counts", "unanswered")

    def __post_init__(self) -> None:
        if self.level not in _SEVERITY_RANK:
            raise ValueError(f"level={self.level!r} is not valid; expected one of {SEVERITIES}.")

    def __getitem__(self, key: str) -> Any:
        if key not in self._KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self) -> tuple[str, ...]:
        return self._KEYS

    def questions(self, status: str) -> list[str]:
        """The unanswered questions whose step has ``status`` (failed, interrupted, skipped).

        Examples
        --------
        >>> v = Verdict("low", "t", {}, ({"step": "probes", "question": "Q?",
        ...                                "status": "failed", "reason": "boom"},))
        >>> v.questions("failed"), v.questions("skipped")
        (['Q?'], [])
        """
        return [u["question"] for u in self.unanswered if u["status"] == status]

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "text": self.text,
                "counts": {str(k): int(v) for k, v in self.counts.items()},
                "unanswered": [dict(u) for u in self.unanswered]}

    def __str__(self) -> str:
        return self.text


def deprecated_aliases(module_name: str, aliases: Mapping[str, Any]) -> Any:
    """A module ``__getattr__`` that serves old names with a ``DeprecationWarning``.

    ``aliases`` maps each old name to the object now known by a new name (kept for one release).

    Examples
    --------
    >>> import warnings
    >>> class NewResult: pass
    >>> ga = deprecated_aliases("m", {"Old": NewResult})
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     ga("Old") is NewResult, w[0].category.__name__
    (True, 'DeprecationWarning')
    """
    def __getattr__(name: str) -> Any:
        if name in aliases:
            import warnings

            new = aliases[name]
            new_name = getattr(new, "__name__", name)
            # a renamed object: the same module, the new name; a moved one: its new subpackage
            where = (f"{module_name}.{new_name}" if new_name != name
                     else f"{new.__module__.split('._')[0]}.{name}")
            warnings.warn(f"{module_name}.{name} is deprecated and will be removed in the next "
                          f"release; use {where}.", DeprecationWarning, stacklevel=2)
            return new
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__
