"""The flows `make chaos` crashes. Each sets itself up in a fresh world, triggers itself (a job on the work queue as
ingress would have queued it, or a GitLab delivery through the real webhook function), and returns how to count
its effects, each of which must come to exactly 1. See chaos/__init__.py for how to add one."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict

from chaos.harness import ROOT, World, flow

API = "shop/shop-api"
FIXTURES = ROOT / "tests" / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def drone_build(world: World, number: int) -> dict:
    return next(b for b in world.drone.builds[API] if b["number"] == number)


def promotes(world: World, number: int, target: str) -> int:
    """Builds Drone started to deploy build `number` to `target`."""
    return sum(
        1
        for b in world.drone.builds[API]
        if b.get("event") == "promote" and b.get("parent") == number and b.get("deploy_to") == target
    )


def callback(world: World, text: str, staff_id: str, nick: str) -> dict:
    """A DingTalk @opsbot message with a session webhook on the fake DingTalk, open for hours of virtual time."""
    now = int(time.time() * 1000)
    return {
        "msgtype": "text",
        "text": {"content": f" {text}"},
        "msgId": f"msg{uuid.uuid4().hex}",
        "createAt": now,
        "conversationType": "2",
        "conversationId": "cid-shop-backend",
        "conversationTitle": "商城后端研发群",
        "senderId": f"$:LWCP_v1:${staff_id}",
        "senderNick": nick,
        "senderStaffId": staff_id,
        "sessionWebhook": f"{world.dingtalk_url}/robot/sendBySession?session=local-session-chaos",
        "sessionWebhookExpiredTime": now + 24 * 3600 * 1000,
    }


def chat(world: World, text: str, staff_id: str, nick: str) -> None:
    """Say `text` to the bot: the DingTalk function acknowledges the act and queues its job (set up, not crashed)."""
    from opsbot.chat.inbound.dingtalk import answer_callback

    reply = answer_callback(callback(world, text, staff_id, nick))
    assert reply.get("markdown", {}).get("title", "").startswith(("Got it: ", "收到：")), reply  # acknowledged


def build_job(world: World, fixture_name: str) -> str:
    """A finished build's job, as the Drone function queues it."""
    from opsbot.drone import events
    from opsbot.ingress.accept import job_id_for
    from opsbot.jobs import kinds

    delivery = fixture(fixture_name)
    repo, build = delivery["repo"], delivery["build"]
    return world.enqueue(
        kinds.DRONE_BUILD_FINISHED,
        {"repo": repo, "build": build, "system": delivery["system"]},
        job_id_for("drone", events.dedupe_key(repo, build)),
    )


@flow("drone notification")
def drone_notification(world: World):
    build_job(world, "drone/build_failure.json")
    return lambda: {"message": world.messages("shop-api #128")}


@flow("digest flush")
def digest_flush(world: World):
    from opsbot.channels import adapters
    from opsbot.delivery import budget

    robot = world.config().robots["shop-backend"]
    windows, now_ms = adapters.for_robot(robot).windows(robot), int(time.time() * 1000)
    for n in range(robot.rate_limit_per_minute):  # this minute's budget is spent: the news waits for a digest
        assert budget.try_take_slot(robot.name, windows, now_ms - 1000 + n)
    build_job(world, "drone/build_failure.json")
    return lambda: {"digest entry": world.messages("](https://drone.example.com/shop/shop-api/128)")}


@flow("chat deploy")
def chat_deploy(world: World):
    chat(world, "deploy shop-api 128 to staging", "alice.wang", "Alice Wang")
    return lambda: {"promote": promotes(world, 128, "staging"), "reply": world.messages("→ staging")}


@flow("release link")
def release_link(world: World):
    from opsbot.authz.actors import DINGTALK_LOGIN
    from opsbot.ingress.accept import job_id_for
    from opsbot.jobs import kinds
    from opsbot.release.links import ReleaseGrant

    build, now = drone_build(world, 128), int(time.time())
    grant = ReleaseGrant(
        project="shop-api",
        build=128,
        target="staging",
        commit=build["after"],
        branch="main",
        title="chaos",
        event=build["event"],
        expires=now + 86400,
        nonce=uuid.uuid4().hex[:16],
    )
    world.enqueue(
        kinds.RELEASE_LINK,
        {
            "grant": asdict(grant),
            "actor": {"via": DINGTALK_LOGIN, "handle": "alice.wang", "name": "Alice Wang"},
            "clicked_at": now,
            "source_ip": "10.0.0.1",
            "user_agent": "chaos",
        },
        job_id_for("action", grant.nonce),
    )
    return lambda: {"promote": promotes(world, 128, "staging"), "message": world.messages("→ staging")}


@flow("approval")
def approval(world: World):
    from opsbot.release import approvals

    build = drone_build(world, 128)
    approvals.create(
        approvals.ApprovalRequest(
            id="c4a05e11",
            action="deploy",
            project="shop-api",
            target="production",
            build=128,
            commit=build["after"],
            branch="main",
            event=build["event"],
            requester="alice",
            requester_name="Alice Wang",
            needed=1,
            deadline=int(time.time()) + 86400,
        )
    )
    chat(world, "approve c4a05e11", "carol.zhang", "Carol Zhang")
    return lambda: {"promote": promotes(world, 128, "production"), "reply": world.messages("→ production")}


@flow("config sync")
def config_sync(world: World):
    from opsbot.config import store

    hook = world.gitlab.push(
        "platform/opsbot-config",
        "main",
        [
            {
                "message": "config: add new-api",
                "files": {"projects/new-api.yaml": "repo: shop/new-api\nrobot: shop-backend\n"},
            }
        ],
    )
    world.gitlab_hook("Push Hook", hook)
    after = hook["after"]
    return lambda: {
        "saved": [v.version for v in store.history(50)].count(after),
        "told": world.messages(f"配置已同步 · {after[:8]}"),
    }


def open_merge_request(world: World) -> dict:
    return {
        **fixture("gitlab/merge_request.json"),
        **world.gitlab.open_merge_request(
            {
                "project": API,
                "source_branch": "feature/refund",
                "author": "alice",
                "title": "Refunds",
                "commits": [{"message": "refunds", "files": {"src/main/java/Refund.java": "class Refund {}\n"}}],
            }
        ),
    }


def notes(world: World, containing: str, iid: int = 1) -> int:
    return sum(1 for n in world.gitlab.notes.get((API, iid), []) if containing in n["body"])


@flow("merge request triage")
def merge_request_triage(world: World):
    world.gitlab_hook("Merge Request Hook", open_merge_request(world))
    return lambda: {"welcome note": notes(world, "Welcome, @alice"), "reviewers told": world.messages("!1 Refunds")}


@flow("merge request merge")
def merge_request_merge(world: World):
    from opsbot.jobs.model import Job
    from opsbot.review import jobs as review_jobs

    # Set up, not crashed: the merge request triaged, approved by carol, its pipeline green.
    review_jobs.on_merge_request(Job(kind="gitlab.merge_request", payload=open_merge_request(world)))
    approve = world.gitlab.merge_request_control(
        "POST", "/_control/note", {}, {"project": API, "iid": 1, "author": "carol", "body": "/approve"}
    )[1]
    review_jobs.on_note(Job(kind="gitlab.note", payload={**fixture("gitlab/note_merge_request.json"), **approve}))
    world.gitlab.pipeline_hook({"project": API, "iid": 1, "status": "success"})
    # The trigger: bob's /lgtm, delivered by GitLab.
    lgtm = world.gitlab.merge_request_control(
        "POST", "/_control/note", {}, {"project": API, "iid": 1, "author": "bob", "body": "/lgtm"}
    )[1]
    world.gitlab_hook("Note Hook", {**fixture("gitlab/note_merge_request.json"), **lgtm})

    def merged() -> int:
        mr = world.gitlab._mr(world.gitlab._repo(API), 1)
        return 1 if mr["state"] == "merged" else 0

    return lambda: {"merge": merged()}


@flow("two chats")
def two_chats(world: World):
    """shop-recommend's news goes to a DingTalk and a Feishu group: each hears it once, whichever send fails."""
    from opsbot.drone import events
    from opsbot.ingress.accept import job_id_for
    from opsbot.jobs import kinds

    delivery = fixture("drone/build_failure.json")
    repo = {**delivery["repo"], "slug": "shop/shop-recommend", "name": "shop-recommend"}
    world.enqueue(
        kinds.DRONE_BUILD_FINISHED,
        {"repo": repo, "build": delivery["build"], "system": delivery["system"]},
        job_id_for("drone", events.dedupe_key(repo, delivery["build"])),
    )
    return lambda: {
        "dingtalk": world.messages("shop-recommend #128"),
        "feishu": world.feishu_messages("shop-recommend #128"),
    }


@flow("ops restart")
def ops_restart(world: World):
    """`restart service shop-api production`, previewed and confirmed by 王小明, approved by dave (the trigger): the
    Deployment restarted once, the start and the rollout's end told once each."""
    import boto3

    from local import ops_seed
    from opsbot.state import keys

    boto3.client("eks", region_name="us-east-1").create_cluster(
        name="shop",
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1"], "securityGroupIds": []},
    )
    ops_seed.point_eks_cluster_at(world.kubernetes_url)
    # Set up, not crashed: the preview and the confirm, run by the worker with no crash planned.
    chat(world, "restart service shop-api production", "manager4321", "王小明")
    world.run()
    requests = world.state_items(keys.OPS_REQUEST)
    said = [sent["message"] for sent in world.dingtalk.accepted]
    assert len(requests) == 1, f"the preview made {len(requests)} requests; DingTalk heard {said}"
    [item] = requests
    request_id = item["pk"]["S"].removeprefix(keys.OPS_REQUEST)
    chat(world, f"confirm {request_id}", "manager4321", "王小明")
    world.run()
    assert world.state_items(keys.OPS_REQUEST)[0]["status"]["S"] == "approval"
    chat(world, f"approve {request_id}", "dave.chen", "Dave Chen")

    def restarts() -> int:
        return world.kubernetes.deployments[("shop", "shop-api")]["revision"] - 1

    return lambda: {
        "restart": restarts(),
        "started told": world.messages("♻️"),
        "rolled out told": world.messages("✅ deployment/shop-api"),
    }


@flow("feishu chat")
def feishu_chat(world: World):
    """alice deploys from Feishu: the callback queued her message (as the Feishu function does); the worker reads it
    from Feishu's API, acknowledges it and queues the act, which promotes once and replies with the result."""
    from opsbot.chat.inbound.feishu import EVENT_SOURCE
    from opsbot.ingress.accept import job_id_for
    from opsbot.jobs import kinds

    with world.feishu.lock:
        said = world.feishu.say({"open_id": "ou_alice0local", "text": "deploy shop-api 128 to staging"})
    message_id = said["message_id"]
    world.enqueue(kinds.FEISHU_MESSAGE, {"message_id": message_id}, job_id_for(EVENT_SOURCE, message_id))
    return lambda: {
        "promote": promotes(world, 128, "staging"),
        "acknowledged": world.feishu_replies("Got it: `deploy` is running"),
        "result": world.feishu_replies("→ staging"),
    }


# --- GitOps releases: a commit in the deploy repo, applied, followed, verified and reported -------------------------

DEPLOY_REPO = "platform/deploy"
API_STAGING = "shop-api/overlays/staging/kustomization.yaml"
API_PRODUCTION = "shop-api/overlays/production/kustomization.yaml"


def gitops(world: World) -> None:
    """The example's GitOps environments as the stored config (a verification of a second, not a minute), and the
    clusters in moto's EKS pointing at the fake Kubernetes API."""
    import boto3

    from local import ops_seed
    from opsbot.config import store
    from opsbot.config.yaml_source import parse_files

    files = dict(world.gitops_files)
    files["projects/shop-api.yaml"] = (
        files["projects/shop-api.yaml"]
        .replace("minutes: 1\n", "minutes: 0.02\n")
        .replace("interval_seconds: 5", "interval_seconds: 1")
    )
    documents, problems = parse_files(files)
    assert problems == [], problems
    store.save(documents, "chaos-gitops", source="chaos")
    eks = boto3.client("eks", region_name="us-east-1")
    for name in ops_seed.EKS_CLUSTERS:
        eks.create_cluster(
            name=name,
            roleArn="arn:aws:iam::123456789012:role/eks",
            resourcesVpcConfig={"subnetIds": ["subnet-1"], "securityGroupIds": []},
        )
    ops_seed.point_eks_cluster_at(world.kubernetes_url)


def deploy_commits(world: World, path: str, marker: str) -> int:
    repo = world.gitlab.repos[DEPLOY_REPO]
    return sum(1 for c in world.gitlab._history(repo, {"ref_name": "main", "path": path}) if marker in c["message"])


def rollouts(world: World, namespace: str) -> int:
    """How many times the Deployment's pod template changed (each patch of its image rolls it out once)."""
    return world.kubernetes.deployments[(namespace, "shop-api")]["revision"] - 1


@flow("gitops release")
def gitops_release(world: World):
    """alice releases shop-api #128 to staging: one commit in the deploy repo, one patch of the Deployment, its
    rollout followed and its health verified in delayed jobs, the acknowledgement and the card told once each."""
    gitops(world)
    chat(world, "deploy shop-api 128 to staging", "alice.wang", "Alice Wang")
    return lambda: {
        "commit": deploy_commits(world, API_STAGING, "Opsbot-Release:"),
        "patch": rollouts(world, "shop-staging"),
        "acknowledged": world.messages("📝 Committed"),
        "card": world.messages("✅ Release shop-api → staging #128"),
    }


@flow("gitops rollback")
def gitops_rollback(world: World):
    """After a release (set up, not crashed), `rollback shop-api staging`: one revert commit through GitLab's revert
    API, one more patch (the old image back), its card once."""
    gitops(world)
    chat(world, "deploy shop-api 128 to staging", "alice.wang", "Alice Wang")
    # The set-up release, followed to its end: a job the worker put on the queue a moment ago may not be visible in
    # moto's queue yet when a busy machine gets here, so look again for a few seconds (nothing is crashed here).
    for _ in range(50):
        world.run()
        if rollouts(world, "shop-staging") == 1 and deploy_commits(world, API_STAGING, "Opsbot-Release:") == 1:
            break
        time.sleep(0.1)
    assert rollouts(world, "shop-staging") == 1 and deploy_commits(world, API_STAGING, "Opsbot-Release:") == 1, (
        rollouts(world, "shop-staging"),
        deploy_commits(world, API_STAGING, "Opsbot-Release:"),
        [str(sent["message"])[:300] for sent in world.dingtalk.accepted],
        world.unfinished,
        world.dead_letters(),
    )
    chat(world, "rollback shop-api staging", "alice.wang", "Alice Wang")
    return lambda: {
        "revert": deploy_commits(world, API_STAGING, "This reverts commit"),
        "patch": rollouts(world, "shop-staging") - 1,
        "card": world.messages("Rollback (revert) shop-api → staging"),
    }


@flow("gitops merge request")
def gitops_merge_request(world: World):
    """Production: alice's release opened its merge request (set up); carol's approval (the trigger) merges it once,
    patches the Deployment once and tells the card once; never a second merge request."""
    from opsbot.state import keys

    gitops(world)
    chat(world, "deploy shop-api 128 to production", "alice.wang", "Alice Wang")
    world.run()
    [item] = world.state_items(keys.APPROVAL)
    request_id = item["id"]["S"]
    chat(world, f"approve {request_id}", "carol.zhang", "Carol Zhang")
    repo = world.gitlab.repos[DEPLOY_REPO]
    return lambda: {
        "merge request": len(repo.merge_requests),
        "merged": sum(1 for mr in repo.merge_requests if mr["state"] == "merged"),
        "patch": rollouts(world, "shop"),
        "card": world.messages("✅ Release shop-api → production #128"),
    }


@flow("slack press")
def slack_press(world: World):
    """carol presses "发布到 staging" on a Slack card: the press is queued (as the Slack function does, once per
    trigger_id); the worker checks the button, tells carol alone, queues the act, which promotes once and shows
    the outcome in place of the card."""
    from urllib.parse import parse_qs

    from chaos.harness import SLACK_APP_ID
    from opsbot.channels import buttons
    from opsbot.channels.slack import ACTION_PREFIX
    from opsbot.chat.inbound.slack import EVENT_SOURCE, press
    from opsbot.ingress.accept import job_id_for
    from opsbot.jobs import kinds

    command = "deploy shop-api 128 to staging"
    element = {
        "type": "button",
        "text": {"type": "plain_text", "text": "发布到 staging"},
        "action_id": f"{ACTION_PREFIX}0",
    }
    card = {"blocks": [{"type": "actions", "elements": [{**element, "value": buttons.value(command)}]}]}
    with world.slack.lock:
        body = world.slack.press(world.slack_url, SLACK_APP_ID, card, 0, ("U0CAROL", "carol"))
    fields = press(json.loads(parse_qs(body.decode())["payload"][0]))
    world.enqueue(kinds.SLACK_PRESS, fields, job_id_for(EVENT_SOURCE, fields["trigger_id"]))
    return lambda: {
        "promote": promotes(world, 128, "staging"),
        "told carol": world.slack_shown("Got it: `deploy` is running", in_place=False),
        "outcome in place": world.slack_shown("pressed by Carol Zhang", in_place=True),
    }
