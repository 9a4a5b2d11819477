"""The interaction side of the control API: members running commands, clicking, picking, submitting modals."""

from __future__ import annotations

import logging
from typing import Any

import discord

from ._gateway import GUILDS, Gateway
from ._interactions import (
    CommandNotAvailable,
    InteractionRoutes,
    OptionBuilder,
    SimInteraction,
    command_allowed,
    resolve_target,
)
from ._state import channel_permissions, permission_value
from ._world import World

log = logging.getLogger(__name__)

Payload = dict[str, Any]
USE_APPLICATION_COMMANDS = permission_value("use_application_commands")


class InteractionControl:
    """Mixed into DiscordSimulator: builds INTERACTION_CREATE payloads as the Discord client would."""

    world: World
    gateway: Gateway
    interaction_routes: InteractionRoutes
    def _interaction_base(self, guild_id: int | None, channel_id: int, user_id: int) -> Payload:
        world = self.world
        if not self.gateway.active_sessions:
            raise RuntimeError("no bot is connected to the simulator's gateway")
        channel = world.channels[channel_id]
        base: Payload = {
            "channel_id": str(channel_id),
            "locale": world.users[user_id].locale,
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            "app_permissions": str(world.bot_permissions(channel)),
        }
        if guild_id is None:
            owners = {"1": str(user_id)}
            return base | {"user": world.users[user_id].payload(), "context": 1,
                           "channel": channel.payload(world.users), "authorizing_integration_owners": owners}
        guild = world.guilds[guild_id]
        perms = channel_permissions(guild, channel, user_id)
        if not perms & USE_APPLICATION_COMMANDS:
            raise CommandNotAvailable(f"user {user_id} cannot use application commands in #{channel.name}")
        return base | {
            "guild_id": str(guild_id),
            "guild": {"id": str(guild_id), "locale": guild.preferred_locale, "features": []},
            "guild_locale": guild.preferred_locale,
            "channel": channel.payload() | {"permissions": str(perms)},
            "member": world.member_payload(guild, user_id, permissions=perms),
            "authorizing_integration_owners": {"0": str(guild_id)},
            "context": 0,
        }

    def set_locale(self, user_id: int, locale: str) -> None:
        """The language of the user's Discord client (default ``en-US``): the ``locale`` of their next
        interactions. One of Discord's locales (``fr``, ``pt-BR``, ...)."""
        self.world.users[user_id].locale = discord.Locale(locale).value

    def set_guild_locale(self, guild_id: int, locale: str) -> None:
        """The guild's preferred locale (Community settings): ``guild_locale`` of interactions, GUILD_UPDATE."""
        guild = self.world.guilds[guild_id]
        guild.preferred_locale = discord.Locale(locale).value
        self.gateway.dispatch("GUILD_UPDATE", guild.base_payload(), GUILDS)

    def _find_command(self, guild_id: int | None, name: str, kind: int) -> Payload:
        for scope in ((guild_id, None) if guild_id is not None else (None,)):
            for cmd in self.world.commands.get(scope, []):
                if cmd["name"] == name and cmd["type"] == kind:
                    return cmd
        raise CommandNotAvailable(f"no synced command {name!r} (type {kind}) for guild {guild_id}")

    def _command_interaction(
        self, guild_id: int | None, channel_id: int, user_id: int, command: str, options: dict[str, Any],
        focused: str | None,
    ) -> SimInteraction:
        parts = command.split()
        cmd = self._find_command(guild_id, parts[0], 1)
        guild = self.world.guilds.get(guild_id or 0)
        if not command_allowed(guild, user_id, cmd):
            raise CommandNotAvailable(f"/{command} is hidden from user {user_id} by its default permissions")
        base = self._interaction_base(guild_id, channel_id, user_id)
        builder = OptionBuilder(self.world, guild, channel_id, user_id)
        data: Payload = {"id": cmd["id"], "name": cmd["name"], "type": 1,
                         "options": builder.build(cmd["options"], parts[1:], options, focused)}
        if builder.resolved:
            data["resolved"] = builder.resolved
        if "guild_id" in cmd:
            data["guild_id"] = cmd["guild_id"]
        ix = self.interaction_routes.new(4 if focused else 2, base | {"data": data})
        self.gateway.dispatch("INTERACTION_CREATE", ix.payload)
        return ix

    async def invoke_command(
        self, guild_id: int | None, channel_id: int, user_id: int, command: str, /, **options: Any
    ) -> SimInteraction:
        """A member runs ``/command sub option:value``; users/roles/channels may be ids, dicts or Sim objects."""
        return self._command_interaction(guild_id, channel_id, user_id, command, options, None)

    async def autocomplete(
        self, guild_id: int | None, channel_id: int, user_id: int, command: str, /, *, focused: str,
        value: str = "", timeout: float = 5, **options: Any,  # noqa: ASYNC109
    ) -> list[Payload]:
        """A member types ``value`` into option ``focused``; returns the choices the bot answered."""
        ix = self._command_interaction(guild_id, channel_id, user_id, command, {**options, focused: value}, focused)
        body = await ix.response(timeout)
        return list((body.get("data") or {}).get("choices") or [])

    async def invoke_context_menu(
        self, guild_id: int, channel_id: int, user_id: int, name: str, target: Any, *, message: bool = False
    ) -> SimInteraction:
        """A member picks a user (or, with ``message=True``, a message) context-menu command."""
        cmd = self._find_command(guild_id, name, 3 if message else 2)
        guild = self.world.guilds[guild_id]
        if not command_allowed(guild, user_id, cmd):
            raise CommandNotAvailable(f"{name!r} is hidden from user {user_id} by its default permissions")
        base = self._interaction_base(guild_id, channel_id, user_id)
        target_id = resolve_target(target)
        data: Payload = {"id": cmd["id"], "name": name, "type": cmd["type"], "target_id": str(target_id)}
        if "guild_id" in cmd:
            data["guild_id"] = cmd["guild_id"]
        if message:
            msg = self.world.messages[target_id]
            data["resolved"] = {"messages": {str(target_id): self.world.public(msg)}}
        else:
            builder = OptionBuilder(self.world, guild, channel_id, user_id)
            builder._resolve({"type": 6, "name": "target"}, target_id)
            data["resolved"] = builder.resolved
        ix = self.interaction_routes.new(2, base | {"data": data})
        self.gateway.dispatch("INTERACTION_CREATE", ix.payload)
        return ix

    async def click_button(self, message: Payload | int | str, custom_id: str, user_id: int) -> SimInteraction:
        """A member clicks an enabled button of a message the bot posted."""
        return self._component(message, custom_id, user_id, {2}, None)

    async def select_option(
        self, message: Payload | int | str, custom_id: str, user_id: int, values: list[str]
    ) -> SimInteraction:
        """A member picks ``values`` in a select menu of a message the bot posted."""
        return self._component(message, custom_id, user_id, {3, 5, 6, 7, 8}, values)

    def _component(
        self, message: Payload | int | str, custom_id: str, user_id: int, kinds: set[int], values: list[str] | None
    ) -> SimInteraction:
        mid = int(message["id"]) if isinstance(message, dict) else int(message)
        msg = self.world.messages.get(mid)
        if msg is None:
            raise ValueError(f"no message {mid}")
        if msg["flags"] & 64 and str(user_id) != msg.get("interaction_metadata", {}).get("user", {}).get("id"):
            raise ValueError(f"user {user_id} cannot see ephemeral message {mid}")
        components = [c for row in msg.get("components") or [] for c in row.get("components") or []]
        comp = next((c for c in components if c.get("custom_id") == custom_id), None)
        if comp is None or comp.get("type") not in kinds or comp.get("disabled"):
            have = [c.get("custom_id") for c in components]
            raise ValueError(f"no enabled component {custom_id!r} on message {mid}; it has {have}")
        channel = self.world.channels[int(msg["channel_id"])]
        base = self._interaction_base(channel.guild_id, channel.id, user_id)
        data: Payload = {"custom_id": custom_id, "component_type": comp["type"]}
        if values is not None:
            data["values"] = values
        payload = base | {"data": data, "message": self.world.public(msg)}
        ix = self.interaction_routes.new(3, payload, source_message_id=mid)
        self.gateway.dispatch("INTERACTION_CREATE", ix.payload)
        return ix

    async def submit_modal(self, ix: SimInteraction, values: dict[str, Any]) -> SimInteraction:
        """The member who got the modal ``ix`` answered with fills it in (``custom_id: value``) and submits."""
        body = await ix.response(0.5)
        if body.get("type") != 9:
            raise ValueError(f"interaction {ix.id} answered with type {body.get('type')}, not a modal")
        modal = body["data"]
        unused = set(values)

        def fill(component: Payload) -> Payload:
            kind, custom_id = component["type"], str(component.get("custom_id"))
            if kind == 1:
                return {"type": 1, "components": [fill(c) for c in component.get("components") or []]}
            if kind == 18:
                return {"type": 18, "component": fill(component["component"])}
            unused.discard(custom_id)
            if kind == 4:
                value = values.get(custom_id, component.get("value") or "")
                if component.get("required", True) and not value:
                    raise ValueError(f"modal field {custom_id!r} is required")
                return {"type": 4, "custom_id": custom_id, "value": str(value)}
            return {"type": kind, "custom_id": custom_id, "values": list(values.get(custom_id, []))}

        filled = [fill(c) for c in modal.get("components") or []]
        if unused:
            raise ValueError(f"the modal has no field(s) {sorted(unused)}")
        guild_id = int(ix.payload["guild_id"]) if "guild_id" in ix.payload else None
        payload = self._interaction_base(guild_id, ix.channel_id, ix.user_id)
        payload["data"] = {"custom_id": modal["custom_id"], "components": filled}
        if ix.source_message_id is not None and ix.source_message_id in self.world.messages:
            payload["message"] = self.world.public(self.world.messages[ix.source_message_id])
        submitted = self.interaction_routes.new(5, payload, source_message_id=ix.source_message_id)
        submitted.trigger = ix
        self.gateway.dispatch("INTERACTION_CREATE", submitted.payload)
        return submitted

    @property
    def interaction_response_deadline(self) -> float:
        return self.interaction_routes.response_deadline

    @interaction_response_deadline.setter
    def interaction_response_deadline(self, seconds: float) -> None:
        self.interaction_routes.response_deadline = seconds
