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
    """Generic parts of the result surface. Subclasses implement ``to_frame``.

    Subclasses may override ``findings`` (default: none), ``plot`` and ``to_dict``.
    """

    _html_max_rows = 20

    def to_frame(self) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def findings(self) -> list[Finding]:
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "table": to_jsonable(self.to_frame()),
            "findings": [f.to_dict() for f in self.findings()],
        }

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
