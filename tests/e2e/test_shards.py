"""Shard processes against one simulator: each guild served by its owner only; a shard is never run twice.

The bots lease their shards on a real PostgreSQL database. Until the PostgreSQL storage backend lands, each
bot keeps its data in its own SQLite file: what is under test is who owns which guild.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from bot.app import AchievementsBot, running
from bot.clock import FakeClock
from bot.ownership import shard_of
from bot.settings import Settings, load_settings
from bot.storage.leases import ShardTaken
from discord_sim import DiscordSimulator, SimGuild, SimUser
from tests.e2e.activity_support import announcements, unlock_named
from tests.support.backends import fresh_database


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with fresh_database() as url:
        yield url


@pytest.fixture
def guilds(simulator: DiscordSimulator, clock: FakeClock) -> list[SimGuild]:
    """Four guilds a millisecond apart: their snowflakes alternate between the two shards."""
    created = []
    for index in range(4):
        clock.advance(timedelta(milliseconds=1))
        created.append(simulator.create_guild(f"Guild {index}"))
    assert [shard_of(g.id, 2) for g in created].count(0) == 2
    return created


@pytest.fixture
def alice(simulator: DiscordSimulator, guilds: list[SimGuild]) -> SimUser:
    alice = simulator.create_user("alice")
    for guild in guilds:
        simulator.add_member(guild.id, alice.id)
    return alice


def environment(simulator: DiscordSimulator, database_url: str, database: Path, shard_ids: str,
                **extra: str) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": simulator.token,
        "DATABASE_PATH": str(database),
        "DATABASE_URL": database_url,
        "SHARD_COUNT": "2",
        "SHARD_IDS": shard_ids,
        "DISCORD_API_BASE": simulator.api_base,
        "DISCORD_GATEWAY_URL": simulator.gateway_url,
        "DISCORD_CDN_URL": simulator.cdn_base,
        "PRIVILEGED_INTENTS": "members,message_content,presences",
        **extra,
    }


def shard_settings(simulator: DiscordSimulator, database_url: str, tmp_path: Path, shard_ids: str,
                   **extra: str) -> Settings:
    """A shard process's settings, as `python -m bot` reads them; each process its own SQLite file for now."""
    name = f"shard-{shard_ids}-{len(list(tmp_path.iterdir()))}.db"
    return load_settings(environment(simulator, database_url, tmp_path / name, shard_ids, **extra))


async def launch(stack: AsyncExitStack, settings: Settings, clock: FakeClock) -> AchievementsBot:
    return await stack.enter_async_context(
        running(settings, clock=clock, ready_timeout=15, guild_ready_timeout=0.1, lease_retry=0.1)
    )


def identifies(simulator: DiscordSimulator, shard_id: int) -> int:
    return sum(1 for p in simulator.gateway.identify_payloads if p.get("shard") == [shard_id, 2])


def owner_of(guild: SimGuild, bots: dict[int, AchievementsBot]) -> AchievementsBot:
    return bots[shard_of(guild.id, 2)]


async def test_each_guilds_unlocks_are_announced_once_by_the_process_owning_its_shard(
    simulator: DiscordSimulator, clock: FakeClock, database_url: str, tmp_path: Path, guilds: list[SimGuild],
    alice: SimUser,
) -> None:
    async with AsyncExitStack() as stack:
        bots = {shard: await launch(stack, shard_settings(simulator, database_url, tmp_path, str(shard)), clock)
                for shard in (0, 1)}
        for guild in guilds:
            await simulator.send_message(guild.system_channel_id or 0, alice.id, "hello everyone")
        for guild in guilds:
            await simulator.wait_for(lambda g=guild: unlock_named(announcements(simulator, g.system_channel_id or 0),
                                                                  "First Step"))
        for bot in bots.values():
            await bot.recorder.flush()
            await bot.announcer.deliver_due()

        for guild in guilds:
            owner, other = owner_of(guild, bots), bots[1 - shard_of(guild.id, 2)]
            posted = unlock_named(announcements(simulator, guild.system_channel_id or 0), "First Step")
            assert len(posted) == 1, f"guild {guild.name} got {len(posted)} First Step announcements"
            # One shared database: the guild's one announcement is sent, and only its owner ever loaded the
            # guild (recorded its activity, and so wrote and posted the announcement).
            assert await owner.storage.outbox.counts(guild.id) == {"sent": 1}
            assert owner.recorder.cached_guild(guild.id) is not None
            assert other.recorder.cached_guild(guild.id) is None
    assert (identifies(simulator, 0), identifies(simulator, 1)) == (1, 1)


async def test_a_third_process_asking_for_an_owned_shard_exits_with_one_line_and_never_identifies(
    simulator: DiscordSimulator, clock: FakeClock, database_url: str, tmp_path: Path, guilds: list[SimGuild],
) -> None:
    async with AsyncExitStack() as stack:
        for shard in (0, 1):
            await launch(stack, shard_settings(simulator, database_url, tmp_path, str(shard)), clock)
        env = {**environment(simulator, database_url, tmp_path / "third.db", "1"), "PATH": os.environ["PATH"]}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)

        assert process.returncode == 2
        lines = stderr.decode().strip().splitlines()
        assert len(lines) == 1, lines
        assert "shard 1 of 2 is already owned by achievements-bot shards 1 of 2" in lines[0]
        assert stdout == b""
        assert identifies(simulator, 1) == 1
        assert not (tmp_path / "third.db").exists()


async def test_a_process_refused_in_process_opens_no_gateway_session(
    simulator: DiscordSimulator, clock: FakeClock, database_url: str, tmp_path: Path, guilds: list[SimGuild],
) -> None:
    async with AsyncExitStack() as stack:
        await launch(stack, shard_settings(simulator, database_url, tmp_path, "0"), clock)
        with pytest.raises(ShardTaken, match="shard 0 of 2"):
            await launch(stack, shard_settings(simulator, database_url, tmp_path, "0-1"), clock)

        assert (identifies(simulator, 0), identifies(simulator, 1)) == (1, 0)


async def test_a_waiting_process_takes_over_the_shard_when_its_owner_stops_and_serves_its_guilds(
    simulator: DiscordSimulator, clock: FakeClock, database_url: str, tmp_path: Path, guilds: list[SimGuild],
    alice: SimUser,
) -> None:
    first = AsyncExitStack()
    await launch(first, shard_settings(simulator, database_url, tmp_path, "1"), clock)
    standby_settings = shard_settings(simulator, database_url, tmp_path, "1", SHARD_WAIT="1")
    took_over: asyncio.Future[AchievementsBot] = asyncio.get_running_loop().create_future()
    done = asyncio.Event()

    async def standby() -> None:
        async with AsyncExitStack() as stack:
            took_over.set_result(await launch(stack, standby_settings, clock))
            await done.wait()

    waiting = asyncio.create_task(standby())
    try:
        await asyncio.sleep(0.5)
        assert not took_over.done() and identifies(simulator, 1) == 1

        await first.aclose()
        bot = await asyncio.wait_for(took_over, 15)
        guild = next(g for g in guilds if shard_of(g.id, 2) == 1)
        await simulator.send_message(guild.system_channel_id or 0, alice.id, "back again")
        await simulator.wait_for(lambda: unlock_named(announcements(simulator, guild.system_channel_id or 0),
                                                      "First Step"))

        assert identifies(simulator, 1) == 2
        assert [u.achievement_id for u in await bot.storage.members.unlocks_of(guild.id, alice.id)] == ["first-step"]
    finally:
        done.set()
        await first.aclose()
        await waiting


async def test_a_process_that_loses_its_lease_connection_stops_owning_and_shuts_down(
    simulator: DiscordSimulator, clock: FakeClock, database_url: str, tmp_path: Path, guilds: list[SimGuild],
) -> None:


    async with AsyncExitStack() as stack:
        bot = await launch(stack, shard_settings(simulator, database_url, tmp_path, "0"), clock)
        guild = next(g for g in guilds if shard_of(g.id, 2) == 0)
        assert bot.ownership.owns(guild.id)
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name LIKE 'achievements-bot shards 0 of 2@%'")
        finally:
            await admin.close()

        await simulator.wait_for(bot.is_closed, timeout=15)

        assert not bot.ownership.owns(guild.id)
        assert bot.leases is not None and "lease connection" in bot.leases.lost_reason


async def test_only_the_process_owning_shard_0_syncs_slash_commands(
    simulator: DiscordSimulator, clock: FakeClock, database_url: str, tmp_path: Path, guilds: list[SimGuild],
) -> None:
    async with AsyncExitStack() as stack:
        await launch(stack, shard_settings(simulator, database_url, tmp_path, "1"), clock)
        synced_by_shard_1 = len(simulator.requests_to("PUT", "/commands$"))
        await launch(stack, shard_settings(simulator, database_url, tmp_path, "0"), clock)

        assert synced_by_shard_1 == 0
        assert len(simulator.requests_to("PUT", "/commands$")) == 1
        assert simulator.synced_commands()
