"""A small demo bot (sim venue + ``run_bot``) for the dashboard tests.

Real sockets (the sim venue, hypercorn): these tests run on the real clock (TRIO_IDIOMS.md 7).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import attrs
import trio

from bot.app import BotHandle, VenueUrls, run_bot
from bot.config import Config, LogLevel
from bot.runtime_cli import demo_discovery
from bot.sim.venue import open_sim_venue

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

START_MS = 1_790_000_000_000


def dashboard_config(tmp_path: Path) -> Config:
    """Every strategy on a small sim universe with frequent opportunities; a fast dashboard."""
    cfg = Config()
    return attrs.evolve(
        cfg,
        sim=attrs.evolve(
            cfg.sim,
            binary_markets=8,
            temperature_events=1,
            election_events=1,
            events_per_second=300,
            opportunity_rate=3.0,
        ),
        log=attrs.evolve(cfg.log, dir=tmp_path, level=LogLevel.INFO),
        execution=attrs.evolve(cfg.execution, journal=tmp_path / "journal.sqlite"),
        dashboard=attrs.evolve(cfg.dashboard, port=0, refresh_s=0.2),
    )


@asynccontextmanager
async def running_demo(cfg: Config) -> AsyncIterator[BotHandle]:
    """The sim venue and the whole bot on it, stopped when the block ends."""
    async with open_sim_venue(cfg.sim, start_epoch_ms=START_MS) as venue:
        urls = VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url)
        async with trio.open_nursery() as nursery:
            handle: BotHandle = await nursery.start(
                partial(
                    run_bot,
                    cfg,
                    urls,
                    discovery=demo_discovery(cfg.discovery),
                    console=False,
                    status_interval_s=5.0,
                )
            )
            yield handle
            nursery.cancel_scope.cancel()


async def wait_until(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Poll ``condition`` (state owned by other tasks) until it holds; fail after ``limit_s``."""
    with trio.fail_after(limit_s):
        while not condition():  # noqa: ASYNC110 - polling counters other tasks own
            await trio.sleep(0.05)
