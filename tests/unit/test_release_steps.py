"""GitOps releases, step by step (opsbot.promotion), against moto and the local stack's fakes on loopback: the deploy
repo (local/fake_gitlab.py with local/deploy_seed.py's repo and its own token), a cluster (local/fake_kubernetes.py),
Argo CD (local/fake_argocd.py) and the stand-in controllers (local/fake_reconciler.py). Each step: what it does, and
that it does it once when it is run again (a retry after a crash or a lost answer)."""

from __future__ import annotations

import json
import textwrap

import pytest
import unit_support

from local import deploy_seed
from opsbot.config.yaml_source import parse_files

K8S_TOKEN = "unit-k8s-token"
ARGOCD_TOKEN = "unit-argocd-token"


@pytest.fixture(scope="module")
def _world_servers():
    from local.fake_argocd import FakeArgoCd
    from local.fake_argocd import make_server as argocd_server
    from local.fake_gitlab import FakeGitLab
    from local.fake_gitlab import make_server as gitlab_server
    from local.fake_kubernetes import FakeKubernetes
    from local.fake_kubernetes import make_server as kube_server
    from local.fake_reconciler import Reconciler
    from local.gitlab_seed import PROJECTS

    gitlab = FakeGitLab(
        unit_support.GITLAB_API_TOKEN, echo=False, project_tokens={"deploy-token": ("platform/deploy",)}
    )
    for path, files in PROJECTS.items():
        gitlab.seed(path, files)
    for path, commits in deploy_seed.app_histories().items():
        gitlab.seed_commits(path, commits)
    gitlab.seed("platform/deploy", deploy_seed.deploy_repo_files())
    kube = FakeKubernetes(token=K8S_TOKEN, seed=deploy_seed.cluster_seed())
    reconciler = Reconciler(gitlab, kube)
    kube.on_reconcile = reconciler.flux
    argocd = FakeArgoCd(ARGOCD_TOKEN, deploy_seed.ARGOCD_APPLICATIONS, reconciler)
    servers = [gitlab_server(gitlab, "127.0.0.1", 0), kube_server(kube, "127.0.0.1", 0)]
    servers.append(argocd_server(argocd, "127.0.0.1", 0))
    for server in servers:
        unit_support_serve(server)
    yield gitlab, kube, argocd, reconciler
    for server in servers:
        server.shutdown()
        server.server_close()


def unit_support_serve(server) -> None:
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()


def config_text(gitlab_url: str, kube_url: str, sink: str) -> dict[str, str]:
    robots = unit_support.example_robots()
    token, (name, secret) = next(iter(robots.items()))
    return {
        "opsbot.yaml": textwrap.dedent(
            f"""\
            settings: {{language: en, ops_robot: {name}}}
            robots:
              {name}: {{webhook: "{sink}/robot/send?access_token={token}", secret: {secret}}}
            people:
              - {{id: alice, name: Alice Wang, git: [alice, alice@example.com], roles: [deployer]}}
              - {{id: carol, name: Carol Zhang, git: [carol], roles: [deployer]}}
            gitlab:
              url: {gitlab_url}
              token: {unit_support.GITLAB_API_TOKEN}
              deploy_repo: platform/deploy
              deploy_token: deploy-token
            ops:
              clusters:
                stage:
                  environment: staging
                  api_server: {kube_url}
                  token: {K8S_TOKEN}
                  namespaces: [shop-staging, flux-system]
                qa:
                  environment: qa
                  api_server: {kube_url}
                  token: {K8S_TOKEN}
                  namespaces: [shop-staging]
            """
        ),
        "projects/shop-api.yaml": textwrap.dedent(
            f"""\
            repo: shop/shop-api
            robot: {name}
            language: en
            environments:
              staging:
                branch: main
                deploy:
                  file: shop-api/overlays/staging/kustomization.yaml
                  image: registry.example.com/shop/shop-api
                  apply: opsbot
                  workload: {{cluster: stage, namespace: shop-staging, deployment: shop-api}}
                  deadline_minutes: 1
              qa:
                branch: main
                deploy:
                  file: shop-api/overlays/staging/kustomization.yaml
                  image: registry.example.com/shop/shop-api
                  apply: opsbot
                  mode: merge_request
                  workload: {{cluster: qa, namespace: shop-staging, deployment: shop-api}}
            """
        ),
        "projects/shop-recommend.yaml": textwrap.dedent(
            f"""\
            repo: shop/shop-recommend
            robot: {name}
            language: zh
            environments:
              staging:
                branch: main
                deploy:
                  file: shop-recommend/staging/values.yaml
                  format: helm
                  key: image.tag
                  image: registry.example.com/shop/shop-recommend
                  apply: argocd
                  application: shop-recommend-staging
            """
        ),
        "projects/shop-search.yaml": textwrap.dedent(
            f"""\
            repo: shop/shop-search
            robot: {name}
            language: en
            environments:
              staging:
                branch: main
                deploy:
                  file: shop-search/staging/deployment.yaml
                  format: manifest
                  container: app
                  image: registry.example.com/shop/shop-search
                  apply: flux
                  flux: {{cluster: stage, kind: Kustomization, namespace: flux-system, name: shop-search}}
                  workload: {{cluster: stage, namespace: shop-staging, deployment: shop-search}}
            """
        ),
    }


@pytest.fixture
def world(aws, fake_dingtalk, env, monkeypatch, _world_servers):
    """The config in the store, the fakes reset, and follow-up jobs caught (`world.jobs`) instead of queued."""
    from local.fake_reconciler import Target
    from opsbot.config import store
    from opsbot.promotion import (
        runner,
        way,  # noqa: F401  (registers the steps and the way)
    )

    gitlab, kube, argocd, reconciler = _world_servers
    for fake in (gitlab, kube, argocd):
        with fake.lock:
            fake.reset()
    kube.add_flux("GitRepository", "flux-system", "deploy", {"url": "platform/deploy", "ref": {"branch": "main"}})
    kube.add_flux(
        "Kustomization", "flux-system", "shop-search", {"sourceRef": {"kind": "GitRepository", "name": "deploy"}}
    )
    reconciler.flux_targets = {
        ("Kustomization", "flux-system", "shop-search"): Target(
            "platform/deploy",
            "main",
            "shop-search/staging/deployment.yaml",
            "manifest",
            "registry.example.com/shop/shop-search",
            "shop-staging",
            "shop-search",
            container="app",
        )
    }
    env("ARGOCD_URL", argocd.url)
    aws.ssm.put_parameter(Name=unit_support.STACK_ENV["ARGOCD_TOKEN_PARAM"], Value=ARGOCD_TOKEN, Type="SecureString")
    documents, problems = parse_files(config_text(gitlab.base_url, kube.url, fake_dingtalk.url))
    assert problems == []
    config = store.save(documents, "release-test")
    jobs: list[dict] = []
    monkeypatch.setattr(runner, "enqueue", lambda job, delay_seconds=0: jobs.append(job.payload))

    class World:
        pass

    found = World()
    found.config, found.gitlab, found.kube, found.argocd, found.jobs = config, gitlab, kube, argocd, jobs
    return found


def build(slug: str, number: int) -> dict:
    from local.fake_drone import default_seed

    return next(b for b in default_seed()[slug] if b["number"] == number)


def begin(world, project: str, env: str, number: int, release_id: str, **kwargs):
    from opsbot.promotion import start

    config = world.config
    alice = config.person("alice")
    return start.begin(
        config,
        config.projects[project],
        env,
        release_id,
        kwargs.pop("action", "deploy"),
        start.requester("alice", alice.name, alice),
        "chat",
        config.projects[project].language,
        build=build(f"shop/{project}", number) if number else None,
        **kwargs,
    )


def follow(world, limit: int = 200):
    """Run the follow-up jobs the release queued, as the worker would, until none is left."""
    from opsbot.promotion import runner

    for _ in range(limit):
        if not world.jobs:
            return
        job = world.jobs.pop(0)
        runner.advance(world.config, job["release"], job["index"], job["poll"])
        import time

        time.sleep(0.05)
    raise AssertionError("the release did not finish")


def deploy_commits(world, path: str = "shop-api/overlays/staging/kustomization.yaml") -> list[dict]:
    return world.gitlab._history(world.gitlab.repos["platform/deploy"], {"ref_name": "main", "path": path})


def kube_patches(world) -> list[dict]:
    return [c for c in world.kube.calls if c["method"] == "PATCH"]


# --- a release from commit to card -----------------------------------------------------------------------------------


def test_a_release_is_one_commit_rolled_out_once_and_reported_once(world, fake_dingtalk):
    from opsbot.promotion import records

    release = begin(world, "shop-api", "staging", 128, "a1b2c3d4")
    commits = deploy_commits(world)
    assert len(commits) == 2  # the seed's, then this release's
    mine = commits[0]
    assert mine["author_name"] == "Alice Wang" and mine["author_email"] == "alice@example.com"
    message = mine["message"]
    for line in (
        "Opsbot-Release: a1b2c3d4",
        "Opsbot-Build: 128",
        "Opsbot-Source-Commit: 9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d",
        "Opsbot-Image: registry.example.com/shop/shop-api:9c8d7e6f",
        "Opsbot-Requested-By: Alice Wang <alice@example.com>",
        "Opsbot-Asked-Via: chat",
    ):
        assert line in message
    text = world.gitlab._resolve(world.gitlab.repos["platform/deploy"], "main").files[
        "shop-api/overlays/staging/kustomization.yaml"
    ]
    assert 'newTag: "9c8d7e6f"' in text and "# released by opsbot: do not edit by hand" in text
    assert (
        text.replace("9c8d7e6f", "3c4d5e6f")
        == deploy_seed.deploy_repo_files()["shop-api/overlays/staging/kustomization.yaml"]
    )
    [patch] = kube_patches(world)
    assert patch["content_type"] == "application/strategic-merge-patch+json"
    assert patch["body"]["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "image": "registry.example.com/shop/shop-api:9c8d7e6f"}
    ]
    assert patch["body"]["spec"]["template"]["metadata"]["annotations"] == {"opsbot.io/release": "a1b2c3d4"}
    assert release.output("apply-opsbot")["status"] == "running" and world.jobs
    follow(world)
    done = records.get("a1b2c3d4")
    assert not done.failed and done.output("apply-opsbot")["rollout"] == "done"
    cards = [m for m in fake_dingtalk.accepted if "a1b2c3d4" in json.dumps(m, ensure_ascii=False)]
    assert len(cards) == 1
    card = json.dumps(cards[0], ensure_ascii=False)
    assert "3c4d5e6f" in card and "9c8d7e6f" in card and "refactor(order): split OrderService" in card
    history, _ = records.history("shop-api", "staging")
    assert history[0]["id"] == "a1b2c3d4" and history[0]["outcome"] == "succeeded"
    assert history[0]["deploy_commit"] == mine["id"] and history[0]["rollout"] == "succeeded"
    assert len(kube_patches(world)) == 1


def test_every_step_run_again_does_nothing_twice(world):
    """A retry of each step (a crash after it acted, before its result was kept) finds what it did."""
    from opsbot.promotion import records
    from opsbot.promotion.registry import STEPS
    from opsbot.promotion.runner import StepRun

    begin(world, "shop-api", "staging", 128, "b1b2c3d4")
    release = records.get("b1b2c3d4")
    for spec in release.plan[:3]:  # set-image, git-commit, apply-opsbot: each again from the start
        kind = STEPS[spec["kind"]]
        kind.run(StepRun(world.config, release, spec["name"]), kind.parse(spec["config"]))
    assert len(deploy_commits(world)) == 2
    assert len(kube_patches(world)) == 1


def test_a_race_loses_no_update_and_the_loser_is_told(world):
    """Two releases read the file, the first commits; the second's precondition (the file's last commit) is stale."""
    from opsbot.promotion import records
    from opsbot.promotion.runner import _run

    first = begin(world, "shop-api", "staging", 128, "c1000001")
    # The second read the file before the first committed: its set-image outputs carry the old last commit.
    from opsbot.promotion import start

    alice = world.config.person("alice")
    second = records.create(
        records.Release(
            id="c1000002",
            project="shop-api",
            environment="staging",
            action="deploy",
            requester=start.requester("carol", "Carol Zhang", world.config.person("carol")),
            asked_via="chat",
            language="en",
            plan=first.plan,
            build=123,
            tag="3c4d5e6f",
            image="registry.example.com/shop/shop-api",
        )
    )
    stale = dict(first.output("set-image"))
    stale["last_commit_id"] = deploy_commits(world)[1]["id"]  # the seed's commit: what both read
    records.save_output("c1000002", "set-image", stale)
    _run(world.config, records.get("c1000002"), second.plan[1], 1, 0)
    lost = records.get("c1000002")
    assert "changed after it was read" in lost.failed and "release c1000001" in lost.failed
    assert len(deploy_commits(world)) == 2  # nothing written over the first release's commit
    assert (
        'newTag: "9c8d7e6f"'
        in world.gitlab._resolve(world.gitlab.repos["platform/deploy"], "main").files[
            "shop-api/overlays/staging/kustomization.yaml"
        ]
    )
    assert alice is not None


def test_the_deploy_token_may_touch_only_the_deploy_repo(world):
    from opsbot.gitlab.api import deploy_client_for
    from opsbot.peers import PeerRefused

    client = deploy_client_for(world.config)
    assert client.file_at("platform/deploy", "README.md", "main")
    with pytest.raises(PeerRefused) as refused:
        client.file_history("shop/shop-api", "README.md", "main")
    assert refused.value.status == 404


def test_a_merge_request_waits_for_the_approvals_then_merges_and_rolls_out(world):
    from opsbot.promotion import records, start

    waiting = begin(world, "shop-api", "qa", 128, "d1000001", approved=False)
    opened = waiting.output("open-merge-request")
    assert opened["merge_request"] and opened["branch"] == "opsbot/release-d1000001"
    [mr] = world.gitlab.repos["platform/deploy"].merge_requests
    assert mr["state"] == "opened" and "approve d1000001" in mr["description"]
    assert not kube_patches(world) and "merge-merge-request" not in waiting.outputs
    again = begin(world, "shop-api", "qa", 128, "d1000001", approved=False)  # asked again: the same release
    assert len(world.gitlab.repos["platform/deploy"].merge_requests) == 1 and again.id == waiting.id
    approved = begin(world, "shop-api", "qa", 128, "d1000001", approvers=("Carol Zhang",))
    assert mr["state"] == "merged" and approved.approvers == ["Carol Zhang"]
    follow(world)
    done = records.get("d1000001")
    assert not done.failed and "Opsbot-Approved-By" not in mr["description"]  # the commit on the branch has them
    assert any("Opsbot-Release: d1000001" in c["message"] for c in deploy_commits(world))
    assert len(kube_patches(world)) == 1
    assert start  # noqa: B018


def test_a_failed_rollout_with_auto_rollback_reverts_as_a_release_by_opsbot(world, env, fake_dingtalk):
    from opsbot.config import store
    from opsbot.config.yaml_source import parse_files
    from opsbot.promotion import records, start

    files = config_text(world.gitlab.base_url, world.kube.url, fake_dingtalk.url)
    files["projects/shop-api.yaml"] = files["projects/shop-api.yaml"].replace(
        "      deadline_minutes: 1\n", "      deadline_minutes: 1\n      auto_rollback: true\n", 1
    )
    documents, _ = parse_files(files)
    world.config = store.save(documents, "auto-rollback")
    with world.kube.lock:
        world.kube.deployments[("shop-staging", "shop-api")]["rollout"] = "crash"
    begin(world, "shop-api", "staging", 128, "e1000001")
    follow(world)
    failed = records.get("e1000001")
    assert "CrashLoopBackOff" in failed.failed
    rollback_id = start.auto_rollback_id("e1000001")
    assert failed.output("auto-rollback")["release"] == rollback_id
    rollback = records.get(rollback_id)
    assert rollback.action == "revert" and rollback.requester["id"] == "opsbot" and rollback.asked_via == "auto"
    newest = deploy_commits(world)[0]
    assert "This reverts commit" in newest["message"] and newest["id"] == rollback.output("git-revert")["commit"]
    text = world.gitlab._resolve(world.gitlab.repos["platform/deploy"], "main").files[
        "shop-api/overlays/staging/kustomization.yaml"
    ]
    assert 'newTag: "3c4d5e6f"' in text
    assert rollback.output("auto-rollback").get("skipped")  # a rollback by opsbot is never rolled back again
    history, _ = records.history("shop-api", "staging")
    assert {(h["id"], h["outcome"]) for h in history} >= {("e1000001", "failed")}
    cards = [json.dumps(m, ensure_ascii=False) for m in fake_dingtalk.accepted]
    assert any("e1000001" in c and rollback_id in c for c in cards)


def test_a_failed_rollout_without_auto_rollback_is_told_and_left_alone(world, fake_dingtalk):
    from opsbot.promotion import records

    with world.kube.lock:
        world.kube.deployments[("shop-staging", "shop-api")]["rollout"] = "crash"
    begin(world, "shop-api", "staging", 128, "f1000001")
    follow(world)
    failed = records.get("f1000001")
    assert "CrashLoopBackOff" in failed.failed and failed.output("auto-rollback").get("skipped")
    assert "This reverts" not in deploy_commits(world)[0]["message"]
    card = next(json.dumps(m, ensure_ascii=False) for m in fake_dingtalk.accepted if "f1000001" in json.dumps(m))
    assert "❌" in card and "CrashLoopBackOff" in card


def _verified_by_alarm(world, fake_dingtalk, alarm: str, auto_rollback: bool = False):
    """shop-api's staging, verified by a CloudWatch alarm (moto's) that must stay OK for a moment."""
    from opsbot.config import store

    verify = f"      verify: {{alarm: {alarm}, minutes: 0.001, interval_seconds: 1}}\n"
    files = config_text(world.gitlab.base_url, world.kube.url, fake_dingtalk.url)
    files["projects/shop-api.yaml"] = files["projects/shop-api.yaml"].replace(
        "      deadline_minutes: 1\n",
        "      deadline_minutes: 1\n" + verify + ("      auto_rollback: true\n" if auto_rollback else ""),
        1,
    )
    documents, problems = parse_files(files)
    assert problems == []
    world.config = store.save(documents, "verified-by-alarm")


def _alarm(name: str, state: str) -> None:
    import boto3

    cloudwatch = boto3.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="5XXError",
        Namespace="AWS/ApiGateway",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"Threshold crossed: {state} <b>now</b>")


def test_an_alarm_that_stays_ok_verifies_the_release(world, fake_dingtalk):
    from opsbot.promotion import records

    _verified_by_alarm(world, fake_dingtalk, "shop-api-5xx-ok")
    _alarm("shop-api-5xx-ok", "OK")
    begin(world, "shop-api", "staging", 128, "a8000001")
    follow(world)
    done = records.get("a8000001")
    assert not done.failed, done.failed
    assert done.output("verify-alarm")["verification"] == "passed" and done.output("verify-alarm")["last"] == "OK"
    card = next(json.dumps(m, ensure_ascii=False) for m in fake_dingtalk.accepted if "a8000001" in json.dumps(m))
    assert "✅" in card and "alarm shop-api-5xx-ok stayed OK" in card


def test_an_alarm_firing_fails_the_release_and_without_auto_rollback_leaves_it(world, fake_dingtalk):
    from opsbot.promotion import records

    _verified_by_alarm(world, fake_dingtalk, "shop-api-5xx-firing")
    _alarm("shop-api-5xx-firing", "ALARM")
    begin(world, "shop-api", "staging", 128, "a8000002")
    follow(world)
    failed = records.get("a8000002")
    assert "alarm shop-api-5xx-firing fired" in failed.failed and failed.output("auto-rollback").get("skipped")
    assert "This reverts" not in deploy_commits(world)[0]["message"]  # told, and left as it is
    assert world.kube.image_of("shop-staging", "shop-api") == "registry.example.com/shop/shop-api:9c8d7e6f"
    card = next(json.dumps(m, ensure_ascii=False) for m in fake_dingtalk.accepted if "a8000002" in json.dumps(m))
    assert "❌" in card and "<b>" not in card  # the alarm's reason is outsiders' text: made plain


def test_an_alarm_firing_with_auto_rollback_reverts_the_release(world, fake_dingtalk):
    from opsbot.promotion import records, start

    _verified_by_alarm(world, fake_dingtalk, "shop-api-5xx-back", auto_rollback=True)
    _alarm("shop-api-5xx-back", "ALARM")
    begin(world, "shop-api", "staging", 128, "a8000003")
    follow(world)
    assert "fired" in records.get("a8000003").failed
    rollback = records.get(start.auto_rollback_id("a8000003"))
    assert rollback.action == "revert" and rollback.requester["id"] == "opsbot"
    assert "This reverts commit" in deploy_commits(world)[0]["message"]
    assert world.kube.image_of("shop-staging", "shop-api") == "registry.example.com/shop/shop-api:3c4d5e6f"


def test_a_revert_undoes_the_release_commit_and_applies_the_old_image(world):
    from opsbot.promotion import records

    begin(world, "shop-api", "staging", 128, "a2000001")
    follow(world)
    release_commit = deploy_commits(world)[0]["id"]
    begin(world, "shop-api", "staging", 0, "a2000002", action="revert", reverts=release_commit)
    follow(world)
    revert = records.get("a2000002")
    assert not revert.failed and revert.output("git-revert")["old"].endswith(":9c8d7e6f")
    assert revert.output("git-revert")["new"].endswith(":3c4d5e6f")
    assert world.kube.image_of("shop-staging", "shop-api") == "registry.example.com/shop/shop-api:3c4d5e6f"
    begin(world, "shop-api", "staging", 0, "a2000002", action="revert", reverts=release_commit)  # again: nothing
    assert sum("This reverts commit" in c["message"] for c in deploy_commits(world)) == 1


def test_argocd_syncs_the_deploy_commit_and_is_followed_until_healthy(world):
    from opsbot.promotion import records

    begin(world, "shop-recommend", "staging", 7, "a3000001")
    follow(world)
    done = records.get("a3000001")
    assert not done.failed, done.failed
    [sync] = [c for c in world.argocd.calls if c["method"] == "POST"]
    assert sync["path"] == "/api/v1/applications/shop-recommend-staging/sync"
    assert sync["body"]["revision"] == done.output("git-commit")["commit"]
    tag = build("shop/shop-recommend", 7)["after"][:8]
    assert world.kube.image_of("shop-staging", "shop-recommend") == f"registry.example.com/shop/shop-recommend:{tag}"
    values = world.gitlab._resolve(world.gitlab.repos["platform/deploy"], "main").files[
        "shop-recommend/staging/values.yaml"
    ]
    assert f"tag: {tag}  # opsbot releases set this" in values


def test_argocd_failing_its_sync_fails_the_release_with_its_message(world):
    from opsbot.promotion import records

    world.argocd.outcomes = ["Failed"]
    begin(world, "shop-recommend", "staging", 7, "a3000002")
    follow(world)
    assert "admission webhook denied" in records.get("a3000002").failed


def test_flux_is_asked_to_reconcile_and_followed_to_the_applied_revision(world):
    from opsbot.promotion import records

    begin(world, "shop-search", "staging", 4, "a4000001")
    follow(world)
    done = records.get("a4000001")
    assert not done.failed, done.failed
    requested = [c for c in world.kube.calls if c["method"] == "PATCH" and "toolkit.fluxcd.io" in c["path"]]
    assert len(requested) == 2  # the GitRepository, then the Kustomization: once each
    assert requested[1]["body"] == {
        "metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "opsbot-release-a4000001"}}
    }
    assert done.output("apply-flux")["revision"].endswith(done.output("git-commit")["commit"])


def test_a_file_the_format_cannot_change_fails_the_release_before_any_commit(world):
    from opsbot.promotion import records

    repo = world.gitlab.repos["platform/deploy"]
    head = repo.branches["main"]
    world.gitlab.push(
        "platform/deploy",
        "main",
        [{"message": "break it", "files": {"shop-api/overlays/staging/kustomization.yaml": "images: {not: a list}\n"}}],
    )
    begin(world, "shop-api", "staging", 128, "a5000001")
    failed = records.get("a5000001")
    assert "cannot be changed as kustomize" in failed.failed and "images: is not a list" in failed.failed
    assert repo.commits[repo.branches["main"]].parent == head  # the push, and nothing after it
    assert not kube_patches(world)


# --- what runs where: status, history, drift -----------------------------------------------------------------


def test_status_shows_desired_and_live_and_a_hand_change_is_drift_told_once(world, fake_dingtalk):
    from opsbot.promotion import drift, status

    begin(world, "shop-api", "staging", 128, "a6000001")
    follow(world)
    project = world.config.projects["shop-api"]
    state = status.environment(world.config, project, "staging")
    assert state.drift == [] and state.desired.endswith(":9c8d7e6f") and state.live.images == [state.desired]
    assert state.newest.release == "a6000001" and state.newest.requester == "Alice Wang"
    assert "0 drift(s) told" in drift.check(world.config)

    text = (
        world.gitlab.repos["platform/deploy"]
        .commits[world.gitlab.repos["platform/deploy"].branches["main"]]
        .files["shop-api/overlays/staging/kustomization.yaml"]
    )
    world.gitlab.push(
        "platform/deploy",
        "main",
        [
            {
                "message": "hotfix",
                "files": {"shop-api/overlays/staging/kustomization.yaml": text.replace("9c8d7e6f", "0badc0de")},
            }
        ],
    )
    state = status.environment(world.config, project, "staging")
    assert any("changed outside opsbot" in en for _zh, en in state.drift) and any(
        "live" in en for _zh, en in state.drift
    )
    before = len(fake_dingtalk.accepted)
    told = drift.check(world.config)
    notices = [m for m in fake_dingtalk.accepted[before:] if "0badc0de" in json.dumps(m, ensure_ascii=False)]
    assert notices and "drift(s) told" in told
    again = len(fake_dingtalk.accepted)
    assert "0 drift(s) told" in drift.check(world.config) and len(fake_dingtalk.accepted) == again


def test_a_rollback_reverts_the_newest_release_not_yet_reverted(world):
    from opsbot.promotion import history
    from opsbot.promotion.status import deploy_repo

    begin(world, "shop-api", "staging", 120, "a7000001")  # the seed pins #123's image: #120 is a change
    follow(world)
    begin(world, "shop-api", "staging", 128, "a7000002")
    follow(world)
    project = world.config.projects["shop-api"]
    target = project.environments["staging"].deploy
    undo = history.rollback_target(deploy_repo(world.config), target, "en")
    assert undo.release == "a7000002" and undo.back_to.release == "a7000001" and undo.back_to.build == 120
    begin(world, "shop-api", "staging", 120, "a7000003", action="revert", reverts=undo.commit)
    follow(world)
    undo = history.rollback_target(deploy_repo(world.config), target, "en")
    assert undo.release == "a7000001" and undo.back_to is None  # the seed's state is no release


def test_release_records_are_queried_per_project_and_environment_by_time_paged(aws):
    from opsbot.promotion import records

    for n, started in enumerate((1_000, 2_000, 3_000, 4_000)):
        release = records.Release(
            id=f"r000000{n}",
            project="shop-api",
            environment="production" if n == 3 else "staging",
            action="deploy",
            requester={"id": "alice", "name": "Alice Wang"},
            asked_via="chat",
            language="en",
            plan=[],
            build=120 + n,
            created=started,
        )
        records.write_record(release, "succeeded" if n else "failed", rollout="succeeded", finished_ms=str(started + 5))
    first, token = records.history("shop-api", "staging", limit=2)
    assert [r["id"] for r in first] == ["r0000002", "r0000001"] and token  # newest first, a page of two
    rest, token = records.history("shop-api", "staging", limit=2, page=token)
    assert [r["id"] for r in rest] == ["r0000000"] and rest[0]["outcome"] == "failed" and not token
    between, _ = records.history("shop-api", "staging", since_ms=1_500, until_ms=2_500)
    assert [r["id"] for r in between] == ["r0000001"] and between[0]["finished_ms"] == 2_005
    assert [r["build"] for r in records.history("shop-api", "production")[0]] == ["123"]
