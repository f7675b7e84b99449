"""Release governance in the config: freeze windows (封网) and the weekly delivery report's schedule.

- `governance:` in opsbot.yaml: `timezone` (default Asia/Shanghai), `freezes` for every project (each may name the
  `environments` it holds), and `report: {day, hour}` for every project;
- a project's own `freezes` and `report` (`report: false` turns it off for that project);
- an environment's own `freezes` (`environments.<env>.freezes`), which hold that environment only.

A freeze is dated (`start`, `end`: local times, `YYYY-MM-DD HH:MM`) or weekly (`weekly: {days, start, end}`: an end at
or before its start runs into the next day), always with a `reason`. The windows themselves are worked out in
authz/freezes.py; locks are state, not config (authz/locks.py).

Kept apart from model.py, as ops.py is; model.py calls `parse_*()` with its line-aware checker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

GOVERNANCE_KEYS = {"timezone", "freezes", "report"}
FREEZE_KEYS = {"name", "reason", "start", "end", "weekly", "environments", "timezone"}
WEEKLY_KEYS = {"days", "start", "end"}
REPORT_KEYS = {"day", "hour", "timezone"}
DEFAULT_TIMEZONE = "Asia/Shanghai"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # Python's weekday() order
_DATED = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$")
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class Freeze:
    """One freeze window as configured: dated (start/end) or weekly (days, start_minute, end_minute)."""

    name: str
    reason: str
    timezone: str = DEFAULT_TIMEZONE
    start: str = ""  # dated: local `YYYY-MM-DD HH:MM`
    end: str = ""
    days: tuple[int, ...] = ()  # weekly: 0 = Monday
    start_minute: int = 0  # weekly: minutes after local midnight
    end_minute: int = 0  # at or before start_minute: the next day
    environments: tuple[str, ...] = ()  # () = every environment of the projects it holds
    scope: str = "global"  # global | project <name> | environment <project>/<env>: where it was configured

    @property
    def weekly(self) -> bool:
        return bool(self.days)

    def holds(self, environment: str) -> bool:
        return not self.environments or environment in self.environments


@dataclass(frozen=True)
class ReportSchedule:
    """When the weekly delivery report is sent: a weekday and an hour, local to `timezone`."""

    day: int = 0  # Monday
    hour: int = 10
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True)
class Governance:
    timezone: str = DEFAULT_TIMEZONE
    freezes: tuple[Freeze, ...] = ()
    report: ReportSchedule | None = None  # None: no weekly report unless a project asks for one


@dataclass(frozen=True)
class ProjectGovernance:
    freezes: tuple[Freeze, ...] = ()  # the project's own and its environments' (scoped by `environments`)
    report: ReportSchedule | None = None
    report_off: bool = False  # `report: false`


def _timezone(checker, spec: dict, key: str, where: str, default: str) -> str:
    name = checker.string(spec, key, where, default=default)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        checker.problem(spec, key, f"{where}.{key} '{name}' is no IANA time zone (like Asia/Shanghai or UTC)")
        return default
    return name


def _clock(checker, spec: dict, key: str, where: str) -> int:
    value = checker.string(spec, key, where, required=True)
    match = _CLOCK.match(value)
    if value and (not match or (match.group(1) == "24" and match.group(2) != "00")):
        checker.problem(spec, key, f"{where}.{key} '{value}' must be a time of day, HH:MM (24:00 is midnight)")
        return 0
    return int(match.group(1)) * 60 + int(match.group(2)) if match else 0


def _dated(checker, spec: dict, key: str, where: str) -> str:
    value = checker.string(spec, key, where, required=True)
    if value and (not _DATED.match(value) or not _parses(value)):
        checker.problem(spec, key, f"{where}.{key} '{value}' must be a local time, YYYY-MM-DD HH:MM")
        return ""
    return value


def _parses(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d %H:%M")
    except ValueError:
        return False
    return True


def _days(checker, spec: dict, where: str) -> tuple[int, ...]:
    names = [d.lower()[:3] for d in checker.strings(spec, "days", where)]
    unknown = [d for d in names if d not in DAYS]
    if unknown or not names:
        checker.problem(spec, "days", f"{where}.days must list weekdays from {', '.join(DAYS)}")
        return ()
    return tuple(sorted({DAYS.index(d) for d in names}))


def _freezes(
    checker, container: dict, where: str, timezone: str, scope: str, environments: tuple[str, ...] = ()
) -> tuple[Freeze, ...]:
    value = container.get("freezes")
    if value is None:
        return ()
    if not isinstance(value, list):
        checker.problem(container, "freezes", f"{where}.freezes must be a list of windows")
        return ()
    found = []
    for index, spec in enumerate(value):
        at = f"{where}.freezes[{index}]"
        spec = checker.mapping(spec, FREEZE_KEYS, at, value, index)
        if not spec:
            continue
        name = checker.string(spec, "name", at, default=f"{scope.split()[-1].replace('/', '-')}-{index + 1}")
        if not _NAME.match(name):
            checker.problem(spec, "name", f"{at}.name is lowercase letters, digits, . _ - (up to 63)")
        reason = checker.string(spec, "reason", at, required=True)
        zone = _timezone(checker, spec, "timezone", at, timezone)
        envs = environments or checker.strings(spec, "environments", at)
        weekly = spec.get("weekly")
        if weekly is not None and ("start" in spec or "end" in spec):
            checker.problem(spec, "weekly", f"{at}: a window is dated (start, end) or weekly, not both")
            continue
        if weekly is not None:
            weekly = checker.mapping(weekly, WEEKLY_KEYS, f"{at}.weekly", spec, "weekly")
            start, end = (
                _clock(checker, weekly, "start", f"{at}.weekly"),
                _clock(checker, weekly, "end", f"{at}.weekly"),
            )
            freeze = Freeze(name, reason, zone, days=_days(checker, weekly, f"{at}.weekly"), start_minute=start,
                            end_minute=end, environments=envs, scope=scope)  # fmt: skip
        else:
            start, end = _dated(checker, spec, "start", at), _dated(checker, spec, "end", at)
            if start and end and end <= start:
                checker.problem(spec, "end", f"{at}.end must come after its start")
            freeze = Freeze(name, reason, zone, start=start, end=end, environments=envs, scope=scope)
        found.append(freeze)
    names = [f.name for f in found]
    for name in {n for n in names if names.count(n) > 1}:
        checker.problem(container, "freezes", f"{where}.freezes: the name '{name}' is used twice")
    return tuple(found)


def _report(checker, container: dict, where: str, timezone: str) -> tuple[ReportSchedule | None, bool]:
    value = container.get("report")
    if value is None:
        return None, False
    if value is False:
        return None, True
    spec = checker.mapping(value, REPORT_KEYS, f"{where}.report", container, "report")
    day = checker.string(spec, "day", f"{where}.report", default="mon").lower()[:3]
    if day not in DAYS:
        checker.problem(spec, "day", f"{where}.report.day must be one of {', '.join(DAYS)}")
        day = "mon"
    return (
        ReportSchedule(
            DAYS.index(day),
            checker.integer(spec, "hour", f"{where}.report", 10, 0, 23),
            _timezone(checker, spec, "timezone", f"{where}.report", timezone),
        ),
        False,
    )


def parse(checker, root: dict) -> Governance:
    spec = checker.mapping(root.get("governance"), GOVERNANCE_KEYS, "governance", root, "governance")
    if not spec:
        return Governance()
    timezone = _timezone(checker, spec, "timezone", "governance", DEFAULT_TIMEZONE)
    report, _off = _report(checker, spec, "governance", timezone)
    return Governance(timezone, _freezes(checker, spec, "governance", timezone, "global"), report)


def parse_project(checker, root: dict, name: str, env_map: dict, timezone: str = DEFAULT_TIMEZONE) -> ProjectGovernance:
    """A project's own `freezes` and `report`, and each environment's `freezes` (scoped to that environment).
    `timezone` is the default of the project file, which cannot see opsbot.yaml: windows without their own
    `timezone` are re-dated against the global one in `with_timezone`."""
    freezes = list(_freezes(checker, root, "project", timezone, f"project {name}"))
    for env_name, env_spec in env_map.items():
        if isinstance(env_spec, dict):
            where = f"environments.{env_name}"
            freezes += _freezes(checker, env_spec, where, timezone, f"environment {name}/{env_name}", (str(env_name),))
    report, off = _report(checker, root, "project", timezone)
    return ProjectGovernance(tuple(freezes), report, off)


def with_timezone(project: ProjectGovernance, document: dict, timezone: str) -> ProjectGovernance:
    """The project's windows and report in the global `governance.timezone` where they name none themselves."""
    if timezone == DEFAULT_TIMEZONE:
        return project

    def named(spec) -> bool:
        return isinstance(spec, dict) and "timezone" in spec

    specs = list(document.get("freezes") or [])
    for env_spec in (document.get("environments") or {}).values():
        if isinstance(env_spec, dict):
            specs += list(env_spec.get("freezes") or [])
    freezes = tuple(
        f if index < len(specs) and named(specs[index]) else _replace_zone(f, timezone)
        for index, f in enumerate(project.freezes)
    )
    report = project.report
    if report is not None and not named(document.get("report")):
        report = ReportSchedule(report.day, report.hour, timezone)
    return ProjectGovernance(freezes, report, project.report_off)


def _replace_zone(freeze: Freeze, timezone: str) -> Freeze:
    return replace(freeze, timezone=timezone)
