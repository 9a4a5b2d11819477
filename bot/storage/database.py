"""The SQLite connection, its transactions and the migration runner: the only place that opens the database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import aiosqlite

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class StorageError(Exception):
    """The database cannot be used as it is; the message is meant for the operator."""


def default_migrations() -> list[tuple[int, str, str]]:
    files = resources.files("migrations")
    found: list[tuple[int, str, str]] = []
    for entry in files.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return _checked(found)


def migrations_from(directory: Path) -> list[tuple[int, str, str]]:
    found = [
        (int(m.group(1)), p.name, p.read_text(encoding="utf-8"))
        for p in directory.iterdir()
        if (m := _MIGRATION_NAME.match(p.name))
    ]
    return _checked(found)


def _checked(found: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise StorageError(f"migrations must be numbered 0001, 0002, ... without gaps; found {numbers}")
    return found


class Database:
    """One aiosqlite connection in autocommit mode; writes go through `transaction()`, which
    serialises writers so that no coroutine's statements land inside another's transaction."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._write_lock = asyncio.Lock()
        self._reader: aiosqlite.Connection | None = None

    @classmethod
    async def open(cls, path: Path, migrations: list[tuple[int, str, str]] | None = None) -> Database:
        if str(path) != ":memory:":
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create the database directory {path.parent}: {exc.strerror}") from exc
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except Exception as exc:
            raise StorageError(f"cannot open the database {path}: {exc}") from exc
        db = cls(conn, path)
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA busy_timeout = 5000")
            await db.migrate(migrations if migrations is not None else default_migrations())
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        async with self._write_lock:
            if self._reader is not None:
                await self._reader.close()
            await self.conn.close()

    async def open_reader(self) -> None:
        """Open the connection behind `reader`. Call once, after `open()` has migrated the schema."""
        if str(self.path) == ":memory:":
            raise StorageError("a separate read connection needs a database file, not :memory:")
        try:
            reader = await aiosqlite.connect(self.path, isolation_level=None)
        except Exception as exc:
            raise StorageError(f"cannot open the database {self.path} for reading: {exc}") from exc
        try:
            reader.row_factory = aiosqlite.Row
            await reader.execute("PRAGMA query_only = ON")
            await reader.execute("PRAGMA busy_timeout = 5000")
        except BaseException:
            await reader.close()
            raise
        self._reader = reader

    @property
    def reader(self) -> aiosqlite.Connection:
        """A second connection for reads that must see only committed data.

        Reads on `conn` share the writer's transaction: while a batch is written but not yet committed
        they see its rows, which a failed COMMIT then takes back. In WAL mode this connection sees only
        committed data, never blocks the writer, and needs no lock (as a pool connection would not)."""
        if self._reader is None:
            raise RuntimeError("Database.open_reader() was not called")
        return self._reader

    async def schema_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self, migrations: list[tuple[int, str, str]]) -> int:
        """Apply pending migrations, each in its own transaction with its version bump."""
        current = await self.schema_version()
        latest = migrations[-1][0] if migrations else 0
        if current > latest:
            raise StorageError(
                f"the database {self.path} has schema version {current}, newer than this bot knows "
                f"({latest}): upgrade the bot, or point DATABASE_PATH at another file"
            )
        async with self._write_lock:
            for number, name, sql in migrations:
                if number <= current:
                    continue
                log.info("applying migration %s", name)
                try:
                    # executescript() runs statements as written; wrapping them ourselves keeps the
                    # schema change and the version bump in one transaction.
                    await self.conn.executescript(
                        f"BEGIN IMMEDIATE;\n{sql}\n;PRAGMA user_version = {int(number)};\nCOMMIT;"
                    )
                except Exception as exc:
                    if self.conn.in_transaction:
                        await self.conn.execute("ROLLBACK")
                    raise StorageError(f"migration {name} failed and was rolled back: {exc}") from exc
                current = number
        return current

    async def _settled(self, sql: str) -> None:
        """Run a transaction-control statement to its end even if the caller is cancelled meanwhile.

        The statement runs on aiosqlite's thread whatever happens to the awaiting task; returning early
        on a cancel would leave the connection inside a transaction nobody owns, and every later BEGIN
        would fail. The cancel is passed on once the statement is done."""
        step = asyncio.ensure_future(self.conn.execute(sql))
        try:
            await asyncio.shield(step)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await step
            raise

    async def _roll_back_if_open(self) -> None:
        if self.conn.in_transaction:
            await self._settled("ROLLBACK")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction at a time; committed on a normal exit, rolled back on any error or cancel."""
        async with self._write_lock:
            try:
                await self._settled("BEGIN IMMEDIATE")
            except BaseException:
                await self._roll_back_if_open()
                raise
            try:
                yield self.conn
            except BaseException:
                await self._roll_back_if_open()
                raise
            try:
                await self._settled("COMMIT")
            except BaseException:
                # A failed COMMIT (disk full, I/O error) leaves the transaction open: close it.
                await self._roll_back_if_open()
                raise

    async def committed(self, write: Callable[[aiosqlite.Connection], Awaitable[None]]) -> None:
        """Run `write` in a transaction that a cancel of the caller cannot cut short: the caller's cancel
        is passed on only once the transaction is committed or rolled back, so the caller can tell
        "written" from "not written" (an exception) and never writes a batch twice."""
        async def run() -> None:
            async with self.transaction() as conn:
                await write(conn)

        job = asyncio.ensure_future(run())
        try:
            await asyncio.shield(job)
        except asyncio.CancelledError:
            await job  # raises the write's own error, if it failed
            raise
