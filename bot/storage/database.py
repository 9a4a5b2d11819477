"""The SQLite connection, its transactions and the migration runner: the only place that opens the database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# SQLite errors that come from the file or its surroundings rather than from a statement.
_ENVIRONMENT = re.compile(r"SQLITE_(BUSY|LOCKED|READONLY|CANTOPEN|FULL|IOERR|CORRUPT|NOTADB|PERM)")
BUSY_TIMEOUT_MS = 5000  # how long a statement waits for another process's lock before giving up


class StorageError(Exception):
    """The database cannot be used as it is; the message is meant for the operator."""


def _prepare(path: Path) -> None:
    """Make the database's folder and check that SQLite can open the file, in a plain thread: aiosqlite leaves
    its thread behind when its connect fails, and that thread later trips over the closed event loop
    ("Event loop is closed" printed after the error line)."""
    if path.is_dir():
        raise StorageError(f"DATABASE_PATH {path} is a folder: point DATABASE_PATH at a file in it, "
                           f"such as {path / 'achievements.db'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the database folder {path.parent}: {exc.strerror}") from exc
    try:
        sqlite3.connect(path).close()
    except sqlite3.Error as exc:
        raise unusable(path, exc) from exc


def unusable(path: Path, exc: sqlite3.Error) -> StorageError:
    """The operator's one line for an SQLite error met while opening: what is wrong, and what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    where = path.parent if str(path.parent) else Path(".")
    if name == "SQLITE_NOTADB":
        return StorageError(
            f"DATABASE_PATH {path} is not a SQLite database (another kind of file, or its header is damaged): "
            "point DATABASE_PATH at the bot's database, or move this file away to start with an empty one"
        )
    if name.startswith("SQLITE_CORRUPT"):
        return StorageError(
            f"the database {path} is damaged ({exc}): restore it from a backup, "
            "or move it away to start with an empty one"
        )
    if name == "SQLITE_READONLY_DIRECTORY":
        return StorageError(
            f"the database {path} is read-only because its folder {where} is: the bot must be able to create "
            "files there (SQLite's -wal and -shm files); make the folder writable for the user running the bot"
        )
    if name.startswith("SQLITE_READONLY"):
        return StorageError(
            f"the database {path} is read-only ({exc}): make the file and its folder {where} writable for the "
            "user running the bot, and check that the disk is not mounted read-only"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StorageError(
            f"the database {path} is locked by another process (waited {BUSY_TIMEOUT_MS // 1000} s): stop the "
            "other bot or program using this file (only one bot process may use a SQLite database), then start again"
        )
    if name.startswith("SQLITE_CANTOPEN"):
        if not path.exists():
            return StorageError(
                f"cannot create the database {path}: the bot cannot write in the folder {where}; make it writable "
                "for the user running the bot, or point DATABASE_PATH elsewhere"
            )
        return StorageError(
            f"cannot open the database {path}: the bot cannot read and write it, or its folder {where}; "
            "fix their permissions for the user running the bot"
        )
    if name.startswith("SQLITE_FULL"):
        return StorageError(f"the disk holding the database {path} is full: free some space, then start again")
    if name.startswith("SQLITE_IOERR"):
        return StorageError(
            f"cannot read or write the database {path} ({exc}): check the disk, the mount and the file's permissions"
        )
    return StorageError(f"cannot use the database {path}: {exc}")


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


INLINE_BUSY_TIMEOUT_MS = 100  # the inline writer runs on the event loop's thread: never wait long there


def _inline_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {INLINE_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class _InlineConnection:
    """The awaitable `execute`/`executemany` of a connection, done at once without suspending."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, parameters)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        return self._conn.executemany(sql, rows)


def _run_without_suspending(step: Awaitable[None]) -> None:
    coroutine = step.__await__()
    try:
        coroutine.send(None)
    except StopIteration:
        return
    close = getattr(coroutine, "close", None)
    if close is not None:
        close()
    raise RuntimeError("an inline write awaited something that suspends")


@dataclass(frozen=True, slots=True)
class WriteHealth:
    """Whether writes reach the database: since when they fail, how often, and the last error."""

    failing_since: datetime | None = None
    failures: int = 0
    last_error: str | None = None

    @property
    def failing(self) -> bool:
        return self.failing_since is not None


class Database:
    """One aiosqlite connection in autocommit mode; writes go through `transaction()`, which
    serialises writers so that no coroutine's statements land inside another's transaction.

    It also keeps the health of writes: a database that turns read-only (or full, or unreachable) while the
    bot runs must not look healthy while nothing is saved, so failures are counted, logged and shown."""

    reminder_interval = 60.0  # seconds between "still failing" log lines

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._write_lock = asyncio.Lock()
        self._reader: aiosqlite.Connection | None = None
        self._inline: sqlite3.Connection | None = None
        self.write_health = WriteHealth()
        self._reminded_at = 0.0

    @classmethod
    async def open(cls, path: Path, migrations: list[tuple[int, str, str]] | None = None) -> Database:
        """Open, check and migrate the database; a database that cannot be used raises one StorageError.

        Checked before the bot logs in: that the file is a SQLite database, that it is not damaged
        (`PRAGMA quick_check`), that no other process holds it, and that a write really succeeds: SQLite
        opens a file it may not write read-only without a word, and the bot would then run for hours
        storing nothing."""
        if str(path) != ":memory:":
            await asyncio.to_thread(_prepare, path)
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise unusable(path, exc) from exc
        db = cls(conn, path)
        try:
            conn.row_factory = aiosqlite.Row
            # First, so that every later statement waits for another process's lock instead of failing at once.
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await db.check_integrity()
            await db.migrate(migrations if migrations is not None else default_migrations())
            await db.check_writable()
            if str(path) != ":memory:":
                db._inline = _inline_connection(path)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise unusable(path, exc) from exc
            raise
        return db

    async def check_integrity(self) -> None:
        """Refuse a damaged database before anything is written to it. quick_check reads every page but
        skips the index-to-table cross-check of a full integrity_check (see the README for its cost)."""
        async with self.conn.execute("PRAGMA quick_check(5)") as cursor:
            problems = [str(row[0]) for row in await cursor.fetchall()]
        if problems != ["ok"]:
            raise StorageError(
                f"the database {self.path} is damaged ({'; '.join(problems)[:200]}): restore it from a backup, "
                "or move it away to start with an empty one"
            )

    async def check_writable(self) -> None:
        """A real write, rolled back: catches a read-only file, a read-only folder (SQLite cannot create the
        -wal and -shm files), a read-only mount, and another process's write lock."""
        version = await self.schema_version()
        async with self._write_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                await self.conn.execute(f"PRAGMA user_version = {int(version)}")
            finally:
                await self.conn.execute("ROLLBACK")

    async def close(self) -> None:
        async with self._write_lock:
            if self._reader is not None:
                await self._reader.close()
            if self._inline is not None:
                self._inline.close()
            await self.conn.close()

    @property
    def inline(self) -> sqlite3.Connection | None:
        """The connection `committed_inline` writes on (None for an in-memory database)."""
        return self._inline

    async def committed_inline(self, write: Callable[[Any], Awaitable[None]]) -> None:
        """Run `write` in one transaction on the event loop's own thread, with no await inside it.

        For the recorder's group commit: a few thousand rows take a few milliseconds here. On aiosqlite's
        thread the same rows took 10-40 times as long under a message flood, because that thread must win
        the GIL back from the busy event-loop thread after every row (SQLite releases it for each step),
        and every statement waits for an event-loop turn. `write` gets a connection whose `execute` and
        `executemany` never suspend; it must await nothing else (checked: a write that suspends is an
        error). A cancel can only arrive before the transaction begins, so a batch is written once or not.
        Falls back to `committed` for an in-memory database."""
        if self._inline is None:
            await self.committed(write)
            return
        async with self._write_lock:
            conn = self._inline
            try:
                conn.execute("BEGIN IMMEDIATE")
                _run_without_suspending(write(_InlineConnection(conn)))
                conn.execute("COMMIT")
            except BaseException as exc:
                self._write_failed(exc)
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._write_succeeded()

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
                    if isinstance(exc, sqlite3.Error) and _ENVIRONMENT.match(getattr(exc, "sqlite_errorname", "")):
                        raise  # the file, not the migration, is at fault: Database.open says what to do
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
                await self._begin()
            except BaseException as exc:
                self._write_failed(exc)
                await self._roll_back_if_open()
                raise
            try:
                yield self.conn
            except BaseException as exc:
                self._write_failed(exc)
                await self._roll_back_if_open()
                raise
            try:
                await self._settled("COMMIT")
            except BaseException as exc:
                self._write_failed(exc)
                # A failed COMMIT (disk full, I/O error) leaves the transaction open: close it.
                await self._roll_back_if_open()
                raise
            self._write_succeeded()

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE on the main connection. A read of another coroutine may still be open on it (a
        cursor between two fetches) with a snapshot older than the inline writer's last commit: SQLite then
        refuses at once (SQLITE_BUSY_SNAPSHOT) instead of waiting. That read ends within moments: try again."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                await self._settled("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorname", "") != "SQLITE_BUSY_SNAPSHOT" or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.001)

    def _write_failed(self, exc: BaseException) -> None:
        """Count a write refused by the database itself (read-only, full, locked, I/O); a caller's own error
        or a constraint it broke says nothing about the database's health."""
        if not (isinstance(exc, sqlite3.Error) and _ENVIRONMENT.match(getattr(exc, "sqlite_errorname", ""))):
            return
        health = self.write_health
        now = time.monotonic()
        if not health.failing:
            self.write_health = WriteHealth(datetime.now(UTC), 1, str(exc))
            self._reminded_at = now
            log.error("database writes are failing: %s (%s); nothing new is saved until they succeed. Pending "
                      "changes are kept in memory and retried: check the database file %s, its folder and the disk",
                      exc, getattr(exc, "sqlite_errorname", "?"), self.path)
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
