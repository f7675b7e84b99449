"""Freeze windows (封网) as moments in time: which configured freezes hold a project's environment, which of their
windows are open at a moment, and which open next. Pure: the config and a time in, windows out.

A dated window is its local start and end in its time zone. A weekly window opens on each of its days at its local
start and lasts until its end (an end at or before the start is on the next day), so a Friday 22:00-02:00 window
runs into Saturday. Times are worked out with zoneinfo, so a zone with daylight saving gets its local hours right
on either side of a change; Asia/Shanghai, the default, has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from opsbot.config.governance import DAYS, Freeze
from opsbot.config.model import Config

LOOK_AHEAD_DAYS = 60  # how far `freeze` and the next-window search look


@dataclass(frozen=True)
class Window:
    """One opening of a freeze: [start, end) in UTC."""

    freeze: Freeze
    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """Names this opening of this freeze (its scope, name and start): announcements and overrides use it."""
        return f"{self.freeze.scope}#{self.freeze.name}#{int(self.start.timestamp())}"

    def local(self, moment: datetime) -> str:
        return moment.astimezone(ZoneInfo(self.freeze.timezone)).strftime("%Y-%m-%d %H:%M")

    def describe(self) -> str:
        """`2026-11-10 00:00 – 2026-11-12 00:00 Asia/Shanghai`"""
        return f"{self.local(self.start)} – {self.local(self.end)} {self.freeze.timezone}"

    def open_at(self, now: datetime) -> bool:
        return self.start <= now < self.end


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def freezes_for(config: Config, project: str, environment: str) -> tuple[Freeze, ...]:
    """Every configured freeze that holds this project's environment: global, the project's, the environment's."""
    found = [f for f in config.governance.freezes if f.holds(environment)]
    owner = config.projects.get(project)
    if owner is not None:
        found += [f for f in owner.governance.freezes if f.holds(environment)]
    return tuple(found)


def occurrences(freeze: Freeze, since: datetime, until: datetime) -> list[Window]:
    """The freeze's windows that overlap [since, until), in order."""
    zone = ZoneInfo(freeze.timezone)
    if not freeze.weekly:
        if not freeze.start or not freeze.end:
            return []
        start = datetime.strptime(freeze.start, "%Y-%m-%d %H:%M").replace(tzinfo=zone).astimezone(UTC)
        end = datetime.strptime(freeze.end, "%Y-%m-%d %H:%M").replace(tzinfo=zone).astimezone(UTC)
        return [Window(freeze, start, end)] if start < until and end > since else []
    length = freeze.end_minute - freeze.start_minute
    length = length if length > 0 else length + 24 * 60
    windows = []
    day = (since.astimezone(zone) - timedelta(days=2)).date()  # a window opened a day or two ago may still be open
    last = until.astimezone(zone).date()
    while day <= last:
        if day.weekday() in freeze.days:
            local = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=freeze.start_minute)
            # The local wall time, then its moment: across a DST change the window keeps its local hours.
            start = local.replace(tzinfo=None).replace(tzinfo=zone).astimezone(UTC)
            end_local = (local.replace(tzinfo=None) + timedelta(minutes=length)).replace(tzinfo=zone)
            end = end_local.astimezone(UTC)
            if start < until and end > since:
                windows.append(Window(freeze, start, end))
        day += timedelta(days=1)
    return windows


def open_windows(freezes: tuple[Freeze, ...], now: datetime) -> tuple[Window, ...]:
    """The windows open at `now`."""
    return tuple(w for f in freezes for w in occurrences(f, now, now + timedelta(seconds=1)) if w.open_at(now))


def next_windows(freezes: tuple[Freeze, ...], now: datetime, days: int = LOOK_AHEAD_DAYS) -> tuple[Window, ...]:
    """Each freeze's next window that starts after `now` (within `days`), soonest first."""
    found = []
    for freeze in freezes:
        upcoming = [w for w in occurrences(freeze, now, now + timedelta(days=days)) if w.start > now]
        if upcoming:
            found.append(upcoming[0])
    return tuple(sorted(found, key=lambda w: w.start))


def starting_within(freezes: tuple[Freeze, ...], now: datetime, minutes: int) -> tuple[Window, ...]:
    """The windows that open in (now, now + minutes], or opened in the last `minutes` (a late tick still tells)."""
    since, until = now - timedelta(minutes=minutes), now + timedelta(minutes=minutes)
    return tuple(
        w for f in freezes for w in occurrences(f, since, until + timedelta(seconds=1)) if since < w.start <= until
    )


def weekly_text(freeze: Freeze) -> str:
    days = ",".join(DAYS[d] for d in freeze.days)

    def clock(minute: int) -> str:
        return f"{minute // 60:02d}:{minute % 60:02d}"

    return f"{days} {clock(freeze.start_minute)}–{clock(freeze.end_minute)}"
