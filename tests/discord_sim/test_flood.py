"""The benchmarks' bulk path: flood_messages is ordinary gateway traffic to the client, only faster to produce."""

from __future__ import annotations

import asyncio

import discord
import pytest

from discord_sim import DiscordSimulator

from .conftest import Runner, World, make_intents


def counting_client(seen: list[discord.Message], **intent_flags: bool) -> discord.Client:
    client = discord.Client(intents=make_intents(**intent_flags), guild_ready_timeout=0.05)

    async def on_message(message: discord.Message) -> None:
        seen.append(message)

    client.event(on_message)
    return client


async def test_a_flood_reaches_on_message_as_member_messages_from_each_author_in_turn(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    seen: list[discord.Message] = []
    authors = [world.alice.id, world.bob.id]
    async with running(counting_client(seen)):
        await sim.flood_messages(world.general.id, authors, 3000, content="flooded")
        await sim.wait_for(lambda: len(seen) >= 3000, timeout=30)
    assert len(seen) == 3000
    assert [m.author.id for m in seen[:4]] == [world.alice.id, world.bob.id, world.alice.id, world.bob.id]
    assert all(isinstance(m.author, discord.Member) for m in seen)
    assert {m.content for m in seen} == {"flooded"}
    assert {m.channel.id for m in seen} == {world.general.id}
    assert len({m.id for m in seen}) == 3000
    assert [m.id for m in seen] == sorted(m.id for m in seen)


async def test_flooded_events_carry_consecutive_sequence_numbers_over_zlib_stream(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    seen: list[discord.Message] = []
    async with running(counting_client(seen)) as client:
        before = sim.gateway.active_sessions[0].seq
        await sim.flood_messages(world.general.id, [world.alice.id], 1500)
        await sim.wait_for(lambda: len(seen) >= 1500, timeout=30)
        assert client.ws is not None and client.ws.sequence == before + 1500
        seqs = [s for s, _ in sim.gateway.active_sessions[0].history]
    assert sim.gateway.compression_used == ["zlib-stream"]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert seqs[-1] == before + 1500


async def test_flooded_content_is_blanked_without_the_message_content_intent(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    seen: list[discord.Message] = []
    async with running(counting_client(seen, message_content=False)):
        await sim.flood_messages(world.general.id, [world.alice.id], 10, content="secret")
        await sim.wait_for(lambda: len(seen) >= 10)
    assert {m.content for m in seen} == {""}


async def test_a_message_sent_during_a_flood_arrives_in_sequence_order(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    seen: list[discord.Message] = []
    async with running(counting_client(seen)):
        flood = asyncio.create_task(sim.flood_messages(world.general.id, [world.alice.id], 5000, content="bulk"))
        await asyncio.sleep(0)
        await sim.send_message(world.general.id, world.bob.id, "in between")
        await flood
        await sim.wait_for(lambda: len(seen) >= 5001, timeout=30)
    assert [m.content for m in seen].count("in between") == 1
    assert [m.id for m in seen if m.content == "bulk"] == sorted(m.id for m in seen if m.content == "bulk")


async def test_a_flood_by_a_non_member_is_refused(sim: DiscordSimulator, world: World) -> None:
    stranger = sim.create_user("stranger")
    with pytest.raises(ValueError, match="not a member"):
        await sim.flood_messages(world.general.id, [stranger.id], 10)
