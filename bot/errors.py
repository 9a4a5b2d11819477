"""Errors a member or moderator can cause, and the command tree's one handler that answers them."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

log = logging.getLogger(__name__)


class UserFacingError(Exception):
    """Bad input or a refused action: the message is shown to the user, ephemerally, as it is."""


class AchievementsTree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = getattr(error, "original", error)
        if isinstance(original, UserFacingError):
            message = f"❌ {original}"
        elif isinstance(error, app_commands.MissingPermissions):
            message = "❌ You need the " + ", ".join(p.replace("_", " ").title() for p in error.missing_permissions) \
                + " permission to use this command."
        elif isinstance(error, app_commands.CheckFailure):
            message = "❌ You cannot use this command here."
        elif isinstance(error, app_commands.TransformerError):
            # Discord lets a user option name someone who is not (or no longer) in the server.
            if error.type is discord.AppCommandOptionType.user:
                message = "❌ That user is not a member of this server."
            else:
                message = f"❌ `{str(error.value)[:60]}` is not something I can use for that option."
        elif isinstance(error, app_commands.CommandOnCooldown):
            message = f"⏳ Slow down: try again in {error.retry_after:.0f} s."
        elif isinstance(original, discord.Forbidden):
            log.warning("missing permission in guild %s: %s", interaction.guild_id, original)
            message = "❌ I am missing a permission in this channel to do that."
        else:
            log.error("command %s failed", interaction.command.qualified_name if interaction.command else "?",
                      exc_info=original)
            message = UNEXPECTED
        await tell_privately(interaction, message)


UNEXPECTED = "❌ Something went wrong on my side; it has been logged."


async def tell_privately(interaction: discord.Interaction, message: str) -> None:
    """Answer an interaction with an ephemeral message, whether or not it was answered or deferred yet."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True)
        else:
            await interaction.response.send_message(message, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the user about an error", exc_info=True)
