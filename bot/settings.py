"""Settings of the bot: read once from the environment (and `.env`), validated, never half-loaded."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

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
    # PostgreSQL instead of the SQLite file at database_path (opened by bot.storage).
    database_url: str | None = None
    # None: as many shards as Discord recommends, all in this process.
    shard_count: int | None = None
    # None: every shard of shard_count. A subset needs PostgreSQL (checked when loading).
    shard_ids: tuple[int, ...] | None = None
    # A shard already owned by another process: wait for it to go (True) or stop at start (False).
    shard_wait: bool = False

    @property
    def runs_every_shard(self) -> bool:
        return self.shard_ids is None or self.shard_count is None or len(self.shard_ids) == self.shard_count


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


def _parse_database_url(value: str) -> str:
    """Only the URL's shape: whether the server answers is the storage's business at start."""
    parsed = urlparse(value)
    # Never echo a password in an error line that ends up in logs.
    shown = value.replace(f":{parsed.password}@", ":***@") if parsed.password else value
    if parsed.scheme not in ("postgresql", "postgres"):
        raise SettingsError(
            f"DATABASE_URL must be a postgresql:// URL such as postgresql://bot:secret@db:5432/achievements, "
            f"got {shown!r} (leave it empty to use the SQLite file at DATABASE_PATH)"
        )
    try:
        port = parsed.port
    except ValueError:
        port = 0
    if port == 0:
        raise SettingsError(f"DATABASE_URL has an invalid port (1-65535): {shown!r}")
    if not (parsed.hostname or parse_qs(parsed.query).get("host")):
        raise SettingsError(f"DATABASE_URL names no server: {shown!r} (postgresql://user:pass@host:port/database)")
    if not parsed.path.strip("/"):
        raise SettingsError(f"DATABASE_URL names no database: {shown!r} (postgresql://user:pass@host:port/database)")
    return value


def _parse_shard_count(value: str) -> int:
    if not value.isdigit():
        raise SettingsError(f"SHARD_COUNT must be a whole number of shards (1 or more), got {value!r}")
    count = int(value)
    if count < 1:
        raise SettingsError(f"SHARD_COUNT must be at least 1, got {value!r}")
    return count


def _parse_shard_ids(value: str, count: int) -> tuple[int, ...]:
    """`0,1`, `0-3` or a mix such as `0-3,8`: sorted, each once, each below `count`."""
    ids: list[int] = []
    for part in (p.strip() for p in value.split(",")):
        low, dash, high = (s.strip() for s in part.partition("-"))
        if not low.isdigit() or (dash and not high.isdigit()):
            raise SettingsError(
                f"SHARD_IDS must be shard numbers or ranges such as 0,1 or 0-3, got {value!r}"
            )
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise SettingsError(f"SHARD_IDS has the range {part!r} backwards; write {last}-{first}")
        ids.extend(range(first, last + 1))
    if duplicate := next((i for i in ids if ids.count(i) > 1), None):
        raise SettingsError(f"SHARD_IDS names shard {duplicate} twice: {value!r}")
    if too_big := [i for i in ids if i >= count]:
        raise SettingsError(
            f"SHARD_IDS names shard {too_big[0]} but SHARD_COUNT is {count}: shards are numbered 0 to {count - 1}"
        )
    return tuple(sorted(ids))


def _parse_flag(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1 or 0 (or true/false, yes/no), got {value!r}")


def _parse_shards(
    count_raw: str, ids_raw: str, database_url: str | None
) -> tuple[int | None, tuple[int, ...] | None]:
    if ids_raw and not count_raw:
        raise SettingsError(
            f"SHARD_IDS={ids_raw} needs SHARD_COUNT, the total number of shards across every process"
        )
    count = _parse_shard_count(count_raw) if count_raw else None
    if count is None:
        return None, None
    ids = _parse_shard_ids(ids_raw, count) if ids_raw else None
    if ids is not None and len(ids) < count and database_url is None:
        # Each process would keep its own SQLite file: a member's points would depend on which process
        # answered, and nothing would stop two processes from owning one shard.
        raise SettingsError(
            f"SHARD_IDS={ids_raw} runs only some of the {count} shards, which needs a database the shard "
            f"processes share: set DATABASE_URL to a postgresql:// URL, or leave SHARD_IDS empty to run "
            f"every shard in this process"
        )
    return count, ids


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
    database_url = _parse_database_url(url) if (url := get("DATABASE_URL")) else None
    shard_count, shard_ids = _parse_shards(get("SHARD_COUNT"), get("SHARD_IDS"), database_url)
    return Settings(
        discord_token=token,
        database_path=Path(db_path),
        log_level=log_level,
        dev_guild_id=dev_guild_id,
        discord_api_base=_parse_url("DISCORD_API_BASE", api_base, ("http", "https")) if api_base else None,
        discord_gateway_url=_parse_url("DISCORD_GATEWAY_URL", gateway, ("ws", "wss")) if gateway else None,
        discord_cdn_url=_parse_url("DISCORD_CDN_URL", cdn, ("http", "https")) if cdn else None,
        privileged_intents=_parse_intents(intents_raw) if intents_raw else frozenset({"members"}),
        database_url=database_url,
        shard_count=shard_count,
        shard_ids=shard_ids,
        shard_wait=_parse_flag("SHARD_WAIT", wait) if (wait := get("SHARD_WAIT")) else False,
    )
