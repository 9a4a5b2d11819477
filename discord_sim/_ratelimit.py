"""Rate limits as Discord applies them: per-route buckets per major parameter, shared buckets, the global limit.

Off by default (every response carries generous headers), so tests that do not ask for limits never wait.
Windows run on real monotonic time, not the simulator's clock: discord.py sleeps in real time.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

PARAMETER = re.compile(r"\{\w+\}")
# Discord keys buckets by these path parameters too: the same route in two channels has two buckets.
MAJOR_PARAMETERS = ("channels", "guilds", "webhooks", "interactions")


@dataclass
class Rule:
    limit: int
    per: float
    bucket: str


@dataclass
class Window:
    """One bucket for one major parameter: ``used`` requests since ``started``."""

    started: float
    used: int = 0


@dataclass
class Decision:
    """What the limiter says about one request: its headers, and a 429 body when it is refused."""

    headers: dict[str, str]
    refused: dict[str, Any] | None = None


@dataclass
class RateLimiter:
    rules: dict[tuple[str, str], Rule] = field(default_factory=dict)
    global_limit: int | None = None
    global_per: float = 1.0
    windows: dict[tuple[str, str], Window] = field(default_factory=dict)
    global_window: Window | None = None
    refused: list[dict[str, Any]] = field(default_factory=list)

    def set_route(self, method: str, template: str, limit: int, per: float, bucket: str | None) -> None:
        if limit < 1 or per <= 0:
            raise ValueError("a bucket needs a limit of at least 1 and a positive period")
        key = (method.upper(), PARAMETER.sub("{}", template))
        self.rules[key] = Rule(limit, per, bucket or f"{key[0]} {key[1]}")

    def set_global(self, limit: int | None, per: float) -> None:
        if limit is not None and (limit < 1 or per <= 0):
            raise ValueError("the global limit needs at least 1 request and a positive period")
        self.global_limit, self.global_per = limit, per
        self.global_window = None

    def check(self, method: str, template: str, path: str, *, counts_globally: bool) -> Decision | None:
        """Count a request; None when no rule applies to it (and the global limit lets it through)."""
        now = time.monotonic()
        if counts_globally and self.global_limit is not None:
            window = self.global_window
            if window is None or now - window.started >= self.global_per:
                window = self.global_window = Window(now)
            if window.used >= self.global_limit:
                retry = window.started + self.global_per - now
                body = {"message": "You are being rate limited.", "retry_after": round(retry, 3), "global": True}
                self.refused.append(body | {"path": path})
                headers = {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global",
                           "Retry-After": str(max(1, round(retry))), "Via": "1.1 google"}
                return Decision(headers, body)
            window.used += 1
        rule = self.rules.get((method.upper(), PARAMETER.sub("{}", template)))
        if rule is None:
            return None
        key = (rule.bucket, major_parameter(path))
        window = self.windows.get(key)
        if window is None or now - window.started >= rule.per:
            window = self.windows[key] = Window(now)
        reset_after = window.started + rule.per - now
        bucket_hash = hashlib.sha1(rule.bucket.encode(), usedforsecurity=False).hexdigest()[:16]
        headers = {
            "X-RateLimit-Limit": str(rule.limit),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash,
            "Via": "1.1 google",
        }
        if window.used >= rule.limit:
            body = {"message": "You are being rate limited.", "retry_after": round(reset_after, 3), "global": False}
            self.refused.append(body | {"path": path})
            headers |= {"X-RateLimit-Remaining": "0", "X-RateLimit-Scope": "user",
                        "Retry-After": str(max(1, round(reset_after)))}
            return Decision(headers, body)
        window.used += 1
        headers["X-RateLimit-Remaining"] = str(rule.limit - window.used)
        return Decision(headers)


def major_parameter(path: str) -> str:
    """The major parameter of a path (``channels/123``), which splits a route's bucket."""
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] in MAJOR_PARAMETERS:
        return f"{parts[0]}/{parts[1]}" + (f"/{parts[2]}" if parts[0] == "webhooks" and len(parts) > 2 else "")
    return ""
