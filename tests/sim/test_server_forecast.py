"""The sim venue's ``GET /sim/forecast``: every temperature event's hidden forecast, over HTTP.

The answer must be the very forecast the venue prices its brackets from (so a strategy reading it
sees the venue's "truth"), name the day the event's title names, and leave other events out.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import trio

from bot.core.strategies.forecast import parse_city_day
from bot.sim.universe import bracket_fair_prices
from bot.sim.venue import open_sim_venue
from tests.sim.server_helpers import START_MS, WAIT, small_config


async def test_forecast_lists_every_temperature_event_with_its_hidden_forecast() -> None:
    config = small_config(temperature_events=3, election_events=2)
    async with (
        open_sim_venue(config, start_epoch_ms=START_MS, pump=False) as venue,
        httpx.AsyncClient(timeout=WAIT) as http,
    ):
        with trio.fail_after(WAIT):
            response = await http.get(f"{venue.clob_url}/sim/forecast")
            refused = await http.post(f"{venue.clob_url}/sim/forecast")
        temperature = [e for e in venue.universe.events if e.kind == "temperature"]

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert refused.status_code == 405
    body = response.json()
    assert [item["event_id"] for item in body] == [e.id for e in temperature]
    assert len(body) == 3
    for item, event in zip(body, temperature, strict=True):
        assert set(item) == {"event_id", "city", "day", "mean_c", "sd_c"}
        assert item["city"] == event.city
        # Decimal strings, exact from the venue's tenths of a degree.
        assert isinstance(item["mean_c"], str)
        assert isinstance(item["sd_c"], str)
        mean_tenths = int(Decimal(item["mean_c"]) * 10)
        sd_tenths = int(Decimal(item["sd_c"]) * 10)
        assert mean_tenths == event.forecast_mean_c_tenths
        assert sd_tenths == event.forecast_sd_c_tenths
        # It is the forecast the brackets are priced from.
        brackets = [m.bracket for m in event.markets if m.bracket is not None]
        assert bracket_fair_prices(brackets, mean_tenths, sd_tenths) == [
            m.fair_price for m in event.markets
        ]
        # The day is the one the title names, one to three days after the venue's start.
        day = date.fromisoformat(item["day"])
        named = parse_city_day(event.title)
        assert (named.city, named.month, named.day) == (event.city, day.month, day.day)
        assert 1 <= (day - date(2026, 7, 1)).days <= 3


async def test_forecast_is_empty_without_temperature_events() -> None:
    config = small_config(temperature_events=0)
    async with (
        open_sim_venue(config, start_epoch_ms=START_MS, pump=False) as venue,
        httpx.AsyncClient(timeout=WAIT) as http,
    ):
        with trio.fail_after(WAIT):
            response = await http.get(f"{venue.clob_url}/sim/forecast")
    assert response.status_code == 200
    assert response.json() == []
