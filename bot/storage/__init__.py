"""Storage: the one layer that talks SQL. Repositories return dataclasses; callers never see rows."""

from __future__ import annotations

from pathlib import Path

from bot.storage.achievements import AchievementRepository
from bot.storage.database import Database, StorageError
from bot.storage.guilds import AuditRepository, GuildRepository, GuildSettings, MetaRepository, TierRepository
from bot.storage.members import MemberRepository
from bot.storage.outbox import NewAnnouncement, OutboxRepository

__all__ = ["GuildSettings", "NewAnnouncement", "Storage", "StorageError"]


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
    async def open(cls, path: Path) -> Storage:
        db = await Database.open(path)
        storage = cls(db)
        try:
            await db.open_reader()
            # Rows written before migration 0006 get their Unicode name keys (SQL cannot compute them).
            await storage.achievements.backfill_name_keys()
            await storage.tiers.backfill_name_keys()
        except BaseException:
            await storage.close()
            raise
        return storage

    async def close(self) -> None:
        await self.db.close()
