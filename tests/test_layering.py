"""The pure core stays pure: no trio, no network, no logging sinks, no clock.

Two checks: a static one over the AST of every module under ``bot/core`` (catches an import even in
a branch that never runs), and a dynamic one that imports the whole core in a fresh interpreter and
looks at ``sys.modules`` (catches an I/O library pulled in transitively).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).parent.parent / "bot" / "core"

FORBIDDEN = {
    "trio",
    "trio_websocket",
    "trio_util",
    "httpx",
    "loguru",
    "websockets",
    "hypercorn",
    "asyncio",
    "socket",
    "threading",
    "time",
}

# The interpreter itself loads ``time`` and friends; the dynamic check looks for I/O libraries.
LOADED_FORBIDDEN = FORBIDDEN - {"time", "threading"}


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_there_is_a_core_to_check() -> None:
    assert len(core_modules()) >= 5


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_nothing_impure(path: Path) -> None:
    bad = imported_roots(path) & FORBIDDEN
    assert not bad, f"{path.relative_to(CORE.parent.parent)} imports {sorted(bad)}"
    source = path.read_text(encoding="utf-8")
    for clock in ("datetime.now(", "datetime.utcnow(", "date.today("):
        assert clock not in source, f"{path.name} reads the clock ({clock}); pass `now` in"


def test_importing_the_whole_core_pulls_in_no_io_library() -> None:
    modules = [
        "bot.core." + ".".join(p.relative_to(CORE).with_suffix("").parts)
        for p in core_modules()
        if p.name != "__init__.py"
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in {sorted(LOADED_FORBIDDEN)!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]", f"importing bot.core loaded {out}"
