"""Interactions: slash commands, autocomplete and component clicks, their callbacks and follow-up webhooks."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._http import Call, Result, Router
from ._rest import check_upload_size
from ._state import SimGuild, base_permissions, channel_permissions
from ._validation import ApiError, form_error, validate_message

if TYPE_CHECKING:
    from ._world import World

log = logging.getLogger(__name__)

Payload = dict[str, Any]
EPHEMERAL = 64
LOADING = 128
ADMINISTRATOR = 1 << 3


class CommandNotAvailable(Exception):
    """The member could not invoke this command in Discord (unknown, or hidden by its default permissions)."""


@dataclass
class SimInteraction:
    """An interaction the simulator sent to the bot, and everything the bot answered to it."""

    id: int
    token: str
    type: int
    payload: Payload
    world: World
    created: float
    source_message_id: int | None = None
    trigger: SimInteraction | None = None  # a modal submission's: the interaction that opened the modal
    callbacks: list[Payload] = field(default_factory=list)
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    responded: asyncio.Future[Payload] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def user_id(self) -> int:
        user = self.payload.get("member", {}).get("user") or self.payload["user"]
        return int(user["id"])

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel_id"])

    async def response(self, timeout: float = 5) -> Payload:  # noqa: ASYNC109
        """The interaction callback body the bot POSTed: ``{"type": ..., "data": {...}}``."""
        assert self.responded is not None
        return await asyncio.wait_for(asyncio.shield(self.responded), timeout)

    @property
    def ephemeral(self) -> bool:
        msg = self.original_message
        return bool(msg and msg["flags"] & EPHEMERAL)

    @property
    def original_message(self) -> Payload | None:
        """The message the response created or updated, as it looks now (after edits)."""
        mid = self.original_message_id or (self.source_message_id if self._updates_source else None)
        msg = self.world.messages.get(mid) if mid else None
        return self.world.public(msg) | {"allowed_mentions": msg.get("allowed_mentions")} if msg else None

    @property
    def _updates_source(self) -> bool:
        return bool(self.callbacks) and self.callbacks[0].get("type") in (6, 7)

    @property
    def followups(self) -> list[Payload]:
        return [self.world.public(self.world.messages[i]) for i in self.followup_ids if i in self.world.messages]

    async def message(self, timeout: float = 5) -> Payload:  # noqa: ASYNC109
        """The visible result: the original response, once a deferred one has been edited or followed up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self.response(timeout)
        while True:
            msg = self.original_message
            done = msg is not None and not msg["flags"] & LOADING
            deferred_update = self.callbacks[0].get("type") == 6
            if done and (not deferred_update or (msg is not None and msg.get("edited_timestamp"))):
                return msg  # type: ignore[return-value]
            self.changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"interaction {self.id}: no visible message after {timeout}s")
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                continue


def resolve_target(value: Any) -> int:
    if isinstance(value, dict):
        return int(value["id"])
    return int(getattr(value, "id", value))


class OptionBuilder:
    """Turns ``name=value`` keyword arguments into Discord's option tree and resolved data."""

    def __init__(self, world: World, guild: SimGuild | None, channel_id: int, user_id: int) -> None:
        self.world = world
        self.guild = guild
        self.channel_id = channel_id
        self.user_id = user_id
        self.resolved: dict[str, dict[str, Payload]] = {}

    def build(
        self, schema: list[Payload], path: list[str], values: dict[str, Any], focused: str | None
    ) -> list[Payload]:
        if path:
            sub = next((o for o in schema if o.get("type") in (1, 2) and o["name"] == path[0]), None)
            if sub is None:
                raise CommandNotAvailable(f"no subcommand {path[0]!r}; have {[o['name'] for o in schema]}")
            inner = self.build(sub.get("options") or [], path[1:], values, focused)
            return [{"type": sub["type"], "name": sub["name"], "options": inner}]
        if any(o.get("type") in (1, 2) for o in schema):
            raise CommandNotAvailable("this command needs a subcommand name")
        by_name = {o["name"]: o for o in schema}
        options: list[Payload] = []
        for name, value in values.items():
            opt = by_name.get(name)
            if opt is None:
                raise ValueError(f"unknown option {name!r}; the command has {sorted(by_name)}")
            if name == focused:
                options.append({"type": opt["type"], "name": name, "value": str(value), "focused": True})
            else:
                options.append({"type": opt["type"], "name": name, "value": self._value(opt, value)})
        if focused is None:
            missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
            if missing:
                raise ValueError(f"missing required option(s) {missing}")
        return options

    def _value(self, opt: Payload, value: Any) -> Any:
        kind = opt["type"]
        if kind == 3:
            value = str(value)
            if not opt.get("min_length", 0) <= len(value) <= opt.get("max_length", 6000):
                raise ValueError(f"option {opt['name']!r}: length out of range")
        elif kind == 4:
            value = int(value)
        elif kind == 10:
            value = float(value)
        elif kind == 5:
            value = bool(value)
        elif kind in (6, 7, 8, 9):
            return self._resolve(opt, resolve_target(value))
        elif kind == 11:
            return self._attachment(value)
        if kind in (4, 10):
            low, high = opt.get("min_value"), opt.get("max_value")
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError(f"option {opt['name']!r}: {value} is outside [{low}, {high}]")
        choices = opt.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise ValueError(f"option {opt['name']!r}: {value!r} is not one of the choices")
        return value

    def _resolve(self, opt: Payload, target: int) -> str:
        world, guild = self.world, self.guild
        kind = opt["type"]
        if kind in (6, 9) and target in world.users:
            self.resolved.setdefault("users", {})[str(target)] = world.users[target].payload()
            if guild is not None and target in guild.members:
                channel = world.channels[self.channel_id]
                perms = channel_permissions(guild, channel, target)
                member = world.member_payload(guild, target, with_user=False, permissions=perms)
                self.resolved.setdefault("members", {})[str(target)] = member
            return str(target)
        if kind in (8, 9) and guild is not None and target in guild.roles:
            self.resolved.setdefault("roles", {})[str(target)] = guild.roles[target].payload()
            return str(target)
        if kind == 7 and target in world.channels:
            channel = world.channels[target]
            types = opt.get("channel_types")
            if types and channel.type not in types:
                raise ValueError(f"option {opt['name']!r}: channel type {channel.type} not allowed")
            perms = channel_permissions(guild, channel, self.user_id) if guild is not None else 0
            data = channel.payload(world.users) | {"permissions": str(perms)}
            self.resolved.setdefault("channels", {})[str(target)] = data
            return str(target)
        raise ValueError(f"option {opt['name']!r}: nothing with id {target} to resolve")

    def _attachment(self, value: Any) -> str:
        filename, data = value if isinstance(value, tuple) else ("file.txt", bytes(value))
        channel = self.world.channels[self.channel_id]
        attachment = self.world.make_attachments(channel, {}, [("files[0]", filename, data)], [])[0]
        attachment["ephemeral"] = True  # as Discord marks files uploaded to a command option
        self.resolved.setdefault("attachments", {})[attachment["id"]] = attachment
        return str(attachment["id"])


class InteractionRoutes:
    """The callback and webhook routes the bot answers interactions with."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.interactions: dict[str, SimInteraction] = {}
        self.response_deadline = 3.0

    def register(self, r: Router) -> None:
        r.add("POST", "/interactions/{id}/{token}/callback", self.callback, auth=False)
        r.add("POST", "/webhooks/{app}/{token}", self.followup, auth=False)
        r.add("GET", "/webhooks/{app}/{token}/messages/{message}", self.get_webhook_message, auth=False)
        r.add("PATCH", "/webhooks/{app}/{token}/messages/{message}", self.edit_webhook_message, auth=False)
        r.add("DELETE", "/webhooks/{app}/{token}/messages/{message}", self.delete_webhook_message, auth=False)

    def new(self, kind: int, payload: Payload, source_message_id: int | None = None) -> SimInteraction:
        iid = self.world.snowflake()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        loop = asyncio.get_running_loop()
        payload |= {"id": str(iid), "token": token, "type": kind, "version": 1,
                    "application_id": str(self.world.application_id)}
        ix = SimInteraction(iid, token, kind, payload, self.world, loop.time(), source_message_id)
        ix.responded = loop.create_future()
        self.interactions[token] = ix
        return ix

    def _interaction(self, token: str, *, by_id: str | None = None) -> SimInteraction:
        ix = self.interactions.get(token)
        if ix is None or (by_id is not None and str(ix.id) != by_id):
            raise ApiError(404, 10062, "Unknown interaction")
        return ix

    async def callback(self, call: Call) -> Result:
        ix = self._interaction(call.args[1], by_id=call.args[0])
        now = asyncio.get_running_loop().time()
        if now - ix.created > self.response_deadline:
            raise ApiError(404, 10062, "Unknown interaction")
        if ix.callbacks:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        body = call.body
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        allowed = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}[ix.type]
        if kind not in allowed:
            message = f"Interaction response type {kind} is not valid here"
            raise form_error("type", "INTERACTION_RESPONSE_TYPE_INVALID", message)
        if kind in (4, 7):
            validate_message(data, has_files=bool(call.files), editing=kind == 7)
            check_upload_size(call.files)
        resource: Payload = {"type": kind}
        world = self.world
        if kind in (4, 5):
            flags = int(data.get("flags") or 0) & (EPHEMERAL | 4 | 4096)
            if kind == 5:
                flags |= LOADING
                data = {}
            msg = world.create_message(
                world.channels[ix.channel_id], world.bot_user, data | {"flags": flags}, call.files,
                webhook_id=world.application_id, interaction=self._metadata(ix),
                message_type=20 if ix.type == 2 else 0,
            )
            ix.original_message_id = int(msg["id"])
            world.dispatch_message("MESSAGE_CREATE", msg)
            if kind == 4:
                # A deferral's "thinking" placeholder is not handed back as a message resource: Discord's
                # answer to type 5 says only that the response is loading (response_message_loading).
                resource["message"] = world.public(msg)
        elif kind == 7 and ix.source_message_id in world.messages:
            msg = world.messages[ix.source_message_id]
            world.edit_message(msg, data, call.files)
            world.dispatch_message("MESSAGE_UPDATE", msg)
            resource["message"] = world.public(msg)
        ix.callbacks.append(body)
        assert ix.responded is not None
        if not ix.responded.done():
            ix.responded.set_result(body)
        ix.changed.set()
        original = ix.original_message
        answer: Payload = {"id": str(ix.id), "type": ix.type}
        if original is not None:  # the docs' response_message_* fields describe a message, when there is one
            answer |= {
                "response_message_id": original["id"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(original["flags"] & EPHEMERAL),
            }
        return 200, {"interaction": answer, "resource": resource}

    def _metadata(self, ix: SimInteraction) -> Payload:
        user = ix.payload.get("member", {}).get("user") or ix.payload.get("user")
        data: Payload = {
            "id": str(ix.id),
            "type": ix.type,
            "user": user,
            "authorizing_integration_owners": ix.payload.get("authorizing_integration_owners", {}),
        }
        if ix.type == 2:
            data["name"] = ix.payload["data"]["name"]
        if ix.source_message_id is not None and ix.type == 3:
            data["interacted_message_id"] = str(ix.source_message_id)
        if ix.trigger is not None:
            data["triggering_interaction_metadata"] = self._metadata(ix.trigger)
        return data

    def _webhook(self, call: Call) -> SimInteraction:
        if call.args[0] != str(self.world.application_id):  # a non-numeric id is just an unknown webhook
            raise ApiError(404, 10015, "Unknown Webhook")
        ix = self.interactions.get(call.args[1])
        if ix is None:
            raise ApiError(404, 10015, "Unknown Webhook")
        if not ix.callbacks:
            raise ApiError(400, 40060, "Interaction has not been acknowledged.")
        return ix

    async def followup(self, call: Call) -> Result:
        ix = self._webhook(call)
        world = self.world
        validate_message(call.body, has_files=bool(call.files))
        check_upload_size(call.files)
        original = world.messages.get(ix.original_message_id or 0)
        if original is not None and original["flags"] & LOADING:
            # Like Discord: the first follow-up after a deferral replaces the "thinking" message.
            world.edit_message(original, call.body, call.files)
            original["flags"] &= ~LOADING
            world.dispatch_message("MESSAGE_UPDATE", original)
            ix.changed.set()
            return self._webhook_answer(call, original)
        flags = int(call.body.get("flags") or 0) & (EPHEMERAL | 4 | 4096)
        msg = world.create_message(
            world.channels[ix.channel_id], world.bot_user, call.body | {"flags": flags}, call.files,
            webhook_id=world.application_id, interaction=self._metadata(ix), message_type=0,
        )
        ix.followup_ids.append(int(msg["id"]))
        world.dispatch_message("MESSAGE_CREATE", msg)
        ix.changed.set()
        return self._webhook_answer(call, msg)

    def _webhook_answer(self, call: Call, msg: Payload) -> Result:
        if call.query("wait") in ("true", "1", "True"):
            return 200, self.world.public(msg)
        return 204, None

    def _webhook_message(self, call: Call) -> tuple[SimInteraction, Payload]:
        ix = self._webhook(call)
        ref = call.args[2]
        if ref == "@original":
            mid = ix.original_message_id or (ix.source_message_id if ix._updates_source else None)
        else:
            mid = int(ref)
            if mid not in ix.followup_ids and mid != ix.original_message_id:
                raise ApiError(404, 10008, "Unknown Message")
        msg = self.world.messages.get(mid or 0)
        if msg is None:
            raise ApiError(404, 10008, "Unknown Message")
        return ix, msg

    async def get_webhook_message(self, call: Call) -> Result:
        _, msg = self._webhook_message(call)
        return 200, self.world.public(msg)

    async def edit_webhook_message(self, call: Call) -> Result:
        ix, msg = self._webhook_message(call)
        validate_message(call.body, has_files=bool(call.files), editing=True)
        check_upload_size(call.files)
        self.world.edit_message(msg, call.body, call.files)
        msg["flags"] &= ~LOADING
        self.world.dispatch_message("MESSAGE_UPDATE", msg)
        ix.changed.set()
        return 200, self.world.public(msg)

    async def delete_webhook_message(self, call: Call) -> Result:
        ix, msg = self._webhook_message(call)
        self.world.delete_message(msg)
        ix.changed.set()
        return 204, None


def command_allowed(guild: SimGuild | None, user_id: int, command: Payload) -> bool:
    """Discord hides a command from members lacking its default_member_permissions."""
    required = command.get("default_member_permissions")
    if guild is None or required is None:
        return True
    perms = base_permissions(guild, user_id)
    if perms & ADMINISTRATOR:
        return True
    needed = int(required)
    return needed != 0 and perms & needed == needed
