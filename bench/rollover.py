"""Target 4: the midnight rollover of one guild of 1M members: total time and the longest block of the
event loop. Baseline in the same run: the same streak reset as one plain UPDATE on a copy of the data.

Usage: python -m bench.rollover [--members 1000000] [--cached 100000] [--backend postgres]
(--backend postgres: a database made for the run, see bench/_pg.py; its baseline UPDATE runs on a copy made
with CREATE DATABASE ... TEMPLATE.)
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._util import LoopMonitor, machine, rss_mb, verdict
from bench.dataset import GUILD_ID, TODAY, build
from bot.clock import FakeClock
from bot.engine.stats import Activity, ActivityKind
from bot.services import build_services
from bot.storage import Storage

TARGET_TOTAL_S = 3.0
TARGET_POSTGRES_TOTAL_S = 5.0
TARGET_BLOCK_MS = 50.0


def plain_update(path: Path) -> tuple[float, int]:
    conn = sqlite3.connect(path, isolation_level=None)
    started = time.perf_counter()
    changed = conn.execute(
        "UPDATE member_stats SET streak = 0 WHERE guild_id = ? AND streak > 0 AND last_active_date < ?",
        (GUILD_ID, TODAY.isoformat()),
    ).rowcount
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed, changed


async def run(members: int, cached: int, backend: str = "sqlite") -> dict[str, float]:
    if backend == "postgres":
        from bench._pg import temporary_database

        async with temporary_database("rollover") as url, temporary_database("rollover_base") as base_url:
            await build(url, members)
            await build(base_url, members)  # the same seed: the same members
            return await roll(url, cached, lambda: postgres_plain_update(base_url))
    folder = Path(tempfile.mkdtemp(prefix="bench-rollover-"))
    path = folder / "rollover.db"
    await build(path, members)
    for suffix in ("", "-wal", "-shm"):
        if (folder / f"rollover.db{suffix}").exists():
            shutil.copy(folder / f"rollover.db{suffix}", folder / f"baseline.db{suffix}")
    return await roll(path, cached, lambda: asyncio.to_thread(plain_update, folder / "baseline.db"))


async def postgres_plain_update(url: str) -> tuple[float, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        status = await conn.execute(
            "UPDATE member_stats SET streak = 0 WHERE guild_id = $1 AND streak > 0 AND last_active_date < $2",
            GUILD_ID, TODAY.isoformat(),
        )
        return time.perf_counter() - started, int(status.split()[-1])
    finally:
        await conn.close()


async def roll(
    path: Path | str, cached: int, baseline_update: Callable[[], Awaitable[tuple[float, int]]]
) -> dict[str, float]:
    services = build_services(await Storage.open(path), FakeClock(), max_cached_members=max(cached, 1))
    recorder = services.recorder
    # Members seen recently sit in the cache, as in a running bot; the rollover must fix them too. A
    # presence from days ago loads them without changing their streaks.
    await recorder.guild(GUILD_ID)
    long_ago = datetime.combine(TODAY - timedelta(days=40), datetime.min.time(), tzinfo=UTC)
    for start in range(1, cached + 1, 10_000):
        await recorder.record_many([
            Activity(GUILD_ID, member_id, ActivityKind.PRESENCE, long_ago)
            for member_id in range(start, min(start + 10_000, cached + 1))
        ])
    await recorder.flush()
    await recorder.guild(GUILD_ID)
    with LoopMonitor() as monitor:
        started = time.perf_counter()
        reset = await recorder.close_day(GUILD_ID, TODAY)
        total = time.perf_counter() - started
        await asyncio.sleep(0.02)
    rss = rss_mb()
    await services.close()
    baseline, baseline_reset = await baseline_update()
    return {"total": total, "block": monitor.max_block, "reset": reset, "baseline": baseline,
            "baseline_reset": baseline_reset, "rss": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--cached", type=int, default=100_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    r = asyncio.run(run(args.members, args.cached, args.backend))
    target = TARGET_TOTAL_S if args.backend == "sqlite" else TARGET_POSTGRES_TOTAL_S
    print(f"rollover · {args.backend} · {args.members:,} members, {args.cached:,} cached · {machine()}")
    print(f"  streaks reset: {r['reset']:,.0f} (plain UPDATE reset {r['baseline_reset']:,.0f})")
    print(f"  total time     {r['total']:7.2f} s   ratio to one plain UPDATE {r['total'] / r['baseline']:5.2f}  "
          f"{verdict(r['total'] <= target)}")
    print(f"  longest loop block {r['block'] * 1000:7.1f} ms  {verdict(r['block'] * 1000 <= TARGET_BLOCK_MS)}")
    print(f"  plain UPDATE   {r['baseline']:7.2f} s")
    print(f"  RSS {r['rss']:.0f} MB")


if __name__ == "__main__":
    main()
