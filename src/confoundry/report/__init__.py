"""Self-contained HTML reports: Jinja2 templates with autoescaping, figures inlined as PNG.

Examples
--------
>>> from confoundry.report import render_html
>>> render_html.__name__
'render_html'
"""

from ._figures import figure_to_data_uri as figure_to_data_uri
from ._html import render_html, write_html

__all__ = ["render_html", "write_html"]
