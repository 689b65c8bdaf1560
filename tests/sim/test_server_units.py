"""Pieces of the sim server without sockets: the outbox bound, per-connection filtering, frames."""

from __future__ import annotations

from typing import Any

import orjson
import trio
import trio.testing

from bot.sim.faults import Faults
from bot.sim.server import (
    CLOSE_SLOW_CONSUMER,
    MarketHub,
    Outbox,
    OutFrame,
    SimUrls,
    _filter,
    encode_frame,
)

YES, NO, OTHER = "111", "222", "333"


def _price_change() -> dict[str, Any]:
    return {
        "market": "0xm",
        "price_changes": [
            {"asset_id": YES, "price": "0.4", "size": "1", "side": "BUY"},
            {"asset_id": NO, "price": "0.6", "size": "1", "side": "SELL"},
        ],
        "timestamp": "1",
        "event_type": "price_change",
    }


def test_urls_from_the_bound_address() -> None:
    urls = SimUrls.from_base("http://127.0.0.1:8123")
    assert urls.as_dict() == {
        "gamma_url": "http://127.0.0.1:8123/gamma",
        "clob_url": "http://127.0.0.1:8123",
        "ws_market_url": "ws://127.0.0.1:8123/ws/market",
    }


def test_price_change_keeps_only_subscribed_changes() -> None:
    event = _price_change()
    assert _filter([event], {YES, NO}, False) == [event]  # untouched: the same object
    (only_yes,) = _filter([event], {YES}, False)
    assert [c["asset_id"] for c in only_yes["price_changes"]] == [YES]
    assert len(event["price_changes"]) == 2  # the original is intact
    assert _filter([event], {OTHER}, False) == []


def test_custom_events_need_the_feature() -> None:
    best = {"event_type": "best_bid_ask", "asset_id": YES}
    new = {"event_type": "new_market", "assets_ids": [OTHER]}
    resolved = {"event_type": "market_resolved", "assets_ids": [YES, NO]}
    trade = {"event_type": "last_trade_price", "asset_id": YES}
    events: list[dict[str, Any]] = [best, new, resolved, trade]
    assert _filter(events, {YES}, False) == [trade]
    assert _filter(events, {YES}, True) == events
    assert _filter(events, {OTHER}, True) == [new]


def test_one_event_is_an_object_several_an_array() -> None:
    event = {"event_type": "x", "asset_id": YES}
    assert orjson.loads(encode_frame([event])) == event
    assert orjson.loads(encode_frame([event, event])) == [event, event]


async def test_outbox_bounds_data_frames_only() -> None:
    box = Outbox(2)
    assert box.offer(OutFrame("a"))
    assert box.offer(OutFrame("b"))
    assert not box.offer(OutFrame("c"))  # full: the caller drops the connection
    assert box.offer(OutFrame("PONG", data=False))  # replies always fit
    assert [(await box.get()).text for _ in range(3)] == ["a", "b", "PONG"]
    assert box.data_frames == 0
    assert box.peak == 3


async def test_outbox_close_marker_jumps_the_queue() -> None:
    box = Outbox(5)
    box.offer(OutFrame("a"))
    box.close_now(1001, "bye")
    frame = await box.get()
    assert frame.close_code == 1001
    assert len(box) == 0


async def test_get_waits_and_wait_room_wakes(autojump_clock: trio.testing.MockClock) -> None:
    box = Outbox(3)
    got: list[str] = []

    async def reader() -> None:
        got.append((await box.get()).text)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        box.offer(OutFrame("late"))
    assert got == ["late"]
    for name in "xyz":
        box.offer(OutFrame(name))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.wait_room, 1)
        await trio.sleep(1)
        await box.get()
        await box.get()
    assert box.data_frames == 1


async def test_hub_drops_a_slow_consumer_and_keeps_the_rest() -> None:
    hub = MarketHub(Faults(), outbox_frames=1)
    slow, fine = hub.open(), hub.open()
    for conn in (slow, fine):
        conn.assets.add(YES)
        conn.subscribed.set()
    event = {"event_type": "last_trade_price", "asset_id": YES}
    assert hub.broadcast([event]) == 2
    await fine.outbox.get()
    assert hub.broadcast([event]) == 1  # the slow one overflowed
    assert slow.closing
    assert (await slow.outbox.get()).close_code == CLOSE_SLOW_CONSUMER
    assert hub.statistics().slow_consumers_dropped == 1
    assert not fine.closing
