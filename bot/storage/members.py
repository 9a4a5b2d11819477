"""Member stats, unlocks and the leaderboard reads over them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from bot.engine.stats import COUNTER_STATS, MemberStats
from bot.storage.database import Database, Row, Transaction

_COLUMNS = COUNTER_STATS  # the built-in counters each have a column
EXPORT_PAGE = 2000  # members per page of an export: a few MB of rows at most
TIE_BLOCKS = 1024  # members tied on points are ordered by (member_id % 1024, member_id); see migration 0003
# Built from the fixed column list above, never from input.
_UPSERT = (
    f"INSERT INTO member_stats (guild_id, member_id, {', '.join(_COLUMNS)}, last_active_date) "  # noqa: S608
    f"VALUES (?, ?, {', '.join('?' for _ in _COLUMNS)}, ?) "
    f"ON CONFLICT (guild_id, member_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*_COLUMNS, "last_active_date"))
)
_SELECT = f"SELECT member_id, {', '.join(_COLUMNS)}, last_active_date, in_guild FROM member_stats"  # noqa: S608

# A leaderboard page in one statement. `start`: the points value the page starts in and how many members
# come before it (a running sum over the histogram); `block`: the tie block it starts in and how many
# members of the tie come before that block; `tie`: the page's rows from that block on; `below`: rows of
# lower points values, for a page that the tie does not fill. Each row carries the competition rank of
# its points (1 + members with more points) for the first row's rank.
_PAGE = (
    "WITH start AS (SELECT points, before FROM ("
    " SELECT points, members, SUM(members) OVER (ORDER BY points DESC ROWS UNBOUNDED PRECEDING) - members AS before"
    " FROM points_histogram WHERE guild_id = ? AND members > 0) AS h"
    " WHERE before + members > ? ORDER BY points DESC LIMIT 1), "
    "block AS (SELECT block, before FROM ("
    " SELECT block, members, SUM(members) OVER (ORDER BY block ROWS UNBOUNDED PRECEDING) - members AS before"
    " FROM tie_blocks WHERE guild_id = ? AND points = (SELECT points FROM start) AND members > 0) AS b"
    " WHERE before + members > ? - (SELECT before FROM start) ORDER BY block LIMIT 1), "
    "tie AS (SELECT member_id, points FROM member_stats"
    " WHERE guild_id = ? AND in_guild = 1 AND points = (SELECT points FROM start)"
    " AND member_id % 1024 >= COALESCE((SELECT block FROM block), 0)"
    " ORDER BY member_id % 1024, member_id"
    " LIMIT ? OFFSET COALESCE(? - (SELECT before FROM start) - COALESCE((SELECT before FROM block), 0), 0)), "
    "below AS (SELECT member_id, points FROM member_stats"
    " WHERE guild_id = ? AND in_guild = 1 AND points < (SELECT points FROM start)"
    " ORDER BY points DESC, member_id % 1024, member_id LIMIT ?) "
    "SELECT r.member_id, r.points, 1 + (SELECT COALESCE(SUM(members), 0) FROM points_histogram"
    " WHERE guild_id = ? AND points > r.points) AS rank"
    " FROM (SELECT member_id, points FROM tie UNION ALL SELECT member_id, points FROM below) AS r"
    " ORDER BY r.points DESC, r.member_id % 1024, r.member_id LIMIT ?"
)

# A member's stats row (part 0), custom stats (part 1: name, value in `messages`) and unlocks (part 2: the
# achievement id in `name`) in one statement. Built from the fixed column list, never from input.
_LOAD = (
    f"SELECT 0 AS part, NULL AS name, {', '.join(_COLUMNS)}, last_active_date, in_guild FROM member_stats"  # noqa: S608
    " WHERE guild_id = ? AND member_id = ?"
    f" UNION ALL SELECT 1, stat, value, {', '.join('0' for _ in _COLUMNS[1:])}, NULL, 0 FROM custom_stats"
    " WHERE guild_id = ? AND member_id = ?"
    f" UNION ALL SELECT 2, achievement_id, {', '.join('0' for _ in _COLUMNS)}, NULL, 0 FROM unlocks"
    " WHERE guild_id = ? AND member_id = ?"
)


@dataclass(frozen=True, slots=True)
class UnlockRecord:
    achievement_id: str
    unlocked_at: datetime


@dataclass(frozen=True, slots=True)
class Standing:
    members: int  # ranked members of the guild
    rank: int | None  # None: unranked (no stored activity, or left the guild)


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    member_id: int
    points: int
    rank: int


def _stats(row: Row) -> MemberStats:
    values = {c: row[c] for c in _COLUMNS if row[c]}
    last = row["last_active_date"]
    return MemberStats(values, date.fromisoformat(last) if last else None)


def stats_row(guild_id: int, member_id: int, stats: MemberStats) -> tuple[object, ...]:
    values = stats.values
    return (
        guild_id, member_id, *(values.get(c, 0) for c in _COLUMNS),
        stats.last_active.isoformat() if stats.last_active else None,
    )


class MemberRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, guild_id: int, member_id: int) -> tuple[MemberStats, set[str]]:
        """The member's stats (custom ones included) and unlocked achievement ids; zeros if unknown.
        One statement (one round trip): the stats row, then a row per custom stat and per unlock."""
        stats, unlocked = MemberStats(), set()
        for row in await self.db.fetch_all(_LOAD, *(guild_id, member_id) * 3):
            if row["part"] == 0:
                stats = _stats(row)
            elif row["part"] == 1:
                stats.values[row["name"]] = row["messages"]
            else:
                unlocked.add(row["name"])
        return stats, unlocked

    async def load_many(self, guild_id: int, member_ids: Sequence[int]) -> dict[int, tuple[MemberStats, set[str]]]:
        """Stats and unlocks of several members at once (at most a few hundred ids); absent ones are left out."""
        if not member_ids:
            return {}
        db = self.db
        among = f"guild_id = ? AND member_id IN ({db.dialect.in_ids})"  # a fixed fragment; the ids are bound
        ids = db.dialect.ids(member_ids)
        found: dict[int, tuple[MemberStats, set[str]]] = {}
        for row in await db.fetch_all(f"{_SELECT} WHERE {among}", guild_id, ids):
            found[row["member_id"]] = (_stats(row), set())
        if not found:
            return found
        for member_id, stat, value in await db.fetch_all(
            f"SELECT member_id, stat, value FROM custom_stats WHERE {among}", guild_id, ids  # noqa: S608
        ):
            if member_id in found:
                found[member_id][0].values[stat] = value
        for member_id, achievement_id in await db.fetch_all(
            f"SELECT member_id, achievement_id FROM unlocks WHERE {among}", guild_id, ids  # noqa: S608
        ):
            if member_id in found:
                found[member_id][1].add(achievement_id)
        return found

    async def load_chunk(
        self, guild_id: int, after_member_id: int, limit: int
    ) -> list[tuple[int, MemberStats, set[str]]]:
        """Members in id order after `after_member_id`, for jobs that walk a whole guild in chunks."""
        db = self.db
        rows = await db.fetch_all(
            f"{_SELECT} WHERE guild_id = ? AND member_id > ? ORDER BY member_id LIMIT ?",
            guild_id, after_member_id, limit,
        )
        if not rows:
            return []
        members = {row["member_id"]: (_stats(row), set[str]()) for row in rows}
        low, high = rows[0]["member_id"], rows[-1]["member_id"]
        for member_id, stat, value in await db.fetch_all(
            "SELECT member_id, stat, value FROM custom_stats WHERE guild_id = ? AND member_id BETWEEN ? AND ?",
            guild_id, low, high,
        ):
            if member_id in members:
                members[member_id][0].values[stat] = value
        for member_id, achievement_id in await db.fetch_all(
            "SELECT member_id, achievement_id FROM unlocks WHERE guild_id = ? AND member_id BETWEEN ? AND ?",
            guild_id, low, high,
        ):
            if member_id in members:
                members[member_id][1].add(achievement_id)
        return [(member_id, stats, unlocked) for member_id, (stats, unlocked) in members.items()]

    async def save_stats(
        self, tx: Transaction, guild_id_rows: Sequence[tuple[int, int, MemberStats]]
    ) -> None:
        """Upsert (guild_id, member_id, stats) rows inside the caller's transaction."""
        await tx.executemany(_UPSERT, [stats_row(g, m, s) for g, m, s in guild_id_rows])
        custom = [
            (g, m, stat, value)
            for g, m, s in guild_id_rows
            for stat, value in s.values.items()
            if stat not in _COLUMNS
        ]
        if custom:
            await tx.executemany(
                "INSERT INTO custom_stats (guild_id, member_id, stat, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (guild_id, member_id, stat) DO UPDATE SET value = excluded.value",
                custom,
            )

    async def insert_unlocks(self, tx: Transaction, rows: Iterable[tuple[int, int, str, datetime]]) -> None:
        """Each unlock stores the points its achievement gives now (an edit of the points waits for pending
        unlocks to be written first); an achievement removed meanwhile gets no unlock at all. An unlock the
        member already has is left as it is: the database, not the caller, decides that it is new."""
        await tx.executemany(
            "INSERT INTO unlocks (guild_id, member_id, achievement_id, unlocked_at, points) "
            "SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), points "
            "FROM achievements WHERE guild_id = ? AND achievement_id = ? "
            "ON CONFLICT (guild_id, member_id, achievement_id) DO NOTHING",
            [(g, m, a, at.isoformat(), g, a) for g, m, a, at in rows],
        )

    async def delete_unlock(self, tx: Transaction, guild_id: int, member_id: int, achievement_id: str) -> bool:
        return await tx.execute(
            "DELETE FROM unlocks WHERE guild_id = ? AND member_id = ? AND achievement_id = ?",
            guild_id, member_id, achievement_id,
        ) > 0

    async def revocations(self, guild_id: int) -> dict[int, set[str]]:
        """Achievements a moderator revoked, by member: not earned again until granted."""
        found: dict[int, set[str]] = {}
        for member_id, achievement_id in await self.db.fetch_all(
            "SELECT member_id, achievement_id FROM revocations WHERE guild_id = ?", guild_id
        ):
            found.setdefault(member_id, set()).add(achievement_id)
        return found

    async def revoke_unlock(
        self, tx: Transaction, guild_id: int, member_id: int, achievement_id: str, at: datetime
    ) -> None:
        """Delete an unlock and remember the revoke, so that the condition does not give it back."""
        await self.delete_unlock(tx, guild_id, member_id, achievement_id)
        await tx.execute(
            "INSERT INTO revocations (guild_id, member_id, achievement_id, revoked_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (guild_id, member_id, achievement_id) DO NOTHING",
            guild_id, member_id, achievement_id, at.isoformat(),
        )

    async def end_revocation(self, tx: Transaction, guild_id: int, member_id: int, achievement_id: str) -> None:
        await tx.execute(
            "DELETE FROM revocations WHERE guild_id = ? AND member_id = ? AND achievement_id = ?",
            guild_id, member_id, achievement_id,
        )

    async def unlocks_of(self, guild_id: int, member_id: int) -> list[UnlockRecord]:
        rows = await self.db.fetch_all(
            "SELECT achievement_id, unlocked_at FROM unlocks WHERE guild_id = ? AND member_id = ? "
            "ORDER BY unlocked_at DESC, achievement_id",
            guild_id, member_id,
        )
        return [UnlockRecord(r[0], datetime.fromisoformat(r[1])) for r in rows]

    async def holders(self, guild_id: int, achievement_id: str) -> int:
        return int(await self.db.fetch_value(
            "SELECT COUNT(*) FROM unlocks WHERE guild_id = ? AND achievement_id = ?", guild_id, achievement_id
        ) or 0)

    async def set_in_guild(self, guild_id: int, member_id: int, in_guild: bool) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE member_stats SET in_guild = ? WHERE guild_id = ? AND member_id = ?",
                int(in_guild), guild_id, member_id,
            )

    async def count(self, guild_id: int) -> int:
        """Members ranked on the leaderboard (those still in the guild)."""
        return int(await self.db.fetch_value(
            "SELECT COALESCE(SUM(members), 0) FROM points_histogram WHERE guild_id = ?", guild_id
        ) or 0)

    async def rank_for_points(self, guild_id: int, points: int) -> int:
        """Competition rank of a score: 1 + how many ranked members have more points."""
        return 1 + int(await self.db.fetch_value(
            "SELECT COALESCE(SUM(members), 0) FROM points_histogram WHERE guild_id = ? AND points > ?",
            guild_id, points,
        ) or 0)

    async def standing(self, guild_id: int, member_id: int, points: int) -> Standing:
        """How many members are ranked, and the member's rank with `points` (None if unranked), at once."""
        row = await self.db.fetch_one(
            "SELECT (SELECT COALESCE(SUM(members), 0) FROM points_histogram WHERE guild_id = ?),"
            " (SELECT in_guild FROM member_stats WHERE guild_id = ? AND member_id = ?),"
            " (SELECT COALESCE(SUM(members), 0) FROM points_histogram WHERE guild_id = ? AND points > ?)",
            guild_id, guild_id, member_id, guild_id, points,
        )
        if row is None:  # never: a SELECT without FROM gives one row
            return Standing(0, None)
        return Standing(int(row[0]), 1 + int(row[2]) if row[1] else None)

    async def position_of(self, guild_id: int, member_id: int, points: int) -> int:
        """0-based position of a member in leaderboard order: points high to low, ties by
        (member_id % 1024, member_id), an arbitrary but stable order that tie_blocks can count quickly.
        One statement: members with more points, then tied ones in earlier blocks, then in the same block."""
        return int(await self.db.fetch_value(
            "SELECT (SELECT COALESCE(SUM(members), 0) FROM points_histogram WHERE guild_id = ? AND points > ?)"
            " + (SELECT COALESCE(SUM(members), 0) FROM tie_blocks WHERE guild_id = ? AND points = ? AND block < ?)"
            " + (SELECT COUNT(*) FROM member_stats WHERE guild_id = ? AND in_guild = 1 AND points = ?"
            " AND member_id % 1024 = ? AND member_id < ?)",
            guild_id, points, guild_id, points, member_id % TIE_BLOCKS,
            guild_id, points, member_id % TIE_BLOCKS, member_id,
        ) or 0)

    async def leaderboard_page(self, guild_id: int, offset: int, limit: int) -> list[LeaderboardRow]:
        # Skip whole points values with the histogram, then whole tie blocks, so that a deep page reads
        # about one block of members instead of every member before it. A running sum finds the points
        # value (then the block) the page starts in without sending the histogram over. One statement, so
        # one round trip (and one snapshot of the data) per page on PostgreSQL, whatever its depth.
        if self.db.dialect.name != "postgres":
            return await self._page_in_steps(guild_id, offset, limit)
        rows = await self.db.fetch_all(_PAGE, *(guild_id, offset) * 2, guild_id, limit, offset, guild_id, limit,
                                       guild_id, limit)
        if not rows:
            return []
        from bot.engine.leaderboard import competition_ranks

        ranks = competition_ranks([r[1] for r in rows], offset, int(rows[0][2]))
        return [LeaderboardRow(r[0], r[1], rank) for r, rank in zip(rows, ranks, strict=True)]

    async def _page_in_steps(self, guild_id: int, offset: int, limit: int) -> list[LeaderboardRow]:
        """The page as the single statement finds it, in up to five short queries: SQLite runs in this
        process, so a query costs no round trip, and it plans each step better than the combined one."""
        # Skip whole points values with the histogram, then whole tie blocks, so that a deep page reads
        # about one block of members instead of every member before it. A running sum finds the points
        # value (then the block) the page starts in without sending the histogram over.
        db = self.db
        start = await db.fetch_one(
            "SELECT points, before FROM (SELECT points, members, SUM(members) OVER (ORDER BY points DESC "
            "ROWS UNBOUNDED PRECEDING) - members AS before FROM points_histogram WHERE guild_id = ? AND members > 0"
            ") AS h WHERE before + members > ? ORDER BY points DESC LIMIT 1",
            guild_id, offset,
        )
        if start is None:
            return []
        start_points, skip = start[0], offset - int(start[1])
        block = await db.fetch_one(
            "SELECT block, before FROM (SELECT block, members, SUM(members) OVER (ORDER BY block "
            "ROWS UNBOUNDED PRECEDING) - members AS before FROM tie_blocks WHERE guild_id = ? AND points = ? "
            "AND members > 0) AS b WHERE before + members > ? ORDER BY block LIMIT 1",
            guild_id, start_points, skip,
        )
        start_block = 0
        if block is not None:
            start_block, skip = block[0], skip - int(block[1])
        rows = [(r[0], r[1]) for r in await db.fetch_all(
            "SELECT member_id, points FROM member_stats WHERE guild_id = ? AND in_guild = 1 AND points = ? "
            "AND member_id % 1024 >= ? ORDER BY member_id % 1024, member_id LIMIT ? OFFSET ?",
            guild_id, start_points, start_block, limit, skip,
        )]
        if len(rows) < limit:
            rows += [(r[0], r[1]) for r in await db.fetch_all(
                "SELECT member_id, points FROM member_stats WHERE guild_id = ? AND in_guild = 1 AND points < ? "
                "ORDER BY points DESC, member_id % 1024, member_id LIMIT ?",
                guild_id, start_points, limit - len(rows),
            )]
        if not rows:
            return []
        from bot.engine.leaderboard import competition_ranks

        first_rank = await self.rank_for_points(guild_id, rows[0][1])
        ranks = competition_ranks([p for _, p in rows], offset, first_rank)
        return [LeaderboardRow(m, p, r) for (m, p), r in zip(rows, ranks, strict=True)]

    async def reset_streaks(self, guild_id: int, closed_day: date, chunk: int = 20_000) -> int:
        """Rollover in SQL: members with a streak who were not active on `closed_day` lose it.

        Walks the guild's members in primary key order, `chunk` members at a time, each range one short
        transaction, so other writers are never held up for long. No index is used to find the streaks
        (migration 0009 dropped the one on streak > 0): a reset then changes no indexed column, which lets
        PostgreSQL update each row in place (HOT), and a range of the primary key is read in order anyway.
        """
        db = self.db
        total = 0
        after: int | None = None
        while True:
            # The last member id of the next range; None when fewer than `chunk` members are left. Members
            # who join meanwhile were active after `closed_day`, so a range need not be exact.
            if after is None:
                upto = await db.fetch_value(
                    "SELECT member_id FROM member_stats WHERE guild_id = ? ORDER BY member_id LIMIT 1 OFFSET ?",
                    guild_id, chunk - 1,
                )
            else:
                upto = await db.fetch_value(
                    "SELECT member_id FROM member_stats WHERE guild_id = ? AND member_id > ? "
                    "ORDER BY member_id LIMIT 1 OFFSET ?",
                    guild_id, after, chunk - 1,
                )
            reset = (
                "UPDATE member_stats SET streak = 0 WHERE guild_id = ? AND streak > 0 "
                "AND (last_active_date IS NULL OR last_active_date < ?)"
            )
            bounds: list[object] = [guild_id, closed_day.isoformat()]
            if after is not None:
                reset += " AND member_id > ?"
                bounds.append(after)
            if upto is not None:
                reset += " AND member_id <= ?"
                bounds.append(upto)
            async with db.transaction() as tx:
                total += await tx.execute(reset, *bounds)
            if upto is None:
                return total
            after = int(upto)

    async def max_stat(self, guild_id: int, stat: str) -> int:
        """The highest value of a stat among the guild's members (0 if nobody has it)."""
        if stat in _COLUMNS:
            # `stat` is one of the fixed built-in column names checked just above.
            value = await self.db.fetch_value(
                f"SELECT MAX({stat}) FROM member_stats WHERE guild_id = ?", guild_id  # noqa: S608
            )
        else:
            value = await self.db.fetch_value(
                "SELECT MAX(value) FROM custom_stats WHERE guild_id = ? AND stat = ?", guild_id, stat
            )
        return int(value) if value is not None else 0

    async def custom_stat_names(self, guild_id: int) -> list[str]:
        """The distinct custom stats of a guild, read one name at a time from custom_stats_by_name (each
        step jumps to the next name), so a keystroke of autocomplete costs the names, not the rows."""
        rows = await self.db.fetch_all(
            "WITH RECURSIVE names(stat) AS ("
            " SELECT MIN(stat) FROM custom_stats WHERE guild_id = ?"
            " UNION ALL"
            " SELECT (SELECT MIN(stat) FROM custom_stats WHERE guild_id = ? AND stat > names.stat)"
            " FROM names WHERE names.stat IS NOT NULL"
            ") SELECT stat FROM names WHERE stat IS NOT NULL",
            guild_id, guild_id,
        )
        return [r[0] for r in rows]

    async def delete_member(self, tx: Transaction, guild_id: int, member_id: int) -> bool:
        """Forget one member's stats and unlocks in one guild."""
        existed = await tx.execute("DELETE FROM member_stats WHERE guild_id = ? AND member_id = ?", guild_id, member_id)
        await tx.execute("DELETE FROM custom_stats WHERE guild_id = ? AND member_id = ?", guild_id, member_id)
        await tx.execute("DELETE FROM revocations WHERE guild_id = ? AND member_id = ?", guild_id, member_id)
        unlocks = await tx.execute("DELETE FROM unlocks WHERE guild_id = ? AND member_id = ?", guild_id, member_id)
        return existed > 0 or unlocks > 0

    async def export(self, guild_id: int, page_size: int = EXPORT_PAGE) -> AsyncIterator[list[dict[str, object]]]:
        """Every stored member of a guild with their stats and unlocks, for a data export: pages of
        `page_size` members in member id order, read one at a time so that memory stays bounded."""
        after = -1
        while page := await self.export_page(guild_id, after, page_size):
            yield page
            after = int(page[-1]["member_id"])  # type: ignore[call-overload]

    async def export_page(self, guild_id: int, after: int, limit: int) -> list[dict[str, object]]:
        """Up to `limit` members with an id above `after` (keyset paging: each page is an index range scan,
        however deep into the guild it is), with their custom stats and unlocks."""
        db = self.db
        rows = await db.fetch_all(
            f"{_SELECT} WHERE guild_id = ? AND member_id > ? ORDER BY member_id LIMIT ?", guild_id, after, limit
        )
        if not rows:
            return []
        members: dict[int, dict[str, object]] = {
            row["member_id"]: {
                "member_id": row["member_id"], **{c: row[c] for c in _COLUMNS},
                "last_active_date": row["last_active_date"], "in_guild": bool(row["in_guild"]),
                "custom": {}, "unlocks": [],
            }
            for row in rows
        }
        span = (guild_id, rows[0]["member_id"], rows[-1]["member_id"])
        for member_id, stat, value in await db.fetch_all(
            "SELECT member_id, stat, value FROM custom_stats WHERE guild_id = ? AND member_id BETWEEN ? AND ?", *span
        ):
            if member_id in members:
                members[member_id]["custom"][stat] = value  # type: ignore[index]
        for member_id, achievement_id, unlocked_at in await db.fetch_all(
            "SELECT member_id, achievement_id, unlocked_at FROM unlocks"
            " WHERE guild_id = ? AND member_id BETWEEN ? AND ? ORDER BY member_id, unlocked_at",
            *span,
        ):
            if member_id in members:
                members[member_id]["unlocks"].append(  # type: ignore[attr-defined]
                    {"achievement_id": achievement_id, "unlocked_at": unlocked_at}
                )
        return list(members.values())

    async def is_ranked(self, guild_id: int, member_id: int) -> bool:
        """Whether a member is on the leaderboard: has stored activity and is still in the guild."""
        value = await self.db.fetch_value(
            "SELECT in_guild FROM member_stats WHERE guild_id = ? AND member_id = ?", guild_id, member_id
        )
        return bool(value)
