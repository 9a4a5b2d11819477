"""Target 3: the data behind /profile (rank, Top X%, nearest achievements) and /leaderboard pages at
10k, 100k and 1M members, p50 and p99. Baseline in the same run: a plain COUNT over the points index
(what a naive rank costs). Also target 5's second half: RSS with 1M stored members.

Usage: python -m bench.read_paths [--sizes 10000,100000,1000000] [--samples 1000] [--backend postgres]
(--backend postgres: a database made for the run on the server of bench/_pg.py, bulk loaded with COPY, dropped
after.)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from bench._util import machine, percentile, rss_mb, verdict
from bench.dataset import GUILD_ID, build
from bot.clock import FakeClock
from bot.profiles import PAGE_SIZE
from bot.services import build_services
from bot.storage import Storage

TARGET_P99_MS = 15.0
TARGET_RSS_MB = 300.0


async def timed(samples: int, call: object) -> list[float]:
    results = []
    for index in range(samples):
        started = time.perf_counter()
        await call(index)  # type: ignore[operator]
        results.append((time.perf_counter() - started) * 1000)
    return results


async def measure(members: int, samples: int, backend: str = "sqlite") -> dict[str, list[float]]:
    if backend == "postgres":
        from bench._pg import temporary_database

        async with temporary_database("read") as url:
            return await measure_at(url, members, samples)
    return await measure_at(Path(tempfile.mkdtemp(prefix="bench-read-")) / "read.db", members, samples)


async def measure_at(path: Path | str, members: int, samples: int) -> dict[str, list[float]]:
    load_s = await build(path, members)
    services = build_services(await Storage.open(path), FakeClock())
    storage, profiles = services.storage, services.profiles
    rng = random.Random(members)
    pages = max(1, members // PAGE_SIZE)
    ids = [rng.randint(1, members) for _ in range(samples)]
    deep = [rng.randrange(pages) for _ in range(samples)]

    async def naive_count(i: int) -> None:
        await storage.db.fetch_value(
            "SELECT COUNT(*) FROM member_stats WHERE guild_id = ? AND in_guild = 1 AND points > ?", GUILD_ID, 0
        )

    figures = {
        "profile": await timed(samples, lambda i: profiles.profile(GUILD_ID, ids[i])),
        "leaderboard page 1": await timed(samples, lambda i: profiles.leaderboard(GUILD_ID, 0, ids[i])),
        "leaderboard random page": await timed(samples, lambda i: profiles.leaderboard(GUILD_ID, deep[i], ids[i])),
        "jump to me (page_of)": await timed(samples, lambda i: profiles.page_of(GUILD_ID, ids[i])),
        "baseline COUNT(*)": await timed(min(samples, 50), naive_count),
    }
    figures["rss_mb"] = [rss_mb()]
    figures["load_s"] = [load_s]
    await services.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    # p99 of 1000 samples is the 10th worst: a single hiccup of a busy machine does not decide it.
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    print(f"read paths · {args.backend} · {machine()}")
    for members in (int(s) for s in args.sizes.split(",")):
        figures = asyncio.run(measure(members, args.samples, args.backend))
        base = percentile(figures["baseline COUNT(*)"], 99)
        print(f"  {members:>9,} members (loaded in {figures['load_s'][0]:.1f} s)")
        for name, samples in figures.items():
            if name in ("rss_mb", "load_s"):
                continue
            p50, p99 = percentile(samples, 50), percentile(samples, 99)
            gated = name in ("profile", "leaderboard page 1", "leaderboard random page", "jump to me (page_of)")
            mark = f"  {verdict(p99 <= TARGET_P99_MS)}" if gated and members >= 1_000_000 else ""
            print(f"    {name:<26} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  p99/baseline {p99 / base:5.2f}{mark}")
        rss = figures["rss_mb"][0]
        mark = f"  {verdict(rss <= TARGET_RSS_MB)}" if members >= 1_000_000 else ""
        print(f"    RSS of this process after the reads: {rss:.0f} MB{mark}")


if __name__ == "__main__":
    main()
