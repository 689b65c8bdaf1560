"""The sim venue's private side, pure: accounts, order checks, taker matching and settlement.

``bot.sim.server`` authenticates a request (L1/L2 headers, the order signature) and then asks this
module what the order does. Everything here is deterministic and clock-free (``now_ms`` is passed
in), like ``bot.sim.exchange``, so the accounting can be tested without sockets.

Accounts. Any address that proves control of its key (a valid L1 ``ClobAuth`` signature, checked
by the server) gets credentials derived from the address, the nonce and a venue secret, so
``/auth/api-key`` and ``/auth/derive-api-key`` return the same values and a restarted venue with
the same secret recognises old keys. A new account starts with ``demo_balance`` pUSD and no
positions, so any valid key can trade.

Orders. ``price = maker/taker`` (BUY) or ``taker/maker`` (SELL) must be an exact multiple of the
tick (PROTOCOL.md 6.5, 7.2): a price between ticks is rejected with the venue's tick text rather
than rounded. A taker walks the levels at or better than its limit (FOK: all or nothing; FAK:
what is there, rejected if nothing; GTC/GTD: what is there, the remainder rests). Only takers pay
fees (``taker_fee_units`` per fill, PROTOCOL.md 7.1), in pUSD.

Balances follow the venue's reservation rule (PROTOCOL.md 4.3): a BUY needs its fills' cost plus
fees plus the resting remainder's notional, on top of what the account's open BUYs reserve; a SELL
needs the shares, on top of what its open SELLs of that token reserve.

Resting orders sit *inside* the exchange's levels (``SimExchange.rest``), in their level's queue
in time priority, so the market channel shows them and every taker fills them in price-time
priority: an account's taker order (``settle_taker``) and the simulated flow alike
(``settle_flow_match``). Matching is the exchange's; this module books what it matched. Makers
pay no fee: a BUY maker spends ``price x size`` of the pUSD its order reserved and gets the
shares; a SELL maker gives the shares and gets the pUSD.

Self-trade prevention. An account's taker order never matches the same account's resting orders:
the server plans it against the levels without them (``SimExchange.levels(skip_owner=)``), and the
exchange walks past them, so they keep their place. A GTC/GTD remainder that would then rest
crossing one of the account's own orders is rejected as a whole (``CROSSES_OWN_ORDER``), since a
book crossed against itself would stand forever. PROTOCOL.md does not say what Polymarket's CLOB
does (its perps venue documents cancelling the resting order instead); these are the sim's
choices.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import TYPE_CHECKING, Final

import attrs

from bot.core.money import ONE, Side, format_units, taker_fee_units
from bot.core.trading import OrderType

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "Account",
    "Accounts",
    "Match",
    "OrderRejected",
    "RestingOrder",
    "TradeRecord",
    "order_price",
    "plan_taker",
]

NOT_ENOUGH_BALANCE: Final = "not enough balance / allowance"
FOK_NOT_FILLED: Final = "order couldn't be fully filled. FOK orders are fully filled or killed."
FAK_NOT_FILLED: Final = (
    "no orders found to match with FAK order. FAK orders are partially filled or killed if no "
    "match is found."
)
POST_ONLY_CROSSES: Final = "invalid post-only order: order crosses book"
CROSSES_OWN_ORDER: Final = (
    "invalid order: it would rest crossing one of the account's own orders (self-trade prevention)"
)
"""The sim's own text (the real venue's, if it has one, is unknown)."""
MIN_MARKETABLE_NOTIONAL: Final = ONE
"""Marketable orders must be worth at least $1 (PROTOCOL.md 4.3)."""


class OrderRejected(ValueError):
    """The venue refuses an order; the message is the venue's ``errorMsg`` text."""


@attrs.define(eq=False)
class Account:
    """One API key's wallet: pUSD balance and share positions, micro-units."""

    address: str
    api_key: str
    secret: str
    passphrase: str
    balance: int
    positions: dict[str, int] = attrs.field(factory=dict)


@attrs.define(eq=False)
class RestingOrder:
    """An order of an account, resting (or done: ``matched == size`` or ``canceled``)."""

    order_id: str
    owner: str
    maker_address: str
    market: str
    token_id: str
    outcome: str
    side: Side
    price: int
    size: int
    order_type: OrderType
    created_ms: int
    expiration: int
    matched: int = 0
    canceled: bool = False
    trade_ids: list[str] = attrs.field(factory=list)

    @property
    def remaining(self) -> int:
        return self.size - self.matched

    @property
    def live(self) -> bool:
        return not self.canceled and self.matched < self.size


@attrs.frozen
class TradeRecord:
    """One fill of a taker order at one price, as ``GET /data/trades`` shows it."""

    trade_id: str
    taker_order_id: str
    owner: str
    maker_address: str
    market: str
    token_id: str
    outcome: str
    side: Side
    price: int
    size: int
    fee: int
    fee_rate_bps: int
    match_ms: int
    maker_orders: tuple[tuple[RestingOrder, int], ...] = ()
    """Account orders this fill matched, with the size each got."""


@attrs.frozen
class Match:
    """What a taker order gets now: fills ``(price, size)`` best first, in the order's token."""

    fills: tuple[tuple[int, int], ...]
    filled: int
    cost: int
    """pUSD notional of the fills (exact: prices and sizes are micro-units, so floored)."""
    fee: int
    rest: int
    """Shares to rest (GTC/GTD remainder)."""


def order_price(side: Side, maker_amount: int, taker_amount: int, tick: int) -> tuple[int, int]:
    """``(price, size)`` in micro-units of a V2 order's amounts.

    BUY: maker = pUSD, taker = shares; SELL: the reverse. The price must be an exact multiple of
    ``tick`` inside ``[tick, 1 - tick]``.

    Raises:
        OrderRejected: non-positive amounts or a price off the tick (the venue's text).
    """
    if maker_amount <= 0 or taker_amount <= 0:
        raise OrderRejected("invalid order amounts")
    pusd, shares = (
        (maker_amount, taker_amount) if side is Side.BUY else (taker_amount, maker_amount)
    )
    exact = Fraction(pusd * ONE, shares)
    if exact.denominator != 1 or exact.numerator % tick or not tick <= exact <= ONE - tick:
        with localcontext() as ctx:  # six significant digits, for the message only
            ctx.prec = 6
            shown = Decimal(exact.numerator) / Decimal(exact.denominator * ONE)
        raise OrderRejected(
            f"order is invalid. Price ({shown}) breaks minimum tick size rule: {format_units(tick)}"
        )
    return exact.numerator, shares


def plan_taker(
    levels: Iterable[tuple[int, int]],
    side: Side,
    price: int,
    size: int,
    order_type: OrderType,
    fee_rate: int,
    *,
    post_only: bool = False,
) -> Match:
    """Match a limit order against the opposite side's ``levels`` (best first, its own token).

    Raises:
        OrderRejected: FOK not fully fillable, FAK with nothing to match, post-only crossing.
    """
    fills: list[tuple[int, int]] = []
    left = size
    for level_price, level_size in levels:
        if left <= 0:
            break
        if (side is Side.BUY and level_price > price) or (
            side is Side.SELL and level_price < price
        ):
            break
        take = min(left, level_size)
        fills.append((level_price, take))
        left -= take
    filled = size - left
    if post_only and fills:
        raise OrderRejected(POST_ONLY_CROSSES)
    if order_type is OrderType.FOK and left:
        raise OrderRejected(FOK_NOT_FILLED)
    if order_type is OrderType.FAK and not filled:
        raise OrderRejected(FAK_NOT_FILLED)
    cost = sum(p * s // ONE for p, s in fills)
    fee = sum(taker_fee_units(s, p, fee_rate) for p, s in fills)
    rest = left if order_type.rests else 0
    return Match(tuple(fills), filled, cost, fee, rest)


@attrs.define(eq=False)
class Accounts:
    """Every account, order and trade of the venue.

    Args:
        venue_secret: Key of the credential derivation (any bytes; the venue's own).
        demo_balance: pUSD every new account starts with, micro-units.
    """

    venue_secret: bytes
    demo_balance: int
    _by_key: dict[str, Account] = attrs.field(factory=dict, init=False)
    orders: dict[str, RestingOrder] = attrs.field(factory=dict, init=False)
    trades: list[TradeRecord] = attrs.field(factory=list, init=False)
    _trade_seq: int = attrs.field(default=0, init=False)
    _flow_seq: int = attrs.field(default=0, init=False)

    # --- credentials

    def _derive(self, label: str, address: str, nonce: int) -> bytes:
        text = f"{label}:{address.lower()}:{nonce}".encode()
        return hmac.new(self.venue_secret, text, hashlib.sha256).digest()

    def credentials(self, address: str, nonce: int) -> Account:
        """The account of ``address`` for ``nonce`` (created with the demo balance if new).

        The key is a UUID, the secret base64url of 32 bytes, the passphrase 64 hex digits: the
        shapes of the real ones, all derived from (address, nonce) with the venue secret.
        """
        api_key = str(uuid.UUID(bytes=self._derive("key", address, nonce)[:16], version=4))
        account = self._by_key.get(api_key)
        if account is None:
            secret = base64.urlsafe_b64encode(self._derive("secret", address, nonce)).decode()
            passphrase = self._derive("passphrase", address, nonce).hex()
            account = Account(address, api_key, secret, passphrase, self.demo_balance)
            self._by_key[api_key] = account
        return account

    def account(self, api_key: str) -> Account | None:
        """The account of an API key issued by this venue, else ``None``."""
        return self._by_key.get(api_key)

    # --- reservations and checks

    def open_orders(self, owner: str) -> list[RestingOrder]:
        """The owner's live resting orders, oldest first."""
        return [o for o in self.orders.values() if o.owner == owner and o.live]

    def available_pusd(self, account: Account) -> int:
        """Balance minus what the account's open BUYs reserve."""
        reserved = sum(
            o.price * o.remaining // ONE
            for o in self.open_orders(account.api_key)
            if o.side is Side.BUY
        )
        return account.balance - reserved

    def available_shares(self, account: Account, token_id: str) -> int:
        """Shares of ``token_id`` minus what the account's open SELLs of it reserve."""
        reserved = sum(
            o.remaining
            for o in self.open_orders(account.api_key)
            if o.side is Side.SELL and o.token_id == token_id
        )
        return account.positions.get(token_id, 0) - reserved

    def check_funds(
        self, account: Account, token_id: str, side: Side, price: int, plan: Match
    ) -> None:
        """Raise ``OrderRejected`` (the venue's balance text) if the account cannot pay."""
        if side is Side.BUY:
            needed = plan.cost + plan.fee + price * plan.rest // ONE
            ok = needed <= self.available_pusd(account)
        else:
            ok = plan.filled + plan.rest <= self.available_shares(account, token_id)
        if not ok:
            raise OrderRejected(NOT_ENOUGH_BALANCE)

    # --- settlement

    def _next_trade_id(self) -> str:
        self._trade_seq += 1
        return str(uuid.UUID(bytes=self._derive("trade", "", self._trade_seq)[:16], version=4))

    def settle_taker(
        self,
        account: Account,
        order: RestingOrder,
        plan: Match,
        makers: Sequence[Sequence[tuple[RestingOrder, int]]],
        fee_rate: int,
        now_ms: int,
    ) -> list[TradeRecord]:
        """Book the taker's fills (and the account makers' side of them); one trade per fill.

        ``makers[i]`` are the account orders the ``i``-th fill matched (the exchange's
        ``MakerMatch`` of that level); they get the opposite position change at their own price
        and token, and pay no fee.
        """
        records: list[TradeRecord] = []
        for (price, size), matched in zip(plan.fills, makers, strict=True):
            fee = taker_fee_units(size, price, fee_rate)
            notional = price * size // ONE
            _apply(account, order.token_id, order.side, size, notional, fee)
            self._fill_makers(matched)
            record = TradeRecord(
                trade_id=self._next_trade_id(),
                taker_order_id=order.order_id,
                owner=account.api_key,
                maker_address=order.maker_address,
                market=order.market,
                token_id=order.token_id,
                outcome=order.outcome,
                side=order.side,
                price=price,
                size=size,
                fee=fee,
                fee_rate_bps=fee_rate // 100,
                match_ms=now_ms,
                maker_orders=tuple((m, s) for m, s in matched),
            )
            for maker, _ in matched:
                maker.trade_ids.append(record.trade_id)
            order.trade_ids.append(record.trade_id)
            order.matched += size
            self.trades.append(record)
            records.append(record)
        return records

    def add(self, order: RestingOrder) -> None:
        """Record an order (resting or done). Raises ``OrderRejected`` for a duplicate id."""
        if order.order_id in self.orders:
            raise OrderRejected(f"order {order.order_id} is invalid. Duplicated.")
        self.orders[order.order_id] = order

    def settle_flow_match(
        self,
        *,
        market: str,
        token_id: str,
        outcome: str,
        side: Side,
        price: int,
        size: int,
        makers: Sequence[tuple[RestingOrder, int]],
        fee_rate: int,
        now_ms: int,
    ) -> TradeRecord:
        """Book a simulated taker's match at one level that filled account orders; one trade.

        The taker is nobody's account (the exchange's order flow or its opportunity
        competitor): it gets a fresh order id of the real shape and the venue's ``flow_owner``
        key, and pays the taker fee on ``size`` (shown in the trade, charged to nobody). Each
        maker gets its fill at its own price and token, without a fee.

        Args:
            market: the condition id.
            token_id: the taker's token; ``outcome``, ``side`` and ``price`` are on it.
            outcome: the taker's token's outcome label.
            side: the taker's side.
            price: the level's price on ``token_id``.
            size: what the taker matched at this level (simulated liquidity included).
            makers: the account orders filled and the shares each got, in queue order.
            fee_rate: the market's taker fee rate, micro-units.
            now_ms: the match time.
        """
        self._fill_makers(makers)
        self._flow_seq += 1
        record = TradeRecord(
            trade_id=self._next_trade_id(),
            taker_order_id="0x" + self._derive("flow-order", "", self._flow_seq).hex(),
            owner=self.flow_owner,
            maker_address=self.flow_address,
            market=market,
            token_id=token_id,
            outcome=outcome,
            side=side,
            price=price,
            size=size,
            fee=taker_fee_units(size, price, fee_rate),
            fee_rate_bps=fee_rate // 100,
            match_ms=now_ms,
            maker_orders=tuple(makers),
        )
        for maker, _ in makers:
            maker.trade_ids.append(record.trade_id)
        self.trades.append(record)
        return record

    @property
    def flow_owner(self) -> str:
        """The API key the simulated flow trades under (no account has it)."""
        return str(uuid.UUID(bytes=self._derive("key", "flow", 0)[:16], version=4))

    @property
    def flow_address(self) -> str:
        """The wallet address the simulated flow trades from."""
        return "0x" + self._derive("address", "flow", 0)[:20].hex()

    def _fill_makers(self, makers: Iterable[tuple[RestingOrder, int]]) -> None:
        for maker, size in makers:
            owner = self._by_key[maker.owner]
            _apply(owner, maker.token_id, maker.side, size, maker.price * size // ONE, 0)
            maker.matched += size


def _apply(account: Account, token_id: str, side: Side, size: int, notional: int, fee: int) -> None:
    if side is Side.BUY:
        account.balance -= notional + fee
        account.positions[token_id] = account.positions.get(token_id, 0) + size
    else:
        account.balance += notional - fee
        account.positions[token_id] = account.positions.get(token_id, 0) - size
