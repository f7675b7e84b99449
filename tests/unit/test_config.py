"""Config: the example validates, mistakes are reported as file:line, the store round-trips and caches, and
the config CLI (`make config`, opsbot.config_cli) exits 0/1 accordingly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from unit_support import EXAMPLE_CONFIG, LAYER_PATH, ROOT

from opsbot.config import store
from opsbot.config.model import ConfigError, Document, validate
from opsbot.config.yaml_source import read_directory

GLOBAL_OK = """\
settings:
  language: zh
  ops_robot: team
robots:
  team:
    webhook: http://127.0.0.1:9/robot/send?access_token=t
    secret: SECliteral
people:
  - id: alice
    git: [alice]
"""
PROJECT_OK = """\
repo: shop/api
robot: team
"""


def write_config(directory: Path, global_text: str = GLOBAL_OK, projects: dict[str, str] | None = None) -> Path:
    (directory / "projects").mkdir(parents=True, exist_ok=True)
    (directory / "opsbot.yaml").write_text(textwrap.dedent(global_text), encoding="utf-8")
    for name, text in (projects if projects is not None else {"api.yaml": PROJECT_OK}).items():
        (directory / "projects" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


def problems_of(directory: Path, allow_literal_secrets: bool = True) -> list[str]:
    documents, problems = read_directory(directory)
    if problems:
        return ConfigError(problems).lines()
    with pytest.raises(ConfigError) as caught:
        validate(documents, allow_literal_secrets)
    return caught.value.lines()


def line_of(path: Path, text: str) -> int:
    """1-based line of the first line containing `text`."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


# --- the example ---------------------------------------------------------------------------------------------


def test_example_config_is_valid():
    documents, problems = read_directory(EXAMPLE_CONFIG)
    assert problems == []
    assert sorted(d.name for d in documents) == [
        "opsbot.yaml",
        "projects/shop-api.yaml",
        "projects/shop-recommend.yaml",
        "projects/shop-search.yaml",
        "projects/shop-web.yaml",
    ]
    config = validate(documents, allow_literal_secrets=True)

    assert config.language == "zh" and config.ops_robot == "shop-backend"
    assert set(config.robots) == {"shop-backend", "shop-feishu"}
    assert config.robots["shop-backend"].rate_limit_per_minute == 20
    assert config.robots["shop-backend"].kind == "dingtalk" and config.robots["shop-feishu"].kind == "feishu"
    assert config.projects["shop-recommend"].robots == ("shop-backend", "shop-feishu")
    assert [p.id for p in config.people] == ["alice", "bob", "carol", "xiaoming", "dave", "lei"]
    assert set(config.projects) == {"shop-api", "shop-recommend", "shop-search", "shop-web"}

    api = config.projects["shop-api"]
    assert (api.repo, api.robot, api.language) == ("shop/shop-api", "shop-backend", "zh")
    assert api.notify.on_success == ("main", "release/*")
    assert api.environments["production"].approvals == 1
    web = config.projects["shop-web"]
    assert web.language == "en" and web.notify.on_success == ()


def test_example_config_lookups():
    config = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True)
    assert config.project_for_repo("Shop/Shop-API").name == "shop-api"
    assert config.project_for_repo("shop/unknown") is None
    assert config.person_for_git("alice").id == "alice"
    assert config.person_for_git("", "BOB@example.com").id == "bob"
    assert config.person_for_git("nobody", "") is None
    # A mobile written as a string stays a string.
    assert config.person_for_git("bob").mobile == "13800000002"


def test_example_config_literal_secrets_are_refused_outside_the_local_stack():
    lines = problems_of(EXAMPLE_CONFIG, allow_literal_secrets=False)
    global_file = EXAMPLE_CONFIG / "opsbot.yaml"
    assert any(
        line.startswith(f"opsbot.yaml:{line_of(global_file, 'webhook:')}: robots.shop-backend.webhook is a secret")
        for line in lines
    ), lines
    assert any(
        line.startswith(f"opsbot.yaml:{line_of(global_file, '    secret:')}: robots.shop-backend.secret")
        for line in lines
    ), lines


# --- mistakes name file and line -----------------------------------------------------------------------------


def test_unknown_key_names_file_and_line(tmp_path):
    write_config(
        tmp_path,
        projects={
            "api.yaml": """\
        # the api
        repo: shop/api
        robot: team
        notfy:
          on_failure: true
        """
        },
    )
    lines = problems_of(tmp_path)
    assert any(line.startswith("projects/api.yaml:4: project: unknown key 'notfy'") for line in lines), lines


def test_unknown_nested_key_names_its_line(tmp_path):
    write_config(
        tmp_path,
        projects={
            "api.yaml": """\
        repo: shop/api
        robot: team
        notify:
          on_failure: true
          on_sucess: [main]
        """
        },
    )
    lines = problems_of(tmp_path)
    assert any(line.startswith("projects/api.yaml:5: notify: unknown key 'on_sucess'") for line in lines), lines


def test_missing_repo_names_file_and_line(tmp_path):
    write_config(
        tmp_path,
        projects={
            "web.yaml": """\
        # no repo here
        robot: team
        language: en
        """
        },
    )
    assert "projects/web.yaml:2: project: 'repo' is required" in problems_of(tmp_path)


def test_robot_not_defined_names_file_and_line(tmp_path):
    write_config(
        tmp_path,
        projects={
            "api.yaml": """\
        repo: shop/api

        robot: nobody
        """
        },
    )
    assert "projects/api.yaml:3: project.robot 'nobody' is not defined under robots" in problems_of(tmp_path)


def test_literal_secret_outside_local_names_file_and_line(tmp_path):
    write_config(
        tmp_path,
        global_text=GLOBAL_OK.replace(
            "    webhook: http://127.0.0.1:9/robot/send?access_token=t", "    webhook: ssm:/opsbot/dev/robot/webhook"
        ),
    )
    lines = problems_of(tmp_path, allow_literal_secrets=False)
    assert len(lines) == 1, lines
    assert lines[0].startswith("opsbot.yaml:7: robots.team.secret is a secret: write it as ssm:")


def test_ssm_references_are_fine_outside_local(tmp_path):
    write_config(
        tmp_path,
        global_text=GLOBAL_OK.replace(
            "webhook: http://127.0.0.1:9/robot/send?access_token=t", "webhook: ssm:/opsbot/dev/w"
        ).replace("secret: SECliteral", "secret: ssm:/opsbot/dev/s"),
    )
    config = validate(read_directory(tmp_path)[0], allow_literal_secrets=False)
    assert config.robots["team"].webhook == "ssm:/opsbot/dev/w"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    write_config(
        tmp_path,
        projects={
            "api.yaml": """\
        repo: shop/api
        robot: team
        notify: {on_failure: true
        environments:
          staging: {branch: main}
        """
        },
    )
    lines = problems_of(tmp_path)
    assert len(lines) == 1, lines
    # The unclosed `{` on line 3 is noticed where the parser trips over it: line 4.
    assert lines == ["projects/api.yaml:4: YAML syntax: expected ',' or '}', but got ':'"]


def test_yaml_syntax_error_in_the_global_file(tmp_path):
    write_config(tmp_path, global_text="settings:\n  language: zh\n  - stray: [\n")
    assert problems_of(tmp_path) == ["opsbot.yaml:3: YAML syntax: expected <block end>, but found '-'"]


def test_literal_secret_is_refused_by_the_store_outside_the_local_stack(aws, env, tmp_path):
    env("OPSBOT_STAGE", "dev")
    write_config(tmp_path)
    with pytest.raises(ConfigError) as caught:
        store.save(read_directory(tmp_path)[0], "v1")
    assert caught.value.lines() == [
        "opsbot.yaml:6: robots.team.webhook is a secret: write it as ssm:/parameter/name "
        "(literal values are for the local stack only)",
        "opsbot.yaml:7: robots.team.secret is a secret: write it as ssm:/parameter/name "
        "(literal values are for the local stack only)",
    ]


def test_missing_global_file_is_reported(tmp_path):
    (tmp_path / "projects").mkdir()
    (tmp_path / "projects" / "api.yaml").write_text(PROJECT_OK, encoding="utf-8")
    lines = problems_of(tmp_path)
    assert any(line.startswith("opsbot.yaml: missing") for line in lines), lines


def test_every_problem_is_reported_at_once_in_file_order(tmp_path):
    write_config(
        tmp_path,
        global_text=GLOBAL_OK.replace("  language: zh", "  language: fr"),
        projects={
            "a.yaml": "repo: not-a-repo\nrobot: team\n",
            "b.yaml": "repo: shop/b\nrobot: ghost\nlanguage: de\n",
        },
    )
    lines = problems_of(tmp_path)
    assert lines == [
        "opsbot.yaml:2: settings.language must be one of zh, en",
        "projects/a.yaml:1: project.repo 'not-a-repo' must look like group/name",
        "projects/b.yaml:2: project.robot 'ghost' is not defined under robots",
        "projects/b.yaml:3: project.language must be one of zh, en",
    ]


def test_same_repo_in_two_projects_is_refused(tmp_path):
    write_config(tmp_path, projects={"a.yaml": PROJECT_OK, "b.yaml": "robot: team\nrepo: Shop/API\n"})
    assert "projects/b.yaml:2: repo 'Shop/API' already belongs to project 'a'" in problems_of(tmp_path)


def test_ops_robot_must_be_a_robot(tmp_path):
    write_config(tmp_path, global_text=GLOBAL_OK.replace("ops_robot: team", "ops_robot: ghost"))
    assert "opsbot.yaml:3: settings.ops_robot 'ghost' is not a robot" in problems_of(tmp_path)


def test_bad_values_name_their_lines(tmp_path):
    write_config(
        tmp_path,
        global_text=GLOBAL_OK.replace(
            "    secret: SECliteral", "    secret: SECliteral\n    rate_limit_per_minute: 50"
        ),
        projects={
            "api.yaml": """\
                    repo: shop/api
                    robot: team
                    notify:
                      on_failure: "yes"
                    environments:
                      prod:
                        branch: main
                        approvals: 9
                    """
        },
    )
    lines = problems_of(tmp_path)
    assert "opsbot.yaml:8: robots.team.rate_limit_per_minute must be a whole number from 1 to 20" in lines
    assert "projects/api.yaml:4: notify.on_failure must be true or false" in lines
    assert "projects/api.yaml:8: environments.prod.approvals must be a whole number from 0 to 5" in lines


def test_duplicate_person_id_is_refused(tmp_path):
    write_config(tmp_path, global_text=GLOBAL_OK + "  - id: alice\n    git: [alice2]\n")
    assert "opsbot.yaml:11: people[1]: duplicate person id 'alice'" in problems_of(tmp_path)


def test_project_name_defaults_to_the_file_name_and_on_success_true_means_all(tmp_path):
    write_config(tmp_path, projects={"payments.yaml": "repo: shop/pay\nrobot: team\nnotify: {on_success: true}\n"})
    config = validate(read_directory(tmp_path)[0], allow_literal_secrets=True)
    project = config.projects["payments"]
    assert project.language == "zh"  # the global default
    assert project.notify.on_success == ("*",)
    assert project.notify.success_branch("any/branch")


def test_project_file_that_is_not_a_mapping(tmp_path):
    write_config(tmp_path, projects={"api.yaml": "- repo: shop/api\n"})
    lines = problems_of(tmp_path)
    assert any(line.startswith("projects/api.yaml:1:") and "mapping" in line for line in lines), lines


# --- the DynamoDB store --------------------------------------------------------------------------------------


def example_documents() -> list[Document]:
    documents, problems = read_directory(EXAMPLE_CONFIG)
    assert problems == []
    return documents


def test_store_save_and_load_round_trip(aws):
    saved = store.save(example_documents(), "v1")
    store.invalidate()
    loaded = store.load()
    assert loaded == saved
    assert loaded.version == "v1"
    assert loaded.projects["shop-api"].notify.on_success == ("main", "release/*")

    items = aws.ddb.query(
        TableName="opsbot-test-config",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "config"}},
    )["Items"]
    sort_keys = sorted(i["sk"]["S"] for i in items)
    assert sort_keys[0] == "current"
    assert len(sort_keys) == 2 and sort_keys[1].startswith("version#") and sort_keys[1].endswith("#v1")


def test_store_refuses_an_invalid_config_and_keeps_the_current_one(aws, tmp_path):
    store.save(example_documents(), "good")
    write_config(tmp_path, projects={"api.yaml": "repo: shop/api\nrobot: nobody\n"})
    with pytest.raises(ConfigError):
        store.save(read_directory(tmp_path)[0], "bad")
    assert store.load().version == "good"


def test_store_load_without_a_config_says_how_to_load_one(aws):
    with pytest.raises(LookupError, match="make config ARGS='load"):
        store.load()


def test_store_load_is_cached_until_the_ttl_passes(aws, env):
    env("CONFIG_CACHE_SECONDS", "60")
    store.save(example_documents(), "v1")
    assert store.load().version == "v1"

    # Another process replaces the config in DynamoDB; this Lambda keeps its copy for a while.
    item = aws.ddb.get_item(TableName="opsbot-test-config", Key={"pk": {"S": "config"}, "sk": {"S": "current"}})["Item"]
    item["version"] = {"S": "v2"}
    aws.ddb.put_item(TableName="opsbot-test-config", Item=item)
    assert store.load().version == "v1"

    # Once the cached copy is past its time, the next load reads DynamoDB again.
    expires_at, config = store._cached
    assert expires_at == pytest.approx(time.monotonic() + 60, abs=5)
    store._cached = (time.monotonic() - 0.001, config)
    assert store.load().version == "v2"


def test_store_with_a_zero_ttl_always_reads(aws, env):
    env("CONFIG_CACHE_SECONDS", "0")
    store.save(example_documents(), "v1")
    store.load()
    item = aws.ddb.get_item(TableName="opsbot-test-config", Key={"pk": {"S": "config"}, "sk": {"S": "current"}})["Item"]
    item["version"] = {"S": "v2"}
    aws.ddb.put_item(TableName="opsbot-test-config", Item=item)
    assert store.load().version == "v2"


def test_store_save_invalidates_the_cache(aws):
    store.save(example_documents(), "v1")
    assert store.load().version == "v1"
    store.save(example_documents(), "v2")
    assert store.load().version == "v2"


# --- the CLI -------------------------------------------------------------------------------------------------


def run_cli(*args: str, stage: str = "local") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(PYTHONPATH=str(LAYER_PATH), OPSBOT_STAGE=stage, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, "-m", "opsbot.config_cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_validates_the_example():
    result = run_cli("validate", "config/example")
    assert result.returncode == 0, result.stderr
    assert "config valid: 4 projects, 2 robots, 6 people" in result.stdout


def test_cli_exits_1_on_a_broken_directory_naming_file_and_line(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(EXAMPLE_CONFIG, broken)
    project = broken / "projects" / "shop-web.yaml"
    project.write_text(
        project.read_text(encoding="utf-8").replace("robot: shop-backend", "robot: shop-frontend"), encoding="utf-8"
    )
    result = run_cli("validate", str(broken))
    assert result.returncode == 1
    expected = f"projects/shop-web.yaml:{line_of(project, 'robot: shop-frontend')}: project.robot 'shop-frontend'"
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_exits_1_on_a_yaml_syntax_error(tmp_path):
    write_config(tmp_path, projects={"api.yaml": "repo: shop/api\nrobot: [team\n"})
    result = run_cli("validate", str(tmp_path))
    assert result.returncode == 1
    assert "projects/api.yaml:" in result.stderr and "YAML syntax" in result.stderr


def test_cli_load_saves_into_the_config_table(aws, capsys):
    from opsbot.config_cli import main

    assert main(["load", str(EXAMPLE_CONFIG), "--version", "cli-test"]) == 0
    assert "loaded as version cli-test into opsbot-test-config" in capsys.readouterr().out
    assert store.load().version == "cli-test"


def test_cli_load_refuses_a_broken_directory(aws, tmp_path, capsys):
    from opsbot.config_cli import main

    write_config(tmp_path, projects={"api.yaml": "repo: shop/api\nrobot: ghost\n"})
    assert main(["load", str(tmp_path), "--version", "x"]) == 1
    assert "projects/api.yaml:2:" in capsys.readouterr().err
    with pytest.raises(LookupError):
        store.load()


def test_cli_outside_the_local_stack_refuses_the_examples_literal_secrets():
    result = run_cli("validate", "config/example", stage="dev")
    assert result.returncode == 1
    global_file = EXAMPLE_CONFIG / "opsbot.yaml"
    assert f"opsbot.yaml:{line_of(global_file, 'webhook:')}: robots.shop-backend.webhook is a secret" in result.stderr


def test_cli_finds_the_config_table_and_stage_from_a_stack(aws, capsys, monkeypatch):
    """`--stack NAME`: the ConfigTableName output and the Stage parameter of a deployed opsbot stack."""
    import json

    import boto3
    from unit_support import STACK_ENV

    from opsbot.config_cli import main

    monkeypatch.setenv("CONFIG_TABLE", "not-this-one")
    template = {
        "Parameters": {"Stage": {"Type": "String"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"ConfigTableName": {"Value": STACK_ENV["CONFIG_TABLE"]}},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="opsbot-test",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "Stage", "ParameterValue": "local"}],
    )
    assert main(["load", str(EXAMPLE_CONFIG), "--version", "from-stack", "--stack", "opsbot-test"]) == 0
    assert f"into {STACK_ENV['CONFIG_TABLE']}" in capsys.readouterr().out
    assert store.load().version == "from-stack"


def test_cli_prints_aws_errors_as_one_line_with_the_remedy(aws, capsys, monkeypatch):
    from opsbot.config_cli import main

    monkeypatch.setenv("CONFIG_TABLE", "no-such-table")
    assert main(["load", str(EXAMPLE_CONFIG), "--version", "x"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: AWS said ResourceNotFoundException") and "--stack NAME" in line
    assert main(["load", str(EXAMPLE_CONFIG), "--stack", "no-such-stack"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: AWS said ValidationError") and "check --stack" in line


def test_cli_takes_the_region_from_aws_region_as_the_aws_cli_does(aws, capsys, monkeypatch):
    """boto3 reads only AWS_DEFAULT_REGION; someone who set AWS_REGION (as the AWS CLI and Lambda read it) is not
    told "no AWS region"."""
    import json

    import boto3
    from unit_support import STACK_ENV

    from opsbot import aws as opsbot_aws
    from opsbot.config_cli import main

    boto3.client("cloudformation", region_name="eu-west-1").create_stack(
        StackName="opsbot-eu",
        TemplateBody=json.dumps(
            {
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"ConfigTableName": {"Value": STACK_ENV["CONFIG_TABLE"]}},
            }
        ),
    )
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    opsbot_aws.client.cache_clear()
    assert opsbot_aws.client("cloudformation").meta.region_name == "eu-west-1"
    main(["diff", str(EXAMPLE_CONFIG), "--stack", "opsbot-eu"])
    captured = capsys.readouterr()
    assert "no AWS region" not in captured.err and "no such stack" not in captured.err, captured.err


# --- one human, one entry: identities are unique across people -----------------------------------------------------

TWO_PEOPLE = """\
settings:
  language: zh
  ops_robot: team
robots:
  team:
    webhook: http://127.0.0.1:9/robot/send?access_token=t
    secret: SECliteral
people:
  - id: xiaoming
    dingtalk_user_id: manager4321
    feishu_open_id: ou_xiaoming
    git: [xiaoming, xiaoming@example.com]
    roles: [ops, admin]
  - id: xiaoming-deployer
    dingtalk_user_id: manager4321
    feishu_open_id: ou_xiaoming
    git: [XiaoMing@example.com]
    roles: [deployer]
"""


def test_two_people_with_one_identity_are_refused_naming_each_line(tmp_path):
    """One human split in two entries (an admin and a deployer) could approve their own deploy."""
    directory = write_config(tmp_path, TWO_PEOPLE)
    path = directory / "opsbot.yaml"
    lines = problems_of(directory)
    second = [n for n, text in enumerate(path.read_text().splitlines(), 1) if "manager4321" in text][1]
    assert f"opsbot.yaml:{second}: people[1]: dingtalk_user_id 'manager4321' is also xiaoming's" in lines[0]
    assert any("feishu_open_id 'ou_xiaoming' is also xiaoming's" in line for line in lines)
    assert any("git 'xiaoming@example.com' is also xiaoming's" in line for line in lines)  # whatever its case
    assert len(lines) == 3


def test_gitlab_usernames_apart_from_commit_identities(tmp_path):
    """`git` names commit identities (a commit's author, which anyone can write); `gitlab_username` says who a
    person is on GitLab. An older config without it keeps counting `git`'s usernames (never its e-mails)."""
    text = GLOBAL_OK.replace(
        "    git: [alice]\n", "    git: [alice, alice@example.com]\n    gitlab_username: alice.w\n"
    )
    text += "  - id: bob\n    git: [bob, bob@example.com]\n"
    directory = write_config(tmp_path, text)
    config = validate(read_directory(directory)[0], allow_literal_secrets=True)
    assert config.person_for_gitlab("alice.w").id == "alice"
    assert config.person_for_gitlab("alice") is None  # a GitLab user named alice is someone else
    assert config.person_for_git("alice", "").id == "alice"  # Drone's author_login is a commit identity
    assert config.person_for_gitlab("bob").id == "bob" and config.person_for_gitlab("bob@example.com") is None
    clash = text.replace("gitlab_username: alice.w", "gitlab_username: bob")
    assert any("GitLab username 'bob' is also alice's" in line for line in problems_of(write_config(tmp_path, clash)))
    bad = text.replace("gitlab_username: alice.w", "gitlab_username: 'a b'")
    assert any(
        "gitlab_username 'a b' is no GitLab username" in line for line in problems_of(write_config(tmp_path, bad))
    )
