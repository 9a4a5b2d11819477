"""The points histogram behind ranks and member counts stays equal to a count over member_stats,
whatever writes the stats: upserts, leaving and rejoining, bulk changes, deletes."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from bot.engine.stats import MemberStats
from bot.storage import Storage
from tests.support.backends import Backend

GUILD = 7
OTHER_GUILD = 8
# Discord-like ids: large, spread over many tie blocks (member_id % 1024), some sharing a block.
SNOWFLAKES = [random.Random(i).randrange(10**17, 10**18) for i in range(40)] + [2048, 3072, 1024 + 5, 5]


async def histogram(storage: Storage) -> dict[tuple[int, int], int]:
    rows = await storage.db.fetch_all(
        "SELECT guild_id, points, members FROM points_histogram WHERE members != 0"
    )
    return {(g, p): m for g, p, m in rows}


async def tie_blocks(storage: Storage) -> dict[tuple[int, int, int], int]:
    rows = await storage.db.fetch_all(
        "SELECT guild_id, points, block, members FROM tie_blocks WHERE members != 0"
    )
    return {(g, p, b): m for g, p, b, m in rows}


async def recount_blocks(storage: Storage) -> dict[tuple[int, int, int], int]:
    rows = await storage.db.fetch_all(
        "SELECT guild_id, points, member_id % 1024, COUNT(*) FROM member_stats WHERE in_guild = 1 "
        "GROUP BY guild_id, points, member_id % 1024"
    )
    return {(g, p, b): m for g, p, b, m in rows}


async def recount(storage: Storage) -> dict[tuple[int, int], int]:
    rows = await storage.db.fetch_all(
        "SELECT guild_id, points, COUNT(*) FROM member_stats WHERE in_guild = 1 GROUP BY guild_id, points"
    )
    return {(g, p): m for g, p, m in rows}


async def recorder_free_guild(storage: Storage, guild: int) -> None:
    """A guild whose First Step gives 10 points, so that unlocks of it can be stored."""
    from bot.engine.achievements import Achievement
    from bot.engine.conditions import parse_condition

    first_step = Achievement("first-step", "First Step", "Say hi.", 10, parse_condition("messages >= 1"))
    async with storage.db.transaction() as conn:
        await storage.achievements.save(conn, guild, first_step, datetime(2026, 1, 1, tzinfo=UTC))


async def settle(storage: Storage, guild: int) -> None:
    """Run an achievement's bulk job to its end, two holders per chunk."""
    while True:
        async with storage.db.transaction() as conn:
            job = await storage.achievements.job(guild, "first-step")
            if job is None or await storage.achievements.run_job_chunk(conn, job, 2) is None:
                return


async def test_histogram_matches_a_recount_after_random_writes(backend: Backend) -> None:
    storage = await backend.open()
    for guild in (GUILD, OTHER_GUILD):
        await recorder_free_guild(storage, guild)
    rng = random.Random(3)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(300):
        guild = rng.choice((GUILD, OTHER_GUILD))
        member = rng.choice(SNOWFLAKES)
        action = rng.random()
        if action < 0.6:
            async with storage.db.transaction() as conn:
                stats = MemberStats({"points": rng.choice((0, 10, 35, 35, 100)), "messages": rng.randint(0, 9)})
                await storage.members.save_stats(conn, [(guild, member, stats)])
        elif action < 0.75:
            await storage.members.set_in_guild(guild, member, rng.random() < 0.5)
        elif action < 0.85:
            async with storage.db.transaction() as conn:
                await storage.members.insert_unlocks(conn, [(guild, member, "first-step", now)])
                await storage.achievements.start_job(conn, guild, "first-step", "repoint", rng.choice((5, 15)), now)
            await settle(storage, guild)
        elif action < 0.95:
            async with storage.db.transaction() as conn:
                await storage.achievements.start_job(conn, guild, "first-step", "remove", 0, now)
            await settle(storage, guild)
        else:
            async with storage.db.transaction() as conn:
                await storage.members.delete_member(conn, guild, member)
        assert await histogram(storage) == await recount(storage)
        assert await tie_blocks(storage) == await recount_blocks(storage)
    await storage.close()


async def test_rank_and_count_agree_with_a_brute_force_ranking(backend: Backend) -> None:
    storage = await backend.open()
    points = {member: random.Random(member).choice((0, 10, 10, 35, 60, 200)) for member in SNOWFLAKES}
    async with storage.db.transaction() as conn:
        await storage.members.save_stats(conn, [(GUILD, m, MemberStats({"points": p})) for m, p in points.items()])
    await storage.members.set_in_guild(GUILD, SNOWFLAKES[3], False)
    ranked = {m: p for m, p in points.items() if m != SNOWFLAKES[3]}
    assert await storage.members.count(GUILD) == len(ranked)
    for member, own in ranked.items():
        expected_rank = 1 + sum(1 for p in ranked.values() if p > own)
        assert await storage.members.rank_for_points(GUILD, own) == expected_rank
        order = sorted(ranked, key=lambda m: (-ranked[m], m % 1024, m))
        assert await storage.members.position_of(GUILD, member, own) == order.index(member)
    await storage.close()


async def test_every_leaderboard_page_lists_members_in_order_with_shared_ranks(backend: Backend) -> None:
    storage = await backend.open()
    points = {member: (member * 7) % 5 * 10 for member in SNOWFLAKES}
    async with storage.db.transaction() as conn:
        await storage.members.save_stats(conn, [(GUILD, m, MemberStats({"points": p})) for m, p in points.items()])
    order = sorted(points, key=lambda m: (-points[m], m % 1024, m))
    seen = []
    for offset in range(0, 50, 4):
        page = await storage.members.leaderboard_page(GUILD, offset, 4)
        seen.extend(page)
        assert [r.member_id for r in page] == order[offset:offset + 4]
    assert [r.member_id for r in seen] == order
    for row in seen:
        assert row.rank == 1 + sum(1 for p in points.values() if p > row.points)
    await storage.close()
