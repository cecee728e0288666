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
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

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
            Problem(
                filename, 1, 1, "error", f"file too large (a playbook may have at most {MAX_BYTES:,} bytes)"
            )
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _position(raw, exc.start)
        raise YamlRefused(
            Problem(
                filename, line, col, "error", f"not a UTF-8 text file (invalid byte 0x{raw[exc.start]:02x})"
            )
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line, col = _position(raw, len(text[:nul].encode()))
        raise YamlRefused(Problem(filename, line, col, "error", "not a text file (it contains NUL bytes)"))
    return text.removeprefix("\ufeff")


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    col = offset - (before.rfind(b"\n") + 1) + 1
    return line, col


def load_located(text: str, filename: str) -> Located:
    """Parse one YAML document into plain Python values with positions; raises YamlRefused."""
    try:
        root = yaml.compose(text, Loader=_Loader)
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
    except RecursionError:
        raise YamlRefused(
            Problem(filename, 1, 1, "error", f"nesting too deep (at most {MAX_DEPTH} levels)")
        ) from None
    if root is None:
        raise YamlRefused(Problem(filename, 1, 1, "error", "empty file: a playbook is a YAML mapping"))
    _check_budget(root, filename)
    located = Located(data=None)
    located.data = _build(root, (), 0, located, filename)
    return located


def _check_budget(root: Node, filename: str) -> None:
    """Measure the expanded size of the node graph (aliases share nodes) without expanding it."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            children = _children(node)
            total = 1 + sum(sizes[id(c)] for c in children)
            sizes[key] = total
            in_progress.discard(key)
            if total > MAX_NODES:
                raise YamlRefused(
                    Problem(
                        filename,
                        node.start_mark.line + 1,
                        node.start_mark.column + 1,
                        "error",
                        f"refused: aliases expand to more than {MAX_NODES:,} values (an alias bomb?)",
                    )
                )
            continue
        if key in sizes:
            continue
        if key in in_progress:
            raise YamlRefused(
                Problem(
                    filename,
                    node.start_mark.line + 1,
                    node.start_mark.column + 1,
                    "error",
                    "refused: a recursive alias",
                )
            )
        in_progress.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _build(node: Node, path: Path, depth: int, located: Located, filename: str) -> Any:
    if depth > MAX_DEPTH:
        raise YamlRefused(
            Problem(
                filename,
                node.start_mark.line + 1,
                node.start_mark.column + 1,
                "error",
                f"nesting too deep (at most {MAX_DEPTH} levels)",
            )
        )
    mark = node.start_mark
    if isinstance(node, ScalarNode):
        located.values[path] = Mark(mark.line + 1, mark.column + 1, node.style)
        return _scalar(node, filename)
    located.values[path] = Mark(mark.line + 1, mark.column + 1)
    if isinstance(node, SequenceNode):
        return [_build(item, (*path, i), depth + 1, located, filename) for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            km = key_node.start_mark
            if key_node.tag == "tag:yaml.org,2002:merge":
                located.problems.append(
                    Problem(
                        filename, km.line + 1, km.column + 1, "error", "merge keys ('<<') are not supported"
                    )
                )
                continue
            if not isinstance(key_node, ScalarNode):
                located.problems.append(
                    Problem(
                        filename, km.line + 1, km.column + 1, "error", "a mapping key must be a plain value"
                    )
                )
                continue
            # keys are always text: YAML 1.1 would read `on:` or `no:` as booleans
            key = str(key_node.value)
            if key in first_seen:
                located.problems.append(
                    Problem(
                        filename,
                        km.line + 1,
                        km.column + 1,
                        "error",
                        f"duplicate key '{key}' (first at line {first_seen[key]})",
                    )
                )
                continue
            first_seen[key] = km.line + 1
            located.keys[(*path, key)] = Mark(km.line + 1, km.column + 1)
            out[key] = _build(value_node, (*path, key), depth + 1, located, filename)
        return out
    raise YamlRefused(
        Problem(filename, mark.line + 1, mark.column + 1, "error", "unsupported YAML node")
    )  # pragma: no cover


_SCALARS = {
    "tag:yaml.org,2002:null": _constructor.construct_yaml_null,
    "tag:yaml.org,2002:bool": _constructor.construct_yaml_bool,
    "tag:yaml.org,2002:int": _constructor.construct_yaml_int,
    "tag:yaml.org,2002:float": _constructor.construct_yaml_float,
    "tag:yaml.org,2002:timestamp": _constructor.construct_yaml_timestamp,
}


def _scalar(node: ScalarNode, filename: str) -> Any:
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    build = _SCALARS.get(node.tag)
    if build is None:
        m = node.start_mark
        raise YamlRefused(
            Problem(filename, m.line + 1, m.column + 1, "error", f"unsupported YAML tag '{node.tag}'")
        )
    try:
        return build(node)
    except (ValueError, yaml.YAMLError):
        m = node.start_mark
        raise YamlRefused(
            Problem(filename, m.line + 1, m.column + 1, "error", f"invalid value '{node.value}'")
        ) from None
