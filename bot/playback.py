"""Running the whole bot on a recording: ``polybot replay FILE``.

A recording (``polybot record``; the format of ``bot.sim.replay``) holds the market channel's
frames and nothing else. To replay it through the *real* pipeline -- ``run_bot`` unchanged:
discovery over Gamma and CLOB REST, the feed's WebSocket sessions, the books, the bus, the
strategies, execution on paper -- two servers are started in this process on 127.0.0.1:

* the **replay server** (``bot.sim.replay.open_replay_server``) serves the recorded frames on
  the market WebSocket, at real speed, N times faster, or as fast as the bot reads;
* the **sim venue** (``bot.sim.venue.open_sim_venue``, its order flow paused) answers Gamma and
  CLOB REST for a universe *derived from the recording*, so discovery runs for real and finds
  exactly the recorded markets.

The universe. The condition ids and token ids come from the recording's frames (``book``,
``price_change``, ``tick_size_change``, ``last_trade_price``, ``new_market``). If every recorded
market belongs to the sim universe of the configured seed (a ``polybot record --sim``
recording), that universe is used, restricted to the recorded markets and to the neg-risk events
recorded whole: questions, fee rates and neg-risk events are then the ones the recording saw.
Otherwise (a live recording) each recorded market becomes a plain binary market named after its
condition id, its two tokens in the order they first appeared, tick size and minimum order size
from its first snapshot; neg-risk grouping and fee rates are not in the frames, so they are lost.
A market of which only one token appears cannot be listed (a binary market needs both) and is
left out, counted in ``ReplayResult.markets_left_out``.

What differs from a live run, on purpose:

* ``feed.silence_timeout_s`` is raised to outlast the replay. The watchdog's quiet check and the
  missing-snapshot resnapshot ask REST, and REST here is the sim venue's model, not the
  recording: a "frozen" verdict would reconnect, and the replay server starts every connection
  from the first frame again.
* A resnapshot after a *mismatch* (the recording's top of book disagreeing with our book) still
  goes to REST and gets the sim venue's book. A faithful recording has none; the summary counts
  them (``resnapshots``) and warns, since the books may then differ from the recording.
* The journal is a separate file (``ExecutionConfig.journal`` is replaced by the caller's
  ``journal_path``), so a replay neither resumes the positions of a live paper run nor adds
  fills to them.

The end. A replay is done when the replay server has sent every frame to every shard's socket,
the feed has read them all, and every bus subscriber is parked with nothing pending (the
strategies have decided on the last book). Then the health figures and the final books are
taken and the bot is stopped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from bot.app import VenueUrls, run_bot
from bot.config import SimFaultsConfig
from bot.core.errors import FrameDecodeError
from bot.core.wire.market import decode_market_frame
from bot.core.wire.market_events import (
    BookSnapshot,
    LastTradePrice,
    NewMarket,
    PriceChange,
    TickSizeChange,
)
from bot.runtime_cli import demo_discovery
from bot.sim.replay import open_replay_server
from bot.sim.universe import MIN_ORDER_SIZE, TICK_COARSE, SimMarket, generate_universe
from bot.sim.universe import Universe as SimUniverse

# ``_rng`` is the venue's own seeding scheme: importing it (rather than restating it) keeps a
# sim recording's universe the one the venue generated, whatever the scheme becomes.
from bot.sim.venue import _rng, open_sim_venue, universe_config

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from bot.app import BotHandle
    from bot.config import Config
    from bot.core.book import BookView
    from bot.sim.replay import RecordedFrame, ReplayServer

__all__ = [
    "NothingToReplay",
    "RecordedMarket",
    "ReplayResult",
    "recorded_markets",
    "replay_recording",
    "replay_universe",
    "summary_lines",
]

_SETTLE_LIMIT_S: Final = 5.0
"""How long the end of a replay waits for the strategies to take the last books."""
_POLL_S: Final = 0.02
_SILENCE_MARGIN_S: Final = 600.0
_FULL_DEPTH: Final = 1_000_000


class NothingToReplay(ValueError):
    """The recording names no market with both of its tokens: there is nothing to list."""


@attrs.frozen
class RecordedMarket:
    """One market as the frames show it.

    Attributes:
        condition_id: The ``market`` field of its events.
        tokens: Its token ids, in order of first appearance.
        tick_size: From its first snapshot that carried one, if any.
        min_order_size: Likewise.
        first_mid: The middle of its first token's first two-sided snapshot, if any.
    """

    condition_id: str
    tokens: tuple[str, ...]
    tick_size: int | None = None
    min_order_size: int | None = None
    first_mid: int | None = None


def recorded_markets(frames: Sequence[RecordedFrame]) -> list[RecordedMarket]:
    """The markets a recording's frames mention, in order of first appearance. Pure.

    Frames that do not decode are skipped here (the replayed feed counts them as malformed).
    """
    tokens: dict[str, dict[str, None]] = {}
    ticks: dict[str, int] = {}
    sizes: dict[str, int] = {}
    mids: dict[str, int] = {}

    def add(market: str, asset: str) -> None:
        tokens.setdefault(market, {})[asset] = None

    for recorded in frames:
        if recorded.frame == "PONG":
            continue
        try:
            events = decode_market_frame(recorded.frame)
        except FrameDecodeError:
            continue
        for event in events:
            if isinstance(event, BookSnapshot):
                add(event.market, event.asset_id)
                if event.tick_size is not None:
                    ticks.setdefault(event.market, event.tick_size)
                if event.min_order_size is not None:
                    sizes.setdefault(event.market, event.min_order_size)
                if event.market not in mids and event.bids and event.asks:
                    best_bid = max(level.price for level in event.bids)
                    best_ask = min(level.price for level in event.asks)
                    mids[event.market] = (best_bid + best_ask) // 2
            elif isinstance(event, PriceChange):
                for change in event.changes:
                    add(event.market, change.asset_id)
            elif isinstance(event, TickSizeChange | LastTradePrice):
                add(event.market, event.asset_id)
            elif isinstance(event, NewMarket):
                for asset in event.assets_ids:
                    add(event.market, asset)
    return [
        RecordedMarket(
            market, tuple(assets), ticks.get(market), sizes.get(market), mids.get(market)
        )
        for market, assets in tokens.items()
    ]


def _restricted(seeded: SimUniverse, wanted: set[str]) -> SimUniverse:
    """``seeded`` with only the ``wanted`` condition ids and the events recorded whole."""
    events = tuple(
        event
        for event in seeded.events
        if all(market.condition_id in wanted for market in event.markets)
    )
    kept_events = {event.id for event in events}
    markets = tuple(
        market
        for market in seeded.markets
        if market.condition_id in wanted
        and (market.event_id is None or market.event_id in kept_events)
    )
    return SimUniverse(markets=markets, events=events)


def _derived_market(index: int, recorded: RecordedMarket, epoch_ms: int) -> SimMarket:
    tick = recorded.tick_size or TICK_COARSE
    fair = recorded.first_mid if recorded.first_mid is not None else 500_000
    fair = min(max(fair - fair % tick, tick), 1_000_000 - tick)
    when = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    gamma_id = str(900_000 + index)
    return SimMarket(
        gamma_id=gamma_id,
        condition_id=recorded.condition_id,
        question_id="0x" + f"{index:064x}",
        question=f"Recorded market {recorded.condition_id}",
        slug=f"recorded-market-{index}",
        yes_token=recorded.tokens[0],
        no_token=recorded.tokens[1],
        tick_size=tick,
        min_order_size=recorded.min_order_size or MIN_ORDER_SIZE,
        end_date_iso=(when + timedelta(days=30)).strftime(iso),
        start_date_iso=(when - timedelta(days=30)).strftime(iso),
        liquidity=Decimal(1_000_000),
        volume=Decimal(10_000_000),
        tags=("Recorded",),
        fair_price=fair,
        parent_event_id=str(90_000 + index),
        description="Derived from a recording by polybot replay.",
    )


def replay_universe(
    markets: Sequence[RecordedMarket], *, seeded: SimUniverse | None, epoch_ms: int
) -> tuple[SimUniverse, str, int]:
    """The universe the REST side of a replay lists (see the module docstring). Pure.

    Args:
        markets: ``recorded_markets(frames)``.
        seeded: The sim universe of the configured seed, if the recording may come from it.
        epoch_ms: The recording's first receive time (listing and end dates derive from it).

    Returns:
        The universe, where it came from (``"sim seed"`` or ``"recording"``), and how many
        recorded markets were left out (only one of their tokens appears).
    """
    wanted = {market.condition_id for market in markets}
    if seeded is not None and wanted and all(_known(seeded, cid) for cid in wanted):
        universe = _restricted(seeded, wanted)
        return universe, "sim seed", len(wanted) - len(universe.markets)
    pairs = [market for market in markets if len(market.tokens) == 2]
    derived = tuple(_derived_market(i, market, epoch_ms) for i, market in enumerate(pairs))
    return SimUniverse(markets=derived, events=()), "recording", len(markets) - len(pairs)


def _known(universe: SimUniverse, condition_id: str) -> bool:
    try:
        universe.market(condition_id)
    except KeyError:
        return False
    return True


@attrs.frozen
class ReplayResult:
    """How a replay ended.

    Attributes:
        health: ``BotHandle.health()`` after the last frame was processed.
        books: The feed's final book of every token, full depth.
        universe_source: ``"sim seed"`` or ``"recording"`` (see ``replay_universe``).
        markets: Markets the replay listed.
        markets_left_out: Recorded markets that could not be listed.
        frames: Recorded frames (``PONG`` included).
        frames_sent: Frames the replay server sent, all connections.
        seconds: Replay duration, trio time.
    """

    health: Mapping[str, Any]
    books: Mapping[str, BookView]
    universe_source: str
    markets: int
    markets_left_out: int
    frames: int
    frames_sent: int
    seconds: float


async def replay_recording(
    cfg: Config,
    frames: Sequence[RecordedFrame],
    *,
    speed: float | None,
    journal_path: Path,
    log_path: Path | None = None,
    console: bool = False,
    status_interval_s: float = 5.0,
    on_ready: Callable[[BotHandle], None] | None = None,
) -> ReplayResult:
    """Run the bot on ``frames`` until they are all processed; return the figures and books.

    Args:
        cfg: The configuration (its ``sim.seed`` and sizes find a sim recording's universe).
        frames: The recording, in order (``bot.sim.replay.read_recording``).
        speed: ``None``: as fast as the bot reads; else a factor (1.0 = real speed).
        journal_path: The replay's own SQLite journal (see the module docstring).
        log_path: The JSON-lines log (default ``cfg.log.dir / "replay.jsonl"``).
        console: Print human log lines to stderr.
        status_interval_s: Status line interval while it replays.
        on_ready: Called with the running bot's handle before the replay is awaited.

    Raises:
        NothingToReplay: The recording holds no market the bot could trade.
    """
    epoch_ms = frames[0].t_ms if frames else 0
    recorded = recorded_markets(frames)
    seeded = generate_universe(
        universe_config(cfg.sim, epoch_ms=epoch_ms), _rng(cfg.sim.seed, "universe")
    )
    universe, source, left_out = replay_universe(recorded, seeded=seeded, epoch_ms=epoch_ms)
    if not universe.markets:
        raise NothingToReplay(
            f"the recording names {len(recorded)} markets and none with both tokens: "
            "nothing to replay"
        )
    span_s = (frames[-1].t_ms - frames[0].t_ms) / 1000
    silence = max(cfg.feed.silence_timeout_s, span_s / (speed or 1.0) + _SILENCE_MARGIN_S)
    run_cfg = attrs.evolve(
        cfg,
        feed=attrs.evolve(cfg.feed, silence_timeout_s=silence),
        execution=attrs.evolve(cfg.execution, journal=journal_path),
        sim=attrs.evolve(cfg.sim, port=0, faults=SimFaultsConfig()),
    )
    discovery = attrs.evolve(demo_discovery(cfg.discovery), max_markets=len(universe.markets))
    data_frames = sum(1 for recorded_frame in frames if recorded_frame.frame != "PONG")
    async with (
        open_sim_venue(
            run_cfg.sim, start_epoch_ms=epoch_ms, universe=universe, pump=False
        ) as venue,
        open_replay_server(list(frames), speed=speed) as server,
        trio.open_nursery() as nursery,
    ):
        urls = VenueUrls(venue.gamma_url, venue.clob_url, server.ws_market_url)
        handle: BotHandle = await nursery.start(
            partial(
                run_bot,
                run_cfg,
                urls,
                discovery=discovery,
                console=console,
                log_path=log_path or cfg.log.dir / "replay.jsonl",
                status_interval_s=status_interval_s,
            )
        )
        started = trio.current_time()
        if on_ready is not None:
            on_ready(handle)
        await _wait_replayed(handle, server, data_frames)
        await _settle(handle)
        result = ReplayResult(
            health=handle.health(),
            books={token: book.view(_FULL_DEPTH) for token, book in handle.feed.books.items()},
            universe_source=source,
            markets=len(universe.markets),
            markets_left_out=left_out,
            frames=len(frames),
            frames_sent=server.statistics().frames_sent,
            seconds=trio.current_time() - started,
        )
        nursery.cancel_scope.cancel(reason="replay finished")
    return result


async def _wait_replayed(handle: BotHandle, server: ReplayServer, data_frames: int) -> None:
    """Until every shard's socket was sent the whole recording and the feed read it all."""
    shards = handle.feed.shard_count
    while True:
        replays = server.statistics().replays_finished
        read = handle.feed.statistics(per_token=False).frames
        if replays >= shards and read >= shards * data_frames:
            return
        await trio.sleep(_POLL_S)  # polling counters owned by the server and the feed tasks


async def _settle(handle: BotHandle) -> None:
    """Until every bus subscriber is parked with nothing pending (bounded: a crashed strategy
    never parks again, and must not hold the replay's end forever)."""
    with trio.move_on_after(_SETTLE_LIMIT_S):
        while True:
            subs = handle.bus.statistics().subscriptions
            if all(s.waiting and not s.books_pending and not s.events_queued for s in subs):
                return
            await trio.sleep(_POLL_S)


def summary_lines(result: ReplayResult) -> list[str]:
    """The replay's final health summary, for people."""
    health = result.health
    feed = health.get("feed", {})
    lines = [
        f"replayed {result.frames} frames ({result.frames_sent} sent) in {result.seconds:.2f} s; "
        f"universe from the {result.universe_source}: {result.markets} markets, "
        f"{health.get('tokens', 0)} tokens"
        + (
            f" ({result.markets_left_out} recorded markets left out)"
            if result.markets_left_out
            else ""
        ),
    ]
    if isinstance(feed, dict):
        lines.append(
            "feed: "
            + ", ".join(
                f"{key} {feed[key]}"
                for key in (
                    "frames",
                    "events",
                    "malformed",
                    "mismatches",
                    "resnapshots",
                    "stale_tokens",
                )
                if key in feed
            )
        )
        if feed.get("resnapshots"):
            lines.append(
                "warning: REST resnapshots were answered by the sim venue, not the recording: "
                "those books may differ from the recorded ones"
            )
    for name, figures in health.get("strategies", {}).items():
        t2d = figures["tick_to_decision"]
        lines.append(
            f"{name}: {figures['deliveries']} deliveries, {figures['decisions']} decisions, "
            f"tick-to-decision p50 {t2d['p50_ms']:.3f} ms p99 {t2d['p99_ms']:.3f} ms "
            f"max {t2d['max_ms']:.3f} ms"
        )
    execution = health.get("execution")
    if isinstance(execution, dict):
        lines.append(
            "execution: "
            + ", ".join(
                f"{key} {execution[key]}" for key in ("orders", "fills", "pnl") if key in execution
            )
        )
    return lines
