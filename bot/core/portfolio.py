"""Portfolio accounting: positions, cash, fees and mark-to-market PnL by strategy and by market.

One ``Portfolio`` is fed every ``Fill`` (live, paper, or replayed from the journal on restart) and
answers what risk, the kill switch, the strategies (through ``Inventory``) and the report ask.

**Exact integer rules.** Everything is micro-units (``bot.core.money``); nothing is a float.

* Cash of a fill: a BUY pays ``ceil(price x size / 1e6)``, a SELL receives
  ``floor(price x size / 1e6)`` (``notional_units``): when the product is not a whole micro-unit
  we assume the worse side of the rounding, so the books never show money we may not have. The
  fee is paid in cash, on top (``Fill.fee``; PROTOCOL.md 7.1 leaves the asset of a BUY fee
  unverified, and the paper venue charges pUSD).
* ``volume`` is the sum of those cash legs (before fees).
* Cost basis (``Holding.cost``) is the average cost of the *open* shares, signed like them: a
  long's basis is what its shares cost, a short's is minus what its shares were sold for. A fill
  that reduces a position removes ``floor(cost x closed / open)`` of it, which always leaves the
  remaining basis on the side that overstates ``exposure`` (never understates it). Realised PnL
  is ``cash + cost``: the money that is no longer tied to open shares.
* ``resolve`` pays ``floor(shares x payout / 1e6)`` with a payout of 1 for the winning token, 0
  for the others, and 0.5 each when a market resolves 50/50 (PROTOCOL.md 7.4).

**Idempotence.** Each ``fill_id`` counts once: a fill seen twice (the user channel repeats
trades, a restart replays the journal and then the venue re-sends) is ignored and ``apply``
returns ``False``.

**Valuation with complete sets.** Shares that together are certain to pay are worth exactly what
they pay, whatever the book says (PROTOCOL.md 7.2, 7.3):

* in every market, ``min(YES, NO)`` shares merge back into 1 pUSD per pair;
* in a complete neg-risk event of ``m`` markets (exactly one resolves YES), ``min`` over every
  member's YES counts 1 per set, and ``min`` over every member's NO counts ``m - 1`` per set (all
  but one of the NOs pay).

The event sets are taken first, then the per-market pairs; what is left is valued at
``marks[token]`` (the mid, rounded down by the caller), rounded down per token, so a long never
counts a fraction it cannot sell and a short never counts less than it owes. **A token without a
mark is valued at 0**: for a long that is the worst case (a missing book cannot make us richer);
for a short it understates the liability (the report's market rows say where shares are still
held).

A *unit* is what complete sets can span: a complete neg-risk event (keyed by its event id), else a
market (its condition id), else, for a token the universe does not know, the token itself.
Values add up across units, so ``pnl_by_market`` sums to ``pnl``. Per strategy, only the
strategy's own shares form sets (two strategies each holding one side of a pair are each valued at
the marks); so the strategies' PnL can sum to less than the whole portfolio's.

Exposure (for risk) is per strategy and token, with no netting: a long's cost basis (all of it
could be lost) plus a short's ``shares - proceeds`` (what buying back at 1 would cost).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs

from bot.core.money import ONE, SCALE, Side, notional_units
from bot.core.trading import Inventory

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

    from bot.core.trading import Fill
    from bot.core.universe import Event, Market, Universe

__all__ = ["HALF", "Holding", "Portfolio", "Units", "split_sets", "value_holdings"]

HALF: Final = ONE // 2
"""What each token of a market resolved 50/50 pays."""


@attrs.frozen
class Holding:
    """One strategy's account in one token (a snapshot).

    Attributes:
        strategy: who traded it.
        token_id: the token.
        shares: net shares, micro-units (BUY +, SELL -).
        cash: the cash flow, micro-units of pUSD (negative after buying), fees included.
        fees: fees paid, micro-units of pUSD.
        fills: how many fills.
        volume: traded notional, micro-units of pUSD.
        cost: the cost basis of the open shares, signed like ``shares`` (module docstring).
    """

    strategy: str
    token_id: str
    shares: int
    cash: int
    fees: int
    fills: int
    volume: int
    cost: int

    @property
    def realized(self) -> int:
        """Realised PnL: cash not tied to open shares (``cash + cost``)."""
        return self.cash + self.cost

    @property
    def exposure(self) -> int:
        """What could still be lost on the open shares (module docstring)."""
        if self.shares > 0:
            return self.cost
        if self.shares < 0:
            return -self.shares + self.cost
        return 0


@attrs.define(slots=True)
class _Slot:
    """The mutable account behind a ``Holding``."""

    shares: int = 0
    cash: int = 0
    fees: int = 0
    fills: int = 0
    volume: int = 0
    cost: int = 0


class Units:
    """Which tokens can form complete sets together, for one universe (see the module docstring).

    Built once per universe (the portfolio keeps the last one it saw: universes are immutable).
    """

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self._unit: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, ...]] = {}
        self._labels: dict[str, str] = {}
        self._events: dict[str, Event] = {}
        self._markets: dict[str, Market] = {}
        in_universe = {market.condition_id for market in universe.markets}
        for event in universe.events:
            if (
                event.neg_risk
                and event.complete
                and len(event.markets) >= 2
                and all(m.condition_id in in_universe for m in event.markets)
            ):
                self._events[event.id] = event
                tokens = tuple(t for m in event.markets for t in m.token_ids)
                self._tokens[event.id] = tokens
                self._labels[event.id] = event.title or event.id
                for token in tokens:
                    self._unit[token] = event.id
        for market in universe.markets:
            self._markets[market.condition_id] = market
            if market.yes.token_id in self._unit:
                continue
            self._tokens[market.condition_id] = market.token_ids
            self._labels[market.condition_id] = market.question or market.label
            for token in market.token_ids:
                self._unit[token] = market.condition_id

    def key(self, token_id: str) -> str:
        """The unit of ``token_id``: an event id, a condition id, or the token itself."""
        return self._unit.get(token_id, token_id)

    def tokens(self, key: str) -> tuple[str, ...]:
        """The tokens of a unit (a lone unknown token is its own unit)."""
        return self._tokens.get(key, (key,))

    def label(self, key: str) -> str:
        """A human name: the event title, the market question, or the token id."""
        return self._labels.get(key, key)

    def event(self, key: str) -> Event | None:
        """The complete neg-risk event a unit is, if it is one."""
        return self._events.get(key)

    def market(self, condition_id: str) -> Market | None:
        return self._markets.get(condition_id)


def split_sets(units: Units, holdings: Mapping[str, int]) -> tuple[int, dict[str, int]]:
    """Separate the complete sets in ``holdings`` (token -> shares) from the rest.

    Returns ``(locked, remainder)``: what the complete sets pay for certain (micro-units of pUSD)
    and the shares left over by token (zeros omitted). Rules in the module docstring.
    """
    rest = {token: shares for token, shares in holdings.items() if shares}
    locked = 0
    seen: set[str] = set()
    for token in list(rest):
        key = units.key(token)
        if key in seen:
            continue
        seen.add(key)
        event = units.event(key)
        if event is not None:
            yes = [m.yes.token_id for m in event.markets]
            no = [m.no.token_id for m in event.markets]
            sets = min(rest.get(t, 0) for t in yes)
            if sets > 0:
                locked += sets  # one of them pays 1 per share: `sets` micro-units of pUSD
                _take(rest, yes, sets)
            sets = min(rest.get(t, 0) for t in no)
            if sets > 0:
                locked += sets * (len(no) - 1)  # all but one NO pays 1
                _take(rest, no, sets)
            pairs: Iterable[Market] = event.markets
        else:
            market = units.market(key)
            pairs = (market,) if market is not None else ()
        for market in pairs:
            sets = min(rest.get(market.yes.token_id, 0), rest.get(market.no.token_id, 0))
            if sets > 0:
                locked += sets
                _take(rest, market.token_ids, sets)
    return locked, rest


def _take(rest: dict[str, int], tokens: Iterable[str], shares: int) -> None:
    for token in tokens:
        left = rest[token] - shares
        if left:
            rest[token] = left
        else:
            del rest[token]


def value_holdings(units: Units, holdings: Mapping[str, int], marks: Mapping[str, int]) -> int:
    """Mark-to-market value of ``holdings`` (token -> shares): complete sets at what they pay,
    the rest at ``marks`` (a missing mark is 0), each token rounded down."""
    locked, rest = split_sets(units, holdings)
    return locked + sum(shares * marks.get(token, 0) // SCALE for token, shares in rest.items())


class Portfolio(Inventory):
    """Positions, cash and fees by (strategy, token), fed with fills (module docstring)."""

    def __init__(self) -> None:
        self._slots: dict[str, dict[str, _Slot]] = {}
        """token -> strategy -> account."""
        self._net: dict[str, int] = {}
        self._seen: set[str] = set()
        self._undone: set[str] = set()
        self._resolved: dict[str, str | None] = {}
        self._units: Units | None = None

    # --- updates ---------------------------------------------------------------------------------

    def apply(self, fill: Fill) -> bool:
        """Account for one fill; ``False`` (and nothing changes) if its ``fill_id`` was seen.

        Raises:
            ValueError: the fill's price is outside [0, 1], its size is not positive or its fee is
                negative (named with the fill id).
        """
        if fill.fill_id in self._seen:
            return False
        if not 0 <= fill.price <= ONE:
            raise ValueError(f"fill {fill.fill_id}: price {fill.price} is outside [0, {ONE}]")
        if fill.size <= 0:
            raise ValueError(f"fill {fill.fill_id}: size {fill.size} is not positive")
        if fill.fee < 0:
            raise ValueError(f"fill {fill.fill_id}: fee {fill.fee} is negative")
        self._seen.add(fill.fill_id)
        slot = self._slot(fill.strategy, fill.token_id)
        buy = fill.side is Side.BUY
        amount = notional_units(fill.price, fill.size, round_up=buy)
        slot.cash += -amount if buy else amount
        slot.cash -= fill.fee
        slot.fees += fill.fee
        slot.fills += 1
        slot.volume += amount
        self._move(slot, fill.token_id, buy=buy, size=fill.size, amount=amount, price=fill.price)
        return True

    def undo(self, fill: Fill) -> bool:
        """Take back a fill that never happened (a provisional live fill whose trade ``FAILED``
        on chain): its cash, fee and volume exactly; its shares and cost exactly while the
        position it added to still holds them, else as a trade the other way at the same price.
        ``False`` (nothing changes) for a fill never applied or already undone.
        """
        if fill.fill_id not in self._seen or fill.fill_id in self._undone:
            return False
        self._undone.add(fill.fill_id)
        slot = self._slot(fill.strategy, fill.token_id)
        buy = fill.side is Side.BUY
        amount = notional_units(fill.price, fill.size, round_up=buy)
        slot.cash += amount if buy else -amount
        slot.cash += fill.fee
        slot.fees -= fill.fee
        slot.fills -= 1
        slot.volume -= amount
        signed = fill.size if buy else -fill.size
        if slot.shares * signed > 0 and abs(slot.shares) >= fill.size:
            # The fill added to a position that is still there: take out exactly what it added.
            slot.cost -= amount if buy else -amount
            slot.shares -= signed
            self._net[fill.token_id] -= signed
        else:  # positions moved through it since: close it as a trade the other way
            self._move(
                slot, fill.token_id, buy=not buy, size=fill.size, amount=amount, price=fill.price
            )
        return True

    def _move(
        self, slot: _Slot, token_id: str, *, buy: bool, size: int, amount: int, price: int
    ) -> None:
        """Shares and cost basis after trading ``size`` shares for ``amount`` of cash."""
        signed = size if buy else -size
        old = slot.shares
        if old == 0 or (old > 0) == buy:
            slot.cost += amount if buy else -amount
        else:
            closed = min(size, abs(old))
            if closed == abs(old):
                slot.cost = 0
            else:
                slot.cost -= slot.cost * closed // abs(old)
            opened = size - closed
            if opened:
                flip = notional_units(price, opened, round_up=buy)
                slot.cost = flip if buy else -flip
        slot.shares = old + signed
        self._net[token_id] = self._net.get(token_id, 0) + signed

    def resolve(
        self, condition_id: str, winning_token: str | None, token_ids: Collection[str]
    ) -> int:
        """Settle a resolved market: every position in ``token_ids`` is paid out and closed.

        Args:
            condition_id: the market (resolving it twice to the same winner does nothing).
            winning_token: the token that pays 1; ``None`` for a 50/50 resolution (0.5 each).
            token_ids: the market's tokens (``MarketResolved.assets_ids``, ``Market.token_ids``).

        Returns:
            The total paid out (negative when shorts had to pay), micro-units of pUSD.

        Raises:
            ValueError: the winner is not one of ``token_ids``, or the market was already resolved
                to a different winner.
        """
        if winning_token is not None and winning_token not in token_ids:
            raise ValueError(
                f"market {condition_id}: winning token {winning_token} is not one of "
                f"{sorted(token_ids)}"
            )
        if condition_id in self._resolved:
            if self._resolved[condition_id] != winning_token:
                raise ValueError(
                    f"market {condition_id} already resolved to {self._resolved[condition_id]}, "
                    f"not {winning_token}"
                )
            return 0
        self._resolved[condition_id] = winning_token
        paid = 0
        for token in token_ids:
            payout = HALF if winning_token is None else (ONE if token == winning_token else 0)
            for slot in self._slots.get(token, {}).values():
                proceeds = slot.shares * payout // SCALE
                slot.cash += proceeds
                paid += proceeds
                slot.shares = 0
                slot.cost = 0
            self._net[token] = 0
        return paid

    # --- positions -------------------------------------------------------------------------------

    def position(self, token_id: str) -> int:
        """Net shares of ``token_id`` across all strategies, micro-units."""
        return self._net.get(token_id, 0)

    def position_of(self, strategy: str, token_id: str) -> int:
        """Net shares of ``token_id`` held by ``strategy``, micro-units."""
        slot = self._slots.get(token_id, {}).get(strategy)
        return slot.shares if slot is not None else 0

    def positions(self) -> dict[tuple[str, str], int]:
        """Non-zero positions by ``(strategy, token_id)``."""
        return {
            (strategy, token): slot.shares
            for token, by_strategy in self._slots.items()
            for strategy, slot in by_strategy.items()
            if slot.shares
        }

    def holdings(self, strategy: str | None = None) -> list[Holding]:
        """Every account (open or closed) of ``strategy`` (all when ``None``)."""
        return [
            Holding(s, token, slot.shares, slot.cash, slot.fees, slot.fills, slot.volume, slot.cost)
            for token, s, slot in self._iter(strategy, None)
        ]

    def strategies(self) -> list[str]:
        """Every strategy with at least one fill, sorted."""
        return sorted({s for by_strategy in self._slots.values() for s in by_strategy})

    def shares(
        self, strategy: str | None = None, tokens: Collection[str] | None = None
    ) -> dict[str, int]:
        """Net shares by token (non-zero only), of one strategy or all, optionally some tokens."""
        out: dict[str, int] = {}
        for token, _strategy, slot in self._iter(strategy, tokens):
            if slot.shares:
                out[token] = out.get(token, 0) + slot.shares
        return {token: shares for token, shares in out.items() if shares}

    # --- money -----------------------------------------------------------------------------------

    def cash(self, strategy: str | None = None, tokens: Collection[str] | None = None) -> int:
        """Cash flow (negative after buying, fees included), micro-units of pUSD."""
        return sum(slot.cash for _, _, slot in self._iter(strategy, tokens))

    def fees(self, strategy: str | None = None, tokens: Collection[str] | None = None) -> int:
        """Fees paid, micro-units of pUSD."""
        return sum(slot.fees for _, _, slot in self._iter(strategy, tokens))

    def fill_count(self, strategy: str | None = None, tokens: Collection[str] | None = None) -> int:
        """How many fills were applied."""
        return sum(slot.fills for _, _, slot in self._iter(strategy, tokens))

    def volume(self, strategy: str | None = None, tokens: Collection[str] | None = None) -> int:
        """Traded notional, micro-units of pUSD."""
        return sum(slot.volume for _, _, slot in self._iter(strategy, tokens))

    def realized(self, strategy: str | None = None, tokens: Collection[str] | None = None) -> int:
        """Realised PnL: cash not tied to open shares (``cash + cost basis``)."""
        return sum(slot.cash + slot.cost for _, _, slot in self._iter(strategy, tokens))

    def exposure(self) -> int:
        """What the open positions could lose: long cost plus short ``shares - proceeds``."""
        total = 0
        for _, _, slot in self._iter(None, None):
            if slot.shares > 0:
                total += slot.cost
            elif slot.shares < 0:
                total += -slot.shares + slot.cost
        return total

    # --- valuation -------------------------------------------------------------------------------

    def units(self, universe: Universe) -> Units:
        """The complete-set structure of ``universe`` (cached for the last universe seen)."""
        if self._units is None or self._units.universe is not universe:
            self._units = Units(universe)
        return self._units

    def value(
        self,
        universe: Universe,
        marks: Mapping[str, int],
        strategy: str | None = None,
        condition_id: str | None = None,
    ) -> int:
        """Mark-to-market value of the open shares, micro-units of pUSD (module docstring).

        Args:
            universe: the markets and events (for complete sets).
            marks: price per token (the mid); a missing mark values the token at 0.
            strategy: only this strategy's shares (all when ``None``).
            condition_id: only this market's two tokens (event-wide sets are then not visible:
                use ``pnl_by_market`` for a breakdown that adds up).

        Raises:
            KeyError: ``condition_id`` is not in the universe.
        """
        tokens = self._market_tokens(universe, condition_id)
        return value_holdings(self.units(universe), self.shares(strategy, tokens), marks)

    def pnl(
        self,
        universe: Universe,
        marks: Mapping[str, int],
        strategy: str | None = None,
        condition_id: str | None = None,
    ) -> int:
        """``cash + value``: the PnL if everything were closed at ``marks`` (arguments as for
        ``value``)."""
        tokens = self._market_tokens(universe, condition_id)
        return self.cash(strategy, tokens) + self.value(universe, marks, strategy, condition_id)

    def pnl_by_strategy(self, universe: Universe, marks: Mapping[str, int]) -> dict[str, int]:
        """PnL of each strategy (sets only within a strategy's own shares)."""
        return {s: self.pnl(universe, marks, s) for s in self.strategies()}

    def pnl_by_market(
        self, universe: Universe, marks: Mapping[str, int], strategy: str | None = None
    ) -> dict[str, int]:
        """PnL by unit (a complete neg-risk event's id, a condition id, or an unknown token);
        the values add up to ``pnl(universe, marks, strategy)``."""
        units = self.units(universe)
        keys = {units.key(token) for token, _, _ in self._iter(strategy, None)}
        out: dict[str, int] = {}
        for key in sorted(keys):
            tokens = units.tokens(key)
            out[key] = self.cash(strategy, tokens) + value_holdings(
                units, self.shares(strategy, tokens), marks
            )
        return out

    # --- internals -------------------------------------------------------------------------------

    def _slot(self, strategy: str, token_id: str) -> _Slot:
        by_strategy = self._slots.setdefault(token_id, {})
        slot = by_strategy.get(strategy)
        if slot is None:
            slot = by_strategy[strategy] = _Slot()
        return slot

    def _iter(
        self, strategy: str | None, tokens: Collection[str] | None
    ) -> Iterable[tuple[str, str, _Slot]]:
        if tokens is None:
            chosen: Iterable[tuple[str, dict[str, _Slot]]] = self._slots.items()
        else:
            chosen = ((t, self._slots[t]) for t in tokens if t in self._slots)
        for token, by_strategy in chosen:
            if strategy is None:
                for s, slot in by_strategy.items():
                    yield token, s, slot
            else:
                only = by_strategy.get(strategy)
                if only is not None:
                    yield token, strategy, only

    def _market_tokens(
        self, universe: Universe, condition_id: str | None
    ) -> tuple[str, ...] | None:
        if condition_id is None:
            return None
        market = self.units(universe).market(condition_id)
        if market is None:
            raise KeyError(f"market {condition_id} is not in the universe")
        return market.token_ids
