"""Small helpers shared by every layer: seeding, progress bars, array conversion."""

from __future__ import annotations

import contextlib
import math
import random
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

try:  # torch is a hard dependency, but keep import errors readable
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]


def check_random_state(seed: Any) -> np.random.Generator:
    """Turn ``None``, an int, a ``SeedSequence`` or a ``Generator`` into a ``Generator``.

    Examples
    --------
    >>> rng = check_random_state(0)
    >>> float(rng.random()) == float(check_random_state(0).random())
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.RandomState):
        return np.random.default_rng(seed.randint(0, 2**31 - 1))
    if seed is None or isinstance(seed, (int, np.integer, np.random.SeedSequence)):
        if isinstance(seed, (int, np.integer)) and seed < 0:
            raise ValueError(f"random_state={seed!r} is negative; expected a non-negative int.")
        return np.random.default_rng(seed)
    raise TypeError(
        f"random_state={seed!r} has type {type(seed).__name__}; expected None, an int or a "
        "numpy Generator."
    )


def int_seed(rng: np.random.Generator) -> int:
    """Draw an int seed (for estimators that take ``random_state=int``)."""
    return int(rng.integers(0, 2**31 - 1))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy's legacy global state and torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - seeds user code on purpose
    if torch is not None:
        torch.manual_seed(seed)


@contextlib.contextmanager
def torch_seed(seed: int | None) -> Iterator[None]:
    """Fork torch's RNG, seed it, and restore the user's RNG state afterwards."""
    if torch is None or seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def progress(iterable: Any = None, *, total: int | None = None, desc: str = "",
             verbose: bool = True, leave: bool = False) -> Any:
    """A tqdm progress bar, silenced by ``verbose=False``."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not verbose, leave=leave)


def to_numpy(x: Any) -> np.ndarray:
    """Array view of a DataFrame, Series, tensor or array-like (never copies the user's data
    in place; callers must not write into the result)."""
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if hasattr(x, "to_numpy"):
        return x.to_numpy()
    return np.asarray(x)


#: worker threads for the bootstrap loops (numpy releases the GIL in its array loops).
MAX_THREADS = 4


def thread_map(fn: Any, items: Any, *, max_workers: int | None = None) -> list[Any]:
    """``[fn(x) for x in items]``, on up to ``min(MAX_THREADS, cpu count)`` threads.

    For array work that releases the GIL (the metric engine over a chunk of bootstrap
    weights). Results come back in the order of ``items`` and ``fn`` must not depend on the
    order it is called in, so the output never depends on the number of threads.

    Examples
    --------
    >>> thread_map(lambda x: x * x, [1, 2, 3])
    [1, 4, 9]
    """
    import os

    items = list(items)
    workers = min(max_workers or MAX_THREADS, os.cpu_count() or 1, len(items))
    if workers <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def renamed_keyword(func: str, old: str, new: str, old_value: Any, new_value: Any, *,
                    new_default: Any = None, stacklevel: int = 3) -> Any:
    """The value of a keyword renamed ``old`` -> ``new`` (the old name kept for one release).

    Returns ``new_value`` when the old keyword was not given; else warns with a
    ``DeprecationWarning`` (attributed ``stacklevel`` frames up: the user's call when called
    from the public function) and returns ``old_value``. Both given is a ``TypeError``, unless
    the new one still has its default (or the same scalar value).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     renamed_keyword("f", "groups", "by", [0, 1], None), w[0].category.__name__
    ([0, 1], 'DeprecationWarning')
    >>> renamed_keyword("f", "alpha", "fdr", None, 0.1, new_default=0.05)
    0.1
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     renamed_keyword("f", "groups", "by", [0, 1], [1, 0])
    Traceback (most recent call last):
    ...
    TypeError: f() got both by= and groups= (by=[1, 0] and groups=[0, 1]); expected only by= (groups= is its deprecated name).
    """
    import warnings

    if old_value is None:
        return new_value
    warnings.warn(f"{func}({old}=...) is deprecated and will be removed in the next release; "
                  f"use {new}=.", DeprecationWarning, stacklevel=stacklevel)
    unchanged = new_value is new_default or (
        np.isscalar(new_value) and np.isscalar(new_default) and new_value == new_default)
    same = np.isscalar(new_value) and np.isscalar(old_value) and new_value == old_value
    if not (unchanged or same):
        from .data._validation import describe

        raise TypeError(f"{func}() got both {new}= and {old}= ({new}={describe(new_value)} and "
                        f"{old}={describe(old_value)}); expected only {new}= ({old}= is its "
                        "deprecated name).")
    return old_value


#: a number inside a level name: a minus sign counts only where no word character precedes it
#: ("(-0.5, 2]" holds -0.5, "site-2" holds 2).
_NUMBER_IN_TEXT = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?|\d+(?:\.\d+)?")


def _natural_key(v: Any) -> tuple[Any, ...]:
    if v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)):
        return (2, (), "")
    if isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating)):
        return (0, float(v), str(v))
    text = str(v)
    try:
        number = float(text.strip().replace("_", "!"))  # "1_000" is a name, not a number
    except ValueError:
        number = None
    if number is not None and math.isfinite(number):
        return (0, number, text)
    parts: list[tuple[int, Any]] = []
    pos = 0
    for m in _NUMBER_IN_TEXT.finditer(text):
        if m.start() > pos:
            parts.append((1, text[pos:m.start()].casefold()))
        parts.append((0, float(m.group())))
        pos = m.end()
    if pos < len(text):
        parts.append((1, text[pos:].casefold()))
    return (1, tuple(parts), text)


def natural_order(levels: Any) -> list[Any]:
    """The distinct ``levels`` in the order a reader expects: numbers (and text that is a
    number) numerically, then text with the numbers inside it compared as numbers.

    Integer site codes read ``1, 2, ..., 10, 11`` rather than ``1, 10, 11, 2``; ``"site 2"``
    comes before ``"site 10"``, and quantile bins such as ``"(-0.5, 2.0]"`` sort by their
    lower edge. Missing values (``None``, NaN) come last; the levels themselves are returned
    unchanged (same objects, same types), each once, in their first-seen spelling.

    Parameters
    ----------
    levels : iterable
        Level values (ints, floats, strings, or a mix), possibly repeated.

    Returns
    -------
    list

    Examples
    --------
    >>> natural_order([10, 2, 1, 11, 2])
    [1, 2, 10, 11]
    >>> natural_order(["10", "2", "1", "12"])
    ['1', '2', '10', '12']
    >>> natural_order(["site 10", "b", "site 2", "A"])
    ['A', 'b', 'site 2', 'site 10']
    >>> natural_order(["(4.0, 12.0]", "(0.999, 2.0]", "(2.0, 4.0]"])
    ['(0.999, 2.0]', '(2.0, 4.0]', '(4.0, 12.0]']
    """
    return sorted(dict.fromkeys(levels), key=_natural_key)
