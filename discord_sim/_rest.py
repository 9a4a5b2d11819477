"""The REST routes of the simulated Discord API that the bot calls, with Discord's checks and errors."""

from __future__ import annotations

import bisect
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from ._gateway import GUILD_MEMBERS
from ._http import Call, Result, Router
from ._state import (
    ACTIVE,
    DISCORD_EPOCH_MS,
    SCHEDULED,
    VOICE_CHANNEL_TYPES,
    SimChannel,
    SimGuild,
    SimMember,
    SimRole,
    SimScheduledEvent,
    base_permissions,
    permission_value,
)
from ._validation import ApiError, form_error, validate_commands, validate_message
from ._world import World, parse_emoji

log = logging.getLogger(__name__)

VIEW_CHANNEL = permission_value("view_channel")
SEND_MESSAGES = permission_value("send_messages")
EMBED_LINKS = permission_value("embed_links")
ATTACH_FILES = permission_value("attach_files")
ADD_REACTIONS = permission_value("add_reactions")
READ_HISTORY = permission_value("read_message_history")
MANAGE_MESSAGES = permission_value("manage_messages")
MANAGE_ROLES = permission_value("manage_roles")
MANAGE_NICKNAMES = permission_value("manage_nicknames")
CONNECT = permission_value("connect")
MUTE_MEMBERS = permission_value("mute_members")
DEAFEN_MEMBERS = permission_value("deafen_members")
MOVE_MEMBERS = permission_value("move_members")
MAX_UPLOAD = 10 * 1024 * 1024

MISSING_ACCESS = ApiError(403, 50001, "Missing Access")


def missing_permissions() -> ApiError:
    return ApiError(403, 50013, "Missing Permissions")


# Discord documents only "a few minutes" for enforce_nonce; the short end, so the bot is not tested
# against a kinder Discord than the real one.
NONCE_WINDOW = timedelta(minutes=2)
MAX_NONCE_LENGTH = 25


class RestRoutes:
    """Route handlers for users, applications and commands, channels and messages, guilds and members."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.dm_closed: set[int] = set()
        self.nonce_window = NONCE_WINDOW
        # (channel, author, nonce) -> (message id, created at): messages created with enforce_nonce.
        self._nonces: dict[tuple[int, int, str], tuple[int, datetime]] = {}

    def register(self, r: Router) -> None:
        r.add("GET", "/gateway", self.get_gateway, auth=False)
        r.add("GET", "/gateway/bot", self.get_gateway)
        r.add("GET", "/users/@me", self.get_me)
        r.add("GET", "/users/{user}", self.get_user)
        r.add("POST", "/users/@me/channels", self.create_dm)
        r.add("GET", "/oauth2/applications/@me", self.get_application)
        r.add("GET", "/applications/@me", self.get_application)
        for prefix in ("/applications/{app}", "/applications/{app}/guilds/{guild}"):
            r.add("GET", prefix + "/commands", self.get_commands)
            r.add("PUT", prefix + "/commands", self.put_commands)
        r.add("GET", "/channels/{channel}", self.get_channel)
        r.add("GET", "/channels/{channel}/messages", self.get_messages)
        r.add("POST", "/channels/{channel}/messages", self.post_message)
        r.add("GET", "/channels/{channel}/messages/{message}", self.get_message)
        r.add("PATCH", "/channels/{channel}/messages/{message}", self.patch_message)
        r.add("DELETE", "/channels/{channel}/messages/{message}", self.delete_message)
        r.add("PUT", "/channels/{channel}/messages/{message}/reactions/{emoji}/@me", self.put_reaction)
        r.add("DELETE", "/channels/{channel}/messages/{message}/reactions/{emoji}/@me", self.delete_own_reaction)
        r.add("DELETE", "/channels/{channel}/messages/{message}/reactions/{emoji}/{user}", self.delete_user_reaction)
        r.add("GET", "/channels/{channel}/messages/{message}/reactions/{emoji}", self.get_reactions)
        r.add("POST", "/channels/{channel}/typing", self.typing)
        r.add("GET", "/guilds/{guild}", self.get_guild)
        r.add("GET", "/guilds/{guild}/channels", self.get_guild_channels)
        r.add("GET", "/guilds/{guild}/roles", self.get_roles)
        r.add("GET", "/guilds/{guild}/members", self.list_members)
        r.add("GET", "/guilds/{guild}/members/{user}", self.get_member)
        r.add("PATCH", "/guilds/{guild}/members/{user}", self.patch_member)
        r.add("PUT", "/guilds/{guild}/members/{user}/roles/{role}", self.add_member_role)
        r.add("GET", "/guilds/{guild}/voice-states/{user}", self.get_voice_state)
        r.add("GET", "/guilds/{guild}/threads/active", self.active_threads)
        r.add("GET", "/channels/{channel}/threads/archived/public", self.public_archived_threads)
        r.add("GET", "/guilds/{guild}/scheduled-events", self.list_scheduled_events)
        r.add("GET", "/guilds/{guild}/scheduled-events/{event}", self.get_scheduled_event)
        r.add("GET", "/guilds/{guild}/scheduled-events/{event}/users", self.get_scheduled_event_users)
        r.add("DELETE", "/guilds/{guild}/members/{user}/roles/{role}", self.remove_member_role)

    # -- users and the application ---------------------------------------------------------------
    async def get_gateway(self, call: Call) -> Result:
        data: dict[str, Any] = {"url": self.world.gateway_url}
        if call.record.path.endswith("/bot"):
            limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
            data |= {"shards": self.world.recommended_shards, "session_start_limit": limit}
        return 200, data

    async def get_me(self, call: Call) -> Result:
        return 200, self.world.bot_user.payload() | {"verified": True, "mfa_enabled": False, "locale": "en-US"}

    async def get_user(self, call: Call) -> Result:
        user = self.world.users.get(_id(call.args[0]))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return 200, user.payload()

    async def create_dm(self, call: Call) -> Result:
        channel = self.world.dm_channel(_id(call.body.get("recipient_id")))
        return 200, channel.payload(self.world.users)

    async def get_application(self, call: Call) -> Result:
        world = self.world
        owner = world.users[next(iter(world.guilds.values())).owner_id] if world.guilds else world.bot_user
        return 200, {
            "id": str(world.application_id),
            "name": world.bot_user.username,
            "icon": None,
            "description": "A simulated application",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": owner.payload(),
            "team": None,
            "flags": world.application_flags,
            "flags_new": str(world.application_flags),
            "bot": world.bot_user.payload(),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "tags": [],
            "approximate_guild_count": len(world.guilds),
            "approximate_user_install_count": 0,
            "approximate_user_authorization_count": 0,
            "role_connections_verification_url": None,
            "explicit_content_filter": 0,
            "eligible_oauth2_scopes": [],
            "integration_types_config": {"0": {}},
        }

    async def get_commands(self, call: Call) -> Result:
        scope = self._command_scope(call)
        return 200, list(self.world.commands.get(scope, []))

    async def put_commands(self, call: Call) -> Result:
        scope = self._command_scope(call)
        commands = call.json if isinstance(call.json, list) else []
        validate_commands(commands)
        old = {(c["type"], c["name"]): c["id"] for c in self.world.commands.get(scope, [])}
        stored = []
        for cmd in commands:
            ctype = int(cmd.get("type", 1))
            data = {
                "id": old.get((ctype, cmd["name"])) or str(self.world.snowflake()),
                "application_id": str(self.world.application_id),
                "version": str(self.world.snowflake()),
                "type": ctype,
                "name": cmd["name"],
                "name_localizations": cmd.get("name_localizations"),
                "description": cmd.get("description", "") if ctype == 1 else "",
                "description_localizations": cmd.get("description_localizations"),
                "options": cmd.get("options") or [],
                "default_member_permissions": _opt_str(cmd.get("default_member_permissions")),
                "dm_permission": cmd.get("dm_permission", True),
                "contexts": cmd.get("contexts"),
                "integration_types": cmd.get("integration_types") or [0],
                "nsfw": bool(cmd.get("nsfw", False)),
            }
            if scope is not None:
                data["guild_id"] = str(scope)
            stored.append(data)
        self.world.commands[scope] = stored
        return 200, stored

    def _command_scope(self, call: Call) -> int | None:
        if _id(call.args[0]) != self.world.application_id:
            raise ApiError(403, 50001, "Missing Access")
        if len(call.args) == 1:
            return None
        guild_id = _id(call.args[1])
        if guild_id not in self.world.guilds:
            raise MISSING_ACCESS
        return guild_id

    # -- channels and messages -------------------------------------------------------------------
    async def get_channel(self, call: Call) -> Result:
        channel = self._visible_channel(call.args[0])
        return 200, channel.payload(self.world.users)

    def _visible_channel(self, raw_id: str) -> SimChannel:
        channel = self.world.channel(_id(raw_id))
        if not self.world.bot_permissions(channel) & VIEW_CHANNEL:
            raise MISSING_ACCESS
        return channel

    async def get_messages(self, call: Call) -> Result:
        """Newest first; ``around``, ``before`` and ``after`` are exclusive (the first given wins), ``limit``
        1-100 (default 50; the spec check refuses others). Without Read Message History: no messages, as the
        docs say; a voice channel's chat also needs Connect."""
        channel = self._visible_channel(call.args[0])
        perms = self.world.bot_permissions(channel)
        if channel.type in VOICE_CHANNEL_TYPES and not perms & CONNECT:
            raise MISSING_ACCESS
        if not perms & READ_HISTORY:
            return 200, []
        log_ids = self.world.channel_log.get(channel.id, [])  # ascending: snowflakes grow with time
        limit = int(call.query("limit") or 50)
        around, before, after = call.query("around"), call.query("before"), call.query("after")
        if around:
            # Discord centres the page on the message: half the limit older, the rest from it onwards.
            index = bisect.bisect_left(log_ids, _id(around))
            older = self._listed(log_ids, range(index - 1, -1, -1), limit // 2)
            ids = older[::-1] + self._listed(log_ids, range(index, len(log_ids)), limit - len(older))
        elif after:
            ids = self._listed(log_ids, range(bisect.bisect_right(log_ids, _id(after)), len(log_ids)), limit)
        else:
            end = bisect.bisect_left(log_ids, _id(before)) if before else len(log_ids)
            ids = self._listed(log_ids, range(end - 1, -1, -1), limit)[::-1]
        return 200, [self.world.public(self.world.messages[i]) for i in reversed(ids)]

    def _listed(self, log_ids: list[int], indexes: range, limit: int) -> list[int]:
        """Up to ``limit`` ids at ``indexes`` of the log, in that order, skipping ephemeral messages (never listed)."""
        found: list[int] = []
        for index in indexes:
            if len(found) >= limit:
                break
            mid = log_ids[index]
            if not self.world.messages[mid]["flags"] & 64:
                found.append(mid)
        return found

    # -- threads -----------------------------------------------------------------------------------
    async def active_threads(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        threads = [c for c in guild.channels.values() if c.is_thread and not c.archived
                   and self.world.bot_permissions(c) & VIEW_CHANNEL]
        # has_more: the spec requires it (the docs do not list it); an active list is never paged.
        page = [t.payload() for t in sorted(threads, key=lambda t: -t.id)]
        return 200, {"threads": page, "members": [], "has_more": False}

    async def public_archived_threads(self, call: Call) -> Result:
        channel = self._visible_channel(call.args[0])
        if not self.world.bot_permissions(channel) & READ_HISTORY:
            raise MISSING_ACCESS
        limit = int(call.query("limit") or 50)
        threads = [c for c in self.world.channels.values()
                   if c.parent_id == channel.id and c.type in (10, 11) and c.archived]
        before = call.query("before")
        if before:
            cutoff = _timestamp(before)
            threads = [t for t in threads if datetime.fromisoformat(t.archive_timestamp or "") < cutoff]
        threads.sort(key=lambda t: t.archive_timestamp or "", reverse=True)
        page = threads[:limit]
        return 200, {"threads": [t.payload() for t in page], "members": [], "has_more": len(threads) > limit}

    async def get_message(self, call: Call) -> Result:
        channel = self._visible_channel(call.args[0])
        if not self.world.bot_permissions(channel) & READ_HISTORY:
            raise MISSING_ACCESS
        return 200, self.world.public(self.world.message(channel.id, _id(call.args[1])))

    async def post_message(self, call: Call) -> Result:
        world = self.world
        channel = world.channel(_id(call.args[0]))
        payload = call.body
        self.check_can_send(channel, payload, has_files=bool(call.files))
        validate_message(payload, has_files=bool(call.files))
        check_upload_size(call.files)
        ref = payload.get("message_reference")
        if ref and ref.get("fail_if_not_exists", True) and _id(ref.get("message_id")) not in world.messages:
            raise form_error("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
        nonce = payload.get("nonce")
        if nonce is not None and len(str(nonce)) > MAX_NONCE_LENGTH:
            raise form_error("nonce", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_NONCE_LENGTH} or fewer in length.")
        key = (channel.id, world.bot_user.id, str(nonce))
        now = world.clock.now()
        if nonce is not None and payload.get("enforce_nonce"):
            # Discord returns the message created with this nonce a moment ago instead of creating another.
            earlier = self._nonces.get(key)
            if earlier is not None and now - earlier[1] < self.nonce_window and earlier[0] in world.messages:
                return 200, world.public(world.messages[earlier[0]])
        msg = world.create_message(channel, world.bot_user, payload, call.files)
        if nonce is not None and payload.get("enforce_nonce"):
            self._nonces[key] = (int(msg["id"]), now)
        world.dispatch_message("MESSAGE_CREATE", msg)
        return 200, world.public(msg)

    def check_can_send(self, channel: SimChannel, payload: dict[str, Any], *, has_files: bool) -> None:
        if channel.type == 1:
            recipient = self.world.users.get(channel.recipient_id or 0)
            if recipient is None or recipient.bot or recipient.id in self.dm_closed:
                raise ApiError(403, 50007, "Cannot send messages to this user")
            return
        perms = self.world.bot_permissions(channel)
        if not perms & VIEW_CHANNEL:
            raise MISSING_ACCESS
        if not perms & SEND_MESSAGES:
            raise missing_permissions()
        if payload.get("embeds") and not perms & EMBED_LINKS:
            raise missing_permissions()
        if has_files and not perms & ATTACH_FILES:
            raise missing_permissions()

    async def patch_message(self, call: Call) -> Result:
        world = self.world
        channel = self._visible_channel(call.args[0])
        msg = world.message(channel.id, _id(call.args[1]))
        if msg["author"]["id"] != str(world.bot_user.id):
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        validate_message(call.body, has_files=bool(call.files), editing=True)
        check_upload_size(call.files)
        if call.body.get("embeds") and not world.bot_permissions(channel) & EMBED_LINKS:
            raise missing_permissions()
        world.edit_message(msg, call.body, call.files)
        world.dispatch_message("MESSAGE_UPDATE", msg)
        return 200, world.public(msg)

    async def delete_message(self, call: Call) -> Result:
        world = self.world
        channel = self._visible_channel(call.args[0])
        msg = world.message(channel.id, _id(call.args[1]))
        own = msg["author"]["id"] == str(world.bot_user.id)
        if not own and not world.bot_permissions(channel) & MANAGE_MESSAGES:
            raise missing_permissions()
        world.delete_message(msg)
        return 204, None

    async def put_reaction(self, call: Call) -> Result:
        world = self.world
        channel = self._visible_channel(call.args[0])
        msg = world.message(channel.id, _id(call.args[1]))
        emoji_text = unquote(call.args[2])
        emoji, key = parse_emoji(emoji_text)
        if emoji["id"] is not None:
            raise ApiError(400, 10014, "Unknown Emoji")
        perms = world.bot_permissions(channel)
        existing = world.reactions.get(int(msg["id"]), {}).get(key)
        if not perms & READ_HISTORY or (not perms & ADD_REACTIONS and not (existing and existing[1])):
            raise missing_permissions()
        world.add_reaction(channel, msg, world.bot_user.id, emoji_text)
        return 204, None

    async def delete_own_reaction(self, call: Call) -> Result:
        channel = self._visible_channel(call.args[0])
        msg = self.world.message(channel.id, _id(call.args[1]))
        self.world.remove_reaction(channel, msg, self.world.bot_user.id, unquote(call.args[2]))
        return 204, None

    async def delete_user_reaction(self, call: Call) -> Result:
        channel = self._visible_channel(call.args[0])
        msg = self.world.message(channel.id, _id(call.args[1]))
        if not self.world.bot_permissions(channel) & MANAGE_MESSAGES:
            raise missing_permissions()
        self.world.remove_reaction(channel, msg, _id(call.args[3]), unquote(call.args[2]))
        return 204, None

    async def get_reactions(self, call: Call) -> Result:
        channel = self._visible_channel(call.args[0])
        msg = self.world.message(channel.id, _id(call.args[1]))
        _, key = parse_emoji(unquote(call.args[2]))
        entry = self.world.reactions.get(int(msg["id"]), {}).get(key)
        users = entry[1] if entry else []
        return 200, [self.world.users[u].payload() for u in users]

    async def typing(self, call: Call) -> Result:
        self._visible_channel(call.args[0])
        return 204, None

    # -- guilds, members, roles --------------------------------------------------------------------
    def _guild(self, raw_id: str) -> SimGuild:
        guild = self.world.guilds.get(_id(raw_id))
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    def _member_of(self, guild: SimGuild, raw_id: str) -> int:
        user_id = _id(raw_id)
        if user_id not in guild.members:
            raise ApiError(404, 10007, "Unknown Member")
        return user_id

    async def get_guild(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        data = guild.base_payload()
        if call.query("with_counts") in ("true", "1", "True"):
            data["approximate_member_count"] = len(guild.members)
            data["approximate_presence_count"] = sum(
                1 for p in guild.presences.values() if p["status"] != "offline"
            )
        return 200, data

    async def get_guild_channels(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        return 200, [c.payload() for c in guild.channels.values() if not c.is_thread]

    async def get_roles(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        return 200, guild.base_payload()["roles"]

    async def list_members(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        if not self.world.application_flags & (1 << 14):
            raise ApiError(403, 50001, "Missing Access")
        limit = max(1, min(1000, int(call.query("limit") or 1)))
        after = int(call.query("after") or 0)
        ids = sorted(u for u in guild.members if u > after)[:limit]
        return 200, [self.world.member_payload(guild, u) for u in ids]

    async def get_member(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        return 200, self.world.member_payload(guild, self._member_of(guild, call.args[1]))

    async def patch_member(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        user_id = self._member_of(guild, call.args[1])
        member = guild.members[user_id]
        body = call.body
        if "roles" in body:
            new = [_id(r) for r in body["roles"] or []]
            for role_id in set(new) ^ set(member.roles):
                self.check_manage_role(guild, self._role(guild, role_id))
            member.roles = list(dict.fromkeys(new))
        if "nick" in body:
            bot = self.world.bot_user.id
            perms = base_permissions(guild, bot)
            if user_id == bot:
                pass
            elif not perms & MANAGE_NICKNAMES or user_id == guild.owner_id or not outranks(guild, bot, member):
                raise missing_permissions()
            member.nick = body["nick"] or None
        self._patch_voice(guild, user_id, body)
        self.dispatch_member_update(guild, user_id)
        return 200, self.world.member_payload(guild, user_id)

    def _patch_voice(self, guild: SimGuild, user_id: int, body: dict[str, Any]) -> None:
        """Server mute, deafen and move (``channel_id``; null disconnects), with Discord's permission checks."""
        wanted = [k for k in ("mute", "deaf", "channel_id") if k in body]
        if not wanted:
            return
        perms = base_permissions(guild, self.world.bot_user.id)
        needed = {"mute": MUTE_MEMBERS, "deaf": DEAFEN_MEMBERS, "channel_id": MOVE_MEMBERS}
        if any(not perms & needed[k] for k in wanted):
            raise missing_permissions()
        state = guild.voice_states.get(user_id)
        if state is None and ("channel_id" in body or any(body[k] is not None for k in ("mute", "deaf") if k in body)):
            raise ApiError(400, 40032, "Target user is not connected to voice.")
        member = guild.members[user_id]
        if body.get("mute") is not None:
            member.mute = bool(body["mute"])
        if body.get("deaf") is not None:
            member.deaf = bool(body["deaf"])
        if "channel_id" in body:
            target = body["channel_id"]
            if target is None:
                self.world.dispatch_voice_state(guild, user_id, left=True)
                del guild.voice_states[user_id]
                return
            channel = guild.channels.get(_id(target))
            if channel is None or channel.type not in VOICE_CHANNEL_TYPES:
                raise form_error("channel_id", "CHANNEL_TYPE_INVALID", "Not a voice channel.")
            if state is not None:
                state.channel_id = channel.id
                state.suppress = channel.type == 13
        if state is not None:
            self.world.dispatch_voice_state(guild, user_id)

    async def get_voice_state(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        user_id = self.world.bot_user.id if call.args[1] == "@me" else _id(call.args[1])
        if user_id not in guild.voice_states:
            raise ApiError(404, 10065, "Unknown Voice State")
        return 200, self.world.voice_state_payload(guild, user_id)

    # -- scheduled events --------------------------------------------------------------------------
    async def list_scheduled_events(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        counts = _flag(call.query("with_user_count"))
        events = [e for e in guild.scheduled_events.values() if e.status in (SCHEDULED, ACTIVE)]
        return 200, [self.world.scheduled_event_payload(e, with_user_count=counts) for e in events]

    def _scheduled_event(self, guild: SimGuild, raw_id: str) -> SimScheduledEvent:
        event = guild.scheduled_events.get(_id(raw_id))
        if event is None:
            raise ApiError(404, 10070, "Unknown Guild Scheduled Event")
        return event

    async def get_scheduled_event(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        event = self._scheduled_event(guild, call.args[1])
        counts = _flag(call.query("with_user_count"))
        return 200, self.world.scheduled_event_payload(event, with_user_count=counts)

    async def get_scheduled_event_users(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        event = self._scheduled_event(guild, call.args[1])
        limit = int(call.query("limit") or 100)
        ids = sorted(event.subscribers)
        if call.query("before"):
            ids = [u for u in ids if u < _id(call.query("before"))][-limit:]
        else:
            ids = [u for u in ids if u > _id(call.query("after") or 0)][:limit]
        result = []
        for user_id in ids:
            # user_id and response (1, interested: the only RSVP a member can give) as the spec has them.
            entry: dict[str, Any] = {"guild_scheduled_event_id": str(event.id), "user_id": str(user_id),
                                     "response": 1, "user": self.world.users[user_id].payload()}
            if _flag(call.query("with_member")) and user_id in guild.members:
                # With its user: the docs' member object omits it only in message events.
                entry["member"] = self.world.member_payload(guild, user_id)
            result.append(entry)
        return 200, result

    def _role(self, guild: SimGuild, role_id: int) -> SimRole:
        role = guild.roles.get(role_id)
        if role is None:
            raise ApiError(404, 10011, "Unknown Role")
        return role

    def check_manage_role(self, guild: SimGuild, role: SimRole) -> None:
        """Discord's rule: Manage Roles, and only roles strictly below the bot's highest role."""
        bot = self.world.bot_user.id
        if bot == guild.owner_id:
            return
        if not base_permissions(guild, bot) & MANAGE_ROLES:
            raise missing_permissions()
        if role.managed or role.id == guild.id:
            raise missing_permissions()
        if role.sort_key >= guild.top_role(guild.members[bot]).sort_key:
            raise missing_permissions()

    async def add_member_role(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        user_id = self._member_of(guild, call.args[1])
        role = self._role(guild, _id(call.args[2]))
        self.check_manage_role(guild, role)
        member = guild.members[user_id]
        if role.id not in member.roles:
            member.roles.append(role.id)
            self.dispatch_member_update(guild, user_id)
        return 204, None

    async def remove_member_role(self, call: Call) -> Result:
        guild = self._guild(call.args[0])
        user_id = self._member_of(guild, call.args[1])
        role = self._role(guild, _id(call.args[2]))
        self.check_manage_role(guild, role)
        member = guild.members[user_id]
        if role.id in member.roles:
            member.roles.remove(role.id)
            self.dispatch_member_update(guild, user_id)
        return 204, None

    def dispatch_member_update(self, guild: SimGuild, user_id: int) -> None:
        if self.world.gateway is not None:
            data = self.world.member_payload(guild, user_id) | {"guild_id": str(guild.id)}
            self.world.gateway.dispatch("GUILD_MEMBER_UPDATE", data, GUILD_MEMBERS)


def outranks(guild: SimGuild, user_id: int, member: SimMember) -> bool:
    return guild.top_role(guild.members[user_id]).sort_key > guild.top_role(member).sort_key


def check_upload_size(files: list[tuple[str, str, bytes]]) -> None:
    if any(len(data) > MAX_UPLOAD for _, _, data in files):
        raise ApiError(413, 40005, "Request entity too large")


def _timestamp(value: str) -> datetime:
    """An ISO 8601 timestamp, or a snowflake (discord.py pages archived threads with either)."""
    try:
        if value.isdigit():
            return datetime.fromtimestamp(((int(value) >> 22) + DISCORD_EPOCH_MS) / 1000, UTC)
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise form_error("before", "DATE_TIME_TYPE_PARSE", f'Could not parse "{value[:50]}".') from None


def _flag(value: str | None) -> bool:
    """A boolean query parameter as Discord reads it (discord.py sends 1/0, others true/false)."""
    return (value or "").lower() in ("1", "true")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(int(value))


def _id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise form_error("id", "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.') from None
