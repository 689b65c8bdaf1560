"""Temperature forecasts for the forecast taker: where they come from, the task refreshing them.

The strategy (``bot.core.strategies.forecast.ForecastTaker``) is pure: it only sees forecasts as
``ForecastUpdate`` events. This module is the I/O side:

* ``ForecastProvider``: anything with ``async def fetch(event) -> Forecast | None``. ``None``
  means "no forecast for this event, and asking again will not help" (not a temperature event,
  a city with no coordinates, an event the sim does not know); a provider that *failed* raises
  (``ForecastError``, ``httpx.HTTPError``), and the refresh task tries again next round.
* ``OpenMeteoProvider``: Open-Meteo's free daily forecast (``temperature_2m_max`` for the
  event's city and day, local time zone), no key needed. It gives a point forecast only, so the
  spread ``sd_c`` is configured (``strategies.forecast_taker.forecast_sd_c``).
* ``SimForecastProvider``: the sim venue's ``GET /sim/forecast``, the hidden forecast the sim
  prices its brackets from, so the demo runs offline.
* ``run_forecasts``: fetch every temperature event's forecast now and every ``refresh_s``,
  handing each to ``deliver`` (synchronous: typically a bus publish). A failure is logged and
  retried next round, never fatal: the strategy simply keeps its last forecast (and stops
  trading on it once it is too old, ``FORECAST_MAX_AGE_REFRESHES``).

``issued_at`` of every forecast is ``trio.current_time()`` when it arrived: the runtime's clock,
the same as ``Context.now``.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, Protocol

import httpx
import orjson
import trio
from loguru import logger

from bot.core.strategies.forecast import Forecast, ForecastUpdate, parse_city_day

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from bot.core.strategies.forecast import CityDay
    from bot.core.universe import Event

__all__ = [
    "CITY_COORDINATES",
    "OPEN_METEO_URL",
    "ForecastError",
    "ForecastProvider",
    "OpenMeteoProvider",
    "SimForecastProvider",
    "city_coordinates",
    "is_temperature_event",
    "run_forecasts",
]

OPEN_METEO_URL: Final = "https://api.open-meteo.com/v1/forecast"

# Latitude and longitude of the weather cities Polymarket lists (and every city of the sim).
# Polymarket resolves most of these on one station's record, usually the main airport's, named in
# each event's rules; the coordinates are that airport's where it is the usual source, else the
# city centre. A few kilometres matter little to a daily maximum on a 1 degree grid of brackets,
# but check the rules of a new city before trading it.
CITY_COORDINATES: Final[Mapping[str, tuple[float, float]]] = {
    "new york city": (40.7769, -73.8740),  # LaGuardia
    "london": (51.5048, 0.0495),  # London City Airport
    "chicago": (41.9742, -87.9073),  # O'Hare
    "miami": (25.7959, -80.2870),
    "seoul": (37.4602, 126.4407),  # Incheon
    "toronto": (43.6777, -79.6248),  # Pearson
    "dallas": (32.8471, -96.8518),  # Love Field
    "atlanta": (33.6407, -84.4277),
    "seattle": (47.4502, -122.3088),  # Sea-Tac
    "paris": (49.0097, 2.5479),  # Charles de Gaulle
    "buenos aires": (-34.8222, -58.5358),  # Ezeiza
    "wellington": (-41.3272, 174.8053),
    "ankara": (40.1281, 32.9951),  # Esenboga
    "tokyo": (35.5494, 139.7798),  # Haneda
    "madrid": (40.4983, -3.5676),  # Barajas
    "los angeles": (33.9416, -118.4085),
    "san francisco": (37.6213, -122.3790),
    "denver": (39.8561, -104.6737),
    "houston": (29.9902, -95.3368),
    "austin": (30.1975, -97.6664),
    "phoenix": (33.4342, -112.0116),
    "las vegas": (36.0840, -115.1537),
    "boston": (42.3656, -71.0096),
    "philadelphia": (39.8744, -75.2424),
    "washington": (38.8512, -77.0402),  # Reagan National
    "hong kong": (22.3020, 114.1743),  # Observatory
    "singapore": (1.3644, 103.9915),  # Changi
    "sydney": (-33.9399, 151.1753),
    "sao paulo": (-23.4356, -46.4731),  # Guarulhos
    "mexico city": (19.4361, -99.0719),
    "munich": (48.3537, 11.7750),
    "milan": (45.6301, 8.7231),
    "tel aviv": (32.0114, 34.8867),
    "lucknow": (26.7606, 80.8893),
    "shanghai": (31.1443, 121.8083),
    "beijing": (40.0799, 116.6031),
}
_ALIASES: Final = {
    "nyc": "new york city",
    "new york": "new york city",
    "la": "los angeles",
    "washington dc": "washington",
    "washington d c": "washington",
    "dc": "washington",
}


class ForecastError(Exception):
    """A provider answered, but not with a usable forecast; the message names the event and why."""


class ForecastProvider(Protocol):
    """Where forecasts come from (module docstring)."""

    async def fetch(self, event: Event) -> Forecast | None:
        """The forecast for ``event``'s day, or ``None`` when there can be none.

        Raises:
            ForecastError, httpx.HTTPError: this attempt failed (retry later).
        """
        ...


def _city_key(city: str) -> str:
    plain = unicodedata.normalize("NFKD", city)
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    words = "".join(ch if ch.isalnum() else " " for ch in plain.casefold()).split()
    key = " ".join(words)
    return _ALIASES.get(key, key)


def city_coordinates(
    city: str, table: Mapping[str, tuple[float, float]] = CITY_COORDINATES
) -> tuple[float, float] | None:
    """``(latitude, longitude)`` of ``city`` (case, accents, punctuation and the usual aliases
    such as "NYC" ignored), or ``None`` when the table does not know it."""
    return table.get(_city_key(city))


def is_temperature_event(event: Event) -> bool:
    """Whether ``event`` is a "Highest temperature in <city> on <day>?" event."""
    if "temperature" not in event.title.lower():
        return False
    try:
        parse_city_day(event.title)
    except ValueError:
        return False
    return True


def _city_day(event: Event) -> CityDay | None:
    try:
        return parse_city_day(event.title)
    except ValueError:
        return None


def _decode(response: httpx.Response, what: str) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        excerpt = response.content[:80].decode("utf-8", "replace")
        raise ForecastError(f"{what}: body is not JSON ({exc}): {excerpt!r}") from None


class OpenMeteoProvider:
    """Forecasts from Open-Meteo's daily ``temperature_2m_max`` (module docstring).

    Args:
        client: The shared client (its timeouts and lifetime belong to the caller).
        url: The forecast endpoint (``strategies.forecast_taker.open_meteo_url``).
        sd_c: The standard deviation to attach, °C (Open-Meteo gives a point forecast).
        coordinates: City table (``CITY_COORDINATES`` by default).
        today: The current date, used to place a title's month/day in a year when the event
            has no end date (default: today in UTC).
    """

    source: Final = "open_meteo"

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str = OPEN_METEO_URL,
        sd_c: float = 1.5,
        *,
        coordinates: Mapping[str, tuple[float, float]] = CITY_COORDINATES,
        today: Callable[[], date] | None = None,
    ) -> None:
        if not (sd_c > 0 and math.isfinite(sd_c)):
            raise ValueError(f"sd_c must be a finite number > 0, got {sd_c}")
        self._client = client
        self._url = url
        self._sd_c = sd_c
        self._coordinates = {_city_key(name): place for name, place in coordinates.items()}
        self._today = today or (lambda: datetime.now(UTC).date())
        self._warned: set[str] = set()

    async def fetch(self, event: Event) -> Forecast | None:
        city_day = _city_day(event)
        if city_day is None:
            return None
        place = city_coordinates(city_day.city, self._coordinates)
        if place is None:
            # Once per city: the refresh task asks every round, and the answer will not change.
            if city_day.city not in self._warned:
                self._warned.add(city_day.city)
                logger.warning(
                    "forecast: no coordinates for city {!r} (event {}: {}); add it to "
                    "bot.shell.forecast.CITY_COORDINATES to trade it",
                    city_day.city,
                    event.id,
                    event.title,
                )
            return None
        near = event.end_date.date() if event.end_date is not None else self._today()
        day = city_day.date_near(near).isoformat()
        what = f"open-meteo {city_day.city} {day} (event {event.id})"
        params = {
            "latitude": f"{place[0]:.4f}",
            "longitude": f"{place[1]:.4f}",
            "daily": "temperature_2m_max",
            "timezone": "auto",
            "start_date": day,
            "end_date": day,
        }
        response = await self._client.get(self._url, params=params)
        if response.status_code != 200:
            # Open-Meteo explains a refusal as {"error": true, "reason": "..."}.
            try:
                reason = orjson.loads(response.content).get("reason")
            except (orjson.JSONDecodeError, AttributeError):
                reason = None
            reason = reason or response.content[:80].decode("utf-8", "replace")
            raise ForecastError(f"{what}: HTTP {response.status_code}: {reason}")
        mean_c = _daily_max(_decode(response, what), day, what)
        return Forecast(
            mean_c=mean_c,
            sd_c=self._sd_c,
            source=self.source,
            issued_at=trio.current_time(),
            event_id=event.id,
            city_day=city_day,
        )


def _daily_max(body: object, day: str, what: str) -> float:
    """The day's ``temperature_2m_max`` in °C from an Open-Meteo body (converted from °F if the
    units say so)."""
    daily = body.get("daily") if isinstance(body, dict) else None
    if not isinstance(daily, dict):
        raise ForecastError(f"{what}: no 'daily' object in the answer")
    times, values = daily.get("time"), daily.get("temperature_2m_max")
    if not isinstance(times, list) or not isinstance(values, list) or len(times) != len(values):
        raise ForecastError(f"{what}: 'daily.time' and 'daily.temperature_2m_max' do not pair up")
    if day not in times:
        raise ForecastError(f"{what}: the answer has no {day} (days: {times})")
    value = values[times.index(day)]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ForecastError(f"{what}: temperature_2m_max for {day} is {value!r}, not a number")
    units = body.get("daily_units") if isinstance(body, dict) else None
    unit = units.get("temperature_2m_max", "°C") if isinstance(units, dict) else "°C"
    if unit == "°F":
        return (float(value) - 32.0) * 5.0 / 9.0
    if unit != "°C":
        raise ForecastError(f"{what}: unexpected temperature unit {unit!r}")
    return float(value)


class SimForecastProvider:
    """Forecasts from the sim venue's ``GET /sim/forecast`` (matched by event id).

    Args:
        client: The shared client.
        base_url: The sim's root URL (its CLOB URL).
    """

    source: Final = "sim"

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + "/sim/forecast"

    async def fetch(self, event: Event) -> Forecast | None:
        what = f"sim forecast (event {event.id})"
        response = await self._client.get(self._url)
        if response.status_code != 200:
            raise ForecastError(f"{what}: HTTP {response.status_code} from {self._url}")
        body = _decode(response, what)
        if not isinstance(body, list):
            raise ForecastError(f"{what}: expected a JSON list, got {type(body).__name__}")
        for item in body:
            if isinstance(item, dict) and item.get("event_id") == event.id:
                return Forecast(
                    mean_c=_decimal(item, "mean_c", what),
                    sd_c=_decimal(item, "sd_c", what),
                    source=self.source,
                    issued_at=trio.current_time(),
                    event_id=event.id,
                    city_day=_city_day(event),
                )
        return None  # not one of the sim's temperature events


def _decimal(item: Mapping[str, object], name: str, what: str) -> Decimal:
    value = item.get(name)
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidOperation
        number = Decimal(str(value))
    except InvalidOperation:
        raise ForecastError(f"{what}: {name} is {value!r}, not a decimal") from None
    if not number.is_finite():
        raise ForecastError(f"{what}: {name} is {value!r}, not a finite number")
    return number


async def run_forecasts(
    provider: ForecastProvider,
    events: Iterable[Event],
    deliver: Callable[[ForecastUpdate], None],
    refresh_s: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Fetch each temperature event's forecast now and every ``refresh_s``; deliver each one.

    Events are asked one after the other (a handful of requests per round, gentle on free
    services). ``task_status.started()`` comes after the first round, so ``await
    nursery.start(run_forecasts, ...)`` returns once every event has been tried once (each try
    is bounded by the client's timeout). Rounds start every ``refresh_s`` from the first; a round
    that overruns is followed at once by the next. With no temperature event the task says so
    and returns.

    A fetch that raises is logged (with its traceback when it is not a plain provider or HTTP
    failure) and the event is tried again next round: never fatal.
    """
    if not (refresh_s > 0 and math.isfinite(refresh_s)):
        raise ValueError(f"refresh_s must be a finite number > 0, got {refresh_s}")
    targets = [event for event in events if is_temperature_event(event)]
    if not targets:
        logger.info("forecast: no temperature events to forecast")
        task_status.started()
        return
    logger.info("forecast: {} temperature events, refreshed every {}s", len(targets), refresh_s)
    started = False
    next_round = trio.current_time()
    while True:
        for event in targets:
            try:
                forecast = await provider.fetch(event)
            except (ForecastError, httpx.HTTPError) as exc:
                logger.warning(
                    "forecast: fetch failed for event {} ({}); retrying next round: {}: {}",
                    event.id,
                    event.title,
                    type(exc).__name__,
                    exc,
                )
                continue
            except Exception as exc:  # a provider bug must not stop the other events
                logger.opt(exception=exc).error(
                    "forecast: fetch crashed for event {} ({}); retrying next round",
                    event.id,
                    event.title,
                )
                continue
            if forecast is not None:
                deliver(ForecastUpdate(forecast))
        if not started:
            started = True
            task_status.started()
        next_round = max(next_round + refresh_s, trio.current_time())
        await trio.sleep_until(next_round)
