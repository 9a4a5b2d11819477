"""The scheduler, the announcer and resumed bulk jobs act only for guilds on this process's shards (both
backends, no Discord)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import discord
import pytest

from bot.announcer import Announcer
from bot.clock import FakeClock
from bot.management import Management
from bot.ownership import Ownership
from bot.recorder import ActivityRecorder
from bot.scheduler import RETROACTIVE, Scheduler
from bot.storage import NewAnnouncement, Storage
from tests.support.backends import Backend

ON_SHARD_0 = (1000 << 22) | 1  # (id >> 22) % 2 == 0
ON_SHARD_1 = (1001 << 22) | 1
FIRST_SHARD, SECOND_SHARD = Ownership(2, [0]), Ownership(2, [1])
LATER = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass
class World:
    storage: Storage
    clock: FakeClock
    recorder: ActivityRecorder


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[World]:
    storage = await backend.open()
    clock = FakeClock(datetime(2026, 1, 5, 12, tzinfo=UTC))
    recorder = ActivityRecorder(storage, clock, flush_interval=3600)
    for guild_id in (ON_SHARD_0, ON_SHARD_1):
        await recorder.guild(guild_id)
    yield World(storage, clock, recorder)
    await recorder.close()
    await storage.close()


async def announce(world: World, guild_id: int, count: int = 1) -> None:
    payload = {"achievement_id": "first-steps", "name": "First steps", "points": 10}
    async with world.storage.db.transaction() as conn:
        await world.storage.outbox.add(
            conn, [NewAnnouncement(guild_id, 7, "unlock", None, payload) for _ in range(count)], world.clock.now()
        )


def announcer(world: World, ownership: Ownership) -> Announcer:
    # A client that is not logged in sees no guild: an owned guild's announcement is tried and fails.
    return Announcer(discord.Client(intents=discord.Intents.default()), world.storage, world.clock,
                     ownership=ownership)


async def test_a_non_owner_leaves_another_shards_announcement_untried(world: World) -> None:
    await announce(world, ON_SHARD_1)

    await announcer(world, FIRST_SHARD).deliver_due()

    (item,) = await world.storage.outbox.due(world.clock.now())
    assert (item.guild_id, item.attempts, item.post_key) == (ON_SHARD_1, 0, None)


async def test_the_owner_tries_its_announcement_even_behind_a_full_page_of_another_shards(world: World) -> None:
    await announce(world, ON_SHARD_1, count=450)
    await announce(world, ON_SHARD_0)

    await announcer(world, FIRST_SHARD).deliver_due()

    attempts = {(i.guild_id, i.attempts) for i in await world.storage.outbox.due(LATER, limit=1000)}
    assert attempts == {(ON_SHARD_1, 0), (ON_SHARD_0, 1)}


async def test_the_owner_tries_its_announcement_behind_any_number_of_another_shards(world: World) -> None:
    # More than a pass ever looked through when it paged past other shards' rows (12,800).
    await announce(world, ON_SHARD_1, count=13_000)
    await announce(world, ON_SHARD_0)

    await announcer(world, FIRST_SHARD).deliver_due()

    (ours,) = [i for i in await world.storage.outbox.due(LATER, limit=20_000) if i.guild_id == ON_SHARD_0]
    assert ours.attempts == 1


async def test_the_outbox_gives_a_process_only_the_announcements_of_its_shards(world: World) -> None:
    await announce(world, ON_SHARD_1, count=3)
    await announce(world, ON_SHARD_0, count=2)

    due_to_first = await world.storage.outbox.due(LATER, shards=(2, [0]))
    due_to_all = await world.storage.outbox.due(LATER, shards=(2, [0, 1]))

    assert [i.guild_id for i in due_to_first] == [ON_SHARD_0, ON_SHARD_0]
    assert len(due_to_all) == 5


async def test_rollovers_close_only_the_owned_guilds_days(world: World) -> None:
    world.clock.advance(timedelta(days=1))
    first = Scheduler(world.recorder, world.storage, world.clock, ownership=FIRST_SHARD)
    second = Scheduler(world.recorder, world.storage, world.clock, ownership=SECOND_SHARD)

    closed_by_first = await first.run_due_rollovers()
    closed_by_second = await second.run_due_rollovers()

    assert list(closed_by_first) == [ON_SHARD_0]
    assert list(closed_by_second) == [ON_SHARD_1]


async def test_a_non_owner_leaves_another_shards_retroactive_job_for_its_owner(world: World) -> None:
    achievement = next(iter((await world.recorder.guild(ON_SHARD_1)).rulebook.by_id))
    key = f"{RETROACTIVE}{ON_SHARD_1}:{achievement}"
    await world.storage.meta.set(key, world.clock.now().isoformat())
    scheduler = Scheduler(world.recorder, world.storage, world.clock, ownership=FIRST_SHARD)

    resumed = await scheduler.resume_retroactive()
    await scheduler.close()

    assert resumed == 0
    assert await world.storage.meta.keys_with_prefix(RETROACTIVE) == [key]


async def test_a_non_owner_leaves_another_shards_bulk_job_for_its_owner(world: World) -> None:
    async with world.storage.db.transaction() as tx:
        await world.storage.achievements.start_job(tx, ON_SHARD_1, "first-step", "repoint", 25, world.clock.now())
    scheduler = Scheduler(world.recorder, world.storage, world.clock, ownership=FIRST_SHARD)
    first = Management(world.storage, world.recorder, scheduler, world.clock, ownership=FIRST_SHARD)
    owner = Management(world.storage, world.recorder, scheduler, world.clock, ownership=SECOND_SHARD)

    assert await first.resume_bulk_jobs() == 0
    assert [job.guild_id for job in await world.storage.achievements.jobs()] == [ON_SHARD_1]
    assert await owner.resume_bulk_jobs() == 1
    assert await world.storage.achievements.jobs() == []
