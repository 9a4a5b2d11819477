"""The simulated Discord world: users, guilds, roles, channels, members, messages, and permission maths."""

from __future__ import annotations

import hashlib
import itertools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import discord

log = logging.getLogger(__name__)

DISCORD_EPOCH_MS = 1420070400000
ALL_PERMISSIONS = discord.Permissions.all().value
ADMINISTRATOR = discord.Permissions(administrator=True).value
VIEW_CHANNEL = discord.Permissions(view_channel=True).value
SEND_MESSAGES = discord.Permissions(send_messages=True).value

# What Discord gives @everyone in a new server (close to the real default set).
DEFAULT_EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    create_instant_invite=True,
    change_nickname=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    create_private_threads=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_external_emojis=True,
    use_external_stickers=True,
    mention_everyone=True,
    read_message_history=True,
    use_application_commands=True,
    connect=True,
    speak=True,
    stream=True,
    use_voice_activation=True,
).value

# What a typical invite link grants the achievements bot (its managed role).
DEFAULT_BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    read_message_history=True,
    manage_roles=True,
    use_external_emojis=True,
).value


def permission_value(name: str) -> int:
    """The bit of a permission named like discord.py names it (``send_messages``)."""
    if name not in discord.Permissions.VALID_FLAGS:
        raise ValueError(f"unknown permission {name!r}")
    return discord.Permissions(**{name: True}).value


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SnowflakeFactory:
    """Unique snowflakes whose timestamp is the simulator's clock, as discord.py derives created_at from ids."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._counter = itertools.count(1)

    def __call__(self) -> int:
        ms = int(self._clock.now().timestamp() * 1000) - DISCORD_EPOCH_MS
        # The low 22 bits (worker, process, increment) carry a counter, so ids stay unique even when
        # a test clock stands still or moves back.
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)

    def at(self, when: datetime) -> int:
        """A unique snowflake dated ``when`` (seeded history: discord.py reads created_at from the id)."""
        ms = int(when.timestamp() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)


@dataclass
class SimUser:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None
    avatar: str | None = None
    locale: str = "en-US"  # the language the user's Discord client is set to (interactions carry it)

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": self.avatar,
            "avatar_decoration_data": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "primary_guild": None,
        }


@dataclass
class SimRole:
    id: int
    guild_id: int
    name: str
    permissions: int = 0
    position: int = 0
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    managed: bool = False
    bot_id: int | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": self.hoist,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": self.mentionable,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data

    @property
    def sort_key(self) -> tuple[int, int]:
        # Discord breaks position ties by id: the older role ranks higher.
        return (self.position, -self.id)


@dataclass
class Overwrite:
    id: int
    type: int  # 0 role, 1 member
    allow: int = 0
    deny: int = 0

    def payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "type": self.type, "allow": str(self.allow), "deny": str(self.deny)}


@dataclass
class SimChannel:
    id: int
    name: str
    type: int = 0
    guild_id: int | None = None
    position: int = 0
    topic: str | None = None
    parent_id: int | None = None
    overwrites: list[Overwrite] = field(default_factory=list)
    recipient_id: int | None = None
    last_message_id: int | None = None
    bitrate: int = 64000
    user_limit: int = 0
    # Threads (types 11 public, 12 private): who started it, and whether and when it was archived.
    owner_id: int | None = None
    archived: bool = False
    archive_timestamp: str | None = None
    created_at: str | None = None
    message_count: int = 0

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    def payload(self, users: dict[int, SimUser] | None = None) -> dict[str, Any]:
        if self.type == 1:
            recipients = []
            if users is not None and self.recipient_id in users:
                recipients = [users[self.recipient_id].payload()]
            return {
                "id": str(self.id),
                "type": 1,
                "last_message_id": _opt_str(self.last_message_id),
                "recipients": recipients,
                "flags": 0,
            }
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": _opt_str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [o.payload() for o in self.overwrites],
            "parent_id": _opt_str(self.parent_id),
            "topic": self.topic,
            "nsfw": False,
            "last_message_id": _opt_str(self.last_message_id),
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if self.is_thread:
            del data["permission_overwrites"], data["position"], data["topic"]
            data |= {
                "owner_id": _opt_str(self.owner_id),
                "message_count": self.message_count,
                "total_message_sent": self.message_count,
                "member_count": 1,
                "applied_tags": [],
                "thread_metadata": {
                    "archived": self.archived,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": self.archive_timestamp or self.created_at,
                    "locked": False,
                    "create_timestamp": self.created_at,
                } | ({"invitable": True} if self.type == 12 else {}),
            }
        if self.type in VOICE_CHANNEL_TYPES:
            # Voice and stage channels: no topic of their own, an audio bitrate, a member limit (0: none).
            data |= {"bitrate": self.bitrate, "user_limit": self.user_limit, "rtc_region": None,
                     "video_quality_mode": 1}
        return data


VOICE_CHANNEL_TYPES = (2, 13)  # GUILD_VOICE, GUILD_STAGE_VOICE
THREAD_TYPES = (10, 11, 12)  # announcement, public and private threads


@dataclass
class SimVoiceState:
    """A member's voice connection; ``mute``/``deaf`` are the server's, the ``self_*`` the member's own."""

    user_id: int
    channel_id: int
    session_id: str
    self_mute: bool = False
    self_deaf: bool = False
    self_video: bool = False
    self_stream: bool = False
    suppress: bool = False

    def payload(self, member: SimMember, guild_id: int | None, member_payload: dict[str, Any] | None,
                *, channel_id: int | None = -1) -> dict[str, Any]:
        data: dict[str, Any] = {
            "channel_id": _opt_str(self.channel_id if channel_id == -1 else channel_id),
            "user_id": str(self.user_id),
            "session_id": self.session_id,
            "deaf": member.deaf,
            "mute": member.mute,
            "self_deaf": self.self_deaf,
            "self_mute": self.self_mute,
            "self_stream": self.self_stream,
            "self_video": self.self_video,
            "suppress": self.suppress,
            "request_to_speak_timestamp": None,
        }
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        if member_payload is not None:
            data["member"] = member_payload
        return data


SCHEDULED, ACTIVE, COMPLETED, CANCELED = 1, 2, 3, 4


@dataclass
class SimScheduledEvent:
    """A guild scheduled event; ``entity_type`` 1 stage, 2 voice (``channel_id``), 3 external (``location``)."""

    id: int
    guild_id: int
    name: str
    creator_id: int
    start: datetime
    entity_type: int
    end: datetime | None = None
    channel_id: int | None = None
    location: str | None = None
    description: str | None = None
    status: int = SCHEDULED
    subscribers: list[int] = field(default_factory=list)

    def payload(self, creator: SimUser | None, *, with_user_count: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "guild_id": str(self.guild_id),
            "channel_id": _opt_str(self.channel_id),
            "creator_id": str(self.creator_id),
            "name": self.name,
            "description": self.description,
            "scheduled_start_time": iso(self.start),
            "scheduled_end_time": iso(self.end) if self.end is not None else None,
            "privacy_level": 2,
            "status": self.status,
            "entity_type": self.entity_type,
            "entity_id": None,
            "entity_metadata": {"location": self.location} if self.entity_type == 3 else None,
            "image": None,
            "recurrence_rule": None,
            "guild_scheduled_event_exceptions": [],  # never recurring: no exceptions
        }
        if creator is not None:
            data["creator"] = creator.payload()
        if with_user_count:
            data["user_count"] = len(self.subscribers)
        return data


@dataclass
class SimMember:
    user_id: int
    guild_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_now)
    flags: int = 0
    pending: bool = False
    mute: bool = False  # server mute and deafen, set by a moderator; they outlast a voice connection
    deaf: bool = False

    def payload(self, user: SimUser | None = None, permissions: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in self.roles],
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": self.deaf,
            "mute": self.mute,
            "flags": self.flags,
            "pending": self.pending,
            "communication_disabled_until": None,
        }
        if user is not None:
            data["user"] = user.payload()
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass
class SimGuild:
    id: int
    name: str
    owner_id: int
    system_channel_id: int | None = None
    bot_role_id: int | None = None
    roles: dict[int, SimRole] = field(default_factory=dict)
    channels: dict[int, SimChannel] = field(default_factory=dict)
    members: dict[int, SimMember] = field(default_factory=dict)
    presences: dict[int, dict[str, Any]] = field(default_factory=dict)
    joined_at: str = field(default_factory=iso_now)
    afk_channel_id: int | None = None
    afk_timeout: int = 300
    preferred_locale: str = "en-US"
    voice_states: dict[int, SimVoiceState] = field(default_factory=dict)
    scheduled_events: dict[int, SimScheduledEvent] = field(default_factory=dict)

    @property
    def everyone_role(self) -> SimRole:
        return self.roles[self.id]

    def base_payload(self) -> dict[str, Any]:
        """The guild object as GET /guilds/{id} returns it (no members, channels or presences)."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "icon_hash": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "region": "deprecated",  # the spec says a string; the docs: deprecated, nullable
            "afk_channel_id": _opt_str(self.afk_channel_id),
            "afk_timeout": self.afk_timeout,
            "widget_enabled": False,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in sorted(self.roles.values(), key=lambda r: r.sort_key)],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": _opt_str(self.system_channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500000,
            "max_presences": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.preferred_locale,
            "nsfw_level": 0,
            "nsfw": False,
            "premium_progress_bar_enabled": False,
            "widget_channel_id": None,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "home_header": None,
            "incidents_data": None,
        }

    def top_role(self, member: SimMember) -> SimRole:
        roles = [self.roles[r] for r in member.roles if r in self.roles]
        return max(roles, key=lambda r: r.sort_key, default=self.everyone_role)


def base_permissions(guild: SimGuild, user_id: int) -> int:
    """Guild-level permissions of a member: Discord's algorithm (owner, @everyone, roles, ADMINISTRATOR)."""
    if user_id == guild.owner_id:
        return ALL_PERMISSIONS
    member = guild.members.get(user_id)
    if member is None:
        return 0
    perms = guild.everyone_role.permissions
    for role_id in member.roles:
        role = guild.roles.get(role_id)
        if role is not None:
            perms |= role.permissions
    if perms & ADMINISTRATOR:
        return ALL_PERMISSIONS
    return perms


def channel_permissions(guild: SimGuild, channel: SimChannel, user_id: int) -> int:
    """Permissions of a member in a channel: base, then overwrites for @everyone, the roles, the member."""
    base = base_permissions(guild, user_id)
    if base & ADMINISTRATOR:
        return ALL_PERMISSIONS
    member = guild.members.get(user_id)
    if member is None:
        return 0
    overwrites = list(channel.overwrites)
    if channel.parent_id is not None and not overwrites and channel.parent_id in guild.channels:
        overwrites = list(guild.channels[channel.parent_id].overwrites)
    perms = base
    for ow in overwrites:
        if ow.type == 0 and ow.id == guild.id:
            perms = (perms & ~ow.deny) | ow.allow
    allow = deny = 0
    for ow in overwrites:
        if ow.type == 0 and ow.id in member.roles:
            allow |= ow.allow
            deny |= ow.deny
    perms = (perms & ~deny) | allow
    for ow in overwrites:
        if ow.type == 1 and ow.id == user_id:
            perms = (perms & ~ow.deny) | ow.allow
    if not perms & VIEW_CHANNEL:
        return 0
    if not perms & SEND_MESSAGES:
        # Like Discord: without Send Messages the message-related permissions are void.
        perms &= ~discord.Permissions(
            send_tts_messages=True, mention_everyone=True, embed_links=True, attach_files=True
        ).value
    return perms


def avatar_hash(user_id: int) -> str:
    return hashlib.md5(str(user_id).encode(), usedforsecurity=False).hexdigest()


def _opt_str(value: int | None) -> str | None:
    return None if value is None else str(value)
