"""Scheduled events in the control API: moderators create, start, end and cancel them; members subscribe."""

from __future__ import annotations

import logging
from datetime import datetime

from ._gateway import GUILD_SCHEDULED_EVENTS, Gateway
from ._state import ACTIVE, CANCELED, COMPLETED, SCHEDULED, SimGuild, SimScheduledEvent
from ._world import World

log = logging.getLogger(__name__)

# The only status changes Discord allows; COMPLETED and CANCELED are final.
TRANSITIONS = {(SCHEDULED, ACTIVE), (ACTIVE, COMPLETED), (SCHEDULED, CANCELED)}


class ScheduledEventControl:
    """Mixed into DiscordSimulator: the GUILD_SCHEDULED_EVENT_* events a guild's moderators and members cause."""

    world: World
    gateway: Gateway

    def create_scheduled_event(
        self, guild_id: int, name: str, start: datetime, *, end: datetime | None = None,
        channel_id: int | None = None, location: str | None = None, description: str | None = None,
        creator_id: int | None = None,
    ) -> SimScheduledEvent:
        """A scheduled event in a voice or stage channel (``channel_id``) or elsewhere (``location``, which
        Discord requires with an ``end``); ``start``/``end`` are aware datetimes. GUILD_SCHEDULED_EVENT_CREATE."""
        guild = self.world.guilds[guild_id]
        if (channel_id is None) == (location is None):
            raise ValueError("give either channel_id (a voice or stage channel) or location (an external event)")
        if channel_id is not None:
            channel = guild.channels.get(channel_id)
            if channel is None or channel.type not in (2, 13):
                raise ValueError(f"channel {channel_id} is not a voice or stage channel of guild {guild_id}")
            entity_type = 1 if channel.type == 13 else 2
        else:
            if end is None:
                raise ValueError("an external event needs an end time, as Discord requires")
            if not 1 <= len(location or "") <= 100:
                raise ValueError("location must be 1-100 characters")
            entity_type = 3
        if not 1 <= len(name) <= 100:
            raise ValueError("name must be 1-100 characters")
        if end is not None and end <= start:
            raise ValueError("the end must come after the start")
        event = SimScheduledEvent(
            self.world.snowflake(), guild_id, name, creator_id if creator_id is not None else guild.owner_id,
            start, entity_type, end=end, channel_id=channel_id, location=location, description=description,
        )
        guild.scheduled_events[event.id] = event
        self._event_dispatch("GUILD_SCHEDULED_EVENT_CREATE", event)
        return event

    def start_scheduled_event(self, guild_id: int, event_id: int) -> None:
        """SCHEDULED -> ACTIVE (GUILD_SCHEDULED_EVENT_UPDATE)."""
        self._set_status(guild_id, event_id, ACTIVE)

    def end_scheduled_event(self, guild_id: int, event_id: int) -> None:
        """ACTIVE -> COMPLETED (GUILD_SCHEDULED_EVENT_UPDATE); the event is then no longer listed."""
        self._set_status(guild_id, event_id, COMPLETED)

    def cancel_scheduled_event(self, guild_id: int, event_id: int) -> None:
        """SCHEDULED -> CANCELED (GUILD_SCHEDULED_EVENT_UPDATE); the event is then no longer listed."""
        self._set_status(guild_id, event_id, CANCELED)

    def delete_scheduled_event(self, guild_id: int, event_id: int) -> None:
        """GUILD_SCHEDULED_EVENT_DELETE, with the event as it was."""
        guild = self.world.guilds[guild_id]
        event = self._event(guild, event_id)
        del guild.scheduled_events[event.id]
        self._event_dispatch("GUILD_SCHEDULED_EVENT_DELETE", event)

    def subscribe_scheduled_event(self, guild_id: int, event_id: int, user_id: int) -> None:
        """A member clicks "Interested": GUILD_SCHEDULED_EVENT_USER_ADD."""
        guild = self.world.guilds[guild_id]
        event = self._event(guild, event_id)
        if user_id not in guild.members:
            raise ValueError(f"user {user_id} is not a member of guild {guild_id}")
        if user_id not in event.subscribers:
            event.subscribers.append(user_id)
            self._user_dispatch("GUILD_SCHEDULED_EVENT_USER_ADD", event, user_id)

    def unsubscribe_scheduled_event(self, guild_id: int, event_id: int, user_id: int) -> None:
        """A member is no longer interested: GUILD_SCHEDULED_EVENT_USER_REMOVE."""
        event = self._event(self.world.guilds[guild_id], event_id)
        if user_id in event.subscribers:
            event.subscribers.remove(user_id)
            self._user_dispatch("GUILD_SCHEDULED_EVENT_USER_REMOVE", event, user_id)

    def _set_status(self, guild_id: int, event_id: int, status: int) -> None:
        event = self._event(self.world.guilds[guild_id], event_id)
        if (event.status, status) not in TRANSITIONS:
            raise ValueError(f"Discord does not allow status {event.status} -> {status}")
        event.status = status
        self._event_dispatch("GUILD_SCHEDULED_EVENT_UPDATE", event)

    @staticmethod
    def _event(guild: SimGuild, event_id: int) -> SimScheduledEvent:
        event = guild.scheduled_events.get(event_id)
        if event is None:
            raise ValueError(f"no scheduled event {event_id} in guild {guild.id}")
        return event

    def _event_dispatch(self, name: str, event: SimScheduledEvent) -> None:
        self.gateway.dispatch(name, self.world.scheduled_event_payload(event), GUILD_SCHEDULED_EVENTS)

    def _user_dispatch(self, name: str, event: SimScheduledEvent, user_id: int) -> None:
        data = {"guild_scheduled_event_id": str(event.id), "user_id": str(user_id), "guild_id": str(event.guild_id)}
        self.gateway.dispatch(name, data, GUILD_SCHEDULED_EVENTS)
