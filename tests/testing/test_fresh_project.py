"""A project outside this repository, with polybot installed and nothing else set up, writes a
strategy of its own and tests it with the ``scenario`` fixture: pytest finds the fixture
through the installed package's entry point, and the tests pass.

The package is built and installed the way a user gets it (``pip install``, from a copy of the
sources, so the build never writes into the repository) into a fresh virtual environment that
borrows this environment's dependencies (trio, pytest, pytest-trio...) through a ``.pth`` file
instead of downloading them: only polybot itself is installed, ``--no-deps``. The project has no
pytest configuration at all (no ``trio_mode``): the plugin runs scenario tests with trio.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

STRATEGY = '''
"""A user's strategy: buy once when the mid falls to ``below``."""

from decimal import Decimal

import attrs

from bot.config import money_setting
from bot.core.money import Side, from_decimal
from bot.core.trading import Decision, OrderType, Place, Strategy


class DipBuyer(Strategy):
    @attrs.frozen
    class Settings:
        below: Decimal = money_setting("0.46")
        size: Decimal = money_setting("10")

    def __init__(self, universe, settings):
        self.token = universe.binary_markets()[0].yes.token_id
        self.below = from_decimal(settings.below)
        self.size = from_decimal(settings.size)
        self.done = False

    def on_books(self, ctx, changed):
        view = ctx.usable(self.token)
        if self.done or view is None or view.best_bid is None or view.best_ask is None:
            return []
        mid = (view.best_bid.price + view.best_ask.price) // 2
        if mid > self.below:
            return []
        self.done = True
        ask = view.best_ask.price
        return [
            Decision(self.name, "dip", self.token, {"mid": str(mid)}),
            Place(self.token, Side.BUY, ask, self.size, OrderType.FAK),
        ]
'''

TESTS = '''
"""Scenario tests of my own strategy, with polybot's fixture and nothing else."""

import sys
from pathlib import Path

import pytest

import bot
from bot.testing import Scenario

CONFIG = """
[strategies.dip_buyer]
plugin = "my_strategies:DipBuyer"
below = "0.46"
"""

pytestmark = pytest.mark.scenario(config=CONFIG, strategies=["dip_buyer"])


async def test_a_dip_is_bought(scenario: Scenario) -> None:
    yes = scenario.market(0).yes.token_id
    await scenario.set_book(yes, bids=[("0.50", "100")], asks=[("0.52", "100")])
    await scenario.move_price(yes, "0.45")
    fill = await scenario.wait_for_fill("dip_buyer", within=5)
    assert fill.price == 460_000
    assert scenario.position(yes, "dip_buyer") == fill.size == 10_000_000
    assert [d.kind for d in scenario.decisions("dip_buyer")] == ["dip"]


async def test_a_rise_is_not_bought(scenario: Scenario) -> None:
    yes = scenario.market(0).yes.token_id
    await scenario.set_book(yes, bids=[("0.50", "100")], asks=[("0.52", "100")])
    await scenario.move_price(yes, "0.60")
    await scenario.advance(10)
    assert scenario.intents("dip_buyer") == []


def test_polybot_comes_from_the_installed_package() -> None:
    assert Path(bot.__file__).is_relative_to(Path(sys.prefix)), bot.__file__
'''


def _dependency_dirs() -> list[str]:
    """Where this environment's packages are (not the repository: ``bot`` must come from the
    fresh install)."""
    return [
        entry
        for entry in sys.path
        if Path(entry).name in ("site-packages", "dist-packages") and Path(entry).is_dir()
    ]


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_a_fresh_project_tests_its_own_strategy_with_the_installed_fixture(
    tmp_path: Path,
) -> None:
    source = tmp_path / "polybot-src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "bot", source / "bot", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            tmp_path,
            60,
        ).stdout.strip()
    )
    (site / "_polybot_test_dependencies.pth").write_text("\n".join(_dependency_dirs()) + "\n")

    installed = _run(
        [str(python), "-m", "pip", "install", "--no-deps", "--quiet", str(source)], tmp_path, 300
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    project = tmp_path / "my-project"
    project.mkdir()
    (project / "my_strategies.py").write_text(textwrap.dedent(STRATEGY))
    (project / "test_my_strategies.py").write_text(textwrap.dedent(TESTS))
    result = _run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        project,
        300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout, result.stdout
