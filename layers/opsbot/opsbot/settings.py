"""The stack's own settings, named once.

Every value comes from an environment variable. On AWS the variables are set by template.yaml (secrets are
given as SSM parameter *names*, never values); the local stack sets the same variables from the template.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Settings:
    stage: str
    config_table: str
    state_table: str
    audit_table: str
    releases_table: str
    work_queue_url: str
    dead_letter_queue_url: str
    drone_webhook_secret_param: str
    gitlab_webhook_token_param: str
    dingtalk_app_secret_param: str
    action_signing_key_param: str
    public_base_url: str
    dingtalk_session_webhook_prefix: str
    dingtalk_app_key: str
    dingtalk_login_url: str
    dingtalk_api_url: str
    dingtalk_oapi_url: str
    feishu_app_id: str
    feishu_app_secret_param: str
    feishu_verification_token_param: str
    feishu_api_url: str
    feishu_login_url: str
    slack_app_id: str
    slack_signing_secret_param: str
    slack_response_url_prefix: str
    slack_bot_token_param: str
    slack_api_url: str
    max_body_bytes: int
    idempotency_ttl_seconds: int
    http_timeout_seconds: float
    retry_base_seconds: int
    retry_max_seconds: int
    config_cache_seconds: int
    secret_cache_seconds: int
    ops_output_bucket: str
    ops_output_link_seconds: int
    ops_poll_seconds: int
    ops_progress_seconds: int
    local_peers: dict[str, str]
    release_poll_seconds: int
    argocd_url: str
    argocd_token_param: str
    message_max_age_seconds: int
    peer_hosts: dict[str, tuple[str, ...]]  # peer (PEER_HOSTS' keys) -> the hosts that may receive its token
    peer_hosts_given: bool  # whether any *_HOSTS variable is set (always on AWS and in the local stack)

    @property
    def allows_literal_secrets(self) -> bool:
        # Literal secrets in config are a convenience of the laptop stack only.
        return self.stage == "local"


# name -> (description, default). The README's "Stack settings" table is generated from this.
ENVIRONMENT = {
    "OPSBOT_STAGE": (
        "Deployment stage: `local`, `dev` or `prod`. Only `local` accepts literal secrets in config.",
        "dev",
    ),
    "CONFIG_TABLE": ("DynamoDB table holding the validated config.", "opsbot-config"),
    "STATE_TABLE": (
        "DynamoDB table for idempotency records, robot budgets and branch status (TTL on `expires_at`).",
        "opsbot-state",
    ),
    "AUDIT_TABLE": ("DynamoDB table for the audit log.", "opsbot-audit"),
    "RELEASES_TABLE": (
        "DynamoDB table with a record per GitOps release (who, what, when, how its rollout and verification ended).",
        "opsbot-releases",
    ),
    "WORK_QUEUE_URL": ("SQS queue that ingress fills and the worker drains.", ""),
    "DEAD_LETTER_QUEUE_URL": ("SQS dead-letter queue; jobs that failed for good end here.", ""),
    "DRONE_WEBHOOK_SECRET_PARAM": (
        "SSM parameter name holding Drone's `DRONE_WEBHOOK_SECRET`.",
        "/opsbot/dev/webhooks/drone",
    ),
    "GITLAB_WEBHOOK_TOKEN_PARAM": (
        "SSM parameter name holding the GitLab webhook secret token.",
        "/opsbot/dev/webhooks/gitlab",
    ),
    "DINGTALK_APP_SECRET_PARAM": (
        "SSM parameter name holding the DingTalk robot's AppSecret (callback signing).",
        "/opsbot/dev/dingtalk/app-secret",
    ),
    "ACTION_SIGNING_KEY_PARAM": (
        "SSM parameter name holding the key that signs release links (`/actions/{token}`).",
        "/opsbot/dev/actions/signing-key",
    ),
    "PUBLIC_BASE_URL": (
        "Base URL of the HTTP API, for release links in notifications; empty means no release buttons.",
        "",
    ),
    "DINGTALK_SESSION_WEBHOOK_PREFIX": (
        "Replies go to a callback's `sessionWebhook` only when it starts with this.",
        "https://oapi.dingtalk.com/robot/sendBySession?",
    ),
    # Release links identify the clicker through DingTalk's web login (OAuth 2.0) with this app's credentials.
    "DINGTALK_APP_KEY": (
        "AppKey (Client ID) of the DingTalk app whose AppSecret is `DINGTALK_APP_SECRET_PARAM`; "
        "empty means release links cannot sign anyone in.",
        "",
    ),
    "DINGTALK_LOGIN_URL": ("DingTalk's web login (the OAuth authorize page).", "https://login.dingtalk.com"),
    "DINGTALK_API_URL": (
        "DingTalk's new API (user access token, the signed-in user, the app token).",
        "https://api.dingtalk.com",
    ),
    "DINGTALK_OAPI_URL": ("DingTalk's old API (a user's staff id from their unionId).", "https://oapi.dingtalk.com"),
    # Chat in Feishu/Lark: the app bot's event callback (POST /webhooks/feishu) and its replies through the app's API.
    "FEISHU_APP_ID": (
        "App ID (cli_…) of the Feishu/Lark app whose bot takes chat; empty means `/webhooks/feishu` takes nothing.",
        "",
    ),
    "FEISHU_APP_SECRET_PARAM": (
        "SSM parameter name holding the Feishu app's App Secret (its tenant access token, for reading and replying).",
        "/opsbot/dev/feishu/app-secret",
    ),
    "FEISHU_VERIFICATION_TOKEN_PARAM": (
        "SSM parameter name holding the Feishu app's event Verification Token.",
        "/opsbot/dev/feishu/verification-token",
    ),
    "FEISHU_API_URL": (
        "Feishu's open API (`https://open.larksuite.com` for Lark).",
        "https://open.feishu.cn",
    ),
    "FEISHU_LOGIN_URL": (
        "Feishu's web sign-in (the OAuth authorize page) that release links offer beside DingTalk's; empty: none.",
        "https://accounts.feishu.cn",
    ),
    # Slack's interactivity (POST /webhooks/slack/interactivity): buttons on opsbot's messages that act as the presser.
    "SLACK_APP_ID": (
        "App ID (A…) of the Slack app whose interactivity Request URL is `/webhooks/slack/interactivity`; empty means "
        "that route takes nothing (401) and Slack messages keep link buttons only.",
        "",
    ),
    "SLACK_SIGNING_SECRET_PARAM": (
        "SSM parameter name holding the Slack app's Signing Secret (the v0 request signature).",
        "/opsbot/dev/slack/signing-secret",
    ),
    "SLACK_RESPONSE_URL_PREFIX": (
        "A button press's `response_url` (where the card is updated in place) is used only when it starts with this.",
        "https://hooks.slack.com/actions/",
    ),
    # Slack's Events API (POST /webhooks/slack/events): typed commands, answered through the Web API as the app's bot.
    "SLACK_BOT_TOKEN_PARAM": (
        "SSM parameter name holding the Slack app's Bot User OAuth Token (`xoxb-…`), for `chat.postMessage` replies.",
        "/opsbot/dev/slack/bot-token",
    ),
    "SLACK_API_URL": (
        "Slack's Web API; the bot token is sent nowhere else (replies are posted only to URLs built from this).",
        "https://slack.com/api",
    ),
    # SQS takes 256 KiB per message; the job envelope needs a little room beside the body.
    "MAX_BODY_BYTES": ("Largest webhook body accepted; larger gets 413.", "250000"),
    "IDEMPOTENCY_TTL_SECONDS": (
        "How long a webhook delivery is remembered for de-duplication (acts' markers are kept for good: "
        "state/idempotency.py, state/effects.py).",
        "172800",
    ),
    "HTTP_TIMEOUT_SECONDS": ("Timeout of every outbound HTTP call (DingTalk, Drone, GitLab).", "5"),
    "RETRY_BASE_SECONDS": ("First retry delay of a failed job; doubles each attempt.", "30"),
    "RETRY_MAX_SECONDS": ("Largest retry delay.", "900"),
    "CONFIG_CACHE_SECONDS": ("How long a Lambda keeps config in memory before re-reading DynamoDB.", "60"),
    "SECRET_CACHE_SECONDS": ("How long a Lambda keeps an SSM secret in memory.", "300"),
    # Ops commands (opsbot.ops): where long output goes, and how often follow-ups look and speak.
    "OPS_OUTPUT_BUCKET": (
        "S3 bucket for ops output too long for a message (logs, VM batch output); SSM writes command output there.",
        "",
    ),
    "OPS_OUTPUT_LINK_SECONDS": ("How long a presigned link to ops output stays valid.", "3600"),
    "OPS_POLL_SECONDS": ("Delay between follow-up checks of an ops change (rollout, VM batch, DNS change).", "15"),
    "OPS_PROGRESS_SECONDS": ("Least time between two progress posts about one VM batch.", "60"),
    # The local stack's config names its fakes by role (`local://drone`), never by port: the stack says where each runs.
    "LOCAL_PEERS": (
        "The local stack only: where `local://<peer>` in config points, `peer=address` pairs separated by spaces "
        "(set by the local stack itself); empty elsewhere.",
        "",
    ),
    # GitOps releases (opsbot.promotion): how often a rollout, sync or verification is looked at, and Argo CD.
    "RELEASE_POLL_SECONDS": ("Delay between follow-up checks of a GitOps release (rollout, sync, verification).", "15"),
    "ARGOCD_URL": (
        "Argo CD's API server (`apply: argocd`), the only host its token is sent to; empty means no Argo CD.",
        "",
    ),
    "ARGOCD_TOKEN_PARAM": (
        "SSM parameter name holding Argo CD's API token (an account allowed to get and sync the Applications).",
        "/opsbot/dev/argocd/token",
    ),
    # Freshness: a chat message is acted on only while it is young by its platform's own clock (chat/inbound/).
    "MESSAGE_MAX_AGE_SECONDS": (
        "How old a chat message read from its platform's API may be (Feishu's `create_time`, to when opsbot's "
        "callback took it); older is refused, audited and not acted on.",
        "300",
    ),
    # Pinned peers: the hosts that may receive each token, from the stack (template.yaml), never from the config.
    # Comma-separated `host` (any port) or `host:port`; peers.check_pinned refuses any other host at send time.
    "GITLAB_HOSTS": (
        "Hosts that may receive the GitLab token (`gitlab.url`); needed when the config has `gitlab:`.",
        "",
    ),
    "DRONE_HOSTS": (
        "Hosts that may receive the Drone token (`drone.server`); needed when the config has `drone:`.",
        "",
    ),
    "KUBERNETES_HOSTS": (
        "API servers that may receive a cluster's token (`ops.clusters.*.api_server`); an EKS cluster's endpoint, "
        "which eks:DescribeCluster gives, is taken under `.eks.amazonaws.com` without being listed.",
        "",
    ),
    "DINGTALK_ROBOT_HOSTS": ("Hosts DingTalk robots' webhooks may point at.", "oapi.dingtalk.com"),
    "FEISHU_ROBOT_HOSTS": ("Hosts Feishu/Lark robots' webhooks may point at.", "open.feishu.cn,open.larksuite.com"),
    "WECOM_ROBOT_HOSTS": ("Hosts WeCom robots' webhooks may point at.", "qyapi.weixin.qq.com"),
    "SLACK_ROBOT_HOSTS": ("Hosts Slack robots' webhooks may point at.", "hooks.slack.com"),
}

# Each peer whose token opsbot sends, and the variable that pins its hosts (peers.check_pinned).
PEER_HOSTS = {
    "gitlab": "GITLAB_HOSTS",
    "drone": "DRONE_HOSTS",
    "kubernetes": "KUBERNETES_HOSTS",
    "dingtalk": "DINGTALK_ROBOT_HOSTS",
    "feishu": "FEISHU_ROBOT_HOSTS",
    "wecom": "WECOM_ROBOT_HOSTS",
    "slack": "SLACK_ROBOT_HOSTS",
}


def _env(name: str) -> str:
    return os.environ.get(name, ENVIRONMENT[name][1])


def _pairs(text: str) -> dict[str, str]:
    """`a=x b=y` (spaces or commas between pairs) as {a: x, b: y}."""
    pairs = (item.partition("=") for item in text.replace(",", " ").split())
    return {name.strip(): value.strip().rstrip("/") for name, _, value in pairs if name.strip() and value.strip()}


def _hosts(name: str) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in _env(name).replace(" ", ",").split(",") if h.strip())


@cache
def settings() -> Settings:
    return Settings(
        stage=_env("OPSBOT_STAGE"),
        config_table=_env("CONFIG_TABLE"),
        state_table=_env("STATE_TABLE"),
        audit_table=_env("AUDIT_TABLE"),
        releases_table=_env("RELEASES_TABLE"),
        work_queue_url=_env("WORK_QUEUE_URL"),
        dead_letter_queue_url=_env("DEAD_LETTER_QUEUE_URL"),
        drone_webhook_secret_param=_env("DRONE_WEBHOOK_SECRET_PARAM"),
        gitlab_webhook_token_param=_env("GITLAB_WEBHOOK_TOKEN_PARAM"),
        dingtalk_app_secret_param=_env("DINGTALK_APP_SECRET_PARAM"),
        action_signing_key_param=_env("ACTION_SIGNING_KEY_PARAM"),
        public_base_url=_env("PUBLIC_BASE_URL").rstrip("/"),
        dingtalk_session_webhook_prefix=_env("DINGTALK_SESSION_WEBHOOK_PREFIX"),
        dingtalk_app_key=_env("DINGTALK_APP_KEY").strip(),
        dingtalk_login_url=_env("DINGTALK_LOGIN_URL").rstrip("/"),
        dingtalk_api_url=_env("DINGTALK_API_URL").rstrip("/"),
        dingtalk_oapi_url=_env("DINGTALK_OAPI_URL").rstrip("/"),
        feishu_app_id=_env("FEISHU_APP_ID").strip(),
        feishu_app_secret_param=_env("FEISHU_APP_SECRET_PARAM"),
        feishu_verification_token_param=_env("FEISHU_VERIFICATION_TOKEN_PARAM"),
        feishu_api_url=_env("FEISHU_API_URL").rstrip("/"),
        feishu_login_url=_env("FEISHU_LOGIN_URL").rstrip("/"),
        slack_app_id=_env("SLACK_APP_ID").strip(),
        slack_signing_secret_param=_env("SLACK_SIGNING_SECRET_PARAM"),
        slack_response_url_prefix=_env("SLACK_RESPONSE_URL_PREFIX"),
        slack_bot_token_param=_env("SLACK_BOT_TOKEN_PARAM"),
        slack_api_url=_env("SLACK_API_URL").rstrip("/"),
        max_body_bytes=int(_env("MAX_BODY_BYTES")),
        idempotency_ttl_seconds=int(_env("IDEMPOTENCY_TTL_SECONDS")),
        http_timeout_seconds=float(_env("HTTP_TIMEOUT_SECONDS")),
        retry_base_seconds=int(_env("RETRY_BASE_SECONDS")),
        retry_max_seconds=int(_env("RETRY_MAX_SECONDS")),
        config_cache_seconds=int(_env("CONFIG_CACHE_SECONDS")),
        secret_cache_seconds=int(_env("SECRET_CACHE_SECONDS")),
        ops_output_bucket=_env("OPS_OUTPUT_BUCKET"),
        ops_output_link_seconds=int(_env("OPS_OUTPUT_LINK_SECONDS")),
        ops_poll_seconds=int(_env("OPS_POLL_SECONDS")),
        ops_progress_seconds=int(_env("OPS_PROGRESS_SECONDS")),
        local_peers=_pairs(_env("LOCAL_PEERS")),
        release_poll_seconds=int(_env("RELEASE_POLL_SECONDS")),
        argocd_url=_env("ARGOCD_URL").rstrip("/"),
        argocd_token_param=_env("ARGOCD_TOKEN_PARAM"),
        message_max_age_seconds=int(_env("MESSAGE_MAX_AGE_SECONDS")),
        peer_hosts={peer: _hosts(variable) for peer, variable in PEER_HOSTS.items()},
        peer_hosts_given=any(variable in os.environ for variable in PEER_HOSTS.values()),
    )
