"""Rate limits as Discord applies them, and discord.py obeying them: buckets, shared buckets, the global limit."""

from __future__ import annotations

import asyncio

import aiohttp
import discord

from discord_sim import DiscordSimulator

from .conftest import Runner, World, call_api, make_intents

MESSAGES = "/channels/{channel_id}/messages"


def new_client() -> discord.Client:
    return discord.Client(intents=make_intents(), guild_ready_timeout=0.05)


def text_channel(client: discord.Client, channel_id: int) -> discord.TextChannel:
    channel = client.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_a_bucket_reports_its_headers_and_refuses_past_its_limit(sim: DiscordSimulator, world: World) -> None:
    sim.set_rate_limit("POST", MESSAGES, 2, per=60)
    path = f"/channels/{world.general.id}/messages"
    answers = [await call_api(sim, "POST", path, {"content": f"m{i}"}) for i in range(3)]
    assert [status for status, _ in answers] == [200, 200, 429]
    refused = answers[2][1]
    assert refused["global"] is False and 0 < refused["retry_after"] <= 60
    post = sim.requests_to("POST", path)[0]
    assert post.status == 200 and len(sim.channel_messages(world.general.id, only_bot=False)) == 2
    assert sim.rate_limited[0]["path"] == path


async def test_a_success_carries_the_buckets_limit_and_what_remains(sim: DiscordSimulator, world: World) -> None:
    sim.set_rate_limit("POST", MESSAGES, 5, per=60, bucket="messages")
    sim.set_rate_limit("PATCH", MESSAGES + "/{message_id}", 5, per=60, bucket="messages")
    headers = {"Authorization": f"Bot {sim.token}"}
    url = f"{sim.api_base}/channels/{world.general.id}/messages"
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(url, json={"content": "hi"}) as posted:
            first = posted.headers
            message_id = (await posted.json())["id"]
        async with session.patch(f"{url}/{message_id}", json={"content": "edited"}) as patched:
            second = patched.headers
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"]) == ("5", "4")
    assert 0 < float(first["X-RateLimit-Reset-After"]) <= 60
    assert float(first["X-RateLimit-Reset"]) > 1e9  # epoch seconds
    # The shared bucket: the edit counted against the same window, under the same bucket hash.
    assert second["X-RateLimit-Remaining"] == "3" and second["X-RateLimit-Bucket"] == first["X-RateLimit-Bucket"]


async def test_each_channel_has_its_own_bucket(sim: DiscordSimulator, world: World) -> None:
    other = sim.create_text_channel(world.guild.id, "other")
    sim.set_rate_limit("POST", MESSAGES, 1, per=60)
    statuses = [(await call_api(sim, "POST", f"/channels/{c}/messages", {"content": "x"}))[0]
                for c in (world.general.id, other.id, world.general.id)]
    assert statuses == [200, 200, 429]


async def test_discord_py_waits_for_an_empty_bucket_instead_of_sending(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    sim.set_rate_limit("POST", MESSAGES, 2, per=0.3)
    async with running(new_client()) as client:
        channel = text_channel(client, world.general.id)
        for index in range(5):
            await channel.send(f"message {index}")
    assert [m["content"] for m in sim.channel_messages(world.general.id)] == [f"message {i}" for i in range(5)]
    assert sim.rate_limited == []  # every request came while its bucket had room


async def test_discord_py_retries_after_a_429_from_a_shared_bucket(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    # Two routes in one bucket: discord.py cannot know they share it until Discord says so with a 429.
    sim.set_rate_limit("POST", MESSAGES, 1, per=0.5, bucket="messages")
    sim.set_rate_limit("PATCH", MESSAGES + "/{message_id}", 1, per=0.5, bucket="messages")
    async with running(new_client()) as client:
        message = await text_channel(client, world.general.id).send("draft")  # returns once its window is over
        # Someone else's post (another process of the same bot) takes the shared bucket's only request.
        assert (await call_api(sim, "POST", f"/channels/{world.general.id}/messages", {"content": "x"}))[0] == 200
        edited = await message.edit(content="final")
    assert edited.content == "final"
    assert [r["global"] for r in sim.rate_limited] == [False]
    assert [r.status for r in sim.requests_to("PATCH", rf"/messages/{message.id}$")] == [429, 200]


async def test_discord_py_waits_out_the_global_limit(sim: DiscordSimulator, world: World, running: Runner) -> None:
    async with running(new_client()) as client:
        sim.set_global_rate_limit(2, per=0.3)
        channel = text_channel(client, world.general.id)
        await asyncio.gather(*(channel.send(f"message {i}") for i in range(4)))
    assert sorted(m["content"] for m in sim.channel_messages(world.general.id)) == [f"message {i}" for i in range(4)]
    assert sim.rate_limited and all(r["global"] for r in sim.rate_limited)


async def test_without_limits_nothing_is_refused(sim: DiscordSimulator, world: World) -> None:
    statuses = {(await call_api(sim, "GET", f"/channels/{world.general.id}"))[0] for _ in range(60)}
    assert statuses == {200} and sim.rate_limited == []
