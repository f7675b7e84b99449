"""opsbot's metrics: the EMF lines `metrics.count` writes, that it never fails a caller, and that each emission
point counts what the README's "Operate" section says it counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from unit_support import drone_event, fixture_bytes, sqs_event

from opsbot import metrics
from opsbot.channels import dingtalk as robot_api
from opsbot.channels import http as channel_http
from opsbot.delivery import budget
from opsbot.ingress import accept
from opsbot.jobs import queue, registry
from opsbot.jobs.model import Job, PermanentFailure, RetryLater


def emitted(capsys) -> list[dict]:
    """Each EMF line written to stdout since the last call: its namespace, dimension names, metric and value."""
    found = []
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        (dimension_names,) = directive["Dimensions"]
        (definition,) = directive["Metrics"]
        found.append(
            {
                "namespace": directive["Namespace"],
                "name": definition["Name"],
                "unit": definition["Unit"],
                "value": document[definition["Name"]],
                "dimensions": {name: document[name] for name in dimension_names},
            }
        )
    return found


def counted(capsys) -> list[tuple[str, dict]]:
    """(metric, its dimensions other than service and Stage), in the order they were written."""
    return [
        (m["name"], {k: v for k, v in m["dimensions"].items() if k not in ("service", "Stage")})
        for m in emitted(capsys)
    ]


# --- count ---------------------------------------------------------------------------------------------------


def test_count_writes_one_emf_line_with_its_own_dimensions(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "opsbot")
    metrics.count(metrics.JOBS_QUEUED, Kind="drone.build_finished")
    metrics.count(metrics.DIGEST_FOLDS, value=3)

    assert emitted(capsys) == [
        {
            "namespace": "opsbot",
            "name": "JobsQueued",
            "unit": "Count",
            "value": [1.0],
            "dimensions": {"Stage": "local", "Kind": "drone.build_finished", "service": "opsbot"},
        },
        # The second count does not inherit the first one's Kind: each count is flushed on its own.
        {
            "namespace": "opsbot",
            "name": "DigestFolds",
            "unit": "Count",
            "value": [3.0],
            "dimensions": {"Stage": "local", "service": "opsbot"},
        },
    ]


def test_count_uses_the_namespace_the_template_sets_and_opsbot_without_it(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "opsbot-elsewhere")
    metrics.count(metrics.JOBS_DONE, Kind="x")
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE")
    metrics.count(metrics.JOBS_DONE, Kind="x")
    assert [m["namespace"] for m in emitted(capsys)] == ["opsbot-elsewhere", "opsbot"]


def test_count_writes_nothing_when_powertools_metrics_are_disabled(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.count(metrics.JOBS_QUEUED, Kind="x")
    assert emitted(capsys) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.count(metrics.JOBS_QUEUED, value="many"),  # not a number
        lambda: metrics.count(metrics.JOBS_QUEUED, **{f"D{n}": "x" for n in range(40)}),  # past EMF's 30 dimensions
    ],
)
def test_count_never_raises_and_writes_no_broken_line(capsys, monkeypatch, call):
    monkeypatch.setattr(metrics, "_failure_logged", False)
    call()
    out = capsys.readouterr().out
    assert "_aws" not in out and "null" not in out.split()


def test_count_survives_powertools_failing_and_logs_that_once_at_debug(capsys, monkeypatch, opsbot_log):
    import aws_lambda_powertools.metrics as powertools_metrics

    class Broken:
        def __init__(self, **_kwargs):
            raise OSError("stdout is gone")

    monkeypatch.setattr(powertools_metrics, "EphemeralMetrics", Broken)
    monkeypatch.setattr(metrics, "_failure_logged", False)
    metrics.count(metrics.JOBS_DONE, Kind="x")
    metrics.count(metrics.JOBS_DONE, Kind="y")

    lines = [json.loads(line) for line in opsbot_log().splitlines() if "metric not emitted" in line]
    assert len(lines) == 1
    assert lines[0]["level"] == "DEBUG" and lines[0]["metric"] == "JobsDone"
    assert "stdout is gone" in lines[0]["exception"]
    assert emitted(capsys) == []


def test_every_declared_metric_has_a_row_in_the_readmes_operate_section():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    operate = readme.split("\n## Operate\n", 1)[1].split("\n## ", 1)[0]
    names = [value for key, value in vars(metrics).items() if key.isupper() and key != "NAMESPACE"]
    assert len(names) == 10
    for name in names:
        assert f"\n| `{name}` |" in operate, f"README's Operate section does not explain {name}"


# --- ingress: JobsQueued, DuplicateDeliveries ------------------------------------------------------------------


def test_a_drone_delivery_counts_as_queued_then_as_a_duplicate(aws, handlers, lambda_context, capsys):
    capsys.readouterr()
    body = fixture_bytes("drone/build_failure.json")
    assert handlers.drone_webhook.lambda_handler(drone_event(body), lambda_context)["statusCode"] == 202
    assert handlers.drone_webhook.lambda_handler(drone_event(body), lambda_context)["statusCode"] == 200

    assert counted(capsys) == [
        ("JobsQueued", {"Kind": "drone.build_finished"}),
        ("DuplicateDeliveries", {"Source": "drone"}),
    ]


@pytest.mark.parametrize("source", ["gitlab", "dingtalk", "action"])
def test_duplicates_are_counted_by_the_source_accept_is_given(aws, capsys, source):
    capsys.readouterr()
    assert accept.accept(source, "delivery-1", "test.kind", {}).status == "queued"
    assert accept.accept(source, "delivery-1", "test.kind", {}).status == "duplicate"
    assert counted(capsys) == [("JobsQueued", {"Kind": "test.kind"}), ("DuplicateDeliveries", {"Source": source})]


def test_a_delivery_that_could_not_be_queued_is_not_counted(aws, env, capsys):
    env("WORK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue")
    capsys.readouterr()
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        accept.accept("drone", "delivery-2", "test.kind", {})
    assert counted(capsys) == []


# --- worker: JobsDone, JobsRetried, JobsParked -----------------------------------------------------------------


@pytest.fixture
def run_one(aws, handlers, lambda_context, monkeypatch, capsys):
    """Put one job (or a raw body) on the work queue, run the worker on it, and return what it counted."""

    def run(kind: str, handler=None, raw_body: str | None = None) -> list[tuple[str, dict]]:
        if handler is not None:
            monkeypatch.setitem(registry.HANDLERS, kind, handler)
        if raw_body is None:
            queue.enqueue(Job(kind=kind, payload={}))
        else:
            aws.sqs.send_message(QueueUrl=aws.work_queue_url, MessageBody=raw_body)
        capsys.readouterr()
        run.response = handlers.worker.lambda_handler(sqs_event(aws.receive(visibility=0)), lambda_context)
        return counted(capsys)

    return run


def _retry_later(job):
    raise RetryLater("peer busy", delay=60)


def _crash(job):
    raise KeyError("surprise")


def _refuse(job):
    raise PermanentFailure("robot shop-backend: errcode 310000 keywords not in content")


def test_a_job_that_succeeds_counts_as_done(run_one):
    assert run_one("test.ok", lambda job: "done") == [("JobsDone", {"Kind": "test.ok"})]


@pytest.mark.parametrize("handler", [_retry_later, _crash])
def test_a_job_that_will_be_retried_counts_as_retried(run_one, handler):
    assert run_one("test.flaky", handler) == [("JobsRetried", {"Kind": "test.flaky"})]


def test_a_job_parked_for_good_counts_by_kind_and_once_without_kind(run_one, aws):
    assert run_one("test.refused", _refuse) == [("JobsParked", {"Kind": "test.refused"}), ("JobsParked", {})]
    assert len(aws.dead_letters()) == 1


@pytest.mark.parametrize(
    "kind, raw_body, counted_kind", [("no.such.kind", None, "no.such.kind"), ("", "not json at all", "unreadable")]
)
def test_a_job_without_handler_or_unreadable_counts_as_parked(run_one, opsbot_log, kind, raw_body, counted_kind):
    assert run_one(kind, raw_body=raw_body) == [("JobsParked", {"Kind": counted_kind}), ("JobsParked", {})]
    # The README's Logs Insights query finds parked jobs by this message and reads `reason`.
    parked = [json.loads(line) for line in opsbot_log().splitlines() if "parked in the DLQ" in line]
    assert len(parked) == 1 and parked[0]["reason"]


def test_a_job_refused_for_good_logs_its_reason_where_the_readme_looks(run_one, opsbot_log):
    run_one("test.refused", _refuse)
    (parked,) = [json.loads(line) for line in opsbot_log().splitlines() if "parked in the DLQ" in line]
    assert parked["reason"] == "robot shop-backend: errcode 310000 keywords not in content"
    assert parked["job_kind"] == "test.refused" and parked["job_id"]


def test_a_failing_metric_does_not_fail_the_job(run_one, monkeypatch, aws):
    import aws_lambda_powertools.metrics as powertools_metrics

    def broken(**_kwargs):
        raise OSError("stdout is gone")

    monkeypatch.setattr(powertools_metrics, "EphemeralMetrics", broken)
    monkeypatch.setattr(metrics, "_failure_logged", False)
    ran = []
    assert run_one("test.ok", lambda job: ran.append(job.kind)) == []
    assert ran == ["test.ok"]
    assert run_one.response == {"batchItemFailures": []} and aws.dead_letters() == []


# --- DingTalk: RateLimited; budgets: DigestFolds ---------------------------------------------------------------


class _Answer:
    def __init__(self, body: dict):
        self.status_code, self.ok, self._body, self.headers = 200, True, body, {}

    def json(self) -> dict:
        return self._body


class _Session:
    """Stands in for requests.Session: every POST gets DingTalk's answer `body`."""

    def __init__(self, body: dict):
        self.body = body

    def post(self, *_args, **_kwargs) -> _Answer:
        return _Answer(self.body)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("errcode", [130101, 410100])
def test_dingtalk_rate_limit_answers_count_as_rate_limited(monkeypatch, capsys, errcode):
    monkeypatch.setattr(channel_http, "_session", _Session({"errcode": errcode, "errmsg": "send too fast"}))
    capsys.readouterr()
    with pytest.raises(RetryLater):
        robot_api.send_by_session("https://oapi.dingtalk.com/robot/sendBySession?session=x", {"msgtype": "text"})
    assert counted(capsys) == [("RateLimited", {"Channel": "dingtalk"})]


@pytest.mark.parametrize(
    "answer, raised",
    [({"errcode": 310000, "errmsg": "keywords"}, PermanentFailure), ({"errcode": 0, "errmsg": "ok"}, None)],
)
def test_other_dingtalk_answers_are_not_rate_limits(monkeypatch, capsys, answer, raised):
    monkeypatch.setattr(channel_http, "_session", _Session(answer))
    capsys.readouterr()
    if raised:
        with pytest.raises(raised):
            robot_api.send_by_session("https://oapi.dingtalk.com/robot/sendBySession?session=x", {})
    else:
        robot_api.send_by_session("https://oapi.dingtalk.com/robot/sendBySession?session=x", {})
    assert counted(capsys) == []


def test_a_digest_fold_counts_once_per_entry(aws, capsys):
    capsys.readouterr()
    budget.fold("team", {"id": "job-1", "line": "build 1"})
    budget.fold("team", {"id": "job-1", "line": "build 1"})  # a retried job: already folded
    budget.fold("team", {"id": "job-2", "line": "build 2"})
    assert counted(capsys) == [("DigestFolds", {}), ("DigestFolds", {})]


# --- chat commands, deploys and config syncs ---------------------------------------------------------------------


def test_chat_commands_count_how_they_end(chat_config, capsys):
    from chat_support import ask

    capsys.readouterr()
    ask("whoami")
    ask("deploy shop-api 128 staging", who="bob")  # a developer: denied at once
    ask("nosuchcommand")
    assert [c for c in counted(capsys) if c[0] == metrics.CHAT_COMMANDS] == [
        ("ChatCommands", {"Command": "whoami", "Outcome": "answered"}),
        ("ChatCommands", {"Command": "deploy", "Outcome": "denied"}),
        ("ChatCommands", {"Command": "unknown", "Outcome": "unknown"}),
    ]


def test_deploys_and_finished_chat_acts_count_in_the_worker(
    chat_config, fake_drone, aws, handlers, lambda_context, capsys
):
    from chat_support import ask

    ask("deploy shop-api 128 staging")
    ask("deploy shop-api 124 staging")  # a feature-branch build: the core denies it in the worker
    capsys.readouterr()
    handlers.worker.lambda_handler(sqs_event(aws.receive()), lambda_context)
    found = counted(capsys)
    assert sorted(d["Outcome"] for name, d in found if name == metrics.DEPLOYS) == ["denied", "started"]
    assert all(d["Environment"] == "staging" for name, d in found if name == metrics.DEPLOYS)
    assert sorted(d["Outcome"] for name, d in found if name == metrics.CHAT_COMMANDS) == ["denied", "succeeded"]


def test_config_syncs_count_their_outcome(gitops_config, fake_gitlab, capsys):
    from opsbot.gitlab.events import Push
    from opsbot.gitops import config_sync

    head = fake_gitlab.fake.push("platform/opsbot-config", "main", [{"message": "docs", "files": {"README.md": "x"}}])
    capsys.readouterr()
    push = Push.from_payload(head)
    config_sync.on_push(gitops_config, push)
    assert counted(capsys) == [("ConfigSyncs", {"Outcome": "no config change"})]
