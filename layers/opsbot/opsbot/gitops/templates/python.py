"""Python: pip and pytest. Each Drone step is a new container that shares only the workspace, so the
dependencies go into a virtualenv in the workspace, which the test step activates."""

from __future__ import annotations

from opsbot.gitops.templates.base import Template, Toolchain

ACTIVATE = ". .venv/bin/activate"


def toolchain(files: set[str]) -> Toolchain:
    install = ["python -m venv .venv", ACTIVATE, "pip install --upgrade pip"]
    if "requirements.txt" in files:
        install.append("pip install -r requirements.txt")
    if {"pyproject.toml", "setup.py"} & files:
        install.append("pip install -e .")
    install.append("pip install pytest")
    return Toolchain(image="python:3.12-slim", build=tuple(install), test=("pytest -q",), test_setup=(ACTIVATE,))


TEMPLATE = Template("python", ("pyproject.toml", "requirements.txt", "setup.py"), toolchain)
