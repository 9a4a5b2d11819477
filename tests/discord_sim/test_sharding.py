"""Several guilds on several shards: IDENTIFY with ``shard``, Discord's routing formula, /gateway/bot, 4010/4011."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import aiohttp
import discord
import pytest

from bot.clock import FakeClock
from discord_sim import DiscordSimulator, SimGuild

from .conftest import Runner, call_api, listen, make_intents

CLOCK = FakeClock()


class QuickShardedClient(discord.AutoShardedClient):
    """discord.py waits 5 s between shard IDENTIFYs (Discord's max_concurrency 1); the hook is meant to be
    overridden, and the simulator does not limit identifies."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


def shard_of(guild_id: int, count: int) -> int:
    return (guild_id >> 22) % count


def guilds_on_both_shards(sim: DiscordSimulator) -> list[SimGuild]:
    """Four guilds a millisecond apart: snowflake timestamps alternate, so two shards get two each."""
    guilds = []
    for index in range(4):
        CLOCK.advance(timedelta(milliseconds=1))
        guilds.append(sim.create_guild(f"Guild {index}"))
    assert {shard_of(g.id, 2) for g in guilds} == {0, 1}
    return guilds


def guild_creates(sim: DiscordSimulator, shard_id: int) -> set[int]:
    (session,) = [s for s in sim.gateway.sessions.values() if s.shard_id == shard_id]
    return {int(p["d"]["id"]) for _, p in session.history if isinstance(p, dict) and p["t"] == "GUILD_CREATE"}


@pytest.mark.simulator(clock=CLOCK)
async def test_an_auto_sharded_client_starts_the_recommended_shards_and_gets_each_guild_once(
    sim: DiscordSimulator, running: Runner
) -> None:
    guilds = guilds_on_both_shards(sim)
    sim.recommended_shards = 2
    client = QuickShardedClient(intents=make_intents(), guild_ready_timeout=0.05)
    async with running(client):
        assert sorted(p["shard"] for p in sim.gateway.identify_payloads) == [[0, 2], [1, 2]]
        for guild in guilds:
            seen = client.get_guild(guild.id)
            assert seen is not None and seen.shard_id == shard_of(guild.id, 2)
        for shard_id in (0, 1):
            assert guild_creates(sim, shard_id) == {g.id for g in guilds if shard_of(g.id, 2) == shard_id}


@pytest.mark.simulator(clock=CLOCK)
async def test_two_shard_processes_each_get_only_their_guilds_events(
    sim: DiscordSimulator, running: Runner
) -> None:
    guilds = guilds_on_both_shards(sim)
    alice = sim.create_user("alice")
    for guild in guilds:
        sim.add_member(guild.id, alice.id)
    first = discord.Client(intents=make_intents(), shard_id=0, shard_count=2, guild_ready_timeout=0.05)
    second = discord.Client(intents=make_intents(), shard_id=1, shard_count=2, guild_ready_timeout=0.05)
    seen = {0: listen(first, "on_message"), 1: listen(second, "on_message")}
    async with running(first), running(second):
        for guild in guilds:
            await sim.send_message(guild.system_channel_id or 0, alice.id, f"hello {guild.id}")
        await sim.send_message(sim.dm_channel_id(alice.id), alice.id, "a DM")
        # A last message in a guild of each shard: once both arrived, everything sent before them has too.
        for shard_id in (0, 1):
            last = next(g for g in guilds if shard_of(g.id, 2) == shard_id)
            await sim.send_message(last.system_channel_id or 0, alice.id, "last")
        await sim.wait_for(lambda: all(seen[i] and seen[i][-1].content == "last" for i in (0, 1)))
    for shard_id in (0, 1):
        mine = [g.id for g in guilds if shard_of(g.id, 2) == shard_id]
        assert [m.guild.id for m in seen[shard_id] if m.guild is not None] == [*mine, mine[0]]
    # Discord sends events without a guild (DMs) to shard 0 only.
    assert [m.content for m in seen[0] if m.guild is None] == ["a DM"]
    assert [m for m in seen[1] if m.guild is None] == []


async def test_gateway_bot_recommends_the_configured_shard_count(sim: DiscordSimulator) -> None:
    sim.recommended_shards = 3
    status, body = await call_api(sim, "GET", "/gateway/bot")
    assert status == 200 and body["shards"] == 3 and body["url"] == sim.gateway_url


async def identify_raw(sim: DiscordSimulator, shard: Any) -> int | None:
    """IDENTIFY over a bare websocket; the close code the gateway answered with."""
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.gateway_url) as ws:
        await ws.receive_json()  # HELLO
        data = {"token": sim.token, "intents": 513, "properties": {}, "shard": shard}
        await ws.send_str(json.dumps({"op": 2, "d": data}))
        while not ws.closed:
            await ws.receive(timeout=5)
        return ws.close_code


@pytest.mark.parametrize("shard", [[2, 2], [0, 0], [-1, 2], [0], "0,1"], ids=str)
async def test_an_invalid_shard_is_closed_with_4010(sim: DiscordSimulator, shard: Any) -> None:
    assert await identify_raw(sim, shard) == 4010


async def test_a_discord_py_client_with_an_invalid_shard_stops_with_4010(sim: DiscordSimulator) -> None:
    client = discord.Client(intents=make_intents(), shard_id=2, shard_count=2)
    await client.login(sim.token)
    try:
        with pytest.raises(discord.ConnectionClosed) as closed:
            await asyncio.wait_for(client.connect(reconnect=False), 5)
        assert closed.value.code == 4010
    finally:
        await client.close()


async def test_a_session_with_too_many_guilds_for_one_shard_is_closed_with_4011(sim: DiscordSimulator) -> None:
    sim.create_guild("One")
    sim.create_guild("Two")
    sim.gateway.max_guilds_per_shard = 1
    assert await identify_raw(sim, [0, 1]) == 4011
