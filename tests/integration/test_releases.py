"""GitOps releases through the local stack (its own, `gitops_stack`: the example's GitOps environments), driven from
chat as people would: a release is one commit in the fake GitLab's deploy repo, applied (opsbot's patch, Argo CD,
Flux, someone else's watcher, a runbook on VMs), verified and reported once to the project's group; production opens
a merge request that a second person's approval merges; `status` shows desired = live and drift; `rollback` is a
revert. Every acting path has its refusal next to it. The Drone way's result (the fake Drone finishing a promote and
sending its webhook) is on the Drone stack (`stack`)."""

from __future__ import annotations

import json
import re
import time

import pytest
from conftest import FLUX_PROJECT

WAIT = 45
ANSWERS: dict[str, str] = {}
DEPLOY_REPO = "platform/deploy"
API_STAGING = "shop-api/overlays/staging/kustomization.yaml"


def say(stack, text: str, who: str | None = "alice") -> str:
    response, body = stack.chat(text, as_person=who)
    assert response.status_code == 200, response.text
    ANSWERS[body["sessionWebhook"]] = (response.json().get("markdown") or {}).get("text", "")
    return body["sessionWebhook"]


def texts(stack, session: str) -> list[str]:
    posted = [m["markdown"]["text"] for m in stack.session_messages(session) if m.get("msgtype") == "markdown"]
    return [ANSWERS.get(session, ""), *posted]


def wait_text(stack, session: str, pattern: str, timeout: float = WAIT) -> str:
    found = stack.wait_for(lambda: next((t for t in texts(stack, session) if re.search(pattern, t)), None), timeout)
    assert found, f"no message matching {pattern!r} in {texts(stack, session)}"
    return found


def cards(stack, robot: str, pattern: str) -> list[str]:
    found = [json.dumps(m["message"], ensure_ascii=False) for m in stack.messages(f"local-{robot}")]
    return [c for c in found if re.search(pattern, c)]


def wait_card(stack, robot: str, pattern: str, timeout: float = WAIT) -> str:
    found = stack.wait_for(lambda: cards(stack, robot, pattern), timeout, interval=0.5)
    assert found, (
        f"no card matching {pattern!r} for {robot}: {[m['message'] for m in stack.messages(f'local-{robot}')]}"
    )
    return found[0]


def commits(stack, path: str) -> list[dict]:
    return stack.http.get(
        stack.gitlab + "/_control/commits", params={"project": DEPLOY_REPO, "ref": "main", "path": path}, timeout=5
    ).json()["commits"]


def live(stack, deployment: str, namespace: str = "shop-staging") -> str:
    found = stack.http.get(stack.kube + "/_control/deployments", timeout=5).json()["deployments"]
    return found[f"{namespace}/{deployment}"]["image"]


API_TAGS = {128: "9c8d7e6f", 123: "3c4d5e6f", 120: "a1b2c3d4"}  # shop-api's main builds and their image tags


def current_tag(stack, path: str = API_STAGING) -> str:
    return re.search(r'newTag: "([0-9a-f]+)"', stack.gitlab_file(DEPLOY_REPO, path)).group(1)


def another_build(stack, path: str = API_STAGING) -> int:
    """A shop-api build whose image the environment does not pin now (tests run in any order)."""
    now = current_tag(stack, path)
    return next(n for n in (128, 123) if API_TAGS[n] != now)


def another_recommend_build(stack) -> int:
    values = stack.gitlab_file(DEPLOY_REPO, "shop-recommend/staging/values.yaml")
    now = re.search(r"tag: '?([0-9a-f]+)", values).group(1)
    return next(n for n in (7, 6) if drone_tag(stack, "shop/shop-recommend", n) != now)


def release_id(text: str) -> str:
    return re.search(r"release `([0-9a-f]{8})`", text).group(1)


def drone_tag(stack, slug: str, number: int) -> str:
    build = stack.http.get(
        f"{stack.drone}/api/repos/{slug}/builds/{number}",
        headers={"Authorization": "Bearer local-drone-token"},
        timeout=5,
    ).json()
    return build["after"][:8]


def requests_builds(stack) -> list[dict]:
    return stack.http.get(
        f"{stack.drone}/api/repos/shop/shop-api/builds",
        headers={"Authorization": "Bearer local-drone-token"},
        params={"per_page": 10},
        timeout=5,
    ).json()


def drift_check(stack) -> None:
    """What the template's schedule does: the drift check's job on the work queue."""
    from conftest import ROOT

    from local import template as local_template
    from local.stack import drift_check_job

    stack.sqs.send_message(
        QueueUrl=stack.work_url, MessageBody=drift_check_job(local_template.load(ROOT / "template.yaml"))
    )


@pytest.fixture
def gitops(gitops_stack):
    """The GitOps stack, its health URLs healthy and no scripted failure left by another test."""
    stack = gitops_stack
    stack.http.post(stack.sink + "/_control/health/reset", timeout=5)
    stack.http.post(stack.argocd + "/_control/sync_outcome", json={"phases": []}, timeout=5)
    stack.http.post(
        stack.kube + "/_control/deployment",
        json={"namespace": "shop-staging", "name": "shop-api", "rollout": "complete"},
        timeout=5,
    )
    return stack


def release_and_wait(stack, text: str, robot: str, who: str = "alice") -> tuple[str, str]:
    """Say `text`, wait for the commit's acknowledgement and the release's card; (acknowledgement, card)."""
    session = say(stack, text, who)
    ack = wait_text(stack, session, r"Committed|已提交|Opened merge request|开启合并请求")
    card = wait_card(stack, robot, re.escape(release_id_of(stack, session)))
    return ack, card


def release_id_of(stack, session: str) -> str:
    found = stack.wait_for(
        lambda: next(
            (
                m["markdown"]["title"]
                for m in stack.session_messages(session)
                if "release " in m["markdown"].get("title", "") or "发布 " in m["markdown"].get("title", "")
            ),
            None,
        )
    )
    return re.search(r"([0-9a-f]{8})", found).group(1)


# --- kustomize + apply: opsbot, staging --------------------------------------------------------------------------


def test_a_staging_release_is_a_commit_rolled_out_verified_and_reported_once(gitops):
    stack = gitops
    if current_tag(stack) != "3c4d5e6f":  # from #123, so that the card lists the commits up to #128
        release_and_wait(stack, "deploy shop-api 123 staging", "g-api")
    before = len(commits(stack, API_STAGING))
    ack, card = release_and_wait(stack, "deploy shop-api 128 staging", "g-api")
    link = re.search(r"Committed \[([0-9a-f]{8})\]\((http[^)]+/platform/deploy/-/commit/[0-9a-f]{40})\)", ack)
    assert link, ack
    found = commits(stack, API_STAGING)
    assert len(found) == before + 1 and found[0]["id"].startswith(link.group(1))
    assert found[0]["author_name"] == "Alice Wang" and found[0]["author_email"] == "alice@example.com"
    assert "Opsbot-Build: 128" in found[0]["message"] and "Opsbot-Asked-Via: chat" in found[0]["message"]
    assert 'newTag: "9c8d7e6f"' in stack.gitlab_file(DEPLOY_REPO, API_STAGING)
    assert live(stack, "shop-api") == "registry.example.com/shop/shop-api:9c8d7e6f"
    assert "✅" in card and "3c4d5e6f" in card and "9c8d7e6f" in card
    assert "rolled out" in card and "answered 2xx" in card and "refactor(order): split OrderService" in card
    time.sleep(2)
    assert len(cards(stack, "g-api", release_id(card))) == 1  # one card, however the follow-ups went

    session = say(stack, "status shop-api")
    status = wait_text(stack, session, r"Desired \(the deploy repo\)")
    staging = status.split("**staging**")[1].split("**production**")[0]
    assert "desired = live" in staging and "9c8d7e6f" in staging and "#128" in staging and "Alice Wang" in staging


def test_a_developer_may_not_release_and_nothing_is_committed_or_patched(gitops):
    stack = gitops
    before = len(commits(stack, API_STAGING))
    response, _ = stack.chat("deploy shop-api 128 staging", as_person="bob")
    assert "needs the role deployer" in response.json()["markdown"]["text"]
    session = say(stack, "deploy shop-api 124 staging")  # a build of feature/refund: staging takes main's
    assert "takes builds of main" in wait_text(stack, session, "⛔")
    assert len(commits(stack, API_STAGING)) == before


def test_production_opens_a_merge_request_that_a_second_persons_approval_merges(gitops):
    stack = gitops
    production = "shop-api/overlays/production/kustomization.yaml"
    old, number = current_tag(stack, production), another_build(stack, production)
    session = say(stack, f"deploy shop-api {number} production")
    asked = wait_text(stack, session, "Approval request")
    request = re.search(r"approve ([0-9a-f]{8})", asked).group(1)
    assert re.search(r"Opened merge request \[!\d+\]\(http[^)]+/platform/deploy/-/merge_requests/\d+\)", asked)
    [mr] = [m for m in stack.gitlab_merge_requests(DEPLOY_REPO) if m["source_branch"] == f"opsbot/release-{request}"]
    assert mr["state"] == "opened" and live(stack, "shop-api", "shop") == f"registry.example.com/shop/shop-api:{old}"
    session = say(stack, f"approve {request}", "alice")
    assert "someone else" in wait_text(stack, session, "⛔")
    response, _ = stack.chat(f"approve {request}", as_person="bob")
    assert "needs the role" in response.json()["markdown"]["text"]
    assert [m["state"] for m in stack.gitlab_merge_requests(DEPLOY_REPO) if m["iid"] == mr["iid"]] == ["opened"]
    say(stack, f"approve {request}", "carol")
    card = wait_card(stack, "g-api", request)
    assert "production" in card and "approved by Carol Zhang" in card and "!" in card
    assert [m["state"] for m in stack.gitlab_merge_requests(DEPLOY_REPO) if m["iid"] == mr["iid"]] == ["merged"]
    assert live(stack, "shop-api", "shop") == f"registry.example.com/shop/shop-api:{API_TAGS[number]}"
    assert any(f"Opsbot-Release: {request}" in c["message"] for c in commits(stack, production))
    [merged] = [m for m in stack.gitlab_merge_requests(DEPLOY_REPO) if m["iid"] == mr["iid"]]
    assert merged["description"].endswith("Approved in opsbot by: Carol Zhang")  # the merge request is the record
    session = say(stack, "releases shop-api production")
    history = wait_text(stack, session, r"shop-api: releases")
    assert f"release `{request}`" in history and "approved by Carol Zhang" in history


def test_a_rollback_reverts_the_newest_release_commit_and_applies_it(gitops):
    stack = gitops
    old = current_tag(stack)
    number = another_build(stack)
    release_and_wait(stack, f"deploy shop-api {number} staging", "g-api")
    newest = commits(stack, API_STAGING)[0]
    assert "Opsbot-Release" in newest["message"]
    session = say(stack, "rollback shop-api staging")
    wait_text(stack, session, "Committed")
    reverted = commits(stack, API_STAGING)[0]
    assert f"This reverts commit {newest['id']}" in reverted["message"]
    card = wait_card(
        stack, "g-api", rf"Rollback \(revert\).*{API_TAGS[number]}` → `registry.example.com/shop/shop-api:{old}"
    )
    assert stack.wait_for(lambda: live(stack, "shop-api") == f"registry.example.com/shop/shop-api:{old}")
    assert card
    response, _ = stack.chat("rollback shop-api staging", as_person="bob")  # a developer may not
    assert "needs the role deployer" in response.json()["markdown"]["text"]


def test_a_rollback_to_a_release_writes_its_image_again_and_refuses_what_the_rules_refuse(gitops):
    stack = gitops
    first = another_build(stack)
    _, card = release_and_wait(stack, f"deploy shop-api {first} staging", "g-api")
    earlier = release_id(card)
    release_and_wait(stack, f"deploy shop-api {another_build(stack)} staging", "g-api")
    before = len(commits(stack, API_STAGING))
    response, _ = stack.chat(f"rollback shop-api staging to {earlier}", as_person="bob")  # a developer may not
    assert "needs the role deployer" in response.json()["markdown"]["text"]
    session = say(stack, "rollback shop-api staging to 124")  # a feature/refund build: staging takes main's
    assert "takes builds of main" in wait_text(stack, session, "⛔")
    session = say(stack, "rollback shop-api staging to 0000beef")  # no such release in the deploy history
    assert "no release `0000beef`" in wait_text(stack, session, "⛔")
    assert len(commits(stack, API_STAGING)) == before  # nothing refused was written

    session = say(stack, f"rollback shop-api staging to {earlier}")
    wait_text(stack, session, "Committed")
    newest = commits(stack, API_STAGING)[0]
    assert len(commits(stack, API_STAGING)) == before + 1 and f"Opsbot-Build: {first}" in newest["message"]
    assert current_tag(stack) == API_TAGS[first]
    assert stack.wait_for(lambda: live(stack, "shop-api") == f"registry.example.com/shop/shop-api:{API_TAGS[first]}")


def test_a_production_rollback_waits_for_a_second_persons_approval_and_writes_nothing_before(gitops):
    stack = gitops
    production = "shop-api/overlays/production/kustomization.yaml"
    before = len(commits(stack, production))
    merged = {m["iid"] for m in stack.gitlab_merge_requests(DEPLOY_REPO) if m["state"] == "merged"}
    session = say(stack, "rollback shop-api production to 123")
    asked = wait_text(stack, session, "Approval request")
    request = re.search(r"approve ([0-9a-f]{8})", asked).group(1)
    session = say(stack, f"approve {request}", "alice")  # the requester never approves their own request
    assert "someone else" in wait_text(stack, session, "⛔")
    time.sleep(2)
    assert len(commits(stack, production)) == before
    found = stack.gitlab_merge_requests(DEPLOY_REPO)
    mine = [m["state"] for m in found if m["source_branch"] == f"opsbot/release-{request}"]
    assert mine == ["opened"]  # its record, not merged
    assert {m["iid"] for m in found if m["state"] == "merged"} == merged  # nothing else merged either


def test_a_race_loses_no_update_and_the_loser_is_told(gitops):
    stack = gitops
    text = stack.gitlab_file(DEPLOY_REPO, API_STAGING)
    theirs = re.sub(r'newTag: "[0-9a-f]+"', 'newTag: "a1b2c3d4"', text)
    stack.http.post(
        stack.gitlab + "/_control/race",
        json={
            "project": DEPLOY_REPO,
            "path": API_STAGING,
            "content": theirs,
            "message": "release(shop-api/staging): #120\n\nOpsbot-Release: 0ther0001\n",
        },
        timeout=5,
    ).raise_for_status()
    session = say(stack, f"deploy shop-api {another_build(stack)} staging")
    told = wait_text(stack, session, "changed after it was read")
    assert "Carol Zhang, release 0ther0001" in told
    assert stack.gitlab_file(DEPLOY_REPO, API_STAGING) == theirs  # the other's commit stands, nothing over it


def test_a_hand_change_is_drift_told_once(gitops):
    stack = gitops
    release_and_wait(stack, f"deploy shop-api {another_build(stack)} staging", "g-api")
    released = current_tag(stack)
    text = stack.gitlab_file(DEPLOY_REPO, API_STAGING)
    stack.push(
        {API_STAGING: re.sub(r'newTag: "[0-9a-f]+"', 'newTag: "0badc0de"', text)},
        project=DEPLOY_REPO,
        message="hotfix by hand",
    )
    drift_check(stack)
    notice = wait_card(stack, "g-api", "与部署仓库不一致")  # shop-api speaks Chinese
    assert "绕过 opsbot 手工修改" in notice and "0badc0de" in notice and released in notice  # in Chinese
    drift_check(stack)
    time.sleep(4)
    assert len(cards(stack, "g-api", "与部署仓库不一致.*0badc0de")) == 1
    session = say(stack, "status shop-api")
    assert "⚠️ drift" in wait_text(stack, session, r"Desired \(the deploy repo\)").split("**production**")[0]
    release_and_wait(stack, f"deploy shop-api {another_build(stack)} staging", "g-api")  # back in sync


# --- the other ways of applying -----------------------------------------------------------------------------------


def test_argocd_syncs_the_helm_values_commit(gitops):
    stack = gitops
    number = another_recommend_build(stack)
    _, card = release_and_wait(stack, f"deploy shop-recommend {number} staging", "g-recommend")
    tag = drone_tag(stack, "shop/shop-recommend", number)
    assert "synced and healthy" in card and tag in card
    assert f"tag: {tag}" in stack.gitlab_file(DEPLOY_REPO, "shop-recommend/staging/values.yaml")
    syncs = [
        c for c in stack.http.get(stack.argocd + "/_control/calls", timeout=5).json()["calls"] if c["method"] == "POST"
    ]
    assert syncs[-1]["path"] == "/api/v1/applications/shop-recommend-staging/sync"
    assert live(stack, "shop-recommend") == f"registry.example.com/shop/shop-recommend:{tag}"
    session = say(stack, "status shop-recommend")
    assert "desired = live" in wait_text(stack, session, r"Desired \(the deploy repo\)")


def test_argocd_failing_the_sync_without_auto_rollback_is_told_and_left(gitops):
    stack = gitops
    stack.http.post(stack.argocd + "/_control/sync_outcome", json={"phases": ["Failed"]}, timeout=5)
    _, card = release_and_wait(stack, f"deploy shop-recommend {another_recommend_build(stack)} staging", "g-recommend")
    assert "❌" in card and "admission webhook denied" in card and "Rolled back" not in card
    assert "This reverts" not in commits(stack, "shop-recommend/staging/values.yaml")[0]["message"]


def test_a_watched_manifest_is_applied_by_someone_else_and_waited_for(gitops):
    stack = gitops
    _, card = release_and_wait(stack, "deploy shop-search 4 staging", "g-search")
    tag = drone_tag(stack, "shop/shop-search", 4)
    assert "✅" in card and "rolled out" in card
    assert f"image: registry.example.com/shop/shop-search:{tag}" in stack.gitlab_file(
        DEPLOY_REPO, "shop-search/staging/deployment.yaml"
    )
    patches = [
        c
        for c in stack.http.get(stack.kube + "/_control/calls", timeout=5).json()["calls"]
        if c["method"] == "PATCH" and "shop-search" in c["path"]
    ]
    assert patches == []  # opsbot only watched
    session = say(stack, "status shop-search")
    assert "desired = live" in wait_text(stack, session, r"Desired \(the deploy repo\)")


def test_a_runbook_installs_the_version_on_the_vms(gitops):
    stack = gitops
    _, card = release_and_wait(stack, "deploy shop-web 43 staging", "g-web")
    tag = drone_tag(stack, "shop/shop-web", 43)
    commands = stack.http.get(stack.ssm + "/_control/commands", timeout=5).json()["commands"]
    [sent] = [c for c in commands if c["Comment"].startswith(f"opsbot {release_id(card)} ")]
    assert sent["Parameters"]["commands"][0] == f"/opt/shop-web/deploy.sh {tag}"
    assert {"Key": "tag:app", "Values": ["shop-web-staging"]} in sent["Targets"]
    assert "✅" in card and "deploy-shop-web @ shop-web-staging-vms finished" in card
    assert f'version: "{tag}"' in stack.gitlab_file(DEPLOY_REPO, "shop-web/staging/versions.yaml")
    session = say(stack, "status shop-web")  # live: the image of the runbook's last run
    status = wait_text(stack, session, r"Desired \(the deploy repo\)")
    assert "desired = live" in status and release_id(card) in status


def test_flux_reconciles_the_commit_on_request(gitops):
    stack = gitops
    file = f"{FLUX_PROJECT}/staging/kustomization.yaml"
    stack.push(
        {file: f'images:\n  - name: registry.example.com/shop/{FLUX_PROJECT}\n    newTag: "00000001"\n'},
        project=DEPLOY_REPO,
        message="add shop-cart's staging",
    )
    stack.drone_add_builds(f"shop/{FLUX_PROJECT}", [{"number": 3, "target": "main", "message": "feat: carts"}])
    stack.http.post(
        stack.kube + "/_control/deployment", json={"namespace": "shop-staging", "name": FLUX_PROJECT}, timeout=5
    ).raise_for_status()
    _, card = release_and_wait(stack, f"deploy {FLUX_PROJECT} 3 staging", "g-cart")
    assert "✅" in card and "Kustomization flux-system/shop-cart applied main＠sha1:" in card
    calls = stack.http.get(stack.kube + "/_control/calls", timeout=5).json()["calls"]
    requested = [c for c in calls if c["method"] == "PATCH" and "kustomizations/shop-cart" in c["path"]]
    assert len(requested) == 1


@pytest.mark.parametrize(
    ("project", "builds", "robot", "file"),
    [
        ("shop-recommend", (6, 7), "g-recommend", "shop-recommend/staging/values.yaml"),  # Helm values, Argo CD
        ("shop-search", (3, 4), "g-search", "shop-search/staging/deployment.yaml"),  # a manifest, watched
        ("shop-web", (41, 43), "g-web", "shop-web/staging/versions.yaml"),  # a versions file, a runbook on VMs
    ],
)
def test_a_rollback_of_each_other_format_reverts_its_file_and_applies_it(gitops, project, builds, robot, file):
    stack = gitops
    before = stack.gitlab_file(DEPLOY_REPO, file)
    number = next(n for n in builds if drone_tag(stack, f"shop/{project}", n) not in before)
    _, card = release_and_wait(stack, f"deploy {project} {number} staging", robot)
    assert "✅" in card and stack.gitlab_file(DEPLOY_REPO, file) != before
    session = say(stack, f"rollback {project} staging")
    wait_text(stack, session, "Committed")
    back = wait_card(stack, robot, rf"Rollback \(revert\) {project}.*release `{release_id_of(stack, session)}`")
    assert "✅" in back and drone_tag(stack, f"shop/{project}", number) in back
    assert "This reverts commit" in commits(stack, file)[0]["message"]
    assert stack.gitlab_file(DEPLOY_REPO, file) == before  # byte for byte, comments and order kept


@pytest.mark.parametrize(
    ("project", "builds", "robot", "file"),
    [
        ("shop-recommend", (6, 7), "g-recommend", "shop-recommend/staging/values.yaml"),
        ("shop-search", (3, 4), "g-search", "shop-search/staging/deployment.yaml"),
    ],  # a versions file's (shop-web, runbook) is left out: in one parallel run its notice never came (README)
)
def test_a_hand_change_to_each_other_format_is_drift_told(gitops, project, builds, robot, file):
    from local.deploy_edit import MADE_UP

    stack = gitops
    text = stack.gitlab_file(DEPLOY_REPO, file)
    changed = re.sub(r'(newTag: "?|tag: "?|version: "?|image: \S+:)[\w.+-]+', rf"\g<1>{MADE_UP}", text, count=1)
    assert changed != text
    stack.push({file: changed}, project=DEPLOY_REPO, message=f"hotfix {project} by hand")
    drift_check(stack)
    notice = wait_card(stack, robot, MADE_UP)
    assert project in notice and "staging" in notice
    session = say(stack, f"status {project}")
    assert "⚠️ drift" in wait_text(stack, session, r"Desired \(the deploy repo\)")
    number = next(n for n in builds if drone_tag(stack, f"shop/{project}", n) not in text)
    release_and_wait(stack, f"deploy {project} {number} staging", robot)  # back in sync, for the tests after


# --- failures -----------------------------------------------------------------------------------------------------


def test_a_failed_verification_with_auto_rollback_reverts_as_a_release_by_opsbot(gitops):
    stack = gitops
    stack.http.post(stack.sink + "/_control/health", json={"name": "shop-api-staging", "status": 503}, timeout=5)
    _, card = release_and_wait(stack, f"deploy shop-api {another_build(stack)} staging", "g-api")
    assert "❌" in card and "answered HTTP 503" in card and "Rolled back automatically" in card
    rollback = re.search(r"release `([0-9a-f]{8})` \(by opsbot\)", card).group(1)
    stack.http.post(stack.sink + "/_control/health/reset", timeout=5)
    back = wait_card(stack, "g-api", rf"Rollback \(revert\).*release `{rollback}`")
    assert "Rollback (revert)" in back and "Asked by opsbot" in back
    assert "This reverts commit" in commits(stack, API_STAGING)[0]["message"]
    [record] = [r for r in stack.audit_records("shop-api")[:20] if r["id"] == rollback]
    assert record["who"] == "opsbot" and record["command"] == "rollback" and "auto_rollback" in record["reason"]


def test_a_failed_rollout_with_auto_rollback_puts_the_old_image_back(gitops):
    stack = gitops
    stack.http.post(
        stack.kube + "/_control/deployment",
        json={"namespace": "shop-staging", "name": "shop-api", "rollout": "crash"},
        timeout=5,
    )
    old = current_tag(stack)
    _, card = release_and_wait(stack, f"deploy shop-api {another_build(stack)} staging", "g-api")
    assert "❌" in card and "CrashLoopBackOff" in card and "Rolled back automatically" in card
    stack.http.post(
        stack.kube + "/_control/deployment",
        json={"namespace": "shop-staging", "name": "shop-api", "rollout": "complete"},
        timeout=5,
    )
    assert stack.wait_for(lambda: current_tag(stack) == old)  # the revert put the old image back in Git


# --- the Drone way, beside -----------------------------------------------------------------------------------------


def test_a_drone_promote_finishes_and_the_group_hears_its_result(stack):
    response, body = stack.chat("deploy shop-api 123 to staging", session=False)
    assert response.status_code == 200
    promote = stack.wait_for(lambda: stack.drone_calls("POST", "/builds/123/promote"))
    started = stack.wait_for(
        lambda: [b for b in requests_builds(stack) if b["event"] == "promote" and b["parent"] == 123]
    )
    assert promote and started
    stack.http.post(
        stack.drone + "/_control/finish", json={"slug": "shop/shop-api", "number": started[0]["number"]}, timeout=10
    ).raise_for_status()
    found = stack.wait_for(
        lambda: [
            m
            for m in stack.messages("local-shop-backend")
            if "Deployed to staging" in json.dumps(m["message"], ensure_ascii=False)
            or "发布到 staging" in json.dumps(m["message"], ensure_ascii=False)
        ],
        timeout=30,
    )
    assert found, [m["message"] for m in stack.messages("local-shop-backend")][-3:]


# --- a release link for a GitOps environment ------------------------------------------------------------------------


def test_a_release_link_releases_through_git_in_the_clickers_name_and_a_stranger_releases_nothing(gitops):
    from test_release_links import _form, _link, _page, _sign_in

    stack = gitops
    number, commit = stack.next_number(), f"ab12cd{stack.next_number() % 100:02d}" + "0" * 32
    stack.drone_add_builds(
        "shop/shop-api",
        [{"number": number, "after": commit, "status": "success", "target": "main", "message": "feat: by link"}],
    )
    response = stack.post_drone(stack.drone_body("build_success", number, after=commit))
    assert response.status_code == 202, response.text
    card = stack.wait_for(
        lambda: [
            m["message"]["actionCard"]
            for m in stack.messages("local-g-api")
            if m["message"]["msgtype"] == "actionCard" and f"#{number}" in json.dumps(m["message"], ensure_ascii=False)
        ]
    )
    assert card, stack.messages("local-g-api")[-2:]
    staging = _link(card[0], "staging")
    before = len(commits(stack, API_STAGING))

    stranger = _sign_in(stack, staging, "lurenjia")  # someone DingTalk knows and opsbot's config does not
    assert stranger.status_code == 403 and len(commits(stack, API_STAGING)) == before

    signed_in = _sign_in(stack, staging, "alice.wang")
    action, fields = _form(_page(signed_in, 200), signed_in.url)
    assert "Alice Wang" in _page(stack.http.post(action, data=fields, timeout=10), 202)
    released = wait_card(stack, "g-api", rf"shop-api → staging #{number}")
    assert "发起人 Alice Wang" in released and commit[:8] in released  # shop-api speaks Chinese
    mine = commits(stack, API_STAGING)[0]
    assert "Opsbot-Asked-Via: link" in mine["message"] and mine["author_name"] == "Alice Wang"


def test_a_lock_holds_a_gitops_release_and_nothing_is_committed(gitops):
    """Release governance holds the GitOps way as the Drone way: the core's hold rule, no code of its own."""
    stack = gitops
    before = len(commits(stack, API_STAGING))
    session = say(stack, "lock shop-api staging for 30m checking the rollout", who="carol")
    wait_text(stack, session, "locked by Carol Zhang")
    try:
        response, _ = stack.chat("deploy shop-api 128 staging", as_person="alice")
        text = response.json()["markdown"]["text"]
        assert text.startswith("⛔ shop-api/staging is locked by Carol Zhang") and "checking the rollout" in text
        time.sleep(1.0)
        assert len(commits(stack, API_STAGING)) == before
    finally:
        wait_text(stack, say(stack, "unlock shop-api staging", who="carol"), "unlocked")
