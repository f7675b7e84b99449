"""Who is acting, and how we know. An actor comes only from a source the actor cannot forge:

- `dingtalk`: a DingTalk callback whose (timestamp, sign) pair was used once, bound to its msgId
  (chat/inbound/dingtalk.py); the sender is read from it by `dingtalk_sender`, the one reader of those fields;
- `dingtalk-login`: DingTalk's own web login (OAuth 2.0 authorization code), for release links (dingtalk/login.py);
- `feishu`: the sender of a Feishu message as Feishu's API reports it, read by the message's id with the app's own
  token (chat/inbound/feishu.py), never as the event callback's body says (`feishu_user`);
- `slack`: whoever pressed a button on opsbot's Slack message, as Slack's signed interactivity request names them
  (`user.id`, chat/inbound/slack.py; v0 signature, timestamp within 5 minutes, trigger_id used once);
- `gitlab`: the author of a merge-request note as GitLab's API reports it, never as a hook body says.

A link or a hook body alone identifies nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsbot.config.model import Config, Person

DINGTALK, DINGTALK_LOGIN, FEISHU, GITLAB, SLACK = "dingtalk", "dingtalk-login", "feishu", "gitlab", "slack"
FEISHU_LOGIN = "feishu-login"  # Feishu's web sign-in on a release link (channels/feishu_login.py)


@dataclass(frozen=True)
class Actor:
    via: str  # how the actor was identified: DINGTALK, DINGTALK_LOGIN, FEISHU or GITLAB
    handle: str  # the id that source gives: DingTalk staff, sender or user id, Feishu open_id, GitLab username
    name: str  # for people to read
    person: Person | None = None  # opsbot's person, when the config maps the handle to one

    @property
    def id(self) -> str:
        """The person id, or `<via>:<handle>` for someone not in config: what records and comparisons use."""
        return self.person.id if self.person else f"{self.via}:{self.handle or '?'}"

    @property
    def roles(self) -> tuple[str, ...]:
        return self.person.roles if self.person else ()

    @property
    def known(self) -> bool:
        return self.person is not None


def _id(value: object) -> str:
    """A DingTalk id as text: ids are strings, but a numeric staff id may arrive as a JSON number."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def dingtalk_sender(config: Config, message: dict) -> Actor:
    """The sender of a DingTalk callback: the same answer at ingress and in the worker, for the same fields."""
    staff_id, sender_id = _id(message.get("senderStaffId")), _id(message.get("senderId"))
    nick = message.get("senderNick")
    person = config.person_for_dingtalk(staff_id, sender_id)
    return Actor(
        DINGTALK,
        staff_id or sender_id,
        person.name if person else (nick if isinstance(nick, str) and nick else "?"),
        person,
    )


def dingtalk_user(config: Config, user_id: str, nick: str = "") -> Actor:
    """Someone DingTalk's web login vouched for, by their user id (the staff id, `people[].dingtalk_user_id`)."""
    person = config.person_for_dingtalk(user_id, "")
    return Actor(DINGTALK_LOGIN, user_id, person.name if person else (nick or user_id), person)


def feishu_user(config: Config, open_id: str, name: str = "", via: str = FEISHU) -> Actor:
    """The sender of a Feishu message, by the open_id Feishu's API gives (people are matched by `feishu_open_id`), or
    who Feishu's web sign-in vouched for (`via` FEISHU_LOGIN)."""
    person = config.person_for_feishu(open_id)
    return Actor(via, open_id, person.name if person else (name or open_id or "?"), person)


def release_clicker(config: Config, via: str, handle: str, name: str = "") -> Actor:
    """Who a release link's login ticket names: a Feishu user (FEISHU_LOGIN) or a DingTalk one (DINGTALK_LOGIN)."""
    if via == FEISHU_LOGIN:
        return feishu_user(config, handle, name, FEISHU_LOGIN)
    return dingtalk_user(config, handle, name)


def slack_user(config: Config, user_id: str, name: str = "") -> Actor:
    """Who pressed a button, by the member id Slack's signed request gives (people are matched by `slack_user_id`)."""
    person = config.person_for_slack(user_id)
    return Actor(SLACK, user_id, person.name if person else (name or user_id or "?"), person)


def gitlab_user(config: Config, username: str, name: str = "") -> Actor:
    """The author of a GitLab note, as GitLab's API names them (people are matched by `people[].gitlab_username`,
    else by the usernames among `people[].git`)."""
    person = config.person_for_gitlab(username)
    return Actor(GITLAB, username, person.name if person else (name or username), person)
