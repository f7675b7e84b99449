"""The message model: what opsbot says (a Reply: a title, markdown text, the people it @-mentions) and its forms.

A reply is built once, by whatever capability has news (a chat command's result, an approval request, a
config-sync notice, a review request); `delivery` posts it. Below every capability, so none of them needs chat
to speak.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opsbot.config.model import Person

TITLE_CHARS = 60  # DingTalk shows the title in the notification list; longer is cut there anyway


@dataclass
class Mentions:
    mobiles: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, person: Person | None) -> Mentions:
        if person is None:
            return cls()
        # DingTalk mentions by mobile or by user id; the user id is preferred as it never changes.
        if person.dingtalk_user_id:
            return cls(user_ids=[person.dingtalk_user_id])
        return cls(mobiles=[person.mobile] if person.mobile else [])

    def add(self, other: Mentions) -> None:
        self.user_ids += [u for u in other.user_ids if u not in self.user_ids]
        self.mobiles += [m for m in other.mobiles if m not in self.mobiles]

    def text(self) -> str:
        return " ".join(f"@{handle}" for handle in self.user_ids + self.mobiles)

    def at(self) -> dict:
        return {"atMobiles": self.mobiles, "atUserIds": self.user_ids, "isAtAll": False}


@dataclass
class Reply:
    title: str
    text: str  # markdown; outsiders' text in it went through opsbot.markup
    ok: bool = True
    project: str = ""  # the project the answer concerns: its robot posts it when the session has expired
    mentions: Mentions = field(default_factory=Mentions)
    detail: str = ""  # one line for the audit log

    def as_dict(self) -> dict:
        """What state.effects keeps of a result, to post again on a retry."""
        return {
            "title": self.title,
            "text": self.text,
            "ok": self.ok,
            "project": self.project,
            "detail": self.detail,
            "user_ids": self.mentions.user_ids,
            "mobiles": self.mentions.mobiles,
        }

    @classmethod
    def from_dict(cls, stored: dict) -> Reply:
        return cls(
            title=stored["title"],
            text=stored["text"],
            ok=stored.get("ok", True),
            project=stored.get("project", ""),
            detail=stored.get("detail", ""),
            mentions=Mentions(mobiles=list(stored.get("mobiles", [])), user_ids=list(stored.get("user_ids", []))),
        )

    def message(self) -> dict:
        """The DingTalk markdown message."""
        text = self.text
        if mention := self.mentions.text():
            text = f"{text}\n\n{mention}"  # DingTalk highlights an @ only when it is also in the text
        return {
            "msgtype": "markdown",
            "markdown": {"title": self.title[:TITLE_CHARS], "text": text},
            "at": self.mentions.at(),
        }

    def digest_entry(self, key: str) -> dict:
        """This reply as one line of a robot's digest, when a burst folds it (delivery.budget)."""
        return digest_entry(key, f"- {self.title}: {self.detail or self.text[:200]}", self.mentions)


def digest_entry(key: str, line: str, mentions: Mentions) -> dict:
    """One digest line, its @-mentions, and the id that folds it once however often it is retried."""
    return {"id": key, "line": line, "mobiles": mentions.mobiles, "user_ids": mentions.user_ids}
