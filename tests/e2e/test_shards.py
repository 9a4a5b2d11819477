"""Shard processes against one simulator and one PostgreSQL database: each guild served by its owner only; a
shard is never run twice; a process killed with SIGKILL loses at most a second of its guilds' activity."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, suppress
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
    """A shard process's settings, as `python -m bot` reads them (DATABASE_PATH unused: DATABASE_URL wins)."""
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


# The crash test's flood: a steady, paced stream per guild, so that a count of messages stands for a span of
# time (RATE messages are one second of a guild's activity) and no assertion reads a clock.
RATE = 100  # messages per second per guild
TICK = 0.02  # seconds between batches: RATE * TICK messages each
AUTHORS = 4


class BotProcess:
    """`python -m bot` for some shards, its stderr followed for the line that says it is logged in."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = {**env, "PATH": os.environ["PATH"], "LOG_LEVEL": "INFO"}, cwd
        self.lines: list[str] = []
        self.ready = asyncio.Event()
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> BotProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=self.cwd, env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._follow())
        return self

    async def _follow(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if "logged in as" in line:
                self.ready.set()

    async def wait_ready(self) -> None:
        try:
            await asyncio.wait_for(self.ready.wait(), 30)
        except TimeoutError:
            raise AssertionError("the bot never logged in:\n" + "\n".join(self.lines[-30:])) from None

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no last flush, the lease connection cut by the kernel."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        if self._reader is not None:
            await self._reader

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            with suppress(asyncio.CancelledError):
                await self._reader


class Flood:
    """Messages from AUTHORS members in turn, RATE per second in each guild, until stopped; counts what it sent."""

    def __init__(self, simulator: DiscordSimulator, guilds: list[SimGuild], authors: list[int]) -> None:
        self.simulator = simulator
        self.guilds = guilds
        self.authors = authors
        self.sent = dict.fromkeys((g.id for g in guilds), 0)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        per_tick = round(RATE * TICK)
        next_tick = loop.time()
        # Stopped between ticks, never inside a send: a batch cut off half-sent would be counted wrong.
        while not self._stopping:
            for guild in self.guilds:
                batch = [self.authors[(self.sent[guild.id] + i) % len(self.authors)] for i in range(per_tick)]
                await self.simulator.flood_messages(guild.system_channel_id or 0, batch, per_tick)
                self.sent[guild.id] += per_tick
            next_tick += TICK
            await asyncio.sleep(max(0.0, next_tick - loop.time()))

    async def until(self, guild_id: int, count: int) -> None:
        await self.simulator.wait_for(lambda: self.sent[guild_id] >= count, timeout=30)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            await self._task


async def stored_messages(database_url: str, guild_id: int) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(
            "SELECT COALESCE(SUM(messages), 0) FROM member_stats WHERE guild_id = $1", guild_id))
    finally:
        await conn.close()


async def unlocks_in_database(database_url: str, guild_id: int) -> Counter[tuple[int, str]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT u.member_id, a.name FROM unlocks u JOIN achievements a ON a.guild_id = u.guild_id "
            "AND a.achievement_id = u.achievement_id WHERE u.guild_id = $1", guild_id)
        return Counter((int(r[0]), str(r[1])) for r in rows)
    finally:
        await conn.close()


async def pending_announcements(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT COUNT(*) FROM outbox WHERE state = 'pending'"))
    finally:
        await conn.close()


DIGEST_LINE = re.compile(r"^<@(\d+)> unlocked \*\*(.+)\*\* \(\+\d+\)$")


def announced_unlocks(simulator: DiscordSimulator, channel_id: int) -> Counter[tuple[int, str]]:
    """(member, achievement name) of every unlock posted in a channel: one per single announcement, one per
    line of a digest."""
    posted: Counter[tuple[int, str]] = Counter()
    for message in announcements(simulator, channel_id):
        embed = message["embeds"][0]
        if "unlocked" in embed.get("title", "") or "revealed" in embed.get("title", ""):
            member = int(re.sub(r"\D", "", message["content"]))
            posted[(member, embed["fields"][0]["name"])] += 1
        for line in (embed.get("description") or "").splitlines() if "new achievements" in embed["title"] else []:
            if found := DIGEST_LINE.match(line):
                posted[(int(found[1]), found[2])] += 1
    return posted


@pytest.fixture
def authors(simulator: DiscordSimulator, guilds: list[SimGuild]) -> list[int]:
    """AUTHORS members of every guild."""
    created = [simulator.create_user(f"member{index}").id for index in range(AUTHORS)]
    for guild in guilds:
        for member_id in created:
            simulator.add_member(guild.id, member_id)
    return created


async def test_a_shard_process_killed_during_a_flood_loses_at_most_a_second_and_announces_nothing_twice(
    simulator: DiscordSimulator, database_url: str, tmp_path: Path, guilds: list[SimGuild], authors: list[int],
) -> None:
    crowd = [next(g for g in guilds if shard_of(g.id, 2) == shard) for shard in (0, 1)]
    victim_guild, other_guild = crowd
    processes = {shard: BotProcess(environment(simulator, database_url, tmp_path / "unused.db", str(shard)),
                                   tmp_path) for shard in (0, 1)}
    flood = Flood(simulator, crowd, authors)
    try:
        for process in processes.values():
            await process.start()
        for process in processes.values():
            await process.wait_ready()
        flood.start()
        # Two seconds in: the last unlocks (Chatterbox, each author's 10th message, 0.4 s in) are over a
        # second behind, so what was committed since came from the timed group commit alone.
        await flood.until(victim_guild.id, 2 * RATE)

        await processes[0].kill()
        sent_before_kill = flood.sent[victim_guild.id]
        committed_before_kill = await stored_messages(database_url, victim_guild.id)
        restarted = BotProcess({**processes[0].env, "SHARD_WAIT": "1"}, tmp_path)
        processes[2] = restarted
        await restarted.start()
        await restarted.wait_ready()
        await flood.until(victim_guild.id, flood.sent[victim_guild.id] + RATE // 2)  # served by the new process
        await flood.stop()

        other_sent = flood.sent[other_guild.id]

        async def all_counted() -> bool:
            return await stored_messages(database_url, other_guild.id) == other_sent

        async def all_posted() -> bool:
            return await pending_announcements(database_url) == 0

        with suppress(TimeoutError):  # the assertion below says by how much
            await simulator.wait_for(all_counted, timeout=5)
        await simulator.wait_for(all_posted, timeout=15)

        # At most one second of the guild's activity lost: with the flood paced at RATE a second, that is at
        # most RATE of the messages sent before the kill (the promise; the flush interval makes it ~0.5 s).
        lost = sent_before_kill - committed_before_kill
        assert 0 <= lost <= RATE, f"{lost} messages lost of {sent_before_kill} sent"
        for guild in crowd:
            posted = announced_unlocks(simulator, guild.system_channel_id or 0)
            assert [u for u, times in posted.items() if times > 1] == [], f"{guild.name}: announced twice"
            assert posted == await unlocks_in_database(database_url, guild.id)
            assert len(posted) >= 2 * AUTHORS  # First Step and Chatterbox at least, for every author
        assert await stored_messages(database_url, other_guild.id) == other_sent
    finally:
        await flood.stop()
        for process in processes.values():
            await process.stop()
