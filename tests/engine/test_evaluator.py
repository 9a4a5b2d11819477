"""Specification of unlock decisions, achievements' flags and kinds, and the default pack."""

from datetime import UTC, datetime, timedelta

import pytest

from bot.engine.achievements import Achievement, AchievementKind, WindowState
from bot.engine.conditions import parse_condition
from bot.engine.defaults import DEFAULT_PACK, AchievementSpec
from bot.engine.evaluator import RuleBook, evaluate, evaluate_all
from bot.engine.stats import MemberStats
from bot.engine.tiers import DEFAULT_TIERS

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)


def achievement(achievement_id: str, condition: str, points: int = 10, **flags: object) -> Achievement:
    return Achievement(
        id=achievement_id,
        name=achievement_id.replace("-", " ").title(),
        description=f"Reach {condition}.",
        points=points,
        condition=parse_condition(condition),
        **flags,  # type: ignore[arg-type]
    )


class Member:
    """A member's stats and unlocks, evaluated against a rulebook the way the recorder does."""

    def __init__(self, *rules: Achievement, **stats: int) -> None:
        self.rulebook = RuleBook(rules)
        self.stats = MemberStats(dict(stats))
        self.unlocked: set[str] = set()

    def evaluate(self, *changed: str, hour: int | None = None, now: datetime = NOW) -> list[str]:
        result = evaluate(self.stats, self.unlocked, self.rulebook, set(changed), now, hour, DEFAULT_TIERS)
        return [a.id for a in result.unlocked]

    def act(self, stat: str, amount: int = 1, hour: int | None = None, now: datetime = NOW) -> list[str]:
        self.stats.add(stat, amount)
        return self.evaluate(stat, hour=hour, now=now)


# --- Each achievement once, its points once ---------------------------------------------------------


def test_meeting_a_condition_unlocks_the_achievement_and_adds_its_points() -> None:
    member = Member(achievement("first-step", "messages >= 1", points=10))

    assert member.act("messages") == ["first-step"]
    assert member.stats.get("points") == 10
    assert member.stats.get("achievements") == 1
    assert member.unlocked == {"first-step"}


def test_an_achievement_is_unlocked_only_once_and_its_points_added_once() -> None:
    member = Member(achievement("first-step", "messages >= 1", points=10))
    member.act("messages")

    later = [member.act("messages") for _ in range(5)]

    assert later == [[]] * 5
    assert member.stats.get("points") == 10
    assert member.stats.get("achievements") == 1


def test_an_achievement_already_held_from_storage_is_not_unlocked_again() -> None:
    member = Member(achievement("first-step", "messages >= 1"), messages=5, points=10, achievements=1)
    member.unlocked.add("first-step")

    assert member.act("messages") == []
    assert member.stats.get("points") == 10


def test_not_meeting_a_condition_unlocks_nothing() -> None:
    member = Member(achievement("chatterbox", "messages >= 10"))

    assert member.act("messages", 9) == []
    assert member.stats.get("points") == 0


# --- Cascades ---------------------------------------------------------------------------------------


def test_an_achievements_count_rule_unlocks_in_the_same_evaluation() -> None:
    member = Member(
        achievement("first-step", "messages >= 1"),
        achievement("first-reaction", "reactions_given >= 1"),
        achievement("collector", "achievements >= 2", points=50),
        reactions_given=1,
    )
    member.unlocked.add("first-reaction")
    member.stats.values.update(points=10, achievements=1)

    assert member.act("messages") == ["first-step", "collector"]
    assert member.stats.get("achievements") == 3
    assert member.stats.get("points") == 70


def test_a_points_rule_unlocks_in_the_same_evaluation_as_the_unlock_that_earned_them() -> None:
    member = Member(
        achievement("big-talker", "messages >= 1", points=30),
        achievement("thirty-club", "points >= 30", points=5),
    )

    assert member.act("messages") == ["big-talker", "thirty-club"]
    assert member.stats.get("points") == 35


def test_cascades_settle_over_several_rounds() -> None:
    member = Member(
        achievement("step", "messages >= 1", points=10),
        achievement("twenty", "points >= 10", points=10),
        achievement("thirty", "points >= 20", points=10),
        achievement("trio", "achievements >= 3", points=10),
    )

    assert sorted(member.act("messages")) == ["step", "thirty", "trio", "twenty"]
    assert member.stats.get("points") == 40


def test_two_rules_unlocked_together_can_satisfy_an_achievements_rule() -> None:
    member = Member(
        achievement("a", "messages >= 1"),
        achievement("b", "messages >= 1"),
        achievement("pair", "achievements >= 2"),
    )

    assert member.act("messages") == ["a", "b", "pair"]


def test_evaluation_reports_the_tier_reached_by_the_points_gained() -> None:
    member = Member(achievement("conversationalist", "messages >= 100", points=100))
    member.stats.add("messages", 100)

    result = evaluate(member.stats, member.unlocked, member.rulebook, {"messages"}, NOW, None, DEFAULT_TIERS)

    assert result.points_gained == 100
    assert result.tier_reached is not None and result.tier_reached.name == "Student"


def test_evaluation_without_unlocks_reaches_no_tier() -> None:
    member = Member(achievement("chatterbox", "messages >= 10"))
    member.stats.add("messages", 1)

    result = evaluate(member.stats, member.unlocked, member.rulebook, {"messages"}, NOW, None, DEFAULT_TIERS)

    assert result.unlocked == []
    assert result.tier_reached is None


# --- Only rules reading a changed stat ----------------------------------------------------------------


def test_a_rule_is_not_evaluated_when_none_of_its_stats_changed() -> None:
    # Already true, but nothing it reads changed: activity on other stats must not evaluate it.
    member = Member(achievement("appreciator", "reactions_given >= 5"), reactions_given=5)

    assert member.act("messages") == []
    assert "appreciator" not in member.unlocked


def test_a_rule_is_evaluated_once_a_stat_it_reads_changes() -> None:
    member = Member(achievement("appreciator", "reactions_given >= 5"), reactions_given=5)
    member.act("messages")

    assert member.act("reactions_given") == ["appreciator"]


def test_the_rulebook_indexes_rules_by_every_stat_they_read() -> None:
    mixed = achievement("mixed", "streak >= 7 and reactions_given >= 20")
    rulebook = RuleBook([mixed, achievement("talk", "messages >= 5")])

    assert rulebook.rules_reading("streak") == (mixed,)
    assert rulebook.rules_reading("reactions_given") == (mixed,)
    assert rulebook.rules_reading("logins") == ()


# --- Hour rules -------------------------------------------------------------------------------------


def test_early_bird_unlocks_for_an_activity_before_six_local() -> None:
    member = Member(achievement("early-bird", "hour < 6"))

    assert member.act("messages", hour=5) == ["early-bird"]


def test_early_bird_does_not_unlock_at_six() -> None:
    member = Member(achievement("early-bird", "hour < 6"))

    assert member.act("messages", hour=6) == []


def test_hour_rules_need_the_hour_of_a_triggering_activity() -> None:
    member = Member(achievement("early-bird", "hour < 6"))

    assert member.act("messages", hour=None) == []


def test_night_owl_unlocks_at_twenty_three() -> None:
    member = Member(achievement("night-owl", "hour >= 23"))

    assert member.act("messages", hour=22) == []
    assert member.act("messages", hour=23) == ["night-owl"]


def test_an_hour_rule_with_a_stat_needs_both_the_hour_and_the_stat() -> None:
    member = Member(achievement("insomniac", "hour >= 3 and hour < 4 and messages >= 3"))

    assert member.act("messages", 2, hour=3) == []
    assert member.act("messages", 1, hour=12) == []
    assert member.act("messages", 1, hour=3) == ["insomniac"]


def test_retroactive_evaluation_never_unlocks_an_hour_rule() -> None:
    member = Member(achievement("early-bird", "hour < 6"), achievement("first-step", "messages >= 1"), messages=3)

    result = evaluate_all(member.stats, member.unlocked, member.rulebook, NOW, DEFAULT_TIERS)

    assert [a.id for a in result.unlocked] == ["first-step"]


# --- Time-limited achievements -------------------------------------------------------------------------

STARTS = datetime(2026, 12, 1, tzinfo=UTC)
ENDS = datetime(2026, 12, 25, tzinfo=UTC)


def advent() -> Achievement:
    return achievement("advent", "messages >= 1", points=50, starts=STARTS, ends=ENDS)


def test_a_time_limited_achievement_cannot_be_unlocked_before_it_starts() -> None:
    member = Member(advent())

    assert member.act("messages", now=STARTS - timedelta(seconds=1)) == []


def test_a_time_limited_achievement_can_be_unlocked_inside_its_window() -> None:
    member = Member(advent())

    assert member.act("messages", now=STARTS) == ["advent"]


def test_a_time_limited_achievement_cannot_be_unlocked_once_it_has_ended() -> None:
    member = Member(advent())

    assert member.act("messages", now=ENDS) == []


def test_an_expired_achievement_is_not_unlocked_by_a_cascade_either() -> None:
    member = Member(
        achievement("first-step", "messages >= 1", points=30),
        achievement("thirty", "points >= 30", ends=NOW - timedelta(days=1)),
    )

    assert member.act("messages") == ["first-step"]


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (STARTS - timedelta(days=1), WindowState.UPCOMING),
        (STARTS, WindowState.OPEN),
        (ENDS - timedelta(seconds=1), WindowState.OPEN),
        (ENDS, WindowState.EXPIRED),
    ],
)
def test_window_state_of_a_time_limited_achievement(now: datetime, state: WindowState) -> None:
    assert advent().window(now) is state


def test_an_achievement_without_a_window_is_always_available() -> None:
    assert achievement("first-step", "messages >= 1").window(NOW) is WindowState.ALWAYS


def test_an_achievement_with_only_an_end_is_open_until_it() -> None:
    ending = achievement("last-call", "messages >= 1", ends=ENDS)

    assert ending.window(NOW) is WindowState.OPEN
    assert ending.window(ENDS) is WindowState.EXPIRED


# --- Flags and kinds ------------------------------------------------------------------------------------


def test_a_hidden_achievement_stays_hidden_when_unlocked() -> None:
    secret = achievement("secret", "messages >= 3", hidden=True)
    member = Member(secret)
    member.stats.add("messages", 3)

    result = evaluate(member.stats, member.unlocked, member.rulebook, {"messages"}, NOW, None, DEFAULT_TIERS)

    assert [a.hidden for a in result.unlocked] == [True]


def test_an_achievement_keeps_its_reward_role() -> None:
    member = Member(achievement("vip", "messages >= 1", role_id=1234))
    member.stats.add("messages", 1)

    result = evaluate(member.stats, member.unlocked, member.rulebook, {"messages"}, NOW, None, DEFAULT_TIERS)

    assert result.unlocked[0].role_id == 1234


@pytest.mark.parametrize(
    ("condition", "kind"),
    [
        ("messages >= 100", AchievementKind.MILESTONE),
        ("tasks_completed >= 5", AchievementKind.MILESTONE),
        ("streak >= 7", AchievementKind.STREAK),
        ("best_streak >= 30", AchievementKind.STREAK),
        ("hour < 6", AchievementKind.CHALLENGE),
        ("hour >= 3 and streak >= 7", AchievementKind.CHALLENGE),
    ],
)
def test_the_kind_of_an_achievement_follows_from_its_condition(condition: str, kind: AchievementKind) -> None:
    assert achievement("x", condition).kind is kind


def test_a_custom_stat_rule_unlocks_when_that_stat_changes() -> None:
    member = Member(achievement("homework", "tasks_completed >= 3"))

    assert member.act("tasks_completed", 2) == []
    assert member.act("tasks_completed", 1) == ["homework"]


def test_retroactive_evaluation_of_only_some_rules_unlocks_those_the_member_meets() -> None:
    new_rule = achievement("chatterbox", "messages >= 10")
    member = Member(achievement("first-step", "messages >= 1"), new_rule, messages=12)
    member.unlocked.add("first-step")

    result = evaluate_all(member.stats, member.unlocked, member.rulebook, NOW, DEFAULT_TIERS, only=[new_rule])

    assert [a.id for a in result.unlocked] == ["chatterbox"]


# --- The default pack ---------------------------------------------------------------------------------

PACK = {spec.id: spec for spec in DEFAULT_PACK}


def pack_with(condition: str) -> list[str]:
    return [spec.name for spec in DEFAULT_PACK if spec.condition == condition]


def test_default_pack_starts_with_first_step_for_the_first_message() -> None:
    first = PACK["first-step"]

    assert (first.name, first.condition, first.points) == ("First Step", "messages >= 1", 10)


@pytest.mark.parametrize("count", [10, 100, 1000, 10000])
def test_default_pack_has_message_milestones(count: int) -> None:
    assert pack_with(f"messages >= {count}")


@pytest.mark.parametrize("days", [3, 7, 30, 100])
def test_default_pack_has_streak_achievements(days: int) -> None:
    assert pack_with(f"streak >= {days}")


def test_default_pack_has_early_bird_before_six() -> None:
    assert pack_with("hour < 6") == ["Early Bird"]


def test_default_pack_has_night_owl_at_or_after_twenty_three() -> None:
    assert pack_with("hour >= 23") == ["Night Owl"]


def test_default_pack_rewards_reactions_given_and_received_and_active_days() -> None:
    stats_read = {stat for spec in DEFAULT_PACK for stat in parse_condition(spec.condition).stats}

    assert {"reactions_given", "reactions_received", "logins"} <= stats_read


def test_default_pack_has_a_hidden_achievement() -> None:
    assert any(spec.hidden for spec in DEFAULT_PACK)


def test_default_pack_points_stay_within_ten_to_two_thousand() -> None:
    assert all(10 <= spec.points <= 2000 for spec in DEFAULT_PACK)


def test_default_pack_ids_and_names_are_unique() -> None:
    assert len({s.id for s in DEFAULT_PACK}) == len(DEFAULT_PACK)
    assert len({s.name.lower() for s in DEFAULT_PACK}) == len(DEFAULT_PACK)


@pytest.mark.parametrize("spec", DEFAULT_PACK, ids=lambda spec: spec.id)
def test_every_default_condition_parses_to_itself(spec: AchievementSpec) -> None:
    assert parse_condition(spec.condition).text == spec.condition


def test_an_activity_evaluates_only_the_milestones_the_members_value_reaches() -> None:
    from bot.engine.achievements import Achievement
    from bot.engine.conditions import parse_condition
    from bot.engine.evaluator import RuleBook

    rules = [Achievement(f"m{n}", f"M{n}", ".", 1, parse_condition(f"messages >= {n}")) for n in (1, 5, 50, 500)]
    book = RuleBook([*rules, Achievement("x", "X", ".", 1, parse_condition("not messages >= 5"))])

    assert [a.id for a in book.candidates({"messages"}, False, {"messages": 7})] == ["x", "m1", "m5"]
