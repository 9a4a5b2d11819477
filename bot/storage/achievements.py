"""Achievements of each guild, stored with their condition text and re-parsed on load."""

from __future__ import annotations

import logging
import re
from datetime import datetime

import aiosqlite

from bot.engine.achievements import Achievement
from bot.engine.conditions import ConditionError, parse_condition
from bot.storage.database import Database

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _achievement(row: aiosqlite.Row) -> Achievement | None:
    text = row["condition"]
    try:
        # The text was validated when it was saved; every name in it was accepted then.
        condition = parse_condition(text, known_stats=_NAME.findall(text))
    except ConditionError as exc:
        log.error("guild %s: achievement %s has an unreadable condition (%s); skipped",
                  row["guild_id"], row["achievement_id"], exc)
        return None
    return Achievement(
        id=row["achievement_id"],
        name=row["name"],
        description=row["description"],
        points=row["points"],
        condition=condition,
        hidden=bool(row["hidden"]),
        starts=_dt(row["starts_at"]),
        ends=_dt(row["ends_at"]),
        role_id=row["role_id"],
    )


class AchievementRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, guild_id: int) -> list[Achievement]:
        async with self.db.conn.execute(
            "SELECT * FROM achievements WHERE guild_id = ? ORDER BY points, name", (guild_id,)
        ) as cur:
            rows = await cur.fetchall()
        return [a for a in map(_achievement, rows) if a is not None]

    async def get(self, guild_id: int, achievement_id: str) -> Achievement | None:
        async with self.db.conn.execute(
            "SELECT * FROM achievements WHERE guild_id = ? AND achievement_id = ?", (guild_id, achievement_id)
        ) as cur:
            row = await cur.fetchone()
        return _achievement(row) if row else None

    async def name_taken(self, guild_id: int, name: str, except_id: str | None = None) -> bool:
        async with self.db.conn.execute(
            "SELECT achievement_id FROM achievements WHERE guild_id = ? AND name = ? COLLATE NOCASE",
            (guild_id, name),
        ) as cur:
            row = await cur.fetchone()
        return row is not None and row["achievement_id"] != except_id

    async def id_taken(self, guild_id: int, achievement_id: str) -> bool:
        async with self.db.conn.execute(
            "SELECT 1 FROM achievements WHERE guild_id = ? AND achievement_id = ?", (guild_id, achievement_id)
        ) as cur:
            return await cur.fetchone() is not None

    async def save(self, conn: aiosqlite.Connection, guild_id: int, a: Achievement, now: datetime) -> None:
        """Insert or replace an achievement inside the caller's transaction."""
        await conn.execute(
            "INSERT INTO achievements (guild_id, achievement_id, name, description, points, condition, hidden, "
            "starts_at, ends_at, role_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (guild_id, achievement_id) DO UPDATE SET name = excluded.name, "
            "description = excluded.description, points = excluded.points, condition = excluded.condition, "
            "hidden = excluded.hidden, starts_at = excluded.starts_at, ends_at = excluded.ends_at, "
            "role_id = excluded.role_id, updated_at = excluded.updated_at",
            (
                guild_id, a.id, a.name, a.description, a.points, a.condition.text, int(a.hidden),
                a.starts.isoformat() if a.starts else None, a.ends.isoformat() if a.ends else None,
                a.role_id, now.isoformat(), now.isoformat(),
            ),
        )

    async def delete(self, conn: aiosqlite.Connection, guild_id: int, achievement_id: str) -> bool:
        cur = await conn.execute(
            "DELETE FROM achievements WHERE guild_id = ? AND achievement_id = ?", (guild_id, achievement_id)
        )
        return cur.rowcount > 0
