"""The weekly delivery report: DORA's four measures of each of a project's environments (governance/dora.py, from
the releases table), each against the four weeks before, the week's releases with who and what, and the approvals
waiting longest. One message in the project's language, fitted to each robot's channel by its adapter, sent once
per robot and week (delivery's post_once under `report#<project>#<week>`), whatever the retries.

`report <project>` builds the same message for the seven days up to now, on demand."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from opsbot.config.governance import ReportSchedule
from opsbot.config.model import Config, Project
from opsbot.delivery.post import post_once
from opsbot.governance import dora
from opsbot.i18n import t
from opsbot.markup import dingtalk as md
from opsbot.message import Reply
from opsbot.promotion import records
from opsbot.release import approvals

MAX_RELEASE_LINES = 12
MAX_APPROVAL_LINES = 5
MAX_RECORDS = 1000  # per environment and report: five weeks of releases, far more than a team makes


def schedule_of(config: Config, project: Project) -> ReportSchedule | None:
    """When the project's report goes out: its own `report`, else the global one; None when off or not asked for."""
    if project.governance.report_off:
        return None
    return project.governance.report or config.governance.report


def week_end(schedule: ReportSchedule, now: float) -> datetime | None:
    """The end of the week a report sent now covers (local midnight of today), when now is the report's hour."""
    local = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(schedule.timezone))
    if local.weekday() != schedule.day or local.hour != schedule.hour:
        return None
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def history(project: str, environment: str, since_ms: int) -> list[dict]:
    found, page = [], ""
    while len(found) < MAX_RECORDS:
        batch, page = records.history(project, environment, since_ms=since_ms, limit=100, page=page)
        found += batch
        if not page:
            break
    return found


def duration(ms: int | None, language: str) -> str:
    if ms is None:
        return "-"
    minutes = round(ms / 60000)
    if minutes < 60:
        return t(language, f"{minutes} 分钟", f"{minutes} min")
    if minutes < 48 * 60:
        return t(language, f"{minutes // 60} 小时 {minutes % 60} 分", f"{minutes // 60} h {minutes % 60} min")
    return t(language, f"{minutes / 1440:.1f} 天", f"{minutes / 1440:.1f} d")


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{round(rate * 100)}%"


def _arrow(now: float | None, before: float | None, higher_is_better: bool, language: str) -> str:
    if now is None or before is None or now == before:
        return "→"
    better = (now > before) == higher_is_better
    return ("↑" if now > before else "↓") + t(
        language, " 更好" if better else " 更差", " better" if better else " worse"
    )


def environment_lines(name: str, trend: dora.Trend, language: str) -> list[str]:
    now = trend.now
    freq_before = trend.frequency_before
    before_freq = "-" if freq_before is None else f"{freq_before:g}"
    extra = (
        t(language, f"，{now.unrestored} 次尚未恢复", f", {now.unrestored} not yet restored") if now.unrestored else ""
    )
    return [
        f"**{md(name, 40)}**",
        t(language, "- 部署频率：", "- Deployment frequency: ")
        + t(language, f"{now.deploys} 次", f"{now.deploys}")
        + t(language, f"（前 4 周平均 {before_freq}，", f" (previous 4 weeks' average {before_freq}, ")
        + _arrow(now.deploys, freq_before, True, language)
        + t(language, "）", ")"),
        t(language, "- 变更前置时间（提交→上线，中位数）：", "- Lead time, commit → live (median): ")
        + duration(now.lead_time_ms, language)
        + t(
            language,
            f"（之前 {duration(trend.lead_time_before_ms, language)}，",
            f" (before: {duration(trend.lead_time_before_ms, language)}, ",
        )
        + _arrow(now.lead_time_ms, trend.lead_time_before_ms, False, language)
        + t(language, "）", ")"),
        t(language, "- 变更失败率：", "- Change failure rate: ")
        + f"{percent(now.change_failure_rate)} ({now.failures}/{now.finished})"
        + t(
            language,
            f"（之前 {percent(trend.failure_rate_before)}，",
            f" (before: {percent(trend.failure_rate_before)}, ",
        )
        + _arrow(now.change_failure_rate, trend.failure_rate_before, False, language)
        + t(language, "）", ")"),
        t(language, "- 恢复时间（中位数）：", "- Time to restore (median): ")
        + duration(now.restore_time_ms, language)
        + extra
        + t(
            language,
            f"（之前 {duration(trend.restore_before_ms, language)}，",
            f" (before: {duration(trend.restore_before_ms, language)}, ",
        )
        + _arrow(now.restore_time_ms, trend.restore_before_ms, False, language)
        + t(language, "）", ")"),
    ]


def _local(ms: int, zone: str) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M")


def release_line(record: dict, zone: str, language: str) -> str:
    mark = {"succeeded": "✅", "failed": "❌", "running": "⏳"}.get(str(record.get("outcome")), "")
    action = {"deploy": t(language, "发布", "deploy"), "rollback": t(language, "回滚", "rollback"),
              "revert": t(language, "回滚(revert)", "revert")}.get(str(record.get("action")), "?")  # fmt: skip
    build = f"#{record.get('build')} " if str(record.get("build") or "0") != "0" else ""
    tag = str(record.get("image") or "").rsplit(":", 1)[-1] if ":" in str(record.get("image") or "") else ""
    approvers = str(record.get("approvers") or "")
    who = md(record.get("requester") or "?", 40) + (
        t(language, f"，{md(approvers, 80)} 批准", f", approved by {md(approvers, 80)}") if approvers else ""
    )
    return (
        f"- {_local(int(record.get('started_ms') or 0), zone)} {md(record.get('environment') or '', 40)} {action} "
        f"{build}`{md(tag, 40)}` · {who} {mark}"
    ).replace("``", "-")


def build(config: Config, project: Project, until_ms: int, zone: str) -> Reply:
    """The report of the week before `until_ms`, in the project's language."""
    language = project.language
    since_ms = until_ms - dora.WEEK_MS
    lines = [
        t(
            language,
            f"### 📊 {project.name} 每周交付报告（{_local(since_ms, zone)} – {_local(until_ms, zone)}）",
            f"### 📊 {project.name}: weekly delivery report ({_local(since_ms, zone)} – {_local(until_ms, zone)})",
        ),
        "",
    ]
    week: list[dict] = []
    for env in project.environments:
        found = history(project.name, env, until_ms - 5 * dora.WEEK_MS)
        lines += environment_lines(env, dora.trend(found, until_ms), language) + [""]
        week += [r for r in found if since_ms <= int(r.get("started_ms") or 0) < until_ms]
    week.sort(key=lambda r: int(r.get("started_ms") or 0))
    lines.append(t(language, f"**本周发布（{len(week)}）**", f"**This week's releases ({len(week)})**"))
    lines += [release_line(r, zone, language) for r in week[:MAX_RELEASE_LINES]] or [t(language, "- 无", "- none")]
    if len(week) > MAX_RELEASE_LINES:
        more = len(week) - MAX_RELEASE_LINES
        lines.append(
            t(language, f"- 另有 {more} 次：`releases {project.name}`", f"- {more} more: `releases {project.name}`")
        )
    lines += ["", t(language, "**等待最久的审批**", "**Approvals waiting longest**")]
    waiting = approvals.pending_for(project.name)[:MAX_APPROVAL_LINES]
    now = time.time()
    for request in waiting:
        asked = request.deadline - config.approval_hours * 3600
        lines.append(
            t(
                language,
                f"- `{request.id}` {md(request.target, 40)} #{request.build}，{md(request.requester_name, 40)} 发起，"
                f"已等待 {duration(int((now - asked) * 1000), language)}",
                f"- `{request.id}` {md(request.target, 40)} #{request.build} by {md(request.requester_name, 40)}, "
                f"waiting {duration(int((now - asked) * 1000), language)}",
            )
        )
    if not waiting:
        lines.append(t(language, "- 无", "- none"))
    return Reply(
        title=t(language, f"{project.name} 每周交付报告", f"{project.name} weekly delivery report"),
        text="\n".join(lines),
        project=project.name,
        detail=f"weekly report {project.name}: {len(week)} release(s)",
    )


def send_due(config: Config, now: float) -> list[str]:
    """Each project whose report is due at `now` (its day and hour) gets it, once per robot and week."""
    sent = []
    for project in config.projects.values():
        schedule = schedule_of(config, project)
        if schedule is None or not project.environments:
            continue
        end = week_end(schedule, now)
        if end is None:
            continue
        until_ms = int(end.timestamp() * 1000)
        reply = build(config, project, until_ms, schedule.timezone)
        post_once(config, reply, f"report#{project.name}#{end.date().isoformat()}")
        sent.append(project.name)
    return sent


def on_demand(config: Config, project: Project, now: float | None = None) -> Reply:
    schedule = schedule_of(config, project)
    zone = schedule.timezone if schedule else config.governance.timezone
    return build(config, project, int((now or time.time()) * 1000), zone)
