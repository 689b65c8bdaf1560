"""The execution engine with a scripted venue: risk first, baskets whole or unwound, kill switch."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from bot.config import RiskConfig
from bot.core.book import BookView
from bot.core.engine import Engine, EngineOutput
from bot.core.money import ONE, Side, notional_units
from bot.core.risk import RiskGate, RiskLimits
from bot.core.trading import (
    Basket,
    Cancel,
    CancelAll,
    ExecEvent,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Place,
)
from bot.core.universe import Market, Universe
from bot.core.wire.market_events import LastTradePrice, Level
from tests.builders import binary_market

if TYPE_CHECKING:
    from collections.abc import Mapping


def market(cid: str, yes: str, no: str) -> Market:
    return binary_market(cid, yes, no, end_date=datetime(2027, 1, 1, tzinfo=UTC))


UNIVERSE = Universe(markets=(market("0xa", "y", "n"),), events=())


def view(token: str, bid: int, ask: int) -> BookView:
    return BookView(
        asset_id=token,
        best_bid=Level(bid, 100 * ONE),
        best_ask=Level(ask, 100 * ONE),
        bids=(Level(bid, 100 * ONE),),
        asks=(Level(ask, 100 * ONE),),
        tick_size=10_000,
        last_update_ms=1,
        stale=False,
    )


@attrs.define
class Script:
    """A venue that fills each order by the size scripted for its token (0 = nothing)."""

    fills: dict[str, int] = attrs.field(factory=dict)
    resting: dict[str, Order] = attrs.field(factory=dict)
    submitted: list[Order] = attrs.field(factory=list)
    n: int = 0

    def submit(
        self, order: Order, view: BookView | None, now: float, ts_ms: int
    ) -> list[ExecEvent]:
        self.submitted.append(order)
        size = min(self.fills.get(order.token_id, order.size), order.size)
        events: list[ExecEvent] = []
        if order.order_type is OrderType.FOK and size < order.size:
            size = 0
        if size:
            self.n += 1
            order.filled = size
            events.append(
                Fill(
                    f"f{self.n}",
                    order.id,
                    order.strategy,
                    order.token_id,
                    order.side,
                    order.price,
                    size,
                    0,
                    Liquidity.TAKER,
                    now,
                )
            )
        if order.order_type.rests and order.filled < order.size:
            self.resting[order.id] = order
            order.status = OrderStatus.LIVE
        else:
            order.status = (
                OrderStatus.MATCHED if order.filled == order.size else OrderStatus.CANCELED
            )
        events.append(self._update(order, now))
        return events

    def _update(self, order: Order, now: float) -> OrderUpdate:
        return OrderUpdate(
            order.id,
            order.strategy,
            order.token_id,
            order.side,
            order.price,
            order.size,
            order.filled,
            order.status,
            at=now,
        )

    def cancel(self, order_id: str, now: float, reason: str = "canceled") -> list[ExecEvent]:
        order = self.resting.pop(order_id)
        order.status = OrderStatus.CANCELED
        return [self._update(order, now)]

    def watches(self, token_id: str) -> bool:
        return any(o.token_id == token_id for o in self.resting.values())

    def on_book(self, view: BookView, now: float, ts_ms: int) -> list[ExecEvent]:
        return []

    def on_trade(self, trade: LastTradePrice, now: float, ts_ms: int) -> list[ExecEvent]:
        return []


@attrs.define
class Book:
    """A minimal ledger: net positions and cash."""

    held: dict[str, int] = attrs.field(factory=dict)
    cash: int = 0
    seen: set[str] = attrs.field(factory=set)

    def apply(self, fill: Fill) -> bool:
        if fill.fill_id in self.seen:
            return False
        self.seen.add(fill.fill_id)
        sign = 1 if fill.side is Side.BUY else -1
        self.held[fill.token_id] = self.held.get(fill.token_id, 0) + sign * fill.size
        self.cash -= sign * notional_units(fill.price, fill.size, round_up=sign > 0)
        return True

    def position(self, token_id: str) -> int:
        return self.held.get(token_id, 0)

    def position_of(self, strategy: str, token_id: str) -> int:
        return self.held.get(token_id, 0)

    def exposure(self) -> int:
        return 0

    def pnl(
        self,
        universe: Universe,
        marks: Mapping[str, int],
        strategy: str | None = None,
        condition_id: str | None = None,
    ) -> int:
        return self.cash + sum(
            notional_units(marks.get(t, 0), s, round_up=False) for t, s in self.held.items()
        )

    def positions(self) -> Mapping[tuple[str, str], int]:
        return {("s", t): s for t, s in self.held.items() if s}

    def resolve(self, condition_id: str, winning_token: str | None, token_ids: Any) -> int:
        raise NotImplementedError

    def undo(self, fill: Fill) -> bool:
        raise NotImplementedError


def engine(venue: Script, views: dict[str, BookView], daily_loss: str = "100") -> Engine:
    limits = RiskLimits.from_config(RiskConfig(daily_loss_limit=Decimal(daily_loss)))
    return Engine(UNIVERSE, Book(), RiskGate(limits), venue, views.get)


VIEWS = {"y": view("y", 400_000, 420_000), "n": view("n", 560_000, 580_000)}


def legs(kind: OrderType = OrderType.FOK) -> tuple[Place, Place]:
    return (
        Place("y", Side.BUY, 420_000, 10 * ONE, kind),
        Place("n", Side.BUY, 570_000, 10 * ONE, kind),
    )


def test_a_refused_order_never_reaches_the_venue() -> None:
    venue = Script()
    out = engine(venue, VIEWS).submit("s", [Place("y", Side.BUY, 425_000, 10 * ONE)], 0.0, 0)
    assert venue.submitted == []
    (rejection,) = out.rejections
    assert "tick" in rejection.reason


def test_a_basket_with_one_refused_leg_sends_no_leg() -> None:
    venue = Script()
    bad = (legs()[0], Place("zz", Side.BUY, 570_000, 10 * ONE, OrderType.FOK))
    out = engine(venue, VIEWS).submit("arb", [Basket("0xa", bad, edge=1)], 0.0, 0)
    assert venue.submitted == []
    assert "leg zz: unknown token" in out.rejections[0].reason


def test_basket_legs_must_be_marketable() -> None:
    out = engine(Script(), VIEWS).submit("arb", [Basket("0xa", legs(OrderType.GTC), 1)], 0.0, 0)
    assert "FOK or FAK" in out.rejections[0].reason


def test_a_complete_basket_needs_no_unwind() -> None:
    venue = Script()
    eng = engine(venue, VIEWS)
    out = eng.submit("arb", [Basket("0xa", legs(), edge=1)], 0.0, 0)
    assert [o.token_id for o in venue.submitted] == ["y", "n"]
    assert sum(e.size for e in out.events if isinstance(e, Fill)) == 20 * ONE
    assert out.decisions == []
    assert list(eng.all_open_orders()) == []


def test_a_partial_basket_unwinds_the_surplus_and_records_the_leg_risk() -> None:
    venue = Script(fills={"n": 0})  # the NO leg is killed
    eng = engine(venue, VIEWS)
    out = eng.submit("arb", [Basket("0xa", legs(), edge=1)], 0.0, 0)
    unwind = venue.submitted[-1]
    assert (unwind.token_id, unwind.side, unwind.size, unwind.tag) == (
        "y",
        Side.SELL,
        10 * ONE,
        "unwind",
    )
    assert unwind.order_type is OrderType.FAK
    assert unwind.price == 10_000  # down to the tick: at market
    assert eng.ledger.position("y") == 0
    (decision,) = out.decisions
    assert decision.kind == "basket.partial"
    assert decision.detail["complete_sets"] == "0"
    assert "10/10" in decision.detail["leg_risk"]


def test_without_unwind_the_surplus_is_kept_and_said() -> None:
    venue = Script(fills={"n": 0})
    eng = engine(venue, VIEWS)
    eng.unwind = False
    out = eng.submit("arb", [Basket("0xa", legs(), edge=1)], 0.0, 0)
    assert len(venue.submitted) == 2
    assert eng.ledger.position("y") == 10 * ONE
    assert "kept" in out.decisions[0].detail["leg_risk"]


def test_cancels_touch_only_the_strategys_own_orders() -> None:
    venue = Script(fills={"y": 0})
    eng = engine(venue, VIEWS)
    bid = Place("y", Side.BUY, 400_000, 10 * ONE)
    eng.submit("mm", [bid], 0.0, 0)
    eng.submit("other", [bid], 0.0, 0)
    (mine,) = eng.open_orders("mm")
    out = eng.submit("other", [Cancel(mine)], 0.0, 0)
    assert "belongs to mm" in out.rejections[0].reason
    gone = eng.submit("mm", [Cancel("filled-meanwhile")], 0.0, 0)
    assert (gone.rejections, gone.events) == ([], [])  # a cancel racing a fill is no error
    eng.submit("mm", [CancelAll("y")], 0.0, 0)
    assert list(eng.open_orders("mm")) == []
    assert len(eng.open_orders("other")) == 1


def test_resting_bids_of_every_strategy_count_against_the_position_limit() -> None:
    venue = Script(fills={"y": 0})  # nothing fills: the bids rest
    limits = RiskLimits.from_config(RiskConfig(max_position_shares=Decimal(25)))
    eng = Engine(UNIVERSE, Book(), RiskGate(limits), venue, VIEWS.get)
    bid = Place("y", Side.BUY, 400_000, 10 * ONE)
    assert eng.submit("mm", [bid], 0.0, 0).rejections == []
    assert eng.submit("other", [bid], 0.0, 0).rejections == []
    (refused,) = eng.submit("mm", [bid], 0.0, 0).rejections  # 30 could fill, limit 25
    assert "resting buys 20" in refused.reason
    assert eng.resting_buys("y") == 20 * ONE
    eng.submit("other", [CancelAll("y")], 0.0, 0)
    assert eng.submit("mm", [bid], 0.0, 0).rejections == []


def test_the_kill_switch_cancels_resting_orders_and_refuses_new_ones() -> None:
    venue = Script(fills={"y": 0})
    views = dict(VIEWS)
    eng = engine(venue, views, daily_loss="5")
    eng.submit("mm", [Place("y", Side.BUY, 400_000, 10 * ONE)], 0.0, 0)  # rests
    venue.fills = {}
    eng.submit("taker", [Place("n", Side.BUY, 580_000, 50 * ONE, OrderType.FAK)], 0.0, 0)
    assert eng.check_loss(1.0, 1_000).decisions == []  # the day starts here
    views["n"] = view("n", 460_000, 480_000)  # the mark falls 0.10 on 50 shares: -5
    out = eng.check_loss(2.0, 2_000)
    assert [d.kind for d in out.decisions] == ["kill_switch"]
    assert list(eng.all_open_orders()) == []
    assert any(isinstance(e, OrderUpdate) and e.status is OrderStatus.CANCELED for e in out.events)
    refused = eng.submit(
        "taker", [Place("n", Side.BUY, 480_000, 10 * ONE, OrderType.FAK)], 3.0, 3_000
    )
    assert refused.rejections[0].reason.startswith("kill switch")


def test_a_leg_that_fills_nothing_stops_the_basket() -> None:
    venue = Script(fills={"y": 0})
    out = engine(venue, VIEWS).submit("arb", [Basket("0xa", legs(), edge=1)], 0.0, 0)
    assert [o.token_id for o in venue.submitted] == ["y"]  # the NO leg never went out
    assert out.decisions == []  # nothing filled: no leg risk


def test_a_fak_leg_after_a_partial_one_asks_only_for_the_sets_still_possible() -> None:
    venue = Script(fills={"y": 6 * ONE})
    eng = engine(venue, VIEWS)
    out = eng.submit("arb", [Basket("0xa", legs(OrderType.FAK), edge=1)], 0.0, 0)
    sent = [(o.token_id, o.size) for o in venue.submitted]
    assert sent == [("y", 10 * ONE), ("n", 6 * ONE)]
    assert out.decisions == []  # 6 complete sets, nothing to unwind
    assert (eng.ledger.position("y"), eng.ledger.position("n")) == (6 * ONE, 6 * ONE)


def test_marks_fall_back_to_one_side_then_to_the_last_fill() -> None:
    views = dict(VIEWS)
    eng = engine(Script(), views)
    eng.submit("taker", [Place("n", Side.BUY, 580_000, 10 * ONE, OrderType.FAK)], 0.0, 0)
    assert eng.marks(["y", "n"]) == {"y": 410_000, "n": 570_000}  # mids
    one_sided = BookView(
        "y", Level(400_000, ONE), None, (Level(400_000, ONE),), (), 10_000, 1, False
    )
    views["y"] = one_sided
    del views["n"]
    assert eng.marks(["y", "n"]) == {"y": 400_000, "n": 580_000}  # the bid; the last fill
    assert eng.marks(["unknown"]) == {}


@attrs.define
class Later(Script):
    """A venue that answers later (like the live one): ``submit`` only queues the order; the
    test delivers what the scripted fills would have been through ``Engine.absorb``."""

    queued: list[Order] = attrs.field(factory=list)

    def submit(
        self, order: Order, view: BookView | None, now: float, ts_ms: int
    ) -> list[ExecEvent]:
        self.queued.append(order)
        return []

    def answer(self, eng: Engine, now: float) -> EngineOutput:
        order = self.queued.pop(0)
        return eng.absorb(Script.submit(self, order, None, now, 0), now)


def test_a_basket_on_a_venue_that_answers_later_sends_one_leg_at_a_time() -> None:
    venue = Later(fills={"n": 4 * ONE})  # the NO leg fills 4 of 10
    eng = engine(venue, VIEWS)
    out = eng.submit("arb", [Basket("0xa", legs(OrderType.FAK), edge=1)], 0.0, 0)
    assert (out.events, [o.token_id for o in venue.queued]) == ([], ["y"])
    assert [o.token_id for o in eng.all_open_orders()] == ["y"]  # counted by risk meanwhile
    venue.answer(eng, 0.1)  # YES filled 10: only now does the NO leg go out
    assert [(o.token_id, o.size) for o in venue.queued] == [("n", 10 * ONE)]
    venue.answer(eng, 0.2)  # NO filled 4: 6 YES are leg risk, unwound at market
    (unwind,) = venue.queued
    assert (unwind.token_id, unwind.side, unwind.size, unwind.tag) == (
        "y",
        Side.SELL,
        6 * ONE,
        "unwind",
    )
    done = venue.answer(eng, 0.3)
    (decision,) = done.decisions
    assert (decision.strategy, decision.kind) == ("arb", "basket.partial")
    assert decision.detail["complete_sets"] == "4"
    assert "6/6 for 0.06" in decision.detail["leg_risk"]  # sold down to the 0.01 tick
    assert eng.ledger.position("y") == eng.ledger.position("n") == 4 * ONE
    assert list(eng.all_open_orders()) == []
