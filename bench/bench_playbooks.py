"""Playbook validation speed and memory (issue 2), each figure beside a ceiling measured in the same run.

Targets: the whole library under 0.2 s warm and under 1 s cold; a generated 5,000-step playbook under
1 s warm and under 200 MB resident; refusing an alias bomb under 50 ms warm.
Ceilings: libyaml parsing the same bytes (warm), and a bare `python -c 'import yaml'` (cold).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "playbooks"
sys.path.insert(0, str(ROOT))

from ir.adapters.playbooks.compiler import compile_source  # noqa: E402
from ir.adapters.playbooks.library import compile_file, playbook_files  # noqa: E402


def median_time(fn: Callable[[], object], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def big_playbook(steps: int) -> str:
    head = (ROOT / "tests" / "builders.py").read_text(encoding="utf-8")
    start = head.index('"""\\\n') + 5
    minimal = head[start : head.index('"""', start)]
    before_steps = minimal[: minimal.index("steps:\n")]
    after = minimal[minimal.index("notifications:\n") :]
    lines = ["steps:\n"]
    for i in range(steps):
        deps = f"    depends_on: [s{i - 1}{', s' + str(i - 7) if i >= 7 else ''}]\n" if i else ""
        lines.append(
            f"  - id: s{i}\n"
            f"    title: {{zh-CN: 第{i}步 检查基站与传输, en: Step {i} check sites and transmission}}\n"
            f"    instructions:\n"
            f"      zh-CN: 核查受影响基站、传输路由和动力情况，记录结果并更新事实。\n"
            f"      en: Check the affected sites, transmission routes and power and record the results.\n"
            f"    role: {'noc' if i % 2 else 'commander'}\n"
            f"{deps}"
            f"    due: detection + {i % 90 + 1}m\n"
            f"    checklist:\n"
            f"      - {{zh-CN: 已核查, en: Checked}}\n"
            + (f"    when: affected_users >= {i * 10}\n" if i % 10 == 0 else "")
            + ("    kind: restore\n    restores: full\n" if i == steps - 1 else "")
        )
    return before_steps + "".join(lines) + after


def alias_bomb() -> bytes:
    rows = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 12):
        rows.append(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(rows).encode()


def rss_of_validating(path: Path) -> int:
    code = (
        "import resource,sys; sys.path.insert(0, sys.argv[2]);"
        "from ir.adapters.playbooks.library import compile_file;"
        "r = compile_file(sys.argv[1]); assert r.ok, r.errors[:3];"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path), str(ROOT)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) * 1024


def cold(cmd: list[str], repeat: int = 5) -> float:
    return median_time(lambda: subprocess.run(cmd, capture_output=True, check=False, cwd=ROOT), repeat)


def main() -> None:
    files = list(playbook_files([str(LIBRARY)]))
    raws = [Path(f).read_bytes() for f in files]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def validate_library() -> None:
        for f in files:
            assert compile_file(f).ok, f

    def parse_library() -> None:
        for raw in raws:
            yaml.load(raw, Loader=loader)

    validate_library()
    warm = median_time(validate_library)
    ceiling = median_time(parse_library)
    print(
        f"library ({len(files)} playbooks) warm: {warm * 1000:.1f} ms (target < 200 ms); "
        f"ceiling libyaml parse only: {ceiling * 1000:.1f} ms; ratio {warm / ceiling:.1f}x"
    )

    ir_cmd = [sys.executable, "-m", "ir", "validate", str(LIBRARY)]
    cold_ir = cold(ir_cmd)
    cold_bare = cold([sys.executable, "-c", "import yaml"])
    print(
        f"library cold `ir validate playbooks/`: {cold_ir * 1000:.0f} ms (target < 1000 ms); "
        f"ceiling `python -c 'import yaml'`: {cold_bare * 1000:.0f} ms"
    )

    text = big_playbook(5000)
    raw = text.encode()
    result = compile_source(raw, "big.yaml")
    assert result.ok, [str(p) for p in result.errors[:5]]
    big = median_time(lambda: compile_source(raw, "big.yaml"), 5)
    big_ceiling = median_time(lambda: yaml.load(raw, Loader=loader), 5)
    print(
        f"5,000-step playbook ({len(raw) / 1e6:.1f} MB) warm: {big * 1000:.0f} ms (target < 1000 ms); "
        f"ceiling libyaml parse only: {big_ceiling * 1000:.0f} ms; ratio {big / big_ceiling:.1f}x"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yaml"
        path.write_bytes(raw)
        rss = rss_of_validating(path)
    print(f"5,000-step playbook peak RSS: {rss / 2**20:.0f} MB (target < 200 MB)")

    bomb = alias_bomb()
    refused = compile_source(bomb, "bomb.yaml")
    assert refused.playbook is None
    bomb_time = median_time(lambda: compile_source(bomb, "bomb.yaml"), 21)
    small = (ROOT / "playbooks" / "attack" / "ddos.yaml").read_bytes()
    small_ceiling = median_time(lambda: yaml.load(small, Loader=loader), 21)
    print(
        f"alias bomb refused warm: {bomb_time * 1000:.2f} ms (target < 50 ms); "
        f"ceiling libyaml parse of one real playbook: {small_ceiling * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
