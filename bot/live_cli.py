"""``polybot run`` (real orders) and ``polybot doctor`` (can this machine trade live?).

``run`` is the only command that spends money, so it refuses to start unless everything it needs
is there, and says exactly what is missing: the keys in the environment (``POLY_PRIVATE_KEY``,
and the API credentials all three or none) and ``--confirm-live``, the operator's explicit "yes,
real money". ``run --venue sim`` trades the same way (signed orders, the user channel, the
heartbeat, the shutdown cancel-all) against the sim venue started in this process, so the whole
live path can be exercised offline; with no ``POLY_PRIVATE_KEY`` it signs with a throwaway key
made for the run (the sim gives every valid key a demo balance).

``doctor`` runs ``bot.shell.doctor``'s checks against the configured venue (or ``--venue sim``)
and prints one line per check; it exits 0 when all pass, 1 otherwise.
"""

from __future__ import annotations

import secrets as token_source
import sys
import time
from functools import partial
from typing import TYPE_CHECKING

import attrs
import httpx
import trio
from loguru import logger

from bot.app import VenueUrls
from bot.config import Secret
from bot.runtime_cli import (
    _rest_client,
    _start_bot,
    _trio_main,
    add_run_arguments,
    demo_discovery,
)
from bot.shell.clob_trading import ALL_RATE_LIMITS
from bot.shell.credentials import missing_for_live
from bot.shell.doctor import render_checks, run_doctor
from bot.shell.signals import cancel_on_signals
from bot.shell.signer import OrderSigner
from bot.sim.venue import open_sim_venue

if TYPE_CHECKING:
    import argparse

    from bot.config import Config

__all__ = [
    "add_doctor_arguments",
    "add_live_arguments",
    "live_refusal",
    "run_doctor_command",
    "run_live",
]

CONFIRM_FLAG = "--confirm-live"


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.add_argument(
        "--venue",
        choices=("live", "sim"),
        default="live",
        help="live: Polymarket, real money (needs the keys and --confirm-live); sim: the sim "
        "venue started in this process, same signed-order path, no money (default live)",
    )
    parser.add_argument(
        CONFIRM_FLAG,
        action="store_true",
        help="confirm that you mean to trade real money (required with --venue live)",
    )


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--venue",
        choices=("live", "sim"),
        default="live",
        help="check Polymarket (default) or the sim venue started in this process",
    )


def live_refusal(config: Config, *, confirmed: bool) -> str | None:
    """Why ``run --venue live`` must not start (``None``: it may). Names what is missing, never
    a value."""
    problems = missing_for_live(config.secrets)
    if not confirmed:
        problems.append(f"{CONFIRM_FLAG} not given: it confirms you mean to trade real money")
    if not problems:
        return None
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"refusing to trade live:\n{lines}\n(`polybot doctor` checks the whole setup)"


def _with_sim_key(config: Config) -> Config:
    """The config with a throwaway signing key when the environment has none (sim only)."""
    if config.secrets.private_key is not None:
        return config
    key = Secret("0x" + token_source.token_hex(32))
    print(
        f"sim venue: signing with a throwaway wallet {OrderSigner(key).address} "
        "(set POLY_PRIVATE_KEY to use your own)",
        file=sys.stderr,
    )
    return attrs.evolve(config, secrets=attrs.evolve(config.secrets, private_key=key))


def live_journal(config: Config, venue: str) -> Config:
    """The config with the journal of live trading: ``journal-live.sqlite`` beside the paper
    one (``journal-sim.sqlite`` for the sim venue), so that paper, sim and real positions are
    never replayed into one another at start."""
    path = config.execution.journal
    journal = path.with_name(f"{path.stem}-{venue}{path.suffix}")
    return attrs.evolve(config, execution=attrs.evolve(config.execution, journal=journal))


def run_live(args: argparse.Namespace, config: Config) -> int:
    """``polybot run``: real signed orders, to Polymarket or (``--venue sim``) the sim venue."""
    config = live_journal(config, args.venue)
    if args.venue == "sim":
        config = _with_sim_key(config)
        start_epoch_ms = int(time.time() * 1000)
        return _trio_main(partial(_run_sim, config, start_epoch_ms, args), "polybot run")
    refusal = live_refusal(config, confirmed=args.confirm_live)
    if refusal is not None:
        print(f"polybot run: {refusal}", file=sys.stderr)
        return 2
    venue = config.venue
    urls = VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url, venue.ws_user_url)
    return _trio_main(partial(_run, config, urls, args), "polybot run")


async def _run(config: Config, urls: VenueUrls, args: argparse.Namespace) -> None:
    async with trio.open_nursery() as top:
        await top.start(cancel_on_signals, top.cancel_scope)
        if args.duration is not None:
            top.cancel_scope.deadline = trio.current_time() + args.duration
        await _start_bot(top, config, urls, config.discovery, args, live=True)


async def _run_sim(config: Config, start_epoch_ms: int, args: argparse.Namespace) -> None:
    async with open_sim_venue(config.sim, start_epoch_ms=start_epoch_ms) as venue:
        urls = VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url, venue.ws_user_url)
        print(f"sim venue: {venue.clob_url} (live trading path)", file=sys.stderr)
        # Signals and --duration stop the bot only: the venue must outlive it, so that the
        # bot's shutdown cancel-all still has someone to talk to.
        async with trio.open_nursery() as bot:
            await bot.start(cancel_on_signals, bot.cancel_scope)
            if args.duration is not None:
                bot.cancel_scope.deadline = trio.current_time() + args.duration
            discovery = demo_discovery(config.discovery)
            await _start_bot(bot, config, urls, discovery, args, live=True)


def run_doctor_command(args: argparse.Namespace, config: Config) -> int:
    """``polybot doctor``: one PASS/FAIL line per live-trading prerequisite."""
    if args.venue == "sim":
        config = _with_sim_key(config)
    logger.remove()  # the rendered lines say it all; the checks' log lines would repeat them
    ok = False

    async def main() -> None:
        nonlocal ok
        if args.venue == "sim":
            async with open_sim_venue(
                config.sim, start_epoch_ms=int(time.time() * 1000), pump=False
            ) as venue:
                urls = VenueUrls(
                    venue.gamma_url, venue.clob_url, venue.ws_market_url, venue.ws_user_url
                )
                ok = await _doctor(config, urls)
        else:
            venue_cfg = config.venue
            urls = VenueUrls(
                venue_cfg.gamma_url,
                venue_cfg.clob_url,
                venue_cfg.ws_market_url,
                venue_cfg.ws_user_url,
            )
            ok = await _doctor(config, urls)

    code = _trio_main(main, "polybot doctor")
    return code if code else (0 if ok else 1)


async def _doctor(config: Config, urls: VenueUrls) -> bool:
    async with httpx.AsyncClient(timeout=config.venue.http_timeout_s) as http:
        rest = _rest_client(config, urls, http, rate_limits=ALL_RATE_LIMITS)
        checks = await run_doctor(
            config, rest, ws_user_url=urls.ws_user_url, secrets=config.secrets
        )
    print(render_checks(checks))
    return all(check.ok for check in checks)
