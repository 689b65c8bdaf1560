"""The whole bot inside a test: config pieces, the bot on a sim venue, polling, captured logs.

Small pieces that compose; each test keeps its own settings (markets, strategies, rates) and
builds on these for what every such test needs alike. Real sockets (the sim venue over
loopback), so these run on the real clock (TRIO_IDIOMS.md section 7) with bounded waits.
"""

from __future__ import annotations

import contextlib
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Final

import attrs
import trio
from loguru import logger

from bot.app import BotHandle, VenueUrls, run_bot
from bot.config import Config, LogLevel
from bot.runtime_cli import demo_discovery

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Collection, Iterator
    from pathlib import Path

    from bot.sim.venue import SimVenue

START_MS: Final = 1_790_000_000_000
"""The sim venue's clock at the start of these tests."""

STRATEGIES: Final = ("complement_arb", "neg_risk_arb", "market_making", "forecast_taker")
"""The built-in strategies ``enable_only`` switches."""


def log_and_journal_in(cfg: Config, directory: Path) -> Config:
    """``cfg`` with its JSON log (at INFO) and its journal in ``directory``, so nothing a test
    writes lands in the working tree and each test has its own."""
    return attrs.evolve(
        cfg,
        log=attrs.evolve(cfg.log, dir=directory, level=LogLevel.INFO),
        execution=attrs.evolve(cfg.execution, journal=directory / "journal.sqlite"),
    )


def fast_feed(cfg: Config) -> Config:
    """``cfg`` with a feed that pings, calls a silence and reconnects within a second, so a
    frozen or dropped feed shows within a test's short waits."""
    feed = attrs.evolve(
        cfg.feed,
        ping_interval_s=0.1,
        silence_timeout_s=0.5,
        reconnect_base_s=0.02,
        reconnect_max_s=0.2,
    )
    return attrs.evolve(cfg, feed=feed)


def enable_only(cfg: Config, names: Collection[str]) -> Config:
    """``cfg`` with only the built-in strategies in ``names`` enabled (none when it is empty)."""
    unknown = set(names) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"not a built-in strategy: {sorted(unknown)}")
    switched = {
        name: attrs.evolve(getattr(cfg.strategies, name), enabled=name in names)
        for name in STRATEGIES
    }
    return attrs.evolve(cfg, strategies=attrs.evolve(cfg.strategies, **switched))


def venue_urls(venue: SimVenue) -> VenueUrls:
    """Where the bot finds the sim venue's public side (paper trading: no user channel)."""
    return VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url)


@asynccontextmanager
async def running_bot(
    cfg: Config,
    venue: SimVenue,
    *,
    status_interval_s: float = 5.0,
    log_path: Path | None = None,
) -> AsyncIterator[BotHandle]:
    """The whole bot on paper against ``venue`` (every sim market discovered), yielded once it
    runs and stopped (cancelled, as SIGINT does) when the block ends."""
    async with trio.open_nursery() as nursery:
        handle: BotHandle = await nursery.start(
            partial(
                run_bot,
                cfg,
                venue_urls(venue),
                discovery=demo_discovery(cfg.discovery),
                console=False,
                log_path=log_path,
                status_interval_s=status_interval_s,
            )
        )
        yield handle
        nursery.cancel_scope.cancel()


async def wait_until(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Poll ``condition`` (state owned by other tasks: there is no event to wait on) until it
    holds; fail after ``limit_s``."""
    with trio.fail_after(limit_s):
        while not condition():  # noqa: ASYNC110 -- polling state owned by other tasks
            await trio.sleep(0.02)


@contextlib.contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every loguru line (DEBUG and up, extras included) while the block runs, for asserting
    what was said and that no secret was."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message} {extra}")
    try:
        yield lines
    finally:
        with contextlib.suppress(ValueError):  # run_bot removes every sink as it stops
            logger.remove(sink)
