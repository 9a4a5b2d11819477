"""The HTTP front of the simulator: routing, recording, injected failures, and Discord-shaped responses."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import _spec as spec
from ._ratelimit import RateLimiter
from ._validation import ApiError

if TYPE_CHECKING:
    from ._gateway import Gateway
    from ._world import World

log = logging.getLogger(__name__)

API_PREFIX = re.compile(r"^/api/v\d+")
CDN_IMAGE = re.compile(r"^/(avatars|embed/avatars|icons|banners|guilds/\d+/users/\d+/avatars)/.+\.(png|webp|jpe?g|gif)$")  # noqa: E501
CDN_ATTACHMENT = re.compile(r"^/attachments/\d+/(\d+)/[^/]+$")


@dataclass
class RecordedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One request as Discord would have received it, and what the simulator answered."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[RecordedFile]
    headers: dict[str, str]
    status: int = 0
    response: Any = None
    route: str | None = None
    raw_text: str | None = None  # the body, when it was not valid JSON
    rate_limit_headers: dict[str, str] = field(default_factory=dict)  # a configured bucket's X-RateLimit-*


@dataclass
class SpecViolation:
    """A request body that Discord's OpenAPI specification refuses, with Discord's ``errors`` tree."""

    method: str
    path: str
    body: Any
    errors: dict[str, Any]


@dataclass
class ResponseViolation:
    """A response the simulator gave that breaks the spec's response schema for its status: a simulator bug."""

    method: str
    path: str
    status: int
    body: Any
    errors: list[str]


@dataclass
class FailureRule:
    method: str
    pattern: re.Pattern[str]
    status: int
    retry_after: float
    times: int
    is_global: bool = False
    # Set: the request is applied first and only its response is replaced (a response lost on the way back).
    after_applying: bool = False
    hold: asyncio.Event | None = None  # answer only once this is set


@dataclass
class Call:
    """A parsed API request handed to a route handler."""

    request: web.Request
    record: RecordedRequest
    args: tuple[str, ...]

    @property
    def json(self) -> Any:
        return self.record.json

    @property
    def body(self) -> dict[str, Any]:
        return self.record.json if isinstance(self.record.json, dict) else {}

    @property
    def files(self) -> list[tuple[str, str, bytes]]:
        return [(f.field, f.filename, f.data) for f in self.record.files]

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.record.query.get(name, default)


Result = tuple[int, Any]
Handler = Callable[[Call], Awaitable[Result]]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: Handler
    auth: bool = True


@dataclass
class Router:
    routes: list[Route] = field(default_factory=list)

    def add(self, method: str, template: str, handler: Handler, *, auth: bool = True) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"([^/]+)", template) + "$"
        self.routes.append(Route(method, re.compile(regex), template, handler, auth))

    def match(self, method: str, path: str) -> tuple[Route, tuple[str, ...]] | None:
        for route in self.routes:
            if route.method != method:
                continue
            m = route.pattern.match(path)
            if m:
                return route, m.groups()
        return None


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> web.Response:
    if status == 204 or data is None:
        return web.Response(status=204 if status < 300 else status, headers=headers)
    # discord.py only decodes the body when Content-Type is exactly "application/json".
    body = json.dumps(data).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": "application/json", **(headers or {})})


def ratelimit_headers(bucket: str, *, remaining: int = 49, reset_after: float = 1.0) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": "50",
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": bucket,
        "Via": "1.1 google",
    }


def solid_png(rgb: tuple[int, int, int], size: int = 16) -> bytes:
    """A tiny solid-colour PNG, built by hand so that no imaging library is needed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


class HttpFront:
    """Serves /api/v10 routes, the CDN and the gateway websocket from one aiohttp application."""

    def __init__(self, world: World, gateway: Gateway, router: Router) -> None:
        self.world = world
        self.gateway = gateway
        self.router = router
        self.requests: list[RecordedRequest] = []
        self.unknown_routes: list[RecordedRequest] = []
        self.failures: list[FailureRule] = []
        self.spec_violations: list[SpecViolation] = []
        self.response_violations: list[ResponseViolation] = []
        self.check_responses = True
        self.limiter = RateLimiter()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.gateway.handle(request)
        m = API_PREFIX.match(request.path)
        if m is None:
            return await self._cdn(request)
        path = request.path[m.end() :]
        record = await self._record(request, path)
        try:
            status, data, headers = await self._answer(request, record)
        except ApiError as exc:
            status, data, headers = exc.status, exc.body(), dict(record.rate_limit_headers)
        except Exception:
            log.exception("simulator route %s %s crashed", request.method, path)
            status, data, headers = 500, {"message": "500: Internal Server Error", "code": 0}, {}
        record.status = status
        record.response = data
        if self.check_responses and record.route is not None and data is not None:
            self._check_response(record, status, data)
        bucket = record.route or path
        all_headers = ratelimit_headers(f"{abs(hash(bucket)) % 10**12:x}") | headers
        return json_response(status, data, all_headers)

    async def _answer(self, request: web.Request, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        found = self.router.match(request.method, record.path)
        if found is None:
            self.unknown_routes.append(record)
            log.warning("simulator: unknown route %s %s", request.method, record.path)
            return 404, {"message": "404: Not Found", "code": 0}, {}
        route, args = found
        record.route = f"{route.method} {route.template}"
        if route.auth and request.headers.get("Authorization") != f"Bot {self.world.token}":
            return 401, {"message": "401: Unauthorized", "code": 0}, {}
        decision = self.limiter.check(request.method, route.template, record.path, counts_globally=route.auth)
        if decision is not None:
            if decision.refused is not None:
                return 429, decision.refused, decision.headers
            record.rate_limit_headers = decision.headers
        invalid = self._check_body(request, record, route)
        injected = self._injected_failure(request.method, record.path)
        if injected is not None:
            return injected
        if invalid is not None:
            raise invalid
        status, data = await route.handler(Call(request, record, args))
        if status < 300 and (lost := self._lost_response(request.method, record.path)):
            if lost.hold is not None:
                await lost.hold.wait()
            return lost.status, {"message": f"{lost.status}: Simulated server error", "code": 0}, {}
        return status, data, dict(record.rate_limit_headers)

    def _check_body(self, request: web.Request, record: RecordedRequest, route: Route) -> ApiError | None:
        """Discord's answer to a body it would refuse (unparseable JSON, or against the spec), else None.

        A body that breaks the spec is also recorded in ``spec_violations``, even when a test injected a
        failure for the request, so that the bot's own traffic is checked whatever Discord answered."""
        query_errors = spec.query_violations(request.method, route.template, record.query)
        if query_errors is not None:
            self.spec_violations.append(SpecViolation(request.method, record.path, record.query, query_errors))
            return ApiError(400, 50035, "Invalid Form Body", query_errors)
        if record.json is None:
            return None  # no body (or a multipart without payload_json): the route decides
        if record.raw_text is not None:
            return ApiError(400, 50109, "The request body contains invalid JSON.")
        errors = spec.violations(request.method, route.template, record.json)
        if errors is None:
            return None
        self.spec_violations.append(SpecViolation(request.method, record.path, record.json, errors))
        return ApiError(400, 50035, "Invalid Form Body", errors)

    def _check_response(self, record: RecordedRequest, status: int, data: Any) -> None:
        """Record a response that breaks the operation's response schema for ``status`` (never changes it)."""
        method, _, template = (record.route or "").partition(" ")
        errors = spec.response_violations(method, template, status, data)
        if errors:
            log.warning("simulator: %s %s answered %s against the spec: %s", method, record.path, status, errors)
            self.response_violations.append(ResponseViolation(method, record.path, status, data, errors))

    def _lost_response(self, method: str, path: str) -> FailureRule | None:
        for rule in self.failures:
            if rule.after_applying and rule.times > 0 and rule.method in (method, "*") and rule.pattern.search(path):
                rule.times -= 1
                return rule
        return None

    def _injected_failure(self, method: str, path: str) -> tuple[int, Any, dict[str, str]] | None:
        for rule in self.failures:
            if rule.times <= 0 or rule.method not in (method, "*") or not rule.pattern.search(path):
                continue
            if rule.after_applying:
                continue
            rule.times -= 1
            if rule.status == 429:
                body: dict[str, Any] = {"message": "You are being rate limited.", "retry_after": rule.retry_after}
                body["global"] = rule.is_global
                if not rule.is_global:
                    body["code"] = 0
                headers = ratelimit_headers(f"{abs(hash(path)) % 10**12:x}", remaining=0, reset_after=rule.retry_after)
                headers |= {"Retry-After": str(max(1, round(rule.retry_after))), "X-RateLimit-Scope": "user"}
                if rule.is_global:
                    headers |= {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
                return 429, body, headers
            return rule.status, {"message": f"{rule.status}: Simulated server error", "code": 0}, {}
        return None

    async def _record(self, request: web.Request, path: str) -> RecordedRequest:
        record = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=None,
            files=[],
            headers={k: v for k, v in request.headers.items() if k.lower() != "authorization"},
        )
        self.requests.append(record)
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                name = getattr(part, "name", None) or ""
                data = await part.read()  # type: ignore[union-attr]
                filename = getattr(part, "filename", None)
                if name == "payload_json":
                    try:
                        record.json = json.loads(data)
                    except ValueError:
                        record.json = record.raw_text = bytes(data).decode(errors="replace")
                elif filename is not None:
                    ctype = part.headers.get("Content-Type", "application/octet-stream")
                    record.files.append(RecordedFile(name, filename, ctype, bytes(data)))
        elif request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    record.json = json.loads(raw)
                except ValueError:
                    record.json = record.raw_text = raw.decode(errors="replace")
        return record

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        record = RecordedRequest(request.method, path, dict(request.query), None, [], dict(request.headers))
        self.requests.append(record)
        injected = self._injected_failure(request.method, path)
        if injected is not None:
            status, data, headers = injected
            record.status = status
            return json_response(status, data, headers)
        if request.method == "GET" and CDN_IMAGE.match(path):
            digest = zlib.crc32(path.encode())
            record.status = 200
            png = solid_png((digest & 0xFF, (digest >> 8) & 0xFF, (digest >> 16) & 0xFF))
            return web.Response(body=png, headers={"Content-Type": "image/png"})
        m = CDN_ATTACHMENT.match(path)
        if request.method == "GET" and m and int(m.group(1)) in self.world.attachments:
            record.status = 200
            return web.Response(body=self.world.attachments[int(m.group(1))])
        record.status = 404
        self.unknown_routes.append(record)
        log.warning("simulator: unknown route %s %s", request.method, path)
        return json_response(404, {"message": "404: Not Found", "code": 0})
