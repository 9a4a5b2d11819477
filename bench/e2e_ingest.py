"""End-to-end ingest: MESSAGE_CREATE floods through the simulator's gateway into bare discord.py and into the bot.

Each client runs in its own process, against a fresh simulator in this process, so the simulator's CPU
(one core) is not counted against the client (the other core). Both runs use the same arrangement, intents
and guild, so the ratio bot / bare discord.py is fair.

    .venv/bin/python -m bench.e2e_ingest [--members 10000] [--events 200000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._util import LoopMonitor, machine, rss_mb, verdict

ROOT = Path(__file__).resolve().parents[1]
CONTENT = "studying for the exam tonight, anyone want to join the voice channel?"
READY_TIMEOUT = 300.0
RATIO_TARGET = 0.5
COMMIT_TARGET_S = 1.0
BLOCK_TARGET_MS = 50.0


@dataclass
class ClientFigures:
    kind: str
    events: int
    handled: int = 0
    seconds: float = 0.0
    commit_seconds: float | None = None  # from the last event handled until all counts are committed
    stored_messages: int | None = None
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    longest_callback_ms: float = 0.0
    longest_callback: str = ""
    slow_callbacks: int = 0  # callbacks over BLOCK_TARGET_MS, as asyncio's debug mode would log them
    max_loop_lateness_ms: float = 0.0
    gc_total_s: float = 0.0
    gc_longest_ms: float = 0.0
    gc_longest_generation: int = -1
    unlocks: int | None = None
    announcements_posted: int = 0  # bot messages the simulator received during the run

    @property
    def per_s(self) -> float:
        return self.handled / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Result:
    members: int
    events: int
    bare: ClientFigures
    bot: ClientFigures
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.bot.per_s / self.bare.per_s if self.bare.per_s else 0.0


# ---------------------------------------------------------------------------------------------- client side
class SlowCallbacks:
    """Times every callback the event loop runs: what asyncio's debug mode logs as "Executing ... took",
    without debug mode's other costs (a stack captured for every handle and coroutine)."""

    def __init__(self, threshold: float = BLOCK_TARGET_MS / 1000) -> None:
        self.threshold = threshold
        self.longest = 0.0
        self.longest_what = ""
        self.slow = 0

    @contextmanager
    def watching(self) -> Iterator[SlowCallbacks]:
        handle_cls = asyncio.events.Handle
        original: Callable[[asyncio.Handle], None] = handle_cls._run  # type: ignore[attr-defined]
        clock = time.perf_counter

        def timed(handle: asyncio.Handle) -> None:
            start = clock()
            original(handle)
            took = clock() - start
            if took > self.longest:
                self.longest = took
                if took > 0.002:
                    self.longest_what = describe(handle)
            if took > self.threshold:
                self.slow += 1

        handle_cls._run = timed  # type: ignore[attr-defined]
        try:
            yield self
        finally:
            handle_cls._run = original  # type: ignore[attr-defined]


def describe(handle: asyncio.Handle) -> str:
    """The task a handle stepped (by its coroutine and where it suspended next), else the handle."""
    owner = getattr(getattr(handle, "_callback", None), "__self__", None)
    if not isinstance(owner, asyncio.Task):
        return repr(handle)[:200]
    coro: Any = owner.get_coro()
    where = []
    while coro is not None and hasattr(coro, "cr_frame"):
        frame = coro.cr_frame
        if frame is not None:
            where.append(f"{frame.f_code.co_qualname}:{frame.f_lineno}")
        coro = coro.cr_await
    return f"task {owner.get_name()!r} " + " > ".join(where)[:300]


class GcPauses:
    """Time spent in the cyclic garbage collector, and its longest single pass."""

    def __init__(self) -> None:
        self.total = 0.0
        self.longest = 0.0
        self.longest_generation = -1
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.total += took
        if took > self.longest:
            self.longest, self.longest_generation = took, info["generation"]

    @contextmanager
    def watching(self) -> Iterator[GcPauses]:
        gc.callbacks.append(self._callback)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._callback)


def stored_messages(database: Path, guild_id: int) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT COALESCE(SUM(messages), 0) FROM member_stats WHERE guild_id = ?",
                           (guild_id,)).fetchone()
        return int(row[0])


def count_unlocks(database: Path, guild_id: int) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM unlocks WHERE guild_id = ?", (guild_id,)).fetchone()[0])


def emit(**data: Any) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


class Counter:
    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.done_at = 0.0
        self.done = asyncio.Event()

    def hit(self) -> None:
        self.count += 1
        if self.count == self.target:
            self.done_at = time.monotonic()
            self.done.set()


async def client_main(kind: str, config: dict[str, Any]) -> None:
    """Runs in the client process: connect, say ready, count the flood, report figures as one JSON line."""
    import discord

    from bot.app import apply_discord_endpoints, intents_for, running
    from bot.engine.stats import Activity, ActivityKind
    from bot.settings import load_settings

    database = Path(config["database_path"])
    guild_id = int(config["guild_id"])
    settings = load_settings({
        "DISCORD_TOKEN": config["token"],
        "DATABASE_PATH": str(database),
        "DISCORD_API_BASE": config["api_base"],
        "DISCORD_GATEWAY_URL": config["gateway_url"],
        "DEV_GUILD_ID": str(guild_id),
        "LOG_LEVEL": "WARNING",
    })
    counter = Counter(int(config["events"]))
    figures = ClientFigures(kind, counter.target)
    callbacks = SlowCallbacks()
    gc_pauses = GcPauses()
    timeout = float(config.get("timeout", 600))

    async def trace() -> None:
        # E2E_TRACE=1: a line every 0.5 s on stderr (tasks alive, events handled, RSS) to see a backlog grow.
        while True:
            await asyncio.sleep(0.5)
            print(f"[{kind}] handled {counter.count:>7} tasks {len(asyncio.all_tasks()):>7} rss {rss_mb():.0f} MB "
                  f"gc {gc.get_count()}", file=sys.stderr)

    async def measure(after_stream: Callable[[], Any] | None) -> None:
        tracer = asyncio.create_task(trace()) if os.environ.get("E2E_TRACE") else None
        with LoopMonitor(interval=0.01) as monitor, callbacks.watching(), gc_pauses.watching(), \
                profiling(config.get("profile"), kind):
            emit(ready=True)
            try:
                await asyncio.wait_for(counter.done.wait(), timeout)
            except TimeoutError:
                figures.handled = counter.count
                raise
            if after_stream is not None:
                await after_stream()
        if tracer is not None:
            tracer.cancel()
        figures.handled = counter.count
        figures.max_loop_lateness_ms = monitor.max_block * 1000
        figures.longest_callback_ms = callbacks.longest * 1000
        figures.longest_callback = callbacks.longest_what
        figures.slow_callbacks = callbacks.slow
        figures.gc_total_s = gc_pauses.total
        figures.gc_longest_ms = gc_pauses.longest * 1000
        figures.gc_longest_generation = gc_pauses.longest_generation
        figures.rss_mb = rss_mb()
        figures.peak_rss_mb = peak_rss_mb()

    if kind == "bare":
        apply_discord_endpoints(settings)

        class BareClient(discord.Client):
            async def on_message(self, message: discord.Message) -> None:
                counter.hit()

        client = BareClient(intents=intents_for(settings), guild_ready_timeout=0.1)
        await client.login(settings.discord_token)
        connection = asyncio.create_task(client.connect(reconnect=False))
        try:
            await asyncio.wait_for(client.wait_until_ready(), READY_TIMEOUT)
            await measure(None)
        finally:
            await client.close()
            connection.cancel()
        emit(result=asdict(figures), done_at=counter.done_at)
        return

    async with running(settings, ready_timeout=READY_TIMEOUT, guild_ready_timeout=0.1) as bot:
        await bot.recorder.guild(guild_id)  # the default pack exists before the first event
        recorder = bot.recorder
        # An event counts once the recorder has applied it to the member's stats (the listener hands it
        # over with submit(), which applies it at once or as soon as the member is loaded).
        apply = recorder._apply

        def counting_apply(guild: Any, state: Any, activity: Activity, content: str | None) -> Any:
            result = apply(guild, state, activity, content)
            if activity.kind is ActivityKind.MESSAGE:
                counter.hit()
            return result

        recorder._apply = counting_apply  # type: ignore[method-assign]

        async def committed() -> None:
            deadline = time.monotonic() + 30
            stored = -1
            while time.monotonic() < deadline:
                stored = await asyncio.to_thread(stored_messages, database, guild_id)
                if stored >= counter.target:
                    break
                await asyncio.sleep(0.005)
            figures.commit_seconds = time.monotonic() - counter.done_at
            figures.stored_messages = stored

        await measure(committed)
        figures.unlocks = await asyncio.to_thread(count_unlocks, database, guild_id)
    emit(result=asdict(figures), done_at=counter.done_at)


@contextmanager
def profiling(directory: str | None, kind: str) -> Iterator[None]:
    """--profile DIR: a pyinstrument profile of the client during the flood (pip install pyinstrument)."""
    if not directory:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        path = Path(directory) / f"e2e_ingest_{kind}.txt"
        path.write_text(profiler.output_text(unicode=True, show_all=False))
        profiler.last_session.save(str(path.with_suffix(".pyisession")))
        print(f"profile written to {path}", file=sys.stderr)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ------------------------------------------------------------------------------------------ orchestrator
async def measure_client(
    kind: str, members: int, events: int, workdir: Path, profile: str | None = None
) -> ClientFigures:
    """A fresh simulator with one guild of `members` members, a client process of `kind`, one flood."""
    from discord_sim import DiscordSimulator

    async with DiscordSimulator() as sim:
        guild = sim.create_guild("Benchmark Guild")
        channel_id = guild.system_channel_id or 0
        authors = []
        for index in range(members):
            user = sim.create_user(f"member{index}")
            sim.add_member(guild.id, user.id)
            authors.append(user.id)
        config = {
            "token": sim.token, "api_base": sim.api_base, "gateway_url": sim.gateway_url,
            "guild_id": guild.id, "events": events, "database_path": str(workdir / f"{kind}.db"),
            "profile": profile,
        }
        stderr_path = workdir / f"{kind}.stderr"
        with stderr_path.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.e2e_ingest", "--client", kind, "--config", json.dumps(config),
                cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=stderr,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )
        assert proc.stdout is not None
        try:
            ready = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT + 30)
            if not ready.strip():
                raise RuntimeError(f"{kind} client ended before it was ready:\n{stderr_path.read_text()[-3000:]}")
            first_sent_at = await sim.flood_messages(channel_id, authors, events, content=CONTENT)
            line = await asyncio.wait_for(proc.stdout.readline(), 600)
            if not line.strip():
                raise RuntimeError(f"{kind} client ended without figures:\n{stderr_path.read_text()[-3000:]}")
            report = json.loads(line)
            await asyncio.wait_for(proc.wait(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        figures = ClientFigures(**report["result"])
        figures.seconds = float(report["done_at"]) - first_sent_at
        figures.announcements_posted = len(sim.channel_messages(channel_id))
        if os.environ.get("E2E_TRACE"):
            print(stderr_path.read_text(), file=sys.stderr)
        return figures


async def run(members: int = 10_000, events: int = 200_000, *, profile: str | None = None) -> Result:
    with tempfile.TemporaryDirectory(prefix="e2e-ingest-") as tmp:
        workdir = Path(tmp)
        bare = await measure_client("bare", members, events, workdir, profile)
        bot = await measure_client("bot", members, events, workdir, profile)
    return Result(members, events, bare, bot)


def report(result: Result) -> str:
    bare, bot = result.bare, result.bot
    commit = bot.commit_seconds if bot.commit_seconds is not None else float("inf")
    counts_ok = bot.stored_messages == result.events
    rows = [
        ("bare discord.py (a)", f"{bare.per_s:,.0f} events/s", f"{bare.handled:,} events in {bare.seconds:.2f} s", ""),
        ("our bot (b)", f"{bot.per_s:,.0f} events/s", f"{bot.handled:,} events in {bot.seconds:.2f} s", ""),
        ("ratio b/a", f"{result.ratio:.2f}", f"target >= {RATIO_TARGET}", verdict(result.ratio >= RATIO_TARGET)),
        ("all stats committed", f"{commit * 1000:.0f} ms after the last event",
         f"stored messages {bot.stored_messages:,} of {result.events:,}",
         verdict(commit <= COMMIT_TARGET_S and counts_ok)),
        ("RSS of the bot after (b)", f"{bot.rss_mb:.0f} MB",
         f"peak {bot.peak_rss_mb:.0f} MB; bare {bare.rss_mb:.0f} MB", ""),
        ("longest callback in (b)", f"{bot.longest_callback_ms:.1f} ms",
         f"{bot.slow_callbacks} over {BLOCK_TARGET_MS:.0f} ms; bare {bare.longest_callback_ms:.1f} ms",
         verdict(bot.longest_callback_ms <= BLOCK_TARGET_MS)),
        ("max loop lateness in (b)", f"{bot.max_loop_lateness_ms:.1f} ms",
         f"10 ms ticker; bare {bare.max_loop_lateness_ms:.1f} ms",
         verdict(bot.max_loop_lateness_ms <= BLOCK_TARGET_MS)),
        ("garbage collector in (b)", f"{bot.gc_total_s:.2f} s", f"longest pass {bot.gc_longest_ms:.0f} ms "
         f"(gen {bot.gc_longest_generation}); bare {bare.gc_total_s:.2f} s, {bare.gc_longest_ms:.0f} ms", ""),
        ("unlocks / announcements", f"{bot.unlocks or 0:,} unlocks", f"{bot.announcements_posted} messages posted", ""),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        f"End-to-end ingest: {result.members:,} members, {result.events:,} MESSAGE_CREATE events",
        f"machine: {machine()}",
        "",
    ]
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    if bot.longest_callback:
        lines += ["", f"longest callback in (b): {bot.longest_callback}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="50 members, 500 events: a smoke run")
    parser.add_argument("--profile", metavar="DIR", help="write pyinstrument profiles of both clients to DIR")
    parser.add_argument("--client", choices=("bare", "bot"), help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        asyncio.run(client_main(args.client, json.loads(args.config)))
        return
    members, events = (50, 500) if args.quick else (args.members, args.events)
    profile = str(Path(args.profile).resolve()) if args.profile else None
    print(report(asyncio.run(run(members, events, profile=profile))))


if __name__ == "__main__":
    main()
