"""A throw-away PostgreSQL database for tests, or one line saying why the test skips (REQUIRE_POSTGRES=1: fail)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlparse, urlunparse

import asyncpg
import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    """The server tests may create databases on: TEST_DATABASE_URL, or the local trust-auth default."""
    return os.environ.get("TEST_DATABASE_URL", "").strip() or DEFAULT_URL


def with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


async def _admin_connection() -> asyncpg.Connection:
    url = server_url()
    try:
        return await asyncpg.connect(url, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = f"no PostgreSQL server answers at {urlparse(url).hostname}:{urlparse(url).port or 5432} ({exc})"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(f"{reason}: set TEST_DATABASE_URL to use another server, or REQUIRE_POSTGRES=1 to fail instead")


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new, empty database for one test (advisory locks are per database, so tests running at the same
    time on one server never see each other's); dropped afterwards. Yields its URL."""
    admin = await _admin_connection()
    name = f"test_{uuid.uuid4().hex[:16]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield with_database(server_url(), name)
        finally:
            # FORCE: a connection a failed test left open must not keep the database alive.
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
