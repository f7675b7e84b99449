"""What the entry points (the functions, the config CLI, the local stack) hand down to lower layers: the one module
that knows every capability's names, so that none of the layers below has to import a layer above it."""

from __future__ import annotations

from opsbot.config.names import KnownNames


def known_names() -> KnownNames:
    """The chat commands and merge-request slash commands that exist, for config validation. Called on the first
    validation that needs them, so declaring them costs a function's cold start nothing."""
    from opsbot.authz.core import CONFIG
    from opsbot.chat.commands import all_commands
    from opsbot.review.commands import COMMANDS

    commands = all_commands().commands
    return KnownNames(
        commands=frozenset(commands),
        slash_commands=frozenset(COMMANDS),
        approvable=frozenset(name for name, command in commands.items() if command.verb.kind == CONFIG),
    )
