"""Profile cards: milliseconds per card (p50/p99), target ≤ 50 ms. Baseline in the same run: Pillow creating
and PNG-encoding a blank image of the card's size (the floor any card pays). Also the cost of a cache hit and
the event loop's longest block while cards render in the pool.

Usage: python -m bench.cards [--samples 300]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import time
from dataclasses import replace

from PIL import Image

from bench._util import LoopMonitor, machine, percentile, verdict
from bot.cards import HEIGHT, WIDTH, CardData, ProfileCards, render_card

TARGET_MS = 50.0
NAMES = ("Ada Lovelace", "محمد الأحمد", "שלום עולם", "李小龙 🐉", "Zoë ✨ the Great 🎉", "x" * 80)
ACHIEVEMENTS = ("Chatterbox", "Warming Up", "Crowd Pleaser", "Conversationalist", "Familiar Face", "日本語の実績")


def sample_avatar(size: int = 128) -> bytes:
    out = io.BytesIO()
    Image.radial_gradient("L").resize((size, size)).convert("RGB").save(out, "PNG")
    return out.getvalue()


def card(index: int) -> CardData:
    """A different card each time: other points, rank, streaks, name and unlocks, as members' cards differ."""
    latest = tuple(ACHIEVEMENTS[(index + k) % len(ACHIEVEMENTS)] for k in range(index % 4))
    return CardData(
        display_name=f"{NAMES[index % len(NAMES)]} {index}", avatar_key=str(index), tier_name="Expert",
        tier_badge=("🥉", "🥈", "🥇", "💎", "👑", "🧙")[index % 6], points=500 + index,
        next_tier_name="Master", next_tier_points=1000, tier_percent=index % 100, rank=1 + index % 1000,
        members=12_345, top_text=f"Top {1 + index % 99}%", streak=index % 30, best_streak=30 + index % 10,
        latest=latest,
    )


def baseline(samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        out = io.BytesIO()
        Image.new("RGB", (WIDTH, HEIGHT), (43, 45, 49)).save(out, "PNG", compress_level=1)
        times.append((time.perf_counter() - started) * 1000)
    return times


def renders(samples: int, avatar: bytes) -> list[float]:
    times = []
    for index in range(samples):
        data = card(index)
        started = time.perf_counter()
        render_card(data, avatar)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def through_the_pool(samples: int, avatar: bytes) -> dict[str, float]:
    """Cards rendered through ProfileCards as /profile does: loop block while rendering, then cache hits."""
    cards = ProfileCards(cache_size=samples)

    async def fetch() -> bytes:
        return avatar

    with LoopMonitor() as monitor:
        started = time.perf_counter()
        for index in range(samples):
            await cards.card(card(index), fetch)
        pooled = (time.perf_counter() - started) * 1000 / samples
    hits = []
    for index in range(samples):
        data = replace(card(index))  # an equal key, not the same object
        started = time.perf_counter()
        await cards.card(data, fetch)
        hits.append((time.perf_counter() - started) * 1000)
    cards.close()
    return {"pooled_ms": pooled, "max_block_ms": monitor.max_block * 1000, "hit_p99_ms": percentile(hits, 99),
            "renders": cards.renders}


def run(samples: int) -> dict[str, float]:
    avatar = sample_avatar()
    started = time.perf_counter()
    render_card(card(0), avatar)  # loads the fonts and fills the shape caches once
    first_ms = (time.perf_counter() - started) * 1000
    base = baseline(samples)
    times = renders(samples, avatar)
    pool = asyncio.run(through_the_pool(samples, avatar))
    return {"first_ms": first_ms, "p50": percentile(times, 50), "p99": percentile(times, 99),
            "base_p50": percentile(base, 50), "base_p99": percentile(base, 99), **pool}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    print(f"machine: {machine()}; card {WIDTH}x{HEIGHT} PNG; {args.samples} cards")
    r = run(args.samples)
    print(f"first card (fonts loading): {r['first_ms']:.1f} ms")
    print(f"render_card: p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms   "
          f"[{verdict(r['p99'] <= TARGET_MS)} target <= {TARGET_MS:.0f} ms]")
    print(f"baseline, blank {WIDTH}x{HEIGHT} PNG: p50 {r['base_p50']:.2f} ms, p99 {r['base_p99']:.2f} ms; "
          f"card/baseline p50 {r['p50'] / r['base_p50']:.1f}x")
    print(f"through ProfileCards (thread pool): {r['pooled_ms']:.1f} ms per card, event loop longest block "
          f"{r['max_block_ms']:.1f} ms; cache hit p99 {r['hit_p99_ms'] * 1000:.0f} µs")


if __name__ == "__main__":
    main()
