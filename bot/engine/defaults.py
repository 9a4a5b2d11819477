"""The default achievement pack every new guild starts with, balanced by difficulty:
quick wins 10–50 points, mid-tier 50–200, hard 200–500, epic 500–2000."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AchievementSpec:
    id: str
    name: str
    description: str
    points: int
    condition: str
    hidden: bool = False


DEFAULT_PACK: tuple[AchievementSpec, ...] = (
    # Quick wins
    AchievementSpec("first-step", "First Step", "Send your first message.", 10, "messages >= 1"),
    AchievementSpec("chatterbox", "Chatterbox", "Send 10 messages.", 25, "messages >= 10"),
    AchievementSpec("appreciator", "Appreciator", "Give 10 reactions.", 25, "reactions_given >= 10"),
    AchievementSpec("crowd-pleaser", "Crowd Pleaser", "Receive 10 reactions.", 40, "reactions_received >= 10"),
    AchievementSpec("regular", "Regular", "Be active on 5 different days.", 40, "logins >= 5"),
    AchievementSpec("warming-up", "Warming Up", "Be active 3 days in a row.", 30, "streak >= 3"),
    AchievementSpec("early-bird", "Early Bird", "Be active before 06:00 (server time).", 30, "hour < 6"),
    AchievementSpec("night-owl", "Night Owl", "Be active at 23:00 or later (server time).", 30, "hour >= 23"),
    # Mid-tier
    AchievementSpec("conversationalist", "Conversationalist", "Send 100 messages.", 100, "messages >= 100"),
    AchievementSpec("cheerleader", "Cheerleader", "Give 100 reactions.", 100, "reactions_given >= 100"),
    AchievementSpec("fan-favourite", "Fan Favourite", "Receive 100 reactions.", 150, "reactions_received >= 100"),
    AchievementSpec("week-warrior", "Week Warrior", "Be active 7 days in a row.", 100, "streak >= 7"),
    AchievementSpec("familiar-face", "Familiar Face", "Be active on 30 different days.", 150, "logins >= 30"),
    AchievementSpec(
        "insomniac", "Insomniac", "Chat in the small hours after 50 messages.", 75,
        "hour >= 3 and hour < 4 and messages >= 50", hidden=True,
    ),
    # Hard
    AchievementSpec("community-voice", "Community Voice", "Send 1,000 messages.", 300, "messages >= 1000"),
    AchievementSpec("monthly-devotee", "Monthly Devotee", "Be active 30 days in a row.", 400, "streak >= 30"),
    AchievementSpec("pillar", "Pillar of the Community", "Be active on 100 different days.", 300, "logins >= 100"),
    AchievementSpec("collector", "Collector", "Unlock 10 achievements.", 200, "achievements >= 10"),
    # Epic
    AchievementSpec("living-legend", "Living Legend", "Send 10,000 messages.", 1000, "messages >= 10000"),
    AchievementSpec("centurion", "Centurion", "Be active 100 days in a row.", 1500, "streak >= 100"),
)
