"""Storage: the one layer that talks SQL. Repositories return dataclasses; callers never see rows.

Two backends behind one seam (bot/storage/database.py): SQLite at a file path (the default), or PostgreSQL when
a `postgresql://` URL is given. `Storage.open` takes either."""

from __future__ import annotations

from pathlib import Path

from bot.storage.achievements import AchievementRepository
from bot.storage.database import Database, StorageError, Transaction
from bot.storage.guilds import AuditRepository, GuildRepository, GuildSettings, MetaRepository, TierRepository
from bot.storage.members import MemberRepository
from bot.storage.outbox import NewAnnouncement, OutboxRepository

__all__ = ["Database", "GuildSettings", "NewAnnouncement", "Storage", "StorageError", "Transaction", "is_url"]


def is_url(target: str | Path) -> bool:
    """Whether a database target is a PostgreSQL URL rather than a SQLite file path."""
    return isinstance(target, str) and target.split(":", 1)[0].lower() in ("postgresql", "postgres")


class Storage:
    """The database and its repositories, handed to the rest of the bot as one object."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.guilds = GuildRepository(db)
        self.tiers = TierRepository(db)
        self.audit = AuditRepository(db)
        self.achievements = AchievementRepository(db)
        self.members = MemberRepository(db)
        self.outbox = OutboxRepository(db)
        self.meta = MetaRepository(db)

    @classmethod
    async def open(cls, target: Path | str) -> Storage:
        """Open (and migrate) the database: a `postgresql://` URL selects PostgreSQL, anything else is the
        path of a SQLite file. A database that cannot be used raises one StorageError for the operator."""
        if is_url(target):
            return await cls.open_url(str(target))
        from bot.storage.sqlite import SqliteDatabase

        sqlite = await SqliteDatabase.open(Path(target))
        try:
            await sqlite.open_reader()
        except BaseException:
            await sqlite.close()
            raise
        return await cls._ready(sqlite)

    @classmethod
    async def open_url(cls, url: str) -> Storage:
        """Open a PostgreSQL database from its URL, postgresql://user:password@host:port/database."""
        from bot.storage.postgres import PostgresDatabase

        return await cls._ready(await PostgresDatabase.open(url))

    @classmethod
    async def open_configured(cls, database_url: str | None, database_path: Path) -> Storage:
        """The bot's entry: DATABASE_URL when set (PostgreSQL), else the SQLite file at DATABASE_PATH."""
        return await cls.open(database_url if database_url else database_path)

    @classmethod
    async def _ready(cls, db: Database) -> Storage:
        storage = cls(db)
        try:
            # Rows written before migration 0006 get their Unicode name keys (SQL cannot compute them).
            await storage.achievements.backfill_name_keys()
            await storage.tiers.backfill_name_keys()
        except BaseException:
            await storage.close()
            raise
        return storage

    async def close(self) -> None:
        await self.db.close()
