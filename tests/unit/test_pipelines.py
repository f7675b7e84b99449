""".drone.yml generation: the three templates against golden files, the structure Drone needs, the project's
variables, and language detection from a repository's files.

Regenerate the golden files after an intended change with `make golden` (UPDATE_GOLDEN=1) and review the diff.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from unit_support import EXAMPLE_CONFIG, ROOT, example_documents

from local.gitlab_seed import PROJECTS
from opsbot.config.model import PIPELINE_LANGUAGES, Pipeline, validate
from opsbot.config.yaml_source import read_directory
from opsbot.gitops import pipelines
from opsbot.gitops.templates import all_templates, detect

GOLDEN = ROOT / "tests" / "golden" / "drone"
# The example with its environments deployed by Drone (unit_support.example_documents): the promote pipelines;
# GITOPS_EXAMPLE as it is, whose environments are released through the deploy repo and get none.
EXAMPLE = validate(example_documents(), allow_literal_secrets=True)
GITOPS_EXAMPLE = validate(read_directory(EXAMPLE_CONFIG)[0], allow_literal_secrets=True)
# Each language's example project, with the top-level files of its repository in the fake GitLab.
CASES = {
    "java": ("shop-api", "shop/shop-api"),
    "node": ("shop-web", "shop/shop-web"),
    "python": ("shop-recommend", "shop/shop-recommend"),
}


def top_level(repo: str) -> set[str]:
    return {path.split("/")[0] for path in PROJECTS[repo]}


def generated(language: str, example=GITOPS_EXAMPLE):
    """What `drone init` makes for the language's example project (the example as it is, unless told)."""
    project, repo = CASES[language]
    return pipelines.generate(example.projects[project], top_level(repo))


def documents(content: str) -> list[dict]:
    return list(yaml.safe_load_all(content))


# --- golden files --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", sorted(CASES))
def test_output_matches_the_golden_file(language):
    result = generated(language)
    assert result.language == language
    golden = GOLDEN / f"{language}.drone.yml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(result.content, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden}: run `make golden`"
    assert result.content == golden.read_text(encoding="utf-8"), (
        f"{language} output changed: run `make golden` and review the diff"
    )


def test_every_golden_file_has_a_template():
    assert sorted(p.name for p in GOLDEN.glob("*.drone.yml")) == sorted(f"{lang}.drone.yml" for lang in CASES)


# --- structure -----------------------------------------------------------------------------------------------

STEP_KEYS = {"name", "image", "commands", "settings", "environment", "when", "depends_on", "failure", "pull"}
CONDITION_KEYS = {"event", "target", "branch", "ref", "status", "repo", "instance", "cron", "action"}
EVENTS = {"push", "pull_request", "tag", "promote", "rollback", "cron", "custom"}


def assert_drone_accepts(docs: list[dict]) -> None:
    """What Drone's YAML parser and linter require of docker pipelines (drone/drone-yaml's rules)."""
    names = [d["name"] for d in docs]
    assert len(set(names)) == len(names), "pipeline names must be unique"
    for doc in docs:
        assert doc["kind"] == "pipeline" and doc["type"] == "docker"
        assert re.fullmatch(r"[a-zA-Z0-9_.-]+", doc["name"])
        conditions = [doc.get("trigger", {})] + [s.get("when", {}) for s in doc["steps"]]
        for condition in conditions:
            assert set(condition) <= CONDITION_KEYS, condition
            assert set(condition.get("event", [])) <= EVENTS, condition
        step_names = [s["name"] for s in doc["steps"]]
        assert step_names and len(set(step_names)) == len(step_names), "step names must be unique"
        for step in doc["steps"]:
            assert set(step) <= STEP_KEYS, step
            assert isinstance(step["image"], str) and step["image"]
            assert "commands" in step or "settings" in step
            assert all(isinstance(c, str) for c in step.get("commands", []))
            for value in list(step.get("settings", {}).values()) + list(step.get("environment", {}).values()):
                assert not isinstance(value, dict) or set(value) == {"from_secret"}, value


@pytest.mark.parametrize("language", sorted(CASES))
def test_pipelines_parse_and_have_build_test_publish_scan_and_promote(language):
    result = generated(language, EXAMPLE)  # environments that Drone deploys: a promote pipeline each
    docs = documents(result.content)
    assert_drone_accepts(docs)
    build = docs[0]
    assert build["trigger"]["event"] == ["push", "tag", "pull_request", "custom"]
    steps = {s["name"]: s for s in build["steps"]}
    assert list(steps) == ["build", "test", "publish", "scan"]
    publish, scan = steps["publish"], steps["scan"]
    assert publish["image"] == "plugins/docker"
    assert publish["settings"]["repo"] == result.image == f"registry.example.com/{CASES[language][1]}"
    assert publish["settings"]["registry"] == "registry.example.com"
    assert publish["settings"]["username"] == {"from_secret": "docker_username"}
    assert publish["settings"]["password"] == {"from_secret": "docker_password"}
    assert publish["when"] == scan["when"] == {"event": ["push", "tag", "custom"]}  # never for pull requests
    assert scan["image"].startswith("aquasec/trivy:")
    assert scan["commands"] == [
        f"trivy image --exit-code 1 --severity HIGH,CRITICAL --no-progress {result.image}:${{DRONE_COMMIT_SHA:0:8}}"
    ]
    environments = list(EXAMPLE.projects[CASES[language][0]].environments)
    promotes = docs[1:]
    assert [d["name"] for d in promotes] == [f"promote-{env}" for env in environments]
    for env, doc in zip(environments, promotes, strict=True):
        assert doc["trigger"] == {"event": ["promote", "rollback"], "target": [env]}
        assert doc["steps"][0]["name"] == "promote"
        assert doc["steps"][0]["commands"][0].endswith(
            f"docker://{result.image}:${{DRONE_COMMIT_SHA:0:8}} docker://{result.image}:{env}"
        )


def test_templates_build_and_test_each_language_its_way():
    steps = {lang: {s["name"]: s for s in documents(generated(lang).content)[0]["steps"]} for lang in CASES}
    assert steps["java"]["build"]["image"].startswith("maven:")
    assert "-DskipTests package" in steps["java"]["build"]["commands"][0]
    assert steps["node"]["build"]["commands"] == ["npm ci", "npm run build --if-present"]
    assert steps["node"]["test"]["commands"] == ["npm test"]
    assert "pip install -r requirements.txt" in steps["python"]["build"]["commands"]
    # shop-recommend replaces the test command; the virtualenv is still activated first
    assert steps["python"]["test"]["commands"] == [". .venv/bin/activate", "pytest -q tests"]


def test_shell_variables_are_escaped_from_drones_substitution():
    content = generated("java", EXAMPLE).content  # with its promote pipelines, which use the registry secrets
    assert "$${REGISTRY_USERNAME}" in content
    assert re.findall(r"(?<!\$)\$\{(\w+)", content) == ["DRONE_COMMIT_SHA"] * content.count("${DRONE_COMMIT_SHA")


# --- variables from the project's config ---------------------------------------------------------------------


def with_pipeline(name: str, **fields):
    project = EXAMPLE.projects[name]
    return replace(project, pipeline=replace(project.pipeline, **fields))


def test_defaults_publish_to_docker_hub_under_the_repo_path():
    project = replace(EXAMPLE.projects["shop-web"], pipeline=Pipeline())
    docs = documents(pipelines.generate(project, {"package.json"}).content)
    publish = docs[0]["steps"][2]["settings"]
    assert publish["repo"] == "shop/shop-web" and "registry" not in publish


def test_build_image_and_test_command_overrides():
    project = with_pipeline(
        "shop-api", build_image="maven:3.9-eclipse-temurin-21", test_command=("mvn -B verify -Pci", "mvn -B site")
    )
    steps = documents(pipelines.generate(project, {"pom.xml"}).content)[0]["steps"]
    assert steps[0]["image"] == steps[1]["image"] == "maven:3.9-eclipse-temurin-21"
    assert steps[1]["commands"] == ["mvn -B verify -Pci", "mvn -B site"]


def test_gitops_environments_get_no_promote_pipeline():
    project = GITOPS_EXAMPLE.projects["shop-api"]
    assert all(env.deploy is not None for env in project.environments.values())
    names = [d["name"] for d in documents(pipelines.generate(project, top_level("shop/shop-api")).content)]
    assert not [n for n in names if n.startswith("promote-")]


def test_a_project_without_environments_has_no_promote_pipelines():
    project = replace(EXAMPLE.projects["shop-api"], environments={})
    assert len(documents(pipelines.generate(project, {"pom.xml"}).content)) == 1


def test_output_is_deterministic():
    assert generated("java").content == generated("java").content


@pytest.mark.parametrize(
    "image, registry",
    [
        ("registry.example.com/shop/api", "registry.example.com"),
        ("localhost:5000/api", "localhost:5000"),
        ("localhost/api", "localhost"),
        ("shop/api", ""),
        ("api", ""),
    ],
)
def test_registry_is_the_image_host(image, registry):
    assert pipelines.registry_of(image) == registry


# --- language --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"pom.xml", "src"}, ("java", "pom.xml")),
        ({"build.gradle", "gradlew"}, ("java", "build.gradle")),
        ({"build.gradle.kts"}, ("java", "build.gradle.kts")),
        ({"package.json", "package-lock.json"}, ("node", "package.json")),
        ({"pyproject.toml"}, ("python", "pyproject.toml")),
        ({"requirements.txt"}, ("python", "requirements.txt")),
        ({"setup.py"}, ("python", "setup.py")),
        ({"pom.xml", "package.json"}, ("java", "pom.xml")),  # a front end inside a Java service
        ({"pyproject.toml", "package.json"}, ("python", "pyproject.toml")),
        ({"README.md", "Makefile"}, None),
    ],
)
def test_language_is_detected_from_the_repository_files(files, expected):
    assert detect(files) == expected


def test_gradle_uses_its_wrapper_when_the_repository_has_one():
    toolchain = all_templates()["java"].toolchain
    assert toolchain({"build.gradle", "gradlew"}).build == ("./gradlew --no-daemon -g .gradle assemble",)
    assert toolchain({"build.gradle"}).test == ("gradle --no-daemon -g .gradle test",)


def test_language_asked_for_beats_config_which_beats_detection():
    project = with_pipeline("shop-api", language="java")
    assert pipelines.choose_language(project, {"package.json"}, "python") == ("python", "asked for")
    assert pipelines.choose_language(project, {"package.json"})[0] == "java"
    assert pipelines.choose_language(with_pipeline("shop-api", language=""), {"package.json"}) == (
        "node",
        "detected from package.json",
    )


def test_no_language_to_go_by_says_what_to_do():
    with pytest.raises(pipelines.PipelineError, match="set pipeline.language in projects/shop-api.yaml"):
        pipelines.generate(with_pipeline("shop-api", language=""), {"README.md"})
    with pytest.raises(pipelines.PipelineError, match="there is no cobol template"):
        pipelines.generate(EXAMPLE.projects["shop-api"], set(), "cobol")


def test_the_config_model_and_the_templates_name_the_same_languages():
    assert set(all_templates()) == set(PIPELINE_LANGUAGES)


def test_the_cli_prints_a_projects_pipeline(capsys):
    assert pipelines.main([str(EXAMPLE_CONFIG), "shop-web", "--files", "package.json,package-lock.json"]) == 0
    assert capsys.readouterr().out == generated("node").content


def test_golden_files_live_where_the_make_target_writes_them():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "UPDATE_GOLDEN=1" in makefile and "tests/unit/test_pipelines.py" in makefile
    assert Path(GOLDEN).relative_to(ROOT).as_posix() == "tests/golden/drone"
