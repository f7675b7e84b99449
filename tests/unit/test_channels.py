"""The chat channels (opsbot.channels): each renders one message in its own dialect, within its size, with its
mentions and buttons; outsiders' text stays text in every one; each signs and sends to its fake on loopback
(local/fake_*.py), whose answers become "deliver later" (with the channel's delay) or "retrying cannot help"
(naming the robot); e-mail goes through moto's SES."""

from __future__ import annotations

import json
import re
import time

import pytest
from unit_support import SIGNATURE_VECTORS, fixture_json

from opsbot import markup
from opsbot.channels import adapters, base, dingtalk, email, feishu, markdown, slack, wecom
from opsbot.channels.http import encode
from opsbot.config.model import Person, Project, Robot
from opsbot.delivery import budget
from opsbot.jobs.model import PermanentFailure, RetryLater
from opsbot.message import Button, Mentions, Message, mention
from opsbot.notify import render

ALICE = Person(
    id="alice",
    name="Alice Wang",
    dingtalk_user_id="alice.wang",
    feishu_open_id="ou_alice",
    wecom_user_id="alice.w",
    slack_user_id="U0ALICE",
    email="alice@example.com",
    git=("alice",),
)
# Someone whose mention outsiders' text must never produce.
BOSS = Person(
    id="boss",
    name="Boss",
    dingtalk_user_id="boss.id",
    feishu_open_id="ou_boss",
    wecom_user_id="boss.w",
    slack_user_id="U0BOSS",
    email="boss@example.com",
)
FEISHU_SECRET = "feishu-unit-test-signing-secret"
KINDS = ("dingtalk", "feishu", "wecom", "slack", "email")
HOSTILE = (
    "fix: [点此发布到生产](http://evil.example/x) <font color=red>urgent</font> ![x](http://evil.example/i.png) @all",
    "<!channel> <!here> @channel @here <!subteam^S123>",
    "<@U024BE7LH> <#C123|general> <http://evil.example|click me>",
    '<at user_id="all">所有人</at> <at id=all></at> <at id=ou_boss></at>',
    '<@all> <@boss.w> <font color="warning">x</font>',
    "<script>alert(1)</script> <img src=x onerror=alert(1)> <a href=http://evil.example>a</a>",
    "&lt;!channel&gt; &amp;lt;script&amp;gt; &#60;b&#62;",
    f"{mention(['boss'])} \ue000boss\ue001 forged mentions",
    "# heading\n- list\n> quote **bold** _it_ ~st~ `code` [[x]](javascript:alert(1))",
)


def people(person_id: str) -> Person | None:
    return {"alice": ALICE, "boss": BOSS}.get(person_id)


@pytest.fixture(scope="module")
def sink():
    """The fake Feishu, WeCom and Slack webhooks on one loopback port, as the local stack serves them."""
    import threading

    from local.fake_dingtalk import FakeDingTalk, make_server
    from local.fake_feishu import FakeFeishu
    from local.fake_slack import FakeSlack
    from local.fake_wecom import FakeWeCom

    fake = FakeDingTalk({}, echo=False)
    fake.feishu = FakeFeishu({"tok-feishu": ("team-feishu", FEISHU_SECRET)}, echo=False)
    fake.wecom = FakeWeCom({"key-wecom": ("team-wecom", "")}, echo=False)
    fake.slack = FakeSlack({"T1/B1/sek-slack": ("team-slack", "")}, echo=False)
    server = make_server(fake, "127.0.0.1", 0, channels=(fake.feishu, fake.wecom, fake.slack))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def robots(sink, aws) -> dict[str, Robot]:
    for channel in (sink.feishu, sink.wecom, sink.slack):
        channel.reset()
    return {
        "feishu": Robot("team-feishu", f"{sink.url}/open-apis/bot/v2/hook/tok-feishu", FEISHU_SECRET, 100, "feishu"),
        "wecom": Robot("team-wecom", f"{sink.url}/cgi-bin/webhook/send?key=key-wecom", "", 20, "wecom"),
        "slack": Robot("team-slack", f"{sink.url}/services/T1/B1/sek-slack", "", 60, "slack"),
        "email": Robot(
            "team-mail",
            "",
            "",
            60,
            "email",
            sender="ops@example.com",
            recipients=("team@example.com",),
            region="us-east-1",
        ),
    }


def card(release: bool = True, status: str = "success") -> Message:
    """A build card from notify.render, with a release button and alice @-mentioned as the author."""
    d = fixture_json("drone/build_success.json")
    project = Project("shop-api", "shop/shop-api", ("team",), "zh", None)
    build = dict(d["build"], status=status)
    links = [("staging", "https://opsbot.example/actions/tok3n.sig")] if release else []
    return render.build_message(project, d["repo"], build, d["system"], "success", ALICE, links)


def rendered_text(kind: str, body: dict) -> str:
    return json.dumps(body, ensure_ascii=False)


# --- signing ---------------------------------------------------------------------------------------------------


def test_feishu_sign_matches_the_known_answer_computed_with_openssl():
    vector = SIGNATURE_VECTORS["feishu_custom_bot"]
    assert feishu.sign(vector["timestamp"], vector["secret"]) == vector["sign_base64"]


def test_feishu_signs_in_the_body_with_a_timestamp_in_seconds(robots, sink):
    before = int(time.time())
    feishu.send(robots["feishu"], feishu.render(card(), people))
    (arrived,) = sink.feishu.accepted
    body = arrived["message"]
    assert before <= int(body["timestamp"]) <= int(time.time()) and len(body["timestamp"]) == 10  # seconds, not ms
    assert body["sign"] == feishu.sign(body["timestamp"], FEISHU_SECRET)


# --- one message, each channel's dialect -----------------------------------------------------------------------


def test_dingtalk_gets_an_action_card_with_the_release_button_and_the_author_named():
    body = dingtalk.render(card(), people)
    assert body["msgtype"] == "actionCard"
    assert body["actionCard"]["btns"] == [
        {"title": "发布到 staging", "actionURL": "https://opsbot.example/actions/tok3n.sig"}
    ]
    assert "**作者**: Alice Wang @alice.wang" in body["actionCard"]["text"]


def test_feishu_gets_an_interactive_card_with_a_url_button_and_an_at():
    body = feishu.render(card(), people)
    assert body["msg_type"] == "interactive"
    header, elements = body["card"]["header"], body["card"]["elements"]
    assert header["template"] == "green" and header["title"]["content"].startswith("✅ 构建成功 · shop-api #")
    text = elements[0]["text"]
    assert text["tag"] == "lark_md" and "**作者**: Alice Wang <at id=ou_alice></at>" in text["content"]
    assert "###" not in text["content"] and not text["content"].startswith("**✅")  # the header says it
    (button,) = elements[1]["actions"]
    assert button["tag"] == "button" and button["url"] == "https://opsbot.example/actions/tok3n.sig"
    assert button["text"] == {"tag": "plain_text", "content": "发布到 staging"}
    assert feishu.render(card(status="failure"), people)["card"]["header"]["template"] == "red"


def test_wecom_gets_markdown_with_the_buttons_as_links_and_a_userid_mention():
    body = wecom.render(card(), people)
    content = body["markdown"]["content"]
    assert body["msgtype"] == "markdown"
    assert "**作者**: Alice Wang <@alice.w>" in content
    assert "[发布到 staging](https://opsbot.example/actions/tok3n.sig)" in content


def test_slack_gets_verbatim_sections_a_url_button_and_a_member_mention():
    body = slack.render(card(), people)
    sections = [b for b in body["blocks"] if b["type"] == "section"]
    assert sections and all(s["text"]["type"] == "mrkdwn" and s["text"]["verbatim"] is True for s in sections)
    text = "\n".join(s["text"]["text"] for s in sections)
    assert "*作者*: Alice Wang <@U0ALICE>" in text and "*✅ 构建成功" in text
    assert "<https://gitlab.example.com/" in text and "|feat(order): add refund endpoint>" in text
    (actions,) = [b for b in body["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == "https://opsbot.example/actions/tok3n.sig"
    assert body["text"].startswith("✅ 构建成功 · shop-api #")


def test_email_gets_html_and_text_and_copies_the_mentioned():
    body = email.render(card(), people)
    assert body["subject"].startswith("✅ 构建成功 · shop-api #")
    assert '<a href="https://opsbot.example/actions/tok3n.sig"' in body["html"] and "<h3>" in body["html"]
    assert "发布到 staging: https://opsbot.example/actions/tok3n.sig" in body["text"]
    assert body["cc"] == ["alice@example.com"]


def test_a_reply_mentions_at_its_end_in_every_channel():
    reply = Message("deploy", ["### ✅ done", "", "shop-api #128 → staging"], mentions=Mentions.of(ALICE))
    assert dingtalk.render(reply, people)["markdown"]["text"].endswith("\n\n@alice.wang")
    assert feishu.render(reply, people)["card"]["elements"][0]["text"]["content"].endswith("\n\n<at id=ou_alice></at>")
    assert wecom.render(reply, people)["markdown"]["content"].endswith("\n\n<@alice.w>")
    assert slack.render(reply, people)["blocks"][0]["text"]["text"].endswith("\n\n<@U0ALICE>")
    assert email.render(reply, people)["cc"] == ["alice@example.com"]


def test_a_person_without_the_channels_id_is_named_not_mentioned():
    nobody = Person(id="nobody", name="Nobody")
    message = Message("t", ["**作者**: Nobody" + mention(["nobody"])], mentions=Mentions.of(nobody))

    def lookup(pid):
        return nobody

    assert dingtalk.render(message, lookup)["markdown"]["text"] == "**作者**: Nobody"
    assert wecom.render(message, lookup)["markdown"]["content"] == "**作者**: Nobody"
    assert slack.render(message, lookup)["blocks"][0]["text"]["text"] == "*作者*: Nobody"
    assert email.render(message, lookup)["cc"] == []


# --- outsiders' text stays text, in every dialect --------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("hostile", HOSTILE)
def test_outsiders_text_is_no_link_mention_tag_or_markup_in_any_channel(kind, hostile):
    ours = "https://opsbot.example/builds/1"
    message = Message(
        title=markup.plain(hostile, 80),
        lines=[
            f"### {markup.plain(hostile, 80)}",
            f"**提交**: [{markup.plain(hostile)}]({ours})",
            f"- {markup.plain(hostile)}",
            f"作者: {markup.plain(hostile, 60)}{mention(['alice'])}",
        ],
        buttons=[Button(markup.plain(hostile, 40), ours)],
        mentions=Mentions.of(ALICE),
    )
    body = adapters.ADAPTERS[kind].render(message, people)
    text = json.dumps(body, ensure_ascii=False)
    assert "://evil" not in text and "](http://evil" not in text
    for tag in ("<font", "<script", "<img", "<at user_id", "<at id=all", "<!channel", "<!here", "<!subteam", "<#C"):
        assert tag not in text, (kind, tag)
    # Mentions only where opsbot put them: alice, never boss (whose mention the hostile text tries to write, in
    # each dialect, and whose mention mark it tries to forge).
    for live in ("@boss.id", "<at id=ou_boss", "<@boss.w>", "<@U0BOSS>"):
        assert live not in text, (kind, live)
    assert "boss" not in json.dumps(body.get("at") or {}) and "boss@example.com" not in body.get("cc", [])
    if kind == "slack":
        links = re.findall(r"<([^>]*)>", "".join(b["text"]["text"] for b in body["blocks"] if b["type"] == "section"))
        assert links and all(link.startswith((ours, "@U0ALICE")) for link in links), links
    if kind == "email":
        assert re.findall(r"<a href=\"([^\"]*)\"", body["html"]) == [ours, ours]
        assert "<@" not in body["html"] and body["cc"] == ["alice@example.com"]
    if kind in ("feishu", "wecom", "dingtalk"):
        targets = re.findall(r"\]\(([^)]*)\)", text)
        assert set(targets) <= {ours}, targets
    if kind == "feishu":
        assert re.findall(r"<at id=([^>]*)>", text) == ["ou_alice"]
    if kind == "wecom":
        assert re.findall(r"<@([^>]*)>", text) == ["alice.w"]


def test_slack_escapes_ampersands_and_brackets_of_its_own_text_and_urls():
    message = Message("t", ["usage: deploy <project> & more", "[a|b](https://x.example/?a=1&b=2|3)"])
    text = slack.render(message, people)["blocks"][0]["text"]["text"]
    assert "deploy &lt;project&gt; &amp; more" in text
    assert "<https://x.example/?a=1&amp;b=2%7C3|a｜b>" in text


def test_html_escapes_everything_but_opsbots_own_markup():
    html = markdown.html_body('**a & b** "quoted" <i>\n- item `x<y`\n[l](https://x.example/?q="1")')
    assert "<strong>a &amp; b</strong> &quot;quoted&quot; &lt;i&gt;" in html
    assert "<li>item <code>x&lt;y</code></li>" in html
    assert '<a href="https://x.example/?q=&quot;1&quot;">l</a>' in html


# --- size: summarised or cut to fit, never refused -------------------------------------------------------------


def long_message(language: str = "zh") -> Message:
    lines = ["### 配置没有同步 · 0123abcd", ""]
    lines += [f"- [projects/p{i}.yaml:{i}](https://gitlab.example/b/{i}): " + "项目配置有错误" * 30 for i in range(300)]
    return Message("配置没有同步", lines, severity="failure", mentions=Mentions.of(ALICE), language=language)


def size_of(kind: str, body: dict) -> int:
    if kind == "wecom":
        return len(body["markdown"]["content"].encode())
    if kind == "slack":
        return sum(len(b["text"]["text"]) for b in body["blocks"] if b["type"] == "section")
    if kind == "email":
        return len(body["html"].encode()) + len(body["text"].encode())
    return len(encode(body)) + (feishu.SIGN_ROOM if kind == "feishu" else 0)


LIMITS = {
    "dingtalk": dingtalk.MAX_BYTES,
    "feishu": feishu.MAX_BYTES,
    "wecom": wecom.MAX_CONTENT_BYTES,
    "slack": slack.MAX_CHARS,
    "email": email.MAX_BYTES,
}


@pytest.mark.parametrize("kind", KINDS)
def test_an_over_size_message_is_summarised_within_the_channels_limit(kind):
    adapter = adapters.ADAPTERS[kind]
    message = long_message()
    assert not adapter.fits(message, people)
    body = adapter.render(message, people)
    assert size_of(kind, body) <= LIMITS[kind]
    text = json.dumps(body, ensure_ascii=False)
    hidden = int(re.search(r"还有 (\d+) 行，未显示", text).group(1))
    shown = len(re.findall(r"projects/p\d+\.yaml", text)) // (2 if kind == "email" else 1)
    assert 0 < shown and shown + hidden == 300
    assert "p0.yaml" in text  # the first lines are kept


def test_a_very_long_line_is_cut_between_tokens_never_inside_a_link():
    line = "前言 " + "很长的说明" * 100 + " [查看构建](https://drone.example.com/1) " + "尾" * 5000
    cut = markdown.cut_line(line, 300)
    assert len(cut) <= 300 and cut.endswith("…")
    assert "[查看" not in cut or "[查看构建](https://drone.example.com/1)" in cut
    kept = markdown.cut_line("x [link](https://a.example/" + "p" * 50 + ") and more text " * 3, 80)
    assert kept.count("[") == kept.count("](")


def test_slack_splits_its_text_into_sections_of_at_most_3000_characters():
    message = Message("t", ["a" * 1500 for _ in range(2)] + ["b" * 800])
    sections = [b for b in slack.render(message, people)["blocks"] if b["type"] == "section"]
    assert len(sections) == 2 and all(len(s["text"]["text"]) <= 3000 for s in sections)


# --- sending: each channel's answers -------------------------------------------------------------------------


def test_feishu_with_a_reset_secret_is_parked_naming_the_robot(robots, sink):
    rotated = Robot("team-feishu", robots["feishu"].webhook, "an-old-secret", 100, "feishu")
    with pytest.raises(PermanentFailure) as raised:
        feishu.send(rotated, feishu.render(card(), people))
    assert raised.value.reason.startswith("robot team-feishu: Feishu code 19021")
    assert sink.feishu.accepted == []


def test_feishu_over_five_a_second_is_retried_after_a_minute_and_counted(robots, sink, capsys):
    for _ in range(5):
        feishu.send(robots["feishu"], feishu.render(card(), people))
    capsys.readouterr()
    with pytest.raises(RetryLater) as raised:
        feishu.send(robots["feishu"], feishu.render(card(), people))
    assert raised.value.delay == feishu.TOO_FREQUENT_DELAY and "Feishu code 11232" in raised.value.reason
    counted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert [(c.get("Channel"), c.get("RateLimited")) for c in counted] == [("feishu", [1.0])]


@pytest.mark.parametrize("kind", ["feishu", "wecom", "slack"])
def test_a_peer_answering_5xx_is_retried_with_the_queues_backoff(robots, sink, kind):
    fake = getattr(sink, kind)
    key = next(iter(fake.robots))
    fake.scripted[key] = [503]
    adapter = adapters.ADAPTERS[kind]
    with pytest.raises(RetryLater) as raised:
        adapter.send(robots[kind], adapter.render(card(), people))
    assert raised.value.delay is None and raised.value.reason == f"robot {robots[kind].name}: HTTP 503"
    adapter.send(robots[kind], adapter.render(card(), people))
    assert len(fake.accepted) == 1


def test_wecom_with_a_deleted_key_is_parked_and_over_20_a_minute_is_retried(robots, sink):
    gone = Robot("team-wecom", robots["wecom"].webhook.replace("key-wecom", "key-gone"), "", 20, "wecom")
    with pytest.raises(PermanentFailure) as raised:
        wecom.send(gone, wecom.render(card(), people))
    assert raised.value.reason.startswith("robot team-wecom: WeCom errcode 93000 invalid webhook url")
    for _ in range(20):
        wecom.send(robots["wecom"], wecom.render(card(), people))
    with pytest.raises(RetryLater) as limited:
        wecom.send(robots["wecom"], wecom.render(card(), people))
    assert limited.value.delay == wecom.TOO_FREQUENT_DELAY and "45009" in limited.value.reason


def test_slack_429_is_retried_after_its_retry_after_and_a_dead_webhook_is_parked(robots, sink):
    slack.send(robots["slack"], slack.render(card(), people))
    with pytest.raises(RetryLater) as limited:
        slack.send(robots["slack"], slack.render(card(), people))
    assert limited.value.delay == 1  # Retry-After: 1
    regenerated = Robot("team-slack", robots["slack"].webhook.replace("sek-slack", "old-secret"), "", 60, "slack")
    with pytest.raises(PermanentFailure) as invalid:
        slack.send(regenerated, slack.render(card(), people))
    assert invalid.value.reason == "robot team-slack: Slack HTTP 403 invalid_token"
    unknown = Robot("team-slack", robots["slack"].webhook.replace("T1/B1", "T9/B9"), "", 60, "slack")
    with pytest.raises(PermanentFailure) as missing:
        slack.send(unknown, slack.render(card(), people))
    assert missing.value.reason == "robot team-slack: Slack HTTP 404 no_service"


def test_email_is_sent_through_ses_from_a_verified_identity(robots, aws):
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses import ses_backends

    boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress="ops@example.com")
    email.send(robots["email"], email.render(card(), people))
    (sent,) = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    assert sent.source == "ops@example.com" and sent.subject.startswith("✅ 构建成功 · shop-api #")
    assert sent.destinations == {"ToAddresses": ["team@example.com"], "CcAddresses": ["alice@example.com"]}


def test_email_from_an_identity_that_is_not_verified_is_parked_naming_the_robot(robots, aws):
    with pytest.raises(PermanentFailure) as raised:
        email.send(robots["email"], email.render(card(), people))
    assert raised.value.reason.startswith("robot team-mail: SES MessageRejected")


@pytest.mark.parametrize(
    "message, delay", [("Maximum sending rate exceeded.", None), ("Daily message quota exceeded.", email.QUOTA_DELAY)]
)
def test_ses_throttling_is_retried(robots, monkeypatch, message, delay):
    from botocore.exceptions import ClientError

    class Throttled:
        def send_email(self, **_):
            raise ClientError({"Error": {"Code": "Throttling", "Message": message}}, "SendEmail")

    monkeypatch.setattr(email, "client", lambda service, region=None: Throttled())
    with pytest.raises(RetryLater) as raised:
        email.send(robots["email"], email.render(card(), people))
    assert raised.value.delay == delay and raised.value.reason.startswith("robot team-mail: SES Throttling")


# --- budgets: each channel's windows -------------------------------------------------------------------------


def test_feishu_takes_five_a_second_and_a_hundred_a_minute(robots, aws):
    windows = feishu.windows(robots["feishu"])
    now = 1_732_521_600_000
    assert [budget.try_take_slot("f", windows, now + i) for i in range(6)] == [True] * 5 + [False]
    assert budget.read("f").seconds_until_slot(windows, now + 10) == 2  # the first leaves 1.2 s after it was sent
    # 0.3 s apart never fills a 1.2 s window; in under a minute, the 100th send fills the minute's.
    taken = sum(budget.try_take_slot("f", windows, now + 2_000 + 300 * i) for i in range(150))
    assert taken == 95  # 100 in the minute, the first 5 included


def test_slack_takes_one_a_second(robots, aws):
    now = 1_732_521_600_000
    windows = slack.windows(robots["slack"])
    assert budget.try_take_slot("slack", windows, now) and not budget.try_take_slot("slack", windows, now + 1_000)
    assert budget.try_take_slot("slack", windows, now + base.Window(1, slack.SECOND_MS).ms + 1)


def test_ses_takes_one_a_second_per_account_and_region_whichever_email_robot_sends(robots, aws):
    """SES limits the account's sending rate in a region: two e-mail robots sending 2 a second against a 1 a
    second account got `Throttling`. The second is one budget for every e-mail robot of the region."""
    from dataclasses import replace

    from opsbot.delivery.robot import _shared

    now = 1_732_521_600_000
    first, second = robots["email"], replace(robots["email"], name="other-mail", sender="other@example.com")
    elsewhere = replace(robots["email"], name="eu-mail", region="eu-west-1")
    email = adapters.ADAPTERS["email"]
    windows = email.windows(first)

    def take(robot, at):
        return budget.try_take_slot(robot.name, windows, at, shared=_shared(email, robot))

    assert take(first, now) and not take(second, now + 500)  # the account's second is taken
    assert take(elsewhere, now + 500)  # another region is another quota
    assert take(second, now + email.SECOND_MS + 1)
    # the robot whose send did not go out kept its own budget: only the shared second was short
    assert budget.read("other-mail").sends == [now + email.SECOND_MS + 1]
    assert budget.seconds_until_slot("team-mail", windows, now + email.SECOND_MS + 2, _shared(email, first)) == 2
