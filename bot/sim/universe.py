"""The sim venue's market universe: markets, neg-risk events, and their real-shaped JSON.

The sim venue (``bot.sim``) speaks Polymarket's wire protocol to the bot because the real venue is
unreachable. This module is its *catalogue*: a deterministic, seeded set of markets that look like
Polymarket's, and renderers that turn them into the exact JSON shapes of Gamma (``/markets``,
``/events``) and the CLOB REST API (``/markets/{condition_id}``). ``bot.sim.exchange`` holds the
live order books of these markets. Like ``bot.core``, this module is pure: no trio, no I/O, no
clock (dates derive from ``UniverseConfig.epoch_ms``) and randomness only through the
``random.Random`` passed in.

What a universe holds
---------------------
* ``n_binary`` stand-alone binary markets in assorted categories (crypto, sports, politics, ...),
  each with the category's V2 taker-fee rate (PROTOCOL.md 7.1). Most trade on a 0.01 tick, some on
  0.001; a few start with their price in the extremes (< 0.04 or > 0.96) while on 0.01, which is
  what makes the exchange emit ``tick_size_change``.
* ``n_temperature_events`` neg-risk "Highest temperature in <city> on <day>?" ladders of 10-11
  brackets of one degree Celsius, the two ends open ("17°C or below", "27°C or higher"). Each event
  carries a hidden forecast (mean and standard deviation, in tenths of a degree); bracket fair
  prices are the normal distribution's probability mass of each bracket.
* ``n_election_events`` neg-risk "Who will win ...?" events of 3-8 candidates with fair prices
  drawn from a Dirichlet-like distribution.

In every neg-risk event the fair prices sum to exactly ``ONE``: they are differences of a rounded
cumulative distribution (``F_i = round(CDF_i x ONE)``, ``F_0 = 0``, ``F_n = ONE``), so the rounding
is distributed exactly and no price is negative.

Ids look like the real ones: token ids are decimal strings of up to 78 digits (uint256),
condition and question ids ``0x`` + 64 hex, and a neg-risk market's ``questionID`` is its event's
``negRiskMarketID`` (which ends in ``00``) plus the outcome index (PROTOCOL.md 7.3).

Rendering
---------
``gamma_market_json``, ``gamma_event_json`` and ``clob_market_json`` return dicts ready for
``orjson.dumps`` with the real samples' quirks (``tests/fixtures/nautilus_crates/``
``gamma_market.json``, ``gamma_event.json``, ``nautilus_py_http/market.json``):
``outcomes``/``outcomePrices``/``clobTokenIds`` as JSON-encoded strings, ``liquidity`` a string
next to ``liquidityNum`` a number, ``orderPriceMinTickSize`` a number, and so on. The live
parts (current tick, top of book, closed/winner) come from an optional ``MarketState`` that the
exchange provides.
"""

from __future__ import annotations

import hashlib
import math
import re
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from bot.core.money import ONE, format_units, to_decimal

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Sequence

__all__ = [
    "BRACKET_OPEN_HIGH",
    "BRACKET_OPEN_LOW",
    "CATEGORY_FEE_RATES",
    "MIN_ORDER_SIZE",
    "TICK_COARSE",
    "TICK_FINE",
    "MarketState",
    "SimEvent",
    "SimMarket",
    "Tier",
    "Universe",
    "UniverseConfig",
    "bracket_fair_prices",
    "clob_market_json",
    "gamma_event_json",
    "gamma_market_json",
    "generate_universe",
    "tag_slug",
]

BRACKET_OPEN_LOW: Final = -1_000
"""Lower bound (tenths of a degree, -100.0 °C) of a ladder's open-ended bottom bracket."""

BRACKET_OPEN_HIGH: Final = 1_000
"""Upper bound (tenths of a degree, 100.0 °C) of a ladder's open-ended top bracket."""

TICK_COARSE: Final = 10_000
"""The usual tick, 0.01."""

TICK_FINE: Final = 1_000
"""The fine tick, 0.001: some listings, and 0.01 markets whose price is below 0.04 or above 0.96."""
MIN_ORDER_SIZE: Final = 5_000_000
"""Five shares, the usual ``minimum_order_size``."""

CATEGORY_FEE_RATES: Final[dict[str, int]] = {
    "crypto": 70_000,
    "sports": 30_000,
    "politics": 40_000,
    "finance": 40_000,
    "tech": 40_000,
    "mentions": 40_000,
    "economics": 50_000,
    "culture": 50_000,
    "weather": 50_000,
    "other": 50_000,
    "geopolitics": 0,
}
"""V2 taker-fee rate per category, micro-units (PROTOCOL.md 7.1: 0.07 -> ``70_000``)."""

_CATEGORY_TAGS: Final[dict[str, tuple[str, ...]]] = {
    "crypto": ("Crypto", "Crypto Prices"),
    "sports": ("Sports", "Games"),
    "politics": ("Politics", "US Politics"),
    "finance": ("Finance", "Stocks"),
    "tech": ("Tech", "AI"),
    "mentions": ("Mentions",),
    "economics": ("Economy", "Fed"),
    "culture": ("Culture", "Movies"),
    "weather": ("Weather", "Temperature"),
    "other": ("Other",),
    "geopolitics": ("Geopolitics", "World"),
}

_TAG_IDS: Final[dict[str, str]] = {
    "Crypto": "21",
    "Crypto Prices": "1312",
    "Sports": "1",
    "Games": "100639",
    "Politics": "2",
    "US Politics": "1101",
    "Finance": "120",
    "Stocks": "604",
    "Tech": "1401",
    "AI": "439",
    "Mentions": "102127",
    "Economy": "100328",
    "Fed": "159",
    "Culture": "596",
    "Movies": "53",
    "Weather": "84",
    "Temperature": "103040",
    "Other": "100265",
    "Geopolitics": "102245",
    "World": "101970",
    "Elections": "144",
    "World Elections": "101206",
}

Tier = Literal["busy", "normal", "quiet"]
"""A market's order-flow tier."""

_DEFAULT_EPOCH_MS: Final = 1_782_864_000_000  # 2026-07-01T00:00:00Z
_DAY_MS: Final = 86_400_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_SLUG_STRIP: Final = re.compile(r"[^a-z0-9]+")
_IMAGE_BASE: Final = "https://polymarket-upload.s3.us-east-2.amazonaws.com/"

# name, (low, high) typical daily maximum in whole degrees Celsius
_CITIES: Final = (
    ("London", 14, 28),
    ("Seoul", 22, 33),
    ("Paris", 16, 31),
    ("Tokyo", 24, 34),
    ("Toronto", 18, 31),
    ("Buenos Aires", 8, 18),
    ("Wellington", 8, 15),
    ("Ankara", 22, 34),
    ("Madrid", 24, 38),
    ("Chicago", 20, 33),
)
_COUNTRIES: Final = ("Portugal", "Chile", "Romania", "South Korea", "Colombia", "Poland", "Peru")
_FIRST_NAMES: Final = (
    "Ana",
    "Bruno",
    "Carla",
    "Daniel",
    "Elena",
    "Felipe",
    "Greta",
    "Hugo",
    "Irene",
)
_LAST_NAMES: Final = (
    "Almeida",
    "Berger",
    "Castro",
    "Dumitru",
    "Esposito",
    "Fischer",
    "Gomez",
    "Novak",
)
_COINS: Final = (("Bitcoin", 110_000), ("Ethereum", 4_000), ("Solana", 200), ("XRP", 3))
_TEAMS: Final = ("Lakers", "Celtics", "Yankees", "Dodgers", "Arsenal", "Real Madrid", "Chiefs")
_COMPANIES: Final = ("OpenAI", "Apple", "Google", "Tesla", "Nvidia", "Meta")
_PRODUCTS: Final = ("a new flagship model", "a foldable phone", "AR glasses", "a robotaxi app")
_FILMS: Final = ("Starfall", "The Last Harbor", "Neon Rivers", "Iron Meadow", "Glass Kingdom")


# --- configuration and values ------------------------------------------------------------------


def _non_negative(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value}")


def _range(_: object, attribute: attrs.Attribute[tuple[int, int]], value: tuple[int, int]) -> None:
    low, high = value
    if not 0 < low <= high:
        raise ValueError(f"{attribute.name} must be (low, high) with 0 < low <= high, got {value}")


@attrs.frozen
class UniverseConfig:
    """What to generate.

    Attributes:
        n_binary: stand-alone binary markets.
        n_temperature_events: neg-risk temperature ladders.
        n_election_events: neg-risk multi-candidate elections.
        temperature_brackets: (min, max) brackets per ladder, the two open ends included.
        election_candidates: (min, max) candidates per election.
        binary_categories: categories binary markets are drawn from (keys of
            ``CATEGORY_FEE_RATES``); the category sets tags and the taker-fee rate.
        fine_tick_fraction: share of markets listed on a 0.001 tick (the rest use 0.01).
        extreme_fraction: share of binary markets whose fair price starts below 0.04 or above
            0.96 (on 0.01 they soon get a ``tick_size_change`` to 0.001).
        busy_fraction: share of markets with busy order flow.
        quiet_fraction: share of markets with quiet order flow and thin books.
        busy_activity: order-flow weight of a busy market.
        normal_activity: order-flow weight of an ordinary market.
        quiet_activity: order-flow weight of a quiet market.
        epoch_ms: the universe's "now" for listing and end dates (the model reads no clock).
        first_market_id: the first Gamma market id (they count up from here).
        first_event_id: the first Gamma event id.

    Total assets are ``2 x`` (``n_binary`` + every event's markets); 10,000 assets (about 4,900
    binaries plus a few events) generate in well under a second.
    """

    n_binary: int = attrs.field(default=20, validator=_non_negative)
    n_temperature_events: int = attrs.field(default=2, validator=_non_negative)
    n_election_events: int = attrs.field(default=2, validator=_non_negative)
    temperature_brackets: tuple[int, int] = attrs.field(default=(10, 11), validator=_range)
    election_candidates: tuple[int, int] = attrs.field(default=(3, 8), validator=_range)
    binary_categories: tuple[str, ...] = (
        "crypto",
        "sports",
        "politics",
        "finance",
        "tech",
        "economics",
        "culture",
        "geopolitics",
    )
    fine_tick_fraction: float = attrs.field(default=0.15, validator=_fraction)
    extreme_fraction: float = attrs.field(default=0.1, validator=_fraction)
    busy_fraction: float = attrs.field(default=0.15, validator=_fraction)
    quiet_fraction: float = attrs.field(default=0.3, validator=_fraction)
    busy_activity: int = attrs.field(default=30, validator=_non_negative)
    normal_activity: int = attrs.field(default=5, validator=_non_negative)
    quiet_activity: int = attrs.field(default=1, validator=_non_negative)
    epoch_ms: int = _DEFAULT_EPOCH_MS
    first_market_id: int = 600_000
    first_event_id: int = 40_000

    def __attrs_post_init__(self) -> None:
        unknown = [c for c in self.binary_categories if c not in CATEGORY_FEE_RATES]
        if unknown or not self.binary_categories:
            raise ValueError(f"binary_categories must be known categories, got {unknown or '()'}")
        if self.temperature_brackets[0] < 3:
            raise ValueError("a temperature ladder needs at least 3 brackets")
        if self.busy_fraction + self.quiet_fraction > 1.0:
            raise ValueError("busy_fraction + quiet_fraction must be <= 1")


@attrs.frozen
class SimMarket:
    """One binary market (two tokens) of the sim universe.

    Attributes:
        gamma_id: Gamma's market id (a numeric string).
        condition_id: the CLOB ``market`` (``0x`` + 64 hex).
        question_id: the UMA question id; for neg-risk markets the event's market id + index.
        question: the question text.
        slug: Gamma slug (unique).
        yes_token: token id of the first outcome ("Yes").
        no_token: token id of the second outcome ("No").
        outcomes: the two outcome labels.
        tick_size: the listing tick, micro-units (the exchange may change it near 0 and 1).
        min_order_size: minimum resting order size, micro-units of shares.
        neg_risk: whether the market belongs to a neg-risk event.
        neg_risk_market_id: the event's ``negRiskMarketID``, ``None`` for binaries.
        event_id: the neg-risk event's id, ``None`` for stand-alone binaries.
        group_item_title: the outcome name inside its event ("23°C", a candidate), else "".
        end_date_iso: end date, ISO-8601 (``2026-07-05T12:00:00Z``).
        liquidity: Gamma's liquidity figure.
        volume: Gamma's volume figure.
        tags: tag labels (the first is the category's).
        fee_rate: V2 taker-fee rate, micro-units (0.05 -> ``50_000``).
        activity: relative order-flow weight (quiet ~1, busy ~30).
        bracket: temperature bracket ``[low, high)`` in tenths of a degree Celsius (open ends are
            ``BRACKET_OPEN_LOW``/``BRACKET_OPEN_HIGH``); ``None`` for other markets.
        fair_price: the model's true YES probability, micro-units; books are seeded around it.
        category: the fee category (``"weather"``, ``"politics"``, ...).
        start_date_iso: listing date, ISO-8601.
        parent_event_id: Gamma id of the market's parent event; for a stand-alone binary its own
            single-market event (rendered in ``events[]``), else ``event_id``.
        description: resolution text.
        tier: order-flow tier, ``"busy"``, ``"normal"`` or ``"quiet"`` (quiet markets get thin
            books and little flow).
    """

    gamma_id: str
    condition_id: str
    question_id: str
    question: str
    slug: str
    yes_token: str
    no_token: str
    outcomes: tuple[str, str] = ("Yes", "No")
    tick_size: int = TICK_COARSE
    min_order_size: int = MIN_ORDER_SIZE
    neg_risk: bool = False
    neg_risk_market_id: str | None = None
    event_id: str | None = None
    group_item_title: str = ""
    end_date_iso: str = ""
    liquidity: Decimal = Decimal(0)
    volume: Decimal = Decimal(0)
    tags: tuple[str, ...] = ()
    fee_rate: int = 0
    activity: int = 1
    bracket: tuple[int, int] | None = None
    fair_price: int = ONE // 2
    category: str = "other"
    start_date_iso: str = ""
    parent_event_id: str = ""
    description: str = ""
    tier: Tier = "normal"


@attrs.frozen
class SimEvent:
    """A neg-risk event: exactly one of its markets resolves YES.

    Attributes:
        id: Gamma event id.
        slug: Gamma slug.
        ticker: Gamma ticker (same as the slug, as on the venue).
        title: the event title.
        kind: ``"temperature"`` or ``"election"``.
        neg_risk: always ``True`` for the sim's events.
        markets: the member markets, in outcome order (ascending brackets for temperature).
        tags: tag labels.
        forecast_mean_c_tenths: the hidden forecast mean (temperature only), tenths of °C.
        forecast_sd_c_tenths: the hidden forecast standard deviation (temperature only).
        neg_risk_market_id: the event's ``negRiskMarketID``.
        end_date_iso: end date, ISO-8601.
        start_date_iso: listing date, ISO-8601.
        description: resolution text.
        city: the city of a temperature event, else "".
    """

    id: str
    slug: str
    ticker: str
    title: str
    kind: Literal["temperature", "election"]
    neg_risk: bool
    markets: tuple[SimMarket, ...]
    tags: tuple[str, ...]
    forecast_mean_c_tenths: int | None = None
    forecast_sd_c_tenths: int | None = None
    neg_risk_market_id: str = ""
    end_date_iso: str = ""
    start_date_iso: str = ""
    description: str = ""
    city: str = ""


@attrs.frozen
class MarketState:
    """The live parts of a market for rendering (supplied by ``SimExchange.market_state``).

    Attributes:
        tick_size: the current tick, micro-units (``None``: the listing tick).
        best_bid: YES best bid, micro-units, ``None`` when empty or unknown.
        best_ask: YES best ask, micro-units, ``None`` when empty or unknown.
        last_trade_price: the last YES trade price, if any.
        closed: the market has resolved.
        winning_token: the winning token id once resolved.
    """

    tick_size: int | None = None
    best_bid: int | None = None
    best_ask: int | None = None
    last_trade_price: int | None = None
    closed: bool = False
    winning_token: str | None = None


@attrs.frozen(repr=False)
class Universe:
    """All markets (stand-alone and event members) and the neg-risk events, with lookups.

    Raises:
        ValueError: on construction, if a token, condition id or event id repeats.
    """

    markets: tuple[SimMarket, ...]
    events: tuple[SimEvent, ...]
    _by_token: dict[str, SimMarket] = attrs.field(init=False, repr=False, eq=False)
    _by_condition: dict[str, SimMarket] = attrs.field(init=False, repr=False, eq=False)
    _by_event: dict[str, SimEvent] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        by_token: dict[str, SimMarket] = {}
        by_condition: dict[str, SimMarket] = {}
        for market in self.markets:
            for token in (market.yes_token, market.no_token):
                if token in by_token:
                    raise ValueError(f"token id {token} appears twice")
                by_token[token] = market
            if market.condition_id in by_condition:
                raise ValueError(f"condition id {market.condition_id} appears twice")
            by_condition[market.condition_id] = market
        by_event: dict[str, SimEvent] = {}
        for event in self.events:
            if event.id in by_event:
                raise ValueError(f"event id {event.id} appears twice")
            by_event[event.id] = event
        object.__setattr__(self, "_by_token", by_token)
        object.__setattr__(self, "_by_condition", by_condition)
        object.__setattr__(self, "_by_event", by_event)

    def __repr__(self) -> str:
        return f"Universe({len(self.markets)} markets, {len(self.events)} events)"

    def market_for_token(self, token_id: str) -> SimMarket:
        """The market trading ``token_id``. Raises ``KeyError`` if unknown."""
        return self._by_token[token_id]

    def market(self, condition_id: str) -> SimMarket:
        """The market with this condition id. Raises ``KeyError`` if unknown."""
        return self._by_condition[condition_id]

    def event(self, event_id: str) -> SimEvent:
        """The neg-risk event with this id. Raises ``KeyError`` if unknown."""
        return self._by_event[event_id]

    def token_ids(self) -> list[str]:
        """Every token id, YES then NO, in market order."""
        tokens: list[str] = []
        for market in self.markets:
            tokens.append(market.yes_token)
            tokens.append(market.no_token)
        return tokens

    def is_yes(self, token_id: str) -> bool:
        """Whether ``token_id`` is its market's first ("Yes") token. ``KeyError`` if unknown."""
        return self._by_token[token_id].yes_token == token_id

    def complement_token(self, token_id: str) -> str:
        """The other token of ``token_id``'s market. ``KeyError`` if unknown."""
        market = self._by_token[token_id]
        return market.no_token if market.yes_token == token_id else market.yes_token

    def has_token(self, token_id: str) -> bool:
        """Whether ``token_id`` belongs to this universe."""
        return token_id in self._by_token


# --- generation --------------------------------------------------------------------------------


@attrs.define
class _Ids:
    """Id allocation shared by the generators (unique by construction, checked for tokens)."""

    rng: random.Random
    next_market: int
    next_event: int
    tokens: set[str] = attrs.field(factory=set)
    slugs: set[str] = attrs.field(factory=set)

    def market_id(self) -> str:
        self.next_market += 1 + (self.rng.random() < 0.2)
        return str(self.next_market)

    def event_id(self) -> str:
        self.next_event += 1 + (self.rng.random() < 0.3)
        return str(self.next_event)

    def token(self) -> str:
        while True:
            token = str(self.rng.getrandbits(256))
            if len(token) >= 70 and token not in self.tokens:
                self.tokens.add(token)
                return token

    def hex32(self) -> str:
        return f"0x{self.rng.getrandbits(256):064x}"

    def slug(self, text: str, market_id: str) -> str:
        base = _SLUG_STRIP.sub("-", text.lower()).strip("-")[:80].rstrip("-")
        slug = base if base not in self.slugs else f"{base}-{market_id[-3:]}"
        while slug in self.slugs:
            slug = f"{slug}-{self.rng.randrange(1000)}"
        self.slugs.add(slug)
        return slug


@attrs.frozen
class _Flow:
    activity: int
    tier: Tier


def _iso(ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day_text(ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=ms)
    return f"{_MONTHS[moment.month - 1]} {moment.day}"


def _flow(config: UniverseConfig, rng: random.Random) -> _Flow:
    draw = rng.random()
    if draw < config.busy_fraction:
        return _Flow(config.busy_activity, "busy")
    if draw < config.busy_fraction + config.quiet_fraction:
        return _Flow(config.quiet_activity, "quiet")
    return _Flow(config.normal_activity, "normal")


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    """A Gamma-style amount with up to 4 decimals, log-uniform in ``[low, high]`` dollars."""
    units = int(math.exp(rng.uniform(math.log(low), math.log(high))) * 10_000)
    whole, frac = divmod(units, 10_000)
    return Decimal(f"{whole}.{frac:04d}".rstrip("0").rstrip("."))


def _cumulative_split(cdf: Sequence[float]) -> list[int]:
    """Split ``ONE`` by a cumulative distribution: ``F_i = round(cdf_i x ONE)``, differences.

    ``cdf`` holds the interior boundaries (non-decreasing, within [0, 1]); the result has
    ``len(cdf) + 1`` non-negative parts summing to exactly ``ONE``.
    """
    bounds = [0, *(min(ONE, max(0, round(c * ONE))) for c in cdf), ONE]
    for i in range(1, len(bounds)):  # keep monotone against float noise
        bounds[i] = max(bounds[i], bounds[i - 1])
    return [bounds[i + 1] - bounds[i] for i in range(len(bounds) - 1)]


def _normal_cdf(x: float, mean: float, sd: float) -> float:
    return 0.5 * (1.0 + math.erf((x - mean) / (sd * math.sqrt(2.0))))


def bracket_fair_prices(brackets: Sequence[tuple[int, int]], mean: int, sd: int) -> list[int]:
    """Fair prices of contiguous temperature brackets under ``Normal(mean, sd)``, summing to ONE.

    Args:
        brackets: ``[low, high)`` bounds in tenths of a degree, ascending and contiguous; the
            first low and the last high are treated as open (-inf, +inf).
        mean: forecast mean, tenths of a degree.
        sd: forecast standard deviation, tenths of a degree (> 0).

    Returns:
        Micro-unit probabilities, one per bracket, summing to exactly ``ONE``.
    """
    if sd <= 0:
        raise ValueError(f"sd must be positive, got {sd}")
    cdf = [_normal_cdf(high, mean, sd) for _, high in brackets[:-1]]
    return _cumulative_split(cdf)


def _binary_question(category: str, rng: random.Random, end_ms: int) -> tuple[str, str]:
    """A question and its description for a stand-alone binary market."""
    day = _day_text(end_ms)
    if category == "crypto":
        coin, level = rng.choice(_COINS)
        value = level * rng.uniform(0.7, 1.4)
        digits = len(str(level)) - 2  # keep about two significant figures
        target = f"{round(value / 10**digits) * 10**digits:,}" if digits > 0 else f"{value:.1f}"
        question = f"Will {coin} reach ${target} by {day}?"
    elif category == "sports":
        question = f"Will the {rng.choice(_TEAMS)} win on {day}?"
    elif category == "politics":
        person = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
        question = f"Will {person} announce a 2028 presidential run by {day}?"
    elif category == "finance":
        question = f"Will the S&P 500 close above {rng.randrange(5500, 7500, 25):,} on {day}?"
    elif category == "tech":
        question = f"Will {rng.choice(_COMPANIES)} release {rng.choice(_PRODUCTS)} by {day}?"
    elif category == "economics":
        question = (
            f"Will US CPI inflation be above {rng.randrange(20, 40) / 10}% in {day.split()[0]}?"
        )
    elif category == "culture":
        gross = rng.randrange(40, 250, 10)
        question = f'Will "{rng.choice(_FILMS)}" gross over ${gross}m on its opening weekend?'
    elif category == "geopolitics":
        first, second = rng.sample(_COUNTRIES, 2)
        question = f"Will {first} and {second} sign a trade agreement by {day}?"
    else:
        question = f"Will event #{rng.randrange(10_000)} happen by {day}?"
    description = (
        f'This market will resolve to "Yes" if the condition in the title is met by {day} '
        '11:59 PM ET. Otherwise, this market will resolve to "No". This is a simulated market.'
    )
    return question, description


def _binary_fair(config: UniverseConfig, rng: random.Random) -> int:
    if rng.random() < config.extreme_fraction:
        if rng.random() < 0.5:
            return rng.randrange(3_000, 39_000)
        return rng.randrange(961_000, 997_000)
    return rng.randrange(40_000, 960_001)


def _tick(config: UniverseConfig, rng: random.Random) -> int:
    return TICK_FINE if rng.random() < config.fine_tick_fraction else TICK_COARSE


def _binary_market(config: UniverseConfig, rng: random.Random, ids: _Ids) -> SimMarket:
    category = rng.choice(config.binary_categories)
    start_ms = config.epoch_ms - rng.randrange(1, 120) * _DAY_MS
    end_ms = config.epoch_ms + rng.randrange(2, 180) * _DAY_MS + 16 * 3_600_000
    question, description = _binary_question(category, rng, end_ms)
    market_id = ids.market_id()
    flow = _flow(config, rng)
    scale = {"busy": 50, "normal": 5, "quiet": 1}[flow.tier]
    return SimMarket(
        gamma_id=market_id,
        condition_id=ids.hex32(),
        question_id=ids.hex32(),
        question=question,
        slug=ids.slug(question, market_id),
        yes_token=ids.token(),
        no_token=ids.token(),
        tick_size=_tick(config, rng),
        neg_risk=False,
        end_date_iso=_iso(end_ms),
        liquidity=_money(rng, 500 * scale, 20_000 * scale),
        volume=_money(rng, 1_000 * scale, 400_000 * scale),
        tags=(*_CATEGORY_TAGS[category], "All"),
        fee_rate=CATEGORY_FEE_RATES[category],
        activity=flow.activity,
        fair_price=_binary_fair(config, rng),
        category=category,
        start_date_iso=_iso(start_ms),
        parent_event_id=ids.event_id(),
        description=description,
        tier=flow.tier,
    )


def _event_markets(
    config: UniverseConfig,
    rng: random.Random,
    ids: _Ids,
    *,
    event_id: str,
    neg_risk_market_id: str,
    items: Sequence[tuple[str, str, tuple[int, int] | None, int]],
    tags: tuple[str, ...],
    category: str,
    tick: int,
    start_ms: int,
    end_ms: int,
    description: str,
) -> tuple[SimMarket, ...]:
    """Member markets of a neg-risk event; ``items`` are (title, question, bracket, fair)."""
    markets = []
    prefix = neg_risk_market_id[:-2]
    event_flow = _flow(config, rng)
    for index, (title, question, bracket, fair) in enumerate(items):
        market_id = ids.market_id()
        # Members share the event's flow tier, with the favourites busier than the long shots.
        activity = max(1, event_flow.activity * (1 + 3 * fair // ONE))
        markets.append(
            SimMarket(
                gamma_id=market_id,
                condition_id=ids.hex32(),
                question_id=f"{prefix}{index:02x}",
                question=question,
                slug=ids.slug(question, market_id),
                yes_token=ids.token(),
                no_token=ids.token(),
                tick_size=tick,
                neg_risk=True,
                neg_risk_market_id=neg_risk_market_id,
                event_id=event_id,
                group_item_title=title,
                end_date_iso=_iso(end_ms),
                liquidity=_money(rng, 1_000, 60_000),
                volume=_money(rng, 2_000, 900_000),
                tags=tags,
                fee_rate=CATEGORY_FEE_RATES[category],
                activity=activity,
                bracket=bracket,
                fair_price=fair,
                category=category,
                start_date_iso=_iso(start_ms),
                parent_event_id=event_id,
                description=description,
                tier=event_flow.tier,
            )
        )
    return tuple(markets)


def _temperature_event(config: UniverseConfig, rng: random.Random, ids: _Ids) -> SimEvent:
    city, low, high = rng.choice(_CITIES)
    mean = rng.randint(low * 10, high * 10)
    sd = rng.randint(8, 25)
    n = rng.randint(*config.temperature_brackets)
    center = round(mean / 10) + rng.randint(-1, 1)
    first = center - (n - 2) // 2  # lowest interior whole degree
    last = first + n - 3  # highest interior whole degree
    brackets: list[tuple[int, int]] = [(BRACKET_OPEN_LOW, 10 * first - 5)]
    titles = [f"{first - 1}°C or below"]
    for degree in range(first, last + 1):
        brackets.append((10 * degree - 5, 10 * degree + 5))
        titles.append(f"{degree}°C")
    brackets.append((10 * last + 5, BRACKET_OPEN_HIGH))
    titles.append(f"{last + 1}°C or higher")
    fairs = bracket_fair_prices(brackets, mean, sd)
    day_ms = config.epoch_ms + rng.randint(1, 3) * _DAY_MS
    day = _day_text(day_ms)
    event_id = ids.event_id()
    title = f"Highest temperature in {city} on {day}?"
    description = (
        f"This market will resolve to the temperature range that contains the highest "
        f"temperature recorded in {city} on {day}, in whole degrees Celsius. "
        "This is a simulated market."
    )
    nrm = ids.hex32()[:-2] + "00"
    items = [
        (
            label,
            f"Will the highest temperature in {city} be {label} on {day}?",
            bracket,
            fair,
        )
        for label, bracket, fair in zip(titles, brackets, fairs, strict=True)
    ]
    tags = (*_CATEGORY_TAGS["weather"], city, "All")
    markets = _event_markets(
        config,
        rng,
        ids,
        event_id=event_id,
        neg_risk_market_id=nrm,
        items=items,
        tags=tags,
        category="weather",
        tick=_tick(config, rng),
        start_ms=day_ms - 3 * _DAY_MS,
        end_ms=day_ms + 12 * 3_600_000,
        description=description,
    )
    slug = ids.slug(title, event_id)
    return SimEvent(
        id=event_id,
        slug=slug,
        ticker=slug,
        title=title,
        kind="temperature",
        neg_risk=True,
        markets=markets,
        tags=tags,
        forecast_mean_c_tenths=mean,
        forecast_sd_c_tenths=sd,
        neg_risk_market_id=nrm,
        end_date_iso=_iso(day_ms + 12 * 3_600_000),
        start_date_iso=_iso(day_ms - 3 * _DAY_MS),
        description=description,
        city=city,
    )


def _election_event(config: UniverseConfig, rng: random.Random, ids: _Ids) -> SimEvent:
    country = rng.choice(_COUNTRIES)
    n = rng.randint(*config.election_candidates)
    names: list[str] = []
    while len(names) < n:
        name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
        if name not in names:
            names.append(name)
    weights = [rng.gammavariate(0.8, 1.0) + 0.02 for _ in names]
    total = sum(weights)
    running = 0.0
    cdf = []
    for weight in weights[:-1]:
        running += weight
        cdf.append(running / total)
    fairs = _cumulative_split(cdf)
    year = 2027 + rng.randrange(2)
    event_id = ids.event_id()
    title = f"{country} Presidential Election {year}"
    description = (
        f"This market will resolve to the candidate who wins the {year} presidential election "
        f"in {country}. This is a simulated market."
    )
    end_ms = config.epoch_ms + rng.randrange(120, 700) * _DAY_MS
    nrm = ids.hex32()[:-2] + "00"
    items = [
        (name, f"Will {name} win the {year} {country} presidential election?", None, fair)
        for name, fair in zip(names, fairs, strict=True)
    ]
    tags = ("Politics", "Elections", "World Elections", "All")
    markets = _event_markets(
        config,
        rng,
        ids,
        event_id=event_id,
        neg_risk_market_id=nrm,
        items=items,
        tags=tags,
        category="politics",
        tick=_tick(config, rng),
        start_ms=config.epoch_ms - rng.randrange(10, 200) * _DAY_MS,
        end_ms=end_ms,
        description=description,
    )
    slug = ids.slug(title, event_id)
    return SimEvent(
        id=event_id,
        slug=slug,
        ticker=slug,
        title=title,
        kind="election",
        neg_risk=True,
        markets=markets,
        tags=tags,
        neg_risk_market_id=nrm,
        end_date_iso=_iso(end_ms),
        start_date_iso=markets[0].start_date_iso,
        description=description,
    )


def generate_universe(config: UniverseConfig, rng: random.Random) -> Universe:
    """Generate a universe; the same config and seed always give the same universe.

    Args:
        config: what to generate.
        rng: the only source of randomness (seed it for reproducibility).

    Returns:
        The universe: stand-alone binaries first, then each event's markets in event order.
    """
    ids = _Ids(rng, config.first_market_id, config.first_event_id)
    binaries = [_binary_market(config, rng, ids) for _ in range(config.n_binary)]
    events: list[SimEvent] = []
    for _ in range(config.n_temperature_events):
        events.append(_temperature_event(config, rng, ids))
    for _ in range(config.n_election_events):
        events.append(_election_event(config, rng, ids))
    members = [market for event in events for market in event.markets]
    return Universe(markets=(*binaries, *members), events=tuple(events))


# --- rendering ---------------------------------------------------------------------------------


def _num(units: int) -> float | int:
    """Micro-units as a JSON number the way Gamma writes them (``5``, ``0.01``, ``0.505``)."""
    whole, frac = divmod(units, ONE)
    return whole if not frac else float(to_decimal(units))


def _encoded(items: Sequence[str]) -> str:
    """A JSON array of strings encoded in a string, spaced like Gamma: ``["Yes", "No"]``."""
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def _derived_hex(seed: str) -> str:
    """A stable ``0x`` + 64 hex id derived from ``seed`` (for ids the model does not track)."""
    return "0x" + hashlib.sha256(seed.encode()).hexdigest()


def _tag_id(label: str) -> str:
    known = _TAG_IDS.get(label)
    return known if known is not None else str(100_000 + zlib.crc32(label.encode()) % 900_000)


def tag_slug(label: str) -> str:
    """A tag label's slug (``"World Elections"`` -> ``"world-elections"``)."""
    return _SLUG_STRIP.sub("-", label.lower()).strip("-")


def _tag_json(label: str) -> dict[str, Any]:
    return {
        "id": _tag_id(label),
        "label": label,
        "slug": tag_slug(label),
        "forceShow": False,
        "createdAt": "2024-01-04T12:00:00Z",
        "updatedAt": "2026-03-09T22:20:41.744191Z",
        "requiresTranslation": False,
    }


def _yes_price(market: SimMarket, state: MarketState) -> int:
    """The cached YES price Gamma shows: the mid when both sides exist, else the fair price."""
    bid, ask = state.best_bid, state.best_ask
    if bid is not None and ask is not None and bid < ask:
        return (bid + ask) // 2
    if state.last_trade_price is not None:
        return state.last_trade_price
    return market.fair_price


def _top(market: SimMarket, state: MarketState) -> tuple[int, int]:
    """(best bid, best ask) for Gamma's cached fields, from the state or around the fair price."""
    tick = state.tick_size or market.tick_size
    bid = state.best_bid
    ask = state.best_ask
    if bid is None:
        bid = max(0, (market.fair_price - 1) // tick * tick)
    if ask is None:
        ask = min(ONE, -(-(market.fair_price + 1) // tick) * tick)
    return bid, ask


def _outcome_prices(market: SimMarket, state: MarketState) -> tuple[int, int]:
    """(YES, NO) cached prices, micro-units: ``(ONE, 0)``/``(0, ONE)`` once resolved."""
    if state.closed and state.winning_token is not None:
        return (ONE, 0) if state.winning_token == market.yes_token else (0, ONE)
    yes = _yes_price(market, state)
    return yes, ONE - yes


def _event_ref(
    event_id: str,
    *,
    slug: str,
    title: str,
    description: str,
    start_date: str,
    end_date: str,
    liquidity: Decimal,
    volume: Decimal,
    neg_risk_market_id: str | None,
    closed: bool,
) -> dict[str, Any]:
    """An event's own fields (without ``markets``/``tags``), as in Gamma's event object."""
    ref: dict[str, Any] = {
        "id": event_id,
        "ticker": slug,
        "slug": slug,
        "title": title,
        "description": description,
        "resolutionSource": "",
        "startDate": start_date,
        "creationDate": start_date,
        "endDate": end_date,
        "image": f"{_IMAGE_BASE}{slug}.png",
        "icon": f"{_IMAGE_BASE}{slug}.png",
        "active": True,
        "closed": closed,
        "archived": False,
        "new": False,
        "featured": False,
        "restricted": True,
        "liquidity": float(liquidity),
        "volume": float(volume),
        "openInterest": 0,
        "createdAt": start_date,
        "updatedAt": start_date,
        "competitive": 0.9,
        "volume24hr": float(volume) / 20,
        "volume1wk": float(volume) / 5,
        "volume1mo": float(volume) / 2,
        "volume1yr": float(volume),
        "enableOrderBook": True,
        "liquidityClob": float(liquidity),
        "negRisk": neg_risk_market_id is not None,
    }
    if neg_risk_market_id is not None:
        ref["negRiskMarketID"] = neg_risk_market_id
    ref.update(
        {
            "commentCount": 0,
            "cyom": False,
            "showAllOutcomes": True,
            "showMarketImages": True,
            # Plain neg-risk: every outcome is named, no placeholders and no shifting "Other".
            "enableNegRisk": False,
            "automaticallyActive": True,
            "negRiskAugmented": False,
            "pendingDeployment": False,
            "deploying": False,
            "requiresTranslation": False,
        }
    )
    return ref


def _market_event_ref(market: SimMarket, universe: Universe, closed: bool) -> dict[str, Any] | None:
    if market.event_id is not None:
        try:
            event = universe.event(market.event_id)
        except KeyError:
            return None
        return _event_ref(
            event.id,
            slug=event.slug,
            title=event.title,
            description=event.description,
            start_date=event.start_date_iso,
            end_date=event.end_date_iso,
            liquidity=sum((m.liquidity for m in event.markets), Decimal(0)),
            volume=sum((m.volume for m in event.markets), Decimal(0)),
            neg_risk_market_id=event.neg_risk_market_id,
            closed=closed,
        )
    if not market.parent_event_id:
        return None
    return _event_ref(
        market.parent_event_id,
        slug=market.slug,
        title=market.question,
        description=market.description,
        start_date=market.start_date_iso,
        end_date=market.end_date_iso,
        liquidity=market.liquidity,
        volume=market.volume,
        neg_risk_market_id=None,
        closed=closed,
    )


def _gamma_market(
    market: SimMarket, universe: Universe, state: MarketState, *, with_events: bool
) -> dict[str, Any]:
    tick = state.tick_size or market.tick_size
    closed = state.closed
    bid, ask = _top(market, state)
    last = (
        state.last_trade_price if state.last_trade_price is not None else _yes_price(market, state)
    )
    volume = float(market.volume)
    liquidity = float(market.liquidity)
    index = int(market.question_id[-2:], 16) if market.neg_risk else 0
    obj: dict[str, Any] = {
        "id": market.gamma_id,
        "question": market.question,
        "conditionId": market.condition_id,
        "slug": market.slug,
        "resolutionSource": "",
        "endDate": market.end_date_iso,
        "liquidity": str(market.liquidity),
        "startDate": market.start_date_iso,
        "image": f"{_IMAGE_BASE}{market.slug}.png",
        "icon": f"{_IMAGE_BASE}{market.slug}.png",
        "description": market.description,
        "outcomes": _encoded(market.outcomes),
        "outcomePrices": _encoded([format_units(p) for p in _outcome_prices(market, state)]),
        "volume": str(market.volume),
        "active": True,
        "closed": closed,
        "marketMakerAddress": "",
        "createdAt": market.start_date_iso,
        "updatedAt": market.start_date_iso,
        "new": False,
        "featured": False,
        "archived": False,
        "restricted": True,
        "groupItemTitle": market.group_item_title,
        "groupItemThreshold": str(index),
        "questionID": market.question_id,
        "enableOrderBook": True,
        "orderPriceMinTickSize": _num(tick),
        "orderMinSize": _num(market.min_order_size),
        "volumeNum": volume,
        "liquidityNum": liquidity,
        "endDateIso": market.end_date_iso[:10],
        "startDateIso": market.start_date_iso[:10],
        "hasReviewedDates": True,
        "volume24hr": volume / 20,
        "volume1wk": volume / 5,
        "volume1mo": volume / 2,
        "volume1yr": volume,
        "clobTokenIds": _encoded((market.yes_token, market.no_token)),
        "volume24hrClob": volume / 20,
        "volume1wkClob": volume / 5,
        "volume1moClob": volume / 2,
        "volume1yrClob": volume,
        "volumeClob": volume,
        "liquidityClob": liquidity,
        "makerBaseFee": 1000 if market.fee_rate else 0,
        "takerBaseFee": 1000 if market.fee_rate else 0,
        "acceptingOrders": not closed,
        "negRisk": market.neg_risk,
    }
    if market.neg_risk:
        obj["negRiskMarketID"] = market.neg_risk_market_id
        obj["negRiskRequestID"] = _derived_hex(market.condition_id)
    if with_events:
        ref = _market_event_ref(market, universe, closed)
        if ref is not None:
            obj["events"] = [ref]
    obj.update(
        {
            "ready": False,
            "funded": False,
            "acceptingOrdersTimestamp": market.start_date_iso,
            "cyom": False,
            "competitive": 0.9,
            "pagerDutyNotificationEnabled": False,
            "approved": True,
            "rewardsMinSize": 50,
            "rewardsMaxSpread": 4.5,
            "spread": _num(max(0, ask - bid)),
            "lastTradePrice": _num(last),
            "bestBid": _num(bid),
            "bestAsk": _num(ask),
            "automaticallyActive": True,
            "clearBookOnStart": False,
            "showGmpSeries": False,
            "showGmpOutcome": False,
            "manualActivation": False,
            "negRiskOther": False,
            "umaResolutionStatuses": '["resolved"]' if closed else "[]",
            "pendingDeployment": False,
            "deploying": False,
            "rfqEnabled": False,
            "holdingRewardsEnabled": False,
            "feesEnabled": market.fee_rate > 0,
            "requiresTranslation": False,
        }
    )
    if closed:  # two more keys, placed where the real closed samples have them
        closed_time = market.end_date_iso.replace("T", " ").replace("Z", "+00")
        placed: dict[str, Any] = {}
        for key, value in obj.items():
            placed[key] = value
            if key == "updatedAt":
                placed["closedTime"] = closed_time
            elif key == "orderMinSize":
                placed["umaResolutionStatus"] = "resolved"
        obj = placed
    if market.fee_rate:
        obj["feeSchedule"] = {
            "exponent": 1,
            "rate": _num(market.fee_rate),
            "rebateRate": 0.2 if market.category == "crypto" else 0.25,
            "takerOnly": True,
        }
        obj["feeType"] = f"{market.category}_fees_v2"
    else:
        obj["feeType"] = None
    return obj


def gamma_market_json(
    market: SimMarket, universe: Universe, *, state: MarketState | None = None
) -> dict[str, Any]:
    """The Gamma market object (``GET /markets``, ``/markets/{id}``) of ``market``.

    Args:
        market: the market.
        universe: its universe (for the parent event in ``events[]``).
        state: live state from the exchange (tick, top of book, resolution); without it the
            market renders as freshly listed around its fair price.

    Returns:
        A dict shaped like ``tests/fixtures/nautilus_crates/gamma_market.json``.
    """
    return _gamma_market(market, universe, state or MarketState(), with_events=True)


def gamma_event_json(
    event: SimEvent,
    universe: Universe,
    *,
    state_of: Callable[[str], MarketState] | None = None,
) -> dict[str, Any]:
    """The Gamma event object (``GET /events``, ``/events/{id}``) with its full markets.

    Args:
        event: the event.
        universe: its universe.
        state_of: condition id -> live ``MarketState`` (e.g. ``SimExchange.market_state``).

    Returns:
        A dict shaped like ``tests/fixtures/nautilus_crates/gamma_event.json``: ``negRisk`` true
        with ``negRiskMarketID``, ``enableNegRisk``/``negRiskAugmented`` false (every outcome is
        named), nested ``markets[]`` (without their own ``events[]``, as on the venue) and
        ``tags[]`` objects. The event is ``closed`` once all its markets are.
    """
    states = [state_of(m.condition_id) if state_of else MarketState() for m in event.markets]
    ref = _event_ref(
        event.id,
        slug=event.slug,
        title=event.title,
        description=event.description,
        start_date=event.start_date_iso,
        end_date=event.end_date_iso,
        liquidity=sum((m.liquidity for m in event.markets), Decimal(0)),
        volume=sum((m.volume for m in event.markets), Decimal(0)),
        neg_risk_market_id=event.neg_risk_market_id,
        closed=bool(states) and all(s.closed for s in states),
    )
    markets = [
        _gamma_market(m, universe, s, with_events=False)
        for m, s in zip(event.markets, states, strict=True)
    ]
    tags = [_tag_json(label) for label in event.tags if label != "All"]
    obj: dict[str, Any] = {}
    for key, value in ref.items():  # keys in the real sample's order
        obj[key] = value
        if key == "openInterest":
            obj["sortBy"] = "price"
        elif key == "commentCount":
            obj["markets"] = markets
            obj["tags"] = tags
    return obj


def clob_market_json(market: SimMarket, *, state: MarketState | None = None) -> dict[str, Any]:
    """The CLOB market object (``GET /markets/{condition_id}`` and ``/markets`` pages).

    Returns:
        A dict shaped like ``tests/fixtures/nautilus_py_http/market.json``: numbers for
        ``minimum_tick_size``/``minimum_order_size`` and token prices, ``tokens[].winner`` set
        once resolved.
    """
    state = state or MarketState()
    tick = state.tick_size or market.tick_size
    yes_price, no_price = _outcome_prices(market, state)
    winner = state.winning_token if state.closed else None
    return {
        "enable_order_book": True,
        "active": True,
        "closed": state.closed,
        "archived": False,
        "accepting_orders": not state.closed,
        "accepting_order_timestamp": market.start_date_iso,
        "minimum_order_size": _num(market.min_order_size),
        "minimum_tick_size": _num(tick),
        "condition_id": market.condition_id,
        "question_id": market.question_id,
        "question": market.question,
        "description": market.description,
        "market_slug": market.slug,
        "end_date_iso": market.end_date_iso,
        "game_start_time": None,
        "seconds_delay": 0,
        "fpmm": "",
        "maker_base_fee": 1000 if market.fee_rate else 0,
        "taker_base_fee": 1000 if market.fee_rate else 0,
        "notifications_enabled": False,
        "neg_risk": market.neg_risk,
        "neg_risk_market_id": market.neg_risk_market_id or "",
        "neg_risk_request_id": _derived_hex(market.condition_id) if market.neg_risk else "",
        "icon": f"{_IMAGE_BASE}{market.slug}.png",
        "image": f"{_IMAGE_BASE}{market.slug}.png",
        "rewards": {
            "rates": [
                {
                    "asset_address": "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174",
                    "rewards_daily_rate": 30,
                }
            ],
            "min_size": 50,
            "max_spread": 4.5,
        },
        "is_50_50_outcome": False,
        "tokens": [
            {
                "token_id": market.yes_token,
                "outcome": market.outcomes[0],
                "price": _num(yes_price),
                "winner": winner == market.yes_token,
            },
            {
                "token_id": market.no_token,
                "outcome": market.outcomes[1],
                "price": _num(no_price),
                "winner": winner == market.no_token,
            },
        ],
        "tags": list(market.tags),
    }
