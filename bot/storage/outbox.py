"""The announcements outbox: rows written with the unlock that caused them, posted after commit."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from bot.storage.database import Database


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    guild_id: int
    member_id: int
    kind: str
    channel_id: int | None
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewAnnouncement:
    guild_id: int
    member_id: int
    kind: str  # 'unlock' | 'tier'
    channel_id: int | None
    payload: dict[str, Any]


def _item(row: aiosqlite.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"], guild_id=row["guild_id"], member_id=row["member_id"], kind=row["kind"],
        channel_id=row["channel_id"], payload=json.loads(row["payload"]), attempts=row["attempts"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )


class OutboxRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, conn: aiosqlite.Connection, items: Iterable[NewAnnouncement], now: datetime) -> None:
        stamp = now.isoformat()
        await conn.executemany(
            "INSERT INTO outbox (guild_id, member_id, kind, channel_id, payload, created_at, next_attempt_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (i.guild_id, i.member_id, i.kind, i.channel_id, json.dumps(i.payload), stamp, stamp)
                for i in items
            ],
        )

    async def due(self, now: datetime, limit: int = 200) -> list[OutboxItem]:
        # On the read connection: a row of a transaction still open (that may yet fail) is not due.
        async with self.db.reader.execute(
            "SELECT * FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (now.isoformat(), limit),
        ) as cur:
            return [_item(r) for r in await cur.fetchall()]

    async def next_due_at(self) -> datetime | None:
        async with self.db.reader.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'"
        ) as cur:
            row = await cur.fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    async def mark_sent(self, ids: Sequence[int]) -> None:
        async with self.db.transaction() as conn:
            await conn.executemany("UPDATE outbox SET state = 'sent' WHERE id = ?", [(i,) for i in ids])

    async def retry_later(self, item_id: int, attempts: int, next_attempt_at: datetime, error: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
                (attempts, next_attempt_at.isoformat(), error[:500], item_id),
            )

    async def give_up(self, item_id: int, attempts: int, error: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET state = 'failed', attempts = ?, last_error = ? WHERE id = ?",
                (attempts, error[:500], item_id),
            )

    async def counts(self, guild_id: int | None = None) -> dict[str, int]:
        async with self.db.reader.execute(
            "SELECT state, COUNT(*) FROM outbox WHERE ? IS NULL OR guild_id = ? GROUP BY state", (guild_id, guild_id)
        ) as cur:
            return {r[0]: r[1] for r in await cur.fetchall()}
