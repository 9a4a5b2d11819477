"""The rollover's streak reset in storage, on both backends: which members lose their streak, and that the
reset touches no index (so PostgreSQL can keep each update on its page, a HOT update)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date

import pytest

from bot.engine.stats import MemberStats
from bot.storage import Storage
from tests.support.backends import Backend

GUILD = 1001
OTHER_GUILD = 2002
CLOSED_DAY = date(2026, 1, 5)


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[Storage]:
    opened = await backend.open()
    yield opened
    await opened.close()


async def member_stats_indexes(storage: Storage) -> dict[str, str]:
    """Every index of member_stats (primary key included) by name, with its definition."""
    if storage.db.dialect.name == "postgres":
        rows = await storage.db.fetch_all(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ?", "member_stats"
        )
    else:
        rows = await storage.db.fetch_all(
            "SELECT name, COALESCE(sql, '') FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
            "member_stats",
        )
    return {name: definition for name, definition in rows}


async def test_no_index_of_member_stats_involves_the_streak(storage: Storage) -> None:
    indexes = member_stats_indexes(storage)

    assert {name: d for name, d in (await indexes).items() if "streak" in d.lower()} == {}


async def test_reset_streaks_reaches_every_member_whatever_the_chunk_size(storage: Storage) -> None:
    rng = random.Random(11)
    ids = [*sorted(rng.sample(range(10**17, 10**18), 40)), 1, 2, 1023]
    members = {
        member_id: MemberStats(
            {"streak": rng.choice((0, 1, 3)), "best_streak": 3},
            last_active=rng.choice((None, date(2026, 1, 3), date(2026, 1, 4), CLOSED_DAY)),
        )
        for member_id in ids
    }
    async with storage.db.transaction() as tx:
        await storage.members.save_stats(tx, [(GUILD, m, s) for m, s in members.items()])
        await storage.members.save_stats(tx, [(OTHER_GUILD, m, s) for m, s in members.items()])
    losing = {m for m, s in members.items()
              if s.get("streak") > 0 and (s.last_active is None or s.last_active < CLOSED_DAY)}

    reset = await storage.members.reset_streaks(GUILD, CLOSED_DAY, chunk=3)

    after = await storage.members.load_many(GUILD, ids)
    elsewhere = await storage.members.load_many(OTHER_GUILD, ids)
    assert reset == len(losing)
    assert {m: stats.get("streak") for m, (stats, _) in after.items()} == {
        m: 0 if m in losing else s.get("streak") for m, s in members.items()
    }
    assert {m: stats.get("streak") for m, (stats, _) in elsewhere.items()} == {
        m: s.get("streak") for m, s in members.items()
    }
