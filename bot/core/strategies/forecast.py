"""Forecast-driven position-taking on temperature ladders: bracket parsing, probabilities, strategy.

Polymarket lists neg-risk "Highest temperature in <city> on <day>?" events, one market per
temperature bracket ("43°F or below", "44-45°F", ..., "56°F or higher", or whole °C ones). Exactly
one bracket wins, so a forecast of the day's maximum, taken as ``Normal(mean, sd)``, gives every
bracket a probability. Where the book sells a bracket's YES (or NO) for clearly less than that
probability after the taker fee, ``ForecastTaker`` buys it, sized by a fraction of Kelly.

The pieces, all pure (the shell, ``bot.shell.forecast``, fetches the forecasts and delivers them
as ``ForecastUpdate`` events; nothing here reads a clock or does I/O):

* ``parse_bracket``: a bracket label to a half-open interval in tenths of °C (open ends ``None``);
* ``parse_city_day``: an event title (or a market question) to its city and day;
* ``Forecast`` / ``ForecastUpdate``: the forecast value and the event carrying it;
* ``bracket_probabilities``: the normal distribution's mass of each bracket, normalised;
* ``temperature_ladder``: an event's brackets, checked to cover the whole line exactly once;
* ``ForecastTaker``: the strategy.

Whole degrees. The venue resolves on the recorded maximum in whole degrees of the label's unit,
so a whole-degree bracket "18°C" means a true maximum in ``[17.5, 18.5)`` and "44-45°F" means
``[43.5, 45.5)`` °F. Half-open intervals make adjacent brackets share their edge exactly.

°F conversion. Bracket edges are kept as integer tenths of °C. A °C edge (``X ± 0.5``) is exact in
tenths. A °F edge ``E`` is ``(E - 32) x 5/9`` °C, rounded to the *nearest* tenth (for a half-degree
°F edge the exact value in tenths is ``25 x (2E - 64) / 9``, never exactly half-way, so the rounding
has no ties). The error is at most 0.05 °C, negligible against a forecast error of 1-2 °C, and
since both neighbours of an edge convert the same number, a °F ladder stays contiguous.

Money stays exact: probabilities are floats (statistics), but every comparison with a price and
every size is done in ``Fraction``/integer micro-units, and sizes round *down* to the venue's
0.01-share lot.
"""

from __future__ import annotations

import itertools
import math
import re
from datetime import date
from fractions import Fraction
from typing import TYPE_CHECKING, Final

import attrs

from bot.core.money import ONE, Side, format_units, from_decimal, notional_units
from bot.core.trading import Decision, OrderType, Place, Strategy
from bot.core.wire.market_events import MarketResolved

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence
    from decimal import Decimal

    from bot.config import ForecastTakerConfig
    from bot.core.trading import Action, Context
    from bot.core.universe import Event, Market, Universe

__all__ = [
    "FORECAST_MAX_AGE_REFRESHES",
    "LOT",
    "MIN_NOTIONAL",
    "Bracket",
    "CityDay",
    "Forecast",
    "ForecastTaker",
    "ForecastUpdate",
    "Ladder",
    "Rung",
    "bracket_label",
    "bracket_probabilities",
    "parse_bracket",
    "parse_city_day",
    "temperature_ladder",
]

LOT: Final = 10_000
"""The venue's size precision: 0.01 share, in micro-units (PROTOCOL.md 7.2)."""

MIN_NOTIONAL: Final = ONE
"""Marketable orders must be worth at least $1 (PROTOCOL.md 7.2), micro-units of pUSD."""

FORECAST_MAX_AGE_REFRESHES: Final = 3
"""A forecast older than this many refresh periods is not traded on: the provider has failed
for that long, and the weather (and the market's view of it) moves on without us."""

_P_SCALE: Final = 10**12
"""Probabilities enter exact arithmetic on a 1e-12 grid (a statistic: the rounding is noise)."""


# --------------------------------------------------------------------------------------------
# Brackets


@attrs.frozen
class Bracket:
    """A temperature bracket: the half-open interval ``[low, high)`` in tenths of a degree Celsius.

    Attributes:
        low: inclusive lower edge, tenths of °C; ``None`` for an open lower end ("or below").
        high: exclusive upper edge, tenths of °C; ``None`` for an open upper end ("or higher").
        label: the text it was parsed from (not part of equality).
    """

    low: int | None
    high: int | None
    label: str = attrs.field(default="", eq=False)

    def __attrs_post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"bracket {self.label!r}: empty interval [{self.low}, {self.high})")

    def contains(self, tenths: int) -> bool:
        """Whether a maximum of ``tenths`` (tenths of °C) falls in this bracket."""
        return (self.low is None or tenths >= self.low) and (
            self.high is None or tenths < self.high
        )


_NORMALISE: Final = str.maketrans(
    {
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
        "\u2012": "-",  # figure dash
        "\u2212": "-",  # minus sign
        "\u00ba": "°",  # masculine ordinal, often typed for a degree sign
        "\u02da": "°",  # ring above
        "\u00a0": " ",  # no-break space
    }
)
# A unit letter after a degree sign ("18°C", "18 ° c") or right after a number ("18C", "18 F").
_UNIT_RE: Final = re.compile(r"(?:°\s*|(?<=\d)\s*)([cf])(?![a-z])")
_N: Final = r"(-?\d+)"
_SHAPES: Final = (
    ("below", re.compile(rf"{_N}\s*(?:or|and)\s*(?:below|lower|less|under)")),
    ("above", re.compile(rf"{_N}\s*(?:(?:or|and)\s*(?:above|higher|more|over)|\+)")),
    ("le", re.compile(rf"(?:≤|<=)\s*{_N}")),
    ("lt", re.compile(rf"<\s*{_N}")),
    ("ge", re.compile(rf"(?:≥|>=)\s*{_N}")),
    ("gt", re.compile(rf">\s*{_N}")),
    ("range", re.compile(rf"{_N}\s*(?:-|to)\s*{_N}")),
    ("one", re.compile(_N)),
)
_EXPECTED: Final = (
    'expected e.g. "18°C", "17°C or below", "27°C or higher", "44-45°F", "≤43°F" or "≥56°F"'
)


def _edge_tenths(edge2: int, unit: str) -> int:
    """Tenths of °C of the edge ``edge2 / 2`` degrees in ``unit`` (module docstring)."""
    if unit == "c":
        return 5 * edge2
    exact = Fraction(25 * (edge2 - 64), 9)  # ((edge2 / 2) - 32) * 5 / 9 * 10
    return math.floor(exact + Fraction(1, 2))


def parse_bracket(label: str) -> Bracket:
    """Parse a temperature bracket label into a ``Bracket``.

    Accepts both units and every shape the venue uses: "18°C" (one whole degree), "44-45°F" (an
    inclusive range of whole degrees, also with "to" or an en dash), "17°C or below" / "or lower",
    "27°C or higher" / "or above" / "27°C+", and the "≤X"/"<X"/"≥X"/">X" variants. Whole degrees
    are widened by half a degree each side (module docstring), °F is converted to tenths of °C.

    Raises:
        ValueError: the label is not a temperature bracket (the message quotes it).
    """
    text = " ".join(label.translate(_NORMALISE).lower().split())
    units = set(_UNIT_RE.findall(text))
    if len(units) != 1:
        problem = "no unit (°C or °F)" if not units else "both °C and °F"
        raise ValueError(f"cannot parse temperature bracket {label!r}: {problem}; {_EXPECTED}")
    (unit,) = units
    body = _UNIT_RE.sub("", text).strip()
    for shape, pattern in _SHAPES:
        match = pattern.fullmatch(body)
        if match is None:
            continue
        x = int(match.group(1))
        low2: int | None
        high2: int | None
        if shape == "range":
            y = int(match.group(2))
            if y < x:
                raise ValueError(
                    f"cannot parse temperature bracket {label!r}: range {x} to {y} is reversed"
                )
            low2, high2 = 2 * x - 1, 2 * y + 1
        else:
            low2, high2 = {
                "below": (None, 2 * x + 1),
                "le": (None, 2 * x + 1),
                "lt": (None, 2 * x - 1),
                "above": (2 * x - 1, None),
                "ge": (2 * x - 1, None),
                "gt": (2 * x + 1, None),
                "one": (2 * x - 1, 2 * x + 1),
            }[shape]
        return Bracket(
            None if low2 is None else _edge_tenths(low2, unit),
            None if high2 is None else _edge_tenths(high2, unit),
            label,
        )
    raise ValueError(f"cannot parse temperature bracket {label!r}; {_EXPECTED}")


# --------------------------------------------------------------------------------------------
# City and day


_MONTHS: Final = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_TITLE_RE: Final = re.compile(
    r"highest\s+temperature\s+in\s+(?P<city>.+?)\s+(?:be\s+(?P<label>.+?)\s+)?on\s+"
    r"(?P<month>[a-z]+)\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(?P<year>\d{4}))?\s*\??\s*$",
    re.IGNORECASE,
)


@attrs.frozen
class CityDay:
    """Where and on which day a temperature event is decided.

    Attributes:
        city: as the title spells it ("New York City").
        month: 1-12.
        day: day of the month.
        year: when the title names it; usually it does not (see ``date_near``).
    """

    city: str
    month: int
    day: int
    year: int | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        """What two sources must agree on to mean the same event: the city case- and
        space-insensitively, the month and the day (titles rarely carry the year)."""
        return (" ".join(self.city.casefold().split()), self.month, self.day)

    def date_near(self, near: date) -> date:
        """The calendar date meant: the title's year if it has one, else the occurrence of
        month/day closest to ``near`` (the event's end date, or today), so "January 2" seen on
        December 30 is next year's.

        Raises:
            ValueError: no year makes this month/day a real date.
        """
        years = (self.year,) if self.year is not None else (near.year - 1, near.year, near.year + 1)
        candidates: list[date] = []
        for year in years:
            try:
                candidates.append(date(year, self.month, self.day))
            except ValueError:
                continue
        if not candidates:
            raise ValueError(f"{self.city}: {self.month}/{self.day} is not a date")
        return min(candidates, key=lambda d: abs((d - near).days))


def parse_city_day(title: str) -> CityDay:
    """The city and day of "Highest temperature in <city> on <Month> <day>?".

    Also reads a member market's question ("Will the highest temperature in New York City be
    44-45°F on November 25?"); month names may be abbreviated ("Nov 25"), a year may follow.

    Raises:
        ValueError: the title is not a temperature event's (the message quotes it).
    """
    match = _TITLE_RE.search(title.translate(_NORMALISE))
    month = _MONTHS.get(match.group("month").lower()) if match is not None else None
    if match is None or month is None:
        raise ValueError(
            f'cannot parse a city and day from {title!r}: expected "Highest temperature in '
            '<city> on <Month> <day>?"'
        )
    day = int(match.group("day"))
    if not 1 <= day <= 31:
        raise ValueError(f"cannot parse a city and day from {title!r}: day {day} out of range")
    year = match.group("year")
    return CityDay(match.group("city").strip(), month, day, int(year) if year else None)


def bracket_label(market: Market) -> str:
    """A member market's bracket text: its group title, else the part of its question between
    "be" and "on <day>" ("Will the highest temperature in NYC be 44-45°F on November 25?")."""
    if market.group_item_title:
        return market.group_item_title
    match = _TITLE_RE.search(market.question.translate(_NORMALISE))
    if match is not None and match.group("label"):
        return match.group("label")
    return market.question


# --------------------------------------------------------------------------------------------
# Forecasts and probabilities


def _real(value: float | Fraction | Decimal) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


@attrs.frozen(kw_only=True)
class Forecast:
    """A forecast of one day's maximum temperature, as ``Normal(mean_c, sd_c)``.

    It names its event by Gamma event id when the provider knows it, else (or also) by city and
    day, which is what a weather service answers for.

    Attributes:
        mean_c: expected maximum, °C.
        sd_c: standard deviation of the forecast error, °C (> 0).
        source: who made it ("open_meteo", "sim").
        issued_at: monotonic seconds (the runtime's clock, like ``Context.now``) when fetched.
        event_id: the event it is for, when known.
        city_day: the city and day it is for, when known.
    """

    mean_c: float = attrs.field(converter=_real)
    sd_c: float = attrs.field(converter=_real)
    source: str
    issued_at: float
    event_id: str | None = None
    city_day: CityDay | None = None

    def __attrs_post_init__(self) -> None:
        if self.sd_c <= 0:
            raise ValueError(f"forecast sd_c must be > 0, got {self.sd_c}")
        if self.event_id is None and self.city_day is None:
            raise ValueError("a forecast needs an event_id or a city_day to say what it is for")


@attrs.frozen
class ForecastUpdate:
    """A new forecast, delivered to the strategy by the shell through ``on_event``."""

    forecast: Forecast


def _cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _mass(bracket: Bracket, mean_c: float, sd_c: float) -> float:
    lo = -math.inf if bracket.low is None else (bracket.low / 10 - mean_c) / sd_c
    hi = math.inf if bracket.high is None else (bracket.high / 10 - mean_c) / sd_c
    # Difference of the tail the bracket lies in: erfc keeps its precision far out, 1 - cdf not.
    mass = _sf(lo) - _sf(hi) if lo >= 0 else _cdf(hi) - _cdf(lo)
    return max(0.0, mass)


def bracket_probabilities(brackets: Sequence[Bracket], mean_c: float, sd_c: float) -> list[float]:
    """Each bracket's probability under ``Normal(mean_c, sd_c)`` (°C), normalised to sum to 1.

    Normalising assumes the brackets are the whole ladder (``temperature_ladder`` checks it); for
    a complete ladder it only removes float noise.

    Raises:
        ValueError: ``sd_c`` is not > 0, there are no brackets, or they carry no mass at all.
    """
    if not (sd_c > 0 and math.isfinite(sd_c)) or not math.isfinite(mean_c):
        raise ValueError(f"need a finite mean and sd > 0, got mean {mean_c}, sd {sd_c}")
    if not brackets:
        raise ValueError("no brackets")
    masses = [_mass(b, mean_c, sd_c) for b in brackets]
    total = math.fsum(masses)
    if total <= 0:
        labels = ", ".join(b.label or f"[{b.low}, {b.high})" for b in brackets)
        raise ValueError(f"brackets {labels} carry no probability under N({mean_c}, {sd_c})")
    return [m / total for m in masses]


# --------------------------------------------------------------------------------------------
# Ladders


@attrs.frozen
class Rung:
    """One bracket of a ladder and the market that pays if it wins."""

    market: Market
    bracket: Bracket


@attrs.frozen
class Ladder:
    """A temperature event's brackets, ascending, covering the whole line exactly once."""

    event_id: str
    title: str
    city_day: CityDay
    rungs: tuple[Rung, ...]

    @property
    def brackets(self) -> tuple[Bracket, ...]:
        return tuple(rung.bracket for rung in self.rungs)


def temperature_ladder(event: Event) -> Ladder:
    """The ladder of a temperature event.

    Normalised probabilities are only right when the brackets partition the line, so this checks
    it: the lowest bracket is open below, the highest open above, each high edge is the next
    low edge, and the event is complete (no "Other", no untradable member).

    Raises:
        ValueError: the event is not a complete temperature ladder; the message names the event
            and the first problem (an unparsable label, a gap, an overlap).
    """
    city_day = parse_city_day(event.title)
    where = f"event {event.id} ({event.title!r})"
    if not event.complete:
        raise ValueError(f"{where} is incomplete: {event.incomplete_reason}")
    if len(event.markets) < 2:
        raise ValueError(f"{where} has {len(event.markets)} markets, a ladder needs at least 2")
    rungs = []
    for market in event.markets:
        try:
            rungs.append(Rung(market, parse_bracket(bracket_label(market))))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    rungs.sort(key=lambda r: -math.inf if r.bracket.low is None else r.bracket.low)
    first, last = rungs[0].bracket, rungs[-1].bracket
    if first.low is not None:
        raise ValueError(f"{where}: lowest bracket {first.label!r} is not open below")
    if last.high is not None:
        raise ValueError(f"{where}: highest bracket {last.label!r} is not open above")
    for below, above in itertools.pairwise(rungs):
        high, low = below.bracket.high, above.bracket.low
        if high != low:
            gap = "gap" if high is not None and low is not None and high < low else "overlap"
            raise ValueError(
                f"{where}: {gap} between brackets {below.bracket.label!r} and "
                f"{above.bracket.label!r}"
            )
    return Ladder(event.id, event.title, city_day, tuple(rungs))


# --------------------------------------------------------------------------------------------
# The strategy


@attrs.frozen
class _Plan:
    """What one look at one token concluded."""

    action: str
    """``buy``, or why not (``cooldown``, ``position_cap``, ``below_min_size``, ...)."""
    edge: Fraction
    size: int = 0
    limit: int = 0


class ForecastTaker(Strategy):
    """Buys temperature brackets (YES or NO) the forecast prices above the market.

    For each bracket of each temperature ladder with a forecast, on every book or forecast
    update: with ``p`` the bracket's probability, YES is worth buying at the best ask ``a`` when
    ``p - a - fee(a) >= min_edge``, and NO when ``(1 - p) - a_no - fee(a_no) >= min_edge`` (the
    fee is the V2 taker fee per share, ``rate x a x (1 - a)``, unfloored: an upper bound).

    Size. Full Kelly for a contract costing ``c`` per share (price plus fee) that pays 1 with
    probability ``p`` is ``f* = (p - c) / (1 - c)``; the stake is ``kelly_fraction x f* x
    bankroll`` and the shares ``stake / c``. The ask levels are walked best first while they keep
    the edge, and Kelly is evaluated at the *worst* price reached (so the stake is never above
    Kelly whatever the fills), capped by the depth so far: the size is the best such figure,
    capped by ``max_shares`` minus the position already held, rounded down to 0.01 share. Below
    the market's minimum order size or $1 of notional (at the best ask) there is no trade.

    Order. ``Place`` BUY FAK at the worst price on the token's tick that still keeps the edge:
    a FAK never rests, it takes the asks at their own prices, and if the book moved before it
    arrives every fill it can get is still worth at least ``min_edge``.

    Guards: never on a stale book (``ctx.usable``), never above ``max_shares`` of position, one
    buy per token per ``cooldown_s`` (a timer re-checks when it ends) and none while the last
    one is still open (``in_flight``: its fills are not in the position yet), not on a forecast
    older than ``FORECAST_MAX_AGE_REFRESHES`` refreshes, not after a ladder resolved.

    Decisions: one per forecast update (``forecast.update`` or ``forecast.unmatched``), one per
    buy (``forecast.buy``), one whenever a token's opportunity opens, changes reason or closes
    (``forecast.opportunity``, ``forecast.closed``), and, once at the start, one per event titled
    like a temperature ladder that cannot be traded (``forecast.ladder_skipped``).
    """

    name = "forecast_taker"

    def __init__(self, universe: Universe, config: ForecastTakerConfig) -> None:
        self._min_edge = from_decimal(config.min_edge)
        self._kelly = Fraction(config.kelly_fraction)
        self._bankroll = from_decimal(config.bankroll)
        self._max_shares = from_decimal(config.max_shares)
        self._cooldown_s = config.cooldown_s
        self._max_age_s = FORECAST_MAX_AGE_REFRESHES * config.refresh_s
        self.ladders: dict[str, Ladder] = {}
        self._by_city_day: dict[tuple[str, int, int], list[str]] = {}
        self._by_token: dict[str, tuple[str, int, bool]] = {}
        self._startup: list[Action] = []
        for event in universe.events:
            if "temperature" not in event.title.lower():
                continue
            try:
                ladder = temperature_ladder(event)
            except ValueError as exc:
                self._startup.append(self._decision("forecast.ladder_skipped", event.id, exc))
                continue
            self.ladders[event.id] = ladder
            self._by_city_day.setdefault(ladder.city_day.key, []).append(event.id)
            for index, rung in enumerate(ladder.rungs):
                self._by_token[rung.market.yes.token_id] = (event.id, index, True)
                self._by_token[rung.market.no.token_id] = (event.id, index, False)
        self.forecasts: dict[str, Forecast] = {}
        self._probabilities: dict[str, tuple[Fraction, ...]] = {}
        self._resolved: set[str] = set()
        self._last_buy: dict[str, float] = {}
        self._cooling: dict[str, float] = {}
        self._state: dict[str, str] = {}
        self._stale_forecast: set[str] = set()

    # --- hooks

    def on_books(self, ctx: Context, changed: Collection[str]) -> Sequence[Action]:
        actions = self._take_startup()
        touched: dict[str, list[str]] = {}
        for token in changed:
            where = self._by_token.get(token)
            if where is not None:
                touched.setdefault(where[0], []).append(token)
        for event_id, tokens in touched.items():
            actions += self._evaluate(ctx, event_id, tokens)
        return actions

    def on_event(self, ctx: Context, event: object) -> Sequence[Action]:
        actions = self._take_startup()
        if isinstance(event, ForecastUpdate):
            actions += self._on_forecast(ctx, event.forecast)
        elif isinstance(event, MarketResolved):
            where = self._by_token.get(event.assets_ids[0]) if event.assets_ids else None
            if where is not None and where[0] not in self._resolved:
                self._resolved.add(where[0])
                actions.append(
                    Decision(
                        self.name,
                        "forecast.resolved",
                        where[0],
                        {"winner": event.winning_outcome, "market": event.market},
                    )
                )
        return actions

    def on_timer(self, ctx: Context) -> Sequence[Action]:
        actions = self._take_startup()
        due = [token for token, until in self._cooling.items() if until <= ctx.now]
        by_event: dict[str, list[str]] = {}
        for token in due:
            del self._cooling[token]
            by_event.setdefault(self._by_token[token][0], []).append(token)
        for event_id, tokens in by_event.items():
            actions += self._evaluate(ctx, event_id, tokens)
        return actions

    def wakeup_at(self) -> float | None:
        return min(self._cooling.values(), default=None)

    # --- forecasts

    def _on_forecast(self, ctx: Context, forecast: Forecast) -> list[Action]:
        if forecast.event_id is not None and forecast.event_id in self.ladders:
            targets = [forecast.event_id]
        elif forecast.city_day is not None:
            targets = list(self._by_city_day.get(forecast.city_day.key, ()))
        else:
            targets = []
        key = forecast.event_id or (forecast.city_day.city if forecast.city_day else "")
        if not targets:
            return [self._decision("forecast.unmatched", key, _forecast_detail(forecast))]
        actions: list[Action] = []
        for event_id in targets:
            current = self.forecasts.get(event_id)
            if current is not None and current.issued_at > forecast.issued_at:
                continue  # an older answer arriving late
            ladder = self.ladders[event_id]
            try:
                probabilities = bracket_probabilities(
                    ladder.brackets, forecast.mean_c, forecast.sd_c
                )
            except ValueError as exc:
                actions.append(self._decision("forecast.rejected", event_id, exc))
                continue
            self.forecasts[event_id] = forecast
            self._probabilities[event_id] = tuple(
                Fraction(round(p * _P_SCALE), _P_SCALE) for p in probabilities
            )
            self._stale_forecast.discard(event_id)
            detail = _forecast_detail(forecast)
            detail["probabilities"] = ", ".join(
                f"{rung.bracket.label}={p:.4f}"
                for rung, p in zip(ladder.rungs, probabilities, strict=True)
            )
            actions.append(self._decision("forecast.update", event_id, detail))
            actions += self._evaluate(ctx, event_id, None)
        return actions

    # --- evaluation

    def _evaluate(self, ctx: Context, event_id: str, tokens: Iterable[str] | None) -> list[Action]:
        forecast = self.forecasts.get(event_id)
        if forecast is None or event_id in self._resolved:
            return []
        if ctx.now - forecast.issued_at > self._max_age_s:
            if event_id in self._stale_forecast:
                return []
            self._stale_forecast.add(event_id)
            age = f"{ctx.now - forecast.issued_at:.0f}"
            return [self._decision("forecast.stale", event_id, {"age_s": age})]
        ladder = self.ladders[event_id]
        if tokens is None:
            tokens = [t for rung in ladder.rungs for t in rung.market.token_ids]
        actions: list[Action] = []
        for token in tokens:
            _, index, is_yes = self._by_token[token]
            p_yes = self._probabilities[event_id][index]
            actions += self._consider(
                ctx, ladder.rungs[index], token, p_yes if is_yes else 1 - p_yes
            )
        return actions

    def _consider(self, ctx: Context, rung: Rung, token: str, p: Fraction) -> list[Action]:
        view = ctx.usable(token)
        if view is None:
            return []  # never on a stale book; the state stays what it was
        market = rung.market
        rate = market.fee_rate
        best = view.best_ask
        edge = self._edge(p, best.price, rate) if best is not None else None
        if best is None or edge is None or edge < self._min_edge:
            if token in self._state:
                del self._state[token]
                self._cooling.pop(token, None)
                return [self._decision("forecast.closed", token, {"bracket": rung.bracket.label})]
            return []

        plan = self._plan(ctx, market, token, p, view.asks, view.tick_size, edge)
        detail = {
            "event": market.event_id or "",
            "bracket": rung.bracket.label,
            "outcome": "YES" if token == market.yes.token_id else "NO",
            "p": f"{float(p):.4f}",
            "ask": format_units(best.price),
            "edge": format_units(math.floor(edge)),
            "action": plan.action,
        }
        if plan.action != "buy":
            if self._state.get(token) == plan.action:
                return []
            self._state[token] = plan.action
            return [self._decision("forecast.opportunity", token, detail)]

        self._state[token] = plan.action
        self._last_buy[token] = ctx.now
        if self._cooldown_s > 0:
            self._cooling[token] = ctx.now + self._cooldown_s
        detail |= {"size": format_units(plan.size), "limit": format_units(plan.limit)}
        note = (
            f"{rung.bracket.label} {detail['outcome']}: p={detail['p']} price={detail['ask']} "
            f"edge={detail['edge']}"
        )
        return [
            self._decision("forecast.buy", token, detail),
            Place(
                token_id=token,
                side=Side.BUY,
                price=plan.limit,
                size=plan.size,
                order_type=OrderType.FAK,
                tag="forecast",
                note=note,
            ),
        ]

    def _plan(
        self,
        ctx: Context,
        market: Market,
        token: str,
        p: Fraction,
        asks: Sequence[tuple[int, int]],
        tick: int,
        edge: Fraction,
    ) -> _Plan:
        last = self._last_buy.get(token)
        if last is not None and ctx.now - last < self._cooldown_s:
            self._cooling.setdefault(token, last + self._cooldown_s)
            return _Plan("cooldown", edge)
        if any(order.token_id == token for order in ctx.orders.values()):
            # The last buy has not ended yet (live: its answer is on the way): its fills are
            # not in the position, so sizing now could take the position past max_shares.
            return _Plan("in_flight", edge)
        room = self._max_shares - ctx.inventory.position_of(self.name, token)
        if room <= 0:
            return _Plan("position_cap", edge)
        rate = market.fee_rate
        best_size = 0
        depth = 0
        for price, size in asks:
            if self._edge(p, price, rate) < self._min_edge:
                break
            depth += size
            kelly = self._kelly_shares(p, self._cost(price, rate))
            best_size = max(best_size, min(kelly, depth))
            if kelly <= depth:
                break  # deeper levels only lower the Kelly size
        size = min(best_size, room) // LOT * LOT
        if size <= 0:
            return _Plan("kelly_zero", edge)
        if size < market.min_order_size:
            return _Plan("below_min_size", edge, size)
        if notional_units(asks[0][0], size, round_up=False) < MIN_NOTIONAL:
            return _Plan("below_min_notional", edge, size)
        return _Plan("buy", edge, size, self._worst_price(p, asks[0][0], tick, rate))

    @staticmethod
    def _cost(price: int, rate: int) -> Fraction:
        """Cost of one share bought at ``price``: the price plus the taker fee per share
        (micro-units; the venue floors the fee, so this is an upper bound)."""
        return price + Fraction(rate * price * (ONE - price), ONE * ONE)

    def _edge(self, p: Fraction, price: int, rate: int) -> Fraction:
        """Expected profit per share bought at ``price``, micro-units."""
        return p * ONE - self._cost(price, rate)

    def _kelly_shares(self, p: Fraction, cost: Fraction) -> int:
        """Shares (micro-units, not yet lot-rounded) a ``kelly_fraction`` Kelly stake buys."""
        c = cost / ONE
        if c <= 0 or c >= 1 or p <= c:
            return 0
        full = (p - c) / (1 - c)
        stake = self._kelly * full * self._bankroll
        return math.floor(stake / c)

    def _worst_price(self, p: Fraction, best: int, tick: int, rate: int) -> int:
        """The highest price on the tick grid (inside ``[tick, 1 - tick]``) that keeps the edge;
        ``best`` keeps it, and the edge falls as the price rises, so bisect above it."""
        lo = best // tick  # index whose price is <= best (keeps the edge)
        hi = (ONE - tick) // tick
        if lo >= hi:
            return best
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._edge(p, mid * tick, rate) >= self._min_edge:
                lo = mid
            else:
                hi = mid - 1
        return max(best, lo * tick)

    # --- helpers

    def _take_startup(self) -> list[Action]:
        actions, self._startup = self._startup, []
        return actions

    def _decision(self, kind: str, key: str, detail: dict[str, str] | Exception) -> Decision:
        if isinstance(detail, Exception):
            detail = {"reason": str(detail)}
        return Decision(self.name, kind, key, detail)


def _forecast_detail(forecast: Forecast) -> dict[str, str]:
    detail = {
        "source": forecast.source,
        "mean_c": f"{forecast.mean_c:.2f}",
        "sd_c": f"{forecast.sd_c:.2f}",
    }
    if forecast.city_day is not None:
        day = forecast.city_day
        detail["city_day"] = f"{day.city} {day.month:02d}-{day.day:02d}"
    return detail
