"""Achievements: what a member can earn, with its condition, points, visibility and time window."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.engine.conditions import Condition
from bot.engine.stats import STREAK_STATS

MAX_NAME = 100
MAX_DESCRIPTION = 1000
MIN_POINTS = 1
MAX_POINTS = 10_000
MAX_ID = 40


class AchievementKind(StrEnum):
    MILESTONE = "milestone"  # a count threshold
    STREAK = "streak"  # consecutive active days
    CHALLENGE = "challenge"  # a special condition such as the time of day


class WindowState(StrEnum):
    ALWAYS = "always"
    UPCOMING = "upcoming"
    OPEN = "open"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Achievement:
    id: str
    name: str
    description: str
    points: int
    condition: Condition
    hidden: bool = False
    starts: datetime | None = None  # UTC; unlockable only inside [starts, ends)
    ends: datetime | None = None
    role_id: int | None = None

    @property
    def kind(self) -> AchievementKind:
        if self.condition.uses_hour:
            return AchievementKind.CHALLENGE
        if self.condition.stats & STREAK_STATS:
            return AchievementKind.STREAK
        return AchievementKind.MILESTONE

    def window(self, now: datetime) -> WindowState:
        if self.starts is None and self.ends is None:
            return WindowState.ALWAYS
        if self.starts is not None and now < self.starts:
            return WindowState.UPCOMING
        if self.ends is not None and now >= self.ends:
            return WindowState.EXPIRED
        return WindowState.OPEN

    def unlockable_at(self, now: datetime) -> bool:
        return self.window(now) in (WindowState.ALWAYS, WindowState.OPEN)


def slugify(name: str) -> str:
    """A stable id from a name: `Week Warrior!` -> `week-warrior`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:MAX_ID].strip("-")


def name_key(name: str) -> str:
    """What makes two names the same name: Unicode-aware, unlike SQLite's ASCII-only NOCASE.

    `École`, `ÉCOLE` and `ｅｃｏｌｅ` (full width) share a key; runs of spaces count as one."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())
