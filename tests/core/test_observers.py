"""The observer strategies on hand-built books: open once, close once, skip stale and thin."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from bot.core.book import BookView
from bot.core.money import ONE
from bot.core.observers import ComplementWatch, NegRiskWatch
from bot.core.universe import Event, Market, Outcome, Universe
from bot.core.wire.market_events import Level


def market(
    cid: str, yes: str, no: str, *, neg_risk: bool = False, event: str | None = None
) -> Market:
    return Market(
        condition_id=cid,
        question=f"question {cid}",
        slug=cid,
        outcomes=(Outcome("Yes", yes), Outcome("No", no)),
        tick_size=10_000,
        min_order_size=5 * ONE,
        neg_risk=neg_risk,
        neg_risk_market_id="",
        event_id=event,
        end_date=datetime(2027, 1, 1, tzinfo=UTC),
        liquidity=Decimal(1000),
        volume=Decimal(1000),
        fee_rate=0,
        accepting_orders=True,
    )


def view(token: str, bid: int | None, ask: int | None, *, stale: bool = False) -> BookView:
    best_bid = Level(bid, 100 * ONE) if bid is not None else None
    best_ask = Level(ask, 50 * ONE) if ask is not None else None
    return BookView(
        asset_id=token,
        best_bid=best_bid,
        best_ask=best_ask,
        bids=(best_bid,) if best_bid else (),
        asks=(best_ask,) if best_ask else (),
        tick_size=10_000,
        last_update_ms=1,
        stale=stale,
    )


def test_complement_watch_opens_once_and_closes_once() -> None:
    universe = Universe(markets=(market("0xa", "y", "n"),), events=())
    watch = ComplementWatch(universe)
    views = {"y": view("y", 470_000, 480_000), "n": view("n", 500_000, 510_000)}
    (opened,) = watch.on_books(views, ["y"], 0.0)
    assert opened.kind == "opportunity.open"
    assert opened.detail["edge"] == "0.01"
    assert opened.detail["size"] == "50"
    assert watch.on_books(views, ["n"], 0.1) == []  # still open: not reported again
    views["y"] = view("y", 470_000, 500_000)
    (closed,) = watch.on_books(views, ["y"], 0.2)
    assert closed.kind == "opportunity.close"
    assert closed.detail["cost"] == "1.01"


def test_complement_watch_ignores_stale_books_and_min_edge() -> None:
    universe = Universe(markets=(market("0xa", "y", "n"),), events=())
    views = {"y": view("y", 470_000, 480_000, stale=True), "n": view("n", 500_000, 510_000)}
    assert ComplementWatch(universe).on_books(views, ["y"], 0.0) == []
    views["y"] = view("y", 470_000, 480_000)
    assert ComplementWatch(universe, min_edge=20_000).on_books(views, ["y"], 0.0) == []


def test_neg_risk_watch_needs_every_outcome_and_sums_yes_asks() -> None:
    members = tuple(market(f"0x{i}", f"y{i}", f"n{i}", neg_risk=True, event="e1") for i in range(3))
    event = Event(id="e1", slug="e1", title="Who wins?", neg_risk=True, markets=members)
    watch = NegRiskWatch(Universe(markets=members, events=(event,)))
    views = {"y0": view("y0", None, 300_000), "y1": view("y1", None, 300_000)}
    assert watch.on_books(views, ["y0"], 0.0) == []  # one outcome has no book yet
    views["y2"] = view("y2", None, 390_000)
    (opened,) = watch.on_books(views, ["y2"], 0.1)
    assert opened.detail["sum_yes_asks"] == "0.99"
    assert opened.detail["outcomes"] == "3"
    views["y2"] = view("y2", None, 400_000)
    (closed,) = watch.on_books(views, ["y2"], 0.2)
    assert closed.kind == "opportunity.close"
