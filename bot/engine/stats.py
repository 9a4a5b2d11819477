"""Member stats, activities and streaks by local day (a pure function of dates, so DST cannot break it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.engine.conditions import BUILTIN_STATS

# Built-in counters stored in their own columns; every other stat name is a custom counter.
COUNTER_STATS = BUILTIN_STATS
STREAK_STATS = frozenset({"streak", "best_streak"})


class ActivityKind(StrEnum):
    MESSAGE = "message"
    REACTION_GIVEN = "reaction_given"
    REACTION_RECEIVED = "reaction_received"
    PRESENCE = "presence"  # came online: counts only as being active today
    CUSTOM = "custom"  # a moderator-awarded stat (/stat add)


_KIND_STAT = {
    ActivityKind.MESSAGE: "messages",
    ActivityKind.REACTION_GIVEN: "reactions_given",
    ActivityKind.REACTION_RECEIVED: "reactions_received",
}


@dataclass(frozen=True, slots=True)
class Activity:
    guild_id: int
    member_id: int
    kind: ActivityKind
    at: datetime  # timezone-aware UTC
    stat: str | None = None  # for CUSTOM
    amount: int = 1
    channel_id: int | None = None  # where it happened, for announcements
    counts_as_active: bool = True  # False for an action that is not the member being present

    @property
    def is_active(self) -> bool:
        """Whether this makes the member active today; a reaction *received* never does."""
        return self.counts_as_active and self.kind is not ActivityKind.REACTION_RECEIVED


@dataclass(slots=True)
class MemberStats:
    """Counters of one member in one guild; `last_active` is a local date in the guild's timezone."""

    values: dict[str, int] = field(default_factory=dict)
    last_active: date | None = None

    def get(self, stat: str) -> int:
        return self.values.get(stat, 0)

    def add(self, stat: str, amount: int) -> None:
        self.values[stat] = max(0, self.values.get(stat, 0) + amount)


def local_date_and_hour(at: datetime, tz: ZoneInfo) -> tuple[date, int]:
    local = at.astimezone(tz)
    return local.date(), local.hour


def effective_streak(streak: int, last_active: date | None, today: date) -> int:
    """The streak as of `today`: it survives only if the member was active today or yesterday."""
    if last_active is None or last_active < today - timedelta(days=1):
        return 0
    return streak


def streak_after_activity(streak: int, last_active: date | None, day: date) -> tuple[int, bool]:
    """(new streak, whether `day` is a new active day) for activity on local date `day`."""
    if last_active is not None and last_active >= day:
        return streak, False  # already counted (or a late event for an earlier day)
    if last_active is not None and last_active == day - timedelta(days=1):
        return streak + 1, True
    return 1, True


def apply_activity(stats: MemberStats, activity: Activity, day: date) -> set[str]:
    """Update `stats` for `activity` on local date `day`; return the names of the stats that changed."""
    changed: set[str] = set()
    if activity.kind is ActivityKind.CUSTOM:
        if not activity.stat:
            raise ValueError("a custom activity needs a stat name")
        stats.add(activity.stat, activity.amount)
        changed.add(activity.stat)
    elif stat := _KIND_STAT.get(activity.kind):
        stats.add(stat, activity.amount)
        changed.add(stat)
    if activity.is_active:
        new_streak, new_day = streak_after_activity(stats.get("streak"), stats.last_active, day)
        if new_day:
            stats.values["logins"] = stats.get("logins") + 1
            stats.values["streak"] = new_streak
            stats.last_active = day
            changed.update(("logins", "streak"))
            if new_streak > stats.get("best_streak"):
                stats.values["best_streak"] = new_streak
                changed.add("best_streak")
    return changed


def close_day(stats: MemberStats, closed_day: date) -> bool:
    """Rollover for one member at the end of local date `closed_day`; True if the streak was lost."""
    if stats.get("streak") and (stats.last_active is None or stats.last_active < closed_day):
        stats.values["streak"] = 0
        return True
    return False
