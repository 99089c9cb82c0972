"""Check a built documentation site beyond what ``mkdocs build --strict`` checks.

    python scripts/check_docs_site.py [SITE_DIR]      # default: site

``make docs`` runs it after the build. It fails (exit 1, one line per problem) when

* a name of ``confoundry.__all__`` has no entry on an API reference page (``objects.inv``,
  written by mkdocstrings) or its anchor is missing from that page;
* an example notebook's page shows no executed output, or no inline figure;
* a page loads anything from the network (a script, stylesheet, image or font with an
  ``http(s)://`` or ``//`` address): the site must work offline.
"""

from __future__ import annotations

import re
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_MODULES = ("attribution", "audit", "controls", "data", "datasets", "demos", "domains",
                  "models", "probes", "report", "stats")
#: tags whose src/href the browser fetches when the page loads
_LOADED = re.compile(
    r"<(?:script|img|iframe|source|video|audio|embed)\b[^>]*\bsrc\s*=\s*[\"']"
    r"((?:https?:)?//[^\"']+)"
    r"|<link\b(?=[^>]*\brel\s*=\s*[\"']?(?:stylesheet|preload|modulepreload|icon))[^>]*"
    r"\bhref\s*=\s*[\"']((?:https?:)?//[^\"']+)"
    r"|@import\s+(?:url\()?[\"']?((?:https?:)?//[^\"')]+)"
    r"|url\(\s*[\"']?((?:https?:)?//[^\"')]+)", re.I)


def read_inventory(path: Path) -> dict[str, str]:
    """Identifier -> URI (``page.html#anchor``) from a Sphinx ``objects.inv`` (version 2)."""
    data = path.read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = data.index(b"\n", header_end) + 1
    if not data.startswith(b"# Sphinx inventory version 2"):
        raise ValueError(f"{path} is not a Sphinx inventory (version 2)")
    out = {}
    for line in zlib.decompress(data[header_end:]).decode("utf-8").splitlines():
        m = re.match(r"(?x)(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+(\S*)\s+(.*)", line)
        if m:
            name, uri = m.group(1), m.group(4)
            out[name] = uri[:-1] + name if uri.endswith("$") else uri
    return out


def check_api(site: Path, names: Iterable[str], package: str = "confoundry") -> list[str]:
    """Every public name has an API reference entry whose anchor exists on its page."""
    inventory_path = site / "objects.inv"
    if not inventory_path.is_file():
        return [f"{inventory_path} is missing (mkdocstrings did not run?)"]
    inventory = read_inventory(inventory_path)
    pages: dict[str, str] = {}
    problems = []
    for name in sorted(names):
        candidates = [f"{package}.{name}"] + [f"{package}.{m}.{name}" for m in PUBLIC_MODULES]
        uris = [inventory[c] for c in candidates if c in inventory]
        uris = [u for u in uris if u.startswith("api/")]
        if not uris:
            problems.append(f"{package}.{name} is in __all__ but on no API reference page")
            continue
        page, _, anchor = uris[0].partition("#")
        if page not in pages:
            file = site / page
            pages[page] = file.read_text(encoding="utf-8") if file.is_file() else ""
        if f'id="{anchor}"' not in pages[page]:
            problems.append(f"{package}.{name}: anchor #{anchor} is not on {page}")
    return problems


def check_notebooks(site: Path, notebooks: Iterable[Path]) -> list[str]:
    """Each notebook's page exists and shows executed output, including a figure."""
    problems = []
    for nb in notebooks:
        page = site / "examples" / f"{nb.stem}.html"
        if not page.is_file():
            problems.append(f"{nb.name}: no page {page.relative_to(site)}")
            continue
        html = page.read_text(encoding="utf-8")
        if 'class="jp-OutputArea-child' not in html:
            problems.append(f"{nb.name}: its page shows no output (was it executed?)")
        if not re.search(r"<img\b[^>]*\bsrc=[\"']data:image/png;base64,", html):
            problems.append(f"{nb.name}: its page shows no inline figure")
    return problems


def check_offline(site: Path) -> list[str]:
    """No page or stylesheet loads anything from the network."""
    problems = []
    for file in sorted([*site.rglob("*.html"), *site.rglob("*.css")]):
        text = file.read_text(encoding="utf-8", errors="replace")
        for m in _LOADED.finditer(text):
            url = next(g for g in m.groups() if g)
            problems.append(f"{file.relative_to(site)} loads {url} (the site must work offline)")
    return problems


def check_site(site: Path, names: Iterable[str], notebooks: Iterable[Path]) -> list[str]:
    """All problems of the built site ``site``; empty when it passes."""
    if not (site / "index.html").is_file():
        return [f"{site}/index.html is missing: build the site first (make docs)"]
    return check_api(site, names) + check_notebooks(site, notebooks) + check_offline(site)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    site = Path(args[0]) if args else ROOT / "site"
    import confoundry

    notebooks = sorted((ROOT / "docs" / "examples").glob("*.ipynb"))
    problems = check_site(site, confoundry.__all__, notebooks)
    for p in problems:
        print(f"docs check: {p}", file=sys.stderr)
    if not problems:
        print(f"docs check: {len(confoundry.__all__)} public names on the API pages, "
              f"{len(notebooks)} executed notebooks, nothing loaded from the network")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
