"""The supervised market feed: WebSocket sessions per shard -> exact order books -> the bus.

``MarketFeed`` owns one ``OrderBook`` per token and keeps it equal to the venue's, whatever the
socket does. It splits the tokens into *shards* of at most ``FeedConfig.assets_per_socket`` (the
venue stops sending snapshots past 500 assets per connection; PROTOCOL.md 1.3) and runs one
supervised session per shard, each in its own cancel scope::

    MarketFeed.run
    ├── resnapshot worker          rate-limited REST /book for tokens whose book went wrong
    └── shard i (one per assets_per_socket tokens)
        ├── REST fallback          polls /books while the shard has been down too long
        └── reconnect loop
            └── session            connect -> subscribe -> (reader | heartbeat | watchdog)

Synopsis::

    feed = MarketFeed(universe.token_ids(), cfg.feed, ws_url=cfg.venue.ws_market_url,
                      rest=rest, bus=bus, rng=random.Random(), log=channel)
    await nursery.start(feed.run)            # returns once every shard has tried once
    feed.books[token].best_bid()             # read-only; strategies use the bus's views
    feed.statistics()                        # frozen counters, per shard and per token

One session
-----------
1. **Connect** through the transport seam (``bot.shell.transport``: trio-websocket or the
   ``websockets`` sans-IO protocol, by ``FeedConfig.transport``).
2. **Subscribe** in frames of at most ``subscribe_batch_size`` ids (a frame with thousands of ids
   gets the connection closed; PROTOCOL.md 1.3): the first frame is the ``type: market`` message,
   the rest are ``operation: subscribe``; all ask for ``initial_dump`` explicitly. Connecting and
   subscribing must finish within ``silence_timeout_s`` (``trio.TooSlowError`` otherwise).
3. Three sibling tasks until one of them fails:

   * the **reader**: takes every frame already received at once (``receive_many``: one
     checkpoint per burst), then per frame: ``received_at = trio.current_time()``, the
     ``recorder`` if any, decode, apply to the books, and publish *one* ``bus.publish_batch``
     per frame (the views of the
     tokens the frame changed, plus the must-not-lose events). It never awaits anything but the
     socket: the bus and the log channel are synchronous and non-blocking, so a slow strategy or a
     stalled disk can never stop the reader (which for trio-websocket would also stop the
     library answering pings). Deltas for a token without a snapshot since this connection began
     are discarded (the venue replays nothing; PROTOCOL.md 1.6). A malformed frame is counted and
     logged (``feed.malformed``), never fatal: the decoder applies a frame whole or not at all.
   * the **heartbeat**: the text ``PING`` every ``ping_interval_s`` (the first one at once);
     ``PONG`` only proves liveness and is never decoded.
   * the **watchdog** (below).

Watchdog: a quiet market versus a frozen socket
-----------------------------------------------
A socket can fail in two ways that look alike from the reader: it dies (no bytes at all), or it
*freezes* -- ``PONG``s keep coming but market data stops, for hours (py-clob-client #292). And a
market can simply be quiet. The watchdog tells the three apart with two clocks per shard, the
last ``PONG`` and the last data frame (anything but ``PONG``, across the whole shard):

* no ``PONG`` for ``3 * ping_interval_s``: the socket is **dead** -> ``FeedStale`` -> reconnect;
* ``PONG``s arrive but no data for ``silence_timeout_s``: either frozen or quiet. A shard carries
  up to hundreds of tokens, so whole-shard silence is rare on a live venue, but a handful of
  sleepy markets can be quiet for minutes, and reconnecting those every ``silence_timeout_s``
  would burn the restart budget for nothing. So the watchdog asks REST: one ``POST /books`` for
  the shard's tokens, compared level by level with our books. Equal: the market is quiet, the
  silence clock restarts (counted as ``quiet_checks``). Different, or REST failed: the socket is
  **frozen** -> ``ShardState(frozen)`` -> ``FeedFrozen`` -> reconnect, and every token of the
  shard is marked stale until its new snapshot.
* ``silence_timeout_s`` after subscribing, tokens that still have no snapshot (the venue
  sometimes never delivers a subscription; NT #4901) get a REST resnapshot.

The watchdog sleeps until the earliest of its deadlines and re-checks (a frame moves the deadline
only by updating a float, so the reader pays nothing for it).

Reconnect policy
----------------
Every end of a session -- the transport's ``ConnectionLost``, an ``OSError``, a
``trio.TooSlowError`` (connect or subscribe too slow), the watchdog's ``FeedStale``/``FeedFrozen``
-- is handled by ``except*`` in the shard's reconnect loop (the session's nursery wraps them in
groups; TRIO_IDIOMS.md 2). Anything else is a bug and crashes the tree on purpose. Then:

* every token of the shard that was connected is marked stale (``TokenStale``, and a stale view)
  at once -- before the transport's closing handshake, which a dead peer can stretch to its whole
  close timeout -- until its new snapshot arrives (``TokenFresh``), and a ``ShardState`` event
  goes out on every state transition;
* the failure is recorded in a ``RestartBudget`` (``restart_budget`` failures within
  ``restart_window_s``); one more and the shard goes ``down`` and raises ``FeedGaveUp``, which
  escalates to the root: a permanently broken endpoint must be visible, not a quiet loop;
* the shard waits ``Backoff.delay(attempt, rng)``: full jitter, uniform in
  ``[0, min(reconnect_max_s, reconnect_base_s * 2**attempt)]`` with the injected rng, so a herd of
  clients spreads out after a venue outage and a test can predict every delay. ``attempt`` goes
  back to 0 after a *healthy* session (connected for at least ``silence_timeout_s``), so a venue
  that drops us once an hour reconnects at once every time.

REST fallback
-------------
While a shard has been down (not connected) for longer than ``rest_fallback_after_s`` -- counted
from the drop, or from the start if it never connected -- a sibling task polls ``POST /books``
for its tokens every ``rest_fallback_interval_s`` (each poll bounded by that interval), applies
the answers as snapshots and publishes the views; the tokens are fresh again, with
``TokenFresh(source=rest)``. The reconnect attempts go on meanwhile; once the socket is back the
polling stops, the socket's snapshots replace the REST ones (``TokenFresh(source=ws)``).

Mismatches and resnapshots
--------------------------
Every current ``price_change`` carries the venue's top of book after the change; ``OrderBook``
returns a ``Mismatch`` when ours differs and marks the book stale. The feed publishes
``TokenStale(mismatch)`` and queues the token for the resnapshot worker, which fetches
``GET /book`` (``POST /books`` for several), at most once per token per
``resnapshot_interval_s``, and applies the answer only if the book is still stale (a socket
snapshot may have fixed it meanwhile). Failures are counted and retried at the same rate.

REST and the socket race (the answer can be older than changes already applied, or newer than
changes still in flight). The worker resolves it with the change timestamps and one property of
the channel -- a change carries a level's new *total*, so replaying a contiguous run of changes
that ends at a snapshot's point leaves the snapshot unchanged: changes received while the request
was in flight are recorded and those stamped at or after the REST snapshot are applied again on
top of it; changes arriving later but stamped before it are skipped (``discarded_changes``). The
same resnapshot serves tokens that got no socket snapshot within ``silence_timeout_s``.

Readiness
---------
``run`` calls ``task_status.started()`` once every shard has *tried* once: connected and sent
all its subscribe frames, or failed its first attempt. Waiting for every shard to succeed would
let one unreachable shard block the whole application at startup; after a failed first attempt
that shard keeps reconnecting (and falls back to REST) in the background, and its tokens stay
stale (``BookView.stale``) until data arrives, which is what strategies must check anyway.

Statistics
----------
``statistics()`` returns a frozen ``FeedStatistics``: per shard (state, connects, reconnects,
frames, events, malformed, pongs, last data time...), totals (events per second over the last
``RATE_WINDOW_S``, malformed, resnapshots, mismatches, REST fallback polls) and per token the
*refresh gaps*: p50, p99 and max of the intervals between two updates of the token's book
(the last ``GAP_SAMPLES`` intervals for the percentiles, all of them for the max). A token the
venue forgot shows up there as a 36-second max gap long before anyone notices it by eye.
``refresh_gap_histograms()`` counts every one of those intervals, per shard, in fixed buckets
(``REFRESH_GAP_BUCKETS_S``) since start: the cumulative form Prometheus needs.
"""

from __future__ import annotations

import heapq
import math
import operator
from collections import deque
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, final

import attrs
import orjson
import trio

from bot.core.backoff import Backoff, RestartBudget
from bot.core.book import OrderBook
from bot.core.errors import FrameDecodeError
from bot.core.wire.market import decode_market_frame
from bot.core.wire.market_events import (
    BookSnapshot,
    LastTradePrice,
    MarketResolved,
    NewMarket,
    PriceChange,
    PriceLevelChange,
    TickSizeChange,
    UnknownEvent,
)
from bot.shell.feed_events import (
    FeedEvent,
    FreshSource,
    ShardState,
    ShardStatus,
    StaleReason,
    TokenFresh,
    TokenStale,
)
from bot.shell.health import Histogram
from bot.shell.rest import RestFailure
from bot.shell.transport import ConnectionLost, transport_for

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from bot.config import FeedConfig
    from bot.core.book import BookReader, BookView, Mismatch
    from bot.shell.bus import Bus
    from bot.shell.health import HistogramSnapshot
    from bot.shell.logsink import LogChannel
    from bot.shell.rest import RestClient
    from bot.shell.transport import Connection, Transport

__all__ = [
    "GAP_SAMPLES",
    "RATE_WINDOW_S",
    "RECONNECTABLE",
    "REFRESH_GAP_BUCKETS_S",
    "RESNAPSHOT_ATTEMPTS",
    "FeedFrozen",
    "FeedGaveUp",
    "FeedStale",
    "FeedStatistics",
    "MarketFeed",
    "RefreshGaps",
    "ShardStatistics",
]

GAP_SAMPLES: Final = 256
"""Refresh gaps kept per token for the percentiles (the max covers every gap)."""

REFRESH_GAP_BUCKETS_S: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Upper bounds (seconds) of the refresh-gap histograms: a busy book refreshes every few ms, a
quiet one every few seconds, a forgotten one (the 36 s of seed 000) lands in the top buckets."""

RATE_WINDOW_S: Final = 10.0
"""The window of ``FeedStatistics.events_per_s``."""

RESNAPSHOT_ATTEMPTS: Final = 3
"""Resnapshots in a row that may fail to fix a token before the worker stops retrying it."""

DEAD_AFTER_PINGS: Final = 3
"""No ``PONG`` for this many ping intervals: the socket is dead (PMC uses 30 s at 10 s pings)."""

_DEDUPE_KEEP: Final = 1024
"""``new_market``/``market_resolved`` reach every shard that holds (or, for ``new_market``,
does not hold) the market: the last this many are remembered to publish each once."""


class FeedStale(Exception):
    """The watchdog found a shard's socket dead: no ``PONG`` for three ping intervals."""


class FeedFrozen(Exception):
    """The watchdog found a shard's socket frozen: ``PONG``s but no market data, and REST shows
    the books moved (or could not confirm that they did not)."""


class FeedGaveUp(Exception):
    """A shard exhausted its restart budget; the feed stops and the error escalates to the root."""


RECONNECTABLE: Final = (ConnectionLost, OSError, trio.TooSlowError, FeedStale, FeedFrozen)
"""The closed list of errors that end a session and trigger a reconnect (anything else is a bug)."""


# --- statistics --------------------------------------------------------------------------------


@attrs.frozen
class RefreshGaps:
    """The intervals between two updates of one token's book, in seconds.

    Attributes:
        count: Intervals measured so far.
        p50: Median of the last ``GAP_SAMPLES`` intervals.
        p99: 99th percentile of the last ``GAP_SAMPLES`` intervals.
        max: The longest interval ever.
    """

    count: int
    p50: float
    p99: float
    max: float


@attrs.frozen
class ShardStatistics:
    """Counters of one shard (one WebSocket session at a time).

    Attributes:
        shard: The shard's index.
        tokens: Tokens in the shard.
        state: The current state.
        detail: Why it is in that state.
        connects: Transport connections opened.
        reconnects: Retries after a failed attempt or an ended session.
        frames: Data frames received (anything but ``PONG``), malformed ones included.
        events: Events decoded.
        malformed: Frames that failed to decode.
        unknown_events: Events of a type the decoder does not know (ignored).
        discarded_changes: Level changes dropped because their token had no snapshot yet on this
            connection.
        pongs: ``PONG`` frames received.
        frozen_detected: Sessions the watchdog ended as frozen.
        dead_detected: Sessions the watchdog ended as dead.
        quiet_checks: Silences REST confirmed as a quiet market (no reconnect).
        rest_fallback_polls: ``POST /books`` polls while down.
        tokens_ready: Tokens with a snapshot on the current connection.
        last_data_at: ``trio.current_time()`` of the last data frame, or ``None``.
        last_pong_at: ``trio.current_time()`` of the last ``PONG``, or ``None``.
    """

    shard: int
    tokens: int
    state: ShardStatus
    detail: str
    connects: int
    reconnects: int
    frames: int
    events: int
    malformed: int
    unknown_events: int
    discarded_changes: int
    pongs: int
    frozen_detected: int
    dead_detected: int
    quiet_checks: int
    rest_fallback_polls: int
    tokens_ready: int
    last_data_at: float | None
    last_pong_at: float | None


@attrs.frozen
class FeedStatistics:
    """A frozen snapshot of the feed's counters (``MarketFeed.statistics``).

    Attributes:
        shards: One entry per shard.
        tokens: Tokens the feed keeps books for.
        stale_tokens: Tokens whose book is stale now.
        connects: Transport connections opened, all shards.
        reconnects: Retries, all shards.
        frames: Data frames, all shards.
        events: Events decoded, all shards.
        events_per_s: Events per second over the last ``RATE_WINDOW_S`` seconds.
        malformed: Malformed frames, all shards.
        unknown_events: Events of unknown types, all shards.
        mismatches: Changes after which our top of book disagreed with the venue's.
        bad_updates: Snapshots or changes the books refused (e.g. a price out of range).
        resnapshots: Tokens fetched by the resnapshot worker.
        resnapshot_failures: Resnapshot requests that failed or timed out.
        rest_fallback_polls: REST fallback polls, all shards.
        rest_fallback_failures: REST fallback polls that failed or timed out.
        max_refresh_gap: The longest refresh gap of any token, seconds.
        refresh_gaps: Per token (empty when ``statistics(per_token=False)``).
    """

    shards: tuple[ShardStatistics, ...]
    tokens: int
    stale_tokens: int
    connects: int
    reconnects: int
    frames: int
    events: int
    events_per_s: float
    malformed: int
    unknown_events: int
    mismatches: int
    bad_updates: int
    resnapshots: int
    resnapshot_failures: int
    rest_fallback_polls: int
    rest_fallback_failures: int
    max_refresh_gap: float
    refresh_gaps: Mapping[str, RefreshGaps]


# --- internal state ----------------------------------------------------------------------------

_GAP_MAX: Final = operator.attrgetter("gap_max")
_LAST_UPDATE: Final = operator.attrgetter("last_update_at")


@final
class _Token:
    """One token: its book, its shard, and the bookkeeping the feed does around the book."""

    __slots__ = (
        "asset_id",
        "book",
        "gap_count",
        "gap_max",
        "gaps",
        "last_update_at",
        "resnap_at",
        "resnap_failures",
        "shard",
        "source",
        "stale_announced",
    )

    def __init__(self, asset_id: str, shard: _Shard) -> None:
        self.asset_id = asset_id
        self.book = OrderBook(asset_id)
        self.shard = shard
        self.last_update_at: float | None = None
        self.gaps: deque[float] = deque(maxlen=GAP_SAMPLES)
        self.gap_count = 0
        self.gap_max = 0.0
        # A new book is stale until its first snapshot; TokenFresh is published then.
        self.stale_announced = True
        self.source = FreshSource.WS
        self.resnap_at = -math.inf
        self.resnap_failures = 0

    def touch(self, now: float) -> None:
        """Record an update of the book at ``now`` (for the refresh gaps)."""
        last = self.last_update_at
        if last is not None:
            gap = now - last
            self.gaps.append(gap)
            self.shard.gap_histogram.observe(gap)
            self.gap_count += 1
            if gap > self.gap_max:
                self.gap_max = gap
        self.last_update_at = now

    def refresh_gaps(self) -> RefreshGaps:
        if not self.gaps:
            return RefreshGaps(self.gap_count, 0.0, 0.0, self.gap_max)
        ordered = sorted(self.gaps)
        last = len(ordered) - 1
        return RefreshGaps(
            self.gap_count, ordered[last // 2], ordered[(last * 99) // 100], self.gap_max
        )


@final
class _Shard:
    """The mutable state of one shard; only its own tasks (and the feed's sync code) touch it."""

    __slots__ = (
        "changed",
        "connected",
        "connected_at",
        "connected_for",
        "connects",
        "dead_detected",
        "detail",
        "discarded",
        "down_since",
        "end_reason",
        "events",
        "fallback_active",
        "fallback_polls",
        "frames",
        "frozen_detected",
        "gap_histogram",
        "index",
        "last_data_at",
        "last_pong_at",
        "malformed",
        "pongs",
        "quiet_checks",
        "quiet_verified_at",
        "ready",
        "reconnects",
        "recording",
        "rest_floor",
        "scope",
        "session",
        "session_started_at",
        "state",
        "tokens",
        "tried",
        "unknown",
    )

    def __init__(self, index: int, tokens: tuple[str, ...]) -> None:
        self.index = index
        self.tokens = tokens
        self.state = ShardStatus.CONNECTING
        self.detail = ""
        self.scope = trio.CancelScope()
        self.changed = trio.lowlevel.ParkingLot()
        self.session = 0
        self.connected = False
        self.connected_at = 0.0
        self.connected_for = 0.0  # how long the last session stayed connected
        self.end_reason = StaleReason.DISCONNECTED  # the watchdog's finding, if it ended it
        self.session_started_at = 0.0
        self.down_since: float | None = None
        self.fallback_active = False
        self.tried = False
        # Tokens with a snapshot since this connection began; deltas for the others are dropped.
        self.ready: set[str] = set()
        # REST resnapshots while connected (see ``MarketFeed._resnapshot``): the changes received
        # while a request is in flight, and per token the timestamp of the REST snapshot applied
        # last, before which changes still in flight are skipped.
        self.recording: dict[str, list[tuple[PriceLevelChange, int]]] = {}
        self.rest_floor: dict[str, int] = {}
        self.connects = 0
        self.reconnects = 0
        self.frames = 0
        self.events = 0
        self.malformed = 0
        self.unknown = 0
        self.discarded = 0
        self.pongs = 0
        self.frozen_detected = 0
        self.dead_detected = 0
        self.quiet_checks = 0
        self.fallback_polls = 0
        self.last_data_at: float | None = None
        self.last_pong_at: float | None = None
        self.quiet_verified_at = -math.inf
        # Every refresh gap of the shard's tokens (``_Token.touch``), for the metrics.
        self.gap_histogram = Histogram(REFRESH_GAP_BUCKETS_S)

    def wake(self) -> None:
        self.changed.unpark_all()

    async def wait_changed(self) -> None:
        """Wait for the next state change (``wake``). Always a checkpoint."""
        await self.changed.park()


# --- the feed ----------------------------------------------------------------------------------


class MarketFeed:
    """Supervised market-channel sessions keeping one exact ``OrderBook`` per token.

    See the module docstring for the session, watchdog, reconnect, fallback and resnapshot
    policies.

    Args:
        tokens: The token ids to follow (duplicates are ignored); split into shards of
            ``cfg.assets_per_socket`` in this order.
        cfg: The feed settings.
        ws_url: The market channel URL.
        rest: REST client for resnapshots, the watchdog's quiet check and the fallback.
        bus: Where views and ``FeedEvent``s are published (synchronously, never awaited).
        rng: Randomness for the backoff jitter (seed it in tests).
        log: Where ``feed.*`` telemetry records go (malformed frames, state changes), if anywhere.
        recorder: Called with ``(received_at, raw)`` for every frame received, ``PONG`` included
            (e.g. to write a replayable recording); must not block.
        transport: The socket seam (default: ``transport_for(cfg.transport)``).
        resnapshot_interval_s: At most one REST resnapshot per token per this many seconds.
        rest_timeout_s: Bound of one resnapshot request.
        view_depth: Levels per side in the published ``BookView``s.
        verify_silence_with_rest: Ask REST before calling a silent shard frozen (see the
            module docstring); ``False`` reconnects on any ``silence_timeout_s`` silence.
    """

    def __init__(
        self,
        tokens: Sequence[str],
        cfg: FeedConfig,
        *,
        ws_url: str,
        rest: RestClient,
        bus: Bus[FeedEvent],
        rng: random.Random,
        log: LogChannel | None = None,
        recorder: Callable[[float, str], None] | None = None,
        transport: Transport | None = None,
        resnapshot_interval_s: float = 3.0,
        rest_timeout_s: float = 10.0,
        view_depth: int = 10,
        verify_silence_with_rest: bool = True,
    ) -> None:
        self._cfg = cfg
        self._ws_url = ws_url
        self._rest = rest
        self._bus = bus
        self._rng = rng
        self._log = log
        self._recorder = recorder
        self._transport = transport if transport is not None else transport_for(cfg.transport)
        self._backoff = Backoff(cfg.reconnect_base_s, cfg.reconnect_max_s)
        self._resnapshot_interval_s = resnapshot_interval_s
        self._rest_timeout_s = rest_timeout_s
        self._view_depth = view_depth
        self._verify_silence = verify_silence_with_rest

        unique = list(dict.fromkeys(tokens))
        size = cfg.assets_per_socket
        self._shards = tuple(
            _Shard(index, tuple(unique[start : start + size]))
            for index, start in enumerate(range(0, len(unique), size))
        )
        self._tokens: dict[str, _Token] = {
            asset: _Token(asset, shard) for shard in self._shards for asset in shard.tokens
        }
        self._books: Mapping[str, BookReader] = MappingProxyType(
            {asset: token.book for asset, token in self._tokens.items()}
        )
        self._all_tried = trio.Event()
        self._running = False

        # Resnapshot queue: tokens waiting for the worker, in order; the worker parks here.
        self._resnap_pending: dict[str, _Token] = {}
        self._resnap_lot = trio.lowlevel.ParkingLot()
        # new_market / market_resolved seen recently (each is published once).
        self._seen_announcements: dict[tuple[str, str], None] = {}

        # Totals that are not per shard.
        self._mismatches = 0
        self._bad_updates = 0
        self._resnapshots = 0
        self._resnapshot_failures = 0
        self._fallback_failures = 0
        self._events_total = 0
        self._rate_samples: deque[tuple[float, int]] = deque(maxlen=int(RATE_WINDOW_S) + 2)
        self._next_rate_sample = -math.inf

    # --- public API ----------------------------------------------------------------------------

    @property
    def books(self) -> Mapping[str, BookReader]:
        """Every token's live book, read-only (the feed owns them; strategies use bus views)."""
        return self._books

    @property
    def shard_count(self) -> int:
        """How many shards (WebSocket sessions) the tokens were split into."""
        return len(self._shards)

    def shard_of(self, asset_id: str) -> int:
        """The index of the shard that carries ``asset_id``.

        Raises:
            KeyError: the feed does not follow the token.
        """
        return self._tokens[asset_id].shard.index

    def worst_refresh_gaps(self, n: int) -> list[tuple[str, float, float]]:
        """The ``n`` tokens whose books went longest without an update, worst first.

        Each entry is ``(token, worst gap, current silence)`` in seconds: the worst gap is the
        longer of the longest interval measured and the silence since the last update, so a
        token the venue stopped updating ranks at once instead of after its next update ends the
        gap (a token never updated has a silence of 0: nothing to measure from). No percentiles:
        two heap passes keyed on plain attributes (the ``n`` longest gaps and the ``n`` oldest
        updates, about 2 ms at 10k tokens), cheap enough for a dashboard that asks every second.
        """
        now = trio.current_time()
        tokens = self._tokens.values()
        updated = [token for token in tokens if token.last_update_at is not None]
        candidates = {
            *heapq.nlargest(n, tokens, key=_GAP_MAX),
            *heapq.nsmallest(n, updated, key=_LAST_UPDATE),
        }
        entries = []
        for token in candidates:
            last = token.last_update_at
            silence = 0.0 if last is None else max(0.0, now - last)
            entries.append((token.asset_id, max(token.gap_max, silence), silence))
        entries.sort(key=lambda entry: (-entry[1], entry[0]))
        return entries[:n]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run every shard until cancelled; ``task_status.started()`` once each has tried once.

        See "Readiness" in the module docstring for why a failed first attempt also counts.

        Raises:
            FeedGaveUp: a shard exhausted its restart budget (the other shards are cancelled).
            RuntimeError: ``run`` was called twice.
        """
        if self._running:
            raise RuntimeError("MarketFeed.run may only be called once")
        self._running = True
        if not self._shards:
            self._all_tried.set()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._resnapshot_worker, name="feed resnapshots")
                for shard in self._shards:
                    nursery.start_soon(
                        partial(self._supervise, shard), name=f"feed shard {shard.index}"
                    )
                await self._all_tried.wait()
                task_status.started()
        except* FeedGaveUp as group:
            # Hide the nurseries: one domain error, the group (all shards that gave up) attached.
            raise FeedGaveUp("; ".join(_describe(group, with_type=False))) from group

    def statistics(self, *, per_token: bool = True) -> FeedStatistics:
        """A frozen snapshot of every counter (see ``FeedStatistics``).

        Args:
            per_token: Include ``refresh_gaps`` for every token (sorting their samples costs
                about 10 us per token; pass ``False`` for a cheap health line).
        """
        now = trio.current_time()
        shards = tuple(self._shard_statistics(shard) for shard in self._shards)
        gaps = (
            {asset: token.refresh_gaps() for asset, token in self._tokens.items()}
            if per_token
            else {}
        )
        return FeedStatistics(
            shards=shards,
            tokens=len(self._tokens),
            stale_tokens=sum(1 for token in self._tokens.values() if token.book.stale),
            connects=sum(s.connects for s in shards),
            reconnects=sum(s.reconnects for s in shards),
            frames=sum(s.frames for s in shards),
            events=self._events_total,
            events_per_s=self._events_rate(now),
            malformed=sum(s.malformed for s in shards),
            unknown_events=sum(s.unknown_events for s in shards),
            mismatches=self._mismatches,
            bad_updates=self._bad_updates,
            resnapshots=self._resnapshots,
            resnapshot_failures=self._resnapshot_failures,
            rest_fallback_polls=sum(s.rest_fallback_polls for s in shards),
            rest_fallback_failures=self._fallback_failures,
            max_refresh_gap=max((t.gap_max for t in self._tokens.values()), default=0.0),
            refresh_gaps=gaps,
        )

    def refresh_gap_histograms(self) -> tuple[HistogramSnapshot, ...]:
        """Per shard (by index), every refresh gap of its tokens since start, in the cumulative
        buckets of ``REFRESH_GAP_BUCKETS_S`` (Prometheus' histogram form)."""
        return tuple(shard.gap_histogram.snapshot() for shard in self._shards)

    # --- supervision ---------------------------------------------------------------------------

    async def _supervise(self, shard: _Shard) -> None:
        with shard.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    partial(self._rest_fallback, shard), name=f"feed shard {shard.index} fallback"
                )
                await self._reconnect_loop(shard)

    async def _reconnect_loop(self, shard: _Shard) -> None:
        cfg = self._cfg
        budget = RestartBudget(cfg.restart_budget, cfg.restart_window_s)
        attempt = 0
        shard.down_since = trio.current_time()
        self._announce_state(shard, ShardStatus.CONNECTING, f"{len(shard.tokens)} tokens")
        while True:
            reasons: list[str] = []
            shard.connected_for = 0.0
            try:
                await self._session(shard)
            except* RECONNECTABLE as group:
                reasons.extend(_describe(group))
            # No continue/break/return inside except* (a SyntaxError): the handling is here.
            # The session already marked its tokens stale (see ``_session``).
            now = trio.current_time()
            reason = "; ".join(reasons) or "session ended"
            healthy = shard.connected_for >= cfg.silence_timeout_s
            self._mark_tried(shard)
            budget = budget.record_failure(now)
            if budget.exhausted(now):
                detail = f"gave up: {budget.describe(now)}; last error: {reason}"
                self._announce_state(shard, ShardStatus.DOWN, detail)
                raise FeedGaveUp(f"feed shard {shard.index}: {detail}")
            if healthy:
                attempt = 0
            delay = self._backoff.delay(attempt, self._rng)
            attempt += 1
            self._announce_state(
                shard, ShardStatus.RECONNECTING, f"{reason}; next attempt in {delay:.2f}s"
            )
            await trio.sleep(delay)
            shard.reconnects += 1

    async def _session(self, shard: _Shard) -> None:
        """One connection: connect, subscribe, then read/ping/watch until something fails."""
        cfg = self._cfg
        # Connecting and subscribing share one deadline; cleared once subscribed.
        with trio.CancelScope(deadline=trio.current_time() + cfg.silence_timeout_s) as setup:
            async with self._transport.connect(
                self._ws_url,
                receive_buffer=cfg.receive_buffer_bytes,
                max_message=cfg.max_message_bytes,
            ) as conn:
                self._begin_session(shard)
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(
                            partial(self._reader, shard, conn),
                            name=f"feed shard {shard.index} reader",
                        )
                        frames = await self._subscribe(shard, conn)
                        setup.deadline = math.inf
                        self._on_connected(shard, frames)
                        nursery.start_soon(
                            partial(self._heartbeat, conn),
                            name=f"feed shard {shard.index} heartbeat",
                        )
                        nursery.start_soon(
                            partial(self._watchdog, shard),
                            name=f"feed shard {shard.index} watchdog",
                        )
                finally:
                    # Stale now, not after the closing handshake: closing a dead socket can take
                    # the transport's whole close timeout.
                    self._end_session(shard, trio.current_time(), shard.end_reason)
        if setup.cancelled_caught:
            raise trio.TooSlowError(
                f"connecting and subscribing took longer than {cfg.silence_timeout_s:g}s"
            )

    def _begin_session(self, shard: _Shard) -> None:
        now = trio.current_time()
        shard.session += 1
        shard.connects += 1
        shard.session_started_at = now
        shard.end_reason = StaleReason.DISCONNECTED
        shard.ready.clear()
        shard.rest_floor.clear()
        shard.recording.clear()
        shard.last_pong_at = now
        shard.last_data_at = now
        shard.quiet_verified_at = -math.inf

    async def _subscribe(self, shard: _Shard, conn: Connection) -> int:
        """Send the subscription in frames of at most ``subscribe_batch_size`` ids."""
        cfg = self._cfg
        tokens = shard.tokens
        batch = cfg.subscribe_batch_size
        frames = 0
        for start in range(0, len(tokens), batch):
            ids = list(tokens[start : start + batch])
            message: dict[str, object]
            if start == 0:
                message = {"assets_ids": ids, "type": "market"}
            else:
                message = {"operation": "subscribe", "assets_ids": ids}
            message["initial_dump"] = True
            message["custom_feature_enabled"] = cfg.custom_features
            await conn.send(orjson.dumps(message).decode())
            frames += 1
        return frames

    def _on_connected(self, shard: _Shard, frames: int) -> None:
        shard.connected = True
        shard.connected_at = trio.current_time()
        shard.down_since = None
        shard.fallback_active = False
        self._announce_state(
            shard,
            ShardStatus.CONNECTED,
            f"{len(shard.tokens)} tokens subscribed in {frames} frames",
        )
        self._mark_tried(shard)

    def _end_session(self, shard: _Shard, now: float, reason: StaleReason) -> None:
        """The connection is gone: every token of the shard is stale until its next snapshot."""
        if shard.connected:
            shard.connected_for = now - shard.connected_at
        if shard.connected or shard.down_since is None:
            shard.down_since = now
        shard.connected = False
        shard.ready.clear()
        views: list[BookView] = []
        events: list[FeedEvent] = []
        for asset in shard.tokens:
            token = self._tokens[asset]
            token.book.mark_stale()
            if not token.stale_announced:
                token.stale_announced = True
                events.append(TokenStale(asset, reason))
                views.append(token.book.view(self._view_depth))
        if (views or events) and not self._bus.closed:  # closed: shutting down, nobody listens
            self._bus.publish_batch(now, books=views, events=events)
        shard.wake()

    def _mark_tried(self, shard: _Shard) -> None:
        if shard.tried:
            return
        shard.tried = True
        if all(s.tried for s in self._shards):
            self._all_tried.set()

    def _announce_state(self, shard: _Shard, state: ShardStatus, detail: str) -> None:
        """Record a state; publish ``ShardState`` (and log it) only on a transition."""
        if state is ShardStatus.RECONNECTING and shard.fallback_active:
            state = ShardStatus.REST_FALLBACK
        shard.detail = detail
        # CONNECTING is the initial state and announced once, by the reconnect loop's start.
        if state is shard.state and state is not ShardStatus.CONNECTING:
            return
        shard.state = state
        now = trio.current_time()
        self._bus.publish_event(ShardState(shard.index, state, detail), now)
        self._offer_log(
            {
                "kind": "feed.shard",
                "received_at": now,
                "shard": shard.index,
                "state": state.value,
                "detail": detail,
            }
        )
        shard.wake()

    # --- the session's tasks ---------------------------------------------------------------------

    async def _reader(self, shard: _Shard, conn: Connection) -> None:
        # One checkpoint per burst (``receive_many``), one ``_on_frame`` (and one publish) per
        # frame: subscribers parked in the bus wake once per burst, not once per frame.
        receive_many = conn.receive_many
        on_frame = self._on_frame
        clock = trio.current_time
        while True:
            for raw in await receive_many():
                on_frame(shard, raw, clock())

    async def _heartbeat(self, conn: Connection) -> None:
        interval = self._cfg.ping_interval_s
        while True:
            await conn.send("PING")
            await trio.sleep(interval)

    async def _watchdog(self, shard: _Shard) -> None:
        cfg = self._cfg
        dead_after = DEAD_AFTER_PINGS * cfg.ping_interval_s
        silence = cfg.silence_timeout_s
        snapshot_check_at: float | None = shard.session_started_at + silence
        while True:
            now = trio.current_time()
            last_pong = shard.last_pong_at if shard.last_pong_at is not None else now
            last_data = shard.last_data_at if shard.last_data_at is not None else now
            pong_deadline = last_pong + dead_after
            data_deadline = max(last_data, shard.quiet_verified_at) + silence
            if now >= pong_deadline:
                shard.dead_detected += 1
                shard.end_reason = StaleReason.DEAD
                raise FeedStale(
                    f"no PONG for {now - last_pong:.2f}s (a PING every {cfg.ping_interval_s:g}s)"
                )
            if now >= data_deadline:
                quiet = await self._market_is_quiet(shard)
                if shard.last_data_at != last_data:
                    continue  # data arrived while REST was asked: not silent any more
                if quiet:
                    shard.quiet_checks += 1
                    shard.quiet_verified_at = trio.current_time()
                    continue
                shard.frozen_detected += 1
                detail = (
                    f"no market data for {trio.current_time() - last_data:.2f}s "
                    "while PONGs arrive, and REST shows the books moved"
                )
                self._announce_state(shard, ShardStatus.FROZEN, detail)
                shard.end_reason = StaleReason.FROZEN
                raise FeedFrozen(detail)
            if snapshot_check_at is not None and now >= snapshot_check_at:
                snapshot_check_at = None
                for asset in shard.tokens:
                    if asset not in shard.ready:
                        self._queue_resnapshot(self._tokens[asset])
            wake_at = min(pong_deadline, data_deadline)
            if snapshot_check_at is not None:
                wake_at = min(wake_at, snapshot_check_at)
            await trio.sleep_until(wake_at)

    async def _market_is_quiet(self, shard: _Shard) -> bool:
        """Whether REST shows the shard's books exactly as ours (a quiet market, not a frozen
        socket). ``False`` when REST fails, is slower than a ping interval, or differs."""
        if not self._verify_silence:
            return False
        tokens = [asset for asset in shard.tokens if asset in shard.ready]
        if not tokens:
            return False
        snapshots: list[BookSnapshot] | None = None
        with trio.move_on_after(self._cfg.ping_interval_s):
            try:
                snapshots = await self._rest.fetch_books(tokens)
            except (RestFailure, FrameDecodeError) as exc:
                self._offer_log(
                    {"kind": "feed.quiet_check_failed", "shard": shard.index, "error": repr(exc)}
                )
        if snapshots is None:
            return False
        for snapshot in snapshots:
            token = self._tokens.get(snapshot.asset_id)
            if token is None or snapshot.asset_id not in shard.ready:
                continue
            if not _same_levels(token.book, snapshot):
                return False
        return True

    # --- the hot path --------------------------------------------------------------------------

    def _on_frame(self, shard: _Shard, raw: str, received_at: float) -> None:
        """Apply one received frame and publish its effect. Sync: it never yields."""
        recorder = self._recorder
        if recorder is not None:
            recorder(received_at, raw)
        if raw == "PONG":
            shard.pongs += 1
            shard.last_pong_at = received_at
            return
        shard.frames += 1
        shard.last_data_at = received_at
        try:
            events = decode_market_frame(raw)
        except FrameDecodeError as exc:
            shard.malformed += 1
            self._offer_log(
                {
                    "kind": "feed.malformed",
                    "received_at": received_at,
                    "shard": shard.index,
                    "reason": exc.reason,
                    "excerpt": exc.excerpt,
                }
            )
            return
        count = len(events)
        shard.events += count
        self._events_total += count
        if received_at >= self._next_rate_sample:
            self._rate_samples.append((received_at, self._events_total))
            self._next_rate_sample = received_at + 1.0

        tokens = self._tokens
        ready = shard.ready
        floors = shard.rest_floor
        recording = shard.recording
        changed: dict[str, _Token] = {}
        out: list[FeedEvent] = []
        for event in events:
            # isinstance, not a dispatch table: the first test is the common case
            # (price_change), and a chain of exact-type checks is cheaper than a call.
            if isinstance(event, PriceChange):
                timestamp_ms = event.timestamp_ms
                for change in event.changes:
                    asset = change.asset_id
                    if recording and asset in recording:
                        recording[asset].append((change, timestamp_ms))
                    if asset not in ready:
                        shard.discarded += 1
                        continue
                    if floors and asset in floors:
                        floor = floors[asset]
                        if timestamp_ms < floor:
                            shard.discarded += 1  # already in the REST snapshot
                            continue
                        if timestamp_ms > floor:
                            del floors[asset]  # the stream has moved past the REST snapshot
                    token = tokens[asset]
                    try:
                        mismatch = token.book.apply_change(change, timestamp_ms)
                    except ValueError:
                        self._bad_update(token, out)
                        continue
                    changed[asset] = token
                    if mismatch is not None:
                        self._on_mismatch(token, mismatch, out)
            elif isinstance(event, BookSnapshot):
                asset = event.asset_id
                found = tokens.get(asset)
                if found is None or found.shard is not shard:
                    continue  # not ours (cannot happen with a well-behaved venue)
                try:
                    found.book.apply_snapshot(event)
                except ValueError:
                    self._bad_update(found, out)
                    continue
                ready.add(asset)
                if floors:
                    floors.pop(asset, None)
                changed[asset] = found
                self._freshen(found, FreshSource.WS, out)
            elif isinstance(event, LastTradePrice):
                out.append(event)
            elif isinstance(event, TickSizeChange):
                asset = event.asset_id
                if asset in ready:
                    token = tokens[asset]
                    try:
                        token.book.apply_tick_size_change(event)
                    except ValueError:
                        self._bad_update(token, out)
                    else:
                        changed[asset] = token
                out.append(event)
            elif isinstance(event, NewMarket | MarketResolved):
                if self._first_sighting((type(event).__name__, event.market)):
                    out.append(event)
            elif isinstance(event, UnknownEvent):
                shard.unknown += 1
            # best_bid_ask is redundant with the books (every price_change carries the top).
        if changed or out:
            books = []
            for token in changed.values():
                token.touch(received_at)
                books.append(token.book)
            # Live books: the bus builds a view only when a subscriber looks, once per update.
            self._bus.publish_batch(received_at, books=books, events=out, depth=self._view_depth)

    def _freshen(self, token: _Token, source: FreshSource, out: list[FeedEvent]) -> None:
        if token.stale_announced or token.source is not source:
            token.stale_announced = False
            token.source = source
            out.append(TokenFresh(token.asset_id, source))

    def _make_stale(self, token: _Token, reason: StaleReason, out: list[FeedEvent]) -> None:
        token.book.mark_stale()
        if not token.stale_announced:
            token.stale_announced = True
            out.append(TokenStale(token.asset_id, reason))

    def _on_mismatch(self, token: _Token, mismatch: Mismatch, out: list[FeedEvent]) -> None:
        self._mismatches += 1
        if not token.stale_announced:
            self._offer_log(
                {
                    "kind": "feed.mismatch",
                    "asset_id": mismatch.asset_id,
                    "expected_best_bid": mismatch.expected_best_bid,
                    "expected_best_ask": mismatch.expected_best_ask,
                    "local_best_bid": mismatch.local_best_bid,
                    "local_best_ask": mismatch.local_best_ask,
                }
            )
        self._make_stale(token, StaleReason.MISMATCH, out)
        self._queue_resnapshot(token)

    def _bad_update(self, token: _Token, out: list[FeedEvent]) -> None:
        self._bad_updates += 1
        self._make_stale(token, StaleReason.BAD_UPDATE, out)
        self._queue_resnapshot(token)

    def _first_sighting(self, key: tuple[str, str]) -> bool:
        seen = self._seen_announcements
        if key in seen:
            return False
        seen[key] = None
        if len(seen) > _DEDUPE_KEEP:
            del seen[next(iter(seen))]
        return True

    # --- REST: resnapshots and fallback --------------------------------------------------------

    def _queue_resnapshot(self, token: _Token) -> None:
        if token.asset_id not in self._resnap_pending:
            self._resnap_pending[token.asset_id] = token
            self._resnap_lot.unpark_all()

    async def _resnapshot_worker(self) -> None:
        interval = self._resnapshot_interval_s
        pending = self._resnap_pending
        while True:
            if not pending:
                await self._resnap_lot.park()
                continue
            now = trio.current_time()
            due = [token for token in pending.values() if now - token.resnap_at >= interval]
            if not due:
                wake_at = min(token.resnap_at for token in pending.values()) + interval
                with trio.move_on_at(wake_at):
                    await self._resnap_lot.park()
                continue
            for token in due:
                del pending[token.asset_id]
                token.resnap_at = now
            await self._resnapshot(due)

    async def _resnapshot(self, due: list[_Token]) -> None:
        """Fetch ``due`` over REST and replace the books that are still stale.

        REST and the socket race: the answer may be older than changes the reader applied while
        the request was in flight (REST lags), or newer than changes still in flight on the
        socket. Both are handled with the change timestamps, relying on one property of the
        channel: a change carries the level's new *total*, so replaying a contiguous run of
        changes that ends at the snapshot's point leaves the snapshot unchanged.

        * Changes received while the request is in flight are recorded; after applying the
          snapshot, those stamped at or after it are applied again (newer ones must be; same-ms
          ones are harmless either way).
        * Changes arriving later that are stamped *before* the snapshot were already in it and are
          skipped (applying them would be harmless too, but would report false mismatches).
        """
        ids = [token.asset_id for token in due]
        sessions = {token.asset_id: token.shard.session for token in due}
        for token in due:
            if token.shard.connected:
                token.shard.recording[token.asset_id] = []
        self._resnapshots += len(ids)
        snapshots: list[BookSnapshot] | None = None
        try:
            with trio.move_on_after(self._rest_timeout_s):
                try:
                    if len(ids) == 1:
                        snapshots = [await self._rest.fetch_book(ids[0])]
                    else:
                        snapshots = await self._rest.fetch_books(ids)
                except (RestFailure, FrameDecodeError) as exc:
                    self._offer_log(
                        {"kind": "feed.resnapshot_failed", "tokens": ids, "error": repr(exc)}
                    )
        finally:
            recorded: dict[str, list[tuple[PriceLevelChange, int]]] = {}
            for token in due:
                changes = token.shard.recording.pop(token.asset_id, None)
                if changes is not None and token.shard.session == sessions[token.asset_id]:
                    recorded[token.asset_id] = changes
        if snapshots is None:
            self._resnapshot_failures += 1
        else:
            self._apply_resnapshots(snapshots, sessions, recorded)
        for token in due:
            if not token.book.stale:
                token.resnap_failures = 0
                continue
            # Still wrong (or not answered): try again later, a few times. A token REST cannot
            # fix (delisted, resolved) must not cost a request every interval forever; a new
            # mismatch or the next session's snapshot check queues it again.
            token.resnap_failures += 1
            if token.shard.connected and token.resnap_failures < RESNAPSHOT_ATTEMPTS:
                self._queue_resnapshot(token)

    def _apply_resnapshots(
        self,
        snapshots: Iterable[BookSnapshot],
        sessions: Mapping[str, int],
        recorded: Mapping[str, list[tuple[PriceLevelChange, int]]],
    ) -> None:
        now = trio.current_time()
        views: list[BookView] = []
        out: list[FeedEvent] = []
        for snapshot in snapshots:
            asset = snapshot.asset_id
            token = self._tokens.get(asset)
            if token is None or sessions.get(asset) != token.shard.session:
                continue  # not asked for, or the socket reconnected meanwhile
            if not token.book.stale:
                continue  # a socket snapshot fixed it meanwhile
            book = token.book
            try:
                book.apply_snapshot(snapshot)
            except ValueError:
                self._bad_updates += 1
                continue
            shard = token.shard
            if shard.connected:
                shard.ready.add(asset)
                shard.rest_floor[asset] = snapshot.timestamp_ms
                for change, timestamp_ms in recorded.get(asset, ()):
                    if timestamp_ms < snapshot.timestamp_ms:
                        continue
                    try:
                        mismatch = book.apply_change(change, timestamp_ms)
                    except ValueError:
                        self._bad_update(token, out)
                        break
                    if mismatch is not None:
                        self._on_mismatch(token, mismatch, out)
                        break
            if not book.stale:
                self._freshen(token, FreshSource.REST, out)
            token.touch(now)
            views.append(book.view(self._view_depth))
        if views or out:
            self._bus.publish_batch(now, books=views, events=out)

    async def _rest_fallback(self, shard: _Shard) -> None:
        cfg = self._cfg
        while True:
            down_since = shard.down_since
            if shard.connected or down_since is None:
                await shard.wait_changed()
                continue
            due = down_since + cfg.rest_fallback_after_s
            if trio.current_time() < due:
                with trio.move_on_at(due):
                    await shard.wait_changed()
                continue
            if not shard.fallback_active:
                shard.fallback_active = True
                self._announce_state(
                    shard,
                    ShardStatus.REST_FALLBACK,
                    f"socket down for {trio.current_time() - down_since:.2f}s; polling REST "
                    f"every {cfg.rest_fallback_interval_s:g}s",
                )
            started = trio.current_time()
            await self._poll_rest(shard)
            next_poll = started + cfg.rest_fallback_interval_s
            while not shard.connected and trio.current_time() < next_poll:
                with trio.move_on_at(next_poll):
                    await shard.wait_changed()

    async def _poll_rest(self, shard: _Shard) -> None:
        shard.fallback_polls += 1
        snapshots: list[BookSnapshot] | None = None
        with trio.move_on_after(self._cfg.rest_fallback_interval_s):
            try:
                snapshots = await self._rest.fetch_books(list(shard.tokens))
            except (RestFailure, FrameDecodeError) as exc:
                self._offer_log(
                    {"kind": "feed.rest_fallback_failed", "shard": shard.index, "error": repr(exc)}
                )
        if snapshots is None:
            self._fallback_failures += 1
            return
        if shard.connected:
            return  # the socket came back meanwhile: its snapshots win
        now = trio.current_time()
        views: list[BookView] = []
        out: list[FeedEvent] = []
        for snapshot in snapshots:
            token = self._tokens.get(snapshot.asset_id)
            if token is None or token.shard is not shard:
                continue
            try:
                token.book.apply_snapshot(snapshot)
            except ValueError:
                self._bad_updates += 1
                continue
            self._freshen(token, FreshSource.REST, out)
            token.touch(now)
            views.append(token.book.view(self._view_depth))
        if views or out:
            self._bus.publish_batch(now, books=views, events=out)

    # --- helpers -------------------------------------------------------------------------------

    def _offer_log(self, record: dict[str, object]) -> None:
        if self._log is not None:
            self._log.offer(record)

    def _events_rate(self, now: float) -> float:
        samples = self._rate_samples
        if not samples:
            return 0.0
        start = now - RATE_WINDOW_S
        base_time, base_total = samples[-1]
        for sample_time, sample_total in samples:
            if sample_time >= start:
                base_time, base_total = sample_time, sample_total
                break
        elapsed = now - base_time
        if elapsed <= 0:
            return 0.0
        return (self._events_total - base_total) / elapsed

    def _shard_statistics(self, shard: _Shard) -> ShardStatistics:
        return ShardStatistics(
            shard=shard.index,
            tokens=len(shard.tokens),
            state=shard.state,
            detail=shard.detail,
            connects=shard.connects,
            reconnects=shard.reconnects,
            frames=shard.frames,
            events=shard.events,
            malformed=shard.malformed,
            unknown_events=shard.unknown,
            discarded_changes=shard.discarded,
            pongs=shard.pongs,
            frozen_detected=shard.frozen_detected,
            dead_detected=shard.dead_detected,
            quiet_checks=shard.quiet_checks,
            rest_fallback_polls=shard.fallback_polls,
            tokens_ready=len(shard.ready),
            last_data_at=shard.last_data_at,
            last_pong_at=shard.last_pong_at,
        )


def _describe(group: BaseExceptionGroup[BaseException], *, with_type: bool = True) -> list[str]:
    """One line per leaf exception of ``group`` (nested groups are walked)."""
    lines: list[str] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            lines.extend(_describe(exc, with_type=with_type))
        elif not with_type:
            lines.append(str(exc))
        else:
            lines.append(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return lines


def _same_levels(book: OrderBook, snapshot: BookSnapshot) -> bool:
    """Whether ``book`` holds exactly the snapshot's levels (order and zero sizes ignored)."""
    bids = sorted(level for level in snapshot.bids if level.size)
    asks = sorted(level for level in snapshot.asks if level.size)
    return bids == sorted(book.bids()) and asks == sorted(book.asks())
