"""The guild cache: each guild's settings, rulebook, tiers and revocations, loaded once per guild."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.engine.achievements import Achievement
from bot.engine.conditions import parse_condition
from bot.engine.defaults import DEFAULT_PACK
from bot.engine.evaluator import RuleBook
from bot.recording.state import GuildState, zone
from bot.storage import GuildSettings, Storage

log = logging.getLogger(__name__)

# (member, achievement, revoked?) staged but not committed yet, in the order they happened, for one guild.
PendingRevocations = Callable[[int], Iterable[tuple[int, str, bool]]]


class GuildCache:
    """Concurrent first uses of one guild share one load; a guild seen for the first time is created."""

    def __init__(self, storage: Storage, clock: Clock, pending_revocations: PendingRevocations) -> None:
        self.storage = storage
        self.clock = clock
        self._pending_revocations = pending_revocations
        self._guilds: dict[int, GuildState] = {}
        self._loads: dict[int, asyncio.Future[GuildState]] = {}

    def cached(self, guild_id: int) -> GuildState | None:
        return self._guilds.get(guild_id)

    def known(self) -> list[int]:
        return list(self._guilds)

    def drop(self, guild_id: int) -> None:
        """Forget the guild: the next use reads it again from storage."""
        self._guilds.pop(guild_id, None)

    def closed_day(self, guild_id: int, day: date) -> None:
        state = self._guilds.get(guild_id)
        if state is not None:
            state.settings = replace(state.settings, last_rollover_date=day)

    async def get(self, guild_id: int) -> GuildState:
        state = self._guilds.get(guild_id)
        if state is not None:
            return state
        pending = self._loads.get(guild_id)
        if pending is not None:
            return await asyncio.shield(pending)
        pending = asyncio.get_running_loop().create_future()
        self._loads[guild_id] = pending
        try:
            state = await self._load(guild_id)
        except BaseException as exc:
            pending.set_exception(exc)
            pending.exception()  # mark retrieved; callers re-raise from their own await
            raise
        finally:
            self._loads.pop(guild_id, None)
        self._guilds[guild_id] = state
        pending.set_result(state)
        return state

    async def _load(self, guild_id: int) -> GuildState:
        settings = await self.storage.guilds.get(guild_id)
        if settings is None:
            settings = await self._create(guild_id)
        achievements = await self.storage.achievements.list(guild_id)
        tiers = await self.storage.tiers.list(guild_id)
        revoked = await self.storage.members.revocations(guild_id)
        # Revokes and grants staged but not yet committed are not in storage yet: replay them in order.
        for member_id, achievement_id, is_revoke in self._pending_revocations(guild_id):
            if is_revoke:
                revoked.setdefault(member_id, set()).add(achievement_id)
            else:
                revoked.get(member_id, set()).discard(achievement_id)
        return GuildState(settings, zone(settings.timezone), RuleBook(achievements), tiers, revoked)

    async def _create(self, guild_id: int) -> GuildSettings:
        """A guild seen for the first time gets the default settings, tiers and achievement pack."""
        now = self.clock.now()
        yesterday = now.astimezone(ZoneInfo("UTC")).date() - timedelta(days=1)
        settings = GuildSettings(guild_id=guild_id, last_rollover_date=yesterday)
        async with self.storage.db.transaction() as conn:
            if await self.storage.guilds.insert(conn, settings, now):
                await self.storage.tiers.insert_defaults(conn, guild_id)
                for spec in DEFAULT_PACK:
                    achievement = Achievement(
                        id=spec.id, name=spec.name, description=spec.description, points=spec.points,
                        condition=parse_condition(spec.condition), hidden=spec.hidden,
                    )
                    await self.storage.achievements.save(conn, guild_id, achievement, now)
                log.info("guild %s: created with the default achievement pack", guild_id)
        return await self.storage.guilds.get(guild_id) or settings
