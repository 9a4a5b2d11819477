"""The simulator's shared state and the Discord-shaped payloads built from it (guilds, members, messages)."""

from __future__ import annotations

import copy
import itertools
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._gateway import (
    DIRECT_MESSAGE_REACTIONS,
    DIRECT_MESSAGES,
    GUILD_MESSAGE_REACTIONS,
    GUILD_MESSAGES,
    GUILD_PRESENCES,
    GUILD_VOICE_STATES,
    MESSAGE_CONTENT,
    GatewaySession,
)
from ._state import (
    ACTIVE,
    SCHEDULED,
    Clock,
    SimChannel,
    SimGuild,
    SimScheduledEvent,
    SimUser,
    SnowflakeFactory,
    SystemClock,
    avatar_hash,
    channel_permissions,
    iso,
)
from ._validation import ApiError, form_error

if TYPE_CHECKING:
    from ._gateway import Gateway

log = logging.getLogger(__name__)

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
ATTACHMENT_REF = "attachment://"
FLOOD_ID = "@@flood-message-id@@"  # where each flooded message's snowflake goes in its template
SUPPRESS_EMBEDS = 1 << 2

Payload = dict[str, Any]


class World:
    """Everything the simulated Discord knows, shared by the REST routes, the gateway and the control API."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.snowflake = SnowflakeFactory(self.clock)
        self.token = "sim." + secrets.token_urlsafe(24)
        self.application_id = self.snowflake()
        bot_id = self.application_id
        self.bot_user = SimUser(bot_id, "AchievementsBot", bot=True, avatar=avatar_hash(bot_id))
        self.application_flags = (1 << 12) | (1 << 14) | (1 << 18)  # presence, members, message content
        self.gateway_url = ""
        self.cdn_base = ""
        self.users: dict[int, SimUser] = {self.bot_user.id: self.bot_user}
        self.guilds: dict[int, SimGuild] = {}
        self.channels: dict[int, SimChannel] = {}
        self.dm_channels: dict[int, int] = {}
        self.messages: dict[int, Payload] = {}
        self.channel_log: dict[int, list[int]] = {}
        self.reactions: dict[int, dict[str, tuple[Payload, list[int]]]] = {}
        self.attachments: dict[int, bytes] = {}
        self.commands: dict[int | None, list[Payload]] = {}
        self.gateway: Gateway | None = None
        self.recommended_shards = 1

    def now_iso(self) -> str:
        return iso(self.clock.now())

    # -- lookups -------------------------------------------------------------------------------
    def guild_of(self, channel: SimChannel) -> SimGuild | None:
        return self.guilds.get(channel.guild_id) if channel.guild_id is not None else None

    def channel(self, channel_id: int) -> SimChannel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return channel

    def message(self, channel_id: int, message_id: int) -> Payload:
        msg = self.messages.get(message_id)
        if msg is None or int(msg["channel_id"]) != channel_id:
            raise ApiError(404, 10008, "Unknown Message")
        return msg

    def bot_permissions(self, channel: SimChannel) -> int:
        guild = self.guild_of(channel)
        if guild is None:
            return discord_dm_permissions()
        return channel_permissions(guild, channel, self.bot_user.id)

    def member_matches(self, guild: SimGuild, user_id: int, query: str) -> bool:
        if not query:
            return True
        user = self.users[user_id]
        member = guild.members[user_id]
        names = [user.username, user.global_name or "", member.nick or ""]
        return any(n.lower().startswith(query.lower()) for n in names)

    # -- payloads ------------------------------------------------------------------------------
    def member_payload(
        self, guild: SimGuild, user_id: int, *, with_user: bool = True, permissions: int | None = None
    ) -> Payload:
        member = guild.members[user_id]
        return member.payload(self.users[user_id] if with_user else None, permissions)

    def presence_payload(self, guild: SimGuild, user_id: int) -> Payload:
        presence = guild.presences.get(user_id) or {"status": "offline", "activities": []}
        status = presence["status"]
        return {
            "user": {"id": str(user_id)},
            "guild_id": str(guild.id),
            "status": status,
            "activities": presence.get("activities", []),
            "client_status": {} if status == "offline" else {"desktop": status},
        }

    def guild_create_payload(self, guild: SimGuild, session: GatewaySession, *, joined: bool = False) -> Payload:
        """GUILD_CREATE; for a guild joined after READY, Discord leaves ``unavailable`` out."""
        large = len(guild.members) > session.large_threshold
        # Like Discord: without the presences intent only the bot's own member comes with GUILD_CREATE.
        if session.intents & GUILD_PRESENCES and not large:
            member_ids = list(guild.members)
        else:
            member_ids = [self.bot_user.id] if self.bot_user.id in guild.members else []
        data = guild.base_payload() | {
            "joined_at": guild.joined_at,
            "large": large,
            "unavailable": False,
            "member_count": len(guild.members),
            "channels": [c.payload() for c in guild.channels.values() if not c.is_thread],
            "threads": [c.payload() for c in guild.channels.values() if c.is_thread and not c.archived],
            "members": [self.member_payload(guild, u) for u in member_ids],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [self.scheduled_event_payload(e) for e in guild.scheduled_events.values()
                                       if e.status in (SCHEDULED, ACTIVE)],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "lazy": True,
        }
        if session.intents & GUILD_VOICE_STATES:
            # Who is in voice already, so a restarted bot knows; partial states, without guild_id.
            data["voice_states"] = [self.voice_state_payload(guild, u, with_guild=False)
                                    for u in guild.voice_states]
        if joined:
            del data["unavailable"]
        if session.intents & GUILD_PRESENCES:
            data["presences"] = [
                self.presence_payload(guild, u) for u in member_ids if u in guild.presences
            ]
        return data

    def voice_state_payload(
        self, guild: SimGuild, user_id: int, *, with_guild: bool = True, left: bool = False
    ) -> Payload:
        state = guild.voice_states[user_id]
        member = guild.members[user_id]
        return state.payload(member, guild.id if with_guild else None, self.member_payload(guild, user_id),
                             channel_id=None if left else -1)

    def dispatch_voice_state(self, guild: SimGuild, user_id: int, *, left: bool = False) -> None:
        if self.gateway is not None:
            data = self.voice_state_payload(guild, user_id, left=left)
            self.gateway.dispatch("VOICE_STATE_UPDATE", data, GUILD_VOICE_STATES)

    def scheduled_event_payload(self, event: SimScheduledEvent, *, with_user_count: bool = True) -> Payload:
        return event.payload(self.users.get(event.creator_id), with_user_count=with_user_count)

    def user_mentions(self, guild: SimGuild | None, content: str) -> list[Payload]:
        found: list[Payload] = []
        seen: set[int] = set()
        for match in USER_MENTION.finditer(content):
            uid = int(match.group(1))
            if uid in seen or uid not in self.users:
                continue
            seen.add(uid)
            data = self.users[uid].payload()
            if guild is not None and uid in guild.members:
                data["member"] = self.member_payload(guild, uid, with_user=False)
            found.append(data)
        return found

    def create_message(
        self,
        channel: SimChannel,
        author: SimUser,
        payload: Payload,
        files: list[tuple[str, str, bytes]] | None = None,
        *,
        webhook_id: int | None = None,
        interaction: Payload | None = None,
        message_type: int = 0,
    ) -> Payload:
        """Store a message as Discord would render it; ``files`` are (field name, filename, bytes)."""
        mid = self.snowflake()
        msg = self.message_payload(channel, author, payload, str(mid), webhook_id=webhook_id,
                                   interaction=interaction, message_type=message_type)
        msg["attachments"] = self.make_attachments(channel, payload, files or [], [])
        msg["embeds"] = self.normalise_embeds(payload.get("embeds") or [], msg["attachments"])
        msg["allowed_mentions"] = payload.get("allowed_mentions")
        self.messages[mid] = msg
        self.channel_log.setdefault(channel.id, []).append(mid)
        channel.last_message_id = mid
        channel.message_count += 1
        return msg

    def message_payload(
        self,
        channel: SimChannel,
        author: SimUser,
        payload: Payload,
        message_id: str,
        *,
        webhook_id: int | None = None,
        interaction: Payload | None = None,
        message_type: int = 0,
    ) -> Payload:
        """A message as Discord renders it, without attachments or embeds, not stored."""
        guild = self.guild_of(channel)
        content = payload.get("content") or ""
        msg: Payload = {
            "id": message_id,
            "type": message_type,
            "channel_id": str(channel.id),
            "author": author.payload(),
            "content": content,
            "timestamp": self.now_iso(),
            "edited_timestamp": None,
            "tts": bool(payload.get("tts", False)),
            "mention_everyone": "@everyone" in content and "everyone" in _parse(payload),
            "mentions": self.user_mentions(guild, content),
            "mention_roles": [m for m in ROLE_MENTION.findall(content) if guild and int(m) in guild.roles],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "flags": int(payload.get("flags") or 0),
            "components": number_components(payload.get("components") or []),
        }
        if payload.get("nonce") is not None:
            msg["nonce"] = payload["nonce"]
        if payload.get("message_reference"):
            msg["message_reference"] = payload["message_reference"] | {"channel_id": str(channel.id)}
        if webhook_id is not None:
            msg["webhook_id"] = str(webhook_id)
            msg["application_id"] = str(self.application_id)
        if interaction is not None:
            msg["interaction_metadata"] = interaction
        if guild is not None:
            msg["guild_id"] = str(guild.id)
        return msg

    def edit_message(self, msg: Payload, payload: Payload, files: list[tuple[str, str, bytes]]) -> Payload:
        channel = self.channels[int(msg["channel_id"])]
        if "content" in payload:
            msg["content"] = payload["content"]
        if "components" in payload:
            msg["components"] = number_components(payload["components"] or [])
        if "flags" in payload:
            # An edit can only toggle SUPPRESS_EMBEDS: a message's other flags (above all EPHEMERAL, fixed by a
            # deferral for the follow-up that fills it in) cannot change once it exists.
            asked = int(payload["flags"] or 0)
            msg["flags"] = (msg["flags"] & ~SUPPRESS_EMBEDS) | (asked & SUPPRESS_EMBEDS)
        if "allowed_mentions" in payload:
            # Kept verbatim (ids as the client sent them): tests assert on what Discord received.
            msg["allowed_mentions"] = payload["allowed_mentions"]
        if msg.get("content") is None:
            msg["content"] = ""
        if "content" in payload:
            msg["mentions"] = self.user_mentions(self.guild_of(channel), msg["content"])
        if "attachments" in payload or files:
            msg["attachments"] = self.make_attachments(channel, payload, files, msg["attachments"])
        if "embeds" in payload:
            msg["embeds"] = self.normalise_embeds(payload["embeds"] or [], msg["attachments"])
        msg["edited_timestamp"] = self.now_iso()
        return msg

    def make_attachments(
        self, channel: SimChannel, payload: Payload, files: list[tuple[str, str, bytes]], existing: list[Payload]
    ) -> list[Payload]:
        by_field = {name: (filename, data) for name, filename, data in files}
        kept_ids = {str(a.get("id")) for a in payload.get("attachments") or []}
        result = [a for a in existing if a["id"] in kept_ids] if "attachments" in payload else list(existing)
        described = {str(a.get("id")): a for a in payload.get("attachments") or []}
        for index, (field_name, (filename, data)) in enumerate(by_field.items()):
            key = field_name[6:-1] if field_name.startswith("files[") else str(index)
            meta = described.get(key, {})
            aid = self.snowflake()
            self.attachments[aid] = data
            name = meta.get("filename") or filename
            url = f"{self.cdn_base}/attachments/{channel.id}/{aid}/{name}"
            attachment: Payload = {
                "id": str(aid),
                "filename": name,
                "content_type": _content_type(name),
                "size": len(data),
                "url": url,
                "proxy_url": url,
                "ephemeral": False,
            }
            if meta.get("description") is not None:  # optional, never null
                attachment["description"] = meta["description"]
            result.append(attachment)
        return result

    def normalise_embeds(self, embeds: list[Payload], attachments: list[Payload]) -> list[Payload]:
        result = []
        urls = {a["filename"]: a["url"] for a in attachments}
        for raw in embeds:
            embed = copy.deepcopy(raw)
            embed.setdefault("type", "rich")
            for key in ("image", "thumbnail"):
                url = (embed.get(key) or {}).get("url") or ""
                if url.startswith(ATTACHMENT_REF) and url[len(ATTACHMENT_REF) :] in urls:
                    embed[key] = embed[key] | {"url": urls[url[len(ATTACHMENT_REF) :]], "proxy_url": url}
            for f in embed.get("fields") or []:
                f.setdefault("inline", False)
            result.append(embed)
        return result

    def public(self, msg: Payload) -> Payload:
        """The message as the REST API returns it: without simulator bookkeeping, with reactions."""
        data = {k: v for k, v in msg.items() if k != "allowed_mentions"}
        reactions = self.reaction_summary(int(msg["id"]))
        if reactions:
            data["reactions"] = reactions
        return data

    def reaction_summary(self, message_id: int) -> list[Payload]:
        summary = []
        for emoji, users in self.reactions.get(message_id, {}).values():
            if not users:
                continue
            summary.append(
                {
                    "emoji": emoji,
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "burst_colors": [],
                    "me_burst": False,
                    "burst_me": False,
                    "me": self.bot_user.id in users,
                    "burst_count": 0,
                }
            )
        return summary

    # -- gateway events ------------------------------------------------------------------------
    def dispatch_message(self, event: str, msg: Payload) -> None:
        if self.gateway is None or msg["flags"] & 64:
            return
        channel = self.channels[int(msg["channel_id"])]
        guild = self.guild_of(channel)
        data = self.public(msg)
        if guild is not None and int(msg["author"]["id"]) in guild.members and not msg.get("webhook_id"):
            data["member"] = self.member_payload(guild, int(msg["author"]["id"]), with_user=False)
        intent = GUILD_MESSAGES if guild is not None else DIRECT_MESSAGES
        bot_id = str(self.bot_user.id)

        def for_session(session: GatewaySession) -> Payload:
            if session.intents & MESSAGE_CONTENT or guild is None:
                return data
            if data["author"]["id"] == bot_id or any(m["id"] == bot_id for m in data["mentions"]):
                return data
            # Discord blanks these fields for bots without the message content intent.
            return data | {"content": "", "embeds": [], "attachments": [], "components": []}

        self.gateway.dispatch(event, for_session, intent)

    def flood_message_frames(
        self, channel: SimChannel, author_ids: Sequence[int], count: int, content: str
    ) -> Callable[[GatewaySession], Iterator[str]]:
        """MESSAGE_CREATE ``d`` texts for a bulk flood, serialised once per author and variant.

        Each event is the payload ``dispatch_message`` would send (member, content blanked without the
        message content intent), with its own snowflake; the messages are not stored.
        """
        guild = self.guild_of(channel)
        variants: dict[bool, list[tuple[str, str]]] = {}

        def templates(with_content: bool) -> list[tuple[str, str]]:
            if with_content not in variants:
                found = []
                for author_id in author_ids:
                    data = self.message_payload(channel, self.users[author_id], {"content": content}, FLOOD_ID)
                    data |= {"attachments": [], "embeds": []}
                    if guild is not None:
                        data["member"] = self.member_payload(guild, author_id, with_user=False)
                    if not with_content and guild is not None:
                        data |= {"content": "", "components": []}
                    head, tail = json.dumps(data, separators=(",", ":")).split(FLOOD_ID, 1)
                    found.append((head, tail))
                variants[with_content] = found
            return variants[with_content]

        def frames(session: GatewaySession) -> Iterator[str]:
            chosen = templates(bool(session.intents & MESSAGE_CONTENT))
            return self._flood_texts(channel, chosen, count)

        return frames

    def _flood_texts(self, channel: SimChannel, chosen: list[tuple[str, str]], count: int) -> Iterator[str]:
        authors = len(chosen)
        for index in range(count):
            mid = self.snowflake()
            channel.last_message_id = mid
            head, tail = chosen[index % authors]
            yield f"{head}{mid}{tail}"

    def dispatch_reaction(self, event: str, channel: SimChannel, msg: Payload, user_id: int, emoji: Payload) -> None:
        if self.gateway is None:
            return
        guild = self.guild_of(channel)
        data: Payload = {
            "user_id": str(user_id),
            "channel_id": str(channel.id),
            "message_id": msg["id"],
            "emoji": emoji,
            "burst": False,
            "type": 0,
        }
        if event == "MESSAGE_REACTION_ADD":
            data["message_author_id"] = msg["author"]["id"]
            data["burst_colors"] = []
        if guild is not None:
            data["guild_id"] = str(guild.id)
            if event == "MESSAGE_REACTION_ADD" and user_id in guild.members:
                data["member"] = self.member_payload(guild, user_id)
        intent = GUILD_MESSAGE_REACTIONS if guild is not None else DIRECT_MESSAGE_REACTIONS
        self.gateway.dispatch(event, data, intent)

    def add_reaction(self, channel: SimChannel, msg: Payload, user_id: int, emoji_text: str) -> bool:
        emoji, key = parse_emoji(emoji_text)
        entry = self.reactions.setdefault(int(msg["id"]), {}).setdefault(key, (emoji, []))
        if user_id in entry[1]:
            return False
        entry[1].append(user_id)
        self.dispatch_reaction("MESSAGE_REACTION_ADD", channel, msg, user_id, emoji)
        return True

    def remove_reaction(self, channel: SimChannel, msg: Payload, user_id: int, emoji_text: str) -> bool:
        emoji, key = parse_emoji(emoji_text)
        entry = self.reactions.get(int(msg["id"]), {}).get(key)
        if entry is None or user_id not in entry[1]:
            return False
        entry[1].remove(user_id)
        self.dispatch_reaction("MESSAGE_REACTION_REMOVE", channel, msg, user_id, emoji)
        return True

    def dm_channel(self, user_id: int) -> SimChannel:
        if user_id not in self.users:
            raise form_error("recipient_id", "NUMBER_TYPE_COERCE", "Unknown user")
        cid = self.dm_channels.get(user_id)
        if cid is None:
            cid = self.snowflake()
            self.channels[cid] = SimChannel(id=cid, name="", type=1, recipient_id=user_id)
            self.dm_channels[user_id] = cid
        return self.channels[cid]

    def delete_message(self, msg: Payload) -> None:
        mid = int(msg["id"])
        self.messages.pop(mid, None)
        self.reactions.pop(mid, None)
        log_ids = self.channel_log.get(int(msg["channel_id"]), [])
        if mid in log_ids:
            log_ids.remove(mid)
        if self.gateway is None or msg["flags"] & 64:
            return
        data = {"id": msg["id"], "channel_id": msg["channel_id"]}
        if msg.get("guild_id"):
            data["guild_id"] = msg["guild_id"]
        self.gateway.dispatch("MESSAGE_DELETE", data, GUILD_MESSAGES if msg.get("guild_id") else DIRECT_MESSAGES)


def parse_emoji(text: str) -> tuple[Payload, str]:
    """(emoji object, key) from ``👍``, ``name:id`` or ``<:name:id>``."""
    text = text.strip("<>")
    if text.startswith("a:"):
        text = text[2:]
    if ":" in text:
        name, _, eid = text.rpartition(":")
        name = name.lstrip(":")
        return {"id": eid, "name": name, "animated": False}, f"{name}:{eid}"
    return {"id": None, "name": text}, text


def discord_dm_permissions() -> int:
    from ._state import permission_value

    names = ("view_channel", "send_messages", "embed_links", "attach_files", "read_message_history", "add_reactions")
    value = 0
    for name in names:
        value |= permission_value(name)
    return value


def _parse(payload: Payload) -> list[str]:
    am = payload.get("allowed_mentions")
    if am is None:
        return ["users", "roles", "everyone"]
    return list(am.get("parse") or [])


def _content_type(filename: str) -> str:
    lower = filename.lower()
    for ext, ctype in ((".png", "image/png"), (".jpg", "image/jpeg"), (".jpeg", "image/jpeg"), (".gif", "image/gif"),
                       (".txt", "text/plain; charset=utf-8"), (".json", "application/json"), (".csv", "text/csv")):
        if lower.endswith(ext):
            return ctype
    return "application/octet-stream"


def number_components(components: list[Payload]) -> list[Payload]:
    """A copy of a message's components as Discord renders them: an ``id`` on each (the sender's, else the
    next free one counting from 1 depth-first, the docs' "sequential ids"), and a unicode emoji without the
    ``"id": null`` a client may send (Discord answers ``{"name": ...}``; ids are snowflake strings)."""
    result = copy.deepcopy(components)
    taken: set[int] = set()
    pending: list[Payload] = []

    def walk(items: list[Any]) -> None:
        for item in items:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("id"), int):
                taken.add(item["id"])
            else:
                pending.append(item)
            for holder in [item, *(o for o in item.get("options") or [] if isinstance(o, dict))]:
                emoji = holder.get("emoji")
                if isinstance(emoji, dict):
                    if emoji.get("id") is None:
                        emoji.pop("id", None)
                    else:
                        emoji["id"] = str(emoji["id"])
            for key in ("components", "accessory"):
                child = item.get(key)
                walk(child if isinstance(child, list) else [child])

    walk(result)
    free = (n for n in itertools.count(1) if n not in taken)
    for item in pending:
        item["id"] = next(free)
    return result
