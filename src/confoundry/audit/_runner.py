"""Run the audit's steps one by one: skip, load from a checkpoint, compute, fail or stop.

A step whose needs are not met is *skipped with a reason*. A step found in the checkpoint
folder with a valid key is *loaded* (``StepStatus.from_checkpoint``). Otherwise it runs, with
its warnings collected (never printed) and what it reads recorded; a step that raises is
*failed* with its exception type, message and the traceback's last frame (with
``strict=True`` the exception propagates instead, with the step named in a note). A
``KeyboardInterrupt`` marks the running step and the rest *interrupted* when a checkpoint
folder is set (the finished steps are on disk and in the result), and propagates otherwise.
"""

from __future__ import annotations

import os
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .._utils import progress
from . import _steps
from ._audit_result import StepStatus
from ._checkpoint import Checkpoint
from ._context import AuditContext, Skip
from ._findings import NOT_REQUESTED
from ._serialize import NotStorable

_MISSING = object()


def status_of(st: Any, status: str, reason: str = "", **kwargs: Any) -> StepStatus:
    """A :class:`StepStatus` of step ``st`` that carries its question and its ``lost``."""
    return StepStatus(st.name, status, reason, question=getattr(st, "question", ""),
                      lost=getattr(st, "lost", ""), **kwargs)


def last_frame(exc: BaseException) -> str:
    """``"file:line in function"`` of the frame that raised ``exc`` ("" without a traceback).

    Examples
    --------
    >>> try:
    ...     {}["x"]
    ... except KeyError as e:
    ...     last_frame(e).endswith("in <module>")
    True
    """
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    fs = frames[-1]
    path = fs.filename
    for marker in ("site-packages" + os.sep, "src" + os.sep):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{fs.lineno} in {fs.name}"


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, also on Python 3.10 (where the note is kept in ``__notes__``)."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # pragma: no cover - Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]


class StepRunner:
    """Runs the steps of one ``Audit.run()`` (see the module docstring)."""

    def __init__(self, *, only_steps: Sequence[str] | None, strict: bool,
                 checkpoint: Checkpoint | None, verbose: bool) -> None:
        self.only_steps = None if only_steps is None else tuple(only_steps)
        self.strict = bool(strict)
        self.checkpoint = checkpoint
        self.verbose = bool(verbose)
        #: the key of every step's result in this run (None: the step has no result).
        self.step_keys: dict[str, str | None] = {}

    def run_all(self, ctx: AuditContext, steps: Sequence[Any],
                statuses: dict[str, StepStatus]) -> bool:
        """Run every step into ``statuses``; True when a ``KeyboardInterrupt`` stopped it."""
        bar = progress(total=len(steps), desc="audit", verbose=self.verbose)
        try:
            for i, st in enumerate(steps):
                bar.set_description(f"audit: {st.name}")
                try:
                    statuses[st.name] = self.run_one(st, ctx, statuses)
                except KeyboardInterrupt:
                    if self.checkpoint is None:
                        raise
                    mark_interrupted(steps[i:], statuses, started=True)
                    return True
                bar.update(1)
        finally:
            bar.close()
        return False

    def run_one(self, st: Any, ctx: AuditContext,
                statuses: Mapping[str, StepStatus]) -> StepStatus:
        self.step_keys[st.name] = None
        if self.only_steps is not None and st.name not in self.only_steps:
            return status_of(st, "skipped", NOT_REQUESTED)
        t0 = time.perf_counter()
        try:
            check_needs(st, ctx, statuses)
        except Skip as why:
            return status_of(st, "skipped", str(why), seconds=time.perf_counter() - t0,
                             blocked_by=_blocker(st, statuses))
        if self.checkpoint is not None:
            loaded = self._load(st, ctx, t0)
            if loaded is not None:
                return loaded
        notes0, info0 = len(ctx.notes), dict(ctx.info)
        res: Any = None
        reads: set[str] = set()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with ctx.recording() as reads:
                    res = st.run(ctx)
                out = status_of(st, "ran")
            except Skip as why:
                out = status_of(st, "skipped", str(why))
            except Exception as exc:
                if self.strict:
                    add_note(exc, f"raised in audit step '{st.name}' ({st.question or st.title})"
                                  "; Audit(strict=False) records it as a failed step instead")
                    raise
                out = _failed(st, exc)
        msgs = tuple(sorted({f"{w.category.__name__}: {w.message}".splitlines()[0][:300]
                             for w in caught}))
        seconds = time.perf_counter() - t0
        if out.status == "ran":
            ctx.results[st.name] = res
            if self.checkpoint is not None:
                self._save(st, ctx, res, reads, notes0, info0, seconds, msgs)
        return replace(out, seconds=seconds, warnings=msgs)

    # ------------------------------------------------------------ checkpoint
    def _load(self, st: Any, ctx: AuditContext, t0: float) -> StepStatus | None:
        assert self.checkpoint is not None
        found = self.checkpoint.find(st.name, st.run, ctx.options, self.step_keys,
                                     dict(ctx.info))
        if found is None:
            return None
        key, stored, meta = found
        ctx.results[st.name] = stored["result"]
        ctx.info.update(stored.get("info") or {})
        ctx.notes.extend(str(n) for n in meta.get("notes", ()))
        self.step_keys[st.name] = key
        return status_of(st, "ran", seconds=time.perf_counter() - t0,
                         warnings=tuple(meta.get("warnings", ())), from_checkpoint=True)

    def _save(self, st: Any, ctx: AuditContext, res: Any, reads: set[str], notes0: int,
              info0: Mapping[str, Any], seconds: float, msgs: tuple[str, ...]) -> None:
        assert self.checkpoint is not None
        reads = reads | {f"step:{u}" for u in st.uses}  # declared uses always count
        key, parts = self.checkpoint.key(st.name, st.run, reads, ctx.options, self.step_keys,
                                         info0)
        self.step_keys[st.name] = key
        info = {k: v for k, v in ctx.info.items() if info0.get(k, _MISSING) != v}
        meta = {"seconds": seconds, "warnings": list(msgs), "notes": ctx.notes[notes0:]}
        try:
            self.checkpoint.save(st.name, key, parts, reads, {"result": res, "info": info}, meta)
        except (NotStorable, OSError, ValueError) as exc:
            ctx.notes.append(f"The result of step '{st.name}' was not stored in the checkpoint "
                             f"({type(exc).__name__}: {exc}); the next run recomputes it.")


def _failed(st: Any, exc: Exception) -> StepStatus:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-8)
    detail = "".join(tb).strip().splitlines()[-16:]
    reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    return status_of(st, "failed", reason, detail="\n".join(detail),
                     error_type=type(exc).__name__, error_message=str(exc)[:5000],
                     where=last_frame(exc))


def _blocker(st: Any, statuses: Mapping[str, StepStatus]) -> str:
    """The step ``st`` uses that failed or was interrupted (or was itself blocked)."""
    for used in st.uses:
        s = statuses.get(used)
        if s is not None and (s.status in ("failed", "interrupted") or s.blocked_by):
            return used
    return ""


def check_needs(st: Any, ctx: AuditContext, statuses: Mapping[str, StepStatus]) -> None:
    """Raise :class:`Skip` with the reason when an input or an earlier step is missing."""
    for need in st.needs:
        check, reason = _steps.NEEDS[need]
        if not check(ctx):
            raise Skip(reason)
    for used in st.uses:
        ctx.result(used, f"needs the result of step '{used}'", statuses)


def mark_interrupted(steps: Sequence[Any], statuses: dict[str, StepStatus], *,
                     started: bool) -> None:
    """Mark ``steps`` interrupted: the first one while it ran (if ``started``), the rest
    before they started."""
    for j, st in enumerate(steps):
        why = ("interrupted (KeyboardInterrupt) while it ran" if started and j == 0
               else "not started: the audit was interrupted (KeyboardInterrupt)")
        statuses[st.name] = status_of(st, "interrupted", why)
