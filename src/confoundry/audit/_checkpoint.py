"""Checkpoints of an audit: every finished step's result on disk, keyed by what it read.

``Audit.run(checkpoint_dir=...)`` stores each step's result as soon as it finishes, in
``<checkpoint_dir>/steps/<step>/<key>/`` (``result.json`` + ``arrays.npz``, written by the
generic serializer of :mod:`confoundry.audit._serialize`; nothing is pickled). The key is a
SHA-256 of

- what every step shares: the checkpoint format, the audit's base seed and the versions of
  confoundry, numpy, pandas, scikit-learn, interpret and torch;
- the step's name and the function it runs;
- what the step *read* while it ran, recorded by the :class:`AuditContext`: the fingerprint of
  each input (``data``: the test set, with its task and kinds; ``train``; ``model``: the
  model's parameters and its test scores; ``model_name``), the value of each option, and the
  key of each earlier step whose result it read (so an invalidated step invalidates the steps
  that used it).

A re-run checks each stored entry by recomputing its key from the *current* values of what it
read; an entry whose key still matches is loaded instead of recomputed. A step is written to a
temporary folder and renamed into place, so a process killed while writing leaves no entry
that looks finished. ``audit.json`` keeps the base seed drawn when ``random_state=None``, so
that a re-run with the same arguments draws the same one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _serialize
from ._repro import model_fingerprint

#: packages whose versions are part of every key (a different version recomputes everything).
KEY_PACKAGES = ("confoundry", "numpy", "pandas", "scikit-learn", "interpret-core", "torch")


def data_fingerprint(data: Any) -> str | None:
    """SHA-256 of an ``AuditData``: its values, labels, metadata, task and kinds."""
    if data is None:
        return None
    meta = data.metadata
    extra = {"task": str(data.task), "feature_kinds": dict(data.feature_kinds),
             "metadata": None if meta is None else [str(c) for c in meta.columns],
             "metadata_kinds": dict(getattr(data, "metadata_kinds", None) or {})}
    h = hashlib.sha256(data.fingerprint().encode())
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()


def scores_fingerprint(model: Any, scores: np.ndarray, preprocess: Any) -> str:
    """SHA-256 of the model: its parameters (torch), its test scores and its ``preprocess``.

    The test scores make a retrained model of any kind (not only torch) a different model.
    """
    h = hashlib.sha256(json.dumps(model_fingerprint(model), sort_keys=True).encode())
    h.update(np.ascontiguousarray(np.asarray(scores, dtype=np.float64)).tobytes())
    h.update(_callable_name(preprocess).encode())
    return h.hexdigest()


def _callable_name(fn: Any) -> str:
    if fn is None:
        return "None"
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def option_value(v: Any) -> Any:
    """A JSON-safe, stable stand-in for an option's value (callables by their name, torch
    modules by the fingerprint of their parameters).

    Examples
    --------
    >>> option_value(("ebm", "tree")), option_value({"age": "increasing"})
    (['ebm', 'tree'], {'age': 'increasing'})
    """
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    if isinstance(v, Mapping):
        return {str(k): option_value(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (list, tuple)):
        return [option_value(x) for x in v]
    fp = model_fingerprint(v)
    if "sha256" in fp:
        return fp
    if callable(v):
        return f"callable:{_callable_name(v)}"
    return f"{type(v).__module__}.{type(v).__qualname__}:{v!r}"[:500]


def package_versions() -> dict[str, str]:
    """The versions a stored result depends on (a subset of the audit's record)."""
    from ._repro import package_versions as all_versions

    versions = all_versions()
    return {name: versions[name] for name in KEY_PACKAGES}


class Checkpoint:
    """The checkpoint folder of one audit run.

    Parameters
    ----------
    folder : str or path-like
        Created if missing.
    base_seed : int
        The audit's base seed (part of every key).
    inputs : mapping of str to str or None
        Fingerprints of the inputs a step may read (``data``, ``train``, ``model``,
        ``model_name``).

    Examples
    --------
    >>> import tempfile
    >>> from confoundry.audit._context import AuditOptions
    >>> ck = Checkpoint(tempfile.mkdtemp(), base_seed=0, inputs={"data": "abc"})
    >>> key, parts = ck.key("data", lambda c: None, {"input:data"}, AuditOptions(), {})
    >>> parts["input:data"], len(key)
    ('abc', 64)
    """

    def __init__(self, folder: Any, *, base_seed: int, inputs: Mapping[str, Any]) -> None:
        self.folder = os.fspath(folder)
        os.makedirs(os.path.join(self.folder, "steps"), exist_ok=True)
        self.base_seed = int(base_seed)
        self.inputs = dict(inputs)
        self.shared = {"format": _serialize.FORMAT, "base_seed": self.base_seed,
                       "versions": package_versions()}

    # ------------------------------------------------------------------ seeds
    @staticmethod
    def stored_seed(folder: Any) -> int | None:
        """The base seed a previous run with ``random_state=None`` drew, if any."""
        try:
            with open(os.path.join(os.fspath(folder), "audit.json"), encoding="utf-8") as fh:
                return int(json.load(fh)["base_seed"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store_seed(self) -> None:
        from ..report._files import write_text_atomic

        write_text_atomic(os.path.join(self.folder, "audit.json"),
                          json.dumps({"base_seed": self.base_seed}))

    # -------------------------------------------------------------------- keys
    def key(self, step: str, run: Any, reads: set[str], options: Any,
            step_keys: Mapping[str, str | None],
            info: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """The key of ``step`` given what it read, with the parts it hashes.

        ``reads`` holds ``input:<name>``, ``option:<name>``, ``step:<name>`` (an earlier
        step's result: its key) and ``info:<name>`` (a value an earlier step left in
        ``ctx.info``) entries.
        """
        info = info or {}
        parts: dict[str, Any] = {**self.shared, "step": step, "function": _callable_name(run)}
        for r in sorted(reads):
            kind, _, name = r.partition(":")
            if kind == "input":
                parts[r] = self.inputs.get(name)
            elif kind == "option":
                parts[r] = option_value(getattr(options, name, "<missing>"))
            elif kind == "step" and name != step:
                parts[r] = step_keys.get(name)
            elif kind == "info":
                parts[r] = option_value(info.get(name))
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest(), parts

    # ---------------------------------------------------------------- entries
    def _step_dir(self, step: str) -> str:
        return os.path.join(self.folder, "steps", step)

    def find(self, step: str, run: Any, options: Any, step_keys: Mapping[str, str | None],
             info: Mapping[str, Any] | None = None) -> tuple[str, Any, dict[str, Any]] | None:
        """``(key, stored, meta)`` of the entry of ``step`` that is still valid, or None.

        An entry is valid when the key recomputed from the current values of what it read
        equals its stored key. A damaged entry is ignored (and recomputed).
        """
        folder = self._step_dir(step)
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return None
        for name in names:
            path = os.path.join(folder, name)
            if name.startswith(".") or not os.path.isdir(path):
                continue
            try:
                meta = _serialize.read_meta(path)
                key, _ = self.key(step, run, set(meta["reads"]), options, step_keys, info)
                if key != meta["key"] or key != name:
                    continue
                return key, _serialize.load(path), meta
            except Exception:  # noqa: BLE001 - a damaged entry is recomputed, never fatal
                continue
        return None

    def save(self, step: str, key: str, parts: Mapping[str, Any], reads: set[str],
             stored: Any, meta: Mapping[str, Any]) -> None:
        """Write one entry: into a temporary folder, then renamed into place.

        Raises :class:`~confoundry.audit._serialize.NotStorable` when the result holds an
        object the format does not store (the step then runs again on the next run).
        """
        folder = self._step_dir(step)
        os.makedirs(folder, exist_ok=True)
        _remove_stale(folder)
        tmp = tempfile.mkdtemp(dir=folder, prefix=f".tmp-{os.getpid()}-")
        try:
            _serialize.dump(stored, tmp, meta={**dict(meta), "step": step, "key": key,
                                               "reads": sorted(reads), "parts": dict(parts)})
            final = os.path.join(folder, key)
            if os.path.exists(final):
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _remove_stale(folder: str) -> None:
    """Remove the temporary folders of runs that died while writing (their pid is gone)."""
    for name in os.listdir(folder):
        if not name.startswith(".tmp-"):
            continue
        try:
            pid = int(name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid() or not _alive(pid):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True
