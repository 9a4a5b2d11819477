"""Achievement conditions: parse a moderator's expression over stats, evaluate it, measure progress."""

from __future__ import annotations

import difflib
import operator
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

__all__ = [
    "BUILTIN_STATS",
    "HOUR",
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Condition",
    "ConditionError",
    "Progress",
    "ProgressPart",
    "Threshold",
    "parse_condition",
]

BUILTIN_STATS: tuple[str, ...] = (
    "messages",
    "reactions_given",
    "reactions_received",
    "logins",
    "streak",
    "best_streak",
    "points",
    "achievements",
)
HOUR = "hour"

MAX_LENGTH = 500
MAX_DEPTH = 10
MAX_COMPARISONS = 32
MAX_DIGITS = 12
# 24 is allowed so that `hour < 24` can be written; the hour itself is 0..23.
_HOUR_LITERALS = range(25)
_TYPO_CUTOFF = 0.8
_TYPO_TARGETS = (*BUILTIN_STATS, HOUR)

_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_WORD_CHARS = frozenset(string.ascii_letters + string.digits + "_")
_DIGITS = frozenset(string.digits)
_OPERATOR_LIST = "(>=, >, <=, <, ==, !=)"
_TWO_CHAR_OPERATORS = frozenset({">=", "<=", "==", "!="})
_FLIPPED = {">=": "<=", ">": "<", "<=": ">=", "<": ">", "==": "==", "!=": "!="}
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_CHARACTER_HINTS = {"&": "use 'and'", "|": "use 'or'", "!": "use 'not', or '!=' to compare"}


class ConditionError(ValueError):
    """A condition a moderator typed is not valid; `str()` says what is wrong and where."""

    def __init__(self, message: str, column: int, *, hint: str | None = None, located: bool = True) -> None:
        self.message = message
        self.column = column
        self.hint = hint
        text = f"{message} at column {column}" if located else message
        if hint:
            text = f"{text}: {hint}"
        super().__init__(text)


@dataclass(frozen=True, slots=True)
class Threshold:
    """One comparison of a stat with a number, written with the stat on the left."""

    stat: str
    op: str
    value: int


@dataclass(frozen=True, slots=True)
class ProgressPart:
    """How far a member is along one stat threshold, e.g. 63/100 messages."""

    stat: str
    current: int
    target: int
    done: bool


@dataclass(frozen=True, slots=True)
class Progress:
    """How close a member is to meeting a condition, from 0.0 to 1.0, with the per-stat parts."""

    fraction: float
    parts: tuple[ProgressPart, ...]


_Stats: TypeAlias = Mapping[str, int]
_Predicate: TypeAlias = Callable[[_Stats, "int | None"], bool]
_Getter: TypeAlias = Callable[[_Stats, "int | None"], "int | None"]


@dataclass(frozen=True)
class Condition:
    """A parsed condition: its canonical text, the stats it reads, and a compiled evaluator."""

    text: str
    stats: frozenset[str]
    uses_hour: bool
    _evaluate: _Predicate = field(compare=False, hash=False, repr=False)
    _tree: _Node = field(compare=False, hash=False, repr=False)

    def evaluate(self, stats: Mapping[str, int], hour: int | None = None) -> bool:
        """Whether the condition holds; a missing stat counts as 0; `hour` comparisons fail with no hour."""
        return self._evaluate(stats, hour)

    def progress(self, stats: Mapping[str, int], hour: int | None = None) -> Progress:
        """How close `stats` are to meeting the condition.

        Without an hour, a condition that reads `hour` is scored at the most favourable hour of the day:
        the time is only known when the member acts, so it should not hide progress on the stats.
        """
        if hour is None and self.uses_hour:
            fraction = max(_score(self._tree, stats, candidate) for candidate in range(24))
        else:
            fraction = _score(self._tree, stats, hour)
        return Progress(fraction=fraction, parts=tuple(_parts(self._tree, stats)))

    def thresholds(self) -> list[Threshold]:
        """Every comparison of a stat (not `hour`) with a number, in source order, stat on the left."""
        return [
            Threshold(stat=name, op=op, value=value)
            for name, op, value in (_stat_vs_number(c) for c in _comparisons(self._tree))
            if name is not None and name != HOUR
        ]


def parse_condition(text: str, *, known_stats: Iterable[str] = (), check_typos: bool = True) -> Condition:
    """Parse a moderator's condition, raising ConditionError with a column for anything invalid.

    A name that looks like a typo of a built-in stat (or of `hour`) is refused unless it is in
    `known_stats`. Stored conditions were checked when written, so re-loading them can pass
    `check_typos=False`.
    """
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"condition is too long (max {MAX_LENGTH} characters)", MAX_LENGTH + 1, located=False)
    if not text.strip():
        raise ConditionError("condition is empty", 1, located=False)
    known = frozenset(name.lower() for name in known_stats)
    tree = _Parser(_tokenize(text), known, check_typos).parse()
    canonical = _render(tree)
    # The canonical form is what gets stored and re-parsed, so it must obey the same limit.
    if len(canonical) > MAX_LENGTH:
        raise ConditionError(f"condition is too long (max {MAX_LENGTH} characters)", MAX_LENGTH + 1, located=False)
    names = {
        operand
        for comparison in _comparisons(tree)
        for operand in (comparison.left, comparison.right)
        if isinstance(operand, str)
    }
    return Condition(
        text=canonical,
        stats=frozenset(names - {HOUR}),
        uses_hour=HOUR in names,
        _evaluate=_compile(tree),
        _tree=tree,
    )


# --- Tokens -----------------------------------------------------------------------------------------

_IDENTIFIER = "identifier"
_NUMBER = "number"
_OP = "operator"
_LPAREN = "("
_RPAREN = ")"
_AND = "and"
_OR = "or"
_NOT = "not"
_END = "end"
_KEYWORDS = {"and": _AND, "or": _OR, "not": _NOT}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    column: int


def _quote(text: str, limit: int = 32) -> str:
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"'{text}'"


def _show_character(character: str) -> str:
    return f"'{character}'" if character.isprintable() else repr(character)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    length = len(text)
    while index < length:
        character = text[index]
        column = index + 1
        if character.isspace():
            index += 1
        elif character in _WORD_CHARS:
            end = index
            while end < length and text[end] in _WORD_CHARS:
                end += 1
            tokens.append(_word_token(text[index:end], column))
            index = end
        elif text[index : index + 2] in _TWO_CHAR_OPERATORS:
            tokens.append(_Token(_OP, text[index : index + 2], column))
            index += 2
        elif character in "<>":
            tokens.append(_Token(_OP, character, column))
            index += 1
        elif character == "=":
            meant = {"=>": ">=", "=<": "<="}.get(text[index : index + 2], "==")
            raise ConditionError(f"use {meant} to compare", column)
        elif character in "()":
            tokens.append(_Token(_LPAREN if character == "(" else _RPAREN, character, column))
            index += 1
        else:
            raise ConditionError(
                f"unexpected character {_show_character(character)}",
                column,
                hint=_CHARACTER_HINTS.get(character),
            )
    tokens.append(_Token(_END, "", length + 1))
    return tokens


def _word_token(word: str, column: int) -> _Token:
    if word[0] in _DIGITS:
        if not all(character in _DIGITS for character in word):
            raise ConditionError(f"invalid number {_quote(word)}", column, hint="stat names start with a letter")
        if len(word) > MAX_DIGITS:
            raise ConditionError(f"number {_quote(word)} is too long (max {MAX_DIGITS} digits)", column)
        return _Token(_NUMBER, word, column)
    lowered = word.lower()
    if lowered in _KEYWORDS:
        return _Token(_KEYWORDS[lowered], word, column)
    if not _NAME.fullmatch(lowered):
        raise ConditionError(
            f"invalid stat name {_quote(lowered)}",
            column,
            hint="use up to 32 letters, digits and _, starting with a letter",
        )
    return _Token(_IDENTIFIER, word, column)


# --- Syntax tree ------------------------------------------------------------------------------------

_Operand: TypeAlias = "str | int"  # a stat name (or `hour`), or a number


@dataclass(frozen=True, slots=True)
class _Comparison:
    left: _Operand
    op: str
    right: _Operand


@dataclass(frozen=True, slots=True)
class _And:
    children: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Or:
    children: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Not:
    child: _Node


_Node: TypeAlias = "_Comparison | _And | _Or | _Not"


class _Parser:
    def __init__(self, tokens: list[_Token], known: frozenset[str], check_typos: bool) -> None:
        self._tokens = tokens
        self._position = 0
        self._depth = 0
        self._comparisons = 0
        self._known = known
        self._check_typos = check_typos

    @property
    def _current(self) -> _Token:
        return self._tokens[self._position]

    def _advance(self) -> _Token:
        token = self._tokens[self._position]
        if token.kind != _END:
            self._position += 1
        return token

    def parse(self) -> _Node:
        tree = self._or()
        if self._current.kind != _END:
            raise self._after_expression(self._current)
        return tree

    def _or(self) -> _Node:
        children = [self._and()]
        while self._current.kind == _OR:
            self._advance()
            children.append(self._and())
        if len(children) == 1:
            return children[0]
        return _Or(tuple(_flatten(children, _Or)))

    def _and(self) -> _Node:
        children = [self._not()]
        while self._current.kind == _AND:
            self._advance()
            children.append(self._not())
        if len(children) == 1:
            return children[0]
        return _And(tuple(_flatten(children, _And)))

    def _not(self) -> _Node:
        token = self._current
        if token.kind != _NOT:
            return self._primary()
        self._advance()
        self._enter(token)
        child = self._not()
        self._depth -= 1
        return _Not(child)

    def _primary(self) -> _Node:
        token = self._current
        if token.kind in (_IDENTIFIER, _NUMBER):
            return self._comparison()
        if token.kind != _LPAREN:
            raise self._expected_comparison(token)
        # `not (...)` is one level, not two, so the canonical `not (x >= 1)` is never deeper than its source.
        nests = self._position == 0 or self._tokens[self._position - 1].kind != _NOT
        self._advance()
        if nests:
            self._enter(token)
        tree = self._or()
        closing = self._current
        if closing.kind == _END:
            raise ConditionError(f"expected ')' to close '(' from column {token.column}", token.column, located=False)
        if closing.kind != _RPAREN:
            raise self._after_expression(closing)
        self._advance()
        if nests:
            self._depth -= 1
        return tree

    def _comparison(self) -> _Comparison:
        left_token = self._advance()
        left = self._operand(left_token)
        op_token = self._current
        if op_token.kind != _OP:
            raise ConditionError(
                f"expected a comparison operator {_OPERATOR_LIST} after {_quote(left_token.text)}",
                op_token.column,
            )
        self._advance()
        right_token = self._current
        if right_token.kind not in (_IDENTIFIER, _NUMBER):
            raise ConditionError(f"expected a number after {_quote(op_token.text)}", right_token.column)
        self._advance()
        right = self._operand(right_token)
        if self._current.kind == _OP:
            raise ConditionError("comparisons can't be chained", self._current.column, hint="join them with 'and'")
        self._comparisons += 1
        if self._comparisons > MAX_COMPARISONS:
            raise ConditionError(f"condition has too many comparisons (max {MAX_COMPARISONS})", left_token.column)
        if isinstance(left, int) and isinstance(right, int):
            raise ConditionError(
                f"'{left_token.text} {op_token.text} {right_token.text}' compares two numbers; name a stat",
                left_token.column,
            )
        for name, number, number_token in ((left, right, right_token), (right, left, left_token)):
            if name == HOUR and isinstance(number, int) and number not in _HOUR_LITERALS:
                raise ConditionError(f"hour compared with {number}", number_token.column, hint="hours run from 0 to 23")
        return _Comparison(left, op_token.text, right)

    def _operand(self, token: _Token) -> _Operand:
        if token.kind == _NUMBER:
            return int(token.text)
        name = token.text.lower()
        if name == HOUR or name in BUILTIN_STATS or name in self._known or not self._check_typos:
            return name
        close = difflib.get_close_matches(name, _TYPO_TARGETS, n=1, cutoff=_TYPO_CUTOFF)
        if close:
            raise ConditionError(f"unknown stat {_quote(name)}", token.column, hint=f"did you mean {_quote(close[0])}?")
        return name

    def _enter(self, token: _Token) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ConditionError(
                f"condition is nested too deeply (max {MAX_DEPTH} levels)", token.column, located=False
            )

    def _expected_comparison(self, token: _Token) -> ConditionError:
        if token.kind == _RPAREN:
            return ConditionError("unexpected ')'", token.column)
        if token.kind == _OP:
            return ConditionError(f"expected a stat name or number before {_quote(token.text)}", token.column)
        if token.kind == _END:
            previous = self._tokens[self._position - 1]
            return ConditionError(f"expected a comparison after {_quote(previous.text)}", token.column)
        return ConditionError(f"expected a comparison before {_quote(token.text)}", token.column)

    @staticmethod
    def _after_expression(token: _Token) -> ConditionError:
        if token.kind == _RPAREN:
            return ConditionError("unexpected ')'", token.column)
        return ConditionError(f"expected 'and' or 'or' before {_quote(token.text)}", token.column)


def _flatten(children: list[_Node], kind: type[_And] | type[_Or]) -> list[_Node]:
    # `(a and b) and c` means `a and b and c`; flat nodes keep evaluation loops shallow.
    flat: list[_Node] = []
    for child in children:
        if isinstance(child, kind):
            flat.extend(child.children)
        else:
            flat.append(child)
    return flat


def _comparisons(node: _Node) -> list[_Comparison]:
    if isinstance(node, _Comparison):
        return [node]
    if isinstance(node, _Not):
        return _comparisons(node.child)
    return [comparison for child in node.children for comparison in _comparisons(child)]


def _stat_vs_number(comparison: _Comparison) -> tuple[str | None, str, int]:
    """The comparison as (name, op, number) with the name on the left, or (None, op, 0) if it is not one."""
    left, op, right = comparison.left, comparison.op, comparison.right
    if isinstance(left, str) and isinstance(right, int):
        return left, op, right
    if isinstance(left, int) and isinstance(right, str):
        return right, _FLIPPED[op], left
    return None, op, 0


# --- Canonical text -----------------------------------------------------------------------------------


def _render(node: _Node) -> str:
    # Parentheses only where precedence needs them (and after `not`, for the reader), so the canonical
    # text is never nested deeper than the source and always parses again.
    if isinstance(node, _Comparison):
        return f"{node.left} {node.op} {node.right}"
    if isinstance(node, _Not):
        inner = _render(node.child)
        return f"not {inner}" if isinstance(node.child, _Not) else f"not ({inner})"
    if isinstance(node, _Or):
        return " or ".join(_render(child) for child in node.children)
    return " and ".join(f"({_render(child)})" if isinstance(child, _Or) else _render(child) for child in node.children)


# --- Evaluation -------------------------------------------------------------------------------------

# Specialised closures for the common `stat OP number` case keep the hot path to one dict lookup and one
# comparison, with no dispatch on the operator at evaluation time.
_STAT_VS_NUMBER: dict[str, Callable[[str, int], _Predicate]] = {
    ">=": lambda name, number: lambda stats, hour: stats.get(name, 0) >= number,
    ">": lambda name, number: lambda stats, hour: stats.get(name, 0) > number,
    "<=": lambda name, number: lambda stats, hour: stats.get(name, 0) <= number,
    "<": lambda name, number: lambda stats, hour: stats.get(name, 0) < number,
    "==": lambda name, number: lambda stats, hour: stats.get(name, 0) == number,
    "!=": lambda name, number: lambda stats, hour: stats.get(name, 0) != number,
}


def _compile(node: _Node) -> _Predicate:
    if isinstance(node, _Comparison):
        return _compile_comparison(node)
    if isinstance(node, _Not):
        child = _compile(node.child)
        return lambda stats, hour: not child(stats, hour)
    children = tuple(_compile(child) for child in node.children)
    if isinstance(node, _And):
        if len(children) == 2:
            first, second = children
            return lambda stats, hour: first(stats, hour) and second(stats, hour)

        # Plain loops rather than all()/any(): no generator is built per evaluation on the hot path.
        def all_of(stats: _Stats, hour: int | None) -> bool:
            for child in children:  # noqa: SIM110
                if not child(stats, hour):
                    return False
            return True

        return all_of
    if len(children) == 2:
        first, second = children
        return lambda stats, hour: first(stats, hour) or second(stats, hour)

    def any_of(stats: _Stats, hour: int | None) -> bool:
        for child in children:  # noqa: SIM110
            if child(stats, hour):
                return True
        return False

    return any_of


def _compile_comparison(comparison: _Comparison) -> _Predicate:
    name, op, number = _stat_vs_number(comparison)
    if name is not None and name != HOUR:
        return _STAT_VS_NUMBER[op](name, number)
    if name == HOUR:
        hour_compare = _COMPARE[op]
        return lambda stats, hour: hour is not None and hour_compare(hour, number)
    compare = _COMPARE[comparison.op]
    left, right = _getter(comparison.left), _getter(comparison.right)

    def compare_operands(stats: _Stats, hour: int | None) -> bool:
        left_value, right_value = left(stats, hour), right(stats, hour)
        return left_value is not None and right_value is not None and compare(left_value, right_value)

    return compare_operands


def _getter(operand: _Operand) -> _Getter:
    if isinstance(operand, int):
        return lambda stats, hour: operand
    if operand == HOUR:
        return lambda stats, hour: hour
    return lambda stats, hour: stats.get(operand, 0)


# --- Progress ---------------------------------------------------------------------------------------
# Invariant: a node scores exactly 1.0 when it holds and less than 1.0 when it does not, which is what
# lets `not` be scored from its child's score.


def _score(node: _Node, stats: _Stats, hour: int | None) -> float:
    if isinstance(node, _Comparison):
        return _comparison_score(node, stats, hour)
    if isinstance(node, _Not):
        return 0.0 if _score(node.child, stats, hour) == 1.0 else 1.0
    scores = (_score(child, stats, hour) for child in node.children)
    return min(scores) if isinstance(node, _And) else max(scores)


def _comparison_score(comparison: _Comparison, stats: _Stats, hour: int | None) -> float:
    name, op, number = _stat_vs_number(comparison)
    if name is None or name == HOUR or op in ("<", "<=", "!="):
        return 1.0 if _compile_comparison(comparison)(stats, hour) else 0.0
    value = stats.get(name, 0)
    if op == "==":
        if value == number:
            return 1.0
        return value / number if 0 <= value < number else 0.0
    target = number + 1 if op == ">" else number
    if value >= target:
        return 1.0
    return max(0.0, value / target) if target > 0 else 0.0


def _parts(node: _Node, stats: _Stats) -> list[ProgressPart]:
    parts = []
    for comparison in _comparisons(node):
        name, op, number = _stat_vs_number(comparison)
        if name is None or name == HOUR:
            continue
        value = stats.get(name, 0)
        done = _COMPARE[op](value, number)
        if op in (">=", ">"):
            target = number + 1 if op == ">" else number
            parts.append(ProgressPart(stat=name, current=min(value, target), target=target, done=done))
        else:
            parts.append(ProgressPart(stat=name, current=value, target=number, done=done))
    return parts
