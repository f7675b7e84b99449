"""The scheduled drift check (template.yaml's DriftCheckSchedule puts its job on the work queue): every GitOps
environment's desired state against what runs, and the deploy file's newest commit against opsbot's releases. A
drift is told to the project's robots once (delivery folds it with other news in a burst): its fingerprint (what
is desired, what runs, the hand-made commit) is kept per environment in the state table; a drift told once is not
told again until it changes, and an environment back in sync forgets it, so its next drift is news again.

Told first, then remembered: a check stopped in between tells again on the next run, which delivery's run-once
post (keyed by the fingerprint) turns into nothing."""

from __future__ import annotations

import time

from opsbot.aws import client
from opsbot.config.model import Config
from opsbot.delivery.post import post_once
from opsbot.i18n import t
from opsbot.log import logger
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.peers import PeerNotConfigured, PeerRefused, PeerUnavailable
from opsbot.promotion import status
from opsbot.settings import settings
from opsbot.state import keys

KEEP_SECONDS = 90 * 86400


def _key(project: str, environment: str) -> dict:
    return {"pk": {"S": f"{keys.DRIFT}{project}#{environment}"}}


def _told(project: str, environment: str) -> str:
    item = (
        client("dynamodb")
        .get_item(TableName=settings().state_table, Key=_key(project, environment), ConsistentRead=True)
        .get("Item")
    )
    return item["fingerprint"]["S"] if item else ""


def _remember(project: str, environment: str, fingerprint: str) -> None:
    ddb = client("dynamodb")
    if not fingerprint:
        ddb.delete_item(TableName=settings().state_table, Key=_key(project, environment))
        return
    ddb.put_item(
        TableName=settings().state_table,
        Item={
            **_key(project, environment),
            "fingerprint": {"S": fingerprint},
            "expires_at": {"N": str(int(time.time()) + KEEP_SECONDS)},
        },
    )


def notice(state: status.EnvironmentState, language: str) -> Reply:
    live = ", ".join(state.live.images) if state.live and state.live.images else "-"
    lines = [
        t(
            language,
            f"### ⚠️ {state.project} 的 {state.environment} 与部署仓库不一致",
            f"### ⚠️ {state.project} in {state.environment} has drifted from its deploy repo",
        ),
        "",
        f"- {t(language, '期望', 'Desired')}: `{md(state.desired or '-', 200)}` ({md(state.target.file, 120)})",
        f"- {t(language, '实际', 'Live')}: `{md(live, 300)}` ({md(state.live.source if state.live else '-', 100)})",
    ]
    lines += [f"- {md(t(language, *reason), 300)}" for reason in state.drift]
    lines.append(
        t(
            language,
            f"\n`status {state.project}` 查看详情；`releases {state.project} {state.environment}` 查看发布历史。",
            f"\n`status {state.project}` for the details; `releases {state.project} {state.environment}` for the "
            "history.",
        )
    )
    return Reply(
        title=t(language, f"{state.project} {state.environment} 漂移", f"drift: {state.project} {state.environment}"),
        text="\n".join(lines),
        ok=False,
        project=state.project,
        detail=f"drift {state.project}/{state.environment}: " + "; ".join(en for _zh, en in state.drift)[:150],
    )


def check(config: Config, job_id: str = "") -> str:
    told, checked, failed = 0, 0, 0
    repo = None
    for project in config.projects.values():
        for name, env in project.environments.items():
            if env.deploy is None:
                continue
            try:
                repo = repo or status.deploy_repo(config)
                state = status.environment(config, project, name, repo)
            except (PeerRefused, PeerNotConfigured) as exc:
                failed += 1
                logger.warning(
                    "drift check failed", extra={"project": project.name, "environment": name, "reason": str(exc)[:200]}
                )
                continue
            except PeerUnavailable:
                raise  # the whole check is retried through the queue
            checked += 1
            fingerprint = state.fingerprint() if state.drift else ""
            if fingerprint and fingerprint != _told(project.name, name):
                post_once(config, notice(state, project.language), f"drift#{project.name}#{name}#{fingerprint}")
                told += 1
            if fingerprint != _told(project.name, name):
                _remember(project.name, name, fingerprint)
    return f"drift check: {checked} environment(s), {told} drift(s) told, {failed} not read"
