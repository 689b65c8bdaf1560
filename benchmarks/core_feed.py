"""Decode-and-apply throughput of the pure core, one core, no sockets.

Figures:

* ``core.price_change.decode_apply``: ``price_change`` events per second, each event a real-shaped
  frame carrying a YES change and its mirrored NO change (as the venue sends them) with
  ``best_bid``/``best_ask``/``hash``, decoded by ``decode_market_frame`` and applied to both books
  with the integrity check on. Target (issue 2): at least 150,000 events/s.
* ``core.price_change.levels_applied``: the same run counted in level changes.
* ``core.price_change.decode_only``: the decoder alone, for comparison.
* ``core.book40.decode_apply``: ``book`` snapshots with 40 levels per side, decoded and applied.

The frames are generated from a seeded random walk and their ``best_bid``/``best_ask`` come from a
reference book, so the measured path is the real one, including the mismatch check (which must
find zero mismatches, and the benchmark asserts it).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import orjson

from benchmarks.common import Result, best_rate
from bot.core.book import OrderBook, apply_price_change
from bot.core.money import ONE, format_units
from bot.core.wire.market import decode_market_frame
from bot.core.wire.market_events import BookSnapshot, PriceChange

if TYPE_CHECKING:
    from collections.abc import Iterator

YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
MARKET = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
TICK = 10_000


def _levels(prices: list[int], rng: random.Random) -> list[dict[str, str]]:
    return [
        {"price": format_units(p), "size": format_units(rng.randrange(1, 50_000) * 10_000)}
        for p in prices
    ]


def book_frame(asset_id: str, rng: random.Random, depth: int, ts: int) -> bytes:
    """A real-shaped ``book`` frame with ``depth`` levels per side, best level last."""
    mid = rng.randrange(45, 56) * TICK if depth < 45 else ONE // 2
    bids = [mid - TICK * (i + 1) for i in range(depth)][::-1]  # ascending: best last
    asks = [mid + TICK * (i + 1) for i in range(depth)][::-1]  # descending: best last
    return orjson.dumps(
        {
            "event_type": "book",
            "asset_id": asset_id,
            "market": MARKET,
            "timestamp": str(ts),
            "hash": f"{rng.getrandbits(160):040x}",
            "bids": _levels(bids, rng),
            "asks": _levels(asks, rng),
            "tick_size": "0.01",
        }
    )


def price_change_frames(count: int, seed: int = 7) -> tuple[bytes, list[bytes]]:
    """A YES snapshot and ``count`` mirrored price_change frames with true best bid/ask."""
    rng = random.Random(seed)
    yes_snapshot = book_frame(YES, rng, depth=20, ts=1_757_908_892_000)
    (snap,) = decode_market_frame(yes_snapshot)
    assert isinstance(snap, BookSnapshot)
    reference = OrderBook(YES, TICK)
    reference.apply_snapshot(snap)
    frames = []
    for n in range(count):
        side = rng.choice(("BUY", "SELL"))
        best_bid, best_ask = reference.best_bid_price, reference.best_ask_price
        if side == "BUY":
            price = best_bid - TICK * rng.randrange(-1, 8)
            price = min(max(price, TICK), best_ask - TICK)
        else:
            price = best_ask + TICK * rng.randrange(-1, 8)
            price = max(min(price, ONE - TICK), best_bid + TICK)
        size = 0 if rng.random() < 0.3 else rng.randrange(1, 100_000) * 10_000
        ts = 1_757_908_892_351 + n
        change_yes = {
            "asset_id": YES,
            "price": format_units(price),
            "size": format_units(size),
            "side": side,
        }
        frame_event = {"event_type": "price_change", "market": MARKET, "timestamp": str(ts)}
        (event,) = decode_market_frame(orjson.dumps({**frame_event, "price_changes": [change_yes]}))
        assert isinstance(event, PriceChange)
        reference.apply_change(event.changes[0])
        bb, ba = reference.best_bid_price, reference.best_ask_price
        yes_change = {
            **change_yes,
            "hash": f"{rng.getrandbits(160):040x}",
            "best_bid": format_units(bb),
            "best_ask": format_units(ba),
        }
        no_change = {
            "asset_id": NO,
            "price": format_units(ONE - price),
            "size": format_units(size),
            "side": "SELL" if side == "BUY" else "BUY",
            "hash": f"{rng.getrandbits(160):040x}",
            "best_bid": format_units(ONE - ba),
            "best_ask": format_units(ONE - bb),
        }
        frames.append(orjson.dumps({**frame_event, "price_changes": [yes_change, no_change]}))
    return yes_snapshot, frames


def _fresh_books(yes_snapshot: bytes) -> dict[str, OrderBook]:
    (snap,) = decode_market_frame(yes_snapshot)
    assert isinstance(snap, BookSnapshot)
    yes = OrderBook(YES, TICK)
    yes.apply_snapshot(snap)
    no = OrderBook(NO, TICK)
    mirrored = BookSnapshot(
        asset_id=NO,
        market=MARKET,
        timestamp_ms=snap.timestamp_ms,
        hash="",
        bids=tuple(level._replace(price=ONE - level.price) for level in snap.asks),
        asks=tuple(level._replace(price=ONE - level.price) for level in snap.bids),
        tick_size=TICK,
    )
    no.apply_snapshot(mirrored)
    return {YES: yes, NO: no}


def run(*, quick: bool, only: str) -> Iterator[Result]:
    count = 20_000 if quick else 100_000
    repeats = 2 if quick else 5
    yes_snapshot, frames = price_change_frames(count)
    levels_per_event = 2

    def decode_apply() -> int:
        books = _fresh_books(yes_snapshot)
        mismatches = 0
        for frame in frames:
            for event in decode_market_frame(frame):
                if type(event) is PriceChange:
                    mismatches += len(apply_price_change(books, event))
        assert mismatches == 0, f"{mismatches} integrity mismatches on generated frames"
        return len(frames)

    def decode_only() -> int:
        for frame in frames:
            decode_market_frame(frame)
        return len(frames)

    if only in "core.price_change.decode_apply":
        rate = best_rate(decode_apply, repeats=repeats)
        yield Result(
            "core.price_change.decode_apply",
            round(rate),
            "events/s",
            {"target": 150_000, "frames": count},
        )
        yield Result(
            "core.price_change.levels_applied", round(rate * levels_per_event), "level changes/s"
        )
    if only in "core.price_change.decode_only":
        rate = best_rate(decode_only, repeats=repeats)
        yield Result("core.price_change.decode_only", round(rate), "events/s")

    if only in "core.book40.decode_apply":
        rng = random.Random(11)
        book_frames = [
            book_frame(YES, rng, depth=40, ts=1_757_908_892_000 + i) for i in range(count // 10)
        ]
        book = OrderBook(YES, TICK)

        def books40() -> int:
            for frame in book_frames:
                for event in decode_market_frame(frame):
                    if type(event) is BookSnapshot:
                        book.apply_snapshot(event)
            return len(book_frames)

        rate = best_rate(books40, repeats=repeats)
        yield Result("core.book40.decode_apply", round(rate), "books/s", {"levels_per_side": 40})
        yield Result("core.book40.levels", round(rate * 80), "levels/s")
