"""Moderator commands: /achievement, /stat and /tier (default permission: Manage Server)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError
from bot.render import clip, plural, preview_embed
from bot.views import Confirm, Paginator

if TYPE_CHECKING:
    from bot.app import AchievementsBot

log = logging.getLogger(__name__)

MANAGE = discord.Permissions(manage_guild=True)
LIST_PER_PAGE = 10


def guild_id_of(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise UserFacingError("This command works in a server, not in direct messages.")
    return interaction.guild_id


def check_reward_role(interaction: discord.Interaction, role: discord.Role | None) -> int | None:
    """A reward role the bot can actually give, or a clear refusal."""
    if role is None:
        return None
    guild = interaction.guild
    me = guild.me if guild else None
    if role.is_default() or role.managed:
        raise UserFacingError(f"{role.mention} cannot be given as a reward (it is managed by Discord or a bot).")
    if me is not None and not me.guild_permissions.manage_roles:
        raise UserFacingError("I need the **Manage Roles** permission to give reward roles.")
    if me is not None and role >= me.top_role:
        raise UserFacingError(
            f"{role.mention} is above my highest role, so I cannot give it. Move my role above it in "
            "Server Settings → Roles, then try again."
        )
    return role.id


class ManageCommands(commands.Cog):
    achievement = app_commands.Group(
        name="achievement", description="Create and manage this server's achievements",
        default_permissions=MANAGE, guild_only=True,
    )
    stat = app_commands.Group(
        name="stat", description="Award custom stats to members", default_permissions=MANAGE, guild_only=True,
    )
    tier = app_commands.Group(
        name="tier", description="Manage the tiers members reach with points", default_permissions=MANAGE,
        guild_only=True,
    )

    def __init__(self, bot: AchievementsBot) -> None:
        self.bot = bot
        self.management = bot.management

    # ------------------------------------------------------------------ autocomplete
    async def achievement_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        state = await self.bot.recorder.guild(interaction.guild_id)
        needle = current.lower().strip()
        found = [a for a in state.rulebook.achievements if needle in a.id or needle in a.name.lower()]
        return [app_commands.Choice(name=clip(f"{a.name} ({a.id})", 100), value=a.id) for a in found[:25]]

    async def stat_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        from bot.management import AUTOMATIC_STATS

        names = [s for s in await self.management.known_stats(interaction.guild_id) if s not in AUTOMATIC_STATS]
        for suggestion in ("tasks_completed", "lessons_finished", "events_attended"):
            if suggestion not in names:
                names.append(suggestion)
        needle = current.lower().strip()
        return [app_commands.Choice(name=n, value=n) for n in names if needle in n][:25]

    # ------------------------------------------------------------------ /achievement
    @achievement.command(name="add")
    @app_commands.describe(
        name="Shown to members, e.g. Week Warrior", description="How to earn it, in a sentence",
        points="Points it is worth (1–10,000)", condition="e.g. messages >= 100 and streak >= 7",
        hidden="Hide it as '??? Hidden achievement' until someone unlocks it",
        starts="Only unlockable from: YYYY-MM-DD or YYYY-MM-DD HH:MM (server timezone)",
        ends="Only unlockable until: YYYY-MM-DD (end of that day) or YYYY-MM-DD HH:MM",
        role="A role given to members who unlock it",
    )
    async def achievement_add(
        self, interaction: discord.Interaction, name: app_commands.Range[str, 1, 100],
        description: app_commands.Range[str, 1, 1000], points: app_commands.Range[int, 1, 10_000],
        condition: app_commands.Range[str, 1, 500], hidden: bool = False, starts: str | None = None,
        ends: str | None = None, role: discord.Role | None = None,
    ) -> None:
        """Create an achievement; members who already meet it get it."""
        guild_id = guild_id_of(interaction)
        role_id = check_reward_role(interaction, role)
        await interaction.response.defer(ephemeral=True, thinking=True)
        preview = await self.management.add_achievement(
            guild_id, interaction.user.id, name=name, description=description, points=points, condition=condition,
            hidden=hidden, starts=starts, ends=ends, role_id=role_id,
        )
        await interaction.followup.send(embed=preview_embed(preview, "Created"), ephemeral=True)

    @achievement.command(name="edit")
    @app_commands.describe(
        achievement="The achievement to change", name="New name", description="New description",
        points="New points (holders' totals follow)", condition="New condition (holders keep it)",
        hidden="Hide or show it", starts="New start (YYYY-MM-DD [HH:MM])", ends="New end (YYYY-MM-DD [HH:MM])",
        role="New reward role", clear_window="Remove the start and end dates", clear_role="Remove the reward role",
    )
    @app_commands.autocomplete(achievement=achievement_autocomplete)
    async def achievement_edit(
        self, interaction: discord.Interaction, achievement: str, name: app_commands.Range[str, 1, 100] | None = None,
        description: app_commands.Range[str, 1, 1000] | None = None,
        points: app_commands.Range[int, 1, 10_000] | None = None,
        condition: app_commands.Range[str, 1, 500] | None = None, hidden: bool | None = None,
        starts: str | None = None, ends: str | None = None, role: discord.Role | None = None,
        clear_window: bool = False, clear_role: bool = False,
    ) -> None:
        """Change an achievement; only the options you give change."""
        guild_id = guild_id_of(interaction)
        role_id = check_reward_role(interaction, role)
        await interaction.response.defer(ephemeral=True, thinking=True)
        preview = await self.management.edit_achievement(
            guild_id, interaction.user.id, achievement, name=name, description=description, points=points,
            condition=condition, hidden=hidden, starts=starts, ends=ends, role_id=role_id,
            clear_window=clear_window, clear_role=clear_role,
        )
        await interaction.followup.send(embed=preview_embed(preview, "Updated"), ephemeral=True)

    @achievement.command(name="remove")
    @app_commands.describe(achievement="The achievement to delete")
    @app_commands.autocomplete(achievement=achievement_autocomplete)
    async def achievement_remove(self, interaction: discord.Interaction, achievement: str) -> None:
        """Delete an achievement (asks first); members who earned it lose it and its points."""
        guild_id = guild_id_of(interaction)
        found, holders = await self.management.removal_impact(guild_id, achievement)
        actor = interaction.user.id

        async def remove() -> str:
            taken = await self.management.remove_achievement(guild_id, actor, found.id)
            name = discord.utils.escape_markdown(found.name)
            return f"🗑️ Removed **{name}**. {plural(taken, 'member')} lost it and its {found.points} points."

        view = Confirm(actor, remove)
        await interaction.response.send_message(
            f"Remove **{discord.utils.escape_markdown(found.name)}** (`{found.id}`)? {plural(holders, 'member')} "
            f"{'has' if holders == 1 else 'have'} earned it; they will lose it and its {found.points} points. "
            "This cannot be undone.",
            view=view, ephemeral=True,
        )
        view.message = await interaction.original_response()

    @achievement.command(name="list")
    async def achievement_list(self, interaction: discord.Interaction) -> None:
        """List every achievement with its id, points and condition (hidden ones included)."""
        guild_id = guild_id_of(interaction)
        state = await self.bot.recorder.guild(guild_id)
        items = list(state.rulebook.achievements)
        pages = max(1, -(-len(items) // LIST_PER_PAGE))
        now = self.bot.clock.now()

        async def source(index: int) -> tuple[discord.Embed, int]:
            from bot.render import window_text

            lines = []
            for a in items[index * LIST_PER_PAGE:(index + 1) * LIST_PER_PAGE]:
                flags = " · hidden" if a.hidden else ""
                window = window_text(a, now)
                lines.append(f"**{clip(a.name, 80)}** `{a.id}` · {a.points} pts{flags}"
                             f"{' · ' + window if window else ''}\n`{clip(a.condition.text, 200)}`")
            embed = discord.Embed(title=f"Achievements ({len(items)})", description="\n".join(lines) or "None yet.",
                                  colour=discord.Colour.blurple())
            embed.set_footer(text=f"Page {index + 1}/{pages}")
            return embed, pages

        embed, _ = await source(0)
        view = Paginator(interaction.user.id, source, 0, pages)
        await interaction.response.send_message(embed=embed, view=view, ephemeral=True)
        view.message = await interaction.original_response()

    @achievement.command(name="grant")
    @app_commands.describe(member="Who gets it", achievement="Which achievement")
    @app_commands.autocomplete(achievement=achievement_autocomplete)
    async def achievement_grant(self, interaction: discord.Interaction, member: discord.Member,
                                achievement: str) -> None:
        """Give a member an achievement, whatever its condition (announced like any unlock)."""
        guild_id = guild_id_of(interaction)
        if member.bot:
            raise UserFacingError("Bots do not earn achievements.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await self.management.grant(guild_id, interaction.user.id, member.id, achievement)
        names = ", ".join(f"**{discord.utils.escape_markdown(a.name)}**" for a in result.unlocked)
        await interaction.followup.send(f"✅ Granted {names} to {member.mention}.", ephemeral=True)

    @achievement.command(name="revoke")
    @app_commands.describe(member="Who loses it", achievement="Which achievement")
    @app_commands.autocomplete(achievement=achievement_autocomplete)
    async def achievement_revoke(self, interaction: discord.Interaction, member: discord.Member,
                                 achievement: str) -> None:
        """Take an achievement and its points back from a member."""
        guild_id = guild_id_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        taken = await self.management.revoke(guild_id, interaction.user.id, member.id, achievement)
        await interaction.followup.send(
            f"↩️ Took **{discord.utils.escape_markdown(taken.name)}** and its {taken.points} points from "
            f"{member.mention}.", ephemeral=True,
        )

    # ------------------------------------------------------------------ /stat
    @stat.command(name="add")
    @app_commands.describe(member="Who did it", stat="A custom stat, e.g. tasks_completed",
                           amount="How much to add (1–1,000)")
    @app_commands.autocomplete(stat=stat_autocomplete)
    async def stat_add(self, interaction: discord.Interaction, member: discord.Member, stat: str,
                       amount: app_commands.Range[int, 1, 1000] = 1) -> None:
        """Award a custom action to a member; achievements that read it are checked."""
        guild_id = guild_id_of(interaction)
        if member.bot:
            raise UserFacingError("Bots do not earn achievements.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await self.management.add_stat(guild_id, interaction.user.id, member.id, stat, amount)
        message = f"➕ Added {amount} `{stat.strip().lower()}` to {member.mention}."
        if result.unlocked:
            message += " Unlocked: " + ", ".join(f"**{discord.utils.escape_markdown(a.name)}**"
                                                 for a in result.unlocked) + "."
        if result.tier_reached:
            message += f" New tier: {result.tier_reached.badge} {result.tier_reached.name}."
        await interaction.followup.send(message, ephemeral=True)

    # ------------------------------------------------------------------ /tier
    @tier.command(name="set")
    @app_commands.describe(name="Tier name, e.g. Expert", points="Points needed to reach it",
                           badge="An emoji shown with it", role="A role given to members who reach it")
    async def tier_set(self, interaction: discord.Interaction, name: app_commands.Range[str, 1, 32],
                       points: app_commands.Range[int, 0, 10_000_000], badge: app_commands.Range[str, 1, 64],
                       role: discord.Role | None = None) -> None:
        """Add a tier, or change the one with this name or threshold."""
        guild_id = guild_id_of(interaction)
        role_id = check_reward_role(interaction, role)
        # Deferred before the write: under database load it can outlast Discord's 3 s reply deadline.
        await interaction.response.defer(ephemeral=True, thinking=True)
        tier, replaced = await self.management.set_tier(guild_id, interaction.user.id, name, points, badge, role_id)
        message = f"✅ Tier {tier.badge} **{discord.utils.escape_markdown(tier.name)}** at {tier.points:,} points."
        others = [t for t in replaced if t.name.lower() != tier.name.lower()]
        if others:
            message += " It replaces " + ", ".join(
                f"{t.badge} **{discord.utils.escape_markdown(t.name)}** ({t.points:,})" for t in others
            ) + ", which had the same points."
        await interaction.followup.send(message, ephemeral=True)

    async def tier_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        state = await self.bot.recorder.guild(interaction.guild_id)
        return [app_commands.Choice(name=clip(f"{t.badge} {t.name} ({t.points})", 100), value=t.name)
                for t in state.tiers if current.lower() in t.name.lower()][:25]

    @tier.command(name="remove")
    @app_commands.describe(name="The tier to remove")
    @app_commands.autocomplete(name=tier_autocomplete)
    async def tier_remove(self, interaction: discord.Interaction, name: str) -> None:
        """Remove a tier."""
        guild_id = guild_id_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.management.remove_tier(guild_id, interaction.user.id, name)
        await interaction.followup.send(f"🗑️ Removed the tier **{discord.utils.escape_markdown(name)}**.",
                                        ephemeral=True)

    @tier.command(name="list")
    async def tier_list(self, interaction: discord.Interaction) -> None:
        """Show the tiers and the points each needs."""
        state = await self.bot.recorder.guild(guild_id_of(interaction))
        lines = [f"{t.badge} **{t.name}** · {t.points:,} pts" + (f" · <@&{t.role_id}>" if t.role_id else "")
                 for t in state.tiers]
        await interaction.response.send_message(
            embed=discord.Embed(title="Tiers", description=clip("\n".join(lines), 4096),
                                colour=discord.Colour.blurple()),
            ephemeral=True,
        )


async def setup(bot: AchievementsBot) -> None:
    await bot.add_cog(ManageCommands(bot))
