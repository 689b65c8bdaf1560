"""Fault injection: each switch does what it says, counts itself, and can be flipped live.

The first tests exercise ``bot.sim.faults`` and the pump's timers without sockets (autojump clock
where time matters); the rest flip one switch on a running venue and watch a plain client.
"""

from __future__ import annotations

import random

import attrs
import httpx
import orjson
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed

from bot.config import SimFaultsConfig
from bot.core.errors import FrameDecodeError
from bot.core.wire.market import decode_market_frame
from bot.core.wire.market_events import UnknownEvent
from bot.sim.exchange import SimExchange
from bot.sim.faults import MALFORMED_KINDS, Faults, MalformedKind, malformed_frame
from bot.sim.server import CLOSE_DROPPED, SimApp
from bot.sim.universe import generate_universe
from bot.sim.venue import SimVenue, flow_config, open_sim_venue, universe_config
from tests.sim.server_helpers import (
    START_MS,
    WAIT,
    frames_until_pong,
    market_ws,
    next_text,
    receive_for,
    small_config,
    subscribe,
    wait_closed,
)

# --- the switches themselves ------------------------------------------------------------------


def test_switches_validate_when_set() -> None:
    faults = Faults()
    faults.malformed_rate = 0.25
    with pytest.raises(ValueError, match="malformed_rate"):
        faults.malformed_rate = 1.5
    with pytest.raises(ValueError, match="silent"):
        faults.silent = 1  # type: ignore[assignment]
    with pytest.raises(ValueError, match="latency_ms"):
        faults.latency_ms = -1
    assert faults.malformed_rate == 0.25


def test_from_config_copies_every_switch_and_reset_clears_them() -> None:
    config = SimFaultsConfig(silent=True, malformed_rate=0.5, latency_ms=20, http_503_rate=1.0)
    faults = Faults.from_config(config, rng=random.Random(1))
    for field in attrs.fields(SimFaultsConfig):
        assert getattr(faults, field.name) == getattr(config, field.name)
    faults.reset()
    for field in attrs.fields(SimFaultsConfig):
        assert getattr(faults, field.name) == field.default


async def test_setting_a_switch_wakes_waiters() -> None:
    faults = Faults()
    woken = trio.Event()

    async def waiter() -> None:
        await faults.wait_changed()
        woken.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert not woken.is_set()
        faults.silent = True
        with trio.fail_after(1):
            await woken.wait()


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_each_malformed_kind_is_what_it_claims(kind: MalformedKind) -> None:
    sample = [
        {
            "market": "0x" + "ab" * 32,
            "price_changes": [
                {
                    "asset_id": "123",
                    "price": "0.5",
                    "size": "10",
                    "side": "BUY",
                    "hash": "0" * 40,
                    "best_bid": "0.5",
                    "best_ask": "0.51",
                }
            ],
            "timestamp": "1",
            "event_type": "price_change",
        }
    ]
    frame = malformed_frame(kind, sample, random.Random(3), 1)
    if kind == "unknown_event":
        (event,) = decode_market_frame(frame)
        assert isinstance(event, UnknownEvent)
    else:
        with pytest.raises(FrameDecodeError):
            decode_market_frame(frame)
        if kind == "bad_json":
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(frame)
    assert malformed_frame(kind, sample, random.Random(3), 1) == frame  # seeded


def test_http_fault_draws_follow_the_rates() -> None:
    faults = Faults(http_429_rate=0.25, http_503_rate=0.25, rng=random.Random(5))
    answers = [faults.http_fault() for _ in range(4_000)]
    statuses = [a.status if a is not None else 200 for a in answers]
    for status, share in ((429, 0.25), (503, 0.25), (200, 0.5)):
        assert abs(statuses.count(status) / len(statuses) - share) < 0.04
    stats = faults.statistics()
    assert stats.http_429 == statuses.count(429)
    assert stats.http_503 == statuses.count(503)
    assert stats.total == stats.http_429 + stats.http_503


# --- timers without sockets (autojump) ----------------------------------------------------------


def _offline_venue(**changes: object) -> SimVenue:
    """A SimVenue whose tasks can run without serving (no sockets: safe with autojump)."""
    config = small_config(**changes)
    universe = generate_universe(universe_config(config, epoch_ms=START_MS), random.Random(1))
    exchange = SimExchange(universe, flow_config(config), random.Random(2), START_MS)
    faults = Faults.from_config(config.faults, rng=random.Random(3))
    t0 = trio.current_time()
    app = SimApp(universe, exchange, faults, config, clock=lambda: START_MS)
    return SimVenue(config, universe, exchange, faults, app, START_MS, t0, rng=random.Random(4))


async def test_drop_every_closes_all_connections_on_its_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = _offline_venue()
    for _ in range(3):
        venue.app.hub.open().subscribed.set()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(venue.run_drop_fault)
        await trio.sleep(5)
        assert venue.faults.statistics().drop_rounds == 0  # off by default
        venue.faults.drop_every_s = 2.0
        await trio.sleep(4.5)
        stats = venue.faults.statistics()
        assert stats.drop_rounds == 2
        assert stats.connections_dropped == 3  # dropped once; a closing socket is not counted again
        venue.faults.drop_every_s = 0
        await trio.sleep(10)
        assert venue.faults.statistics().drop_rounds == 2
        nursery.cancel_scope.cancel()


async def test_pump_makes_the_configured_rate_and_poisson_opportunities(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = _offline_venue(events_per_second=250.0, opportunity_rate=2.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(venue.run_pump)
        await trio.sleep(20)
        stats = venue.statistics()
        assert abs(stats.steps - 250 * 20) <= 3
        assert 20 <= stats.opportunities_injected <= 60  # Poisson, mean 40
        venue.pause_pump()
        await trio.sleep(5)
        assert venue.statistics().steps == stats.steps
        venue.resume_pump()
        await trio.sleep(1)
        assert abs(venue.statistics().steps - stats.steps - 250) <= 3
        nursery.cancel_scope.cancel()


# --- each switch on a running venue -------------------------------------------------------------


async def test_drop_every_closes_sockets_with_going_away() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        await subscribe(ws, venue.universe.token_ids()[:2])
        venue.faults.drop_every_s = 0.2
        assert (await wait_closed(ws)).code == CLOSE_DROPPED
        stats = venue.statistics().faults
        assert stats.drop_rounds >= 1
        assert stats.connections_dropped == 1


async def test_drop_all_connections_now() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as first,
        market_ws(venue.ws_market_url) as second,
    ):
        for ws in (first, second):
            await subscribe(ws, venue.universe.token_ids()[:1])
            await frames_until_pong(ws)
        assert venue.drop_all_connections() == 2
        for ws in (first, second):
            with trio.fail_after(WAIT), pytest.raises(ConnectionClosed):
                await frames_until_pong(ws)
        assert venue.statistics().faults.connections_dropped == 2


async def test_silent_stops_data_but_still_answers_ping() -> None:
    async with (
        open_sim_venue(small_config(events_per_second=2_000.0), start_epoch_ms=START_MS) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        await subscribe(ws, venue.universe.token_ids())
        assert await receive_for(ws, 0.1)
        venue.faults.silent = True
        await frames_until_pong(ws)  # drain what was queued before the switch
        assert await receive_for(ws, 0.2) == []
        assert await frames_until_pong(ws) == []  # PONG still comes, with nothing before it
        token = venue.universe.token_ids()[0]
        for operation in ("unsubscribe", "subscribe"):  # a fresh subscription: no snapshot
            message = {"operation": operation, "assets_ids": [token]}
            await ws.send_message(orjson.dumps(message).decode())
        assert await frames_until_pong(ws) == []
        assert venue.statistics().faults.silenced_frames > 0
        venue.faults.silent = False
        assert await receive_for(ws, 0.1)


async def test_silent_from_the_config_file_applies_from_the_start() -> None:
    config = small_config(faults=SimFaultsConfig(silent=True))
    async with (
        open_sim_venue(config, start_epoch_ms=START_MS) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        await subscribe(ws, venue.universe.token_ids(), initial_dump=False)
        assert await receive_for(ws, 0.1) == []
        assert venue.faults.silent


async def test_stop_reading_leaves_ping_unanswered_until_reading_resumes() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        await subscribe(ws, venue.universe.token_ids()[:1])
        await frames_until_pong(ws)
        venue.faults.stop_reading = True
        await trio.sleep(0.05)  # the reader is parked on its current receive: one more gets in
        await ws.send_message("PING")
        await ws.send_message("PING")
        got = await receive_for(ws, 0.2)
        assert got.count("PONG") <= 1
        assert venue.statistics().faults.unread_pauses == 1
        venue.faults.stop_reading = False
        with trio.fail_after(WAIT):
            while got.count("PONG") < 2:
                got.append(await next_text(ws))


async def test_malformed_rate_inserts_every_kind_before_real_frames() -> None:
    config = small_config(seed=11, faults=SimFaultsConfig(malformed_rate=1.0))
    async with (
        open_sim_venue(config, start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        await subscribe(ws, venue.universe.token_ids())
        await frames_until_pong(ws)
        for _ in range(40):
            await venue.step(5)
        frames = await frames_until_pong(ws)
        good = bad = unknown = 0
        for frame in frames:
            try:
                events = decode_market_frame(frame)
            except FrameDecodeError:
                bad += 1
                continue
            if all(isinstance(event, UnknownEvent) for event in events):
                unknown += 1
            else:
                good += 1
        stats = venue.statistics().faults
        assert good == 40
        assert bad + unknown == 40 == stats.malformed_frames
        assert set(stats.malformed_by_kind) == set(MALFORMED_KINDS)
        assert unknown == stats.malformed_by_kind["unknown_event"]


async def test_duplicate_rate_sends_frames_twice() -> None:
    config = small_config(faults=SimFaultsConfig(duplicate_rate=1.0))
    async with (
        open_sim_venue(config, start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        await subscribe(ws, venue.universe.token_ids())
        await frames_until_pong(ws)  # snapshots are replies: never duplicated
        await venue.step(10)
        first, second = await frames_until_pong(ws)
        assert first == second
        assert venue.statistics().faults.duplicated_frames == 1


async def test_reorder_rate_swaps_consecutive_frames() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        await subscribe(ws, venue.universe.token_ids())
        await frames_until_pong(ws)
        venue.faults.reorder_rate = 1.0
        one = await venue.step(10)
        two = await venue.step(10)
        frames = await frames_until_pong(ws)
        assert [orjson.loads(frame) for frame in frames] == [two, one]
        assert venue.statistics().faults.reordered_frames == 1


async def test_latency_delays_every_frame() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        market_ws(venue.ws_market_url) as ws,
    ):
        await subscribe(ws, venue.universe.token_ids()[:1])
        await frames_until_pong(ws)
        start = trio.current_time()
        await frames_until_pong(ws)
        fast = trio.current_time() - start
        venue.faults.latency_ms = 150
        start = trio.current_time()
        await frames_until_pong(ws)
        assert trio.current_time() - start >= 0.15 > fast
        assert venue.statistics().faults.delayed_frames == 1


@pytest.mark.parametrize(
    ("switch", "status"),
    [("http_429_rate", 429), ("http_425_rate", 425), ("http_503_rate", 503)],
)
async def test_rest_error_answers(switch: str, status: int) -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        httpx.AsyncClient(timeout=WAIT) as http,
    ):
        setattr(venue.faults, switch, 1.0)
        venue.faults.retry_after_s = 7
        for url in (f"{venue.clob_url}/ok", f"{venue.gamma_url}/markets"):
            response = await http.get(url)
            assert response.status_code == status
            assert response.headers["content-type"] == "application/json"
            assert "error" in response.json()
            assert response.headers["retry-after"] == "7"
        assert getattr(venue.statistics().faults, f"http_{status}") == 2
        setattr(venue.faults, switch, 0.0)
        assert (await http.get(f"{venue.clob_url}/ok")).status_code == 200


async def test_cloudflare_403_is_an_html_page() -> None:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        httpx.AsyncClient(timeout=WAIT) as http,
    ):
        venue.faults.http_403_rate = 1.0
        response = await http.get(f"{venue.clob_url}/book", params={"token_id": "1"})
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["server"] == "cloudflare"
        assert "Cloudflare" in response.text
        assert "Sorry, you have been blocked" in response.text
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(response.content)
        assert venue.statistics().faults.http_403 == 1


async def test_faults_total_counts_everything() -> None:
    config = small_config(faults=SimFaultsConfig(http_429_rate=0.5, latency_ms=1))
    async with (
        open_sim_venue(config, start_epoch_ms=START_MS, pump=False) as venue,
        httpx.AsyncClient(timeout=WAIT) as http,
    ):
        for _ in range(20):
            await http.get(f"{venue.clob_url}/ok")
        stats = venue.statistics().faults
        assert 0 < stats.http_429 < 20
        assert stats.total == stats.http_429
