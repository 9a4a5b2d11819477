"""Achievements of each guild, stored with their condition text and re-parsed on load."""

from __future__ import annotations

import builtins
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.engine.achievements import Achievement, name_key
from bot.engine.conditions import ConditionError, parse_condition
from bot.storage.database import Database, Row, Transaction

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LAST_MEMBER = 2**63 - 1
JobKind = Literal["remove", "repoint"]


@dataclass(frozen=True, slots=True)
class AchievementJob:
    """A bulk change of an achievement's holders still to finish (see migration 0005)."""

    guild_id: int
    achievement_id: str
    kind: JobKind
    points: int  # the new points of a repoint
    after_member_id: int


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _achievement(row: Row) -> Achievement | None:
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
        rows = await self.db.fetch_all("SELECT * FROM achievements WHERE guild_id = ? ORDER BY points, name", guild_id)
        return [a for a in map(_achievement, rows) if a is not None]

    async def get(self, guild_id: int, achievement_id: str) -> Achievement | None:
        row = await self.db.fetch_one(
            "SELECT * FROM achievements WHERE guild_id = ? AND achievement_id = ?", guild_id, achievement_id
        )
        return _achievement(row) if row else None

    async def name_taken(self, guild_id: int, name: str, except_id: str | None = None) -> bool:
        found = await self.db.fetch_value(
            "SELECT achievement_id FROM achievements WHERE guild_id = ? AND name_key = ?", guild_id, name_key(name)
        )
        return found is not None and found != except_id

    async def id_taken(self, guild_id: int, achievement_id: str) -> bool:
        return await self.db.fetch_one(
            "SELECT 1 FROM achievements WHERE guild_id = ? AND achievement_id = ?", guild_id, achievement_id
        ) is not None

    async def count(self, guild_id: int) -> int:
        return int(await self.db.fetch_value("SELECT COUNT(*) FROM achievements WHERE guild_id = ?", guild_id) or 0)

    async def save(self, tx: Transaction, guild_id: int, a: Achievement, now: datetime) -> None:
        """Insert or replace an achievement inside the caller's transaction. An edit uses `update`, which
        cannot bring back a removed achievement."""
        await tx.execute(
            "INSERT INTO achievements (guild_id, achievement_id, name, name_key, description, points, condition, "
            "hidden, starts_at, ends_at, role_id, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (guild_id, achievement_id) DO UPDATE SET name = excluded.name, "
            "name_key = excluded.name_key, description = excluded.description, points = excluded.points, "
            "condition = excluded.condition, hidden = excluded.hidden, starts_at = excluded.starts_at, "
            "ends_at = excluded.ends_at, role_id = excluded.role_id, updated_at = excluded.updated_at",
            guild_id, a.id, a.name, name_key(a.name), a.description, a.points, a.condition.text,
            int(a.hidden), a.starts.isoformat() if a.starts else None, a.ends.isoformat() if a.ends else None,
            a.role_id, now.isoformat(), now.isoformat(),
        )

    async def update(self, tx: Transaction, guild_id: int, a: Achievement, now: datetime) -> bool:
        """Change a stored achievement inside the caller's transaction; False if it is gone (an edit must
        never bring back an achievement removed meanwhile)."""
        return await tx.execute(
            "UPDATE achievements SET name = ?, name_key = ?, description = ?, points = ?, condition = ?, "
            "hidden = ?, starts_at = ?, ends_at = ?, role_id = ?, updated_at = ? "
            "WHERE guild_id = ? AND achievement_id = ?",
            a.name, name_key(a.name), a.description, a.points, a.condition.text, int(a.hidden),
            a.starts.isoformat() if a.starts else None, a.ends.isoformat() if a.ends else None,
            a.role_id, now.isoformat(), guild_id, a.id,
        ) > 0

    async def delete(self, tx: Transaction, guild_id: int, achievement_id: str) -> bool:
        return await tx.execute(
            "DELETE FROM achievements WHERE guild_id = ? AND achievement_id = ?", guild_id, achievement_id
        ) > 0

    # ------------------------------------------------------------------ bulk jobs over holders
    async def start_job(
        self, tx: Transaction, guild_id: int, achievement_id: str, kind: JobKind, points: int,
        now: datetime,
    ) -> None:
        """Record a bulk change in the caller's transaction (the one that changes the achievement). A newer
        job replaces an unfinished one: removal and repoint both settle every holder from their unlock."""
        await tx.execute(
            "INSERT INTO achievement_jobs (guild_id, achievement_id, kind, points, after_member_id, started_at) "
            "VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (guild_id, achievement_id) DO UPDATE SET kind = excluded.kind, "
            "points = excluded.points, after_member_id = 0, started_at = excluded.started_at",
            guild_id, achievement_id, kind, points, now.isoformat(),
        )

    async def job(self, guild_id: int, achievement_id: str) -> AchievementJob | None:
        row = await self.db.fetch_one(
            "SELECT * FROM achievement_jobs WHERE guild_id = ? AND achievement_id = ?", guild_id, achievement_id
        )
        return _job(row) if row else None

    async def jobs(self) -> builtins.list[AchievementJob]:
        return [_job(row) for row in await self.db.fetch_all("SELECT * FROM achievement_jobs ORDER BY started_at")]

    async def run_job_chunk(self, tx: Transaction, job: AchievementJob, limit: int) -> int | None:
        """Settle the next `limit` holders of a job inside the caller's transaction, with its progress.

        Each holder's total moves by exactly what their unlock gave (removal) or by the difference to the
        new points (repoint), in the same transaction as the unlock row, so totals always equal the sum of
        unlocks' points. Returns how many holders it settled, or None when the job is done (and deleted)."""
        args = (job.guild_id, job.achievement_id, job.after_member_id)
        row = await tx.fetch_one(
            "SELECT member_id FROM unlocks WHERE guild_id = ? AND achievement_id = ? AND member_id > ? "
            "ORDER BY member_id LIMIT 1 OFFSET ?",
            *args, limit - 1,
        )
        bound = int(row[0]) if row else _LAST_MEMBER
        holders = "(SELECT member_id FROM unlocks WHERE guild_id = ? AND achievement_id = ? AND member_id > ? " \
                  "AND member_id <= ?)"
        given = "(SELECT u.points FROM unlocks u WHERE u.guild_id = member_stats.guild_id " \
                "AND u.member_id = member_stats.member_id AND u.achievement_id = ?)"
        # Fixed SQL pieces; CASE, not SQLite's scalar MAX(a, b), keeps it one text for both backends.
        if job.kind == "remove":
            await tx.execute(
                f"UPDATE member_stats SET points = CASE WHEN points > {given} "  # noqa: S608
                f"THEN points - {given} ELSE 0 END, "
                f"achievements = CASE WHEN achievements > 1 THEN achievements - 1 ELSE 0 END "
                f"WHERE guild_id = ? AND member_id IN {holders}",
                job.achievement_id, job.achievement_id, job.guild_id, *args, bound,
            )
            settled = await tx.execute(
                "DELETE FROM unlocks WHERE guild_id = ? AND achievement_id = ? AND member_id > ? AND member_id <= ?",
                *args, bound,
            )
        else:
            await tx.execute(
                f"UPDATE member_stats SET points = CASE WHEN points + ? > {given} "  # noqa: S608
                f"THEN points + ? - {given} ELSE 0 END "
                f"WHERE guild_id = ? AND member_id IN {holders}",
                job.points, job.achievement_id, job.points, job.achievement_id, job.guild_id, *args, bound,
            )
            settled = await tx.execute(
                "UPDATE unlocks SET points = ? WHERE guild_id = ? AND achievement_id = ? AND member_id > ? "
                "AND member_id <= ?",
                job.points, *args, bound,
            )
        if row is None:  # fewer than `limit` left: this chunk was the last
            if job.kind == "remove":  # its revokes go too: an achievement added later under this id starts clean
                await tx.execute(
                    "DELETE FROM revocations WHERE guild_id = ? AND achievement_id = ?",
                    job.guild_id, job.achievement_id,
                )
            await tx.execute(
                "DELETE FROM achievement_jobs WHERE guild_id = ? AND achievement_id = ?",
                job.guild_id, job.achievement_id,
            )
            return None if settled == 0 else settled
        await tx.execute(
            "UPDATE achievement_jobs SET after_member_id = ? WHERE guild_id = ? AND achievement_id = ?",
            bound, job.guild_id, job.achievement_id,
        )
        return settled

    async def backfill_name_keys(self) -> int:
        """Give rows stored before migration 0006 their name key (SQL cannot case-fold Unicode). Two old
        names that now share a key both stay, the later one under a key of its own, and a warning says so."""
        rows = await self.db.fetch_all("SELECT guild_id, achievement_id, name FROM achievements WHERE name_key IS NULL")
        if not rows:
            return 0
        async with self.db.transaction() as tx:
            for guild_id, achievement_id, name in rows:
                key = name_key(name)
                clash = await tx.fetch_value(
                    "SELECT achievement_id FROM achievements WHERE guild_id = ? AND name_key = ?", guild_id, key
                )
                if clash is not None:
                    log.warning("guild %s: achievements %s and %s have names that differ only in case; rename one",
                                guild_id, clash, achievement_id)
                    key = f"{key}\x00{achievement_id}"
                await tx.execute(
                    "UPDATE achievements SET name_key = ? WHERE guild_id = ? AND achievement_id = ?",
                    key, guild_id, achievement_id,
                )
        return len(rows)


def _job(row: Row) -> AchievementJob:
    return AchievementJob(row["guild_id"], row["achievement_id"], row["kind"], row["points"], row["after_member_id"])
