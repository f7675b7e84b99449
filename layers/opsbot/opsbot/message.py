"""The message model: what opsbot says, built once and rendered by each channel in its own dialect.

A Message is a title, its lines (the body, in opsbot's small markdown: `###` headings, `**bold**`, `[text](url)`
links, `- ` lists, `` `code` ``; a blank line between paragraphs), links and buttons (label and URL: the release
buttons), the people it @-mentions (person ids: each channel resolves them to its own handle when it renders) and
a severity. Outsiders' text in the lines went through `opsbot.markup.plain` where the message was built; each
channel converts the rest (opsbot.channels).

A Reply is what a command, an act or a GitOps or review notice answers: a Message's title and markdown text with
what delivery and the audit log need beside it (ok, the project whose group hears it, a one-line detail). It is
built once, by whatever capability has news; `delivery` posts it. Below every capability, so none of them needs
chat to speak.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from opsbot.config.model import Person

SEVERITIES = ("info", "success", "warning", "failure")
# Where a line @-mentions people: the mark carries their person ids between two private-use characters, which
# opsbot.markup.plain removes from outsiders' text, so only opsbot itself can place one.
MENTION_OPEN, MENTION_CLOSE = "\ue000", "\ue001"


def mention(person_ids: list[str]) -> str:
    """The mark that stands, right after a word, for these people's @-mentions in a line ("" for nobody)."""
    return f"{MENTION_OPEN}{','.join(person_ids)}{MENTION_CLOSE}" if person_ids else ""


@dataclass(frozen=True)
class Button:
    label: str
    url: str  # an http(s) URL through opsbot.markup.link_target; "" for a command button
    command: str = ""  # a chat command run as whoever presses it (chat/buttons.py), where the channel says who


def link_buttons(buttons: list[Button]) -> list[Button]:
    """The buttons a channel without interactivity shows: the links (a command button's command is in the text)."""
    return [b for b in buttons if b.url]


@dataclass
class Mentions:
    """People to @-mention, by person id (config `people[].id`)."""

    people: list[str] = field(default_factory=list)
    # DingTalk handles kept by records written before mentions named people (a retried job still mentions them).
    stored_user_ids: list[str] = field(default_factory=list)
    stored_mobiles: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, person: Person | None) -> Mentions:
        return cls(people=[person.id]) if person is not None else cls()

    def add(self, other: Mentions) -> None:
        self.people += [p for p in other.people if p not in self.people]
        self.stored_user_ids += [u for u in other.stored_user_ids if u not in self.stored_user_ids]
        self.stored_mobiles += [m for m in other.stored_mobiles if m not in self.stored_mobiles]

    def mark(self) -> str:
        return mention(self.people)

    def fields(self) -> dict:
        """The stored form (a Reply's, a digest entry's)."""
        found: dict = {"people": list(self.people)}
        if self.stored_user_ids or self.stored_mobiles:
            found.update(user_ids=list(self.stored_user_ids), mobiles=list(self.stored_mobiles))
        return found

    @classmethod
    def from_fields(cls, stored: dict) -> Mentions:
        return cls(
            people=list(stored.get("people", [])),
            stored_user_ids=list(stored.get("user_ids", [])),
            stored_mobiles=list(stored.get("mobiles", [])),
        )


@dataclass
class Message:
    title: str
    lines: list[str]
    severity: str = "info"  # one of SEVERITIES: a card's colour where the channel has one
    links: list[Button] = field(default_factory=list)  # shown as links after the body
    buttons: list[Button] = field(default_factory=list)  # shown as buttons where the channel has them
    mentions: Mentions = field(default_factory=Mentions)
    language: str = "zh"  # of the words a channel adds (a summary's "and N more")
    digest_line: str = ""  # the same news as one line of a digest (with its own mention mark); "" → the title

    def one_line(self) -> str:
        return self.digest_line or f"- {self.title}{self.mentions.mark()}"


@dataclass
class Reply:
    title: str
    text: str  # markdown; outsiders' text in it went through opsbot.markup
    ok: bool = True
    project: str = ""  # the project the answer concerns: its robots post it when the session has expired
    mentions: Mentions = field(default_factory=Mentions)
    detail: str = ""  # one line for the audit log
    buttons: list[Button] = field(default_factory=list)  # command buttons (chat/buttons.py): the next steps

    def as_dict(self) -> dict:
        """What state.effects keeps of a result, to post again on a retry."""
        return {
            "title": self.title,
            "text": self.text,
            "ok": self.ok,
            "project": self.project,
            "detail": self.detail,
            **self.mentions.fields(),
            **({"buttons": [[b.label, b.command] for b in self.buttons]} if self.buttons else {}),
        }

    @classmethod
    def from_dict(cls, stored: dict) -> Reply:
        return cls(
            title=stored["title"],
            text=stored["text"],
            ok=stored.get("ok", True),
            project=stored.get("project", ""),
            detail=stored.get("detail", ""),
            mentions=Mentions.from_fields(stored),
            buttons=[Button(label, "", command) for label, command in stored.get("buttons", [])],
        )

    def as_message(self, language: str = "zh") -> Message:
        summary = " ".join((self.detail or self.text[:200]).split())
        return Message(
            title=self.title,
            lines=self.text.split("\n"),
            severity="info" if self.ok else "failure",
            mentions=self.mentions,
            buttons=list(self.buttons),
            language=language,
            digest_line=f"- {self.title}: {summary}{self.mentions.mark()}",
        )


@dataclass(frozen=True)
class Conversation:
    """Where a chat message came from, and how to answer into it: built by the inbound adapter of its channel
    (chat/inbound/), which alone reads the channel's fields; delivery replies through `reply_url` while it is open."""

    channel: str  # the inbound channel: "dingtalk"
    id: str = ""
    title: str = ""
    reply_url: str = ""  # checked by the inbound adapter (DingTalk: under DINGTALK_SESSION_WEBHOOK_PREFIX)
    reply_until_ms: int = 0  # when reply_url stops taking answers

    MARGIN_MS = 60_000  # do not start a send on a conversation's URL about to expire

    def open_reply_url(self, now_ms: int | None = None) -> str:
        """The URL to answer through, or "" once it is about to expire (then the project's robots answer)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        return self.reply_url if self.reply_url and self.reply_until_ms - self.MARGIN_MS >= now_ms else ""

    def fields(self) -> dict:
        """What to store to answer into it later (an ops change's follow-ups)."""
        return {
            "channel": self.channel,
            "id": self.id,
            "title": self.title,
            "reply_url": self.reply_url,
            "reply_until_ms": self.reply_until_ms,
        }

    @classmethod
    def from_fields(cls, fields: dict) -> Conversation | None:
        """The conversation `fields()` stored, or None for none stored."""
        if not fields or not fields.get("channel"):
            return None
        return cls(
            channel=str(fields["channel"]),
            id=str(fields.get("id", "")),
            title=str(fields.get("title", "")),
            reply_url=str(fields.get("reply_url", "")),
            reply_until_ms=int(fields.get("reply_until_ms") or 0),
        )


def digest_entry(key: str, line: str, mentions: Mentions, language: str = "") -> dict:
    """One digest line, its @-mentions, its language (its project's), and the id that folds it once however often
    it is retried."""
    return {"id": key, "line": line, **mentions.fields(), **({"language": language} if language else {})}
