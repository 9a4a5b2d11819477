"""Specification of shard leases on a real PostgreSQL server: one holder per shard, handed over when it goes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bot.storage.leases import LeaseError, ShardLeases, ShardTaken
from tests.support.backends import fresh_database


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with fresh_database() as url:
        yield url


@pytest.fixture
async def holders(database_url: str) -> AsyncIterator[list[ShardLeases]]:
    """Lease holders the test opens with `holders.append(await ShardLeases.connect(...))`; all closed after."""
    opened: list[ShardLeases] = []
    yield opened
    for leases in opened:
        await leases.close()


async def holder(database_url: str, opened: list[ShardLeases], name: str = "bot", **options: float) -> ShardLeases:
    leases = await ShardLeases.connect(database_url, name=name, **options)
    opened.append(leases)
    return leases


async def end_sessions(database_url: str, name: str) -> None:
    """The server ends the sessions of process `name`, as when it is killed or its network is cut."""
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1", f"{name}@%"
        )
    finally:
        await admin.close()


async def test_a_second_process_is_refused_a_shard_the_first_owns_with_a_line_naming_the_owner(
    database_url: str, holders: list[ShardLeases]
) -> None:
    first = await holder(database_url, holders, "shard-0-process")
    await first.acquire(2, [0])
    second = await holder(database_url, holders, "late-process")

    with pytest.raises(ShardTaken) as refused:
        await second.acquire(2, [0])

    message = str(refused.value)
    assert "shard 0 of 2" in message and "shard-0-process" in message and "SHARD_WAIT" in message
    assert "\n" not in message


async def test_two_processes_own_different_shards_at_once(database_url: str, holders: list[ShardLeases]) -> None:
    first, second = await holder(database_url, holders), await holder(database_url, holders)

    await first.acquire(2, [0])
    await second.acquire(2, [1])

    assert (first.shards, second.shards) == ((0,), (1,))


async def test_a_shard_is_free_again_once_its_owner_closes(database_url: str, holders: list[ShardLeases]) -> None:
    first = await holder(database_url, holders)
    await first.acquire(2, [1])
    await first.close()
    second = await holder(database_url, holders)

    await second.acquire(2, [1])

    assert second.shards == (1,)


async def test_a_refused_process_keeps_none_of_the_shards_it_asked_for(
    database_url: str, holders: list[ShardLeases]
) -> None:
    owner = await holder(database_url, holders)
    await owner.acquire(2, [1])
    greedy = await holder(database_url, holders)
    with pytest.raises(ShardTaken):
        await greedy.acquire(2, [0, 1])
    third = await holder(database_url, holders)

    await third.acquire(2, [0])

    assert third.shards == (0,)


async def test_a_waiting_process_takes_the_shard_over_when_its_owner_goes(
    database_url: str, holders: list[ShardLeases]
) -> None:
    owner = await holder(database_url, holders)
    await owner.acquire(2, [0])
    standby = await holder(database_url, holders)
    waiting = asyncio.create_task(standby.acquire(2, [0], wait=True, retry_interval=0.05))
    await asyncio.sleep(0.3)
    assert not waiting.done()

    await owner.close()
    await asyncio.wait_for(waiting, 5)

    assert standby.shards == (0,)


async def test_a_process_killed_without_closing_frees_its_shards_for_a_waiting_one(
    database_url: str, holders: list[ShardLeases]
) -> None:
    owner = await holder(database_url, holders, "doomed")
    await owner.acquire(2, [0])
    standby = await holder(database_url, holders)
    waiting = asyncio.create_task(standby.acquire(2, [0], wait=True, retry_interval=0.05))

    # What kill -9 leaves behind: the server ends the session; nobody calls close().
    await end_sessions(database_url, "doomed")
    await asyncio.wait_for(waiting, 5)

    assert standby.shards == (0,)


async def test_losing_the_lease_connection_tells_the_owner_once_with_the_reason(
    database_url: str, holders: list[ShardLeases]
) -> None:
    owner = await holder(database_url, holders, "cut-off", check_interval=0.05)
    reasons: list[str] = []
    owner.on_lost(reasons.append)
    await owner.acquire(2, [0])

    await end_sessions(database_url, "cut-off")
    await asyncio.wait_for(owner.lost.wait(), 5)
    await asyncio.sleep(0.2)  # a later health check must not report it again

    assert len(reasons) == 1 and "lease connection" in reasons[0]


async def test_closing_the_leases_is_not_reported_as_a_loss(database_url: str, holders: list[ShardLeases]) -> None:
    owner = await holder(database_url, holders, check_interval=0.05)
    await owner.acquire(2, [0])

    await owner.close()
    await asyncio.sleep(0.1)

    assert not owner.lost.is_set()


async def test_processes_with_different_shard_counts_are_refused(
    database_url: str, holders: list[ShardLeases]
) -> None:
    first = await holder(database_url, holders)
    await first.acquire(2, [0])
    second = await holder(database_url, holders)

    with pytest.raises(LeaseError) as refused:
        await second.acquire(4, [1], wait=True, retry_interval=0.05)

    assert "SHARD_COUNT=4" in str(refused.value) and "SHARD_COUNT=2" in str(refused.value)


async def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    with pytest.raises(LeaseError) as refused:
        await ShardLeases.connect("postgresql://bot:hunter2@127.0.0.1:1/achievements")

    message = str(refused.value)
    assert "cannot reach PostgreSQL" in message and "hunter2" not in message and "\n" not in message
