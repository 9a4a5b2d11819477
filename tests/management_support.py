"""Shared helpers for the moderation tests: a bot without Discord on a real database (either backend), and the
invariants every moderator change must keep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.clock import FakeClock
from bot.engine.stats import Activity, ActivityKind
from bot.management import Management
from bot.recording import ActivityRecorder
from bot.scheduler import Scheduler
from bot.services import Services
from bot.storage import Storage
from tests.support.services import open_services

GUILD = 1001
OTHER_GUILD = 2002
MODERATOR = 99
START = datetime(2026, 1, 5, 12, tzinfo=UTC)


@dataclass
class Bot:
    """The services `python -m bot` builds (bot.services), without the Discord client."""

    path: Path | str  # a SQLite file, or a PostgreSQL URL
    services: Services
    clock: FakeClock

    @property
    def storage(self) -> Storage:
        return self.services.storage

    @property
    def recorder(self) -> ActivityRecorder:
        return self.services.recorder

    @property
    def scheduler(self) -> Scheduler:
        return self.services.scheduler

    @property
    def management(self) -> Management:
        return self.services.management

    def message(self, member_id: int, guild_id: int = GUILD) -> Activity:
        return Activity(guild_id, member_id, ActivityKind.MESSAGE, self.clock.now(), channel_id=5)

    async def close(self) -> None:
        await self.services.close()


async def open_bot(path: Path | str, *, bulk_chunk: int = 5000, max_cached_members: int = 100_000) -> Bot:
    clock = FakeClock(START)
    services = await open_services(path, clock, bulk_chunk=bulk_chunk, max_cached_members=max_cached_members)
    await services.recorder.guild(GUILD)
    return Bot(path, services, clock)


async def members_who_said_something(bot: Bot, members: int, guild_id: int = GUILD) -> None:
    """`members` members with one message each: every one of them holds First Step (10 points)."""
    await bot.recorder.record_many([bot.message(m, guild_id) for m in range(1, members + 1)])
    await bot.recorder.flush()


async def totals_not_matching_stored_points(storage: Storage, guild_id: int = GUILD) -> list[tuple[int, int, int]]:
    """The invariant of points: each member's total and count equal the sum of the stored points of the
    achievements they hold, and the number of them. Returns (member, total, expected) for those that differ."""
    rows = await storage.db.fetch_all(
        "SELECT m.member_id, m.points, COALESCE(SUM(a.points), 0), m.achievements, COUNT(a.achievement_id) "
        "FROM member_stats m LEFT JOIN unlocks u ON u.guild_id = m.guild_id AND u.member_id = m.member_id "
        "LEFT JOIN achievements a ON a.guild_id = u.guild_id AND a.achievement_id = u.achievement_id "
        "WHERE m.guild_id = ? GROUP BY m.guild_id, m.member_id, m.points, m.achievements",
        guild_id,
    )
    return [(m, total, expected) for m, total, expected, count, held in rows if total != expected or count != held]


async def stored_points(storage: Storage, achievement_id: str, guild_id: int = GUILD) -> int | None:
    found = await storage.achievements.get(guild_id, achievement_id)
    return found.points if found else None
