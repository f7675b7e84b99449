"""Release governance as a rule kind of the authorization core: freeze windows in time (dated, weekly, across
midnight and time zones, their boundaries), locks in DynamoDB (conditional writes, expiry, the holder exempt), and
the core's decision under them for every kind of act that changes an environment (deploy, re-run of a deployment,
ops), with the approved override lifting a freeze and nothing lifting it for anyone else."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from unit_support import example_documents

from opsbot.authz import core as authz
from opsbot.authz import freezes as fw
from opsbot.authz import locks
from opsbot.authz.actors import DINGTALK, Actor
from opsbot.config.governance import Freeze
from opsbot.config.model import ConfigError, validate
from opsbot.ops import verbs as ops_verbs
from opsbot.release.deploy import DEPLOY, RESTART


def at(text: str) -> datetime:
    """A UTC moment: `2026-12-11 12:00`."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def config(extra_global: dict | None = None, shop_api: dict | None = None):
    documents = example_documents()
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    root["governance"] = {"timezone": "Asia/Shanghai", **(extra_global or {})}
    project = next(d for d in documents if d.name == "projects/shop-api.yaml").data
    project.update(shop_api or {})
    return validate(documents, allow_literal_secrets=True)


def person(cfg, pid: str) -> Actor:
    return Actor(DINGTALK, pid, pid, cfg.person(pid))


# --- windows ---------------------------------------------------------------------------------------------------------

DOUBLE_11 = Freeze("double-11", "大促", "Asia/Shanghai", start="2026-11-10 00:00", end="2026-11-12 00:00")
FRIDAY_NIGHT = Freeze("friday-night", "周五晚", "Asia/Shanghai", days=(4,), start_minute=20 * 60, end_minute=8 * 60)


def test_a_dated_window_opens_at_its_local_start_and_closes_before_its_end():
    # Asia/Shanghai is UTC+8 all year: 2026-11-10 00:00 there is 2026-11-09 16:00 UTC
    assert fw.open_windows((DOUBLE_11,), at("2026-11-09 15:59")) == ()
    (window,) = fw.open_windows((DOUBLE_11,), at("2026-11-09 16:00"))  # the start belongs to the window
    assert window.start == at("2026-11-09 16:00") and window.end == at("2026-11-11 16:00")
    assert fw.open_windows((DOUBLE_11,), at("2026-11-11 15:59"))
    assert fw.open_windows((DOUBLE_11,), at("2026-11-11 16:00")) == ()  # the end does not
    assert window.describe() == "2026-11-10 00:00 – 2026-11-12 00:00 Asia/Shanghai"


def test_a_weekly_window_past_midnight_runs_into_the_next_morning():
    # Friday 2026-12-11 20:00 Shanghai = 12:00 UTC; it ends Saturday 08:00 Shanghai = Saturday 00:00 UTC
    assert fw.open_windows((FRIDAY_NIGHT,), at("2026-12-11 11:59")) == ()
    (window,) = fw.open_windows((FRIDAY_NIGHT,), at("2026-12-11 12:00"))
    assert (window.start, window.end) == (at("2026-12-11 12:00"), at("2026-12-12 00:00"))
    assert fw.open_windows((FRIDAY_NIGHT,), at("2026-12-11 23:59"))  # Saturday 07:59 in Shanghai: still frozen
    assert fw.open_windows((FRIDAY_NIGHT,), at("2026-12-12 00:00")) == ()
    assert fw.open_windows((FRIDAY_NIGHT,), at("2026-12-10 13:00")) == ()  # Thursday night is not Friday's


def test_the_same_weekly_window_in_another_zone_keeps_its_local_hours_across_daylight_saving():
    new_york = Freeze("nightly", "n", "America/New_York", days=(0, 1, 2, 3, 4, 5, 6), start_minute=22 * 60,
                      end_minute=23 * 60)  # fmt: skip
    # Summer (EDT, UTC-4): 22:00 local is 02:00 UTC; winter (EST, UTC-5): 03:00 UTC
    assert fw.open_windows((new_york,), at("2026-07-01 02:30"))
    assert fw.open_windows((new_york,), at("2026-07-01 03:30")) == ()
    assert fw.open_windows((new_york,), at("2026-12-01 03:30"))
    assert fw.open_windows((new_york,), at("2026-12-01 02:30")) == ()
    # Shanghai has no daylight saving: the same window is 14:00 UTC in summer and in winter
    shanghai = Freeze("nightly", "n", "Asia/Shanghai", days=new_york.days, start_minute=22 * 60, end_minute=23 * 60)
    for day in ("2026-03-08", "2026-07-01", "2026-11-01", "2026-12-01"):
        assert fw.open_windows((shanghai,), at(f"{day} 14:00")), day
        assert fw.open_windows((shanghai,), at(f"{day} 13:59")) == (), day


def test_the_next_windows_and_those_opening_within_the_hour():
    now = at("2026-12-11 11:10")  # Friday 19:10 in Shanghai
    (upcoming,) = fw.next_windows((FRIDAY_NIGHT, DOUBLE_11), now)  # double-11 is over for this year
    assert upcoming.start == at("2026-12-11 12:00")
    assert fw.starting_within((FRIDAY_NIGHT,), now, 60)  # 50 minutes ahead
    assert fw.starting_within((FRIDAY_NIGHT,), at("2026-12-11 10:59"), 60) == ()  # 61 minutes ahead


def test_which_freezes_hold_which_environment():
    cfg = config(
        {
            "freezes": [
                {
                    "name": "all-prod",
                    "reason": "r",
                    "start": "2026-01-01 00:00",
                    "end": "2027-01-01 00:00",
                    "environments": ["production"],
                }
            ]
        },  # fmt: skip
        {
            "freezes": [
                {"name": "api-weekly", "reason": "r", "weekly": {"days": ["fri"], "start": "20:00", "end": "08:00"}}
            ],
        },
    )
    names = lambda project, env: [f.name for f in fw.freezes_for(cfg, project, env)]  # noqa: E731
    assert names("shop-api", "production") == ["all-prod", "api-weekly"]
    assert names("shop-api", "staging") == ["api-weekly"]  # the project's own holds every environment of it
    assert names("shop-web", "staging") == []


def test_freeze_windows_are_checked_with_file_and_line():
    documents = example_documents()
    root = next(d for d in documents if d.name == "opsbot.yaml")
    root.data["governance"] = {
        "timezone": "Mars/Olympus",
        "freezes": [
            {"name": "a", "reason": "r", "start": "2026-11-12 00:00", "end": "2026-11-10 00:00"},
            {"name": "b", "weekly": {"days": ["someday"], "start": "25:00", "end": "08:00"}},
        ],
        "report": {"day": "caturday", "hour": 31},
    }
    with pytest.raises(ConfigError) as error:
        validate(documents, allow_literal_secrets=True)
    text = "\n".join(error.value.lines())
    for expected in (
        "governance.timezone 'Mars/Olympus' is no IANA time zone",
        "governance.freezes[0].end must come after its start",
        "governance.freezes[1]: 'reason' is required",
        "governance.freezes[1].weekly.days must list weekdays",
        "governance.freezes[1].weekly.start '25:00' must be a time of day",
        "governance.report.day must be one of",
        "governance.report.hour must be a whole number from 0 to 23",
    ):
        assert expected in text


def test_the_example_config_has_a_freeze_that_freeze_lists():
    cfg = validate(example_documents(freezes=True), allow_literal_secrets=True)
    assert [f.name for f in cfg.governance.freezes] == ["spring-festival-2027"]
    assert [f.name for f in cfg.projects["shop-api"].governance.freezes] == ["friday-night"]
    (spring,) = fw.next_windows(cfg.governance.freezes, at("2026-12-08 04:00"), days=90)
    assert spring.describe() == "2027-02-05 18:00 – 2027-02-18 09:00 Asia/Shanghai"


def test_a_project_window_without_a_zone_takes_the_global_one():
    documents = example_documents()
    root = next(d for d in documents if d.name == "opsbot.yaml").data
    root["governance"] = {"timezone": "UTC"}
    project = next(d for d in documents if d.name == "projects/shop-api.yaml").data
    project["freezes"] = [{"name": "x", "reason": "r", "start": "2026-12-01 00:00", "end": "2026-12-02 00:00"}]
    cfg = validate(documents, allow_literal_secrets=True)
    (window,) = fw.open_windows(cfg.projects["shop-api"].governance.freezes, at("2026-12-01 00:00"))
    assert window.freeze.timezone == "UTC"


# --- locks in DynamoDB ---------------------------------------------------------------------------------------------


def test_one_holder_at_a_time_the_holder_may_take_it_again_and_an_expired_lock_is_no_lock():
    now = int(time.time())
    bob = locks.Lock("shop-api", "production", "bob", "Bob", "investigating", now)
    locks.take(bob)
    with pytest.raises(locks.LockHeld) as held:
        locks.take(locks.Lock("shop-api", "production", "alice", "Alice", "mine", now))
    assert held.value.lock.holder == "bob"
    locks.take(locks.Lock("shop-api", "production", "bob", "Bob", "still investigating", now, now + 3600))
    assert locks.get("shop-api", "production").reason == "still investigating"
    assert locks.get("shop-api", "production", now + 3600) is None  # expired: read as no lock
    expired = locks.Lock("shop-api", "staging", "bob", "Bob", "short", now - 100, now - 1)
    locks.take(expired)
    assert locks.get("shop-api", "staging") is None
    locks.take(locks.Lock("shop-api", "staging", "alice", "Alice", "after bob's expired", now))
    assert locks.get("shop-api", "staging").holder == "alice"


def test_an_unlock_removes_only_the_lock_it_read():
    now = int(time.time())
    first = locks.Lock("shop-api", "production", "bob", "Bob", "r", now)
    locks.take(first)
    assert locks.release(first)
    again = locks.Lock("shop-api", "production", "bob", "Bob", "again", now + 5)
    locks.take(again)
    assert not locks.release(first)  # a stale read of the first lock removes nothing
    assert locks.get("shop-api", "production") == again


# --- the core's decisions under holds ---------------------------------------------------------------------------------


def test_a_lock_refuses_everyone_but_its_holder_even_an_admin():
    cfg = config()
    lock = locks.Lock("shop-api", "production", "carol", "Carol Zhang", "investigating 502s", 1_765_000_000)
    holds = authz.Holds(locks=(lock,))
    target = authz.Target("shop-api", "production")
    for who in ("alice", "xiaoming"):
        decision = authz.decide(cfg, person(cfg, who), DEPLOY, target, holds=holds)
        assert decision.denied and decision.rule == "lock", who
        assert "Carol Zhang" in decision.reason and "investigating 502s" in decision.reason
    mine = authz.decide(cfg, person(cfg, "carol"), DEPLOY, target, holds=holds)
    assert mine.outcome == authz.NEEDS_APPROVAL  # the holder is held only by the usual rules


def test_a_freeze_refuses_even_an_admin_and_an_approved_override_lifts_it_for_that_environment_only():
    cfg = config()
    (window,) = fw.open_windows((DOUBLE_11,), at("2026-11-10 00:00"))
    holds = authz.Holds(windows=(("shop-api", "production", window),))
    target = authz.Target("shop-api", "production")
    denied = authz.decide(cfg, person(cfg, "xiaoming"), DEPLOY, target, holds=holds)
    assert denied.denied and denied.rule == "freeze" and "double-11" in denied.reason
    assert "override shop-api production" in denied.reason
    other = locks.Override("shop-api", "staging", window.key, "hotfix", "王小明", "Lei", "abcd1234", 2**31)
    assert authz.decide(cfg, person(cfg, "alice"), DEPLOY, target, holds=authz.Holds(holds.locks, holds.windows,
                        (other,))).denied  # fmt: skip
    mine = locks.Override("shop-api", "production", window.key, "hotfix", "王小明", "Lei", "abcd1234", 2**31)
    lifted = authz.Holds(windows=holds.windows, overrides=(mine,))
    assert authz.decide(cfg, person(cfg, "alice"), DEPLOY, target, holds=lifted).outcome == authz.NEEDS_APPROVAL
    assert "request abcd1234" in lifted.override_note()


def test_the_hold_rule_covers_reruns_of_deployments_and_ops_changes_of_the_environments_workloads():
    cfg = config()
    lock = locks.Lock("shop-api", "production", "carol", "Carol", "r", 1)
    holds = authz.Holds(locks=(lock,))
    promote = authz.Build(140, "promote", "main", "success", parent=128)
    rerun = authz.decide(cfg, person(cfg, "alice"), RESTART, authz.Target("shop-api", "production", promote),
                         holds=holds)  # fmt: skip
    assert rerun.denied and rerun.rule == "lock"
    assert authz.held_environments(cfg, RESTART, authz.Target("shop-api", build=promote)) == ()
    scope = "cluster shop-eks/shop deployment/shop-api"
    ops_target = authz.Target(environment="production", scope=scope)
    assert authz.held_environments(cfg, ops_verbs.K8S_RESTART, ops_target) == (("shop-api", "production"),)
    assert authz.decide(cfg, person(cfg, "dave"), ops_verbs.K8S_RESTART, ops_target, holds=holds).rule == "lock"
    # a read is never held
    assert authz.held_environments(cfg, ops_verbs.K8S_PODS, ops_target) == ()


def test_authorize_reads_the_holds_and_audits_the_refusal(aws):
    from opsbot import audit

    cfg = config()
    locks.take(locks.Lock("shop-api", "staging", "carol", "Carol Zhang", "db migration", int(time.time())))
    record = audit.AuditRecord(id="t1", at_ms=1, who="alice", who_name="Alice", where="c", where_title="c",
                               command="deploy", arguments={}, project="shop-api")  # fmt: skip
    decision = authz.authorize(cfg, person(cfg, "alice"), DEPLOY, authz.Target("shop-api", "staging"), record)
    assert decision.denied and record.decision == authz.DENY and "db migration" in record.reason


def test_a_freeze_configured_now_holds_through_authorize(aws):
    start = (datetime.now(UTC) - timedelta(minutes=5)).astimezone(ZoneInfo("Asia/Shanghai"))
    end = start + timedelta(hours=1)
    cfg = config(
        {
            "freezes": [
                {
                    "name": "now",
                    "reason": "演练",
                    "start": start.strftime("%Y-%m-%d %H:%M"),
                    "end": end.strftime("%Y-%m-%d %H:%M"),
                    "environments": ["staging"],
                }
            ]
        }  # fmt: skip
    )
    holds = authz.load_holds(cfg, DEPLOY, authz.Target("shop-api", "staging"))
    assert [w.freeze.name for _p, _e, w in holds.windows] == ["now"]
    assert authz.load_holds(cfg, DEPLOY, authz.Target("shop-api", "production")).windows == ()
