"""The simulated REST API as discord.py uses it: messages, permissions, limits, rate limits, roles, CDN."""

from __future__ import annotations

import io
from datetime import timedelta

import aiohttp
import discord
import pytest

from discord_sim import DiscordSimulator

from .conftest import Runner, World, make_intents


def new_client() -> discord.Client:
    return discord.Client(intents=make_intents(), guild_ready_timeout=0.05)


def channel_of(client: discord.Client, world: World) -> discord.TextChannel:
    channel = client.get_channel(world.general.id)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_a_sent_message_is_recorded_with_its_embed_and_allowed_mentions(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(new_client()) as client:
        embed = discord.Embed(title="Unlocked!", description="First steps").add_field(name="Points", value="10")
        only_alice = discord.AllowedMentions(users=[discord.Object(world.alice.id)])
        sent = await channel_of(client, world).send(f"<@{world.alice.id}>", embed=embed, allowed_mentions=only_alice)
    assert sent.embeds[0].title == "Unlocked!"
    [posted] = sim.channel_messages(world.general.id)
    assert posted["embeds"][0]["fields"] == [{"name": "Points", "value": "10", "inline": True}]
    assert posted["allowed_mentions"]["users"] == [world.alice.id]  # verbatim, as discord.py sent it
    assert posted["mentions"][0]["id"] == str(world.alice.id)


async def test_json_responses_have_exactly_the_content_type_discord_py_decodes(sim: DiscordSimulator) -> None:
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bot {sim.token}"}
        async with session.get(f"{sim.api_base}/users/@me", headers=headers) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["id"] == str(sim.bot_user_id)
        async with session.get(f"{sim.api_base}/users/@me") as resp:
            assert resp.status == 401


async def test_posting_where_the_bot_may_not_send_raises_forbidden(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    sim.deny_bot(world.general.id, "send_messages")
    async with running(new_client()) as client:
        with pytest.raises(discord.Forbidden) as excinfo:
            await channel_of(client, world).send("hello")
    assert excinfo.value.code == 50013
    assert sim.channel_messages(world.general.id) == []


async def test_an_embed_needs_embed_links(sim: DiscordSimulator, world: World, running: Runner) -> None:
    sim.deny_bot(world.general.id, "embed_links")
    async with running(new_client()) as client:
        with pytest.raises(discord.Forbidden):
            await channel_of(client, world).send(embed=discord.Embed(title="x"))
        await channel_of(client, world).send("plain text still works")


async def test_a_channel_the_bot_cannot_see_answers_missing_access(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    hidden = sim.create_text_channel(world.guild.id, "staff")
    sim.set_overwrite(hidden.id, world.guild.id, deny=discord.Permissions(view_channel=True).value)
    async with running(new_client()) as client:
        channel = client.get_channel(hidden.id)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.Forbidden) as excinfo:
            await channel.send("hello")
    assert excinfo.value.code == 50001


async def test_embed_limits_are_enforced_with_invalid_form_body(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(new_client()) as client:
        with pytest.raises(discord.HTTPException) as excinfo:
            await channel_of(client, world).send(embed=discord.Embed(title="t" * 257))
    assert excinfo.value.status == 400 and excinfo.value.code == 50035
    assert "embeds.0.title" in str(excinfo.value)


async def test_an_injected_429_is_retried_and_the_message_lands_once(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    sim.fail_next("POST", r"^/channels/\d+/messages$", status=429, retry_after=0.05)
    async with running(new_client()) as client:
        await channel_of(client, world).send("after a rate limit")
    attempts = sim.requests_to("POST", r"^/channels/\d+/messages$")
    assert [r.status for r in attempts] == [429, 200]
    assert [m["content"] for m in sim.channel_messages(world.general.id)] == ["after a rate limit"]


async def test_an_injected_503_surfaces_as_a_server_error(sim: DiscordSimulator, world: World, running: Runner) -> None:
    sim.fail_next("POST", r"/messages$", status=503)
    async with running(new_client()) as client:
        with pytest.raises(discord.DiscordServerError):
            await channel_of(client, world).send("x")


async def test_unknown_routes_answer_404_and_are_recorded(sim: DiscordSimulator, world: World, running: Runner) -> None:
    async with running(new_client()) as client:
        with pytest.raises(discord.NotFound):
            await client.http.request(discord.http.Route("GET", "/guilds/{guild_id}/nothing-here", guild_id=1))
    assert [(r.method, r.path) for r in sim.unknown_routes] == [("GET", "/guilds/1/nothing-here")]


async def test_unknown_messages_answer_10008(sim: DiscordSimulator, world: World, running: Runner) -> None:
    async with running(new_client()) as client:
        with pytest.raises(discord.NotFound) as excinfo:
            await channel_of(client, world).fetch_message(12345)
    assert excinfo.value.code == 10008


async def test_role_changes_follow_the_hierarchy(sim: DiscordSimulator, world: World, running: Runner) -> None:
    low = sim.create_role(world.guild.id, "Beginner", position=1)
    high = sim.create_role(world.guild.id, "Admins", position=20)
    async with running(new_client()) as client:
        guild = client.get_guild(world.guild.id)
        assert guild is not None
        alice = guild.get_member(world.alice.id)
        assert alice is not None
        await alice.add_roles(discord.Object(low.id))
        with pytest.raises(discord.Forbidden):
            await alice.add_roles(discord.Object(high.id))
        await sim.wait_for(lambda: any(r.id == low.id for r in guild.get_member(world.alice.id).roles))  # type: ignore[union-attr]
    assert world.guild.members[world.alice.id].roles == [low.id]


async def test_files_are_uploaded_as_attachments_and_served_back(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(new_client()) as client:
        sent = await channel_of(client, world).send("card", file=discord.File(io.BytesIO(b"PNGDATA"), "card.png"))
        assert await sent.attachments[0].read() == b"PNGDATA"
    [request] = sim.requests_to("POST", r"/messages$")
    assert request.files[0].filename == "card.png" and request.json["content"] == "card"


async def test_avatars_are_served_by_the_cdn(sim: DiscordSimulator, world: World, running: Runner) -> None:
    async with running(new_client()) as client:
        member = client.get_guild(world.guild.id).get_member(world.alice.id)  # type: ignore[union-attr]
        assert member is not None
        data = await member.display_avatar.read()
    assert data.startswith(b"\x89PNG")


async def test_dms_open_a_channel_and_closed_dms_are_forbidden(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    sim.close_dms(world.bob.id)
    async with running(new_client()) as client:
        guild = client.get_guild(world.guild.id)
        assert guild is not None
        await guild.get_member(world.alice.id).send("psst")  # type: ignore[union-attr]
        with pytest.raises(discord.Forbidden) as excinfo:
            await guild.get_member(world.bob.id).send("psst")  # type: ignore[union-attr]
    assert excinfo.value.code == 50007
    assert [m["content"] for m in sim.dm_messages(world.alice.id)] == ["psst"]


async def test_the_bot_can_react_edit_and_delete_its_messages(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(new_client()) as client:
        channel = channel_of(client, world)
        sent = await channel.send("draft")
        await sent.add_reaction("🏆")
        await sent.edit(content="final")
        fetched = await channel.fetch_message(sent.id)
        assert fetched.content == "final" and fetched.reactions[0].me
        await sent.delete()
    assert sim.channel_messages(world.general.id) == []


async def test_adding_a_reaction_needs_add_reactions(sim: DiscordSimulator, world: World, running: Runner) -> None:
    sim.deny_bot(world.general.id, "add_reactions")
    async with running(new_client()) as client:
        sent = await channel_of(client, world).send("no reactions here")
        with pytest.raises(discord.Forbidden):
            await sent.add_reaction("🏆")


async def test_the_bot_cannot_edit_a_members_message(sim: DiscordSimulator, world: World, running: Runner) -> None:
    posted = await sim.send_message(world.general.id, world.alice.id, "mine")
    async with running(new_client()) as client:
        with pytest.raises(discord.Forbidden) as excinfo:
            await client.http.edit_message(world.general.id, posted["id"], params=_content("hacked"))
    assert excinfo.value.code == 50005


def _content(text: str) -> discord.http.MultipartParameters:
    return discord.http.handle_message_parameters(content=text)


async def test_an_injected_502_is_retried_by_discord_py(sim: DiscordSimulator, world: World, running: Runner) -> None:
    sim.fail_next("POST", r"/messages$", status=502)
    async with running(new_client()) as client:
        await channel_of(client, world).send("after a bad gateway")
    assert [r.status for r in sim.requests_to("POST", r"/messages$")] == [502, 200]


async def test_a_repeated_nonce_returns_the_first_message_instead_of_creating_another(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(new_client()) as client:
        first = await channel_of(client, world).send("once", nonce="post-1")
        again = await channel_of(client, world).send("once", nonce="post-1")
    assert again.id == first.id
    assert [m["content"] for m in sim.channel_messages(world.general.id)] == ["once"]


async def test_a_nonce_repeated_after_discords_window_creates_a_new_message(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    sim.rest.nonce_window = timedelta(0)
    async with running(new_client()) as client:
        first = await channel_of(client, world).send("twice", nonce="post-1")
        again = await channel_of(client, world).send("twice", nonce="post-1")
    assert again.id != first.id
    assert len(sim.channel_messages(world.general.id)) == 2


async def test_a_lost_response_still_creates_the_message(sim: DiscordSimulator, world: World, running: Runner) -> None:
    sim.lose_next_response("POST", r"/messages$", status=503)
    async with running(new_client()) as client:
        with pytest.raises(discord.DiscordServerError):
            await channel_of(client, world).send("did it go out?")
    assert [m["content"] for m in sim.channel_messages(world.general.id)] == ["did it go out?"]
