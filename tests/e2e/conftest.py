"""End-to-end fixtures: the Discord simulator, a small community in it, and the bot started as `python -m bot` does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import discord
import discord.asset
import discord.gateway
import discord.http
import pytest

from bot.app import AchievementsBot, running
from bot.clock import FakeClock
from bot.settings import Settings, load_settings
from discord_sim import DiscordSimulator, SimChannel, SimGuild, SimRole, SimUser

MANAGE_GUILD = discord.Permissions(manage_guild=True).value


@pytest.fixture
def clock() -> FakeClock:
    """The clock the bot and the simulator share: messages are dated by it, and tests move it."""
    return FakeClock()


@pytest.fixture
async def simulator(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> AsyncIterator[DiscordSimulator]:
    """A started simulator on the shared clock; discord.py's class-level endpoints are restored afterwards."""
    # Recorded here so that monkeypatch puts the real Discord endpoints back after the bot overrode them.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    websocket = discord.gateway.DiscordWebSocket
    monkeypatch.setattr(websocket, "DEFAULT_GATEWAY", websocket.DEFAULT_GATEWAY)
    monkeypatch.setattr(discord.asset.Asset, "BASE", discord.asset.Asset.BASE)
    async with DiscordSimulator(clock=clock) as sim:
        yield sim
    # Every end-to-end test also checks the bot's own traffic against Discord's OpenAPI specification.
    refused = [f"{v.method} {v.path}: {v.errors}" for v in sim.spec_violations]
    assert not refused, "the bot sent requests Discord's specification refuses:\n" + "\n".join(refused)
    wrong = [f"{v.method} {v.path} -> {v.status}: {v.errors}" for v in sim.response_violations]
    assert not wrong, "the simulator answered against Discord's specification:\n" + "\n".join(wrong)


@dataclass
class Community:
    """A guild with #general and #announcements, its owner, a moderator (Manage Server) and two members."""

    guild: SimGuild
    general: SimChannel
    announcements: SimChannel
    moderators: SimRole
    owner: SimUser
    moderator: SimUser
    alice: SimUser
    bob: SimUser

    @property
    def id(self) -> int:
        return self.guild.id


@pytest.fixture
def community(simulator: DiscordSimulator) -> Community:
    owner = simulator.create_user("owner")
    guild = simulator.create_guild("Study Hall", owner_id=owner.id)
    general = guild.channels[guild.system_channel_id or 0]
    announcements = simulator.create_text_channel(guild.id, "announcements")
    moderators = simulator.create_role(guild.id, "Moderators", permissions=MANAGE_GUILD, position=2)
    moderator, alice, bob = (simulator.create_user(name) for name in ("moderator", "alice", "bob"))
    simulator.add_member(guild.id, moderator.id, roles=[moderators.id])
    simulator.add_member(guild.id, alice.id)
    simulator.add_member(guild.id, bob.id)
    return Community(guild, general, announcements, moderators, owner, moderator, alice, bob)


@pytest.fixture
def bot_settings(simulator: DiscordSimulator, community: Community, tmp_path: Path) -> Settings:
    """Settings built the way `python -m bot` builds them, pointing at the simulator and a temporary database."""
    return load_settings(
        {
            "DISCORD_TOKEN": simulator.token,
            "DATABASE_PATH": str(tmp_path / "achievements.db"),
            "DISCORD_API_BASE": simulator.api_base,
            "DISCORD_GATEWAY_URL": simulator.gateway_url,
            "DISCORD_CDN_URL": simulator.cdn_base,
            "DEV_GUILD_ID": str(community.id),
            "PRIVILEGED_INTENTS": "members,message_content,presences",
            "LOG_LEVEL": "INFO",
        }
    )


@pytest.fixture
async def running_bot(
    simulator: DiscordSimulator, bot_settings: Settings, clock: FakeClock
) -> AsyncIterator[AchievementsBot]:
    """The real bot (same settings path and setup_hook as `python -m bot`), logged in and ready."""
    # guild_ready_timeout: discord.py otherwise waits 2 s after the last GUILD_CREATE before READY.
    async with running(bot_settings, clock=clock, ready_timeout=15, guild_ready_timeout=0.1) as bot:
        yield bot
