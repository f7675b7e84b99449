"""The .drone.yml templates, one module per language. A template knows the files that give a repository away
as written in its language, and, from the repository's top-level files, the image and commands of the build
and test steps. gitops/pipelines.py adds what every pipeline has (publish, scan, promote)."""

from __future__ import annotations

from opsbot.gitops.templates import java, node, python
from opsbot.gitops.templates.base import Template, Toolchain  # noqa: F401  (what callers name a template by)


def all_templates() -> dict[str, Template]:
    # The order is detection's preference: a Java or Python repository often carries a package.json for its
    # front-end assets or tooling, while a pom.xml or pyproject.toml is never incidental.
    return {t.language: t for t in (java.TEMPLATE, python.TEMPLATE, node.TEMPLATE)}


def detect(files: set[str]) -> tuple[str, str] | None:
    """(language, the file that told) from a repository's top-level file names, or None."""
    for template in all_templates().values():
        for marker in template.markers:
            if marker in files:
                return template.language, marker
    return None
