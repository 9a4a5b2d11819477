"""Text on a card: the shipped fonts, a fallback font per character, emoji bitmaps, right-to-left runs, ellipses."""

from __future__ import annotations

import json
import threading
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, features

FONTS = Path(__file__).parent / "fonts"
ELLIPSIS = "…"
EMOJI_FILE = "NotoColorEmoji-40.ttf"
EMOJI_PPEM = 40  # a bitmap font only loads at the size of its strike; runs are scaled after drawing
# Characters that belong to the character before them: they never start a run of their own.
JOINERS = frozenset({0x200D, 0xFE0E, 0xFE0F, 0x20E3}) | frozenset(range(0x1F3FB, 0x1F400)) \
    | frozenset(range(0xE0020, 0xE0080))

# Fallback order after the primary font. DejaVu Sans before the CJK font: its symbols look like Noto Sans.
REGULAR = ("NotoSans-Regular.ttf", "NotoSansArabic-Regular.ttf", "NotoSansHebrew-Regular.ttf", "DejaVuSans.ttf",
           "DroidSansFallback-CJK.ttf")
BOLD = ("NotoSans-Bold.ttf", "NotoSansArabic-Bold.ttf", "NotoSansHebrew-Bold.ttf", "DejaVuSans.ttf",
        "DroidSansFallback-CJK.ttf")

LAYOUT = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC


@cache
def _coverage_table() -> dict[str, frozenset[int]]:
    # Written from each font's cmap by fonts/subset.py, so fontTools is not needed at run time.
    ranges = json.loads((FONTS / "coverage.json").read_text())
    return {name: frozenset(cp for start, end in spans for cp in range(start, end + 1))
            for name, spans in ranges.items()}


def coverage(filename: str) -> frozenset[int]:
    """The code points a shipped font has a glyph for."""
    return _coverage_table()[filename]


_thread_fonts = threading.local()


def _font(filename: str, size: int) -> ImageFont.FreeTypeFont:
    """A font at a size, one per thread: a FreeType face must not be used by two threads at once."""
    fonts: dict[tuple[str, int], ImageFont.FreeTypeFont] = _thread_fonts.__dict__.setdefault("fonts", {})
    font = fonts.get((filename, size))
    if font is None:
        font = fonts[(filename, size)] = ImageFont.truetype(str(FONTS / filename), size, layout_engine=LAYOUT)
    return font


def _emoji_presentation(cp: int, following: int | None) -> bool:
    return following == 0xFE0F or cp >= 0x1F000 or (0x2600 <= cp <= 0x27BF and following != 0xFE0E
                                                     and cp in coverage(EMOJI_FILE) and cp not in _TEXT_SYMBOLS)


# Symbols that Discord names often use as plain text; drawn from a text font unless VS16 asks for emoji.
_TEXT_SYMBOLS = frozenset(map(ord, "☆★♠♣♥♦♪♫☀☁☂☺☻♀♂✓✔✗✘✦✧"))


@dataclass(frozen=True, slots=True)
class Run:
    text: str
    font: str  # a file in FONTS
    rtl: bool

    @property
    def emoji(self) -> bool:
        return self.font == EMOJI_FILE


def _font_for(cp: int, following: int | None, chain: tuple[str, ...]) -> str:
    if _emoji_presentation(cp, following) and cp in coverage(EMOJI_FILE):
        return EMOJI_FILE
    for filename in chain:
        if cp in coverage(filename):
            return filename
    if cp in coverage(EMOJI_FILE):
        return EMOJI_FILE
    return chain[0]  # nothing covers it: the primary font's missing-glyph box


def _is_rtl(ch: str) -> bool:
    return unicodedata.bidirectional(ch) in ("R", "AL")


def printable(text: str) -> str:
    """The text without control and format characters (bidi overrides, zero-width spaces), which would draw
    as boxes or reorder the card; joiners and variation selectors that build emoji stay."""
    return "".join(ch for ch in text if ord(ch) in JOINERS or ch == "\u200c"
                   or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))


def split_runs(text: str, bold: bool = False) -> list[Run]:
    """Split text into runs that one font draws, in logical order."""
    text = printable(text)
    chain = BOLD if bold else REGULAR
    runs: list[Run] = []
    current: list[str] = []
    font = ""
    for index, ch in enumerate(text):
        cp = ord(ch)
        following = ord(text[index + 1]) if index + 1 < len(text) else None
        neutral = unicodedata.bidirectional(ch) in ("WS", "ON", "CS", "ES", "ET", "BN", "NSM") or cp in JOINERS
        if cp in JOINERS and cp not in coverage(font or chain[0]) and cp not in (0x200D, 0xFE0F, 0xFE0E):
            continue  # a modifier the font lacks (skin tones are not shipped) would draw as an empty box
        if current and (cp in JOINERS or unicodedata.combining(ch)
                        or (neutral and font != EMOJI_FILE and cp in coverage(font))):
            current.append(ch)
            continue
        chosen = _font_for(cp, following, chain)
        if current and chosen != font:
            runs.append(Run("".join(current), font, any(map(_is_rtl, current))))
            current = []
        font = chosen
        current.append(ch)
    if current:
        runs.append(Run("".join(current), font, any(map(_is_rtl, current))))
    return runs


def visual_order(runs: list[Run]) -> list[Run]:
    """Runs left to right: a paragraph whose first strong character is right-to-left is laid out from the right.

    Each run is shaped and ordered inside itself by raqm; this only orders the runs (a two-level bidi)."""
    first_rtl = next((r.rtl for r in runs if any(unicodedata.bidirectional(c) in ("L", "R", "AL") for c in r.text)),
                     False)
    return list(reversed(runs)) if first_rtl else runs


@lru_cache(maxsize=4096)
def _run_width(run: Run, size: int) -> int:
    if run.emoji:
        font = _font(EMOJI_FILE, EMOJI_PPEM)
        return round(font.getlength(run.text) * size / EMOJI_PPEM)
    return round(_font(run.font, size).getlength(run.text, direction="rtl" if run.rtl else None))


def text_width(text: str, size: int, bold: bool = False) -> int:
    return sum(_run_width(run, size) for run in split_runs(text, bold))


def _clusters(text: str) -> list[str]:
    """Characters with their joiners and combining marks: where text may be cut without breaking a glyph."""
    out: list[str] = []
    for ch in text:
        if out and (ord(ch) in JOINERS or unicodedata.combining(ch) or out[-1].endswith("\u200d")):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def fit(text: str, size: int, max_width: int, bold: bool = False) -> str:
    """The text, or its longest start that fits with an ellipsis after it."""
    if text_width(text, size, bold) <= max_width:
        return text
    clusters = _clusters(text)
    lo, hi = 0, len(clusters)
    while lo < hi:  # the largest count whose text plus ellipsis fits
        mid = (lo + hi + 1) // 2
        if text_width("".join(clusters[:mid]).rstrip() + ELLIPSIS, size, bold) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return "".join(clusters[:lo]).rstrip() + ELLIPSIS


def draw_text(image: Image.Image, xy: tuple[int, int], text: str, size: int, fill: tuple[int, ...],
              bold: bool = False, max_width: int | None = None, align: str = "left") -> int:
    """Draw text with its baseline at y and its left end at x (right end or centre for align="right"/"centre").

    Returns the width drawn; text wider than max_width is cut and ends with an ellipsis."""
    text = printable(text)
    if max_width is not None:
        text = fit(text, size, max_width, bold)
    runs = visual_order(split_runs(text, bold))
    width = sum(_run_width(run, size) for run in runs)
    x, baseline = xy
    if align == "right":
        x -= width
    elif align == "centre":
        x -= width // 2
    draw = ImageDraw.Draw(image)
    for run in runs:
        w = _run_width(run, size)
        if run.emoji:
            _paste_emoji(image, run.text, (x, baseline), size)
        else:
            draw.text((x, baseline), run.text, font=_font(run.font, size), fill=fill, anchor="ls",
                      direction="rtl" if run.rtl else None)
        x += w
    return width


def _paste_emoji(image: Image.Image, text: str, at: tuple[int, int], size: int) -> None:
    scaled = _emoji_image(text, size)
    x, baseline = at
    # The emoji's box sits on the baseline like a capital letter, dropping a little below it as in Noto.
    image.paste(scaled, (x, baseline - round(scaled.height * 0.86)), scaled)


@lru_cache(maxsize=512)
def _emoji_image(text: str, size: int) -> Image.Image:
    """Emoji drawn at the font's only size, then scaled to `size` (read-only once cached: shared by threads)."""
    font = _font(EMOJI_FILE, EMOJI_PPEM)
    bottom = int(font.getbbox(text)[3])
    canvas = Image.new("RGBA", (max(1, round(font.getlength(text))), max(1, bottom)), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((0, 0), text, font=font, embedded_color=True)
    scale = size / EMOJI_PPEM
    return canvas.resize((max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale))),
                         Image.Resampling.LANCZOS)
