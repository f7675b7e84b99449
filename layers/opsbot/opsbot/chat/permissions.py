"""Who may run what: roles from config, checked per command and per environment, in this one place.

The registry gives each command its default role; `permissions:` in opsbot.yaml overrides it per command and
per environment. `admin` may run everything. A sender who is not in config may only run commands that read.
"""
from __future__ import annotations

from opsbot.chat.registry import Command
from opsbot.config.model import Config, Person

ADMIN = "admin"


def required_roles(config: Config, command: Command, environment: str = "") -> tuple[str, ...]:
    override = config.permissions.get(command.name)
    if override is not None:
        if environment and environment in override.environments:
            return override.environments[environment]
        if override.roles:
            return override.roles
    return (command.role,) if command.role else ()


def denial(config: Config, person: Person | None, command: Command, environment: str = "",
           language: str = "en") -> str | None:
    """None when allowed; otherwise the reason, in words the sender can act on."""
    zh = language == "zh"
    if person is None:
        if command.acts:
            return ("你还不在 opsbot 的人员配置里，只能使用查询类命令。请联系管理员把你的钉钉 ID 加入 people。" if zh else
                    "You are not in opsbot's people config, so you may only run commands that read. "
                    "Ask an admin to add your DingTalk id to `people`.")
        roles: tuple[str, ...] = ()
    else:
        roles = person.roles
    needed = required_roles(config, command, environment)
    if not needed or ADMIN in roles or set(needed) & set(roles):
        return None
    where = (f"（环境 {environment}）" if zh else f" in {environment}") if environment else ""
    have = ", ".join(roles) or ("无" if zh else "none")
    if zh:
        return f"`{command.name}`{where} 需要角色 {' / '.join(needed)}，你的角色：{have}。"
    return f"`{command.name}`{where} needs the role {' or '.join(needed)}; your roles: {have}."
