"""Races between activities, moderator bulk changes and retroactive walks never lose or double points."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.engine.stats import Activity, ActivityKind
from bot.recording import ActivityRecorder
from bot.scheduler import Scheduler
from bot.services import Services
from bot.storage import Storage
from bot.storage.sqlite import SqliteDatabase
from tests.management_support import Bot, open_bot
from tests.support.backends import Backend
from tests.support.services import open_services

GUILD = 1001
MODERATOR = 99


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[Bot]:
    opened = await open_bot(await backend.target(), max_cached_members=100)
    yield opened
    await opened.close()


async def stored_counts_disagreeing_with_unlocks(storage: Storage) -> int:
    row = await storage.db.fetch_one(
        "SELECT COUNT(*) FROM member_stats m WHERE guild_id = ? AND achievements != "
        "(SELECT COUNT(*) FROM unlocks u WHERE u.guild_id = m.guild_id AND u.member_id = m.member_id)",
        GUILD,
    )
    return int(row[0]) if row else -1


async def test_revoking_an_unlock_not_yet_written_leaves_no_unlock_and_no_announcement(world: Bot) -> None:
    result = await world.recorder.record(world.message(7))
    first_step = result.unlocked[0]
    assert await world.recorder.revoke(GUILD, 7, first_step.id, first_step.points)
    await world.recorder.flush()

    stats, unlocked = await world.storage.members.load(GUILD, 7)
    assert unlocked == set()
    assert stats.get("points") == 0 and stats.get("achievements") == 0
    assert await world.storage.outbox.due(datetime(2100, 1, 1, tzinfo=UTC)) == []


async def test_a_retroactive_walk_during_a_member_reset_keeps_points_and_unlocks_consistent(world: Bot) -> None:
    members = 3000
    await world.recorder.record_many([world.message(m) for m in range(1, members + 1)])
    await world.recorder.flush()
    await world.management.add_achievement(GUILD, MODERATOR, name="Talker", description="Say anything.", points=7,
                                           condition="messages >= 1")
    walk = next(iter(world.scheduler._background))
    await asyncio.sleep(0.01)
    await world.management.reset_member(GUILD, MODERATOR, members + 50)  # another moderator, mid-walk
    await walk
    await world.recorder.flush()
    assert await stored_counts_disagreeing_with_unlocks(world.storage) == 0
    row = await world.storage.db.fetch_one(
        "SELECT COUNT(*) FROM unlocks WHERE guild_id = ? AND achievement_id = 'talker'", GUILD
    )
    assert row is not None and row[0] == members


async def test_an_achievement_removed_while_a_walk_holds_a_chunk_does_not_come_back(world: Bot) -> None:
    await world.recorder.record(world.message(7))
    await world.recorder.flush()
    await world.recorder.reload_guild(GUILD)  # member 7 is no longer cached, as in a large guild
    world.recorder.members.forget((GUILD, 7))

    original = world.storage.members.load_chunk
    reading, release = asyncio.Event(), asyncio.Event()

    async def slow_load_chunk(*args: object, **kwargs: object) -> object:
        rows = await original(*args, **kwargs)  # type: ignore[arg-type]
        reading.set()
        await release.wait()  # the removal lands while this chunk is in hand
        return rows

    world.storage.members.load_chunk = slow_load_chunk  # type: ignore[method-assign]
    guild = await world.recorder.guild(GUILD)
    walk = asyncio.create_task(world.recorder.reevaluate(GUILD, list(guild.rulebook.achievements)))
    await reading.wait()
    world.storage.members.load_chunk = original  # type: ignore[method-assign]
    assert await world.management.remove_achievement(GUILD, MODERATOR, "first-step") == 1
    release.set()
    await walk

    world.clock.advance(timedelta(minutes=1))
    await world.recorder.record(world.message(7))
    await world.recorder.flush()
    stats, unlocked = await world.storage.members.load(GUILD, 7)
    assert "first-step" not in unlocked
    assert stats.get("points") == 0


async def test_closing_right_after_an_unlock_writes_its_announcement_once(backend: Backend) -> None:
    for attempt in range(10):
        storage = await backend.open(f"close-{attempt}")
        clock = FakeClock()
        recorder = ActivityRecorder(storage, clock, flush_interval=0.01)
        recorder.start()
        await recorder.record(Activity(GUILD, 7, ActivityKind.MESSAGE, clock.now(), channel_id=5))
        await asyncio.sleep(attempt * 0.01)
        await recorder.close()
        assert len(await storage.outbox.due(datetime(2100, 1, 1, tzinfo=UTC))) == 1
        await storage.close()


async def test_two_moderators_adding_achievements_with_the_same_id_at_once_both_keep_theirs(world: Bot) -> None:
    await world.recorder.record_many([world.message(m) for m in range(1, 2000)])
    await world.recorder.flush()
    first, second = await asyncio.gather(
        world.management.add_achievement(GUILD, 1, name="Helper", description="Help five times.", points=50,
                                         condition="messages >= 5"),
        world.management.add_achievement(GUILD, 2, name="Helper!", description="Give 100 reactions.", points=200,
                                         condition="reactions_given >= 100"),
    )
    stored = {a.id: a.name for a in await world.storage.achievements.list(GUILD)}
    assert stored[first.achievement.id] == "Helper"
    assert stored[second.achievement.id] == "Helper!"
    assert first.achievement.id != second.achievement.id
    for job in list(world.scheduler._background):
        await job


async def test_a_retroactive_job_cut_off_by_a_shutdown_resumes_at_the_next_start(world: Bot) -> None:
    members = 3000
    await world.recorder.record_many([world.message(m) for m in range(1, members + 1)])
    await world.recorder.flush()
    await world.management.add_achievement(GUILD, MODERATOR, name="Talker", description="Say anything.", points=7,
                                           condition="messages >= 1")
    await world.scheduler.close()  # shutdown while the walk has barely started
    assert await world.storage.meta.keys_with_prefix("retroactive:") == [f"retroactive:{GUILD}:talker"]

    restarted = Scheduler(world.recorder, world.storage, world.clock)
    assert await restarted.resume_retroactive() == 1
    for job in list(restarted._background):
        await job
    await world.recorder.flush()
    row = await world.storage.db.fetch_one(
        "SELECT COUNT(*) FROM unlocks WHERE guild_id = ? AND achievement_id = 'talker'", GUILD
    )
    assert row is not None and row[0] == members
    assert await world.storage.meta.keys_with_prefix("retroactive:") == []
    await restarted.close()


async def test_submitted_activities_of_a_member_not_cached_are_applied_in_order_once_loaded(world: Bot) -> None:
    await world.recorder.record(world.message(7))
    await world.recorder.flush()
    await world.recorder.reload_guild(GUILD)
    world.recorder.members.forget((GUILD, 7))  # a member not in memory, as in a large guild
    for _ in range(12):
        world.clock.advance(timedelta(minutes=1))
        world.recorder.submit(world.message(7))
    await world.recorder.drained()
    await world.recorder.flush()
    stats, unlocked = await world.storage.members.load(GUILD, 7)
    assert stats.get("messages") == 13
    assert {"first-step", "chatterbox"} <= unlocked
    outbox = await world.storage.outbox.due(datetime(2100, 1, 1, tzinfo=UTC))
    assert [i.payload["achievement_id"] for i in outbox if i.kind == "unlock"] == ["first-step", "chatterbox"]


async def test_activities_submitted_during_a_bulk_change_wait_for_it(world: Bot) -> None:
    await world.recorder.record(world.message(7))
    async with world.recorder.paused(GUILD) as conn:
        world.recorder.submit(world.message(7))
        await world.storage.members.delete_member(conn, GUILD, 7)
    await world.recorder.drained()
    await world.recorder.flush()
    stats, unlocked = await world.storage.members.load(GUILD, 7)
    assert stats.get("messages") == 1  # counted after the reset, not lost in it nor added before it
    assert unlocked == {"first-step"}


async def _unlocked_count(storage: Storage, achievement_id: str) -> int:
    row = await storage.db.fetch_one(
        "SELECT COUNT(*) FROM unlocks WHERE guild_id = ? AND achievement_id = ?", GUILD, achievement_id
    )
    return int(row[0]) if row else -1


async def test_a_walk_never_caches_a_member_row_read_before_their_last_flush(world: Bot) -> None:
    """A chunk read while a member is changed, flushed and evicted must not bring the old row back."""
    await world.recorder.record_many([world.message(m) for m in range(1, 301)])
    await world.recorder.flush()
    await world.recorder.record_many([world.message(301)])  # trims the cache to its 100 members
    assert (GUILD, 5) not in world.recorder.members  # member 5 is only in storage

    original = world.storage.members.load_chunk
    reads: list[asyncio.Event] = []
    releases = [asyncio.Event(), asyncio.Event()]

    async def held_load_chunk(*args: object, **kwargs: object) -> object:
        rows = await original(*args, **kwargs)  # type: ignore[arg-type]
        if len(reads) < len(releases):
            reads.append(asyncio.Event())
            reads[-1].set()
            await releases[len(reads) - 1].wait()
        return rows

    world.storage.members.load_chunk = held_load_chunk  # type: ignore[method-assign]
    guild = await world.recorder.guild(GUILD)
    walk = asyncio.create_task(world.recorder.reevaluate(GUILD, [guild.rulebook.by_id["living-legend"]], chunk=10))
    while not reads:
        await asyncio.sleep(0)
    # While the walk holds its first chunk (members 1-10), member 5 talks, is flushed and evicted.
    for _ in range(3):
        world.clock.advance(timedelta(minutes=1))
        await world.recorder.record(world.message(5))
    await world.recorder.flush()
    for other in range(302, 450):  # other members push 5 out of the cache
        await world.recorder.record(world.message(other))
    assert (GUILD, 5) not in world.recorder.members
    releases[0].set()
    while len(reads) < 2:
        await asyncio.sleep(0)
    # The walk holds its second chunk; member 5 talks again meanwhile, on whatever the walk cached.
    world.clock.advance(timedelta(minutes=1))
    await world.recorder.record(world.message(5))
    await world.recorder.flush()
    releases[1].set()
    await walk
    await world.recorder.flush()

    stats, _ = await world.storage.members.load(GUILD, 5)
    assert stats.get("messages") == 5


async def test_a_revoked_achievement_is_not_earned_again_by_the_next_message(world: Bot) -> None:
    await world.recorder.record(world.message(7))
    await world.management.revoke(GUILD, MODERATOR, 7, "first-step")
    world.clock.advance(timedelta(minutes=1))
    await world.recorder.record(world.message(7))
    await world.recorder.flush()

    stats, unlocked = await world.storage.members.load(GUILD, 7)
    assert "first-step" not in unlocked
    assert stats.get("points") == 0
    outbox = await world.storage.outbox.due(datetime(2100, 1, 1, tzinfo=UTC))
    assert [i.payload["achievement_id"] for i in outbox if i.kind == "unlock"] == []


async def test_a_revoke_outlasts_a_restart_and_a_retroactive_check_of_another_achievement(world: Bot) -> None:
    await world.recorder.record(world.message(7))
    await world.recorder.flush()
    await world.management.revoke(GUILD, MODERATOR, 7, "first-step")
    await world.recorder.reload_guild(GUILD)
    world.recorder.members.forget((GUILD, 7))  # as after a restart: read back from storage

    await world.management.add_achievement(GUILD, MODERATOR, name="Talker", description="Say anything.", points=7,
                                           condition="messages >= 1")
    for job in list(world.scheduler._background):
        await job
    world.clock.advance(timedelta(minutes=1))
    await world.recorder.record(world.message(7))
    await world.recorder.flush()

    _stats, unlocked = await world.storage.members.load(GUILD, 7)
    assert "talker" in unlocked
    assert "first-step" not in unlocked


async def test_granting_a_revoked_achievement_again_gives_it_back(world: Bot) -> None:
    await world.recorder.record(world.message(7))
    await world.management.revoke(GUILD, MODERATOR, 7, "first-step")
    await world.management.grant(GUILD, MODERATOR, 7, "first-step")
    await world.recorder.flush()
    stats, unlocked = await world.storage.members.load(GUILD, 7)
    assert "first-step" in unlocked
    assert stats.get("points") == 10
    # A grant ends the revoke for good: a later revoke-free life earns nothing twice either.
    world.recorder.members.forget((GUILD, 7))
    await world.recorder.record(world.message(7))
    await world.recorder.flush()
    assert (await world.storage.members.load(GUILD, 7))[0].get("points") == 10


class _Crash(Exception):
    """Stands for the process dying at this point: nothing after it runs."""


async def _two_thousand_talkers(backend: Backend) -> tuple[Path | str, FakeClock, Services]:
    """A guild whose 2,000 members each sent a message, all committed: a retroactive job has work to do."""
    path = await backend.target("crash")
    clock = FakeClock(datetime(2026, 1, 5, 12, tzinfo=UTC))
    services = await open_services(path, clock)
    await services.recorder.record_many([Activity(GUILD, m, ActivityKind.MESSAGE, clock.now(), channel_id=5)
                                         for m in range(1, 2001)])
    await services.recorder.flush()
    return path, clock, services


async def test_an_achievement_added_just_before_a_crash_is_still_checked_retroactively(backend: Backend) -> None:
    path, clock, services = await _two_thousand_talkers(backend)
    storage, recorder, management = services.storage, services.recorder, services.management

    async def crash(*_args: object) -> None:
        raise _Crash

    recorder.reload_guild = crash  # type: ignore[assignment,method-assign]  # dies right after the commit
    with pytest.raises(_Crash):
        await management.add_achievement(GUILD, MODERATOR, name="Talker", description="Say anything.", points=7,
                                          condition="messages >= 1")
    await storage.close()  # kill -9: the recorder's memory is gone

    services = await open_services(path, clock)
    storage, recorder, scheduler = services.storage, services.recorder, services.scheduler
    assert await scheduler.resume_retroactive() == 1
    for job in list(scheduler._background):
        await job
    await recorder.flush()
    assert await _unlocked_count(storage, "talker") == 2000
    await services.close()


async def test_a_finished_retroactive_check_has_committed_its_unlocks(backend: Backend) -> None:
    path, clock, services = await _two_thousand_talkers(backend)
    storage, recorder, management = services.storage, services.recorder, services.management
    await management.add_achievement(GUILD, MODERATOR, name="Talker", description="Say anything.", points=7,
                                      condition="messages >= 1")
    for job in list(services.scheduler._background):
        await job
    await storage.close()  # kill -9 the moment the job is crossed off: nothing staged gets flushed

    services = await open_services(path, clock)
    storage, recorder, scheduler = services.storage, services.recorder, services.scheduler
    await scheduler.resume_retroactive()
    for job in list(scheduler._background):
        await job
    await recorder.flush()
    assert await _unlocked_count(storage, "talker") == 2000
    await services.close()


async def test_writes_resume_in_bounded_batches_as_disk_space_comes_back(tmp_path: Path) -> None:
    """A full disk (SQLite's max_page_count stands in for it) must not pile every failed write into one
    transaction that no longer fits when a little space comes back. SQLite only: PostgreSQL has no per-database
    size limit to stand in for a full disk."""
    storage = await Storage.open(tmp_path / "full.db")
    assert isinstance(storage.db, SqliteDatabase)
    clock = FakeClock(datetime(2026, 1, 5, 12, tzinfo=UTC))
    recorder = ActivityRecorder(storage, clock, flush_interval=3600, max_batch=500, max_cached_members=10_000)
    await recorder.guild(GUILD)

    async def pages() -> int:
        async with storage.db.conn.execute("PRAGMA page_count") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def limit_pages(count: int) -> None:  # on both writing connections
        await storage.db.conn.execute(f"PRAGMA max_page_count = {count}")
        if storage.db.inline is not None:
            storage.db.inline.execute(f"PRAGMA max_page_count = {count}")

    full = await pages()
    await limit_pages(full)
    for round_ in range(4):
        await recorder.record_many([Activity(GUILD, m, ActivityKind.MESSAGE, clock.now(), channel_id=5)
                                    for m in range(round_ * 1500 + 1, round_ * 1500 + 1501)])
        with pytest.raises(Exception, match="full"):
            await recorder.flush()

    await limit_pages(full + 100)  # a little space comes back
    with pytest.raises(Exception, match="full"):
        await recorder.flush()
    assert await storage.members.count(GUILD) > 0  # what fitted was written

    await limit_pages(1073741823)
    await recorder.flush()
    assert await storage.members.count(GUILD) == 6000
    await recorder.close()
    await storage.close()


async def test_a_group_commit_needs_no_turn_of_a_busy_event_loop(tmp_path: Path) -> None:
    """Under a message flood the event loop is busy, and each turn of it takes long: a commit that needs a
    turn per statement (a thread hop each) lags seconds behind. Counted in turns, not timed."""
    storage = await Storage.open(tmp_path / "busy.db")
    clock = FakeClock(datetime(2026, 1, 5, 12, tzinfo=UTC))
    recorder = ActivityRecorder(storage, clock, flush_interval=3600)
    await recorder.record_many([Activity(GUILD, m, ActivityKind.MESSAGE, clock.now(), channel_id=5)
                                for m in range(1, 3001)])
    turns = 0
    busy = True

    async def gateway() -> None:  # stands for discord.py's reader: it runs once every turn of the loop
        nonlocal turns
        while busy:
            turns += 1
            await asyncio.sleep(0)

    reader = asyncio.create_task(gateway())
    await asyncio.sleep(0)
    before = turns
    await recorder.flush()
    needed = turns - before
    busy = False
    await reader

    assert needed <= 1
    assert await storage.members.count(GUILD) == 3000
    await recorder.close()
    await storage.close()
