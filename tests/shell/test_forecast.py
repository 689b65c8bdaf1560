"""Forecast providers and the refresh task.

Open-Meteo is never reached: its provider runs against an ``httpx.MockTransport`` answering with
bodies shaped like Open-Meteo's real ones. The sim provider runs against the embedded sim venue
over loopback (real clock, bounded waits), with the universe found by the real discovery.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
import trio
import trio.testing
from loguru import logger

from bot.config import DiscoveryConfig
from bot.core.backoff import Backoff
from bot.core.strategies.forecast import (
    CityDay,
    Forecast,
    ForecastUpdate,
    bracket_probabilities,
    temperature_ladder,
)
from bot.core.universe import Event
from bot.shell.discovery import discover
from bot.shell.forecast import (
    ForecastError,
    OpenMeteoProvider,
    SimForecastProvider,
    city_coordinates,
    run_forecasts,
)
from bot.shell.rest import RestClient
from bot.sim.venue import open_sim_venue
from tests.sim.server_helpers import START_MS, WAIT, small_config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from bot.core.universe import Universe

URL = "https://api.open-meteo.test/v1/forecast"
NYC = "Highest temperature in New York City on November 25?"


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """Loguru's WARNING-and-above messages while the test runs."""
    lines: list[str] = []
    handler = logger.add(lines.append, format="{level} {message}", level="WARNING")
    try:
        yield lines
    finally:
        logger.remove(handler)


def temperature_event(
    title: str = NYC, *, end: datetime | None = datetime(2025, 11, 25, 12, tzinfo=UTC)
) -> Event:
    return Event(id="ev1", slug="ev1", title=title, neg_risk=True, markets=(), end_date=end)


def open_meteo_body(day: str = "2025-11-25", value: Any = 9.8, unit: str = "°C") -> bytes:
    """The shape Open-Meteo answers a one-day ``daily=temperature_2m_max`` request with."""
    return orjson.dumps(
        {
            "latitude": 40.78,
            "longitude": -73.880005,
            "generationtime_ms": 0.05698204040527344,
            "utc_offset_seconds": -18000,
            "timezone": "America/New_York",
            "timezone_abbreviation": "GMT-5",
            "elevation": 6.0,
            "daily_units": {"time": "iso8601", "temperature_2m_max": unit},
            "daily": {"time": [day], "temperature_2m_max": [value]},
        }
    )


class Recorder:
    """A MockTransport handler that answers every request with one canned response."""

    def __init__(self, status: int = 200, body: bytes = b"", content_type: str = "") -> None:
        self.status = status
        self.body = body or open_meteo_body()
        self.content_type = content_type or "application/json; charset=utf-8"
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(
            self.status, content=self.body, headers={"content-type": self.content_type}
        )


def provider(
    handler: Recorder, *, today: Callable[[], date] | None = None
) -> tuple[OpenMeteoProvider, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenMeteoProvider(client, URL, sd_c=1.5, today=today), client


# --------------------------------------------------------------------------------------------
# Open-Meteo


async def test_open_meteo_asks_for_the_city_and_day_and_reads_the_maximum(
    autojump_clock: trio.testing.MockClock,
) -> None:
    await trio.sleep(12.5)  # issued_at is the runtime clock at the answer
    handler = Recorder()
    meteo, client = provider(handler)
    async with client:
        forecast = await meteo.fetch(temperature_event())

    assert forecast == Forecast(
        mean_c=9.8,
        sd_c=1.5,
        source="open_meteo",
        issued_at=12.5,
        event_id="ev1",
        city_day=CityDay("New York City", 11, 25),
    )
    (request,) = handler.requests
    assert str(request.url).startswith(URL + "?")
    assert dict(request.url.params) == {
        "latitude": "40.7769",
        "longitude": "-73.8740",
        "daily": "temperature_2m_max",
        "timezone": "auto",
        "start_date": "2025-11-25",
        "end_date": "2025-11-25",
    }


async def test_open_meteo_converts_fahrenheit_answers() -> None:
    meteo, client = provider(Recorder(body=open_meteo_body(value=50.0, unit="°F")))
    async with client:
        forecast = await meteo.fetch(temperature_event())
    assert forecast is not None
    assert forecast.mean_c == pytest.approx(10.0)


async def test_open_meteo_places_the_day_in_the_nearest_year() -> None:
    handler = Recorder(body=open_meteo_body(day="2026-01-02"))
    meteo, client = provider(handler, today=lambda: date(2025, 12, 30))
    async with client:
        title = "Highest temperature in London on January 2?"
        forecast = await meteo.fetch(temperature_event(title, end=None))
    assert forecast is not None
    assert handler.requests[0].url.params["start_date"] == "2026-01-02"
    assert handler.requests[0].url.params["latitude"] == "51.5048"


async def test_open_meteo_unknown_city_is_none_with_one_warning(warnings: list[str]) -> None:
    handler = Recorder()
    meteo, client = provider(handler)
    async with client:
        title = "Highest temperature in Atlantis on July 3?"
        assert await meteo.fetch(temperature_event(title)) is None
        assert await meteo.fetch(temperature_event(title)) is None
        not_weather = "Who will win the 2028 election?"
        assert await meteo.fetch(temperature_event(not_weather)) is None
    assert handler.requests == []
    (line,) = warnings
    assert line.startswith("WARNING forecast: no coordinates for city 'Atlantis' (event ev1")


def test_city_lookup_ignores_case_accents_and_aliases() -> None:
    assert city_coordinates("NYC") == city_coordinates("new york city") == (40.7769, -73.874)
    assert city_coordinates("São Paulo") == city_coordinates("Sao Paulo") is not None
    assert city_coordinates("Washington, D.C.") == city_coordinates("Washington") is not None
    # Every city the sim venue lists has coordinates.
    for city in ("London", "Seoul", "Paris", "Tokyo", "Toronto", "Buenos Aires", "Wellington"):
        assert city_coordinates(city) is not None, city
    for city in ("Ankara", "Madrid", "Chicago", "Miami", "Dallas", "Atlanta", "Seattle"):
        assert city_coordinates(city) is not None, city


@pytest.mark.parametrize(
    ("status", "body", "content_type", "message"),
    [
        (
            400,
            b'{"error":true,"reason":"Parameter \'start_date\' is out of allowed range"}',
            "",
            "HTTP 400: Parameter 'start_date' is out of allowed range",
        ),
        (502, b"<html>Bad Gateway</html>", "text/html", "HTTP 502: <html>Bad Gateway"),
        (200, b"<html>", "text/html", "body is not JSON"),
        (200, open_meteo_body(value=None), "", "temperature_2m_max for 2025-11-25 is None"),
        (200, open_meteo_body(day="2025-11-26"), "", "the answer has no 2025-11-25"),
        (200, open_meteo_body(unit="K"), "", "unexpected temperature unit 'K'"),
        (200, b'{"latitude": 40.78}', "", "no 'daily' object"),
    ],
)
async def test_open_meteo_failures_name_the_event_and_why(
    status: int, body: bytes, content_type: str, message: str
) -> None:
    meteo, client = provider(Recorder(status, body, content_type))
    async with client:
        with pytest.raises(ForecastError) as caught:
            await meteo.fetch(temperature_event())
    text = str(caught.value)
    assert text.startswith("open-meteo New York City 2025-11-25 (event ev1)")
    assert message in text


# --------------------------------------------------------------------------------------------
# The sim venue


async def discover_sim(clob_url: str, gamma_url: str, client: httpx.AsyncClient) -> Universe:
    rest = RestClient(
        client,
        gamma_url=gamma_url,
        clob_url=clob_url,
        backoff=Backoff(0.05, 0.2),
        rng=random.Random(0),
        rate_limits=(),
    )
    rules = DiscoveryConfig(
        min_liquidity=Decimal(0), min_volume=Decimal(0), end_within_days=0, max_markets=500
    )
    return await discover(rest, rules, now=datetime(2026, 7, 1, tzinfo=UTC))


async def test_sim_provider_reads_the_venue_forecast_end_to_end() -> None:
    config = small_config(temperature_events=2, election_events=1)
    async with (
        open_sim_venue(config, start_epoch_ms=START_MS, pump=False) as venue,
        httpx.AsyncClient(timeout=WAIT) as client,
    ):
        with trio.fail_after(4 * WAIT):
            universe = await discover_sim(venue.clob_url, venue.gamma_url, client)
            sim = SimForecastProvider(client, venue.clob_url + "/")
            hidden = {e.id: e for e in venue.universe.events if e.kind == "temperature"}
            fetched = {e.id: await sim.fetch(e) for e in universe.neg_risk_events()}
            delivered: list[ForecastUpdate] = []
            async with trio.open_nursery() as nursery:
                await nursery.start(run_forecasts, sim, universe.events, delivered.append, 60.0)
                nursery.cancel_scope.cancel()

    assert len(hidden) == 2
    assert {key for key, value in fetched.items() if value is not None} == set(hidden)
    assert len(fetched) == 3  # the election event has no forecast
    assert sorted(u.forecast.event_id or "" for u in delivered) == sorted(hidden)
    sim_fair = {m.condition_id: m.fair_price for m in venue.universe.markets}
    for event in universe.neg_risk_events():
        forecast = fetched[event.id]
        if forecast is None:
            continue
        truth = hidden[event.id]
        assert forecast.source == "sim"
        assert forecast.mean_c * 10 == pytest.approx(truth.forecast_mean_c_tenths)
        assert forecast.sd_c * 10 == pytest.approx(truth.forecast_sd_c_tenths)
        assert forecast.city_day is not None
        assert forecast.city_day.city == truth.city
        # The strategy's parse of the ladder and its probabilities reproduce the sim's pricing.
        ladder = temperature_ladder(event)
        probabilities = bracket_probabilities(ladder.brackets, forecast.mean_c, forecast.sd_c)
        for rung, p in zip(ladder.rungs, probabilities, strict=True):
            assert p * 1_000_000 == pytest.approx(sim_fair[rung.market.condition_id], abs=2)


async def test_sim_provider_failures_raise() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down/sim/forecast":
            return httpx.Response(503, content=b"busy")
        return httpx.Response(200, content=b'[{"event_id": "ev1", "mean_c": "hot", "sd_c": "1"}]')

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ForecastError, match=r"HTTP 503 from http://sim\.test/down"):
            await SimForecastProvider(client, "http://sim.test/down").fetch(temperature_event())
        with pytest.raises(ForecastError, match="mean_c is 'hot', not a decimal"):
            await SimForecastProvider(client, "http://sim.test").fetch(temperature_event())


# --------------------------------------------------------------------------------------------
# The refresh task


class Scripted:
    """A provider whose answers per event id are scripted: a Forecast, None, or an exception."""

    def __init__(self, script: dict[str, list[Any]]) -> None:
        self.script = script
        self.calls: list[tuple[float, str]] = []

    async def fetch(self, event: Event) -> Forecast | None:
        await trio.sleep(1.0)  # a request takes a second
        self.calls.append((trio.current_time(), event.id))
        answer = self.script[event.id].pop(0)
        if isinstance(answer, BaseException):
            raise answer
        if answer is None:
            return None
        assert isinstance(answer, float)
        return Forecast(
            mean_c=answer, sd_c=1.0, source="test", issued_at=trio.current_time(), event_id=event.id
        )


def titled(event_id: str, title: str) -> Event:
    return Event(id=event_id, slug=event_id, title=title, neg_risk=True, markets=())


async def test_run_forecasts_refreshes_and_survives_failures(
    autojump_clock: trio.testing.MockClock, warnings: list[str]
) -> None:
    events = [
        titled("a", "Highest temperature in London on July 3?"),
        titled("b", "Highest temperature in Paris on July 3?"),
        titled("c", "Highest temperature in Seoul on July 3?"),
        titled("x", "Who will win the election?"),
    ]
    provider = Scripted(
        {
            "a": [ForecastError("open-meteo down"), 20.0, 21.0],
            "b": [25.0, httpx.ConnectError("refused"), 26.0],
            "c": [RuntimeError("provider bug"), None, 30.0],
        }
    )
    delivered: list[ForecastUpdate] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(run_forecasts, provider, events, delivered.append, 60.0)
        # started() comes after the first round: every event was tried once.
        assert trio.current_time() == 3.0
        assert [(u.forecast.event_id, u.forecast.mean_c) for u in delivered] == [("b", 25.0)]
        await trio.sleep(60.0 + 3.0 - trio.current_time() + 60.0 + 3.0)
        nursery.cancel_scope.cancel()

    assert provider.calls == [
        (1.0, "a"),
        (2.0, "b"),
        (3.0, "c"),
        (61.0, "a"),
        (62.0, "b"),
        (63.0, "c"),
        (121.0, "a"),
        (122.0, "b"),
        (123.0, "c"),
    ]
    assert [(u.forecast.event_id, u.forecast.mean_c) for u in delivered] == [
        ("b", 25.0),
        ("a", 20.0),
        ("a", 21.0),
        ("b", 26.0),
        ("c", 30.0),
    ]
    assert [line.split(" ", 1)[0] for line in warnings] == ["WARNING", "ERROR", "WARNING"]
    assert "event a (Highest temperature in London on July 3?)" in warnings[0]
    assert "ForecastError: open-meteo down" in warnings[0]
    assert "fetch crashed for event c" in warnings[1]
    assert "ConnectError: refused" in warnings[2]


async def test_run_forecasts_without_temperature_events_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = Scripted({})
    async with trio.open_nursery() as nursery:
        await nursery.start(
            run_forecasts, provider, [titled("x", "Who wins?")], lambda _u: None, 60.0
        )
    assert provider.calls == []
    with pytest.raises(ValueError, match="refresh_s must be a finite number > 0"):
        await run_forecasts(provider, [], lambda _u: None, 0.0)
