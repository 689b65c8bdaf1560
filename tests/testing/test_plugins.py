"""Strategy plugins: config blocks naming a class, their typed settings and errors, and the
built-in strategies registered the same way (``bot.plugins``, ``bot.config``)."""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs
import pytest

from bot.config import (
    Config,
    ConfigError,
    PluginStrategyConfig,
    load_config,
    make_converter,
    parse_config,
)
from bot.core.trading import Strategy
from bot.core.universe import Universe
from bot.examples.momentum import Momentum
from bot.plugins import (
    BUILTIN_STRATEGIES,
    PluginError,
    configured_strategies,
    observe_strategies,
    strategy_factories,
)
from tests.builders import binary_market
from tests.testing.strategies import Noter, Quoter

if TYPE_CHECKING:
    from pathlib import Path

MOMENTUM = 'plugin = "bot.examples.momentum:Momentum"'


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, {})
    return info.value.lines


def universe() -> Universe:
    return Universe(markets=(binary_market("c1", "y1", "n1"), binary_market("c2", "y2", "n2")))


def test_a_plugin_block_becomes_typed_settings() -> None:
    cfg = parse_config(f'[strategies.momentum]\n{MOMENTUM}\ntrigger = "0.05"\n', {})
    block = cfg.strategies.plugin("momentum")
    assert block == PluginStrategyConfig(
        "momentum",
        "bot.examples.momentum:Momentum",
        True,
        Momentum.Settings(trigger=Decimal("0.05")),
    )
    assert block.settings.size == Decimal(10)  # the defaults fill the rest
    assert Config().strategies.plugins == ()


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            f'{MOMENTUM}\ntrigger = "abc"',
            [
                "strategies.momentum.trigger: expected a decimal amount >= 0 with at most 6 "
                'decimals, got "abc"'
            ],
        ),
        (
            f"{MOMENTUM}\ntriger = 1",
            ['strategies.momentum.triger: unknown key (did you mean "trigger"?)'],
        ),
        (
            f"{MOMENTUM}\nenabled = 1",
            ["strategies.momentum.enabled: expected true or false, got 1"],
        ),
        (
            'plugin = "no_such_package.strategies:Momentum"',
            [
                'strategies.momentum.plugin: cannot import "no_such_package.strategies" (No '
                "module named 'no_such_package'); it must be installed, on PYTHONPATH, or next to "
                "the config file"
            ],
        ),
        (
            'plugin = "bot.examples.momentum:Momentom"',
            [
                'strategies.momentum.plugin: module "bot.examples.momentum" has no attribute '
                '"Momentom"'
            ],
        ),
        (
            'plugin = "tests.testing.strategies:NotAStrategy"',
            [
                'strategies.momentum.plugin: "tests.testing.strategies:NotAStrategy" is not a '
                "strategy: it has no on_books, on_event, on_stale, on_timer, wakeup_at (subclass "
                "bot.core.trading.Strategy)"
            ],
        ),
        (
            'plugin = "tests.testing.strategies:Noter"\nlevel = 3',
            [
                "strategies.momentum.level: unknown key (tests.testing.strategies:Noter takes no "
                "settings)"
            ],
        ),
        (
            'plugin = "momentum"',
            [
                "strategies.momentum.plugin: expected the strategy class as "
                '"package.module:Class", got "momentum"'
            ],
        ),
    ],
)
def test_a_bad_plugin_block_names_the_strategy_and_the_key(block: str, expected: list[str]) -> None:
    assert errors_of(f"[strategies.momentum]\n{block}\n") == expected


def test_a_block_without_a_plugin_is_an_unknown_key() -> None:
    assert errors_of("[strategies.mean_revert]\nenabled = true\n[strategies.market_makin]\n") == [
        "strategies.mean_revert: unknown key "
        '(a strategy of your own needs plugin = "module:Class")',
        'strategies.market_makin: unknown key (did you mean "market_making"?)',
    ]


def test_plugin_names_are_checked() -> None:
    assert errors_of(
        f"[strategies.Momentum]\n{MOMENTUM}\n[strategies.execution]\n{MOMENTUM}\n"
    ) == [
        "strategies.Momentum: expected a strategy name: a lowercase letter, then lowercase "
        'letters, digits or _, got "Momentum"',
        'strategies.execution: expected a name other than "execution" (reserved), got "execution"',
    ]


def test_errors_in_built_in_and_plugin_blocks_are_reported_together() -> None:
    text = (
        "[strategies.market_making]\nquote_size = -1\n"
        f'[strategies.momentum]\n{MOMENTUM}\nsize = "x"\n'
    )
    assert errors_of(text) == [
        "strategies.market_making.quote_size: expected a decimal amount >= 0 with at most 6 "
        "decimals, got -1",
        'strategies.momentum.size: expected a decimal amount >= 0 with at most 6 decimals, got "x"',
    ]


def test_a_module_next_to_the_config_file_is_found(tmp_path: Path) -> None:
    (tmp_path / "my_breakout.py").write_text(
        "from bot.examples.momentum import Momentum\n\nclass Breakout(Momentum):\n    pass\n"
    )
    config = tmp_path / "config.toml"
    config.write_text('[strategies.breakout]\nplugin = "my_breakout:Breakout"\nsize = "5"\n')
    try:
        cfg = load_config(config, {})
        assert cfg.strategies.plugin("breakout").settings.size == Decimal(5)
        assert str(tmp_path) in sys.path
    finally:
        sys.modules.pop("my_breakout", None)
        sys.path.remove(str(tmp_path))


def test_built_in_strategies_are_registered_like_plugins() -> None:
    entries = configured_strategies(Config())
    assert [e.name for e in entries] == list(BUILTIN_STRATEGIES)
    assert [e.name for e in entries] == [
        "complement_arb",
        "neg_risk_arb",
        "market_making",
        "forecast_taker",
    ]
    for entry in entries:
        cls = entry.plugin.load()
        assert issubclass(cls, Strategy)
        assert cls.name == entry.name
        assert entry.settings == getattr(Config().strategies, entry.name)
    made = {name: make() for name, make in strategy_factories(universe(), Config()).items()}
    assert {name: type(s).__name__ for name, s in made.items()} == {
        "complement_arb": "ComplementArb",
        "neg_risk_arb": "NegRiskArb",
        "market_making": "MarketMaker",
        "forecast_taker": "ForecastTaker",
    }


def test_one_class_runs_under_two_names_with_its_own_settings() -> None:
    cfg = parse_config(
        f'[strategies.fast]\n{MOMENTUM}\ntrigger = "0.01"\n'
        f'[strategies.slow]\n{MOMENTUM}\ntrigger = "0.1"\n'
        "[strategies.complement_arb]\nenabled = false\n",
        {},
    )
    made = {name: make() for name, make in strategy_factories(universe(), cfg).items()}
    assert list(made) == ["neg_risk_arb", "market_making", "forecast_taker", "fast", "slow"]
    fast, slow = made["fast"], made["slow"]
    assert isinstance(fast, Momentum)
    assert isinstance(slow, Momentum)
    assert (fast.name, slow.name) == ("fast", "slow")
    assert (fast._trigger, slow._trigger) == (10_000, 100_000)


def test_a_disabled_plugin_is_configured_but_not_built() -> None:
    cfg = parse_config(f"[strategies.momentum]\n{MOMENTUM}\nenabled = false\n", {})
    assert [e.enabled for e in configured_strategies(cfg) if e.name == "momentum"] == [False]
    assert "momentum" not in strategy_factories(universe(), cfg)


def test_the_effective_config_shows_plugin_blocks_as_in_the_file() -> None:
    cfg = parse_config(f'[strategies.momentum]\n{MOMENTUM}\ntrigger = "0.05"\n', {})
    data = cfg.redacted_dict()["strategies"]
    assert data["momentum"] == {
        "plugin": "bot.examples.momentum:Momentum",
        "enabled": True,
        "markets": [],
        "max_markets": 1,
        "trigger": "0.05",
        "size": "10",
        "take_profit": "0.02",
        "cooldown_s": 1.0,
    }
    assert "plugins" not in data
    plain = {key: value for key, value in cfg.redacted_dict().items() if key != "secrets"}
    again = make_converter().structure(plain, Config)
    assert again.strategies == cfg.strategies


def test_a_config_built_in_python_is_checked_when_built() -> None:
    wrong = attrs.evolve(
        Config().strategies,
        plugins=(
            PluginStrategyConfig(
                "quoter", "tests.testing.strategies:Quoter", settings=Momentum.Settings()
            ),
        ),
    )
    with pytest.raises(PluginError, match=r"strategy quoter: settings must be a Quoter\.Settings"):
        configured_strategies(attrs.evolve(Config(), strategies=wrong))
    defaults = attrs.evolve(
        Config().strategies,
        plugins=(PluginStrategyConfig("quoter", "tests.testing.strategies:Quoter"),),
    )
    (entry,) = [
        e
        for e in configured_strategies(attrs.evolve(Config(), strategies=defaults))
        if e.name == "quoter"
    ]
    assert entry.settings == Quoter.Settings()
    with pytest.raises(ValueError, match="strategy name"):
        PluginStrategyConfig("Quoter", "tests.testing.strategies:Quoter")


def test_observers_see_every_strategy_built_in_their_context() -> None:
    seen: list[tuple[str, str]] = []

    def wrap(name: str, strategy: Strategy) -> Strategy:
        seen.append((name, type(strategy).__name__))
        return strategy

    cfg = parse_config('[strategies.noter]\nplugin = "tests.testing.strategies:Noter"\n', {})
    with observe_strategies(wrap):
        makers = strategy_factories(universe(), cfg)
    strategy_factories(universe(), cfg)["noter"]()  # outside: not observed
    noter = makers["noter"]()
    makers["noter"]()  # a rebuild (after a crash) is observed too
    assert isinstance(noter, Noter)
    assert seen == [("noter", "Noter"), ("noter", "Noter")]
