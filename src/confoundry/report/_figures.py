"""Figures of result objects as PNG data URIs: nothing user-controlled ever becomes markup.

Every figure is laid out with matplotlib's constrained layout before it is saved, so tick
labels, axis labels, titles and colour bars stay inside the picture; a figure that still
overflows its canvas (a label longer than the figure is wide) is saved with its tight bounding
box, so nothing is ever clipped.
"""

from __future__ import annotations

import base64
import io
import warnings
from typing import Any

#: resolution of inlined figures: sharp enough to read, small enough to mail.
DPI = 80
#: how far (in pixels at the figure's dpi) the drawn content may reach past the canvas.
OVERFLOW_TOLERANCE_PX = 1.5


def fit_layout(fig: Any) -> None:
    """Give ``fig`` constrained layout (unless it has it) and draw it.

    A figure whose colour bar was made for another layout engine (matplotlib refuses to
    switch then) is laid out once with ``tight_layout`` instead.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(2, 1.5)); _ = ax.set_ylabel("a long label " * 2)
    >>> fit_layout(fig); type(fig.get_layout_engine()).__name__
    'ConstrainedLayoutEngine'
    >>> plt.close(fig)
    """
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "constrained_layout not applied": measured below
        if not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
            try:
                fig.set_layout_engine("constrained")
            except RuntimeError:  # a colour bar made for the tight layout engine
                try:
                    fig.tight_layout()
                except Exception:  # noqa: BLE001 - a layout must never break the report
                    pass
        fig.canvas.draw()


def overflow_px(fig: Any) -> float:
    """How far (pixels at the figure's dpi) the drawn content reaches past the canvas; 0 when
    everything is inside.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(3, 2)); fit_layout(fig)
    >>> overflow_px(fig)
    0.0
    >>> plt.close(fig)
    """
    renderer = fig.canvas.get_renderer()
    bb = fig.get_tightbbox(renderer)  # inches
    w, h = fig.get_size_inches()
    over = max(0.0, -bb.x0, -bb.y0, bb.x1 - w, bb.y1 - h)
    return float(over * fig.dpi)


def figure_to_data_uri(fig: Any, *, dpi: int = DPI) -> str:
    """Encode a matplotlib figure as a ``data:image/png;base64,...`` URI and close it.

    The figure is laid out first (:func:`fit_layout`); one that still overflows its canvas is
    saved with its tight bounding box. The PNG carries no metadata (matplotlib's default
    "Software" text holds a URL).

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
        fit_layout(fig)
        extra: dict[str, Any] = {}
        if overflow_px(fig) > OVERFLOW_TOLERANCE_PX:
            extra = {"bbox_inches": "tight", "pad_inches": 0.05}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, **extra)
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def plot_result(result: Any, *, dpi: int = DPI) -> tuple[str | None, str | None]:
    """``(data_uri, None)`` from ``result.plot()``, or ``(None, reason)`` when it cannot plot.

    ``plot()`` runs with constrained layout as the default of every new figure and its
    warnings (matplotlib's deprecations, a layout change) are not printed: the report is no
    place for them, and the step's own warnings are kept in its ``StepStatus``.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    plot = getattr(result, "plot", None)
    if not callable(plot):
        return None, None
    error: Exception | None = None
    # a plot() written for another layout engine (a colour bar, then tight_layout) raises
    # under constrained layout: it gets a second try with matplotlib's own defaults
    for constrained in (True, False):
        before = set(plt.get_fignums())
        try:
            with matplotlib.rc_context({"figure.max_open_warning": 0,
                                        "figure.constrained_layout.use": constrained}), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = plot()
                if fig is None or not hasattr(fig, "savefig"):
                    fig = getattr(fig, "figure", None) or plt.gcf()
                return figure_to_data_uri(fig, dpi=dpi), None
        except Exception as exc:  # a figure must never break the report
            error = error or exc
        finally:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
    return None, f"figure unavailable: {type(error).__name__}: {error}"
