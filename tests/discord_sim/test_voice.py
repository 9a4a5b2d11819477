"""Voice as a discord.py client sees it: voice and stage channels, the AFK channel, VOICE_STATE_UPDATE."""

from __future__ import annotations

import discord
import pytest

from discord_sim import DiscordSimulator

from .conftest import Runner, World, listen, make_intents


def new_client(*, voice_states: bool = True) -> discord.Client:
    intents = make_intents()
    intents.voice_states = voice_states
    return discord.Client(intents=intents, guild_ready_timeout=0.05)


def member_of(client: discord.Client, world: World, user_id: int) -> discord.Member:
    guild = client.get_guild(world.guild.id)
    assert guild is not None
    member = guild.get_member(user_id)
    assert member is not None
    return member


async def test_voice_and_stage_channels_and_the_afk_channel_appear_in_the_guild(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge", user_limit=5)
    afk = sim.create_voice_channel(world.guild.id, "AFK")
    stage = sim.create_stage_channel(world.guild.id, "Town Hall")
    sim.set_afk_channel(world.guild.id, afk.id, timeout=900)
    async with running(new_client()) as client:
        guild = client.get_guild(world.guild.id)
        assert guild is not None
        assert [c.name for c in guild.voice_channels] == ["Lounge", "AFK"]
        assert [c.id for c in guild.stage_channels] == [stage.id]
        assert guild.afk_channel is not None and guild.afk_channel.id == afk.id
        assert guild.afk_timeout == 900
        assert guild.voice_channels[0].user_limit == 5 and guild.voice_channels[0].id == lounge.id


async def test_a_new_afk_channel_reaches_a_connected_bot(sim: DiscordSimulator, world: World, running: Runner) -> None:
    afk = sim.create_voice_channel(world.guild.id, "AFK")
    async with running(new_client()) as client:
        updates = listen(client, "on_guild_update")
        sim.set_afk_channel(world.guild.id, afk.id)
        await sim.wait_for(lambda: updates)
        guild = client.get_guild(world.guild.id)
        assert guild is not None and guild.afk_channel is not None and guild.afk_channel.id == afk.id


async def test_joining_voice_reaches_the_bot_with_the_channel(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    async with running(new_client()) as client:
        seen = listen(client, "on_voice_state_update")
        await sim.join_voice(world.guild.id, lounge.id, world.alice.id)
        await sim.wait_for(lambda: seen)
        member, before, after = seen[0]
        assert member.id == world.alice.id
        assert before.channel is None and after.channel.id == lounge.id
        assert member_of(client, world, world.alice.id).voice.channel.id == lounge.id  # type: ignore[union-attr]
        assert [m.id for m in client.get_channel(lounge.id).members] == [world.alice.id]  # type: ignore[union-attr]


async def test_moving_to_another_channel_gives_before_and_after(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    games = sim.create_voice_channel(world.guild.id, "Games")
    await sim.join_voice(world.guild.id, lounge.id, world.alice.id)
    async with running(new_client()) as client:
        seen = listen(client, "on_voice_state_update")
        await sim.join_voice(world.guild.id, games.id, world.alice.id)
        await sim.wait_for(lambda: seen)
        _, before, after = seen[0]
        assert (before.channel.id, after.channel.id) == (lounge.id, games.id)


async def test_leaving_voice_clears_the_members_voice_state(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    await sim.join_voice(world.guild.id, lounge.id, world.alice.id)
    async with running(new_client()) as client:
        seen = listen(client, "on_voice_state_update")
        await sim.leave_voice(world.guild.id, world.alice.id)
        await sim.wait_for(lambda: seen)
        _, before, after = seen[0]
        assert before.channel.id == lounge.id and after.channel is None
        assert member_of(client, world, world.alice.id).voice is None
    assert sim.voice_channel_of(world.guild.id, world.alice.id) is None


async def test_self_deafen_also_mutes_and_both_reach_the_bot(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    await sim.join_voice(world.guild.id, lounge.id, world.alice.id)
    async with running(new_client()) as client:
        seen = listen(client, "on_voice_state_update")
        await sim.set_voice_state(world.guild.id, world.alice.id, self_deaf=True)
        await sim.wait_for(lambda: seen)
        _, before, after = seen[0]
        assert (before.self_mute, before.self_deaf) == (False, False)
        assert (after.self_mute, after.self_deaf) == (True, True)


async def test_server_mute_and_deafen_reach_the_bot_and_stay_on_the_member(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    await sim.join_voice(world.guild.id, lounge.id, world.alice.id)
    async with running(new_client()) as client:
        seen = listen(client, "on_voice_state_update")
        await sim.set_voice_state(world.guild.id, world.alice.id, mute=True, deaf=True)
        await sim.wait_for(lambda: seen)
        _, _, after = seen[0]
        assert (after.mute, after.deaf, after.self_mute) == (True, True, False)
    assert world.guild.members[world.alice.id].mute


async def test_a_restarted_bot_sees_who_is_already_in_voice(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    await sim.join_voice(world.guild.id, lounge.id, world.alice.id, self_mute=True)
    await sim.join_voice(world.guild.id, lounge.id, world.bob.id)
    async with running(new_client()) as client:
        channel = client.get_channel(lounge.id)
        assert isinstance(channel, discord.VoiceChannel)
        assert {m.id for m in channel.members} == {world.alice.id, world.bob.id}
        voice = member_of(client, world, world.alice.id).voice
        assert voice is not None and voice.self_mute


async def test_voice_states_go_only_to_sessions_with_the_voice_states_intent(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    await sim.join_voice(world.guild.id, lounge.id, world.bob.id)
    async with running(new_client(voice_states=False)) as client:
        messages = listen(client, "on_message")
        await sim.join_voice(world.guild.id, lounge.id, world.alice.id)
        await sim.send_message(world.general.id, world.alice.id, "after the join")
        await sim.wait_for(lambda: messages)
        (session,) = sim.gateway.active_sessions
        sent = [p for _, p in session.history if isinstance(p, dict)]
        assert not [p for p in sent if p["t"] == "VOICE_STATE_UPDATE"]
        assert all(p["d"]["voice_states"] == [] for p in sent if p["t"] == "GUILD_CREATE")
        assert client.get_channel(lounge.id).members == []  # type: ignore[union-attr]


async def test_a_stage_audience_joins_suppressed(sim: DiscordSimulator, world: World, running: Runner) -> None:
    stage = sim.create_stage_channel(world.guild.id, "Town Hall")
    async with running(new_client()) as client:
        seen = listen(client, "on_voice_state_update")
        await sim.join_voice(world.guild.id, stage.id, world.alice.id)
        await sim.wait_for(lambda: seen)
        assert seen[0][2].suppress and isinstance(seen[0][2].channel, discord.StageChannel)


async def test_joining_needs_connect_and_room_under_the_user_limit(sim: DiscordSimulator, world: World) -> None:
    closed = sim.create_voice_channel(world.guild.id, "Closed")
    sim.set_overwrite(closed.id, world.alice.id, deny=discord.Permissions(connect=True).value)
    duo = sim.create_voice_channel(world.guild.id, "Duo", user_limit=1)
    with pytest.raises(PermissionError):
        await sim.join_voice(world.guild.id, closed.id, world.alice.id)
    await sim.join_voice(world.guild.id, duo.id, world.bob.id)
    with pytest.raises(PermissionError):
        await sim.join_voice(world.guild.id, duo.id, world.alice.id)


async def test_the_bot_server_mutes_and_moves_a_member_over_rest(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    world.guild.roles[world.guild.bot_role_id or 0].permissions |= discord.Permissions(
        mute_members=True, move_members=True).value
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    games = sim.create_voice_channel(world.guild.id, "Games")
    await sim.join_voice(world.guild.id, lounge.id, world.alice.id)
    async with running(new_client()) as client:
        member = member_of(client, world, world.alice.id)
        await member.edit(mute=True, voice_channel=client.get_channel(games.id))  # type: ignore[arg-type]
        await sim.wait_for(lambda: member_of(client, world, world.alice.id).voice.channel.id == games.id)  # type: ignore[union-attr]
        assert member_of(client, world, world.alice.id).voice.mute  # type: ignore[union-attr]
        await member.move_to(None)
        await sim.wait_for(lambda: member_of(client, world, world.alice.id).voice is None)


async def test_server_muting_needs_mute_members_and_a_connected_member(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    lounge = sim.create_voice_channel(world.guild.id, "Lounge")
    await sim.join_voice(world.guild.id, lounge.id, world.alice.id)
    async with running(new_client()) as client:
        with pytest.raises(discord.Forbidden) as forbidden:
            await member_of(client, world, world.alice.id).edit(mute=True)
        assert forbidden.value.code == 50013
        world.guild.roles[world.guild.bot_role_id or 0].permissions |= discord.Permissions(mute_members=True).value
        with pytest.raises(discord.HTTPException) as refused:
            await member_of(client, world, world.bob.id).edit(mute=True)
        assert (refused.value.status, refused.value.code) == (400, 40032)
