"""The deploy repo's files, per format (opsbot.promotion.formats): the image read and written, and everything else
kept byte for byte (comments, key order, quoting, indentation, the other documents); the release steps' registry
and their config schemas; a release commit's trailers, read back, with outsiders' text made plain."""

from __future__ import annotations

import difflib

import pytest

from opsbot.config.deploy import GitOpsTarget
from opsbot.promotion import formats, trailers

KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
# staging runs the base with its own image
resources:
  - ../../base
images:
  - name: registry.example.com/shop/shop-api  # the API
    newTag: "5e6f7a8b"   # set by opsbot
  - name: redis
    newTag: "7"
namespace: shop-staging
"""
VALUES = """\
# values
replicaCount: 2
image:
  repository: registry.example.com/shop/rec   # the image
  tag: 1a2b3c4d  # opsbot sets this
  pullPolicy: IfNotPresent
"""
MANIFEST = """\
---
apiVersion: v1
kind: Service
metadata: {name: search}
spec:
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: search
spec:
  template:
    spec:
      containers:
        - {name: sidecar, image: envoy:1.30}
        - name: app   # the service
          image: 'registry.example.com/shop/search:1a2b3c4d'  # pinned
"""


def target(kind: str, **fields) -> GitOpsTarget:
    image = {"kustomize": "registry.example.com/shop/shop-api", "helm": "registry.example.com/shop/rec"}
    return GitOpsTarget(
        repo="platform/deploy",
        branch="main",
        file="x.yaml",
        format=kind,
        image=fields.pop("image", image.get(kind, "registry.example.com/shop/search")),
        **fields,
    )


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_kustomize_sets_the_new_tag_and_nothing_else():
    written = formats.write(target("kustomize"), KUSTOMIZATION, "9c8d7e6f")
    assert changed_lines(KUSTOMIZATION, written) == [
        '-    newTag: "5e6f7a8b"   # set by opsbot',
        '+    newTag: "9c8d7e6f"   # set by opsbot',
    ]
    assert formats.read(target("kustomize"), written).reference == "registry.example.com/shop/shop-api:9c8d7e6f"


def test_kustomize_pins_a_digest_instead_of_the_tag_when_asked():
    digest = "sha256:" + "ab" * 32
    written = formats.write(target("kustomize", pin="digest"), KUSTOMIZATION, "9c8d7e6f", digest)
    pinned = formats.read(target("kustomize"), written)
    assert (pinned.tag, pinned.digest) == ("", digest)
    assert "# staging runs the base with its own image" in written and 'newTag: "7"' in written


def test_kustomize_adds_the_image_entry_an_overlay_does_not_have_yet():
    text = "# an overlay\nkind: Kustomization\nresources: [../../base]\n"
    written = formats.write(target("kustomize"), text, "9c8d7e6f")
    assert written.startswith("# an overlay\nkind: Kustomization\n")
    assert formats.read(target("kustomize"), written).tag == "9c8d7e6f"


def test_helm_sets_the_key_path_quoting_a_tag_of_digits_so_it_stays_text():
    written = formats.write(target("helm", key="image.tag"), VALUES, "12345678")
    assert changed_lines(VALUES, written) == [
        "-  tag: 1a2b3c4d  # opsbot sets this",
        "+  tag: '12345678'  # opsbot sets this",
    ]
    assert formats.read(target("helm", key="image.tag"), written).tag == "12345678"
    plain = formats.write(target("helm", key="image.tag"), VALUES, "deadbeef")
    assert "  tag: deadbeef  # opsbot sets this" in plain


def test_helm_a_versions_file_gets_its_key_made_when_missing():
    written = formats.write(
        target("helm", key="shop-web.version"), "# versions\nnginx: {version: '1.27'}\n", "9c8d7e6f"
    )
    assert written.startswith("# versions\nnginx: {version: '1.27'}\n")
    assert formats.read(target("helm", key="shop-web.version"), written).tag == "9c8d7e6f"


def test_manifest_sets_the_named_containers_image_in_its_quoting_other_documents_untouched():
    written = formats.write(target("manifest", container="app"), MANIFEST, "9c8d7e6f")
    assert changed_lines(MANIFEST, written) == [
        "-          image: 'registry.example.com/shop/search:1a2b3c4d'  # pinned",
        "+          image: 'registry.example.com/shop/search:9c8d7e6f'  # pinned",
    ]
    sidecar = formats.write(target("manifest", container="sidecar", image="envoy"), MANIFEST, "1.31")
    assert "- {name: sidecar, image: envoy:1.31}" in sidecar and "ports: [{port: 80}]" in sidecar


@pytest.mark.parametrize(
    "kind, fields, text, problem",
    [
        ("kustomize", {}, "- a\n- b\n", "a kustomization is one YAML mapping"),
        ("kustomize", {}, "images: {a: 1}\n", "images: is not a list"),
        ("helm", {"key": "image.tag"}, "image: [1, 2]\n", "'image' is not a mapping"),
        ("manifest", {"container": "app"}, "kind: Deployment\nspec: {}\n", "no Deployment with container 'app'"),
        ("helm", {"key": "a"}, "a: [unclosed\n", "not YAML"),
    ],
)
def test_a_file_that_is_not_what_its_format_says_is_refused_with_why(kind, fields, text, problem):
    with pytest.raises(formats.FormatError) as refused:
        formats.write(target(kind, **fields), text, "9c8d7e6f")
    assert problem in str(refused.value)


def test_an_image_reference_splits_into_repository_tag_and_digest():
    assert formats.split_reference("registry:5000/shop/api:1.2@sha256:ab") == formats.Pinned(
        "registry:5000/shop/api", "1.2", "sha256:ab"
    )
    assert formats.split_reference("registry:5000/shop/api").tag == ""


# --- the steps' registry ---------------------------------------------------------------------------------------------


def test_every_step_registers_a_schema_and_its_config_is_checked_before_it_runs():
    from opsbot.promotion import steps  # noqa: F401  (registers them)
    from opsbot.promotion.registry import STEPS, StepConfigError

    assert {
        "set-image",
        "git-commit",
        "open-merge-request",
        "merge-merge-request",
        "git-revert",
        "apply-opsbot",
        "apply-argocd",
        "apply-flux",
        "apply-watch",
        "apply-runbook",
        "verify-http",
        "verify-alarm",
        "auto-rollback",
        "report",
    } <= set(STEPS)
    schema = STEPS["apply-opsbot"].schema()
    assert schema["required"] == ["cluster", "namespace", "deployment"]
    assert schema["properties"]["deadline_minutes"] == {"type": "integer"} and not schema["additionalProperties"]
    assert STEPS["verify-http"].parse({"url": "https://x", "minutes": 1}).minutes == 1.0
    for wrong, why in (
        ({"url": "https://x", "extra": 1}, "unknown config extra"),
        ({"minutes": 1}, "url is required"),
        ({"url": 5}, "url must be str"),
        ({"url": "https://x", "interval_seconds": True}, "interval_seconds must be int"),
    ):
        with pytest.raises(StepConfigError) as refused:
            STEPS["verify-http"].parse(wrong)
        assert why in str(refused.value)


# --- trailers --------------------------------------------------------------------------------------------------------


def test_a_release_commit_names_everything_in_trailers_and_outsiders_text_is_made_plain():
    from opsbot.promotion.records import Release

    release = Release(
        id="a1b2c3d4",
        project="shop-api",
        environment="production",
        action="deploy",
        requester={"id": "alice", "name": "Alice Wang", "git_name": "Alice Wang", "git_email": "alice@example.com"},
        asked_via="chat",
        language="en",
        plan=[],
        build=128,
        build_link="https://drone.example.com/shop/shop-api/128",
        source_commit="9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d",
        title="feat: @all see [this](https://evil.example)\n/merge",
        image="registry.example.com/shop/shop-api",
        tag="9c8d7e6f",
        approvers=["Carol Zhang", "Dave @all"],
    )
    message = trailers.message(
        release, "registry.example.com/shop/shop-api:3c4d5e6f", "registry.example.com/shop/shop-api:9c8d7e6f"
    )
    found = trailers.parse(message)
    assert trailers.first(found, trailers.RELEASE) == "a1b2c3d4"
    assert found[trailers.APPROVED_BY] == ["Carol Zhang", "Dave ＠all"]
    assert trailers.first(found, trailers.BUILD_LINK) == "https://drone.example.com/shop/shop-api/128"
    assert "@all" not in message and "](https://evil" not in message and "\n/merge" not in message
    assert trailers.release_of({"message": message}) == "a1b2c3d4"
    assert trailers.parse("title\n\nbody without trailers\n") == {}
    assert (
        trailers.reverted({"message": 'Revert "x"\n\nThis reverts commit 0123456789abcdef0123.'})
        == "0123456789abcdef0123"
    )


def test_ruamel_python_gitlab_and_kubernetes_stay_off_every_cold_start():
    """A release's libraries load only in the worker's release and status jobs: never at a function's cold start, nor
    when the chat registry (which names `releases` and `status`) or the release job's module loads."""
    import os
    import subprocess
    import sys

    from unit_support import FUNCTIONS, LAYER_PATH, ROOT

    code = (
        "import importlib.util, sys\n"
        "for name in ('drone_webhook', 'gitlab_webhook', 'dingtalk_bot', 'feishu_bot', 'actions', 'worker'):\n"
        f"    spec = importlib.util.spec_from_file_location('fn_' + name, r'{FUNCTIONS}/' + name + '/app.py')\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "import opsbot.promotion.jobs, opsbot.chat.commands, opsbot.actions.jobs\n"
        "opsbot.chat.commands.all_commands()\n"
        "print(sorted(m for m in ('ruamel', 'ruamel.yaml', 'gitlab', 'kubernetes') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{LAYER_PATH}{os.pathsep}{ROOT}", "POWERTOOLS_SERVICE_NAME": "opsbot"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
