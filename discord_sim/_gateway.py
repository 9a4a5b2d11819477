"""The simulated gateway: websocket sessions, IDENTIFY/RESUME, heartbeats, intents and zlib-stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from ._world import World

log = logging.getLogger(__name__)

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents)
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_VOICE_STATES = 1 << 7
GUILD_PRESENCES = 1 << 8
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
GUILD_MESSAGE_TYPING = 1 << 11
DIRECT_MESSAGES = 1 << 12
DIRECT_MESSAGE_REACTIONS = 1 << 13
MESSAGE_CONTENT = 1 << 15
GUILD_SCHEDULED_EVENTS = 1 << 16
PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT

HEARTBEAT_INTERVAL_MS = 41250
# Events kept per session for RESUME. Discord keeps a bounded buffer of its own (its size is not documented);
# a RESUME that would need events beyond it gets INVALID_SESSION. DiscordSimulator(resume_replay_limit=...).
DEFAULT_REPLAY_LIMIT = 2000
CHUNK_SIZE = 1000
MAX_GUILDS_PER_SHARD = 2500
# Events whose payload is the guild itself: its id is the routing key.
GUILD_OBJECT_EVENTS = ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE")


def event_guild_id(event: str, payload: Payload) -> int | None:
    """The guild an event belongs to, which decides its shard; None for DMs and other guildless events."""
    raw = payload.get("id") if event in GUILD_OBJECT_EVENTS else payload.get("guild_id")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None
# A bulk flood waits when this many frames are queued for one websocket, until the writer is down to the
# low-water mark: as fast as the websocket takes them, without queueing the whole flood in memory.
FLOOD_HIGH_WATER = 512
FLOOD_LOW_WATER = 128

Payload = dict[str, Any]
Outgoing = Payload | str  # a payload, or one already serialised to JSON (bulk floods)
Transform = Callable[["GatewaySession"], Payload | None]
FloodFrames = Callable[["GatewaySession"], Iterable[str] | None]


@dataclass
class GatewaySession:
    """One identified session; it outlives its websocket so that a RESUME can replay what was missed."""

    id: str
    intents: int
    large_threshold: int = 50
    shard_id: int = 0
    shard_count: int = 1
    seq: int = 0
    replay_limit: int = DEFAULT_REPLAY_LIMIT
    history: deque[tuple[int, Outgoing]] = field(default_factory=deque)
    connection: GatewayConnection | None = None

    def __post_init__(self) -> None:
        self.history = deque(self.history, maxlen=self.replay_limit)

    def owns(self, guild_id: int | None) -> bool:
        """Whether this session's shard gets the guild's events (Discord's formula); events without a guild
        (DMs) go to shard 0 only."""
        if guild_id is None:
            return self.shard_id == 0
        return (guild_id >> 22) % self.shard_count == self.shard_id

    def can_replay_after(self, seq: int) -> bool:
        """Whether every event after ``seq`` is still in the buffer (the first one missed was not dropped)."""
        return seq >= self.seq or (bool(self.history) and self.history[0][0] <= seq + 1)

    def push(self, event: str, data: Payload) -> None:
        self.seq += 1
        payload = {"op": 0, "t": event, "s": self.seq, "d": data}
        self._queue(payload)

    def push_serialised(self, event: str, data: str) -> None:
        """Dispatch an event whose ``d`` is already JSON text (bulk floods: no per-event json.dumps)."""
        self.seq += 1
        self._queue(f'{{"op":0,"t":"{event}","s":{self.seq},"d":{data}}}')

    def _queue(self, payload: Outgoing) -> None:
        self.history.append((self.seq, payload))
        if self.connection is not None:
            self.connection.send(payload)


class GatewayConnection:
    """One websocket: an ordered outbox written by a single task, zlib-stream compressed if asked."""

    def __init__(self, ws: web.WebSocketResponse, compress: bool) -> None:
        self.ws = ws
        self.compress = compress
        self._zlib = zlib.compressobj() if compress else None
        self._outbox: asyncio.Queue[Outgoing | None] = asyncio.Queue()
        self._room = asyncio.Event()
        self._writing = True
        self.session: GatewaySession | None = None

    def send(self, payload: Outgoing) -> None:
        self._outbox.put_nowait(payload)

    def close_later(self) -> None:
        self._outbox.put_nowait(None)

    @property
    def backlog(self) -> int:
        return self._outbox.qsize()

    async def room(self) -> None:
        """Wait until the outbox is down to the low-water mark (or the websocket is gone)."""
        while self._writing and self._outbox.qsize() > FLOOD_LOW_WATER:
            self._room.clear()
            await self._room.wait()

    async def write_loop(self) -> None:
        try:
            await self._write_all()
        finally:
            self._writing = False
            self._room.set()

    async def _write_all(self) -> None:
        while True:
            payload = await self._outbox.get()
            if self._outbox.qsize() <= FLOOD_LOW_WATER:
                self._room.set()
            if payload is None:
                await self.ws.close(code=4000, message=b"Simulator asked for a reconnect")
                return
            if isinstance(payload, str):
                text = payload
            elif "__close__" in payload:
                await self.ws.close(code=payload["__close__"], message=str(payload["d"]).encode()[:120])
                return
            else:
                text = json.dumps(payload, separators=(",", ":"))
            if self._zlib is not None:
                data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(text)

    def close_with(self, code: int, reason: str) -> None:
        # Queued after anything already pending, so the client sees the events first.
        self._outbox.put_nowait({"d": reason, "__close__": code})


class Gateway:
    """Accepts websocket connections and dispatches events to every identified session the intents allow."""

    def __init__(self, world: World, replay_limit: int = DEFAULT_REPLAY_LIMIT) -> None:
        if replay_limit < 1:
            raise ValueError("replay_limit must be at least 1")
        self.world = world
        self.replay_limit = replay_limit
        self.invalid_sessions = 0
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: set[GatewayConnection] = set()
        self.disallowed_intents = 0
        self.compression_used: list[str] = []
        self.identify_payloads: list[Payload] = []
        # Discord closes an IDENTIFY whose shard would hold more guilds than this with 4011 (its limit: 2,500).
        self.max_guilds_per_shard = MAX_GUILDS_PER_SHARD
        self.received: list[Payload] = []
        self.ready = asyncio.Event()

    @property
    def active_sessions(self) -> list[GatewaySession]:
        return [s for s in self.sessions.values() if s.connection is not None]

    def dispatch(self, event: str, data: Payload | Transform, intent: int | None = None) -> None:
        """Send an event to every session whose intents ask for it and whose shard owns its guild."""
        for session in list(self.sessions.values()):
            if intent is not None and not session.intents & intent:
                continue
            payload = data(session) if callable(data) else data
            if payload is not None and session.owns(event_guild_id(event, payload)):
                session.push(event, payload)

    async def flood(
        self, event: str, frames: FloodFrames, intent: int | None = None, guild_id: int | None = None
    ) -> float:
        """Dispatch many pre-serialised events as fast as each session's websocket takes them.

        ``frames(session)`` gives the JSON text of each event's ``d`` for that session (None: not for it);
        it is called for every session before the first event is sent, so it can prepare templates then.
        Sequence numbers, history (for RESUME) and compression are the same as for any other dispatch;
        anything dispatched meanwhile goes out in sequence order between the flood's events.
        Returns the monotonic time the first event was queued.
        """
        floods = []
        for session in list(self.sessions.values()):
            if (intent is not None and not session.intents & intent) or not session.owns(guild_id):
                continue
            items = frames(session)
            if items is not None:
                floods.append(self._flood_session(session, event, items))
        started = time.monotonic()  # after frames() prepared its templates: only sending is timed
        await asyncio.gather(*floods)
        return started

    @staticmethod
    async def _flood_session(session: GatewaySession, event: str, items: Iterable[str]) -> None:
        for data in items:
            conn = session.connection
            if conn is not None and conn.backlog >= FLOOD_HIGH_WATER:
                await conn.room()
            session.push_serialised(event, data)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        compress = request.query.get("compress") == "zlib-stream"
        self.compression_used.append(request.query.get("compress", ""))
        conn = GatewayConnection(ws, compress)
        self.connections.add(conn)
        writer = asyncio.create_task(self._write(conn))
        conn.send({"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                self.received.append(payload)
                await self._on_payload(conn, payload)
        finally:
            self.connections.discard(conn)
            if conn.session is not None and conn.session.connection is conn:
                conn.session.connection = None
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def _write(self, conn: GatewayConnection) -> None:
        try:
            await conn.write_loop()
        except (ConnectionResetError, RuntimeError) as exc:
            log.debug("gateway connection closed while writing: %s", exc)

    async def _on_payload(self, conn: GatewayConnection, payload: Payload) -> None:
        op = payload.get("op")
        data = payload.get("d")
        if op == 1:
            conn.send({"op": 11, "s": None, "t": None, "d": None})
        elif op == 2:
            self._identify(conn, data or {})
        elif op == 6:
            self._resume(conn, data or {})
        elif op == 8:
            self._request_members(conn, data or {})
        elif op in (3, 4):
            log.debug("gateway op %s ignored: %s", op, data)
        else:
            conn.close_with(4001, "Unknown opcode")

    def _identify(self, conn: GatewayConnection, data: Payload) -> None:
        self.identify_payloads.append(data)
        if data.get("token") != self.world.token:
            conn.close_with(4004, "Authentication failed.")
            return
        if "intents" not in data:
            conn.close_with(4013, "Invalid intent(s).")
            return
        intents = int(data["intents"])
        if intents & self.disallowed_intents:
            conn.close_with(4014, "Disallowed intent(s).")
            return
        shard = data.get("shard", [0, 1])
        if not (isinstance(shard, list) and len(shard) == 2 and all(type(x) is int for x in shard)
                and shard[1] >= 1 and 0 <= shard[0] < shard[1]):
            conn.close_with(4010, "Invalid shard.")
            return
        shard_id, shard_count = shard
        guilds = [g for g in self.world.guilds if (g >> 22) % shard_count == shard_id]
        if len(guilds) > self.max_guilds_per_shard:
            conn.close_with(4011, "Sharding required.")
            return
        session = GatewaySession(
            id=secrets.token_hex(16), intents=intents, large_threshold=int(data.get("large_threshold", 50)),
            replay_limit=self.replay_limit, shard_id=shard_id, shard_count=shard_count,
        )
        self.sessions[session.id] = session
        session.connection = conn
        conn.session = session
        world = self.world
        ready: Payload = {
            "v": 10,
            "user": world.bot_user.payload() | {"verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": world.gateway_url,
            "application": {"id": str(world.application_id), "flags": world.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "_trace": ['["discord-simulator",{"micros":0}]'],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        session.push("READY", ready)
        for guild_id in guilds:
            session.push("GUILD_CREATE", world.guild_create_payload(world.guilds[guild_id], session))
        self.ready.set()

    def _resume(self, conn: GatewayConnection, data: Payload) -> None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.world.token:
            conn.send({"op": 9, "s": None, "t": None, "d": False})
            return
        seq = data.get("seq")
        seq = 0 if seq is None else seq
        if not isinstance(seq, int) or not session.can_replay_after(seq):
            # The buffer no longer holds every missed event: Discord invalidates the session rather than
            # replay with a gap, and the client identifies afresh.
            self.invalid_sessions += 1
            self.sessions.pop(session.id, None)
            if session.connection is not None and session.connection is not conn:
                session.connection.close_with(4009, "Session timed out")
            conn.send({"op": 9, "s": None, "t": None, "d": False})
            return
        if session.connection is not None and session.connection is not conn:
            session.connection.close_with(4000, "Session resumed elsewhere")
        session.connection = conn
        conn.session = session
        for s, payload in session.history:
            if s > seq:
                conn.send(payload)
        session.push("RESUMED", {"_trace": ['["discord-simulator",{"micros":0}]']})

    def _request_members(self, conn: GatewayConnection, data: Payload) -> None:
        session = conn.session
        if session is None:
            conn.close_with(4003, "Not authenticated.")
            return
        guild = self.world.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        query = data.get("query")
        user_ids = data.get("user_ids")
        if user_ids is None and not session.intents & GUILD_MEMBERS:
            conn.close_with(4013, "Requesting all guild members requires the GUILD_MEMBERS intent.")
            return
        if data.get("presences") and not session.intents & GUILD_PRESENCES:
            conn.close_with(4013, "Requesting presences requires the GUILD_PRESENCES intent.")
            return
        not_found: list[str] = []
        if user_ids is not None:
            ids = [int(u) for u in (user_ids if isinstance(user_ids, list) else [user_ids])]
            member_ids = [u for u in ids if u in guild.members]
            not_found = [str(u) for u in ids if u not in guild.members]
        else:
            member_ids = [u for u in guild.members if self.world.member_matches(guild, u, query or "")]
            limit = int(data.get("limit") or 0)
            if limit:
                member_ids = member_ids[:limit]
        chunks = [member_ids[i : i + CHUNK_SIZE] for i in range(0, len(member_ids), CHUNK_SIZE)] or [[]]
        for index, chunk in enumerate(chunks):
            payload: Payload = {
                "guild_id": str(guild.id),
                "members": [self.world.member_payload(guild, u) for u in chunk],
                "chunk_index": index,
                "chunk_count": len(chunks),
            }
            if index == 0 and not_found:
                payload["not_found"] = not_found
            if data.get("presences"):
                payload["presences"] = [self.world.presence_payload(guild, u) for u in chunk if u in guild.presences]
            if data.get("nonce") is not None:
                payload["nonce"] = data["nonce"]
            session.push("GUILD_MEMBERS_CHUNK", payload)

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT on every open connection, as Discord does before moving a session."""
        for conn in list(self.connections):
            conn.send({"op": 7, "s": None, "t": None, "d": None})

    def drop_connections(self) -> None:
        """Close every websocket with code 4000 (a resumable error); sessions stay resumable."""
        for conn in list(self.connections):
            conn.close_later()

    async def close(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                # A client that never answers the close frame must not hold the simulator open.
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"Simulator shutting down"), 2.0)
