"""Hostile bodies for the fuzz tests: seeded structural mutations of real-shaped payloads, one generator per route.

The unit tests (tests/unit/test_fuzz_ingress.py) send most of the volume to the handlers in-process; the
integration tests (tests/integration/test_webhook_fuzz.py, test_chat_fuzz.py) send a smaller share over HTTP to
the local stack. Both draw their cases here, from a random.Random seeded with the run's seed and the test's name.
Each run takes a fresh seed, and every report and failure prints it: `FUZZ_SEED=<seed>` replays that run's cases.
Each loop has two sizes (`cases`): the everyday one that `make test` runs, and the full one that `make fuzz` runs
(FUZZ=full; CI runs it after `make test`).

Mutations: a field dropped, duplicated (a second key of the same name in the raw JSON), retyped, nested thousands
of levels deep, made a huge string or a huge list, given unicode oddities (lone surrogates, right-to-left and
zero-width marks, NUL, combining marks), extreme numbers, emptied; the kind or event changed; the whole body
replaced (not an object, truncated, invalid UTF-8). A share of cases is left unmutated, so that valid bodies
(and duplicates of them) go through too.
"""

from __future__ import annotations

import functools
import json
import os
import random
import secrets
import uuid
from pathlib import Path
from urllib.parse import urlencode

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_seed: int | None = None

ODD_TEXT = (
    "\ud800",  # lone surrogates: JSON can carry them as escapes, UTF-8 cannot
    "\udfff",
    "\ud83d",
    "\u202e",  # right-to-left override, and other bidi controls
    "\u2067",
    "\u200f",
    "\u200b",  # zero-width space, joiners, word joiner, byte order mark
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u0301\u0308\u0301",  # combining marks with nothing to combine with
    "\x00",
    "\x1b[31m",
    "\u2028",
    "\ufffd",
    "\U0010ffff",
    "𝕏👍🏻",
    "العربية",
    "部署 到 生产",
    "../../etc/passwd",
    "%s%n{0}",
)
NUMBERS = (0, -1, 1, 2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**30, 1.5, -0.0, 1e308, float("nan"))
DEPTHS = (8, 31, 32, 33, 100, 900, 5_000, 50_000)


def run_seed() -> int:
    """The run's seed: FUZZ_SEED when it is set (a replay), else a fresh one, the same for every test of the run."""
    global _seed
    if _seed is None:
        given = os.environ.get("FUZZ_SEED", "").strip()
        _seed = int(given) if given else secrets.randbelow(10**9)
    return _seed


def share_seed() -> str:
    """One seed for the whole run, pytest-xdist's workers included: the conftests call this in the main process
    before the workers start (they inherit FUZZ_SEED); the line for pytest's header."""
    os.environ["FUZZ_SEED"] = str(run_seed())
    size = "full (make fuzz)" if full_size() else "everyday (make test; make fuzz runs the full size)"
    return f"fuzz: seed {run_seed()} (FUZZ_SEED={run_seed()} replays it), {size}"


def full_size() -> bool:
    return os.environ.get("FUZZ", "") == "full"


def cases(everyday: int, full: int) -> int:
    """How many cases a fuzz loop sends: `everyday` in `make test`, `full` in `make fuzz` (FUZZ=full)."""
    return full if full_size() else everyday


def rng_for(test: str) -> random.Random:
    """The test's own random stream: the same cases whenever the run's seed is the same."""
    return random.Random(f"{run_seed()}:{test}")


def replay(test_path: str) -> str:
    return f"replay with FUZZ_SEED={run_seed()} python -m pytest -q {test_path}"


@functools.cache
def _fixture_text(relative: str) -> str:
    return (FIXTURES / relative).read_text(encoding="utf-8")


def fixture(relative: str) -> dict:
    """A fresh copy of a fixture, each call its own."""
    return json.loads(_fixture_text(relative))


def encode(document, ascii_only: bool = False) -> bytes:
    """JSON bytes as a sender would write them; a lone surrogate can only travel as an escape."""
    try:
        return json.dumps(document, ensure_ascii=ascii_only).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(document).encode("utf-8")


def _place(rng: random.Random) -> str:
    return f"FUZZ-PLACE-{rng.getrandbits(64):016x}"


class Mutator:
    """Structural mutations of a JSON object, biased towards the fields a route's parser reads (`hot` paths)."""

    KINDS = ("drop", "duplicate", "retype", "deep", "huge_string", "huge_list", "unicode", "number", "empty")
    WEIGHTS = (14, 8, 18, 8, 6, 6, 16, 10, 8)

    def __init__(self, rng: random.Random):
        self.rng = rng

    # values ------------------------------------------------------------------------------------------------
    def value(self, depth: int = 0):
        rng = self.rng
        choices = [
            lambda: None,
            lambda: rng.choice([True, False]),
            lambda: rng.choice(NUMBERS),
            lambda: rng.randint(-1000, 100_000),
            lambda: self.odd(rng.choice(["", "shop-api", "main", "success", "MergeRequest", "push", "text"])),
            lambda: "",
        ]
        if depth < 3:
            choices += [
                lambda: [self.value(depth + 1) for _ in range(rng.randint(0, 3))],
                lambda: {self.odd("k"): self.value(depth + 1) for _ in range(rng.randint(0, 3))},
            ]
        return rng.choice(choices)()

    def odd(self, text: str = "") -> str:
        """`text` with one to four oddities put in at random places."""
        chars = list(text)
        for _ in range(self.rng.randint(1, 4)):
            chars.insert(self.rng.randint(0, len(chars)), self.rng.choice(ODD_TEXT))
        return "".join(chars)

    def _other_type(self, current):
        for _ in range(20):
            candidate = self.value()
            if type(candidate) is not type(current):
                return candidate
        return None if current is not None else 0

    # where -------------------------------------------------------------------------------------------------
    @staticmethod
    def _slots(document: dict) -> list[tuple[object, object, tuple]]:
        """Every (container, key, path) of the document, nested ones included (of a long array, its first items)."""
        found, pending = [], [(document, ())]
        while pending:
            node, path = pending.pop()
            items = node.items() if isinstance(node, dict) else enumerate(node[:20])
            for key, child in items:
                found.append((node, key, path + (key,)))
                if isinstance(child, dict | list) and len(path) < 8:
                    pending.append((child, path + (key,)))
        return found

    def _pick(self, document: dict, hot: tuple[tuple, ...], protect: tuple[tuple, ...]):
        slots = [s for s in self._slots(document) if not any(s[2][: len(p)] == p for p in protect)]
        if not slots:
            return None
        if hot and self.rng.random() < 0.65:
            wanted = {h for h in hot}
            preferred = [s for s in slots if s[2] in wanted]
            if preferred:
                return self.rng.choice(preferred)
        return self.rng.choice(slots)

    # mutations ---------------------------------------------------------------------------------------------
    def mutate(self, document: dict, hot: tuple[tuple, ...] = (), protect: tuple[tuple, ...] = ()) -> tuple[str, bytes]:
        """`document` mutated (in place: give it a copy of its own) as the bytes to send, and the names of the
        mutations applied; nothing at or under a `protect` path changes."""
        rng = self.rng
        doc = document
        raw_edits: dict[str, bytes] = {}  # placeholder -> bytes: what json.dumps cannot write (deep, duplicate keys)
        applied = []
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
            slot = self._pick(doc, hot, protect)
            if slot is None:
                break
            container, key, _path = slot
            kind = rng.choices(self.KINDS, self.WEIGHTS)[0]
            current = container[key]
            if kind == "drop":
                del container[key]
            elif kind == "duplicate" and isinstance(container, dict):
                place = _place(rng)
                rest = dict(container)
                container.clear()
                if rng.random() < 0.5:  # the first or the last of the two keys: parsers keep the last
                    container[place] = self.value()
                    container.update(rest)
                else:
                    container.update(rest)
                    container[place] = self.value()
                raw_edits[json.dumps(place)] = json.dumps(key).encode()
            elif kind == "deep":
                place = _place(rng)
                container[key] = place
                depth = rng.choice(DEPTHS)
                inner = json.dumps(current if not isinstance(current, dict | list) else 1).encode()
                if rng.random() < 0.5:
                    raw_edits[json.dumps(place)] = b"[" * depth + inner + b"]" * depth
                else:
                    raw_edits[json.dumps(place)] = b'{"a":' * depth + inner + b"}" * depth
            elif kind == "huge_string":
                size = rng.choice([3_000, 40_000, 200_000, 260_000])
                container[key] = rng.choice(["x", "部署", "\u202e", "a\u0301"]) * (size // 2)
            elif kind == "huge_list":
                make = rng.choice([int, str, dict, list, lambda: "refs/heads/main", lambda: {"name": "scan"}])
                container[key] = [make() for _ in range(rng.choice([150, 1_000, 20_000]))]
            elif kind == "unicode":
                container[key] = self.odd(current if isinstance(current, str) else str(current))
            elif kind == "number":
                container[key] = rng.choice(NUMBERS)
            elif kind == "empty":
                container[key] = rng.choice(["", [], {}, None, 0, False])
            else:  # retype, and duplicate inside an array
                container[key] = self._other_type(current)
            applied.append(kind)
        raw = encode(doc, ascii_only=rng.random() < 0.2)
        for place, replacement in raw_edits.items():
            raw = raw.replace(place.encode(), replacement, 1)
        return "+".join(applied) or "none", raw

    def whole_body(self, raw: bytes) -> tuple[str, bytes]:
        """The body replaced as a whole: not an object, cut short, flipped bytes, invalid UTF-8, empty."""
        rng = self.rng
        kind = rng.choice(["not-object", "truncated", "bytes", "invalid-utf8", "empty", "bom", "deep-top"])
        if kind == "not-object":
            return kind, encode(rng.choice([[], [json.loads(raw)], "build", 128, None, True, 1e308]))
        if kind == "truncated":
            return kind, raw[: rng.randrange(1, max(2, len(raw)))]
        if kind == "bytes":
            body = bytearray(raw)
            for _ in range(rng.randint(1, 6)):
                body[rng.randrange(len(body))] = rng.randrange(256)
            return kind, bytes(body)
        if kind == "invalid-utf8":
            at = rng.randrange(len(raw))
            return kind, raw[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"]) + raw[at:]
        if kind == "bom":
            return kind, b"\xef\xbb\xbf" + raw
        if kind == "deep-top":
            depth = rng.choice(DEPTHS)
            return kind, b'{"a":' * depth + b"1" + b"}" * depth
        return kind, rng.choice([b"", b" ", b"{}", b"null"])


# --- Drone -----------------------------------------------------------------------------------------------------

DRONE_FIXTURES = ("build_failure", "build_success", "promote_success", "build_created", "build_running")
DRONE_HOT = (
    ("event",),
    ("repo",),
    ("repo", "slug"),
    ("repo", "link"),
    ("build",),
    ("build", "number"),
    ("build", "status"),
    ("build", "finished"),
    ("build", "started"),
    ("build", "event"),
    ("build", "source"),
    ("build", "target"),
    ("build", "after"),
    ("build", "message"),
    ("build", "author_login"),
    ("build", "deploy_to"),
    ("build", "stages"),
    ("build", "stages", 0),
    ("build", "stages", 0, "name"),
    ("build", "stages", 0, "status"),
    ("build", "stages", 0, "steps"),
    ("build", "stages", 0, "steps", 0, "status"),
    ("build", "stages", 0, "steps", 0, "name"),
    ("system",),
    ("system", "link"),
)
DRONE_EVENTS = ("build", "build", "build", "repo", "user", "deployment", "", "BUILD", None, "build\u200b")


def drone_case(rng: random.Random, mutator: Mutator, number: int, slugs: tuple[str, ...]) -> tuple[str, dict, bytes]:
    """(category, headers, body) of one Drone delivery: the X-Drone-Event header and the body to sign."""
    name = rng.choices(DRONE_FIXTURES, (5, 3, 1, 1, 1))[0]
    delivery = fixture(f"drone/{name}.json")
    delivery["build"]["number"] = number
    delivery["repo"]["slug"] = rng.choice(slugs)
    event = "build" if rng.random() < 0.85 else rng.choice(DRONE_EVENTS)
    headers = {} if event is None else {"X-Drone-Event": event}
    roll = rng.random()
    if roll < 0.1:
        return f"{name}:valid", headers, encode(delivery)
    if roll < 0.17:
        kind, body = mutator.whole_body(encode(delivery))
        return f"{name}:{kind}", headers, body
    kinds, body = mutator.mutate(delivery, DRONE_HOT)
    return f"{name}:{kinds}", headers, body


# --- GitLab ----------------------------------------------------------------------------------------------------

GITLAB_FIXTURES = {
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "merge_request": "Merge Request Hook",
    "note_merge_request": "Note Hook",
    "note_commit": "Note Hook",
    "pipeline": "Pipeline Hook",
}
GITLAB_HOT = (
    ("object_kind",),
    ("project",),
    ("project", "path_with_namespace"),
    ("project", "default_branch"),
    ("before",),
    ("after",),
    ("ref",),
    ("commits",),
    ("commits", 0),
    ("commits", 0, "id"),
    ("commits", 0, "added"),
    ("commits", 0, "modified"),
    ("total_commits_count",),
    ("user_username",),
    ("object_attributes",),
    ("object_attributes", "iid"),
    ("object_attributes", "id"),
    ("object_attributes", "action"),
    ("object_attributes", "noteable_type"),
    ("object_attributes", "oldrev"),
    ("object_attributes", "last_commit"),
    ("object_attributes", "last_commit", "id"),
    ("object_attributes", "first_contribution"),
    ("object_attributes", "ref"),
    ("object_attributes", "sha"),
    ("merge_request",),
    ("merge_request", "iid"),
)
GITLAB_OTHER_EVENTS = ("Issue Hook", "Job Hook", "Bogus Hook", "push hook", "", None, "Push Hook\u200b")
MERGE_REQUEST_ACTIONS = ("open", "reopen", "update", "close", "merge", "approved", "unapproval", "labeled", "")


def gitlab_case(rng: random.Random, mutator: Mutator, uuids: list[str]) -> tuple[str, dict, bytes]:
    """(category, headers, body) of one GitLab delivery: X-Gitlab-Event and delivery ids, and the body."""
    name = rng.choice(sorted(GITLAB_FIXTURES))
    hook = fixture(f"gitlab/{name}.json")
    event = GITLAB_FIXTURES[name]
    if rng.random() < 0.1:  # another kind than the body is, or one opsbot does not know
        event = rng.choice([*GITLAB_FIXTURES.values(), *GITLAB_OTHER_EVENTS])
    if name == "merge_request" and rng.random() < 0.4:
        hook["object_attributes"]["action"] = rng.choice(MERGE_REQUEST_ACTIONS)
    if name.startswith("note") and rng.random() < 0.2:
        hook["object_attributes"]["action"] = rng.choice(["update", "delete", ""])
    if rng.random() < 0.05 and uuids:
        delivery = rng.choice(uuids)  # GitLab's retry of an earlier delivery
    else:
        delivery = str(uuid.UUID(int=rng.getrandbits(128)))
        uuids.append(delivery)
    headers = {"X-Gitlab-Event-UUID": delivery} if rng.random() < 0.9 else {}
    if event is not None:
        headers["X-Gitlab-Event"] = event
    roll = rng.random()
    if roll < 0.15:
        return f"{name}:valid", headers, encode(hook)
    if roll < 0.22:
        kind, body = mutator.whole_body(encode(hook))
        return f"{name}:{kind}", headers, body
    kinds, body = mutator.mutate(hook, GITLAB_HOT)
    return f"{name}:{kinds}", headers, body


# --- DingTalk --------------------------------------------------------------------------------------------------

# Reads answered from config and the audit log: the ones that ask Drone are test_chat_fuzz.py's, over HTTP.
CHAT_READS = (
    "whoami",
    "help",
    "帮助 部署",
    "faq",
    "faq vpn",
    "history",
    "config shop-api",
    "config history",
    "deploy",  # a usage error: answered at once
    "statsu shop-api",  # "did you mean"
    "怎么申请 VPN",
    "",
)
CHAT_ACTS = ("deploy shop-api 128 to staging", "restart shop-api 127", "rollback shop-api staging", "approve 3f9a2c1b")
SESSION = (("sessionWebhook",), ("sessionWebhookExpiredTime",))
DINGTALK_HOT = (
    ("msgId",),
    ("msgtype",),
    ("text",),
    ("text", "content"),
    ("senderStaffId",),
    ("senderId",),
    ("senderNick",),
    ("createAt",),
    ("conversationId",),
    ("conversationTitle",),
    ("sessionWebhook",),
    ("sessionWebhookExpiredTime",),
    ("robotCode",),
    ("atUsers",),
)


def dingtalk_case(rng: random.Random, mutator: Mutator, make_callback, people: tuple[str, ...]) -> tuple[str, bytes]:
    """(category, body) of one DingTalk callback; `make_callback(text, person)` builds the real-shaped body
    (with a session webhook, so that acts answer in their conversation)."""
    act = rng.random() < 0.05
    text = rng.choice(CHAT_ACTS if act else CHAT_READS)
    if not act and rng.random() < 0.2:
        text = mutator.odd(text)
    body = make_callback(text, rng.choice(people))
    body["msgId"] = f"fuzz-{uuid.UUID(int=rng.getrandbits(128)).hex}"
    if rng.random() < 0.05:
        body["msgtype"] = rng.choice(["picture", "richText", "file", "TEXT", ""])
    roll = rng.random()
    if roll < 0.12:
        return "valid-act" if act else "valid", encode(body)
    if roll < 0.19 and not act:
        return mutator.whole_body(encode(body))
    # an act's result goes back through its session webhook: one DingTalk does not know would park the job (as
    # DingTalk refusing a message does), which is not what this fuzz looks for
    kinds, raw = mutator.mutate(body, DINGTALK_HOT, protect=SESSION if act else ())
    return ("act:" if act else "") + kinds, raw


# --- Feishu ----------------------------------------------------------------------------------------------------

FEISHU_TOKEN = (("header", "token"),)
FEISHU_HOT = (
    ("schema",),
    ("type",),
    ("header",),
    ("header", "event_type"),
    ("header", "app_id"),
    ("event",),
    ("event", "sender"),
    ("event", "message"),
    ("event", "message", "message_id"),
    ("event", "message", "message_type"),
    ("event", "message", "chat_type"),
    ("event", "message", "content"),
    ("event", "message", "mentions"),
)


def feishu_case(rng: random.Random, mutator: Mutator, make_event, people: tuple[str, ...]) -> tuple[str, bytes]:
    """(category, body) of one Feishu event callback; `make_event(text, open_id)` has the fake Feishu keep the
    message and returns the event it would post, with the verification token in. The token itself is kept, so that
    the body's shape is what is tried (a wrong token is test_feishu_chat.py's)."""
    return chat_event_case(rng, mutator, make_event, people, FEISHU_HOT, FEISHU_TOKEN)


def chat_event_case(rng, mutator: Mutator, make_event, people, hot, protect) -> tuple[str, bytes]:
    """(category, body) of one JSON chat event: mostly reads, some acts, some odd texts; valid, broken whole, or
    mutated at `hot` paths with `protect`'s kept."""
    act = rng.random() < 0.05
    text = rng.choice(CHAT_ACTS if act else CHAT_READS)
    if not act and rng.random() < 0.2:
        text = mutator.odd(text)
    body = make_event(text, rng.choice(people))
    roll = rng.random()
    if roll < 0.12:
        return "valid-act" if act else "valid", encode(body)
    if roll < 0.19 and not act:
        return mutator.whole_body(encode(body))
    kinds, raw = mutator.mutate(body, hot, protect=protect)
    return ("act:" if act else "") + kinds, raw


# --- Slack's button presses ---------------------------------------------------------------------------------------

# The response_url is kept: one that is not the fake Slack's is refused at ingress (test_slack_buttons.py), and one
# under its prefix that Slack never issued cannot take an answer, as with a sessionWebhook DingTalk did not issue.
SLACK_KEPT = (("response_url",),)
SLACK_HOT = (
    ("type",),
    ("api_app_id",),
    ("trigger_id",),
    ("user",),
    ("user", "id"),
    ("user", "username"),
    ("channel",),
    ("channel", "id"),
    ("actions",),
    ("actions", 0),
    ("actions", 0, "action_id"),
    ("actions", 0, "value"),
    ("actions", 0, "action_ts"),
)


def slack_case(rng: random.Random, mutator: Mutator, make_press, people: tuple[str, ...]) -> tuple[str, bytes]:
    """(category, form body) of one press of a button on opsbot's Slack message; `make_press(command, user)` has the
    fake Slack make the press's payload (a dict, its button's value signed by opsbot). The payload is mutated and
    then form-encoded, so the signature (made by the caller over these bytes) is always good: the shape is tried."""
    from urllib.parse import urlencode

    act = rng.random() < 0.05
    command = rng.choice(CHAT_ACTS if act else CHAT_READS)
    payload = make_press(command, rng.choice(people))
    roll = rng.random()
    if roll < 0.12:
        category, raw = ("valid-act" if act else "valid"), encode(payload)
    elif roll < 0.19 and not act:
        category, raw = mutator.whole_body(encode(payload))
    else:
        kinds, raw = mutator.mutate(payload, SLACK_HOT, protect=SLACK_KEPT)
        category = ("act:" if act else "") + kinds
    if rng.random() < 0.05:  # the form around it, broken
        return "form", rng.choice([b"", b"payload", b"payload=%ZZ", b"payload=1&payload=2", raw])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return category + ":bytes", b"payload=" + raw
    return category, urlencode({"payload": text}).encode()


# --- Slack's Events API ------------------------------------------------------------------------------------------

SLACK_EVENT_HOT = (
    ("type",),
    ("api_app_id",),
    ("event_id",),
    ("authorizations",),
    ("authorizations", 0),
    ("authorizations", 0, "user_id"),
    ("event",),
    ("event", "type"),
    ("event", "user"),
    ("event", "channel"),
    ("event", "channel_type"),
    ("event", "text"),
    ("event", "ts"),
    ("event", "thread_ts"),
    ("event", "subtype"),
    ("event", "bot_id"),
)


# The channel is kept: a signed event names a channel Slack has, and one the bot is not in is refused by Slack's
# Web API (channel_not_found, test_slack_events.py), which parks the reply naming it.
SLACK_EVENT_KEPT = (("event", "channel"),)


def slack_event_case(rng: random.Random, mutator: Mutator, make_event, people: tuple[str, ...]) -> tuple[str, bytes]:
    """(category, JSON body) of one Events API request; `make_event(text, user)` has the fake Slack build the
    event_callback for a person's @-mention (or direct message). The caller signs the bytes, so the shape is tried."""
    return chat_event_case(rng, mutator, make_event, people, SLACK_EVENT_HOT, SLACK_EVENT_KEPT)


# --- the release link's form -----------------------------------------------------------------------------------

FORM_MUTATIONS = (
    "valid",
    "drop",
    "duplicate",
    "unknown-field",
    "retype",
    "huge",
    "unicode",
    "invalid-utf8",
    "garbage",
    "content-type",
    "base64",
    "empty",
)


def form_case(rng: random.Random, mutator: Mutator, fields: dict[str, str]) -> tuple[str, str, str | None, bool]:
    """(category, content type, body, is_base64) of one POST to /actions/{token}, from the valid `fields` of a
    signed-in confirmation form."""
    kind = rng.choices(FORM_MUTATIONS, (3, 10, 8, 8, 12, 6, 14, 6, 8, 6, 6, 6))[0]
    form = dict(fields)
    content_type = "application/x-www-form-urlencoded"
    name = rng.choice(sorted(form))
    if kind == "drop":
        del form[name]
    elif kind == "retype":
        form[name] = rng.choice(["", "1e3", "-1", "NaN", "[]", "{}", "null", "true", "0x10", "١٢٣", str(2**70), " 1"])
    elif kind == "huge":
        form[name] = "x" * rng.choice([100, 3_000, 5_000, 20_000])
    elif kind == "unicode":
        form[name] = mutator.odd(form[name]).replace("\ud800", "").replace("\udfff", "").replace("\ud83d", "")
    elif kind == "unknown-field":
        form[rng.choice(["user2", "redirect", "_csrf", "ticket ", "USER", ""])] = "x"
    body = urlencode(form)
    if kind == "duplicate":
        body += "&" + urlencode({name: rng.choice([form[name], "other"])})
    elif kind == "invalid-utf8":
        body += "&nick=" + rng.choice(["%FF", "%ED%A0%80", "%C3%28", "%E2%82"])
    elif kind == "garbage":
        body = rng.choice(
            [body.replace("=", "", 1), body + "&&", body.replace("&", ";"), "=&=", "%", "a" * 50, body + "é"]
        )
    elif kind == "content-type":
        content_type = rng.choice(["text/plain", "application/json", "multipart/form-data; boundary=x", ""])
    elif kind == "empty":
        body = ""
    if kind == "base64":
        import base64

        raw = rng.choice([body.encode(), b"\xff\xfe" + body.encode(), b"!!!"])
        return kind, content_type, base64.b64encode(raw).decode() if raw != b"!!!" else "!!!not base64", True
    return kind, content_type, body, False
