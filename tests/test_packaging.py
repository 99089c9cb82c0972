"""Packaging and documentation contracts (issue 21).

One version (``src/confoundry/_version.py``) that ``pyproject.toml``, ``CITATION.cff`` and the
installed metadata agree on; an API reference page for every name of ``confoundry.__all__``,
each with its parameters and an example; notebooks that the docs build executes; the docs
checker (``scripts/check_docs_site.py``) on small hand-made sites; CI running both checks.
The builds themselves run in ``make docs`` and ``make wheel-check`` (``.ci/run``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import re
import sys
import zlib
from pathlib import Path

import pytest

import confoundry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MKDOCS = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
PUBLIC_MODULES = ("attribution", "audit", "controls", "data", "datasets", "demos", "domains",
                  "models", "probes", "report", "stats")
#: names whose docstring has no "Examples" section yet (result classes are built by the
#: function that returns them, whose example shows them). The list may only shrink: a name
#: that gains an example must leave it, and a new public name needs an example.
NO_EXAMPLE_YET = set()
#: names with parameters but no "Parameters" (or, for a class, "Attributes") section yet
NO_PARAMETERS_SECTION_YET = set()


def _section(doc: str, *titles: str) -> bool:
    return any(re.search(rf"^{t}\n-{{3,}}$", doc, re.M) for t in titles)


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- one version ----------------------------------------------------------------------------

def test_version_comes_from_version_py_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"], "a static version in pyproject.toml"
    assert "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "confoundry._version.__version__"
    from confoundry import _version

    assert confoundry.__version__ == _version.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?",
                        confoundry.__version__), confoundry.__version__


def test_citation_cff_and_installed_metadata_agree_on_the_version():
    cff = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    versions = re.findall(r"^version:\s*[\"']?([^\"'\s]+)[\"']?\s*$", cff, re.M)
    assert versions == [confoundry.__version__], (versions, confoundry.__version__)
    # the installed distribution (editable install: re-run `make setup` after a version bump)
    assert importlib.metadata.version("confoundry") == confoundry.__version__


# --- the API reference ----------------------------------------------------------------------

def _page_of(name: str) -> str:
    """The API page that documents ``name``: that of the public module exporting it."""
    for mod in PUBLIC_MODULES:
        if name in getattr(importlib.import_module(f"confoundry.{mod}"), "__all__", ()):
            return mod
    return "confoundry"


def test_every_public_name_has_an_api_page_in_the_nav():
    top_members = re.search(r"members:\s*\[([^\]]*)\]",
                            (DOCS / "api" / "confoundry.md").read_text(encoding="utf-8"))
    top = {m.strip() for m in top_members.group(1).split(",")}
    missing = []
    for name in confoundry.__all__:
        page = _page_of(name)
        text = (DOCS / "api" / f"{page}.md").read_text(encoding="utf-8")
        if page == "confoundry":
            if "::: confoundry\n" not in text or name not in top:
                missing.append(name)
        elif not re.search(rf"^::: confoundry\.{page}\s*$", text, re.M):
            missing.append(name)
        assert f"api/{page}.md" in MKDOCS, f"docs/api/{page}.md is not in the nav"
    assert not missing, f"not on any API page: {missing}"


def test_public_callables_document_parameters_and_an_example():
    no_example, no_parameters = set(), set()
    for name in confoundry.__all__:
        obj = getattr(confoundry, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # constants and __version__: shown with their value
        doc = inspect.getdoc(obj) or ""
        if not _section(doc, "Examples"):
            no_example.add(name)
        params = [p for p in inspect.signature(obj).parameters if p != "self"]
        titles = ("Parameters", "Attributes") if inspect.isclass(obj) else ("Parameters",)
        if params and not _section(doc, *titles):
            no_parameters.add(name)
    assert no_example - NO_EXAMPLE_YET == set(), "new public names need an Examples section"
    assert NO_EXAMPLE_YET - no_example == set(), "these have examples now: drop them from the list"
    assert no_parameters - NO_PARAMETERS_SECTION_YET == set()
    assert NO_PARAMETERS_SECTION_YET - no_parameters == set(), "drop these from the list"


def test_docs_build_is_strict_and_executes_the_notebooks_afresh():
    assert re.search(r"^strict: true$", MKDOCS, re.M)
    for key in ("omitted_files", "absolute_links", "unrecognized_links", "anchors"):
        assert re.search(rf"^  {key}: warn$", MKDOCS, re.M), key
    assert "execute: !ENV [CONFOUNDRY_DOCS_EXECUTE, true]" in MKDOCS
    assert re.search(r"^      allow_errors: false$", MKDOCS, re.M)
    assert re.search(r"^      cache: false$", MKDOCS, re.M)
    assert re.search(r"^  font: false$", MKDOCS, re.M)  # no Google Fonts: offline
    assert '--8<-- "CHANGELOG.md"' in (DOCS / "changelog.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["tabular_model_audit", "confounder_probes",
                                  "radiograph_case_study"])
def test_example_notebooks_are_stored_unexecuted_and_in_the_nav(name):
    nb = json.loads((DOCS / "examples" / f"{name}.ipynb").read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert f"examples/{name}.ipynb" in MKDOCS
    source = "".join("".join(c["source"]) for c in code)
    assert "quick=True" in source or "n_boot=" in source  # small settings: < 2 min on 2 cores


# --- scripts/check_docs_site.py on hand-made sites ------------------------------------------

def _inventory(entries: dict[str, str]) -> bytes:
    body = "".join(f"{name} py:function 1 {uri} -\n" for name, uri in entries.items())
    header = ("# Sphinx inventory version 2\n# Project: t\n# Version: 0\n"
              "# The remainder of this file is compressed using zlib.\n")
    return header.encode() + zlib.compress(body.encode())


def _site(tmp_path: Path, *, names=("f", "g"), output=True, figure=True, extra="") -> Path:
    site = tmp_path / "site"
    (site / "api").mkdir(parents=True)
    (site / "examples").mkdir()
    (site / "index.html").write_text(f"<html>{extra}</html>", encoding="utf-8")
    (site / "objects.inv").write_bytes(_inventory(
        {f"confoundry.probes.{n}": f"api/probes.html#confoundry.probes.{n}" for n in names}))
    anchors = "".join(f'<h2 id="confoundry.probes.{n}">{n}</h2>' for n in names)
    (site / "api" / "probes.html").write_text(anchors, encoding="utf-8")
    page = ('<div class="jp-OutputArea-child">out</div>' if output else "") + (
        '<img src="data:image/png;base64,iVBOR">' if figure else "")
    (site / "examples" / "nb.html").write_text(page, encoding="utf-8")
    return site


def test_docs_checker_passes_a_complete_offline_site(tmp_path):
    check = _load_script("check_docs_site")
    site = _site(tmp_path)
    assert check.check_site(site, ["f", "g"], [Path("nb.ipynb")]) == []
    inventory = check.read_inventory(site / "objects.inv")
    assert inventory["confoundry.probes.f"] == "api/probes.html#confoundry.probes.f"


def test_docs_checker_finds_a_public_name_missing_from_the_api_pages(tmp_path):
    check = _load_script("check_docs_site")
    problems = check.check_site(_site(tmp_path, names=("f",)), ["f", "g"], [])
    assert problems == ["confoundry.g is in __all__ but on no API reference page"]


def test_docs_checker_finds_a_notebook_that_was_not_executed(tmp_path):
    check = _load_script("check_docs_site")
    problems = check.check_site(_site(tmp_path, output=False, figure=False), ["f"],
                                [Path("nb.ipynb")])
    assert len(problems) == 2 and all(p.startswith("nb.ipynb: ") for p in problems)
    assert check.check_site(_site(tmp_path / "b", figure=False), ["f"], [Path("nb.ipynb")]) == [
        "nb.ipynb: its page shows no inline figure"]


@pytest.mark.parametrize("tag", [
    '<script src="https://cdn.example.org/x.js"></script>',
    '<link rel="stylesheet" href="//fonts.example.org/css">',
    "<style>@import url(https://fonts.example.org/css);</style>",
    '<img src="http://example.org/a.png">',
])
def test_docs_checker_refuses_a_page_that_loads_from_the_network(tmp_path, tag):
    check = _load_script("check_docs_site")
    problems = check.check_site(_site(tmp_path, extra=tag), ["f"], [Path("nb.ipynb")])
    assert len(problems) == 1 and "must work offline" in problems[0], problems
    # a plain hyperlink is not a load
    assert check.check_offline(_site(tmp_path / "ok", extra='<a href="https://x.org">x</a>')) == []


def test_docs_checker_needs_a_built_site(tmp_path):
    check = _load_script("check_docs_site")
    assert "build the site first" in check.check_site(tmp_path, ["f"], [])[0]


# --- CI runs the builds -----------------------------------------------------------------------

def test_ci_runs_the_tests_first_then_the_docs_and_the_wheel_check():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in ci.splitlines()]
    assert lines.index("make test") < lines.index("make docs") < lines.index("make wheel-check")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^docs: ", makefile, re.M) and re.search(r"^wheel-check: ", makefile, re.M)
    script = (ROOT / "scripts" / "wheel_check.sh").read_text(encoding="utf-8")
    # CPU torch first, as the Makefile installs it, then the wheel with no extras
    assert script.index('vpip "torch==2.13.0"') < script.index('vpip "$WHEEL"')
    assert "confoundry demo pneumonia --out" in script and "import confoundry" in script
