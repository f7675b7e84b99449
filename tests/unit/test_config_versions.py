"""Config for GitOps: the `gitlab:` and `pipeline:` sections, saved versions (history, find by sha), and the
CLI's export and diff."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from unit_support import EXAMPLE_CONFIG

from opsbot.config import store
from opsbot.config.model import ConfigError, validate
from opsbot.config.yaml_source import is_config_file, parse_files, read_directory
from opsbot.config_cli import main as cli

GLOBAL = """\
settings:
  ops_robot: team
robots:
  team:
    webhook: http://127.0.0.1:9/robot/send?access_token=t
    secret: SECliteral
gitlab:
  url: https://gitlab.example.com
  token: ssm:/opsbot/test/gitlab/token
  config_repo: platform/opsbot-config
"""
PROJECT = """\
repo: shop/api
robot: team
pipeline:
  language: java
  image: registry.example.com/shop/api
  test_command: mvn -B verify -Pci
  init_on_push: true
"""


def problems(files: dict[str, str]) -> list[str]:
    documents, syntax = parse_files({name: textwrap.dedent(text) for name, text in files.items()})
    if syntax:
        return ConfigError(syntax).lines()
    try:
        validate(documents, allow_literal_secrets=True)
    except ConfigError as exc:
        return exc.lines()
    return []


def config_of(files: dict[str, str]):
    documents, syntax = parse_files(files)
    assert syntax == []
    return validate(documents, allow_literal_secrets=True)


# --- model ---------------------------------------------------------------------------------------------------


def test_gitlab_and_pipeline_sections_are_read():
    config = config_of({"opsbot.yaml": GLOBAL, "projects/api.yaml": PROJECT})
    assert config.gitlab.url == "https://gitlab.example.com"
    assert (config.gitlab.config_repo, config.gitlab.config_branch, config.gitlab.config_path) == (
        "platform/opsbot-config",
        "main",
        "",
    )
    pipeline = config.projects["api"].pipeline
    assert (pipeline.language, pipeline.image, pipeline.init_on_push) == ("java", "registry.example.com/shop/api", True)
    assert pipeline.test_command == ("mvn -B verify -Pci",)


def test_a_project_without_pipeline_gets_the_defaults():
    config = config_of({"opsbot.yaml": GLOBAL, "projects/api.yaml": "repo: shop/api\nrobot: team\n"})
    pipeline = config.projects["api"].pipeline
    assert (pipeline.language, pipeline.image, pipeline.test_command, pipeline.init_on_push) == ("", "", (), False)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("  language: cobol", "projects/api.yaml:4: pipeline.language must be one of java, node, python"),
        ("  image: Registry.example.com/shop/api:latest", "projects/api.yaml:4: pipeline.image 'Registry.example.com"),
        ("  init_on_push: sometimes", "projects/api.yaml:4: pipeline.init_on_push must be true or false"),
        ("  tests: pytest", "projects/api.yaml:4: pipeline: unknown key 'tests'"),
    ],
)
def test_pipeline_mistakes_name_file_and_line(line, expected):
    found = problems({"opsbot.yaml": GLOBAL, "projects/api.yaml": f"repo: shop/api\nrobot: team\npipeline:\n{line}\n"})
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize(
    "change, expected",
    [
        (("url: https://gitlab.example.com", "url: gitlab.example.com"), "opsbot.yaml:8: gitlab.url must be a URL"),
        (("config_repo: platform/opsbot-config", "config_repo: opsbot-config"), "opsbot.yaml:10: gitlab.config_repo"),
        (("token: ssm:/opsbot/test/gitlab/token", "token: glpat-literal"), "opsbot.yaml:9: gitlab.token is a secret"),
        (("  ops_robot: team\n", ""), "opsbot.yaml:9: gitlab.config_repo needs settings.ops_robot"),
    ],
)
def test_gitlab_mistakes_name_file_and_line(change, expected):
    documents, _ = parse_files(
        {"opsbot.yaml": GLOBAL.replace(*change), "projects/api.yaml": "repo: a/b\nrobot: team\n"}
    )
    with pytest.raises(ConfigError) as caught:
        validate(documents, allow_literal_secrets="literal" not in change[1])
    assert any(line.startswith(expected) for line in caught.value.lines()), caught.value.lines()


def test_init_on_push_needs_a_gitlab_section():
    without_gitlab = GLOBAL.split("gitlab:")[0]
    found = problems({"opsbot.yaml": without_gitlab, "projects/api.yaml": PROJECT})
    assert found == ["projects/api.yaml:7: pipeline.init_on_push needs a gitlab: section in opsbot.yaml"]


def test_which_paths_are_config_files():
    assert is_config_file("opsbot.yaml") and is_config_file("projects/a.yml") and is_config_file("projects/b.yaml")
    for other in ("README.md", "projects/notes.txt", "projects/old/a.yaml", "other/a.yaml", "projects/.x.yaml"):
        assert not is_config_file(other), other


def test_parse_files_reports_a_missing_global_file_and_syntax_errors_with_lines():
    documents, found = parse_files({"projects/a.yaml": "repo: a/b\nrobot: [x\n", "README.md": "# hi"})
    assert documents == []
    assert found[0][:2] == ("opsbot.yaml", 0)
    assert found[1][0] == "projects/a.yaml" and found[1][1] >= 2 and "YAML syntax" in found[1][2]


# --- versions ------------------------------------------------------------------------------------------------


def example_documents():
    documents, found = read_directory(EXAMPLE_CONFIG)
    assert found == []
    return documents


def test_history_lists_saves_newest_first_with_their_source(aws, monkeypatch):
    clock = iter([1000, 2000, 3000])
    monkeypatch.setattr(store.time, "time", lambda: next(clock))
    store.save(example_documents(), "a" * 40, source="push by alice")
    store.save(example_documents(), "b" * 40, source="push by bob")
    store.save(example_documents(), "a" * 40, source="rollback by xiaoming")
    assert [(v.version[:1], v.saved_at, v.source) for v in store.history()] == [
        ("a", 3000, "rollback by xiaoming"),
        ("b", 2000, "push by bob"),
        ("a", 1000, "push by alice"),
    ]
    assert len(store.history(limit=2)) == 2


def test_find_version_takes_an_abbreviated_sha_and_refuses_ambiguity(aws, monkeypatch):
    clock = iter([1000, 2000])
    monkeypatch.setattr(store.time, "time", lambda: next(clock))
    documents = example_documents()
    store.save(documents, "abc1234" + "0" * 33)
    store.save(documents, "abc9999" + "0" * 33)
    version, found = store.find_version("abc1")
    assert version.startswith("abc1234") and sorted(d.name for d in found) == sorted(d.name for d in documents)
    with pytest.raises(LookupError, match="fits 2 versions"):
        store.find_version("abc")
    with pytest.raises(LookupError, match="no saved config version"):
        store.find_version("fff")


# --- export and diff -----------------------------------------------------------------------------------------


def test_export_writes_what_load_reads_back(aws, tmp_path, capsys):
    store.save(example_documents(), "v1")
    target = tmp_path / "exported"
    assert cli(["export", str(target)]) == 0
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*.yaml")) == [
        "opsbot.yaml",
        "projects/shop-api.yaml",
        "projects/shop-recommend.yaml",
        "projects/shop-search.yaml",
        "projects/shop-web.yaml",
    ]
    assert (target / "opsbot.yaml").read_text(encoding="utf-8").startswith("# exported from opsbot's store, version v1")
    exported, found = read_directory(target)
    assert found == []
    assert validate(exported, True) == validate(example_documents(), True)
    assert cli(["diff", str(target)]) == 0
    assert "no differences" in capsys.readouterr().out


def test_export_refuses_a_directory_that_is_not_empty(aws, tmp_path, capsys):
    store.save(example_documents(), "v1")
    (tmp_path / "keep.txt").write_text("mine")
    assert cli(["export", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_diff_shows_changed_added_and_removed_files_and_exits_1(aws, tmp_path, capsys):
    import shutil

    store.save(example_documents(), "v1")
    local = tmp_path / "local"
    shutil.copytree(EXAMPLE_CONFIG, local)
    web = local / "projects" / "shop-web.yaml"
    web.write_text(web.read_text(encoding="utf-8").replace("language: en", "language: zh"), encoding="utf-8")
    (local / "projects" / "shop-recommend.yaml").unlink()
    (local / "projects" / "new-api.yaml").write_text("repo: shop/new-api\nrobot: shop-backend\n", encoding="utf-8")
    assert cli(["diff", str(local)]) == 1
    out = capsys.readouterr().out
    assert "--- store@v1/projects/shop-web.yaml\n+++ local/projects/shop-web.yaml" in out
    assert "-language: en\n+language: zh\n" in out
    assert "--- /dev/null\n+++ local/projects/new-api.yaml" in out
    assert "--- store@v1/projects/shop-recommend.yaml\n+++ /dev/null" in out
    assert "opsbot.yaml" not in out  # comments and layout are not differences


def test_diff_and_export_without_a_stored_config_say_so(aws, tmp_path, capsys):
    assert cli(["diff", str(EXAMPLE_CONFIG)]) == 2
    assert cli(["export", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.count("no config has been loaded yet") == 2


def test_load_records_the_cli_as_source(aws):
    assert cli(["load", str(EXAMPLE_CONFIG), "--version", "v9"]) == 0
    assert store.history()[0].source == "cli load"


def test_example_has_a_project_of_each_pipeline_language():
    config = validate(example_documents(), True)
    assert config.gitlab and config.gitlab.config_repo
    assert Path(EXAMPLE_CONFIG / "projects" / "shop-recommend.yaml").is_file()
    assert {p.pipeline.language for p in config.projects.values()} >= {"java", "python"}
