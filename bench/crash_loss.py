"""Activity lost on a hard crash: the bot is killed with SIGKILL in the middle of a steady message flood.

The simulator (this process) sends MESSAGE_CREATE at a steady rate to the real bot (`bot.app.running`, its
own process; SQLite, or PostgreSQL with `--backend postgres`); at a random moment the bot gets SIGKILL. Then
the database says how many messages were committed, and the send log says when the last committed one was
sent: the activity lost is the time from there to the kill. The promise is at most 1 s (the write-behind
interval is 0.5 s); the ratio printed is the worst loss over that promise, and the median loss over the
flush interval, from the same run.

    .venv/bin/python -m bench.crash_loss [--rate 6000] [--trials 9] [--members 10000] [--backend postgres] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._util import machine, verdict

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
FLUSH_INTERVAL_S = 0.5  # the recorder's default
TICK_S = 0.01  # the flood is sent in small batches this often
READY_TIMEOUT = 120.0


@dataclass
class Trial:
    rate: int
    killed_after: float
    sent: int
    stored: int
    loss_s: float  # from the send time of the last committed message to the kill

    @property
    def lost(self) -> int:
        return self.sent - self.stored


# ---------------------------------------------------------------------------------------------- the bot
async def client_main(config: dict[str, Any]) -> None:
    """Runs in the bot's process: start the real bot, say ready, then run until killed."""
    from bot.app import running
    from bot.settings import load_settings

    settings = load_settings({
        "DISCORD_TOKEN": config["token"],
        "DATABASE_PATH": config["database_path"],
        "DATABASE_URL": config.get("database_url") or "",
        "DISCORD_API_BASE": config["api_base"],
        "DISCORD_GATEWAY_URL": config["gateway_url"],
        "DEV_GUILD_ID": str(config["guild_id"]),
        "LOG_LEVEL": "WARNING",
    })
    async with running(settings, ready_timeout=READY_TIMEOUT, guild_ready_timeout=0.1) as bot:
        await bot.recorder.guild(int(config["guild_id"]))  # the default pack exists before the first event
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.Event().wait()  # until SIGKILL


def stored_messages(database: Path, guild_id: int) -> int:
    with sqlite3.connect(database) as conn:
        row = conn.execute("SELECT COALESCE(SUM(messages), 0) FROM member_stats WHERE guild_id = ?",
                          (guild_id,)).fetchone()
    return int(row[0])


async def stored_messages_postgres(url: str, guild_id: int) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT COALESCE(SUM(messages), 0) FROM member_stats WHERE guild_id = $1", guild_id))
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------ orchestrator
async def trial(rate: int, members: int, kill_after: float, workdir: Path, number: int,
                backend: str = "sqlite") -> Trial:
    if backend == "postgres":
        from bench._pg import temporary_database

        async with temporary_database(f"crash_{number}") as url:
            return await _trial(rate, members, kill_after, workdir, number, url)
    return await _trial(rate, members, kill_after, workdir, number, None)


async def _trial(rate: int, members: int, kill_after: float, workdir: Path, number: int,
                 database_url: str | None) -> Trial:
    from discord_sim import DiscordSimulator

    database = workdir / f"trial-{number}.db"
    async with DiscordSimulator() as sim:
        guild = sim.create_guild("Crash Guild")
        channel_id = guild.system_channel_id or 0
        authors = []
        for index in range(members):
            user = sim.create_user(f"member{index}")
            sim.add_member(guild.id, user.id)
            authors.append(user.id)
        config = {"token": sim.token, "api_base": sim.api_base, "gateway_url": sim.gateway_url,
                  "guild_id": guild.id, "database_path": str(database), "database_url": database_url}
        stderr_path = workdir / f"trial-{number}.stderr"
        with stderr_path.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.crash_loss", "--client", json.dumps(config),
                cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=stderr, env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )
        assert proc.stdout is not None
        try:
            ready = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT + 30)
            if not ready.strip():
                raise RuntimeError(f"the bot ended before it was ready:\n{stderr_path.read_text()[-3000:]}")
            per_tick = max(1, round(rate * TICK_S))
            sent = 0
            log: list[tuple[int, float]] = []  # (messages sent so far, when the last of them was queued)
            started = time.monotonic()
            next_tick = started
            while time.monotonic() - started < kill_after:
                batch = [authors[(sent + i) % members] for i in range(per_tick)]
                await sim.flood_messages(channel_id, batch, per_tick)
                sent += per_tick
                log.append((sent, time.monotonic()))
                next_tick += TICK_S
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    if database_url:
        stored = await stored_messages_postgres(database_url, guild.id)
    else:
        stored = await asyncio.to_thread(stored_messages, database, guild.id)
    last_stored_sent_at = next((at for count, at in log if count >= stored), killed_at) if stored else started
    return Trial(rate, killed_at - started, sent, stored, max(0.0, killed_at - last_stored_sent_at))


async def run(rate: int = 6000, trials: int = 9, members: int = 10_000, seed: int = 1,
              backend: str = "sqlite") -> list[Trial]:
    chooser = random.Random(seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="crash-loss-") as tmp:
        for number in range(trials):
            kill_after = chooser.uniform(3.0, 5.0) if trials > 1 else 2.0
            results.append(await trial(rate, members, kill_after, Path(tmp), number, backend))
    return results


def report(results: list[Trial], backend: str = "sqlite") -> str:
    losses = [t.loss_s for t in results]
    worst, median = max(losses), statistics.median(losses)
    lines = [
        f"crash loss ({backend}): SIGKILL during a {results[0].rate:,} messages/s flood, {len(results)} trials "
        f"({machine()})",
        *(f"  trial {n + 1}: killed after {t.killed_after:.2f} s, {t.sent:,} sent, {t.stored:,} committed, "
          f"{t.lost:,} lost = {t.loss_s * 1000:.0f} ms of activity" for n, t in enumerate(results)),
        f"  worst {worst * 1000:.0f} ms, median {median * 1000:.0f} ms; "
        f"worst / {TARGET_S:.0f} s promise = {worst / TARGET_S:.2f}  {verdict(worst <= TARGET_S)}; "
        f"median / {FLUSH_INTERVAL_S} s flush interval = {median / FLUSH_INTERVAL_S:.2f}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=6000, help="messages per second")
    parser.add_argument("--trials", type=int, default=9)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="one short trial at 1,000 messages/s")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        asyncio.run(client_main(json.loads(args.client)))
        return
    if args.quick:
        results = asyncio.run(run(rate=1000, trials=1, members=50, backend=args.backend))
    else:
        results = asyncio.run(run(rate=args.rate, trials=args.trials, members=args.members, backend=args.backend))
    print(report(results, args.backend))


if __name__ == "__main__":
    main()
