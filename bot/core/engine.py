"""The execution engine: intents in, risk-checked orders to a venue, fills into the portfolio.

One engine serves every strategy (one owner of orders and positions, so risk sees everything). It
is pure and synchronous: the shell (``bot.shell.execution``) feeds it intents, book views and
trades with ``now``/``ts_ms`` and journals what comes out (``EngineOutput``).

* ``Place``: risk-checked (``bot.core.risk``), given an id, sent to the venue.
* ``Cancel`` / ``CancelAll``: only the strategy's own open orders.
* ``Basket``: every leg must be FOK or FAK. All legs are risk-checked first, together (their
  exposure adds up): one refusal refuses the basket, so no leg goes out alone. Then the legs go
  out in order; a leg that fills nothing stops the rest (no set can be completed, so sending them
  would only add leg risk), and a FAK leg after a partial one asks only for the sets still
  possible. If the legs did not all fill the same size, the surplus of each leg over the complete
  sets is *leg risk*: with ``unwind`` it is sold back at market at once (a FAK sell down to the
  tick), and a ``basket.partial`` decision records what was filled, unwound, and what that cost.
* The kill switch: ``check_loss`` computes the day's PnL (marks at the mid) and, when it reaches
  the limit, trips the gate and cancels every resting order.

The venue is anything with the ``Venue`` methods: the paper venue (``bot.core.paper``) fills
against the live book; the live venue arrives with live trading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import attrs

from bot.core.money import Side, format_units, notional_units
from bot.core.trading import (
    Basket,
    Cancel,
    CancelAll,
    Decision,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Place,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Generator, Iterable, Mapping, Sequence

    from bot.core.book import BookView
    from bot.core.risk import RiskGate
    from bot.core.trading import ExecEvent, Intent
    from bot.core.universe import Universe
    from bot.core.wire.market_events import LastTradePrice

__all__ = ["DAY_MS", "Engine", "EngineOutput", "Ledger", "Rejection", "Venue"]

DAY_MS = 86_400_000


class Venue(Protocol):
    """Where orders go (the paper venue implements it synchronously)."""

    def submit(
        self, order: Order, view: BookView | None, now: float, ts_ms: int
    ) -> list[ExecEvent]: ...

    def cancel(self, order_id: str, now: float, reason: str = "canceled") -> list[ExecEvent]: ...

    def watches(self, token_id: str) -> bool: ...

    def on_book(self, view: BookView, now: float, ts_ms: int) -> list[ExecEvent]: ...

    def on_trade(self, trade: LastTradePrice, now: float, ts_ms: int) -> list[ExecEvent]: ...


class Ledger(Protocol):
    """What the engine needs from the portfolio."""

    def apply(self, fill: Fill) -> bool: ...

    def position(self, token_id: str) -> int: ...

    def position_of(self, strategy: str, token_id: str) -> int: ...

    def exposure(self) -> int: ...

    def pnl(
        self,
        universe: Universe,
        marks: Mapping[str, int],
        strategy: str | None = None,
        condition_id: str | None = None,
    ) -> int: ...

    def positions(self) -> Mapping[tuple[str, str], int]: ...

    def resolve(
        self, condition_id: str, winning_token: str | None, token_ids: Collection[str]
    ) -> int: ...

    def undo(self, fill: Fill) -> bool: ...


@attrs.frozen
class Rejection:
    """An intent risk (or the engine) refused, and why."""

    strategy: str
    intent: Intent
    reason: str
    at: float


@attrs.define
class EngineOutput:
    """What one engine call produced, in order: journal it, log it, tell the strategies."""

    events: list[ExecEvent] = attrs.field(factory=list)
    rejections: list[Rejection] = attrs.field(factory=list)
    decisions: list[Decision] = attrs.field(factory=list)

    def extend(self, other: EngineOutput) -> None:
        self.events.extend(other.events)
        self.rejections.extend(other.rejections)
        self.decisions.extend(other.decisions)


@attrs.define(eq=False)
class Engine:
    """Orders, risk and fills for all strategies (see the module docstring).

    Attributes:
        universe: the markets traded.
        ledger: the portfolio.
        risk: the pre-trade gate.
        venue: where orders go.
        views: the newest view of a token (the bus's), ``None`` if none yet.
        unwind: sell back the surplus legs of a partially filled basket.
        id_prefix: order ids are ``<id_prefix><n>``.
    """

    universe: Universe
    ledger: Ledger
    risk: RiskGate
    venue: Venue
    views: Callable[[str], BookView | None]
    unwind: bool = True
    id_prefix: str = "paper-o"
    last_fill_price: dict[str, int] = attrs.field(factory=dict)
    """The last price each token filled at (a mark of last resort; seeded from the journal)."""
    stale: set[str] = attrs.field(factory=set)
    """Tokens the feed marked stale (kept by the shell from ``TokenStale``/``TokenFresh``)."""
    _orders: dict[str, Order] = attrs.field(factory=dict, init=False)
    _by_strategy: dict[str, dict[str, Order]] = attrs.field(factory=dict, init=False)
    _next_id: int = attrs.field(default=0, init=False)
    _day: int | None = attrs.field(default=None, init=False)
    _day_start_pnl: int = attrs.field(default=0, init=False)
    _legs: dict[str, _BasketRun] = attrs.field(factory=dict, init=False)
    """Basket orders in flight -> their basket (resumed when the order ends)."""
    _leg_cash: dict[str, int] = attrs.field(factory=dict, init=False)

    # --- reads -----------------------------------------------------------------------------------

    def open_orders(self, strategy: str) -> Mapping[str, Order]:
        """The strategy's open orders by id (live view: do not mutate)."""
        return self._by_strategy.setdefault(strategy, {})

    @property
    def orders_sent(self) -> int:
        """Orders sent to the venue since start (risk-refused intents are not orders)."""
        return self._next_id

    def all_open_orders(self) -> Collection[Order]:
        return self._orders.values()

    def resting_buys(self, token_id: str) -> int:
        """Shares the open buy orders on ``token_id`` may still buy (cancels in flight too)."""
        return sum(
            o.remaining
            for o in self._orders.values()
            if o.token_id == token_id and o.side is Side.BUY
        )

    def resting_buy_notional(self) -> int:
        """What the resting buy orders would cost if they all filled."""
        return sum(
            notional_units(o.price, o.remaining, round_up=True)
            for o in self._orders.values()
            if o.side is Side.BUY
        )

    def marks(self, tokens: Iterable[str] | None = None) -> dict[str, int]:
        """Prices to value ``tokens`` at (default: every token held): the mid (rounded down);
        with one side of the book only, that side; with no book, the last fill price. A token
        with none of these has no mark (the portfolio then values it at 0)."""
        wanted = tokens if tokens is not None else {token for _, token in self.ledger.positions()}
        marks: dict[str, int] = {}
        for token in wanted:
            view = self.views(token)
            bid = view.best_bid if view is not None else None
            ask = view.best_ask if view is not None else None
            if bid is not None and ask is not None:
                marks[token] = (bid.price + ask.price) // 2
            elif bid is not None:
                marks[token] = bid.price
            elif ask is not None:
                marks[token] = ask.price
            elif token in self.last_fill_price:
                marks[token] = self.last_fill_price[token]
        return marks

    # --- intents ---------------------------------------------------------------------------------

    def submit(
        self, strategy: str, intents: Sequence[Intent], now: float, ts_ms: int
    ) -> EngineOutput:
        """Carry out one strategy's intents, in order."""
        out = EngineOutput()
        for intent in intents:
            if isinstance(intent, Place):
                out.extend(self._place(strategy, intent, now, ts_ms))
            elif isinstance(intent, Cancel):
                order = self._orders.get(intent.order_id)
                if order is None:
                    # Filled or cancelled meanwhile: the ordinary race between a strategy's
                    # view and the venue. Nothing to do; its OrderUpdate is on its way.
                    continue
                if order.strategy != strategy:
                    out.rejections.append(
                        Rejection(
                            strategy,
                            intent,
                            f"order {intent.order_id} belongs to {order.strategy}",
                            now,
                        )
                    )
                else:
                    out.extend(self._absorb(self.venue.cancel(order.id, now, "canceled"), now))
            elif isinstance(intent, CancelAll):
                out.extend(self.cancel_all(strategy, intent.token_id, now, "canceled"))
            else:
                out.extend(self._basket(strategy, intent, now, ts_ms))
        return out

    def cancel_all(
        self, strategy: str | None, token_id: str | None, now: float, reason: str
    ) -> EngineOutput:
        """Cancel the open orders of ``strategy`` (all strategies when ``None``), on one token
        when ``token_id`` is set."""
        out = EngineOutput()
        for order in list(self._orders.values()):
            if (strategy is None or order.strategy == strategy) and (
                token_id is None or order.token_id == token_id
            ):
                out.extend(self._absorb(self.venue.cancel(order.id, now, reason), now))
        return out

    def _check(
        self, strategy: str, place: Place, exposure: int, position: int, now: float
    ) -> str | None:
        token = place.token_id
        try:
            market = self.universe.market_for_token(token)
        except KeyError:
            market = None
        return self.risk.check(
            place,
            market=market,
            view=self.views(token),
            stale=token in self.stale,
            position=position,
            exposure=exposure,
            now=now,
            resting_buys=self.resting_buys(token),
        )

    def _exposure(self) -> int:
        return self.ledger.exposure() + self.resting_buy_notional()

    def _place(self, strategy: str, place: Place, now: float, ts_ms: int) -> EngineOutput:
        reason = self._check(
            strategy, place, self._exposure(), self.ledger.position(place.token_id), now
        )
        if reason is not None:
            return EngineOutput(rejections=[Rejection(strategy, place, reason, now)])
        return self._send(strategy, place, now, ts_ms, basket=None)

    def _send(
        self, strategy: str, place: Place, now: float, ts_ms: int, *, basket: _BasketRun | None
    ) -> EngineOutput:
        self._next_id += 1
        order = Order(
            id=f"{self.id_prefix}{self._next_id}",
            strategy=strategy,
            token_id=place.token_id,
            side=place.side,
            price=place.price,
            size=place.size,
            order_type=place.order_type,
            post_only=place.post_only,
            tag=place.tag,
            created_at=now,
            basket=basket.basket.key if basket is not None else None,
        )
        self._orders[order.id] = order
        self._by_strategy.setdefault(strategy, {})[order.id] = order
        if basket is not None:
            self._legs[order.id] = basket
            self._leg_cash[order.id] = 0
        return self._absorb(self.venue.submit(order, self.views(place.token_id), now, ts_ms), now)

    def _basket(self, strategy: str, basket: Basket, now: float, ts_ms: int) -> EngineOutput:
        if not basket.legs or any(
            leg.order_type not in (OrderType.FOK, OrderType.FAK) for leg in basket.legs
        ):
            return EngineOutput(
                rejections=[
                    Rejection(strategy, basket, "basket legs must be FOK or FAK orders", now)
                ]
            )
        exposure = self._exposure()
        positions: dict[str, int] = {}
        for leg in basket.legs:
            position = positions.get(leg.token_id, self.ledger.position(leg.token_id))
            reason = self._check(strategy, leg, exposure, position, now)
            if reason is not None:
                return EngineOutput(
                    rejections=[Rejection(strategy, basket, f"leg {leg.token_id}: {reason}", now)]
                )
            if leg.side is Side.BUY:
                exposure += notional_units(leg.price, leg.size, round_up=True)
            positions[leg.token_id] = position + (leg.size if leg.side is Side.BUY else -leg.size)
        run = _BasketRun(strategy, basket, self._basket_steps(strategy, basket), now, ts_ms)
        return self._advance(run, None, now)

    def _basket_steps(
        self, strategy: str, basket: Basket
    ) -> Generator[Place, tuple[int, int], Decision | None]:
        """The basket's orders, one at a time: each ``yield`` sends one and receives what it
        filled (shares, and the cash its fills moved so far); returns the leg-risk decision.

        A generator so that the same procedure serves a venue that answers at once (paper) and
        one that answers later (live): the engine resumes it when the order's final status
        arrives, whenever that is."""
        filled: list[tuple[Place, int]] = []
        sets = min(leg.size for leg in basket.legs)
        for leg in basket.legs:
            if sets == 0:  # a leg got nothing: no set can be completed, stop adding leg risk
                filled.append((leg, 0))
                continue
            # A FAK leg after a partial one asks only for the sets the basket can still make.
            send = leg if leg.order_type is OrderType.FOK else attrs.evolve(leg, size=sets)
            size, _ = yield send
            filled.append((leg, size))
            sets = min(sets, size)
        if all(size == sets for _, size in filled):
            return None
        unwound: list[str] = []
        for leg, size in filled:
            surplus = size - sets
            if surplus <= 0:
                continue
            if self.unwind and basket.unwind:
                view = self.views(leg.token_id)
                tick = view.tick_size if view is not None else 10_000
                undo = Place(
                    leg.token_id,
                    Side.SELL if leg.side is Side.BUY else Side.BUY,
                    tick if leg.side is Side.BUY else 1_000_000 - tick,
                    surplus,
                    OrderType.FAK,
                    tag="unwind",
                    note=f"unwind basket {basket.key}",
                )
                got, proceeds = yield undo
                unwound.append(
                    f"{leg.token_id[:12]} {format_units(got)}/{format_units(surplus)} "
                    f"for {format_units(proceeds)}"
                )
            else:
                unwound.append(f"{leg.token_id[:12]} {format_units(surplus)} kept")
        return Decision(
            strategy,
            "basket.partial",
            basket.key,
            {
                "complete_sets": format_units(sets),
                "legs": " ".join(
                    f"{leg.token_id[:12]}={format_units(size)}/{format_units(leg.size)}"
                    for leg, size in filled
                ),
                "leg_risk": "; ".join(unwound),
            },
        )

    def _advance(self, run: _BasketRun, result: tuple[int, int] | None, now: float) -> EngineOutput:
        """Send the basket's next order, or record how it ended."""
        out = EngineOutput()
        try:
            place = next(run.steps) if result is None else run.steps.send(result)
        except StopIteration as stop:
            if stop.value is not None:
                out.decisions.append(stop.value)
            return out
        ts_ms = run.ts_ms + round((now - run.started_at) * 1000)
        out.extend(self._send(run.strategy, place, now, ts_ms, basket=run))
        return out

    # --- market data -----------------------------------------------------------------------------

    def wants_book(self, token_id: str) -> bool:
        """Whether ``on_book`` for this token can do anything (skip building its view if not)."""
        return self.venue.watches(token_id)

    def on_book(self, view: BookView, now: float, ts_ms: int) -> EngineOutput:
        """A new view of a token: resting paper orders may fill."""
        return self._absorb(self.venue.on_book(view, now, ts_ms), now)

    def on_trade(self, trade: LastTradePrice, now: float, ts_ms: int) -> EngineOutput:
        """A trade printed: resting paper orders at or through its price may fill."""
        return self._absorb(self.venue.on_trade(trade, now, ts_ms), now)

    def check_loss(self, now: float, ts_ms: int) -> EngineOutput:
        """Compute the day's PnL; trip the kill switch and cancel everything at the limit."""
        pnl = self.ledger.pnl(self.universe, self.marks())
        day = ts_ms // DAY_MS
        if day != self._day:
            self._day, self._day_start_pnl = day, pnl
        out = EngineOutput()
        if self.risk.check_loss(pnl - self._day_start_pnl):
            out.decisions.append(
                Decision("risk", "kill_switch", "daily_loss", {"reason": self.risk.killed or ""})
            )
            out.extend(self.cancel_all(None, None, now, "kill_switch"))
        return out

    # --- bookkeeping -----------------------------------------------------------------------------

    def absorb(self, events: Sequence[ExecEvent], now: float) -> EngineOutput:
        """Events a venue reported on its own (the live venue: REST answers and the user
        channel, after the call that caused them returned)."""
        return self._absorb(list(events), now)

    def undo(self, fill: Fill) -> bool:
        """A provisional fill whose trade failed on chain never happened: take it back."""
        return self.ledger.undo(fill)

    def _absorb(self, events: list[ExecEvent], now: float) -> EngineOutput:
        ended: list[tuple[_BasketRun, OrderUpdate]] = []
        for event in events:
            if isinstance(event, Fill):
                if self.ledger.apply(event):
                    self.last_fill_price[event.token_id] = event.price
                    if event.order_id in self._leg_cash:
                        self._leg_cash[event.order_id] += notional_units(
                            event.price, event.size, round_up=event.side is Side.BUY
                        )
            elif isinstance(event, OrderUpdate) and event.status is not OrderStatus.LIVE:
                order = self._orders.pop(event.order_id, None)
                if order is not None:
                    self._by_strategy.get(order.strategy, {}).pop(order.id, None)
                run = self._legs.pop(event.order_id, None)
                if run is not None:
                    ended.append((run, event))
        out = EngineOutput(events=list(events))
        for run, update in ended:  # after every event of the batch is booked
            cash = self._leg_cash.pop(update.order_id, 0)
            out.extend(self._advance(run, (update.filled, cash), now))
        return out


@attrs.define(eq=False)
class _BasketRun:
    """A basket being carried out: its steps resume as each order's final status arrives."""

    strategy: str
    basket: Basket
    steps: Generator[Place, tuple[int, int], Decision | None]
    started_at: float
    ts_ms: int
