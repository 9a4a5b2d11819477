"""Fixtures for testing the Discord simulator with a bare discord.py client."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import discord.asset
import discord.gateway
import discord.http
import pytest
import yarl

from discord_sim import DiscordSimulator, SimChannel, SimGuild, SimRole, SimUser


@pytest.fixture
async def sim(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DiscordSimulator]:
    """A started simulator; ``@pytest.mark.simulator(**options)`` passes constructor options to it."""
    marker = request.node.get_closest_marker("simulator")
    async with DiscordSimulator(**(marker.kwargs if marker else {})) as simulator:
        # The same two knobs the bot applies from DISCORD_API_BASE / DISCORD_GATEWAY_URL.
        monkeypatch.setattr(discord.http.Route, "BASE", simulator.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(simulator.gateway_url))
        monkeypatch.setattr(discord.asset.Asset, "BASE", simulator.cdn_base)
        yield simulator
    # Every simulator test also holds the simulator's own answers to the spec's response schemas (a test
    # that breaks a response on purpose empties ``response_violations`` once it has looked at them).
    assert_responses_follow_spec(simulator)


def assert_responses_follow_spec(simulator: DiscordSimulator) -> None:
    wrong = [f"{v.method} {v.path} -> {v.status}: {v.errors}" for v in simulator.response_violations]
    assert not wrong, "the simulator answered against Discord's specification:\n" + "\n".join(wrong)


@dataclass
class World:
    guild: SimGuild
    general: SimChannel
    mods: SimRole
    moderator: SimUser
    alice: SimUser
    bob: SimUser


@pytest.fixture
def world(sim: DiscordSimulator) -> World:
    guild = sim.create_guild("Test Guild")
    mods = sim.create_role(guild.id, "Mods", permissions=discord.Permissions(manage_guild=True).value, position=2)
    moderator, alice, bob = sim.create_user("moderator"), sim.create_user("alice"), sim.create_user("bob")
    sim.add_member(guild.id, moderator.id, roles=[mods.id])
    sim.add_member(guild.id, alice.id)
    sim.add_member(guild.id, bob.id)
    general = guild.channels[guild.system_channel_id or 0]
    return World(guild, general, mods, moderator, alice, bob)


def make_intents(*, members: bool = True, message_content: bool = True, presences: bool = False) -> discord.Intents:
    intents = discord.Intents.default()
    intents.members = members
    intents.message_content = message_content
    intents.presences = presences
    return intents


Runner = Callable[[discord.Client], AbstractAsyncContextManager[discord.Client]]


@pytest.fixture
def running(sim: DiscordSimulator) -> Runner:
    """Log a client in to the simulator, connect it, and wait until it is ready; close it afterwards."""

    @contextlib.asynccontextmanager
    async def run(client: discord.Client) -> AsyncIterator[discord.Client]:
        await client.login(sim.token)
        task = asyncio.create_task(client.connect())
        try:
            await asyncio.wait_for(client.wait_until_ready(), 5)
            yield client
        finally:
            await client.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)

    return run


async def call_api(sim: DiscordSimulator, method: str, path: str, body: Any = None, *,
                   raw: bytes | None = None, payload_json: Any = None) -> tuple[int, Any]:
    """One request as any HTTP client could send it (not only discord.py): status and decoded JSON body.

    ``body`` is sent as JSON, ``raw`` as bytes labelled JSON, ``payload_json`` as a multipart form with one file.
    """
    headers = {"Authorization": f"Bot {sim.token}"}
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"headers": headers}
        if raw is not None:
            kwargs["data"] = raw
            headers["Content-Type"] = "application/json"
        elif payload_json is not None:
            form = aiohttp.FormData()
            form.add_field("payload_json", json.dumps(payload_json), content_type="application/json")
            form.add_field("files[0]", b"hello", filename="hello.txt", content_type="text/plain")
            kwargs["data"] = form
        elif body is not None:
            kwargs["json"] = body
        async with session.request(method, sim.api_base + path, **kwargs) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, data


def listen(client: discord.Client, event: str) -> list[Any]:
    """Collect what ``client`` dispatches for ``event`` (``"on_message"``): one argument, or a tuple of them."""
    sink: list[Any] = []

    async def handler(*args: Any) -> None:
        sink.append(args[0] if len(args) == 1 else args)

    handler.__name__ = event
    client.event(handler)
    return sink
