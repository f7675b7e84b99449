"""Every kind of job, named once: ingress and the worker's producers put these on the queue, and each has exactly
one handler (jobs.registry), which a unit test checks."""

from __future__ import annotations

DRONE_BUILD_FINISHED = "drone.build_finished"  # a finished Drone build: maybe a notification (notify/jobs.py)
GITLAB_PUSH = "gitlab.push"  # config sync, .drone.yml on first push (gitops/jobs.py)
GITLAB_TAG_PUSH = "gitlab.tag_push"  # acknowledged; no feature acts on tags yet (jobs/later_features.py)
GITLAB_MERGE_REQUEST = "gitlab.merge_request"  # review triage and Tide (review/jobs.py)
GITLAB_NOTE = "gitlab.note"  # slash commands (review/jobs.py)
GITLAB_PIPELINE = "gitlab.pipeline"  # Tide, when a pipeline goes green (review/jobs.py)
CHAT_COMMAND = "chat.command"  # an acting chat command (chat/jobs.py)
RELEASE_LINK = "release.link"  # a confirmed release link (actions/jobs.py)
# a robot's folded news, sent when its budget has room (delivery/jobs.py); any channel's, though named for the first
DIGEST_FLUSH = "dingtalk.digest_flush"

ALL = (
    DRONE_BUILD_FINISHED,
    GITLAB_PUSH,
    GITLAB_TAG_PUSH,
    GITLAB_MERGE_REQUEST,
    GITLAB_NOTE,
    GITLAB_PIPELINE,
    CHAT_COMMAND,
    RELEASE_LINK,
    DIGEST_FLUSH,
)
