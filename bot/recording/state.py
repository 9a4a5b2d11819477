"""What the recorder keeps in memory: a guild's rules and a member's counters, and the result of recording."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.engine.achievements import Achievement
from bot.engine.evaluator import RuleBook
from bot.engine.stats import MemberStats
from bot.engine.tiers import Tier
from bot.storage import GuildSettings

log = logging.getLogger(__name__)

Key = tuple[int, int]  # (guild_id, member_id)


@dataclass(slots=True)
class GuildState:
    settings: GuildSettings
    tz: ZoneInfo
    rulebook: RuleBook
    tiers: list[Tier]
    # member id -> achievements a moderator revoked: never earned again by a condition, only by a grant.
    # Rare, so the whole guild's are kept with it.
    revoked: dict[int, set[str]] = field(default_factory=dict)


@dataclass(slots=True)
class MemberState:
    stats: MemberStats
    unlocked: set[str]
    last_counted_message: datetime | None = None  # anti-spam cooldown; memory only

    def copy(self) -> tuple[MemberStats, set[str]]:
        return MemberStats(dict(self.stats.values), self.stats.last_active), set(self.unlocked)


@dataclass(slots=True)
class RecordResult:
    counted: bool
    unlocked: list[Achievement] = field(default_factory=list)
    tier_reached: Tier | None = None


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("unknown timezone %r in the database; using UTC", name)
        return ZoneInfo("UTC")
