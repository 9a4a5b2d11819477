"""The SQLite backend (aiosqlite): one writer connection in WAL mode, and a read-only connection for reads.

The writer runs in autocommit mode; `transaction()` serialises writers with a lock and wraps their statements
in BEGIN IMMEDIATE ... COMMIT, cancel-safe. Reads outside a transaction go to a second, `query_only`
connection: in WAL mode it sees only committed data, never blocks the writer and needs no lock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from bot.storage.database import Database, Dialect, Migration, Row, StorageError, Transaction, default_migrations

log = logging.getLogger(__name__)

# SQLite errors that come from the file or its surroundings rather than from a statement.
_ENVIRONMENT = re.compile(r"SQLITE_(BUSY|LOCKED|READONLY|CANTOPEN|FULL|IOERR|CORRUPT|NOTADB|PERM)")
BUSY_TIMEOUT_MS = 5000  # how long a statement waits for another process's lock before giving up

SQLITE = Dialect(
    name="sqlite",
    in_ids="SELECT value FROM json_each(?)",
    skip_locked="",
    ids=lambda ids: json.dumps(list(ids)),
    json_text=lambda column, key: f"json_extract({column}, '$.{key}')",
)


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


class SqliteTransaction(Transaction):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: object) -> int:
        cursor = await self._conn.execute(sql, args)
        count = cursor.rowcount
        await cursor.close()
        return max(count, 0)

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetch_all(self, sql: str, *args: object) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql, args))


INLINE_BUSY_TIMEOUT_MS = 100  # the inline writer runs on the event loop's thread: never wait long there


class InlineTransaction(Transaction):
    """A transaction whose statements run at once on the calling (event loop's) thread: none suspends."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: object) -> int:
        return max(self._conn.execute(sql, args).rowcount, 0)

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self._conn.executemany(sql, rows)

    async def fetch_all(self, sql: str, *args: object) -> list[Row]:
        return list(self._conn.execute(sql, args).fetchall())


def _inline_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {INLINE_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


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


class SqliteDatabase(Database):
    """One aiosqlite writer connection in autocommit mode plus the committed-only reader; see the module."""

    dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        super().__init__()
        self.conn = conn  # SQLite-only tests and tools may reach it (PRAGMAs); the bot never does
        self.path = path
        self.where = str(path)
        self._write_lock = asyncio.Lock()
        self._reader: aiosqlite.Connection | None = None
        self._inline: sqlite3.Connection | None = None
        self._tx = SqliteTransaction(conn)

    @classmethod
    async def open(cls, path: Path, migrations: list[Migration] | None = None) -> SqliteDatabase:
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
            await db.migrate(migrations if migrations is not None else default_migrations("sqlite"))
            await db.check_writable()
            if str(path) != ":memory:":
                db._inline = _inline_connection(path)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise unusable(path, exc) from exc
            raise
        return db

    def is_environment_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error) and bool(_ENVIRONMENT.match(getattr(exc, "sqlite_errorname", "")))

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
        """The connection `committed_inline` writes on (None for an in-memory database); for PRAGMAs in tests."""
        return self._inline

    async def committed_inline(self, write: Callable[[Transaction], Awaitable[None]]) -> None:
        """Run `write` in one transaction on the event loop's own thread, with no await inside it.

        For the recorder's group commit: a few thousand rows take a few milliseconds here. On aiosqlite's
        thread the same rows took 10-40 times as long under a message flood, because that thread must win
        the GIL back from the busy event-loop thread after every row (SQLite releases it for each step),
        and every statement waits for an event-loop turn. `write` gets a transaction whose statements never
        suspend, and must await nothing else (checked). A cancel can only arrive before the transaction
        begins, so a batch is written whole or not at all. An in-memory database falls back to `committed`."""
        if self._inline is None:
            await self.committed(write)
            return
        async with self._write_lock:
            conn = self._inline
            try:
                conn.execute("BEGIN IMMEDIATE")
                _run_without_suspending(write(InlineTransaction(conn)))
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
        """The second connection, for reads that must see only committed data.

        Reads on `conn` share the writer's transaction: while a batch is written but not yet committed
        they see its rows, which a failed COMMIT then takes back. In WAL mode this connection sees only
        committed data, never blocks the writer, and needs no lock (as a pool connection would not)."""
        if self._reader is None:
            raise RuntimeError("SqliteDatabase.open_reader() was not called")
        return self._reader

    async def fetch_all(self, sql: str, *args: object) -> list[Row]:
        # execute_fetchall: one trip to the database thread per query (execute, fetch and close are three).
        return list(await self.reader.execute_fetchall(sql, args))

    async def schema_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self, migrations: list[Migration]) -> int:
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
                        raise  # the file, not the migration, is at fault: open() says what to do
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

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE on the writer connection. A read still open on it (a cursor between two fetches)
        with a snapshot older than the inline writer's last commit makes SQLite refuse at once
        (SQLITE_BUSY_SNAPSHOT) instead of waiting; that read ends within moments, so try again."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                await self._settled("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorname", "") != "SQLITE_BUSY_SNAPSHOT" or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.001)

    async def _roll_back_if_open(self) -> None:
        if self.conn.in_transaction:
            await self._settled("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._write_lock:
            try:
                await self._begin()
            except BaseException as exc:
                self._write_failed(exc)
                await self._roll_back_if_open()
                raise
            try:
                yield self._tx
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
