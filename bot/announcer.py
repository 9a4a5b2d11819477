"""Posts the announcements outbox to Discord: after commit, with retries, digests and reward roles."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import discord

from bot.ownership import Ownership
from bot.render import DigestLine, digest_embed, mention, tier_embed, unlock_embed
from bot.storage.outbox import OutboxItem

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.storage import Storage

log = logging.getLogger(__name__)

# Retries back off from 2 s to an hour: about 70 minutes of Discord errors or missing permissions pass
# before an announcement is given up.
MAX_ATTEMPTS = 12
MAX_BACKOFF = 3600.0
DIGEST_THRESHOLD = 5  # more items than this for one guild in one pass are posted as one digest
DUE_PAGE = 200


def humans_in(guild: discord.Guild) -> int:
    """Members who can earn achievements: the cached humans when the member list is known."""
    if guild.chunked:
        return sum(1 for m in guild.members if not m.bot)
    return guild.member_count or 0


def backoff(attempts: int, base: float) -> timedelta:
    return timedelta(seconds=min(MAX_BACKOFF, base * 2 ** (attempts - 1)))


class Announcer:
    """Uses of the Discord client only its guild cache, its user and readiness; the announce channel comes
    from storage. It depends on neither the bot class nor the recorder.

    It posts only the announcements of guilds `ownership` gives this process. Another process's are left
    alone: neither claimed nor tried, so a process that does not see a guild never spends its retries."""

    def __init__(
        self, client: discord.Client, storage: Storage, clock: Clock, *, base_delay: float = 2.0,
        poll_interval: float = 5.0, ownership: Ownership | None = None,
    ) -> None:
        self.client = client
        self.storage = storage
        self.clock = clock
        self.ownership = ownership or Ownership.everything()
        self.base_delay = base_delay
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._lock = asyncio.Lock()
        self._passes = 0  # delivery passes running or waiting for the lock

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="announcer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        await self.client.wait_until_ready()
        while True:
            # A first pass as soon as the bot is ready: announcements left pending by the last run go out now.
            self._wake.clear()
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("announcement delivery failed; will retry")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
            except TimeoutError:
                pass

    async def deliver_due(self) -> int:
        """Post every announcement that is due; returns how many were posted."""
        self._passes += 1
        self._idle.clear()
        try:
            # One pass at a time: two passes reading the same due rows would post them twice.
            async with self._lock:
                return await self._deliver_due()
        finally:
            self._passes -= 1
            if not self._passes:
                self._idle.set()

    async def _deliver_due(self) -> int:
        posted = 0
        # The query keeps to this process's shards: other processes' announcements, however many, are never
        # read, so they neither hide ours nor cost a pass anything.
        while not self.ownership.owns_nothing and (
            items := await self.storage.outbox.due(self.clock.now(), DUE_PAGE, shards=self.ownership.shards)
        ):
            by_guild: dict[int, list[OutboxItem]] = defaultdict(list)
            for item in items:
                if self.ownership.owns(item.guild_id):  # the shards may be given up during the pass
                    by_guild[item.guild_id].append(item)
            for guild_id, guild_items in by_guild.items():
                posted += await self._deliver_guild(guild_id, guild_items)
            if len(items) < DUE_PAGE or not by_guild:
                break
        return posted

    async def _deliver_guild(self, guild_id: int, items: Sequence[OutboxItem]) -> int:
        guild = self.client.get_guild(guild_id)
        if guild is None:
            # Not in the cache: the bot left, or the guild is not loaded yet after a reconnect.
            for item in items:
                await self._retry([item], "the guild is not available")
            return 0
        posted = 0
        for post_key in await self._posts(items):
            posted += await self._deliver_post(guild, post_key, await self.storage.outbox.post(post_key))
        return posted

    async def _posts(self, items: Sequence[OutboxItem]) -> list[str]:
        """The posts carrying `items`: those claimed by an earlier attempt, then new ones for the rest
        (one digest when there are many, else one post each)."""
        keys = list(dict.fromkeys(item.post_key for item in items if item.post_key is not None))
        fresh = [item.id for item in items if item.post_key is None]
        if fresh:
            groups = [fresh] if len(fresh) > DIGEST_THRESHOLD else [[item_id] for item_id in fresh]
            keys += await self.storage.outbox.claim(groups)
        return keys

    async def _deliver_post(self, guild: discord.Guild, post_key: str, items: Sequence[OutboxItem]) -> int:
        """Send one post; the same post (same items, same nonce) however often it is retried."""
        gone = await self.storage.outbox.orphaned([item.id for item in items])
        if gone:
            log.info("guild %s: dropping %d announcements of achievements removed or taken back",
                     guild.id, len(gone))
            await self.storage.outbox.drop(gone, "the achievement was removed or taken back before it was posted")
            items = [item for item in items if item.id not in gone]
        if not items:
            return 0
        for item in items:
            await self._grant_role(guild, item)
        if len(items) == 1:
            sent = await self._post_one(guild, post_key, items[0])
        else:
            sent = await self._post_digest(guild, post_key, items)
        if not sent:
            return 0
        await self.storage.outbox.mark_sent([item.id for item in items])
        return len(items)

    async def _channels(self, guild: discord.Guild, item: OutboxItem) -> list[discord.abc.Messageable]:
        """Where to post, in order: the announce channel, the activity's channel, the system channel."""
        settings = await self.storage.guilds.get(guild.id)
        ids = [
            settings.announce_channel_id if settings else None,
            item.channel_id,
            guild.system_channel.id if guild.system_channel else None,
        ]
        found: list[discord.abc.Messageable] = []
        for channel_id in ids:
            if channel_id is None:
                continue
            channel = guild.get_channel_or_thread(channel_id)
            if isinstance(channel, discord.TextChannel | discord.Thread | discord.VoiceChannel) and (
                channel not in found
            ):
                found.append(channel)
        return found

    async def _send(self, guild: discord.Guild, post_key: str, items: Sequence[OutboxItem], **kwargs: object) -> bool:
        """Post in the first channel that takes it. The post's key is the nonce, with enforce_nonce (which
        discord.py 2.5+ sends with every nonce): if an earlier attempt was created but its answer was lost
        (a 5xx, a timeout, a crash before marking it sent), Discord returns that message instead of
        creating a second one. Discord keeps nonces for a few minutes; retries start 2 s apart."""
        errors: list[str] = []
        channels = await self._channels(guild, items[0])
        for channel in channels:
            try:
                await channel.send(nonce=post_key, **kwargs)  # type: ignore[call-overload]
                return True
            except (discord.Forbidden, discord.NotFound) as exc:
                errors.append(f"#{getattr(channel, 'name', channel)}: {exc.text or exc}")
            except discord.HTTPException as exc:  # 429 after discord.py's own retries, 5xx
                errors.append(f"#{getattr(channel, 'name', channel)}: HTTP {exc.status}")
                break  # Discord is struggling: try again later rather than spreading to other channels
        await self._retry(items, "; ".join(errors) or "no channel to post in")
        return False

    async def _post_one(self, guild: discord.Guild, post_key: str, item: OutboxItem) -> bool:
        if item.kind == "unlock":
            holders = await self.storage.members.holders(guild.id, str(item.payload["achievement_id"]))
            members = max(await self.storage.members.count(guild.id), humans_in(guild), holders, 1)
            embed = unlock_embed(item.payload, holders, members)
        else:
            embed = tier_embed(item.payload)
        return await self._send(
            guild, post_key, [item], content=mention(item.member_id), embed=embed,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, replied_user=False,
                                                     users=[discord.Object(item.member_id)]),
        )

    async def _post_digest(self, guild: discord.Guild, post_key: str, items: Sequence[OutboxItem]) -> bool:
        lines = []
        for item in items:
            if item.kind == "unlock":
                name = discord.utils.escape_markdown(str(item.payload["name"]))
                text = f"unlocked **{name}** (+{item.payload['points']})"
            else:
                tier = item.payload["new_tier"]
                text = f"reached {tier['badge']} **{discord.utils.escape_markdown(str(tier['name']))}**"
            lines.append(DigestLine(item.member_id, text))
        members = list(dict.fromkeys(i.member_id for i in items))[:100]
        return await self._send(
            guild, post_key, items, embed=digest_embed(lines, len(items)),
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, replied_user=False,
                                                     users=[discord.Object(m) for m in members]),
        )

    async def _retry(self, items: Sequence[OutboxItem], error: str) -> None:
        """The items of one post are retried, and given up, together."""
        attempts = max(item.attempts for item in items) + 1
        ids = [item.id for item in items]
        guild_id = items[0].guild_id
        if attempts >= MAX_ATTEMPTS:
            log.warning("guild %s: giving up announcements %s after %d attempts: %s", guild_id, ids, attempts, error)
            await self.storage.outbox.give_up(ids, attempts, error)
        else:
            log.info("guild %s: announcements %s not posted (%s); retrying", guild_id, ids, error)
            next_at = self.clock.now() + backoff(attempts, self.base_delay)
            await self.storage.outbox.retry_later(ids, attempts, next_at, error)

    async def _grant_role(self, guild: discord.Guild, item: OutboxItem) -> None:
        """Reward roles: only on the first attempt, so a retried post does not retry a refused role."""
        role_id = item.payload.get("role_id") if item.kind == "unlock" else item.payload["new_tier"].get("role_id")
        if not role_id or item.attempts:
            return
        role = guild.get_role(int(role_id))
        reason = f"reward for {item.payload.get('name') or item.payload['new_tier']['name']}"
        problem: str | None = None
        if role is None:
            problem = f"reward role {role_id} no longer exists"
        else:
            try:
                member = guild.get_member(item.member_id) or await guild.fetch_member(item.member_id)
                await member.add_roles(role, reason=reason)
                return
            except discord.NotFound:
                problem = f"member {item.member_id} left before getting @{role.name}"
            except discord.Forbidden:
                problem = (f"cannot give @{role.name}: the bot needs Manage Roles and a role above @{role.name}")
            except discord.HTTPException as exc:
                problem = f"giving @{role.name} failed: HTTP {exc.status}"
        log.warning("guild %s: %s", guild.id, problem)
        async with self.storage.db.transaction() as conn:
            await self.storage.audit.add(conn, guild.id, self.client.user.id if self.client.user else 0,
                                         "reward-role-failed", problem, self.clock.now())

    async def wait_idle(self) -> None:
        await self._idle.wait()
