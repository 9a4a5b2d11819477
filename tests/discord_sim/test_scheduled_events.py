"""Scheduled events as a discord.py client sees them: GUILD_CREATE, the GUILD_SCHEDULED_EVENT_* events, REST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import discord
import pytest

from discord_sim import DiscordSimulator

from .conftest import Runner, World, call_api, listen, make_intents

START = datetime(2030, 5, 1, 18, 0, tzinfo=UTC)


def new_client(*, scheduled_events: bool = True) -> discord.Client:
    intents = make_intents()
    intents.guild_scheduled_events = scheduled_events
    return discord.Client(intents=intents, guild_ready_timeout=0.05)


def guild_of(client: discord.Client, world: World) -> discord.Guild:
    guild = client.get_guild(world.guild.id)
    assert guild is not None
    return guild


async def test_a_restarted_bot_sees_the_guilds_scheduled_events(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    stage = sim.create_stage_channel(world.guild.id, "Town Hall")
    talk = sim.create_scheduled_event(world.guild.id, "Q&A", START, channel_id=stage.id, description="Ask away")
    meetup = sim.create_scheduled_event(world.guild.id, "Meetup", START, end=START + timedelta(hours=2),
                                        location="The park")
    async with running(new_client()) as client:
        events = {e.id: e for e in guild_of(client, world).scheduled_events}
        assert set(events) == {talk.id, meetup.id}
        assert events[talk.id].entity_type is discord.EntityType.stage_instance
        assert events[talk.id].channel is not None and events[talk.id].channel.id == stage.id
        assert events[talk.id].start_time == START and events[talk.id].description == "Ask away"
        assert events[meetup.id].location == "The park" and events[meetup.id].end_time == START + timedelta(hours=2)


async def test_create_start_and_end_reach_the_bot_in_order(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    async with running(new_client()) as client:
        created = listen(client, "on_scheduled_event_create")
        updated = listen(client, "on_scheduled_event_update")
        event = sim.create_scheduled_event(world.guild.id, "Game night", START, channel_id=lounge.id)
        sim.start_scheduled_event(world.guild.id, event.id)
        sim.end_scheduled_event(world.guild.id, event.id)
        await sim.wait_for(lambda: len(updated) == 2)
        assert [e.id for e in created] == [event.id]
        # discord.py updates one event object in place: "before" is a copy, "after" the live object.
        assert [before.status for before, _ in updated] == [discord.EventStatus.scheduled, discord.EventStatus.active]
        assert updated[-1][1].status is discord.EventStatus.completed


async def test_a_cancelled_event_reaches_the_bot_and_leaves_the_listing(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    event = sim.create_scheduled_event(world.guild.id, "Game night", START, channel_id=lounge.id)
    async with running(new_client()) as client:
        updated = listen(client, "on_scheduled_event_update")
        sim.cancel_scheduled_event(world.guild.id, event.id)
        await sim.wait_for(lambda: updated)
        assert updated[0][1].status is discord.EventStatus.cancelled
        assert await guild_of(client, world).fetch_scheduled_events() == []


async def test_a_deleted_event_reaches_the_bot(sim: DiscordSimulator, world: World, running: Runner) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    event = sim.create_scheduled_event(world.guild.id, "Game night", START, channel_id=lounge.id)
    async with running(new_client()) as client:
        deleted = listen(client, "on_scheduled_event_delete")
        sim.delete_scheduled_event(world.guild.id, event.id)
        await sim.wait_for(lambda: deleted)
        assert deleted[0].id == event.id and list(guild_of(client, world).scheduled_events) == []


async def test_members_subscribing_and_unsubscribing_reach_the_bot(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    event = sim.create_scheduled_event(world.guild.id, "Game night", START, channel_id=lounge.id)
    async with running(new_client()) as client:
        added = listen(client, "on_scheduled_event_user_add")
        removed = listen(client, "on_scheduled_event_user_remove")
        sim.subscribe_scheduled_event(world.guild.id, event.id, world.alice.id)
        sim.subscribe_scheduled_event(world.guild.id, event.id, world.bob.id)
        sim.unsubscribe_scheduled_event(world.guild.id, event.id, world.alice.id)
        await sim.wait_for(lambda: removed)
        assert [user.id for _, user in added] == [world.alice.id, world.bob.id]
        assert [user.id for _, user in removed] == [world.alice.id]
        fetched = await guild_of(client, world).fetch_scheduled_event(event.id, with_counts=True)
        assert fetched.user_count == 1
        assert [u.id async for u in fetched.users()] == [world.bob.id]


async def test_scheduled_events_go_only_to_sessions_with_their_intent(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    async with running(new_client(scheduled_events=False)) as client:
        created = listen(client, "on_scheduled_event_create")
        messages = listen(client, "on_message")
        sim.create_scheduled_event(world.guild.id, "Game night", START, channel_id=lounge.id)
        await sim.send_message(world.general.id, world.alice.id, "after the event")
        await sim.wait_for(lambda: messages)
        assert created == []


async def test_an_unknown_event_answers_10070(sim: DiscordSimulator, world: World) -> None:
    status, body = await call_api(sim, "GET", f"/guilds/{world.guild.id}/scheduled-events/{world.alice.id}")
    assert (status, body["code"]) == (404, 10070)


def test_discords_status_rules_and_field_requirements_are_kept(sim: DiscordSimulator, world: World) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    event = sim.create_scheduled_event(world.guild.id, "Game night", START, channel_id=lounge.id)
    with pytest.raises(ValueError, match="status"):
        sim.end_scheduled_event(world.guild.id, event.id)  # not started
    sim.cancel_scheduled_event(world.guild.id, event.id)
    with pytest.raises(ValueError, match="status"):
        sim.start_scheduled_event(world.guild.id, event.id)  # cancelled is final
    with pytest.raises(ValueError, match="end time"):
        sim.create_scheduled_event(world.guild.id, "Meetup", START, location="The park")
    with pytest.raises(ValueError, match="voice or stage"):
        sim.create_scheduled_event(world.guild.id, "Chat", START, channel_id=world.general.id)
