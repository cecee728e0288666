"""The expression language of playbooks: parsing, checking, three-valued evaluation, canonical text."""

from __future__ import annotations

import inspect
import math
import pickle
import sys
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from functools import cache

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ir.domain.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    Evaluation,
    Expression,
    ExpressionError,
    FactSignature,
    FactType,
    check,
    format_expression,
    parse_expression,
)

SEVERITIES = ("low", "high", "critical")

FACTS: dict[str, FactSignature] = {
    "affected_users": FactSignature(FactType.INTEGER),
    "users": FactSignature(FactType.INTEGER),
    "count": FactSignature(FactType.INTEGER),
    "ratio": FactSignature(FactType.NUMBER),
    "flag": FactSignature(FactType.BOOLEAN),
    "other": FactSignature(FactType.BOOLEAN),
    "region": FactSignature(FactType.STRING),
    "severity": FactSignature(FactType.ENUM, SEVERITIES),
    "elapsed": FactSignature(FactType.DURATION),
}


def value_of(text: str, values: Mapping[str, object] | None = None) -> object:
    return parse_expression(text).evaluate(values or {}).value


def parse_error(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    return caught.value


def check_error(text: str, *, want_boolean: bool = True) -> ExpressionError:
    expr = parse_expression(text)
    with pytest.raises(ExpressionError) as caught:
        check(expr, FACTS, want_boolean=want_boolean)
    return caught.value


def evaluation_error(text: str, values: Mapping[str, object]) -> ExpressionError:
    expr = parse_expression(text)
    with pytest.raises(ExpressionError) as caught:
        expr.evaluate(values)
    return caught.value


# ------------------------------------------------------------------------------ precedence and values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("2 * 3 + 1", 7),
        ("10 - 4 - 3", 3),  # left-associative
        ("10 - (4 - 3)", 9),
        ("12 / 2 / 3", 2.0),
        ("12 / (2 / 3)", 18.0),
        ("2 * 3 / 4", 1.5),
        ("-2 * 3", -6),
        ("- -2", 2),
        ("--2", 2),
        ("1 + -2", -1),
        ("-(1 + 2)", -3),
        ("7 / 2", 3.5),
        ("0.5 + 0.25", 0.75),
        ("3 * 0.5", 1.5),
        ("true or false and false", True),
        ("(true or false) and false", False),
        ("false and true or true", True),
        ("false and (true or true)", False),
        ("not true or true", True),
        ("not (true or true)", False),
        ("not not true", True),
        ("not 1 > 2", True),
        ("not 1 < 2 and true", False),
        ("1 + 1 == 2 and 3 > 2", True),
        ("1 + 2 * 3 == 7", True),
        ("(1 < 2) == true", True),
        ("(1 > 2) != false", False),
        ("2 in [1, 2] and not 3 in [1, 2]", True),
        ("1 + 1 in [2]", True),
    ],
)
def test_precedence_and_associativity(text: str, expected: object) -> None:
    value = value_of(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 == 3", True),
        ("3 == 4", False),
        ("3 != 4", True),
        ("3 != 3", False),
        ("3 < 4", True),
        ("4 < 4", False),
        ("4 <= 4", True),
        ("5 <= 4", False),
        ("5 > 4", True),
        ("4 > 4", False),
        ("4 >= 4", True),
        ("3 >= 4", False),
        ("1 == 1.0", True),
        ("2 > 1.5", True),
        ("0.1 + 0.2 > 0.3", True),  # binary floating point, as users' spreadsheets do it
        ("'a' == 'a'", True),
        ("'a' != 'b'", True),
        ("true == true", True),
        ("true != false", True),
        ("30m < 1h", True),
        ("1h <= 60m", True),
        ("2d > 47h", True),
        ("1h >= 61m", False),
        ("1h == 3600s", True),
        ("1h != 60m", False),
        ("5 - 7 == -2", True),
        ("6 * 7 == 42", True),
        ("-5 < -4", True),
    ],
)
def test_every_comparison_operator(text: str, expected: bool) -> None:
    assert value_of(text) is expected


def test_arithmetic_keeps_integers_exact_and_divides_to_numbers() -> None:
    assert value_of("10_000_000 * 1000 + 1") == 10_000_000_001
    assert type(value_of("4 / 2")) is float
    assert type(value_of("4 * 2")) is int
    assert value_of("users / count", {"users": 1, "count": 4}) == 0.25


def test_underscores_in_numbers() -> None:
    assert value_of("10_000_000 == 10000000") is True
    assert value_of("1_000.25 + 0.5") == 1000.75
    assert value_of("1_0.0_5") == 10.05
    assert value_of("affected_users >= 10_000_000", {"affected_users": 10_000_000}) is True
    assert value_of("affected_users >= 10_000_000", {"affected_users": 9_999_999}) is False


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("x > 10__000", 4, "invalid number '10__000'"),
        ("x > 10_", 4, "invalid number '10_'"),
        ("x > 1_.5", 4, "invalid number '1_.5'"),
        ("x > 1._5", 4, "invalid number '1._5'"),
        ("x > 1.", 4, "invalid number '1.'"),
        ("x > 1e6", 4, "invalid number '1e6'"),
        ("x > 10x", 4, "invalid number '10x'"),
        ("x > .5", 4, "a number needs a digit before '.', such as 0.5"),
        ("x > 5%", 5, "unexpected '%'; percentages are not supported, write a fraction such as 0.05"),
    ],
)
def test_malformed_numbers(text: str, column: int, message: str) -> None:
    error = parse_error(text)
    assert (error.message, error.column) == (message, column)


# ------------------------------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("3d", timedelta(days=3)),
        ("1h30m", timedelta(minutes=90)),
        ("1d1h1m1s", timedelta(seconds=90_061)),
        ("1_000s", timedelta(seconds=1000)),
        ("0s", timedelta(0)),
    ],
)
def test_duration_literals(text: str, expected: timedelta) -> None:
    assert value_of(text) == expected
    assert value_of(f"-{text}") == -expected


def test_duration_arithmetic() -> None:
    assert value_of("1h + 30m") == timedelta(minutes=90)
    assert value_of("1h - 90m") == timedelta(minutes=-30)
    assert value_of("30m * 3") == timedelta(minutes=90)
    assert value_of("3 * 30m") == timedelta(minutes=90)
    assert value_of("1h * 0.5") == timedelta(minutes=30)
    assert value_of("1h / 4") == timedelta(minutes=15)
    assert value_of("elapsed > 2h", {"elapsed": timedelta(hours=3)}) is True
    assert value_of("elapsed * 2 >= 1d", {"elapsed": timedelta(hours=11)}) is False


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        (
            "elapsed > 3wd",
            10,
            "working days ('wd') cannot be used in an expression; use elapsed time in s, m, h or d",
        ),
        (
            "elapsed > 1d3wd",
            10,
            "working days ('wd') cannot be used in an expression; use elapsed time in s, m, h or d",
        ),
        ("elapsed > 1.5h", 10, "a duration counts whole units, such as 90m rather than 1.5h"),
        ("elapsed > 30m1h", 10, "duration '30m1h' must list its units from largest to smallest, each once"),
        ("elapsed > 1h1h", 10, "duration '1h1h' must list its units from largest to smallest, each once"),
        ("elapsed > 1H", 10, "invalid number '1H'"),
        ("elapsed > 1ms", 10, "invalid number '1ms'"),
        ("elapsed > 1w", 10, "invalid number '1w'"),
        ("elapsed > 9999999999d", 10, "duration '9999999999d' is too long"),
    ],
)
def test_malformed_durations(text: str, column: int, message: str) -> None:
    error = parse_error(text)
    assert (error.message, error.column) == (message, column)


# -------------------------------------------------------------------------------------------- strings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"plain"', "plain"),
        ("'single'", "single"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'it\\'s'", "it's"),
        ('"it\'s"', "it's"),
        ("'say \"hi\"'", 'say "hi"'),
        ('"back\\\\slash"', "back\\slash"),
        ('"line\\nbreak"', "line\nbreak"),
        ('""', ""),
        ('"华东 region"', "华东 region"),
        ('"and or not"', "and or not"),
    ],
)
def test_string_literals_and_escapes(text: str, expected: str) -> None:
    assert value_of(text) == expected


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("region == 'east", 10, "unterminated string"),
        ('region == "east\\"', 10, "unterminated string"),
        ("region == 'east\\", 10, "unterminated string"),
        ("region == 'a\\tb'", 12, "unknown escape '\\t' in a string; use \\\\, \\\", \\' or \\n"),
    ],
)
def test_malformed_strings(text: str, column: int, message: str) -> None:
    error = parse_error(text)
    assert (error.message, error.column) == (message, column)


# ------------------------------------------------------------------------------------- in and not in


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("severity in ['high', 'critical']", {"severity": "high"}, True),
        ("severity in ['high', 'critical']", {"severity": "low"}, False),
        ("severity not in ['high', 'critical']", {"severity": "low"}, True),
        ("severity not in ['high', 'critical']", {"severity": "critical"}, False),
        ("users in [1, 2, 3,]", {"users": 3}, True),
        ("users in [-1, -2]", {"users": -2}, True),
        ("users in [1.0, 2.5]", {"users": 1}, True),
        ("ratio in [1, 2]", {"ratio": 2.0}, True),
        ("users in []", {"users": 1}, False),
        ("users not in []", {"users": 1}, True),
        ("elapsed in [30m, 1h]", {"elapsed": timedelta(minutes=60)}, True),
        ("elapsed in [-30m]", {"elapsed": timedelta(minutes=-30)}, True),
        ("flag in [true]", {"flag": False}, False),
        ("users + 1 in [2]", {"users": 1}, True),
    ],
)
def test_in_and_not_in(text: str, values: Mapping[str, object], expected: bool) -> None:
    assert value_of(text, values) is expected


def test_in_with_an_unknown_left_side_is_unknown() -> None:
    assert parse_expression("severity in ['high']").evaluate({}) == Evaluation(None, frozenset({"severity"}))


def test_in_keeps_booleans_apart_from_numbers() -> None:
    error = evaluation_error("flag in [1]", {"flag": True})
    assert (error.message, error.column) == (
        "cannot compare boolean with integer (fact 'flag' holds a boolean)",
        9,
    )


# -------------------------------------------------------------------------------------------- known()


def test_known_is_true_when_the_fact_has_a_value_and_never_unknown() -> None:
    expr = parse_expression("known(root_cause)")
    assert expr.evaluate({"root_cause": "power"}) == Evaluation(True, frozenset())
    assert expr.evaluate({"root_cause": False}) == Evaluation(True, frozenset())
    assert expr.evaluate({"root_cause": None}) == Evaluation(False, frozenset())
    assert expr.evaluate({}) == Evaluation(False, frozenset())
    assert parse_expression("not known(x) or x > 1").evaluate({}) == Evaluation(True, frozenset())
    assert parse_expression("known ( x )").names == frozenset({"x"})


def test_a_fact_may_be_called_known() -> None:
    assert value_of("known > 1", {"known": 2}) is True
    check(parse_expression("known > 1"), {"known": FactSignature(FactType.INTEGER)})


# --------------------------------------------------------------------------- three-valued (Kleene) logic

T, F, U = True, False, None


def kleene_and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def kleene_or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def facts_of(**values: bool | None) -> dict[str, object]:
    return {name: value for name, value in values.items() if value is not None}


@pytest.mark.parametrize("a", [T, F, U])
@pytest.mark.parametrize("b", [T, F, U])
def test_kleene_and_or(a: bool | None, b: bool | None) -> None:
    values = facts_of(a=a, b=b)
    absent = frozenset(name for name, value in (("a", a), ("b", b)) if value is None)
    for text, expected in (("a and b", kleene_and(a, b)), ("a or b", kleene_or(a, b))):
        result = parse_expression(text).evaluate(values)
        assert result.value is expected, text
        assert result.missing == (absent if expected is None else frozenset()), text


@pytest.mark.parametrize(("a", "expected"), [(T, F), (F, T), (U, U)])
def test_kleene_not(a: bool | None, expected: bool | None) -> None:
    result = parse_expression("not a").evaluate(facts_of(a=a))
    assert result.value is expected
    assert result.missing == (frozenset({"a"}) if expected is None else frozenset())


def test_kleene_literal_table() -> None:
    # the same table with the unknown coming from an absent fact next to literals
    assert parse_expression("false and u").evaluate({}) == Evaluation(False, frozenset())
    assert parse_expression("u and false").evaluate({}) == Evaluation(False, frozenset())
    assert parse_expression("true or u").evaluate({}) == Evaluation(True, frozenset())
    assert parse_expression("u or true").evaluate({}) == Evaluation(True, frozenset())
    assert parse_expression("true and u").evaluate({}) == Evaluation(None, frozenset({"u"}))
    assert parse_expression("false or u").evaluate({}) == Evaluation(None, frozenset({"u"}))


# ------------------------------------------------------------------------------------------ missing sets

CRITERIA = "affected_users >= 10_000_000 or provinces_affected >= 2"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"affected_users": 12_000_000}, Evaluation(True, frozenset())),
        ({"provinces_affected": 3}, Evaluation(True, frozenset())),
        ({"affected_users": 1, "provinces_affected": 1}, Evaluation(False, frozenset())),
        ({"affected_users": 1}, Evaluation(None, frozenset({"provinces_affected"}))),
        ({"provinces_affected": 1}, Evaluation(None, frozenset({"affected_users"}))),
        ({}, Evaluation(None, frozenset({"affected_users", "provinces_affected"}))),
        ({"affected_users": None, "provinces_affected": 1}, Evaluation(None, frozenset({"affected_users"}))),
    ],
)
def test_missing_names_the_absent_facts_that_matter(values: Mapping[str, object], expected: Evaluation) -> None:
    assert parse_expression(CRITERIA).evaluate(values) == expected


def test_missing_propagates_through_arithmetic_and_comparisons() -> None:
    expr = parse_expression("a + b * 2 > c")
    assert expr.evaluate({}) == Evaluation(None, frozenset({"a", "b", "c"}))
    assert expr.evaluate({"a": 1, "c": 3}) == Evaluation(None, frozenset({"b"}))
    assert expr.evaluate({"a": 1, "b": 2, "c": 3}) == Evaluation(True, frozenset())
    assert parse_expression("-a").evaluate({}) == Evaluation(None, frozenset({"a"}))
    assert parse_expression("a / 0 > 1").evaluate({}) == Evaluation(None, frozenset({"a"}))
    # an operand settled false makes the other operands' absence irrelevant
    assert parse_expression("a > 1 and b > 1 and c > 1").evaluate({"b": 0}) == Evaluation(False, frozenset())
    assert parse_expression("a > 1 and b > 1 and c > 1").evaluate({"b": 5}) == Evaluation(None, frozenset({"a", "c"}))


def test_known_values_have_an_empty_missing_set() -> None:
    result = parse_expression("users * 2").evaluate({"users": 21})
    assert result == Evaluation(42, frozenset())


# ---------------------------------------------------------------------------------------- check errors


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("afected_users >= 1", 0, "unknown fact 'afected_users'; did you mean 'affected_users'?"),
        ("flag and zzz > 1", 9, "unknown fact 'zzz'"),
        ("known(afected_users)", 6, "unknown fact 'afected_users'; did you mean 'affected_users'?"),
        ("True", 0, "unknown fact 'True'; keywords are lower-case: 'true'"),
        ("known", 0, "unknown fact 'known'; to ask whether a fact has a value, write known(fact)"),
        ("affected_users == 'x'", 15, "cannot compare integer with string"),
        ("ratio < elapsed", 6, "cannot compare number with duration"),
        ("elapsed > 5", 8, "cannot compare duration with integer"),
        ("flag == 1", 5, "cannot compare boolean with integer"),
        ("flag < true", 5, "'<' needs numbers or durations, not boolean"),
        ("region <= 'a'", 7, "'<=' needs numbers or durations, not string"),
        ("severity >= 'low'", 9, "'>=' needs numbers or durations, not enum"),
        (
            "severity == 'urgent'",
            12,
            "'urgent' is not a value of 'severity'; expected one of 'low', 'high', 'critical'",
        ),
        (
            "'urgent' != severity",
            0,
            "'urgent' is not a value of 'severity'; expected one of 'low', 'high', 'critical'",
        ),
        ("region + 'x' == 'y'", 7, "cannot add string and string"),
        ("flag * 2 > 1", 5, "cannot multiply boolean by integer"),
        ("elapsed / elapsed > 1", 8, "cannot divide duration by duration"),
        ("elapsed + 1 > 1h", 8, "cannot add duration and integer"),
        ("1 - elapsed > 1h", 2, "cannot subtract duration from integer"),
        ("2 / elapsed > 1h", 2, "cannot divide integer by duration"),
        ("-flag", 0, "cannot negate a boolean"),
        ("-region == 'x'", 0, "cannot negate a string"),
        ("flag and users", 9, "'and' needs booleans, not integer"),
        ("users or flag", 0, "'or' needs booleans, not integer"),
        ("flag and (users + 1)", 9, "'and' needs booleans, not integer"),
        ("not users", 4, "'not' needs a boolean, not integer"),
        ("users in [1, 'a']", 13, "cannot compare integer with string"),
        (
            "severity in ['low', 'urgent']",
            20,
            "'urgent' is not a value of 'severity'; expected one of 'low', 'high', 'critical'",
        ),
        ("elapsed in [1h, 2]", 16, "cannot compare duration with integer"),
        ("flag in [1]", 9, "cannot compare boolean with integer"),
        ("region in [1]", 11, "cannot compare string with integer"),
        ("users + 1", 0, "expected a condition (true or false), but this gives an integer"),
        ("  elapsed", 2, "expected a condition (true or false), but this gives a duration"),
        ("(users)", 0, "expected a condition (true or false), but this gives an integer"),
    ],
)
def test_check_errors(text: str, column: int, message: str) -> None:
    error = check_error(text)
    assert (error.message, error.column) == (message, column)


@pytest.mark.parametrize(
    "text",
    [
        "affected_users >= 10_000_000 or ratio >= 0.5",
        "users == ratio and ratio != 1",
        "severity == region",
        "severity in ['low', 'high'] and region in ['east', 'west']",
        "severity != 'critical'",
        "flag == true and other != flag",
        "elapsed * 2 + 30m / 2 > 2 * 1h - elapsed",
        "-elapsed < 0s",
        "users / count >= 0.5",
        "known(region) and not known(severity) or known(flag)",
        "flag in [true, false]",
    ],
)
def test_well_typed_expressions_pass_check(text: str) -> None:
    check(parse_expression(text), FACTS)


def test_check_without_wanting_a_boolean() -> None:
    check(parse_expression("users * 2 + 1"), FACTS, want_boolean=False)
    check(parse_expression("elapsed / 2"), FACTS, want_boolean=False)
    error = check_error("users + flag", want_boolean=False)
    assert (error.message, error.column) == ("cannot add integer and boolean", 6)


def test_enum_without_declared_values() -> None:
    facts = {"kind": FactSignature(FactType.ENUM)}
    with pytest.raises(ExpressionError) as caught:
        check(parse_expression("kind == 'x'"), facts)
    assert caught.value.message == "'x' is not a value of 'kind', which declares no values"
    assert caught.value.column == 8


def test_unknown_fact_with_no_facts_declared() -> None:
    with pytest.raises(ExpressionError) as caught:
        check(parse_expression("a > 1"), {})
    assert (caught.value.message, caught.value.column) == ("unknown fact 'a'", 0)


# ---------------------------------------------------------------------------------------- parse errors


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        ("a <", 3, "unexpected end of expression; expected a value"),
        ("not", 3, "unexpected end of expression; expected a value"),
        ("a < b < c", 6, "comparisons cannot be chained; join them with 'and'"),
        ("a == b != c", 7, "comparisons cannot be chained; join them with 'and'"),
        ("a in [1] in [2]", 9, "comparisons cannot be chained; join them with 'and'"),
        ("a > 1 not in [2]", 6, "comparisons cannot be chained; join them with 'and'"),
        ("(a > 1", 0, "unclosed '('"),
        ("((a > 1) and b", 0, "unclosed '('"),
        ("(a > 1 b", 7, "unexpected 'b'; expected ')'"),
        ("a > 1)", 5, "unexpected ')'; expected an operator or the end of the expression"),
        ("a b", 2, "unexpected 'b'; expected an operator or the end of the expression"),
        ("()", 1, "unexpected ')'; expected a value"),
        ("a > > 1", 4, "unexpected '>'; expected a value"),
        ("a or or b", 5, "unexpected 'or'; expected a value"),
        ("and a", 0, "unexpected 'and'; expected a value"),
        ("a = 1", 2, "unexpected '='; use '==' to compare"),
        ("!a", 0, "unexpected '!'; use 'not', or '!=' to compare"),
        ("a && b", 2, "unexpected '&'; use 'and'"),
        ("a || b", 2, "unexpected '|'; use 'or'"),
        ("a > 1 # note", 6, "unexpected '#'; comments are not supported"),
        ("a AND b", 2, "unexpected 'AND'; keywords are lower-case: 'and'"),
        ("a ≥ 1", 2, "unexpected character '≥'"),
        ("a\x00", 1, "unexpected character '\\x00'"),
        ("foo(a)", 0, "unknown function 'foo'; the only function is known(fact)"),
        ("x > 1 and bar(1)", 10, "unknown function 'bar'; the only function is known(fact)"),
        ("known(a, b)", 7, "known() takes one fact name, such as known(affected_users)"),
        ("known()", 6, "known() takes one fact name, such as known(affected_users)"),
        ("known('a')", 6, "known() takes one fact name, such as known(affected_users)"),
        ("known(a", 5, "unclosed '('"),
        ("known(", 5, "unclosed '('"),
        ("known(a b)", 8, "unexpected 'b'; expected ')'"),
        ("x in 1", 5, "unexpected '1'; expected '[' to start a list of values"),
        ("x in", 4, "unexpected end of expression; expected '[' to start a list of values"),
        ("x in [1, 2", 5, "unclosed '['"),
        ("x in [", 5, "unclosed '['"),
        ("x in [a]", 6, "unexpected 'a'; expected a literal value (a list holds only literals)"),
        ("x in [1 2]", 8, "unexpected '2'; expected ',' or ']'"),
        ("x in [1,,2]", 8, "unexpected ','; expected a literal value (a list holds only literals)"),
        ("x in [-a]", 7, "unexpected 'a'; expected a number or duration after '-'"),
        ("x in [(1)]", 6, "unexpected '('; expected a literal value (a list holds only literals)"),
        ("x not 1", 6, "unexpected '1'; expected 'in' after 'not'"),
        ("x not", 5, "unexpected end of expression; expected 'in' after 'not'"),
        ("a > 1\n  and @", 12, "unexpected character '@'"),
        (
            "x == 'a very long string that goes on' y",
            39,
            "unexpected 'y'; expected an operator or the end of the expression",
        ),
        (
            "1 'a very long string that goes on'",
            2,
            "unexpected string 'a very long string that…'; expected an operator or the end of the expression",
        ),
    ],
)
def test_parse_errors(text: str, column: int, message: str) -> None:
    error = parse_error(text)
    assert (error.message, error.column) == (message, column)
    assert str(error) == message
    assert "\n" not in error.message


def test_parse_accepts_whitespace_anywhere_between_tokens() -> None:
    expr = parse_expression("\n\t( users\r\n>=\t10 )\nand\nnot   flag ")
    assert expr.evaluate({"users": 10, "flag": False}).value is True


def test_parse_rejects_non_text() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(5)  # type: ignore[arg-type]
    assert (caught.value.message, caught.value.column) == ("an expression must be text, not int", 0)


# ----------------------------------------------------------------------------------------------- limits


def test_text_longer_than_the_limit_is_refused() -> None:
    text = "x > " + "1" * MAX_LENGTH
    error = parse_error(text)
    assert error.column == MAX_LENGTH
    assert error.message == f"expression is too long: {len(text)} characters, at most {MAX_LENGTH} are allowed"
    parse_expression(" " * (MAX_LENGTH - 5) + "x > 1")  # exactly at the limit


@pytest.mark.parametrize("text", ["(" * 10_000, "not " * 10_000, "-" * 10_000 + "1", "(" * 100_000 + ")" * 100_000])
def test_hostile_text_is_refused(text: str) -> None:
    error = parse_error(text)
    assert error.column == MAX_LENGTH
    assert error.message.startswith("expression is too long")


@pytest.mark.parametrize(
    ("opening", "closing", "column"),
    [("(", ")", 50), ("not ", "", 200), ("- ", "", 100), ("-", "", 50)],
)
def test_nesting_limit(opening: str, closing: str, column: int) -> None:
    parse_expression(opening * MAX_DEPTH + "1" + closing * MAX_DEPTH)
    error = parse_error(opening * (MAX_DEPTH + 1) + "1" + closing * (MAX_DEPTH + 1))
    assert (error.message, error.column) == (f"expression nests deeper than {MAX_DEPTH} levels", column)


def test_nesting_limit_counts_parentheses_not_and_minus_together() -> None:
    # each "(not -" is three levels: 16 of them are 48 levels, the 17th reaches 51 at its '-'
    parse_expression("(not -" * 16 + "1" + ")" * 16)
    error = parse_error("(not -" * 17 + "1" + ")" * 17)
    assert (error.message, error.column) == (f"expression nests deeper than {MAX_DEPTH} levels", 6 * 16 + 5)


def test_a_recursion_limit_never_escapes_as_recursion_error() -> None:
    deep = "(users + " * (MAX_DEPTH - 1) + "1" + ")" * (MAX_DEPTH - 1) + " > 0"
    expr = parse_expression(deep)
    check(expr, FACTS)
    assert expr.evaluate({"users": 1}).value is True
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 30)  # as if called from deep inside someone's stack
    try:
        with pytest.raises(ExpressionError) as parsing:
            parse_expression(deep)
        with pytest.raises(ExpressionError) as checking:
            check(expr, FACTS)
        with pytest.raises(ExpressionError) as evaluating:
            expr.evaluate({"users": 1})
    finally:
        sys.setrecursionlimit(limit)
    assert (parsing.value.message, parsing.value.column) == ("expression nests too deeply", 0)
    assert (checking.value.message, checking.value.column) == ("expression nests too deeply", 0)
    assert (evaluating.value.message, evaluating.value.column) == (
        "expression nests too deeply to evaluate",
        0,
    )


def test_the_deepest_allowed_expression_parses_checks_evaluates_and_formats() -> None:
    text = "(" * (MAX_DEPTH - 1) + "not flag" + ")" * (MAX_DEPTH - 1)  # 'not' is the 50th level
    expr = parse_expression(text)
    check(expr, FACTS)
    assert expr.evaluate({"flag": False}).value is True
    assert parse_expression(format_expression(expr)).evaluate({"flag": True}).value is False
    nested = "(" * 25 + "-" * 25 + "users" + ")" * 25 + " > 0"
    expr = parse_expression(nested)
    check(expr, FACTS)
    assert expr.evaluate({"users": 1}).value is False  # 25 minus signs: negative


def test_long_flat_chains_do_not_recurse() -> None:
    plus = "1" + " + 1" * ((MAX_LENGTH - 1) // 4)
    assert value_of(plus) == 1 + (MAX_LENGTH - 1) // 4
    conjunction = "flag" + " and flag" * ((MAX_LENGTH - 4) // 9)
    expr = parse_expression(conjunction)
    check(expr, FACTS)
    assert expr.evaluate({"flag": True}).value is True
    assert expr.evaluate({}) == Evaluation(None, frozenset({"flag"}))
    assert parse_expression(format_expression(expr)).evaluate({"flag": False}).value is False


# ---------------------------------------------------------------------------------- evaluation errors


@pytest.mark.parametrize(
    ("text", "values", "column"),
    [
        ("users / 0 > 1", {"users": 1}, 6),
        ("users / count > 1", {"users": 1, "count": 0}, 6),
        ("ratio / 0.0 > 1", {"ratio": 1.5}, 6),
        ("elapsed / 0 > 1h", {"elapsed": timedelta(hours=1)}, 8),
        ("1 + 2 / (3 - 3) > 0", {}, 6),
    ],
)
def test_division_by_zero(text: str, values: Mapping[str, object], column: int) -> None:
    error = evaluation_error(text, values)
    assert (error.message, error.column) == ("division by zero", column)


@pytest.mark.parametrize(
    ("text", "values", "column", "message"),
    [
        ("users > 1", {"users": "5"}, 6, "cannot compare string with integer (fact 'users' holds a string)"),
        (
            "users > 1",
            {"users": True},
            6,
            "cannot compare boolean with integer (fact 'users' holds a boolean)",
        ),
        (
            "users > 1",
            {"users": [5]},
            0,
            "fact 'users' holds a value of type 'list', which an expression cannot use",
        ),
        (
            "users > 1",
            {"users": Decimal(5)},
            0,
            "fact 'users' holds a value of type 'Decimal', which an expression cannot use",
        ),
        (
            "users > count",
            {"users": 1, "count": "x"},
            6,
            "cannot compare integer with string (fact 'users' holds an integer, fact 'count' holds a string)",
        ),
        ("users + 1 > 1", {"users": "5"}, 6, "cannot add string and integer (fact 'users' holds a string)"),
        (
            "1 + users > 1",
            {"users": timedelta(1)},
            2,
            "cannot add integer and duration (fact 'users' holds a duration)",
        ),
        ("flag and true", {"flag": 1}, 0, "'and' needs booleans, not integer (fact 'flag' holds an integer)"),
        ("false or flag", {"flag": "yes"}, 9, "'or' needs booleans, not string (fact 'flag' holds a string)"),
        ("not flag", {"flag": 0}, 4, "'not' needs a boolean, not integer (fact 'flag' holds an integer)"),
        ("-region", {"region": "x"}, 0, "cannot negate a string (fact 'region' holds a string)"),
        (
            "region < 'x'",
            {"region": "a"},
            7,
            "'<' needs numbers or durations, not string (fact 'region' holds a string)",
        ),
        (
            "users in [1]",
            {"users": "1"},
            10,
            "cannot compare string with integer (fact 'users' holds a string)",
        ),
    ],
)
def test_wrongly_typed_values_raise_expression_errors_naming_the_fact(
    text: str, values: Mapping[str, object], column: int, message: str
) -> None:
    error = evaluation_error(text, values)
    assert (error.message, error.column) == (message, column)


def test_and_or_stop_at_the_first_operand_that_settles_them() -> None:
    assert value_of("true or flag", {"flag": "yes"}) is True
    assert value_of("false and flag", {"flag": "yes"}) is False
    error = evaluation_error("true and flag", {"flag": "yes"})
    assert (error.message, error.column) == (
        "'and' needs booleans, not string (fact 'flag' holds a string)",
        9,
    )


def test_subclasses_of_the_value_types_are_accepted() -> None:
    from enum import IntEnum, StrEnum

    class Severity(StrEnum):
        HIGH = "high"

    class Count(IntEnum):
        TWO = 2

    assert value_of("severity == 'high'", {"severity": Severity.HIGH}) is True
    assert value_of("count > 1", {"count": Count.TWO}) is True


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("users / 3 > 1", {"users": 10**400}),
        ("elapsed * ratio > 1h", {"elapsed": timedelta(days=999_999_999), "ratio": 2.0}),
        ("elapsed * ratio > 1h", {"elapsed": timedelta(hours=1), "ratio": math.nan}),
        ("-elapsed < 0s", {"elapsed": timedelta.max}),
        ("elapsed + elapsed > 0s", {"elapsed": timedelta.max}),
    ],
)
def test_out_of_range_arithmetic_is_an_expression_error(text: str, values: Mapping[str, object]) -> None:
    error = evaluation_error(text, values)
    assert error.message.startswith("the result of ")
    assert error.message.endswith(" is out of range")


# ------------------------------------------------------------------------------------ Expression object


def test_expression_keeps_its_source_and_names() -> None:
    expr = parse_expression("known(root_cause) and users > 1 or users < -1")
    assert expr.source == "known(root_cause) and users > 1 or users < -1"
    assert expr.names == frozenset({"root_cause", "users"})
    assert parse_expression("1 > 0").names == frozenset()
    assert repr(expr) == "Expression('known(root_cause) and users > 1 or users < -1')"
    assert str(expr) == expr.source


def test_expression_is_immutable_hashable_and_picklable() -> None:
    expr = parse_expression("users > 1")
    with pytest.raises(AttributeError):
        expr.source = "users > 2"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        expr._tree = parse_expression("1 > 2")._tree
    with pytest.raises(AttributeError):
        del expr.names
    assert expr == parse_expression("users > 1")
    assert expr != parse_expression("users > 2")
    assert expr != "users > 1"
    assert len({expr, parse_expression("users > 1"), parse_expression("users>1")}) == 2
    copy = pickle.loads(pickle.dumps(expr))
    assert copy == expr
    assert copy.evaluate({"users": 2}).value is True


def test_expression_error_carries_message_and_column_and_pickles() -> None:
    error = ExpressionError("unexpected 'or'; expected a value", 4)
    assert (error.message, error.column, str(error)) == (
        "unexpected 'or'; expected a value",
        4,
        error.message,
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.column) == (error.message, error.column)


# ----------------------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a>1", "a > 1"),
        ("a>=10_000_000 or b>=2", "a >= 10_000_000 or b >= 2"),
        ("(a or b) and c", "(a or b) and c"),
        ("a or (b and c)", "a or b and c"),
        ("((a))", "a"),
        ("(a and b) and c", "a and b and c"),
        ("a and (b and c)", "a and (b and c)"),
        ("not (a or b)", "not (a or b)"),
        ("not(a)", "not a"),
        ("(not a) == b", "(not a) == b"),
        ("(a < b) == true", "(a < b) == true"),
        ("a - (b - c)", "a - (b - c)"),
        ("(a - b) - c", "a - b - c"),
        ("a / (b * c)", "a / (b * c)"),
        ("(a + b) * c", "(a + b) * c"),
        ("-(a + b)", "-(a + b)"),
        ("- - a", "--a"),
        ("a+-b", "a + -b"),
        ("x in[1,2,]", "x in [1, 2]"),
        ("x not in [ - 1 , -2.5, 1h30m ]", "x not in [-1, -2.5, 1h30m]"),
        ("r == 'it\\'s'", 'r == "it\'s"'),
        ('r == "say \\"hi\\"\\n"', 'r == "say \\"hi\\"\\n"'),
        ("r in ['a\\\\b']", 'r in ["a\\\\b"]'),
        ("known( x )", "known(x)"),
        ("TRUE_ == true", "TRUE_ == true"),
    ],
)
def test_format_expression(text: str, expected: str) -> None:
    formatted = format_expression(parse_expression(text))
    assert formatted == expected
    assert format_expression(parse_expression(formatted)) == formatted


# ------------------------------------------------------------------------------------------- properties

TOKENS = [
    "users", "flag", "region", "severity", "elapsed", "ratio", "nope", "known", "foo",
    "(", ")", "[", "]", ",", "+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "=", "!",
    "and", "or", "not", "in", "true", "false", "AND",
    "0", "1", "2.5", "10_000", "1__0", "30m", "1h30m", "3wd", "1.5h", "1e3",
    "'x'", '"high"', "'low'", "'", '"', "\\", "'\\n'", "'\\q'", ".", "%", "#", "\n", "\x00", "é",
]  # fmt: skip

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.sampled_from(SEVERITIES),
    st.timedeltas(),
    st.lists(st.integers(), max_size=2),
    st.decimals(allow_nan=False),
)


@given(st.text())
def test_any_text_parses_or_raises_expression_error(text: str) -> None:
    try:
        expr = parse_expression(text)
    except ExpressionError as error:
        assert 0 <= error.column <= len(text)
        assert error.message
        assert "\n" not in error.message
    else:
        assert expr.source == text


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(TOKENS), max_size=30),
    st.sampled_from([" ", ""]),
    st.dictionaries(st.sampled_from(sorted(FACTS)), ANY_VALUE),
)
def test_token_soup_only_ever_raises_expression_error(
    tokens: list[str], separator: str, values: dict[str, object]
) -> None:
    text = separator.join(tokens)
    try:
        expr = parse_expression(text)
    except ExpressionError as error:
        assert 0 <= error.column <= len(text)
        return
    for want_boolean in (True, False):
        try:
            check(expr, FACTS, want_boolean=want_boolean)
        except ExpressionError as error:
            assert 0 <= error.column <= len(text)
    try:
        result = expr.evaluate(values)
    except ExpressionError as error:
        assert 0 <= error.column <= len(text)
    else:
        assert (result.value is None) == bool(result.missing)
        assert result.missing <= expr.names
        assert format_expression(parse_expression(format_expression(expr))) == format_expression(expr)


# Well-typed expressions, built as text from typed pieces over the facts above.


def integer_literal(n: int) -> str:
    return f"{n:_}" if n % 2 else str(n)


def string_literal(value: str, quote: str) -> str:
    escaped = value.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")
    return quote + escaped + quote


INTEGER_LITERALS = st.integers(0, 10**12).map(integer_literal)
NUMBER_LITERALS = st.builds(lambda a, b: f"{a}.{b}", st.integers(0, 10**6), st.integers(0, 999))
DURATION_LITERALS = st.one_of(
    st.builds(lambda n, unit: f"{n}{unit}", st.integers(0, 10_000), st.sampled_from("smhd")),
    st.builds(lambda h, m: f"{h}h{m}m", st.integers(0, 100), st.integers(0, 59)),
    st.builds(lambda d, h, s: f"{d}d{h}h{s}s", st.integers(0, 100), st.integers(0, 23), st.integers(0, 59)),
)
STRING_LITERALS = st.builds(string_literal, st.text(max_size=8), st.sampled_from(["'", '"']))
SEVERITY_LITERALS = st.builds(string_literal, st.sampled_from(SEVERITIES), st.sampled_from(["'", '"']))


def binary(left: st.SearchStrategy[str], ops: str | list[str], right: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda a, op, b: f"({a} {op} {b})", left, st.sampled_from(ops), right)


@cache
def integers(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(INTEGER_LITERALS, st.sampled_from(["users", "count"]))
    if depth == 0:
        return leaves
    inner = integers(depth - 1)
    return st.one_of(leaves, binary(inner, "+-*", inner), inner.map(lambda a: f"-{a}"))


@cache
def numbers(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(NUMBER_LITERALS, st.just("ratio"), integers(0))
    if depth == 0:
        return leaves
    inner = numbers(depth - 1)
    return st.one_of(leaves, integers(depth), binary(inner, "+-*/", inner), inner.map(lambda a: f"- {a}"))


@cache
def durations(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(DURATION_LITERALS, st.just("elapsed"))
    if depth == 0:
        return leaves
    inner = durations(depth - 1)
    return st.one_of(
        leaves,
        binary(inner, "+-", inner),
        binary(inner, "*/", numbers(depth - 1)),
        binary(numbers(depth - 1), "*", inner),
        inner.map(lambda a: f"-{a}"),
    )


@cache
def booleans(depth: int) -> st.SearchStrategy[str]:
    texts = st.one_of(STRING_LITERALS, st.just("region"))
    severities = st.one_of(SEVERITY_LITERALS, st.just("region"), st.just("severity"))
    leaves = st.one_of(
        st.sampled_from(["true", "false", "flag", "other"]),
        st.sampled_from(sorted(FACTS)).map(lambda name: f"known({name})"),
        binary(numbers(depth), ["==", "!=", "<", "<=", ">", ">="], numbers(depth)),
        binary(durations(depth), ["==", "!=", "<", "<=", ">", ">="], durations(depth)),
        binary(texts, ["==", "!="], texts),
        binary(st.just("severity"), ["==", "!="], severities),
        binary(severities, ["==", "!="], st.just("severity")),
        st.builds(
            lambda left, negated, items: f"({left} {negated}in [{', '.join(items)}])",
            numbers(depth),
            st.sampled_from(["", "not "]),
            st.lists(st.one_of(INTEGER_LITERALS, NUMBER_LITERALS, INTEGER_LITERALS.map(lambda n: f"-{n}"))),
        ),
        st.builds(
            lambda left, items: f"({left} in [{', '.join(items)}])",
            st.one_of(st.just("region"), STRING_LITERALS),
            st.lists(STRING_LITERALS, max_size=3),
        ),
        st.builds(lambda items: f"(severity not in [{', '.join(items)}])", st.lists(SEVERITY_LITERALS, max_size=3)),
        st.builds(lambda items: f"(elapsed in [{', '.join(items)}])", st.lists(DURATION_LITERALS, max_size=3)),
    )
    if depth == 0:
        return leaves
    inner = booleans(depth - 1)
    return st.one_of(
        leaves,
        inner.map(lambda a: f"(not {a})"),
        binary(inner, ["and", "or", "==", "!="], inner),
        st.builds(lambda a, b, c: f"({a} and {b} or {c})", inner, inner, inner),
    )


FACT_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "users": st.integers(-(10**6), 10**6),
        "count": st.integers(-3, 3),
        "ratio": st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-100, 100)),
        "flag": st.booleans(),
        "other": st.booleans(),
        "region": st.text(max_size=3),
        "severity": st.sampled_from(SEVERITIES),
        "elapsed": st.timedeltas(min_value=timedelta(days=-1000), max_value=timedelta(days=1000)),
    },
)


def outcome(expr: Expression, values: Mapping[str, object]) -> tuple[object, ...]:
    try:
        result = expr.evaluate(values)
    except ExpressionError as error:
        return ("error", error.message)
    value = result.value
    if isinstance(value, float) and math.isnan(value):
        return ("nan", result.missing)
    return ("value", type(value), value, result.missing)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(booleans(3), st.lists(FACT_VALUES, min_size=1, max_size=4))
def test_well_typed_expressions_round_trip_through_format(text: str, samples: list[dict[str, object]]) -> None:
    assume(len(text) <= MAX_LENGTH)
    expr = parse_expression(text)
    check(expr, FACTS)
    formatted = format_expression(expr)
    again = parse_expression(formatted)
    check(again, FACTS)
    assert again.names == expr.names
    assert format_expression(again) == formatted
    for values in samples:
        expected = outcome(expr, values)
        assert outcome(again, values) == expected
        if expected[0] == "value":
            result = expr.evaluate(values)
            assert result.value is None or isinstance(result.value, bool)
            assert (result.value is None) == bool(result.missing)
            assert result.missing <= expr.names - set(values)
