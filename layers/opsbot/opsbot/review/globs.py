"""Path globs as config writes them: `*` stays within a directory, `**` crosses directories, and a glob with
no slash (`*.md`) matches a file name in any directory, as .gitignore does; a leading `/` anchors a glob at
the root (`/pom.xml`)."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=512)
def _compile(glob: str) -> re.Pattern:
    if glob.startswith("/"):
        glob = glob.lstrip("/")  # anchored at the repository's root
    elif "/" not in glob:
        glob = "**/" + glob
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(path: str, globs) -> bool:
    return any(_compile(glob).match(path) for glob in globs)
