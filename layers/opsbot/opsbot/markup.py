"""Text from outsiders, made plain for the markup it is shown in.

Commit titles, branch names, merge-request titles, step names, usernames and chat arguments are written by
people opsbot does not vouch for. Shown raw in the bot's own card they could carry a live link ("click here to
release"), an image, an HTML tag (`<font color=red>`), an @all, or a GitLab quick action (`/merge` at the start
of a line of a note the bot posts). Every such value passes through the helper of its dialect, once, where the
message is built.

A chat message is built once for every channel (opsbot.message), so its outsiders' text goes through `plain`, the
neutral form: it holds none of the characters any chat dialect builds markup from (DingTalk's and WeCom's
markdown, Feishu's lark_md with `<at>`, Slack's mrkdwn with `<url|text>` and `<!channel>`, HTML in e-mail). Each
channel then converts opsbot's own small markdown into its dialect (opsbot.channels.markdown, one converter per
dialect), escaping what its dialect still treats as markup (Slack's `&`, HTML's `&` and quotes). `plain`:

- no link and no image: `[` and `]` become their full-width forms, so `[text](url)` and `![](url)` never form;
- no bare URL: `://` becomes `：//`, which no autolinker takes for a scheme;
- no HTML tag, quote or heading: `<`, `>` and `#` become full-width;
- no mention: `@` becomes `＠`, so `@all`, `@所有人` and `@someone` stay words;
- one line: newlines and tabs become spaces, so nothing starts a line of its own (a heading, a list, a quick action);
- no control or private-use character: opsbot marks where a person is @-mentioned with private-use characters
  (opsbot.message.mention), so text from outsiders can never name someone to mention;
- no bidi control and no invisible character (U+202A–U+202E, U+2066–U+2069, U+200B–U+200F, U+061C, U+FEFF, …): a
  branch name or commit title cannot show itself as something else (a right-to-left override that reverses
  `main.txt` into another name, a zero-width space that splits `@all` from the eye but not from a parser).

The full-width forms read the same to a person and mean nothing to a renderer.
"""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")
# C0 and C1 controls, bidi controls and invisible formatting characters (zero-width spaces and joiners, marks, the
# word joiner and invisible operators, the BOM, the Mongolian vowel separator), and the private-use area where
# opsbot.message keeps its mention marks.
_UNSEEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ue000-\uf8ff]"
)
_COMMON = {"[": "［", "]": "］", "<": "＜", ">": "＞", "#": "＃", "@": "＠", "`": "ˋ", "|": "｜"}
# Chat markdowns also take * for emphasis and lists (and Slack's ~ for strike-through, _ for italics: harmless
# words); GitLab's is CommonMark, where a backslash escapes.
_PLAIN = str.maketrans({**_COMMON, "*": "＊"})
_GITLAB = str.maketrans({**_COMMON, "*": "\\*", "_": "\\_", "~": "\\~", "!": "\\!", "\\": "\\\\"})


def _one_line(text: object, limit: int) -> str:
    flat = _WHITESPACE.sub(" ", _UNSEEN.sub("", str(text if text is not None else ""))).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _no_scheme(text: str) -> str:
    return text.replace("://", "：//")


def plain(text: object, limit: int = 200) -> str:
    """Plain text inside a chat message, whichever channel renders it (opsbot.message)."""
    return _no_scheme(_one_line(text, limit).translate(_PLAIN))


# DingTalk's was the first chat dialect; the neutral form is what it always needed, under the name its callers use.
dingtalk = plain


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
