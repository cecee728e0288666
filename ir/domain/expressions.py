"""The expression language of playbooks: level criteria and step conditions.

    affected_users >= 10_000_000 or provinces_affected >= 2
    severity in ["high", "critical"] and not known(root_cause)
    outage_duration > 30m

A small, safe language: the text is tokenized and parsed here, never handed to Python's eval. Grammar,
lowest precedence first (`a < b < c` is an error, not a chain):

    expr    := or
    or      := and ('or' and)*
    and     := not ('and' not)*
    not     := 'not' not | cmp
    cmp     := sum (('=='|'!='|'<'|'<='|'>'|'>=') sum)? | sum ('in' | 'not' 'in') list
    sum     := prod (('+'|'-') prod)*
    prod    := unary (('*'|'/') unary)*
    unary   := '-' unary | atom
    atom    := INTEGER | NUMBER | STRING | DURATION | 'true' | 'false' | NAME | 'known' '(' NAME ')'
             | '(' expr ')'
    list    := '[' (literal (',' literal)* ','?)? ']'

Durations are elapsed time (`30m`, `1h30m`, `3d`; 1d = 24h); working days (`wd`) need a calendar and are
not allowed here. Evaluation uses three-valued logic: a fact without a value is unknown, `false and
unknown` is false, `true or unknown` is true, and an unknown result says which absent facts mattered.

Every mistake is an ExpressionError carrying the 0-based character offset where it starts, so the
playbook loader can point at file:line:col. Hostile text is bounded: at most MAX_LENGTH characters and
MAX_DEPTH levels of parentheses, `not` and unary minus.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import Enum
from typing import Any, Final

MAX_LENGTH: Final = 2000
MAX_DEPTH: Final = 50

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Evaluation",
    "Expression",
    "ExpressionError",
    "FactSignature",
    "FactType",
    "Value",
    "check",
    "format_expression",
    "parse_expression",
]


class ExpressionError(Exception):
    """A mistake in an expression (or a failure evaluating it), at a 0-based offset into its text."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message, column)
        self.message = message
        self.column = column

    def __str__(self) -> str:
        return self.message


class FactType(Enum):
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    STRING = "string"
    ENUM = "enum"
    DURATION = "duration"


@dataclass(frozen=True, slots=True)
class FactSignature:
    """What a fact holds; `values` lists the allowed values of an ENUM fact."""

    type: FactType
    values: tuple[str, ...] = ()


Value = bool | int | float | str | timedelta


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of evaluating an expression: `value` is None when unknown, and then `missing` names
    the absent facts that made it so (empty whenever the value is known)."""

    value: Value | None
    missing: frozenset[str] = frozenset()


# --------------------------------------------------------------------------------------------- tokens

_KEYWORDS: Final = frozenset({"and", "or", "not", "in", "true", "false"})
_SPACE: Final = frozenset(" \t\r\n")
_DIGITS: Final = frozenset("0123456789")
_NAME_START: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS: Final = _NAME_START | _DIGITS
_TWO_CHAR_OPS: Final = frozenset({"==", "!=", "<=", ">="})
_ONE_CHAR_OPS: Final = frozenset("<>+-*/()[],")
_COMPARISONS: Final = frozenset({"==", "!=", "<", "<=", ">", ">="})
_ESCAPES: Final = {"\\": "\\", '"': '"', "'": "'", "n": "\n"}

_INT: Final = r"[0-9](?:_?[0-9])*"
_INT_RE: Final = re.compile(_INT)
_NUMBER_RE: Final = re.compile(rf"{_INT}\.{_INT}")
_DURATION_RE: Final = re.compile(rf"(?:{_INT}[smhd])+")
_DURATION_PART_RE: Final = re.compile(rf"({_INT})([smhd])")
_WORKING_DAYS_RE: Final = re.compile(rf"(?:{_INT}[smhd])*{_INT}wd(?:{_INT}[smhd])*")
_FRACTIONAL_DURATION_RE: Final = re.compile(rf"{_INT}\.{_INT}[smhd]")
_UNIT_ORDER: Final = "dhms"
_UNIT_SECONDS: Final = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_MAX_SECONDS: Final = timedelta.max.days * 86_400


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # int, number, duration, string, name, keyword, op, end
    text: str  # as written
    col: int
    value: Value | None = None


def _show(text: str, limit: int = 24) -> str:
    """`text` quoted for a one-line message: shortened, control characters spelled out."""
    short = text if len(text) <= limit else text[: limit - 1] + "…"
    return "'" + "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in short) + "'"


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _SPACE:
            i += 1
        elif c in _DIGITS:
            i = _lex_number(text, i, tokens)
        elif c in _NAME_START:
            j = i + 1
            while j < n and text[j] in _NAME_CHARS:
                j += 1
            word = text[i:j]
            tokens.append(_Token("keyword" if word in _KEYWORDS else "name", word, i))
            i = j
        elif c in "\"'":
            i = _lex_string(text, i, tokens)
        elif text[i : i + 2] in _TWO_CHAR_OPS:
            tokens.append(_Token("op", text[i : i + 2], i))
            i += 2
        elif c in _ONE_CHAR_OPS:
            tokens.append(_Token("op", c, i))
            i += 1
        else:
            raise ExpressionError(_bad_character(text, i), i)
    tokens.append(_Token("end", "", n))
    return tokens


def _bad_character(text: str, i: int) -> str:
    c = text[i]
    hints = {
        "=": "unexpected '='; use '==' to compare",
        "!": "unexpected '!'; use 'not', or '!=' to compare",
        "&": "unexpected '&'; use 'and'",
        "|": "unexpected '|'; use 'or'",
        "%": "unexpected '%'; percentages are not supported, write a fraction such as 0.05",
        "#": "unexpected '#'; comments are not supported",
    }
    if c in hints:
        return hints[c]
    if c == "." and text[i + 1 : i + 2] in _DIGITS:
        return "a number needs a digit before '.', such as 0.5"
    return f"unexpected character {_show(c)}"


def _lex_number(text: str, start: int, tokens: list[_Token]) -> int:
    n = len(text)
    j = start
    while j < n and text[j] in _NAME_CHARS:
        j += 1
    if j < n and text[j] == ".":
        j += 1
        while j < n and text[j] in _NAME_CHARS:
            j += 1
    word = text[start:j]
    if _INT_RE.fullmatch(word):
        tokens.append(_Token("int", word, start, int(word.replace("_", ""))))
    elif _NUMBER_RE.fullmatch(word):
        number = float(word.replace("_", ""))
        if not math.isfinite(number):
            raise ExpressionError(f"number {_show(word)} is too large", start)
        tokens.append(_Token("number", word, start, number))
    elif _DURATION_RE.fullmatch(word):
        tokens.append(_Token("duration", word, start, _duration(word, start)))
    elif _WORKING_DAYS_RE.fullmatch(word):
        raise ExpressionError(
            "working days ('wd') cannot be used in an expression; use elapsed time in s, m, h or d", start
        )
    elif _FRACTIONAL_DURATION_RE.fullmatch(word):
        raise ExpressionError("a duration counts whole units, such as 90m rather than 1.5h", start)
    else:
        raise ExpressionError(f"invalid number {_show(word)}", start)
    return j


def _duration(word: str, start: int) -> timedelta:
    seconds = 0
    last = -1
    for digits, unit in _DURATION_PART_RE.findall(word):
        rank = _UNIT_ORDER.index(unit)
        if rank <= last:
            raise ExpressionError(
                f"duration {_show(word)} must list its units from largest to smallest, each once",
                start,
            )
        last = rank
        seconds += int(digits.replace("_", "")) * _UNIT_SECONDS[unit]
    if seconds > _MAX_SECONDS:
        raise ExpressionError(f"duration {_show(word)} is too long", start)
    return timedelta(seconds=seconds)


def _lex_string(text: str, start: int, tokens: list[_Token]) -> int:
    quote = text[start]
    n = len(text)
    parts: list[str] = []
    i = start + 1
    while True:
        if i >= n:
            raise ExpressionError("unterminated string", start)
        c = text[i]
        if c == quote:
            i += 1
            break
        if c == "\\":
            if i + 1 >= n:
                raise ExpressionError("unterminated string", start)
            escaped = _ESCAPES.get(text[i + 1])
            if escaped is None:
                raise ExpressionError(
                    f"unknown escape {_show(text[i : i + 2])} in a string; use \\\\, \\\", \\' or \\n", i
                )
            parts.append(escaped)
            i += 2
            continue
        parts.append(c)
        i += 1
    tokens.append(_Token("string", text[start:i], start, "".join(parts)))
    return i


# ----------------------------------------------------------------------------------------------- tree
# Every node knows the column where its text starts. Chains of the same operator are flat (one node with
# all operands), so the tree is never deeper than a few nodes per level of nesting.

_LITERAL_TYPES: Final = {
    "int": FactType.INTEGER,
    "number": FactType.NUMBER,
    "string": FactType.STRING,
    "duration": FactType.DURATION,
}


@dataclass(frozen=True, slots=True)
class _Lit:
    col: int
    value: Value
    type: FactType
    text: str  # the canonical rendering


@dataclass(frozen=True, slots=True)
class _Name:
    col: int
    name: str


@dataclass(frozen=True, slots=True)
class _Known:
    col: int
    name: str
    name_col: int


@dataclass(frozen=True, slots=True)
class _Not:
    col: int
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Neg:
    col: int
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Logic:
    col: int
    op: str  # and, or
    operands: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Arith:
    col: int
    first: _Node
    rest: tuple[tuple[str, int, _Node], ...]  # (operator, operator column, operand)


@dataclass(frozen=True, slots=True)
class _Compare:
    col: int
    op: str
    op_col: int
    left: _Node
    right: _Node


@dataclass(frozen=True, slots=True)
class _In:
    col: int
    negated: bool
    op_col: int
    left: _Node
    items: tuple[_Lit, ...]


_Node = _Lit | _Name | _Known | _Not | _Neg | _Logic | _Arith | _Compare | _In


def _children(node: _Node) -> Iterator[_Node]:
    if isinstance(node, _Not | _Neg):
        yield node.operand
    elif isinstance(node, _Logic):
        yield from node.operands
    elif isinstance(node, _Arith):
        yield node.first
        for _, _, operand in node.rest:
            yield operand
    elif isinstance(node, _Compare):
        yield node.left
        yield node.right
    elif isinstance(node, _In):
        yield node.left


def _names(root: _Node) -> frozenset[str]:
    found: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, _Name | _Known):
            found.add(node.name)
        stack.extend(_children(node))
    return frozenset(found)


# --------------------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def at(self, kind: str, text: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == kind and token.text == text

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression nests deeper than {MAX_DEPTH} levels", token.col)

    def parse(self) -> _Node:
        if self.peek().kind == "end":
            raise ExpressionError("empty expression", 0)
        node = self.or_()
        token = self.peek()
        if token.kind != "end":
            raise _unexpected(token, "an operator or the end of the expression")
        return node

    def or_(self) -> _Node:
        operands = [self.and_()]
        while self.at("keyword", "or"):
            self.advance()
            operands.append(self.and_())
        return operands[0] if len(operands) == 1 else _Logic(operands[0].col, "or", tuple(operands))

    def and_(self) -> _Node:
        operands = [self.not_()]
        while self.at("keyword", "and"):
            self.advance()
            operands.append(self.not_())
        return operands[0] if len(operands) == 1 else _Logic(operands[0].col, "and", tuple(operands))

    def not_(self) -> _Node:
        if self.at("keyword", "not"):
            token = self.advance()
            self.enter(token)
            operand = self.not_()
            self.depth -= 1
            return _Not(token.col, operand)
        return self.comparison()

    def comparison(self) -> _Node:
        left = self.sum()
        token = self.peek()
        node: _Node
        if token.kind == "op" and token.text in _COMPARISONS:
            self.advance()
            node = _Compare(left.col, token.text, token.col, left, self.sum())
        elif self.at("keyword", "in"):
            self.advance()
            node = _In(left.col, False, token.col, left, self.list_())
        elif self.at("keyword", "not"):
            if not self.at("keyword", "in", 1):
                raise _unexpected(self.peek(1), "'in' after 'not'")
            self.advance()
            self.advance()
            node = _In(left.col, True, token.col, left, self.list_())
        else:
            return left
        after = self.peek()
        if (
            (after.kind == "op" and after.text in _COMPARISONS)
            or self.at("keyword", "in")
            or (self.at("keyword", "not") and self.at("keyword", "in", 1))
        ):
            raise ExpressionError("comparisons cannot be chained; join them with 'and'", after.col)
        return node

    def sum(self) -> _Node:
        first = self.product()
        rest: list[tuple[str, int, _Node]] = []
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            token = self.advance()
            rest.append((token.text, token.col, self.product()))
        return _Arith(first.col, first, tuple(rest)) if rest else first

    def product(self) -> _Node:
        first = self.unary()
        rest: list[tuple[str, int, _Node]] = []
        while self.peek().kind == "op" and self.peek().text in ("*", "/"):
            token = self.advance()
            rest.append((token.text, token.col, self.unary()))
        return _Arith(first.col, first, tuple(rest)) if rest else first

    def unary(self) -> _Node:
        if self.at("op", "-"):
            token = self.advance()
            self.enter(token)
            operand = self.unary()
            self.depth -= 1
            return _Neg(token.col, operand)
        return self.atom()

    def atom(self) -> _Node:
        token = self.peek()
        if token.kind in _LITERAL_TYPES:
            self.advance()
            return _literal(token)
        if token.kind == "keyword" and token.text in ("true", "false"):
            self.advance()
            return _Lit(token.col, token.text == "true", FactType.BOOLEAN, token.text)
        if token.kind == "name":
            self.advance()
            if self.at("op", "("):
                return self.call(token)
            return _Name(token.col, token.text)
        if self.at("op", "("):
            self.advance()
            self.enter(token)
            inner = self.or_()
            close = self.peek()
            if close.kind == "end":
                raise ExpressionError("unclosed '('", token.col)
            if not self.at("op", ")"):
                raise _unexpected(close, "')'")
            self.advance()
            self.depth -= 1
            return replace(inner, col=token.col)
        raise _unexpected(token, "a value")

    def call(self, function: _Token) -> _Node:
        if function.text != "known":
            raise ExpressionError(
                f"unknown function {_show(function.text)}; the only function is known(fact)", function.col
            )
        opening = self.advance()
        argument = self.peek()
        if argument.kind == "end":
            raise ExpressionError("unclosed '('", opening.col)
        if argument.kind != "name":
            raise ExpressionError("known() takes one fact name, such as known(affected_users)", argument.col)
        self.advance()
        close = self.peek()
        if close.kind == "end":
            raise ExpressionError("unclosed '('", opening.col)
        if self.at("op", ","):
            raise ExpressionError("known() takes one fact name, such as known(affected_users)", close.col)
        if not self.at("op", ")"):
            raise _unexpected(close, "')'")
        self.advance()
        return _Known(function.col, argument.text, argument.col)

    def list_(self) -> tuple[_Lit, ...]:
        opening = self.peek()
        if not self.at("op", "["):
            raise _unexpected(opening, "'[' to start a list of values")
        self.advance()
        items: list[_Lit] = []
        while True:
            if self.at("op", "]"):
                self.advance()
                return tuple(items)
            if self.peek().kind == "end":
                raise ExpressionError("unclosed '['", opening.col)
            items.append(self.list_item())
            token = self.peek()
            if token.kind == "end":
                raise ExpressionError("unclosed '['", opening.col)
            if self.at("op", ","):
                self.advance()
            elif not self.at("op", "]"):
                raise _unexpected(token, "',' or ']'")

    def list_item(self) -> _Lit:
        token = self.peek()
        if token.kind in _LITERAL_TYPES:
            self.advance()
            return _literal(token)
        if token.kind == "keyword" and token.text in ("true", "false"):
            self.advance()
            return _Lit(token.col, token.text == "true", FactType.BOOLEAN, token.text)
        if self.at("op", "-"):
            number = self.peek(1)
            if number.kind not in ("int", "number", "duration"):
                raise _unexpected(number, "a number or duration after '-'")
            self.advance()
            self.advance()
            literal = _literal(number)
            assert isinstance(literal.value, int | float | timedelta)
            return _Lit(token.col, -literal.value, literal.type, "-" + literal.text)
        raise _unexpected(token, "a literal value (a list holds only literals)")


def _literal(token: _Token) -> _Lit:
    kind = _LITERAL_TYPES[token.kind]
    assert token.value is not None
    if kind is FactType.STRING:
        assert isinstance(token.value, str)
        return _Lit(token.col, token.value, kind, _quote(token.value))
    return _Lit(token.col, token.value, kind, token.text)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _unexpected(token: _Token, expected: str) -> ExpressionError:
    if token.kind == "end":
        return ExpressionError(f"unexpected end of expression; expected {expected}", token.col)
    if token.kind == "name" and token.text.lower() in _KEYWORDS:
        return ExpressionError(
            f"unexpected {_show(token.text)}; keywords are lower-case: '{token.text.lower()}'", token.col
        )
    shown = f"string {_show(token.value)}" if isinstance(token.value, str) else _show(token.text)
    return ExpressionError(f"unexpected {shown}; expected {expected}", token.col)


# ---------------------------------------------------------------------------------------------- types

_NUMERIC: Final = frozenset({FactType.INTEGER, FactType.NUMBER})
_TEXT: Final = frozenset({FactType.STRING, FactType.ENUM})
_ORDERED: Final = frozenset({FactType.INTEGER, FactType.NUMBER, FactType.DURATION})


def _a(kind: FactType) -> str:
    return ("an " if kind.value[0] in "aeiou" else "a ") + kind.value


def _comparable(a: FactType, b: FactType) -> bool:
    if a in _NUMERIC:
        return b in _NUMERIC
    if a in _TEXT:
        return b in _TEXT
    return a is b


def _comparison_problem(op: str, a: FactType, b: FactType) -> str | None:
    if not _comparable(a, b):
        return f"cannot compare {a.value} with {b.value}"
    if op not in ("==", "!=") and a not in _ORDERED:
        return f"'{op}' needs numbers or durations, not {a.value}"
    return None


def _arith_type(op: str, a: FactType, b: FactType) -> FactType | None:
    if a in _NUMERIC and b in _NUMERIC:
        both_integers = a is FactType.INTEGER and b is FactType.INTEGER
        return FactType.INTEGER if both_integers and op != "/" else FactType.NUMBER
    duration = FactType.DURATION
    if op in ("+", "-"):
        return duration if a is duration and b is duration else None
    if op == "*":
        return duration if (a is duration and b in _NUMERIC) or (a in _NUMERIC and b is duration) else None
    return duration if a is duration and b in _NUMERIC else None


def _arith_problem(op: str, a: FactType, b: FactType) -> str:
    if op == "+":
        return f"cannot add {a.value} and {b.value}"
    if op == "-":
        return f"cannot subtract {b.value} from {a.value}"
    if op == "*":
        return f"cannot multiply {a.value} by {b.value}"
    return f"cannot divide {a.value} by {b.value}"


def _value_problem(literal: _Lit, fact: str, values: tuple[str, ...]) -> str | None:
    """Why a string literal cannot equal a value of the enum fact `fact`, or None when it can."""
    assert isinstance(literal.value, str)
    if literal.value in values:
        return None
    if not values:
        return f"{_show(literal.value)} is not a value of '{fact}', which declares no values"
    allowed = ", ".join(_show(v, 40) for v in values)
    return f"{_show(literal.value)} is not a value of '{fact}'; expected one of {allowed}"


class _Checker:
    def __init__(self, facts: Mapping[str, FactSignature]) -> None:
        self.facts = facts

    def fact(self, name: str, col: int) -> FactSignature:
        signature = self.facts.get(name)
        if signature is not None:
            return signature
        message = f"unknown fact '{name}'"
        close = difflib.get_close_matches(name, list(self.facts), n=1)
        if close:
            message += f"; did you mean '{close[0]}'?"
        elif name.lower() in _KEYWORDS:
            message += f"; keywords are lower-case: '{name.lower()}'"
        elif name == "known":
            message += "; to ask whether a fact has a value, write known(fact)"
        raise ExpressionError(message, col)

    def type_of(self, node: _Node) -> FactSignature:
        if isinstance(node, _Lit):
            return _SIGNATURES[node.type]
        if isinstance(node, _Name):
            return self.fact(node.name, node.col)
        if isinstance(node, _Known):
            self.fact(node.name, node.name_col)
            return _SIGNATURES[FactType.BOOLEAN]
        if isinstance(node, _Not):
            kind = self.type_of(node.operand).type
            if kind is not FactType.BOOLEAN:
                raise ExpressionError(f"'not' needs a boolean, not {kind.value}", node.operand.col)
            return _SIGNATURES[FactType.BOOLEAN]
        if isinstance(node, _Neg):
            kind = self.type_of(node.operand).type
            if kind not in _ORDERED:
                raise ExpressionError(f"cannot negate {_a(kind)}", node.col)
            return _SIGNATURES[kind]
        if isinstance(node, _Logic):
            for operand in node.operands:
                kind = self.type_of(operand).type
                if kind is not FactType.BOOLEAN:
                    raise ExpressionError(f"'{node.op}' needs booleans, not {kind.value}", operand.col)
            return _SIGNATURES[FactType.BOOLEAN]
        if isinstance(node, _Arith):
            kind = self.type_of(node.first).type
            for op, op_col, operand in node.rest:
                right = self.type_of(operand).type
                result = _arith_type(op, kind, right)
                if result is None:
                    raise ExpressionError(_arith_problem(op, kind, right), op_col)
                kind = result
            return _SIGNATURES[kind]
        if isinstance(node, _Compare):
            lhs, rhs = self.type_of(node.left), self.type_of(node.right)
            problem = _comparison_problem(node.op, lhs.type, rhs.type)
            if problem is not None:
                raise ExpressionError(problem, node.op_col)
            self.enum_literal(node.left, lhs, node.right)
            self.enum_literal(node.right, rhs, node.left)
            return _SIGNATURES[FactType.BOOLEAN]
        member = self.type_of(node.left)
        for item in node.items:
            if not _comparable(member.type, item.type):
                raise ExpressionError(f"cannot compare {member.type.value} with {item.type.value}", item.col)
            self.enum_literal(node.left, member, item)
        return _SIGNATURES[FactType.BOOLEAN]

    @staticmethod
    def enum_literal(side: _Node, signature: FactSignature, other: _Node) -> None:
        if signature.type is FactType.ENUM and isinstance(side, _Name) and isinstance(other, _Lit):
            problem = _value_problem(other, side.name, signature.values)
            if problem is not None:
                raise ExpressionError(problem, other.col)


_SIGNATURES: Final = {kind: FactSignature(kind) for kind in FactType}


# --------------------------------------------------------------------------------------- evaluation
# The tree is compiled once into closures. Inside, an unknown value is a _Missing naming the absent facts;
# every other value is a bool, int, float, str or timedelta, checked at the point a fact is read.

_Run = Callable[[Mapping[str, object]], object]


class _Missing:
    __slots__ = ("names",)

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names


def _join(a: object, b: object) -> _Missing:
    """The unknown result of an operation with at least one unknown operand."""
    if isinstance(a, _Missing):
        return _Missing(a.names | b.names) if isinstance(b, _Missing) else a
    assert isinstance(b, _Missing)
    return b


_KIND_OF: Final[dict[type, FactType]] = {
    bool: FactType.BOOLEAN,
    int: FactType.INTEGER,
    float: FactType.NUMBER,
    str: FactType.STRING,
    timedelta: FactType.DURATION,
}
_ACCEPTED: Final = (bool, int, float, str, timedelta)


def _kind(value: object) -> FactType | None:
    kind = _KIND_OF.get(type(value))
    if kind is not None:
        return kind
    for accepted in _ACCEPTED:  # subclasses: str enums, int enums
        if isinstance(value, accepted):
            return _KIND_OF[accepted]
    return None


def _kind_of_value(value: object, col: int) -> FactType:
    kind = _kind(value)
    if kind is None:  # facts are checked when read, so this is a value no operator produces
        raise ExpressionError(f"cannot use a value of type '{type(value).__name__}'", col)
    return kind


def _hint(operands: tuple[tuple[_Node | None, FactType], ...]) -> str:
    """Names the facts among the operands, so a wrongly typed fact value is easy to find."""
    held = [f"fact '{node.name}' holds {_a(kind)}" for node, kind in operands if isinstance(node, _Name)]
    return f" ({', '.join(held)})" if held else ""


_COMPARE_FUNCTIONS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITH_FUNCTIONS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
_FAST_TYPES: Final = {
    FactType.INTEGER: (int, float),
    FactType.NUMBER: (int, float),
    FactType.STRING: (str,),
    FactType.BOOLEAN: (bool,),
    FactType.DURATION: (timedelta,),
}


def _compile(node: _Node) -> _Run:
    if isinstance(node, _Lit):
        constant = node.value
        return lambda values: constant
    if isinstance(node, _Name):
        return _compile_name(node)
    if isinstance(node, _Known):
        name = node.name
        return lambda values: values.get(name) is not None
    if isinstance(node, _Not):
        return _compile_not(node)
    if isinstance(node, _Neg):
        return _compile_neg(node)
    if isinstance(node, _Logic):
        return _compile_logic(node)
    if isinstance(node, _Arith):
        return _compile_arith(node)
    if isinstance(node, _Compare):
        return _compile_compare(node)
    return _compile_in(node)


def _compile_name(node: _Name) -> _Run:
    name, col = node.name, node.col
    missing = _Missing(frozenset({name}))

    def run(values: Mapping[str, object]) -> object:
        value = values.get(name)
        if value is None:
            return missing
        if type(value) in _KIND_OF or isinstance(value, _ACCEPTED):
            return value
        raise ExpressionError(
            f"fact '{name}' holds a value of type '{type(value).__name__}', which an expression cannot use",
            col,
        )

    return run


def _compile_not(node: _Not) -> _Run:
    operand, col = _compile(node.operand), node.operand.col

    def run(values: Mapping[str, object]) -> object:
        value = operand(values)
        if value is True:
            return False
        if value is False:
            return True
        if isinstance(value, _Missing):
            return value
        kind = _kind_of_value(value, col)
        raise ExpressionError(f"'not' needs a boolean, not {kind.value}" + _hint(((node.operand, kind),)), col)

    return run


def _compile_neg(node: _Neg) -> _Run:
    operand, col = _compile(node.operand), node.col

    def run(values: Mapping[str, object]) -> object:
        value = operand(values)
        if isinstance(value, _Missing):
            return value
        kind = _kind_of_value(value, col)
        if kind not in _ORDERED or not isinstance(value, int | float | timedelta):
            raise ExpressionError(f"cannot negate {_a(kind)}" + _hint(((node.operand, kind),)), col)
        try:
            return -value
        except OverflowError:
            raise ExpressionError("the result of '-' is out of range", col) from None

    return run


def _compile_logic(node: _Logic) -> _Run:
    operands = tuple((_compile(operand), operand) for operand in node.operands)
    op = node.op
    decisive = op == "or"  # the value that settles the result: true for or, false for and

    def run(values: Mapping[str, object]) -> object:
        missing: _Missing | None = None
        for compiled, operand in operands:
            value = compiled(values)
            if value is decisive:
                return decisive
            if value is (not decisive):
                continue
            if isinstance(value, _Missing):
                missing = value if missing is None else _join(missing, value)
                continue
            kind = _kind_of_value(value, operand.col)
            raise ExpressionError(f"'{op}' needs booleans, not {kind.value}" + _hint(((operand, kind),)), operand.col)
        return (not decisive) if missing is None else missing

    return run


def _compile_arith(node: _Arith) -> _Run:
    first, first_node = _compile(node.first), node.first
    rest = tuple((op, col, _compile(operand), operand) for op, col, operand in node.rest)

    def run(values: Mapping[str, object]) -> object:
        result = first(values)
        for index, (op, col, compiled, operand) in enumerate(rest):
            value = compiled(values)
            if isinstance(result, _Missing) or isinstance(value, _Missing):
                result = _join(result, value)
                continue
            a, b = _kind_of_value(result, col), _kind_of_value(value, col)
            if _arith_type(op, a, b) is None:
                left = first_node if index == 0 else None
                raise ExpressionError(_arith_problem(op, a, b) + _hint(((left, a), (operand, b))), col)
            try:
                result = _ARITH_FUNCTIONS[op](result, value)
            except ZeroDivisionError:
                raise ExpressionError("division by zero", col) from None
            except (OverflowError, ValueError):
                raise ExpressionError(f"the result of '{op}' is out of range", col) from None
        return result

    return run


def _compile_compare(node: _Compare) -> _Run:
    left, right = _compile(node.left), _compile(node.right)
    op, col = node.op, node.op_col
    function = _COMPARE_FUNCTIONS[op]

    def slow(a: object, b: object) -> object:
        if isinstance(a, _Missing) or isinstance(b, _Missing):
            return _join(a, b)
        ka, kb = _kind_of_value(a, col), _kind_of_value(b, col)
        problem = _comparison_problem(op, ka, kb)
        if problem is not None:
            raise ExpressionError(problem + _hint(((node.left, ka), (node.right, kb))), col)
        return function(a, b)

    if isinstance(node.left, _Name) and isinstance(node.right, _Lit):
        # the common shape of criteria, `fact >= 10`: read the fact and compare, checking its type once
        name, constant = node.left.name, node.right.value
        missing = _Missing(frozenset({name}))
        fast: tuple[type, ...] = ()
        if _comparison_problem(op, node.right.type, node.right.type) is None:
            fast = _FAST_TYPES[node.right.type]

        def run_fact(values: Mapping[str, object]) -> object:
            value = values.get(name)
            if value is None:
                return missing
            if type(value) in fast:
                return function(value, constant)
            return slow(left(values), constant)

        return run_fact

    def run(values: Mapping[str, object]) -> object:
        return slow(left(values), right(values))

    return run


def _compile_in(node: _In) -> _Run:
    left, negated, items = _compile(node.left), node.negated, node.items
    members = frozenset(item.value for item in items)
    allowed = frozenset(kind for kind in FactType if all(_comparable(kind, i.type) for i in items))

    def run(values: Mapping[str, object]) -> object:
        value = left(values)
        if isinstance(value, _Missing):
            return value
        kind = _kind_of_value(value, node.op_col)
        if kind not in allowed:
            item = next(i for i in items if not _comparable(kind, i.type))
            problem = f"cannot compare {kind.value} with {item.type.value}" + _hint(((node.left, kind),))
            raise ExpressionError(problem, item.col)
        return (value in members) is not negated

    return run


# ------------------------------------------------------------------------------------------ rendering

_OR, _AND, _NOT, _CMP, _SUM, _PROD, _UNARY, _ATOM = range(1, 9)


def _level(node: _Node) -> int:
    if isinstance(node, _Logic):
        return _OR if node.op == "or" else _AND
    if isinstance(node, _Not):
        return _NOT
    if isinstance(node, _Compare | _In):
        return _CMP
    if isinstance(node, _Arith):
        return _SUM if node.rest[0][0] in ("+", "-") else _PROD
    if isinstance(node, _Neg):
        return _UNARY
    return _ATOM


def _render(node: _Node, minimum: int) -> str:
    text = _render_node(node)
    return f"({text})" if _level(node) < minimum else text


def _render_node(node: _Node) -> str:
    if isinstance(node, _Lit):
        return node.text
    if isinstance(node, _Name):
        return node.name
    if isinstance(node, _Known):
        return f"known({node.name})"
    if isinstance(node, _Not):
        return "not " + _render(node.operand, _NOT)
    if isinstance(node, _Neg):
        return "-" + _render(node.operand, _UNARY)
    if isinstance(node, _Logic):
        level = _level(node)
        parts = [_render(node.operands[0], level)]
        parts += [_render(operand, level + 1) for operand in node.operands[1:]]
        return f" {node.op} ".join(parts)
    if isinstance(node, _Arith):
        level = _level(node)
        text = _render(node.first, level)
        for op, _, operand in node.rest:
            text += f" {op} {_render(operand, level + 1)}"
        return text
    if isinstance(node, _Compare):
        return f"{_render(node.left, _SUM)} {node.op} {_render(node.right, _SUM)}"
    items = ", ".join(item.text for item in node.items)
    return f"{_render(node.left, _SUM)} {'not in' if node.negated else 'in'} [{items}]"


# ------------------------------------------------------------------------------------------------ API

_TRUE: Final = Evaluation(True)
_FALSE: Final = Evaluation(False)


class Expression:
    """A parsed expression: immutable, hashable, equal to another when their source texts are equal."""

    __slots__ = ("_names", "_run", "_source", "_tree")

    _source: str
    _names: frozenset[str]
    _tree: _Node
    _run: _Run

    def __init__(self, source: str, tree: _Node) -> None:
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_names", _names(tree))
        object.__setattr__(self, "_tree", tree)
        object.__setattr__(self, "_run", _compile(tree))

    @property
    def source(self) -> str:
        """The text as written."""
        return self._source

    @property
    def names(self) -> frozenset[str]:
        """Every fact the expression reads, including inside known()."""
        return self._names

    def evaluate(self, values: Mapping[str, object]) -> Evaluation:
        """The value given the facts' values; a fact absent from `values` (or None) is unknown."""
        try:
            value = self._run(values)
        except RecursionError:
            raise ExpressionError("expression nests too deeply to evaluate", 0) from None
        if value is True:
            return _TRUE
        if value is False:
            return _FALSE
        if isinstance(value, _Missing):
            return Evaluation(None, value.names)
        assert isinstance(value, _ACCEPTED)
        return Evaluation(value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("an Expression is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("an Expression is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Expression):
            return NotImplemented
        return self.source == other.source

    def __hash__(self) -> int:
        return hash((Expression, self.source))

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def __str__(self) -> str:
        return self.source

    def __reduce__(self) -> tuple[Callable[[str], Expression], tuple[str]]:
        return parse_expression, (self.source,)


def parse_expression(text: str) -> Expression:
    """Parse `text`; raises ExpressionError (with the offset of the problem) for any mistake."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, not {type(text).__name__}", 0)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is too long: {len(text)} characters, at most {MAX_LENGTH} are allowed", MAX_LENGTH
        )
    try:
        tree = _Parser(_tokenize(text)).parse()
        return Expression(text, tree)
    except RecursionError:
        raise ExpressionError("expression nests too deeply", 0) from None


def check(expr: Expression, facts: Mapping[str, FactSignature], *, want_boolean: bool = True) -> None:
    """Check the expression against the declared facts: names exist, types fit, the result is boolean."""
    tree = expr._tree
    try:
        kind = _Checker(facts).type_of(tree).type
    except RecursionError:
        raise ExpressionError("expression nests too deeply", 0) from None
    if want_boolean and kind is not FactType.BOOLEAN:
        raise ExpressionError(f"expected a condition (true or false), but this gives {_a(kind)}", tree.col)


def format_expression(expr: Expression) -> str:
    """The canonical text of `expr`: spaced operators, parentheses only where needed, strings in
    double quotes; it parses back to an expression that evaluates identically."""
    return _render_node(expr._tree)
