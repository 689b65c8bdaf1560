"""The pytest plugin of polybot: the ``scenario`` fixture and the ``scenario`` marker.

Registered as an entry point (``[project.entry-points.pytest11] polybot``), so pytest loads it
wherever polybot is installed: a test asks for ``scenario`` and gets a running
``bot.testing.Scenario`` (the sim venue and the whole bot), configured by the keyword arguments
of ``bot.testing.open_scenario`` given to the marker::

    CONFIG = '''
    [strategies.momentum]
    plugin = "bot.examples.momentum:Momentum"
    '''

    @pytest.mark.scenario(config=CONFIG, strategies=["momentum"])
    async def test_buys_the_breakout(scenario: Scenario) -> None:
        ...

A test that uses the fixture runs with trio under pytest-trio's autojump clock, whether or not
``trio_mode`` is on and without asking for ``autojump_clock``: pytest-trio takes the clock only
from the test's own arguments, so the plugin marks such tests ``@pytest.mark.trio(run=...)`` with
a runner that supplies a ``MockClock(autojump_threshold=0)`` when the test brings no clock of its
own. The fixture writes the bot's log and journal to the test's ``tmp_path`` (unless the marker
passes ``directory``) and stops the bot and the venue after the test. It is a trio fixture, so
it needs pytest-trio.

Importing this module must stay cheap and must not fail: pytest imports it in every project
where polybot is installed, test suites that never use it included. So the bot is imported only
when the fixture runs, and without pytest-trio the fixture exists but fails with a clear
message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pytest
import trio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
    from pathlib import Path

    from bot.testing import Scenario

MARKER: Final = "scenario"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): options of polybot's `scenario` fixture, the keyword arguments "
        "of bot.testing.open_scenario (config, strategies, sim, pump, ...)",
    )


def autojump_run(
    fn: Callable[[], Awaitable[object]],
    *,
    clock: trio.abc.Clock | None = None,
    instruments: Sequence[trio.abc.Instrument] = (),
) -> object:
    """``trio.run`` with the autojump clock unless the test passed a clock fixture itself."""
    import trio.testing

    if clock is None:
        clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(fn, clock=clock, instruments=instruments)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every test using the ``scenario`` fixture with trio, in virtual time."""
    for item in items:
        if "scenario" not in getattr(item, "fixturenames", ()):
            continue
        custom = [
            m for m in item.iter_markers("trio") if m.kwargs.get("run") not in (None, trio.run)
        ]
        if not custom:  # a runner of the test's own (qtrio...) is left alone
            item.add_marker(pytest.mark.trio(run=autojump_run), append=False)


def scenario_options(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The marker's keyword arguments, with ``directory`` defaulting to ``tmp_path``."""
    marker = request.node.get_closest_marker(MARKER)
    options: dict[str, Any] = {}
    if marker is not None:
        if marker.args:
            raise TypeError(
                f"@pytest.mark.{MARKER} takes keyword arguments only "
                "(those of bot.testing.open_scenario)"
            )
        options.update(marker.kwargs)
    options.setdefault("directory", tmp_path)
    return options


try:
    import pytest_trio  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - exercised only without pytest-trio

    @pytest.fixture
    def scenario() -> None:
        """Needs pytest-trio."""
        pytest.fail("polybot's scenario fixture needs pytest-trio: pip install pytest-trio")

else:

    @pytest_trio.trio_fixture  # type: ignore[untyped-decorator]
    async def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Scenario]:
        """A running scenario (``bot.testing.open_scenario``), configured by
        ``@pytest.mark.scenario(...)``, in virtual time."""
        from bot.testing import open_scenario

        async with open_scenario(**scenario_options(request, tmp_path)) as running:
            yield running
