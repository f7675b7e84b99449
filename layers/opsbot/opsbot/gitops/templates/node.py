"""Node: npm. `npm ci` when the lock file is committed (reproducible), `npm install` otherwise."""

from __future__ import annotations

from opsbot.gitops.templates.base import Template, Toolchain


def toolchain(files: set[str]) -> Toolchain:
    install = "npm ci" if "package-lock.json" in files else "npm install"
    return Toolchain(image="node:20", build=(install, "npm run build --if-present"), test=("npm test",))


TEMPLATE = Template("node", ("package.json",), toolchain)
