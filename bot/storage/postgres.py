"""The PostgreSQL backend (asyncpg): a connection pool, transactions on one pool connection, migrations under
an advisory lock.

Placeholders: repositories write `?` (one SQL text for both backends); `to_dollar()` rewrites them to asyncpg's
`$1, $2, ...` once per distinct statement (cached), leaving `?` inside string literals, quoted identifiers and
comments alone. PostgreSQL's JSON operators spelled `?`, `?|`, `?&` are therefore not usable in shared SQL (none
is used). Every value stays a bound parameter; asyncpg prepares and caches each statement per connection.

Writes of this process are serialised by a lock, as on SQLite, so that the callers' guarantees (no statement
lands in another coroutine's transaction, a chunked job is never interleaved with a flush of the same guild)
hold on both backends; several processes write at once only for different guilds (one owner per guild), and
rows they all touch (the outbox) are claimed with `FOR UPDATE SKIP LOCKED`. Reads outside a transaction use
any pool connection and so see only committed rows (READ COMMITTED).

Migrations (migrations/postgres/NNNN_*.sql, numbered as the SQLite ones) run under a session advisory lock, so
that several processes started at once against one database apply each exactly once; each migration and its
row in `schema_version` commit together."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from bot.storage.database import Database, Dialect, Migration, Row, StorageError, Transaction, default_migrations

log = logging.getLogger(__name__)

POSTGRES = Dialect(
    name="postgres",
    in_ids="SELECT unnest(CAST(? AS BIGINT[]))",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    ids=lambda ids: list(ids),
    json_text=lambda column, key: f"(CAST({column} AS json) ->> '{key}')",
)

# pg_advisory_lock key of the migration run: any fixed 64-bit number, the same in every process.
MIGRATION_LOCK = 0x61636876_6D696772  # "achv" "migr"
CONNECT_TIMEOUT = 10.0  # seconds to reach the server before giving up with a clear line
_COUNT = re.compile(r"(\d+)$")
_SCHEMES = ("postgresql", "postgres")


@functools.lru_cache(maxsize=2048)
def to_dollar(sql: str) -> str:
    """`?` placeholders to `$1, $2, ...`, outside string literals, quoted identifiers and comments."""
    out: list[str] = []
    n = 0
    i = 0
    length = len(sql)
    while i < length:
        ch = sql[i]
        if ch in ("'", '"'):
            end = i + 1
            while end < length:
                if sql[end] == ch:
                    if end + 1 < length and sql[end + 1] == ch:  # a doubled quote inside the literal
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i:end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = length if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = length if end < 0 else end + 2
            out.append(sql[i:end])
            i = end
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _count(status: str) -> int:
    """Rows affected, from asyncpg's command tag ("UPDATE 3", "INSERT 0 1", "DELETE 0")."""
    match = _COUNT.search(status or "")
    return int(match.group(1)) if match else 0


def redacted(url: str) -> str:
    """The URL as shown to the operator: never its password."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "DATABASE_URL"


def check_url(url: str) -> None:
    """Refuse a DATABASE_URL that cannot name a PostgreSQL database, before trying to connect."""
    shown = redacted(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise StorageError(f"DATABASE_URL {shown} is not a valid URL ({exc}): "
                           "write it as postgresql://user:password@host:5432/database") from exc
    if parts.scheme not in _SCHEMES:
        raise StorageError(f"DATABASE_URL {shown} must start with postgresql://, "
                           "as in postgresql://user:password@host:5432/database")
    if not parts.hostname:
        raise StorageError(f"DATABASE_URL {shown} names no server: "
                           "write it as postgresql://user:password@host:5432/database")
    if not unquote(parts.path.lstrip("/")):
        raise StorageError(f"DATABASE_URL {shown} names no database: add it after the server, as in "
                           "postgresql://user:password@host:5432/database")
    del port


def _connect_error(url: str, exc: BaseException) -> StorageError:
    """The operator's one line for a failed connection: what is wrong, and what to do."""
    parts = urlsplit(url)
    server = f"{parts.hostname}:{parts.port or 5432}"
    database = unquote(parts.path.lstrip("/"))
    user = unquote(parts.username or "") or "(default user)"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return StorageError(f"the PostgreSQL server {server} has no database {database!r}: create it "
                            f"(createdb -h {parts.hostname} {database}) or fix the name in DATABASE_URL")
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return StorageError(f"the PostgreSQL server {server} refused user {user!r} ({exc}): "
                            "fix the user name and password in DATABASE_URL")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return StorageError(f"user {user!r} may not use database {database!r} on {server} ({exc}): "
                            "grant it the rights, or use another user in DATABASE_URL")
    if isinstance(exc, TimeoutError | OSError | asyncpg.CannotConnectNowError):
        reason = "timed out" if isinstance(exc, TimeoutError) else (getattr(exc, "strerror", None) or str(exc))
        return StorageError(f"cannot reach the PostgreSQL server {server} ({reason}): check that it runs and "
                            "that the host and port in DATABASE_URL are right")
    if isinstance(exc, asyncpg.ClientConfigurationError | ValueError):
        return StorageError(f"DATABASE_URL {redacted(url)} is not usable ({exc}): "
                            "write it as postgresql://user:password@host:5432/database")
    return StorageError(f"cannot use the PostgreSQL database {redacted(url)}: {exc}")


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool. The bot sets no session state (no SET, LISTEN
    or prepared cursors; the migration lock is released explicitly), so asyncpg's default reset, a round trip
    on every release and so on every read, is reduced to closing a transaction left open."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class PostgresTransaction(Transaction):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: object) -> int:
        return _count(await self._conn.execute(to_dollar(sql), *args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        rows = list(rows)
        if rows:
            await self._conn.executemany(to_dollar(sql), rows)

    async def fetch_all(self, sql: str, *args: object) -> list[Row]:
        return list(await self._conn.fetch(to_dollar(sql), *args))

    async def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        """Bulk load with COPY (benchmarks and tools); `table` and `columns` are fixed names from the code."""
        await self._conn.copy_records_to_table(table, records=list(rows), columns=list(columns))


class PostgresDatabase(Database):
    """An asyncpg pool; see the module docstring for transactions, reads and migrations."""

    dialect = POSTGRES

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        super().__init__()
        self.pool = pool
        self.url = url
        self.where = redacted(url)
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, url: str, migrations: list[Migration] | None = None, *, min_size: int = 1, max_size: int = 8,
    ) -> PostgresDatabase:
        """Connect, migrate and check that writes succeed; anything unusable raises one StorageError."""
        check_url(url)
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, timeout=CONNECT_TIMEOUT,
                # The bot's queries change with input only through parameters: prepared statements are reused.
                statement_cache_size=512, reset=_reset,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise _connect_error(url, exc) from exc
        db = cls(pool, url)
        try:
            await db.migrate(migrations if migrations is not None else default_migrations("postgres"))
            await db.check_writable()
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, StorageError):
                raise
            if isinstance(exc, OSError | TimeoutError | asyncpg.PostgresError | asyncpg.InterfaceError):
                raise _connect_error(url, exc) from exc
            raise
        return db

    def is_environment_error(self, exc: BaseException) -> bool:
        if isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError | asyncpg.PostgresConnectionError):
            return True
        state = getattr(exc, "sqlstate", None) or ""
        # 08: connection, 53: insufficient resources (disk full), 57: operator intervention (shutdown),
        # 58: system error, 25006: read-only transaction (a standby, or default_transaction_read_only).
        return isinstance(exc, asyncpg.PostgresError) and (state[:2] in ("08", "53", "57", "58")
                                                            or state == "25006")

    async def schema_version(self) -> int:
        async with self.pool.acquire() as conn:
            return await self._version(conn)

    @staticmethod
    async def _version(conn: asyncpg.Connection) -> int:
        exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
        if not exists:
            return 0
        return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))

    async def migrate(self, migrations: list[Migration]) -> int:
        """Apply pending migrations, each in its own transaction with its row in schema_version, under an
        advisory lock: processes started together wait for the first, then find nothing left to do."""
        latest = migrations[-1][0] if migrations else 0
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                current = await self._version(conn)
                if current > latest:
                    raise StorageError(
                        f"the database {self.where} has schema version {current}, newer than this bot knows "
                        f"({latest}): upgrade the bot, or point DATABASE_URL at another database"
                    )
                for number, name, sql in migrations:
                    if number <= current:
                        continue
                    log.info("applying migration postgres/%s", name)
                    try:
                        async with conn.transaction():
                            await conn.execute(sql)
                            await conn.execute("INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                                               number, name)
                    except asyncpg.PostgresError as exc:
                        if self.is_environment_error(exc):
                            raise
                        raise StorageError(f"migration postgres/{name} failed and was rolled back: {exc}") from exc
                    current = number
            finally:
                with contextlib.suppress(Exception):
                    await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        return current

    async def check_writable(self) -> None:
        """A real write, rolled back: catches a read-only server (a standby) or a user without write rights."""
        async with self.pool.acquire() as conn:
            tr = conn.transaction()
            await tr.start()
            try:
                await conn.execute("UPDATE schema_version SET name = name WHERE version = 0")
            except asyncpg.PostgresError as exc:
                raise StorageError(f"the PostgreSQL database {self.where} cannot be written ({exc}): use a "
                                   "primary server and a user with write rights in DATABASE_URL") from exc
            finally:
                await tr.rollback()

    async def close(self) -> None:
        async with self._write_lock:
            await self.pool.close()

    async def fetch_all(self, sql: str, *args: object) -> list[Row]:
        return list(await self.pool.fetch(to_dollar(sql), *args))

    @staticmethod
    async def _settled(step: asyncio.Future[object]) -> None:
        """Await a COMMIT or ROLLBACK to its end even if the caller is cancelled meanwhile (see SQLite's)."""
        try:
            await asyncio.shield(step)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await step
            raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._write_lock:
            try:
                conn = await self.pool.acquire()
            except BaseException as exc:
                self._write_failed(exc)
                raise
            try:
                tr = conn.transaction()
                try:
                    await self._settled(asyncio.ensure_future(tr.start()))
                except BaseException as exc:
                    self._write_failed(exc)
                    raise
                try:
                    yield PostgresTransaction(conn)
                except BaseException as exc:
                    self._write_failed(exc)
                    with contextlib.suppress(Exception):
                        await self._settled(asyncio.ensure_future(tr.rollback()))
                    raise
                try:
                    await self._settled(asyncio.ensure_future(tr.commit()))
                except BaseException as exc:
                    self._write_failed(exc)
                    with contextlib.suppress(Exception):
                        await tr.rollback()
                    raise
                self._write_succeeded()
            finally:
                # Released even on a cancel; the pool resets (or closes) a connection left in a bad state.
                await asyncio.shield(self.pool.release(conn))
