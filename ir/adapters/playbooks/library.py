"""The playbook library on disk: find, compile and serve playbooks by id or path."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import date

from ir.adapters.playbooks.compiler import Compiled, compile_source
from ir.adapters.playbooks.problems import Problem
from ir.adapters.playbooks.yaml_source import YamlRefused, read_source
from ir.domain.errors import InvalidInput, NotFound
from ir.domain.playbook import Playbook

SUFFIXES = (".yaml", ".yml")


def playbook_files(paths: Iterable[str]) -> Iterator[str]:
    """The playbook files named, folders searched recursively in name order; a missing path is yielded as is."""
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if name.endswith(SUFFIXES):
                        yield os.path.join(root, name)
        else:
            yield path


def compile_file(path: str, *, today: date | None = None) -> Compiled:
    try:
        raw = read_source(path)
    except YamlRefused as refused:
        return Compiled(path, None, [refused.problem])
    return compile_source(raw, path, today=today)


class PlaybookLibrary:
    """Playbooks in one folder, compiled on first use and cached by file modification time."""

    def __init__(self, folder: str, *, today: date | None = None) -> None:
        self.folder = folder
        self.today = today
        self._cache: dict[str, tuple[float, Compiled]] = {}

    def compiled(self) -> list[Compiled]:
        out = []
        for path in playbook_files([self.folder]):
            out.append(self._compile(path))
        return out

    def _compile(self, path: str) -> Compiled:
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return Compiled(path, None, [Problem(path, 1, 1, "error", "cannot read")])
        hit = self._cache.get(path)
        if hit is not None and hit[0] == mtime:
            return hit[1]
        result = compile_file(path, today=self.today)
        self._cache[path] = (mtime, result)
        return result

    def playbooks(self) -> list[Playbook]:
        return [c.playbook for c in self.compiled() if c.playbook is not None]

    def get(self, ref: str) -> Playbook:
        """A playbook by id from the library, or by path to a file."""
        if ref.endswith(SUFFIXES) or os.sep in ref:
            result = compile_file(ref, today=self.today)
            if result.playbook is None:
                first = result.errors[0] if result.errors else None
                raise InvalidInput(f"playbook {ref} is not valid: {first}" if first else f"playbook {ref} is not valid")
            return result.playbook
        for compiled in self.compiled():
            if compiled.playbook is not None and compiled.playbook.id == ref:
                return compiled.playbook
        known = sorted(p.id for p in self.playbooks())
        import difflib

        close = difflib.get_close_matches(ref, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise NotFound(f"no playbook '{ref}' in {self.folder}{hint}")
