"""The runtime's subcommands: ``polybot demo``, ``polybot paper`` and ``polybot scan``.

Each handler parses nothing itself (``bot.cli`` does), runs one ``trio.run`` and maps the way it
ended to an exit code: 0 for a normal or signal-driven stop, 130 for a hard Ctrl-C, 1 for a crash
(logged with its traceback).
"""

from __future__ import annotations

import random
import sys
import time
import traceback
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING

import attrs
import httpx
import trio

from bot.app import VenueUrls, run_bot
from bot.core.backoff import Backoff
from bot.core.money import format_units
from bot.shell.discovery import ProgressPrinter, discover
from bot.shell.rest import RestClient
from bot.shell.signals import cancel_on_signals
from bot.sim.venue import open_sim_venue

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable

    from bot.config import Config, DiscoveryConfig, SimConfig
    from bot.core.universe import Universe

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_INTERRUPTED = 130


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``demo`` and ``paper``."""
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop by itself after S seconds (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no human log lines on stderr (the log file stays)"
    )
    parser.add_argument(
        "--status-interval",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between status lines (default 5)",
    )


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.add_argument("--seed", type=int, default=None, help="sim venue seed (default: config)")


def run_demo(args: argparse.Namespace, config: Config) -> int:
    """``polybot demo``: the whole bot against the sim venue started in this process."""
    sim = config.sim if args.seed is None else attrs.evolve(config.sim, seed=args.seed)
    start_epoch_ms = int(time.time() * 1000)  # read once, outside trio; the venue runs on it
    return _trio_main(partial(_demo, config, sim, start_epoch_ms, args))


def run_paper(args: argparse.Namespace, config: Config) -> int:
    """``polybot paper``: live Polymarket data; strategies decide on paper (no orders sent)."""
    urls = VenueUrls(config.venue.gamma_url, config.venue.clob_url, config.venue.ws_market_url)
    return _trio_main(partial(_run, config, urls, config.discovery, args))


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sim", action="store_true", help="scan the sim venue (started in-process) instead"
    )


def run_scan(args: argparse.Namespace, config: Config) -> int:
    """``polybot scan``: run discovery with the configured filters and print the markets."""
    return _trio_main(partial(_scan, config, args.sim))


def demo_discovery(discovery: DiscoveryConfig) -> DiscoveryConfig:
    """The demo trades the sim venue's whole universe: the liquidity, volume, end-date and
    keyword filters are for real markets, so they are relaxed (the market cap still applies)."""
    return attrs.evolve(
        discovery,
        keywords=(),
        tag_slugs=(),
        min_liquidity=Decimal(0),
        min_volume=Decimal(0),
        end_within_days=0,
    )


def _trio_main(main: Callable[[], Awaitable[None]]) -> int:
    code = EXIT_OK
    try:
        trio.run(main)
    except* KeyboardInterrupt:  # a second Ctrl-C: the hard stop (no return inside except*)
        code = EXIT_INTERRUPTED
    except* Exception as group:  # a crash: the whole tree stopped; say why, exit 1
        traceback.print_exception(group, file=sys.stderr)
        code = EXIT_CRASH
    return code


async def _run(
    config: Config, urls: VenueUrls, discovery: DiscoveryConfig, args: argparse.Namespace
) -> None:
    async with trio.open_nursery() as top:
        await top.start(cancel_on_signals, top.cancel_scope)
        if args.duration is not None:
            top.cancel_scope.deadline = trio.current_time() + args.duration
        await run_bot(
            config,
            urls,
            discovery=discovery,
            console=not args.quiet,
            status_interval_s=args.status_interval,
        )


async def _demo(
    config: Config, sim: SimConfig, start_epoch_ms: int, args: argparse.Namespace
) -> None:
    async with trio.open_nursery() as top:
        await top.start(cancel_on_signals, top.cancel_scope)
        if args.duration is not None:
            top.cancel_scope.deadline = trio.current_time() + args.duration
        async with open_sim_venue(sim, start_epoch_ms=start_epoch_ms) as venue:
            urls = VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url)
            print(f"sim venue: {venue.gamma_url} {venue.ws_market_url}", file=sys.stderr)
            await run_bot(
                config,
                urls,
                discovery=demo_discovery(config.discovery),
                console=not args.quiet,
                status_interval_s=args.status_interval,
            )


async def _scan(config: Config, use_sim: bool) -> None:
    if use_sim:
        async with open_sim_venue(config.sim, start_epoch_ms=int(time.time() * 1000)) as venue:
            urls = VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url)
            universe = await _discover(config, urls, demo_discovery(config.discovery))
    else:
        urls = VenueUrls(config.venue.gamma_url, config.venue.clob_url, config.venue.ws_market_url)
        universe = await _discover(config, urls, config.discovery)
    print(format_universe(universe))


async def _discover(config: Config, urls: VenueUrls, discovery: DiscoveryConfig) -> Universe:
    async with httpx.AsyncClient(timeout=config.venue.http_timeout_s) as client:
        rest = RestClient(
            client,
            gamma_url=urls.gamma_url,
            clob_url=urls.clob_url,
            backoff=Backoff(config.feed.reconnect_base_s, config.feed.reconnect_max_s),
            rng=random.Random(),
        )
        progress = ProgressPrinter()
        universe = await discover(rest, discovery, now=datetime.now(UTC), progress=progress)
        progress.finish()
        return universe


def format_universe(universe: Universe) -> str:
    """The discovered markets as a fixed-width table, events grouped, then skipped events."""
    rows = [("kind", "tick", "liquidity", "volume", "ends", "market")]
    for market in universe.markets:
        kind = "neg-risk" if market.neg_risk else "binary"
        ends = market.end_date.strftime("%Y-%m-%d") if market.end_date else "-"
        rows.append(
            (
                kind,
                format_units(market.tick_size),
                f"{market.liquidity:,.0f}",
                f"{market.volume:,.0f}",
                ends,
                market.question[:70],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i in (1, 2, 3) else cell.ljust(widths[i])
            for i, cell in enumerate(row[:5])
        )
        + "  "
        + row[5]
        for row in rows
    ]
    lines.append(
        f"{len(universe.markets)} markets, {len(universe.token_ids())} tokens, "
        f"{len(universe.neg_risk_events())} neg-risk events"
    )
    for skipped in universe.skipped:
        lines.append(f"skipped: {skipped}")
    return "\n".join(lines)
