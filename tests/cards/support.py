"""Sample card data for the card tests, the golden image and the README's sample card."""

from __future__ import annotations

import io
import os
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageChops, ImageStat

from bot.cards import CardData

GOLDEN = Path(__file__).parent / "golden"
SAMPLE_CARD = Path(__file__).parents[2] / "docs" / "sample-card.png"

SAMPLE = CardData(
    display_name="Ada Lovelace",
    avatar_key="sample",
    tier_name="Expert",
    tier_badge="🥇",
    points=735,
    next_tier_name="Master",
    next_tier_points=1000,
    tier_percent=47,
    rank=3,
    members=128,
    top_text="Top 2%",
    streak=6,
    best_streak=14,
    latest=("Conversationalist", "Crowd Pleaser", "Warming Up"),
)


def sample_avatar(size: int = 128) -> bytes:
    """A stand-in avatar: a diagonal gradient (the same every run, unlike a photo it needs no file)."""
    gradient = Image.linear_gradient("L").rotate(45, expand=False).resize((size, size))
    avatar = Image.merge("RGB", (gradient, Image.new("L", (size, size), 120), gradient.transpose(
        Image.Transpose.FLIP_LEFT_RIGHT)))
    out = io.BytesIO()
    avatar.save(out, "PNG")
    return out.getvalue()


def with_(data: CardData = SAMPLE, **changes: object) -> CardData:
    return replace(data, **changes)  # type: ignore[arg-type]


def open_png(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel and pixel, 0 (same) to 255."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


def updating_golden() -> bool:
    """UPDATE_GOLDEN=1 rewrites the golden images (and the README's sample card) instead of comparing."""
    return os.environ.get("UPDATE_GOLDEN") == "1"
