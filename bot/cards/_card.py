"""The profile card: what it shows (CardData) and how Pillow draws it. CPU only: run it off the event loop."""

from __future__ import annotations

import hashlib
import io
import logging
import math
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw

from bot.cards._text import draw_text, fit, printable

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 900, 300
SUPERSAMPLE = 4  # shapes are drawn this much larger and scaled down: Pillow's own shapes have no anti-aliasing
LARGE_SUPERSAMPLE = 2  # for the card-sized layers: 4x would cost 50 ms the first time a tier colour is drawn

BACKGROUND = (30, 31, 34)
PANEL = (43, 45, 49)
TRACK = (64, 66, 73)
TEXT = (242, 243, 245)
MUTED = (181, 186, 193)

# The default tiers' badges become drawn shapes; any other badge gets the generic one.
BADGE_SHAPES = {"🥉": "bronze", "🥈": "silver", "🥇": "gold", "💎": "diamond", "👑": "crown"}
SHAPE_COLOURS = {
    "bronze": (205, 127, 50), "silver": (192, 199, 208), "gold": (241, 196, 15),
    "diamond": (93, 200, 240), "crown": (245, 180, 40),
}
GENERIC_COLOURS = ((88, 101, 242), (87, 242, 135), (235, 69, 158), (254, 231, 92), (237, 66, 69), (155, 89, 182))
# Darker ones behind white initials, so they stay readable.
AVATAR_COLOURS = ((88, 101, 242), (59, 165, 93), (214, 51, 132), (211, 84, 0), (192, 57, 43), (142, 68, 173),
                  (22, 160, 133), (41, 128, 185))


@dataclass(frozen=True, slots=True)
class CardData:
    """Everything a card draws, and so the cache key: equal data gives the same picture."""

    display_name: str
    avatar_key: str | None  # the avatar's hash (or URL); None: no avatar, the drawn one
    tier_name: str
    tier_badge: str
    points: int
    next_tier_name: str | None
    next_tier_points: int | None
    tier_percent: int
    rank: int | None
    members: int
    top_text: str  # "Top 3%"
    streak: int
    best_streak: int
    latest: tuple[str, ...]  # names of the latest unlocked achievements, newest first (at most 3)


def badge_shape(badge: str) -> str:
    return BADGE_SHAPES.get(badge.replace("\ufe0f", ""), "generic")


def accent(data: CardData) -> tuple[int, int, int]:
    shape = badge_shape(data.tier_badge)
    if shape != "generic":
        return SHAPE_COLOURS[shape]
    digest = hashlib.blake2s(data.tier_name.encode(), digest_size=1).digest()[0]
    return GENERIC_COLOURS[digest % len(GENERIC_COLOURS)]


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    if factor >= 1:
        return tuple(min(255, round(c + (255 - c) * (factor - 1))) for c in colour)  # type: ignore[return-value]
    return tuple(round(c * factor) for c in colour)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------- badges
@lru_cache(maxsize=32)
def badge_image(shape: str, colour: tuple[int, int, int], size: int) -> Image.Image:
    """The tier badge as a drawn picture: medal, diamond, crown, or a generic star badge."""
    s = size * SUPERSAMPLE
    image = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(image)
    dark, light = _shade(colour, 0.62), _shade(colour, 1.35)
    if shape in ("bronze", "silver", "gold"):
        # Ribbon, then the medal hanging from it.
        ribbon = (88, 101, 242) if shape == "gold" else (237, 66, 69) if shape == "silver" else (59, 165, 93)
        d.polygon([(s * .28, 0), (s * .46, 0), (s * .58, s * .42), (s * .40, s * .42)], fill=ribbon)
        d.polygon([(s * .54, 0), (s * .72, 0), (s * .60, s * .42), (s * .42, s * .42)], fill=_shade(ribbon, .75))
        c, r = (s * .5, s * .64), s * .34
        d.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=dark)
        d.ellipse([c[0] - r * .84, c[1] - r * .84, c[0] + r * .84, c[1] + r * .84], fill=colour)
        _star(d, c, r * .5, light)
    elif shape == "diamond":
        top, girdle, bottom = s * .14, s * .38, s * .92
        left, right = s * .06, s * .94
        d.polygon([(s * .26, top), (s * .74, top), (right, girdle), (s * .5, bottom), (left, girdle)], fill=colour)
        d.polygon([(s * .26, top), (s * .74, top), (s * .62, girdle), (s * .38, girdle)], fill=light)
        d.polygon([(left, girdle), (s * .38, girdle), (s * .5, bottom)], fill=dark)
        d.polygon([(s * .62, girdle), (right, girdle), (s * .5, bottom)], fill=_shade(colour, .8))
        d.polygon([(s * .38, girdle), (s * .62, girdle), (s * .5, bottom)], fill=_shade(colour, 1.15))
    elif shape == "crown":
        base = s * .78
        d.polygon([(s * .08, s * .28), (s * .30, s * .52), (s * .5, s * .18), (s * .70, s * .52), (s * .92, s * .28),
                   (s * .84, base), (s * .16, base)], fill=colour)
        d.rectangle([s * .16, base - s * .02, s * .84, s * .9], fill=dark)
        for x, y in ((.08, .28), (.5, .18), (.92, .28)):
            r = s * .06
            d.ellipse([s * x - r, s * y - r, s * x + r, s * y + r], fill=light)
        for x in (.34, .5, .66):
            r = s * .045
            d.ellipse([s * x - r, s * .66 - r, s * x + r, s * .66 + r], fill=(237, 66, 69))
    else:
        c = (s * .5, s * .5)
        _polygon_round(d, c, s * .47, 6, dark)
        _polygon_round(d, c, s * .40, 6, colour)
        _star(d, c, s * .24, light)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _star(d: ImageDraw.ImageDraw, centre: tuple[float, float], radius: float, fill: tuple[int, int, int]) -> None:
    points = []
    for i in range(10):
        r = radius if i % 2 == 0 else radius * .45
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((centre[0] + r * math.cos(angle), centre[1] + r * math.sin(angle)))
    d.polygon(points, fill=fill)


def _polygon_round(d: ImageDraw.ImageDraw, centre: tuple[float, float], radius: float, sides: int,
                   fill: tuple[int, int, int]) -> None:
    d.regular_polygon((centre[0], centre[1], radius), sides, rotation=30, fill=fill)


# --------------------------------------------------------------------------------------------- avatar
AVATAR = 140
RING = 5


@lru_cache(maxsize=4)
def _circle_mask(size: int) -> Image.Image:
    big = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
    ImageDraw.Draw(big).ellipse([0, 0, big.width - 1, big.height - 1], fill=255)
    return big.resize((size, size), Image.Resampling.LANCZOS)


def initials(name: str) -> str:
    name = printable(name)
    words = [w for w in name.replace("_", " ").replace(".", " ").split() if w[:1].isalnum()]
    if not words:
        letters = [c for c in name if c.isalnum()]
        return (letters[0].upper() if letters else "?")
    if len(words) == 1:
        return words[0][0].upper()
    return (words[0][0] + words[1][0]).upper()


def fallback_avatar(name: str, size: int) -> Image.Image:
    """A coloured circle with the member's initials, for when their avatar cannot be fetched."""
    digest = hashlib.blake2s(name.encode(), digest_size=1).digest()[0]
    colour = AVATAR_COLOURS[digest % len(AVATAR_COLOURS)]
    image = Image.new("RGBA", (size, size), (*colour, 255))
    text_size = size * 2 // 5
    draw_text(image, (size // 2, size // 2 + text_size * 36 // 100), initials(name), text_size,
              (255, 255, 255), bold=True, align="centre")
    return image


def avatar_image(avatar: bytes | None, name: str, size: int) -> Image.Image:
    picture: Image.Image | None = None
    if avatar:
        try:
            with Image.open(io.BytesIO(avatar)) as opened:
                opened.draft("RGB", (size, size))  # JPEGs decode straight at about the size needed
                picture = opened.convert("RGBA").resize((size, size), Image.Resampling.LANCZOS)
        except (OSError, ValueError, Image.DecompressionBombError):
            log.warning("could not decode the avatar of %r; drawing initials instead", name)
    if picture is None:
        picture = fallback_avatar(name, size)
    picture.putalpha(_circle_mask(size))
    return picture


# --------------------------------------------------------------------------------------------- the card
@lru_cache(maxsize=16)
def _background(colour: tuple[int, int, int]) -> Image.Image:
    """The card without member data: background, panel, accent strip and the avatar ring, per accent colour."""
    s = LARGE_SUPERSAMPLE
    big = Image.new("RGB", (WIDTH * s, HEIGHT * s), BACKGROUND)
    d = ImageDraw.Draw(big)
    # The panel over an accent-coloured one of the same shape, 6 px lower: an accent edge along its top.
    d.rounded_rectangle([8 * s, 8 * s, (WIDTH - 8) * s, (HEIGHT - 8) * s], radius=22 * s, fill=colour)
    d.rounded_rectangle([8 * s, 14 * s, (WIDTH - 8) * s, (HEIGHT - 8) * s], radius=22 * s, fill=PANEL)
    x, y = AVATAR_XY
    d.ellipse([(x - RING) * s, (y - RING) * s, (x + AVATAR + RING) * s, (y + AVATAR + RING) * s], fill=colour)
    for i in range(3):  # the boxes for the latest unlocks
        left = 30 + i * (CHIP_W + CHIP_GAP)
        d.rounded_rectangle([left * s, CHIP_Y * s, (left + CHIP_W) * s, (CHIP_Y + CHIP_H) * s], radius=10 * s,
                            fill=(35, 36, 40))
    return big.resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)


AVATAR_XY = (34, 36)
CONTENT_X = 200
RIGHT = WIDTH - 30
BADGE = 78
BAR_Y, BAR_H = 126, 20
CHIP_Y, CHIP_H, CHIP_GAP = 236, 40, 12
CHIP_W = (WIDTH - 60 - 2 * CHIP_GAP) // 3


@lru_cache(maxsize=16)
def _bar(fraction_px: int, colour: tuple[int, int, int]) -> Image.Image:
    width = RIGHT - CONTENT_X
    s = LARGE_SUPERSAMPLE
    big = Image.new("RGBA", (width * s, BAR_H * s), (0, 0, 0, 0))
    d = ImageDraw.Draw(big)
    d.rounded_rectangle([0, 0, width * s - 1, BAR_H * s - 1], radius=BAR_H * s // 2, fill=TRACK)
    if fraction_px > 0:
        filled = max(BAR_H, fraction_px) * s
        d.rounded_rectangle([0, 0, filled - 1, BAR_H * s - 1], radius=BAR_H * s // 2, fill=colour)
    return big.resize((width, BAR_H), Image.Resampling.LANCZOS)


def plural_days(count: int) -> str:
    return f"{count:,} day" if count == 1 else f"{count:,} days"


def render_card(data: CardData, avatar: bytes | None) -> bytes:
    """The card as PNG bytes, WIDTH × HEIGHT."""
    colour = accent(data)
    image = _background(colour).copy()
    image.paste(avatar_image(avatar, data.display_name, AVATAR), AVATAR_XY, _circle_mask(AVATAR))

    badge = badge_image(badge_shape(data.tier_badge), colour, BADGE)
    image.paste(badge, (RIGHT - BADGE, 26), badge)

    name_width = RIGHT - BADGE - 16 - CONTENT_X
    draw_text(image, (CONTENT_X, 66), data.display_name, 36, TEXT, bold=True, max_width=name_width)
    tier_w = draw_text(image, (CONTENT_X, 102), data.tier_name, 22, colour, bold=True, max_width=260)
    draw_text(image, (CONTENT_X + tier_w, 102), f"  ·  {data.points:,} points", 22, MUTED)

    bar_width = RIGHT - CONTENT_X
    fraction = 1.0 if data.next_tier_name is None else data.tier_percent / 100
    bar = _bar(round(bar_width * fraction), colour)
    image.paste(bar, (CONTENT_X, BAR_Y), bar)
    if data.next_tier_name is None:
        caption, figures = "Top tier reached", f"{data.points:,} points"
    else:
        caption = fit(f"{data.tier_percent}% to {data.next_tier_name}", 16, bar_width - 200)
        figures = f"{data.points:,} / {data.next_tier_points or 0:,}"
    draw_text(image, (CONTENT_X, BAR_Y + BAR_H + 22), caption, 16, MUTED)
    draw_text(image, (RIGHT, BAR_Y + BAR_H + 22), figures, 16, MUTED, align="right")

    column_w = (RIGHT - CONTENT_X) // 3
    stats_x = (CONTENT_X, CONTENT_X + column_w, CONTENT_X + 2 * column_w)
    w = draw_text(image, (stats_x[0], 194), "RANK", 13, MUTED, bold=True)
    if data.rank is None:
        draw_text(image, (stats_x[0], 220), "Unranked", 22, TEXT, bold=True)
    else:
        draw_text(image, (stats_x[0] + w + 8, 194), data.top_text.upper(), 13, colour, bold=True)
        w = draw_text(image, (stats_x[0], 220), f"#{data.rank:,}", 22, TEXT, bold=True)
        draw_text(image, (stats_x[0] + w + 6, 220), f"of {data.members:,}", 16, MUTED, max_width=column_w - w - 14)
    for x, label, days in ((stats_x[1], "STREAK", data.streak), (stats_x[2], "BEST STREAK", data.best_streak)):
        draw_text(image, (x, 194), label, 13, MUTED, bold=True)
        draw_text(image, (x, 220), plural_days(days), 22, TEXT, bold=True, max_width=column_w - 8)

    for i in range(3):
        left = 30 + i * (CHIP_W + CHIP_GAP)
        baseline = CHIP_Y + CHIP_H // 2 + 6
        if i < len(data.latest):
            trophy = badge_image("generic", colour, 24)
            image.paste(trophy, (left + 10, CHIP_Y + (CHIP_H - 24) // 2), trophy)
            draw_text(image, (left + 42, baseline), data.latest[i], 16, TEXT, max_width=CHIP_W - 52)
        elif i == 0:
            draw_text(image, (left + 14, baseline), "No achievements yet", 16, MUTED, max_width=CHIP_W - 24)

    out = io.BytesIO()
    # compress_level 1: a tenth of the encoding time of the default for a file about a quarter larger.
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()
