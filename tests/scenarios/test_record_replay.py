"""``polybot record`` and ``polybot replay`` end to end on the embedded sim venue.

The recording is made once per module by the real command (``main(["record", "--sim", ...])``)
and then replayed through the real pipeline. The oracle for the books is independent of the
bot: the recording's frames applied directly to fresh ``OrderBook``s.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from typing import TYPE_CHECKING

import attrs
import pytest

from bot.cli import EXIT_OK, main
from bot.config import load_config
from bot.core.book import OrderBook
from bot.core.errors import FrameDecodeError
from bot.core.wire.market import decode_market_frame
from bot.core.wire.market_events import BookSnapshot, PriceChange, TickSizeChange
from bot.playback import recorded_markets, replay_recording, replay_universe
from bot.sim.replay import RecordedFrame, read_recording

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from bot.config import Config
    from bot.playback import ReplayResult

# A small venue keeps the recording and its replay fast: 4 binaries, one ladder, one election.
SMALL_SIM = """
[sim]
binary_markets = 4
temperature_events = 1
election_events = 1
events_per_second = 300
"""


@attrs.frozen
class Recorded:
    config_path: Path
    out: Path
    stdout: str
    stderr: str
    code: int


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """One ``polybot record --sim --duration 1.5`` run (a real trio.run, outside any test's)."""
    root = tmp_path_factory.mktemp("record")
    config_path = root / "config.toml"
    config_path.write_text(SMALL_SIM)
    out = root / "session.jsonl.gz"
    stdout, stderr = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(root)  # nothing of the run may land in the repository
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(
                [
                    *("--config", str(config_path), "record", "--sim"),
                    *("--duration", "1.5", "--out", str(out)),
                ]
            )
    finally:
        os.chdir(cwd)
    return Recorded(config_path, out, stdout.getvalue(), stderr.getvalue(), code)


def _config(recorded: Recorded, tmp_path: Path) -> Config:
    cfg = load_config(recorded.config_path, {})
    return attrs.evolve(cfg, log=attrs.evolve(cfg.log, dir=tmp_path))


def apply_directly(frames: Sequence[RecordedFrame]) -> dict[str, OrderBook]:
    """The books the frames describe, applied with no runtime in between (the oracle)."""
    books: dict[str, OrderBook] = {}
    for recorded in frames:
        if recorded.frame == "PONG":
            continue
        try:
            events = decode_market_frame(recorded.frame)
        except FrameDecodeError:
            continue
        for event in events:
            if isinstance(event, BookSnapshot):
                books.setdefault(event.asset_id, OrderBook(event.asset_id)).apply_snapshot(event)
            elif isinstance(event, PriceChange):
                for change in event.changes:
                    if change.asset_id in books:
                        books[change.asset_id].apply_change(change, event.timestamp_ms)
            elif isinstance(event, TickSizeChange) and event.asset_id in books:
                books[event.asset_id].apply_tick_size_change(event)
    return books


def assert_books_match(result: ReplayResult, oracle: dict[str, OrderBook]) -> None:
    assert oracle, "the recording holds no book"
    for token, book in oracle.items():
        view = result.books[token]
        assert view.bids == tuple(book.bids()), token
        assert view.asks == tuple(book.asks()), token
        assert view.tick_size == book.tick_size, token
        assert not view.stale, token


def test_record_writes_a_readable_recording_with_increasing_receive_times(
    recorded: Recorded,
) -> None:
    assert recorded.code == EXIT_OK, recorded.stderr
    frames = read_recording(recorded.out)
    assert len(frames) > 10
    assert recorded.stdout.strip() == f"recorded {len(frames)} frames to {recorded.out}"
    times = [frame.t_ms for frame in frames]
    assert times == sorted(times)
    assert times[-1] - times[0] >= 500  # frames kept coming for most of the 1.5 s
    # The session starts with the subscription's book dump, byte for byte as received.
    first = decode_market_frame(next(f.frame for f in frames if f.frame != "PONG"))
    assert isinstance(first[0], BookSnapshot)
    # Every subscribed market shows up in the frames, both of its tokens.
    markets = recorded_markets(frames)
    assert f"recording {len(markets)} markets ({2 * len(markets)} tokens)" in recorded.stderr
    assert all(len(market.tokens) == 2 for market in markets)


async def test_replay_ends_with_the_books_of_the_recording(
    recorded: Recorded, tmp_path: Path
) -> None:
    cfg = _config(recorded, tmp_path)
    frames = read_recording(recorded.out)
    result = await replay_recording(
        cfg, frames, speed=None, journal_path=tmp_path / "journal.sqlite"
    )
    assert result.universe_source == "sim seed"
    assert result.markets_left_out == 0
    assert result.frames == len(frames)
    assert result.frames_sent == sum(1 for f in frames if f.frame != "PONG")
    feed = result.health["feed"]
    assert feed["frames"] == result.frames_sent
    assert feed["malformed"] == 0
    assert feed["mismatches"] == 0
    assert_books_match(result, apply_directly(frames))
    # The strategies ran on it: every one of them got deliveries.
    strategies = result.health["strategies"]
    assert strategies
    for name, figures in strategies.items():
        assert figures["deliveries"] > 0, name
        assert figures["tick_to_decision"]["count"] == figures["deliveries"], name
    assert (tmp_path / "replay.jsonl").exists()  # its own log, not polybot.jsonl
    assert not (tmp_path / "polybot.jsonl").exists()


async def test_a_recording_of_unknown_markets_replays_on_a_derived_universe(
    recorded: Recorded, tmp_path: Path
) -> None:
    cfg = _config(recorded, tmp_path)
    # Another seed: none of the recorded markets is in that sim universe, as with a recording
    # of the live venue, so the universe comes from the frames alone.
    cfg = attrs.evolve(cfg, sim=attrs.evolve(cfg.sim, seed=cfg.sim.seed + 1))
    frames = read_recording(recorded.out)
    result = await replay_recording(
        cfg, frames, speed=None, journal_path=tmp_path / "journal.sqlite"
    )
    assert result.universe_source == "recording"
    assert result.markets == len(recorded_markets(frames))
    assert result.health["tokens"] == 2 * result.markets
    assert_books_match(result, apply_directly(frames))


async def test_replay_at_a_finite_speed_takes_the_recordings_time(
    recorded: Recorded, tmp_path: Path
) -> None:
    cfg = _config(recorded, tmp_path)
    frames = read_recording(recorded.out)
    # The first 400 ms of the session at 2x: at least 200 ms of replay.
    short = [f for f in frames if f.t_ms - frames[0].t_ms <= 400]
    span_s = (short[-1].t_ms - short[0].t_ms) / 1000
    result = await replay_recording(cfg, short, speed=2.0, journal_path=tmp_path / "journal.sqlite")
    assert result.seconds >= span_s / 2 - 0.05
    assert_books_match(result, apply_directly(short))


def test_derived_universe_leaves_out_markets_seen_with_one_token() -> None:
    frames = [
        RecordedFrame(1, _book("0xaa", "1", "0.40", "0.42")),
        RecordedFrame(2, _book("0xaa", "2", "0.58", "0.60")),
        RecordedFrame(3, _book("0xbb", "3", "0.10", "0.12")),
        RecordedFrame(4, "PONG"),
        RecordedFrame(5, "not json"),
    ]
    markets = recorded_markets(frames)
    assert [(m.condition_id, m.tokens) for m in markets] == [
        ("0xaa", ("1", "2")),
        ("0xbb", ("3",)),
    ]
    assert markets[0].first_mid == 410_000
    assert markets[0].tick_size == 10_000
    universe, source, left_out = replay_universe(markets, seeded=None, epoch_ms=1_790_000_000_000)
    assert source == "recording"
    assert left_out == 1
    assert [(m.yes_token, m.no_token) for m in universe.markets] == [("1", "2")]
    assert universe.markets[0].fair_price == 410_000


def _book(market: str, asset: str, bid: str, ask: str) -> str:
    return json.dumps(
        [
            {
                "event_type": "book",
                "market": market,
                "asset_id": asset,
                "timestamp": "1790000000000",
                "hash": "0" * 40,
                "bids": [{"price": bid, "size": "10"}],
                "asks": [{"price": ask, "size": "10"}],
                "tick_size": "0.01",
            }
        ]
    )


def test_replay_command_prints_the_health_summary_as_json(
    recorded: Recorded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the replay's log goes to ./logs
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(
            [
                *("--config", str(recorded.config_path), "replay", str(recorded.out)),
                *("--max", "--json", "--quiet"),
            ]
        )
    assert code == EXIT_OK, stderr.getvalue()
    figures = json.loads(stdout.getvalue())
    assert {"markets", "tokens", "feed", "strategies", "loop_lag", "log"} <= figures.keys()
    assert figures["feed"]["frames"] > 0


def test_replay_command_rejects_a_missing_or_broken_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["replay", str(tmp_path / "missing.gz")]) == 2
    assert "no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.gz"
    broken.write_bytes(b"this is not gzip")
    assert main(["replay", str(broken), "--max"]) == 2
    assert f"cannot read {broken}" in capsys.readouterr().err
