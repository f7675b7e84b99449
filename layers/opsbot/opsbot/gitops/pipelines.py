"""A project's .drone.yml, generated from its language's template and its config.

Every pipeline has the same shape: on push, tag, pull request and custom builds, `build` and `test` steps
(the template's), then, except for pull requests, `publish` (plugins/docker, registry credentials from the
Drone secrets `docker_username` and `docker_password`) and `scan` (Trivy; HIGH or CRITICAL findings fail
the build, and opsbot deploys only successful builds). Each environment in the project's config gets a promote
pipeline (`trigger: event: [promote, rollback], target: [<env>]`) that points the `<env>` tag of the image at
the build's image. The output is deterministic, so that "the template's output changed" is a plain comparison.

    python -m opsbot.gitops.pipelines <config dir> <project> [--language java|node|python] [--files a,b]
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from opsbot.config.model import PIPELINE_LANGUAGES, Project
from opsbot.gitops.templates import all_templates, detect

FILE = ".drone.yml"
TAG = "${DRONE_COMMIT_SHA:0:8}"  # Drone substitutes this when it reads the file
BUILD_EVENTS = ["push", "tag", "pull_request", "custom"]
PUBLISH_EVENTS = ["push", "tag", "custom"]  # a pull request is built and tested, never published
TRIVY = "aquasec/trivy:0.57.1"
SKOPEO = "quay.io/skopeo/stable:v1.16.1"
REGISTRY_SECRETS = {"username": "docker_username", "password": "docker_password"}


class PipelineError(Exception):
    """The pipeline cannot be generated (no language to go by); the message says what to do."""


@dataclass(frozen=True)
class Generated:
    content: str
    language: str
    reason: str  # how the language was chosen, for the merge request's description
    image: str


def image_of(project: Project) -> str:
    return project.pipeline.image or project.repo.lower()


def registry_of(image: str) -> str:
    """The registry host of an image repository, or "" for Docker Hub (Docker's rule: a first part with a dot
    or a port, or localhost)."""
    first, _, rest = image.partition("/")
    return first if rest and ("." in first or ":" in first or first == "localhost") else ""


def choose_language(project: Project, files: set[str], asked: str = "") -> tuple[str, str]:
    """(language, why): what was asked for, else the project's pipeline.language, else the repository's files."""
    if asked:
        if asked not in PIPELINE_LANGUAGES:
            raise PipelineError(f"there is no {asked} template (templates: {', '.join(PIPELINE_LANGUAGES)})")
        return asked, "asked for"
    if project.pipeline.language:
        return project.pipeline.language, f"pipeline.language in projects/{project.name}.yaml"
    found = detect(files)
    if found is None:
        raise PipelineError(
            f"cannot tell the language of {project.repo} from its files: set pipeline.language in "
            f"projects/{project.name}.yaml, or name it (java, node or python)"
        )
    return found[0], f"detected from {found[1]}"


def _secrets(names: dict[str, str]) -> dict:
    return {key: {"from_secret": REGISTRY_SECRETS[secret]} for key, secret in names.items()}


def _build_pipeline(project: Project, language: str, files: set[str]) -> dict:
    toolchain = all_templates()[language].toolchain(files)
    image = project.pipeline.build_image or toolchain.image
    tests = project.pipeline.test_command or toolchain.test
    tagged = f"{image_of(project)}:{TAG}"
    publish = {"repo": image_of(project), "tags": [TAG], **_secrets({"username": "username", "password": "password"})}
    if registry := registry_of(image_of(project)):
        publish = {"registry": registry, **publish}
    return {
        "kind": "pipeline",
        "type": "docker",
        "name": "build",
        "trigger": {"event": BUILD_EVENTS},
        "steps": [
            {"name": "build", "image": image, "commands": list(toolchain.build)},
            {"name": "test", "image": image, "commands": [*toolchain.test_setup, *tests]},
            {"name": "publish", "image": "plugins/docker", "settings": publish, "when": {"event": PUBLISH_EVENTS}},
            {
                "name": "scan",
                "image": TRIVY,
                "environment": _secrets({"TRIVY_USERNAME": "username", "TRIVY_PASSWORD": "password"}),
                "commands": [f"trivy image --exit-code 1 --severity HIGH,CRITICAL --no-progress {tagged}"],
                "when": {"event": PUBLISH_EVENTS},
            },
        ],
    }


def _promote_pipeline(project: Project, environment: str) -> dict:
    image = image_of(project)
    # $$ keeps Drone from substituting the shell's own variables.
    credentials = "$${REGISTRY_USERNAME}:$${REGISTRY_PASSWORD}"
    return {
        "kind": "pipeline",
        "type": "docker",
        "name": f"promote-{environment}",
        "trigger": {"event": ["promote", "rollback"], "target": [environment]},
        "clone": {"disable": True},
        "steps": [
            {
                "name": "promote",
                "image": SKOPEO,
                "environment": _secrets({"REGISTRY_USERNAME": "username", "REGISTRY_PASSWORD": "password"}),
                "commands": [
                    f'skopeo copy --src-creds "{credentials}" --dest-creds "{credentials}" '
                    f"docker://{image}:{TAG} docker://{image}:{environment}"
                ],
            }
        ],
    }


class _Dumper(yaml.SafeDumper):
    """Short lists of words inline (`event: [push, tag]`), as people write them; no anchors and aliases."""

    def ignore_aliases(self, data) -> bool:
        return True


def _list(dumper: yaml.SafeDumper, items: list):
    words = all(isinstance(i, str) and " " not in i for i in items) and sum(map(len, items)) < 60
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=words)


_Dumper.add_representer(list, _list)


def render(project: Project, language: str, files: set[str]) -> str:
    documents = [_build_pipeline(project, language, files)]
    # A promote pipeline for each environment Drone deploys; a GitOps environment's release is a commit in its deploy
    # repo pinned to the build's own image, never a moved `<env>` tag.
    documents += [_promote_pipeline(project, name) for name, env in project.environments.items() if env.deploy is None]
    header = (
        f"# Generated by opsbot from its {language} template for {project.name}. To change it, change\n"
        f"# `pipeline:` in projects/{project.name}.yaml in the config repo, then `@opsbot drone sync "
        f"{project.name}`\n# opens a merge request with the difference.\n"
    )
    body = "---\n".join(
        yaml.dump(d, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=200) for d in documents
    )
    return header + body


def generate(project: Project, files: set[str], asked: str = "") -> Generated:
    language, reason = choose_language(project, files, asked)
    return Generated(render(project, language, files), language, reason, image_of(project))


def main(argv: list[str] | None = None) -> int:
    import argparse

    from opsbot.config.model import validate
    from opsbot.config.yaml_source import read_directory

    parser = argparse.ArgumentParser(
        prog="python -m opsbot.gitops.pipelines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config")
    parser.add_argument("project")
    parser.add_argument("--language", default="", choices=["", *PIPELINE_LANGUAGES])
    parser.add_argument("--files", default="", help="the repository's top-level files, comma-separated")
    args = parser.parse_args(argv)
    documents, _ = read_directory(args.config)
    project = validate(documents, allow_literal_secrets=True).projects[args.project]
    print(generate(project, set(filter(None, args.files.split(","))), args.language).content, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
