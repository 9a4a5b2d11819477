"""The card as a member sees it: a PNG of the right size that matches the golden image, in any script."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.cards import HEIGHT, WIDTH, render_card
from bot.cards._card import initials
from bot.cards._text import EMOJI_FILE, coverage, fit, split_runs, text_width, visual_order
from tests.cards.support import (
    GOLDEN,
    SAMPLE,
    SAMPLE_CARD,
    mean_difference,
    open_png,
    sample_avatar,
    updating_golden,
    with_,
)

# Mean per-pixel difference allowed against the golden image: FreeType or Pillow versions move anti-aliased
# edges by a level or two; a moved or missing element costs far more (a blank name area alone is ~1.5).
GOLDEN_TOLERANCE = 0.6


def test_a_card_is_a_png_of_the_card_size() -> None:
    png = render_card(SAMPLE, sample_avatar())

    image = open_png(png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert image.format == "PNG"
    assert image.size == (WIDTH, HEIGHT)


def test_the_card_matches_the_golden_image() -> None:
    png = render_card(SAMPLE, sample_avatar())
    golden = GOLDEN / "sample.png"
    if updating_golden():
        golden.write_bytes(png)
        SAMPLE_CARD.parent.mkdir(exist_ok=True)
        SAMPLE_CARD.write_bytes(png)
    assert mean_difference(open_png(png), Image.open(golden)) < GOLDEN_TOLERANCE


def test_a_changed_figure_does_not_match_the_golden_image() -> None:
    """The tolerance is tight enough to notice one different number."""
    png = render_card(with_(points=999, tier_percent=99), sample_avatar())
    assert mean_difference(open_png(png), Image.open(GOLDEN / "sample.png")) > 0.05


@pytest.mark.parametrize("name", ["محمد الأحمد", "שלום עולם", "Ада ✨ 李小龙 🎉", "ゆき🌸", "Zoë 👨‍👩‍👧 ❤️ 👍🏽"])
def test_names_in_other_scripts_and_with_emoji_render(name: str) -> None:
    png = render_card(with_(display_name=name), None)

    assert open_png(png).size == (WIDTH, HEIGHT)
    for run in split_runs(name, bold=True):  # every character comes from a font that has it: no tofu
        assert all(ord(c) in coverage(run.font) or c in "\u200d\ufe0f " for c in run.text), run


def test_control_and_bidi_override_characters_are_not_drawn() -> None:
    sneaky = render_card(with_(display_name="\u202eAda\u200b Lovelace\u0007"), sample_avatar())
    assert sneaky == render_card(with_(display_name="Ada Lovelace"), sample_avatar())


def test_arabic_and_hebrew_names_are_drawn_with_their_fonts_right_to_left() -> None:
    arabic = split_runs("محمد", bold=True)
    hebrew = split_runs("שלום", bold=False)

    assert [(r.font, r.rtl) for r in arabic] == [("NotoSansArabic-Bold.ttf", True)]
    assert [(r.font, r.rtl) for r in hebrew] == [("NotoSansHebrew-Regular.ttf", True)]


def test_a_right_to_left_name_with_latin_in_it_is_laid_out_from_the_right() -> None:
    rtl_first = [r.text.strip() for r in visual_order(split_runs("שלום user"))]
    ltr_first = [r.text.strip() for r in visual_order(split_runs("user שלום"))]

    assert rtl_first == ["user", "שלום"]
    assert ltr_first == ["user", "שלום"]


def test_emoji_are_drawn_in_colour_from_the_emoji_font() -> None:
    runs = split_runs("hi 🎉", bold=True)
    plain = render_card(with_(display_name="hi"), None)
    party = render_card(with_(display_name="hi 🎉"), None)

    assert runs[-1].font == EMOJI_FILE
    name_area = (200, 30, 600, 75)
    crop = open_png(party).convert("RGB").crop(name_area)
    assert mean_difference(crop, open_png(plain).convert("RGB").crop(name_area)) > 1
    colours = crop.getcolors(maxcolors=100_000) or []
    assert any(max(c) - min(c) > 80 for _, c in colours)  # saturated pixels: not grey text


def test_a_very_long_name_is_cut_with_an_ellipsis_inside_its_space() -> None:
    name = "The Extraordinarily Long Display Name Of Someone Who Likes Typing " * 3

    shown = fit(name, 36, 500, bold=True)

    assert shown.endswith("…") and len(shown) < len(name)
    assert text_width(shown, 36, bold=True) <= 500
    image = open_png(render_card(with_(display_name=name), None)).convert("RGB")
    badge_gap = image.crop((WIDTH - 30 - 78 - 14, 35, WIDTH - 30 - 78 - 2, 75))  # between name and badge
    assert badge_gap.getextrema() == tuple((v, v) for v in badge_gap.getpixel((0, 0)))  # type: ignore[union-attr]


def test_long_achievement_names_are_cut_too() -> None:
    long = ("A" * 80, "日本語の実績" * 10, "🎉" * 40)
    png = render_card(with_(latest=long), None)
    assert open_png(png).size == (WIDTH, HEIGHT)


def test_without_an_avatar_the_card_draws_initials_on_a_coloured_circle() -> None:
    fallback = open_png(render_card(SAMPLE, None)).convert("RGB")
    pictured = open_png(render_card(SAMPLE, sample_avatar())).convert("RGB")

    avatar_area = (40, 42, 168, 170)
    assert mean_difference(fallback.crop(avatar_area), pictured.crop(avatar_area)) > 10
    assert initials("Ada Lovelace") == "AL"
    assert initials("محمد الأحمد") == "ما"
    assert initials("🎉🎉") == "?"
    assert initials("\u202eAda") == "A"


def test_an_avatar_that_is_not_an_image_gets_the_drawn_fallback() -> None:
    assert render_card(SAMPLE, b"<html>not found</html>") == render_card(SAMPLE, None)


def test_unranked_members_without_unlocks_and_top_tier_members_render() -> None:
    for data in (with_(rank=None, top_text="", latest=(), streak=0, best_streak=0, points=0, tier_percent=0),
                 with_(tier_name="Legend", tier_badge="👑", next_tier_name=None, next_tier_points=None,
                       tier_percent=100),
                 with_(tier_name="Cosmic Wizard", tier_badge="🧙"),
                 with_(tier_badge="💎")):
        assert open_png(render_card(data, None)).size == (WIDTH, HEIGHT)


def test_every_default_tier_has_its_own_drawn_badge() -> None:
    badges = {b: open_png(render_card(with_(tier_badge=b), None)).crop((WIDTH - 108, 26, WIDTH - 30, 104))
              for b in ("🥉", "🥈", "🥇", "💎", "👑", "⭐")}
    pictures = [io.BytesIO() for _ in badges]
    for buf, image in zip(pictures, badges.values(), strict=True):
        image.save(buf, "PNG")
    assert len({buf.getvalue() for buf in pictures}) == len(badges)
