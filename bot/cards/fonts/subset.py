"""One-off tool that made the fonts in this folder from Debian's font packages (needs fontTools, not a runtime dep).

    apt-get install fonts-noto-core fonts-noto-color-emoji fonts-dejavu-core fonts-droid-fallback
    pip install fonttools && python -m bot.cards.fonts.subset

Hinting is dropped (the card is anti-aliased), the CJK fallback keeps the common characters of GB 2312,
JIS X 0208 and KS X 1001, and the colour emoji bitmaps are scaled from 109 to 40 px per em: the card
draws emoji at about that size; without skin-tone sequences the font shrinks from 11 MB to about 2.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont
from PIL import Image

HERE = Path(__file__).parent
NOTO = Path("/usr/share/fonts/truetype/noto")
EMOJI_PPEM = 40


def _options(*, layout: bool = True) -> subset.Options:
    options = subset.Options()
    options.hinting = False
    options.desubroutinize = True
    options.notdef_outline = True
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.layout_features = ["*"] if layout else []
    options.drop_tables += ["DSIG"]
    return options


def _subset(source: Path, target: str, unicodes: list[int] | None = None) -> None:
    font = TTFont(source)
    options = _options()
    subsetter = subset.Subsetter(options)
    cmap = font.getBestCmap()
    subsetter.populate(unicodes=unicodes if unicodes is not None else list(cmap))
    subsetter.subset(font)
    font.save(HERE / target)


def _cjk_codepoints() -> list[int]:
    chars: set[int] = set(range(0x3000, 0x3100)) | set(range(0xFF00, 0xFFF0)) | set(range(0x3130, 0x3190))
    for codec, leads, trails in (("gb2312", range(0xB0, 0xF8), range(0xA1, 0xFF)),
                                 ("euc_jp", range(0xB0, 0xD0), range(0xA1, 0xFF)),
                                 ("euc_kr", range(0xB0, 0xC9), range(0xA1, 0xFF))):
        for lead in leads:
            for trail in trails:
                try:
                    chars.add(ord(bytes((lead, trail)).decode(codec)))
                except (UnicodeDecodeError, TypeError):
                    pass
    return sorted(chars)


def _scaled_emoji(source: Path, target: str, ppem: int) -> None:
    font = TTFont(source)
    # Skin-tone sequences are half the glyphs; without them a toned emoji shows its base emoji and a swatch.
    keep = [c for c in font.getBestCmap() if not 0x1F3FB <= c <= 0x1F3FF]
    subsetter = subset.Subsetter(_options())
    subsetter.populate(unicodes=keep)
    subsetter.subset(font)
    cblc, cbdt = font["CBLC"], font["CBDT"]
    strike = cblc.strikes[0]
    scale = ppem / strike.bitmapSizeTable.ppemX
    for glyphs in cbdt.strikeData:
        for glyph in glyphs.values():
            glyph.decompile()
            image = Image.open(io.BytesIO(glyph.imageData))
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            out = io.BytesIO()
            # A 64-colour palette, as the original bitmaps have, keeps each glyph near 1 kB.
            scaled = image.convert("RGBA").resize(size, Image.Resampling.LANCZOS)
            scaled.quantize(64, method=Image.Quantize.FASTOCTREE).save(out, "PNG", optimize=True)
            glyph.imageData = out.getvalue()
            m = glyph.metrics
            m.width, m.height = size
            for name in ("BearingX", "BearingY", "Advance"):
                if hasattr(m, name):
                    setattr(m, name, round(getattr(m, name) * scale))
    table = strike.bitmapSizeTable
    table.ppemX = table.ppemY = ppem
    for lines in (table.hori, table.vert):
        for name in ("ascender", "descender", "widthMax", "minOriginSB", "minAdvanceSB", "maxBeforeBL",
                     "minAfterBL"):
            setattr(lines, name, round(getattr(lines, name) * scale))
    for index in strike.indexSubTables:
        if hasattr(index, "metrics"):
            m = index.metrics
            m.width, m.height = round(m.width * scale), round(m.height * scale)
            for name in ("horiBearingX", "horiBearingY", "horiAdvance", "vertBearingX", "vertBearingY",
                         "vertAdvance"):
                if hasattr(m, name):
                    setattr(m, name, round(getattr(m, name) * scale))
    font.save(HERE / target)


def main() -> None:
    _subset(NOTO / "NotoSans-Regular.ttf", "NotoSans-Regular.ttf")
    _subset(NOTO / "NotoSans-Bold.ttf", "NotoSans-Bold.ttf")
    _subset(NOTO / "NotoSansArabic-Regular.ttf", "NotoSansArabic-Regular.ttf")
    _subset(NOTO / "NotoSansArabic-Bold.ttf", "NotoSansArabic-Bold.ttf")
    _subset(NOTO / "NotoSansHebrew-Regular.ttf", "NotoSansHebrew-Regular.ttf")
    _subset(NOTO / "NotoSansHebrew-Bold.ttf", "NotoSansHebrew-Bold.ttf")
    _subset(Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"), "DejaVuSans.ttf")
    _subset(Path("/usr/share/fonts-droid-fallback/truetype/DroidSansFallback.ttf"), "DroidSansFallback-CJK.ttf",
            _cjk_codepoints())
    _scaled_emoji(NOTO / "NotoColorEmoji.ttf", "NotoColorEmoji-40.ttf", EMOJI_PPEM)
    _write_coverage()


def _write_coverage() -> None:
    """coverage.json: each font's code points as [first, last] ranges, read by the card's fallback chain."""
    table: dict[str, list[list[int]]] = {}
    for path in sorted(HERE.glob("*.ttf")):
        spans: list[list[int]] = []
        for cp in sorted(TTFont(path).getBestCmap()):
            if spans and spans[-1][1] == cp - 1:
                spans[-1][1] = cp
            else:
                spans.append([cp, cp])
        table[path.name] = spans
    (HERE / "coverage.json").write_text(json.dumps(table, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
