"""What opsbot trusts at its edges: outsiders' text made plain for each markup (markup.py), a DingTalk
(timestamp, sign) pair used once, and a config that cannot point a stage at another's secrets or send tokens
over plain http."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from unit_support import EXAMPLE_CONFIG, DingTalkCard, dingtalk_event, fixture_bytes, json_body

from opsbot import markup
from opsbot.config.model import ConfigError, Document, validate
from opsbot.config.yaml_source import read_directory

HOSTILE = (
    "fix: [点此发布到生产](http://evil.example/x) <font color=red>urgent</font> ![x](http://evil.example/i.png) @all"
)


# --- markup ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("escape", [markup.dingtalk, markup.gitlab])
def test_outsiders_text_has_no_link_image_tag_or_mention(escape):
    plain = escape(HOSTILE)
    assert "](" not in plain and "[" not in plain and "<" not in plain and ">" not in plain
    assert "://" not in plain and "@all" not in plain.lower()
    # still readable: the words are all there
    for word in ("点此发布到生产", "evil.example", "font color=red", "urgent", "all"):
        assert word in plain


def test_outsiders_text_is_one_line_and_never_a_quick_action():
    assert markup.gitlab("ok\n/merge\n/approve") == "ok ／merge ／approve".replace("／", "/")
    assert not markup.gitlab("/merge").startswith("/")
    assert "\n" not in markup.dingtalk("# title\n- item\n> quote")
    assert markup.dingtalk("# title").startswith("＃")


def test_gitlab_markdown_is_escaped_with_backslashes():
    assert markup.gitlab("**bold** _em_ ~strike~") == r"\*\*bold\*\* \_em\_ \~strike\~"


def test_long_text_is_cut():
    assert len(markup.dingtalk("x" * 500, 100)) == 100 and markup.dingtalk("x" * 500, 100).endswith("…")


@pytest.mark.parametrize(
    "url, fine",
    [
        ("https://drone.example.com/shop/shop-api/128", True),
        ("http://127.0.0.1:3002/shop/shop-api/128", True),
        ("javascript:alert(1)", False),
        ("https://x.example/a) [click](http://evil.example", False),
        ("https://x.example/<b>", False),
        (None, False),
    ],
)
def test_link_targets_are_http_and_cannot_break_out(url, fine):
    assert (markup.link_target(url) == url) is fine


def test_a_hostile_commit_message_stays_text_in_the_bots_own_card(example_config):
    """Attack 6: a commit message with a markdown link and HTML, shown in a build card."""
    from unit_support import fixture_json

    from opsbot.notify import render

    delivery = fixture_json("drone/build_failure.json")
    build = {
        **delivery["build"],
        "message": HOSTILE + "\n\nbody",
        "target": "main<img src=x>",
        "author_name": "[Bob](http://evil.example)",
    }
    rendered = DingTalkCard(
        render.build_message(
            example_config.projects["shop-api"], delivery["repo"], build, delivery["system"], "failure", None
        ),
        example_config,
    )
    text = rendered.message["markdown"]["text"]
    links = re.findall(r"\]\(([^)]*)\)", text)
    assert links and all(not link.startswith("http://evil") for link in links)  # only the bot's own links
    assert "<font" not in text and "<img" not in text and "evil.example/x" in text.replace("：//", "://")
    assert "](http://evil" not in rendered.digest_line and "<font" not in rendered.digest_line


BIDI_AND_INVISIBLE = (
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\u200e\u200f\u061c\ufeff\u2060"
)


@pytest.mark.parametrize("escape", [markup.plain, markup.gitlab])
def test_bidi_overrides_and_invisible_characters_are_stripped(escape):
    """`fix/\u202egnp.exe` would show as `fix/exe.png`; a zero-width space hides inside `@all` or a name."""
    shown = escape(f"fix/\u202egnp.exe @a\u200bll release\u2066now\u2069 {BIDI_AND_INVISIBLE}end")
    assert not any(c in shown for c in BIDI_AND_INVISIBLE)
    assert "gnp.exe" in shown and "releasenow" in shown and "＠all" in shown  # read as the words they are


def test_a_branch_with_a_right_to_left_override_reaches_no_channel_with_it(example_config):
    from unit_support import fixture_json

    from opsbot.channels import adapters
    from opsbot.notify import render

    delivery = fixture_json("drone/build_failure.json")
    build = {**delivery["build"], "target": "feature/\u202egnp.exe", "message": "fix\u200b: \u2067title\u2069"}
    message = render.build_message(
        example_config.projects["shop-api"], delivery["repo"], build, delivery["system"], "failure", None
    )
    for kind, adapter in adapters.ADAPTERS.items():
        rendered = json.dumps(adapter.render(message, example_config.person), ensure_ascii=False)
        assert not any(c in rendered for c in BIDI_AND_INVISIBLE), kind
        assert "gnp.exe" in rendered, kind


@pytest.mark.parametrize(
    "said",
    [
        "confirm x[release-now](https://evil.example/a)",
        "help x[release-now](https://evil.example/a)",
        "config rollback x[release-now](https://evil.example/a)",
    ],
)
def test_what_a_person_typed_is_never_echoed_as_live_markdown(
    said, chat_config, aws, handlers, lambda_context, monkeypatch
):
    """The bot's own reply to `confirm x[release-now](https://evil.example/a)` carried a working link."""
    from chat_support import ask
    from unit_support import sqs_event

    replies: list[dict] = []
    monkeypatch.setattr("opsbot.channels.dingtalk.send_by_session", lambda url, message: replies.append(message))
    monkeypatch.setattr("opsbot.channels.dingtalk.send", lambda robot, message: replies.append(message))
    first = ask(said, "xiaoming")
    jobs = aws.receive()
    if jobs:
        handlers.worker.lambda_handler(sqs_event(jobs), lambda_context)
    texts = [json.dumps(r, ensure_ascii=False) for r in (first, *replies)]
    shown = [t for t in texts if "release-now" in t]
    assert shown, texts
    for text in shown:
        assert "](https" not in text and "://evil" not in text and "[release-now]" not in text


# --- DingTalk callbacks: a (timestamp, sign) pair is used once -------------------------------------------------------


@pytest.fixture
def dingtalk(handlers, lambda_context):
    return lambda event: handlers.dingtalk_bot.lambda_handler(event, lambda_context)


def _callback(text: str, msg_id: str, staff_id: str = "manager4321") -> bytes:
    body = json.loads(fixture_bytes("dingtalk/outgoing_deploy_zh.json"))
    body.update({"msgId": msg_id, "senderStaffId": staff_id, "text": {"content": f" {text}"}})
    return json.dumps(body, ensure_ascii=False).encode()


def test_a_replayed_signature_with_another_body_is_refused(aws, dingtalk, chat_config):
    """Attack 3: a captured timestamp + sign pair sent again with an admin's staff id and another command."""
    first = dingtalk_event(_callback("status shop-api", "msg-first", "bob.li"))
    assert dingtalk(first)["statusCode"] == 200
    forged = dingtalk_event(
        _callback("deploy shop-api 128 staging", "msg-forged"),
        headers={"timestamp": first["headers"]["timestamp"], "sign": first["headers"]["sign"]},
    )
    response = dingtalk(forged)
    assert response["statusCode"] == 401
    assert json_body(response) == {"error": "this DingTalk timestamp and sign were already used for another message"}
    assert aws.receive() == []  # nothing queued


def test_dingtalk_redelivering_the_same_message_is_still_answered(aws, dingtalk, chat_config):
    event = dingtalk_event(_callback("部署 shop-api 128 到 staging", "msg-again"))
    assert dingtalk(event)["statusCode"] == 200
    again = dingtalk(event)  # the same pair, the same msgId: a redelivery, acted on once
    assert again["statusCode"] == 200 and json_body(again) == {"msgtype": "empty"}
    assert len(aws.receive()) == 1


# --- config: stage-safe secrets and https peers --------------------------------------------------------------


def _documents(**changes) -> list[Document]:
    documents, _ = read_directory(EXAMPLE_CONFIG)
    found = []
    for document in documents:
        data = json.loads(json.dumps(document.data))  # a plain copy without line numbers
        if document.name == "opsbot.yaml":
            for path, value in changes.items():
                section, key = path.split(".")
                data[section][key] = value
        found.append(Document(document.name, data))
    return found


def _prod_documents(**changes) -> list[Document]:
    """The example with every secret a prod parameter in its area, then `changes`."""
    base = {
        "drone.token": "ssm:/opsbot/prod/drone/api-token",
        "gitlab.token": "ssm:/opsbot/prod/gitlab/api-token",
        "gitlab.deploy_token": "ssm:/opsbot/prod/gitlab/deploy-token",
        "drone.server": "https://drone.example.com",
        "gitlab.url": "https://gitlab.example.com",
    }
    documents = _documents(**{**base, **changes})
    for document in documents:
        if document.name == "opsbot.yaml":
            for robot in ("shop-backend", "shop-feishu"):
                document.data["robots"][robot].update(
                    webhook=f"ssm:/opsbot/prod/robots/{robot}/webhook", secret=f"ssm:/opsbot/prod/robots/{robot}/secret"
                )
            for zone in document.data["ops"]["dns_zones"].values():
                zone.pop("nameservers", None)  # the zone's own name servers, as on AWS
        for env in (document.data.get("environments") or {}).values():
            if (env.get("deploy") or {}).get("verify", {}).get("url"):  # a service's health URL: https too
                env["deploy"]["verify"]["url"] = "https://staging.shop.example/health"
    return documents


def test_a_prod_config_with_prod_secrets_in_their_areas_is_valid():
    assert validate(_prod_documents(), allow_literal_secrets=False, stage="prod").drone.server == (
        "https://drone.example.com"
    )


@pytest.mark.parametrize(
    "change, problem",
    [
        (
            {"drone.token": "ssm:/opsbot/dev/drone/api-token"},
            "drone.token must be a parameter under /opsbot/prod/drone/",
        ),
        ({"gitlab.token": "ssm:/opsbot/prod/robots/x"}, "gitlab.token must be a parameter under /opsbot/prod/gitlab/"),
        (
            {"gitlab.deploy_token": "local-deploy-token"},
            "gitlab.deploy_token is a secret: write it as ssm:/parameter/name",
        ),
        ({"drone.server": "http://drone.example.com"}, "drone.server must be an https:// URL"),
        ({"gitlab.url": "http://gitlab.example.com"}, "gitlab.url must be an https:// URL"),
    ],
)
def test_a_prod_config_may_not_reach_other_stages_or_send_tokens_in_clear(change, problem):
    with pytest.raises(ConfigError) as raised:
        validate(_prod_documents(**change), allow_literal_secrets=False, stage="prod")
    assert any(problem in line for line in raised.value.lines()), raised.value.lines()


def test_the_local_stack_may_use_http_and_literal_secrets():
    config = validate(
        _documents(), allow_literal_secrets=True, stage="local", local_peers={"drone": "http://127.0.0.1:9"}
    )
    assert config.drone.server == "http://127.0.0.1:9"  # local://drone, where the running stack has its fake


def test_an_environment_lists_the_build_events_it_takes(tmp_path):
    documents = _documents()
    for document in documents:
        if document.name == "projects/shop-api.yaml":
            document.data["environments"]["staging"]["events"] = ["push", "tag"]
            document.data["environments"]["production"]["events"] = ["promote"]
    with pytest.raises(ConfigError) as raised:
        validate(documents, allow_literal_secrets=True)
    assert any("'promote' is not a Drone build event that may be deployed" in line for line in raised.value.lines())


def test_the_samconfig_profiles_name_no_secret_parameter_of_another_stage():
    """Attack 7: every profile derives its parameter names from its Stage; none names an SSM path."""
    from unit_support import ROOT

    text = (ROOT / "samconfig.toml").read_text()
    assert "/opsbot/" not in text
    template = yaml.safe_load((ROOT / "template.yaml").read_text().replace("!", ""))
    assert not any(name.endswith("Param") for name in template["Parameters"])


def test_each_function_may_read_only_the_secrets_it_uses():
    """The internet-facing DingTalk function no longer reads every secret of its stage; nobody reads another's."""
    from unit_support import ROOT

    from local import template as local_template

    resources = local_template.load(ROOT / "template.yaml").raw["Resources"]
    readable = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        found = []
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []):
                if statement.get("Action") == "ssm:GetParameter":  # (an Fn::If statement is no secret read)
                    targets = (
                        statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                    )
                    found += [t["Fn::Sub"].split(":parameter", 1)[1] for t in targets]
        readable[name] = sorted(found)
    assert readable == {
        "DroneWebhookFunction": ["/opsbot/${Stage}/webhooks/drone"],
        "GitlabWebhookFunction": ["/opsbot/${Stage}/webhooks/gitlab", "/opsbot/${Stage}/webhooks/gitlab-projects/*"],
        "DingtalkBotFunction": ["/opsbot/${Stage}/dingtalk/app-secret", "/opsbot/${Stage}/drone/*"],
        # Feishu's callback only queues: the token that checks it, not the app secret that reads and replies.
        "FeishuBotFunction": ["/opsbot/${Stage}/feishu/verification-token"],
        # Slack's presses only queue: the signing secret; the buttons' MAC key is the worker's.
        "SlackBotFunction": ["/opsbot/${Stage}/slack/signing-secret"],
        "ActionsFunction": [
            "/opsbot/${Stage}/actions/signing-key",
            "/opsbot/${Stage}/dingtalk/app-secret",
            "/opsbot/${Stage}/feishu/app-secret",  # Feishu's sign-in on a link from a Feishu card
        ],
        "WorkerFunction": [
            "/opsbot/${Stage}/actions/signing-key",
            "/opsbot/${Stage}/argocd/token",
            "/opsbot/${Stage}/clusters/*",
            "/opsbot/${Stage}/drone/*",
            "/opsbot/${Stage}/feishu/app-secret",
            "/opsbot/${Stage}/gitlab/*",
            "/opsbot/${Stage}/robots/*",
            "/opsbot/${Stage}/slack/bot-token",  # typed Slack commands are answered with chat.postMessage
        ],
    }


def test_only_the_worker_may_send_email_and_only_from_the_stacks_senders():
    """E-mail robots use the worker's IAM role: SendEmail only with a From the stack's EmailSenders parameter names,
    so a config push (which names a robot's `from`) cannot widen whom opsbot sends as."""
    from unit_support import ROOT

    from local import template as local_template

    raw = local_template.load(ROOT / "template.yaml").raw
    sending = {}
    for name, resource in raw["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []):
                statement = statement["Fn::If"][1] if "Fn::If" in statement else statement  # granted when … holds
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if any(a.startswith("ses:") for a in actions):
                    sending[name] = statement
    assert list(sending) == ["WorkerFunction"]
    statement = sending["WorkerFunction"]
    assert statement["Action"] == "ses:SendEmail"
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "EmailSenders"}}}
    assert raw["Parameters"]["EmailSenders"]["Type"] == "CommaDelimitedList"
