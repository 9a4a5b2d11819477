"""Both storage backends for the tests: one `backend` fixture, parametrised over SQLite and PostgreSQL (as
Red-DiscordBot's suite runs over its storage types), so that the same storage, recorder and management tests
run against each.

PostgreSQL: the admin connection is TEST_DATABASE_URL when set, else postgresql://postgres@127.0.0.1:5432/postgres
(trust authentication). The run migrates one template database once; each test gets fresh databases copied
from it (CREATE DATABASE ... TEMPLATE, about a tenth of a second) and every database the run made is dropped at
its end; `fresh_database()` gives a test of several processes an empty database of its own. Where no server
answers, the PostgreSQL variants skip with one line saying why, unless REQUIRE_POSTGRES=1 (set by .ci/run),
which makes them fail instead.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.storage import Storage
from bot.storage.database import Database, Migration
from bot.storage.postgres import PostgresDatabase
from bot.storage.sqlite import SqliteDatabase

BACKENDS = ("sqlite", "postgres")
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PREFIX = f"achv_test_{os.getpid()}_"
TEMPLATE = f"{PREFIX}template"
_numbers = itertools.count(1)
T = TypeVar("T")


def admin_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_ADMIN_URL


def database_url(name: str) -> str:
    """The admin URL with another database name."""
    parts = urlsplit(admin_url())
    return urlunsplit(parts._replace(path=f"/{name}"))


def postgres_required() -> bool:
    return os.environ.get("REQUIRE_POSTGRES") == "1"


@dataclass
class PostgresServer:
    """The test run's PostgreSQL server, or why there is none."""

    available: bool
    reason: str = ""
    made: set[str] = field(default_factory=set)

    async def create(self, name: str, template: str | None = TEMPLATE) -> str:
        conn = await asyncpg.connect(admin_url())
        try:
            # Names are made here from a fixed prefix and a counter, never from input.
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template or "template0"}"')
        finally:
            await conn.close()
        self.made.add(name)
        return database_url(name)

    async def drop(self, names: set[str]) -> None:
        conn = await asyncpg.connect(admin_url())
        try:
            for name in names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                self.made.discard(name)
        finally:
            await conn.close()


async def _start_server() -> PostgresServer:
    try:
        conn = await asyncpg.connect(admin_url(), timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return PostgresServer(False, f"PostgreSQL tests skipped: no server at {admin_url()} ({exc}); "
                                     "set TEST_DATABASE_URL, or REQUIRE_POSTGRES=1 to fail instead")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE template0')
    finally:
        await conn.close()
    server = PostgresServer(True)
    server.made.add(TEMPLATE)
    storage = await Storage.open(database_url(TEMPLATE))  # migrated once; each test copies it
    await storage.close()
    return server


def _run(coro: Coroutine[object, object, T]) -> T:
    """Run a coroutine to its end on a loop of its own, in a thread: asyncio.run here would replace the
    event loop pytest-asyncio keeps for the tests."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = _run(_start_server())
    yield server
    if server.made:
        _run(server.drop(set(server.made)))


def _refuse_or_skip(reason: str) -> NoReturn:
    if postgres_required():
        pytest.fail(f"{reason} (REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new, empty database on the test server (not migrated), dropped afterwards; yields its URL. For tests
    of several processes: advisory locks are per database, so tests running at once never see each other's."""
    try:
        conn = await asyncpg.connect(admin_url(), timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        _refuse_or_skip(f"PostgreSQL tests skipped: no server at {admin_url()} ({exc}); "
                        "set TEST_DATABASE_URL, or REQUIRE_POSTGRES=1 to fail instead")
    name = f"{PREFIX}{next(_numbers)}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        try:
            yield database_url(name)
        finally:
            # FORCE: a connection a failed test (or a killed process) left open must not keep it alive.
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class Backend:
    """Where one test's databases live. `open(name)` opens the Storage of database `name` (made on first
    use, migrated): the same name reopens the same database, another name is another database."""

    kind: str
    tmp_path: Path
    server: PostgresServer | None
    _urls: dict[str, str] = field(default_factory=dict)

    @property
    def postgres(self) -> bool:
        return self.kind == "postgres"

    async def target(self, name: str = "bot", *, empty: bool = False) -> Path | str:
        """The path or URL of database `name`; on PostgreSQL made on first use, migrated unless `empty`."""
        if not self.postgres:
            return self.tmp_path / f"{name}.db"
        assert self.server is not None
        if name not in self._urls:
            self._urls[name] = await self.server.create(f"{PREFIX}{next(_numbers)}", None if empty else TEMPLATE)
        return self._urls[name]

    async def open(self, name: str = "bot") -> Storage:
        return await Storage.open(await self.target(name))

    async def open_database(self, name: str = "bot", migrations: list[Migration] | None = None) -> Database:
        """A bare Database (no Storage), migrated with `migrations` (default: the packaged ones); a database
        made here for custom migrations starts empty."""
        target = await self.target(name, empty=migrations is not None)
        if isinstance(target, Path):
            return await SqliteDatabase.open(target, migrations)
        return await PostgresDatabase.open(target, migrations)

    async def finish(self) -> None:
        if self.server is not None and self._urls:
            names = {urlsplit(url).path.lstrip("/") for url in self._urls.values()}
            await self.server.drop(names)


@pytest.fixture(params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer
) -> AsyncIterator[Backend]:
    kind: str = request.param
    server: PostgresServer | None = None
    if kind == "postgres":
        server = postgres_server
        if not server.available:
            _refuse_or_skip(server.reason)
    made = Backend(kind, tmp_path, server)
    yield made
    await made.finish()


@pytest.fixture
async def postgres_backend(tmp_path: Path, postgres_server: PostgresServer) -> AsyncIterator[Backend]:
    """PostgreSQL only, for what SQLite has no counterpart of (several processes, advisory locks, URLs)."""
    if not postgres_server.available:
        _refuse_or_skip(postgres_server.reason)
    made = Backend("postgres", tmp_path, postgres_server)
    yield made
    await made.finish()


async def set_read_only(storage: Storage, read_only: bool) -> None:
    """Make every later write of `storage` fail as a read-only database does, or work again.

    SQLite: `PRAGMA query_only` on the bot's own connection (SQLITE_READONLY, as a read-only file gives, and
    it works as root). PostgreSQL: default_transaction_read_only for the database, with the pool's
    connections renewed so that they take it (25006 read_only_sql_transaction, as on a standby)."""
    db = storage.db
    if isinstance(db, SqliteDatabase):
        await db.conn.execute(f"PRAGMA query_only = {'ON' if read_only else 'OFF'}")
        return
    assert isinstance(db, PostgresDatabase)
    name = urlsplit(db.url).path.lstrip("/")
    conn = await asyncpg.connect(admin_url())
    try:
        setting = "on" if read_only else "off"
        await conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {setting}')
    finally:
        await conn.close()
    await db.pool.expire_connections()
