"""opsbot's small markdown, converted into each channel's dialect, and fitted to each channel's size.

A message's lines are written in opsbot's subset (`###` headings, `**bold**`, `[text](url)`, `- ` lists,
`` `code` ``, blank lines between paragraphs) with outsiders' text already neutral (opsbot.markup.plain), and
mention marks (opsbot.message.mention) where people are @-mentioned. One converter per dialect turns that into
what the channel renders, escaping what the dialect still treats as markup:

- `dingtalk` and `wecom`: their markdown is opsbot's; only the marks become `@id` (DingTalk) or `<@id>` (WeCom);
- `lark_md` (Feishu cards): no headings there, so a heading is bold; marks become `<at id=…></at>`;
- `slack` (mrkdwn, sent with `verbatim`, so Slack links nothing by itself): `&`, `<`, `>` escaped, `*bold*`,
  `<url|text>`, `•` lists; marks become `<@U…>`;
- `html` and `text` (e-mail): everything escaped for HTML; links as `<a>`, or as "text (url)" in the text part.

`fit` keeps a rendering within the channel's limit: long lines are cut with "…" (never inside a link or a mark),
then the last lines are summarised as "… and N more lines". Splitting to size is rendering, never a failed send.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from opsbot.config.model import Person
from opsbot.i18n import t
from opsbot.message import MENTION_CLOSE, MENTION_OPEN, mention

People = Callable[[str], Person | None]  # a person by id: Config.person
# A mention's handle in a channel for one person ("" when the channel does not know them).
Handle = Callable[[Person], str]

_MARK = re.compile(f"{MENTION_OPEN}([^{MENTION_CLOSE}]*){MENTION_CLOSE}")
_INLINE = re.compile(
    r"\*\*(?P<bold>.+?)\*\*"
    r"|\[(?P<label>[^\]\n]*)\]\((?P<url>[^)\s]+)\)"
    r"|`(?P<code>[^`\n]*)`"
    f"|{MENTION_OPEN}(?P<mark>[^{MENTION_CLOSE}]*){MENTION_CLOSE}"
)
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
LINE_CHARS = 300  # a line longer than this is cut first when a message is over its channel's size


def _handles(ids: str, people: People, handle: Handle) -> list[str]:
    """The channel's handles of the people a mark names (person ids, comma-separated); unknown ones are left out."""
    found = [handle(person) for person in map(people, filter(None, ids.split(","))) if person is not None]
    return [value for value in found if value]


def mentioned(text: str, people: People, handle: Handle) -> list[str]:
    """The handles the marks in `text` stand for, in order, each once."""
    found = [value for match in _MARK.finditer(text) for value in _handles(match.group(1), people, handle)]
    return list(dict.fromkeys(found))


def _mark_text(ids: str, people: People, handle: Handle, form: Callable[[str], str]) -> str:
    """A mark as the channel writes it: each handle after a space (nothing for nobody the channel knows)."""
    return "".join(f" {form(value)}" for value in _handles(ids, people, handle))


def with_mention_line(lines: list[str], person_ids: list[str]) -> list[str]:
    """The lines, with the mentions no line places (by its mark) as a last paragraph."""
    placed = {p for line in lines for match in _MARK.finditer(line) for p in match.group(1).split(",")}
    missing = [p for p in person_ids if p not in placed]
    return [*lines, "", mention(missing)] if missing else list(lines)


def leading_heading(lines: list[str], title: str) -> tuple[str, list[str]]:
    """A card's title: the heading the lines start with (taken off them, with the blank line after it), else
    `title` with the lines as they are."""
    heading = _HEADING.match(lines[0]) if lines else None
    # A header is plain text: a heading with a link or a mention stays in the body.
    if not heading or not heading.group(2).strip() or MENTION_OPEN in lines[0] or "](" in lines[0]:
        return title, list(lines)
    rest = lines[1:]
    return heading.group(2).strip(), rest[1:] if rest and not rest[0].strip() else rest


# --- the dialects ----------------------------------------------------------------------------------------------


def _by_line(text: str, convert: Callable[[str], str]) -> str:
    """Each line converted; a line that starts with a mark does not start with the space a mark brings."""
    return "\n".join(
        convert(line).lstrip(" ") if line.startswith(MENTION_OPEN) else convert(line) for line in text.split("\n")
    )


def _marks_only(people: People, handle: Handle, form: Callable[[str], str]) -> Callable[[str], str]:
    return lambda line: _MARK.sub(lambda m: _mark_text(m.group(1), people, handle, form), line)


def dingtalk(text: str, people: People, handle: Handle) -> str:
    """DingTalk markdown is opsbot's: only the marks become `@<user id or mobile>`."""
    return _by_line(text, _marks_only(people, handle, lambda h: f"@{h}"))


def wecom(text: str, people: People, handle: Handle) -> str:
    """WeCom's markdown takes opsbot's as it is; a mention is `<@userid>`."""
    return _by_line(text, _marks_only(people, handle, lambda h: f"<@{h}>"))


def _convert(
    text: str,
    escape: Callable[[str], str],
    bold: Callable[[str], str],
    link: Callable[[str, str], str],
    code: Callable[[str], str],
    mark: Callable[[str], str],
) -> str:
    """One line's inline markup in another dialect; plain runs between tokens go through `escape`."""
    out, last = [], 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[last : match.start()]))
        if match.group("bold") is not None:
            out.append(bold(_convert(match.group("bold"), escape, bold, link, code, mark)))
        elif match.group("url") is not None:
            out.append(link(match.group("label"), match.group("url")))
        elif match.group("code") is not None:
            out.append(code(match.group("code")))
        else:
            out.append(mark(match.group("mark")))
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


def lark_md(text: str, people: People, handle: Handle) -> str:
    """Feishu's lark_md: bold and links as in markdown, no headings (bold instead), `<at id=…></at>` mentions."""
    marks = _marks_only(people, handle, lambda h: f"<at id={h}></at>")

    def convert(line: str) -> str:
        heading = _HEADING.match(line)
        return marks((f"**{heading.group(2)}**" if heading.group(2) else "") if heading else line)

    return _by_line(text, convert)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_url(url: str) -> str:
    # `|` ends the URL part of <url|text>, `>` the link: neither may stand in it raw.
    return _slack_escape(url).replace("|", "%7C")


def slack(text: str, people: People, handle: Handle) -> str:
    """Slack's mrkdwn (sent with verbatim: true, so only what opsbot writes as `<…>` is a link or mention)."""

    def convert(line: str) -> str:
        heading = _HEADING.match(line)
        if heading:
            line = f"**{heading.group(2)}**" if heading.group(2) else ""
        bullet = ""
        if line.startswith("- "):
            bullet, line = "• ", line[2:]
        return bullet + _convert(
            line,
            _slack_escape,
            lambda inner: f"*{inner}*",
            lambda label, url: f"<{_slack_url(url)}|{_slack_escape(label).replace('|', '｜')}>",
            lambda code: f"`{_slack_escape(code)}`",
            lambda ids: _mark_text(ids, people, handle, lambda h: f"<@{h}>"),
        )

    return _by_line(text, convert)


def _html_link(label: str, url: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>'


def html_body(text: str) -> str:
    """E-mail's HTML: paragraphs, headings, lists; every character of the text escaped; no mention exists."""

    def inline(line: str) -> str:
        return _convert(
            line,
            html.escape,
            lambda inner: f"<strong>{inner}</strong>",
            _html_link,
            lambda code: f"<code>{html.escape(code)}</code>",
            lambda _ids: "",
        )

    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []

    def close() -> None:
        if paragraph:
            blocks.append("<p>" + "<br>\n".join(paragraph) + "</p>")
            paragraph.clear()
        if items:
            blocks.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.split("\n"):
        heading = _HEADING.match(line)
        if not line.strip():
            close()
        elif heading:
            close()
            level = min(6, max(2, len(heading.group(1))))
            blocks.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif line.startswith("- "):
            if paragraph:
                close()
            items.append(inline(line[2:]))
        else:
            if items:
                close()
            paragraph.append(inline(line))
    close()
    return "\n".join(blocks)


def plain_text(text: str) -> str:
    """E-mail's text part: the markup dropped, links as "text (url)"."""
    lines = []
    for line in text.split("\n"):
        heading = _HEADING.match(line)
        if heading:
            line = heading.group(2)
        lines.append(
            _convert(
                line,
                lambda s: s,
                lambda inner: inner,
                lambda label, url: f"{label} ({url})" if label else url,
                lambda code: code,
                lambda _ids: "",
            )
        )
    return "\n".join(lines)


# --- fitting a rendering into its channel's limit --------------------------------------------------------------


def cut_line(line: str, limit: int) -> str:
    """`line` in at most about `limit` characters, cut with "…" between tokens, never inside a link or a mark."""
    if len(line) <= limit:
        return line
    out, used, last = [], 0, 0
    for match in list(_INLINE.finditer(line)) + [None]:
        start = match.start() if match else len(line)
        run = line[last:start]
        if used + len(run) > limit:
            out.append(run[: max(0, limit - used - 1)] + "…")
            return "".join(out)
        out.append(run)
        used += len(run)
        if match is None:
            break
        token = match.group(0)
        if used + len(token) > limit and match.group("mark") is None:
            out.append("…")
            return "".join(out)
        out.append(token)
        used += len(token) if match.group("mark") is None else 0
        last = match.end()
    return "".join(out)


def summary_line(hidden: int, language: str) -> str:
    return t(language, f"……还有 {hidden} 行，未显示", f"… and {hidden} more lines not shown")


def fit(
    lines: list[str], render: Callable[[list[str]], object], size: Callable[[object], int], limit: int, language: str
):
    """`render(lines)` within `limit` (as `size` measures it): cut long lines, then summarise the last ones."""
    body = render(lines)
    if size(body) <= limit:
        return body
    lines = [cut_line(line, LINE_CHARS) for line in lines]
    body = render(lines)
    if size(body) <= limit:
        return body
    # The most lines that fit with a summary of the rest: binary search, as rendering is not linear in lines.
    low, high = 0, len(lines) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if size(render(lines[:middle] + ["", summary_line(len(lines) - middle, language)])) <= limit:
            low = middle
        else:
            high = middle - 1
    return render(lines[:low] + ["", summary_line(len(lines) - low, language)])
