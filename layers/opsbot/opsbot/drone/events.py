"""Drone webhook deliveries: which ones are finished builds, and the shape of the fields the notifier reads.

`finished_build` decides at ingress (a 400 naming the field it refuses) and reads the job again in the worker
(notify/jobs.py), so a build the webhook queues is one the notifier can read.
"""

from __future__ import annotations

from opsbot.ingress import shape

KNOWN_EVENTS = {"build", "repo", "user"}
FINAL_STATUSES = {"success", "failure", "error", "killed"}
# A build's stages and their steps are read for the failed step and the image scan. Real pipelines have a few
# of each; these bounds only keep a forged build from costing the worker a walk through thousands.
MAX_STAGES = 100
MAX_STEPS = 200
# The build's strings the notifier and the release buttons read, beyond its number and status.
_NAMES = ("source", "target", "ref")  # branches and refs: parts of state keys
_TEXTS = ("event", "link", "deploy_to", "sender", "author_login", "author_name", "author_email", "trigger")


def _check_stages(build: dict) -> None:
    for index, stage in enumerate(shape.objects(build, "stages", "build", max_items=MAX_STAGES)):
        where = f"build.stages[{index}]"
        shape.integer(stage, "number", where)
        shape.text(stage, "name", where)
        shape.text(stage, "status", where)
        for step_index, step in enumerate(shape.objects(stage, "steps", where, max_items=MAX_STEPS)):
            step_where = f"{where}.steps[{step_index}]"
            shape.integer(step, "number", step_where)
            for key in ("name", "status", "image"):
                shape.text(step, key, step_where)


def finished_build(delivery: dict) -> tuple[dict, dict] | None:
    """(repo, build) when the delivery reports a finished build, None when the build is not finished yet;
    shape.Malformed (a ValueError) when a field the notifier reads is missing or of another type.

    Drone sends `created` once and `updated` on every step change; a build is finished only when its status
    is final and `finished` is set. There is no `completed` action.
    """
    repo, build = shape.obj(delivery, "repo", required=True), shape.obj(delivery, "build", required=True)
    shape.text(repo, "slug", "repo", required=True, max_chars=shape.NAME_CHARS)
    shape.text(repo, "link", "repo")
    shape.integer(build, "number", "build", required=True, minimum=1)
    status = shape.text(build, "status", "build", required=True)
    for key in ("finished", "started", "parent"):
        shape.integer(build, key, "build")
    for key in _NAMES:
        shape.text(build, key, "build", max_chars=shape.NAME_CHARS)
    for key in ("after", "before"):
        shape.text(build, key, "build", max_chars=shape.SHA_CHARS)
    for key in _TEXTS:
        shape.text(build, key, "build")
    shape.text(build, "message", "build", max_chars=1 << 20)  # free text: the body's limit bounds it
    _check_stages(build)
    shape.text(shape.obj(delivery, "system"), "link", "system")
    if status in FINAL_STATUSES and build.get("finished"):
        return repo, build
    return None


def dedupe_key(repo: dict, build: dict) -> str:
    """Drone never retries, but a proxy may; one build's final status notifies once."""
    return f"{repo['slug']}#{build['number']}#{build['status']}"
