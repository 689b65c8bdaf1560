"""A small demo bot (sim venue + ``run_bot``) for the dashboard tests.

Real sockets (the sim venue, hypercorn): these tests run on the real clock (TRIO_IDIOMS.md 7).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs

from bot.config import Config
from bot.sim.venue import open_sim_venue
from tests.bot_helpers import START_MS, log_and_journal_in, running_bot, wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from bot.app import BotHandle

__all__ = ["dashboard_config", "running_demo", "wait_until"]


def dashboard_config(tmp_path: Path) -> Config:
    """Every strategy on a small sim universe with frequent opportunities; a fast dashboard."""
    cfg = log_and_journal_in(Config(), tmp_path)
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
        dashboard=attrs.evolve(cfg.dashboard, port=0, refresh_s=0.2),
    )


@asynccontextmanager
async def running_demo(cfg: Config) -> AsyncIterator[BotHandle]:
    """The sim venue and the whole bot on it, stopped when the block ends."""
    async with (
        open_sim_venue(cfg.sim, start_epoch_ms=START_MS) as venue,
        running_bot(cfg, venue) as handle,
    ):
        yield handle
