"""Decoder for Polymarket's CLOB market WebSocket channel: frames in, typed events out.

This is the feed's hot path, so it is hand-built on ``orjson`` rather than going through cattrs
(measured on one core per ``price_change`` event: orjson then cattrs into attrs classes 16 us;
orjson into these slotted records about 4 us including the exact decimal parsing; see
``just bench``). It is still strict: a frame that cannot be decoded raises exactly one
``FrameDecodeError`` whose reason names the event, the field path and what was wrong, e.g.
``price_change.price_changes[1].size: expected a decimal string, got 12.5``. Prices and sizes
must be JSON *strings* holding plain decimals with at most six decimals; a JSON number where the
venue sends a string is a malformed frame (it would otherwise sneak a float onto the money path).

What a frame may be (PROTOCOL.md section 1.4):

* the literal text ``PONG`` (the answer to our text ``PING``), decoded to ``Pong()``;
* one JSON object, or a JSON array of them (the initial dump is batched);
* each object dispatched on ``event_type``. Objects without ``event_type`` (older captures nest
  them in arrays without it) are recognised by their shape: ``bids``/``asks``/``buys``/``sells``
  make a ``book``, ``price_changes``/``changes`` a ``price_change``, ``new_tick_size`` a
  ``tick_size_change``, ``winning_asset_id`` a ``market_resolved``, ``spread`` a
  ``best_bid_ask``, and ``price``+``side``+``size`` a ``last_trade_price``;
* an ``event_type`` we do not know becomes ``UnknownEvent`` (the runtime counts it); it is never an
  error, because the venue adds event types without notice.

All three ``price_change`` schemas decode to the same ``PriceChange`` record: the current one
(``price_changes[]`` with per-change ``best_bid``/``best_ask``/``hash``, since 2025-09-15), the
older ``changes[]`` under one ``asset_id``, and the 2024 one-level-per-object form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec
import orjson

from bot.core.errors import FrameDecodeError
from bot.core.money import ONE, Side, parse_price, parse_units
from bot.core.wire.market_events import (
    BestBidAsk,
    BookSnapshot,
    LastTradePrice,
    Level,
    MarketEvent,
    MarketResolved,
    NewMarket,
    Pong,
    PriceChange,
    PriceLevelChange,
    TickSizeChange,
    UnknownEvent,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["PONG", "decode_market_frame", "decode_market_object"]

PONG: Final = Pong()

_SIDES: Final = {"BUY": Side.BUY, "SELL": Side.SELL, "buy": Side.BUY, "sell": Side.SELL}


class _Bad(Exception):
    """Internal: a field-level problem; the path is prefixed as it propagates outward."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def under(self, prefix: str) -> _Bad:
        separator = "" if self.path.startswith("[") else "."
        return _Bad(prefix + separator + self.path, self.problem)


# --- field readers: each names its field in the error ---------------------------------------


def _str(obj: dict[str, Any], key: str) -> str:
    try:
        value = obj[key]
    except KeyError:
        raise _Bad(key, "missing field") from None
    if type(value) is not str:
        raise _Bad(key, f"expected a string, got {_show(value)}")
    return value


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not str:
        raise _Bad(key, f"expected a string, got {_show(value)}")
    return value


def _price(obj: dict[str, Any], key: str) -> int:
    try:
        value = obj[key]
    except KeyError:
        raise _Bad(key, "missing field") from None
    if type(value) is not str:
        raise _Bad(key, f"expected a decimal string, got {_show(value)}")
    try:
        price = parse_price(value)
    except ValueError:
        raise _Bad(key, f"expected a decimal string, got {_show(value)}") from None
    if price > ONE:
        raise _Bad(key, f"expected a price between 0 and 1, got {_show(value)}")
    return price


def _opt_price(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    return _price(obj, key)


def _size(obj: dict[str, Any], key: str) -> int:
    try:
        value = obj[key]
    except KeyError:
        raise _Bad(key, "missing field") from None
    if type(value) is not str:
        raise _Bad(key, f"expected a decimal string, got {_show(value)}")
    try:
        return parse_units(value)
    except ValueError:
        raise _Bad(key, f"expected a decimal string, got {_show(value)}") from None


def _opt_size(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    return _size(obj, key)


def _side(obj: dict[str, Any], key: str) -> Side:
    try:
        return _SIDES[obj[key]]
    except KeyError:
        if key not in obj:
            raise _Bad(key, "missing field") from None
        raise _Bad(key, f"expected BUY or SELL, got {_show(obj[key])}") from None
    except TypeError:
        raise _Bad(key, f"expected BUY or SELL, got {_show(obj[key])}") from None


def _int(obj: dict[str, Any], key: str) -> int:
    """An integer that the venue sends as a digit string (timestamps, bps); ints accepted."""
    try:
        value = obj[key]
    except KeyError:
        raise _Bad(key, "missing field") from None
    if type(value) is int and value >= 0:
        return value
    if type(value) is str and value.isdigit():
        return int(value)
    raise _Bad(key, f"expected an integer string, got {_show(value)}")


def _opt_int(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    return _int(obj, key)


def _str_list(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if type(value) is not list or not all(type(item) is str for item in value):
        raise _Bad(key, f"expected a list of strings, got {_show(value)}")
    return tuple(value)


def _levels(obj: dict[str, Any], key: str) -> tuple[Level, ...]:
    raw = obj.get(key)
    if raw is None:
        return ()
    if type(raw) is not list:
        raise _Bad(key, f"expected a list of levels, got {_show(raw)}")
    levels = []
    for index, level in enumerate(raw):
        if type(level) is not dict:
            raise _Bad(f"{key}[{index}]", f"expected an object, got {_show(level)}")
        try:
            levels.append(Level(_price(level, "price"), _size(level, "size")))
        except _Bad as bad:
            raise bad.under(f"{key}[{index}]") from None
    return tuple(levels)


def _show(value: object) -> str:
    text = orjson.dumps(value).decode() if _jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: object) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


# --- one decoder per event type ----------------------------------------------------------------


def _book(obj: dict[str, Any]) -> BookSnapshot:
    bids = _levels(obj, "bids") if "bids" in obj else _levels(obj, "buys")
    asks = _levels(obj, "asks") if "asks" in obj else _levels(obj, "sells")
    neg_risk = obj.get("neg_risk")
    if neg_risk is not None and type(neg_risk) is not bool:
        raise _Bad("neg_risk", f"expected a boolean, got {_show(neg_risk)}")
    return BookSnapshot(
        asset_id=_str(obj, "asset_id"),
        market=_str(obj, "market"),
        timestamp_ms=_int(obj, "timestamp"),
        hash=_opt_str(obj, "hash") or "",
        bids=bids,
        asks=asks,
        tick_size=_opt_price(obj, "tick_size"),
        last_trade_price=_opt_price(obj, "last_trade_price"),
        min_order_size=_opt_size(obj, "min_order_size"),
        neg_risk=neg_risk,
    )


def _change(obj: dict[str, Any], asset_id: str | None, hash_: str | None) -> PriceLevelChange:
    return PriceLevelChange(
        asset_id if asset_id is not None else _str(obj, "asset_id"),
        _price(obj, "price"),
        _size(obj, "size"),
        _side(obj, "side"),
        _opt_price(obj, "best_bid"),
        _opt_price(obj, "best_ask"),
        _opt_str(obj, "hash") or hash_,
    )


# --- the fast path for the current price_change schema ------------------------------------------
#
# ``price_change`` is most of the feed. The careful readers above cost a function call and a few
# checks per field; this path does the same validation inline, leaning on exceptions, and looks
# prices up in a table of already-validated spellings (a feed has at most 10,001 distinct prices).
# It accepts a subset of what the careful path accepts and builds identical records; on any doubt
# (an exception, an unseen spelling) the caller re-decodes the object carefully, which either
# succeeds the same way or raises the precise, field-named error.

_FAST_PRICES: dict[str, int] = {}
_FAST_PRICES_MAX: Final = 65_536
# Sizes repeat too: the venue mirrors every change onto the complementary token with the same
# size string, and resting sizes come back on every touch of their level. Bounded like prices.
_FAST_SIZES: dict[str, int] = {}
_FAST_SIZES_MAX: Final = 65_536
_POW10: Final = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)
_new = tuple.__new__


def _fast_units(text: str) -> int:
    """``parse_units`` for the hot path: one digit check over the text without its point."""
    point = text.find(".")
    if point < 0:
        digits, scale = text, 6
    else:
        scale = 7 - len(text) + point  # 6 minus the number of decimals
        if scale < 0:
            raise ValueError(text)
        digits = text[:point] + text[point + 1 :]
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(text)
    return int(digits) * _POW10[scale]


def _learn_price(text: object) -> int:
    """Validate a price spelling the fast path has not seen, and remember it."""
    price = _price({"p": text}, "p")  # raises _Bad for anything that is not a valid price
    if len(_FAST_PRICES) < _FAST_PRICES_MAX:
        _FAST_PRICES[text] = price  # type: ignore[index]  # validated: a str
    return price


class _WireChange(msgspec.Struct):
    asset_id: str
    price: str
    size: str
    side: str
    best_bid: str | None = None
    best_ask: str | None = None
    hash: str | None = None


class _WirePriceChange(msgspec.Struct, tag_field="event_type", tag="price_change"):
    market: str
    timestamp: str
    price_changes: list[_WireChange]


_PRICE_CHANGE_DECODER: Final = msgspec.json.Decoder(_WirePriceChange | list[_WirePriceChange])


def _from_wire(wire: _WirePriceChange) -> PriceChange:
    """Convert a typed current-schema ``price_change`` (all fields already known to be strings)."""
    prices = _FAST_PRICES
    sizes = _FAST_SIZES
    sides = _SIDES
    changes: list[PriceLevelChange] = []
    append = changes.append
    for item in wire.price_changes:
        text = item.price
        price = prices.get(text)
        if price is None:
            price = _learn_price(text)
        best_bid: int | None = None
        text_or_none = item.best_bid
        if text_or_none is not None:
            best_bid = prices.get(text_or_none)
            if best_bid is None:
                best_bid = _learn_price(text_or_none)
        best_ask: int | None = None
        text_or_none = item.best_ask
        if text_or_none is not None:
            best_ask = prices.get(text_or_none)
            if best_ask is None:
                best_ask = _learn_price(text_or_none)
        text = item.size
        size = sizes.get(text)
        if size is None:
            size = _fast_units(text)
            if len(sizes) < _FAST_SIZES_MAX:
                sizes[text] = size
        append(
            _new(
                PriceLevelChange,
                (
                    item.asset_id,
                    price,
                    size,
                    sides[item.side],
                    best_bid,
                    best_ask,
                    item.hash or None,
                ),
            )
        )
    timestamp = wire.timestamp
    if not timestamp.isdigit():
        raise ValueError(timestamp)
    return _new(PriceChange, (wire.market, int(timestamp), tuple(changes)))


def _decode_price_changes_fast(frame: str | bytes) -> list[MarketEvent] | None:
    """The hot path: a frame of current-schema ``price_change`` events only, or ``None``.

    msgspec decodes and type-checks the frame straight into structs (about 1 us for a typical
    two-change event, less than ``orjson.loads`` alone), so only prices, sizes and sides are left
    to convert. Anything unusual (another event type in the frame, a number where a string
    belongs, an unseen price spelling that turns out invalid) returns ``None`` and the careful
    decoder takes over, which either produces the same records or the precise error.
    """
    try:
        wire = _PRICE_CHANGE_DECODER.decode(frame)
        if type(wire) is list:
            return [_from_wire(item) for item in wire]
        return [_from_wire(wire)]
    except (msgspec.DecodeError, KeyError, ValueError, _Bad):
        return None


def _price_change(obj: dict[str, Any]) -> PriceChange:
    market = _str(obj, "market")
    timestamp = _int(obj, "timestamp")
    if "price_changes" in obj:  # current schema (since 2025-09-15)
        key, raw, asset_id, hash_ = "price_changes", obj["price_changes"], None, None
    elif "changes" in obj:  # pre-2025-09-15: changes[] under one asset_id
        key, raw = "changes", obj["changes"]
        asset_id, hash_ = _str(obj, "asset_id"), _opt_str(obj, "hash")
    else:  # 2024: a single level per object
        return PriceChange(market, timestamp, (_change(obj, None, None),))
    if type(raw) is not list:
        raise _Bad(key, f"expected a list, got {_show(raw)}")
    changes = []
    for index, item in enumerate(raw):
        if type(item) is not dict:
            raise _Bad(f"{key}[{index}]", f"expected an object, got {_show(item)}")
        try:
            changes.append(_change(item, asset_id, hash_))
        except _Bad as bad:
            raise bad.under(f"{key}[{index}]") from None
    return PriceChange(market, timestamp, tuple(changes))


def _tick_size_change(obj: dict[str, Any]) -> TickSizeChange:
    return TickSizeChange(
        asset_id=_str(obj, "asset_id"),
        market=_str(obj, "market"),
        old_tick_size=_price(obj, "old_tick_size"),
        new_tick_size=_price(obj, "new_tick_size"),
        timestamp_ms=_int(obj, "timestamp"),
    )


def _last_trade_price(obj: dict[str, Any]) -> LastTradePrice:
    return LastTradePrice(
        asset_id=_str(obj, "asset_id"),
        market=_str(obj, "market"),
        price=_price(obj, "price"),
        size=_size(obj, "size"),
        side=_side(obj, "side"),
        timestamp_ms=_int(obj, "timestamp"),
        fee_rate_bps=_opt_int(obj, "fee_rate_bps"),
        transaction_hash=_opt_str(obj, "transaction_hash") or None,
    )


def _best_bid_ask(obj: dict[str, Any]) -> BestBidAsk:
    return BestBidAsk(
        asset_id=_str(obj, "asset_id"),
        market=_str(obj, "market"),
        best_bid=_price(obj, "best_bid"),
        best_ask=_price(obj, "best_ask"),
        spread=_price(obj, "spread"),
        timestamp_ms=_int(obj, "timestamp"),
    )


def _event_slug(obj: dict[str, Any]) -> str | None:
    message = obj.get("event_message")
    if message is None:
        return None
    if type(message) is not dict:
        raise _Bad("event_message", f"expected an object, got {_show(message)}")
    try:
        return _opt_str(message, "slug")
    except _Bad as bad:
        raise bad.under("event_message") from None


def _new_market(obj: dict[str, Any]) -> NewMarket:
    assets = _str_list(obj, "assets_ids") or _str_list(obj, "clob_token_ids")
    return NewMarket(
        id=_str(obj, "id"),
        market=_str(obj, "market"),
        question=_opt_str(obj, "question") or "",
        slug=_opt_str(obj, "slug") or "",
        assets_ids=assets,
        outcomes=_str_list(obj, "outcomes"),
        timestamp_ms=_int(obj, "timestamp"),
        tick_size=_opt_price(obj, "order_price_min_tick_size"),
        event_slug=_event_slug(obj),
    )


def _market_resolved(obj: dict[str, Any]) -> MarketResolved:
    return MarketResolved(
        id=_opt_str(obj, "id") or "",
        market=_str(obj, "market"),
        assets_ids=_str_list(obj, "assets_ids"),
        winning_asset_id=_str(obj, "winning_asset_id"),
        winning_outcome=_opt_str(obj, "winning_outcome") or "",
        timestamp_ms=_int(obj, "timestamp"),
    )


_DECODERS: Final[dict[str, Callable[[dict[str, Any]], MarketEvent]]] = {
    "book": _book,
    "price_change": _price_change,
    "tick_size_change": _tick_size_change,
    "last_trade_price": _last_trade_price,
    "best_bid_ask": _best_bid_ask,
    "new_market": _new_market,
    "market_resolved": _market_resolved,
}


def _infer_event_type(obj: dict[str, Any]) -> str | None:
    """The event type of an object that lacks ``event_type`` (older captures), by its shape."""
    if "bids" in obj or "asks" in obj or "buys" in obj or "sells" in obj:
        return "book"
    if "price_changes" in obj or "changes" in obj:
        return "price_change"
    if "new_tick_size" in obj:
        return "tick_size_change"
    if "winning_asset_id" in obj:
        return "market_resolved"
    if "spread" in obj:
        return "best_bid_ask"
    if "price" in obj and "side" in obj and "size" in obj:
        return "last_trade_price"
    return None


def decode_market_object(obj: object) -> MarketEvent:
    """Decode one already-parsed JSON object of the market channel.

    Raises:
        FrameDecodeError: the object is not a JSON object, or a known event is malformed.
    """
    if type(obj) is not dict:
        raise FrameDecodeError(f"expected a JSON object, got {_show(obj)}")
    event_type = obj.get("event_type")
    if event_type is None:
        event_type = _infer_event_type(obj)
        if event_type is None:
            raise FrameDecodeError("object has no event_type and no recognisable shape")
    elif type(event_type) is not str:
        raise FrameDecodeError(f"event_type: expected a string, got {_show(event_type)}")
    decoder = _DECODERS.get(event_type)
    if decoder is None:
        return UnknownEvent(event_type, obj)
    try:
        return decoder(obj)
    except _Bad as bad:
        raise FrameDecodeError(f"{event_type}.{bad.path}: {bad.problem}") from None


def decode_market_frame(frame: str | bytes) -> list[MarketEvent]:
    """Decode one text frame of the market channel into events, in wire order.

    Args:
        frame: the frame as received (``str`` from a WebSocket text message, or bytes).

    Returns:
        The frame's events: ``[Pong()]`` for ``PONG``, one event for a JSON object, one per
        element for a JSON array (possibly empty).

    Raises:
        FrameDecodeError: the frame is not valid JSON, not an object or array of objects, or a
            known event in it is malformed. Nothing from a bad frame is returned: a frame is
            applied whole or not at all, so a half-decoded batch can never reach a book.
    """
    if frame == "PONG" or frame == b"PONG":
        return [PONG]
    needle_found = (
        b"price_changes" in frame if isinstance(frame, bytes) else "price_changes" in frame
    )
    if needle_found:
        fast = _decode_price_changes_fast(frame)
        if fast is not None:
            return fast
    try:
        data = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise FrameDecodeError(f"invalid JSON: {exc}", frame) from None
    if type(data) is not list:
        try:
            return [decode_market_object(data)]
        except FrameDecodeError as exc:
            raise FrameDecodeError(exc.reason, frame) from None
    events: list[MarketEvent] = []
    for index, item in enumerate(data):
        try:
            events.append(decode_market_object(item))
        except FrameDecodeError as exc:
            raise FrameDecodeError(f"[{index}] {exc.reason}", frame) from None
    return events
