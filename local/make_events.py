"""Regenerate events/ from tests/fixtures: one API Gateway v2 event per route and case, with the headers a
real sender sends, signed with the local stack's secrets at SIGNED_AT, so the files do not change from one run to
the next. Their signatures are therefore stale: `make send` signs afresh, and `make event` (local/sam_event.py)
writes a copy signed now for `sam local invoke -e`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "opsbot"))
sys.path.insert(0, str(ROOT))

from local.signing import sign_for  # noqa: E402
from local.stack import http_api_event  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
SIGNED_AT = 1732521960.0  # 2024-11-25T08:06:00Z, just after the fixtures' builds finished

DRONE_HEADERS = {"content-type": "application/json", "user-agent": "Go-http-client/1.1", "accept-encoding": "gzip"}
GITLAB_HEADERS = {
    "content-type": "application/json",
    "user-agent": "GitLab/17.5.0",
    "x-gitlab-instance": "https://gitlab.example.com",
}
DINGTALK_HEADERS = {"content-type": "application/json; charset=utf-8", "user-agent": "DingTalk-Robot"}

GITLAB_EVENTS = {
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "merge_request": "Merge Request Hook",
    "note_merge_request": "Note Hook",
    "pipeline": "Pipeline Hook",
}


def _event(path: str, headers: dict, body: bytes) -> dict:
    headers = {k.lower(): v for k, v in headers.items()}
    headers["host"] = "abc123.execute-api.us-east-1.amazonaws.com"
    headers["content-length"] = str(len(body))
    return http_api_event("POST", path, "", headers, body, f"POST {path}", "203.0.113.10")


def main() -> None:
    out = ROOT / "events"
    samples: dict[str, dict] = {}
    for name in ("build_failure", "build_success", "build_created", "build_running", "promote_success", "repo_enabled"):
        body = (FIXTURES / "drone" / f"{name}.json").read_bytes()
        event_kind = json.loads(body)["event"]
        headers = {**DRONE_HEADERS, "x-drone-event": event_kind, **sign_for("/webhooks/drone", body, SIGNED_AT)}
        samples[f"drone/{name}.json"] = _event("/webhooks/drone", headers, body)
    body = (FIXTURES / "drone" / "build_failure.json").read_bytes()
    good = sign_for("/webhooks/drone", body, SIGNED_AT)
    samples["drone/bad_signature.json"] = _event(
        "/webhooks/drone",
        {
            **DRONE_HEADERS,
            "x-drone-event": "build",
            **good,
            "Signature": good["Signature"].replace('signature="', 'signature="AAAA'),
        },
        body,
    )
    samples["drone/bad_digest.json"] = _event(
        "/webhooks/drone",
        {**DRONE_HEADERS, "x-drone-event": "build", **good},
        body.replace(b'"failure"', b'"success"', 1),
    )
    samples["drone/stale_date.json"] = _event(
        "/webhooks/drone", {**DRONE_HEADERS, "x-drone-event": "build", **good}, body
    )
    authorization_form = dict(good)
    authorization_form["Authorization"] = "Signature " + authorization_form.pop("Signature")
    samples["drone/build_failure_authorization_header.json"] = _event(
        "/webhooks/drone", {**DRONE_HEADERS, "x-drone-event": "build", **authorization_form}, body
    )
    # The same failure for shop-recommend, whose news goes to a DingTalk and a Feishu group (config/example).
    two_groups = json.loads(body)
    two_groups["repo"].update(slug="shop/shop-recommend", name="shop-recommend")
    two_groups["repo"]["link"] = two_groups["repo"]["link"].replace("shop-api", "shop-recommend")
    recommend = json.dumps(two_groups, ensure_ascii=False, indent=2).encode()
    samples["drone/build_failure_two_groups.json"] = _event(
        "/webhooks/drone",
        {**DRONE_HEADERS, "x-drone-event": "build", **sign_for("/webhooks/drone", recommend, SIGNED_AT)},
        recommend,
    )

    for name, event_name in GITLAB_EVENTS.items():
        body = (FIXTURES / "gitlab" / f"{name}.json").read_bytes()
        headers = {
            **GITLAB_HEADERS,
            "x-gitlab-event": event_name,
            "x-gitlab-event-uuid": f"7b1f8a52-0000-4000-8000-{len(name):012d}",
            "x-gitlab-webhook-uuid": "1c6f7a0e-2d4b-4c59-9a63-5d3e2b1f0a99",
            "idempotency-key": f"0b8e3f5c-0000-4000-8000-{len(body):012d}",
            **sign_for("/webhooks/gitlab", body),
        }
        samples[f"gitlab/{name}.json"] = _event("/webhooks/gitlab", headers, body)
    body = (FIXTURES / "gitlab" / "push.json").read_bytes()
    samples["gitlab/bad_token.json"] = _event(
        "/webhooks/gitlab", {**GITLAB_HEADERS, "x-gitlab-event": "Push Hook", "x-gitlab-token": "not-the-token"}, body
    )

    for name in ("outgoing_status", "outgoing_deploy_zh"):
        body = (FIXTURES / "dingtalk" / f"{name}.json").read_bytes()
        headers = {**DINGTALK_HEADERS, **sign_for("/webhooks/dingtalk", body, SIGNED_AT)}
        samples[f"dingtalk/{name.removeprefix('outgoing_')}.json"] = _event("/webhooks/dingtalk", headers, body)
    body = (FIXTURES / "dingtalk" / "outgoing_status.json").read_bytes()
    samples["dingtalk/bad_sign.json"] = _event(
        "/webhooks/dingtalk",
        {**DINGTALK_HEADERS, "timestamp": str(int(SIGNED_AT * 1000)), "sign": "bm90IHRoZSBzaWdu"},
        body,
    )

    # A press of the "发布到 staging" button on shop-api #128's Slack card by carol (tests/fixtures/slack), its value
    # signed with the local stack's button key; form-encoded and signed (v0) as Slack posts it. Its response_url is
    # the default stack's fake Slack (PORT=3000), so its answers go nowhere else.
    from urllib.parse import urlencode

    from local.stack import LOCAL_SECRETS as SECRETS
    from opsbot.channels import buttons

    press = json.loads((FIXTURES / "slack" / "block_actions.json").read_text(encoding="utf-8"))
    key = SECRETS["ACTION_SIGNING_KEY_PARAM"].encode()
    press["actions"][0]["value"] = buttons.value("deploy shop-api 128 to staging", key)
    body = urlencode({"payload": json.dumps(press, ensure_ascii=False, separators=(",", ":"))}).encode()
    slack_headers = {
        "content-type": "application/x-www-form-urlencoded",
        "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    # A typed command (the Events API): carol @-mentions the bot in #shop-backend; and Slack's URL check.
    events_path = "/webhooks/slack/events"
    json_headers = {"content-type": "application/json", "user-agent": slack_headers["user-agent"]}
    for name, document in (
        ("app_mention", json.loads((FIXTURES / "slack" / "app_mention.json").read_text(encoding="utf-8"))),
        (
            "url_verification",
            {
                "token": "deprecated-verification-token",
                "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                "type": "url_verification",
            },
        ),
    ):
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        samples[f"slack/{name}.json"] = _event(
            events_path, {**json_headers, **sign_for(events_path, body, SIGNED_AT)}, body
        )
    path = "/webhooks/slack/interactivity"
    samples["slack/press_release.json"] = _event(path, {**slack_headers, **sign_for(path, body, SIGNED_AT)}, body)
    samples["slack/bad_signature.json"] = _event(
        path, {**slack_headers, **sign_for(path, body, SIGNED_AT), "x-slack-signature": "v0=" + "0" * 64}, body
    )

    # Release links for build 128 of shop-api, signed with the local key: the local stack holds their grant
    # (local/stack.py, SAMPLE_RELEASE_GRANT). The confirm sample has no login ticket, so it is refused (401).
    from local.stack import LOCAL_SECRETS, SAMPLE_RELEASE_GRANT
    from opsbot.release.links import token_for

    token = token_for(SAMPLE_RELEASE_GRANT["nonce"], LOCAL_SECRETS["ACTION_SIGNING_KEY_PARAM"].encode())
    browser = {
        "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) DingTalk/7.6.0",
        "accept": "text/html",
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "x-forwarded-proto": "https",
    }
    for method, name, link in (("GET", "show", token), ("GET", "tampered", token[:-4] + "AAAA")):
        samples[f"actions/{name}.json"] = http_api_event(
            method,
            f"/actions/{link}",
            "",
            browser,
            b"",
            f"{method} /actions/{{token}}",
            "203.0.113.10",
            {"token": link},
        )
    samples["actions/login_outside_dingtalk.json"] = http_api_event(
        "GET", "/actions/login", f"state={token}", browser, b"", "GET /actions/login", "203.0.113.10"
    )
    form = {**browser, "content-type": "application/x-www-form-urlencoded"}
    samples["actions/confirm_without_login.json"] = http_api_event(
        "POST", f"/actions/{token}", "", form, b"", "POST /actions/{token}", "203.0.113.10", {"token": token}
    )

    for relative, event in samples.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(event, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(samples)} events under {out}")


if __name__ == "__main__":
    main()
