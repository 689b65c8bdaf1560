"""Strategy plugins: how the bot finds, configures and builds its strategies.

A strategy is any class with the strategy interface of ``bot.core.trading.Strategy`` (subclass
it): the hooks ``on_books``, ``on_event``, ``on_stale``, ``on_timer`` and ``wakeup_at``, pure and
synchronous, returning intents and decisions as data. A *plugin* is such a class in your own
code, named in ``config.toml`` by where it is::

    [strategies.momentum]                       # the strategy's name
    plugin = "bot.examples.momentum:Momentum"   # "package.module:Class", importable
    enabled = true                              # optional, default true
    trigger = "0.03"                            # its own settings, checked like the rest

The class declares its settings as a nested attrs class ``Settings`` with a default for every
field (use ``bot.config.int_setting``, ``money_setting``... for ranges) and is built as
``Class(universe, settings)``; a class without ``Settings`` takes no keys and gets ``None``::

    class Momentum(Strategy):
        @attrs.frozen
        class Settings:
            trigger: Decimal = money_setting("0.03")

        def __init__(self, universe: Universe, settings: Settings) -> None: ...

Loading the configuration imports the class (so ``polybot config`` reports a missing module, a
missing class, a class that is not a strategy, or a bad setting, each naming the strategy:
``strategies.momentum.trigger: expected ...``). The module must be importable: installed, on
``PYTHONPATH``, or next to the config file (that directory is then added to ``sys.path``).

The block's key is the strategy's name: the factory sets ``strategy.name`` to it, so one class
can run twice with different settings under two names. The built-in strategies are registered
the same way (``BUILTIN_STRATEGIES``: where the class is, its settings block, how it is built);
``strategy_factories`` builds the enabled ones, built-ins first, then plugins in file order.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from contextvars import ContextVar
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import attrs

from bot.config import (
    ComplementArbConfig,
    ForecastTakerConfig,
    MarketMakingConfig,
    NegRiskArbConfig,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from pathlib import Path

    from bot.config import Config
    from bot.core.trading import Strategy
    from bot.core.universe import Universe

__all__ = [
    "BUILTIN_STRATEGIES",
    "STRATEGY_HOOKS",
    "Builder",
    "ConfiguredStrategy",
    "PluginError",
    "StrategyPlugin",
    "StrategyWrapper",
    "build_plain",
    "configured_strategies",
    "load_strategy_class",
    "observe_strategies",
    "settings_type",
    "strategy_factories",
]

STRATEGY_HOOKS: Final = ("on_books", "on_event", "on_stale", "on_timer", "wakeup_at")
"""What the strategy runner calls (``bot.shell.runner``); a plugin class must have them all."""

_RESERVED_SETTINGS: Final = frozenset({"plugin", "enabled"})

Builder: TypeAlias = "Callable[[type[Any], Universe, Any, Config], Strategy]"
"""Builds one strategy: ``(class, universe, settings, whole config) -> instance``."""

StrategyWrapper: TypeAlias = "Callable[[str, Strategy], Strategy]"
"""Given a strategy's name and a fresh instance, the object the runner should drive instead."""


class PluginError(Exception):
    """A strategy plugin cannot be loaded; the message says what is wrong and how to fix it."""


def load_strategy_class(path: str, *, search: Sequence[Path] = ()) -> type[Any]:
    """Import the class ``path`` names (``"package.module:Class"``, the class may be dotted).

    Args:
        path: where the class is.
        search: directories to add to ``sys.path`` (at the front) when the module's top-level
            package is not importable otherwise but is found in one of them (the config file's
            directory: a strategy module next to ``config.toml``).

    Raises:
        PluginError: the module cannot be imported (missing, or it raised), it has no such
            attribute, or that is not a class with the strategy hooks (``STRATEGY_HOOKS``).
    """
    module_name, _, qualname = path.partition(":")
    module = _import(module_name, search)
    target: object = module
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PluginError(f'module "{module_name}" has no attribute "{qualname}"') from None
    if not isinstance(target, type):
        raise PluginError(f'"{path}" is {type(target).__name__}, not a class')
    missing = [hook for hook in STRATEGY_HOOKS if not callable(getattr(target, hook, None))]
    if missing:
        raise PluginError(
            f'"{path}" is not a strategy: it has no {", ".join(missing)} '
            "(subclass bot.core.trading.Strategy)"
        )
    return target


def _import(module_name: str, search: Sequence[Path]) -> Any:
    top = module_name.split(".")[0]
    for attempt in range(2):
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing_top = exc.name == top
            found = [d for d in search if (d / top).is_dir() or (d / f"{top}.py").is_file()]
            if attempt == 0 and missing_top and found:
                sys.path.insert(0, str(found[0]))
                importlib.invalidate_caches()
                continue
            where = "; it must be installed, on PYTHONPATH, or next to the config file"
            raise PluginError(f'cannot import "{module_name}" ({exc}){where}') from None
        except Exception as exc:  # the user's module raised while importing: say so, briefly
            raise PluginError(
                f'importing "{module_name}" failed: {type(exc).__name__}: {exc}'
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def settings_type(cls: type[Any]) -> type[Any] | None:
    """The class's ``Settings`` (an attrs class with a default for every field), or ``None``.

    Raises:
        PluginError: ``Settings`` is not an attrs class, a field has no default, or a field is
            named ``plugin`` or ``enabled`` (the block's own keys).
    """
    settings = getattr(cls, "Settings", None)
    if settings is None:
        return None
    name = f"{cls.__module__}:{cls.__qualname__}.Settings"
    if not (isinstance(settings, type) and attrs.has(settings)):
        raise PluginError(f"{name} must be an attrs class (@attrs.frozen)")
    for field in attrs.fields(settings):
        if field.default is attrs.NOTHING:
            raise PluginError(f"{name}.{field.name} has no default (every setting needs one)")
        if field.name in _RESERVED_SETTINGS:
            raise PluginError(f'{name} may not have a field "{field.name}" (the block\'s own)')
    return settings


def build_plain(cls: type[Any], universe: Universe, settings: Any, _config: Config) -> Strategy:
    """The plugin convention: ``Class(universe, settings)``."""
    strategy: Strategy = cls(universe, settings)
    return strategy


def _build_arbitrage(cls: type[Any], universe: Universe, settings: Any, config: Config) -> Strategy:
    # The arbitrages also rank baskets by the shared coordination settings.
    strategy: Strategy = cls(universe, settings, config.strategies.coordination)
    return strategy


@attrs.frozen
class StrategyPlugin:
    """One kind of strategy: where its class is, its settings type, how it is built.

    Attributes:
        path: ``"package.module:Class"``.
        settings: the settings block's class (``None``: no settings).
        build: makes an instance (``build_plain`` for plugins).
    """

    path: str
    settings: type[Any] | None
    build: Builder = build_plain

    def load(self) -> type[Any]:
        """The class (imported on first use)."""
        return load_strategy_class(self.path)


BUILTIN_STRATEGIES: Final[Mapping[str, StrategyPlugin]] = MappingProxyType(
    {
        "complement_arb": StrategyPlugin(
            "bot.core.strategies.arbitrage:ComplementArb", ComplementArbConfig, _build_arbitrage
        ),
        "neg_risk_arb": StrategyPlugin(
            "bot.core.strategies.arbitrage:NegRiskArb", NegRiskArbConfig, _build_arbitrage
        ),
        "market_making": StrategyPlugin(
            "bot.core.strategies.market_making:MarketMaker", MarketMakingConfig
        ),
        "forecast_taker": StrategyPlugin(
            "bot.core.strategies.forecast:ForecastTaker", ForecastTakerConfig
        ),
    }
)
"""The strategies that ship with the bot, by name (each one's block is
``StrategiesConfig.<name>``)."""


@attrs.frozen
class ConfiguredStrategy:
    """One strategy as the configuration has it.

    Attributes:
        name: its name (the ``[strategies.<name>]`` key).
        plugin: what it is.
        settings: its settings (``None`` for a class without ``Settings``).
        enabled: whether it runs.
    """

    name: str
    plugin: StrategyPlugin
    settings: Any
    enabled: bool


def configured_strategies(cfg: Config) -> list[ConfiguredStrategy]:
    """Every strategy of ``cfg``, enabled or not: the built-ins, then the plugins in file order.

    Raises:
        PluginError: a plugin's class cannot be loaded (a ``Config`` built in Python, not
            loaded from a file, is checked only here).
    """
    out: list[ConfiguredStrategy] = []
    for name, plugin in BUILTIN_STRATEGIES.items():
        block = getattr(cfg.strategies, name)
        out.append(ConfiguredStrategy(name, plugin, block, block.enabled))
    for block in cfg.strategies.plugins:
        kind = settings_type(load_strategy_class(block.plugin))
        settings = block.settings
        if settings is None and kind is not None:
            settings = kind()
        elif kind is None and settings is not None:
            raise PluginError(f"strategy {block.name}: {block.plugin} takes no settings")
        elif kind is not None and not isinstance(settings, kind):
            raise PluginError(
                f"strategy {block.name}: settings must be a {kind.__qualname__}, "
                f"got {type(settings).__qualname__}"
            )
        out.append(
            ConfiguredStrategy(
                block.name, StrategyPlugin(block.plugin, kind), settings, block.enabled
            )
        )
    return out


_WRAPPER: ContextVar[StrategyWrapper | None] = ContextVar("polybot_strategy_wrapper", default=None)


@contextlib.contextmanager
def observe_strategies(wrap: StrategyWrapper) -> Iterator[None]:
    """Have every strategy built by ``strategy_factories`` in this context pass through ``wrap``.

    For embedders that watch strategies from outside (``bot.testing`` records each one's
    actions): start the bot inside the block; its tasks inherit the context (trio copies it into
    every task it spawns), so strategies rebuilt after a crash are wrapped too. Costs nothing
    when unused.
    """
    token = _WRAPPER.set(wrap)
    try:
        yield
    finally:
        _WRAPPER.reset(token)


def strategy_factories(universe: Universe, cfg: Config) -> dict[str, Callable[[], Strategy]]:
    """The enabled strategies by name, as factories (a crashed strategy is rebuilt fresh).

    Each factory builds the class, names the instance after its block and passes it through
    the ``observe_strategies`` wrapper, if any.
    """
    wrap = _WRAPPER.get()
    makers: dict[str, Callable[[], Strategy]] = {}
    for entry in configured_strategies(cfg):
        if entry.enabled:
            cls = entry.plugin.load()
            makers[entry.name] = partial(_make, entry, cls, universe, cfg, wrap)
    return makers


def _make(
    entry: ConfiguredStrategy,
    cls: type[Any],
    universe: Universe,
    cfg: Config,
    wrap: StrategyWrapper | None,
) -> Strategy:
    strategy = entry.plugin.build(cls, universe, entry.settings, cfg)
    if getattr(strategy, "name", None) != entry.name:
        try:
            strategy.name = entry.name
        except AttributeError:
            raise PluginError(
                f"strategy {entry.name}: cannot set the name of its {cls.__qualname__} "
                "(give the class a writable name attribute)"
            ) from None
    return wrap(entry.name, strategy) if wrap is not None else strategy
