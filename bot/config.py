"""Validated configuration: a frozen attrs tree structured from ``config.toml`` and the environment.

The file holds tuning only; secrets come from ``POLY_*`` environment variables and never from
the file. Loading is strict and explains itself:

* every key is checked (unknown keys are rejected at every level, with their full dotted path);
* numbers are range-checked, enums must be spelled exactly, money is parsed exactly (TOML floats
  are read as ``Decimal`` from their source text, never through binary ``float``);
* *all* problems are collected into one ``ConfigError`` whose ``lines`` read like
  ``feed.ping_interval_s: expected a number > 0, got "abc"``.

The class defaults are the built-in defaults and equal the shipped ``config.toml`` (a test holds
them together), so ``polybot`` runs without a config file.

Adding a key: add an attrs field with a default (use the ``_int``/``_real``/... helpers to attach
its range), document it in ``config.toml`` with the same default. Adding a strategy: add a frozen
class for its block and a field on ``StrategiesConfig`` (see its docstring).
"""

from __future__ import annotations

import difflib
import hmac
import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from enum import Enum, IntEnum, StrEnum
from pathlib import Path
from typing import Any, Final, Generic, NoReturn, TypeVar, final, get_args, get_origin
from urllib.parse import urlsplit

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, override

from bot.core.money import DECIMALS, from_decimal

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "NOT_SET",
    "REDACTED",
    "RESERVED_STRATEGY_NAMES",
    "SECRET_ENV_VARS",
    "STRATEGY_NAME_RE",
    "AlertFormat",
    "AlertsConfig",
    "ArbOrderType",
    "ComplementArbConfig",
    "Config",
    "ConfigError",
    "CoordinationConfig",
    "CrashConfig",
    "DashboardConfig",
    "DiscoveryConfig",
    "ExecutionConfig",
    "FeedConfig",
    "ForecastProvider",
    "ForecastTakerConfig",
    "LogConfig",
    "LogLevel",
    "MarketKind",
    "MarketMakingConfig",
    "NegRiskArbConfig",
    "PluginStrategyConfig",
    "RiskConfig",
    "Secret",
    "Secrets",
    "ShutdownConfig",
    "SignatureType",
    "SimConfig",
    "SimFaultsConfig",
    "StrategiesConfig",
    "Transport",
    "VenueConfig",
    "int_setting",
    "load_config",
    "make_converter",
    "money_setting",
    "number_setting",
    "parse_config",
    "probability_setting",
    "resolve_config_path",
    "words_setting",
]

T = TypeVar("T")

DEFAULT_CONFIG_PATH: Final = Path("config.toml")
"""Looked up in the working directory when no ``--config`` is given."""

REDACTED: Final = "<set, redacted>"
NOT_SET: Final = "<not set>"

_CHECK: Final = "polybot_check"
_FROM_ENV: Final = "polybot_from_env"


class ConfigError(Exception):
    """The configuration (file or environment) is invalid.

    Attributes:
        lines: One human-readable line per problem, e.g.
            ``feed.bogus: unknown key``. Never contains a secret value.
        source: The config file the problems were found in, or ``None`` for the built-in
            defaults and the environment.
    """

    def __init__(self, lines: Sequence[str], *, source: Path | None = None) -> None:
        self.lines = list(lines)
        self.source = source
        super().__init__("\n".join(self.lines))


# --------------------------------------------------------------------------------------------
# Enums


class Transport(StrEnum):
    """WebSocket client library for the market and user feeds."""

    TRIO_WEBSOCKET = "trio-websocket"
    WEBSOCKETS = "websockets"


class MarketKind(StrEnum):
    """Which markets discovery keeps: plain binary, negative-risk (multi-outcome) or both."""

    BINARY = "binary"
    NEG_RISK = "neg_risk"
    BOTH = "both"


class LogLevel(StrEnum):
    """Loguru level names, lowest first."""

    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class SignatureType(IntEnum):
    """Order signature type (PROTOCOL.md section 6.2); ``POLY_SIGNATURE_TYPE`` holds the number."""

    EOA = 0
    POLY_PROXY = 1
    POLY_GNOSIS_SAFE = 2
    POLY_1271 = 3


# --------------------------------------------------------------------------------------------
# Validation errors raised inside hooks; ``_error_lines`` turns them into ``ConfigError`` lines.


def _show(value: object, limit: int = 60) -> str:
    """Render a config value the way it would be spelled in TOML, shortened."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= limit else text[: limit - 4] + '..."'
    if isinstance(value, Decimal) and not value.is_finite():
        return "nan" if value.is_nan() else ("-inf" if value < 0 else "inf")
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        shown = ", ".join(_show(item, 20) for item in value[:4])
        return f"[{shown}, ...]" if len(value) > 4 else f"[{shown}]"
    return str(value)


class _Invalid(ValueError):
    """A value that is not what its key expects; ``str`` reads ``expected X, got Y``."""

    def __init__(self, expected: str, value: object, *, key: str = "") -> None:
        self.expected = expected
        self.value = value
        self.key = key
        super().__init__(self.line(key))

    def line(self, path: str) -> str:
        prefix = f"{path}: " if path else ""
        return f"{prefix}expected {self.expected}, got {_show(self.value)}"


class _ItemErrors(ValueError):
    """Errors for individual list items, by index."""

    def __init__(self, errors: list[tuple[int, Exception]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"[{i}]: {exc}" for i, exc in errors))


class _RelationError(ValueError):
    """Keys that are fine alone but contradict each other: ``(key, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems))


def _raise_relations(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise _RelationError(problems)


class _KeyedErrors(ValueError):
    """Errors found under several keys of one table: ``(key, error)``, ``None`` for the table
    itself (how a ``[strategies]`` table reports its built-in blocks and its plugin blocks)."""

    def __init__(self, errors: list[tuple[str | None, BaseException]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{key or '.'}: {exc}" for key, exc in errors))


class _Problem(ValueError):
    """A key that is wrong as a whole (not a type or a range): the message is the line."""


# --------------------------------------------------------------------------------------------
# Field checks: one object is both the cattrs structure hook (type + range, one message) and
# the attrs validator (so ``FeedConfig(ping_interval_s=0)`` fails too).


class _Check(Generic[T]):
    expected: str

    def convert(self, value: object) -> T:
        """Return the typed value or raise ``_Invalid``."""
        raise NotImplementedError

    def structure(self, value: object, _type: object) -> T:
        return self.convert(value)

    def __call__(self, _inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        try:
            self.convert(value)
        except _Invalid as exc:
            raise _Invalid(exc.expected, exc.value, key=attribute.name) from None


def _fmt(number: float) -> str:
    return f"{number:g}"


@final
class _Int(_Check[int]):
    def __init__(self, ge: int, le: int | None = None) -> None:
        self.ge, self.le = ge, le
        self.expected = f"an integer from {ge} to {le}" if le is not None else f"an integer >= {ge}"

    def convert(self, value: object) -> int:
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value >= self.ge
            and (self.le is None or value <= self.le)
        ):
            return value
        raise _Invalid(self.expected, value)


def _as_real(value: object) -> float | None:
    """``value`` as a finite float if it is a number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@final
class _Real(_Check[float]):
    """A finite number (seconds, rates); ints and TOML floats are accepted."""

    def __init__(
        self, *, gt: float | None = None, ge: float | None = None, le: float | None = None
    ) -> None:
        self.gt, self.ge, self.le = gt, ge, le
        if gt is not None:
            self.expected = f"a number > {_fmt(gt)}"
        elif le is not None:
            self.expected = f"a number from {_fmt(ge or 0)} to {_fmt(le)}"
        else:
            self.expected = f"a number >= {_fmt(ge or 0)}"

    def convert(self, value: object) -> float:
        number = _as_real(value)
        if number is not None and (
            (self.gt is None or number > self.gt)
            and (self.ge is None or number >= self.ge)
            and (self.le is None or number <= self.le)
        ):
            return number
        raise _Invalid(self.expected, value)


def _as_decimal(value: object) -> Decimal | None:
    """An exact, finite ``Decimal`` from a string, int, Decimal or float (via ``repr``)."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, str | int):
            number = Decimal(value)
        elif isinstance(value, float):
            # Only reached for plain-data callers: TOML floats already arrive as Decimal.
            number = Decimal(repr(value))
        else:
            return None
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


@final
class _Money(_Check[Decimal]):
    """A non-negative USD amount, exact, with at most six decimals (convertible to micro-units)."""

    expected = f"a decimal amount >= 0 with at most {DECIMALS} decimals"

    def convert(self, value: object) -> Decimal:
        number = _as_decimal(value)
        if number is not None and number >= 0:
            try:
                from_decimal(number)
            except ValueError:
                pass
            else:
                return number
        raise _Invalid(self.expected, value)


@final
class _Url(_Check[str]):
    def __init__(self, *schemes: str) -> None:
        self.schemes = schemes
        self.expected = "a URL starting with " + " or ".join(f'"{s}://"' for s in schemes)

    def convert(self, value: object) -> str:
        if isinstance(value, str):
            try:
                parts = urlsplit(value)
            except ValueError:
                parts = None
            if parts is not None and parts.scheme in self.schemes and parts.netloc:
                return value
        raise _Invalid(self.expected, value)


@final
class _Words(_Check[tuple[str, ...]]):
    """A list of non-empty strings (keywords, slugs), kept as a tuple."""

    expected = "a list of strings"

    def convert(self, value: object) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            raise _Invalid(self.expected, value)
        errors: list[tuple[int, Exception]] = [
            (index, _Invalid("a non-empty string", item))
            for index, item in enumerate(value)
            if not isinstance(item, str) or not item.strip()
        ]
        if errors:
            raise _ItemErrors(errors)
        return tuple(value)


_ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@final
class _EnvName(_Check[str]):
    """The name of an environment variable (not its value: that is read where it is used)."""

    expected = "an environment variable name (letters, digits and _, not starting with a digit)"

    def convert(self, value: object) -> str:
        if isinstance(value, str) and _ENV_NAME_RE.fullmatch(value):
            return value
        raise _Invalid(self.expected, value)


def _env_name(default: str) -> str:
    check = _EnvName()
    return attrs.field(default=default, validator=check, metadata={_CHECK: check})


def _int(default: int, ge: int, le: int | None = None) -> int:
    check = _Int(ge, le)
    return attrs.field(default=default, validator=check, metadata={_CHECK: check})


def _real(
    default: float, *, gt: float | None = None, ge: float | None = None, le: float | None = None
) -> float:
    check = _Real(gt=gt, ge=ge, le=le)
    return attrs.field(default=default, validator=check, metadata={_CHECK: check})


def _rate(default: float = 0.0) -> float:
    """A probability: a number from 0 to 1."""
    return _real(default, ge=0, le=1)


def _money(default: str) -> Decimal:
    check = _Money()
    return attrs.field(default=Decimal(default), validator=check, metadata={_CHECK: check})


def _url(default: str, *schemes: str) -> str:
    check = _Url(*schemes)
    return attrs.field(default=default, validator=check, metadata={_CHECK: check})


def _words() -> tuple[str, ...]:
    check = _Words()
    return attrs.field(default=(), validator=check, metadata={_CHECK: check})


_HTTP = ("https", "http")
_WS = ("wss", "ws")


# The same checks for the ``Settings`` class of a strategy plugin (``bot.plugins``): a field
# declared with one of these is validated like the built-in keys, with the same messages.


def int_setting(default: int, *, ge: int, le: int | None = None) -> int:
    """An integer setting from ``ge`` to ``le`` (no upper bound when ``le`` is ``None``)."""
    return _int(default, ge, le)


def number_setting(
    default: float, *, gt: float | None = None, ge: float | None = None, le: float | None = None
) -> float:
    """A finite number setting (seconds, factors); ints and TOML floats are accepted."""
    return _real(default, gt=gt, ge=ge, le=le)


def probability_setting(default: float = 0.0) -> float:
    """A number from 0 to 1."""
    return _rate(default)


def money_setting(default: str) -> Decimal:
    """A non-negative exact decimal (USD, shares, prices) with at most six decimals; convert it
    with ``bot.core.money.from_decimal``. The default is a decimal string (``"0.03"``)."""
    return _money(default)


def words_setting() -> tuple[str, ...]:
    """A list of non-empty strings (condition ids, keywords), kept as a tuple; default empty."""
    return _words()


# --------------------------------------------------------------------------------------------
# The configuration tree. Units are in the key names: ``_s`` seconds, ``_bytes`` bytes.


@attrs.frozen
class VenueConfig:
    """Polymarket endpoints (PROTOCOL.md section 0). Point them at the local sim for tests."""

    gamma_url: str = _url("https://gamma-api.polymarket.com", *_HTTP)
    clob_url: str = _url("https://clob.polymarket.com", *_HTTP)
    ws_market_url: str = _url("wss://ws-subscriptions-clob.polymarket.com/ws/market", *_WS)
    ws_user_url: str = _url("wss://ws-subscriptions-clob.polymarket.com/ws/user", *_WS)
    http_timeout_s: float = _real(10.0, gt=0)


@attrs.frozen
class FeedConfig:
    """The market-data WebSocket sessions: sharding, heartbeat, watchdog, reconnects."""

    assets_per_socket: int = _int(200, 1, 500)
    subscribe_batch_size: int = _int(100, 1, 500)
    ping_interval_s: float = _real(10.0, gt=0)
    silence_timeout_s: float = _real(30.0, gt=0)
    reconnect_base_s: float = _real(1.0, gt=0)
    reconnect_max_s: float = _real(30.0, gt=0)
    restart_budget: int = _int(10, 1)
    restart_window_s: float = _real(300.0, gt=0)
    rest_fallback_after_s: float = _real(15.0, ge=0)
    rest_fallback_interval_s: float = _real(5.0, gt=0)
    transport: Transport = Transport.TRIO_WEBSOCKET
    receive_buffer_bytes: int = _int(65_536, 1_024, 16 * 2**20)
    max_message_bytes: int = _int(16 * 2**20, 65_536, 2**30)
    custom_features: bool = True

    def __attrs_post_init__(self) -> None:
        problems = []
        if self.silence_timeout_s <= self.ping_interval_s:
            problems.append(
                (
                    "silence_timeout_s",
                    f"expected a number > feed.ping_interval_s ({_fmt(self.ping_interval_s)}), "
                    f"got {_fmt(self.silence_timeout_s)}",
                )
            )
        if self.reconnect_max_s < self.reconnect_base_s:
            problems.append(
                (
                    "reconnect_max_s",
                    f"expected a number >= feed.reconnect_base_s ({_fmt(self.reconnect_base_s)}), "
                    f"got {_fmt(self.reconnect_max_s)}",
                )
            )
        _raise_relations(problems)


@attrs.frozen
class DiscoveryConfig:
    """Which markets to trade, chosen from Gamma."""

    keywords: tuple[str, ...] = _words()
    tag_slugs: tuple[str, ...] = _words()
    # RUF009 is suppressed: ruff does not know that Decimal is immutable.
    min_liquidity: Decimal = _money("1000")  # noqa: RUF009
    min_volume: Decimal = _money("10000")  # noqa: RUF009
    end_within_days: int = _int(30, 0)
    kind: MarketKind = MarketKind.BOTH
    max_markets: int = _int(100, 1)
    skip_incomplete_events: bool = True


@attrs.frozen
class LogConfig:
    """The bounded log pipeline and its files."""

    dir: Path = Path("logs")
    level: LogLevel = LogLevel.INFO
    queue_size: int = _int(10_000, 1)
    batch_max: int = _int(256, 1)

    def __attrs_post_init__(self) -> None:
        if self.batch_max > self.queue_size:
            _raise_relations(
                [
                    (
                        "batch_max",
                        f"expected an integer <= log.queue_size ({self.queue_size}), "
                        f"got {self.batch_max}",
                    )
                ]
            )


@attrs.frozen
class ShutdownConfig:
    """Graceful-stop policy."""

    grace_s: float = _real(5.0, gt=0)


class ForecastProvider(StrEnum):
    """Where the forecast taker gets its temperature forecasts."""

    AUTO = "auto"
    """The sim venue's when the venue is on loopback (demo, tests), else Open-Meteo."""
    SIM = "sim"
    OPEN_METEO = "open_meteo"


class ArbOrderType(StrEnum):
    """How the legs of an arbitrage are sent: all-or-nothing per leg, or take what is there."""

    FOK = "FOK"
    FAK = "FAK"


@attrs.frozen
class CrashConfig:
    """What happens to a strategy whose code raises."""

    restart: bool = True
    max_restarts: int = _int(5, 0)


@attrs.frozen
class ComplementArbConfig:
    """Sum-to-one arbitrage on binary markets: buy YES and NO for less than 1 after fees."""

    enabled: bool = True
    min_edge: Decimal = _money("0.002")  # noqa: RUF009
    max_shares: Decimal = _money("200")  # noqa: RUF009
    order_type: ArbOrderType = ArbOrderType.FOK
    cooldown_s: float = _real(1.0, ge=0)


@attrs.frozen
class NegRiskArbConfig:
    """Multi-outcome arbitrage on complete neg-risk events."""

    enabled: bool = True
    min_edge: Decimal = _money("0.002")  # noqa: RUF009
    max_shares: Decimal = _money("200")  # noqa: RUF009
    order_type: ArbOrderType = ArbOrderType.FOK
    debounce_s: float = _real(0.1, ge=0)
    cooldown_s: float = _real(1.0, ge=0)
    trade_no_side: bool = True


@attrs.frozen
class MarketMakingConfig:
    """Two-sided quotes around a fair price, skewed by inventory."""

    enabled: bool = True
    markets: tuple[str, ...] = _words()
    max_markets: int = _int(3, 0)
    quote_size: Decimal = _money("20")  # noqa: RUF009
    half_spread_ticks: int = _int(2, 1)
    inventory_limit: Decimal = _money("100")  # noqa: RUF009
    skew_ticks: int = _int(3, 0)
    requote_ticks: int = _int(1, 0)


@attrs.frozen
class ForecastTakerConfig:
    """Position-taking on temperature ladders from a weather forecast."""

    enabled: bool = True
    provider: ForecastProvider = ForecastProvider.AUTO
    open_meteo_url: str = _url("https://api.open-meteo.com/v1/forecast", *_HTTP)
    refresh_s: float = _real(300.0, gt=0)
    forecast_sd_c: float = _real(1.5, gt=0)
    min_edge: Decimal = _money("0.05")  # noqa: RUF009
    kelly_fraction: float = _real(0.25, gt=0, le=1)
    bankroll: Decimal = _money("1000")  # noqa: RUF009
    max_shares: Decimal = _money("100")  # noqa: RUF009
    cooldown_s: float = _real(5.0, ge=0)


@attrs.frozen
class CoordinationConfig:
    """Cross-strategy coordination through one shared inventory view."""

    inventory_bonus: Decimal = _money("0.002")  # noqa: RUF009


STRATEGY_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
"""A strategy's name (its ``[strategies.<name>]`` key): it tags orders, fills, log lines and the
journal, so it is kept to lowercase letters, digits and ``_``."""

RESERVED_STRATEGY_NAMES: Final = frozenset({"execution", "risk"})
"""Names the runtime uses for itself (the execution task's bus subscription, the kill switch's
decisions); a plugin may not take them."""

_DOTTED: Final = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_PLUGIN_PATH_RE: Final = re.compile(f"{_DOTTED}:{_DOTTED}")
_PLUGINS: Final = "polybot_plugins"


@final
class _StrategyName(_Check[str]):
    expected = "a strategy name: a lowercase letter, then lowercase letters, digits or _"

    def convert(self, value: object) -> str:
        if isinstance(value, str) and STRATEGY_NAME_RE.fullmatch(value):
            if value in RESERVED_STRATEGY_NAMES:
                raise _Invalid(f"a name other than {_show(value)} (reserved)", value)
            return value
        raise _Invalid(self.expected, value)


@final
class _PluginPath(_Check[str]):
    expected = 'the strategy class as "package.module:Class"'

    def convert(self, value: object) -> str:
        if isinstance(value, str) and _PLUGIN_PATH_RE.fullmatch(value):
            return value
        raise _Invalid(self.expected, value)


@attrs.frozen
class PluginStrategyConfig:
    """A strategy from your own code: a ``[strategies.<name>]`` block with a ``plugin`` key.

    ::

        [strategies.momentum]
        plugin = "bot.examples.momentum:Momentum"   # module:Class, importable
        enabled = true                              # optional, default true
        trigger = "0.03"                            # the class's own settings

    Everything but ``plugin`` and ``enabled`` is structured into the class's ``Settings`` (an
    attrs class with a default for every field) by the same strict converter as the built-in
    blocks, so an unknown key, a wrong type or an out-of-range value is reported as
    ``strategies.momentum.<key>: ...`` (``bot.plugins`` has the strategy interface).

    Attributes:
        name: the block's key; the strategy's name in orders, fills, logs and the journal.
        plugin: where the class is, ``"package.module:Class"``.
        enabled: whether it runs.
        settings: an instance of the class's ``Settings`` (``None``: its defaults, or no
            settings for a class without ``Settings``).
    """

    name: str = attrs.field(validator=_StrategyName())
    plugin: str = attrs.field(validator=_PluginPath())
    enabled: bool = True
    settings: Any = None


@attrs.frozen
class StrategiesConfig:
    """Per-strategy blocks, one ``[strategies.<name>]`` table each.

    A built-in strategy has a frozen class with defaults for every key and a field here (the
    converter picks it up: unknown keys and ranges are checked the same way, ``config.toml``
    documents it) and an entry in ``bot.plugins.BUILTIN_STRATEGIES``. Any other block is a plugin
    strategy (``PluginStrategyConfig``, in ``plugins``, in file order); a block that is neither
    (no ``plugin`` key) is an unknown key.
    """

    crash: CrashConfig = attrs.field(factory=CrashConfig)
    complement_arb: ComplementArbConfig = attrs.field(factory=ComplementArbConfig)
    neg_risk_arb: NegRiskArbConfig = attrs.field(factory=NegRiskArbConfig)
    market_making: MarketMakingConfig = attrs.field(factory=MarketMakingConfig)
    forecast_taker: ForecastTakerConfig = attrs.field(factory=ForecastTakerConfig)
    coordination: CoordinationConfig = attrs.field(factory=CoordinationConfig)
    plugins: tuple[PluginStrategyConfig, ...] = attrs.field(default=(), metadata={_PLUGINS: True})
    """Strategies from outside the package, in file order (not a key of its own in the file:
    each is a ``[strategies.<name>]`` block)."""

    def plugin(self, name: str) -> PluginStrategyConfig:
        """The plugin block ``name``; ``KeyError`` if there is none."""
        for block in self.plugins:
            if block.name == name:
                return block
        raise KeyError(name)


@attrs.frozen
class RiskConfig:
    """Pre-trade checks every intent passes; the reason for every rejection is logged."""

    max_position_shares: Decimal = _money("1000")  # noqa: RUF009
    max_total_exposure: Decimal = _money("5000")  # noqa: RUF009
    max_order_notional: Decimal = _money("500")  # noqa: RUF009
    max_orders_per_s: float = _real(50.0, gt=0)
    daily_loss_limit: Decimal = _money("200")  # noqa: RUF009


@attrs.frozen
class ExecutionConfig:
    """Order handling and the journal."""

    journal: Path = Path("logs/journal.sqlite")
    unwind_partial_baskets: bool = True


@final
class _Host(_Check[str]):
    """A host name or IP address to bind (no scheme, port or path)."""

    expected = 'a host name or IP address such as "127.0.0.1"'

    def convert(self, value: object) -> str:
        if isinstance(value, str) and value and not any(c in value for c in " /\t\n@?#"):
            return value
        raise _Invalid(self.expected, value)


@attrs.frozen
class DashboardConfig:
    """The live dashboards (``--dashboard tui`` or ``web``): where the web one listens, how
    often both refresh, and whether the web one accepts control actions.

    Control (pause, resume, cancel-all over ``POST``) is off unless ``control`` is true *and*
    the environment variable named by ``control_token_env`` holds the bearer token: the token
    is a secret, so it never goes in the file.
    """

    host: str = attrs.field(default="127.0.0.1", validator=_Host(), metadata={_CHECK: _Host()})
    port: int = _int(5000, 0, 65_535)
    refresh_s: float = _real(1.0, gt=0)
    history_points: int = _int(600, 2, 100_000)
    control: bool = False
    control_token_env: str = _env_name("POLYBOT_DASHBOARD_TOKEN")


class AlertFormat(StrEnum):
    """The JSON shape of a webhook alert (``bot.shell.alerts``)."""

    JSON = "json"
    """Generic: ``{"kind", "severity", "title", "detail", "fields", "repeats", ...}``."""
    DISCORD = "discord"
    """A Discord webhook: ``{"content": text}``."""
    SLACK = "slack"
    """A Slack incoming webhook: ``{"text": text}``."""
    TELEGRAM = "telegram"
    """A Telegram bridge (e.g. the Bot API's ``sendMessage``): ``{"chat_id", "text"}``."""


@attrs.frozen
class AlertsConfig:
    """Webhook alerts: kill switch, frozen feeds, reconnect storms, rejects, start and stop.

    The webhook URL often carries a token (Discord, Slack, Telegram), so it is a secret: it is
    read from the environment variable named by ``url_env``, never from the file, and never
    logged.
    """

    enabled: bool = False
    url_env: str = _env_name("POLYBOT_ALERT_WEBHOOK_URL")
    format: AlertFormat = AlertFormat.JSON
    chat_id: str = ""
    dedup_s: float = _real(300.0, ge=0)
    max_per_minute: int = _int(10, 1)
    reconnect_storm_count: int = _int(5, 1)
    reconnect_storm_window_s: float = _real(60.0, gt=0)
    poll_s: float = _real(1.0, gt=0)
    timeout_s: float = _real(5.0, gt=0)
    queue_size: int = _int(100, 1)

    def __attrs_post_init__(self) -> None:
        if self.format is AlertFormat.TELEGRAM and not self.chat_id.strip():
            _raise_relations(
                [("chat_id", 'expected a non-empty chat id when alerts.format is "telegram"')]
            )


@attrs.frozen
class SimFaultsConfig:
    """Faults the sim venue injects from the start (``polybot sim`` flags override them).

    The running venue copies these into a mutable ``bot.sim.faults.Faults`` that tests flip while
    it serves (``venue.faults.silent = True``).
    """

    drop_every_s: float = _real(0.0, ge=0)
    silent: bool = False
    stop_reading: bool = False
    malformed_rate: float = _rate()
    duplicate_rate: float = _rate()
    reorder_rate: float = _rate()
    latency_ms: int = _int(0, 0, 60_000)
    http_429_rate: float = _rate()
    http_425_rate: float = _rate()
    http_503_rate: float = _rate()
    http_403_rate: float = _rate()
    retry_after_s: int = _int(1, 0, 3_600)
    order_425_rate: float = _rate()
    balance_reject_rate: float = _rate()
    timeout_after_fill_rate: float = _rate()

    def __attrs_post_init__(self) -> None:
        total = self.http_429_rate + self.http_425_rate + self.http_503_rate + self.http_403_rate
        if total > 1:
            _raise_relations(
                [
                    (
                        "http_403_rate",
                        "expected http_429_rate + http_425_rate + http_503_rate + http_403_rate "
                        f"<= 1, got {_fmt(total)}",
                    )
                ]
            )


@attrs.frozen
class SimConfig:
    """The local sim venue (``polybot sim``, scenario tests, benchmarks): size, flow and limits."""

    port: int = _int(0, 0, 65_535)
    seed: int = _int(1, 0)
    binary_markets: int = _int(40, 0)
    temperature_events: int = _int(2, 0)
    election_events: int = _int(2, 0)
    events_per_second: float = _real(200.0, ge=0)
    max_rate: bool = False
    opportunity_rate: float = _real(0.2, ge=0)
    opportunity_lifetime_ms: int = _int(2_000, 1)
    pump_interval_ms: int = _int(10, 1, 1_000)
    max_assets_per_connection: int = _int(500, 1)
    outbox_frames: int = _int(256, 1)
    subscribe_timeout_s: float = _real(10.0, gt=0)
    status_interval_s: float = _real(5.0, gt=0)
    clob_page_size: int = _int(100, 1, 1_000)
    demo_balance: Decimal = _money("10000")  # noqa: RUF009
    heartbeat_timeout_s: float = _real(10.0, gt=0)
    faults: SimFaultsConfig = attrs.field(factory=SimFaultsConfig)


@final
class Secret:
    """A secret string whose ``repr``/``str``/``format`` never show it; use ``reveal()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: call this only where it is sent or signed."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('<redacted>')"

    def __str__(self) -> str:
        return "<redacted>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> NoReturn:
        # Pickling (e.g. a loguru ``enqueue=True`` record) would carry the value off-process.
        raise TypeError("Secret values cannot be pickled")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, _memo: object) -> Secret:
        return self


SECRET_ENV_VARS: Final[Mapping[str, str]] = {
    "private_key": "POLY_PRIVATE_KEY",
    "api_key": "POLY_API_KEY",
    "api_secret": "POLY_API_SECRET",
    "api_passphrase": "POLY_API_PASSPHRASE",
    "funder": "POLY_FUNDER",
    "signature_type": "POLY_SIGNATURE_TYPE",
}
"""``Secrets`` field -> the environment variable it is read from."""

_PRIVATE_KEY_RE: Final = re.compile(r"(0x)?[0-9a-fA-F]{64}")
_ADDRESS_RE: Final = re.compile(r"0x[0-9a-fA-F]{40}")


@attrs.frozen
class Secrets:
    """Credentials, read only from the environment (``from_env``); all optional until trading.

    An empty or blank variable counts as not set. Values are never echoed in errors.
    """

    private_key: Secret | None = None
    api_key: Secret | None = None
    api_secret: Secret | None = None
    api_passphrase: Secret | None = None
    funder: Secret | None = None
    signature_type: SignatureType | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Secrets:
        """Read the ``POLY_*`` variables.

        Raises:
            ConfigError: A variable is malformed; the message names it but not its value.
        """
        raw = {name: env.get(var, "").strip() for name, var in SECRET_ENV_VARS.items()}
        lines: list[str] = []

        def bad(name: str, expected: str) -> None:
            lines.append(f"{SECRET_ENV_VARS[name]}: expected {expected} (value not shown)")

        if raw["private_key"] and not _PRIVATE_KEY_RE.fullmatch(raw["private_key"]):
            bad("private_key", "64 hex digits, optionally prefixed with 0x")
        if raw["funder"] and not _ADDRESS_RE.fullmatch(raw["funder"]):
            bad("funder", "an address: 0x and 40 hex digits")
        signature_type = None
        if raw["signature_type"]:
            text = raw["signature_type"]
            if text in {"0", "1", "2", "3"}:
                signature_type = SignatureType(int(text))
            else:
                kinds = ", ".join(f"{t.value} {t.name}" for t in SignatureType)
                bad("signature_type", f"an integer from 0 to 3 ({kinds})")
        if lines:
            raise ConfigError(lines)

        def secret(name: str) -> Secret | None:
            return Secret(raw[name]) if raw[name] else None

        return cls(
            private_key=secret("private_key"),
            api_key=secret("api_key"),
            api_secret=secret("api_secret"),
            api_passphrase=secret("api_passphrase"),
            funder=secret("funder"),
            signature_type=signature_type,
        )

    def redacted(self) -> dict[str, str | int]:
        """``{ENV_VAR: "<set, redacted>" | "<not set>"}``; the signature type is shown as is."""
        out: dict[str, str | int] = {}
        for name, var in SECRET_ENV_VARS.items():
            value = getattr(self, name)
            if isinstance(value, SignatureType):
                out[var] = int(value)
            else:
                out[var] = NOT_SET if value is None else REDACTED
        return out


@attrs.frozen
class Config:
    """The whole configuration: one frozen value passed to ``app.run``.

    ``Config()`` is the built-in default and equals the shipped ``config.toml``.
    """

    venue: VenueConfig = attrs.field(factory=VenueConfig)
    feed: FeedConfig = attrs.field(factory=FeedConfig)
    discovery: DiscoveryConfig = attrs.field(factory=DiscoveryConfig)
    log: LogConfig = attrs.field(factory=LogConfig)
    shutdown: ShutdownConfig = attrs.field(factory=ShutdownConfig)
    strategies: StrategiesConfig = attrs.field(factory=StrategiesConfig)
    risk: RiskConfig = attrs.field(factory=RiskConfig)
    execution: ExecutionConfig = attrs.field(factory=ExecutionConfig)
    dashboard: DashboardConfig = attrs.field(factory=DashboardConfig)
    alerts: AlertsConfig = attrs.field(factory=AlertsConfig)
    sim: SimConfig = attrs.field(factory=SimConfig)
    secrets: Secrets = attrs.field(factory=Secrets, metadata={_FROM_ENV: True})

    def redacted_dict(self) -> dict[str, Any]:
        """The effective configuration as plain data (str/int/float/bool/list/dict).

        Decimals and paths become strings; ``secrets`` maps each ``POLY_*`` variable to
        ``"<set, redacted>"`` or ``"<not set>"``.
        """
        data: dict[str, Any] = make_converter().unstructure(self)
        return data


# --------------------------------------------------------------------------------------------
# The converter


def _structure_int(value: object, _type: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _Invalid("an integer", value)


def _structure_float(value: object, _type: object) -> float:
    number = _as_real(value)
    if number is None:
        raise _Invalid("a number", value)
    return number


def _structure_str(value: object, _type: object) -> str:
    if isinstance(value, str):
        return value
    raise _Invalid("a string", value)


def _structure_bool(value: object, _type: object) -> bool:
    if isinstance(value, bool):
        return value
    raise _Invalid("true or false", value)


def _structure_decimal(value: object, _type: object) -> Decimal:
    number = _as_decimal(value)
    if number is None:
        raise _Invalid("a decimal number", value)
    return number


def _structure_path(value: object, _type: object) -> Path:
    if isinstance(value, str) and value.strip():
        return Path(value)
    raise _Invalid("a non-empty path string", value)


def _enum_value(member: Enum) -> Any:
    return member.value


def _structure_enum(value: object, cl: type[Enum]) -> Enum:
    if isinstance(value, str):
        for member in cl:
            if member.value == value:
                return member
    raise _Invalid("one of " + ", ".join(json.dumps(member.value) for member in cl), value)


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = get_args(tp)
    return get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_hook(
    tp: Any, converter: cattrs.Converter
) -> Callable[[object, object], tuple[Any, ...]]:
    item_type = get_args(tp)[0]

    def structure(value: object, _type: object) -> tuple[Any, ...]:
        # A bare string would otherwise be split into characters.
        if not isinstance(value, list | tuple):
            raise _Invalid("a list", value)
        items: list[Any] = []
        errors: list[tuple[int, Exception]] = []
        for index, item in enumerate(value):
            try:
                items.append(converter.structure(item, item_type))
            except Exception as exc:
                errors.append((index, exc))
        if errors:
            raise _ItemErrors(errors)
        return tuple(items)

    return structure


def _attrs_hook(cl: type[Any], converter: cattrs.Converter) -> Callable[[object, object], Any]:
    overrides: dict[str, Any] = {}
    for field in attrs.fields(cl):
        check = field.metadata.get(_CHECK)
        if field.metadata.get(_FROM_ENV) or field.metadata.get(_PLUGINS):
            overrides[field.name] = override(omit=True)
        elif check is not None:
            overrides[field.name] = override(struct_hook=check.structure)
    generated = make_dict_structure_fn(cl, converter, _cattrs_forbid_extra_keys=True, **overrides)

    def structure(value: object, _type: object) -> Any:
        if not isinstance(value, Mapping):
            raise _Invalid("a table", value)
        return generated(value, cl)

    return structure


def _unknown_strategy(name: str) -> _Problem:
    builtin = [f.name for f in attrs.fields(StrategiesConfig) if not f.metadata.get(_PLUGINS)]
    close = difflib.get_close_matches(name, builtin, n=1, cutoff=0.75)
    if close:
        return _Problem(f'unknown key (did you mean "{close[0]}"?)')
    return _Problem('unknown key (a strategy of your own needs plugin = "module:Class")')


def _structure_plugin(
    name: str, block: object, converter: cattrs.Converter, plugin_dirs: Sequence[Path]
) -> PluginStrategyConfig:
    """One ``[strategies.<name>]`` block that is not a built-in one: a plugin strategy.

    Its class is imported here, so a missing module or class is a configuration error (reported
    by ``polybot config``), not a crash at start-up.
    """
    if not isinstance(block, Mapping) or "plugin" not in block:
        raise _unknown_strategy(name)
    errors: list[tuple[str | None, BaseException]] = []
    try:
        _StrategyName().convert(name)
    except _Invalid as exc:
        errors.append((None, exc))
    enabled = True
    try:
        enabled = _structure_bool(block.get("enabled", True), bool)
    except _Invalid as exc:
        errors.append(("enabled", exc))
    path: str | None = None
    try:
        path = _PluginPath().convert(block["plugin"])
    except _Invalid as exc:
        errors.append(("plugin", exc))
    settings: Any = None
    if path is not None:
        from bot.plugins import (  # here: bot.plugins imports this module
            PluginError,
            load_strategy_class,
            settings_type,
        )

        rest = {key: value for key, value in block.items() if key not in ("plugin", "enabled")}
        try:
            kind = settings_type(load_strategy_class(path, search=plugin_dirs))
        except PluginError as exc:
            errors.append(("plugin", _Problem(str(exc))))
        else:
            if kind is None:
                errors.extend(
                    (key, _Problem(f"unknown key ({path} takes no settings)")) for key in rest
                )
            else:
                try:
                    settings = converter.structure(rest, kind)
                except Exception as exc:
                    errors.append((None, exc))
    if errors:
        raise _KeyedErrors(errors)
    assert path is not None
    return PluginStrategyConfig(name, path, enabled, settings)


def _strategies_structure(
    converter: cattrs.Converter, plugin_dirs: Sequence[Path]
) -> Callable[[object, object], StrategiesConfig]:
    """``[strategies]``: the built-in blocks as attrs fields, every other block a plugin."""
    builtin = frozenset(
        f.name for f in attrs.fields(StrategiesConfig) if not f.metadata.get(_PLUGINS)
    )
    base = _attrs_hook(StrategiesConfig, converter)

    def structure(value: object, _type: object) -> StrategiesConfig:
        if not isinstance(value, Mapping):
            raise _Invalid("a table", value)
        errors: list[tuple[str | None, BaseException]] = []
        config = StrategiesConfig()
        try:
            config = base({k: v for k, v in value.items() if k in builtin}, StrategiesConfig)
        except Exception as exc:
            errors.append((None, exc))
        plugins: list[PluginStrategyConfig] = []
        for name, block in value.items():
            if name in builtin:
                continue
            try:
                plugins.append(_structure_plugin(name, block, converter, plugin_dirs))
            except Exception as exc:
                errors.append((name, exc))
        if errors:
            raise _KeyedErrors(errors)
        return attrs.evolve(config, plugins=tuple(plugins))

    return structure


def _strategies_unstructure(
    converter: cattrs.Converter,
) -> Callable[[StrategiesConfig], dict[str, Any]]:
    """The inverse: plugin blocks become ``[strategies.<name>]`` tables again, as in the file."""
    builtin = [f.name for f in attrs.fields(StrategiesConfig) if not f.metadata.get(_PLUGINS)]

    def unstructure(config: StrategiesConfig) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: converter.unstructure(getattr(config, name)) for name in builtin
        }
        for block in config.plugins:
            settings = converter.unstructure(block.settings) if block.settings is not None else {}
            out[block.name] = {"plugin": block.plugin, "enabled": block.enabled, **settings}
        return out

    return unstructure


def make_converter(*, plugin_dirs: Sequence[Path] = ()) -> cattrs.Converter:
    """The one converter for configuration: strict, exact, and unknown keys are errors.

    Structuring: ints, floats, strings and bools are never coerced (``"5"`` is not 5, ``1`` is
    not ``true``); a ``Decimal`` comes exactly from a string, int, TOML float or float ``repr``;
    enums match their value exactly; attrs classes need a table and reject unknown keys; fields
    with a check (``_int``, ``_real``...) are range-checked in the same step. A
    ``[strategies.<name>]`` block that is not a built-in one is a plugin strategy: its class is
    imported (also from ``plugin_dirs``, see ``bot.plugins.load_strategy_class``) and the rest of
    the block structured into the class's ``Settings``.

    Unstructuring gives plain data: ``Decimal`` and ``Path`` as strings, tuples as lists,
    ``Secrets`` redacted, plugin blocks as their tables.
    """
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    # These go through singledispatch, which picks the nearest class in the MRO: the enum
    # bases are registered so a StrEnum field does not fall into the plain ``str`` hook.
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(Decimal, _structure_decimal)
    converter.register_structure_hook(Path, _structure_path)
    for enum_base in (Enum, StrEnum, IntEnum):
        converter.register_structure_hook(enum_base, _structure_enum)
    converter.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_hook)
    converter.register_structure_hook_factory(attrs.has, _attrs_hook)
    converter.register_structure_hook(
        StrategiesConfig, _strategies_structure(converter, tuple(plugin_dirs))
    )

    for enum_base in (Enum, StrEnum, IntEnum):
        converter.register_unstructure_hook(enum_base, _enum_value)
    converter.register_unstructure_hook(Decimal, str)
    converter.register_unstructure_hook(Path, str)
    converter.register_unstructure_hook_func(_is_homogeneous_tuple, list)
    converter.register_unstructure_hook(Secrets, Secrets.redacted)
    converter.register_unstructure_hook(Secret, lambda _secret: REDACTED)
    converter.register_unstructure_hook(StrategiesConfig, _strategies_unstructure(converter))
    return converter


# --------------------------------------------------------------------------------------------
# Turning cattrs' exception tree into lines


_BARE_KEY_RE: Final = re.compile(r"[A-Za-z0-9_-]+")

_SECRET_KEY_ENV: Final[Mapping[str, str]] = {
    **{name: var for name, var in SECRET_ENV_VARS.items()},
    "privatekey": "POLY_PRIVATE_KEY",
    "pk": "POLY_PRIVATE_KEY",
    "apikey": "POLY_API_KEY",
    "secret": "POLY_API_SECRET",
    "apisecret": "POLY_API_SECRET",
    "passphrase": "POLY_API_PASSPHRASE",
    "funder_address": "POLY_FUNDER",
}
_SECRET_TABLES: Final = frozenset({"secrets", "secret", "credentials", "creds", "auth", "wallet"})


def _join(path: str, key: str) -> str:
    shown = key if _BARE_KEY_RE.fullmatch(key) else json.dumps(key)
    return f"{path}.{shown}" if path else shown


def _file_keys(cl: type[Any]) -> list[str]:
    return [
        f.name
        for f in attrs.fields(cl)
        if not f.metadata.get(_FROM_ENV) and not f.metadata.get(_PLUGINS)
    ]


def _unknown_key_line(path: str, key: str, cl: type[Any]) -> str:
    where = _join(path, key)
    normal = key.lower().replace("-", "_").removeprefix("poly_")
    if normal in _SECRET_KEY_ENV:
        return (
            f"{where}: secrets are never read from the config file; "
            f"remove this key and set the {_SECRET_KEY_ENV[normal]} environment variable"
        )
    if normal in _SECRET_TABLES:
        env_vars = ", ".join(SECRET_ENV_VARS.values())
        return (
            f"{where}: secrets are never read from the config file; "
            f"remove it and set the environment variables {env_vars}"
        )
    close = difflib.get_close_matches(key, _file_keys(cl), n=1, cutoff=0.75)
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    return f"{where}: unknown key{hint}"


def _error_lines(exc: BaseException, path: str) -> list[str]:
    """Flatten a structuring error into ``path: message`` lines (never a traceback)."""
    if isinstance(exc, _Invalid):
        return [exc.line(path)]
    if isinstance(exc, ForbiddenExtraKeysError):
        return [_unknown_key_line(path, key, exc.cl) for key in sorted(exc.extra_fields)]
    if isinstance(exc, _RelationError):
        return [f"{_join(path, key)}: {message}" for key, message in exc.problems]
    if isinstance(exc, _ItemErrors):
        return [line for i, sub in exc.errors for line in _error_lines(sub, f"{path}[{i}]")]
    if isinstance(exc, _KeyedErrors):
        return [
            line
            for key, sub in exc.errors
            for line in _error_lines(sub, path if key is None else _join(path, key))
        ]
    if isinstance(exc, _Problem):
        return [f"{path}: {exc}"]
    if isinstance(exc, ClassValidationError):
        with_notes, others = exc.group_exceptions()
        lines = [
            line for sub, note in with_notes for line in _error_lines(sub, _join(path, note.name))
        ]
        return lines + [line for sub in others for line in _error_lines(sub, path)]
    return [f"{path or '(top level)'}: {type(exc).__name__}: {exc}"]


# --------------------------------------------------------------------------------------------
# Loading

_TOML_POSITION_RE: Final = re.compile(
    r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$"
)


def _structure(data: Mapping[str, Any], env: Mapping[str, str], source: Path | None) -> Config:
    lines: list[str] = []
    config = Config()
    # A plugin strategy's module may sit next to the config file (see bot.plugins).
    plugin_dirs = (source.resolve().parent,) if source is not None else ()
    try:
        config = make_converter(plugin_dirs=plugin_dirs).structure(data, Config)
    except Exception as exc:  # cattrs' groups subclass ExceptionGroup: plain except, never except*
        lines.extend(_error_lines(exc, ""))
    try:
        secrets = Secrets.from_env(env)
    except ConfigError as exc:
        lines.extend(exc.lines)
        secrets = Secrets()
    if lines:
        raise ConfigError(lines, source=source)
    return attrs.evolve(config, secrets=secrets)


def parse_config(text: str, env: Mapping[str, str], *, source: Path | None = None) -> Config:
    """Structure a ``Config`` from TOML text and secrets from ``env``.

    Args:
        text: TOML document; every key is optional (missing keys take their defaults).
        env: Environment to read the ``POLY_*`` secrets from (usually ``os.environ``).
        source: The file the text came from, for error messages.

    Raises:
        ConfigError: With one line per problem in the text and the environment.
    """
    name = str(source) if source is not None else "<config>"
    try:
        # parse_float=Decimal: TOML floats are kept exact from their source text.
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POSITION_RE.match(str(exc))
        if match:
            where = f"{name}:{match['line']}:{match['col']}"
            line = f"{where}: invalid TOML: {match['msg']}"
        else:
            line = f"{name}: invalid TOML: {exc}"
        raise ConfigError([line], source=source) from None
    return _structure(data, env, source)


def resolve_config_path(path: Path | None) -> Path | None:
    """The file ``load_config`` reads: ``path`` if given, else ``./config.toml`` if it exists.

    ``None`` means no file: the built-in defaults apply.
    """
    if path is not None:
        return path
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load_config(path: Path | None, env: Mapping[str, str]) -> Config:
    """Load and validate the configuration.

    Args:
        path: An explicit config file (must exist), or ``None`` for ``./config.toml`` when it
            exists and the built-in defaults (``Config()``) otherwise.
        env: Environment to read the ``POLY_*`` secrets from (usually ``os.environ``).

    Raises:
        ConfigError: The file is missing, unreadable or invalid TOML, or any key or
            environment variable is invalid; all problems are listed.
    """
    resolved = resolve_config_path(path)
    if resolved is None:
        return _structure({}, env, None)
    try:
        raw = resolved.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{resolved}: config file not found"], source=resolved) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            [f"{resolved}: cannot read config file: {reason}"], source=resolved
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{resolved}: invalid TOML: not UTF-8 (byte {exc.start})"], source=resolved
        ) from None
    return parse_config(text, env, source=resolved)
