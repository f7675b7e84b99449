"""Every kind of job, named once: ingress and the worker's producers put these on the queue, and each has exactly
one handler (jobs.registry), which a unit test checks. HANDLED_IN names the module whose import registers it: the
worker imports it with the first job of that kind, so its cold start pays for no capability it does not run."""

from __future__ import annotations

DRONE_BUILD_FINISHED = "drone.build_finished"  # a finished Drone build: maybe a notification (notify/jobs.py)
GITLAB_PUSH = "gitlab.push"  # config sync, .drone.yml on first push (gitops/jobs.py)
GITLAB_TAG_PUSH = "gitlab.tag_push"  # acknowledged; no feature acts on tags yet (jobs/later_features.py)
GITLAB_MERGE_REQUEST = "gitlab.merge_request"  # review triage and Tide (review/jobs.py)
GITLAB_NOTE = "gitlab.note"  # slash commands (review/jobs.py)
GITLAB_PIPELINE = "gitlab.pipeline"  # Tide, when a pipeline goes green (review/jobs.py)
CHAT_COMMAND = "chat.command"  # an acting chat command (chat/jobs.py)
FEISHU_MESSAGE = "chat.feishu_message"  # a Feishu message to read from Feishu's API and answer (chat/jobs.py)
SLACK_PRESS = "chat.slack_press"  # a button pressed on opsbot's Slack message: run its command as the presser
SLACK_MESSAGE = "chat.slack_message"  # a Slack message to opsbot (Events API): answer it in its thread
RELEASE_LINK = "release.link"  # a confirmed release link (actions/jobs.py)
# a robot's folded news, sent when its budget has room (delivery/jobs.py); any channel's, though named for the first
DIGEST_FLUSH = "dingtalk.digest_flush"
OPS_FOLLOW_UP = "ops.follow_up"  # a delayed check of an ops change: rollout, VM batch, DNS change (ops/jobs.py)
RELEASE_STEP = "release.step"  # a GitOps release's next look at a running step, or its next steps (promotion/jobs.py)
RELEASE_DRIFT_CHECK = "release.drift_check"  # the scheduled drift check of GitOps environments (promotion/jobs.py)
GOVERNANCE_TICK = "governance.tick"  # freeze announcements and weekly reports, on a schedule (governance/jobs.py)

ALL = (
    DRONE_BUILD_FINISHED,
    GITLAB_PUSH,
    GITLAB_TAG_PUSH,
    GITLAB_MERGE_REQUEST,
    GITLAB_NOTE,
    GITLAB_PIPELINE,
    CHAT_COMMAND,
    FEISHU_MESSAGE,
    SLACK_PRESS,
    SLACK_MESSAGE,
    RELEASE_LINK,
    DIGEST_FLUSH,
    OPS_FOLLOW_UP,
    RELEASE_STEP,
    RELEASE_DRIFT_CHECK,
    GOVERNANCE_TICK,
)

HANDLED_IN = {
    DRONE_BUILD_FINISHED: "opsbot.notify.jobs",
    GITLAB_PUSH: "opsbot.gitops.jobs",
    GITLAB_TAG_PUSH: "opsbot.jobs.later_features",
    GITLAB_MERGE_REQUEST: "opsbot.review.jobs",
    GITLAB_NOTE: "opsbot.review.jobs",
    GITLAB_PIPELINE: "opsbot.review.jobs",
    CHAT_COMMAND: "opsbot.chat.jobs",
    FEISHU_MESSAGE: "opsbot.chat.jobs",
    SLACK_PRESS: "opsbot.chat.jobs",
    SLACK_MESSAGE: "opsbot.chat.jobs",
    RELEASE_LINK: "opsbot.actions.jobs",
    DIGEST_FLUSH: "opsbot.delivery.jobs",
    OPS_FOLLOW_UP: "opsbot.ops.jobs",
    RELEASE_STEP: "opsbot.promotion.jobs",
    RELEASE_DRIFT_CHECK: "opsbot.promotion.jobs",
    GOVERNANCE_TICK: "opsbot.governance.jobs",
}
