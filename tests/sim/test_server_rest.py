"""The sim venue's REST surface over real HTTP: Gamma under /gamma, the CLOB's public endpoints.

Every body is decoded with the project's strict decoders and compared with the real samples in
``tests/fixtures`` (field names, JSON types, key order, best-last book levels).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest

from bot.core.money import format_units, parse_units
from bot.core.wire.clob import (
    CURSOR_END,
    CURSOR_START,
    decode_clob_market,
    decode_clob_markets_page,
    decode_midpoint,
    decode_neg_risk,
    decode_price,
    decode_rest_book,
    decode_rest_books,
    decode_server_time,
    decode_spread,
    decode_tick_size,
)
from bot.core.wire.gamma import (
    decode_gamma_event,
    decode_gamma_events,
    decode_gamma_market,
    decode_gamma_markets,
)
from bot.sim.venue import SimVenue, open_sim_venue
from tests.sim.server_helpers import START_MS, fixture_json, keys_in_fixture_order, small_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def venue() -> AsyncIterator[SimVenue]:
    # The pump is paused: REST answers are compared with the books, which must hold still.
    async with open_sim_venue(
        small_config(clob_page_size=3), start_epoch_ms=START_MS, pump=False
    ) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _same_types(ours: dict[str, Any], sample: dict[str, Any], skip: set[str]) -> list[str]:
    """Keys present in both whose JSON types differ (``null`` in either is not compared)."""
    return [
        key
        for key in ours.keys() & sample.keys()
        if key not in skip
        and ours[key] is not None
        and sample[key] is not None
        and _json_type(ours[key]) != _json_type(sample[key])
    ]


async def test_urls_share_one_port(venue: SimVenue) -> None:
    assert venue.gamma_url == venue.clob_url + "/gamma"
    assert venue.clob_url.startswith("http://127.0.0.1:")
    port = venue.clob_url.rsplit(":", 1)[1]
    assert venue.ws_market_url == f"ws://127.0.0.1:{port}/ws/market"


# --- Gamma


async def test_gamma_markets_decode_and_match_the_real_shape(
    venue: SimVenue, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{venue.gamma_url}/markets", params={"limit": 500})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    markets = decode_gamma_markets(response.content)
    assert {m.condition_id for m in markets} == {m.condition_id for m in venue.universe.markets}
    for market in markets:
        sim = venue.universe.market(market.condition_id)
        assert market.clob_token_ids == (sim.yes_token, sim.no_token)
    sample = fixture_json("nautilus_crates/gamma_market.json")
    for raw in orjson.loads(response.content):
        assert keys_in_fixture_order(raw, sample)
        assert not _same_types(raw, sample, skip=set())
        assert isinstance(raw["clobTokenIds"], str)  # JSON-encoded, as on the venue


async def test_gamma_markets_filters(venue: SimVenue, http: httpx.AsyncClient) -> None:
    url = f"{venue.gamma_url}/markets"
    everything = orjson.loads((await http.get(url, params={"limit": 500})).content)
    first = everything[0]

    async def ids(**params: Any) -> list[str]:
        response = await http.get(url, params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        return [m["id"] for m in orjson.loads(response.content)]

    assert await ids(slug=first["slug"]) == [first["id"]]
    assert await ids(condition_ids=first["conditionId"]) == [first["id"]]
    assert len(await ids(limit=2)) == 2
    assert await ids(limit=2, offset=1) == [m["id"] for m in everything[1:3]]
    by_volume = await ids(order="volumeNum", ascending="true")
    volumes = {m["id"]: m["volumeNum"] for m in everything}
    assert [volumes[i] for i in by_volume] == sorted(volumes.values())
    assert await ids(order="volume_num", ascending="false") == by_volume[::-1]
    median = sorted(m["liquidityNum"] for m in everything)[len(everything) // 2]
    liquid = await ids(liquidity_num_min=median)
    assert liquid
    assert all(m["liquidityNum"] >= median for m in everything if m["id"] in liquid)
    big = max(m["volumeNum"] for m in everything)
    assert await ids(volume_num_min=big + 1) == []
    end = first["endDate"]
    assert first["id"] in await ids(end_date_min=end, end_date_max=end)
    later = datetime.fromisoformat(end.replace("Z", "+00:00")).timestamp() + 1
    after = datetime.fromtimestamp(later, tz=UTC).isoformat()
    assert first["id"] not in await ids(end_date_min=after)
    weather = await ids(tag_slug="weather")
    temperature_markets = [m for m in venue.universe.markets if m.bracket is not None]
    assert {m.gamma_id for m in temperature_markets} <= set(weather)
    assert await ids(active="false") == []
    # closed defaults to false: a resolved market leaves the default listing
    sim = venue.universe.markets[0]
    await venue.resolve(sim.condition_id, sim.yes_token)
    assert sim.gamma_id not in await ids()
    assert await ids(closed="true") == [sim.gamma_id]


async def test_gamma_bad_query_is_a_validation_error(
    venue: SimVenue, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{venue.gamma_url}/markets", params={"limit": "many"})
    assert response.status_code == 422
    assert "limit" in response.json()["error"]


async def test_gamma_events_nest_markets_and_filter(
    venue: SimVenue, http: httpx.AsyncClient
) -> None:
    url = f"{venue.gamma_url}/events"
    response = await http.get(url, params={"limit": 500})
    assert response.status_code == 200
    events = decode_gamma_events(response.content)
    neg_risk = {e.id for e in venue.universe.events}
    assert neg_risk <= {e.id for e in events}
    # every market belongs to exactly one listed event (binaries to their own)
    listed = [m.condition_id for e in events for m in e.markets]
    assert sorted(listed) == sorted(m.condition_id for m in venue.universe.markets)
    for event in events:
        assert event.neg_risk == (event.id in neg_risk)
        assert event.tags
    sample = fixture_json("nautilus_crates/gamma_event.json")
    sample = sample[0] if isinstance(sample, list) else sample
    for raw in orjson.loads(response.content):
        # JSON types as on the venue. (Key order is not compared for events: bot.sim.universe
        # renders ``markets``/``tags``/``sortBy`` last, which no JSON reader can notice.)
        assert {"id", "slug", "title", "active", "closed", "negRisk", "markets", "tags"} <= set(raw)
        assert not _same_types(raw, sample, skip=set())
    temperature = next(e for e in venue.universe.events if e.kind == "temperature")
    response = await http.get(url, params={"tag_slug": "weather", "closed": "false"})
    assert [e.id for e in decode_gamma_events(response.content)] == [temperature.id]
    response = await http.get(url, params={"slug": temperature.slug})
    (only,) = decode_gamma_events(response.content)
    assert [m.condition_id for m in only.markets] == [m.condition_id for m in temperature.markets]
    response = await http.get(url, params={"liquidity_min": 10**12})
    assert response.json() == []


async def test_gamma_single_objects_and_404(venue: SimVenue, http: httpx.AsyncClient) -> None:
    market = venue.universe.markets[0]
    event = venue.universe.events[0]
    base = venue.gamma_url
    by_id = decode_gamma_market((await http.get(f"{base}/markets/{market.gamma_id}")).content)
    by_slug = decode_gamma_market((await http.get(f"{base}/markets/slug/{market.slug}")).content)
    assert by_id == by_slug
    assert by_id.condition_id == market.condition_id
    got = decode_gamma_event((await http.get(f"{base}/events/{event.id}")).content)
    assert got.id == event.id
    got = decode_gamma_event((await http.get(f"{base}/events/slug/{event.slug}")).content)
    assert got.slug == event.slug
    assert (await http.get(f"{base}/markets/999999999")).status_code == 404
    assert (await http.get(f"{base}/nothing")).status_code == 404


# --- CLOB


async def test_clob_book_is_the_true_book_best_last(
    venue: SimVenue, http: httpx.AsyncClient
) -> None:
    sample = fixture_json("docs_examples/rest_book_docs.json")
    for token in venue.universe.token_ids()[:6]:
        response = await http.get(f"{venue.clob_url}/book", params={"token_id": token})
        assert response.status_code == 200
        snapshot = decode_rest_book(response.content)
        book = venue.exchange.book(token)
        assert sorted(snapshot.bids) == sorted(book.bids())
        assert sorted(snapshot.asks) == sorted(book.asks())
        assert [level.price for level in snapshot.bids] == sorted(lv.price for lv in book.bids())
        assert [lv.price for lv in snapshot.asks] == sorted(
            (lv.price for lv in book.asks()), reverse=True
        )
        raw = orjson.loads(response.content)
        assert list(raw) == list(sample)  # same fields, same order
        assert all(isinstance(level["price"], str) for level in raw["bids"] + raw["asks"])
        assert int(raw["timestamp"]) >= START_MS


async def test_clob_book_unknown_token_is_404(venue: SimVenue, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{venue.clob_url}/book", params={"token_id": "123"})
    assert response.status_code == 404
    assert response.json() == {"error": "No orderbook exists for the requested token id"}
    response = await http.get(f"{venue.clob_url}/book")
    assert response.status_code == 400


async def test_clob_books_batch_and_payload_limit(venue: SimVenue, http: httpx.AsyncClient) -> None:
    tokens = venue.universe.token_ids()[:4]
    response = await http.post(
        f"{venue.clob_url}/books", json=[{"token_id": t} for t in [*tokens, "404"]]
    )
    assert response.status_code == 200
    assert [snapshot.asset_id for snapshot in decode_rest_books(response.content)] == tokens
    response = await http.post(f"{venue.clob_url}/books", json=[{"token_id": tokens[0]}] * 501)
    assert response.status_code == 400
    assert response.json() == {"error": "Payload exceeds the limit"}
    response = await http.post(f"{venue.clob_url}/books", content=b"{not json")
    assert response.status_code == 400


async def test_clob_markets_pages_with_cursors(venue: SimVenue, http: httpx.AsyncClient) -> None:
    cursor = CURSOR_START
    seen: list[str] = []
    pages = 0
    while cursor != CURSOR_END:
        response = await http.get(f"{venue.clob_url}/markets", params={"next_cursor": cursor})
        assert response.status_code == 200
        page = decode_clob_markets_page(response.content)
        assert page.limit == 3
        assert page.count == len(page.data)
        seen.extend(market.condition_id for market in page.data)
        cursor = page.next_cursor
        if cursor != CURSOR_END:
            assert int(base64.b64decode(cursor)) == len(seen)  # base64 of the offset
        pages += 1
        assert pages < 100
    assert seen == [m.condition_id for m in venue.universe.markets]
    sample = fixture_json("nautilus_py_http/markets.json")
    raw = orjson.loads(
        (await http.get(f"{venue.clob_url}/markets", params={"next_cursor": "MA=="})).content
    )
    assert list(raw) == list(sample)
    assert keys_in_fixture_order(raw["data"][0], sample["data"][0])
    bad = await http.get(f"{venue.clob_url}/markets", params={"next_cursor": "%%%"})
    assert bad.status_code == 400


async def test_clob_market_by_condition_id(venue: SimVenue, http: httpx.AsyncClient) -> None:
    sim = venue.universe.markets[-1]
    response = await http.get(f"{venue.clob_url}/markets/{sim.condition_id}")
    market = decode_clob_market(response.content)
    assert market.condition_id == sim.condition_id
    assert [token.token_id for token in market.tokens] == [sim.yes_token, sim.no_token]
    assert market.neg_risk == sim.neg_risk
    assert keys_in_fixture_order(response.json(), fixture_json("nautilus_py_http/market.json"))
    missing = await http.get(f"{venue.clob_url}/markets/0x{'0' * 64}")
    assert missing.status_code == 404
    assert "not found" in missing.json()["error"]


async def test_clob_prices_agree_with_the_book(venue: SimVenue, http: httpx.AsyncClient) -> None:
    base = venue.clob_url
    for token in venue.universe.token_ids()[:4]:
        book = venue.exchange.book(token)
        query = {"token_id": token}
        buy = await http.get(f"{base}/price", params={**query, "side": "BUY"})
        sell = await http.get(f"{base}/price", params={**query, "side": "SELL"})
        assert decode_price(buy.content) == book.best_ask_price
        assert decode_price(sell.content) == book.best_bid_price
        assert isinstance(buy.json()["price"], str)
        mid = decode_midpoint((await http.get(f"{base}/midpoint", params=query)).content)
        assert mid == (book.best_bid_price + book.best_ask_price) // 2
        spread = decode_spread((await http.get(f"{base}/spread", params=query)).content)
        assert spread == book.best_ask_price - book.best_bid_price
        tick = await http.get(f"{base}/tick-size", params=query)
        assert decode_tick_size(tick.content) == book.tick_size
        assert isinstance(tick.json()["minimum_tick_size"], float)  # a number, unlike /book
        tick_path = await http.get(f"{base}/tick-size/{token}")
        assert tick_path.json() == tick.json()
        neg_risk = await http.get(f"{base}/neg-risk", params=query)
        assert decode_neg_risk(neg_risk.content) == venue.universe.market_for_token(token).neg_risk
    bad_side = await http.get(f"{base}/price", params={"token_id": token, "side": "HOLD"})
    assert bad_side.status_code == 400
    assert format_units(parse_units("0.5")) == "0.5"


async def test_clob_time_ok_version(venue: SimVenue, http: httpx.AsyncClient) -> None:
    base = venue.clob_url
    time = await http.get(f"{base}/time")
    assert time.text.isdigit()  # a bare integer, not an object
    assert abs(decode_server_time(time.content) - START_MS // 1000) <= 60
    for path in ("/", "/ok"):
        response = await http.get(base + path)
        assert response.status_code == 200
        assert response.json() == "OK"
    assert (await http.get(f"{base}/version")).json() == {"version": 2}
    unknown = await http.get(f"{base}/no/such/path")
    assert unknown.status_code == 404
    assert (await http.delete(f"{base}/book")).status_code == 405
