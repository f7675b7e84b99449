"""Every chat command module; importing this package registers them all (see chat.registry). `help` and the
README's reference list the commands in HELP_ORDER, whatever order the modules happen to be imported in."""

from __future__ import annotations

from opsbot.chat.commands import (  # noqa: F401
    approvals,
    builds,
    config,
    confirm,
    dns_records,
    faq,
    governance,
    help,
    history,
    kubernetes_ops,
    pipelines,
    release,
    releases,
    services,  # after release: `restart service` is a subcommand of `restart`
    vm_batches,
    whoami,
)
from opsbot.chat.registry import REGISTRY, Registry

HELP_ORDER = (
    "help",
    "whoami",  # about the bot and you
    "status",
    "builds",  # what Drone says
    "deploy",
    "rollback",
    "restart",
    "approve",
    "reject",  # what changes what runs
    "releases",  # what runs where, from the deploy repo
    "lock",
    "unlock",
    "freeze",
    "override",
    "report",  # release governance: locks, freezes, the delivery report
    "config",
    "config history",
    "config rollback",  # opsbot's own config
    "drone",
    "drone init",
    "drone sync",  # .drone.yml
    "restart service",
    "k8s",
    "k8s pods",
    "k8s logs",
    "k8s restart",
    "k8s scale",
    "vm",
    "vm run",
    "dns",
    "dns show",
    "dns set",
    "dns undo",
    "confirm",  # ops: Kubernetes, VM batches, DNS, and the requester's go-ahead
    "history",
    "faq",  # the audit log, the team's questions
)


def all_commands() -> Registry:
    """The registry with every command registered, in the help order."""
    REGISTRY.order(HELP_ORDER)
    return REGISTRY


def command_names() -> set[str]:
    return set(all_commands().commands)
