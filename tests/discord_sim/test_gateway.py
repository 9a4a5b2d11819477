"""The simulated gateway as a bare discord.py client sees it: READY, guild cache, events, intents, resume."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import discord
import pytest
import yarl

from bot.clock import FakeClock
from discord_sim import DiscordSimulator

from .conftest import Runner, World, make_intents


def new_client(**intent_flags: bool) -> discord.Client:
    return discord.Client(intents=make_intents(**intent_flags), guild_ready_timeout=0.05)


async def test_login_fills_the_guild_cache_with_channels_roles_and_members(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(new_client()) as client:
        assert client.user is not None and client.user.id == sim.bot_user_id
        guild = client.get_guild(world.guild.id)
        assert guild is not None and guild.name == "Test Guild"
        assert [c.name for c in guild.text_channels] == ["general"]
        assert {r.name for r in guild.roles} >= {"@everyone", "Mods", "AchievementsBot"}
        # Chunked at start-up through REQUEST_GUILD_MEMBERS, as the members intent asks.
        assert {m.name for m in guild.members} >= {"moderator", "alice", "bob"}
        assert guild.me.guild_permissions.manage_roles
        assert guild.get_member(world.moderator.id).guild_permissions.manage_guild  # type: ignore[union-attr]
        assert sim.gateway.received[0]["op"] == 2 or any(p["op"] == 2 for p in sim.gateway.received)


async def test_gateway_traffic_is_zlib_stream_compressed(sim: DiscordSimulator, world: World, running: Runner) -> None:
    async with running(new_client()):
        assert sim.gateway.compression_used == ["zlib-stream"]


async def test_several_guilds_are_all_available(sim: DiscordSimulator, world: World, running: Runner) -> None:
    other = sim.create_guild("Other Guild")
    async with running(new_client()) as client:
        assert {g.id for g in client.guilds} == {world.guild.id, other.id}


async def test_message_create_reaches_on_message_with_its_content(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    seen: list[discord.Message] = []
    client = new_client()
    client.event(_collector("on_message", seen))
    async with running(client):
        await sim.send_message(world.general.id, world.alice.id, "hello there")
        await sim.wait_for(lambda: seen)
    assert seen[0].content == "hello there"
    assert isinstance(seen[0].author, discord.Member) and seen[0].author.id == world.alice.id
    assert seen[0].guild is not None and seen[0].guild.id == world.guild.id


async def test_content_is_blanked_without_the_message_content_intent_unless_the_bot_is_mentioned(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    seen: list[discord.Message] = []
    client = new_client(message_content=False)
    client.event(_collector("on_message", seen))
    async with running(client):
        await sim.send_message(world.general.id, world.alice.id, "secret words")
        await sim.send_message(world.general.id, world.alice.id, f"<@{sim.bot_user_id}> hi")
        await sim.wait_for(lambda: len(seen) == 2)
    assert seen[0].content == ""
    assert seen[1].content == f"<@{sim.bot_user_id}> hi"


async def test_reactions_arrive_as_raw_events_with_member_and_type(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    added: list[discord.RawReactionActionEvent] = []
    removed: list[discord.RawReactionActionEvent] = []
    client = new_client()
    client.event(_collector("on_raw_reaction_add", added))
    client.event(_collector("on_raw_reaction_remove", removed))
    async with running(client):
        msg = await sim.send_message(world.general.id, world.alice.id, "react to me")
        await sim.add_reaction(world.general.id, msg["id"], world.bob.id, "👍")
        await sim.remove_reaction(world.general.id, msg["id"], world.bob.id, "👍")
        await sim.wait_for(lambda: added and removed)
    assert added[0].user_id == world.bob.id and str(added[0].emoji) == "👍"
    assert added[0].member is not None and added[0].member.id == world.bob.id
    assert added[0].message_author_id == world.alice.id
    assert added[0].type == discord.ReactionType.normal and not added[0].burst
    assert removed[0].user_id == world.bob.id


async def test_member_join_and_leave_are_dispatched_with_the_members_intent(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    joined: list[discord.Member] = []
    left: list[discord.RawMemberRemoveEvent] = []
    client = new_client()
    client.event(_collector("on_member_join", joined))
    client.event(_collector("on_raw_member_remove", left))
    async with running(client):
        carol = sim.create_user("carol")
        sim.add_member(world.guild.id, carol.id)
        await sim.remove_member(world.guild.id, world.bob.id)
        await sim.wait_for(lambda: joined and left)
    assert joined[0].id == carol.id and joined[0].flags.value == 0
    assert left[0].user.id == world.bob.id


async def test_member_events_are_not_sent_without_the_members_intent(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    joined: list[discord.Member] = []
    client = new_client(members=False)
    client.event(_collector("on_member_join", joined))
    async with running(client):
        sim.add_member(world.guild.id, sim.create_user("carol").id)
        await sim.send_message(world.general.id, world.alice.id, "sync point")
        await asyncio.sleep(0.05)
    assert joined == []


async def test_presence_updates_need_the_presences_intent(sim: DiscordSimulator, world: World, running: Runner) -> None:
    updates: list[tuple[discord.Member, discord.Member]] = []

    async def on_presence_update(before: discord.Member, after: discord.Member) -> None:
        updates.append((before, after))

    client = new_client(presences=True)
    client.event(on_presence_update)
    async with running(client):
        await sim.set_presence(world.guild.id, world.alice.id, "online")
        await sim.wait_for(lambda: updates)
    assert updates[0][1].status == discord.Status.online


async def test_a_reconnect_request_resumes_the_session_and_replays_missed_events(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    seen: list[discord.Message] = []
    resumed: list[bool] = []
    client = new_client()
    client.event(_collector("on_message", seen))

    async def on_resumed() -> None:
        resumed.append(True)

    client.event(on_resumed)
    async with running(client):
        sim.drop_connections()
        await sim.send_message(world.general.id, world.alice.id, "sent while away")
        await sim.wait_for(lambda: resumed and seen, timeout=10)
    assert [m.content for m in seen] == ["sent while away"]
    assert sum(1 for p in sim.gateway.received if p["op"] == 6) == 1


def _collector(name: str, sink: list) -> object:  # type: ignore[type-arg]
    async def handler(*args: object) -> None:
        sink.append(args[0] if len(args) == 1 else args)

    handler.__name__ = name
    return handler


async def test_messages_are_dated_by_the_simulator_clock(running: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    seen: list[discord.Message] = []
    async with DiscordSimulator(clock=clock) as sim:
        monkeypatch.setattr(discord.http.Route, "BASE", sim.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(sim.gateway_url))
        guild = sim.create_guild("Clocked")
        alice = sim.create_user("alice")
        sim.add_member(guild.id, alice.id)
        client = new_client()
        client.event(_collector("on_message", seen))
        await client.login(sim.token)
        task = asyncio.create_task(client.connect())
        await asyncio.wait_for(client.wait_until_ready(), 5)
        await sim.send_message(guild.system_channel_id or 0, alice.id, "late night")
        clock.advance(timedelta(days=1))
        await sim.send_message(guild.system_channel_id or 0, alice.id, "next day")
        await sim.wait_for(lambda: len(seen) == 2)
        await client.close()
        await task
    assert seen[0].created_at == datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert seen[1].created_at.date() == date(2026, 3, 2)


async def test_unapproved_privileged_intents_close_the_gateway_with_4014(sim: DiscordSimulator, world: World) -> None:
    sim.disallow_intents(discord.Intents(message_content=True).value)
    client = new_client()
    await client.login(sim.token)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(client.connect(reconnect=True), 5)
    await client.close()


async def test_a_guild_created_after_login_arrives_as_a_join(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    joined: list[discord.Guild] = []
    client = new_client()
    client.event(_collector("on_guild_join", joined))
    async with running(client):
        sim.create_guild("Late Guild")
        await sim.wait_for(lambda: joined)
    assert joined[0].name == "Late Guild" and joined[0].me is not None


async def test_member_queries_are_answered_with_chunks(sim: DiscordSimulator, world: World, running: Runner) -> None:
    async with running(new_client(presences=True)) as client:
        guild = client.get_guild(world.guild.id)
        assert guild is not None
        found = await guild.query_members("al")
    assert [m.name for m in found] == ["alice"]


async def test_an_op7_reconnect_is_followed_by_a_resume(sim: DiscordSimulator, world: World, running: Runner) -> None:
    resumed: list[bool] = []
    client = new_client()

    async def on_resumed() -> None:
        resumed.append(True)

    client.event(on_resumed)
    async with running(client):
        sim.request_reconnect()
        await sim.wait_for(lambda: resumed, timeout=10)
        assert sim.connected


@pytest.mark.simulator(resume_replay_limit=5)
async def test_a_resume_within_the_replay_limit_replays_every_missed_event(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    seen: list[discord.Message] = []
    client = new_client()
    client.event(_collector("on_message", seen))
    async with running(client):
        sim.drop_connections()
        for i in range(3):
            await sim.send_message(world.general.id, world.alice.id, f"missed {i}")
        await sim.wait_for(lambda: len(seen) == 3, timeout=10)
    assert [m.content for m in seen] == ["missed 0", "missed 1", "missed 2"]
    assert [p["op"] for p in sim.gateway.received if p["op"] in (2, 6)] == [2, 6]


@pytest.mark.simulator(resume_replay_limit=5)
async def test_a_resume_past_the_replay_limit_gets_invalid_session_and_identifies_afresh(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    seen: list[discord.Message] = []
    client = new_client()
    client.event(_collector("on_message", seen))
    async with running(client):
        sim.drop_connections()
        for i in range(8):
            await sim.send_message(world.general.id, world.alice.id, f"missed {i}")
        await sim.wait_for(lambda: [p["op"] for p in sim.gateway.received if p["op"] in (2, 6)] == [2, 6, 2],
                           timeout=10)
        await sim.wait_for(lambda: sim.gateway.active_sessions, timeout=10)
    # Discord cannot replay the gap, so it replays nothing: the client starts a new session instead.
    assert seen == []
