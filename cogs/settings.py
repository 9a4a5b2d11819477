"""Moderator settings: /settings announce-channel, timezone, anti-spam, cards, show, audit, reset-member, export."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError
from bot.management import timezone_names
from bot.render import clip, plural
from bot.views import Confirm

if TYPE_CHECKING:
    from bot.app import AchievementsBot

MANAGE = discord.Permissions(manage_guild=True)


def guild_id_of(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise UserFacingError("This command works in a server, not in direct messages.")
    return interaction.guild_id


async def defer_privately(interaction: discord.Interaction) -> None:
    """Acknowledge at once, privately: the write that follows may wait for the database longer than Discord's
    3 s reply deadline (another guild's long transaction), and the change would be made with no reply seen."""
    await interaction.response.defer(ephemeral=True, thinking=True)


class SettingsCommands(commands.Cog):
    settings = app_commands.Group(
        name="settings", description="Configure the achievements bot for this server",
        default_permissions=MANAGE, guild_only=True,
    )

    def __init__(self, bot: AchievementsBot) -> None:
        self.bot = bot
        self.management = bot.management
        self.exporting: set[int] = set()  # guilds with an export running: one at a time each

    @settings.command(name="announce-channel")
    @app_commands.describe(channel="Where unlocks are announced; leave empty to post where the activity happened")
    async def announce_channel(self, interaction: discord.Interaction,
                               channel: discord.TextChannel | None = None) -> None:
        """Choose the channel for unlock and tier announcements."""
        guild_id = guild_id_of(interaction)
        await defer_privately(interaction)
        if channel is not None:
            perms = channel.permissions_for(channel.guild.me)
            if not (perms.view_channel and perms.send_messages and perms.embed_links):
                raise UserFacingError(
                    f"I cannot post embeds in {channel.mention}: give me View Channel, Send Messages and "
                    "Embed Links there first."
                )
        await self.management.update_settings(guild_id, interaction.user.id,
                                              announce_channel_id=channel.id if channel else None)
        where = channel.mention if channel else "the channel where the activity happened"
        await interaction.followup.send(f"📣 Announcements now go to {where}.", ephemeral=True)

    async def timezone_autocomplete(self, _interaction: discord.Interaction,
                                    current: str) -> list[app_commands.Choice[str]]:
        needle = current.lower().replace(" ", "_")
        names = [n for n in timezone_names() if needle in n.lower()]
        return [app_commands.Choice(name=n, value=n) for n in names[:25]]

    @settings.command(name="timezone")
    @app_commands.describe(timezone="An IANA timezone such as Europe/Paris; days and streaks follow it")
    @app_commands.autocomplete(timezone=timezone_autocomplete)
    async def timezone(self, interaction: discord.Interaction, timezone: str) -> None:
        """Set the server's timezone: local days, streaks, midnight rollover and time-of-day achievements."""
        guild_id = guild_id_of(interaction)
        await defer_privately(interaction)
        await self.management.update_settings(guild_id, interaction.user.id, timezone=timezone)
        state = await self.bot.recorder.guild(guild_id)
        local = self.bot.clock.now().astimezone(state.tz)
        await interaction.followup.send(
            f"🕛 Timezone set to **{state.settings.timezone}** (local time now {local:%Y-%m-%d %H:%M}). "
            "The day rolls over at local midnight.", ephemeral=True,
        )

    @settings.command(name="anti-spam")
    @app_commands.describe(cooldown="Seconds between counted messages of one member (0 = off)",
                           min_length="Minimum characters for a message to count (0 = off; needs the message "
                                      "content intent)")
    async def anti_spam(self, interaction: discord.Interaction, cooldown: app_commands.Range[int, 0, 3600],
                        min_length: app_commands.Range[int, 0, 200] = 0) -> None:
        """Stop message floods from farming counts."""
        guild_id = guild_id_of(interaction)
        await defer_privately(interaction)
        await self.management.update_settings(guild_id, interaction.user.id, anti_spam_cooldown=cooldown,
                                              anti_spam_min_length=min_length)
        state = "off" if not (cooldown or min_length) else f"cooldown {cooldown} s, minimum length {min_length}"
        note = ""
        if min_length and not self.bot.intents.message_content:
            note = "\n⚠️ The minimum length needs the message content intent, which this bot does not have."
        await interaction.followup.send(f"🛡️ Anti-spam: {state}.{note}", ephemeral=True)

    @settings.command(name="cards")
    @app_commands.describe(enabled="Show /profile as a picture card (on) or as text only (off)")
    async def cards(self, interaction: discord.Interaction, enabled: bool) -> None:
        """Turn the profile card images of /profile on or off."""
        guild_id = guild_id_of(interaction)
        await defer_privately(interaction)
        await self.management.update_settings(guild_id, interaction.user.id, cards_enabled=enabled)
        state = "on: /profile shows a picture card" if enabled else "off: /profile shows text only"
        await interaction.followup.send(f"🖼️ Profile cards {state}.", ephemeral=True)

    @settings.command(name="show")
    async def show(self, interaction: discord.Interaction) -> None:
        """Show this server's settings."""
        guild_id = guild_id_of(interaction)
        state = await self.bot.recorder.guild(guild_id)
        s = state.settings
        embed = discord.Embed(title="Settings", colour=discord.Colour.blurple())
        health = self.bot.storage.db.write_health
        if health.failing_since is not None:
            embed.colour = discord.Colour.red()
            embed.description = clip(
                f"⚠️ **The database is refusing writes** since {discord.utils.format_dt(health.failing_since, 'R')} "
                f"({plural(health.failures, 'failed attempt')}; last error: `{health.last_error}`). New activity "
                "and changes are not being saved: they are kept in memory and retried. Ask the bot's operator to "
                "check the database file, its folder and the disk.", 4096)
        embed.add_field(name="Announcements",
                        value=f"<#{s.announce_channel_id}>" if s.announce_channel_id else "where the activity happened")
        embed.add_field(name="Timezone", value=s.timezone)
        embed.add_field(name="Anti-spam", value=(
            f"cooldown {s.anti_spam_cooldown} s, min length {s.anti_spam_min_length}"
            if s.anti_spam_cooldown or s.anti_spam_min_length else "off"
        ))
        embed.add_field(name="Profile cards", value="on" if s.cards_enabled else "off")
        embed.add_field(name="Achievements", value=str(len(state.rulebook.achievements)))
        embed.add_field(name="Tiers", value=clip(" ".join(f"{t.badge} {t.name}" for t in state.tiers) or "none", 1024))
        last = s.last_rollover_date.isoformat() if s.last_rollover_date else "never"
        embed.add_field(name="Last rollover", value=last)
        problems = [e for e in await self.bot.storage.audit.recent(guild_id, 50) if e.action.endswith("-failed")]
        if problems:
            embed.add_field(name="⚠️ Recent problems", inline=False,
                            value=clip("\n".join(f"• {p.detail}" for p in problems[:5]), 1024))
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @settings.command(name="audit")
    async def audit(self, interaction: discord.Interaction) -> None:
        """Show the latest moderator changes: who did what, when."""
        guild_id = guild_id_of(interaction)
        entries = await self.bot.storage.audit.recent(guild_id, 20)
        lines = [f"{discord.utils.format_dt(e.created_at, 'R')} <@{e.actor_id}> `{e.action}` {clip(e.detail, 120)}"
                 for e in entries]
        embed = discord.Embed(title="Audit log", colour=discord.Colour.blurple(),
                              description=clip("\n".join(lines) or "No changes yet.", 4096))
        await interaction.response.send_message(embed=embed, ephemeral=True,
                                                allowed_mentions=discord.AllowedMentions.none())

    @settings.command(name="reset-member")
    @app_commands.describe(member="Whose stats and achievements to erase in this server")
    async def reset_member(self, interaction: discord.Interaction, member: discord.User) -> None:
        """Erase one member's stats and achievements in this server (asks first)."""
        guild_id = guild_id_of(interaction)
        actor = interaction.user.id

        async def reset() -> str:
            existed = await self.management.reset_member(guild_id, actor, member.id)
            return f"🧹 Erased the data of {member.mention}." if existed else f"{member.mention} had no data."

        view = Confirm(actor, reset)
        await interaction.response.send_message(
            f"Erase every stat, point and achievement of {member.mention} in this server? This cannot be undone.",
            view=view, ephemeral=True,
        )
        view.message = await interaction.original_response()

    @settings.command(name="export")
    @app_commands.describe(format="JSON has everything; CSV has one row per member")
    async def export(self, interaction: discord.Interaction, format: Literal["json", "csv"] = "json") -> None:
        """Download this server's data: settings, achievements, tiers and every member's stats."""
        guild_id = guild_id_of(interaction)
        # Checked and taken with no await in between: two clicks cannot both start an export.
        if guild_id in self.exporting:
            raise UserFacingError("An export of this server is already running: wait for its file, then try again.")
        self.exporting.add(guild_id)
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            limit = interaction.guild.filesize_limit if interaction.guild else DEFAULT_UPLOAD_LIMIT
            export = await self.management.export(guild_id, format, upload_limit=limit)
            try:
                await interaction.followup.send(f"📦 Export of {plural(export.members, 'member')}.",
                                                file=discord.File(export.path, filename=export.filename),
                                                ephemeral=True)
            finally:
                export.discard()
        finally:
            self.exporting.discard(guild_id)


DEFAULT_UPLOAD_LIMIT = 10 * 2**20


async def setup(bot: AchievementsBot) -> None:
    await bot.add_cog(SettingsCommands(bot))
