"""The bot class and its launcher: the one path both `python -m bot` and the end-to-end tests use."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, NoReturn

import discord
import discord.asset
import yarl
from discord.ext import commands

from bot.clock import Clock, SystemClock
from bot.errors import AchievementsTree
from bot.ownership import Ownership
from bot.services import Services, build_services
from bot.settings import Settings
from bot.storage import Storage
from bot.storage.leases import RETRY_SECONDS, LeaseError, ShardLeases

log = logging.getLogger(__name__)

# Names discord.py gives the tasks running event listeners and application commands.
HANDLER_TASKS = ("discord.py: ", "CommandTree-invoker")
HANDLER_GRACE = 5.0  # seconds in-flight handlers get at shutdown
CLOSE_TIMEOUT = 30.0  # seconds a shutdown step may take before it is abandoned

# Young generation 10,000 objects (default 700), gen 1 every 10: see tune_garbage_collector.
GC_THRESHOLDS = (10_000, 10, 100)

EXTENSIONS = (
    "cogs.activity",
    "cogs.profile",
    "cogs.manage",
    "cogs.settings",
)


class ExtensionLoadError(RuntimeError):
    """A cog did not load: the bot must not start (and sync a command tree without that cog's commands)."""


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


class AchievementsBot(commands.AutoShardedBot):
    """Runs the shards in `settings` (all of them when unset) and serves only the guilds its services' ownership
    gives it. The services are built outside (bot.services); the bot only connects them to Discord. The cogs
    read them as attributes of the bot (`bot.recorder`, `bot.management`, ...)."""

    def __init__(
        self, settings: Settings, services: Services, *, extensions: Sequence[str] | None = None, **options: Any,
    ) -> None:
        if settings.shard_count is not None:
            options.setdefault("shard_count", settings.shard_count)
            if settings.shard_ids is not None:
                options.setdefault("shard_ids", list(settings.shard_ids))
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents_for(settings),
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=AchievementsTree,
            **options,
        )
        self.settings = settings
        self.services = services
        self.extension_names = tuple(EXTENSIONS if extensions is None else extensions)
        self.storage = services.storage
        self.clock = services.clock
        self.ownership = services.ownership
        self.recorder = services.recorder
        self.scheduler = services.scheduler
        self.announcer = services.announcer
        self.profiles = services.profiles
        self.management = services.management
        self.cards = services.cards
        services.connect(self)
        # Set by `running` with PostgreSQL: the advisory locks that make this process its shards' owner.
        self.leases: ShardLeases | None = None
        self.connection_task: asyncio.Task[None] | None = None
        self.closing: asyncio.Task[None] | None = None
        self._shut_down = False

    async def setup_hook(self) -> None:
        # Every cog first: one that fails stops the start here, before any work begins and, above all, before
        # a sync of the reduced command tree deletes that cog's slash commands from Discord.
        for extension in self.extension_names:
            try:
                await self.load_extension(extension)
            except Exception as exc:
                cause = exc.original if isinstance(exc, commands.ExtensionFailed) else exc
                log.debug("extension %s failed to load", extension, exc_info=True)
                raise ExtensionLoadError(
                    f"extension {extension} failed to load ({type(cause).__name__}: {cause}); the bot did not "
                    f"start and synced no slash commands"
                ) from exc
        await self.services.start()
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
        """Sync slash commands to DEV_GUILD_ID (or globally), and only when the tree changed; of several shard
        processes, only shard 0's owner (see Ownership.syncs_commands)."""
        if not self.ownership.syncs_commands:
            return
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

    def stop_owning(self, reason: str) -> None:
        """The shard leases are gone, so another process may own these guilds now: stop recording, rolling
        over and announcing at once, then shut down (flushing what was recorded while they were ours)."""
        self.ownership.give_up()
        if self.closing is None and not self._shut_down:
            self.closing = asyncio.create_task(self.close(), name="lease-lost-shutdown")

    @property
    def shut_down(self) -> bool:
        """Whether this bot's own close has run (or is running)."""
        return self._shut_down

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
            await self.services.stop()
        finally:
            await super().close()
            await self.storage.close()


async def _bounded(step: Awaitable[object], what: str) -> None:
    """A shutdown step that cannot hold the process forever: after CLOSE_TIMEOUT it is abandoned, loudly."""
    try:
        await asyncio.wait_for(step, CLOSE_TIMEOUT)
    except TimeoutError:
        log.error("%s took over %.0f s; going on with the shutdown without it", what, CLOSE_TIMEOUT)


def tune_garbage_collector() -> None:
    """Once ready: keep the start-up heap (guild and member caches) out of the collector's walks, and collect
    young objects less often. In a burst of gateway events discord.py starts a task per event faster than
    they finish; with the default thresholds the collector walked that growing heap again and again
    (21 of 37 s of the end-to-end benchmark, passes of up to 2.7 s)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def lease_name(shard_ids: Sequence[int], shard_count: int) -> str:
    """How the lease connection shows in pg_stat_activity, and so in a refused process's error line."""
    return f"achievements-bot shards {','.join(map(str, shard_ids))} of {shard_count}"


async def take_leases(
    leases: ShardLeases, settings: Settings, shard_count: int, *, retry_interval: float
) -> None:
    shard_ids = settings.shard_ids if settings.shard_ids is not None else range(shard_count)
    await leases.acquire(shard_count, list(shard_ids), wait=settings.shard_wait, retry_interval=retry_interval)


@asynccontextmanager
async def running(
    settings: Settings, *, clock: Clock | None = None, ready_timeout: float = 60.0,
    lease_retry: float = RETRY_SECONDS, **options: Any,
) -> AsyncIterator[AchievementsBot]:
    """Lease the shards (PostgreSQL), open the database, log in, connect and wait until ready; close
    everything on exit, the leases last (after the final flush, so the next owner starts from it)."""
    apply_discord_endpoints(settings)
    ownership = Ownership(settings.shard_count, settings.shard_ids)
    async with AsyncExitStack() as stack:
        leases: ShardLeases | None = None
        if settings.database_url:
            # A process refused its shards stops here, before any gateway session is opened for them.
            name = (lease_name(settings.shard_ids or range(settings.shard_count), settings.shard_count)
                    if settings.shard_count else "achievements-bot every shard")
            leases = await ShardLeases.connect(settings.database_url, name=name)
            stack.push_async_callback(leases.close)
            if settings.shard_count is not None:
                await take_leases(leases, settings, settings.shard_count, retry_interval=lease_retry)
        storage = await Storage.open_configured(settings.database_url, settings.database_path)
        services = build_services(storage, clock or SystemClock(), ownership=ownership)
        bot = AchievementsBot(settings, services, **options)
        bot.leases = leases
        if leases is not None:
            leases.on_lost(bot.stop_owning)
        connection: asyncio.Task[None] | None = None
        try:
            await bot.login(settings.discord_token)
            if bot.shard_count is None:
                # Asked here rather than by discord.py's launch_shards, which would also take Discord's gateway
                # URL over DISCORD_GATEWAY_URL; and a process running every shard leases them all.
                bot.shard_count = (await bot.http.get_bot_gateway())[0]
                if leases is not None:
                    await take_leases(leases, settings, bot.shard_count, retry_interval=lease_retry)
            connection = asyncio.create_task(bot.connect(reconnect=True), name="discord-connection")
            bot.connection_task = connection
            ready = asyncio.create_task(bot.wait_until_ready())
            done, _ = await asyncio.wait(
                {connection, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
            )
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
            # Our own close, whatever discord.py did: it also stops the services and closes storage. Checking
            # discord.py's is_closed() skipped it when the library had begun closing on its own.
            if not bot.shut_down:
                await _bounded(bot.close(), "closing the bot")
            if bot.closing is not None:
                await _bounded(asyncio.gather(bot.closing, return_exceptions=True), "the lease-lost shutdown")
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
        if bot.leases is not None:
            waiting.add(asyncio.ensure_future(bot.leases.lost.wait()))
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiting:
            if waiter is not bot.connection_task:
                waiter.cancel()
        log.info("shutting down: flushing pending writes")
    if bot.leases is not None and bot.leases.lost.is_set():
        raise LeaseError(
            f"stopped owning shards {list(bot.leases.shards)}: {bot.leases.lost_reason}; start the process again "
            f"(with SHARD_WAIT=1 it waits for its shards to be free)"
        )
