"""Every key prefix of the state table, declared once, so that no two capabilities can write the same keys (a unit
test checks that no prefix is another's). An item's key is a prefix and the parts that make it unique.

The table's own partitions (the first part of every key):"""

from __future__ import annotations

IDEMPOTENCY = "idem#"  # deliveries and claims already seen (state/idempotency.py), namespaced below
EFFECT = "effect#"  # run-once effects and their results (state/effects.py), namespaced below
SIGNATURE = "dingtalk-sign#"  # a DingTalk callback's (timestamp, sign) pair and the msgId it came with
ROBOT = "robot#"  # a robot's send budget and digest (delivery/budget.py)
SEND_RATE = "send-rate#"  # a send limit several robots share: SES's per account and region (delivery/budget.py)
APPROVAL = "approval#"  # an approval request (release/approvals.py)
LINK_GRANT = "action#"  # what a release link grants (release/links.py)
BRANCH = "branch#"  # a branch's latest finished build (state/branch_status.py)
BUILD_PREVIOUS = "buildprev#"  # the status before a given build, remembered for retries (state/branch_status.py)
REVIEW_LGTM = "review-lgtm#"  # a merge request's /lgtm and the head it was given on (review/store.py)
REVIEW_APPROVALS = "review-approvals#"  # a merge request's /approve'rs at one head (review/store.py)
GITLAB_NOTES = "gitlab-notes#"  # notes opsbot posted in one minute, against GitLab's limit (review/store.py)
OPS_REQUEST = "ops-request#"  # an ops command's preview, its plan and how it went (ops/requests.py)
READS = "reads#"  # what a job that ran out of time had read, for its continuation (state/reads.py)
RELEASE = "release#"  # a GitOps release's working state: what was asked, its plan, its steps' outputs (promotion/)
DRIFT = "drift#"  # a drift already told for one environment, by its fingerprint (promotion/drift.py)
BUTTON_PRESS = "button-press#"  # which press of a button took its act (chat/jobs.py)
LOCK = "lock#"  # who holds a project's environment, why and until when (authz/locks.py)
FREEZE_OVERRIDE = "freeze-override#"  # an approved override of a freeze window for one environment (authz/locks.py)

PARTITIONS = (
    IDEMPOTENCY,
    EFFECT,
    SIGNATURE,
    ROBOT,
    SEND_RATE,
    APPROVAL,
    LINK_GRANT,
    BRANCH,
    BUILD_PREVIOUS,
    REVIEW_LGTM,
    REVIEW_APPROVALS,
    GITLAB_NOTES,
    OPS_REQUEST,
    READS,
    RELEASE,
    DRIFT,
    BUTTON_PRESS,
    LOCK,
    FREEZE_OVERRIDE,
)

# Namespaces of idempotency claims (after IDEMPOTENCY); a delivery's own claim is `<source>#<dedupe key>`.
LINK_USED = "action#"  # a release link's nonce, once used
DRONE_REQUEST = "drone-request#"  # a Drone start that may have reached Drone (drone/requests.py)
DELIVERY_SOURCES = ("drone#", "gitlab#", "dingtalk#")  # ingress.accept's sources

CLAIMS = (LINK_USED, DRONE_REQUEST, *DELIVERY_SOURCES)

# Namespaces of run-once effects (after EFFECT); a chat command's or release link's effect is its job id.
NOTIFIED = "notified#"  # a build notification sent or folded (notify/jobs.py)
TOLD = "told#"  # a reply posted once per key (delivery/post.py)
CONFIG_SYNC = "config-sync#"  # a pushed config commit synced (gitops/config_sync.py)
DRONE_INIT_ON_PUSH = "drone-init-on-push#"  # a .drone.yml merge request opened on a first push (gitops/jobs.py)
APPROVED = "approved#"  # an approved request's Drone call (release/deploy.py)
REVIEW_TRIAGE = "review-triage#"  # a merge request's labels and reviewers at one head (review/jobs.py)
REVIEW_CHOSEN = "review-chosen#"  # the reviewers one triage chose, to assign and tell (review/triage.py)
REVIEW_COMMANDS = "review-commands#"  # one comment's commands (review/jobs.py)
REVIEW_COMMAND = "review-command#"  # one command of one comment (review/jobs.py)
REVIEW_NOTE = "review-note#"  # a note opsbot posts (review/session.py)
REVIEW_MERGE = "review-merge#"  # a merge at one head (review/tide.py)
RETEST_BUILD = "retest-build#"  # the build one /retest chose (review/commands.py)
OPS_RUN = "ops-run#"  # an ops request's change, made once however it is confirmed or approved (ops/run.py)
OPS_FOLLOW = "ops-follow#"  # one step of an ops request's follow-up: a check, a progress post (ops/jobs.py)
DIGEST_SENT = "digest-sent#"  # one digest message of a robot, named by its first entry (delivery/robot.py)
RELEASE_STEP = "release-step#"  # one run of one step of a GitOps release: <id>#<index>#<poll> (promotion/runner.py)
RELEASE_START = "release-start#"  # a GitOps release created and started for one request (promotion/start.py)

EFFECTS = (
    NOTIFIED,
    TOLD,
    CONFIG_SYNC,
    DRONE_INIT_ON_PUSH,
    APPROVED,
    REVIEW_TRIAGE,
    REVIEW_CHOSEN,
    REVIEW_COMMANDS,
    REVIEW_COMMAND,
    REVIEW_NOTE,
    REVIEW_MERGE,
    RETEST_BUILD,
    OPS_RUN,
    OPS_FOLLOW,
    DIGEST_SENT,
    RELEASE_STEP,
    RELEASE_START,
)
