"""Shard leases: PostgreSQL advisory locks that let exactly one process own each shard."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

log = logging.getLogger(__name__)

# Keys of the two-integer advisory locks (pg_locks.classid). Two-integer keys (objsubid 2) never collide with
# single bigint keys such as a migration lock, whatever their values.
SHARD_NAMESPACE = 0x53484152  # "SHAR": one exclusive lock per shard id
COUNT_NAMESPACE = 0x53484443  # "SHDC": a shared lock per shard count, so that every process agrees on it
RETRY_SECONDS = 5.0  # SHARD_WAIT: how often a waiting process tries the shards again
CHECK_SECONDS = 5.0  # how often the lease connection is checked (a silent network loss shows on a query)
CONNECT_TIMEOUT = 10.0

_HOLDERS = """
SELECT l.objid::bigint AS key, a.pid, a.application_name, host(a.client_addr) AS client
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.classid::bigint = $1 AND l.objsubid = 2 AND l.granted
  AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
_MINE = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND classid::bigint = $1 AND objsubid = 2 AND granted AND pid = pg_backend_pid()
"""


class LeaseError(Exception):
    """The shards cannot be leased; the message is one line meant for the operator."""


class ShardTaken(LeaseError):
    """Another process owns one of the shards asked for."""


@dataclass(frozen=True, slots=True)
class Holder:
    key: int
    pid: int | None
    application_name: str | None
    client: str | None

    def describe(self) -> str:
        name = self.application_name or "a process"
        where = f" on {self.client}" if self.client else ""
        return f"{name} (PostgreSQL backend pid {self.pid}{where})"


def _redacted(url: str) -> str:
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{tail}"


class ShardLeases:
    """Session-level advisory locks on one connection kept open for the process's lifetime: PostgreSQL frees
    them when that session ends, however the process ends (a crash, kill -9, a lost network), so a restarted
    or standby process can take the shards over without anyone cleaning up."""

    def __init__(self, conn: asyncpg.Connection, *, check_interval: float = CHECK_SECONDS) -> None:
        self._conn = conn
        self._check_interval = check_interval
        self._lock = asyncio.Lock()
        self._checker: asyncio.Task[None] | None = None
        self._closing = False
        self._lost_callbacks: list[Callable[[str], None]] = []
        self.shards: tuple[int, ...] = ()
        self.shard_count: int | None = None
        self.lost = asyncio.Event()
        self.lost_reason = ""
        conn.add_termination_listener(self._terminated)

    @classmethod
    async def connect(cls, url: str, *, name: str = "achievements-bot", check_interval: float = CHECK_SECONDS
                      ) -> ShardLeases:
        """Open the lease connection; a server that does not answer or refuses stops the bot with one line."""
        shown = _redacted(url)
        try:
            conn = await asyncpg.connect(
                url, timeout=CONNECT_TIMEOUT,
                # Shown to the operator of a refused process: which process holds the shard.
                server_settings={"application_name": f"{name}@{socket.gethostname()}"[:63]},
            )
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
            raise LeaseError(f"PostgreSQL at {shown} refused the user or password in DATABASE_URL: {exc}") from exc
        except asyncpg.InvalidCatalogNameError as exc:
            raise LeaseError(f"PostgreSQL at {shown} has no such database: {exc}; create it first") from exc
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise LeaseError(f"cannot reach PostgreSQL at {shown} (DATABASE_URL) to lease shards: {exc}") from exc
        return cls(conn, check_interval=check_interval)

    def on_lost(self, callback: Callable[[str], None]) -> None:
        """`callback(reason)` runs once, as soon as the leases are known to be lost."""
        self._lost_callbacks.append(callback)

    async def acquire(
        self, shard_count: int, shard_ids: Sequence[int], *, wait: bool = False, retry_interval: float = RETRY_SECONDS
    ) -> None:
        """Take every shard in `shard_ids`, or none: raises ShardTaken naming the owner, or with `wait`
        tries again every `retry_interval` seconds until the owners are gone."""
        while True:
            try:
                await self._try_acquire(shard_count, shard_ids)
            except ShardTaken as exc:
                if not wait:
                    raise
                log.warning("%s; waiting for it to stop (trying again every %.0f s)", exc, retry_interval)
                await asyncio.sleep(retry_interval)
                continue
            break
        log.info("leased shards %s of %d", list(self.shards), shard_count)
        if self._checker is None:
            self._checker = asyncio.create_task(self._check_loop(), name="shard-leases")

    async def _try_acquire(self, shard_count: int, shard_ids: Sequence[int]) -> None:
        async with self._lock:
            # All or nothing: holding some shards while waiting for others could leave two waiting processes
            # each holding what the other needs.
            try:
                await self._conn.execute("SELECT pg_advisory_unlock_all()")
                await self._conn.fetchval("SELECT pg_try_advisory_lock_shared($1::int, $2::int)",
                                          COUNT_NAMESPACE, shard_count)
                others = [h for h in await self._holders(COUNT_NAMESPACE) if h.key != shard_count]
                if others:
                    await self._conn.execute("SELECT pg_advisory_unlock_all()")
                    # Not something waiting fixes: the guilds would be split two ways at once.
                    raise LeaseError(
                        f"SHARD_COUNT={shard_count} disagrees with {others[0].describe()}, which runs with "
                        f"SHARD_COUNT={others[0].key}: every shard process must use the same SHARD_COUNT"
                    )
                refused = [
                    shard for shard in shard_ids
                    if not await self._conn.fetchval("SELECT pg_try_advisory_lock($1::int, $2::int)",
                                                     SHARD_NAMESPACE, shard)
                ]
                if refused:
                    holders = {h.key: h for h in await self._holders(SHARD_NAMESPACE)}
                    await self._conn.execute("SELECT pg_advisory_unlock_all()")
                    holder = holders.get(refused[0])
                    owner = holder.describe() if holder else "another process"
                    raise ShardTaken(
                        f"shard {refused[0]} of {shard_count} is already owned by {owner}: stop that process "
                        f"first, run this one with other SHARD_IDS, or set SHARD_WAIT=1 to wait for it"
                    )
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                raise LeaseError(f"leasing shards on PostgreSQL failed: {exc}") from exc
            self.shards = tuple(shard_ids)
            self.shard_count = shard_count

    async def _holders(self, namespace: int) -> list[Holder]:
        rows = await self._conn.fetch(_HOLDERS, namespace)
        return [Holder(r["key"], r["pid"], r["application_name"], r["client"]) for r in rows]

    async def _check_loop(self) -> None:
        while not self.lost.is_set():
            await asyncio.sleep(self._check_interval)
            try:
                async with self._lock:
                    held = await asyncio.wait_for(self._conn.fetchval(_MINE, SHARD_NAMESPACE), self._check_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._lose(f"the lease connection to PostgreSQL failed a check: {exc!r}")
                return
            if held != len(self.shards):
                self._lose(f"PostgreSQL holds {held} of this process's {len(self.shards)} shard locks")
                return

    def _terminated(self, conn: asyncpg.Connection) -> None:
        if not self._closing:
            self._lose("the lease connection to PostgreSQL closed")

    def _lose(self, reason: str) -> None:
        if self.lost.is_set() or self._closing:
            return
        self.lost_reason = reason
        self.lost.set()
        log.critical("lost the leases on shards %s: %s; another process may own them now, so this one stops "
                     "owning its guilds and shuts down", list(self.shards), reason)
        for callback in self._lost_callbacks:
            try:
                callback(reason)
            except Exception:
                log.exception("a lease-lost callback failed")

    async def close(self) -> None:
        """Release the shards (by ending the session): a waiting process can take them at once."""
        self._closing = True
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        if not self._conn.is_closed():
            try:
                await asyncio.wait_for(self._conn.close(), 5)
            except (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresError):
                self._conn.terminate()
