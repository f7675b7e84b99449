"""Text from outsiders, made plain for the markup it is shown in.

Commit titles, branch names, merge-request titles, step names, usernames and chat arguments are written by
people opsbot does not vouch for. Shown raw in the bot's own card they could carry a live link ("click here to
release"), an image, an HTML tag (`<font color=red>`), an @all, or a GitLab quick action (`/merge` at the start
of a line of a note the bot posts). Every such value passes through the helper of its dialect, once, where the
message is built:

- no link and no image: `[` and `]` become their full-width forms, so `[text](url)` and `![](url)` never form;
- no bare URL: `://` becomes `：//`, which no autolinker takes for a scheme;
- no HTML tag, quote or heading: `<`, `>` and `#` become full-width;
- no mention: `@` becomes `＠`, so `@all`, `@所有人` and `@someone` stay words;
- one line: newlines and tabs become spaces, so nothing starts a line of its own (a heading, a list, a quick action).

The full-width forms read the same to a person and mean nothing to a renderer.
"""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")
_COMMON = {"[": "［", "]": "］", "<": "＜", ">": "＞", "#": "＃", "@": "＠", "`": "ˋ", "|": "｜"}
# DingTalk's markdown also takes * for emphasis and lists; GitLab's is CommonMark, where a backslash escapes.
_DINGTALK = str.maketrans({**_COMMON, "*": "＊"})
_GITLAB = str.maketrans({**_COMMON, "*": "\\*", "_": "\\_", "~": "\\~", "!": "\\!", "\\": "\\\\"})


def _one_line(text: object, limit: int) -> str:
    flat = _WHITESPACE.sub(" ", str(text if text is not None else "")).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _no_scheme(text: str) -> str:
    return text.replace("://", "：//")


def dingtalk(text: object, limit: int = 200) -> str:
    """Plain text inside DingTalk markdown (robot markdown and actionCard)."""
    return _no_scheme(_one_line(text, limit).translate(_DINGTALK))


def gitlab(text: object, limit: int = 200) -> str:
    """Plain text inside a GitLab note (GitLab Flavored Markdown); never a quick action."""
    return _no_scheme(_one_line(text, limit).translate(_GITLAB)).lstrip("/")


def link_target(url: object) -> str:
    """A URL fit to stand in `[text](url)`: http(s) only, and nothing that could end the link early or start
    markup of its own; "" otherwise."""
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 2000:
        return ""
    if any(c in url for c in " \t\r\n()<>[]`\"'"):
        return ""
    return url
