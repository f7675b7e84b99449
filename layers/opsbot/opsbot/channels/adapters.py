"""Which adapter speaks for a robot: its `kind` (config `robots.<name>.kind`, DingTalk by default)."""

from __future__ import annotations

from types import ModuleType

from opsbot.channels import dingtalk, email, feishu, slack, wecom
from opsbot.config.model import Robot

ADAPTERS: dict[str, ModuleType] = {m.KIND: m for m in (dingtalk, feishu, wecom, slack, email)}


def for_robot(robot: Robot) -> ModuleType:
    return ADAPTERS[robot.kind]
