"""The trading vocabulary shared by strategies, risk, the paper venue and the execution engine.

Everything here is plain data (frozen attrs classes and enums): a strategy *returns* intents, it
never sends an order itself, so its logic is a pure function of what it is shown and ``now``.

Flow::

    feed -> bus -> strategy task: Strategy.on_books(ctx, changed) -> [Intent | Decision]
                                                     |
    execution task: risk checks -> venue (paper or live) -> ExecEvent (OrderUpdate, Fill)
                                                     |
          journal (SQLite)  <-  portfolio  ->  strategies see ctx.inventory / ctx.orders

Units: prices and sizes are integer micro-units (``bot.core.money``): a price of 0.52 is
``520_000``, 12.5 shares is ``12_500_000``; money (notional, fees, PnL) is micro-units of pUSD.
Times: ``now``/``at`` are the runtime's monotonic seconds (``trio.current_time()``), passed in;
``ts_ms`` fields are wall-clock epoch milliseconds, for the journal and reports only.

The execution events (``OrderUpdate``, ``Fill``) are what *both* venues produce: the paper
venue from the live book, the live venue from the user channel (``bot.core.wire.user``). A
strategy cannot tell them apart, which is the point of paper trading.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, TypeAlias

import attrs

from bot.core.money import Side

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from bot.core.book import BookView
    from bot.core.universe import Universe

__all__ = [
    "Action",
    "Basket",
    "Cancel",
    "CancelAll",
    "Context",
    "Decision",
    "ExecEvent",
    "Fill",
    "Intent",
    "Inventory",
    "Liquidity",
    "Order",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Place",
    "Side",
    "Strategy",
]


class OrderType(StrEnum):
    """Time in force, as the venue spells it (PROTOCOL.md 4.3)."""

    GTC = "GTC"
    """Rests until filled or cancelled."""
    GTD = "GTD"
    """Rests until its expiry."""
    FOK = "FOK"
    """Marketable: fills completely at once or is killed."""
    FAK = "FAK"
    """Marketable: fills what is available at once, the rest is cancelled."""

    @property
    def rests(self) -> bool:
        """Whether an unfilled remainder stays on the book."""
        return self in (OrderType.GTC, OrderType.GTD)


class OrderStatus(StrEnum):
    """The life of an order, as the engine tracks it."""

    LIVE = "live"
    """Accepted and resting (possibly partly filled)."""
    MATCHED = "matched"
    """Completely filled. Terminal."""
    CANCELED = "canceled"
    """Cancelled (by us, by the venue, or the unfilled rest of a FOK/FAK). Terminal."""
    REJECTED = "rejected"
    """Refused by risk or by the venue before it ever rested. Terminal."""

    @property
    def terminal(self) -> bool:
        return self is not OrderStatus.LIVE


class Liquidity(StrEnum):
    """Which side of a match a fill was on (only takers pay fees, PROTOCOL.md 7.1)."""

    MAKER = "maker"
    TAKER = "taker"


# --- intents: what a strategy asks for ----------------------------------------------------------


@attrs.frozen
class Place:
    """Place one limit order.

    Attributes:
        token_id: the token to trade.
        side: BUY or SELL.
        price: limit price, micro-units, on the token's tick (for FOK/FAK: the worst price).
        size: shares, micro-units (the venue takes 2 decimals: multiples of 10_000).
        order_type: time in force.
        post_only: reject instead of taking (GTC/GTD only).
        tag: the strategy's own label for the order (e.g. ``"bid"``), echoed in ``Order.tag``.
        note: why, for humans and the journal.
    """

    token_id: str
    side: Side
    price: int
    size: int
    order_type: OrderType = OrderType.GTC
    post_only: bool = False
    tag: str = ""
    note: str = ""


@attrs.frozen
class Cancel:
    """Cancel one of the strategy's own open orders."""

    order_id: str
    note: str = ""


@attrs.frozen
class CancelAll:
    """Cancel all of the strategy's open orders (on one token when ``token_id`` is set)."""

    token_id: str | None = None
    note: str = ""


@attrs.frozen
class Basket:
    """A multi-leg trade that is only worth doing whole (an arbitrage).

    Every leg must be FOK or FAK. The engine sends all legs at once; if some fill and others do
    not, it unwinds the filled legs at market (when ``unwind``) and records the leg risk taken.

    Attributes:
        key: what the basket is about (a condition id, an event id); also its debounce key.
        legs: the orders, FOK or FAK.
        edge: the expected profit of the whole basket after fees, micro-units of pUSD.
        unwind: sell back a partial set at market.
        note: why, for humans and the journal.
    """

    key: str
    legs: tuple[Place, ...]
    edge: int
    unwind: bool = True
    note: str = ""


Intent: TypeAlias = Place | Cancel | CancelAll | Basket


@attrs.frozen
class Decision:
    """Something a strategy noticed or decided that is not an order (logged and journaled).

    Attributes:
        strategy: the strategy's name.
        kind: what (``opportunity.open``, ``quote.pulled``, ...).
        key: what it is about (a condition id, an event id, a token id).
        detail: printable figures (prices as venue decimal strings).
    """

    strategy: str
    kind: str
    key: str
    detail: Mapping[str, str]


Action: TypeAlias = Intent | Decision
"""What a strategy returns."""


# --- execution: orders and what happens to them -------------------------------------------------


@attrs.define(eq=False)
class Order:
    """An order the engine knows, mutable as it fills (owned by the execution task).

    Attributes:
        id: the order id (the venue's hash live; ``paper-<n>`` on paper).
        strategy: who placed it.
        token_id, side, price, size, order_type, post_only, tag: as placed.
        filled: shares matched so far, micro-units.
        status: where it is in its life.
        created_at: monotonic seconds when accepted.
        basket: the basket key when it is a leg.
        queue_ahead: paper only: shares ahead of it at its price.
    """

    id: str
    strategy: str
    token_id: str
    side: Side
    price: int
    size: int
    order_type: OrderType = OrderType.GTC
    post_only: bool = False
    tag: str = ""
    filled: int = 0
    status: OrderStatus = OrderStatus.LIVE
    created_at: float = 0.0
    basket: str | None = None
    queue_ahead: int = 0

    @property
    def remaining(self) -> int:
        return self.size - self.filled


@attrs.frozen
class OrderUpdate:
    """An order changed state (placed, cancelled, rejected, matched).

    Attributes:
        order_id, strategy, token_id, side, price, size: the order.
        filled: shares matched so far.
        status: its new status.
        reason: why (a rejection's reason, ``"fok_unfilled"``, ``"market_resolved"``...).
        at: monotonic seconds.
    """

    order_id: str
    strategy: str
    token_id: str
    side: Side
    price: int
    size: int
    filled: int
    status: OrderStatus
    reason: str = ""
    at: float = 0.0


@attrs.frozen
class Fill:
    """Shares changed hands for one of our orders.

    Attributes:
        fill_id: unique (the venue's trade id plus our order id live; ``paper-f<n>`` on paper).
        order_id, strategy, token_id, side: the order.
        price: the execution price, micro-units.
        size: shares, micro-units.
        fee: fee paid, micro-units of pUSD (0 for a maker).
        liquidity: maker or taker.
        at: monotonic seconds.
        ts_ms: wall clock, epoch milliseconds.
    """

    fill_id: str
    order_id: str
    strategy: str
    token_id: str
    side: Side
    price: int
    size: int
    fee: int
    liquidity: Liquidity
    at: float = 0.0
    ts_ms: int = 0


ExecEvent: TypeAlias = OrderUpdate | Fill


# --- what a strategy sees -----------------------------------------------------------------------


class Inventory:
    """Positions by strategy and token (read-only for strategies; the portfolio implements it)."""

    def position(self, token_id: str) -> int:
        """Net shares of ``token_id`` held across all strategies, micro-units."""
        raise NotImplementedError

    def position_of(self, strategy: str, token_id: str) -> int:
        """Net shares of ``token_id`` held by ``strategy``, micro-units."""
        raise NotImplementedError


@attrs.frozen
class Context:
    """Everything a strategy may look at, at one instant.

    Attributes:
        now: monotonic seconds.
        books: the newest view of every token seen so far.
        universe: the markets and events being traded.
        inventory: positions (shared by all strategies: the coordination view).
        orders: this strategy's open orders by id.
        stale: tokens whose books are not known to match the venue (also ``BookView.stale``).
    """

    now: float
    books: Mapping[str, BookView]
    universe: Universe
    inventory: Inventory
    orders: Mapping[str, Order]
    stale: Collection[str]

    def usable(self, token_id: str) -> BookView | None:
        """The token's view if it exists and is fresh, else ``None`` (never trade stale books)."""
        view = self.books.get(token_id)
        if view is None or view.stale or token_id in self.stale:
            return None
        return view


class Strategy:
    """The base of every strategy: pure, synchronous, stateful only in its own fields.

    The runner calls these hooks from the strategy's own task; each returns the actions to take
    (``[]`` for none). Override what you need. Never do I/O, never read a clock: use
    ``ctx.now``. To be called back later (a debounce), return a time from ``wakeup_at``.
    """

    name: str = "strategy"

    def on_books(self, ctx: Context, changed: Collection[str]) -> Sequence[Action]:
        """Books of ``changed`` tokens moved (their newest views are in ``ctx.books``)."""
        return []

    def on_event(self, ctx: Context, event: object) -> Sequence[Action]:
        """A must-not-lose event: ``LastTradePrice``, ``TickSizeChange``, ``MarketResolved``,
        or one of the strategy's own ``OrderUpdate``/``Fill``."""
        return []

    def on_stale(self, ctx: Context, tokens: Collection[str], stale: bool) -> Sequence[Action]:
        """``tokens`` became stale (``stale=True``) or fresh again."""
        return []

    def on_timer(self, ctx: Context) -> Sequence[Action]:
        """The time asked for by ``wakeup_at`` has come."""
        return []

    def wakeup_at(self) -> float | None:
        """When ``on_timer`` should next run (monotonic seconds), or ``None``."""
        return None
