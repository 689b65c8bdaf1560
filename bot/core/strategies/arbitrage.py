"""Arbitrage: buy complete sets of outcome tokens for less than they are certain to pay.

Two strategies share one sizing routine and one coordination rule:

* ``ComplementArb`` (PROTOCOL.md 7.2): one YES and one NO of a binary market pay exactly 1
  together. Buying N of each for less than N, walking both ask books and paying the taker fee on
  every level, locks in the difference. Every market whose two books are usable is watched,
  neg-risk members included (they are binary markets too).
* ``NegRiskArb`` (PROTOCOL.md 7.3): in a complete neg-risk event exactly one outcome resolves
  YES. N YES of every outcome pay N; N NO of every outcome of an m-outcome event pay
  (m - 1) x N (every NO but the winner's pays). An event has many books that move together, so it
  is evaluated once per burst of updates (the debounce), not once per update.

**Sizing** (``size_basket``). The profit of N sets is the payout minus, on every leg, the cost of
walking its ask levels for N shares plus the taker fee of each level
(``taker_fee_units(take, level price, fee_rate)``, as the venue charges per match and the paper
venue charges per level). The marginal cost of a share, ``p x (1 + r x (1 - p))``, grows with
``p`` for any rate below 1, so walking deeper only ever costs more per share: profit is concave
in N and linear between the breakpoints where some leg reaches its next level. The best N is
therefore one of those breakpoints, the cap (``max_shares`` or the shallowest leg's depth), the
smallest size the venue accepts, or the largest N whose profit per share still meets
``min_edge`` (found by bisection inside the one segment where it stops being met). Every
candidate is evaluated exactly, so the reported edge is what that N costs, to the micro-unit.

Exact and conservative: sizes are whole cents of a share (``SIZE_STEP``, what the venue
accepts); each level's notional is rounded *up* to the micro-unit (each level is at least one
match, and the venue rounds every match on its own); fees are the venue's floor to five decimals;
a payout that is not a whole number of micro-units would be rounded down. Each leg is sent at the
price of the worst level walked, rounded up to the token's current tick (a worst-price cap: with
the book as seen, the fill is the levels walked). Levels above ``1 - tick`` are never walked
(the venue does not accept such prices).

Minimums: every leg must be worth at least $1 at its limit price (the venue's marketable minimum,
checked the same way as ``bot.core.risk``) and at least the market's ``min_order_size`` shares.

**Coordination** (``rank_baskets``). When one evaluation finds several opportunities they are
ranked by edge plus ``inventory_bonus`` per share of the market maker's inventory that the basket
would offset, and only the best non-overlapping ones (no shared basket key, no shared token) are
sent (``select_baskets``). See ``inventory_reduction`` for what "offset" means.

**Decisions**. Each opportunity is logged once when it opens (``opportunity.open``, with its
figures and whether its basket was sent), once when it goes away (``opportunity.close``, with the
reason), and each time its basket is sent again after the cooldown (``opportunity.retry``); not
on every book update while it lasts, so the decision log reads like a trader's notebook. A basket
key is sent at most once per ``cooldown_s``; an opportunity still open when the cooldown ends is
re-checked then by a timer, without waiting for the next book update.

Nothing here reads a clock or does I/O: ``ctx.now`` is the time, and books that are stale or
missing (``ctx.usable``) are never traded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeAlias

import attrs

from bot.core.money import ONE, Side, format_units, from_decimal, taker_fee_units
from bot.core.risk import MIN_MARKETABLE_NOTIONAL, SIZE_STEP
from bot.core.trading import Basket, Decision, OrderType, Place, Strategy
from bot.core.wire.market_events import MarketResolved

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    from bot.config import ComplementArbConfig, CoordinationConfig, NegRiskArbConfig
    from bot.core.book import BookView
    from bot.core.trading import Action, Context, Inventory
    from bot.core.universe import Event, Market, Universe
    from bot.core.wire.market_events import Level

__all__ = [
    "COMPLEMENT_SIDE",
    "ComplementArb",
    "LegBook",
    "LegCost",
    "NegRiskArb",
    "Opportunity",
    "Sizing",
    "inventory_reduction",
    "rank_baskets",
    "select_baskets",
    "size_basket",
]

COMPLEMENT_SIDE: Final = "yes+no"
"""The ``side`` of a complement opportunity (neg-risk ones are ``"yes"`` or ``"no"``)."""

_UNUSABLE: Final = "book stale or missing"
_NO_SIZE: Final = "no size with enough edge after fees"
_RESOLVED: Final = "market resolved"


# --------------------------------------------------------------------------------------------
# Sizing


@attrs.frozen
class LegBook:
    """One leg to size: a token to buy and the ask levels it can take.

    Attributes:
        token_id: the token bought.
        asks: its ask levels, best (cheapest) first, micro-units.
        tick_size: the token's current tick, micro-units (the limit price is rounded up to it).
        fee_rate: the market's taker fee rate, micro-units (0.04 -> ``40_000``).
        min_order_size: the market's minimum order size, shares in micro-units.
        tag: the leg's label, echoed in ``Place.tag`` (``"yes"``/``"no"``).
    """

    token_id: str
    asks: tuple[Level, ...]
    tick_size: int
    fee_rate: int
    min_order_size: int
    tag: str = ""


@attrs.frozen
class LegCost:
    """What buying ``shares`` on one leg costs, walking its book.

    Attributes:
        token_id: the token.
        limit_price: the worst level's price rounded up to the tick: the order's price cap.
        notional: the sum over levels of price x size, each rounded up, micro-units of pUSD.
        fee: the sum over levels of the venue's taker fee, micro-units of pUSD.
        levels: how many levels are taken.
    """

    token_id: str
    limit_price: int
    notional: int
    fee: int
    levels: int


@attrs.frozen
class Sizing:
    """A basket size and its exact economics.

    Attributes:
        shares: sets bought (each leg buys this many shares), micro-units.
        payout: what the sets pay at resolution, micro-units of pUSD.
        cost: what the legs cost before fees, micro-units of pUSD.
        fees: the taker fees of every leg, micro-units of pUSD.
        legs: each leg's figures, in the order given.
    """

    shares: int
    payout: int
    cost: int
    fees: int
    legs: tuple[LegCost, ...]

    @property
    def profit(self) -> int:
        """Payout minus cost and fees, micro-units of pUSD (the basket's edge)."""
        return self.payout - self.cost - self.fees

    @property
    def profit_per_share(self) -> int:
        """Profit per set, micro-units of pUSD per share, rounded down."""
        return self.profit * ONE // self.shares


def size_basket(
    legs: Sequence[LegBook], payout_per_set: int, *, min_edge: int, max_shares: int
) -> Sizing | None:
    """The most profitable number of sets to buy, or ``None`` when no size is worth it.

    ``payout_per_set`` is what one set (one share of every leg) pays, micro-units of pUSD
    (``ONE`` for a YES+NO pair). A size qualifies when its profit after fees is positive and at
    least ``min_edge`` per set, every leg has the depth for it (levels up to ``1 - tick``), it
    is at most ``max_shares``, and every leg meets the $1 marketable minimum and its market's
    ``min_order_size``. Among qualifying sizes the largest profit wins (the smaller size on a
    tie). See the module docstring for why the candidates checked are enough.

    Raises:
        ValueError: no legs, or a negative ``payout_per_set``, ``min_edge`` or ``max_shares``.
    """
    if not legs:
        raise ValueError("size_basket needs at least one leg")
    if payout_per_set < 0 or min_edge < 0 or max_shares < 0:
        raise ValueError(
            "payout_per_set, min_edge and max_shares must be >= 0, got "
            f"{format_units(payout_per_set)}, {format_units(min_edge)} and "
            f"{format_units(max_shares)}"
        )
    books = [_walkable(leg) for leg in legs]
    if any(not levels for levels in books):
        return None
    # The first share of every leg is the cheapest there is: if it does not pay, nothing does.
    best_margin = payout_per_set - sum(levels[0].price for levels in books)
    if best_margin <= 0 or best_margin < min_edge:
        return None

    high = min(max_shares, *(sum(level.size for level in levels) for levels in books))
    high -= high % SIZE_STEP
    low = max(SIZE_STEP, *(_ceil_to(leg.min_order_size, SIZE_STEP) for leg in legs))
    if low > high:
        return None

    def evaluate(shares: int) -> Sizing:
        costs = tuple(
            _leg_cost(leg, levels, shares) for leg, levels in zip(legs, books, strict=True)
        )
        return Sizing(
            shares=shares,
            payout=shares * payout_per_set // ONE,
            cost=sum(cost.notional for cost in costs),
            fees=sum(cost.fee for cost in costs),
            legs=costs,
        )

    def marketable(sizing: Sizing) -> bool:
        return all(
            _notional_up(cost.limit_price, sizing.shares) >= MIN_MARKETABLE_NOTIONAL
            for cost in sizing.legs
        )

    def enough_edge(sizing: Sizing) -> bool:
        return sizing.profit > 0 and sizing.profit * ONE >= min_edge * sizing.shares

    # The $1 minimum is met from some size on (a leg's notional grows with the size): bisect for
    # the smallest such size.
    if not marketable(evaluate(low)):
        if not marketable(evaluate(high)):
            return None
        short, enough = low, high
        while enough - short > SIZE_STEP:
            mid = _midpoint(short, enough)
            if marketable(evaluate(mid)):
                enough = mid
            else:
                short = mid
        low = enough

    breakpoints = {low, high}
    for levels in books:
        depth = 0
        for level in levels:
            depth += level.size
            shares = depth - depth % SIZE_STEP
            if low < shares < high:
                breakpoints.add(shares)

    best: Sizing | None = None
    last_good: int | None = None
    for shares in sorted(breakpoints):
        sizing = evaluate(shares)
        if not enough_edge(sizing):
            if last_good is None:
                return None  # profit per set only falls as the size grows
            # The edge per set ran out inside this segment: find the largest size that keeps it.
            good, bad = last_good, shares
            while bad - good > SIZE_STEP:
                mid = _midpoint(good, bad)
                if enough_edge(evaluate(mid)):
                    good = mid
                else:
                    bad = mid
            edge_sizing = evaluate(good)
            if best is None or edge_sizing.profit > best.profit:
                best = edge_sizing
            break
        if best is not None and sizing.profit < best.profit:
            break  # past the top of a concave curve
        if best is None or sizing.profit > best.profit:
            best = sizing
        last_good = shares
    return best


def _walkable(leg: LegBook) -> tuple[Level, ...]:
    """The levels a BUY may take: non-empty, priced inside ``(0, 1 - tick]``."""
    ceiling = ONE - leg.tick_size
    return tuple(level for level in leg.asks if level.size > 0 and 0 < level.price <= ceiling)


def _leg_cost(leg: LegBook, levels: tuple[Level, ...], shares: int) -> LegCost:
    remaining = shares
    notional = fee = taken = worst = 0
    for price, size in levels:
        take = min(remaining, size)
        notional += _notional_up(price, take)
        fee += taker_fee_units(take, price, leg.fee_rate)
        worst = price
        taken += 1
        remaining -= take
        if not remaining:
            break
    if remaining:  # callers never size beyond the depth
        raise ValueError(f"{format_units(shares)} shares is deeper than the book of {leg.token_id}")
    return LegCost(leg.token_id, _ceil_to(worst, leg.tick_size), notional, fee, taken)


def _notional_up(price: int, size: int) -> int:
    return -(-price * size // ONE)


def _ceil_to(value: int, step: int) -> int:
    return -(-value // step) * step


def _midpoint(low: int, high: int) -> int:
    """A multiple of ``SIZE_STEP`` strictly between two multiples at least two steps apart."""
    return low + (high - low) // SIZE_STEP // 2 * SIZE_STEP


# --------------------------------------------------------------------------------------------
# Coordination


def inventory_reduction(
    basket: Basket, inventory: Inventory, strategy: str, universe: Universe
) -> int:
    """Shares of ``strategy``'s market exposure that ``basket`` offsets, micro-units.

    A strategy's *market exposure* to a binary market is its YES position minus its NO
    position (NO is short YES: the market maker counts it that way too). The basket changes the
    firm's exposure to each market by the sum of its legs there (+size for buying YES or selling
    NO, -size for buying NO or selling YES). Where that change has the opposite sign of
    ``strategy``'s exposure it moves the firm toward flat, and the shares counted are the change
    capped at the exposure (going past flat is new exposure, not an offset). A YES+NO pair changes
    nothing, so a complement basket never offsets anything; a neg-risk NO-side basket offsets the
    market maker's long YES, a YES-side basket its long NO. Legs of unknown tokens are ignored.
    """
    change: dict[str, int] = {}
    markets: dict[str, Market] = {}
    for leg in basket.legs:
        try:
            market = universe.market_for_token(leg.token_id)
        except KeyError:
            continue
        signed = leg.size if leg.token_id == market.yes.token_id else -leg.size
        if leg.side is Side.SELL:
            signed = -signed
        markets[market.condition_id] = market
        change[market.condition_id] = change.get(market.condition_id, 0) + signed
    offset = 0
    for condition_id, delta in change.items():
        yes, no = markets[condition_id].token_ids
        exposure = inventory.position_of(strategy, yes) - inventory.position_of(strategy, no)
        if delta * exposure < 0:
            offset += min(abs(delta), abs(exposure))
    return offset


def rank_baskets(
    baskets: Iterable[Basket],
    inventory: Inventory,
    mm_strategy: str,
    bonus_per_share: int,
    *,
    universe: Universe,
) -> list[Basket]:
    """``baskets`` best first: by edge plus ``bonus_per_share`` per share they offset.

    The score of a basket is ``edge + bonus_per_share x inventory_reduction(...)`` (micro-units
    of pUSD; compared exactly). Equal scores keep the order given. ``universe`` tells which
    token is whose YES or NO.
    """
    scored = [
        (
            basket.edge * ONE
            + bonus_per_share * inventory_reduction(basket, inventory, mm_strategy, universe),
            basket,
        )
        for basket in baskets
    ]
    scored.sort(key=lambda pair: -pair[0])  # stable: ties keep their order
    return [basket for _, basket in scored]


def select_baskets(ranked: Iterable[Basket]) -> list[Basket]:
    """The baskets to send, taken greedily from ``ranked`` (best first).

    A basket is skipped when it shares its key or any token with one already taken: the second
    would compete for the same liquidity, and the engine tracks baskets by key.
    """
    keys: set[str] = set()
    tokens: set[str] = set()
    chosen: list[Basket] = []
    for basket in ranked:
        legs = {leg.token_id for leg in basket.legs}
        if basket.key in keys or not tokens.isdisjoint(legs):
            continue
        keys.add(basket.key)
        tokens.update(legs)
        chosen.append(basket)
    return chosen


# --------------------------------------------------------------------------------------------
# The strategies


@attrs.frozen
class Opportunity:
    """A basket worth sending, as one evaluation found it.

    Attributes:
        key: the basket key (a condition id or an event id).
        side: ``"yes+no"`` for a complement pair; ``"yes"``/``"no"`` for a neg-risk event.
        label: what it is about, for the decision log (``{"market": ...}``).
        sizing: the figures.
        basket: the basket to send.
    """

    key: str
    side: str
    label: Mapping[str, str]
    sizing: Sizing
    basket: Basket


_Id: TypeAlias = tuple[str, str]
"""An opportunity's identity: (basket key, side)."""


class _Arbitrage(Strategy):
    """What both arbitrages share: the open/close log, the cooldown and the choice of baskets."""

    def __init__(
        self,
        universe: Universe,
        config: ComplementArbConfig | NegRiskArbConfig,
        coordination: CoordinationConfig,
        mm_strategy: str,
    ) -> None:
        order_type = OrderType(config.order_type.value)
        if order_type not in (OrderType.FOK, OrderType.FAK):
            raise ValueError(f"{self.name}: basket legs must be FOK or FAK, got {order_type}")
        self._universe = universe
        self._min_edge = from_decimal(config.min_edge)
        self._max_shares = from_decimal(config.max_shares)
        self._order_type = order_type
        self._cooldown_s = config.cooldown_s
        self._bonus = from_decimal(coordination.inventory_bonus)
        self._mm_strategy = mm_strategy
        self._open: dict[_Id, Opportunity] = {}
        self._sent_at: dict[str, float] = {}

    def _size(
        self, key: str, side: str, label: Mapping[str, str], legs: Sequence[LegBook], payout: int
    ) -> Opportunity | str:
        sizing = size_basket(legs, payout, min_edge=self._min_edge, max_shares=self._max_shares)
        if sizing is None:
            return _NO_SIZE
        places = tuple(
            Place(
                token_id=cost.token_id,
                side=Side.BUY,
                price=cost.limit_price,
                size=sizing.shares,
                order_type=self._order_type,
                tag=leg.tag,
                note=f"{self.name} leg of {key}",
            )
            for leg, cost in zip(legs, sizing.legs, strict=True)
        )
        subject = next(iter(label.values()), key)
        note = (
            f"buy {format_units(sizing.shares)} {side} sets of {subject} for "
            f"{format_units(sizing.cost + sizing.fees)} (fees {format_units(sizing.fees)}), "
            f"paying {format_units(sizing.payout)}"
        )
        basket = Basket(key=key, legs=places, edge=sizing.profit, note=note)
        return Opportunity(key, side, label, sizing, basket)

    def _settle(
        self, ctx: Context, checked: Mapping[_Id, Opportunity | str]
    ) -> tuple[list[Action], dict[str, float]]:
        """Log what opened and closed among ``checked``, and send the best baskets.

        Returns the actions and, for each key with an open opportunity that was not sent
        because of its cooldown, when the cooldown ends (the caller re-checks it then).
        """
        closes: list[Action] = []
        found: list[tuple[Opportunity, bool]] = []
        for oid, result in checked.items():
            was_open = oid in self._open
            if isinstance(result, str):
                if was_open:
                    del self._open[oid]
                    closes.append(
                        Decision(
                            self.name,
                            "opportunity.close",
                            oid[0],
                            {"side": oid[1], "reason": result},
                        )
                    )
                continue
            self._open[oid] = result
            found.append((result, was_open))

        ready: list[Opportunity] = []
        for opportunity, _ in found:
            if self._cooling_until(opportunity.key, ctx.now) is None:
                ready.append(opportunity)
        by_basket = {id(opportunity.basket): opportunity for opportunity in ready}
        ranked = rank_baskets(
            [opportunity.basket for opportunity in ready],
            ctx.inventory,
            self._mm_strategy,
            self._bonus,
            universe=self._universe,
        )
        chosen = select_baskets(ranked)
        sent = {id(basket) for basket in chosen}
        for basket in chosen:
            self._sent_at[by_basket[id(basket)].key] = ctx.now

        actions = closes
        rechecks: dict[str, float] = {}
        for opportunity, was_open in found:
            if id(opportunity.basket) in sent:
                status = "yes"
            else:
                until = self._cooling_until(opportunity.key, ctx.now)
                if until is not None:
                    rechecks[opportunity.key] = until
                    status = f"no: cooldown until {until:.3f}"
                else:
                    status = "no: outranked"
            if not was_open:
                actions.append(self._decision("opportunity.open", opportunity, status))
            elif status == "yes":
                actions.append(self._decision("opportunity.retry", opportunity, status))
        actions.extend(chosen)
        return actions, rechecks

    def _cooling_until(self, key: str, now: float) -> float | None:
        sent_at = self._sent_at.get(key)
        if sent_at is None or now >= sent_at + self._cooldown_s:
            return None
        return sent_at + self._cooldown_s

    def _decision(self, kind: str, opportunity: Opportunity, sent: str) -> Decision:
        sizing = opportunity.sizing
        detail = {
            **opportunity.label,
            "side": opportunity.side,
            "shares": format_units(sizing.shares),
            "cost": format_units(sizing.cost),
            "fees": format_units(sizing.fees),
            "payout": format_units(sizing.payout),
            "edge": format_units(sizing.profit),
            "edge_per_share": format_units(sizing.profit_per_share),
            "limits": ",".join(format_units(leg.limit_price) for leg in sizing.legs),
            "sent": sent,
        }
        return Decision(self.name, kind, opportunity.key, detail)


def _leg(view: BookView, market: Market, tag: str) -> LegBook:
    return LegBook(
        token_id=view.asset_id,
        asks=view.asks,
        tick_size=view.tick_size,
        fee_rate=market.fee_rate,
        min_order_size=market.min_order_size,
        tag=tag,
    )


class ComplementArb(_Arbitrage):
    """Sum-to-one arbitrage on every binary market: buy N YES and N NO for less than N.

    On each book update the markets of the changed tokens are evaluated (both books must be
    usable). Several markets found at once are ranked and sent together (they never overlap). A
    market is not traded again after its ``market_resolved``.
    """

    name = "complement_arb"

    def __init__(
        self,
        universe: Universe,
        config: ComplementArbConfig,
        coordination: CoordinationConfig,
        mm_strategy: str = "market_making",
    ) -> None:
        super().__init__(universe, config, coordination, mm_strategy)
        self._recheck: dict[str, float] = {}
        self._resolved: set[str] = set()
        self._by_condition = {market.condition_id: market for market in universe.markets}

    def on_books(self, ctx: Context, changed: Collection[str]) -> Sequence[Action]:
        return self._evaluate(ctx, self._markets_of(changed))

    def on_stale(self, ctx: Context, tokens: Collection[str], stale: bool) -> Sequence[Action]:
        return self._evaluate(ctx, self._markets_of(tokens))

    def on_event(self, ctx: Context, event: object) -> Sequence[Action]:
        if not isinstance(event, MarketResolved):
            return []
        markets = self._markets_of(event.assets_ids)
        self._resolved.update(market.condition_id for market in markets)
        return self._evaluate(ctx, markets)

    def on_timer(self, ctx: Context) -> Sequence[Action]:
        due = [key for key, at in self._recheck.items() if at <= ctx.now]
        markets = []
        for key in due:
            del self._recheck[key]
            market = self._by_condition.get(key)
            if market is not None:
                markets.append(market)
        return self._evaluate(ctx, markets)

    def wakeup_at(self) -> float | None:
        return min(self._recheck.values(), default=None)

    def _markets_of(self, tokens: Iterable[str]) -> list[Market]:
        markets: dict[str, Market] = {}
        for token in tokens:
            try:
                market = self._universe.market_for_token(token)
            except KeyError:
                continue
            markets.setdefault(market.condition_id, market)
        return list(markets.values())

    def _evaluate(self, ctx: Context, markets: Sequence[Market]) -> list[Action]:
        if not markets:
            return []
        checked = {
            (market.condition_id, COMPLEMENT_SIDE): self._find(ctx, market) for market in markets
        }
        actions, rechecks = self._settle(ctx, checked)
        for market in markets:
            self._recheck.pop(market.condition_id, None)
        self._recheck.update(rechecks)
        return actions

    def _find(self, ctx: Context, market: Market) -> Opportunity | str:
        if market.condition_id in self._resolved:
            return _RESOLVED
        yes_token, no_token = market.token_ids
        yes = ctx.usable(yes_token)
        no = ctx.usable(no_token)
        if yes is None or no is None:
            return _UNUSABLE
        if yes.best_ask is None or no.best_ask is None:
            return _NO_SIZE
        if yes.best_ask.price + no.best_ask.price >= ONE - self._min_edge:
            return _NO_SIZE  # the hot path: most updates stop here
        legs = (_leg(yes, market, "yes"), _leg(no, market, "no"))
        return self._size(market.condition_id, COMPLEMENT_SIDE, {"market": market.label}, legs, ONE)


class NegRiskArb(_Arbitrage):
    """Multi-outcome arbitrage on complete neg-risk events, debounced per event.

    A book update marks its event dirty with a deadline ``now + debounce_s`` (a later update
    does not push the deadline back, or a busy event would never be evaluated); ``wakeup_at`` is
    the earliest deadline, and ``on_timer`` evaluates every event that is due, once, however many
    updates it had. An evaluation looks at the YES side (N YES of every outcome pay N) and, with
    ``trade_no_side``, the NO side (N NO of every outcome pay (m - 1) x N); both are the same
    basket key (the event), so at most one of them is sent at a time, the better ranked.

    Incomplete events (``Event.complete`` false, see ``bot.core.universe``) and events of fewer
    than two outcomes are never traded: each is logged once (``event.skipped``) on the first
    call. An event is not traded again once one of its markets resolved.
    """

    name = "neg_risk_arb"

    def __init__(
        self,
        universe: Universe,
        config: NegRiskArbConfig,
        coordination: CoordinationConfig,
        mm_strategy: str = "market_making",
    ) -> None:
        super().__init__(universe, config, coordination, mm_strategy)
        self._debounce_s = config.debounce_s
        self._trade_no_side = config.trade_no_side
        self._events: dict[str, Event] = {}
        self._event_of: dict[str, str] = {}
        self._startup: list[Action] = []
        self._dirty: dict[str, float] = {}
        self._resolved: set[str] = set()
        self.evaluations = 0  # event evaluations run: one per event per burst of updates
        for event in universe.neg_risk_events():
            reason = None
            if not event.complete:
                reason = event.incomplete_reason or "incomplete outcome set"
            elif len(event.markets) < 2:
                reason = f"{len(event.markets)} outcome(s): not a multi-outcome event"
            if reason is not None:
                detail = {"event": event.title, "reason": reason}
                self._startup.append(Decision(self.name, "event.skipped", event.id, detail))
                continue
            self._events[event.id] = event
            for market in event.markets:
                for token in market.token_ids:
                    self._event_of[token] = event.id

    def on_books(self, ctx: Context, changed: Collection[str]) -> Sequence[Action]:
        self._mark(ctx.now, changed)
        return self._take_startup()

    def on_stale(self, ctx: Context, tokens: Collection[str], stale: bool) -> Sequence[Action]:
        self._mark(ctx.now, tokens)
        return self._take_startup()

    def on_event(self, ctx: Context, event: object) -> Sequence[Action]:
        actions = self._take_startup()
        if isinstance(event, MarketResolved):
            ids = {self._event_of[t] for t in event.assets_ids if t in self._event_of}
            self._resolved.update(ids)
            actions += self._evaluate(ctx, sorted(ids))
        return actions

    def on_timer(self, ctx: Context) -> Sequence[Action]:
        actions = self._take_startup()
        due = [event_id for event_id, at in self._dirty.items() if at <= ctx.now]
        for event_id in due:
            del self._dirty[event_id]
        return actions + self._evaluate(ctx, due)

    def wakeup_at(self) -> float | None:
        return min(self._dirty.values(), default=None)

    def _take_startup(self) -> list[Action]:
        actions, self._startup = self._startup, []
        return actions

    def _mark(self, now: float, tokens: Iterable[str]) -> None:
        deadline = now + self._debounce_s
        for token in tokens:
            event_id = self._event_of.get(token)
            if event_id is not None and event_id not in self._resolved:
                self._dirty.setdefault(event_id, deadline)

    def _evaluate(self, ctx: Context, event_ids: Sequence[str]) -> list[Action]:
        if not event_ids:
            return []
        checked: dict[_Id, Opportunity | str] = {}
        for event_id in event_ids:
            self.evaluations += 1
            event = self._events[event_id]
            checked[(event_id, "yes")] = self._find(ctx, event, "yes")
            if self._trade_no_side:
                checked[(event_id, "no")] = self._find(ctx, event, "no")
        actions, rechecks = self._settle(ctx, checked)
        for event_id, until in rechecks.items():
            self._dirty[event_id] = min(self._dirty.get(event_id, until), until)
        return actions

    def _find(self, ctx: Context, event: Event, side: str) -> Opportunity | str:
        if event.id in self._resolved:
            return _RESOLVED
        index = 0 if side == "yes" else 1
        legs = []
        for market in event.markets:
            view = ctx.usable(market.token_ids[index])
            if view is None:
                return _UNUSABLE
            legs.append(_leg(view, market, side))
        outcomes = len(event.markets)
        payout = ONE if side == "yes" else (outcomes - 1) * ONE
        label = {"event": event.title, "outcomes": str(outcomes)}
        return self._size(event.id, side, label, legs, payout)
