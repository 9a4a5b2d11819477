"""The backend-neutral database seam: what repositories and their callers see of a database.

Two backends sit behind it: SQLite (bot/storage/sqlite.py, aiosqlite) and PostgreSQL (bot/storage/postgres.py,
asyncpg). Nothing outside those two modules imports a driver. Callers hold a unit of work while they write:

    async with storage.db.transaction() as tx:
        await tx.execute("UPDATE ... WHERE guild_id = ?", guild_id)

and read outside a transaction with `db.fetch_all/fetch_one/fetch_value`, which see only committed rows
(SQLite: a second, read-only connection; PostgreSQL: a pool connection).

SQL is written once, in the subset both engines share: `?` placeholders (the PostgreSQL adapter rewrites them
to `$1, $2, ...`, skipping string literals, quoted identifiers and comments, and caches the result), `ON CONFLICT
... DO NOTHING / DO UPDATE` upserts, `CASE` instead of SQLite's scalar `MAX(a, b)`, `CAST(? AS BIGINT)` where
PostgreSQL cannot infer a parameter's type. Where the dialects really differ, a repository asks `db.dialect` for
a fixed fragment (see `Dialect`); input is always a bound parameter, never formatted into SQL. Dates and times
are ISO-8601 text in both backends, so values read back are identical whatever the backend.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

Migration = tuple[int, str, str]  # (number, file name, SQL)


class StorageError(Exception):
    """The database cannot be used as it is; the message is meant for the operator."""


class Row(Protocol):
    """A result row: by column name or position, and unpackable (sqlite3.Row and asyncpg.Record both are)."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few fixed SQL fragments that differ between the backends. Each takes bound parameters only.

    `in_ids` is a subquery over one parameter holding a list of integer ids, whose value `ids()` makes:
    SQLite reads a JSON array with json_each, PostgreSQL unnests a BIGINT[]. `json_text(column, key)` reads
    one text member of a JSON text column; `key` is a fixed identifier from the code, never input.
    `skip_locked` ends a SELECT that claims rows several processes may claim at once (SQLite has one writer)."""

    name: str
    in_ids: str
    skip_locked: str
    ids: Callable[[Iterable[int]], object]
    json_text: Callable[[str, str], str]


class Transaction(ABC):
    """A unit of work: every statement runs in one database transaction, committed when the block ends."""

    @abstractmethod
    async def execute(self, sql: str, *args: object) -> int:
        """Run one statement; the number of rows it inserted, updated or deleted."""

    @abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        """Run one statement once per row of parameters."""

    @abstractmethod
    async def fetch_all(self, sql: str, *args: object) -> list[Row]:
        """Every row of a query, seeing this transaction's own writes."""

    async def fetch_one(self, sql: str, *args: object) -> Row | None:
        rows = await self.fetch_all(sql, *args)
        return rows[0] if rows else None

    async def fetch_value(self, sql: str, *args: object) -> Any:
        """The first column of the first row, or None."""
        row = await self.fetch_one(sql, *args)
        return row[0] if row is not None else None


@dataclass(frozen=True, slots=True)
class WriteHealth:
    """Whether writes reach the database: since when they fail, how often, and the last error."""

    failing_since: datetime | None = None
    failures: int = 0
    last_error: str | None = None

    @property
    def failing(self) -> bool:
        return self.failing_since is not None


class Database(ABC):
    """A database behind the seam: transactions for writes, committed-only reads, and the health of writes.

    Writes of one process are serialised (one transaction at a time), as the bot's guarantees were built on:
    no coroutine's statements ever land inside another's transaction, and a read inside a transaction sees
    exactly that transaction's writes. It also keeps the health of writes: a database that turns read-only
    (or full, or unreachable) while the bot runs must not look healthy while nothing is saved, so failures
    are counted, logged and shown."""

    reminder_interval = 60.0  # seconds between "still failing" log lines
    dialect: Dialect
    where: str  # the database, as named to the operator (a path, or a URL without its password)

    def __init__(self) -> None:
        self.write_health = WriteHealth()
        self._reminded_at = 0.0

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """One write transaction; committed on a normal exit, rolled back on any error or cancel."""

    @abstractmethod
    async def fetch_all(self, sql: str, *args: object) -> list[Row]:
        """Every row of a query over committed data only."""

    async def fetch_one(self, sql: str, *args: object) -> Row | None:
        rows = await self.fetch_all(sql, *args)
        return rows[0] if rows else None

    async def fetch_value(self, sql: str, *args: object) -> Any:
        row = await self.fetch_one(sql, *args)
        return row[0] if row is not None else None

    @abstractmethod
    async def schema_version(self) -> int: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def is_environment_error(self, exc: BaseException) -> bool:
        """Whether an error comes from the database or its surroundings (read-only, full, gone) rather than
        from a statement or the caller: only those count against the health of writes."""

    async def committed(self, write: Callable[[Transaction], Awaitable[None]]) -> None:
        """Run `write` in a transaction that a cancel of the caller cannot cut short: the caller's cancel
        is passed on only once the transaction is committed or rolled back, so the caller can tell
        "written" from "not written" (an exception) and never writes a batch twice."""
        async def run() -> None:
            async with self.transaction() as tx:
                await write(tx)

        job = asyncio.ensure_future(run())
        try:
            await asyncio.shield(job)
        except asyncio.CancelledError:
            await job  # raises the write's own error, if it failed
            raise

    async def committed_inline(self, write: Callable[[Transaction], Awaitable[None]]) -> None:
        """`committed` for the recorder's group commit. A backend that can run the whole transaction without
        leaving the event loop's thread does so (SQLite); others run it as `committed` does."""
        await self.committed(write)

    def _write_failed(self, exc: BaseException) -> None:
        """Count a write refused by the database itself (read-only, full, locked, I/O); a caller's own error
        or a constraint it broke says nothing about the database's health."""
        if not self.is_environment_error(exc):
            return
        health = self.write_health
        now = time.monotonic()
        if not health.failing:
            self.write_health = WriteHealth(datetime.now(UTC), 1, str(exc))
            self._reminded_at = now
            log.error("database writes are failing: %s (%s); nothing new is saved until they succeed. Pending "
                      "changes are kept in memory and retried: check the database %s, and its disk or server",
                      exc, getattr(exc, "sqlite_errorname", None) or getattr(exc, "sqlstate", None)
                      or type(exc).__name__, self.where)
            return
        self.write_health = WriteHealth(health.failing_since, health.failures + 1, str(exc))
        if now - self._reminded_at >= self.reminder_interval:
            self._reminded_at = now
            log.error("database writes still failing: %d failed attempts since %s, last: %s",
                      health.failures + 1, health.failing_since.isoformat(timespec="seconds")
                      if health.failing_since else "?", exc)

    def _write_succeeded(self) -> None:
        health = self.write_health
        if health.failing:
            self.write_health = WriteHealth()
            log.info("database writes succeed again after %d failed %s since %s", health.failures,
                     "attempt" if health.failures == 1 else "attempts",
                     health.failing_since.isoformat(timespec="seconds") if health.failing_since else "?")


# ---------------------------------------------------------------------------------------------- migrations
def _read(folder: Traversable) -> list[Migration]:
    found = [
        (int(m.group(1)), entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if (m := _MIGRATION_NAME.match(entry.name))
    ]
    return _checked(found)


def default_migrations(backend: str = "sqlite") -> list[Migration]:
    """The packaged migrations of a backend: migrations/*.sql for SQLite, migrations/postgres/*.sql for
    PostgreSQL, numbered alike so that both schemas stay in step."""
    files = resources.files("migrations")
    return _read(files if backend == "sqlite" else files.joinpath(backend))


def migrations_from(directory: Path) -> list[Migration]:
    return _read(directory)


def _checked(found: list[Migration]) -> list[Migration]:
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise StorageError(f"migrations must be numbered 0001, 0002, ... without gaps; found {numbers}")
    return found
