"""A project environment's `deploy:` (config/deploy.py): Drone by default, or a GitOps target checked with file:line,
its references to the global file (deploy repo and token, clusters, runbooks, VM groups) included."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from test_config import GLOBAL_OK, line_of, problems_of, write_config
from unit_support import EXAMPLE_CONFIG

from opsbot.config.model import validate
from opsbot.config.yaml_source import read_directory

GLOBAL_GITOPS = (
    GLOBAL_OK
    + """\
gitlab:
  url: http://127.0.0.1:9
  token: api-token
  deploy_repo: platform/deploy
  deploy_token: deploy-token
ops:
  clusters:
    stage-eks:
      environment: staging
      eks: {name: stage, region: us-east-1}
      namespaces: [shop]
    prod-eks:
      environment: production
      eks: {name: prod, region: us-east-1}
      namespaces: [shop]
  vm_groups:
    web:
      environment: staging
      targets: {tag: {app: web}}
  runbooks:
    deploy-web:
      commands: ["/opt/deploy.sh {{version}}"]
      parameters: {version: {type: version}}
      groups: [web]
    restart:
      commands: ["systemctl restart web"]
      groups: [web]
"""
)


def project(deploy: str, env: str = "staging") -> str:
    body = textwrap.indent(textwrap.dedent(deploy), "      ")
    head = "repo: shop/api\nrobot: team\npipeline: {image: registry.example.com/shop/api}\nenvironments:\n"
    return head + f"  {env}:\n    branch: main\n    deploy:\n{body}"


def load(tmp_path: Path, deploy: str, global_text: str = GLOBAL_GITOPS, env: str = "staging"):
    write_config(tmp_path, global_text, {"api.yaml": project(deploy, env)})
    documents, problems = read_directory(tmp_path)
    assert not problems
    return validate(documents, allow_literal_secrets=True)


def test_the_example_has_a_target_for_each_format_and_way_and_drone_stays_the_default():
    documents, problems = read_directory(EXAMPLE_CONFIG)
    config = validate(documents, allow_literal_secrets=True)
    targets = {(name, env.name): env.deploy for name, p in config.projects.items() for env in p.environments.values()}
    api = targets[("shop-api", "staging")]
    assert (api.repo, api.branch, api.format, api.apply, api.mode) == (
        "platform/deploy",
        "main",
        "kustomize",
        "opsbot",
        "commit",
    )
    assert api.image == "registry.example.com/shop/shop-api" and api.auto_rollback and api.verify.minutes == 1
    assert targets[("shop-api", "production")].mode == "merge_request"
    assert {(t.format, t.apply) for t in targets.values() if t} >= {
        ("kustomize", "opsbot"),
        ("helm", "argocd"),
        ("helm", "runbook"),
        ("manifest", "watch"),
    }
    assert config.gitlab.deploy_token == "local-deploy-token"


def test_no_deploy_or_drone_is_drones_promote(tmp_path):
    write_config(
        tmp_path,
        GLOBAL_OK,
        {
            "api.yaml": "repo: shop/api\nrobot: team\nenvironments:\n  a: {branch: main}\n"
            "  b: {branch: main, deploy: drone}\n"
        },
    )
    documents, _ = read_directory(tmp_path)
    config = validate(documents, allow_literal_secrets=True)
    assert [e.deploy for e in config.projects["api"].environments.values()] == [None, None]


def test_a_valid_target_of_each_way(tmp_path):
    config = load(
        tmp_path,
        """\
        file: api/staging/kustomization.yaml
        apply: flux
        flux: {cluster: stage-eks, kind: HelmRelease, namespace: shop, name: api}
        verify: {alarm: api-5xx, minutes: 0.5}
        """,
    )
    target = config.projects["api"].environments["staging"].deploy
    assert target.flux.kind == "HelmRelease" and target.verify.alarm == "api-5xx" and target.verify.minutes == 0.5
    config = load(
        tmp_path,
        """\
        file: api/staging/versions.yaml
        format: helm
        key: api.version
        apply: runbook
        runbook: deploy-web
        group: web
        """,
    )
    assert config.projects["api"].environments["staging"].deploy.runbook == "deploy-web"


@pytest.mark.parametrize(
    "deploy, line_text, message",
    [
        ("file: x.txt\n", "file: x.txt", "is a .yaml path inside the deploy repo"),
        ("file: ../x.yaml\n", "file: ../x.yaml", "is a .yaml path"),
        ("file: a.yaml\nformat: ini\n", "format: ini", "format must be one of kustomize, helm, manifest"),
        (
            "file: a.yaml\nformat: helm\napply: watch\n"
            "workload: {cluster: stage-eks, namespace: shop, deployment: api}\n",
            "format: helm",
            "helm needs `key`",
        ),
        ("file: a.yaml\napply: argocd\n", "file: a.yaml", "apply argocd needs `application`"),
        ("file: a.yaml\napply: opsbot\n", "file: a.yaml", "apply opsbot needs `workload`"),
        (
            "file: a.yaml\napply: runbook\nrunbook: deploy-web\ngroup: web\napplication: x\n",
            "application: x",
            "application is not used by apply runbook",
        ),
        (
            "file: a.yaml\napply: watch\nworkload: {cluster: prod-eks, namespace: shop, deployment: api}\n",
            "workload:",
            "cluster prod-eks is production, not staging",
        ),
        (
            "file: a.yaml\napply: watch\nworkload: {cluster: nope, namespace: shop, deployment: api}\n",
            "workload:",
            "no cluster 'nope'",
        ),
        (
            "file: a.yaml\napply: watch\nworkload: {cluster: stage-eks, namespace: other, deployment: api}\n",
            "workload:",
            "does not list namespace 'other'",
        ),
        (
            "file: a.yaml\nformat: helm\nkey: v\napply: runbook\nrunbook: restart\ngroup: web\n",
            "runbook: restart",
            "needs a parameter 'version' of type version",
        ),
        ("file: a.yaml\napply: argocd\napplication: a\nmode: push\n", "mode: push", "mode must be one of"),
        (
            "file: a.yaml\napply: argocd\napplication: a\nverify: {url: http://x, alarm: y}\n",
            "verify:",
            "give either url",
        ),
        (
            "file: a.yaml\napply: argocd\napplication: a\nverify: {alarm: y, minutes: 0}\n",
            "verify:",
            "minutes must be a number above 0",
        ),
        (
            "file: a.yaml\napply: argocd\napplication: a\nauto_rollback: yes please\n",
            "auto_rollback",
            "must be true or false",
        ),
        ("file: a.yaml\napply: argocd\napplication: a\nbranch: 'a b'\n", "'a b'", "is not a branch name"),
    ],
)
def test_mistakes_are_told_with_file_and_line(tmp_path, deploy, line_text, message):
    write_config(tmp_path, GLOBAL_GITOPS, {"api.yaml": project(deploy)})
    found = problems_of(tmp_path)
    line = line_of(tmp_path / "projects" / "api.yaml", line_text)
    assert any(message in p and p.startswith(f"projects/api.yaml:{line}:") for p in found), (found, line)


def test_a_gitops_target_needs_gitlab_a_deploy_repo_and_its_own_token(tmp_path):
    deploy = "file: a.yaml\napply: argocd\napplication: a\n"
    write_config(tmp_path, GLOBAL_OK, {"api.yaml": project(deploy)})
    assert any("needs a gitlab: section" in p for p in problems_of(tmp_path))
    no_repo = GLOBAL_GITOPS.replace("  deploy_repo: platform/deploy\n", "").replace(
        "  deploy_token: deploy-token\n", ""
    )
    write_config(tmp_path, no_repo, {"api.yaml": project(deploy)})
    found = problems_of(tmp_path)
    assert any("name the deploy repo" in p for p in found) and any("gitlab.deploy_token" in p for p in found)


def test_the_deploy_token_is_a_secret_of_the_stages_gitlab_area(tmp_path):
    text = GLOBAL_GITOPS.replace("deploy_token: deploy-token", "deploy_token: ssm:/opsbot/prod/robots/x")
    write_config(tmp_path, text, {"api.yaml": project("file: a.yaml\napply: argocd\napplication: a\n")})
    documents, _ = read_directory(tmp_path)
    from opsbot.config.model import ConfigError

    with pytest.raises(ConfigError) as caught:
        validate(documents, allow_literal_secrets=False, stage="prod")
    assert any("gitlab.deploy_token must be a parameter under /opsbot/prod/gitlab/" in p for p in caught.value.lines())


def test_a_version_parameter_takes_an_image_tag_and_nothing_a_shell_reads():
    from opsbot.config.ops import Parameter, parameter_problem

    version = Parameter("version", "version")
    assert parameter_problem(version, "9c8d7e6f") == "" and parameter_problem(version, "1.2.3-rc.1+b7") == ""
    for bad in ("$(reboot)", "a b", "-x", "a;b", "", "x" * 129):
        assert parameter_problem(version, bad)
