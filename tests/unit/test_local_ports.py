"""One place for the local stack's ports (local/ports.py): PORT alone moves the whole stack, the config names its
peers by role (`local://drone`) and never by port, and a local command that finds no stack says which port it
tried and why."""

from __future__ import annotations

import re
import socket

import pytest
from unit_support import EXAMPLE_CONFIG, ROOT, example_documents

from local import ports
from local.ports import NotRunning, Ports, running
from opsbot.config.model import LOCAL_PEER_ROLES, ConfigError, validate

STACK_PEERS = Ports.derive(3100).peers()


def test_port_3000_gives_the_ports_the_stack_always_had_and_another_port_moves_them_all():
    assert Ports.derive(3000).as_dict() == {
        "api": 3000,
        "sink": 3001,
        "drone": 3002,
        "gitlab": 3003,
        "kube": 3004,
        "ssm": 3005,
        "dns": 3053,
        "moto": 5005,
        "argocd": 3006,
    }
    moved = Ports.derive(3100)
    assert (moved.sink, moved.drone, moved.dns, moved.moto) == (3101, 3102, 3153, 5105)
    assert Ports.derive(3100, sink=4000).sink == 4000 and Ports.derive(3100, sink=None).sink == 3101
    with pytest.raises(TypeError, match="no such port: sinc"):
        Ports.derive(3100, sinc=4000)


def test_the_environment_sets_port_and_any_single_port(monkeypatch):
    monkeypatch.setenv("PORT", "3200")
    monkeypatch.setenv("DRONE_PORT", "4444")
    monkeypatch.delenv("SINK_PORT", raising=False)
    found = Ports.from_environment()
    assert (found.api, found.sink, found.drone) == (3200, 3201, 4444)


def test_every_role_the_config_may_name_has_a_fake_of_the_stack():
    assert set(STACK_PEERS) == set(LOCAL_PEER_ROLES)
    assert STACK_PEERS["drone"] == "http://127.0.0.1:3102" and STACK_PEERS["dns"] == "127.0.0.1:3153"
    assert ports.peers_variable({"drone": "http://x:1", "dns": "x:2"}) == "drone=http://x:1 dns=x:2"


def test_the_example_config_names_no_port():
    for path in EXAMPLE_CONFIG.rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"127\.0\.0\.1|localhost|:30\d\d\b", text), path


def test_the_local_stack_resolves_each_role_to_its_fake():
    config = validate(example_documents(), allow_literal_secrets=True, local_peers=STACK_PEERS)
    assert config.drone.server == "http://127.0.0.1:3102"
    assert config.gitlab.url == "http://127.0.0.1:3103"
    assert config.robots["shop-backend"].webhook == "http://127.0.0.1:3101/robot/send?access_token=local-shop-backend"
    assert config.robots["shop-feishu"].webhook == "http://127.0.0.1:3101/open-apis/bot/v2/hook/local-shop-feishu"
    assert config.ops.dns_zones["shop"].nameservers == ("127.0.0.1:3153",)


def test_without_a_running_stack_the_roles_are_checked_and_left_as_written():
    config = validate(example_documents(), allow_literal_secrets=True)
    assert config.drone.server == "local://drone" and config.ops.dns_zones["shop"].nameservers == ("local://dns",)


def _problems(documents, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        validate(documents, **kwargs)
    return raised.value.lines()


def test_no_other_stage_takes_a_local_peer():
    problems = _problems(example_documents(), allow_literal_secrets=False, stage="prod")
    assert any("drone.server: local://drone names a fake of the local stack, not a real peer" in p for p in problems)
    assert any("dns_zones.shop.nameservers: local://dns names a fake" in p for p in problems)


def test_a_role_the_stack_does_not_have_is_named_with_the_ones_it_has():
    documents = example_documents()
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    root["drone"]["server"] = "local://jenkins"
    problems = _problems(documents, allow_literal_secrets=True, local_peers=STACK_PEERS)
    assert any(
        "drone.server: local://jenkins is no peer of the local stack (it has local://dingtalk," in p for p in problems
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_command_that_finds_no_stack_names_the_port_and_the_variable_it_tried(monkeypatch):
    port = _free_port()
    with pytest.raises(NotRunning) as raised:
        running(port, timeout=1)
    assert str(raised.value) == (
        f"the local stack is not running on port {port} (PORT={port}): start it with `make run PORT={port}`, "
        "or give the PORT it runs on"
    )
    monkeypatch.setenv("PORT", str(port))
    with pytest.raises(NotRunning, match=rf"port {port} \(PORT={port} in the environment\)"):
        running(timeout=1)
    monkeypatch.delenv("PORT")
    assert ports.port_from() == (3000, "PORT unset, so 3000")


def test_something_else_on_the_port_is_not_taken_for_the_stack(fake_drone):
    port = int(fake_drone.url.rsplit(":", 1)[1])
    with pytest.raises(NotRunning, match=rf"something answers on port {port} \(PORT={port}\), but not the opsbot"):
        running(port, timeout=2)


def test_the_makefile_passes_only_port_to_the_local_commands():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for module in ("send", "chat", "click", "config_push", "config_load", "sam_event"):
        line = next(line for line in makefile.splitlines() if f"-m local.{module} " in line)
        assert "--port $(PORT)" in line and not re.search(r"--(sink|drone|gitlab|moto)-port", line), line
    assert re.search(r"^PORT \?= 3000$", makefile, flags=re.M)
    assert not re.search(r"^(SINK|DRONE|GITLAB|KUBE|SSM|DNS|MOTO)_PORT \?=", makefile, flags=re.M)
