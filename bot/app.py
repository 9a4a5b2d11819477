"""The bot class and its launcher: the one path both `python -m bot` and the end-to-end tests use."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import discord
import discord.asset
import yarl
from discord.ext import commands

from bot.announcer import Announcer
from bot.cards import ProfileCards
from bot.clock import Clock, SystemClock
from bot.errors import AchievementsTree
from bot.management import Management
from bot.profiles import Profiles
from bot.recorder import ActivityRecorder
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.storage import Storage

log = logging.getLogger(__name__)

# Names discord.py gives the tasks running event listeners and application commands.
HANDLER_TASKS = ("discord.py: ", "CommandTree-invoker")
HANDLER_GRACE = 5.0  # seconds in-flight handlers get at shutdown

# Young generation 10,000 objects (default 700), gen 1 every 10: see tune_garbage_collector.
GC_THRESHOLDS = (10_000, 10, 100)

EXTENSIONS = (
    "cogs.activity",
    "cogs.profile",
    "cogs.manage",
    "cogs.settings",
)


def apply_discord_endpoints(settings: Settings) -> None:
    """Point discord.py at a REST proxy, gateway proxy or the local simulator when configured.

    These are discord.py's own class-level defaults; unset settings leave Discord itself in place.
    """
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
    if settings.discord_cdn_url:
        discord.asset.Asset.BASE = settings.discord_cdn_url


def intents_for(settings: Settings) -> discord.Intents:
    intents = discord.Intents.default()
    intents.members = "members" in settings.privileged_intents
    intents.message_content = "message_content" in settings.privileged_intents
    intents.presences = "presences" in settings.privileged_intents
    return intents


class AchievementsBot(commands.Bot):
    def __init__(self, settings: Settings, storage: Storage, clock: Clock, **options: Any) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents_for(settings),
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=AchievementsTree,
            **options,
        )
        self.settings = settings
        self.storage = storage
        self.clock = clock
        self.recorder = ActivityRecorder(storage, clock)
        self.scheduler = Scheduler(self.recorder, storage, clock)
        self.announcer = Announcer(self, storage, clock)
        self.profiles = Profiles(storage, self.recorder, clock)
        self.management = Management(storage, self.recorder, self.scheduler, clock)
        self.cards = ProfileCards()
        self.recorder.committed_listeners.append(self.announcer.wake)
        self.connection_task: asyncio.Task[None] | None = None
        self._shut_down = False

    async def setup_hook(self) -> None:
        self.recorder.start()
        # Before anything else writes: a removal or points change cut off by a stop is finished first.
        await self.management.resume_bulk_jobs()
        await self.scheduler.start()
        self.announcer.start()
        for extension in EXTENSIONS:
            try:
                await self.load_extension(extension)
            except commands.ExtensionNotFound:
                log.debug("extension %s is not present", extension)
            except Exception:
                log.exception("extension %s failed to load; the bot runs without it", extension)
        await self.sync_commands()

    @property
    def on_message(self) -> NoReturn:
        """The bot has slash commands only. commands.Bot's on_message parses every message for a prefix
        command, and discord.py schedules a task for it per message even if it does nothing; an attribute
        that is absent gets no task (the cogs' message listeners are scheduled all the same)."""
        raise AttributeError("on_message")

    async def _finish_handlers(self, timeout: float) -> None:  # noqa: ASYNC109
        """Let event handlers and commands already running finish before the recorder's last flush and the
        database closing: an activity staged after that flush would be lost, a command would fail half-way."""
        current = asyncio.current_task()
        in_flight = [
            task for task in asyncio.all_tasks()
            if task is not current and not task.done() and task.get_name().startswith(HANDLER_TASKS)
        ]
        if in_flight:
            _, late = await asyncio.wait(in_flight, timeout=timeout)
            if late:
                log.warning("shutting down with %d event handlers still running", len(late))

    async def sync_commands(self) -> None:
        """Sync slash commands to DEV_GUILD_ID (or globally), and only when the tree changed."""
        guild = discord.Object(self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = f"command_tree:{guild.id if guild else 'global'}"
        if await self.storage.meta.get(key) == digest:
            log.info("slash commands unchanged; not syncing")
            return
        synced = await self.tree.sync(guild=guild)
        await self.storage.meta.set(key, digest)
        log.info("synced %d slash commands %s", len(synced), f"to guild {guild.id}" if guild else "globally")

    async def close(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        for name in list(self.extensions):
            try:
                await self.unload_extension(name)
            except Exception:
                log.exception("extension %s failed to unload", name)
        await self._finish_handlers(HANDLER_GRACE)
        try:
            await self.scheduler.close()
            await self.announcer.close()
            await self.recorder.close()
            self.cards.close()
        finally:
            await super().close()
            await self.storage.close()


def tune_garbage_collector() -> None:
    """Once ready: keep the start-up heap (guild and member caches) out of the collector's walks, and collect
    young objects less often. In a burst of gateway events discord.py starts a task per event faster than
    they finish; with the default thresholds the collector walked that growing heap again and again
    (21 of 37 s of the end-to-end benchmark, passes of up to 2.7 s)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@asynccontextmanager
async def running(
    settings: Settings, *, clock: Clock | None = None, ready_timeout: float = 60.0, **options: Any
) -> AsyncIterator[AchievementsBot]:
    """Open the database, log in, connect and wait until ready; close everything on exit."""
    apply_discord_endpoints(settings)
    storage = await Storage.open(settings.database_path)
    bot = AchievementsBot(settings, storage, clock or SystemClock(), **options)
    connection: asyncio.Task[None] | None = None
    try:
        await bot.login(settings.discord_token)
        connection = asyncio.create_task(bot.connect(reconnect=True), name="discord-connection")
        bot.connection_task = connection
        ready = asyncio.create_task(bot.wait_until_ready())
        done, _ = await asyncio.wait({connection, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED)
        if connection in done:
            ready.cancel()
            connection.result()  # raises the connection's error
            raise RuntimeError("the Discord connection closed before the bot was ready")
        if ready not in done:
            ready.cancel()
            raise TimeoutError(f"the bot was not ready after {ready_timeout:.0f} s")
        tune_garbage_collector()
        yield bot
    finally:
        if not bot.is_closed():
            await bot.close()
        if connection is not None:
            try:
                await asyncio.wait_for(connection, timeout=10)
            except (TimeoutError, asyncio.CancelledError, Exception):
                log.debug("connection task ended", exc_info=True)


async def run_forever(settings: Settings) -> None:
    """`python -m bot`: run until the connection ends or SIGTERM/SIGINT asks the bot to stop."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:  # pragma: no cover - not on POSIX
            pass
    async with running(settings, ready_timeout=300) as bot:
        log.info("logged in as %s (%s) in %d guilds", bot.user, bot.user.id if bot.user else "?", len(bot.guilds))
        stopper = asyncio.create_task(stop.wait())
        waiting: set[asyncio.Future[Any]] = {stopper}
        if bot.connection_task is not None:
            waiting.add(bot.connection_task)
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        log.info("shutting down: flushing pending writes")
