"""DORA's four measures from the release history (the releases table's records, promotion/records.py). Pure: records
in, numbers out, so a seeded history is checked against numbers worked out by hand (tests/unit/test_governance_report).

For one environment and one period [since, until) (epoch ms, by when a release started):

- deployment frequency: the releases of a new version (`action: deploy`) that succeeded;
- lead time for changes: for each of those, from its source commit (the build's commit time) to the release's end;
  the median;
- change failure rate: of the period's deploys that finished (succeeded or failed), the share that failed (a failed
  rollout or verification) or were followed by a rollback (the environment's next release is a rollback or revert,
  or one names it as what it reverts, or an automatic rollback undid it);
- time to restore: for each such failure, from when it ended (or, when it succeeded and was then rolled back, from
  when the rollback was asked) to the end of the environment's next successful release after it; the median. A
  failure not yet restored is counted apart (`unrestored`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

WEEK_MS = 7 * 86400 * 1000
RESTORING = ("rollback", "revert")


@dataclass
class Measures:
    deploys: int = 0  # successful deploys
    finished: int = 0  # deploys that ended, either way
    failures: int = 0  # of those, failed or rolled back
    lead_times_ms: list[int] = field(default_factory=list)
    restore_times_ms: list[int] = field(default_factory=list)
    unrestored: int = 0

    @property
    def change_failure_rate(self) -> float | None:
        return self.failures / self.finished if self.finished else None

    @property
    def lead_time_ms(self) -> int | None:
        return int(statistics.median(self.lead_times_ms)) if self.lead_times_ms else None

    @property
    def restore_time_ms(self) -> int | None:
        return int(statistics.median(self.restore_times_ms)) if self.restore_times_ms else None


def _ended(record: dict) -> int:
    return int(record.get("finished_ms") or 0)


def failed_changes(history: list[dict]) -> dict[str, dict]:
    """The deploys of one environment's history (oldest first) that failed or were rolled back, each with the
    release that showed it (the failed deploy itself, or the rollback)."""
    found: dict[str, dict] = {}
    by_id = {r.get("id"): r for r in history}
    for index, record in enumerate(history):
        if record.get("action") != "deploy" or record.get("outcome") not in ("succeeded", "failed"):
            continue
        if record.get("outcome") == "failed":
            found[record["id"]] = record
            continue
        undo = by_id.get(record.get("rolled_back_by") or "")
        if undo is None:
            undo = next((r for r in history if r.get("reverts_release") == record["id"]), None)
        if undo is None and index + 1 < len(history) and history[index + 1].get("action") in RESTORING:
            undo = history[index + 1]
        if undo is not None:
            found[record["id"]] = undo
    return found


def measure(history: list[dict], since_ms: int, until_ms: int) -> Measures:
    """The four measures of one environment for releases started in [since_ms, until_ms); `history` is the
    environment's records, any order, reaching past `until_ms` (a rollback after the period still counts)."""
    ordered = sorted(history, key=lambda r: (int(r.get("started_ms") or 0), str(r.get("id"))))
    failures = failed_changes(ordered)
    found = Measures()
    for index, record in enumerate(ordered):
        started = int(record.get("started_ms") or 0)
        if not since_ms <= started < until_ms or record.get("action") != "deploy":
            continue
        outcome = record.get("outcome")
        if outcome not in ("succeeded", "failed"):
            continue  # still running: counted when it ends
        found.finished += 1
        if outcome == "succeeded":
            found.deploys += 1
            committed = int(record.get("committed_ms") or 0)
            if committed and _ended(record) >= committed:
                found.lead_times_ms.append(_ended(record) - committed)
        if record["id"] not in failures:
            continue
        found.failures += 1
        shown_by = failures[record["id"]]
        broke_at = _ended(record) if shown_by is record else int(shown_by.get("started_ms") or 0)
        restored = next(
            (
                r
                for r in ordered[index + 1 :]
                if r.get("outcome") == "succeeded" and _ended(r) >= broke_at and r["id"] not in failures
            ),
            None,
        )
        if restored is None:
            found.unrestored += 1
        else:
            found.restore_times_ms.append(_ended(restored) - broke_at)
    return found


@dataclass
class Trend:
    """This period's measures against the average of the four periods before it."""

    now: Measures
    before: list[Measures]  # the previous periods, newest first

    @property
    def frequency_before(self) -> float | None:
        return statistics.mean(m.deploys for m in self.before) if self.before else None

    @property
    def lead_time_before_ms(self) -> int | None:
        pooled = [t for m in self.before for t in m.lead_times_ms]
        return int(statistics.median(pooled)) if pooled else None

    @property
    def failure_rate_before(self) -> float | None:
        finished = sum(m.finished for m in self.before)
        return sum(m.failures for m in self.before) / finished if finished else None

    @property
    def restore_before_ms(self) -> int | None:
        pooled = [t for m in self.before for t in m.restore_times_ms]
        return int(statistics.median(pooled)) if pooled else None


def trend(history: list[dict], until_ms: int, weeks_before: int = 4) -> Trend:
    """The week before `until_ms`, and each of the `weeks_before` weeks before that."""
    now = measure(history, until_ms - WEEK_MS, until_ms)
    before = [
        measure(history, until_ms - (k + 1) * WEEK_MS, until_ms - k * WEEK_MS) for k in range(1, weeks_before + 1)
    ]
    return Trend(now, before)
