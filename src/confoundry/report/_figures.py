"""Figures of result objects as PNG data URIs: nothing user-controlled ever becomes markup."""

from __future__ import annotations

import base64
import io
from typing import Any

#: resolution of inlined figures: sharp enough to read, small enough to mail.
DPI = 80


def figure_to_data_uri(fig: Any, *, dpi: int = DPI) -> str:
    """Encode a matplotlib figure as a ``data:image/png;base64,...`` URI and close it.

    The PNG carries no metadata (matplotlib's default "Software" text holds a URL).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(); _ = ax.plot([0, 1], [0, 1])
    >>> figure_to_data_uri(fig).startswith("data:image/png;base64,")
    True
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def plot_result(result: Any, *, dpi: int = DPI) -> tuple[str | None, str | None]:
    """``(data_uri, None)`` from ``result.plot()``, or ``(None, reason)`` when it cannot plot."""
    import matplotlib
    import matplotlib.pyplot as plt

    plot = getattr(result, "plot", None)
    if not callable(plot):
        return None, None
    before = set(plt.get_fignums())
    try:
        with matplotlib.rc_context({"figure.max_open_warning": 0}):
            fig = plot()
            if fig is None or not hasattr(fig, "savefig"):
                fig = getattr(fig, "figure", None) or plt.gcf()
            return figure_to_data_uri(fig, dpi=dpi), None
    except Exception as exc:  # a figure must never break the report
        return None, f"figure unavailable: {type(exc).__name__}: {exc}"
    finally:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
