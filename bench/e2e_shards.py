"""Shard scaling end to end: MESSAGE_CREATE floods into 1 and into 2 shard processes, bare discord.py and the bot.

A fresh simulator in this process holds two guilds, one on each of 2 shards, and floods both at once. The
clients are separate processes: one running both shards, then two running one shard each. Bare discord.py
(an AutoShardedClient counting on_message) gives the machine's own 1 -> 2 process scaling; the bot (PostgreSQL,
one database shared by its processes) counts an event once it is committed there. The scaling factor of each
is (events/s with 2 processes) / (events/s with 1), and the figure that matters is the bot's factor over
bare discord.py's, measured in the same run on the same machine (target >= 0.9).

    .venv/bin/python -m bench.e2e_shards [--members 5000] [--events 100000] [--quick]

Only `--backend postgres` exists: shard processes sharing one database need PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._pg import temporary_database
from bench._util import machine, verdict

ROOT = Path(__file__).resolve().parents[1]
CONTENT = "studying for the exam tonight, anyone want to join the voice channel?"
SHARDS = 2
READY_TIMEOUT = 300.0
SCALING_TARGET = 0.9
POLL = 0.01  # how often a bot process looks at its committed count


@dataclass
class Run:
    kind: str  # "bare" | "bot"
    processes: int
    events: int
    handled: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.handled / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Result:
    members: int
    events: int
    runs: dict[tuple[str, int], Run]

    def scaling(self, kind: str) -> float:
        one, two = self.runs[(kind, 1)].per_s, self.runs[(kind, 2)].per_s
        return two / one if one else 0.0

    @property
    def ratio(self) -> float:
        bare = self.scaling("bare")
        return self.scaling("bot") / bare if bare else 0.0


# ---------------------------------------------------------------------------------------------- client side
def emit(**data: Any) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def client_main(kind: str, config: dict[str, Any]) -> None:
    """Runs in a client process: connect its shards, say ready, count its share of the flood, report when done."""
    import asyncpg
    import discord

    from bot.app import apply_discord_endpoints, intents_for, running
    from bot.settings import load_settings

    guild_ids = [int(g) for g in config["guild_ids"]]
    target = int(config["events"])
    settings = load_settings({
        "DISCORD_TOKEN": config["token"],
        "DATABASE_PATH": str(Path(config["workdir"]) / "unused.db"),
        "DATABASE_URL": config["database_url"],
        "SHARD_COUNT": str(SHARDS),
        "SHARD_IDS": ",".join(map(str, config["shard_ids"])),
        "DISCORD_API_BASE": config["api_base"],
        "DISCORD_GATEWAY_URL": config["gateway_url"],
        "LOG_LEVEL": "WARNING",
    })

    if kind == "bare":
        apply_discord_endpoints(settings)
        done = asyncio.Event()
        count = 0
        done_at = 0.0

        class BareClient(discord.AutoShardedClient):
            async def on_message(self, message: discord.Message) -> None:
                nonlocal count, done_at
                count += 1
                if count == target:
                    done_at = time.monotonic()
                    done.set()

        client = BareClient(intents=intents_for(settings), shard_count=SHARDS, shard_ids=list(config["shard_ids"]),
                            guild_ready_timeout=0.1)
        await client.login(settings.discord_token)
        connection = asyncio.create_task(client.connect(reconnect=False))
        try:
            await asyncio.wait_for(client.wait_until_ready(), READY_TIMEOUT)
            emit(ready=True)
            await asyncio.wait_for(done.wait(), 600)
        finally:
            await client.close()
            connection.cancel()
        emit(handled=count, done_at=done_at)
        return

    async with running(settings, ready_timeout=READY_TIMEOUT, guild_ready_timeout=0.1) as bot:
        for guild_id in guild_ids:
            await bot.recorder.guild(guild_id)  # the default pack exists before the first event
        conn = await asyncpg.connect(config["database_url"])
        try:
            emit(ready=True)
            stored = 0
            deadline = time.monotonic() + 600
            while stored < target and time.monotonic() < deadline:
                await asyncio.sleep(POLL)
                stored = int(await conn.fetchval(
                    "SELECT COALESCE(SUM(messages), 0) FROM member_stats WHERE guild_id = ANY($1::BIGINT[])",
                    guild_ids))
            done_at = time.monotonic()
        finally:
            await conn.close()
    emit(handled=stored, done_at=done_at)


# ------------------------------------------------------------------------------------------ orchestrator
async def measure(kind: str, processes: int, members: int, events: int, workdir: Path) -> Run:
    """A fresh simulator (and, for the bot, a fresh database) with one guild per shard; one flood of both."""
    from bot.ownership import shard_of
    from discord_sim import DiscordSimulator

    async with DiscordSimulator() as sim, temporary_database(f"shards_{kind}_{processes}") as database_url:
        guilds = []
        while {shard_of(g.id, SHARDS) for g in guilds} != set(range(SHARDS)):
            guild = sim.create_guild(f"Guild {len(guilds)}")
            if shard_of(guild.id, SHARDS) not in {shard_of(g.id, SHARDS) for g in guilds}:
                guilds.append(guild)
            await asyncio.sleep(0.002)  # the next snowflake's timestamp, and so maybe its shard, moves on
        guilds.sort(key=lambda g: shard_of(g.id, SHARDS))
        authors = []
        for index in range(members):
            user = sim.create_user(f"member{index}")
            for guild in guilds:
                sim.add_member(guild.id, user.id)
            authors.append(user.id)
        per_guild = events // SHARDS
        plan = [list(range(SHARDS))] if processes == 1 else [[shard] for shard in range(SHARDS)]
        procs = []
        try:
            for number, shard_ids in enumerate(plan):
                config = {
                    "token": sim.token, "api_base": sim.api_base, "gateway_url": sim.gateway_url,
                    "database_url": database_url, "shard_ids": shard_ids, "workdir": str(workdir),
                    "guild_ids": [guilds[s].id for s in shard_ids], "events": per_guild * len(shard_ids),
                }
                stderr = (workdir / f"{kind}-{processes}-{number}.stderr").open("wb")
                procs.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.e2e_shards", "--client", kind, "--config", json.dumps(config),
                    cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=stderr,
                    env=os.environ | {"PYTHONUNBUFFERED": "1"},
                ))
                stderr.close()
            for number, proc in enumerate(procs):
                assert proc.stdout is not None
                if not (await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT + 30)).strip():
                    log = (workdir / f"{kind}-{processes}-{number}.stderr").read_text()[-3000:]
                    raise RuntimeError(f"{kind} client ended before it was ready:\n{log}")
            starts = await asyncio.gather(*(
                sim.flood_messages(guild.system_channel_id or 0, authors, per_guild, content=CONTENT)
                for guild in guilds
            ))
            reports = []
            for proc in procs:
                assert proc.stdout is not None
                reports.append(json.loads(await asyncio.wait_for(proc.stdout.readline(), 600)))
                await asyncio.wait_for(proc.wait(), 60)
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    handled = sum(int(r["handled"]) for r in reports)
    seconds = max(float(r["done_at"]) for r in reports) - min(starts)
    return Run(kind, processes, per_guild * SHARDS, handled, seconds)


async def run(members: int = 5000, events: int = 100_000) -> Result:
    runs: dict[tuple[str, int], Run] = {}
    with tempfile.TemporaryDirectory(prefix="e2e-shards-") as tmp:
        for kind in ("bare", "bot"):
            for processes in (1, 2):
                runs[(kind, processes)] = await measure(kind, processes, members, events, Path(tmp))
    return Result(members, events, runs)


def report(result: Result) -> str:
    lines = [
        f"Shard scaling end to end: 2 guilds (one per shard), {result.members:,} members, "
        f"{result.events:,} MESSAGE_CREATE events, PostgreSQL for the bot",
        f"machine: {machine()}",
        "",
    ]
    for kind, label in (("bare", "bare discord.py"), ("bot", "our bot (committed)")):
        one, two = result.runs[(kind, 1)], result.runs[(kind, 2)]
        lines.append(f"{label:<22} 1 process {one.per_s:>9,.0f} events/s   2 processes {two.per_s:>9,.0f} events/s"
                     f"   scaling {result.scaling(kind):.2f}")
    lines.append(f"bot scaling / bare scaling = {result.ratio:.2f}  target >= {SCALING_TARGET}  "
                 f"{verdict(result.ratio >= SCALING_TARGET)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--backend", choices=("postgres",), default="postgres")
    parser.add_argument("--quick", action="store_true", help="50 members, 1,000 events: a smoke run")
    parser.add_argument("--client", choices=("bare", "bot"), help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        asyncio.run(client_main(args.client, json.loads(args.config)))
        return
    members, events = (50, 1000) if args.quick else (args.members, args.events)
    print(report(asyncio.run(run(members, events))))


if __name__ == "__main__":
    main()
