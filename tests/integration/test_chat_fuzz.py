"""Fuzzing the DingTalk callback: random and mutated bodies (1,000 in `make test`, 2,000 in `make fuzz`), each with
valid signature headers.

Whatever a signed callback carries, opsbot answers 2xx or 4xx, never 5xx (a 5xx makes DingTalk retry the
same body, and says "opsbot is broken" where "your message is wrong" is meant). Afterwards the stack is still
healthy, the work queue drains, every act it acknowledged has its result in its conversation, and nothing
spilled onto the shop-backend robot (whose 20/min budget the other integration tests share).

Bodies come from local.chat.callback (the realistic shape), with command words and arguments drawn from the
registry's names and aliases. About 80% are reads or unknown words; acts always keep their sessionWebhook,
so their results go to the conversation on the local sink, which is not rate limited.

The cases are drawn from the run's seed (tests/fuzz_support.py): each run takes a fresh one and the report
prints it; FUZZ_SEED=<seed> replays it. The unit tests send 1,000 callbacks in-process (10,000 in `make fuzz`:
tests/unit/test_fuzz_ingress.py).

The first tests are the failures the fuzzing found, each pinned down on its own.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
import uuid
from collections import Counter, defaultdict

import pytest
from fuzz_support import cases, replay, rng_for, run_seed

from local.chat import callback

CASES = cases(1_000, 2_000)
SHOP_TOKEN = "local-shop-backend"
SESSION_FIELDS = ("sessionWebhook", "sessionWebhookExpiredTime")


def _registry():
    from opsbot.chat.commands import all_commands

    return all_commands()


def _is_act(body) -> bool:
    """Whether opsbot will treat this body as an acting command: the same reading of the text as ingress's."""
    from opsbot.chat.parser import parse

    if not isinstance(body, dict):
        return False
    text = body.get("text")
    content = text.get("content") if isinstance(text, dict) else None
    registry = _registry()
    invocation = parse(content if isinstance(content, str) else "", registry.names())
    command = registry.find(invocation.word) if invocation.word else None
    return bool(command and command.acts)


def _encode(body) -> bytes:
    try:
        return json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate: JSON can still carry it, as an escape
        return json.dumps(body).encode()


# --- the findings, one by one ------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["msgId", "text"])
def test_a_lone_surrogate_is_refused_with_a_4xx(stack, where):
    body = callback("status shop-api", stack.person("alice"), stack.sink)
    if where == "msgId":
        body["msgId"] += "\ud800"
    else:
        body["text"]["content"] = " faq vpn \udc00"
    response = stack.post_chat(json.dumps(body).encode())  # valid JSON: "\ud800" is a legal escape
    assert 400 <= response.status_code < 500, (response.status_code, response.text)


@pytest.mark.parametrize("text", ["builds shop-api ¹²", "history ²", "restart shop-api ³", "重试 shop-api ¹²⁸"])
def test_superscript_digits_in_a_number_argument_are_a_usage_error(stack, text):
    # "²".isdigit() is True but int("²") raises: the reply should say the argument is not a number
    response, _ = stack.chat(text, as_person="bob")
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.json()["msgtype"] == "markdown"


def test_a_deploy_of_a_superscript_build_number_is_answered_in_the_conversation(stack):
    response, body = stack.chat("deploy shop-api ¹²⁸ to staging")
    assert response.status_code == 200 and response.json()["markdown"]["title"] == "ok"
    # the worker should answer (a refusal: no such build) rather than crash until the job is dead-lettered
    replies = stack.wait_for(lambda: stack.session_messages(body["sessionWebhook"]), timeout=10)
    assert replies, "no reply in the conversation: the job crashed in the worker (see the stack log)"


def test_a_far_future_create_at_does_not_break_history(stack):
    # a createAt in the year ~33658 is stored as the audit record's time; `history` then renders it
    response, _ = stack.chat("whoami", body_override={"createAt": 10**15})
    assert response.status_code == 200, response.text
    history, _ = stack.chat("history")
    assert history.status_code == 200, (history.status_code, history.text)


# --- the fuzzer ----------------------------------------------------------------------------------------


class Fuzzer:
    def __init__(self, stack, rng: random.Random):
        self.stack, self.rng = stack, rng
        registry = _registry()
        self.words = registry.names()
        self.read_words = [w for w in self.words if not registry.find(w).acts]
        self.act_words = [w for w in self.words if registry.find(w).acts]
        self.people = [stack.person(p) for p in ("alice", "bob", "carol", "xiaoming")] + [None]
        self.sent: list[dict] = []  # dict bodies sent, for replays

    # random pieces ------------------------------------------------------------------------------------
    def unicode_text(self, n: int | None = None) -> str:
        rng = self.rng
        pools = [
            string.ascii_letters + string.digits + string.punctuation + " ",
            "部署回滚状态构建帮助测试环境生产发布审批批准拒绝历史配置我是谁常见问题怎么申请",
            "，：；、。！？“”‘’（）\u3000",
            "🚀✅❌🔐⛔💬👍🏻",
            "\x00\x01\x07\x08\t\n\r\x1b\x7f\u200b\u200e\u202e\u2028\u2029\ufeff\ufffd",
            "¹²³⁴⁵⁶⁷⁸⁹⁰０１２３４５６７８９٣۵",
            "éàüñçØßΩЖ한국語\u0301\u0308",
        ]
        chars = []
        for _ in range(n if n is not None else rng.randint(0, 24)):
            if rng.random() < 0.01:
                chars.append(chr(rng.randint(0xD800, 0xDFFF)))  # a lone surrogate, as a JSON escape
            elif rng.random() < 0.05:
                chars.append(chr(rng.randint(0x20, 0x10FFFF)) if rng.random() < 0.5 else chr(rng.randint(0, 0x2FFF)))
            else:
                chars.append(rng.choice(rng.choice(pools)))
        return "".join(c for c in chars if not 0xD800 <= ord(c) <= 0xDFFF or rng.random() < 0.5)

    def json_value(self, depth: int = 0):
        rng = self.rng
        kind = rng.randrange(11 if depth < 3 else 8)
        return [
            lambda: None,
            lambda: rng.choice([True, False]),
            lambda: rng.randint(-(2**70), 2**70),
            lambda: rng.choice([0, -1, 1, 2**31, 2**63, 10**15, 10**30, -(10**30)]),
            lambda: rng.choice([0.5, -1e308, 1e308, 1e-300, 3.14]),
            lambda: self.unicode_text(),
            lambda: "",
            lambda: rng.choice(self.words) + " " + self.unicode_text(6),
            lambda: [self.json_value(depth + 1) for _ in range(rng.randint(0, 4))],
            lambda: {self.unicode_text(5): self.json_value(depth + 1) for _ in range(rng.randint(0, 4))},
            lambda: {"content": self.json_value(depth + 1)},
        ][kind]()

    def argument(self) -> str:
        rng = self.rng
        return rng.choice(
            [
                lambda: rng.choice(
                    ["shop-api", "shop-web", "burst-api", "flaky-api", "nope", "shop/shop-api", "SHOP-API"]
                ),
                lambda: rng.choice(
                    [
                        "128",
                        "#128",
                        "127",
                        "123",
                        "0",
                        "-1",
                        "999999999",
                        "1" * 12,
                        "１２８",
                        "12a",
                        "²",
                        "٣",
                        "1e3",
                        "0x80",
                    ]
                ),
                lambda: rng.choice(["staging", "production", "prod", "STAGING", "测试", "staging;rm", "../staging"]),
                lambda: rng.choice(["to", "到", "至", "into", "main", "develop", "feature/refund", "release/*"]),
                lambda: "".join(rng.choice("0123456789abcdef") for _ in range(8)),
                lambda: rng.choice(
                    [
                        '"shop api"',
                        "'unbalanced",
                        "“shop-api”",
                        "‘128’",
                        "shop-api，128：staging",
                        "（staging）",
                        '""',
                        "\\",
                        "`rm -rf`",
                        "$(id)",
                        "%s%n",
                        "{0}",
                        "<b>x</b>",
                    ]
                ),
                lambda: rng.choice(["@opsbot", "@王小明", "@all", "@", "@@"]),
                lambda: self.unicode_text(rng.randint(1, 12)),
                lambda: "x" * rng.choice([100, 1000, 5000]),
            ]
        )()

    def act_arguments(self, command: str) -> list[str]:
        """Arguments shaped the way the act takes them, so that it gets past binding to the worker."""
        rng = self.rng
        project = rng.choice(["shop-api", "shop-api", "shop-web", "burst-api", "nope"])
        number = rng.choice(["128", "127", "123", "#128", "120", "999999", "１２８", "²", "42"])
        env = rng.choice(["staging", "staging", "production", "qa"])
        if command == "deploy":
            return (
                [project, rng.choice([number, "main", "develop", "feature/refund"])]
                + rng.choice([[], ["to"], ["到"]])
                + [env]
            )
        if command == "rollback":
            return [project, env] + rng.choice([[], [number]])
        if command == "restart":
            return [project, number]
        return [rng.choice(["".join(rng.choice("0123456789abcdef") for _ in range(8)), "ABCDEF12", "x"])]

    def command_text(self, act: bool) -> str:
        rng = self.rng
        if act:
            word = rng.choice(self.act_words)
        else:
            word = rng.choice(
                [
                    lambda: rng.choice(self.read_words),
                    lambda: self._typo(rng.choice(self.words)),
                    lambda: rng.choice(
                        [
                            "vpn 怎么连",
                            "staging 地址",
                            "今天能上线吗",
                            "what is this",
                            "怎么办",
                            "hello",
                            "生产发布窗口",
                            "？？？",
                            "...",
                        ]
                    ),
                    lambda: self.unicode_text(rng.randint(1, 10)).replace(" ", ""),
                    lambda: "",
                ]
            )()
        if act and rng.random() < 0.6:
            words = [word] + self.act_arguments(_registry().find(word).name)
        else:
            words = [word] + [self.argument() for _ in range(rng.choice([0, 1, 2, 2, 3, 3, 4, 6, 25]))]
        separators = [" ", " ", " ", "\u3000", "  ", "，", "\t", "\n"]
        text = words[0]
        for w in words[1:]:
            text += rng.choice(separators) + w
        if rng.random() < 0.3:
            text = "@opsbot " + text
        if rng.random() < 0.1 and words[1:] and re.search(r"[\u4e00-\u9fff]", word):
            text = word + words[1] + " " + " ".join(words[2:])  # 部署shop-api …: glued to its argument
        return text

    def _typo(self, word: str) -> str:
        rng = self.rng
        if len(word) < 2:
            return word + rng.choice(string.ascii_lowercase)
        i = rng.randrange(len(word) - 1)
        return rng.choice(
            [
                word[:i] + word[i + 1] + word[i] + word[i + 2 :],
                word[:i] + word[i + 1 :],
                word[:i] + rng.choice(string.ascii_lowercase) + word[i:],
                word.upper(),
            ]
        )

    def body(self, act: bool) -> dict:
        body = callback(self.command_text(act), self.rng.choice(self.people), self.stack.sink)
        body["msgId"] = f"fuzz-{uuid.UUID(int=self.rng.getrandbits(128)).hex}"
        return body

    # one case -----------------------------------------------------------------------------------------
    def case(self) -> tuple[str, bytes, dict | None]:
        """(category, raw body, the dict it was made from if it was sent as a dict)."""
        rng = self.rng
        category = rng.choices(
            ["text", "types", "missing", "msgtype", "replay", "structure", "bytes", "invalid-utf8", "huge"],
            weights=[50, 15, 6, 5, 5, 5, 7, 5, 2],
        )[0]
        act = rng.random() < 0.2
        if category == "replay" and self.sent:
            body = rng.choice(self.sent)
            return category, _encode(body), body
        body = self.body(act and category in ("text", "types", "missing", "replay"))
        session = {k: body[k] for k in SESSION_FIELDS}
        if category == "types":
            for _ in range(rng.randint(1, 3)):
                key = rng.choice([*body, "text.content", "text.content", "unknownField"])
                if key == "text.content" and isinstance(body.get("text"), dict):
                    body["text"]["content"] = self.json_value()
                else:
                    body[key] = self.json_value()
        elif category == "missing":
            for key in rng.sample(sorted(body), rng.randint(1, 3)):
                body.pop(key)
        elif category == "msgtype":
            body["msgtype"] = rng.choice(
                ["picture", "richText", "audio", "file", "markdown", "TEXT", "", None, 7, ["text"], {"text": 1}]
            )
            if rng.random() < 0.5:
                body.pop("text")
                body[rng.choice(["content", "picture", "richText"])] = self.json_value()
        elif category == "structure":
            depth = rng.choice([50, 500, 5000, 50000])
            raw = rng.choice(
                [
                    lambda: json.dumps(rng.choice([[], [body], "status shop-api", 128, None, True, 1e308])).encode(),
                    lambda: b'{"msgId":"deep","text":{"content":' + b"[" * depth + b"]" * depth + b"}}",
                    lambda: b'{"msgId":"deep","x":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}",
                    lambda: b"[" * depth + b"]" * depth,
                    lambda: b"",
                    lambda: b"   ",
                    lambda: b"\xef\xbb\xbf" + _encode(body),  # a UTF-8 byte order mark
                ]
            )()
            return category, raw, None
        elif category in ("bytes", "invalid-utf8"):
            if _is_act(body):  # a broken act could lose its session and post to the group robot
                body["text"]["content"] = " " + rng.choice(self.read_words)
            raw = bytearray(_encode(body))
            if category == "bytes":
                for _ in range(rng.randint(1, 6)):
                    position = rng.randrange(len(raw))
                    action = rng.randrange(3)
                    if action == 0:
                        raw[position] = rng.randrange(256)
                    elif action == 1:
                        raw.insert(position, rng.randrange(256))
                    else:
                        del raw[position]
            else:
                marker = raw.find(b'"content": "') + len(b'"content": "')
                raw[marker:marker] = rng.choice(
                    [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\xbc", b"\x80\x80", b"\xe2\x82"]
                )
            return category, bytes(raw), None
        elif category == "huge":
            body["text"]["content"] = (
                " " + rng.choice(self.read_words + ["faq"]) + " " + "测试 staging " * (rng.choice([2000, 10000, 30000]))
            )
        if _is_act(body):  # an act's result goes to its conversation, never to the group robot
            body.update(session)
        self.sent.append(body)
        return category, _encode(body), body


def test_mutated_callbacks_never_get_a_5xx(stack):
    rng = rng_for("http-dingtalk")  # the run's seed: FUZZ_SEED=<seed> replays it
    fuzzer = Fuzzer(stack, rng)
    log_offset = len(stack.log_text())
    robot_before = len(stack.messages(SHOP_TOKEN))
    statuses: Counter = Counter()
    by_category: dict[str, Counter] = defaultdict(Counter)
    server_errors: list[tuple] = []
    acked: list[dict] = []  # acts acknowledged with "ok": each must get its result in its conversation
    started = time.monotonic()

    for i in range(CASES):
        category, raw, body = fuzzer.case()
        response = stack.post("/webhooks/dingtalk", raw)
        statuses[response.status_code] += 1
        by_category[category][response.status_code] += 1
        if response.status_code >= 500:
            server_errors.append((i, category, response.status_code, raw[:160]))
        assert "Traceback" not in response.text
        if response.status_code == 200 and body is not None and _is_act(body):
            answer = response.json()
            if answer.get("msgtype") == "markdown" and answer["markdown"]["title"] == "ok":
                acked.append(body)
    sent_seconds = time.monotonic() - started

    # the worker gets through every act it was given
    drained = stack.wait_for(lambda: stack.queue_depth() == 0, timeout=60, interval=0.5)
    drain_seconds = time.monotonic() - started - sent_seconds
    sessions = defaultdict(list)
    for message in stack.messages():
        sessions[message["access_token"]].append(message)
    unanswered = [
        b["text"]["content"] for b in acked if len(sessions[f"session:{b['sessionWebhook'].split('session=')[1]}"]) != 1
    ]
    # chat jobs that ended in the DLQ (the fuzz's, and the superscript deploy's above): take them out, so that
    # the tests that look for their own parked jobs are not left paging through these
    parked = [
        job
        for job in stack.take_dead_letters(lambda job: job.get("kind") == "chat.command")
        if str(job["payload"]["message"].get("msgId", "")).startswith("fuzz-")
    ]

    # the stack is still healthy and still answers
    health = stack.http.get(stack.api + "/_local/health", timeout=5)
    after, _ = stack.chat("status shop-api")
    log = stack.log_text()[log_offset:]
    crashes = log.count("crashed:")
    ingress_failures = log.count('"message":"ingress failed"')
    robot_after = len(stack.messages(SHOP_TOKEN))

    report = (
        f"seed {run_seed()} ({replay('tests/integration/test_chat_fuzz.py')}): "
        f"{CASES} callbacks in {sent_seconds:.1f}s (+{drain_seconds:.1f}s for the queue to drain): "
        f"status counts {dict(sorted(statuses.items()))}; per category "
        + "; ".join(f"{c} {dict(sorted(n.items()))}" for c, n in sorted(by_category.items()))
        + f"; {len(acked)} acts acknowledged, {len(unanswered)} without exactly one reply, "
        f"{len(parked)} dead-lettered; {crashes} handler crashes and {ingress_failures} 'ingress failed' "
        f"in the log"
    )
    print("\n" + report)
    for error in server_errors[:15]:
        print("  5xx:", error)
    assert health.status_code == 200 and health.json() == {"ok": True}
    assert after.status_code == 200 and after.json()["msgtype"] == "markdown", after.text
    assert robot_after == robot_before, "fuzzed acts spilled onto the shop-backend robot"
    assert drained, "the work queue did not drain"
    assert crashes == 0, report
    assert not server_errors, f"{len(server_errors)} responses were 5xx, first {server_errors[:5]}\n{report}"
    assert not unanswered, f"acts without exactly one reply: {unanswered[:10]}\n{report}"
    assert not parked, f"{len(parked)} fuzzed jobs ended in the DLQ\n{report}"
    assert sum(statuses.values()) == CASES and all(200 <= s < 500 for s in statuses)
