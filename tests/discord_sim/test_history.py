"""Message history and threads as discord.py reads them: paging, seeded past messages, permissions, threads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import discord
import pytest

from discord_sim import DiscordSimulator

from .conftest import Runner, World, call_api, listen, make_intents

START = datetime(2024, 1, 1, tzinfo=UTC)


def new_client() -> discord.Client:
    return discord.Client(intents=make_intents(), guild_ready_timeout=0.05)


def text_channel(client: discord.Client, channel_id: int) -> discord.TextChannel:
    channel = client.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_history_pages_through_thousands_of_seeded_messages_newest_first(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    ids = sim.seed_history(world.general.id, [world.alice.id, world.bob.id], 3000, start=START)
    async with running(new_client()) as client:
        seen = [m async for m in text_channel(client, world.general.id).history(limit=None)]
    assert [m.id for m in seen] == ids[::-1]
    assert seen[-1].created_at == START and seen[-1].content == "message 0"
    assert seen[0].created_at == START + timedelta(minutes=2999) and seen[0].author.id == world.bob.id
    pages = sim.requests_to("GET", rf"/channels/{world.general.id}/messages$")
    assert len(pages) == 31 and {p.query["limit"] for p in pages} == {"100"}


async def test_before_after_and_around_pick_the_messages_next_to_the_given_one(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    ids = sim.seed_history(world.general.id, [world.alice.id], 300, start=START)
    async with running(new_client()) as client:
        channel = text_channel(client, world.general.id)
        before = [m.id async for m in channel.history(limit=10, before=discord.Object(ids[100]))]
        after = [m.id async for m in channel.history(limit=10, after=discord.Object(ids[100]), oldest_first=True)]
        around = [m.id async for m in channel.history(limit=10, around=discord.Object(ids[150]))]
    assert before == ids[90:100][::-1]
    assert after == ids[101:111]
    assert sorted(around) == ids[145:155]


async def test_history_by_date_uses_the_ids_derived_from_the_timestamps(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    sim.seed_history(world.general.id, [world.alice.id], 100, start=START, interval=timedelta(hours=1))
    async with running(new_client()) as client:
        channel = text_channel(client, world.general.id)
        day_two = [m async for m in channel.history(after=START + timedelta(days=1), before=START + timedelta(days=2))]
    assert len(day_two) == 23  # hours 25..47: strictly after the first instant, strictly before the last
    assert all(START + timedelta(days=1) < m.created_at < START + timedelta(days=2) for m in day_two)


async def test_seeded_history_sits_before_live_messages(sim: DiscordSimulator, world: World, running: Runner) -> None:
    live = await sim.send_message(world.general.id, world.alice.id, "live")
    sim.seed_history(world.general.id, [world.bob.id], 5, start=START)
    async with running(new_client()) as client:
        newest = [m async for m in text_channel(client, world.general.id).history(limit=1)]
    assert [m.id for m in newest] == [int(live["id"])]


@pytest.mark.parametrize("limit", ["101", "0", "ten"])
async def test_a_limit_outside_1_to_100_is_refused_with_invalid_form_body(
    sim: DiscordSimulator, world: World, limit: str
) -> None:
    status, body = await call_api(sim, "GET", f"/channels/{world.general.id}/messages?limit={limit}")
    assert (status, body["code"]) == (400, 50035)
    assert "limit" in body["errors"]


async def test_the_default_page_is_50_messages(sim: DiscordSimulator, world: World) -> None:
    sim.seed_history(world.general.id, [world.alice.id], 60, start=START)
    status, body = await call_api(sim, "GET", f"/channels/{world.general.id}/messages")
    assert status == 200 and len(body) == 50


async def test_without_read_message_history_nothing_is_listed_and_a_fetch_is_refused(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    ids = sim.seed_history(world.general.id, [world.alice.id], 5, start=START)
    sim.deny_bot(world.general.id, "read_message_history")
    async with running(new_client()) as client:
        channel = text_channel(client, world.general.id)
        assert [m async for m in channel.history()] == []
        with pytest.raises(discord.Forbidden) as refused:
            await channel.fetch_message(ids[0])
        assert refused.value.code == 50001


async def test_active_threads_come_with_guild_create_and_over_rest(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    open_thread = sim.create_thread(world.general.id, "Ideas", world.alice.id)
    sim.create_thread(world.general.id, "Old", world.alice.id, archived=True)
    async with running(new_client()) as client:
        guild = client.get_guild(world.guild.id)
        assert guild is not None
        assert [t.id for t in guild.threads] == [open_thread.id]
        assert [t.id for t in await guild.active_threads()] == [open_thread.id]
        assert [c.name for c in guild.text_channels] == ["general"]


async def test_a_new_thread_and_its_archiving_reach_the_bot(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(new_client()) as client:
        created = listen(client, "on_thread_create")
        updated = listen(client, "on_thread_update")
        thread = sim.create_thread(world.general.id, "Ideas", world.alice.id)
        await sim.send_message(thread.id, world.alice.id, "first idea")
        sim.archive_thread(thread.id)
        await sim.wait_for(lambda: updated)
        assert created[0].name == "Ideas" and created[0].owner_id == world.alice.id
        assert updated[0][1].archived


async def test_archived_public_threads_are_listed_most_recently_archived_first(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    made = [sim.create_thread(world.general.id, f"t{i}", world.alice.id, archived_at=START + timedelta(days=i))
            for i in range(120)]
    sim.create_thread(world.general.id, "private", world.alice.id, private=True, archived_at=START)
    async with running(new_client()) as client:
        listed = [t async for t in text_channel(client, world.general.id).archived_threads(limit=None)]
    assert [t.id for t in listed] == [t.id for t in reversed(made)]


async def test_archived_threads_need_read_message_history(sim: DiscordSimulator, world: World) -> None:
    sim.deny_bot(world.general.id, "read_message_history")
    status, body = await call_api(sim, "GET", f"/channels/{world.general.id}/threads/archived/public")
    assert (status, body["code"]) == (403, 50001)
