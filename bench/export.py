"""/settings export of a guild of N members (default 1M): time, peak RSS and the longest event-loop stall.

Runs Management.export as the command does (JSON, no upload limit, so the whole file is written). Baseline in
the same run: a raw scan of the same rows (member_stats, custom_stats, unlocks) with no serialising at all.
Before the export was streamed, 1M members took 45 s, +4.9 GB and stalled the loop for 4.9 s.

Usage: python -m bench.export [--members 1000000] [--format json|csv] [--db PATH (reused if it exists)]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._util import LoopMonitor, machine, rss_mb
from bench.dataset import GUILD_ID, build
from bot.clock import FakeClock
from bot.export import ExportFormat
from bot.services import build_services
from bot.storage import Storage

TARGET_STALL_MS = 100.0  # a stall past this delays gateway heartbeats and every other guild's commands
SCAN_BATCH = 5000


def peak_rss_mb() -> float:
    """The process's peak resident memory since the last reset_peak_rss(), from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss() -> None:
    """Start peak RSS afresh, so that building the dataset does not count (Linux 4.0+; else a no-op)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


async def raw_scan(storage: Storage) -> int:
    """Read every row the export reads, and nothing more: the floor for any export."""
    rows = 0
    for sql in ("SELECT * FROM member_stats WHERE guild_id = ?", "SELECT * FROM custom_stats WHERE guild_id = ?",
                "SELECT * FROM unlocks WHERE guild_id = ?"):
        async with storage.db.conn.execute(sql, (GUILD_ID,)) as cursor:
            while batch := await cursor.fetchmany(SCAN_BATCH):
                rows += len(batch)
    return rows


async def run(members: int, format: ExportFormat = "json", db: Path | None = None) -> dict[str, Any]:
    scratch = None if db else tempfile.TemporaryDirectory(prefix="bench-export-")
    path = db or Path(scratch.name) / "export.db"  # type: ignore[union-attr]
    if not path.exists():
        await build(path, members)
    services = build_services(await Storage.open(path), FakeClock())
    storage, management = services.storage, services.management
    try:
        with LoopMonitor() as scan_monitor:
            started = time.perf_counter()
            rows = await raw_scan(storage)
            baseline_s = time.perf_counter() - started

        rss_before = rss_mb()
        reset_peak_rss()
        with LoopMonitor() as monitor:
            started = time.perf_counter()
            export = await management.export(GUILD_ID, format)
            export_s = time.perf_counter() - started
        try:
            return {
                "members": export.members, "rows": rows, "baseline_s": baseline_s, "export_s": export_s,
                "rss_before_mb": rss_before, "peak_rss_mb": peak_rss_mb(), "max_stall_ms": monitor.max_block * 1000,
                "baseline_stall_ms": scan_monitor.max_block * 1000,
                "filename": export.filename, "size_mb": export.size / 2**20,
            }
        finally:
            export.discard()
    finally:
        await services.close()
        if scratch is not None:
            scratch.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("json", "csv"), default="json")
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    r = asyncio.run(run(args.members, args.format, args.db))
    stall_ok = r["max_stall_ms"] <= TARGET_STALL_MS
    print(f"export · {machine()}")
    print(f"  {r['members']:,} members, {r['rows']:,} rows → {r['filename']} ({r['size_mb']:.1f} MiB)")
    print(f"  baseline raw scan       {r['baseline_s']:7.2f} s   (longest loop stall {r['baseline_stall_ms']:.1f} ms)")
    print(f"  export                  {r['export_s']:7.2f} s   ({r['export_s'] / r['baseline_s']:.1f}× the raw scan)")
    print(f"  peak RSS                {r['peak_rss_mb']:7.0f} MB  (+{r['peak_rss_mb'] - r['rss_before_mb']:.0f} MB "
          "over the process before the export)")
    print(f"  longest loop stall      {r['max_stall_ms']:7.1f} ms  target ≤ {TARGET_STALL_MS:.0f} ms  "
          f"{'PASS' if stall_ok else 'MISS'}")


if __name__ == "__main__":
    main()
