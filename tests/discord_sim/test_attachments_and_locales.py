"""Files uploaded to a slash command's attachment option, and the locales interactions carry."""

from __future__ import annotations

import discord
import pytest
from discord import app_commands

from discord_sim import DiscordSimulator

from .conftest import Runner, World, make_intents

CSV = b"name,points\nfirst-steps,10\n"


class Recorder:
    def __init__(self) -> None:
        self.files: list[tuple[str, bytes, str | None]] = []
        self.locales: list[tuple[discord.Locale, discord.Locale | None]] = []


def build_client(guild_id: int, seen: Recorder) -> discord.Client:
    client = discord.Client(intents=make_intents(), guild_ready_timeout=0.05)
    tree = app_commands.CommandTree(client)
    guild = discord.Object(guild_id)

    @tree.command(name="import", description="Import achievements from a file", guild=guild)
    async def import_(interaction: discord.Interaction, file: discord.Attachment) -> None:
        data = await file.read()  # fetched from the simulator's CDN
        seen.files.append((file.filename, data, file.content_type))
        await interaction.response.send_message(f"read {len(data)} bytes from {file.filename}")

    @tree.command(name="hello", description="Greets in your language", guild=guild)
    async def hello(interaction: discord.Interaction) -> None:
        seen.locales.append((interaction.locale, interaction.guild_locale))
        await interaction.response.send_message("bonjour" if interaction.locale is discord.Locale.french else "hi")

    client.tree = tree  # type: ignore[attr-defined]
    return client


async def test_a_file_uploaded_to_an_attachment_option_reaches_the_command(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    seen = Recorder()
    async with running(build_client(world.guild.id, seen)) as client:
        await client.tree.sync(guild=discord.Object(world.guild.id))  # type: ignore[attr-defined]
        ix = await sim.invoke_command(world.guild.id, world.general.id, world.moderator.id, "import",
                                      file=("achievements.csv", CSV))
        reply = await ix.message()
    assert seen.files == [("achievements.csv", CSV, "text/csv")]
    assert reply["content"] == f"read {len(CSV)} bytes from achievements.csv"
    (attachment,) = ix.payload["data"]["resolved"]["attachments"].values()
    assert attachment["ephemeral"] is True and attachment["size"] == len(CSV)


async def test_interactions_carry_the_users_and_the_guilds_locale(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    seen = Recorder()
    sim.set_guild_locale(world.guild.id, "de")
    async with running(build_client(world.guild.id, seen)) as client:
        await client.tree.sync(guild=discord.Object(world.guild.id))  # type: ignore[attr-defined]
        first = await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "hello")
        sim.set_locale(world.alice.id, "fr")
        second = await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "hello")
        replies = [(await first.message())["content"], (await second.message())["content"]]
    assert seen.locales == [(discord.Locale.american_english, discord.Locale.german),
                            (discord.Locale.french, discord.Locale.german)]
    assert replies == ["hi", "bonjour"]


def test_an_unknown_locale_is_refused(sim: DiscordSimulator, world: World) -> None:
    with pytest.raises(ValueError):
        sim.set_locale(world.alice.id, "xx-YY")
