"""Profile cards: a PNG of a member's profile, drawn with Pillow off the event loop and cached."""

from bot.cards._card import HEIGHT, WIDTH, CardData, render_card
from bot.cards._service import ProfileCards, card_data

__all__ = ["HEIGHT", "WIDTH", "CardData", "ProfileCards", "card_data", "render_card"]
