"""Who may run what, as the authorization core decides it for chat commands: each command's default role,
`permissions:` overrides per command and per environment, the admin bypass, and senders who are not in config
(they may read, never act)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml
from unit_support import EXAMPLE_CONFIG

from opsbot.authz import core as authz
from opsbot.authz.actors import Actor
from opsbot.chat.commands import all_commands
from opsbot.config.model import Document, Permission, Person, validate
from opsbot.config.yaml_source import read_directory

COMMANDS = all_commands().commands


def denial(config, person, command, environment="", language="en"):
    """The core's reason for refusing `person` the chat command, None when it allows it."""
    actor = Actor("dingtalk", person.dingtalk_user_id if person else "someone", person.name if person else "?", person)
    decision = authz.decide(config, actor, command.verb, authz.Target(environment=environment), {}, language)
    return decision.reason if decision.denied else None


def required_roles(config, command, environment=""):
    return authz.required_roles(config, command.verb, environment)


EXAMPLE = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True)
DEFAULTS = replace(EXAMPLE, permissions={})  # every command keeps the role it declares
READS = sorted(name for name, cmd in COMMANDS.items() if not cmd.acts)
# Reads that run in the worker (k8s pods, k8s logs, dns show) are reads to the core: a role, not "people", guards them.
ACTS = sorted(name for name, cmd in COMMANDS.items() if cmd.acts and cmd.verb.kind != authz.READ)


def person(person_id: str) -> Person:
    found = EXAMPLE.person(person_id)
    assert found is not None
    return found


ALICE, BOB, CAROL, XIAOMING = (person(p) for p in ("alice", "bob", "carol", "xiaoming"))
ROOT = Person(id="root", name="Root", roles=("admin",))
NOBODY = Person(id="intern", name="Intern", roles=())


@pytest.fixture
def aws(_moto):
    """Nothing here reaches AWS: no fresh moto stack per test (moto stays patched in, so a stray call cannot leave
    the machine)."""
    yield None


# --- defaults --------------------------------------------------------------------------------------------------


def test_default_roles_come_from_the_registry():
    assert {name: required_roles(DEFAULTS, cmd) for name, cmd in COMMANDS.items()} == {
        "help": (),
        "whoami": (),
        "status": (),
        "builds": (),
        "config": (),
        "history": (),
        "faq": (),
        "deploy": ("deployer",),
        "rollback": ("deployer",),
        "approve": ("deployer", "ops"),
        "reject": ("deployer", "ops"),
        "restart": ("developer",),
        "config history": (),
        "drone": (),
        "config rollback": ("admin",),
        "drone init": ("deployer",),
        "drone sync": ("deployer",),
        "restart service": ("developer", "ops"),
        "k8s": (),
        "k8s pods": ("developer",),
        "releases": ("developer",),
        "k8s logs": ("developer",),
        "k8s restart": ("ops",),
        "k8s scale": ("ops",),
        "vm": (),
        "vm run": ("ops",),
        "dns": (),
        "dns show": ("developer",),
        "dns set": ("ops",),
        "dns undo": ("ops",),
        "confirm": ("developer", "deployer", "ops"),
        "lock": ("deployer", "ops"),
        "unlock": ("deployer", "ops"),  # another's lock: admin (a verb permissions cannot name)
        "freeze": (),
        "override": ("admin",),
        "report": ("developer",),
    }


def test_without_overrides_the_environment_changes_nothing():
    assert required_roles(DEFAULTS, COMMANDS["deploy"], "production") == ("deployer",)


@pytest.mark.parametrize("name", READS)
def test_anyone_in_config_may_read(name):
    for someone in (ALICE, BOB, NOBODY):
        assert denial(EXAMPLE, someone, COMMANDS[name]) is None


def test_a_developer_may_restart_but_not_deploy():
    assert denial(DEFAULTS, BOB, COMMANDS["restart"]) is None
    reason = denial(DEFAULTS, BOB, COMMANDS["deploy"], "staging")
    assert reason == "`deploy` in staging needs the role deployer; your roles: developer."
    assert denial(DEFAULTS, BOB, COMMANDS["rollback"], "staging") is not None
    assert denial(DEFAULTS, BOB, COMMANDS["approve"]) is not None


def test_a_deployer_may_deploy_roll_back_and_approve():
    for name in ("deploy", "rollback", "approve", "reject", "restart"):
        assert denial(DEFAULTS, ALICE, COMMANDS[name], "staging") is None, name


def test_a_person_without_roles_is_told_they_have_none():
    assert denial(DEFAULTS, NOBODY, COMMANDS["restart"]) == "`restart` needs the role developer; your roles: none."
    assert denial(DEFAULTS, NOBODY, COMMANDS["restart"], language="zh") == (
        "`restart` 需要角色 developer，你的角色：无。"
    )


# --- overrides from config -------------------------------------------------------------------------------------


def test_the_example_overrides_deploy_per_environment_and_restart_for_everyone():
    assert required_roles(EXAMPLE, COMMANDS["deploy"], "staging") == ("deployer",)
    assert required_roles(EXAMPLE, COMMANDS["deploy"], "production") == ("deployer", "ops")
    assert required_roles(EXAMPLE, COMMANDS["restart"]) == ("developer", "deployer", "ops")
    assert required_roles(EXAMPLE, COMMANDS["rollback"], "production") == ("deployer",)  # not overridden


def overrides(text: str):
    """The example's people with the `permissions:` section given as YAML."""
    global_doc = next(d for d in read_directory(EXAMPLE_CONFIG)[0] if d.name == "opsbot.yaml")
    data = dict(global_doc.data)
    data["permissions"] = yaml.safe_load(text)
    documents = [Document("opsbot.yaml", data)] + [
        d for d in read_directory(EXAMPLE_CONFIG)[0] if d.name != "opsbot.yaml"
    ]
    return validate(documents, allow_literal_secrets=True)


def test_production_can_require_ops():
    config = overrides("""
        deploy:
          roles: [deployer]
          environments:
            production: [ops]
    """)
    assert denial(config, ALICE, COMMANDS["deploy"], "staging") is None
    reason = denial(config, ALICE, COMMANDS["deploy"], "production")
    assert reason == "`deploy` in production needs the role ops; your roles: developer, deployer."
    zh = denial(config, ALICE, COMMANDS["deploy"], "production", "zh")
    assert zh == "`deploy`（环境 production） 需要角色 ops，你的角色：developer, deployer。"
    assert denial(config, XIAOMING, COMMANDS["deploy"], "production") is None


def test_an_override_with_only_environments_keeps_the_default_role_elsewhere():
    config = overrides("""
        rollback:
          environments:
            production: [ops]
    """)
    assert required_roles(config, COMMANDS["rollback"], "staging") == ("deployer",)
    assert required_roles(config, COMMANDS["rollback"], "production") == ("ops",)
    assert denial(config, CAROL, COMMANDS["rollback"], "staging") is None
    assert "needs the role ops" in denial(config, CAROL, COMMANDS["rollback"], "production")


def test_any_of_several_roles_will_do():
    config = overrides("""
        restart:
          roles: [deployer, ops]
    """)
    assert denial(config, CAROL, COMMANDS["restart"]) is None  # a deployer
    assert denial(config, XIAOMING, COMMANDS["restart"]) is None  # ops (and admin)
    assert denial(config, BOB, COMMANDS["restart"]) == (
        "`restart` needs the role deployer or ops; your roles: developer."
    )
    assert "需要角色 deployer / ops" in denial(config, BOB, COMMANDS["restart"], language="zh")


def test_a_read_can_be_restricted_too():
    config = overrides("""
        history:
          roles: [ops]
    """)
    assert denial(config, XIAOMING, COMMANDS["history"]) is None
    assert denial(config, ALICE, COMMANDS["history"]) == (
        "`history` needs the role ops; your roles: developer, deployer."
    )
    assert "needs the role ops" in denial(config, None, COMMANDS["history"])


# --- admin -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_admin_may_run_everything_everywhere(name):
    strict = replace(
        EXAMPLE, permissions={name: Permission(roles=("nobody-has-this",), environments={"production": ("nor-this",)})}
    )
    for environment in ("", "staging", "production"):
        assert denial(strict, ROOT, COMMANDS[name], environment) is None
        assert denial(strict, XIAOMING, COMMANDS[name], environment) is None
        assert denial(strict, ALICE, COMMANDS[name], environment) is not None


# --- senders not in config -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", READS)
def test_an_unknown_sender_may_read(name):
    assert denial(EXAMPLE, None, COMMANDS[name]) is None


@pytest.mark.parametrize("name", ACTS)
def test_an_unknown_sender_may_not_act_and_is_told_how_to_get_in(name):
    assert "not in opsbot's people config" in denial(EXAMPLE, None, COMMANDS[name], "staging")
    assert "不在 opsbot 的人员配置里" in denial(EXAMPLE, None, COMMANDS[name], "staging", "zh")


def test_an_unknown_sender_may_not_act_even_where_no_role_is_needed():
    anyone = replace(EXAMPLE, permissions={"restart": Permission(roles=())})
    assert required_roles(anyone, COMMANDS["restart"]) == ("developer",)  # an empty list is no override
    assert denial(anyone, None, COMMANDS["restart"]) is not None
