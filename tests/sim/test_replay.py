"""Replaying a recorded session: the file format, ordering, pacing, the handshake, PING/PONG."""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING

import httpx
import orjson
import pytest
import trio

from bot.sim.replay import RecordedFrame, open_replay_server, read_recording, write_recording
from tests.sim.server_helpers import (
    START_MS,
    WAIT,
    decode_all,
    frames_until_pong,
    market_ws,
    next_text,
    subscribe,
    wait_closed,
)

if TYPE_CHECKING:
    from pathlib import Path


def _recording(count: int, gap_ms: int = 10) -> list[RecordedFrame]:
    """A real-looking session: a batched book dump, then price changes (and a recorded PONG)."""
    asset = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
    market = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
    book = {
        "market": market,
        "asset_id": asset,
        "timestamp": str(START_MS),
        "hash": "0" * 40,
        "bids": [{"price": "0.48", "size": "100"}, {"price": "0.49", "size": "20"}],
        "asks": [{"price": "0.52", "size": "40"}, {"price": "0.51", "size": "10"}],
        "tick_size": "0.01",
        "event_type": "book",
    }
    frames = [RecordedFrame(START_MS, orjson.dumps([book]).decode())]
    for n in range(1, count):
        change = {
            "market": market,
            "price_changes": [
                {
                    "asset_id": asset,
                    "price": "0.49",
                    "size": str(20 + n),
                    "side": "BUY",
                    "hash": f"{n:040x}",
                    "best_bid": "0.49",
                    "best_ask": "0.51",
                }
            ],
            "timestamp": str(START_MS + n * gap_ms),
            "event_type": "price_change",
        }
        frames.append(RecordedFrame(START_MS + n * gap_ms, orjson.dumps(change).decode()))
    frames.insert(2, RecordedFrame(START_MS + gap_ms, "PONG"))
    return frames


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl.gz"
    frames = _recording(5)
    assert write_recording(path, frames) == len(frames)
    assert read_recording(path) == frames
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert orjson.loads(lines[0]) == {"t_ms": START_MS, "frame": frames[0].frame}
    write_recording(path, [(1, "PONG")])  # plain (t_ms, frame) pairs work too
    assert read_recording(path) == [RecordedFrame(1, "PONG")]


def test_bad_lines_name_their_line_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"t_ms": 1, "frame": "PONG"}\n\n{"t_ms": "2", "frame": 3}\n'))
    with pytest.raises(ValueError, match=r"bad\.jsonl\.gz:3"):
        read_recording(path)


async def test_as_fast_as_the_client_reads_sends_every_frame_in_order(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl.gz"
    frames = _recording(200)
    await trio.to_thread.run_sync(write_recording, path, frames)
    async with (
        open_replay_server(path, speed=None) as server,
        market_ws(server.ws_market_url) as ws,
    ):
        await subscribe(ws, ["any asset: filters are ignored by the replay"])
        with trio.fail_after(WAIT):
            got = [await next_text(ws) for _ in range(len(frames) - 1)]
        assert got == [f.frame for f in frames if f.frame != "PONG"]
        assert decode_all(got)  # the project's decoder accepts them all
        assert await frames_until_pong(ws) == []  # then silence, and PING still answered
        stats = server.statistics()
        assert stats.frames_sent == len(frames) - 1
        assert stats.replays_finished == 1
        assert stats.pongs_sent == 1


async def test_nothing_is_sent_before_the_subscribe() -> None:
    async with (
        open_replay_server(_recording(3), speed=None) as server,
        market_ws(server.ws_market_url) as ws,
    ):
        assert await frames_until_pong(ws) == []
        await ws.send_message(orjson.dumps({"operation": "subscribe", "assets_ids": []}).decode())
        assert await frames_until_pong(ws) == []  # not the first subscribe message
        await subscribe(ws, [])
        with trio.fail_after(WAIT):
            got = [await next_text(ws) for _ in range(3)]
        assert got == [f.frame for f in _recording(3) if f.frame != "PONG"]


@pytest.mark.parametrize("speed", [1.0, 4.0])
async def test_speed_scales_the_recorded_gaps(speed: float) -> None:
    gap_ms = 100
    frames = _recording(4, gap_ms=gap_ms)
    async with (
        open_replay_server(frames, speed=speed) as server,
        market_ws(server.ws_market_url) as ws,
    ):
        await subscribe(ws, [])
        arrivals = []
        with trio.fail_after(WAIT):
            for _ in range(3):
                await next_text(ws)
                arrivals.append(trio.current_time())
        expected = 2 * gap_ms / 1000 / speed  # from the first frame to the third data frame
        elapsed = arrivals[-1] - arrivals[0]
        assert expected * 0.9 <= elapsed <= expected + 0.15


async def test_close_at_end_and_each_connection_gets_the_whole_recording() -> None:
    frames = _recording(5)
    async with open_replay_server(frames, speed=None, close_at_end=True) as server:
        for _ in range(2):
            async with market_ws(server.ws_market_url) as ws:
                await subscribe(ws, [])
                with trio.fail_after(WAIT):
                    got = [await next_text(ws) for _ in range(len(frames) - 1)]
                assert got == [f.frame for f in frames if f.frame != "PONG"]
                assert (await wait_closed(ws)).code == 1000
        assert server.statistics().connections_total == 2
        assert server.statistics().replays_finished == 2


async def test_no_rest_on_a_replay_server() -> None:
    async with open_replay_server(_recording(2)) as server, httpx.AsyncClient() as http:
        response = await http.get(server.urls.clob_url + "/book", params={"token_id": "1"})
        assert response.status_code == 404


def test_speed_must_be_positive() -> None:
    from bot.sim.replay import ReplayApp

    with pytest.raises(ValueError, match="speed"):
        ReplayApp([], speed=0)
