"""The one list of chat commands. Each command module registers itself here with its names, arguments, help
and the role it needs; help text, permissions, the README's command reference and the parser all read it.

A command either only reads (answered at once, in the callback's response) or acts (acknowledged at once,
run by the worker through the queue, its result posted to the conversation).

A subcommand is a command whose name has two words ("config rollback"): it is found through its parent's name
and aliases plus its own last word, and it has its own arguments, role and kind. Its aliases are phrases too
("配置 回滚").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from opsbot.authz import core as authz
from opsbot.chat.parser import has_chinese
from opsbot.markup import dingtalk as md
from opsbot.text import is_number

# Where a command belongs in `help` (and the README's reference), in this order, with its heading in each language.
AREAS = {
    "general": ("常用", "General"),
    "release": ("发布", "Release"),
    "review": ("评审", "Review"),
    "ops": ("运维", "Ops"),
    "config": ("配置", "Config"),
}


class UsageError(Exception):
    """The arguments do not fit the command; the message says what was expected."""


@dataclass(frozen=True)
class Argument:
    name: str
    required: bool = True
    number: bool = False  # a whole number, e.g. a build number or a count


@dataclass(frozen=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    arguments: tuple[Argument, ...]
    summary: dict[str, str]  # language -> one line
    examples: tuple[str, ...]
    run: Callable  # (ChatRequest) -> Reply; for acts it runs in the worker
    area: str = "general"  # one of AREAS: where help lists it
    acts: bool = False
    role: str | None = None  # the default role; None: anyone, even a sender not in config
    needs_drone: bool = False
    needs_gitlab: bool = False
    fillers: tuple[str, ...] = ()  # words that read well but carry nothing, e.g. "to", "到"
    # Which argument names the environment, for per-environment permissions ("" when none does).
    environment_argument: str = ""
    parse: Callable | None = None  # custom (words) -> arguments, when position alone cannot tell
    usage_text: str = ""  # when the arguments alone do not show how the command reads
    rules: authz.Verb | None = None  # the verb the authorization core holds it to, when not a plain read or act
    # A read that goes to the worker for some arguments (what only the worker may read: a GitOps project's deploy
    # repo and clusters): (config, arguments) -> True to queue it as acts are; None: answered at once.
    in_worker: Callable | None = None

    def runs_in_worker(self, config, arguments: dict) -> bool:
        if self.acts:
            return True
        try:
            return bool(self.in_worker and self.in_worker(config, arguments))
        except Exception:  # noqa: BLE001 - a read that cannot tell is answered at once, as before
            return False

    @property
    def verb(self) -> authz.Verb:
        if self.rules is not None:
            return self.rules
        return authz.Verb(self.name, (self.role,) if self.role else (), authz.ACT if self.acts else authz.READ)

    def called(self, language: str) -> str:
        """What a reader of `language` calls it: its first Chinese name for a Chinese reader (`回滚`), else its name."""
        if language == "zh":
            return next((alias for alias in self.aliases if has_chinese(alias)), self.name)
        return self.name

    def usage(self) -> str:
        if self.usage_text:
            return self.usage_text
        parts = [self.name] + [f"<{a.name}>" if a.required else f"[{a.name}]" for a in self.arguments]
        return " ".join(parts)

    def bind(self, words: list[str]) -> dict[str, str | int]:
        """Arguments by name from the words after the command name."""
        words = [w for w in words if w.lower() not in self.fillers]
        if self.parse is not None:
            return self.parse(words)
        if len(words) > len(self.arguments):
            raise UsageError(f"too many arguments: {md(' '.join(words[len(self.arguments) :]), 80)}")
        bound: dict[str, str | int] = {}
        for argument, word in zip(self.arguments, words, strict=False):
            bound[argument.name] = _number(argument.name, word) if argument.number else word
        missing = [a.name for a in self.arguments[len(words) :] if a.required]
        if missing:
            raise UsageError(f"missing {', '.join('<' + m + '>' for m in missing)}")
        return bound


def _number(name: str, word: str) -> int:
    text = word.lstrip("#")
    if not is_number(text):
        raise UsageError(f"<{name}> must be a number, got '{md(word, 40)}'")
    return int(text)


@dataclass
class Registry:
    commands: dict[str, Command] = field(default_factory=dict)
    by_alias: dict[str, Command] = field(default_factory=dict)
    subcommands: dict[tuple[str, str], Command] = field(default_factory=dict)  # (parent, word) -> command

    def add(self, command: Command) -> None:
        if " " in command.name:
            self._add_subcommand(command)
            return
        for alias in (command.name, *command.aliases):
            key = alias.lower()
            if key in self.by_alias:
                raise ValueError(f"chat command name '{alias}' is registered twice")
            self.by_alias[key] = command
        self.commands[command.name] = command

    def _add_subcommand(self, command: Command) -> None:
        parent = self.commands.get(command.name.split()[0])
        if parent is None:
            raise ValueError(f"chat command '{command.name}' needs its parent registered first")
        for phrase in (command.name, *command.aliases):
            key = (parent.name, phrase.split()[-1].lower())
            if self.subcommands.get(key, command) is not command:
                raise ValueError(f"chat subcommand '{phrase}' is registered twice")
            self.subcommands[key] = command
        self.commands[command.name] = command

    def find(self, word: str) -> Command | None:
        return self.by_alias.get(word.lower())

    def resolve(self, word: str, words: list[str]) -> tuple[Command | None, list[str]]:
        """The command `word` names, or its subcommand named by the first of `words`; and the words left."""
        command = self.find(word)
        if command is not None and words:
            if sub := self.subcommands.get((command.name, words[0].lower())):
                return sub, words[1:]
        return command, words

    def lookup(self, text: str) -> Command | None:
        """A command by what a person would type: `deploy`, `部署`, `config rollback`, `配置 回滚`."""
        words = text.split()
        command, rest = self.resolve(words[0], words[1:]) if words else (None, [])
        return command if not rest else None

    def names(self) -> list[str]:
        return list(self.by_alias)

    def by_area(self) -> dict[str, list[Command]]:
        """The commands of each area (AREAS' order), each area in the help order."""
        return {area: [c for c in self.commands.values() if c.area == area] for area in AREAS}

    def order(self, names: tuple[str, ...]) -> None:
        """List the commands in this order (help, the README); every command must be named exactly once."""
        if sorted(names) != sorted(self.commands):
            missing, extra = set(self.commands) - set(names), set(names) - set(self.commands)
            raise ValueError(f"the help order must name every command once (missing {missing}, unknown {extra})")
        self.commands = {name: self.commands[name] for name in names}


REGISTRY = Registry()


def command(
    name: str,
    *,
    area: str,
    aliases: tuple[str, ...] = (),
    arguments: tuple[Argument, ...] = (),
    zh: str,
    en: str,
    examples: tuple[str, ...] = (),
    acts: bool = False,
    role: str | None = None,
    needs_drone: bool = False,
    needs_gitlab: bool = False,
    fillers: tuple[str, ...] = (),
    environment_argument: str = "",
    parse: Callable | None = None,
    usage: str = "",
    verb: authz.Verb | None = None,
    in_worker: Callable | None = None,
):
    """Register the decorated function as the chat command `name`. An act with rules of its own (deploy,
    restart, approve) names its `verb`, whose default role is the command's."""
    if verb is not None:
        role = verb.default_roles[0] if verb.default_roles else None
    if area not in AREAS:
        raise ValueError(f"chat command '{name}': area '{area}' is not one of {', '.join(AREAS)}")

    def register(run: Callable) -> Callable:
        REGISTRY.add(
            Command(
                name=name,
                aliases=aliases,
                arguments=arguments,
                summary={"zh": zh, "en": en},
                examples=examples,
                run=run,
                area=area,
                acts=acts,
                role=role,
                needs_drone=needs_drone,
                needs_gitlab=needs_gitlab,
                fillers=fillers,
                environment_argument=environment_argument,
                parse=parse,
                usage_text=usage,
                rules=verb,
                in_worker=in_worker,
            )
        )
        return run

    return register
