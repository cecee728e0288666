"""Safe YAML loading that remembers where every value came from.

Hostile input is refused before it can cost anything: files over the size limit are never read, bytes
that are not UTF-8 text are refused, anchors and aliases are expanded only within a node budget (an
alias bomb is measured on the shared node graph, never expanded), nesting is bounded, and duplicate
keys are errors. Every value's line and column are kept so problems point at the offending node.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from ir.adapters.playbooks.problems import Problem

try:  # libyaml's parser is several times faster; PyYAML's pure-Python one is the fallback
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 2_000_000
MAX_DEPTH = 64

Path = tuple[str | int, ...]

_constructor = yaml.SafeLoader("")  # only its scalar constructors are used; it reads nothing


@dataclass(frozen=True, slots=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based
    style: str | None = None  # the scalar style: None (plain), "'", '"', '|' or '>'


@dataclass(slots=True)
class Located:
    """A loaded YAML document with the position of every value and every mapping key."""

    data: Any
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def mark(self, path: Path) -> Mark:
        """The best position for a path: its value, else its key, else the nearest ancestor."""
        while True:
            found = self.values.get(path) or self.keys.get(path)
            if found is not None or not path:
                return found or Mark(1, 1)
            path = path[:-1]

    def key_mark(self, path: Path) -> Mark:
        return self.keys.get(path) or self.mark(path)


class YamlRefused(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def read_source(path: str) -> bytes:
    """Read a file, refusing one over the size limit without reading it."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise YamlRefused(Problem(path, 1, 1, "error", f"cannot read: {exc.strerror or exc}")) from None
    if size > MAX_BYTES:
        raise YamlRefused(
            Problem(
                path,
                1,
                1,
                "error",
                f"file too large: {size:,} bytes (a playbook may have at most {MAX_BYTES:,})",
            )
        )
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise YamlRefused(Problem(path, 1, 1, "error", f"cannot read: {exc.strerror or exc}")) from None


def decode_source(raw: bytes, filename: str) -> str:
    if len(raw) > MAX_BYTES:
        raise YamlRefused(
            Problem(filename, 1, 1, "error", f"file too large (a playbook may have at most {MAX_BYTES:,} bytes)")
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _position(raw, exc.start)
        raise YamlRefused(
            Problem(filename, line, col, "error", f"not a UTF-8 text file (invalid byte 0x{raw[exc.start]:02x})")
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line, col = _position(raw, len(text[:nul].encode()))
        raise YamlRefused(Problem(filename, line, col, "error", "not a text file (it contains NUL bytes)"))
    return text.removeprefix("\ufeff")


def load_file(path: str) -> Any:
    """A YAML file other than a playbook (configuration, message templates) read under the same defences:
    size, UTF-8, alias budget, depth. Plain values; None for a file with no document. Raises YamlRefused."""
    text = decode_source(read_source(path), path)
    try:
        return load_located(text, path).data
    except YamlRefused as refused:
        if refused.problem.message.startswith("empty file"):
            return None
        raise


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    col = offset - (before.rfind(b"\n") + 1) + 1
    return line, col


def load_located(text: str, filename: str) -> Located:
    """Parse one YAML document into plain Python values with positions; raises YamlRefused.

    Built straight from the parser's events with an explicit stack: no recursion, aliases shared
    rather than copied, and the expanded size counted as it grows, so an alias bomb is refused at the
    alias that crosses the budget.
    """
    located = Located(data=None)
    builder = _Builder(located, filename)
    try:
        for event in yaml.parse(text, Loader=_Loader):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = exc.problem or exc.context or "invalid YAML"
        if "nesting depth" in message:
            raise YamlRefused(
                Problem(filename, line, col, "error", f"nesting too deep (at most {MAX_DEPTH} levels)")
            ) from None
        ctx = exc.context_mark
        if exc.problem and exc.context and ctx is not None and ctx is not mark:
            message += f" ({exc.context} at {ctx.line + 1}:{ctx.column + 1})"
        raise YamlRefused(Problem(filename, line, col, "error", f"YAML syntax error: {message}")) from None
    except yaml.YAMLError as exc:
        raise YamlRefused(Problem(filename, 1, 1, "error", f"YAML syntax error: {exc}")) from None
    if builder.documents == 0 or builder.root_missing:
        raise YamlRefused(Problem(filename, 1, 1, "error", "empty file: a playbook is a YAML mapping"))
    located.data = builder.root
    return located


def _where(event: yaml.Event) -> tuple[int, int]:
    """The 1-based line and column where an event starts."""
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


class _Frame:
    __slots__ = ("anchor", "container", "first_seen", "key", "path", "size", "skip_next")

    def __init__(self, container: dict[str, Any] | list[Any], path: Path, anchor: str | None) -> None:
        self.container = container
        self.path = path
        self.anchor = anchor
        self.key: str | None = None
        self.skip_next = False
        self.first_seen: dict[str, int] | None = {} if isinstance(container, dict) else None
        self.size = 1


class _Builder:
    def __init__(self, located: Located, filename: str) -> None:
        self.located = located
        self.filename = filename
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.total = 0
        self.root: Any = None
        self.root_missing = True
        self.documents = 0
        self.skip_depth = 0

    def refuse(self, event: yaml.Event, message: str) -> YamlRefused:
        line, column = _where(event)
        return YamlRefused(Problem(self.filename, line, column, "error", message))

    def problem(self, mark: Mark, message: str) -> None:
        self.located.problems.append(Problem(self.filename, mark.line, mark.column, "error", message))

    def feed(self, event: yaml.Event) -> None:
        kind = type(event)
        if kind is yaml.ScalarEvent:
            self.scalar(event)  # type: ignore[arg-type]
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            self.open(event)  # type: ignore[arg-type]
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            self.close()
        elif kind is yaml.AliasEvent:
            self.alias(event)  # type: ignore[arg-type]
        elif kind is yaml.DocumentStartEvent:
            self.documents += 1
            if self.documents > 1:
                raise self.refuse(event, "one playbook per file: found a second YAML document")

    # -- where a value goes --------------------------------------------------------------------

    def _slot(self, event: yaml.Event) -> tuple[Path, bool] | None:
        """The path of the next value, and whether it is a mapping key (None: no parent, the root)."""
        if not self.stack:
            return None
        top = self.stack[-1]
        if isinstance(top.container, list):
            return (*top.path, len(top.container)), False
        if top.key is None:
            return top.path, True
        return (*top.path, top.key), False

    def _place(self, value: Any, path: Path | None, size: int) -> None:
        self.total += size
        if self.total > MAX_NODES:
            raise YamlRefused(
                Problem(
                    self.filename,
                    1,
                    1,
                    "error",
                    f"refused: aliases expand to more than {MAX_NODES:,} values (an alias bomb?)",
                )
            )
        if not self.stack:
            self.root = value
            self.root_missing = False
            return
        top = self.stack[-1]
        top.size += size
        if isinstance(top.container, list):
            top.container.append(value)
        else:
            key, skip = top.key, top.skip_next
            top.key, top.skip_next = None, False
            if key is not None and not skip:  # a duplicate or refused key's value is built, then dropped
                top.container[key] = value

    # -- events --------------------------------------------------------------------------------

    def scalar(self, event: yaml.ScalarEvent) -> None:
        slot = self._slot(event)
        mark = Mark(*_where(event), event.style or None)
        if slot is not None and slot[1]:
            self.key(event, slot[0], mark)
            return
        path = slot[0] if slot else ()
        self.located.values[path] = mark
        value = self.value_of(event)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)
        self._place(value, path, 1)

    def key(self, event: yaml.ScalarEvent, parent: Path, mark: Mark) -> None:
        top = self.stack[-1]
        assert top.first_seen is not None
        # keys are always text: YAML 1.1 would read `on:` or `no:` as booleans
        key = event.value
        if not event.style and key == "<<":
            self.problem(mark, "merge keys ('<<') are not supported")
            top.key, top.skip_next = key, True
            return
        if key in top.first_seen:
            self.problem(mark, f"duplicate key '{key}' (first at line {top.first_seen[key]})")
            top.key, top.skip_next = key, True
            return
        top.first_seen[key] = mark.line
        top.key = key
        self.located.keys[(*parent, key)] = mark

    def open(self, event: yaml.MappingStartEvent | yaml.SequenceStartEvent) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise self.refuse(event, f"nesting too deep (at most {MAX_DEPTH} levels)")
        slot = self._slot(event)
        if slot is not None and slot[1]:
            raise self.refuse(event, "a mapping key must be a plain value")
        path = slot[0] if slot else ()
        self.located.values[path] = Mark(*_where(event))
        if event.tag not in (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"):
            raise self.refuse(event, f"unsupported YAML tag '{event.tag}'")
        container: dict[str, Any] | list[Any] = {} if isinstance(event, yaml.MappingStartEvent) else []
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame(container, path, event.anchor))

    def close(self) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (frame.container, frame.size)
        self.total -= frame.size - 1  # the children were counted as they were placed
        self._place(frame.container, frame.path, frame.size)

    def alias(self, event: yaml.AliasEvent) -> None:
        name = event.anchor or ""
        if name in self.open_anchors:
            raise self.refuse(event, "refused: a recursive alias")
        if name not in self.anchors:
            raise self.refuse(event, f"unknown alias '*{name}'")
        slot = self._slot(event)
        if slot is not None and slot[1]:
            raise self.refuse(event, "a mapping key must be a plain value")
        value, size = self.anchors[name]
        path = slot[0] if slot else ()
        self.located.values[path] = Mark(*_where(event))
        if self.total + size > MAX_NODES:
            raise self.refuse(event, f"refused: aliases expand to more than {MAX_NODES:,} values (an alias bomb?)")
        self._place(value, path, size)

    def value_of(self, event: yaml.ScalarEvent) -> Any:
        tag = event.tag
        text = event.value
        if tag is None or tag == "!":
            if event.style or not event.implicit[0] or tag == "!":  # libyaml gives plain scalars style ''
                return text
            tag = _resolve_plain(text)
            if tag == _STR:
                return text
        elif not tag.startswith("tag:yaml.org,2002:") or tag[18:] not in _STANDARD:
            raise self.refuse(event, f"unsupported YAML tag '{tag}'")
        build = _SCALARS.get(tag)
        if build is None:  # str, and the `=` and `<<` tags, which are text in a value
            return text
        try:
            return build(yaml.ScalarNode(tag, text, None, None, event.style))
        except (ValueError, TypeError, OverflowError, yaml.YAMLError):
            raise self.refuse(event, f"invalid value '{text}'") from None


_STR = "tag:yaml.org,2002:str"
_STANDARD = {"str", "null", "bool", "int", "float", "timestamp"}
_IMPLICIT = yaml.resolver.Resolver.yaml_implicit_resolvers


def _resolve_plain(value: str) -> str:
    """The tag YAML 1.1 gives a plain scalar (as PyYAML's resolver does, without its per-call overhead)."""
    if not value:
        return "tag:yaml.org,2002:null"
    for tag, regexp in _IMPLICIT.get(value[0], ()):
        if regexp.match(value):
            return str(tag)
    return _STR


_SCALARS = {
    "tag:yaml.org,2002:null": _constructor.construct_yaml_null,
    "tag:yaml.org,2002:bool": _constructor.construct_yaml_bool,
    "tag:yaml.org,2002:int": _constructor.construct_yaml_int,
    "tag:yaml.org,2002:float": _constructor.construct_yaml_float,
    "tag:yaml.org,2002:timestamp": _constructor.construct_yaml_timestamp,
}
