"""A local Discord simulator (REST API, gateway, CDN on 127.0.0.1) for end-to-end tests and the sandbox."""

from ._http import RecordedFile, RecordedRequest, ResponseViolation, SpecViolation
from ._interactions import CommandNotAvailable, SimInteraction
from ._simulator import DiscordSimulator
from ._state import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    Overwrite,
    SimChannel,
    SimGuild,
    SimMember,
    SimRole,
    SimUser,
    permission_value,
)

__all__ = [
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "CommandNotAvailable",
    "DiscordSimulator",
    "Overwrite",
    "RecordedFile",
    "RecordedRequest",
    "ResponseViolation",
    "SimChannel",
    "SimGuild",
    "SimInteraction",
    "SimMember",
    "SimRole",
    "SimUser",
    "SpecViolation",
    "permission_value",
]
