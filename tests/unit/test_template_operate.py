"""What template.yaml declares for operating opsbot: log groups that expire, access logs, alarms that reach the
alarm topic, and a dashboard whose JSON is valid and shows every metric opsbot.metrics declares."""

from __future__ import annotations

import json
import re

import pytest
from unit_support import ROOT

from local import template as local_template
from opsbot import metrics
from opsbot.settings import ENVIRONMENT

TEMPLATE = local_template.load(ROOT / "template.yaml")
RESOURCES = TEMPLATE.raw["Resources"]
ALARM_ACTIONS = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def test_every_function_writes_into_a_declared_log_group_that_expires():
    groups = {
        resource["Properties"]["LogGroupName"]["Fn::Sub"]: resource["Properties"]
        for resource in TEMPLATE.resources_of("AWS::Logs::LogGroup").values()
    }
    for function in TEMPLATE.functions:
        # Each function writes into a group the stack declares, under a name of the stack's own (no clash with the
        # /aws/lambda/<function> group Lambda made for a function before the groups were declared).
        group = RESOURCES[function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup", function
        assert RESOURCES[group]["Properties"]["LogGroupName"]["Fn::Sub"].startswith("/aws/lambda/${AWS::StackName}/")
    assert all(properties["RetentionInDays"] == {"Ref": "LogRetentionDays"} for properties in groups.values())
    assert len(groups) == len(TEMPLATE.functions) + 1  # and the HTTP API's access logs


def test_log_retention_offers_only_what_cloudwatch_logs_accepts():
    parameter = TEMPLATE.raw["Parameters"]["LogRetentionDays"]
    assert parameter["Default"] in parameter["AllowedValues"]
    assert set(parameter["AllowedValues"]) <= {
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    }


def test_http_api_access_logs_are_json_with_the_request_id_and_no_path():
    settings = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    fields = json.loads(settings["Format"])
    assert {"requestId", "ip", "routeKey", "status", "responseLatency", "integrationErrorMessage"} <= set(fields)
    assert fields["requestId"] == "$context.requestId"  # the functions' correlation_id
    # A release link's path is its token: only the route's template may reach the log.
    assert not any("$context.path" in value or "rawPath" in value for value in fields.values())


@pytest.mark.parametrize("alarm", ["DeadLetterQueueAlarm", "JobsParkedAlarm", "WorkQueueAgeAlarm", "HttpApi5xxAlarm"])
def test_every_alarm_notifies_the_alarm_topic_when_it_fires_and_clears(alarm):
    properties = RESOURCES[alarm]["Properties"]
    assert properties["AlarmActions"] == ALARM_ACTIONS and properties["OKActions"] == ALARM_ACTIONS
    assert properties["TreatMissingData"] == "notBreaching"


def test_the_alarms_are_the_four_the_readmes_operate_section_explains():
    operate = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Operate\n", 1)[1].split("\n## ", 1)[0]
    alarms = set(TEMPLATE.resources_of("AWS::CloudWatch::Alarm"))
    assert alarms == {"DeadLetterQueueAlarm", "JobsParkedAlarm", "WorkQueueAgeAlarm", "HttpApi5xxAlarm"}
    for alarm in alarms:
        assert f"\n| `{alarm}` |" in operate, f"README's Operate section does not explain {alarm}"


def test_the_parked_jobs_alarm_watches_the_series_the_worker_writes():
    environment = TEMPLATE.global_environment()
    properties = RESOURCES["JobsParkedAlarm"]["Properties"]
    assert properties["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"] == metrics.NAMESPACE
    assert properties["MetricName"] == metrics.JOBS_PARKED
    # What metrics.count adds to the count without Kind: the stage, and the service dimension from Powertools.
    assert {d["Name"]: d["Value"] for d in properties["Dimensions"]} == {
        "Stage": {"Ref": "Stage"},
        "service": environment["POWERTOOLS_SERVICE_NAME"],
    }
    assert (properties["Statistic"], properties["Period"], properties["Threshold"]) == ("Sum", 300, 1)


def test_the_queue_age_alarm_is_the_longest_retry_delay():
    properties = RESOURCES["WorkQueueAgeAlarm"]["Properties"]
    assert properties["Threshold"] == int(ENVIRONMENT["RETRY_MAX_SECONDS"][1])
    assert (properties["Statistic"], properties["Period"], properties["EvaluationPeriods"]) == ("Maximum", 300, 2)


def _dashboard() -> tuple[str, dict]:
    text = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return text, json.loads(re.sub(r"\$\{[^}]+\}", "x", text))


def test_the_dashboard_is_json_that_names_only_what_the_stack_has():
    text, body = _dashboard()
    known = set(TEMPLATE.raw["Parameters"]) | set(RESOURCES)
    for reference in re.findall(r"\$\{([^}]+)\}", text):
        name = reference.split(".")[0]
        assert name in known or name.startswith("AWS::"), f"the dashboard names ${{{reference}}}"
    assert all(widget["x"] + widget["width"] <= 24 for widget in body["widgets"])


def test_the_dashboard_shows_every_metric_and_every_function():
    text, _body = _dashboard()
    declared = [value for key, value in vars(metrics).items() if key.isupper() and key != "NAMESPACE"]
    for name in declared:
        assert f'MetricName=\\"{name}\\"' in text, f"the dashboard does not show {name}"
    for function in TEMPLATE.functions:
        assert text.count(f'"FunctionName", "${{{function}}}"') == 3  # errors, throttles, duration
    for resource in ("WorkQueue.QueueName", "DeadLetterQueue.QueueName", "HttpApi"):
        assert f"${{{resource}}}" in text


def test_outputs_give_the_redrive_source_and_the_dashboard():
    outputs = TEMPLATE.raw["Outputs"]
    assert outputs["DeadLetterQueueArn"]["Value"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert outputs["DashboardName"]["Value"] == {"Ref": "Dashboard"}
    for url in outputs["DashboardUrl"]["Value"]["Fn::If"][1:]:
        assert url["Fn::Sub"].endswith("/cloudwatch/home?region=${AWS::Region}#dashboards:name=${Dashboard}")
