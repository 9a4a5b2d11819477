"""Member commands: /profile, /leaderboard and /achievements."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cards import card_data
from bot.errors import UserFacingError
from bot.render import achievements_embed, leaderboard_embed, profile_embed
from bot.views import Paginator

if TYPE_CHECKING:
    from bot.app import AchievementsBot
    from bot.profiles import Profile

log = logging.getLogger(__name__)

ACHIEVEMENTS_PER_PAGE = 8
CARD_FILENAME = "profile.png"
AVATAR_SIZE = 128  # the card draws a 140 px avatar: Discord's 128 px size is the closest below


def guild_of(interaction: discord.Interaction) -> discord.Guild:
    if interaction.guild is None:
        raise UserFacingError("This command works in a server, not in direct messages.")
    return interaction.guild


def member_target(
    interaction: discord.Interaction, member: discord.Member | discord.User | None
) -> tuple[discord.Guild, discord.Member | discord.User]:
    """The guild and the member a command is about (the caller by default); bots are refused, before any
    defer, so the refusal stays private."""
    guild = guild_of(interaction)
    target = member or interaction.user
    if target.bot:
        raise UserFacingError("Bots do not earn achievements.")
    return guild, target


@contextlib.asynccontextmanager
async def deferred_publicly(interaction: discord.Interaction) -> AsyncIterator[None]:
    """Defer a reply everyone will see, keeping any error in the block private.

    Discord fixes the visibility of a deferred reply when it defers: the follow-up that fills in a public
    "thinking" message is public whatever its flags. So on an error the thinking message is deleted first,
    and the error handler's follow-up is then a new message that can be ephemeral.
    """
    await interaction.response.defer(thinking=True)
    try:
        yield
    except Exception:
        with contextlib.suppress(discord.HTTPException):
            await interaction.delete_original_response()
        raise


class ProfileCommands(commands.Cog):
    def __init__(self, bot: AchievementsBot) -> None:
        self.bot = bot
        self.profiles = bot.profiles

    @app_commands.command(name="profile")
    @app_commands.guild_only()
    @app_commands.describe(member="Whose profile to show (default: yours)")
    async def profile(self, interaction: discord.Interaction,
                      member: discord.Member | discord.User | None = None) -> None:
        """Show a member's tier, points, rank, streak and the achievements they are closest to."""
        guild, target = member_target(interaction, member)
        async with deferred_publicly(interaction):
            data = await self.profiles.profile(guild.id, target.id)
            card = await self.card(guild.id, data, target)
            if card is None:
                avatar = target.display_avatar.url if target.display_avatar else None
                await interaction.followup.send(embed=profile_embed(data, target.display_name, avatar))
                return
            embed = profile_embed(data, target.display_name, None)  # the card shows the avatar
            embed.set_image(url=f"attachment://{CARD_FILENAME}")
            card_file = discord.File(io.BytesIO(card), filename=CARD_FILENAME)
            await interaction.followup.send(embed=embed, file=card_file)

    async def card(self, guild_id: int, data: Profile, target: discord.Member | discord.User) -> bytes | None:
        """The profile card's PNG, or None when the guild turned cards off or it could not be drawn."""
        state = await self.bot.recorder.guild(guild_id)
        if not state.settings.cards_enabled:
            return None
        asset = target.display_avatar.with_size(AVATAR_SIZE)
        try:
            return await self.bot.cards.card(card_data(data, target.display_name, asset.url), asset.read)
        except Exception:
            log.exception("could not draw the profile card of member %s in guild %s; sending text only",
                          target.id, guild_id)
            return None

    @app_commands.command(name="leaderboard")
    @app_commands.guild_only()
    @app_commands.describe(page="Page to open (10 members a page)")
    async def leaderboard(self, interaction: discord.Interaction,
                          page: app_commands.Range[int, 1, 100_000] = 1) -> None:
        """Show the server's members ranked by points."""
        guild = guild_of(interaction)
        caller = interaction.user.id

        async def source(index: int) -> tuple[discord.Embed, int]:
            data = await self.profiles.leaderboard(guild.id, index, caller)
            return leaderboard_embed(data, guild.name, caller), data.pages

        async with deferred_publicly(interaction):
            first = await self.profiles.leaderboard(guild.id, page - 1, caller)
            my_page = (lambda: self.profiles.page_of(guild.id, caller)) if first.caller else None
            view = Paginator(caller, source, first.page, first.pages, my_page=my_page)
            view.message = await interaction.followup.send(embed=leaderboard_embed(first, guild.name, caller),
                                                           view=view, wait=True)

    @app_commands.command(name="achievements")
    @app_commands.guild_only()
    @app_commands.describe(member="Whose achievements to show (default: yours)")
    async def achievements(self, interaction: discord.Interaction,
                           member: discord.Member | discord.User | None = None) -> None:
        """List every achievement of the server: unlocked, in progress, hidden and time-limited."""
        guild, target = member_target(interaction, member)
        async with deferred_publicly(interaction):
            _, statuses = await self.profiles.statuses(guild.id, target.id)
            now = self.bot.clock.now()

            async def source(index: int) -> tuple[discord.Embed, int]:
                return achievements_embed(statuses, index, ACHIEVEMENTS_PER_PAGE, target.display_name, now)

            embed, pages = await source(0)
            view = Paginator(interaction.user.id, source, 0, pages)
            view.message = await interaction.followup.send(embed=embed, view=view, wait=True)


async def setup(bot: AchievementsBot) -> None:
    await bot.add_cog(ProfileCommands(bot))
