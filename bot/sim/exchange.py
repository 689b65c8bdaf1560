"""The sim venue's exchange model: true order books, seeded order flow, injected opportunities.

``SimExchange`` owns the "true" books of every market of a ``Universe`` and produces the market
channel's wire events (``book``, ``price_change``, ``last_trade_price``, ``tick_size_change``,
``best_bid_ask``, ``market_resolved``) as dicts ready for ``orjson.dumps``, exactly in the shapes of
the real captures (PROTOCOL.md section 1, ``tests/fixtures``). It is pure, like ``bot.core``: no
trio, no I/O, no clock (every call takes ``now_ms``), no logging, and randomness only through the
injected ``random.Random``. The same seed and the same sequence of calls with the same ``now_ms``
values give identical outputs. The I/O shell (``bot.sim.server``) decides *when* to call
``step``/``inject``/``expire`` and who receives the events.

Books and mirroring
-------------------
Every market has two ``bot.core.book.OrderBook``s, one per token, and they are always exact
mirrors, as on the venue (PROTOCOL.md 7.2): a YES bid at ``p`` for ``s`` shares *is* a NO ask at
``1 - p`` for ``s``. Internally every change is made once, in YES coordinates, and applied to both
books; each resulting ``price_change`` carries the change of the token the action "originated"
on and the mirrored change of its complement (opposite side, price ``1 - p``, same new total), each
with its own token's ``best_bid``/``best_ask`` after the change -- the shape of the real burst in
``tests/fixtures/nautilus_index/ws_market_price_change_crossing_burst.json``. A shadow
``price -> size`` dict per YES side gives O(1) level sizes (``OrderBook`` exposes ladders, not
point lookups). Each change's ``hash`` is a pseudo-random 40-hex string from the rng: what the
venue hashes there is unverified (PROTOCOL.md 1.5) and no client can check it. The ``book``
snapshot's ``hash`` is the real algorithm (``book_hash``).

The order-flow model
--------------------
Each market has a hidden *fair price* (``SimMarket.fair_price``: the true YES probability).
Stand-alone binaries random-walk it slowly (``FlowConfig.p_drift``, ``drift_step``); neg-risk
members keep theirs, so a temperature ladder stays priced by its forecast. ``step(now_ms)`` does
exactly one action on one market, chosen with probability proportional to ``SimMarket.activity``
(a bisection over precomputed cumulative weights: O(log n), no per-step O(markets) work):

* **add** (``p_add``): a limit order joins a side at ``k`` ticks behind the best price *this side
  may quote*: bids below the fair price and below the best ask, asks above the fair price and
  above the best bid, so flow never crosses the book and the spread stays a few ticks wide.
  ``k`` is geometric (``depth_decay`` is the chance to join at the touch). Sizes look like real
  ones: often round (5, 100, 1000 shares...), otherwise log-uniform between 5 and 5,000 shares
  with two decimals. A side already holding ``max_levels`` levels loses its worst level first.
* **cancel** (``p_cancel``): a random level on a random side shrinks or disappears. A side at
  or below half its seeded depth is not thinned further (the action becomes an add there), and
  an add on a side thinner than its seeded depth opens, half of the time, a level anywhere
  within twice that depth: so each book keeps roughly its seeded number of levels instead of
  eroding to the touch (measured with the defaults: ~12 levels per book, both sides, after
  400,000 steps, against ~15 seeded).
* **trade** (``p_trade``): a taker hits the touch: usually the whole best level or part of it,
  sometimes sweeping into the next. Takers lean toward the fair price (asks below it get lifted,
  bids above it get hit), which is what pulls a drifted book back. A trade emits the consumed
  levels as ``price_change``, then one ``last_trade_price`` per match per token (the YES taker
  side on the YES token, the opposite on the NO token, at ``1 - p``; one shared transaction
  hash), and optionally a fresh ``book`` per token (``book_after_trade``).
* **tick size** (``p_tick_size_change``): if a 0.01 market's mid has moved below 0.04 or above
  0.96 its tick becomes 0.001; if a market *listed* at 0.01 is back within [0.05, 0.95] on
  0.001, the levels off the 0.01 grid are cancelled (a ``price_change``) and the tick goes back.
  Otherwise the action is an add. Both tokens get a ``tick_size_change``.

After every action, each token whose top of book moved also gets a ``best_bid_ask`` (custom
feature; ``spread`` is reported as 0 while a book is crossed, which only an injected opportunity
or a script can cause). A market locked by an open opportunity receives no flow until the
opportunity expires, so an injected edge lives exactly ``opportunity_lifetime_ms``.

Accounts' resting orders
------------------------
The venue's accounts (``bot.sim.accounts``, through the server) rest their orders *in* these
books with ``rest(token, side, price, order_id, owner, size, now_ms)`` and take them out with
``cancel_resting``. A level holding account orders keeps a queue in time priority (``_Slot``s:
simulated liquidity and account orders), so the simulated flow can treat the two apart:

* **Flow only cancels flow.** Simulated cancels, a side's worst level pushed out, levels off a
  coarser tick and the scripted ``set_level``/``set_book`` change only the simulated part of a
  level; it never shows less than the accounts' orders in it. Simulated size added to a level
  joins the back of its queue. A cancel takes the newest simulated size first (behind the
  account orders, then ahead of them): most cancels on a real book are of recent orders.
* **Trades fill in price-time priority.** A taker walking a level (simulated flow, the
  competitor taking an opportunity, ``trade`` and the server's account takers alike) takes its
  queue from the front: the size that was displayed ahead of an account order when it was
  placed (``queue_ahead``), then the order, then what joined later. Each level where account
  orders were filled is recorded as a ``MakerMatch``; the shell collects them with
  ``drain_maker_matches`` and settles them (balances, the user channel). The market channel
  shows the trade exactly as any other.
* **Self-trade prevention.** A taker that is itself an account (``trade(..., taker_owner=)``,
  ``levels(..., skip_owner=)``) walks past that account's own orders: they stay where they are,
  in the queue, and what is behind them fills. PROTOCOL.md does not say what Polymarket's CLOB
  does here (its perps venue documents cancelling the resting order instead); skipping is the
  choice that changes nobody's orders behind their back.
* Opportunities are not planted on a market holding account orders (planting pulls levels and
  crosses books, which would cross or pull an account's order). ``resolve`` empties the market's
  levels, account orders included (what becomes of those orders is the server's business).

Levels without account orders have no queue and cost nothing extra: the flow's hot path only
looks the level up in an empty dict.

Opportunities
-------------
``inject(kind, now_ms)`` plants one and returns the events that show it:

* ``COMPLEMENT``: a YES ask below the YES best bid (a transient cross). Because the NO ask is
  ``1 - YES bid``, buying YES at the ask and NO at its ask costs ``1 - edge`` for a pair that pays
  1. Planted on a stand-alone binary when one fits: on an event's member the cheap ask would
  also lower the event's sum of asks (a second, neg-risk, edge in the same injection).
* ``NEG_RISK``: the brackets' best YES asks are lowered, on their ticks, so the sum of the
  event's YES asks is below 1 by at least the drawn edge: first within each spread, and where
  that is not enough (a ladder of 0.01 brackets) further down, pulling the bids the new asks
  reach, so no single book crosses.
* ``TEMPERATURE_MISPRICE``: a temperature bracket gets an ask far below its fair price (bids at or
  above it are cancelled) or a bid far above it (asks at or below it are cancelled).

``expire(now_ms)`` lets a simulated competitor take every opportunity whose ``expires_ms`` has
passed: it buys the legs (uncrossing a ``COMPLEMENT`` fully), emitting the trades.

Cost
----
``step()``, building its dicts included, measured ~20 us on average with 10,000 assets
(CPython 3.11, one core: ``test_step_is_cheap_with_ten_thousand_assets``), about 1.7 events per
step; seeding 10,000 books takes ~0.4 s. ``book_json`` costs ~30 us (levels, formatting and the
SHA-1).
"""

from __future__ import annotations

import enum
import hashlib
import math
from bisect import bisect_right
from typing import TYPE_CHECKING, Any, Final

import attrs
import orjson

from bot.core.book import OrderBook
from bot.core.money import ONE, Side, format_units
from bot.core.wire.market_events import BookSnapshot, Level, PriceLevelChange, TickSizeChange
from bot.sim.universe import (
    TICK_COARSE,
    TICK_FINE,
    MarketState,
    SimEvent,
    SimMarket,
    Universe,
    tag_slug,
)

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "ExchangeStatistics",
    "FlowConfig",
    "MakerMatch",
    "NoSuitableMarket",
    "Opportunity",
    "OpportunityKind",
    "SimExchange",
    "WireEvent",
    "book_hash",
]

WireEvent = dict[str, Any]
"""One wire event object, ready for ``orjson.dumps``."""

_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_SIDE_TEXT: Final = ("BUY", "SELL")  # indexed by Side
_CENT: Final = 10_000  # 0.01 share: every generated size is a whole number of these
_ROUND_SIZES: Final = tuple(
    shares * 1_000_000
    for shares in (5, 10, 20, 25, 50, 100, 150, 200, 250, 500, 1000, 2000, 2500, 5000, 10000)
)
_LOG_MIN_CENTS: Final = math.log(500)  # 5 shares
_LOG_MAX_CENTS: Final = math.log(500_000)  # 5,000 shares
_EXTREME_LOW: Final = 40_000
_EXTREME_HIGH: Final = 960_000
_BACK_LOW: Final = 50_000
_BACK_HIGH: Final = 950_000
_FAIR_MIN: Final = 2_000
_FAIR_MAX: Final = 998_000
_PICK_TRIES: Final = 8


def _range(_: object, attribute: attrs.Attribute[tuple[int, int]], value: tuple[int, int]) -> None:
    low, high = value
    if not 0 < low <= high:
        raise ValueError(f"{attribute.name} must be (low, high) with 0 < low <= high, got {value}")


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value}")


@attrs.frozen
class FlowConfig:
    """Knobs of the order-flow model and of opportunity injection.

    Attributes:
        events_per_second: how many ``step`` calls per second the shell should make.
        seed_levels: (min, max) levels per side when seeding an ordinary or busy book.
        quiet_seed_levels: (min, max) levels per side when seeding a quiet market's thin book.
        max_levels: levels a side may hold before new orders push out the worst one.
        p_add: relative weight of an add.
        p_cancel: relative weight of a cancel.
        p_trade: relative weight of a trade.
        p_tick_size_change: relative weight of a tick-size check (becomes an add when the
            market's price does not call for a change).
        p_drift: per step on a stand-alone binary, the chance that its fair price moves.
        drift_step: how far the fair price moves, micro-units.
        depth_decay: chance that an add joins at the best price it may quote (else one tick
            further, and so on: a geometric depth).
        book_after_trade: also emit a fresh ``book`` per token after each trade (the venue does,
            per PROTOCOL.md 8.4); off by default because it costs a serialisation and a hash.
        opportunity_rate: injected opportunities per second (for the shell).
        opportunity_lifetime_ms: how long an opportunity lasts before a competitor takes it.
        complement_edge_ticks: (min, max) ticks the COMPLEMENT ask sits below the best bid.
        neg_risk_edge: (min, max) edge of a NEG_RISK opportunity, micro-units.
        mispricing_edge: (min, max) distance from the fair price of a TEMPERATURE_MISPRICE.
        opportunity_size: (min, max) shares planted per leg, micro-units.
    """

    events_per_second: float = 200.0
    seed_levels: tuple[int, int] = attrs.field(default=(5, 15), validator=_range)
    quiet_seed_levels: tuple[int, int] = attrs.field(default=(1, 4), validator=_range)
    max_levels: int = 25
    p_add: float = 0.47
    p_cancel: float = 0.38
    p_trade: float = 0.12
    p_tick_size_change: float = 0.03
    p_drift: float = attrs.field(default=0.02, validator=_probability)
    drift_step: int = 5_000
    depth_decay: float = attrs.field(default=0.4, validator=_probability)
    book_after_trade: bool = False
    opportunity_rate: float = 0.05
    opportunity_lifetime_ms: int = 2_000
    # Wide enough that some edges survive taker fees (up to ~0.0125 per leg at 0.05 and p = 0.5,
    # PROTOCOL.md 7.1) and some do not: the strategies must tell them apart.
    complement_edge_ticks: tuple[int, int] = attrs.field(default=(1, 8), validator=_range)
    neg_risk_edge: tuple[int, int] = attrs.field(default=(5_000, 60_000), validator=_range)
    mispricing_edge: tuple[int, int] = attrs.field(default=(50_000, 150_000), validator=_range)
    opportunity_size: tuple[int, int] = attrs.field(
        default=(20_000_000, 500_000_000), validator=_range
    )

    def __attrs_post_init__(self) -> None:
        weights = (self.p_add, self.p_cancel, self.p_trade, self.p_tick_size_change)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"action weights must be >= 0 with a positive sum, got {weights}")
        if self.max_levels < self.seed_levels[1] or self.max_levels < self.quiet_seed_levels[1]:
            raise ValueError("max_levels must be at least the seeded levels")
        if self.opportunity_lifetime_ms < 0:
            raise ValueError("opportunity_lifetime_ms must be >= 0")


class OpportunityKind(enum.Enum):
    """What kind of edge ``SimExchange.inject`` plants."""

    COMPLEMENT = "complement"
    """YES ask + NO ask below 1: a YES ask placed below the YES best bid (a transient cross)."""

    NEG_RISK = "neg_risk"
    """The YES best asks of a neg-risk event sum to less than 1."""

    TEMPERATURE_MISPRICE = "temperature_misprice"
    """A temperature bracket's ask far below its fair price, or its bid far above."""


@attrs.frozen
class Opportunity:
    """An injected opportunity: buy ``token_ids`` at ``prices`` for ``size`` each.

    Attributes:
        id: sequence number (1, 2, ...).
        kind: the kind.
        condition_ids: markets involved.
        token_ids: the tokens to *buy* to capture it (COMPLEMENT: YES and NO; NEG_RISK: every
            YES; TEMPERATURE_MISPRICE: YES for a cheap ask, NO for a rich bid).
        prices: the best ask of each of ``token_ids`` right after injection, micro-units.
        edge: profit per share set, micro-units: ``1 - sum(prices)`` for COMPLEMENT and NEG_RISK,
            the distance from the fair price for TEMPERATURE_MISPRICE (before fees).
        size: shares available on every leg, micro-units.
        created_ms: injection time.
        expires_ms: when a competitor takes it (``expire``).
        event_id: the neg-risk event, if any.
    """

    id: int
    kind: OpportunityKind
    condition_ids: tuple[str, ...]
    token_ids: tuple[str, ...]
    prices: tuple[int, ...]
    edge: int
    size: int
    created_ms: int
    expires_ms: int
    event_id: str | None = None


@attrs.frozen
class ExchangeStatistics:
    """Counters of a ``SimExchange`` (see ``SimExchange.statistics``).

    Attributes:
        steps: ``step`` calls that acted on a market.
        events: wire events produced, by ``event_type`` (snapshots from ``book_json`` excluded).
        trades: matches (one per price level consumed).
        traded_size: shares matched, micro-units.
        opportunities_injected: opportunities planted.
        opportunities_expired: opportunities taken by the simulated competitor.
        open_opportunities: opportunities currently open.
        tick_size_changes: market tick changes.
        markets_resolved: markets resolved.
    """

    steps: int
    events: dict[str, int]
    trades: int
    traded_size: int
    opportunities_injected: int
    opportunities_expired: int
    open_opportunities: int
    tick_size_changes: int
    markets_resolved: int


@attrs.frozen
class MakerMatch:
    """A taker's match at one level that filled accounts' resting orders (see the module doc).

    Everything is in the taker's token: the token the taking action came in on (``trade``'s
    ``token_id``; for the simulated flow the token its wire events list first).

    Attributes:
        condition_id: the market.
        token_id: the taker's token.
        side: the taker's side on ``token_id``.
        price: the level's price on ``token_id``, micro-units.
        size: shares the taker matched at this level, simulated liquidity included.
        makers: ``(order_id, shares)`` of each account order filled, in queue order.
        taker_owner: the account that took (``trade(..., taker_owner=)``), or ``None`` for the
            simulated flow and the opportunities' competitor.
    """

    condition_id: str
    token_id: str
    side: Side
    price: int
    size: int
    makers: tuple[tuple[str, int], ...]
    taker_owner: str | None = None


class NoSuitableMarket(LookupError):
    """``inject`` found no open, unlocked market or event able to carry that opportunity."""


def book_hash(
    *,
    market: str,
    asset_id: str,
    timestamp: str,
    bids: Sequence[Mapping[str, str]],
    asks: Sequence[Mapping[str, str]],
    min_order_size: str,
    tick_size: str,
    neg_risk: bool,
    last_trade_price: str,
) -> str:
    """The venue's order-book hash (PROTOCOL.md 1.7, VECTORS.md 6).

    SHA-1 (lowercase hex) of the compact JSON of the book summary with ``hash`` set to "" and the
    keys in the order ``market, asset_id, timestamp, hash, bids, asks, min_order_size,
    tick_size, neg_risk, last_trade_price``; each level ``{"price", "size"}`` in wire order. All
    values are the wire spellings (strings, and ``neg_risk`` a boolean).
    """
    summary = {
        "market": market,
        "asset_id": asset_id,
        "timestamp": timestamp,
        "hash": "",
        "bids": list(bids),
        "asks": list(asks),
        "min_order_size": min_order_size,
        "tick_size": tick_size,
        "neg_risk": neg_risk,
        "last_trade_price": last_trade_price,
    }
    return hashlib.sha1(orjson.dumps(summary), usedforsecurity=False).hexdigest()


# --- internal state ----------------------------------------------------------------------------


@attrs.define(eq=False)
class _Slot:
    """One entry of a level's queue: simulated liquidity (``order_id`` "") or an account order."""

    size: int
    order_id: str = ""
    owner: str = ""


@attrs.define(eq=False)
class _Resting:
    """Where an account order rests: its market, YES side and price, and its queue entry."""

    state: _Market
    side: Side
    price: int
    slot: _Slot
    no_first: bool


@attrs.define(eq=False)
class _Market:
    """The exchange's mutable state of one market (YES coordinates).

    ``queues`` holds, per ``(YES side, YES price)`` level with account orders in it, the level's
    queue front first; its sizes always sum to the level's size in ``bids``/``asks``.
    """

    market: SimMarket
    yes: OrderBook
    no: OrderBook
    bids: dict[int, int]
    asks: dict[int, int]
    tick: int
    fair: int
    max_levels: int
    target_levels: int
    drifts: bool
    last_trade: int | None = None
    closed: bool = False
    winner: str | None = None
    locked_by: int = 0
    queues: dict[tuple[Side, int], list[_Slot]] = attrs.field(factory=dict)


@attrs.frozen
class _Leg:
    """What the competitor does to take one leg: a YES taker order with a limit price."""

    state: _Market
    taker: Side
    limit: int
    size: int
    no_first: bool


@attrs.frozen
class _Open:
    opportunity: Opportunity
    markets: tuple[_Market, ...]
    legs: tuple[_Leg, ...]


def _below(price: int, tick: int) -> int:
    """The largest multiple of ``tick`` strictly below ``price``."""
    return (price - 1) // tick * tick


def _above(price: int, tick: int) -> int:
    """The smallest multiple of ``tick`` strictly above ``price``."""
    return (price // tick + 1) * tick


# --- the exchange ------------------------------------------------------------------------------


@attrs.define(eq=False)
class SimExchange:
    """The true books of a universe, an order-flow model and opportunity injection.

    Args:
        universe: the markets.
        flow: order-flow and opportunity knobs.
        rng: the only source of randomness (seed it for reproducible runs).
        now_ms: the construction time; the seeded books carry it as their timestamp.

    Construction seeds every market's books around its fair price: ``seed_levels`` levels per
    side (``quiet_seed_levels`` for quiet markets), a spread of one to a few ticks, gaps of a
    tick or two between levels, and a plausible last trade on most markets.
    """

    universe: Universe
    flow: FlowConfig
    rng: random.Random = attrs.field(repr=False)
    now_ms: int
    _states: list[_Market] = attrs.field(init=False, factory=list, repr=False)
    _by_token: dict[str, tuple[_Market, bool]] = attrs.field(init=False, factory=dict, repr=False)
    _by_condition: dict[str, _Market] = attrs.field(init=False, factory=dict, repr=False)
    _events: list[tuple[SimEvent, tuple[_Market, ...]]] = attrs.field(
        init=False, factory=list, repr=False
    )
    _temperature: list[_Market] = attrs.field(init=False, factory=list, repr=False)
    _standalone: list[_Market] = attrs.field(init=False, factory=list, repr=False)
    _cum: list[int] = attrs.field(init=False, factory=list, repr=False)
    _total: int = attrs.field(init=False, default=0, repr=False)
    _cut_tick: float = attrs.field(init=False, default=0.0, repr=False)
    _cut_trade: float = attrs.field(init=False, default=0.0, repr=False)
    _cut_cancel: float = attrs.field(init=False, default=0.0, repr=False)
    _weight_sum: float = attrs.field(init=False, default=1.0, repr=False)
    _prices: dict[int, str] = attrs.field(init=False, factory=dict, repr=False)
    _open: dict[int, _Open] = attrs.field(init=False, factory=dict, repr=False)
    _next_opportunity: int = attrs.field(init=False, default=1, repr=False)
    _counts: dict[str, int] = attrs.field(init=False, factory=dict, repr=False)
    _steps: int = attrs.field(init=False, default=0, repr=False)
    _trades: int = attrs.field(init=False, default=0, repr=False)
    _traded_size: int = attrs.field(init=False, default=0, repr=False)
    _injected: int = attrs.field(init=False, default=0, repr=False)
    _expired: int = attrs.field(init=False, default=0, repr=False)
    _tick_changes: int = attrs.field(init=False, default=0, repr=False)
    _resolved: int = attrs.field(init=False, default=0, repr=False)
    _resting: dict[str, _Resting] = attrs.field(init=False, factory=dict, repr=False)
    _matches: list[MakerMatch] = attrs.field(init=False, factory=list, repr=False)

    def __attrs_post_init__(self) -> None:
        flow = self.flow
        self._weight_sum = flow.p_tick_size_change + flow.p_trade + flow.p_cancel + flow.p_add
        self._cut_tick = flow.p_tick_size_change
        self._cut_trade = self._cut_tick + flow.p_trade
        self._cut_cancel = self._cut_trade + flow.p_cancel
        for market in self.universe.markets:
            state = self._seed(market)
            self._states.append(state)
            self._by_token[market.yes_token] = (state, True)
            self._by_token[market.no_token] = (state, False)
            self._by_condition[market.condition_id] = state
            if market.event_id is None:
                self._standalone.append(state)
        for event in self.universe.events:
            members = tuple(self._by_condition[m.condition_id] for m in event.markets)
            self._events.append((event, members))
            if event.kind == "temperature":
                self._temperature.extend(members)
        self._reweigh()

    # --- seeding

    def _seed(self, market: SimMarket) -> _Market:
        rng = self.rng
        flow = self.flow
        tick = market.tick_size
        fair = market.fair_price
        quiet = market.tier == "quiet"
        low, high = flow.quiet_seed_levels if quiet else flow.seed_levels
        half = 1 + (rng.randrange(3) if quiet else rng.randrange(2))
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        price = _below(fair, tick) - (half - 1) * tick
        for depth in range(rng.randint(low, high)):
            if price < tick:
                break
            bids[price] = self._order_size() * (1 + depth // 4)
            price -= tick * (1 + (rng.random() < 0.35) + (rng.random() < 0.1))
        price = _above(fair, tick) + (half - 1) * tick
        for depth in range(rng.randint(low, high)):
            if price > ONE - tick:
                break
            asks[price] = self._order_size() * (1 + depth // 4)
            price += tick * (1 + (rng.random() < 0.35) + (rng.random() < 0.1))
        state = _Market(
            market=market,
            yes=OrderBook(market.yes_token, tick),
            no=OrderBook(market.no_token, tick),
            bids=bids,
            asks=asks,
            tick=tick,
            fair=fair,
            max_levels=max(high, 6) if quiet else flow.max_levels,
            target_levels=max(2, (len(bids) + len(asks) + 1) // 2),
            drifts=market.event_id is None,
        )
        self._snapshot_books(state, self.now_ms)
        if bids and asks and (not quiet or rng.random() < 0.5):
            state.last_trade = _below(fair, tick) if rng.random() < 0.5 else _above(fair, tick)
        return state

    @staticmethod
    def _snapshot_books(state: _Market, now: int) -> None:
        """Load both books from the shadow levels (a full replace)."""
        market = state.market
        state.yes.apply_snapshot(
            BookSnapshot(
                market.yes_token,
                market.condition_id,
                now,
                "",
                tuple(Level(p, s) for p, s in state.bids.items()),
                tuple(Level(p, s) for p, s in state.asks.items()),
                tick_size=state.tick,
            )
        )
        state.no.apply_snapshot(
            BookSnapshot(
                market.no_token,
                market.condition_id,
                now,
                "",
                tuple(Level(ONE - p, s) for p, s in state.asks.items()),
                tuple(Level(ONE - p, s) for p, s in state.bids.items()),
                tick_size=state.tick,
            )
        )

    def _reweigh(self) -> None:
        """Rebuild the cumulative activity weights (closed markets weigh 0)."""
        cum: list[int] = []
        total = 0
        for state in self._states:
            if not state.closed:
                total += state.market.activity
            cum.append(total)
        self._cum = cum
        self._total = total

    # --- small helpers (hot)

    def _price_text(self, price: int) -> str:
        text = self._prices.get(price)
        if text is None:
            text = format_units(price)
            self._prices[price] = text
        return text

    def _order_size(self) -> int:
        rng = self.rng
        if rng.random() < 0.3:
            return rng.choice(_ROUND_SIZES)
        return int(math.exp(rng.uniform(_LOG_MIN_CENTS, _LOG_MAX_CENTS))) * _CENT

    def _set(
        self,
        state: _Market,
        side: Side,
        price: int,
        size: int,
        no_first: bool,
        changes: list[WireEvent],
    ) -> None:
        """Set a YES level (and its NO mirror) to ``size`` and record both wire changes."""
        if side is _BUY:
            if size:
                state.bids[price] = size
            else:
                state.bids.pop(price, None)
        elif size:
            state.asks[price] = size
        else:
            state.asks.pop(price, None)
        market = state.market
        no_price = ONE - price
        yes_book = state.yes
        yes_book.apply_change(PriceLevelChange(market.yes_token, price, size, side))
        state.no.apply_change(PriceLevelChange(market.no_token, no_price, size, side.opposite))
        best_bid = yes_book.best_bid_price
        best_ask = yes_book.best_ask_price
        text = self._price_text
        size_text = format_units(size)
        bits = self.rng.getrandbits
        yes_change = {
            "asset_id": market.yes_token,
            "price": text(price),
            "size": size_text,
            "side": _SIDE_TEXT[side],
            "hash": f"{bits(160):040x}",
            "best_bid": text(best_bid),
            "best_ask": text(best_ask),
        }
        no_change = {
            "asset_id": market.no_token,
            "price": text(no_price),
            "size": size_text,
            "side": _SIDE_TEXT[1 - side],
            "hash": f"{bits(160):040x}",
            "best_bid": text(ONE - best_ask),
            "best_ask": text(ONE - best_bid),
        }
        if no_first:
            changes.append(no_change)
            changes.append(yes_change)
        else:
            changes.append(yes_change)
            changes.append(no_change)

    def _set_flow(
        self,
        state: _Market,
        side: Side,
        price: int,
        size: int,
        no_first: bool,
        changes: list[WireEvent],
    ) -> None:
        """Set a YES level to ``size`` by adding or cancelling *simulated* liquidity only.

        A level holding account orders never goes below their size; new simulated size joins
        the back of its queue, a cut takes the newest simulated size first (module docstring).
        Without account orders this is ``_set``.
        """
        queue = state.queues.get((side, price)) if state.queues else None
        if queue is None:
            self._set(state, side, price, size, no_first, changes)
            return
        old = (state.bids if side is _BUY else state.asks)[price]
        held = sum(slot.size for slot in queue if slot.order_id)
        new = max(size, held)
        if new > old:
            queue.append(_Slot(new - old))
        elif new < old:
            cut = old - new
            for index in range(len(queue) - 1, -1, -1):
                slot = queue[index]
                if slot.order_id:
                    continue
                take = min(cut, slot.size)
                slot.size -= take
                cut -= take
                if not slot.size:
                    del queue[index]
                if not cut:
                    break
        else:
            return
        self._set(state, side, price, new, no_first, changes)

    def _take(
        self,
        state: _Market,
        side: Side,
        price: int,
        queue: list[_Slot],
        want: int,
        skip_owner: str | None,
        makers: list[tuple[str, int]],
    ) -> int:
        """Take up to ``want`` from a queued level, front first, walking past ``skip_owner``'s
        orders; the account orders filled go to ``makers``. Returns the size taken."""
        taken = 0
        index = 0
        while index < len(queue) and taken < want:
            slot = queue[index]
            if slot.order_id and slot.owner == skip_owner:
                index += 1
                continue
            take = min(slot.size, want - taken)
            slot.size -= take
            taken += take
            if slot.order_id:
                makers.append((slot.order_id, take))
            if slot.size:
                index += 1
                continue
            del queue[index]
            if slot.order_id:
                del self._resting[slot.order_id]
        if not any(slot.order_id for slot in queue):
            del state.queues[(side, price)]
        return taken

    def _walk(
        self,
        state: _Market,
        taker: Side,
        size: int,
        limit: int | None,
        no_first: bool,
        changes: list[WireEvent],
        taker_owner: str | None = None,
    ) -> list[tuple[int, int]]:
        """A YES taker order of ``size`` (up to price ``limit``) against the YES book.

        Levels fill in price-time priority (module docstring); ``taker_owner``'s own orders are
        walked past. Every level where account orders filled is recorded as a ``MakerMatch``
        (in the coordinates of the token ``no_first`` names).

        Returns:
            The fills ``(YES price, size)``, best first.
        """
        fills: list[tuple[int, int]] = []
        left = size
        if taker is _BUY:
            levels, book_side = state.asks, _SELL
            prices = sorted(levels)
        else:
            levels, book_side = state.bids, _BUY
            prices = sorted(levels, reverse=True)
        queues = state.queues
        for price in prices:
            if left <= 0:
                break
            if limit is not None and (price > limit if taker is _BUY else price < limit):
                break
            available = levels[price]
            queue = queues.get((book_side, price)) if queues else None
            if queue is None:
                take = available if available < left else left
            else:
                makers: list[tuple[str, int]] = []
                take = self._take(state, book_side, price, queue, left, taker_owner, makers)
                if makers:
                    self._record_match(state, taker, price, take, makers, no_first, taker_owner)
                if not take:
                    continue
            self._set(state, book_side, price, available - take, no_first, changes)
            fills.append((price, take))
            left -= take
        if fills:
            state.last_trade = fills[-1][0]
            self._trades += len(fills)
            self._traded_size += size - left
        return fills

    def _record_match(
        self,
        state: _Market,
        taker: Side,
        price: int,
        size: int,
        makers: list[tuple[str, int]],
        no_first: bool,
        taker_owner: str | None,
    ) -> None:
        market = state.market
        if no_first:
            token, side, price = market.no_token, taker.opposite, ONE - price
        else:
            token, side = market.yes_token, taker
        self._matches.append(
            MakerMatch(market.condition_id, token, side, price, size, tuple(makers), taker_owner)
        )

    def _trade_events(
        self,
        state: _Market,
        fills: Iterable[tuple[int, int]],
        taker: Side,
        no_first: bool,
        timestamp: str,
        out: list[WireEvent],
    ) -> None:
        """One ``last_trade_price`` per fill per token (YES taker side; NO the opposite)."""
        market = state.market
        bps = str(market.fee_rate // 100)
        text = self._price_text
        for price, size in fills:
            size_text = format_units(size)
            tx = f"0x{self.rng.getrandbits(256):064x}"
            yes_trade = {
                "event_type": "last_trade_price",
                "market": market.condition_id,
                "asset_id": market.yes_token,
                "fee_rate_bps": bps,
                "price": text(price),
                "side": _SIDE_TEXT[taker],
                "size": size_text,
                "timestamp": timestamp,
                "transaction_hash": tx,
            }
            no_trade = {
                "event_type": "last_trade_price",
                "market": market.condition_id,
                "asset_id": market.no_token,
                "fee_rate_bps": bps,
                "price": text(ONE - price),
                "side": _SIDE_TEXT[1 - taker],
                "size": size_text,
                "timestamp": timestamp,
                "transaction_hash": tx,
            }
            if no_first:
                out.append(no_trade)
                out.append(yes_trade)
            else:
                out.append(yes_trade)
                out.append(no_trade)

    def _finish(
        self,
        state: _Market,
        timestamp: str,
        now_ms: int,
        before: tuple[int, int],
        no_first: bool,
        changes: list[WireEvent],
        trades: list[WireEvent],
        extra: list[WireEvent] | None = None,
    ) -> list[WireEvent]:
        """Assemble one market's events: price_change, trades, extra, then best_bid_ask."""
        market = state.market
        out: list[WireEvent] = []
        if changes:
            out.append(
                {
                    "market": market.condition_id,
                    "price_changes": changes,
                    "timestamp": timestamp,
                    "event_type": "price_change",
                }
            )
        if trades:
            out.extend(trades)
            if self.flow.book_after_trade:
                first, second = (
                    (market.no_token, market.yes_token)
                    if no_first
                    else (market.yes_token, market.no_token)
                )
                out.append(self.book_json(first, now_ms))
                out.append(self.book_json(second, now_ms))
        if extra:
            out.extend(extra)
        best_bid = state.yes.best_bid_price
        best_ask = state.yes.best_ask_price
        if (best_bid, best_ask) != before:
            text = self._price_text
            spread = text(best_ask - best_bid if best_ask > best_bid else 0)
            yes_top = {
                "event_type": "best_bid_ask",
                "market": market.condition_id,
                "asset_id": market.yes_token,
                "best_bid": text(best_bid),
                "best_ask": text(best_ask),
                "spread": spread,
                "timestamp": timestamp,
            }
            no_top = {
                "event_type": "best_bid_ask",
                "market": market.condition_id,
                "asset_id": market.no_token,
                "best_bid": text(ONE - best_ask),
                "best_ask": text(ONE - best_bid),
                "spread": spread,
                "timestamp": timestamp,
            }
            if no_first:
                out.append(no_top)
                out.append(yes_top)
            else:
                out.append(yes_top)
                out.append(no_top)
        counts = self._counts
        for event in out:
            kind = event["event_type"]
            counts[kind] = counts.get(kind, 0) + 1
        return out

    @staticmethod
    def _top(state: _Market) -> tuple[int, int]:
        return state.yes.best_bid_price, state.yes.best_ask_price

    def _lookup(self, token_id: str) -> tuple[_Market, bool]:
        try:
            return self._by_token[token_id]
        except KeyError:
            raise KeyError(f"unknown token id {token_id}") from None

    def _open_state(self, token_id: str) -> tuple[_Market, bool]:
        state, is_yes = self._lookup(token_id)
        if state.closed:
            raise ValueError(f"market {state.market.condition_id} is resolved")
        return state, is_yes

    @staticmethod
    def _check_level(state: _Market, price: int, size: int) -> None:
        tick = state.tick
        if price % tick or not tick <= price <= ONE - tick:
            raise ValueError(
                f"price {format_units(price)} is not a multiple of the tick "
                f"{format_units(tick)} within [{format_units(tick)}, {format_units(ONE - tick)}]"
            )
        if size < 0:
            raise ValueError(f"size {size} is negative")

    # --- reads

    def book(self, token_id: str) -> OrderBook:
        """The true book of ``token_id`` (do not mutate it). ``KeyError`` if unknown."""
        state, is_yes = self._lookup(token_id)
        return state.yes if is_yes else state.no

    def market_state(self, condition_id: str) -> MarketState:
        """The live state of a market for the Gamma/CLOB renderers. ``KeyError`` if unknown."""
        state = self._by_condition[condition_id]
        return MarketState(
            tick_size=state.tick,
            best_bid=state.yes.best_bid_price if state.bids else None,
            best_ask=state.yes.best_ask_price if state.asks else None,
            last_trade_price=state.last_trade,
            closed=state.closed,
            winning_token=state.winner,
        )

    def last_trade_price(self, token_id: str) -> int | None:
        """The last trade price of ``token_id`` (micro-units), if any trade is known."""
        state, is_yes = self._lookup(token_id)
        if state.last_trade is None:
            return None
        return state.last_trade if is_yes else ONE - state.last_trade

    def fair_price(self, condition_id: str) -> int:
        """The model's current fair YES price of a market (it drifts for stand-alone binaries)."""
        return self._by_condition[condition_id].fair

    def is_closed(self, condition_id: str) -> bool:
        """Whether the market has been resolved."""
        return self._by_condition[condition_id].closed

    @property
    def open_opportunities(self) -> tuple[Opportunity, ...]:
        """The opportunities not yet taken, oldest first."""
        return tuple(entry.opportunity for entry in self._open.values())

    def statistics(self) -> ExchangeStatistics:
        """Counters: events by type, trades, opportunities."""
        return ExchangeStatistics(
            steps=self._steps,
            events=dict(self._counts),
            trades=self._trades,
            traded_size=self._traded_size,
            opportunities_injected=self._injected,
            opportunities_expired=self._expired,
            open_opportunities=len(self._open),
            tick_size_changes=self._tick_changes,
            markets_resolved=self._resolved,
        )

    # --- snapshots

    def _summary(self, token_id: str, now_ms: int) -> tuple[dict[str, Any], str]:
        """The REST summary fields of a token's book and its last trade price text ("")."""
        state, is_yes = self._lookup(token_id)
        book = state.yes if is_yes else state.no
        text = self._price_text
        bids = [{"price": text(p), "size": format_units(s)} for p, s in book.bids()]
        asks = [{"price": text(p), "size": format_units(s)} for p, s in book.asks()]
        bids.reverse()  # best last, as the venue sends them
        asks.reverse()
        last = self.last_trade_price(token_id)
        last_text = text(last) if last is not None else ""
        market = state.market
        summary: dict[str, Any] = {
            "market": market.condition_id,
            "asset_id": token_id,
            "timestamp": str(now_ms),
            "hash": "",
            "bids": bids,
            "asks": asks,
            "min_order_size": format_units(market.min_order_size),
            "tick_size": text(state.tick),
            "neg_risk": market.neg_risk,
            "last_trade_price": last_text,
        }
        summary["hash"] = book_hash(
            market=summary["market"],
            asset_id=token_id,
            timestamp=summary["timestamp"],
            bids=bids,
            asks=asks,
            min_order_size=summary["min_order_size"],
            tick_size=summary["tick_size"],
            neg_risk=market.neg_risk,
            last_trade_price=last_text,
        )
        return summary, last_text

    def book_json(self, token_id: str, now_ms: int) -> WireEvent:
        """The WS ``book`` event of ``token_id`` now, like the real captures.

        Levels are best-*last* (bids ascending, asks descending), prices and sizes strings,
        ``timestamp`` a millisecond string, ``hash`` the ``book_hash`` of the REST summary at the
        same instant, plus ``tick_size`` and (when known) ``last_trade_price``.
        """
        summary, last_text = self._summary(token_id, now_ms)
        event: WireEvent = {
            "market": summary["market"],
            "asset_id": token_id,
            "timestamp": summary["timestamp"],
            "hash": summary["hash"],
            "bids": summary["bids"],
            "asks": summary["asks"],
            "tick_size": summary["tick_size"],
            "event_type": "book",
        }
        if last_text:
            event["last_trade_price"] = last_text
        return event

    def rest_book_json(self, token_id: str, now_ms: int) -> dict[str, Any]:
        """The REST ``GET /book`` body of ``token_id``: ``market, asset_id, timestamp, hash,
        bids, asks, min_order_size, tick_size, neg_risk, last_trade_price`` (best-last levels,
        ``last_trade_price`` "" when none)."""
        summary, _ = self._summary(token_id, now_ms)
        return summary

    # --- order flow

    def _pick(self) -> _Market | None:
        total = self._total
        if not total:
            return None
        cum = self._cum
        states = self._states
        draw = self.rng.random
        for _ in range(_PICK_TRIES):
            state = states[bisect_right(cum, draw() * total)]
            if not state.locked_by:
                return state
        return None

    def step(self, now_ms: int) -> list[WireEvent]:
        """Advance the order flow by one action on one market (see the module docstring).

        Returns:
            The wire events the action caused, in order: ``price_change``, then any
            ``last_trade_price`` (and ``book`` with ``book_after_trade``), any
            ``tick_size_change``, then ``best_bid_ask`` for each token whose top moved. Empty
            when no market can be picked (all resolved, or the draw hit locked markets).
        """
        state = self._pick()
        if state is None:
            return []
        self._steps += 1
        rng = self.rng
        flow = self.flow
        before = (state.yes.best_bid_price, state.yes.best_ask_price)
        no_first = rng.random() < 0.5
        timestamp = str(now_ms)
        changes: list[WireEvent] = []
        trades: list[WireEvent] = []
        extra: list[WireEvent] = []
        if state.drifts and rng.random() < flow.p_drift:
            step = flow.drift_step if rng.random() < 0.5 else -flow.drift_step
            state.fair = min(_FAIR_MAX, max(_FAIR_MIN, state.fair + step))
        draw = rng.random() * self._weight_sum
        if draw < self._cut_tick:
            if not self._tick_change(state, now_ms, timestamp, no_first, changes, extra):
                self._flow_add(state, no_first, changes)
        elif draw < self._cut_trade:
            self._flow_trade(state, timestamp, no_first, changes, trades)
        elif draw < self._cut_cancel:
            self._flow_cancel(state, no_first, changes)
        else:
            self._flow_add(state, no_first, changes)
        return self._finish(state, timestamp, now_ms, before, no_first, changes, trades, extra)

    def _add_price(self, state: _Market, side: Side) -> int | None:
        """Where a new order on ``side`` goes, or ``None`` if that side has no room."""
        rng = self.rng
        tick = state.tick
        target = state.target_levels
        if len(state.bids if side is _BUY else state.asks) < target and rng.random() < 0.5:
            depth = rng.randrange(2 * target)  # a thin side grows new levels down the ladder
        else:
            depth = 0
            decay = self.flow.depth_decay
            while depth < 12 and rng.random() >= decay:
                depth += 1
        if side is _BUY:
            top = _below(state.fair, tick)
            if state.asks:
                cap = state.yes.best_ask_price - tick
                if cap < top:
                    top = cap
            if top < tick:
                return None
            price = top - depth * tick
            return price if price >= tick else tick
        bottom = _above(state.fair, tick)
        if state.bids:
            floor = state.yes.best_bid_price + tick
            if floor > bottom:
                bottom = floor
        if bottom > ONE - tick:
            return None
        price = bottom + depth * tick
        return price if price <= ONE - tick else ONE - tick

    def _flow_add(
        self, state: _Market, no_first: bool, changes: list[WireEvent], side: Side | None = None
    ) -> None:
        if side is None:
            side = _BUY if self.rng.random() < 0.5 else _SELL
        price = self._add_price(state, side)
        if price is None:
            side = side.opposite
            price = self._add_price(state, side)
            if price is None:
                return
        levels = state.bids if side is _BUY else state.asks
        old = levels.get(price, 0)
        if not old and len(levels) >= state.max_levels:
            worst = min(levels) if side is _BUY else max(levels)
            self._set_flow(state, side, worst, 0, no_first, changes)
        self._set_flow(state, side, price, old + self._order_size(), no_first, changes)

    def _flow_cancel(self, state: _Market, no_first: bool, changes: list[WireEvent]) -> None:
        rng = self.rng
        side = _BUY if rng.random() < 0.5 else _SELL
        levels = state.bids if side is _BUY else state.asks
        if len(levels) <= state.target_levels // 2:
            # A thin side is not thinned further: the cancel becomes an add (a side's depth
            # stays around its seeded level count instead of eroding).
            self._flow_add(state, no_first, changes, side)
            return
        price = rng.choice(list(levels))
        old = levels[price]
        queue = state.queues.get((side, price)) if state.queues else None
        held = sum(slot.size for slot in queue if slot.order_id) if queue else 0
        old -= held  # only simulated size can be cancelled
        if old < 2 * _CENT or rng.random() < 0.6:
            new = 0
        else:
            new = old - rng.randrange(1, old // _CENT) * _CENT
        self._set_flow(state, side, price, held + new, no_first, changes)

    def _flow_trade(
        self,
        state: _Market,
        timestamp: str,
        no_first: bool,
        changes: list[WireEvent],
        trades: list[WireEvent],
    ) -> None:
        rng = self.rng
        best_bid = state.yes.best_bid_price
        best_ask = state.yes.best_ask_price
        fair = state.fair
        if state.asks and best_ask < fair:
            buy_chance = 0.9
        elif state.bids and best_bid > fair:
            buy_chance = 0.1
        else:
            buy_chance = 0.5
        taker = _BUY if rng.random() < buy_chance else _SELL
        if not (state.asks if taker is _BUY else state.bids):
            taker = taker.opposite
            if not (state.asks if taker is _BUY else state.bids):
                self._flow_add(state, no_first, changes)
                return
        available = state.asks[best_ask] if taker is _BUY else state.bids[best_bid]
        draw = rng.random()
        if draw < 0.4 or available < 2 * _CENT:
            size = available
        elif draw < 0.5:
            size = available + self._order_size()  # sweeps into the next level(s)
        else:
            size = rng.randrange(1, available // _CENT) * _CENT
        fills = self._walk(state, taker, size, None, no_first, changes)
        self._trade_events(state, fills, taker, no_first, timestamp, trades)

    def _tick_change(
        self,
        state: _Market,
        now_ms: int,
        timestamp: str,
        no_first: bool,
        changes: list[WireEvent],
        extra: list[WireEvent],
    ) -> bool:
        """Change the market's tick if its price calls for it; ``False`` if it does not."""
        if state.bids and state.asks:
            reference = (state.yes.best_bid_price + state.yes.best_ask_price) // 2
        else:
            reference = state.fair
        old = state.tick
        if old == TICK_COARSE and not _EXTREME_LOW <= reference <= _EXTREME_HIGH:
            new = TICK_FINE
        elif (
            old == TICK_FINE
            and state.market.tick_size == TICK_COARSE
            and _BACK_LOW <= reference <= _BACK_HIGH
        ):
            new = TICK_COARSE
            # Orders off the coarse grid cannot stand on it: the venue's book must stay valid.
            # (Accounts' orders stay: they were valid when placed.)
            for price in [p for p in state.bids if p % TICK_COARSE]:
                self._set_flow(state, _BUY, price, 0, no_first, changes)
            for price in [p for p in state.asks if p % TICK_COARSE]:
                self._set_flow(state, _SELL, price, 0, no_first, changes)
        else:
            return False
        self._change_tick(state, new, now_ms, timestamp, no_first, extra)
        return True

    def _change_tick(
        self,
        state: _Market,
        new: int,
        now_ms: int,
        timestamp: str,
        no_first: bool,
        extra: list[WireEvent],
    ) -> None:
        market = state.market
        old = state.tick
        state.tick = new
        self._tick_changes += 1
        pairs = ((market.yes_token, state.yes), (market.no_token, state.no))
        for token, book in reversed(pairs) if no_first else pairs:
            book.apply_tick_size_change(
                TickSizeChange(token, market.condition_id, old, new, now_ms)
            )
            extra.append(
                {
                    "event_type": "tick_size_change",
                    "market": market.condition_id,
                    "asset_id": token,
                    "new_tick_size": self._price_text(new),
                    "old_tick_size": self._price_text(old),
                    "timestamp": timestamp,
                }
            )

    # --- accounts' resting orders (the server's side)

    def rest(
        self,
        token_id: str,
        side: Side,
        price: int,
        order_id: str,
        owner: str,
        size: int,
        now_ms: int,
    ) -> list[WireEvent]:
        """Queue an account's order of ``size`` at the back of its level (mirrored).

        The caller has matched the order already: it must not cross the book's other side
        (nothing here matches it).

        Args:
            token_id: the order's token; ``side`` and ``price`` are on that token.
            side: BUY rests on the bids, SELL on the asks.
            price: on the market's tick within ``[tick, 1 - tick]``.
            order_id: the order's id (unique while it rests).
            owner: the account's API key (for self-trade prevention and ``MakerMatch``).
            size: shares, > 0.
            now_ms: the events' timestamp.

        Returns:
            The ``price_change`` (the token's change first, then the mirror) and
            ``best_bid_ask`` events if the top moved.

        Raises:
            KeyError: unknown token. ValueError: off-tick price, non-positive size, an id
                already resting, or the market is resolved.
        """
        state, is_yes = self._open_state(token_id)
        self._check_level(state, price, size)
        if not size:
            raise ValueError(f"order {order_id}: size must be positive")
        if order_id in self._resting:
            raise ValueError(f"order {order_id} is already resting")
        yes_side, yes_price = (side, price) if is_yes else (side.opposite, ONE - price)
        levels = state.bids if yes_side is _BUY else state.asks
        old = levels.get(yes_price, 0)
        queue = state.queues.get((yes_side, yes_price))
        if queue is None:
            queue = state.queues[(yes_side, yes_price)] = [_Slot(old)] if old else []
        slot = _Slot(size, order_id, owner)
        queue.append(slot)
        self._resting[order_id] = _Resting(state, yes_side, yes_price, slot, not is_yes)
        before = self._top(state)
        changes: list[WireEvent] = []
        self._set(state, yes_side, yes_price, old + size, not is_yes, changes)
        return self._finish(state, str(now_ms), now_ms, before, not is_yes, changes, [])

    def cancel_resting(self, order_id: str, now_ms: int) -> list[WireEvent]:
        """Take what is left of a resting account order out of its level.

        Returns:
            The ``price_change`` and ``best_bid_ask`` events, or ``[]`` when the order does not
            rest here (filled, cancelled already, or its market resolved).
        """
        resting = self._resting.pop(order_id, None)
        if resting is None:
            return []
        state, side, price = resting.state, resting.side, resting.price
        key = (side, price)
        queue = state.queues[key]
        queue.remove(resting.slot)
        if not any(slot.order_id for slot in queue):
            del state.queues[key]
        levels = state.bids if side is _BUY else state.asks
        before = self._top(state)
        changes: list[WireEvent] = []
        no_first = resting.no_first
        self._set(state, side, price, levels[price] - resting.slot.size, no_first, changes)
        return self._finish(state, str(now_ms), now_ms, before, no_first, changes, [])

    def resting_size(self, order_id: str) -> int:
        """Shares of an account order still resting here (0 if it does not rest)."""
        resting = self._resting.get(order_id)
        return resting.slot.size if resting is not None else 0

    def queue_ahead(self, order_id: str) -> int:
        """Shares ahead of a resting account order in its level's queue (what fills first).

        Raises:
            KeyError: the order does not rest here.
        """
        try:
            resting = self._resting[order_id]
        except KeyError:
            raise KeyError(f"order {order_id} does not rest in the exchange") from None
        queue = resting.state.queues[(resting.side, resting.price)]
        return sum(slot.size for slot in queue[: queue.index(resting.slot)])

    def levels(
        self, token_id: str, side: Side, *, skip_owner: str | None = None
    ) -> list[tuple[int, int]]:
        """``token_id``'s ``(price, size)`` levels on ``side``, best first, as a taker of
        ``skip_owner`` may match them: that account's own orders left out (levels left empty
        are dropped). ``KeyError`` if the token is unknown."""
        state, is_yes = self._lookup(token_id)
        book = state.yes if is_yes else state.no
        ladder = book.bids() if side is _BUY else book.asks()
        own = self._own_sizes(state, is_yes, side, skip_owner) if skip_owner is not None else {}
        out = []
        for level in ladder:
            size = level.size - own.get(level.price, 0)
            if size:
                out.append((level.price, size))
        return out

    def own_levels(self, token_id: str, side: Side, owner: str) -> list[tuple[int, int]]:
        """``(price, size)`` of ``owner``'s own resting orders on ``token_id``'s ``side``
        (its orders on the complement included, mirrored), best first."""
        state, is_yes = self._lookup(token_id)
        own = self._own_sizes(state, is_yes, side, owner)
        return sorted(own.items(), reverse=side is _BUY)

    @staticmethod
    def _own_sizes(state: _Market, is_yes: bool, side: Side, owner: str) -> dict[int, int]:
        """``owner``'s resting size per price of one token's ``side`` (that token's prices)."""
        yes_side = side if is_yes else side.opposite
        own: dict[int, int] = {}
        for (queue_side, price), queue in state.queues.items():
            if queue_side is yes_side:
                mine = sum(slot.size for slot in queue if slot.order_id and slot.owner == owner)
                if mine:
                    own[price if is_yes else ONE - price] = mine
        return own

    def drain_maker_matches(self) -> list[MakerMatch]:
        """The ``MakerMatch``es recorded since the last call, oldest first (and forget them).

        The shell calls it after every action that can trade and settles each match with the
        accounts; a match not drained stays here.
        """
        matches = self._matches
        self._matches = []
        return matches

    # --- scripted operations (scenario tests)

    def set_book(
        self,
        token_id: str,
        bids: Sequence[tuple[int, int]],
        asks: Sequence[tuple[int, int]],
        now_ms: int,
    ) -> list[WireEvent]:
        """Replace a token's book (and mirror it onto the complement); returns both ``book``s.

        Args:
            token_id: either token of the market; ``bids``/``asks`` are that token's levels.
            bids: ``(price, size)`` micro-units; size 0 levels are ignored, a repeated price
                keeps its last size. Prices must be on the market's tick within
                ``[tick, 1 - tick]``. A crossed book is allowed (it is a script). Accounts'
                orders stay: a level holding them shows at least their size, and the scripted
                (simulated) size queues behind them.
            asks: likewise.
            now_ms: the snapshots' timestamp.

        Returns:
            The ``book`` events of ``token_id`` then of its complement.

        Raises:
            KeyError: unknown token. ValueError: a bad level, or the market is resolved.
        """
        state, is_yes = self._open_state(token_id)
        for price, size in (*bids, *asks):
            self._check_level(state, price, size)
        if is_yes:
            yes_bids, yes_asks = list(bids), list(asks)
        else:
            yes_bids = [(ONE - p, s) for p, s in asks]
            yes_asks = [(ONE - p, s) for p, s in bids]
        state.bids = {p: s for p, s in yes_bids if s}
        state.asks = {p: s for p, s in yes_asks if s}
        for (side, price), queue in state.queues.items():
            levels = state.bids if side is _BUY else state.asks
            queue[:] = [slot for slot in queue if slot.order_id]
            held = sum(slot.size for slot in queue)
            given = levels.get(price, 0)
            if given > held:
                queue.append(_Slot(given - held))
            levels[price] = max(given, held)
        self._snapshot_books(state, now_ms)
        market = state.market
        other = market.no_token if is_yes else market.yes_token
        out = [self.book_json(token_id, now_ms), self.book_json(other, now_ms)]
        self._counts["book"] = self._counts.get("book", 0) + 2
        return out

    def set_level(
        self, token_id: str, side: Side, price: int, size: int, now_ms: int
    ) -> list[WireEvent]:
        """Set one level of ``token_id``'s book to ``size`` (0 removes it), mirrored.

        The level may cross the book (a script can set up what the flow never does); nothing
        matches it until a trade or ``expire`` does. Only simulated size changes: a level
        holding accounts' orders keeps at least their size, and size added joins the back of
        its queue.

        Returns:
            The ``price_change`` (the token's change first, then the mirror) and
            ``best_bid_ask`` events if the top moved.

        Raises:
            KeyError: unknown token. ValueError: off-tick price, negative size, or resolved.
        """
        state, is_yes = self._open_state(token_id)
        self._check_level(state, price, size)
        yes_side, yes_price = (side, price) if is_yes else (side.opposite, ONE - price)
        before = self._top(state)
        changes: list[WireEvent] = []
        self._set_flow(state, yes_side, yes_price, size, not is_yes, changes)
        return self._finish(state, str(now_ms), now_ms, before, not is_yes, changes, [])

    def trade(
        self,
        token_id: str,
        taker_side: Side,
        size: int,
        now_ms: int,
        *,
        taker_owner: str | None = None,
    ) -> list[WireEvent]:
        """A taker order of ``size`` shares on ``token_id``, walking its book (no price limit).

        Fills what the book holds (less than ``size`` when it is thin), level by level in
        price-time priority; accounts' orders it fills are recorded as ``MakerMatch``es (see
        ``drain_maker_matches``). ``taker_owner``: the account taking, whose own resting orders
        are walked past (self-trade prevention); ``None`` for a simulated taker.

        Returns:
            ``price_change`` for the consumed levels, one ``last_trade_price`` per level per
            token, and ``best_bid_ask`` if the top moved.

        Raises:
            KeyError: unknown token. ValueError: non-positive size, or the market is resolved.
        """
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        state, is_yes = self._open_state(token_id)
        yes_taker = taker_side if is_yes else taker_side.opposite
        before = self._top(state)
        changes: list[WireEvent] = []
        trades: list[WireEvent] = []
        timestamp = str(now_ms)
        fills = self._walk(state, yes_taker, size, None, not is_yes, changes, taker_owner)
        self._trade_events(state, fills, yes_taker, not is_yes, timestamp, trades)
        return self._finish(state, timestamp, now_ms, before, not is_yes, changes, trades)

    def set_tick_size(self, condition_id: str, tick_size: int, now_ms: int) -> list[WireEvent]:
        """Change a market's tick (0.01 or 0.001); levels off a coarser grid are cancelled
        (their simulated size: accounts' orders stay).

        Returns:
            ``price_change`` (if levels were cancelled), ``tick_size_change`` per token, and
            ``best_bid_ask`` if the top moved.
        """
        if tick_size not in (TICK_COARSE, TICK_FINE):
            raise ValueError(f"tick size must be 0.01 or 0.001, got {format_units(tick_size)}")
        state = self._by_condition[condition_id]
        if state.closed:
            raise ValueError(f"market {condition_id} is resolved")
        before = self._top(state)
        changes: list[WireEvent] = []
        extra: list[WireEvent] = []
        if tick_size != state.tick:
            for price in [p for p in state.bids if p % tick_size]:
                self._set_flow(state, _BUY, price, 0, False, changes)
            for price in [p for p in state.asks if p % tick_size]:
                self._set_flow(state, _SELL, price, 0, False, changes)
            self._change_tick(state, tick_size, now_ms, str(now_ms), False, extra)
        return self._finish(state, str(now_ms), now_ms, before, False, changes, [], extra)

    # --- resolution

    def resolve(self, condition_id: str, winning_token: str, now_ms: int) -> list[WireEvent]:
        """Resolve a market: cancel every resting order and announce the winner.

        Returns:
            A ``price_change`` removing every level (mirrored), ``best_bid_ask`` per token, and
            the ``market_resolved`` custom-feature object (shape of
            ``tests/fixtures/nautilus_crates/ws_market_resolved_msg.json``). The market gets no
            more flow and renders ``closed`` through ``market_state``. Its open opportunities
            are dropped without trades.

        Raises:
            KeyError: unknown market. ValueError: already resolved, or ``winning_token`` is not
                one of its tokens.
        """
        state = self._by_condition[condition_id]
        market = state.market
        if state.closed:
            raise ValueError(f"market {condition_id} is already resolved")
        if winning_token not in (market.yes_token, market.no_token):
            raise ValueError(f"{winning_token} is not a token of market {condition_id}")
        for key, entry in list(self._open.items()):
            if state in entry.markets:
                for member in entry.markets:
                    member.locked_by = 0
                del self._open[key]
        timestamp = str(now_ms)
        before = self._top(state)
        changes: list[WireEvent] = []
        for price in list(state.bids):
            self._set(state, _BUY, price, 0, False, changes)
        for price in list(state.asks):
            self._set(state, _SELL, price, 0, False, changes)
        for queue in state.queues.values():
            for slot in queue:
                self._resting.pop(slot.order_id, None)
        state.queues.clear()
        out = self._finish(state, timestamp, now_ms, before, False, changes, [])
        state.closed = True
        state.winner = winning_token
        self._resolved += 1
        self._reweigh()
        yes_won = winning_token == market.yes_token
        out.append(
            {
                "event_type": "market_resolved",
                "id": market.gamma_id,
                "market": condition_id,
                "assets_ids": [market.yes_token, market.no_token],
                "winning_asset_id": winning_token,
                "winning_outcome": market.outcomes[0 if yes_won else 1],
                "timestamp": timestamp,
                "tags": [tag_slug(tag) for tag in market.tags],
            }
        )
        self._counts["market_resolved"] = self._counts.get("market_resolved", 0) + 1
        return out

    def resolve_event(
        self, event_id: str, winning_condition_id: str, now_ms: int
    ) -> list[WireEvent]:
        """Resolve every open market of a neg-risk event: YES wins in ``winning_condition_id``,
        NO everywhere else. Returns the events of each ``resolve``, in market order."""
        event = self.universe.event(event_id)
        if winning_condition_id not in {m.condition_id for m in event.markets}:
            raise ValueError(f"{winning_condition_id} is not a market of event {event_id}")
        out: list[WireEvent] = []
        for market in event.markets:
            if self._by_condition[market.condition_id].closed:
                continue
            winner = market.yes_token if market.condition_id == winning_condition_id else None
            out.extend(self.resolve(market.condition_id, winner or market.no_token, now_ms))
        return out

    # --- opportunities

    def inject(self, kind: OpportunityKind, now_ms: int) -> tuple[Opportunity, list[WireEvent]]:
        """Plant an opportunity of ``kind`` on an rng-chosen suitable market or event.

        The markets involved are locked (no flow) until ``expire`` hands the opportunity to the
        competitor at ``now_ms + opportunity_lifetime_ms``.

        Returns:
            The opportunity and the wire events that show it.

        Raises:
            NoSuitableMarket: no open, unlocked market (or event) can carry it now.
        """
        if kind is OpportunityKind.COMPLEMENT:
            result = self._inject_complement(now_ms)
        elif kind is OpportunityKind.NEG_RISK:
            result = self._inject_neg_risk(now_ms)
        else:
            result = self._inject_mispricing(now_ms)
        if result is None:
            raise NoSuitableMarket(f"no market can carry a {kind.value} opportunity now")
        return result

    def inject_random(self, now_ms: int) -> tuple[Opportunity, list[WireEvent]] | None:
        """Inject an opportunity of an rng-chosen kind, trying the others if it cannot be placed.

        Returns:
            As ``inject``, or ``None`` when no kind fits anywhere.
        """
        kinds = list(OpportunityKind)
        self.rng.shuffle(kinds)
        for kind in kinds:
            try:
                return self.inject(kind, now_ms)
            except NoSuitableMarket:
                continue
        return None

    def expire(self, now_ms: int) -> list[WireEvent]:
        """Let the competitor take every opportunity with ``expires_ms <= now_ms``.

        For each: a COMPLEMENT market is uncrossed by buying both legs (YES at the low ask, NO
        at ``1 -`` the bid) until its best ask is above its best bid; NEG_RISK and
        TEMPERATURE_MISPRICE legs are bought up to the planted size at the planted price. Legs
        already taken by other flow simply yield fewer trades.

        Returns:
            The trades' events (``price_change``, ``last_trade_price``, ``best_bid_ask``).
        """
        out: list[WireEvent] = []
        timestamp = str(now_ms)
        for key, entry in list(self._open.items()):
            opportunity = entry.opportunity
            if opportunity.expires_ms > now_ms:
                continue
            del self._open[key]
            for member in entry.markets:
                member.locked_by = 0
            self._expired += 1
            if opportunity.kind is OpportunityKind.COMPLEMENT:
                out.extend(self._uncross(entry.markets[0], timestamp, now_ms))
                continue
            for leg in entry.legs:
                state = leg.state
                if state.closed:
                    continue
                before = self._top(state)
                changes: list[WireEvent] = []
                trades: list[WireEvent] = []
                fills = self._walk(state, leg.taker, leg.size, leg.limit, leg.no_first, changes)
                self._trade_events(state, fills, leg.taker, leg.no_first, timestamp, trades)
                out.extend(
                    self._finish(state, timestamp, now_ms, before, leg.no_first, changes, trades)
                )
        return out

    def _uncross(self, state: _Market, timestamp: str, now_ms: int) -> list[WireEvent]:
        before = self._top(state)
        changes: list[WireEvent] = []
        trades: list[WireEvent] = []
        book = state.yes
        while state.bids and state.asks and book.best_bid_price >= book.best_ask_price:
            ask = book.best_ask_price
            bid = book.best_bid_price
            size = min(state.asks[ask], state.bids[bid])
            fills = self._walk(state, _BUY, size, ask, False, changes)  # buys YES at the ask
            self._trade_events(state, fills, _BUY, False, timestamp, trades)
            fills = self._walk(state, _SELL, size, bid, True, changes)  # buys NO at 1 - bid
            self._trade_events(state, fills, _SELL, True, timestamp, trades)
        return self._finish(state, timestamp, now_ms, before, False, changes, trades)

    def _register(
        self,
        kind: OpportunityKind,
        markets: tuple[_Market, ...],
        legs: tuple[_Leg, ...],
        *,
        token_ids: tuple[str, ...],
        prices: tuple[int, ...],
        edge: int,
        size: int,
        now_ms: int,
        event_id: str | None = None,
    ) -> Opportunity:
        key = self._next_opportunity
        self._next_opportunity += 1
        opportunity = Opportunity(
            id=key,
            kind=kind,
            condition_ids=tuple(m.market.condition_id for m in markets),
            token_ids=token_ids,
            prices=prices,
            edge=edge,
            size=size,
            created_ms=now_ms,
            expires_ms=now_ms + self.flow.opportunity_lifetime_ms,
            event_id=event_id,
        )
        for member in markets:
            member.locked_by = key
        self._open[key] = _Open(opportunity, markets, legs)
        self._injected += 1
        return opportunity

    def _scan(
        self, candidates: Sequence[_Market], fits: Callable[[_Market], object]
    ) -> _Market | None:
        """The first candidate from an rng-chosen start that is open, unlocked and ``fits``."""
        count = len(candidates)
        if not count:
            return None
        start = self.rng.randrange(count)
        for offset in range(count):
            state = candidates[(start + offset) % count]
            if not state.closed and not state.locked_by and fits(state):
                return state
        return None

    def _opportunity_size(self) -> int:
        low, high = self.flow.opportunity_size
        return self.rng.randint(low // _CENT, high // _CENT) * _CENT

    def _inject_complement(self, now_ms: int) -> tuple[Opportunity, list[WireEvent]] | None:
        def fits(s: _Market) -> bool:
            return bool(not s.queues and s.bids and s.asks and s.yes.best_bid_price >= 2 * s.tick)

        state = self._scan(self._standalone, fits) or self._scan(self._states, fits)
        if state is None:
            return None
        rng = self.rng
        tick = state.tick
        bid = state.yes.best_bid_price
        ask = max(tick, bid - rng.randint(*self.flow.complement_edge_ticks) * tick)
        planted = self._opportunity_size()
        before = self._top(state)
        changes: list[WireEvent] = []
        # The best bid absorbs all of the planted size (a bidder joins it if it is thinner), so
        # the competitor's uncross takes every cheap share and none outlives the opportunity
        # (on an event's member one would be a neg-risk arbitrage nobody injected).
        if state.bids[bid] < planted:
            self._set(state, _BUY, bid, planted, False, changes)
        self._set(state, _SELL, ask, state.asks.get(ask, 0) + planted, False, changes)
        market = state.market
        opportunity = self._register(
            OpportunityKind.COMPLEMENT,
            (state,),
            (),
            token_ids=(market.yes_token, market.no_token),
            prices=(ask, ONE - bid),
            edge=bid - ask,
            size=planted,
            now_ms=now_ms,
            event_id=market.event_id,
        )
        timestamp = str(now_ms)
        return opportunity, self._finish(state, timestamp, now_ms, before, False, changes, [])

    def _inject_neg_risk(self, now_ms: int) -> tuple[Opportunity, list[WireEvent]] | None:
        count = len(self._events)
        if not count:
            return None
        rng = self.rng
        start = rng.randrange(count)
        for offset in range(count):
            event, members = self._events[(start + offset) % count]
            if any(m.closed or m.locked_by or m.queues for m in members):
                continue
            new_asks = self._plan_neg_risk(members, rng.randint(*self.flow.neg_risk_edge))
            if new_asks is None:
                continue
            planted = self._opportunity_size()
            out: list[WireEvent] = []
            legs = []
            timestamp = str(now_ms)
            for member, price in zip(members, new_asks, strict=True):
                before = self._top(member)
                changes: list[WireEvent] = []
                # Bids at or above the new ask are pulled first, so no book crosses.
                for bid in sorted((p for p in member.bids if p >= price), reverse=True):
                    self._set(member, _BUY, bid, 0, False, changes)
                total = member.asks.get(price, 0) + planted
                self._set(member, _SELL, price, total, False, changes)
                out.extend(self._finish(member, timestamp, now_ms, before, False, changes, []))
                legs.append(_Leg(member, _BUY, price, planted, False))
            opportunity = self._register(
                OpportunityKind.NEG_RISK,
                members,
                tuple(legs),
                token_ids=tuple(m.market.yes_token for m in members),
                prices=tuple(new_asks),
                edge=ONE - sum(new_asks),
                size=planted,
                now_ms=now_ms,
                event_id=event.id,
            )
            return opportunity, out
        return None

    @staticmethod
    def _plan_neg_risk(members: Sequence[_Market], edge: int) -> list[int] | None:
        """New best YES asks, on each market's tick, summing to at most ``ONE - edge``.

        The asks come down in two stages. First within each book's spread (never to or below
        its own best bid), shared in proportion to each spread's room; that alone usually
        suffices on 0.001 ladders. When it does not (ten 0.01 brackets cannot all sit a tick
        above their bids and still sum below 1), the rest is shared in proportion to the room
        below the bids, and ``_inject_neg_risk`` pulls the bids the new asks reach. ``None`` if
        even asks of one tick everywhere cannot reach the target.
        """
        asks = [m.yes.best_ask_price for m in members]
        ticks = [m.tick for m in members]
        # The lowest ask that leaves a book's bids alone.
        floors = [(m.yes.best_bid_price + m.tick) if m.bids else m.tick for m in members]
        spread_room = [max(0, a - f) for a, f in zip(asks, floors, strict=True)]
        below_bids = [max(0, min(a, f) - t) for a, f, t in zip(asks, floors, ticks, strict=True)]
        cuts = [0] * len(members)
        for rooms in (spread_room, below_bids):
            need = sum(asks) - sum(cuts) - (ONE - edge)
            total = sum(rooms)
            if need <= 0 or not total:
                continue
            take = min(need, total)  # stage 1 uses all its room before stage 2 starts
            for index, room in enumerate(rooms):
                if room:
                    share = -(-take * room // total)  # ceil of a proportional share
                    tick = ticks[index]
                    cuts[index] += min(room, -(-share // tick) * tick)
        if sum(asks) - sum(cuts) > ONE - edge:
            return None
        return [a - c for a, c in zip(asks, cuts, strict=True)]

    def _inject_mispricing(self, now_ms: int) -> tuple[Opportunity, list[WireEvent]] | None:
        rng = self.rng
        low, high = self.flow.mispricing_edge

        def fits(state: _Market) -> bool:
            tick = state.tick
            if state.queues:
                return False
            return state.fair - low >= tick or state.fair + low <= ONE - tick

        state = self._scan(self._temperature, fits)
        if state is None:
            return None
        tick = state.tick
        fair = state.fair
        distance = rng.randint(low, high)
        cheap = max(tick, (fair - distance) // tick * tick)
        rich = min(ONE - tick, -(-(fair + distance) // tick) * tick)
        variants = []
        if fair - cheap >= low:
            variants.append(_BUY)  # the competitor (and the bot) buys YES cheap
        if rich - fair >= low:
            variants.append(_SELL)  # ... or sells YES dear, i.e. buys NO cheap
        taker = rng.choice(variants)
        planted = self._opportunity_size()
        before = self._top(state)
        changes: list[WireEvent] = []
        market = state.market
        if taker is _BUY:
            for price in sorted((p for p in state.bids if p >= cheap), reverse=True):
                self._set(state, _BUY, price, 0, False, changes)
            self._set(state, _SELL, cheap, state.asks.get(cheap, 0) + planted, False, changes)
            leg = _Leg(state, _BUY, cheap, planted, False)
            token_ids, prices, edge = (market.yes_token,), (cheap,), fair - cheap
        else:
            for price in sorted(p for p in state.asks if p <= rich):
                self._set(state, _SELL, price, 0, True, changes)
            self._set(state, _BUY, rich, state.bids.get(rich, 0) + planted, True, changes)
            leg = _Leg(state, _SELL, rich, planted, True)
            token_ids, prices, edge = (market.no_token,), (ONE - rich,), rich - fair
        opportunity = self._register(
            OpportunityKind.TEMPERATURE_MISPRICE,
            (state,),
            (leg,),
            token_ids=token_ids,
            prices=prices,
            edge=edge,
            size=planted,
            now_ms=now_ms,
            event_id=market.event_id,
        )
        no_first = taker is _SELL
        timestamp = str(now_ms)
        return opportunity, self._finish(state, timestamp, now_ms, before, no_first, changes, [])
