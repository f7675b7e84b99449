"""What a command gets (ChatRequest); what it gives back is a message.Reply."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from opsbot import audit
from opsbot.authz import core as authz
from opsbot.authz.actors import Actor
from opsbot.chat.inbound.message import InboundMessage
from opsbot.chat.registry import Command, UsageError
from opsbot.config.model import Config, Person, Project
from opsbot.drone.api import client_for
from opsbot.i18n import t
from opsbot.markup import dingtalk as md

# A synchronous answer must beat DingTalk's callback timeout, so reads give Drone less time than the worker.
SYNC_DRONE_TIMEOUT_SECONDS = 3.0


@dataclass
class ChatRequest:
    config: Config
    inbound: InboundMessage  # what was said, where, by whom: built by its channel's inbound adapter
    actor: Actor  # the inbound message's actor, the same at ingress and in the worker
    command: Command
    arguments: dict
    language: str
    job_id: str = ""  # stable across redeliveries of the same msgId
    in_worker: bool = False
    record: audit.AuditRecord | None = None  # the act's audit record, where the core writes its decision

    def t(self, zh: str, en: str) -> str:
        return t(self.language, zh, en)

    @property
    def person(self) -> Person | None:
        return self.actor.person

    @property
    def sender(self) -> str:
        return self.actor.name

    @property
    def sender_id(self) -> str:
        """The person id, or the channel's id of a sender not in config, for records and comparisons."""
        return self.actor.id

    def project(self, name: str | None = None) -> Project:
        name = str(name if name is not None else self.arguments.get("project", ""))
        project = self.config.projects.get(name) or self.config.project_for_repo(name)
        if project is None:
            known = ", ".join(sorted(self.config.projects)) or "-"
            raise UsageError(
                self.t(
                    f"没有项目 `{md(name, 80)}`。已配置的项目：{known}",
                    f"no project `{md(name, 80)}`. Configured projects: {known}",
                )
            )
        return project

    def authorize(self, verb: authz.Verb, target: authz.Target) -> authz.Decision:
        """The core's decision for this sender, written into the act's audit record; Denied when denied."""
        if self.record is None:
            raise RuntimeError(f"{self.command.name}: an act is authorized with its audit record")
        decision = authz.authorize(self.config, self.actor, verb, target, self.record, self.arguments, self.language)
        if decision.denied:
            raise authz.Denied(decision)
        return decision

    def drone(self):
        return self._drone

    @cached_property
    def _drone(self):
        return client_for(self.config, None if self.in_worker else SYNC_DRONE_TIMEOUT_SECONDS)
