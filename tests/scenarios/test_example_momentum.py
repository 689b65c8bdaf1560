"""Scenarios of the example strategy plugin (``bot.examples.momentum``): the reference for
testing a strategy of your own with polybot's ``scenario`` fixture (README, "Writing and testing
a strategy").

Each test is a script against the sim venue, in virtual time: set the market up, move it, and
check what the strategy decided, what it traded and where it stands. Three cases:

* a breakout it must trade: buy at the ask, rest the take-profit, sell when the price gets there;
* moves it must not trade: a rise smaller than the trigger, a fall, a book it cannot trust;
* the feed freezing while it holds shares: it pulls its resting sell once the feed is known to
  be frozen, buys nothing meanwhile, and rests the sell again once the books are fresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bot.core.money import ONE, Side, parse_units, taker_fee_units
from bot.core.trading import CancelAll, Liquidity, Place

if TYPE_CHECKING:
    from bot.testing import Scenario

CONFIG = """
[feed]
# A frozen socket is noticed after 5 s without data (the default is 30 s).
ping_interval_s = 1.0
silence_timeout_s = 5.0

[strategies.momentum]
plugin = "bot.examples.momentum:Momentum"
trigger = "0.03"
size = "10"
take_profit = "0.02"
"""

pytestmark = pytest.mark.scenario(config=CONFIG, strategies=["momentum"])

TEN = 10 * ONE


async def calm_book(scenario: Scenario) -> str:
    """The watched market's YES book at 0.40 / 0.42, a hundred shares a level; its token."""
    yes = scenario.market(0).yes.token_id
    await scenario.set_book(
        yes,
        bids=[("0.40", "100"), ("0.39", "100")],
        asks=[("0.42", "100"), ("0.43", "100")],
    )
    return yes


async def test_a_breakout_is_bought_and_sold_at_the_take_profit(scenario: Scenario) -> None:
    yes = await calm_book(scenario)
    fee_rate = scenario.market(0).fee_rate

    await scenario.move_price(yes, "0.45")  # mid 0.41 -> 0.45: up 0.04, trigger 0.03

    (buy,) = scenario.decisions("momentum", "momentum.buy")
    assert buy.detail == {"mid": "0.45", "anchor": "0.41", "ask": "0.46", "size": "10"}
    (entry,) = scenario.fills("momentum")
    assert (entry.side, entry.price, entry.size) == (Side.BUY, parse_units("0.46"), TEN)
    assert entry.liquidity is Liquidity.TAKER
    assert entry.fee == taker_fee_units(TEN, entry.price, fee_rate)
    assert scenario.position(yes, "momentum") == TEN
    # The take-profit rests at the entry plus 0.02.
    (resting,) = scenario.open_orders("momentum")
    assert (resting.side, resting.price, resting.size) == (Side.SELL, parse_units("0.48"), TEN)

    await scenario.move_price(yes, "0.47")  # not there yet: nothing happens
    assert len(scenario.fills("momentum")) == 1

    await scenario.move_price(yes, "0.49")  # the bid reaches 0.48: the sell fills
    exit_fill = scenario.fills("momentum")[-1]
    assert (exit_fill.side, exit_fill.size) == (Side.SELL, TEN)
    assert exit_fill.price >= parse_units("0.48")
    assert scenario.position(yes, "momentum") == 0
    assert not scenario.open_orders("momentum")
    # Flat again: the PnL is what the two fills say, to the micro-dollar.
    gained = (exit_fill.price - entry.price) * TEN // ONE - entry.fee - exit_fill.fee
    assert scenario.pnl("momentum") == gained > 0
    assert [r["side"] for r in scenario.records("fill")] == ["BUY", "SELL"]


async def test_small_rises_falls_and_stale_books_are_not_traded(scenario: Scenario) -> None:
    yes = await calm_book(scenario)

    await scenario.move_price(yes, "0.43")  # up 0.02: below the trigger
    await scenario.move_price(yes, "0.36")  # a fall: the anchor follows it down
    await scenario.move_price(yes, "0.38")  # up 0.02 from the new low: still below
    assert scenario.intents("momentum") == []

    # A market it does not watch may jump: not its business.
    other = scenario.market(1).yes.token_id
    await scenario.move_price(other, "0.90")
    # The connection drops and comes back with the price well up: the jump happened while the
    # strategy could not see, so it is not a breakout (the anchor starts again at the new price).
    await scenario.freeze()
    await scenario.move_price(yes, "0.60")
    await scenario.unfreeze()
    await scenario.drop_connection()
    assert scenario.book(yes) is not None
    assert scenario.book(yes).best_bid.price == parse_units("0.59")  # type: ignore[union-attr]
    assert scenario.intents("momentum") == []
    assert scenario.fills() == []
    kinds = [d.kind for d in scenario.decisions("momentum")]
    assert kinds == ["momentum.paused", "momentum.resumed"]


async def test_a_frozen_feed_mid_trade_pulls_the_take_profit_until_fresh(
    scenario: Scenario,
) -> None:
    yes = await calm_book(scenario)
    await scenario.move_price(yes, "0.45")
    assert scenario.position(yes, "momentum") == TEN
    assert len(scenario.open_orders("momentum")) == 1

    # The socket freezes (PONGs, no data) and the market falls meanwhile, then rises through
    # the trigger: the strategy sees none of it.
    await scenario.freeze()
    frozen_at = scenario.venue.now_ms()
    await scenario.move_price(yes, "0.30")
    await scenario.move_price(yes, "0.36")
    assert scenario.book(yes).best_bid.price == parse_units("0.44")  # type: ignore[union-attr]

    # The watchdog tells a frozen socket from a quiet market (REST shows the books moved):
    # within its 5 s window every book is stale and the take-profit is pulled.
    await scenario.wait_for(lambda: not scenario.open_orders("momentum"), within=6.0)
    assert scenario.feed().shards[0].frozen_detected == 1
    assert scenario.feed().stale_tokens > 0
    pulled = scenario.strategy("momentum").steps[-1]
    assert pulled.hook == "on_stale"
    assert any(isinstance(a, CancelAll) and a.token_id == yes for a in pulled.actions)
    assert (scenario.venue.now_ms() - frozen_at) / 1000 <= 5.5

    # Still frozen a while longer: no order goes out on a book it cannot trust.
    await scenario.advance(3.0)
    intents_while_frozen = len(scenario.intents("momentum"))

    # Data flows again: fresh snapshots at the real price; the sell rests again at 0.48 and
    # nothing is bought (the rise from 0.30 to 0.36 happened out of sight).
    await scenario.unfreeze()
    await scenario.wait_until_fresh(within=10.0)
    assert scenario.book(yes).best_bid.price == parse_units("0.35")  # type: ignore[union-attr]
    assert len(scenario.intents("momentum")) == intents_while_frozen + 1
    (resting,) = scenario.open_orders("momentum")
    assert (resting.side, resting.price, resting.size) == (Side.SELL, parse_units("0.48"), TEN)
    buys = [i for i in scenario.intents("momentum") if isinstance(i, Place) and i.side is Side.BUY]
    assert len(buys) == 1
    assert scenario.position(yes, "momentum") == TEN
    kinds = [d.kind for d in scenario.decisions("momentum")]
    assert kinds == [
        "momentum.buy",
        "momentum.take_profit",
        "momentum.paused",
        "momentum.resumed",
        "momentum.take_profit",
    ]
