"""The ``polybot`` command line: parse arguments, load the config, dispatch to a subcommand.

Subcommands live in ``COMMANDS`` (name -> ``Command``). Adding one takes a function that adds
its arguments, a handler ``(args, config) -> exit code`` and one entry in the registry. Every
subcommand gets the global ``--config PATH`` option and a validated ``Config``. Loguru is
configured by the subcommands that run the bot, never at import.

Exit codes (TRIO_IDIOMS.md section 8): 0 success, 1 crash, 2 invalid configuration or usage,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Final

import attrs

from bot import __version__
from bot.config import Config, ConfigError, SimConfig, load_config, resolve_config_path

__all__ = [
    "COMMANDS",
    "EXIT_CONFIG",
    "EXIT_CRASH",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "Command",
    "build_parser",
    "main",
]

EXIT_OK: Final = 0
EXIT_CRASH: Final = 1
EXIT_CONFIG: Final = 2
EXIT_INTERRUPTED: Final = 130


@attrs.frozen
class Command:
    """One subcommand.

    Attributes:
        help: One line for ``polybot --help``.
        add_arguments: Adds the subcommand's own options to its parser.
        run: The handler: parsed arguments and the validated config in, exit code out.
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Config], int]


# --------------------------------------------------------------------------------------------
# polybot config


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of TOML-style text")


def _run_config(args: argparse.Namespace, config: Config) -> int:
    data = config.redacted_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    source = resolve_config_path(args.config)
    origin = f"from {source}" if source is not None else "built-in defaults (no config.toml found)"
    print(f"# Effective polybot configuration: {origin}.")
    print(
        "# [secrets] comes from POLY_* environment variables, never from the file; values redacted."
    )
    print(_to_toml(data), end="")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# polybot sim

# (flag, [sim] or [sim.faults] key, type, help). Each flag overrides its config key.
_SIM_OPTIONS: Final[tuple[tuple[str, str, type, str], ...]] = (
    ("--port", "port", int, "TCP port on 127.0.0.1; 0 picks a free one"),
    ("--seed", "seed", int, "seed of the universe, the flow and the faults"),
    ("--events-per-second", "events_per_second", float, "model steps per second"),
    ("--opportunity-rate", "opportunity_rate", float, "opportunities injected per second"),
    (
        "--max-assets-per-connection",
        "max_assets_per_connection",
        int,
        "assets one WebSocket may subscribe to",
    ),
)
_FAULT_OPTIONS: Final[tuple[tuple[str, str, type, str], ...]] = (
    ("--drop-every", "drop_every_s", float, "close every WebSocket every S seconds (0: never)"),
    ("--malformed-rate", "malformed_rate", float, "chance of a malformed frame per data frame"),
    ("--duplicate-rate", "duplicate_rate", float, "chance a data frame is sent twice"),
    ("--reorder-rate", "reorder_rate", float, "chance a data frame is sent after the next one"),
    ("--latency-ms", "latency_ms", int, "delay every outgoing WebSocket frame by N ms"),
    ("--http-429-rate", "http_429_rate", float, "chance a REST request gets 429"),
    ("--http-425-rate", "http_425_rate", float, "chance a REST request gets 425"),
    ("--http-503-rate", "http_503_rate", float, "chance a REST request gets 503"),
    ("--http-403-rate", "http_403_rate", float, "chance a REST request gets Cloudflare's 403"),
    ("--retry-after", "retry_after_s", int, "Retry-After seconds on 429, 425 and 503"),
    ("--order-425-rate", "order_425_rate", float, "chance an order post gets 425"),
    ("--balance-reject-rate", "balance_reject_rate", float, "chance of a balance reject per order"),
    (
        "--timeout-after-fill-rate",
        "timeout_after_fill_rate",
        float,
        "chance a filled POST /order gets no answer",
    ),
)
_FAULT_SWITCHES: Final[tuple[tuple[str, str, str], ...]] = (
    ("--silent", "silent", "send no market data, still answer PING"),
    ("--stop-reading", "stop_reading", "stop reading client frames (PINGs unanswered)"),
)


_METAVARS: Final[Mapping[type, str]] = {int: "N", float: "X"}


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0 or max, got {text!r}")
    return value


def _add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve a local Polymarket on 127.0.0.1: Gamma REST under /gamma, CLOB REST at /, the "
        "market WebSocket at /ws/market. The first stdout line is a JSON object with gamma_url, "
        "clob_url and ws_market_url; then a status line goes to stderr every "
        "sim.status_interval_s seconds. Ctrl-C (SIGINT) or SIGTERM stops it (exit 0). Options "
        "override the [sim] and [sim.faults] config keys."
    )
    venue = parser.add_argument_group("venue")
    for flag, key, kind, text in _SIM_OPTIONS:
        venue.add_argument(
            flag, dest=f"sim_{key}", type=kind, default=None, metavar=_METAVARS[kind], help=text
        )
    venue.add_argument(
        "--assets",
        type=int,
        default=None,
        metavar="N",
        help="about N tokens: sets sim.binary_markets, keeping the configured events",
    )
    venue.add_argument(
        "--max-rate",
        dest="sim_max_rate",
        action="store_const",
        const=True,
        default=None,
        help="generate as fast as the slowest client reads (benchmarks)",
    )
    faults = parser.add_argument_group("faults")
    for flag, key, kind, text in _FAULT_OPTIONS:
        faults.add_argument(
            flag, dest=f"fault_{key}", type=kind, default=None, metavar=_METAVARS[kind], help=text
        )
    for flag, key, text in _FAULT_SWITCHES:
        faults.add_argument(
            flag, dest=f"fault_{key}", action="store_const", const=True, default=None, help=text
        )
    replay = parser.add_argument_group("replay")
    replay.add_argument(
        "--replay",
        type=Path,
        default=None,
        metavar="FILE",
        help="serve a recorded frame file (gzip JSON lines) on /ws/market instead of the model",
    )
    replay.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="X",
        help="replay speed: 1 real time, N times faster, or max (as fast as the client reads)",
    )


# Average tokens per generated event (bot.sim.universe: 10-11 brackets, 3-8 candidates).
_TOKENS_PER_TEMPERATURE_EVENT: Final = 21
_TOKENS_PER_ELECTION_EVENT: Final = 11


def _sim_config(args: argparse.Namespace, config: Config) -> SimConfig:
    """``config.sim`` with the command line applied.

    Raises:
        ValueError: A flag's value is out of range; the message names the flag.
    """
    sim = config.sim
    flags = {f"sim_{key}": flag for flag, key, _, _ in _SIM_OPTIONS}
    flags |= {f"fault_{key}": flag for flag, key, _, _ in _FAULT_OPTIONS}
    flags |= {f"fault_{key}": flag for flag, key, _ in _FAULT_SWITCHES}
    flags["sim_max_rate"] = "--max-rate"
    sim_changes: dict[str, Any] = {}
    fault_changes: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if value is None:
            continue
        if dest.startswith("sim_"):
            sim_changes[dest.removeprefix("sim_")] = value
        elif dest.startswith("fault_"):
            fault_changes[dest.removeprefix("fault_")] = value
    if args.assets is not None:
        if args.assets < 0:
            raise ValueError(f"--assets: expected an integer >= 0, got {args.assets}")
        events = (
            sim.temperature_events * _TOKENS_PER_TEMPERATURE_EVENT
            + sim.election_events * _TOKENS_PER_ELECTION_EVENT
        )
        sim_changes["binary_markets"] = max(0, (args.assets - events) // 2)
    try:
        faults = attrs.evolve(sim.faults, **fault_changes)
        return attrs.evolve(sim, faults=faults, **sim_changes)
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        flag = flags.get(f"fault_{key}") or flags.get(f"sim_{key}") or key
        raise ValueError(f"{flag}: {problem}") from None


def _run_sim(args: argparse.Namespace, config: Config) -> int:
    # Imported here: `polybot config` should not pay for trio, hypercorn and the sim model.
    import trio

    from bot.sim.replay import run_replay_standalone
    from bot.sim.venue import run_standalone

    try:
        sim = _sim_config(args, config)
    except ValueError as exc:
        print(f"polybot sim: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.replay is not None:
        if not args.replay.is_file():
            print(f"polybot sim: --replay: no such file: {args.replay}", file=sys.stderr)
            return EXIT_CONFIG
        entry = partial(run_replay_standalone, args.replay, speed=args.speed, port=sim.port)
    else:
        # The one wall-clock read: the venue's clock runs from it on trio.current_time().
        start_epoch_ms = int(time.time() * 1000)
        entry = partial(run_standalone, sim, start_epoch_ms=start_epoch_ms)
    code = EXIT_OK
    try:
        trio.run(entry)
    except* KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except* Exception as group:
        traceback.print_exception(group, file=sys.stderr)
        code = EXIT_CRASH
    return code


def _lazy(name: str, module: str = "bot.runtime_cli") -> Callable[..., Any]:
    """A handler from ``module``, imported on use (``polybot config`` stays light)."""

    def call(*args: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args)

    return call


COMMANDS: Final[Mapping[str, Command]] = {
    "config": Command(
        help="print the effective configuration (secrets redacted) or its errors",
        add_arguments=_add_config_arguments,
        run=_run_config,
    ),
    "sim": Command(
        help="serve the local sim venue (Gamma, CLOB REST, market WebSocket) until Ctrl-C",
        add_arguments=_add_sim_arguments,
        run=_run_sim,
    ),
    "demo": Command(
        help="the whole bot offline: the sim venue in-process as the data source",
        add_arguments=_lazy("add_demo_arguments"),
        run=_lazy("run_demo"),
    ),
    "paper": Command(
        help="the whole bot on live Polymarket data, deciding on paper (no orders are sent)",
        add_arguments=_lazy("add_run_arguments"),
        run=_lazy("run_paper"),
    ),
    "run": Command(
        help="trade for real: signed orders to Polymarket (keys + --confirm-live), "
        "or --venue sim for the same path against the sim venue",
        add_arguments=_lazy("add_live_arguments", "bot.live_cli"),
        run=_lazy("run_live", "bot.live_cli"),
    ),
    "doctor": Command(
        help="check keys, region, clock skew, auth, balances, a book and the user channel",
        add_arguments=_lazy("add_doctor_arguments", "bot.live_cli"),
        run=_lazy("run_doctor_command", "bot.live_cli"),
    ),
    "scan": Command(
        help="discover markets with the configured filters and print them as a table",
        add_arguments=_lazy("add_scan_arguments"),
        run=_lazy("run_scan"),
    ),
    "watch": Command(
        help="live top of book for a few markets in the terminal (--sim: the sim venue)",
        add_arguments=_lazy("add_watch_arguments"),
        run=_lazy("run_watch_command"),
    ),
    "record": Command(
        help="record every market-channel frame to a replayable gzip JSON-lines file",
        add_arguments=_lazy("add_record_arguments"),
        run=_lazy("run_record"),
    ),
    "replay": Command(
        help="run the whole bot on a recording and print its final health summary",
        add_arguments=_lazy("add_replay_arguments"),
        run=_lazy("run_replay"),
    ),
    "report": Command(
        help="PnL by strategy and market, fees, hit rate, drawdown; equity curve as a PNG",
        add_arguments=_lazy("add_report_arguments", "bot.report"),
        run=_lazy("run_report", "bot.report"),
    ),
}


# --------------------------------------------------------------------------------------------
# TOML-style output


_BARE_KEY_RE: Final = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY_RE.fullmatch(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(str(value), ensure_ascii=False)


def _to_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """Render plain data as TOML: scalars first, then one ``[table]`` per nested mapping."""
    lines = [
        f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, Mapping)
    ]
    text = "\n".join(lines) + "\n" if lines else ""
    for key, value in data.items():
        if isinstance(value, Mapping):
            name = f"{prefix}.{_toml_key(key)}" if prefix else _toml_key(key)
            text += f"\n[{name}]\n" + _to_toml(value, name)
    return text


# --------------------------------------------------------------------------------------------
# Parser and entry point


def build_parser() -> argparse.ArgumentParser:
    """The ``polybot`` parser with one subparser per entry in ``COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="polybot", description="A Trio trading bot for Polymarket."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    config_help = "config file (default: ./config.toml if present, else built-in defaults)"
    parser.add_argument("--config", type=Path, default=None, metavar="PATH", help=config_help)
    # Each subcommand accepts --config too; SUPPRESS keeps an absent one from resetting the
    # value given before the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS, metavar="PATH", help=config_help
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(
            name, parents=[common], help=command.help, description=command.help
        )
        command.add_arguments(sub)
    return parser


def _print_config_error(error: ConfigError) -> None:
    source = str(error.source) if error.source is not None else None
    named = source is None or all(line.startswith(source) for line in error.lines)
    where = "" if named else f" in {source}"
    print(f"polybot: invalid configuration{where}:", file=sys.stderr)
    for line in error.lines:
        print(f"  {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run ``polybot`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    ``--help``, ``--version`` and usage errors return argparse's code (0 or 2) instead of
    raising ``SystemExit``.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else 2)
    try:
        config = load_config(args.config, os.environ)
    except ConfigError as error:
        _print_config_error(error)
        return EXIT_CONFIG
    try:
        return COMMANDS[args.command].run(args, config)
    except BrokenPipeError:
        # The reader went away (``polybot config | head``): silence the flush at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CRASH
