"""Message history and threads in the control API: seeding a channel's past, opening and archiving threads."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from ._gateway import GUILDS, Gateway
from ._state import SimChannel, SimGuild, channel_permissions, iso, permission_value
from ._world import World

log = logging.getLogger(__name__)

SEND_MESSAGES = permission_value("send_messages")


class HistoryControl:
    """Mixed into DiscordSimulator: what a channel held before the bot looked, and its threads."""

    world: World
    gateway: Gateway

    def _add_channel(self, guild: SimGuild, name: str, kind: int, **fields: object) -> SimChannel:
        raise NotImplementedError  # provided by DiscordSimulator

    def seed_history(
        self, channel_id: int, author_ids: Sequence[int], count: int, *, start: datetime,
        interval: timedelta = timedelta(minutes=1), content: str = "message {i}",
    ) -> list[int]:
        """Store ``count`` past messages (authors in turn), the i-th dated ``start + i * interval`` with a
        snowflake derived from that date, as if they had been posted then; ``content`` is formatted with
        ``i``. No gateway events (they are history). Returns their ids, oldest first. Fast: one template
        per author, so tests can seed thousands."""
        world = self.world
        channel = world.channels[channel_id]
        guild = world.guild_of(channel)
        if not author_ids:
            raise ValueError("seed_history needs at least one author")
        templates = []
        for author_id in author_ids:
            if guild is not None:
                if author_id not in guild.members:
                    raise ValueError(f"user {author_id} is not a member of guild {guild.id}")
                if not channel_permissions(guild, channel, author_id) & SEND_MESSAGES:
                    raise PermissionError(f"user {author_id} may not post in #{channel.name}")
            templates.append(world.message_payload(channel, world.users[author_id], {}, "0"))
        ids = []
        for index in range(count):
            when = start + index * interval
            mid = world.snowflake.at(when)
            msg = copy.copy(templates[index % len(templates)])
            msg |= {"id": str(mid), "content": content.format(i=index), "timestamp": iso(when),
                    "attachments": [], "embeds": [], "components": [], "mentions": [], "mention_roles": []}
            world.messages[mid] = msg
            ids.append(mid)
        log_ids = world.channel_log.setdefault(channel.id, [])
        log_ids.extend(ids)
        log_ids.sort()  # the log stays in id (= time) order, which paging relies on
        channel.last_message_id = log_ids[-1] if log_ids else None
        channel.message_count += count
        return ids

    def create_thread(
        self, channel_id: int, name: str, owner_id: int, *, private: bool = False, archived: bool = False,
        archived_at: datetime | None = None,
    ) -> SimChannel:
        """A member starts a public (type 11) or private (12) thread in a text channel: THREAD_CREATE.
        ``archived``/``archived_at`` make it an archived one (no event for those: it is history)."""
        parent = self.world.channels[channel_id]
        if parent.type not in (0, 5):
            raise ValueError("threads live in text or announcement channels")
        guild = self.world.guilds[parent.guild_id or 0]
        kind = 12 if private else (10 if parent.type == 5 else 11)
        now = self.world.now_iso()
        thread = self._add_channel(guild, name, kind, parent_id=parent.id, owner_id=owner_id, created_at=now,
                                   archived=archived or archived_at is not None)
        if thread.archived:
            thread.archive_timestamp = iso(archived_at) if archived_at is not None else now
        else:
            self.gateway.dispatch("THREAD_CREATE", thread.payload() | {"newly_created": True}, GUILDS)
        return thread

    def archive_thread(self, thread_id: int, archived: bool = True) -> None:
        """Archive (or unarchive) a thread: THREAD_UPDATE."""
        thread = self.world.channels[thread_id]
        if not thread.is_thread:
            raise ValueError(f"channel {thread_id} is not a thread")
        thread.archived = archived
        thread.archive_timestamp = self.world.now_iso()
        self.gateway.dispatch("THREAD_UPDATE", thread.payload(), GUILDS)
