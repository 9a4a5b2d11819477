"""Specification of achievement conditions: what moderators may type and what the bot makes of it."""

import random

import pytest

from bot.engine.conditions import (
    BUILTIN_STATS,
    HOUR,
    Condition,
    ConditionError,
    Progress,
    ProgressPart,
    Threshold,
    parse_condition,
)


def error_for(text: str, **kwargs: object) -> ConditionError:
    with pytest.raises(ConditionError) as caught:
        parse_condition(text, **kwargs)  # type: ignore[arg-type]
    return caught.value


# --- Valid conditions and their canonical text --------------------------------------------------------


def test_simple_threshold_parses_to_its_canonical_text() -> None:
    condition = parse_condition("messages >= 100")

    assert condition.text == "messages >= 100"
    assert condition.stats == frozenset({"messages"})
    assert condition.uses_hour is False


def test_canonical_text_normalises_spacing_and_keyword_case() -> None:
    assert parse_condition("  streak>=7   AND\treactions_given>=20 ").text == "streak >= 7 and reactions_given >= 20"


def test_stat_names_are_lower_cased() -> None:
    condition = parse_condition("Messages >= 1 and HOUR < 6")

    assert condition.text == "messages >= 1 and hour < 6"
    assert condition.stats == frozenset({"messages"})


def test_hour_is_not_listed_among_stats_but_marks_the_condition() -> None:
    condition = parse_condition("hour < 6")

    assert condition.stats == frozenset()
    assert condition.uses_hour is True


def test_every_builtin_stat_is_accepted() -> None:
    condition = parse_condition(" and ".join(f"{name} >= 1" for name in BUILTIN_STATS))

    assert condition.stats == frozenset(BUILTIN_STATS)


def test_custom_stats_are_accepted() -> None:
    condition = parse_condition("tasks_completed >= 5 and lessons_finished > 2")

    assert condition.stats == frozenset({"tasks_completed", "lessons_finished"})


def test_number_on_the_left_is_kept_as_written_in_the_text() -> None:
    assert parse_condition("100 <= messages").text == "100 <= messages"


def test_leading_zeros_are_dropped_from_numbers() -> None:
    assert parse_condition("messages >= 007").text == "messages >= 7"


def test_twelve_digit_numbers_are_accepted() -> None:
    assert parse_condition("points >= 999999999999").thresholds() == [Threshold("points", ">=", 999999999999)]


def test_stat_compared_with_stat_is_accepted() -> None:
    condition = parse_condition("reactions_received > reactions_given")

    assert condition.stats == frozenset({"reactions_received", "reactions_given"})


def test_canonical_text_parses_back_to_itself() -> None:
    condition = parse_condition("((messages>=10 OR reactions_given>=10)) and not(hour<6)")

    assert parse_condition(condition.text).text == condition.text


def test_conditions_with_the_same_canonical_text_are_equal_and_hash_alike() -> None:
    first = parse_condition("messages>=1 AND streak>=2")
    second = parse_condition("(messages >= 1) and (streak >= 2)")

    assert first == second
    assert len({first, second}) == 1


def test_condition_cannot_be_changed() -> None:
    condition = parse_condition("messages >= 1")

    with pytest.raises(AttributeError):
        condition.text = "messages >= 2"  # type: ignore[misc]


def test_repr_shows_the_text_not_the_compiled_evaluator() -> None:
    assert repr(parse_condition("hour < 6")) == "Condition(text='hour < 6', stats=frozenset(), uses_hour=True)"


# --- Precedence and parentheses -------------------------------------------------------------------------


def test_and_binds_tighter_than_or() -> None:
    condition = parse_condition("messages >= 1 or streak >= 1 and logins >= 1")

    assert condition.text == "messages >= 1 or streak >= 1 and logins >= 1"
    assert condition.evaluate({"messages": 1}) is True
    assert condition.evaluate({"streak": 1}) is False


def test_not_binds_tighter_than_and() -> None:
    condition = parse_condition("not messages >= 1 and streak >= 1")

    assert condition.text == "not (messages >= 1) and streak >= 1"
    assert condition.evaluate({"streak": 1}) is True
    assert condition.evaluate({}) is False


def test_not_applies_to_the_whole_comparison() -> None:
    condition = parse_condition("not hour >= 6")

    assert condition.text == "not (hour >= 6)"
    assert condition.evaluate({}, hour=3) is True
    assert condition.evaluate({}, hour=9) is False


def test_parentheses_override_precedence() -> None:
    condition = parse_condition("(messages >= 10 or reactions_given >= 10) and logins >= 3")

    assert condition.text == "(messages >= 10 or reactions_given >= 10) and logins >= 3"
    assert condition.evaluate({"reactions_given": 10, "logins": 3}) is True
    assert condition.evaluate({"messages": 10}) is False


def test_redundant_parentheses_are_dropped_from_the_text() -> None:
    assert parse_condition("((messages >= 1)) and (streak >= 2 and logins >= 3)").text == (
        "messages >= 1 and streak >= 2 and logins >= 3"
    )


def test_not_keeps_parentheses_around_a_group() -> None:
    assert parse_condition("not (messages >= 1 or streak >= 1)").text == "not (messages >= 1 or streak >= 1)"


def test_double_negation_is_kept() -> None:
    condition = parse_condition("not not hour < 6")

    assert condition.text == "not not (hour < 6)"
    assert condition.evaluate({}, hour=5) is True


# --- Errors and their columns ---------------------------------------------------------------------------


def test_missing_number_at_end_points_just_past_the_text() -> None:
    error = error_for("messages >= ")

    assert str(error) == "expected a number after '>=' at column 13"
    assert error.column == 13
    assert error.message == "expected a number after '>='"


def test_missing_number_without_trailing_space_points_just_past_the_text() -> None:
    assert str(error_for("messages >=")) == "expected a number after '>=' at column 12"


def test_missing_number_before_a_keyword_points_at_the_keyword() -> None:
    assert str(error_for("messages >= and")) == "expected a number after '>=' at column 13"


def test_stray_closing_parenthesis_is_reported() -> None:
    assert str(error_for("messages >= 1)")) == "unexpected ')' at column 14"


def test_empty_parentheses_are_reported() -> None:
    assert str(error_for("()")) == "unexpected ')' at column 2"


def test_unclosed_parenthesis_names_where_it_opened() -> None:
    error = error_for("streak >= 1 and (messages >= 1")

    assert str(error) == "expected ')' to close '(' from column 17"
    assert error.column == 17


def test_missing_operator_after_a_name_is_reported() -> None:
    assert str(error_for("messages")) == (
        "expected a comparison operator (>=, >, <=, <, ==, !=) after 'messages' at column 9"
    )


def test_missing_operator_before_a_number_points_at_the_number() -> None:
    assert str(error_for("messages 100")) == (
        "expected a comparison operator (>=, >, <=, <, ==, !=) after 'messages' at column 10"
    )


def test_unexpected_character_is_reported() -> None:
    assert str(error_for("messages >= $5")) == "unexpected character '$' at column 13"


def test_invisible_character_is_shown_escaped() -> None:
    assert str(error_for("messages >= 1\x00")) == r"unexpected character '\x00' at column 14"


def test_ampersand_suggests_and() -> None:
    assert str(error_for("messages >= 1 && streak >= 1")) == "unexpected character '&' at column 15: use 'and'"


def test_missing_connective_between_comparisons_is_reported() -> None:
    assert str(error_for("messages >= 100 streak >= 7")) == "expected 'and' or 'or' before 'streak' at column 17"


def test_missing_connective_inside_parentheses_is_reported() -> None:
    assert str(error_for("(messages >= 1 streak >= 1)")) == "expected 'and' or 'or' before 'streak' at column 16"


def test_empty_condition_is_reported() -> None:
    assert str(error_for("")) == "condition is empty"


def test_blank_condition_is_empty() -> None:
    assert str(error_for("   \t ")) == "condition is empty"


def test_single_equals_asks_for_double_equals() -> None:
    assert str(error_for("messages = 5")) == "use == to compare at column 10"


def test_reversed_operator_suggests_the_right_one() -> None:
    assert str(error_for("messages => 5")) == "use >= to compare at column 10"


def test_chained_comparisons_are_refused() -> None:
    assert str(error_for("1 < messages < 5")) == "comparisons can't be chained at column 14: join them with 'and'"


def test_comparing_two_numbers_is_refused() -> None:
    assert str(error_for("5 > 3")) == "'5 > 3' compares two numbers; name a stat at column 1"


def test_hour_beyond_the_day_is_refused() -> None:
    assert str(error_for("hour < 25")) == "hour compared with 25 at column 8: hours run from 0 to 23"


def test_hour_out_of_range_on_the_left_is_refused() -> None:
    assert error_for("99 > hour").column == 1


def test_hour_may_be_compared_with_24() -> None:
    assert parse_condition("hour < 24").evaluate({}, hour=23) is True


def test_keyword_where_a_comparison_belongs_is_reported() -> None:
    assert str(error_for("and messages >= 1")) == "expected a comparison before 'and' at column 1"


def test_dangling_keyword_is_reported() -> None:
    assert str(error_for("messages >= 1 and")) == "expected a comparison after 'and' at column 18"


def test_operator_without_left_side_is_reported() -> None:
    assert str(error_for(">= 5")) == "expected a stat name or number before '>=' at column 1"


def test_number_glued_to_letters_is_refused() -> None:
    assert str(error_for("messages >= 10k")) == "invalid number '10k' at column 13: stat names start with a letter"


def test_number_longer_than_twelve_digits_is_refused() -> None:
    assert str(error_for("points >= 1234567890123")) == (
        "number '1234567890123' is too long (max 12 digits) at column 11"
    )


def test_stat_name_longer_than_32_characters_is_refused() -> None:
    assert error_for("a" * 33 + " >= 1").message.startswith("invalid stat name")


def test_stat_name_starting_with_underscore_is_refused() -> None:
    assert str(error_for("_secret >= 1")) == (
        "invalid stat name '_secret' at column 1: use up to 32 letters, digits and _, starting with a letter"
    )


def test_non_ascii_letters_are_refused() -> None:
    assert str(error_for("méssages >= 1")) == "unexpected character 'é' at column 2"


def test_error_is_a_value_error() -> None:
    assert isinstance(error_for("$"), ValueError)


# --- Typos of built-in stats ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("mesages", "messages"), ("streek", "streak"), ("reaction_given", "reactions_given"), ("hours", "hour")],
)
def test_likely_typo_of_a_builtin_name_is_refused_with_a_suggestion(typo: str, meant: str) -> None:
    assert str(error_for(f"{typo} >= 1")) == f"unknown stat '{typo}' at column 1: did you mean '{meant}'?"


def test_typo_on_the_right_points_at_its_column() -> None:
    assert error_for("messages >= mesages").column == 13


def test_typo_is_accepted_when_the_guild_already_uses_that_stat() -> None:
    assert parse_condition("streaks >= 3", known_stats=["streaks"]).stats == frozenset({"streaks"})


def test_known_stats_match_case_insensitively() -> None:
    assert parse_condition("STREAKS >= 3", known_stats=["Streaks"]).text == "streaks >= 3"


def test_typo_check_can_be_skipped_when_reloading_stored_text() -> None:
    assert parse_condition("streaks >= 3", check_typos=False).stats == frozenset({"streaks"})


def test_custom_name_far_from_builtins_needs_no_known_stats() -> None:
    assert parse_condition("message_count >= 3").stats == frozenset({"message_count"})


# --- Bounds ---------------------------------------------------------------------------------------------


def test_text_of_500_characters_is_accepted() -> None:
    text = "messages >= 1" + " " * 487

    assert len(text) == 500
    assert parse_condition(text).text == "messages >= 1"


def test_text_over_500_characters_is_refused() -> None:
    assert str(error_for("messages >= 1" + " " * 488)) == "condition is too long (max 500 characters)"


def test_ten_levels_of_parentheses_are_accepted() -> None:
    assert parse_condition("(" * 10 + "messages >= 1" + ")" * 10).text == "messages >= 1"


def test_eleven_levels_of_parentheses_are_refused() -> None:
    error = error_for("(" * 11 + "messages >= 1" + ")" * 11)

    assert str(error) == "condition is nested too deeply (max 10 levels)"
    assert error.column == 11


def test_not_counts_as_a_level_of_nesting() -> None:
    assert str(error_for("not " * 11 + "messages >= 1")) == "condition is nested too deeply (max 10 levels)"


def test_parentheses_right_after_not_share_its_level() -> None:
    assert parse_condition("not (" * 10 + "messages >= 1" + ")" * 10).uses_hour is False


def test_32_comparisons_are_accepted() -> None:
    assert len(parse_condition(" or ".join(["x >= 1"] * 32)).thresholds()) == 32


def test_33_comparisons_are_refused() -> None:
    text = " or ".join(["x >= 1"] * 33)

    assert str(error_for(text)) == f"condition has too many comparisons (max 32) at column {len(text) - 5}"


def test_dense_text_whose_canonical_form_is_too_long_is_refused() -> None:
    text = "or".join(["(abcdefgh>=1)"] * 32)  # spaced out as it is stored, it grows past the limit

    assert len(text) == 478
    assert str(error_for(text)) == "condition is too long (max 500 characters)"


# --- Evaluation -----------------------------------------------------------------------------------------


def test_threshold_holds_at_and_above_its_value() -> None:
    condition = parse_condition("messages >= 100")

    assert condition.evaluate({"messages": 99}) is False
    assert condition.evaluate({"messages": 100}) is True


def test_missing_stat_counts_as_zero() -> None:
    assert parse_condition("messages < 1").evaluate({}) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("messages > 5", True),
        ("messages >= 6", True),
        ("messages < 6", False),
        ("messages <= 6", True),
        ("messages == 6", True),
        ("messages != 6", False),
        ("6 <= messages", True),
        ("7 <= messages", False),
        ("5 < messages", True),
    ],
)
def test_every_operator_compares_as_written(text: str, expected: bool) -> None:
    assert parse_condition(text).evaluate({"messages": 6}) is expected


def test_stat_against_stat_compares_both_values() -> None:
    condition = parse_condition("reactions_received > reactions_given")

    assert condition.evaluate({"reactions_received": 3, "reactions_given": 2}) is True
    assert condition.evaluate({"reactions_received": 2, "reactions_given": 2}) is False


def test_hour_comparison_uses_the_given_hour() -> None:
    condition = parse_condition("hour < 6")

    assert condition.evaluate({}, hour=5) is True
    assert condition.evaluate({}, hour=6) is False


def test_hour_comparison_is_false_without_an_hour() -> None:
    assert parse_condition("hour < 6").evaluate({}) is False


def test_negated_hour_comparison_is_true_without_an_hour() -> None:
    # The comparison itself is false with no hour, so its negation holds.
    assert parse_condition("not (hour < 6)").evaluate({}) is True


def test_hour_against_a_stat_is_false_without_an_hour() -> None:
    assert parse_condition("hour >= streak").evaluate({"streak": 0}) is False


def test_long_and_chain_needs_every_part() -> None:
    condition = parse_condition("messages >= 1 and streak >= 1 and logins >= 1")

    assert condition.evaluate({"messages": 1, "streak": 1, "logins": 1}) is True
    assert condition.evaluate({"messages": 1, "streak": 1}) is False


def test_long_or_chain_needs_any_part() -> None:
    condition = parse_condition("messages >= 1 or streak >= 1 or logins >= 1")

    assert condition.evaluate({"logins": 1}) is True
    assert condition.evaluate({}) is False


# --- Progress -------------------------------------------------------------------------------------------


def test_progress_toward_a_threshold_is_the_share_reached() -> None:
    assert parse_condition("messages >= 100").progress({"messages": 63}) == Progress(
        fraction=0.63, parts=(ProgressPart(stat="messages", current=63, target=100, done=False),)
    )


def test_progress_caps_current_at_the_target() -> None:
    progress = parse_condition("messages >= 100").progress({"messages": 250})

    assert progress.fraction == 1.0
    assert progress.parts == (ProgressPart(stat="messages", current=100, target=100, done=True),)


def test_progress_toward_greater_than_aims_one_past_the_number() -> None:
    progress = parse_condition("messages > 9").progress({"messages": 5})

    assert progress.fraction == 0.5
    assert progress.parts == (ProgressPart(stat="messages", current=5, target=10, done=False),)


def test_progress_flips_a_number_written_on_the_left() -> None:
    assert parse_condition("100 <= messages").progress({"messages": 25}).fraction == 0.25


def test_progress_toward_zero_is_complete() -> None:
    assert parse_condition("messages >= 0").progress({}).fraction == 1.0


def test_progress_toward_equality_drops_to_zero_once_past() -> None:
    condition = parse_condition("streak == 10")

    assert condition.progress({"streak": 4}).fraction == 0.4
    assert condition.progress({"streak": 10}).fraction == 1.0
    assert condition.progress({"streak": 11}).fraction == 0.0


def test_progress_of_less_than_is_all_or_nothing() -> None:
    condition = parse_condition("messages < 10")

    assert condition.progress({"messages": 3}).fraction == 1.0
    assert condition.progress({"messages": 30}).fraction == 0.0
    assert condition.progress({"messages": 30}).parts == (
        ProgressPart(stat="messages", current=30, target=10, done=False),
    )


def test_progress_of_stat_against_stat_is_all_or_nothing_and_not_a_part() -> None:
    progress = parse_condition("reactions_received > reactions_given").progress({"reactions_received": 1})

    assert progress == Progress(fraction=1.0, parts=())


def test_progress_of_and_is_the_least_advanced_part() -> None:
    progress = parse_condition("messages >= 100 and streak >= 10").progress({"messages": 80, "streak": 3})

    assert progress.fraction == 0.3
    assert [part.stat for part in progress.parts] == ["messages", "streak"]


def test_progress_of_or_is_the_most_advanced_part() -> None:
    progress = parse_condition("messages >= 100 or streak >= 10").progress({"messages": 80, "streak": 3})

    assert progress.fraction == 0.8


def test_progress_of_not_is_all_or_nothing() -> None:
    condition = parse_condition("not (messages >= 100)")

    assert condition.progress({"messages": 80}).fraction == 1.0
    assert condition.progress({"messages": 100}).fraction == 0.0


def test_progress_parts_keep_source_order_and_repeats() -> None:
    progress = parse_condition("streak >= 2 or messages >= 5 and streak >= 4").progress({"streak": 3})

    assert [(part.stat, part.target) for part in progress.parts] == [("streak", 2), ("messages", 5), ("streak", 4)]


def test_hour_comparisons_are_not_progress_parts() -> None:
    progress = parse_condition("messages >= 100 and hour < 6").progress({"messages": 63})

    assert [part.stat for part in progress.parts] == ["messages"]


def test_progress_with_an_hour_scores_the_hour_as_all_or_nothing() -> None:
    condition = parse_condition("messages >= 100 and hour < 6")

    assert condition.progress({"messages": 63}, hour=3).fraction == 0.63
    assert condition.progress({"messages": 63}, hour=12).fraction == 0.0


def test_progress_without_an_hour_assumes_the_best_hour() -> None:
    assert parse_condition("messages >= 100 and hour < 6").progress({"messages": 63}).fraction == 0.63


def test_progress_without_an_hour_is_zero_when_no_hour_can_match() -> None:
    assert parse_condition("hour < 6 and hour > 20").progress({}).fraction == 0.0


# --- Thresholds -----------------------------------------------------------------------------------------


def test_thresholds_list_every_stat_comparison_in_source_order() -> None:
    condition = parse_condition("streak >= 7 and (messages > 10 or not points < 5)")

    assert condition.thresholds() == [
        Threshold("streak", ">=", 7),
        Threshold("messages", ">", 10),
        Threshold("points", "<", 5),
    ]


def test_thresholds_put_the_stat_on_the_left() -> None:
    assert parse_condition("100 < messages").thresholds() == [Threshold("messages", ">", 100)]


def test_thresholds_leave_out_hour_and_stat_against_stat() -> None:
    assert parse_condition("hour < 6 and messages > logins").thresholds() == []


# --- Robustness -----------------------------------------------------------------------------------------

_FRAGMENTS = [
    "messages", "streak", "points", "hour", "HOUR", "tasks", "mesages", "x", "and", "OR", "not", "(", ")",
    ">=", ">", "<=", "<", "==", "!=", "=", "!", "&", "0", "5", "24", "25", "1000", "9999999999999", "1a",
    "_", "$", "é", "\x00", "\n", " ", "  ", "'", '"', "\\", ".", "-", "1e5", "__import__",
]  # fmt: skip


def _random_garbage(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return "".join(rng.choice("ams<>=!() 0123456789&|_xé\t") for _ in range(rng.randint(0, 40)))
    separator = rng.choice(["", " "])
    return separator.join(rng.choice(_FRAGMENTS) for _ in range(rng.randint(0, 14)))


def _random_condition(rng: random.Random, depth: int = 0) -> str:
    """Grammatically valid text with random spacing, case and redundant parentheses."""
    space = rng.choice(["", " ", "  "])
    roll = rng.random()
    if depth >= 3 or roll < 0.4:
        left = rng.choice(["messages", "Streak", "points", "tasks", "x", "hour", str(rng.randint(0, 24))])
        right = str(rng.randint(0, 24)) if left[0].isalpha() and rng.random() < 0.8 else "streak"
        comparison = [left, rng.choice([">=", ">", "<=", "<", "==", "!="]), right]
        if rng.random() < 0.5:
            comparison.reverse()
            comparison[1] = {">=": "<=", "<=": ">=", ">": "<", "<": ">"}.get(comparison[1], comparison[1])
        return space.join(comparison)
    if roll < 0.55:
        return f"{rng.choice(['not', 'NOT'])} ({space}{_random_condition(rng, depth + 1)}{space})"
    if roll < 0.65:
        return f"({space}{_random_condition(rng, depth + 1)}{space})"
    keyword = rng.choice(["and", "or", "AND", "Or"])
    parts = [f"({_random_condition(rng, depth + 1)})" for _ in range(rng.randint(2, 3))]
    return f" {keyword} ".join(parts)


def _mutated(rng: random.Random, text: str) -> str:
    position = rng.randint(0, len(text))
    if rng.random() < 0.5:
        return text[:position] + text[position + 1 :]
    return text[:position] + rng.choice(_FRAGMENTS) + text[position:]


def _random_stats(rng: random.Random) -> dict[str, int]:
    return {name: rng.randint(0, 30) for name in ("messages", "streak", "points", "tasks", "x")}


def test_random_garbage_only_ever_raises_condition_error() -> None:
    rng = random.Random(20240611)
    for _ in range(5000):
        text = _random_garbage(rng) if rng.random() < 0.5 else _mutated(rng, _random_condition(rng))
        try:
            parse_condition(text)
        except ConditionError:
            pass


def test_random_valid_conditions_round_trip_and_agree_with_their_canonical_text() -> None:
    rng = random.Random(7)
    accepted = 0
    for _ in range(5000):
        text = _random_condition(rng)
        try:
            condition = parse_condition(text)
        except ConditionError:
            continue
        accepted += 1
        reparsed = parse_condition(condition.text)
        assert reparsed == condition, text
        for _ in range(3):
            stats, hour = _random_stats(rng), rng.choice([None, *range(24)])
            assert reparsed.evaluate(stats, hour) is condition.evaluate(stats, hour), text
    assert accepted > 4000


def test_random_valid_conditions_score_full_progress_exactly_when_they_hold() -> None:
    rng = random.Random(11)
    for _ in range(5000):
        try:
            condition = parse_condition(_random_condition(rng))
        except ConditionError:
            continue
        stats, hour = _random_stats(rng), rng.randrange(24)
        progress = condition.progress(stats, hour)
        assert 0.0 <= progress.fraction <= 1.0
        assert (progress.fraction == 1.0) is condition.evaluate(stats, hour), condition.text


def test_module_exports_the_names_the_engine_uses() -> None:
    assert HOUR == "hour"
    assert isinstance(parse_condition("messages >= 1"), Condition)
