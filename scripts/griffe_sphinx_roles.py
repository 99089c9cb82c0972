"""A griffe extension for the docs build: Sphinx roles in the docstrings become links.

confoundry's docstrings are numpydoc, written for Sphinx: they cross-reference with roles such
as ``:func:`probe_confounders```, ``:class:`~confoundry.AuditData``` or ``:meth:`.plot```.
mkdocstrings renders docstrings as Markdown, where a role would show as raw text. This
extension rewrites each role, when the docs are built (the source is never edited), into a
mkdocstrings cross-reference to the page and anchor where the target is documented, or into
plain code when the target is not on the site (a private helper, another library).

Targets are resolved the way Sphinx's Python domain searches them: as written, then relative to
the object's class, module and package, then under ``confoundry`` and each public module.
``mkdocs.yml`` loads it with ``extensions: [scripts/griffe_sphinx_roles.py]``; with
``CONFOUNDRY_DOCS_ROLES=1`` the build logs every role left as code.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import griffe

PACKAGE = "confoundry"
#: the modules the API reference documents, one page each (docs/api/*.md)
PUBLIC_MODULES = ("attribution", "audit", "controls", "data", "datasets", "demos", "domains",
                  "models", "probes", "report", "stats")
ROLE = re.compile(r":(?:py:)?(func|class|meth|attr|mod|data|obj|exc|const):`([^`]+)`")

logger = logging.getLogger("mkdocs.plugins.confoundry_roles")


def _walk(obj: Any) -> Any:
    """Every object below ``obj`` (itself included), aliases excluded."""
    yield obj
    for member in list(obj.members.values()):
        if not member.is_alias:
            yield from _walk(member)


def _lookup(collection: Any, path: str) -> Any:
    try:
        return collection[path]
    except Exception:  # noqa: BLE001 - KeyError, or an alias whose target is not loaded
        return None


def _canonical(obj: Any) -> str | None:
    try:
        return obj.final_target.path if obj.is_alias else obj.path
    except Exception:  # noqa: BLE001 - an alias to another library
        return None


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring of the package into a link or code."""

    def on_package(self, *, pkg: Any, loader: Any, **kwargs: Any) -> None:
        if pkg.path != PACKAGE:
            return
        collection = loader.modules_collection
        rendered = self._rendered_paths(collection)
        left: list[str] = []
        for obj in _walk(pkg):
            if obj.docstring is None or ":" not in obj.docstring.value:
                continue
            obj.docstring.value = ROLE.sub(
                lambda m, o=obj: self._rewrite(m, o, collection, rendered, left),
                obj.docstring.value)
        if left and os.environ.get("CONFOUNDRY_DOCS_ROLES"):
            logger.info("roles left as code (target not on the site): %s",
                        ", ".join(sorted(set(left))))

    @staticmethod
    def _rendered_paths(collection: Any) -> dict[str, str]:
        """Canonical path of each documented object -> the path its page renders it under."""
        out: dict[str, str] = {}
        for mod_name in PUBLIC_MODULES:
            module = _lookup(collection, f"{PACKAGE}.{mod_name}")
            if module is None:
                continue
            out[module.path] = module.path
            for name in module.exports or ():
                member = _lookup(collection, f"{module.path}.{name}")
                canonical = _canonical(member) if member is not None else None
                if canonical is not None:
                    out.setdefault(canonical, f"{module.path}.{name}")
        top = _lookup(collection, PACKAGE)
        out[PACKAGE] = PACKAGE
        for name in ("__version__", "Finding", "Verdict"):
            member = _lookup(collection, f"{PACKAGE}.{name}")
            canonical = _canonical(member) if member is not None else None
            if canonical is not None and top is not None:
                out.setdefault(canonical, f"{PACKAGE}.{name}")
        return out

    @staticmethod
    def _candidates(target: str, obj: Any) -> list[str]:
        module = obj if obj.is_module else obj.module
        scopes = [obj.path] if obj.is_class else []
        if obj.parent is not None and obj.parent.is_class:
            scopes.append(obj.parent.path)
        scopes += [module.path] + ([module.parent.path] if module.parent is not None else [])
        if target.startswith("."):
            return [f"{scope}{target}" for scope in scopes]
        return ([target] + [f"{scope}.{target}" for scope in scopes] + [f"{PACKAGE}.{target}"]
                + [f"{PACKAGE}.{m}.{target}" for m in PUBLIC_MODULES])

    def _rewrite(self, match: re.Match, obj: Any, collection: Any, rendered: dict[str, str],
                 left: list[str]) -> str:
        text = match.group(2).strip()
        explicit = re.fullmatch(r"(.+?)\s*<([^>]+)>", text)
        target = explicit.group(2) if explicit else text
        short = target.startswith("~")
        target = target.lstrip("~").rstrip("()")
        label = explicit.group(1) if explicit else (
            target.rsplit(".", 1)[-1] if short else target.lstrip("."))
        if match.group(1) in ("func", "meth") and not label.endswith(")"):
            label += "()"
        for candidate in self._candidates(target, obj):
            found = _lookup(collection, candidate)
            canonical = _canonical(found) if found is not None else None
            if canonical is None:
                continue
            anchor = rendered.get(canonical)
            if anchor is None:  # a member of a documented class: map the class prefix
                head, _, tail = canonical.rpartition(".")
                if head in rendered:
                    anchor = f"{rendered[head]}.{tail}"
            if anchor is not None:
                return f"[`{label}`][{anchor}]"
            break
        left.append(f"{obj.path}: {match.group(0)}")
        return f"`{label}`"
