"""The announcements outbox: rows written with the unlock that caused them, posted after commit."""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.storage.database import Database, Row, Transaction


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
    post_key: str | None  # set once claimed into a post: the Discord message (and nonce) that carries it


@dataclass(frozen=True, slots=True)
class NewAnnouncement:
    guild_id: int
    member_id: int
    kind: str  # 'unlock' | 'tier'
    channel_id: int | None
    payload: dict[str, Any]


def _item(row: Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"], guild_id=row["guild_id"], member_id=row["member_id"], kind=row["kind"],
        channel_id=row["channel_id"], payload=json.loads(row["payload"]), attempts=row["attempts"],
        created_at=datetime.fromisoformat(row["created_at"]), post_key=row["post_key"],
    )


def new_post_key() -> str:
    """A message nonce: Discord takes up to 25 characters. Random rather than the row id, so that it is
    unique for the bot's account whatever database (a reset one, another shard's) the post comes from."""
    return secrets.token_hex(12)


class OutboxRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, tx: Transaction, items: Iterable[NewAnnouncement], now: datetime) -> None:
        stamp = now.isoformat()
        await tx.executemany(
            "INSERT INTO outbox (guild_id, member_id, kind, channel_id, payload, created_at, next_attempt_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (i.guild_id, i.member_id, i.kind, i.channel_id, json.dumps(i.payload), stamp, stamp)
                for i in items
            ],
        )

    async def due(
        self, now: datetime, limit: int = 200, *, shards: tuple[int, Collection[int]] | None = None
    ) -> list[OutboxItem]:
        """Announcements due by `now`, oldest first; with `shards` = (shard count, shard ids), only those of
        guilds on these shards (Discord's `(guild_id >> 22) % count`), so that a process never pages through
        other processes' rows to find its own."""
        # Committed rows only: a row of a transaction still open (that may yet fail) is not due.
        if shards is None:
            rows = await self.db.fetch_all(
                "SELECT * FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
                now.isoformat(), limit,
            )
        else:
            count, ids = shards
            rows = await self.db.fetch_all(
                # A fixed fragment from the dialect; the count and the ids are bound.
                "SELECT * FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? "  # noqa: S608
                f"AND (guild_id >> 22) % ? IN ({self.db.dialect.in_ids}) ORDER BY id LIMIT ?",
                now.isoformat(), count, self.db.dialect.ids(sorted(ids)), limit,
            )
        return [_item(r) for r in rows]

    async def claim(self, groups: Sequence[Sequence[int]]) -> list[str]:
        """Fix, before the first attempt, which announcements go out together: one post per group of ids.

        Committed before anything is sent, so every retry and a restart re-send the same message with the
        same nonce. Returns the posts' keys, in the order of `groups`. An announcement is claimed at most
        once: only unclaimed rows are taken, and on PostgreSQL rows another process is claiming at the same
        moment are skipped (FOR UPDATE SKIP LOCKED), so a post carries only what its claim took."""
        keys = [new_post_key() for _ in groups]
        dialect = self.db.dialect
        async with self.db.transaction() as tx:
            for key, ids in zip(keys, groups, strict=True):
                await tx.execute(
                    # Fixed fragments from the dialect; the key and the ids are bound.
                    "UPDATE outbox SET post_key = ? WHERE id IN ("  # noqa: S608
                    " SELECT id FROM outbox WHERE state = 'pending' AND post_key IS NULL"
                    f" AND id IN ({dialect.in_ids}) ORDER BY id{dialect.skip_locked})",
                    key, dialect.ids(ids),
                )
        return keys

    async def post(self, post_key: str) -> list[OutboxItem]:
        """The announcements of one post still to be sent, oldest first."""
        rows = await self.db.fetch_all(
            "SELECT * FROM outbox WHERE post_key = ? AND state = 'pending' ORDER BY id", post_key
        )
        return [_item(r) for r in rows]

    async def orphaned(self, ids: Sequence[int]) -> list[int]:
        """Unlock announcements among `ids` that must not go out any more: the achievement was removed,
        or the member no longer holds it."""
        dialect = self.db.dialect
        achievement = dialect.json_text("o.payload", "achievement_id")
        rows = await self.db.fetch_all(
            # Fixed fragments from the dialect; the ids are bound.
            f"SELECT o.id FROM outbox o WHERE o.id IN ({dialect.in_ids}) AND o.kind = 'unlock' "  # noqa: S608
            "AND (NOT EXISTS (SELECT 1 FROM achievements a WHERE a.guild_id = o.guild_id "
            f"                 AND a.achievement_id = {achievement}) "
            "     OR NOT EXISTS (SELECT 1 FROM unlocks u WHERE u.guild_id = o.guild_id "
            "                    AND u.member_id = o.member_id "
            f"                    AND u.achievement_id = {achievement})) "
            "ORDER BY o.id",
            dialect.ids(ids),
        )
        return [r[0] for r in rows]

    async def drop(self, ids: Sequence[int], reason: str) -> None:
        """Mark announcements 'dropped': kept for the record, never posted."""
        dialect = self.db.dialect
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE outbox SET state = 'dropped', last_error = ? "  # noqa: S608 (a fixed fragment)
                f"WHERE state = 'pending' AND id IN ({dialect.in_ids})",
                reason[:500], dialect.ids(ids),
            )

    async def next_due_at(self) -> datetime | None:
        value = await self.db.fetch_value("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'")
        return datetime.fromisoformat(value) if value else None

    async def mark_sent(self, ids: Sequence[int]) -> None:
        async with self.db.transaction() as tx:
            await tx.executemany("UPDATE outbox SET state = 'sent' WHERE id = ?", [(i,) for i in ids])

    async def retry_later(self, ids: Sequence[int], attempts: int, next_attempt_at: datetime, error: str) -> None:
        async with self.db.transaction() as tx:
            await tx.executemany(
                "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
                [(attempts, next_attempt_at.isoformat(), error[:500], i) for i in ids],
            )

    async def give_up(self, ids: Sequence[int], attempts: int, error: str) -> None:
        async with self.db.transaction() as tx:
            await tx.executemany(
                "UPDATE outbox SET state = 'failed', attempts = ?, last_error = ? WHERE id = ?",
                [(attempts, error[:500], i) for i in ids],
            )

    async def counts(self, guild_id: int | None = None) -> dict[str, int]:
        rows = await self.db.fetch_all(
            "SELECT state, COUNT(*) FROM outbox WHERE CAST(? AS BIGINT) IS NULL OR guild_id = ? GROUP BY state",
            guild_id, guild_id,
        )
        return {r[0]: int(r[1]) for r in rows}
