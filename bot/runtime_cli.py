"""The runtime's subcommands: ``demo``, ``paper``, ``scan``, ``watch``, ``record``, ``replay``.

Each handler parses nothing itself (``bot.cli`` does), runs one ``trio.run`` and maps the way it
ended to an exit code: 0 for a normal or signal-driven stop, 130 for a hard Ctrl-C, 2 for a
``CommandError`` (bad input the operator can fix; the message says what), 1 for a crash (logged
with its traceback).

``demo`` and ``paper`` run ``run_bot`` started with ``nursery.start`` in the top nursery, so the
handle comes back and the health outputs run beside the bot, in the same nursery, ending with it:
``logs/health.json`` rewritten every status interval, and with ``--health-port`` a loopback
``GET /health`` (``bot.shell.health_http``). ``watch`` and ``record`` need no strategies: they
run discovery and the feed only (``run_market_data``). ``replay`` is ``bot.playback``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import trio

from bot.app import BotHandle, VenueUrls, rest_client, run_bot
from bot.config import ConfigError
from bot.core.money import format_units
from bot.shell.bus import Bus
from bot.shell.discovery import ProgressPrinter, discover
from bot.shell.feed import MarketFeed
from bot.shell.health_http import encode_health, serve_health, write_health_file
from bot.shell.live_venue import LiveTradingRefused
from bot.shell.recorder import FrameRecorder
from bot.shell.rest import DEFAULT_RATE_LIMITS, RestClient
from bot.shell.signals import cancel_on_signals
from bot.shell.watch import run_watch
from bot.sim.venue import open_sim_venue

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping

    from bot.config import Config, DiscoveryConfig, SimConfig
    from bot.core.universe import Market, Universe
    from bot.playback import ReplayResult
    from bot.shell.rest import RateLimit

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """Input the operator can fix (a missing file, filters that match nothing): exit 2 with the
    message, no traceback."""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


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
        type=_positive,
        default=5.0,
        metavar="S",
        help="seconds between status lines and logs/health.json rewrites (default 5)",
    )
    parser.add_argument(
        "--health-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="answer GET /health with the health figures as JSON on 127.0.0.1:PORT "
        "(0 picks a free port, printed on stderr; default off)",
    )
    parser.add_argument(
        "--dashboard",
        choices=DASHBOARDS,
        default=None,
        help="the live dashboard: tui (the terminal; the default when stdout is one, and then "
        "the log lines go to the log file only), web (a page at http://127.0.0.1:5000/ by "
        "default, see [dashboard] in config.toml), or none (the default otherwise)",
    )
    parser.add_argument(
        "--dashboard-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="the web dashboard's port instead of dashboard.port (0 picks a free port)",
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


def _trio_main(main: Callable[[], Awaitable[None]], command: str = "polybot") -> int:
    code = EXIT_OK
    try:
        trio.run(main)
    except* KeyboardInterrupt:  # a second Ctrl-C: the hard stop (no return inside except*)
        code = EXIT_INTERRUPTED
    except* (CommandError, ConfigError, LiveTradingRefused) as group:  # the operator's to fix
        for error in _leaves(group):
            print(f"{command}: {error}", file=sys.stderr)
        code = EXIT_USAGE
    except* Exception as group:  # a crash: the whole tree stopped; say why, exit 1
        traceback.print_exception(group, file=sys.stderr)
        code = EXIT_CRASH
    return code


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    """The exceptions in ``group`` and its nested groups (each nursery level adds one)."""
    leaves: list[BaseException] = []
    for error in group.exceptions:
        leaves.extend(_leaves(error) if isinstance(error, BaseExceptionGroup) else [error])
    return leaves


async def _start_bot(
    top: trio.Nursery,
    config: Config,
    urls: VenueUrls,
    discovery: DiscoveryConfig,
    args: argparse.Namespace,
    *,
    live: bool = False,
) -> BotHandle:
    """``run_bot`` in ``top``, then the health outputs and the dashboard beside it (same
    nursery, same end). ``live``: real orders (``polybot run``), checked by the caller."""
    dashboard = choose_dashboard(args.dashboard, tty=sys.stdout.isatty())
    token = dashboard_token(config, os.environ) if dashboard == "web" else None
    handle: BotHandle = await top.start(
        partial(
            run_bot,
            config,
            urls,
            discovery=discovery,
            # The terminal dashboard owns the terminal: log lines would scribble over it.
            console=not args.quiet and dashboard != "tui",
            status_interval_s=args.status_interval,
            live=live,
        )
    )
    await top.start(
        write_health_file, handle.health, config.log.dir / "health.json", args.status_interval
    )
    if args.health_port is not None:
        port = await top.start(serve_health, handle.health, args.health_port)
        print(f"health: http://127.0.0.1:{port}/health", file=sys.stderr)
    await _start_dashboard(top, handle, config, dashboard, token, args)
    return handle


DASHBOARDS = ("tui", "web", "none")
"""The ``--dashboard`` choices."""


def choose_dashboard(choice: str | None, *, tty: bool) -> str:
    """The dashboard to run: ``choice``, or by default ``tui`` on a terminal, else ``none``."""
    if choice is not None:
        return choice
    return "tui" if tty else "none"


def dashboard_token(config: Config, env: Mapping[str, str]) -> str | None:
    """The web dashboard's control token: ``None`` (read-only) unless ``dashboard.control``.

    Raises:
        CommandError: control is enabled but the token's environment variable is unset or
            empty (a dashboard that silently stayed read-only would surprise its operator).
    """
    if not config.dashboard.control:
        return None
    name = config.dashboard.control_token_env
    token = env.get(name, "").strip()
    if not token:
        raise CommandError(
            f"dashboard.control is true but the environment variable {name} (the control "
            "token) is not set; set it, or set dashboard.control = false"
        )
    return token


async def _start_dashboard(
    top: trio.Nursery,
    handle: BotHandle,
    config: Config,
    dashboard: str,
    token: str | None,
    args: argparse.Namespace,
) -> None:
    cfg = config.dashboard
    if dashboard == "tui":
        # Imported here, like the web one: a bot without a dashboard does not load them.
        from bot.shell.dashboard_tui import run_tui

        await top.start(
            partial(run_tui, handle, sys.stdout, tty=sys.stdout.isatty(), refresh_s=cfg.refresh_s)
        )
    elif dashboard == "web":
        from bot.shell.dashboard_web import serve_dashboard

        if args.dashboard_port is not None:
            cfg = attrs.evolve(cfg, port=args.dashboard_port)
        url = await top.start(partial(serve_dashboard, handle, cfg, token=token))
        mode = "control enabled (bearer token)" if token is not None else "read-only"
        print(f"dashboard: {url} ({mode})", file=sys.stderr)


async def _run(
    config: Config, urls: VenueUrls, discovery: DiscoveryConfig, args: argparse.Namespace
) -> None:
    async with trio.open_nursery() as top:
        await top.start(cancel_on_signals, top.cancel_scope)
        if args.duration is not None:
            top.cancel_scope.deadline = trio.current_time() + args.duration
        await _start_bot(top, config, urls, discovery, args)


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
            # The venue must outlive the bot: an inner nursery, inside the venue's block.
            async with trio.open_nursery() as inner:
                await _start_bot(inner, config, urls, demo_discovery(config.discovery), args)


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
        rest = _rest_client(config, urls, client)
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


# --------------------------------------------------------------------------------------------
# Market data only: polybot watch and polybot record


@attrs.frozen
class MarketData:
    """What ``run_market_data`` hands back once the feed is live.

    Attributes:
        universe: Everything discovery found.
        markets: The markets followed (the first ``markets`` of the universe, or all of them).
        feed: The running feed (its books, its statistics).
        bus: Where the feed publishes; subscribe to watch it.
        urls: Where the venue is (the sim venue's loopback URLs with ``sim``).
    """

    universe: Universe
    markets: tuple[Market, ...]
    feed: MarketFeed
    bus: Bus[Any]
    urls: VenueUrls


async def run_market_data(
    config: Config,
    *,
    sim: SimConfig | None,
    keywords: tuple[str, ...] = (),
    markets: int | None = None,
    recorder: Callable[[float, str], None] | None = None,
    task_status: trio.TaskStatus[MarketData] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Discovery and the feed, no strategies, until cancelled; ``task_status.started(data)``.

    Args:
        config: The configuration (``discovery``, ``feed``, ``venue``).
        sim: Start the sim venue in process with these settings and use it (relaxed filters, as
            ``demo``); ``None``: the real venue of ``config.venue`` with ``config.discovery``.
        keywords: Replace the discovery keywords (any of them in the question, slug, ...).
        markets: Follow only the first N markets discovered.
        recorder: The feed's raw-frame callback (``FrameRecorder.offer``).

    Raises:
        CommandError: Discovery found no market.
    """
    async with trio.open_nursery() as nursery:
        if sim is not None:
            start_epoch_ms = int(time.time() * 1000)  # the venue's clock starts here
            venue = await nursery.start(_serve_sim, sim, start_epoch_ms)
            urls = VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url)
            discovery = demo_discovery(config.discovery)
        else:
            urls = VenueUrls(
                config.venue.gamma_url, config.venue.clob_url, config.venue.ws_market_url
            )
            discovery = config.discovery
        if keywords:
            discovery = attrs.evolve(discovery, keywords=keywords)
        client = httpx.AsyncClient(timeout=config.venue.http_timeout_s)
        nursery.start_soon(_close_at_exit, client)
        rest = _rest_client(config, urls, client)
        progress = ProgressPrinter()
        universe = await discover(rest, discovery, now=datetime.now(UTC), progress=progress)
        progress.finish()
        chosen = universe.markets[:markets] if markets is not None else universe.markets
        if not chosen:
            where = "the sim venue" if sim is not None else urls.gamma_url
            filters = f" matching {list(keywords)}" if keywords else ""
            raise CommandError(f"discovery found no market{filters} at {where}")
        bus: Bus[Any] = Bus()
        feed = MarketFeed(
            [token for market in chosen for token in market.token_ids],
            config.feed,
            ws_url=urls.ws_market_url,
            rest=rest,
            bus=bus,
            rng=random.Random(),
            recorder=recorder,
        )
        await nursery.start(feed.run)
        task_status.started(MarketData(universe, tuple(chosen), feed, bus, urls))


async def _serve_sim(
    sim: SimConfig, start_epoch_ms: int, *, task_status: trio.TaskStatus[Any]
) -> None:
    async with open_sim_venue(sim, start_epoch_ms=start_epoch_ms) as venue:
        task_status.started(venue)
        await trio.sleep_forever()


async def _close_at_exit(client: httpx.AsyncClient) -> None:
    try:
        await trio.sleep_forever()
    finally:
        with trio.move_on_after(1, shield=True):
            await client.aclose()


def _rest_client(
    config: Config,
    urls: VenueUrls,
    client: httpx.AsyncClient,
    *,
    rate_limits: Iterable[RateLimit] = DEFAULT_RATE_LIMITS,
) -> RestClient:
    """``bot.app.rest_client`` with a fresh jitter source (one-shot commands)."""
    return rest_client(config, urls, client, random.Random(), rate_limits=rate_limits)


def _add_source_arguments(parser: argparse.ArgumentParser, markets_default: int | None) -> None:
    """``--sim``, ``--seed``, ``--keyword``, ``--markets``, ``--duration``: watch and record."""
    parser.add_argument(
        "--sim", action="store_true", help="use the sim venue started in-process (as demo)"
    )
    parser.add_argument("--seed", type=int, default=None, help="sim venue seed (default: config)")
    parser.add_argument(
        "--keyword",
        action="append",
        default=[],
        metavar="TEXT",
        help="only markets whose question, slug or event mentions TEXT (repeatable: any of them)",
    )
    default = f"default {markets_default}" if markets_default else "default: all discovered"
    parser.add_argument(
        "--markets",
        type=_count,
        default=markets_default,
        metavar="N",
        help=f"follow the first N markets discovery ranks highest ({default})",
    )
    parser.add_argument(
        "--duration",
        type=_positive,
        default=None,
        metavar="S",
        help="stop by itself after S seconds (default: run until Ctrl-C)",
    )


def _sim_for(args: argparse.Namespace, config: Config) -> SimConfig | None:
    if not args.sim:
        return None
    return config.sim if args.seed is None else attrs.evolve(config.sim, seed=args.seed)


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Live top of book for a few markets: bid, ask, their sizes, the spread, the age of the "
        "last update and a STALE flag, redrawn in place on a terminal (at most --refresh times "
        "a second); when stdout is not a terminal, plain snapshot lines every --interval "
        "seconds. Ctrl-C stops it (exit 0)."
    )
    _add_source_arguments(parser, markets_default=5)
    parser.add_argument(
        "--refresh",
        type=_positive,
        default=4.0,
        metavar="X",
        help="at most X terminal redraws per second (default 4)",
    )
    parser.add_argument(
        "--interval",
        type=_positive,
        default=1.0,
        metavar="S",
        help="seconds between snapshot blocks when stdout is not a terminal (default 1)",
    )


def run_watch_command(args: argparse.Namespace, config: Config) -> int:
    """``polybot watch``: the top of book of a few markets, live."""
    return _trio_main(partial(_watch, config, args), "polybot watch")


async def _watch(config: Config, args: argparse.Namespace) -> None:
    out = sys.stdout
    async with trio.open_nursery() as top:
        await top.start(cancel_on_signals, top.cancel_scope)
        if args.duration is not None:
            top.cancel_scope.deadline = trio.current_time() + args.duration
        data: MarketData = await top.start(
            partial(
                run_market_data,
                config,
                sim=_sim_for(args, config),
                keywords=tuple(args.keyword),
                markets=args.markets,
            )
        )
        subscription = data.bus.subscribe("watch", max_pending=10_000)
        await top.start(
            partial(
                run_watch,
                data.markets,
                subscription,
                out,
                tty=out.isatty(),
                max_redraws_per_s=args.refresh,
                snapshot_interval_s=args.interval,
            )
        )


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Record the market channel: discovery and the feed (live, or --sim), every raw frame "
        "with its receive time written to FILE as gzip JSON lines ({t_ms, frame}), the format "
        "polybot replay and polybot sim --replay read. Frames are written off the event loop; "
        "if the disk falls behind, frames are dropped and the count is printed. Ctrl-C or "
        "--duration stops it; the file is flushed and closed either way."
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="the recording to write"
    )
    _add_source_arguments(parser, markets_default=None)


def run_record(args: argparse.Namespace, config: Config) -> int:
    """``polybot record --out FILE``: write every received frame to a replayable recording."""
    out: Path = args.out
    if not out.parent.is_dir():
        print(f"polybot record: --out: no such directory: {out.parent}", file=sys.stderr)
        return EXIT_USAGE
    return _trio_main(partial(_record, config, args, out), "polybot record")


async def _record(config: Config, args: argparse.Namespace, out: Path) -> None:
    recorder = FrameRecorder(
        out,
        epoch_ms=int(time.time() * 1000),
        trio_now=trio.current_time(),
        final_flush_timeout_s=config.shutdown.grace_s,
    )
    async with trio.open_nursery() as top:
        # The writer outlives the feed: it ends on close(), after the last frame was offered.
        await top.start(recorder.run)
        try:
            async with trio.open_nursery() as app:
                await app.start(cancel_on_signals, app.cancel_scope)
                if args.duration is not None:
                    app.cancel_scope.deadline = trio.current_time() + args.duration
                data: MarketData = await app.start(
                    partial(
                        run_market_data,
                        config,
                        sim=_sim_for(args, config),
                        keywords=tuple(args.keyword),
                        markets=args.markets,
                        recorder=recorder.offer,
                    )
                )
                print(
                    f"recording {len(data.markets)} markets "
                    f"({len(data.markets) * 2} tokens) from {data.urls.ws_market_url} to {out}",
                    file=sys.stderr,
                )
        finally:
            recorder.close()
    stats = recorder.statistics()
    line = f"recorded {stats.written} frames to {out}"
    if stats.dropped:
        line += f"; {stats.dropped} frames DROPPED (the disk fell behind): the recording has gaps"
    print(line)


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the whole bot (feed, books, bus, strategies, paper execution) on a recording: the "
        "frames are served over the market WebSocket from 127.0.0.1, REST discovery answers "
        "with the recorded markets (the sim venue, in-process), and the bot stops when the "
        "recording is done, printing the final health summary."
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="a recording (polybot record)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        metavar="X",
        help="replay X times real speed (default 1: real time)",
    )
    pace.add_argument(
        "--max", action="store_true", help="replay as fast as the bot reads the frames"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="sim seed a --sim recording was made with (default: config); finds its universe",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the final health figures as JSON instead"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no human log lines on stderr (the log file stays)"
    )


def run_replay(args: argparse.Namespace, config: Config) -> int:
    """``polybot replay FILE``: the whole bot on a recording, then its health summary."""
    path: Path = args.file
    if not path.is_file():
        print(f"polybot replay: no such file: {path}", file=sys.stderr)
        return EXIT_USAGE
    if args.seed is not None:
        config = attrs.evolve(config, sim=attrs.evolve(config.sim, seed=args.seed))
    # A fresh journal per replay: it neither resumes nor pollutes a paper run's positions.
    with tempfile.TemporaryDirectory(prefix="polybot-replay-") as scratch:
        journal = Path(scratch) / "journal.sqlite"
        return _trio_main(partial(_replay, config, args, path, journal), "polybot replay")


async def _replay(config: Config, args: argparse.Namespace, path: Path, journal: Path) -> None:
    # Imported here: bot.playback imports this module (demo_discovery).
    from bot.playback import NothingToReplay, replay_recording, summary_lines
    from bot.sim.replay import read_recording

    try:
        frames = await trio.to_thread.run_sync(read_recording, path)
    except (OSError, EOFError, ValueError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from exc
    if not frames:
        raise CommandError(f"{path} holds no frames")
    # A list, not a variable set in the nursery: a Ctrl-C leaves it empty, and mypy cannot see
    # that an assignment inside a cancellable block may never happen.
    results: list[ReplayResult] = []
    async with trio.open_nursery() as top:
        await top.start(cancel_on_signals, top.cancel_scope)
        try:
            result = await replay_recording(
                config,
                frames,
                speed=None if args.max else args.speed,
                journal_path=journal,
                console=not args.quiet,
            )
        except NothingToReplay as exc:
            raise CommandError(str(exc)) from exc
        results.append(result)
        top.cancel_scope.cancel(reason="replay finished")
    if not results:
        print("replay interrupted before the end of the recording", file=sys.stderr)
    elif args.json:
        print(encode_health(results[0].health).decode())
    else:
        print("\n".join(summary_lines(results[0])))
