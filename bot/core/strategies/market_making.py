"""Market making: two-sided post-only quotes around the mid, skewed by inventory.

``MarketMaker`` quotes a bid and an ask on the YES token of a few binary markets. Only YES is
quoted: the NO book is the YES book mirrored (a YES bid at p is a NO ask at 1 - p, PROTOCOL.md
7.2), so a NO quote would be the same liquidity twice and double the inventory risk. Holding NO is
counted as being short YES.

The pieces, all pure (no clock, no I/O; ``ctx.now`` is the time):

* ``QuoteParams``: the configuration in micro-units;
* ``plan_quotes``: one book view and a position to the wanted bid and ask (or why a side is
  not quoted); the arithmetic lives here so it can be tested on its own;
* ``MarketMaker``: the strategy, which turns plans into ``Place``/``Cancel`` intents against the
  strategy's open orders, and pulls its quotes when a book cannot be trusted.

Prices. The fair price is the exact mid of the YES book, kept as twice the mid so it stays an
integer. Each quote is placed half a spread (``half_spread_ticks`` ticks) away from it, moved by
the inventory skew, and only then rounded to the token's *current* tick (it changes near 0 and 1),
each one *away* from the fair price: bids down, asks up. Rounding the fair price first would
round one of the two quotes toward the mid; rounding each quote away from it never narrows the
spread asked for.

Skew. ``skew = round(skew_ticks x tick x position / inventory_limit)`` (half away from zero, the
position clamped to the limit), subtracted from both quotes: a long position lowers both (buy
less eagerly, sell more eagerly), a short one raises both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs

from bot.core.money import ONE, Side, format_units, from_decimal
from bot.core.risk import SIZE_STEP
from bot.core.trading import (
    Cancel,
    CancelAll,
    Decision,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Place,
    Strategy,
)
from bot.core.wire.market_events import MarketResolved

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from bot.config import MarketMakingConfig
    from bot.core.book import BookView
    from bot.core.trading import Action, Context, Order
    from bot.core.universe import Market, Universe

__all__ = [
    "ASK_TAG",
    "BID_TAG",
    "PENDING_TIMEOUT_S",
    "MarketMaker",
    "Quote",
    "QuoteParams",
    "QuotePlan",
    "plan_quotes",
    "unusable_reason",
]

BID_TAG: Final = "bid"
"""``Place.tag`` of the bid quote (echoed in ``Order.tag``)."""

ASK_TAG: Final = "ask"
"""``Place.tag`` of the ask quote."""

PENDING_TIMEOUT_S: Final = 2.0
"""How long a placed quote is treated as in flight before it shows up in ``ctx.orders``.

The strategy's intents reach the execution task through a channel, so the next book update can
arrive before the engine has taken the order; without this the quote would be placed twice. The
wait also ends by itself, so a quote lost on the way is placed again."""

REJECT_RETRY_S: Final = 0.5
"""After a refusal, wait this long before placing the quote again."""

_TAGS: Final = (BID_TAG, ASK_TAG)


# --------------------------------------------------------------------------------------------
# Quote arithmetic


@attrs.frozen
class QuoteParams:
    """``MarketMakingConfig`` in micro-units (see ``config.toml`` for the meaning of each).

    Attributes:
        quote_size: shares per quote, micro-units.
        half_spread_ticks: distance of each quote from the fair price, in ticks.
        inventory_limit: the largest absolute YES position (NO counts as short YES), micro-units.
        skew_ticks: the skew at a position of +-``inventory_limit``, in ticks.
        requote_ticks: a resting quote this close to the wanted price (and the same size) stays.
    """

    quote_size: int
    half_spread_ticks: int
    inventory_limit: int
    skew_ticks: int
    requote_ticks: int

    def __attrs_post_init__(self) -> None:
        if self.inventory_limit <= 0:
            raise ValueError(
                "strategies.market_making.inventory_limit must be > 0 to quote anything, "
                f"got {format_units(self.inventory_limit)}"
            )
        if self.quote_size < 0 or self.half_spread_ticks < 1:
            raise ValueError(
                f"quote_size must be >= 0 and half_spread_ticks >= 1, got "
                f"{format_units(self.quote_size)} and {self.half_spread_ticks}"
            )
        if self.skew_ticks < 0 or self.requote_ticks < 0:
            raise ValueError(
                f"skew_ticks and requote_ticks must be >= 0, got {self.skew_ticks} and "
                f"{self.requote_ticks}"
            )

    @classmethod
    def from_config(cls, cfg: MarketMakingConfig) -> QuoteParams:
        return cls(
            quote_size=from_decimal(cfg.quote_size),
            half_spread_ticks=cfg.half_spread_ticks,
            inventory_limit=from_decimal(cfg.inventory_limit),
            skew_ticks=cfg.skew_ticks,
            requote_ticks=cfg.requote_ticks,
        )


@attrs.frozen
class Quote:
    """One wanted resting order: price on the tick, size in whole cents of a share."""

    side: Side
    price: int
    size: int


@attrs.frozen
class QuotePlan:
    """The wanted quotes of one market at one instant.

    Attributes:
        bid: the bid (a BUY of YES), or ``None`` when not quoted.
        ask: the ask (a SELL of YES), or ``None`` when not quoted.
        fair2: twice the fair price (the exact mid), micro-units.
        skew: how far both quotes were moved down (negative: up), micro-units.
        tick: the tick the prices are on.
        position: the YES position the plan was made for (NO held counts negative).
        no_bid: why there is no bid ("" when there is one).
        no_ask: why there is no ask ("" when there is one).
    """

    bid: Quote | None
    ask: Quote | None
    fair2: int
    skew: int
    tick: int
    position: int
    no_bid: str = ""
    no_ask: str = ""


def unusable_reason(view: BookView | None) -> str | None:
    """Why ``view`` cannot be quoted around (``None`` when it can).

    Quoting needs a fresh, two-sided, uncrossed book: the mid of anything else is not a price.
    """
    if view is None:
        return "no book"
    if view.stale:
        return "stale book"
    if view.best_bid is None or view.best_ask is None:
        return "one-sided book"
    if view.best_bid.price >= view.best_ask.price:
        return "crossed book"
    return None


def _skew(params: QuoteParams, tick: int, position: int) -> int:
    """``round(skew_ticks x tick x position / limit)``, half away from zero, exact."""
    limit = params.inventory_limit
    clamped = max(-limit, min(limit, position))
    numerator = params.skew_ticks * tick * abs(clamped)
    magnitude = (2 * numerator + limit) // (2 * limit)
    return magnitude if clamped >= 0 else -magnitude


def _lot_down(size: int) -> int:
    return size - size % SIZE_STEP


def _lot_up(size: int) -> int:
    return -(-size // SIZE_STEP) * SIZE_STEP


def _sized(wanted: int, room: int, min_size: int) -> tuple[int, str]:
    """The size to quote given the room left under the inventory limit, or ``(0, why not)``."""
    if room <= 0:
        return 0, "inventory limit"
    size = min(wanted, _lot_down(room))
    if size < min_size:
        return 0, (
            f"inventory limit (room {format_units(room)} < min size {format_units(min_size)})"
        )
    return size, ""


def plan_quotes(
    view: BookView,
    position: int,
    params: QuoteParams,
    min_order_size: int,
    *,
    pending_up: int = 0,
    pending_down: int = 0,
) -> QuotePlan:
    """The bid and ask to rest on ``view``'s token for a YES ``position``.

    Steps, all in integers:

    1. ``fair2 = best_bid + best_ask`` (twice the mid, exact);
    2. raw quotes ``fair -+ half_spread_ticks x tick - skew``, rounded to the current tick away
       from the fair price (bid down, ask up);
    3. clamped to ``[tick, 1 - tick]``;
    4. post-only safe: a bid at or above the best ask becomes the highest tick below it, an ask
       at or below the best bid the lowest tick above it; a side pushed out of ``[tick, 1 - tick]``
       by that is dropped;
    5. the bid is kept strictly below our own ask (lowered, else dropped);
    6. size: ``quote_size`` (whole cents of a share, rounded down), raised to the market's
       ``min_order_size``; a side that would take ``|position|`` past ``inventory_limit`` is
       quoted only for the room left (rounded down), and not at all if that is below the
       minimum size. The room also keeps out what quotes being cancelled may still fill
       (``pending_up``/``pending_down``): a fill can land while the cancel is on its way, and
       the replacement must not count on it not happening.

    Args:
        view: a usable view (``unusable_reason(view) is None``).
        position: YES shares held minus NO shares held, micro-units.
        params: the quoting parameters.
        min_order_size: the market's minimum resting size, micro-units.
        pending_up: YES shares that quotes being cancelled may still buy (or NO sell).
        pending_down: YES shares that quotes being cancelled may still sell (or NO buy).

    Raises:
        ValueError: the view is not usable (the message says why).
    """
    reason = unusable_reason(view)
    top_bid, top_ask = view.best_bid, view.best_ask
    if reason is not None or top_bid is None or top_ask is None:
        raise ValueError(f"cannot quote {view.asset_id}: {reason}")
    best_bid = top_bid.price
    best_ask = top_ask.price
    tick = view.tick_size
    fair2 = best_bid + best_ask
    skew = _skew(params, tick, position)
    offset2 = 2 * (params.half_spread_ticks * tick)
    step2 = 2 * tick

    raw_bid = (fair2 - offset2 - 2 * skew) // step2 * tick  # floor: away from fair
    raw_ask = -(-(fair2 + offset2 - 2 * skew) // step2) * tick  # ceiling: away from fair
    raw_bid = min(max(raw_bid, tick), ONE - tick)
    raw_ask = min(max(raw_ask, tick), ONE - tick)
    # Post-only: never at or through the opposite best (which need not be on the current tick).
    raw_bid = min(raw_bid, (best_ask - 1) // tick * tick)
    raw_ask = max(raw_ask, (best_bid // tick + 1) * tick)
    bid: int | None = raw_bid
    ask: int | None = raw_ask
    no_bid = no_ask = ""
    if raw_bid < tick:
        bid, no_bid = None, "no room below the best ask"
    if raw_ask > ONE - tick:
        ask, no_ask = None, "no room above the best bid"
    if bid is not None and ask is not None and bid >= ask:
        bid = ask - tick
        if bid < tick:
            bid, no_bid = None, "no room below our ask"

    base = max(_lot_down(params.quote_size), _lot_up(min_order_size))
    min_size = _lot_up(min_order_size)
    limit = params.inventory_limit
    bid_size, why = _sized(base, limit - position - pending_up, min_size)
    if bid is not None and not bid_size:
        bid, no_bid = None, why
    ask_size, why = _sized(base, limit + position - pending_down, min_size)
    if ask is not None and not ask_size:
        ask, no_ask = None, why

    return QuotePlan(
        bid=Quote(Side.BUY, bid, bid_size) if bid is not None else None,
        ask=Quote(Side.SELL, ask, ask_size) if ask is not None else None,
        fair2=fair2,
        skew=skew,
        tick=tick,
        position=position,
        no_bid=no_bid,
        no_ask=no_ask,
    )


# --------------------------------------------------------------------------------------------
# The strategy


@attrs.define(eq=False)
class _Pending:
    """A quote placed but not yet seen in ``ctx.orders``."""

    quote: Quote
    since: float


@attrs.define(eq=False)
class _MarketState:
    """What the strategy remembers about one quoted market."""

    market: Market
    active: bool = False
    """Quotes may be resting (placed since the last pull)."""
    pulled: str | None = None
    """Why the quotes were last pulled, until quoting resumes."""
    resolved: bool = False
    pending: dict[str, _Pending] = attrs.field(factory=dict)

    @property
    def yes(self) -> str:
        return self.market.yes.token_id

    @property
    def no(self) -> str:
        return self.market.no.token_id


class MarketMaker(Strategy):
    """Two-sided post-only quotes on the YES token of each chosen market, skewed by inventory.

    Markets: ``config.markets`` (condition ids, in that order; any not in the universe is
    reported once as ``quotes.market_missing``), else the first ``max_markets`` binary
    (non-neg-risk) markets of the universe.

    On every book update of a market's YES or NO token the wanted quotes are computed with
    ``plan_quotes`` (position: this strategy's YES minus its NO) and compared with the open
    orders tagged ``"bid"``/``"ask"``: an order within ``requote_ticks`` ticks of the wanted
    price, on the current tick, with the wanted size still to fill, stays; anything else is
    cancelled and the wanted quote placed (GTC, post-only). A quote already placed but not yet
    visible in ``ctx.orders`` is not placed again for ``pending_timeout_s``.

    Quotes are pulled (``CancelAll`` on the YES token and a ``quotes.pulled`` decision) when a
    token of the market turns stale (``on_stale``) or its YES view is unusable (missing, stale,
    one-sided, crossed), and quoting resumes with the next usable book update (``quotes.resumed``).
    A resolved market is cancelled and never quoted again. When a quote's final update arrives
    (filled, or its cancel done) the market is requoted at once: the skew reads the new position
    from ``ctx.inventory``, and a replacement held back for room goes out.
    """

    name = "market_making"

    def __init__(
        self,
        universe: Universe,
        config: MarketMakingConfig,
        *,
        pending_timeout_s: float = PENDING_TIMEOUT_S,
    ) -> None:
        self.params = QuoteParams.from_config(config)
        self._pending_timeout_s = pending_timeout_s
        self._startup: list[Action] = []
        chosen: list[Market] = []
        if config.markets:
            by_condition = {market.condition_id: market for market in universe.markets}
            for condition_id in config.markets:
                found = by_condition.get(condition_id)
                if found is None:
                    self._startup.append(
                        Decision(
                            self.name,
                            "quotes.market_missing",
                            condition_id,
                            {"reason": "configured market is not in the universe"},
                        )
                    )
                elif found not in chosen:
                    chosen.append(found)
        else:
            chosen = list(universe.binary_markets()[: config.max_markets])
        self.markets: tuple[Market, ...] = tuple(chosen)
        self._states: dict[str, _MarketState] = {}
        self._by_token: dict[str, _MarketState] = {}
        for market in self.markets:
            state = _MarketState(market)
            self._states[market.condition_id] = state
            for token in market.token_ids:
                self._by_token[token] = state
        self._cancelling: set[str] = set()
        """Order ids we asked to cancel that may still show in ``ctx.orders``."""

    # --- hooks

    def on_books(self, ctx: Context, changed: Collection[str]) -> Sequence[Action]:
        actions = self._take_startup()
        self._cancelling.intersection_update(
            order_id for order_id, order in ctx.orders.items() if order.status is OrderStatus.LIVE
        )
        done: set[str] = set()
        for token in changed:
            state = self._by_token.get(token)
            if state is None or state.market.condition_id in done:
                continue
            done.add(state.market.condition_id)
            actions += self._refresh(ctx, state)
        return actions

    def on_stale(self, ctx: Context, tokens: Collection[str], stale: bool) -> Sequence[Action]:
        actions = self._take_startup()
        if not stale:
            return actions  # quoting resumes with the next book update
        done: set[str] = set()
        for token in tokens:
            state = self._by_token.get(token)
            if state is None or state.resolved or state.market.condition_id in done:
                continue
            done.add(state.market.condition_id)
            if self._has_quotes(ctx, state):
                actions += self._pull(ctx, state, f"stale book ({_which(state, token)})")
        return actions

    def on_event(self, ctx: Context, event: object) -> Sequence[Action]:
        actions = self._take_startup()
        if isinstance(event, MarketResolved):
            state = self._states.get(event.market)
            if state is None:
                state = next(
                    (self._by_token[t] for t in event.assets_ids if t in self._by_token), None
                )
            if state is not None and not state.resolved:
                state.resolved = True
                actions += self._pull(ctx, state, "market resolved")
        elif isinstance(event, OrderUpdate) and event.status.terminal:
            self._cancelling.discard(event.order_id)
            state = self._by_token.get(event.token_id)
            if state is not None and event.status is not OrderStatus.REJECTED:
                # A quote is gone (filled, or a cancel is final): requote now with the new
                # position and room, not at the next book update (a quiet book may be long).
                actions += self._refresh(ctx, state)
            elif state is not None:
                # A quote refused (a post-only that would cross, a risk limit) is placed again
                # after REJECT_RETRY_S instead of waiting out the whole pending timeout; not at
                # once, which would turn a standing refusal into a storm of orders.
                side, price = event.side, event.price
                if event.token_id == state.no:  # a NO bid is our YES ask at 1 - price
                    side, price = Side.SELL, ONE - price
                for tag, pending in list(state.pending.items()):
                    quote = pending.quote
                    if (quote.side, quote.price, quote.size) == (side, price, event.size):
                        retry_at = ctx.now + REJECT_RETRY_S - self._pending_timeout_s
                        state.pending[tag] = _Pending(quote, min(pending.since, retry_at))
        return actions

    # --- quoting

    def _take_startup(self) -> list[Action]:
        actions, self._startup = self._startup, []
        return actions

    def _refresh(self, ctx: Context, state: _MarketState) -> list[Action]:
        if state.resolved:
            return []
        reason = self._unusable(ctx, state)
        if reason is not None:
            if self._has_quotes(ctx, state):
                return self._pull(ctx, state, reason)
            return []
        view = ctx.books[state.yes]
        position = ctx.inventory.position_of(self.name, state.yes) - ctx.inventory.position_of(
            self.name, state.no
        )
        up = down = 0
        for order in ctx.orders.values():
            if order.id in self._cancelling and order.token_id in (state.yes, state.no):
                side, _ = _as_yes(order)
                if side is Side.BUY:
                    up += order.remaining
                else:
                    down += order.remaining

        def plan(replaced_up: int, replaced_down: int) -> QuotePlan:
            return plan_quotes(
                view,
                position,
                self.params,
                state.market.min_order_size,
                pending_up=up + replaced_up,
                pending_down=down + replaced_down,
            )

        actions: list[Action] = []
        if state.pulled is not None:
            actions.append(
                Decision(
                    self.name,
                    "quotes.resumed",
                    state.market.condition_id,
                    {"token": state.yes, "pulled_for": state.pulled},
                )
            )
            state.pulled = None
        state.active = True
        actions += self._reconcile(ctx, state, plan)
        return actions

    def _unusable(self, ctx: Context, state: _MarketState) -> str | None:
        if state.yes in ctx.stale:
            return "stale book (YES)"
        reason = unusable_reason(ctx.books.get(state.yes))
        if reason is not None:
            return f"{reason} (YES)"
        no_view = ctx.books.get(state.no)
        if state.no in ctx.stale or (no_view is not None and no_view.stale):
            return "stale book (NO)"
        return None

    def _live(self, ctx: Context, state: _MarketState) -> dict[str, list[Order]]:
        live: dict[str, list[Order]] = {tag: [] for tag in _TAGS}
        for order in ctx.orders.values():
            if (
                order.token_id in (state.yes, state.no)
                and order.tag in live
                and order.status is OrderStatus.LIVE
                and order.id not in self._cancelling
            ):
                live[order.tag].append(order)
        return live

    def _has_quotes(self, ctx: Context, state: _MarketState) -> bool:
        if state.active or state.pending:
            return True
        return any(orders for orders in self._live(ctx, state).values())

    def _keep(
        self, orders: list[Order], wanted: Quote | None, tick: int, inside: int | None
    ) -> Order | None:
        """The resting order that can stand for ``wanted``, if any.

        ``inside`` is the price it must stay strictly on its own side of (our other quote).
        """
        if wanted is None:
            return None
        tolerance = self.params.requote_ticks * tick
        for order in orders:
            side, price = _as_yes(order)
            if (
                side is wanted.side
                and order.remaining == wanted.size
                and price % tick == 0
                and abs(price - wanted.price) <= tolerance
                and (
                    inside is None
                    or (price < inside if wanted.side is Side.BUY else price > inside)
                )
            ):
                return order
        return None

    def _reconcile(
        self,
        ctx: Context,
        state: _MarketState,
        plan_with: Callable[[int, int], QuotePlan],
    ) -> list[Action]:
        """Cancel what no longer stands for the plan; place what is missing.

        ``plan_with(up, down)`` is the plan with that much more room kept out on each side
        (``(0, 0)``: the plan). A replacement's room keeps out what the quotes it replaces may
        still fill: their cancels are on their way, and a fill can land first (paper and live
        alike). When that leaves less than the planned size, the replacement waits for the
        cancels' final updates (``on_event`` refreshes the market then) rather than rest a
        smaller quote that the next update would replace again.
        """
        plan = plan_with(0, 0)
        live = self._live(ctx, state)
        bid, ask = plan.bid, plan.ask
        keep = {
            BID_TAG: self._keep(live[BID_TAG], bid, plan.tick, ask.price if ask else None),
            ASK_TAG: self._keep(live[ASK_TAG], ask, plan.tick, bid.price if bid else None),
        }
        kept_bid, kept_ask = keep[BID_TAG], keep[ASK_TAG]
        if (
            kept_bid is not None
            and kept_ask is not None
            and _as_yes(kept_bid)[1] >= _as_yes(kept_ask)[1]  # an ask may rest as a NO bid
        ):
            keep[BID_TAG] = None
        note = (
            f"fair {format_units(plan.fair2 // 2)} shift {format_units(-plan.skew)} "
            f"position {format_units(plan.position)}"
        )
        actions: list[Action] = []
        for tag, wanted in ((BID_TAG, bid), (ASK_TAG, ask)):
            kept = keep[tag]
            orders = live[tag]
            if orders:
                state.pending.pop(tag, None)  # what was in flight has landed
            replaced = 0
            for order in orders:
                if order is not kept:
                    replaced += order.remaining
                    why = (
                        "requote"
                        if wanted is not None
                        else f"no {tag}: " + (plan.no_bid if tag == BID_TAG else plan.no_ask)
                    )
                    actions.append(Cancel(order.id, note=why))
                    self._cancelling.add(order.id)
            if kept is not None or wanted is None:
                continue
            pending = state.pending.get(tag)
            if pending is not None and ctx.now - pending.since < self._pending_timeout_s:
                continue
            if replaced:
                safe = plan_with(replaced, 0).bid if tag == BID_TAG else plan_with(0, replaced).ask
                if safe is None or safe.size < wanted.size:
                    continue  # placed once the cancels are final
            state.pending[tag] = _Pending(wanted, ctx.now)
            token, side, price = state.yes, wanted.side, wanted.price
            if side is Side.SELL and ctx.inventory.position_of(self.name, state.yes) < wanted.size:
                # Polymarket has no short selling: offering YES at p without holding it is
                # bidding for NO at 1 - p (the same exposure; the venue matches them by minting).
                token, side, price = state.no, Side.BUY, ONE - wanted.price
            actions.append(
                Place(
                    token_id=token,
                    side=side,
                    price=price,
                    size=wanted.size,
                    order_type=OrderType.GTC,
                    post_only=True,
                    tag=tag,
                    note=note,
                )
            )
        return actions

    def _pull(self, ctx: Context, state: _MarketState, reason: str) -> list[Action]:
        """Cancel everything on the market's YES token and say why.

        Intents reach the engine in order, so a ``Place`` still in flight is cancelled too.
        """
        for orders in self._live(ctx, state).values():
            self._cancelling.update(order.id for order in orders)
        state.pending.clear()
        state.active = False
        state.pulled = reason
        return [
            CancelAll(state.yes, note=f"quotes pulled: {reason}"),
            CancelAll(state.no, note=f"quotes pulled: {reason}"),
            Decision(
                self.name,
                "quotes.pulled",
                state.market.condition_id,
                {"reason": reason, "token": state.yes},
            ),
        ]


def _as_yes(order: Order) -> tuple[Side, int]:
    """An order in YES terms: a NO bid at ``q`` is a YES offer at ``1 - q``."""
    if order.tag == ASK_TAG and order.side is Side.BUY:
        return Side.SELL, ONE - order.price
    return order.side, order.price


def _which(state: _MarketState, token: str) -> str:
    return "YES" if token == state.yes else "NO"
