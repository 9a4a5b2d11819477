"""DiscordSimulator: the control API tests and the sandbox use to build a community and act in it."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

from ._control_events import ScheduledEventControl
from ._control_history import HistoryControl
from ._control_interactions import InteractionControl
from ._control_voice import VoiceControl
from ._gateway import (
    DEFAULT_REPLAY_LIMIT,
    DIRECT_MESSAGES,
    GUILD_MEMBERS,
    GUILD_MESSAGES,
    GUILD_PRESENCES,
    GUILDS,
    MESSAGE_CONTENT,
    Gateway,
)
from ._http import FailureRule, HttpFront, RecordedRequest, ResponseViolation, Router, SpecViolation
from ._interactions import InteractionRoutes, resolve_target
from ._rest import RestRoutes
from ._state import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    Clock,
    Overwrite,
    SimChannel,
    SimGuild,
    SimMember,
    SimRole,
    SimUser,
    avatar_hash,
    channel_permissions,
    permission_value,
)
from ._world import World

log = logging.getLogger(__name__)

T = TypeVar("T")
Payload = dict[str, Any]
USE_APPLICATION_COMMANDS = permission_value("use_application_commands")
SEND_MESSAGES = permission_value("send_messages")


class DiscordSimulator(InteractionControl, VoiceControl, ScheduledEventControl, HistoryControl):
    """A local Discord (REST, gateway, CDN) on 127.0.0.1 that the unmodified discord.py client talks to."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, clock: Clock | None = None,
        resume_replay_limit: int = DEFAULT_REPLAY_LIMIT, check_responses: bool = True,
    ) -> None:
        """``clock`` (anything with ``now()`` returning an aware datetime) dates messages and ids.
        ``resume_replay_limit``: the events a session keeps for RESUME; a RESUME that missed more gets
        INVALID_SESSION, as from Discord when its buffer no longer holds them.
        ``check_responses``: validate every JSON response against the spec's response schema for its
        status and record the misfits in ``response_violations`` (benchmarks may switch it off)."""
        self.host = host
        self.port = port
        self.world = World(clock)
        self.gateway = Gateway(self.world, resume_replay_limit)
        self.world.gateway = self.gateway
        router = Router()
        self.rest = RestRoutes(self.world)
        self.rest.register(router)
        self.interaction_routes = InteractionRoutes(self.world)
        self.interaction_routes.register(router)
        self.http = HttpFront(self.world, self.gateway, router)
        self.http.check_responses = check_responses
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        # A test's simulator must stop promptly: open handlers (a client still connected, or reconnecting
        # as the server goes) get two seconds, not aiohttp's default minute.
        self._runner = web.AppRunner(self.http.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.world.gateway_url = f"ws://{self.host}:{self.port}/"
        self.world.cdn_base = f"http://{self.host}:{self.port}"
        log.info("Discord simulator listening on %s", self.api_base)

    async def close(self) -> None:
        await self.gateway.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            try:
                await asyncio.wait_for(runner.cleanup(), 10)
            except TimeoutError:
                log.error("the simulator's server did not stop within 10 s; left behind")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return self.world.gateway_url

    @property
    def cdn_base(self) -> str:
        return self.world.cdn_base

    @property
    def token(self) -> str:
        return self.world.token

    @property
    def bot_user(self) -> Payload:
        return self.world.bot_user.payload()

    @property
    def bot_user_id(self) -> int:
        return self.world.bot_user.id

    @property
    def application_id(self) -> int:
        return self.world.application_id

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.http.requests

    @property
    def unknown_routes(self) -> list[RecordedRequest]:
        return self.http.unknown_routes

    @property
    def spec_violations(self) -> list[SpecViolation]:
        """Request bodies Discord's OpenAPI specification refuses (each was answered 400 50035)."""
        return self.http.spec_violations

    @property
    def response_violations(self) -> list[ResponseViolation]:
        """The simulator's own responses that break the spec's response schema for their status (its bugs)."""
        return self.http.response_violations

    @property
    def recommended_shards(self) -> int:
        """The shard count ``GET /gateway/bot`` recommends (default 1); AutoShardedClient starts that many."""
        return self.world.recommended_shards

    @recommended_shards.setter
    def recommended_shards(self, count: int) -> None:
        if count < 1:
            raise ValueError("Discord recommends at least one shard")
        self.world.recommended_shards = count

    @property
    def connected(self) -> bool:
        return bool(self.gateway.active_sessions)

    # -- building the world ------------------------------------------------------------------------
    def create_user(
        self, name: str, bot: bool = False, *, global_name: str | None = None, avatar: bool = True
    ) -> SimUser:
        uid = self.world.snowflake()
        user = SimUser(uid, name, bot=bot, global_name=global_name, avatar=avatar_hash(uid) if avatar else None)
        self.world.users[uid] = user
        return user

    def create_guild(
        self,
        name: str,
        owner_id: int | None = None,
        *,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        bot_role_position: int = 10,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        general_channel: bool = True,
    ) -> SimGuild:
        """A guild with @everyone, the bot as a member with its managed role, an owner, and #general."""
        world = self.world
        gid = world.snowflake()
        if owner_id is None:
            owner_id = self.create_user(f"{re.sub(r'[^a-z0-9]+', '', name.lower())[:20] or 'guild'}-owner").id
        now = world.now_iso()
        guild = SimGuild(gid, name, owner_id, joined_at=now)
        guild.roles[gid] = SimRole(gid, gid, "@everyone", everyone_permissions, 0)
        bot_role = SimRole(world.snowflake(), gid, world.bot_user.username, bot_permissions, bot_role_position,
                           managed=True, bot_id=world.bot_user.id)
        guild.roles[bot_role.id] = bot_role
        guild.bot_role_id = bot_role.id
        guild.members[owner_id] = SimMember(owner_id, gid, joined_at=now)
        guild.members[world.bot_user.id] = SimMember(world.bot_user.id, gid, roles=[bot_role.id], joined_at=now)
        world.guilds[gid] = guild
        if general_channel:
            guild.system_channel_id = self._add_channel(guild, "general", 0).id
        self.gateway.dispatch(
            "GUILD_CREATE", lambda session: world.guild_create_payload(guild, session, joined=True), GUILDS
        )
        return guild

    def _add_channel(self, guild: SimGuild, name: str, kind: int, **fields: Any) -> SimChannel:
        channel = SimChannel(self.world.snowflake(), name, kind, guild.id, position=len(guild.channels), **fields)
        guild.channels[channel.id] = channel
        self.world.channels[channel.id] = channel
        return channel

    def create_text_channel(
        self,
        guild_id: int,
        name: str,
        overwrites: Iterable[Overwrite] = (),
        *,
        topic: str | None = None,
        parent_id: int | None = None,
    ) -> SimChannel:
        guild = self.world.guilds[guild_id]
        channel = self._add_channel(guild, name, 0, topic=topic, parent_id=parent_id, overwrites=list(overwrites))
        self._channel_event("CHANNEL_CREATE", channel)
        return channel

    def create_category(self, guild_id: int, name: str, overwrites: Iterable[Overwrite] = ()) -> SimChannel:
        channel = self._add_channel(self.world.guilds[guild_id], name, 4, overwrites=list(overwrites))
        self._channel_event("CHANNEL_CREATE", channel)
        return channel

    def set_overwrite(self, channel_id: int, target_id: int, *, allow: int = 0, deny: int = 0) -> None:
        """Set the overwrite for a role or member (its type is inferred) on a channel."""
        channel = self.world.channels[channel_id]
        guild = self.world.guilds[channel.guild_id or 0]
        kind = 0 if target_id in guild.roles else 1
        channel.overwrites = [o for o in channel.overwrites if o.id != target_id]
        channel.overwrites.append(Overwrite(target_id, kind, allow, deny))
        self._channel_event("CHANNEL_UPDATE", channel)

    def deny_bot(self, channel_id: int, *permissions: str) -> None:
        """Deny the bot's member the named permissions (``"send_messages"``) in a channel."""
        deny = 0
        for name in permissions:
            deny |= permission_value(name)
        self.set_overwrite(channel_id, self.world.bot_user.id, deny=deny)

    def _channel_event(self, event: str, channel: SimChannel) -> None:
        self.gateway.dispatch(event, channel.payload(), GUILDS)

    def create_role(
        self, guild_id: int, name: str, permissions: int = 0, position: int = 1, *, color: int = 0,
        mentionable: bool = False, hoist: bool = False,
    ) -> SimRole:
        """A role; like Discord, new roles sit low (position 1) unless placed; the bot's role is at 10."""
        guild = self.world.guilds[guild_id]
        role = SimRole(self.world.snowflake(), guild_id, name, permissions, position, color, hoist, mentionable)
        guild.roles[role.id] = role
        self.gateway.dispatch("GUILD_ROLE_CREATE", {"guild_id": str(guild_id), "role": role.payload()}, GUILDS)
        return role

    def add_member(
        self, guild_id: int, user_id: int, roles: Iterable[int | SimRole] = (), *, nick: str | None = None
    ) -> SimMember:
        guild = self.world.guilds[guild_id]
        roles_ids = [resolve_target(r) for r in roles]
        member = SimMember(user_id, guild_id, roles_ids, nick=nick, joined_at=self.world.now_iso())
        guild.members[user_id] = member
        data = self.world.member_payload(guild, user_id) | {"guild_id": str(guild_id)}
        self.gateway.dispatch("GUILD_MEMBER_ADD", data, GUILD_MEMBERS)
        return member

    async def remove_member(self, guild_id: int, user_id: int) -> None:
        guild = self.world.guilds[guild_id]
        if user_id in guild.voice_states:
            await self.leave_voice(guild_id, user_id)  # as Discord disconnects a member who leaves or is kicked
        guild.members.pop(user_id)
        guild.presences.pop(user_id, None)
        data = {"guild_id": str(guild_id), "user": self.world.users[user_id].payload()}
        self.gateway.dispatch("GUILD_MEMBER_REMOVE", data, GUILD_MEMBERS)

    def add_member_role(self, guild_id: int, user_id: int, role_id: int) -> None:
        """A moderator gives a member a role in the Discord client (dispatches GUILD_MEMBER_UPDATE)."""
        member = self.world.guilds[guild_id].members[user_id]
        if role_id not in member.roles:
            member.roles.append(role_id)
        self.rest.dispatch_member_update(self.world.guilds[guild_id], user_id)

    def dm_channel_id(self, user_id: int) -> int:
        return self.world.dm_channel(user_id).id

    def close_dms(self, user_id: int) -> None:
        """The user no longer accepts DMs from the bot: sending one answers 403 code 50007."""
        self.rest.dm_closed.add(user_id)

    def disallow_intents(self, intents: int) -> None:
        """IDENTIFY with any of these (privileged) intents is closed with 4014, as for an unapproved bot."""
        self.gateway.disallowed_intents = intents
        # The application's flags say which privileged intents it was granted, as in the developer portal.
        for intent, flag in ((GUILD_MEMBERS, 1 << 14), (GUILD_PRESENCES, 1 << 12), (MESSAGE_CONTENT, 1 << 18)):
            if intents & intent:
                self.world.application_flags &= ~flag

    # -- members acting ----------------------------------------------------------------------------
    async def send_message(self, channel_id: int, author_id: int, content: str = "", **extra: Any) -> Payload:
        """A user posts in a channel; ``files=[(filename, bytes)]`` attaches files; the bot gets MESSAGE_CREATE."""
        world = self.world
        channel = world.channels[channel_id]
        guild = world.guild_of(channel)
        if guild is not None:
            if author_id not in guild.members:
                raise ValueError(f"user {author_id} is not a member of guild {guild.id}")
            if not channel_permissions(guild, channel, author_id) & SEND_MESSAGES:
                raise PermissionError(f"user {author_id} may not post in #{channel.name}")
        files = [(f"files[{i}]", name, data) for i, (name, data) in enumerate(extra.pop("files", []))]
        msg = world.create_message(channel, world.users[author_id], {"content": content, **extra}, files)
        world.dispatch_message("MESSAGE_CREATE", msg)
        return world.public(msg)

    async def flood_messages(
        self, channel_id: int, author_ids: Sequence[int], count: int, content: str = "hello"
    ) -> float:
        """Benchmarks: ``count`` MESSAGE_CREATE events, authors taken in turn, as fast as the websocket takes them.

        Real gateway traffic (sequence numbers, zlib-stream, RESUME history) built from one serialised
        template per author; the messages are not stored, so REST cannot fetch them. Returns when all are
        queued: the monotonic time (comparable across processes on Linux) the first one was queued.
        """
        world = self.world
        channel = world.channels[channel_id]
        guild = world.guild_of(channel)
        if not author_ids:
            raise ValueError("flood_messages needs at least one author")
        for author_id in dict.fromkeys(author_ids):
            if guild is not None:
                if author_id not in guild.members:
                    raise ValueError(f"user {author_id} is not a member of guild {guild.id}")
                if not channel_permissions(guild, channel, author_id) & SEND_MESSAGES:
                    raise PermissionError(f"user {author_id} may not post in #{channel.name}")
        frames = world.flood_message_frames(channel, author_ids, count, content)
        intent = GUILD_MESSAGES if guild is not None else DIRECT_MESSAGES
        return await self.gateway.flood("MESSAGE_CREATE", frames, intent, guild.id if guild is not None else None)

    async def add_reaction(self, channel_id: int, message_id: int | str, user_id: int, emoji: str) -> None:
        channel = self.world.channels[channel_id]
        self.world.add_reaction(channel, self.world.message(channel_id, int(message_id)), user_id, emoji)

    async def remove_reaction(self, channel_id: int, message_id: int | str, user_id: int, emoji: str) -> None:
        channel = self.world.channels[channel_id]
        self.world.remove_reaction(channel, self.world.message(channel_id, int(message_id)), user_id, emoji)

    async def set_presence(
        self, guild_id: int, user_id: int, status: str, activities: list[Payload] | None = None
    ) -> None:
        guild = self.world.guilds[guild_id]
        guild.presences[user_id] = {"status": status, "activities": activities or []}
        self.gateway.dispatch("PRESENCE_UPDATE", self.world.presence_payload(guild, user_id), GUILD_PRESENCES)

    # -- what the bot did ------------------------------------------------------------------------------
    def channel_messages(
        self, channel_id: int, *, include_ephemeral: bool = False, only_bot: bool = True
    ) -> list[Payload]:
        """Messages in a channel, oldest first, as they look now; by default the bot's public ones."""
        result = []
        for mid in self.world.channel_log.get(channel_id, []):
            msg = self.world.messages[mid]
            if only_bot and msg["author"]["id"] != str(self.world.bot_user.id):
                continue
            if msg["flags"] & 64 and not include_ephemeral:
                continue
            result.append(self.world.public(msg) | {"allowed_mentions": msg.get("allowed_mentions")})
        return result

    def dm_messages(self, user_id: int) -> list[Payload]:
        cid = self.world.dm_channels.get(user_id)
        return self.channel_messages(cid) if cid is not None else []

    def synced_commands(self, guild_id: int | None = None) -> list[Payload]:
        return list(self.world.commands.get(guild_id, []))

    def fail_next(
        self, method: str, path_regex: str, status: int = 429, retry_after: float = 0.05, times: int = 1,
        *, is_global: bool = False,
    ) -> None:
        """Answer the next ``times`` matching API requests with ``status`` (429 with retry_after, or 5xx)."""
        rule = FailureRule(method.upper(), re.compile(path_regex), status, retry_after, times, is_global)
        self.http.failures.append(rule)

    def set_rate_limit(
        self, method: str, route: str, limit: int, per: float = 1.0, *, bucket: str | None = None
    ) -> None:
        """Limit a route (``"/channels/{channel_id}/messages"``, as Discord's docs write it) to ``limit``
        requests per ``per`` seconds, per major parameter (channel, guild, webhook), as a Discord bucket;
        routes given the same ``bucket`` name share it. Responses carry its ``X-RateLimit-*`` headers; past
        the limit: 429 with ``retry_after``."""
        self.http.limiter.set_route(method, route, limit, per, bucket)

    def set_global_rate_limit(self, limit: int | None = 50, per: float = 1.0) -> None:
        """Discord's global limit (50 requests per second) over every authenticated route; None: off (the
        default). Past it: 429 with ``global: true`` and ``X-RateLimit-Global``. Interaction callbacks and
        their webhooks are exempt, as on Discord."""
        self.http.limiter.set_global(limit, per)

    @property
    def rate_limited(self) -> list[Payload]:
        """The 429 bodies the configured limits answered (with the ``path``), oldest first."""
        return self.http.limiter.refused

    def lose_next_response(
        self, method: str, path_regex: str, status: int = 502, times: int = 1, *, hold: asyncio.Event | None = None,
    ) -> None:
        """Apply the next ``times`` matching API requests (the message is created), then answer ``status``
        instead of their result, as when Discord's edge loses a response. With ``hold``, answer only once
        it is set: a test can stop the bot while its request is in flight."""
        rule = FailureRule(method.upper(), re.compile(path_regex), status, 0.0, times, after_applying=True, hold=hold)
        self.http.failures.append(rule)

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)
        return [r for r in self.requests if r.method == method.upper() and pattern.search(r.path)]

    async def wait_for(
        self, predicate: Callable[[], T | Awaitable[T]], timeout: float = 5, interval: float = 0.01  # noqa: ASYNC109
    ) -> T:
        """Poll ``predicate`` until it returns something truthy; return that, or raise TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            if loop.time() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            await asyncio.sleep(interval)

    async def wait_until_connected(self, timeout: float = 10) -> None:  # noqa: ASYNC109
        await self.wait_for(lambda: self.connected, timeout)

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT: the client must reconnect and RESUME (and get the missed events replayed)."""
        self.gateway.request_reconnect()

    def drop_connections(self) -> None:
        """Close every gateway websocket with 4000; the client should RESUME."""
        self.gateway.drop_connections()
