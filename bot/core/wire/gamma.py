"""Typed Gamma API objects (market discovery): markets and events, and their decoders.

Gamma (``https://gamma-api.polymarket.com``, PROTOCOL.md section 3) returns large camelCase
objects with 100+ keys; only the fields a bot uses are modelled here (section 3.2), all but the
condition id optional, because list endpoints and older markets omit many of them. Quirks handled:

* ``outcomes``, ``outcomePrices``, ``clobTokenIds`` and ``umaResolutionStatuses`` are JSON arrays
  *encoded inside strings* (``"[\\"Yes\\", \\"No\\"]"``); some responses send real arrays. Both
  decode to tuples, index-aligned with ``outcomes``.
* ``outcomePrices`` are ``Decimal``: legacy markets settled at values like
  ``0.5843311669077693146635445446077281`` that micro-units cannot hold.
* Numbers and strings for the same quantity (``liquidity`` is ``"20328.3747"`` on a market and
  ``20328.3747`` on an event): both become exact ``Decimal``. Cached top-of-book numbers
  (``bestBid``, ``spread``, ...) are ``Decimal`` too: they are informational, not live.
* ``orderPriceMinTickSize`` and ``orderMinSize`` are JSON numbers -> micro-units.
* Dates come as ISO-8601 (``2026-03-12T09:25:00Z``), date-only (``endDateIso``) or Postgres-style
  (``"2026-04-05 15:10:00+00"``); all become epoch milliseconds (UTC).
"""

from decimal import Decimal
from typing import Annotated, Final

import attrs

from bot.core.wire.codec import JSON_ENCODED, EpochMs, Ident, Int, NumUnits, decode, wire

__all__ = [
    "FeeSchedule",
    "GammaEvent",
    "GammaEventRef",
    "GammaMarket",
    "GammaTag",
    "decode_gamma_event",
    "decode_gamma_events",
    "decode_gamma_market",
    "decode_gamma_markets",
    "decode_gamma_tags",
]

_NULL: Final = (None,)
_ABSENT: Final = (None, "")


@attrs.frozen
class FeeSchedule:
    """The V2 taker-fee curve: ``fee = C x rate x (p x (1 - p)) ** exponent`` (PROTOCOL.md 7.1).

    ``rate`` and ``rebate_rate`` are micro-units (0.03 -> ``30_000``), ready for
    ``bot.core.money.taker_fee_units``.
    """

    rate: NumUnits
    exponent: Int = 1
    taker_only: bool = attrs.field(default=True, metadata=wire("takerOnly"))
    rebate_rate: NumUnits | None = attrs.field(default=None, metadata=wire("rebateRate"))


@attrs.frozen
class GammaTag:
    """A Gamma tag (category) attached to an event."""

    id: Ident
    label: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    slug: str = attrs.field(default="", metadata=wire(default_on=_NULL))


@attrs.frozen
class GammaEventRef:
    """The short form of the parent event inside a market's ``events[]``."""

    id: Ident
    slug: str = ""
    title: str = ""
    ticker: str = ""
    active: bool = False
    closed: bool = False
    neg_risk: bool = attrs.field(default=False, metadata=wire("negRisk", default_on=_NULL))
    enable_neg_risk: bool = attrs.field(
        default=False, metadata=wire("enableNegRisk", default_on=_NULL)
    )
    neg_risk_augmented: bool = attrs.field(
        default=False, metadata=wire("negRiskAugmented", default_on=_NULL)
    )
    neg_risk_market_id: str = attrs.field(
        default="", metadata=wire("negRiskMarketID", default_on=_NULL)
    )
    series_slug: str = attrs.field(default="", metadata=wire("seriesSlug", default_on=_NULL))
    start_time_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("startTime", default_on=_ABSENT)
    )


@attrs.frozen
class GammaMarket:
    """A Gamma market: one binary question with its CLOB tokens.

    ``clob_token_ids[i]`` trades outcome ``outcomes[i]``, cached at ``outcome_prices[i]``. A
    market is tradable on the CLOB only with ``enable_order_book``; ``accepting_orders`` can lag
    ``closed`` (it stays true for a while after close).
    """

    condition_id: str = attrs.field(metadata=wire("conditionId"))
    id: Ident = ""
    question_id: str = attrs.field(
        default="", metadata=wire("questionID", aliases=["questionId"], default_on=_NULL)
    )
    slug: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    question: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    description: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    group_item_title: str = attrs.field(
        default="", metadata=wire("groupItemTitle", default_on=_NULL)
    )
    outcomes: Annotated[tuple[str, ...], JSON_ENCODED] = attrs.field(
        default=(), metadata=wire(default_on=_ABSENT)
    )
    outcome_prices: Annotated[tuple[Decimal, ...], JSON_ENCODED] = attrs.field(
        default=(), metadata=wire("outcomePrices", default_on=_ABSENT)
    )
    clob_token_ids: Annotated[tuple[str, ...], JSON_ENCODED] = attrs.field(
        default=(), metadata=wire("clobTokenIds", default_on=_ABSENT)
    )
    position_ids: Annotated[tuple[Ident, ...], JSON_ENCODED] = attrs.field(
        default=(), metadata=wire("positionIds", default_on=_ABSENT)
    )
    version: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    active: bool = attrs.field(default=False, metadata=wire(default_on=_NULL))
    closed: bool = attrs.field(default=False, metadata=wire(default_on=_NULL))
    archived: bool = attrs.field(default=False, metadata=wire(default_on=_NULL))
    restricted: bool = attrs.field(default=False, metadata=wire(default_on=_NULL))
    enable_order_book: bool = attrs.field(
        default=False, metadata=wire("enableOrderBook", default_on=_NULL)
    )
    accepting_orders: bool = attrs.field(
        default=False, metadata=wire("acceptingOrders", default_on=_NULL)
    )
    accepting_orders_timestamp_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("acceptingOrdersTimestamp", default_on=_ABSENT)
    )
    neg_risk: bool = attrs.field(default=False, metadata=wire("negRisk", default_on=_NULL))
    neg_risk_market_id: str = attrs.field(
        default="", metadata=wire("negRiskMarketID", default_on=_NULL)
    )
    neg_risk_request_id: str = attrs.field(
        default="", metadata=wire("negRiskRequestID", default_on=_NULL)
    )
    neg_risk_other: bool = attrs.field(
        default=False, metadata=wire("negRiskOther", default_on=_NULL)
    )
    tick_size: NumUnits | None = attrs.field(
        default=None, metadata=wire("orderPriceMinTickSize", default_on=_ABSENT)
    )
    min_order_size: NumUnits | None = attrs.field(
        default=None, metadata=wire("orderMinSize", default_on=_ABSENT)
    )
    liquidity: Decimal | None = attrs.field(default=None, metadata=wire(default_on=_ABSENT))
    volume: Decimal | None = attrs.field(default=None, metadata=wire(default_on=_ABSENT))
    volume_24hr: Decimal | None = attrs.field(
        default=None, metadata=wire("volume24hr", default_on=_ABSENT)
    )
    best_bid: Decimal | None = attrs.field(
        default=None, metadata=wire("bestBid", default_on=_ABSENT)
    )
    best_ask: Decimal | None = attrs.field(
        default=None, metadata=wire("bestAsk", default_on=_ABSENT)
    )
    spread: Decimal | None = attrs.field(default=None, metadata=wire(default_on=_ABSENT))
    last_trade_price: Decimal | None = attrs.field(
        default=None, metadata=wire("lastTradePrice", default_on=_ABSENT)
    )
    start_date_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("startDate", default_on=_ABSENT)
    )
    end_date_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("endDate", default_on=_ABSENT)
    )
    game_start_time_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("gameStartTime", default_on=_ABSENT)
    )
    event_start_time_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("eventStartTime", default_on=_ABSENT)
    )
    closed_time_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("closedTime", default_on=_ABSENT)
    )
    seconds_delay: Int = attrs.field(default=0, metadata=wire("secondsDelay", default_on=_NULL))
    rewards_min_size: Decimal | None = attrs.field(
        default=None, metadata=wire("rewardsMinSize", default_on=_ABSENT)
    )
    rewards_max_spread: Decimal | None = attrs.field(
        default=None, metadata=wire("rewardsMaxSpread", default_on=_ABSENT)
    )
    fees_enabled: bool = attrs.field(default=False, metadata=wire("feesEnabled", default_on=_NULL))
    fee_schedule: FeeSchedule | None = attrs.field(default=None, metadata=wire("feeSchedule"))
    fee_type: str = attrs.field(default="", metadata=wire("feeType", default_on=_NULL))
    maker_base_fee: Int = attrs.field(default=0, metadata=wire("makerBaseFee", default_on=_NULL))
    taker_base_fee: Int = attrs.field(default=0, metadata=wire("takerBaseFee", default_on=_NULL))
    uma_resolution_status: str = attrs.field(
        default="", metadata=wire("umaResolutionStatus", default_on=_NULL)
    )
    uma_resolution_statuses: Annotated[tuple[str, ...], JSON_ENCODED] = attrs.field(
        default=(), metadata=wire("umaResolutionStatuses", default_on=_ABSENT)
    )
    events: tuple[GammaEventRef, ...] = attrs.field(default=(), metadata=wire(default_on=_NULL))

    @property
    def tokens(self) -> dict[str, str]:
        """Outcome label -> token id (``{"Yes": "2174...", "No": "4833..."}``)."""
        return dict(zip(self.outcomes, self.clob_token_ids, strict=False))


@attrs.frozen
class GammaEvent:
    """A Gamma event: a group of markets (one per outcome for neg-risk events).

    With ``neg_risk`` exactly one market resolves YES. ``enable_neg_risk`` together with
    ``neg_risk_augmented`` marks placeholder outcomes and a shifting "Other": trade only named
    outcomes (PROTOCOL.md 7.3).
    """

    id: Ident
    slug: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    title: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    ticker: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    description: str = attrs.field(default="", metadata=wire(default_on=_NULL))
    active: bool = attrs.field(default=False, metadata=wire(default_on=_NULL))
    closed: bool = attrs.field(default=False, metadata=wire(default_on=_NULL))
    archived: bool = attrs.field(default=False, metadata=wire(default_on=_NULL))
    restricted: bool = attrs.field(default=False, metadata=wire(default_on=_NULL))
    neg_risk: bool = attrs.field(default=False, metadata=wire("negRisk", default_on=_NULL))
    enable_neg_risk: bool = attrs.field(
        default=False, metadata=wire("enableNegRisk", default_on=_NULL)
    )
    neg_risk_augmented: bool = attrs.field(
        default=False, metadata=wire("negRiskAugmented", default_on=_NULL)
    )
    neg_risk_market_id: str = attrs.field(
        default="", metadata=wire("negRiskMarketID", default_on=_NULL)
    )
    neg_risk_fee_bips: Int | None = attrs.field(default=None, metadata=wire("negRiskFeeBips"))
    liquidity: Decimal | None = attrs.field(default=None, metadata=wire(default_on=_ABSENT))
    volume: Decimal | None = attrs.field(default=None, metadata=wire(default_on=_ABSENT))
    volume_24hr: Decimal | None = attrs.field(
        default=None, metadata=wire("volume24hr", default_on=_ABSENT)
    )
    start_date_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("startDate", default_on=_ABSENT)
    )
    end_date_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("endDate", default_on=_ABSENT)
    )
    start_time_ms: EpochMs | None = attrs.field(
        default=None, metadata=wire("startTime", default_on=_ABSENT)
    )
    markets: tuple[GammaMarket, ...] = attrs.field(default=(), metadata=wire(default_on=_NULL))
    tags: tuple[GammaTag, ...] = attrs.field(default=(), metadata=wire(default_on=_NULL))


def decode_gamma_market(data: str | bytes) -> GammaMarket:
    """Decode one market (``GET /markets/{id}``, ``/markets/slug/{slug}``).

    Raises:
        FrameDecodeError: invalid JSON or a malformed field; the reason names its wire path.
    """
    return decode(data, GammaMarket)


def decode_gamma_markets(data: str | bytes) -> list[GammaMarket]:
    """Decode a market list (``GET /markets``). Raises ``FrameDecodeError`` like the above."""
    return list(decode(data, tuple[GammaMarket, ...]))


def decode_gamma_event(data: str | bytes) -> GammaEvent:
    """Decode one event (``GET /events/{id}``, ``/events/slug/{slug}``) with its markets."""
    return decode(data, GammaEvent)


def decode_gamma_events(data: str | bytes) -> list[GammaEvent]:
    """Decode an event list (``GET /events``). Raises ``FrameDecodeError`` on bad input."""
    return list(decode(data, tuple[GammaEvent, ...]))


def decode_gamma_tags(data: str | bytes) -> list[GammaTag]:
    """Decode a tag list (``GET /tags``). Raises ``FrameDecodeError`` on bad input."""
    return list(decode(data, tuple[GammaTag, ...]))
