"""Settings of the bot: read once from the environment (and `.env`), validated, never half-loaded."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
PRIVILEGED_INTENTS = ("members", "message_content", "presences")
DEFAULT_DATABASE_PATH = "data/achievements.db"


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line meant for the operator."""


@dataclass(frozen=True, slots=True)
class Settings:
    discord_token: str
    database_path: Path = Path(DEFAULT_DATABASE_PATH)
    log_level: str = "INFO"
    dev_guild_id: int | None = None
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    discord_cdn_url: str | None = None
    privileged_intents: frozenset[str] = field(default_factory=lambda: frozenset({"members"}))


def _parse_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not parsed.netloc:
        raise SettingsError(f"{name} must be a {' or '.join(schemes)} URL, got {value!r}")
    return value.rstrip("/")


def _parse_intents(value: str) -> frozenset[str]:
    names = {part.strip().lower() for part in value.split(",") if part.strip()}
    if names == {"none"}:
        return frozenset()
    unknown = sorted(names - set(PRIVILEGED_INTENTS))
    if unknown:
        raise SettingsError(
            f"PRIVILEGED_INTENTS has unknown intent(s) {', '.join(unknown)}; "
            f"use a comma-separated list of {', '.join(PRIVILEGED_INTENTS)}, or 'none'"
        )
    return frozenset(names)


def load_settings(env: Mapping[str, str] | None = None, *, require_token: bool = True) -> Settings:
    """Build Settings from `env` (default: the process environment after loading `.env`)."""
    if env is None:
        from dotenv import find_dotenv, load_dotenv

        # The operator's .env is in the working directory, wherever the package is installed.
        load_dotenv(find_dotenv(usecwd=True), override=False)
        env = os.environ

    def get(name: str) -> str:
        return env.get(name, "").strip()

    token = get("DISCORD_TOKEN")
    if require_token and not token:
        raise SettingsError(
            "DISCORD_TOKEN is not set: put your bot token in .env (see .env.example) "
            "or try the bot without Discord with `python -m bot sandbox`"
        )

    log_level = (get("LOG_LEVEL") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {get('LOG_LEVEL')!r}")

    dev_guild_id: int | None = None
    if raw := get("DEV_GUILD_ID"):
        if not raw.isdigit() or int(raw) <= 0:
            raise SettingsError(f"DEV_GUILD_ID must be a numeric guild id, got {raw!r}")
        dev_guild_id = int(raw)

    db_path = get("DATABASE_PATH") or DEFAULT_DATABASE_PATH
    if db_path.endswith(("/", "\\")):
        raise SettingsError(f"DATABASE_PATH must name a file, got the directory {db_path!r}")

    api_base = get("DISCORD_API_BASE")
    gateway = get("DISCORD_GATEWAY_URL")
    cdn = get("DISCORD_CDN_URL")
    intents_raw = get("PRIVILEGED_INTENTS")
    return Settings(
        discord_token=token,
        database_path=Path(db_path),
        log_level=log_level,
        dev_guild_id=dev_guild_id,
        discord_api_base=_parse_url("DISCORD_API_BASE", api_base, ("http", "https")) if api_base else None,
        discord_gateway_url=_parse_url("DISCORD_GATEWAY_URL", gateway, ("ws", "wss")) if gateway else None,
        discord_cdn_url=_parse_url("DISCORD_CDN_URL", cdn, ("http", "https")) if cdn else None,
        privileged_intents=_parse_intents(intents_raw) if intents_raw else frozenset({"members"}),
    )
