"""The version of confoundry, in one place.

``pyproject.toml`` reads it (``[tool.setuptools.dynamic]``) and ``CITATION.cff`` repeats it;
``tests/test_packaging.py`` checks that the three agree.
"""

__version__ = "0.1.0.dev0"
