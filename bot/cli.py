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
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from bot import __version__
from bot.config import Config, ConfigError, load_config, resolve_config_path

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


COMMANDS: Final[Mapping[str, Command]] = {
    "config": Command(
        help="print the effective configuration (secrets redacted) or its errors",
        add_arguments=_add_config_arguments,
        run=_run_config,
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
