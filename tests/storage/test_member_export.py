"""Members read for a data export in pages: every member once, in id order, with their own stats and unlocks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest

from bot.engine.achievements import Achievement
from bot.engine.conditions import parse_condition
from bot.engine.stats import MemberStats
from bot.storage import Storage
from tests.support.backends import Backend

GUILD, OTHER_GUILD = 1, 2
AT = datetime(2026, 1, 5, 12, tzinfo=UTC)


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[Storage]:
    opened = await backend.open()
    async with opened.db.transaction() as conn:
        # An unlock is stored only for an achievement that exists.
        for guild_id, achievement_id in ((GUILD, "first-step"), (GUILD, "chatterbox"), (OTHER_GUILD, "legend")):
            await opened.achievements.save(conn, guild_id, Achievement(
                achievement_id, achievement_id.title(), "Test.", 10, parse_condition("messages >= 1")), AT)
        await opened.members.save_stats(conn, [
            (GUILD, member_id, MemberStats({"messages": member_id * 10, **({"lessons": member_id} if member_id % 2
                                                                          else {})}, date(2026, 1, 5)))
            for member_id in (5, 1, 4, 2, 3)
        ] + [(OTHER_GUILD, 3, MemberStats({"messages": 99}))])
        await opened.members.insert_unlocks(conn, [(GUILD, m, "first-step", AT) for m in (1, 3, 5)]
                                            + [(GUILD, 3, "chatterbox", AT), (OTHER_GUILD, 3, "legend", AT)])
    yield opened
    await opened.close()


async def test_pages_hold_every_member_of_the_guild_once_in_id_order(storage: Storage) -> None:
    pages = [[m["member_id"] for m in page] async for page in storage.members.export(GUILD, page_size=2)]

    assert pages == [[1, 2], [3, 4], [5]]


async def test_each_member_carries_its_own_custom_stats_and_unlocks_across_page_edges(storage: Storage) -> None:
    members = {m["member_id"]: m async for page in storage.members.export(GUILD, page_size=2) for m in page}

    assert members[3]["messages"] == 30
    assert members[3]["custom"] == {"lessons": 3}
    assert sorted(u["achievement_id"] for u in members[3]["unlocks"]) == ["chatterbox", "first-step"]
    assert members[4]["custom"] == {} and members[4]["unlocks"] == []
    assert [u["achievement_id"] for u in members[5]["unlocks"]] == ["first-step"]


async def test_a_guild_without_members_exports_no_page(storage: Storage) -> None:
    assert [page async for page in storage.members.export(3)] == []
