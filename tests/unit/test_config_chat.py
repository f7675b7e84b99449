"""The config sections ChatOps added (drone, permissions, faq, the chat settings, people's DingTalk sender ids):
what they become, and every mistake in them named by file and line."""

from __future__ import annotations

import pytest
from test_config import GLOBAL_OK, line_of, problems_of, write_config
from unit_support import EXAMPLE_CONFIG

from opsbot.config.model import FaqEntry, Permission, validate
from opsbot.config.yaml_source import read_directory

CHAT_OK = (
    GLOBAL_OK
    + """\
    dingtalk_user_id: alice.wang
    dingtalk_sender_id: "$:LWCP_v1:$alice"
    roles: [deployer]
  - id: lead
    roles: [ops, admin]
drone:
  server: https://drone.example.com/
  token: ssm:/opsbot/dev/drone/token
permissions:
  deploy:
    roles: [deployer]
    environments:
      production: [ops]
faq:
  - id: vpn
    question: How do I get VPN?
    answer: File a request in OA.
    keywords: [vpn]
    examples: ["vpn access"]
  - question: Where is staging?
    answer: https://staging.example.com
"""
)


def chat_config(tmp_path, text: str = CHAT_OK, **replacements):
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return write_config(tmp_path, global_text=text)


def test_the_chat_sections_validate(tmp_path):
    settings = "settings:\n  language: zh\n  ops_robot: team\n"
    text = CHAT_OK.replace(
        settings,
        settings + "  contacts: [lead]\n  action_link_hours: 2\n  approval_hours: 48\n"
        "  dingtalk_robot_code: dingopsbot\n",
    )
    config = validate(read_directory(chat_config(tmp_path, text))[0], allow_literal_secrets=True)
    assert (config.drone.server, config.drone.token) == ("https://drone.example.com", "ssm:/opsbot/dev/drone/token")
    assert config.permissions == {"deploy": Permission(roles=("deployer",), environments={"production": ("ops",)})}
    assert config.faq == (
        FaqEntry(
            id="vpn",
            question="How do I get VPN?",
            answer="File a request in OA.",
            keywords=("vpn",),
            examples=("vpn access",),
        ),
        FaqEntry(id="2", question="Where is staging?", answer="https://staging.example.com"),
    )
    assert (config.contacts, config.action_link_hours, config.approval_hours, config.dingtalk_robot_code) == (
        ("lead",),
        2,
        48,
        "dingopsbot",
    )


def test_defaults_without_the_chat_sections(tmp_path):
    config = validate(read_directory(write_config(tmp_path))[0], allow_literal_secrets=True)
    assert (config.drone, config.permissions, config.faq, config.contacts) == (None, {}, (), ())
    assert (config.action_link_hours, config.approval_hours, config.dingtalk_robot_code) == (24, 24, "")


def test_a_sender_is_found_by_staff_id_first_then_by_sender_id(tmp_path):
    config = validate(read_directory(chat_config(tmp_path))[0], allow_literal_secrets=True)
    assert config.person_for_dingtalk("alice.wang", "").id == "alice"
    assert config.person_for_dingtalk("", "$:LWCP_v1:$alice").id == "alice"  # robot not yet published
    assert config.person_for_dingtalk("someone.else", "$:LWCP_v1:$alice").id == "alice"
    assert config.person_for_dingtalk("", "") is None
    assert config.person_for_dingtalk("nobody", "$:LWCP_v1:$nobody") is None


@pytest.fixture
def aws(_moto):
    """Nothing here reaches AWS: no fresh moto stack per test (moto stays patched in, so a stray call cannot leave
    the machine)."""
    yield None


# --- mistakes, by file and line --------------------------------------------------------------------------------


def test_an_unknown_command_in_permissions(tmp_path):
    directory = chat_config(tmp_path, **{"  deploy:\n    roles": "  deplyo:\n    roles"})
    lines = problems_of(directory)
    assert lines == [
        f"opsbot.yaml:{line_of(directory / 'opsbot.yaml', 'deplyo:')}: permissions.deplyo: no such "
        "command (commands: approve, builds, config, config history, config rollback, confirm, deploy, dns, "
        "dns set, dns show, dns undo, drone, drone init, drone sync, faq, freeze, help, history, k8s, k8s logs, "
        "k8s pods, k8s restart, k8s scale, lock, override, reject, releases, report, restart, restart service, "
        "rollback, status, unlock, vm, vm run, whoami)"
    ]


def test_an_unknown_key_in_a_permission(tmp_path):
    directory = chat_config(tmp_path, **{"      production: [ops]": "      production: [ops]\n    role: [x]"})
    assert problems_of(directory) == [
        f"opsbot.yaml:{line_of(directory / 'opsbot.yaml', 'role: [x]')}: "
        "permissions.deploy: unknown key 'role' (allowed: approvals, environments, events, roles)"
    ]


def test_permission_environments_must_be_a_mapping(tmp_path):
    directory = chat_config(
        tmp_path, **{"    environments:\n      production: [ops]": "    environments: [production]"}
    )
    assert problems_of(directory) == [
        f"opsbot.yaml:{line_of(directory / 'opsbot.yaml', 'environments:')}: "
        "environments must be a mapping of environment name to settings"
    ]


def test_an_unknown_contact(tmp_path):
    text = CHAT_OK.replace("  ops_robot: team\n", "  ops_robot: team\n  contacts: [lead, nobody]\n")
    assert problems_of(chat_config(tmp_path, text)) == ["opsbot.yaml:4: settings.contacts: 'nobody' is not a person id"]


@pytest.mark.parametrize("server", ["drone.example.com", "ftp://drone.example.com", "https://", "http:// x"])
def test_a_bad_drone_server(tmp_path, server):
    directory = chat_config(tmp_path, **{"https://drone.example.com/": server})
    assert problems_of(directory) == [
        f"opsbot.yaml:{line_of(directory / 'opsbot.yaml', '  server:')}: "
        "drone.server must be a URL like https://drone.example.com"
    ]


def test_a_drone_section_needs_a_server_and_a_token(tmp_path):
    directory = chat_config(tmp_path, **{"  server: https://drone.example.com/\n": ""})
    # a missing key is reported at the line where its section's content starts
    assert problems_of(directory) == [
        f"opsbot.yaml:{line_of(directory / 'opsbot.yaml', '  token:')}: drone: 'server' is required"
    ]
    directory = chat_config(tmp_path, **{"  token: ssm:/opsbot/dev/drone/token\n": ""})
    assert problems_of(directory) == [
        f"opsbot.yaml:{line_of(directory / 'opsbot.yaml', '  server:')}: drone: 'token' is required"
    ]


def test_drone_must_be_a_mapping_with_known_keys(tmp_path):
    directory = chat_config(
        tmp_path, **{"  token: ssm:/opsbot/dev/drone/token\n": "  token: ssm:/opsbot/dev/drone/token\n  user: opsbot\n"}
    )
    assert problems_of(directory) == [
        f"opsbot.yaml:{line_of(directory / 'opsbot.yaml', 'user: opsbot')}: "
        "drone: unknown key 'user' (allowed: server, token)"
    ]
    directory = chat_config(tmp_path, CHAT_OK[: CHAT_OK.index("drone:")] + "drone: http://drone\n")
    lines = problems_of(directory)
    assert f"opsbot.yaml:{line_of(directory / 'opsbot.yaml', 'drone:')}: drone must be a mapping" in lines


def test_a_literal_drone_token_is_for_the_local_stack_only(tmp_path):
    directory = chat_config(tmp_path, **{"ssm:/opsbot/dev/drone/token": "drone-personal-token"})
    validate(read_directory(directory)[0], allow_literal_secrets=True)  # fine on the local stack
    lines = problems_of(directory, allow_literal_secrets=False)
    assert (
        f"opsbot.yaml:{line_of(directory / 'opsbot.yaml', '  token:')}: drone.token is a secret: write it as "
        "ssm:/parameter/name (literal values are for the local stack only)" in lines
    )
    assert len(lines) == 3, lines  # and GLOBAL_OK's literal robot webhook and secret


def test_a_faq_entry_without_an_answer(tmp_path):
    directory = chat_config(tmp_path, **{"    answer: https://staging.example.com\n": ""})
    assert problems_of(directory) == [
        f"opsbot.yaml:{line_of(directory / 'opsbot.yaml', 'Where is staging?')}: faq[1]: 'answer' is required"
    ]


def test_a_faq_entry_without_a_question_and_with_an_unknown_key(tmp_path):
    directory = chat_config(tmp_path, **{"    question: How do I get VPN?\n": "    q: How do I get VPN?\n"})
    entry, key = (line_of(directory / "opsbot.yaml", text) for text in ("- id: vpn", "q: How"))
    assert problems_of(directory) == [
        f"opsbot.yaml:{entry}: faq[0]: 'question' is required",
        f"opsbot.yaml:{key}: faq[0]: unknown key 'q' (allowed: answer, examples, id, keywords, question)",
    ]


def test_faq_must_be_a_list(tmp_path):
    directory = chat_config(tmp_path, CHAT_OK[: CHAT_OK.index("faq:")] + "faq:\n  vpn: File a request in OA.\n")
    assert problems_of(directory) == [
        f"opsbot.yaml:{line_of(directory / 'opsbot.yaml', 'faq:')}: faq must be a list of entries"
    ]


@pytest.mark.parametrize(
    "key, value", [("action_link_hours", "0"), ("approval_hours", "169"), ("action_link_hours", "soon")]
)
def test_hours_are_bounded(tmp_path, key, value):
    text = CHAT_OK.replace("  ops_robot: team\n", f"  ops_robot: team\n  {key}: {value}\n")
    assert problems_of(chat_config(tmp_path, text)) == [
        f"opsbot.yaml:4: settings.{key} must be a whole number from 1 to 168"
    ]


def test_the_example_config_has_every_chat_section():
    config = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True)
    assert config.drone.server == "local://drone" and config.contacts == ("xiaoming",)  # no stack: as written
    assert set(config.permissions) == {"deploy", "restart"} and len(config.faq) == 4
    assert all(entry.answer and entry.question for entry in config.faq)
