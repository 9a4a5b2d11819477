"""Guild settings, tiers and the moderators' audit log."""

from __future__ import annotations

import builtins
import logging
from dataclasses import dataclass
from datetime import date, datetime

from bot.engine.achievements import name_key
from bot.engine.tiers import DEFAULT_TIERS, Tier
from bot.storage.database import Database, Row, Transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GuildSettings:
    guild_id: int
    timezone: str = "UTC"
    announce_channel_id: int | None = None
    anti_spam_cooldown: int = 0
    anti_spam_min_length: int = 0
    cards_enabled: bool = True
    last_rollover_date: date | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    guild_id: int
    actor_id: int
    action: str
    detail: str
    created_at: datetime


# Columns a moderator command may change; anything else is refused before it reaches SQL.
_SETTABLE = ("timezone", "announce_channel_id", "anti_spam_cooldown", "anti_spam_min_length", "cards_enabled")


def _settings(row: Row) -> GuildSettings:
    return GuildSettings(
        guild_id=row["guild_id"],
        timezone=row["timezone"],
        announce_channel_id=row["announce_channel_id"],
        anti_spam_cooldown=row["anti_spam_cooldown"],
        anti_spam_min_length=row["anti_spam_min_length"],
        cards_enabled=bool(row["cards_enabled"]),
        last_rollover_date=date.fromisoformat(row["last_rollover_date"]) if row["last_rollover_date"] else None,
    )


class GuildRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, guild_id: int) -> GuildSettings | None:
        row = await self.db.fetch_one("SELECT * FROM guild_settings WHERE guild_id = ?", guild_id)
        return _settings(row) if row else None

    async def all(self) -> list[GuildSettings]:
        return [_settings(row) for row in await self.db.fetch_all("SELECT * FROM guild_settings ORDER BY guild_id")]

    async def insert(self, tx: Transaction, settings: GuildSettings, now: datetime) -> bool:
        """Create the guild's row inside the caller's transaction; False if it already existed."""
        return await tx.execute(
            "INSERT INTO guild_settings (guild_id, timezone, last_rollover_date, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (guild_id) DO NOTHING",
            settings.guild_id,
            settings.timezone,
            settings.last_rollover_date.isoformat() if settings.last_rollover_date else None,
            now.isoformat(),
        ) == 1

    async def update(self, tx: Transaction, guild_id: int, **changes: object) -> None:
        for column in changes:
            if column not in _SETTABLE:
                raise ValueError(f"not a guild setting: {column}")
        for column, value in changes.items():
            # Column names come from the fixed _SETTABLE list above, never from user input. Flags are stored
            # as integers in both backends.
            await tx.execute(
                f"UPDATE guild_settings SET {column} = ? WHERE guild_id = ?",  # noqa: S608
                int(value) if isinstance(value, bool) else value, guild_id,
            )

    async def set_last_rollover(self, tx: Transaction, guild_id: int, day: date) -> None:
        await tx.execute(
            "UPDATE guild_settings SET last_rollover_date = ? WHERE guild_id = ?", day.isoformat(), guild_id
        )


class TierRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, guild_id: int) -> list[Tier]:
        rows = await self.db.fetch_all(
            "SELECT name, points, badge, role_id FROM tiers WHERE guild_id = ? ORDER BY points", guild_id
        )
        return [Tier(r["name"], r["points"], r["badge"], r["role_id"]) for r in rows]

    async def insert_defaults(self, tx: Transaction, guild_id: int) -> None:
        await tx.executemany(
            "INSERT INTO tiers (guild_id, points, name, name_key, badge, role_id) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [(guild_id, t.points, t.name, name_key(t.name), t.badge, t.role_id) for t in DEFAULT_TIERS],
        )

    async def stored(self, tx: Transaction, guild_id: int) -> builtins.list[Tier]:
        """The tiers as stored, read inside the caller's transaction: limits are checked against these,
        not against a cached copy another moderator's command may have outdated."""
        rows = await tx.fetch_all(
            "SELECT name, points, badge, role_id FROM tiers WHERE guild_id = ? ORDER BY points", guild_id
        )
        return [Tier(r["name"], r["points"], r["badge"], r["role_id"]) for r in rows]

    async def upsert(self, tx: Transaction, guild_id: int, tier: Tier) -> None:
        """Set a tier by name: a tier with the same name (Unicode case folded) or threshold is replaced.
        lower() = lower() matches what SQLite's NOCASE did for names stored before their name key."""
        key = name_key(tier.name)
        await tx.execute(
            "DELETE FROM tiers WHERE guild_id = ? AND (name_key = ? OR lower(name) = lower(?) OR points = ?)",
            guild_id, key, tier.name, tier.points,
        )
        await tx.execute(
            "INSERT INTO tiers (guild_id, points, name, name_key, badge, role_id) VALUES (?, ?, ?, ?, ?, ?)",
            guild_id, tier.points, tier.name, key, tier.badge, tier.role_id,
        )

    async def remove(self, tx: Transaction, guild_id: int, name: str) -> bool:
        return await tx.execute(
            "DELETE FROM tiers WHERE guild_id = ? AND (name_key = ? OR lower(name) = lower(?))",
            guild_id, name_key(name), name,
        ) > 0

    async def backfill_name_keys(self) -> int:
        """Give tiers stored before migration 0006 their name key; see AchievementRepository's."""
        rows = await self.db.fetch_all("SELECT guild_id, points, name FROM tiers WHERE name_key IS NULL")
        if not rows:
            return 0
        async with self.db.transaction() as tx:
            for guild_id, points, name in rows:
                key = name_key(name)
                if await tx.fetch_one("SELECT 1 FROM tiers WHERE guild_id = ? AND name_key = ?", guild_id, key):
                    log.warning("guild %s: two tiers are named %r but for case; rename one", guild_id, name)
                    key = f"{key}\x00{points}"
                await tx.execute(
                    "UPDATE tiers SET name_key = ? WHERE guild_id = ? AND points = ?", key, guild_id, points
                )
        return len(rows)


class AuditRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, tx: Transaction, guild_id: int, actor_id: int, action: str, detail: str, now: datetime) -> None:
        await tx.execute(
            "INSERT INTO audit_log (guild_id, actor_id, action, detail, created_at) VALUES (?, ?, ?, ?, ?)",
            guild_id, actor_id, action, detail, now.isoformat(),
        )

    async def recent(self, guild_id: int, limit: int = 20) -> list[AuditEntry]:
        rows = await self.db.fetch_all(
            "SELECT * FROM audit_log WHERE guild_id = ? ORDER BY id DESC LIMIT ?", guild_id, limit
        )
        return [
            AuditEntry(r["id"], r["guild_id"], r["actor_id"], r["action"], r["detail"],
                       datetime.fromisoformat(r["created_at"]))
            for r in rows
        ]


class MetaRepository:
    """Small process-wide facts: the last synced command tree's hash, retroactive jobs still to finish."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> str | None:
        value = await self.db.fetch_value("SELECT value FROM bot_meta WHERE key = ?", key)
        return str(value) if value is not None else None

    async def set(self, key: str, value: str) -> None:
        async with self.db.transaction() as tx:
            await self.set_in(tx, key, value)

    async def set_in(self, tx: Transaction, key: str, value: str) -> None:
        """Set a key inside the caller's transaction, so that it is written with what it is about."""
        await tx.execute(
            "INSERT INTO bot_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key, value,
        )

    async def delete(self, key: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM bot_meta WHERE key = ?", key)

    async def keys_with_prefix(self, prefix: str) -> list[str]:
        rows = await self.db.fetch_all(
            "SELECT key FROM bot_meta WHERE substr(key, 1, CAST(? AS INTEGER)) = ? ORDER BY key", len(prefix), prefix
        )
        return [str(r[0]) for r in rows]
