"""Write a file whole or not at all: a temporary file in the same folder, renamed into place."""

from __future__ import annotations

import os
import tempfile
from typing import Any


def _mode_for(path: str) -> int:
    """The permissions the file would get from a plain ``open(path, "w")``."""
    try:
        return os.stat(path).st_mode & 0o7777  # keep an existing file's permissions
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_text_atomic(path: Any, text: str, *, encoding: str = "utf-8") -> str:
    """Write ``text`` to ``path`` through a temporary file and :func:`os.replace`.

    A reader (or a process that dies while writing) never sees a half-written file: until the
    rename, ``path`` holds its previous content (or does not exist), and a failure while
    writing removes the temporary file and leaves ``path`` untouched.

    Parameters
    ----------
    path : str or path-like
    text : str
    encoding : str

    Returns
    -------
    str
        ``path`` as a string.

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> p = write_text_atomic(os.path.join(d, "r.html"), "<p>whole</p>")
    >>> open(p).read(), sorted(os.listdir(d))
    ('<p>whole</p>', ['r.html'])
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    data = text.encode(encoding)  # an encoding error happens before anything is written
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
