"""The scenario kit itself (``bot.testing``): every script step does to the bot what it says,
the probes read it back, the waits keep virtual-time deadlines, and the same script gives the
same result every time."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio
import trio.testing

from bot.config import ConfigError
from bot.core.money import ONE, Side, parse_units, taker_fee_units
from bot.core.trading import Liquidity, Place
from bot.testing import (
    SCENARIO_SIM,
    OpportunityKind,
    Scenario,
    ScenarioCrashed,
    ScenarioTimeout,
    open_scenario,
    scenario_config,
    units,
)
from bot.testing._clock import guard_threads
from tests.testing.strategies import Noter, Quoter

if TYPE_CHECKING:
    from pathlib import Path

QUOTER = '[strategies.quoter]\nplugin = "tests.testing.strategies:Quoter"\n'
NOTER = '[strategies.noter]\nplugin = "tests.testing.strategies:Noter"\n'
FAST_WATCHDOG = "[feed]\nping_interval_s = 1.0\nsilence_timeout_s = 5.0\n"


def levels(book: Any) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    return [tuple(x) for x in book.bids()], [tuple(x) for x in book.asks()]


def view_levels(scenario: Scenario, token: str) -> tuple[list[Any], list[Any]]:
    view = scenario.book(token)
    assert view is not None
    return [tuple(x) for x in view.bids], [tuple(x) for x in view.asks]


# --- starting -----------------------------------------------------------------------------------


@pytest.mark.scenario(strategies=[])
async def test_the_bot_starts_with_every_book_fresh_and_equal_to_the_venue(
    scenario: Scenario, tmp_path: Path
) -> None:
    assert trio.current_time() < 1.0  # start-up takes no virtual time to speak of
    assert scenario.feed().stale_tokens == 0
    assert len(scenario.universe.markets) == 16  # SCENARIO_SIM, seed 1
    for token in scenario.universe.token_ids():
        bids, asks = levels(scenario.venue_book(token))
        assert view_levels(scenario, token) == (bids[:10], asks[:10])
    assert scenario.directory == tmp_path
    assert (tmp_path / "polybot.jsonl").is_file()
    assert scenario.guard is not None  # the fixture runs in virtual time
    assert [r["message"] for r in scenario.logs(contains="polybot running")]


@pytest.mark.scenario(
    strategies=[], sim=attrs.evolve(SCENARIO_SIM, temperature_events=0, election_events=0)
)
async def test_the_marker_passes_options_to_open_scenario(scenario: Scenario) -> None:
    assert len(scenario.universe.markets) == 3
    assert scenario.intents() == []


def test_scenario_config_enables_exactly_the_strategies_asked_for(tmp_path: Path) -> None:
    cfg = scenario_config(QUOTER, directory=tmp_path, strategies=["quoter", "market_making"])
    assert cfg.strategies.plugin("quoter").enabled
    assert cfg.strategies.market_making.enabled
    assert not cfg.strategies.complement_arb.enabled
    assert cfg.execution.journal == tmp_path / "journal.sqlite"
    assert cfg.log.dir == tmp_path
    with pytest.raises(ValueError, match="no strategy momentum in the configuration"):
        scenario_config(None, directory=tmp_path, strategies=["momentum"])


def test_amounts_are_exact_and_never_floats() -> None:
    assert units("0.52") == units(Decimal("0.52")) == units(520_000) == 520_000
    with pytest.raises(TypeError, match=r"got 0\.52"):
        units(0.52)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at most 6 decimals"):
        units("0.1234567")


# --- the market steps ---------------------------------------------------------------------------


@pytest.mark.scenario(config=NOTER, strategies=["noter"])
async def test_set_book_and_move_price_reach_the_bot_exactly(scenario: Scenario) -> None:
    yes = scenario.market(0).yes.token_id
    no = scenario.market(0).no.token_id
    await scenario.set_book(yes, bids=[("0.40", "100"), ("0.38", "50")], asks=[("0.42", "75")])
    assert view_levels(scenario, yes) == (
        [(400_000, 100 * ONE), (380_000, 50 * ONE)],
        [(420_000, 75 * ONE)],
    )
    assert view_levels(scenario, no) == (  # the complement mirrors it
        [(580_000, 75 * ONE)],
        [(600_000, 100 * ONE), (620_000, 50 * ONE)],
    )

    await scenario.move_price(yes, "0.655")  # mid 0.41 -> 0.655: +0.24 (toward zero, on tick)
    assert view_levels(scenario, yes) == (
        [(640_000, 100 * ONE), (620_000, 50 * ONE)],
        [(660_000, 75 * ONE)],
    )
    await scenario.move_price(yes, "0.02")  # down: the lowest bid falls off the grid
    assert view_levels(scenario, yes) == ([(10_000, 100 * ONE)], [(30_000, 75 * ONE)])
    assert levels(scenario.venue_book(yes)) == view_levels(scenario, yes)
    assert scenario.feed().mismatches == 0  # every price_change agreed with the venue's top
    bids = [d.detail["bid"] for d in scenario.decisions("noter", "book")]
    assert bids[-3:] == ["0.4", "0.64", "0.01"]  # one look per step: no crossed intermediate

    with pytest.raises(ValueError, match="micro-units"):
        await scenario.set_level(yes, "BUY", "0.05", 100)
    await scenario.set_level(yes, "BUY", "0.02", "30")
    assert view_levels(scenario, yes)[0] == [(20_000, 30 * ONE), (10_000, 100 * ONE)]


@pytest.mark.scenario(config=QUOTER, strategies=["quoter"])
async def test_a_printed_trade_fills_a_resting_order_and_a_resolution_settles_it(
    scenario: Scenario,
) -> None:
    market = scenario.market(0)
    yes = market.yes.token_id
    await scenario.set_book(yes, bids=[("0.40", "100")], asks=[("0.42", "100")])
    (bid,) = scenario.open_orders("quoter")
    assert (bid.side, bid.price, bid.size) == (Side.BUY, 410_000, 10 * ONE)
    assert scenario.fills() == []

    await scenario.print_trade(yes, "SELL", "30")  # a seller hits 0.40, through our 0.41
    (fill,) = scenario.fills("quoter")
    assert (fill.price, fill.size, fill.liquidity, fill.fee) == (
        410_000,
        10 * ONE,
        Liquidity.MAKER,
        0,
    )
    assert scenario.position(yes, "quoter") == 10 * ONE
    assert [u.status.value for u in scenario.order_updates("quoter")] == ["live", "matched"]
    venue_bids, _ = levels(scenario.venue_book(yes))
    assert venue_bids == [(400_000, 70 * ONE)]  # the venue's own book lost what was taken

    await scenario.resolve(market, winner=yes)
    assert scenario.positions() == {}
    assert scenario.pnl("quoter") == 10 * (ONE - 410_000)  # paid 4.10, got 10.00


@pytest.mark.scenario(strategies=["complement_arb"])
async def test_an_injected_arbitrage_is_taken(scenario: Scenario) -> None:
    opportunity = await scenario.inject_arbitrage(OpportunityKind.COMPLEMENT)
    market = scenario.universe.market_for_token(opportunity.token_ids[0])
    fees = sum(taker_fee_units(ONE, price, market.fee_rate) for price in opportunity.prices)
    assert opportunity.edge - fees > parse_units("0.002")  # seed 1: worth taking after fees
    fills = scenario.fills("complement_arb")
    assert {f.token_id for f in fills} == set(opportunity.token_ids)
    sizes = {t: sum(f.size for f in fills if f.token_id == t) for t in opportunity.token_ids}
    assert len(set(sizes.values())) == 1  # as many YES as NO
    (opened,) = scenario.decisions("complement_arb", "opportunity.open")
    assert opened.key == market.condition_id
    assert scenario.pnl("complement_arb") > 0
    await scenario.advance(2.5)  # past the opportunity's lifetime: the competitor takes it
    await scenario.expire_opportunities()
    assert scenario.venue.exchange.open_opportunities == ()


# --- the feed steps ---------------------------------------------------------------------------


@pytest.mark.scenario(config=NOTER, strategies=["noter"])
async def test_a_dropped_connection_comes_back_fresh(scenario: Scenario) -> None:
    yes = scenario.market(0).yes.token_id
    await scenario.drop_connection()
    assert scenario.feed().reconnects == 1
    assert scenario.feed().stale_tokens == 0
    kinds = [d.kind for d in scenario.decisions("noter") if d.kind != "book"]
    assert kinds == ["fresh", "stale", "fresh"]  # fresh at start-up, then the drop
    await scenario.move_price(yes, "0.80")  # and the new connection carries updates
    assert levels(scenario.venue_book(yes)) == view_levels(scenario, yes)


@pytest.mark.scenario(config=FAST_WATCHDOG + NOTER, strategies=["noter"])
async def test_a_frozen_socket_is_detected_and_recovered(scenario: Scenario) -> None:
    yes = scenario.market(0).yes.token_id
    await scenario.freeze()
    frozen_at = trio.current_time()
    await scenario.move_price(yes, "0.20")  # the venue moves; the bot hears nothing
    assert view_levels(scenario, yes) != levels(scenario.venue_book(yes))
    stale = await scenario.wait_for_decision("noter", "stale", within=6.0)
    assert stale.key == yes
    assert 5.0 <= trio.current_time() - frozen_at < 6.0
    assert scenario.feed().shards[0].frozen_detected == 1
    await scenario.unfreeze()
    await scenario.wait_until_fresh(within=5.0)
    assert levels(scenario.venue_book(yes)) == view_levels(scenario, yes)
    states = [r["state"] for r in scenario.records("feed.shard")]
    assert states[-3:] == ["frozen", "reconnecting", "connected"]


@pytest.mark.scenario(strategies=[])
async def test_malformed_frames_are_counted_and_the_books_survive(scenario: Scenario) -> None:
    yes = scenario.market(0).yes.token_id
    before = view_levels(scenario, yes)
    for kind in ("bad_json", "missing_field", "wrong_type", "unknown_event"):
        await scenario.send_malformed(kind)
    feed = scenario.feed()
    assert (feed.malformed, feed.unknown_events, feed.stale_tokens) == (3, 1, 0)
    assert len(scenario.records("feed.malformed")) == 3
    assert view_levels(scenario, yes) == before
    await scenario.move_price(yes, "0.70")
    assert view_levels(scenario, yes) == levels(scenario.venue_book(yes))
    with pytest.raises(ValueError, match="expected one of"):
        await scenario.send_malformed("garbage")  # type: ignore[arg-type]


# --- time and waiting ---------------------------------------------------------------------------


@pytest.mark.scenario(strategies=[], status_interval_s=5.0)
async def test_advance_moves_virtual_time_exactly_and_runs_what_is_due(
    scenario: Scenario,
) -> None:
    start = trio.current_time()
    health = len(scenario.records("health"))
    await scenario.advance(12.5)
    assert trio.current_time() == start + 12.5
    assert len(scenario.records("health")) == health + 2  # the status line every 5 s


@pytest.mark.scenario(strategies=[])
async def test_wait_for_gives_up_at_its_virtual_deadline(scenario: Scenario) -> None:
    start = trio.current_time()
    message = "fill 1 of any strategy: not met within 3 s of virtual time"
    with pytest.raises(ScenarioTimeout, match=message):
        await scenario.wait_for_fill(within=3.0)
    assert trio.current_time() == pytest.approx(start + 3.0)
    assert await scenario.wait_for(lambda: scenario.feed().tokens, within=0) == 32


@pytest.mark.scenario(strategies=[])
async def test_the_clock_does_not_jump_while_a_worker_thread_runs(scenario: Scenario) -> None:
    start = trio.current_time()
    await trio.to_thread.run_sync(time.sleep, 0.05)  # the bot's timers are all pending meanwhile
    assert trio.current_time() == start
    assert scenario.guard is not None
    assert scenario.guard.threads > 0


async def test_without_the_guard_the_autojump_clock_races_threads(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def timer() -> None:
        await trio.sleep(10.0)  # a deadline pending while the thread runs

    async with trio.open_nursery() as nursery:
        nursery.start_soon(timer)
        start = trio.current_time()
        await trio.to_thread.run_sync(time.sleep, 0.05)
        unguarded = trio.current_time() - start
        guard = await nursery.start(guard_threads)
        assert guard is not None
        start = trio.current_time()
        await trio.to_thread.run_sync(time.sleep, 0.05)
        guarded = trio.current_time() - start
        nursery.cancel_scope.cancel()
    assert unguarded > 0.05  # virtual time ran ahead of the thread
    assert guarded == 0


# --- probes and failures ------------------------------------------------------------------------


@pytest.mark.scenario(config=NOTER + QUOTER, strategies=["noter", "quoter"])
async def test_probes_are_kept_per_strategy(scenario: Scenario) -> None:
    yes = scenario.market(0).yes.token_id
    await scenario.move_price(yes, "0.30")
    noter, quoter = scenario.strategy("noter"), scenario.strategy("quoter")
    assert isinstance(noter.instance, Noter)
    assert isinstance(quoter.instance, Quoter)
    assert (noter.builds, quoter.builds) == (1, 1)
    assert noter.intents == []
    assert noter.decisions[-1].detail == {"bid": "0.29"}
    assert {s.hook for s in noter.steps} == {"on_books", "on_stale"}  # fresh at start-up
    assert [type(i) for i in scenario.intents("quoter")] == [Place]
    assert scenario.decisions("quoter") == []
    assert scenario.intents() == scenario.intents("quoter")
    with pytest.raises(KeyError, match="running: noter, quoter"):
        scenario.strategy("momentum")


async def test_a_strategy_that_cannot_be_built_is_a_crash_with_its_cause(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    config = '[strategies.crasher]\nplugin = "tests.testing.strategies:Crasher"\n'
    with pytest.raises(ScenarioCrashed, match="crasher: broken on purpose"):
        async with open_scenario(config, strategies=["crasher"], directory=tmp_path):
            pass
    with pytest.raises(ConfigError, match='NotAStrategy" is not a strategy'):
        async with open_scenario(config.replace("Crasher", "NotAStrategy"), directory=tmp_path):
            pass


def test_the_same_script_gives_the_same_result(tmp_path: Path) -> None:
    """Two runs of one script, each in its own ``trio.run`` under a fresh autojump clock (as
    two runs of a test are), with the venue's seeded flow and two strategies trading on it."""
    config = (
        "[strategies.momentum]\n"
        'plugin = "bot.examples.momentum:Momentum"\n'
        'trigger = "0.01"\n'
        "max_markets = 3\n"
    )

    async def script(where: Path) -> list[Any]:
        async with open_scenario(
            config,
            strategies=["momentum", "complement_arb"],
            sim=attrs.evolve(SCENARIO_SIM, events_per_second=200.0),
            directory=where,
        ) as sc:
            await sc.inject_arbitrage()
            await sc.start_flow()  # the venue's own order flow, with the bot trading on it
            await sc.advance(4.0)
            await sc.send_malformed("wrong_type")
            await sc.advance(4.0)
            await sc.stop_flow()
            return [
                [(d.strategy, d.kind, d.key, dict(d.detail)) for d in sc.decisions()],
                [
                    (f.strategy, f.token_id, f.side, f.price, f.size, f.fee, f.at)
                    for f in sc.fills()
                ],
                [(u.order_id, u.status, u.filled, u.at) for u in sc.order_updates()],
                dict(sc.positions()),
                sc.pnl(),
                sc.feed().events,
                trio.current_time(),
            ]

    def run(where: Path) -> list[Any]:
        result: list[Any] = trio.run(
            script, where, clock=trio.testing.MockClock(autojump_threshold=0)
        )
        return result

    first, second = run(tmp_path / "first"), run(tmp_path / "second")
    decisions, fills = first[0], first[1]
    assert {d[0] for d in decisions} == {"momentum", "complement_arb"}
    assert len(fills) >= 3, "too little traded: the comparison would prove little"
    # Order ids carry the wall clock (unique across runs): compare them by position only.
    first[2] = [u[1:] for u in first[2]]
    second[2] = [u[1:] for u in second[2]]
    assert first == second
