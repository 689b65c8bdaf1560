"""Typed events of Polymarket's CLOB user WebSocket channel, and their decoder.

The user channel (PROTOCOL.md section 2) reports our own orders and trades, scoped to the API
key. It is low volume, so it goes through the shared cattrs converter (``bot.core.wire.codec``)
rather than a hand-built decoder like the market channel.

Two event types matter:

* ``order`` -> ``UserOrder``: a ``PLACEMENT``, an ``UPDATE`` (a match) or a ``CANCELLATION``. The
  status can carry an appended reason (``"CANCELED_order couldn't be fully filled. FOK orders are
  fully filled or killed."``); ``status`` is the normalized enum and ``status_text`` the raw text.
  A killed FOK/FAK arrives as a ``CANCELLATION`` with ``size_matched`` and ``created_at`` empty.
* ``trade`` -> ``UserTrade``: one event per status step of the same trade id, ``MATCHED`` ->
  ``MINED`` -> ``CONFIRMED`` (with ``RETRYING`` and the terminal ``FAILED``). The top-level fields
  describe the *taker* order; when we are the maker (``trader_side`` ``MAKER``) our fill is the
  ``maker_orders[]`` entry with our order id, possibly on the other token at ``1 - price``.
  ``GET /data/trades`` returns the same shape without ``timestamp``, so ``bot.core.wire.clob``
  decodes REST trades into ``UserTrade`` too and reconciliation needs one code path.

Times are integer milliseconds since the epoch: the venue mixes seconds (``match_time``,
``created_at``), milliseconds (``timestamp``, sometimes seconds in older captures) and, in some
fixtures, ISO-8601 text; ``codec.EpochMs`` normalizes all of them.
"""

from enum import StrEnum
from typing import Any, Final, Self

import attrs

from bot.core.errors import FrameDecodeError
from bot.core.money import Side
from bot.core.wire.codec import EpochMs, Int, Price, Units, parse_json, show, structure, wire
from bot.core.wire.market_events import Pong, UnknownEvent

__all__ = [
    "MakerOrder",
    "OrderEventType",
    "OrderStatus",
    "OrderType",
    "TradeStatus",
    "TraderSide",
    "UserEvent",
    "UserOrder",
    "UserTrade",
    "decode_user_frame",
    "decode_user_object",
]

_ABSENT: Final = (None, "")


class OrderEventType(StrEnum):
    """The ``type`` of an ``order`` event."""

    PLACEMENT = "PLACEMENT"
    UPDATE = "UPDATE"
    CANCELLATION = "CANCELLATION"


class OrderStatus(StrEnum):
    """An order's status, on the user channel and in ``GET /data/order(s)``.

    The venue appends a reason to some statuses (``CANCELED_<reason>``); those parse to the base
    status by prefix, case-insensitively (``"live"`` is ``LIVE``).
    """

    LIVE = "LIVE"
    MATCHED = "MATCHED"
    CANCELED = "CANCELED"
    INVALID = "INVALID"
    CANCELED_MARKET_RESOLVED = "CANCELED_MARKET_RESOLVED"
    DELAYED = "DELAYED"
    UNMATCHED = "UNMATCHED"

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        upper = value.upper()
        for member in cls:
            if upper == member.value:
                return member
        if upper.startswith("CANCELED_"):
            return cls.CANCELED
        return None


class OrderType(StrEnum):
    """Time in force: ``GTC``/``GTD`` rest, ``FOK``/``FAK`` are marketable."""

    GTC = "GTC"
    GTD = "GTD"
    FOK = "FOK"
    FAK = "FAK"


class TradeStatus(StrEnum):
    """Settlement state of a trade. ``CONFIRMED`` and ``FAILED`` are terminal."""

    MATCHED = "MATCHED"
    MINED = "MINED"
    CONFIRMED = "CONFIRMED"
    RETRYING = "RETRYING"
    FAILED = "FAILED"


class TraderSide(StrEnum):
    """Whether the receiving user was the taker or a maker of the trade."""

    TAKER = "TAKER"
    MAKER = "MAKER"


@attrs.frozen
class UserOrder:
    """An ``order`` event: one of our orders was placed, matched (partly or fully) or cancelled.

    Prices and sizes are micro-units; ``size_matched`` is the cumulative matched size (the wire's
    ``""`` is 0). ``expiration`` is unix seconds, 0 when the order does not expire.
    """

    id: str
    type: OrderEventType
    market: str
    asset_id: str
    side: Side
    price: Price
    original_size: Units
    status: OrderStatus
    status_text: str = attrs.field(metadata=wire("status"))
    timestamp_ms: EpochMs = attrs.field(metadata=wire("timestamp"))
    size_matched: Units = attrs.field(default=0, metadata=wire(default_on=_ABSENT))
    outcome: str = ""
    order_type: OrderType | None = None
    owner: str = ""
    order_owner: str = ""
    maker_address: str = ""
    associate_trades: tuple[str, ...] = attrs.field(default=(), metadata=wire(default_on=_ABSENT))
    created_at_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("created_at", default_on=_ABSENT)
    )
    expiration: Int = attrs.field(default=0, metadata=wire(default_on=_ABSENT))

    @property
    def status_reason(self) -> str:
        """The reason appended to the status (``CANCELED_<reason>``), or ``""``."""
        if self.status is OrderStatus.CANCELED and self.status_text.upper().startswith("CANCELED_"):
            return self.status_text[len("CANCELED_") :]
        return ""


@attrs.frozen
class MakerOrder:
    """One resting order matched by a trade. ``side`` is absent in older frames."""

    order_id: str
    asset_id: str
    price: Price
    matched_amount: Units
    outcome: str = ""
    side: Side | None = None
    owner: str = ""
    maker_address: str = ""
    fee_rate_bps: Int = attrs.field(default=0, metadata=wire(default_on=_ABSENT))


@attrs.frozen
class UserTrade:
    """A ``trade`` event (also an item of ``GET /data/trades``), from the taker order's view.

    ``timestamp_ms`` is the event time (absent in REST trades); ``match_time_ms`` and
    ``last_update_ms`` come from the venue's second-resolution fields.
    """

    id: str
    taker_order_id: str
    market: str
    asset_id: str
    side: Side
    price: Price
    size: Units
    status: TradeStatus
    trader_side: TraderSide
    outcome: str = ""
    maker_orders: tuple[MakerOrder, ...] = attrs.field(
        default=(), metadata=wire(default_on=_ABSENT)
    )
    match_time_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("match_time", aliases=["matchtime"], default_on=_ABSENT)
    )
    last_update_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("last_update", default_on=_ABSENT)
    )
    timestamp_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("timestamp", default_on=_ABSENT)
    )
    owner: str = ""
    trade_owner: str = ""
    maker_address: str = ""
    fee_rate_bps: Int = attrs.field(default=0, metadata=wire(default_on=_ABSENT))
    bucket_index: Int = 0
    transaction_hash: str = attrs.field(default="", metadata=wire(default_on=(None,)))


UserEvent = UserOrder | UserTrade | Pong | UnknownEvent
"""Everything ``decode_user_frame`` can return."""

_TYPES: Final[dict[str, type[UserOrder] | type[UserTrade]]] = {
    "order": UserOrder,
    "trade": UserTrade,
}

# Some recorded fixtures omit ``event_type``; the ``type`` field still tells the two apart.
_EVENT_BY_TYPE: Final = {
    "PLACEMENT": "order",
    "UPDATE": "order",
    "CANCELLATION": "order",
    "TRADE": "trade",
}


def decode_user_object(obj: Any, frame: str | bytes = "", path: str = "$") -> UserEvent:
    """Decode one already-parsed JSON object of the user channel.

    Args:
        obj: the parsed object.
        frame: the frame it came from, for the error excerpt.
        path: its JSON path in the frame (``$`` or ``$[i]``), for error messages.

    Returns:
        A ``UserOrder``, a ``UserTrade``, or ``UnknownEvent`` for an ``event_type`` we do not
        know (never an error: the venue adds event types without notice).

    Raises:
        FrameDecodeError: the object is not an object, or a known event is malformed.
    """
    if type(obj) is not dict:
        raise FrameDecodeError(f"expected an object, got {show(obj)} @ {path}", frame)
    event_type = obj.get("event_type")
    if event_type is None:
        wire_type = obj.get("type")
        event_type = _EVENT_BY_TYPE.get(wire_type, "") if type(wire_type) is str else ""
    elif type(event_type) is not str:
        raise FrameDecodeError(
            f"expected a string, got {show(event_type)} @ {path}.event_type", frame
        )
    cls = _TYPES.get(event_type)
    if cls is None:
        return UnknownEvent(event_type, obj)
    event: UserOrder | UserTrade = structure(obj, cls, frame, path)
    return event


def decode_user_frame(data: str | bytes) -> list[UserEvent]:
    """Decode one text frame of the user channel into events, in wire order.

    Args:
        data: the frame as received (``str`` or bytes).

    Returns:
        ``[Pong()]`` for the literal ``PONG``; one event for a JSON object; one per element for a
        JSON array.

    Raises:
        FrameDecodeError: invalid JSON, a frame that is neither an object nor an array, or a
            malformed ``order``/``trade`` event; the reason names the field path, e.g.
            ``expected a decimal string, got 0.5 @ $[1].maker_orders[0].price``.
    """
    text = data.strip() if isinstance(data, str) else data.strip(b" \t\r\n")
    if text in ("PONG", b"PONG"):
        return [Pong()]
    parsed = parse_json(data)
    if type(parsed) is list:
        return [decode_user_object(obj, data, f"$[{i}]") for i, obj in enumerate(parsed)]
    if type(parsed) is dict:
        return [decode_user_object(parsed, data)]
    raise FrameDecodeError(f"expected an object or an array, got {show(parsed)}", data)
