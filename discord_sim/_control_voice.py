"""The voice side of the control API: voice and stage channels, the AFK channel, members joining and leaving voice."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import Any

from ._gateway import GUILDS, Gateway
from ._state import (
    VOICE_CHANNEL_TYPES,
    Overwrite,
    SimChannel,
    SimGuild,
    SimVoiceState,
    channel_permissions,
    permission_value,
)
from ._world import World

log = logging.getLogger(__name__)

CONNECT = permission_value("connect")
MOVE_MEMBERS = permission_value("move_members")


class VoiceControl:
    """Mixed into DiscordSimulator: voice channels and the members in them, as the Discord client changes them."""

    world: World
    gateway: Gateway

    def _add_channel(self, guild: SimGuild, name: str, kind: int, **fields: Any) -> SimChannel:
        raise NotImplementedError  # provided by DiscordSimulator

    def _channel_event(self, event: str, channel: SimChannel) -> None:
        raise NotImplementedError  # provided by DiscordSimulator

    # -- channels ----------------------------------------------------------------------------------
    def create_voice_channel(
        self, guild_id: int, name: str, overwrites: Iterable[Overwrite] = (), *, parent_id: int | None = None,
        user_limit: int = 0, bitrate: int = 64000,
    ) -> SimChannel:
        """A voice channel (type 2); ``user_limit`` 0 means no limit, as in Discord."""
        channel = self._add_channel(self.world.guilds[guild_id], name, 2, parent_id=parent_id,
                                    overwrites=list(overwrites), user_limit=user_limit, bitrate=bitrate)
        self._channel_event("CHANNEL_CREATE", channel)
        return channel

    def create_stage_channel(
        self, guild_id: int, name: str, overwrites: Iterable[Overwrite] = (), *, parent_id: int | None = None,
    ) -> SimChannel:
        """A stage channel (type 13): members join it as the audience (``suppress``: true)."""
        channel = self._add_channel(self.world.guilds[guild_id], name, 13, parent_id=parent_id,
                                    overwrites=list(overwrites))
        self._channel_event("CHANNEL_CREATE", channel)
        return channel

    def set_afk_channel(self, guild_id: int, channel_id: int | None, *, timeout: int = 300) -> None:
        """Set the guild's AFK channel and timeout (seconds), as a moderator does in server settings: GUILD_UPDATE."""
        guild = self.world.guilds[guild_id]
        if channel_id is not None and self._voice_channel(guild, channel_id).type != 2:
            raise ValueError("the AFK channel must be a voice channel")
        if timeout not in (60, 300, 900, 1800, 3600):
            raise ValueError("Discord offers AFK timeouts of 60, 300, 900, 1800 or 3600 seconds")
        guild.afk_channel_id = channel_id
        guild.afk_timeout = timeout
        self.gateway.dispatch("GUILD_UPDATE", guild.base_payload(), GUILDS)

    # -- members in voice --------------------------------------------------------------------------
    async def join_voice(
        self, guild_id: int, channel_id: int, user_id: int, *, self_mute: bool = False, self_deaf: bool = False,
        self_video: bool = False, self_stream: bool = False,
    ) -> None:
        """A member joins a voice or stage channel, or moves to it from the one they are in: VOICE_STATE_UPDATE.

        As the Discord client allows it: the member needs Connect there, and room under the channel's user
        limit (unless they have Move Members). Deafening oneself also mutes, as the client does."""
        guild = self.world.guilds[guild_id]
        channel = self._voice_channel(guild, channel_id)
        if user_id not in guild.members:
            raise ValueError(f"user {user_id} is not a member of guild {guild_id}")
        perms = channel_permissions(guild, channel, user_id)
        if not perms & CONNECT:
            raise PermissionError(f"user {user_id} may not connect to {channel.name}")
        inside = [u for u, s in guild.voice_states.items() if s.channel_id == channel_id and u != user_id]
        if channel.user_limit and len(inside) >= channel.user_limit and not perms & MOVE_MEMBERS:
            raise PermissionError(f"{channel.name} is full ({channel.user_limit} members)")
        state = guild.voice_states.get(user_id)
        if state is None:
            state = SimVoiceState(user_id, channel_id, secrets.token_hex(16))
            guild.voice_states[user_id] = state
        state.channel_id = channel_id
        state.self_mute = self_mute or self_deaf
        state.self_deaf = self_deaf
        state.self_video = self_video
        state.self_stream = self_stream
        state.suppress = channel.type == 13  # a stage's audience cannot speak until invited
        self.world.dispatch_voice_state(guild, user_id)

    async def move_voice(self, guild_id: int, user_id: int, channel_id: int) -> None:
        """A moderator (or Discord's AFK timer) moves a member who is in voice to another channel."""
        guild = self.world.guilds[guild_id]
        channel = self._voice_channel(guild, channel_id)
        state = self._state(guild, user_id)
        state.channel_id = channel.id
        state.suppress = channel.type == 13
        self.world.dispatch_voice_state(guild, user_id)

    async def leave_voice(self, guild_id: int, user_id: int) -> None:
        """A member disconnects from voice: VOICE_STATE_UPDATE with ``channel_id`` null."""
        guild = self.world.guilds[guild_id]
        self._state(guild, user_id)
        self.world.dispatch_voice_state(guild, user_id, left=True)
        del guild.voice_states[user_id]

    async def set_voice_state(
        self, guild_id: int, user_id: int, *, self_mute: bool | None = None, self_deaf: bool | None = None,
        self_video: bool | None = None, self_stream: bool | None = None, mute: bool | None = None,
        deaf: bool | None = None, suppress: bool | None = None,
    ) -> None:
        """Change a connected member's voice state; ``mute``/``deaf`` are the server's (a moderator's), which
        also stick to the member (``member.mute``/``deaf``) after they leave. None leaves a field as it is."""
        guild = self.world.guilds[guild_id]
        state = self._state(guild, user_id)
        member = guild.members[user_id]
        if self_deaf is not None:
            state.self_deaf = self_deaf
            if self_deaf and self_mute is None:
                self_mute = True
        for name, value in (("self_mute", self_mute), ("self_video", self_video), ("self_stream", self_stream),
                            ("suppress", suppress)):
            if value is not None:
                setattr(state, name, value)
        if mute is not None:
            member.mute = mute
        if deaf is not None:
            member.deaf = deaf
        self.world.dispatch_voice_state(guild, user_id)

    def voice_channel_of(self, guild_id: int, user_id: int) -> int | None:
        """The voice channel a member is connected to, or None."""
        state = self.world.guilds[guild_id].voice_states.get(user_id)
        return state.channel_id if state is not None else None

    def _voice_channel(self, guild: SimGuild, channel_id: int) -> SimChannel:
        channel = guild.channels.get(channel_id)
        if channel is None or channel.type not in VOICE_CHANNEL_TYPES:
            raise ValueError(f"channel {channel_id} is not a voice or stage channel of guild {guild.id}")
        return channel

    @staticmethod
    def _state(guild: SimGuild, user_id: int) -> SimVoiceState:
        state = guild.voice_states.get(user_id)
        if state is None:
            raise ValueError(f"user {user_id} is not connected to voice in guild {guild.id}")
        return state
