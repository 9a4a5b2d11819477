"""Listeners that turn Discord events into activities: messages, reactions, presence, joins and leaves."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.engine.stats import Activity, ActivityKind

if TYPE_CHECKING:
    from bot.app import AchievementsBot

log = logging.getLogger(__name__)

# Message types a member writes; joins, pins, boosts and other system messages do not count.
COUNTED_MESSAGE_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})
# Counted reactions remembered so that their removal can be taken back (bounded: oldest forgotten first).
MAX_REMEMBERED_REACTIONS = 100_000


class ActivityListener(commands.Cog):
    """Records activity only in guilds this process owns (bot.ownership): Discord routes a guild's events to
    one shard, but a misconfigured second process must still not count them a second time."""

    def __init__(self, bot: AchievementsBot) -> None:
        self.bot = bot
        self.recorder = bot.recorder
        self.ownership = bot.ownership
        # (message, reactor, emoji) -> the author credited with it, if any.
        self._counted: OrderedDict[tuple[int, int, str], int | None] = OrderedDict()

    async def _ensure_guild(self, guild: discord.Guild) -> None:
        if not self.ownership.owns(guild.id):
            return
        state = await self.recorder.guild(guild.id)
        self.bot.scheduler.schedule_guild(guild.id, state.settings.timezone)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        for guild in self.bot.guilds:
            await self._ensure_guild(guild)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self._ensure_guild(guild)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if (
            message.guild is None
            or not self.ownership.owns(message.guild.id)
            or message.author.bot
            or message.webhook_id is not None
            or message.type not in COUNTED_MESSAGE_TYPES
        ):
            return
        self.recorder.submit(
            Activity(message.guild.id, message.author.id, ActivityKind.MESSAGE, self.bot.clock.now(),
                     channel_id=message.channel.id),
            content=message.content,
        )

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if (
            payload.guild_id is None
            or not self.ownership.owns(payload.guild_id)
            or payload.user_id == payload.message_author_id
        ):
            return
        guild = self.bot.get_guild(payload.guild_id)
        reactor = payload.member or (guild.get_member(payload.user_id) if guild else None)
        if (reactor is not None and reactor.bot) or self._is_me(payload.user_id):
            return
        author_id = payload.message_author_id
        author = guild.get_member(author_id) if guild and author_id is not None else None
        if author_id is not None and ((author is not None and author.bot) or self._is_me(author_id)):
            author_id = None
        self._remember(payload, author_id)
        await self._reaction(payload.guild_id, payload, author_id, +1)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        # Discord does not say whose message it was on removal: only a reaction that was counted is taken
        # back (not a self-reaction, a bot's, or one from before a restart), so no removal can farm or
        # wrongly lower a count. The counts go back down; unlocks already earned stay.
        key = (payload.message_id, payload.user_id, str(payload.emoji))
        if payload.guild_id is None or not self.ownership.owns(payload.guild_id) or key not in self._counted:
            return
        author_id = self._counted.pop(key)
        await self._reaction(payload.guild_id, payload, author_id, -1)

    def _is_me(self, user_id: int) -> bool:
        return self.bot.user is not None and user_id == self.bot.user.id

    def _remember(self, payload: discord.RawReactionActionEvent, author_id: int | None) -> None:
        self._counted[(payload.message_id, payload.user_id, str(payload.emoji))] = author_id
        while len(self._counted) > MAX_REMEMBERED_REACTIONS:
            self._counted.popitem(last=False)

    async def _reaction(
        self, guild_id: int, payload: discord.RawReactionActionEvent, author_id: int | None, amount: int
    ) -> None:
        now = self.bot.clock.now()
        self.recorder.submit(Activity(
            guild_id, payload.user_id, ActivityKind.REACTION_GIVEN, now, amount=amount,
            channel_id=payload.channel_id, counts_as_active=amount > 0,
        ))
        if author_id is None:
            return  # a bot's message, or Discord did not say whose message it was (very old events)
        self.recorder.submit(Activity(
            guild_id, author_id, ActivityKind.REACTION_RECEIVED, now, amount=amount,
            channel_id=payload.channel_id, counts_as_active=False,
        ))

    @commands.Cog.listener()
    async def on_presence_update(self, before: discord.Member, after: discord.Member) -> None:
        came_online = before.status is discord.Status.offline and after.status is not discord.Status.offline
        if after.bot or not came_online or not self.ownership.owns(after.guild.id):
            return
        self.recorder.submit(
            Activity(after.guild.id, after.id, ActivityKind.PRESENCE, self.bot.clock.now())
        )

    @commands.Cog.listener()
    async def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        # Write the member's pending changes first: a first activity still waiting or in the batch would
        # otherwise create their row afterwards, as present.
        if not self.ownership.owns(payload.guild_id):
            return
        await self.recorder.drained()
        await self.recorder.flush()
        await self.bot.storage.members.set_in_guild(payload.guild_id, payload.user.id, False)

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        if not self.ownership.owns(member.guild.id):
            return
        await self.bot.storage.members.set_in_guild(member.guild.id, member.id, True)


async def setup(bot: AchievementsBot) -> None:
    await bot.add_cog(ActivityListener(bot))
