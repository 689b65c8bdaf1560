"""The supervised user channel: our own order and trade events, authenticated, reconnecting.

``UserFeed`` keeps one WebSocket to the venue's ``/ws/user`` (PROTOCOL.md 2) open and turns its
frames into execution events through the pure ``bot.core.user_events.UserEventMapper``:
``OrderUpdate``, ``UserFill`` (``provisional`` until the trade is ``CONFIRMED``),
``FillConfirmed`` and ``TradeFailed``. Each one is handed to ``on_event`` synchronously, in wire
order; ``on_event`` must not block (put it on a channel or the bus).

Synopsis::

    feed = UserFeed(cfg.venue.ws_user_url, creds, [m.condition_id for m in markets], cfg.feed,
                    api_key=creds.api_key.reveal(), on_event=engine.on_exec_event,
                    reconcile=engine.reconcile, rng=random.Random(), log=channel)
    await nursery.start(feed.run)     # returns after the first session connected and
                                      # reconciled, or after its first attempt failed

One session
-----------
1. **Connect** through the transport seam (``bot.shell.transport``) and send the auth frame
   ``{"auth": {...}, "markets": [...], "type": "user"}``. The raw credentials go in that frame
   and nowhere else: they are never logged, and errors name the URL, not the frame. Connecting
   and subscribing must finish within ``silence_timeout_s``.
2. Start the **reader**, then call ``reconcile()``: the channel does not replay what happened
   while we were away (or before we started), so open orders and recent trades are fetched over
   REST every time a session begins. The reader runs first so that nothing the venue sends during
   reconciliation is lost; the mapper drops whatever both report twice. Only after ``reconcile``
   returns is the feed *ready* (``ready``).
3. The **heartbeat** sends ``PING`` every ``ping_interval_s``; the **watchdog** ends the session
   when nothing at all (no ``PONG``, no event) arrived for ``silence_timeout_s``. Unlike the
   market channel a quiet user channel is normal, so only a missing ``PONG`` means anything.

Malformed frames are counted and logged with an excerpt (``user_feed.malformed``), never fatal.

Reconnects follow the market feed (``bot.shell.feed``): every ``RECONNECTABLE`` end of a session
is recorded in a ``RestartBudget``; past it ``UserFeedGaveUp`` escalates. Between attempts a
full-jitter ``Backoff`` delay with the injected ``rng``; the attempt counter resets after a
session that stayed up for ``silence_timeout_s``.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Final, NoReturn

import attrs
import orjson
import trio

from bot.core.backoff import Backoff, RestartBudget
from bot.core.errors import FrameDecodeError
from bot.core.user_events import UserEventMapper
from bot.core.wire.market_events import Pong, UnknownEvent
from bot.core.wire.user import decode_user_frame
from bot.shell.transport import ConnectionLost, transport_for

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable, Sequence

    from bot.config import FeedConfig
    from bot.core.auth import ApiCreds
    from bot.shell.logsink import LogChannel
    from bot.shell.transport import Connection, Transport

__all__ = [
    "RECONNECTABLE",
    "UserFeed",
    "UserFeedGaveUp",
    "UserFeedStale",
    "UserFeedStatistics",
    "auth_frame",
]


class UserFeedStale(Exception):
    """The watchdog found the user socket silent (no ``PONG``) for ``silence_timeout_s``."""


class UserFeedGaveUp(Exception):
    """The user channel exhausted its restart budget; the error escalates to the root."""


RECONNECTABLE: Final = (ConnectionLost, OSError, trio.TooSlowError, UserFeedStale)
"""The closed list of errors that end a session and trigger a reconnect (anything else is a bug).
``reconcile`` failing with one of these counts as a failed session too."""


@attrs.frozen
class UserFeedStatistics:
    """Counters of a ``UserFeed`` (a frozen snapshot)."""

    ready: bool
    connects: int
    reconnects: int
    reconciles: int
    frames: int
    events: int
    malformed: int
    unknown_events: int
    duplicates: int
    last_error: str


class UserFeed:
    """The authenticated user channel, supervised (see the module docstring).

    Args:
        ws_url: the ``/ws/user`` URL.
        creds: our L2 credentials (sent raw in the auth frame only).
        markets: condition ids to subscribe to; empty for every market of the key.
        cfg: heartbeat, watchdog and reconnect settings (shared with the market feed).
        on_event: receives every execution event, synchronously; must not block.
        reconcile: called after every (re)connect, before the feed reports ready.
        rng: randomness for the backoff jitter (seed it in tests).
        mapper: the state machine (default: one keyed by ``creds.api_key``); pass one to share
            the engine's ``strategy_of``/``is_ours``.
        log: where ``user_feed.*`` records go, if anywhere.
        transport: the socket seam (default: ``transport_for(cfg.transport)``).
    """

    def __init__(
        self,
        ws_url: str,
        creds: ApiCreds,
        markets: Sequence[str],
        cfg: FeedConfig,
        *,
        on_event: Callable[[object], None],
        reconcile: Callable[[], Awaitable[None]] | None,
        rng: random.Random,
        mapper: UserEventMapper | None = None,
        log: LogChannel | None = None,
        transport: Transport | None = None,
    ) -> None:
        self._ws_url = ws_url
        self._creds = creds
        self._markets = list(dict.fromkeys(markets))
        self._cfg = cfg
        self._on_event = on_event
        self._reconcile = reconcile
        self._rng = rng
        self._mapper = mapper if mapper is not None else UserEventMapper(creds.api_key.reveal())
        self._log = log
        self._transport = transport if transport is not None else transport_for(cfg.transport)
        self._backoff = Backoff(cfg.reconnect_base_s, cfg.reconnect_max_s)
        self._ready = False
        self._connects = 0
        self._reconnects = 0
        self._reconciles = 0
        self._frames = 0
        self._events = 0
        self._malformed = 0
        self._unknown = 0
        self._last_error = ""
        self._last_frame_at = -math.inf
        self._connected_at: float | None = None

    @property
    def ready(self) -> bool:
        """Connected, subscribed and reconciled since the last (re)connect."""
        return self._ready

    def statistics(self) -> UserFeedStatistics:
        """A frozen snapshot of the counters."""
        return UserFeedStatistics(
            ready=self._ready,
            connects=self._connects,
            reconnects=self._reconnects,
            reconciles=self._reconciles,
            frames=self._frames,
            events=self._events,
            malformed=self._malformed,
            unknown_events=self._unknown,
            duplicates=self._mapper.duplicates,
            last_error=self._last_error,
        )

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Keep the channel up forever; ``task_status.started()`` after the first attempt
        (successful and reconciled, or failed -- one bad start must not block the application).

        Raises:
            UserFeedGaveUp: the restart budget is exhausted.
        """
        cfg = self._cfg
        budget = RestartBudget(cfg.restart_budget, cfg.restart_window_s)
        attempt = 0
        started = False

        def mark_started() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        while True:
            reasons: list[str] = []
            self._connected_at = None
            try:
                await self._session(mark_started)
            except* RECONNECTABLE as group:
                reasons.extend(_describe(group))
            now = trio.current_time()
            self._ready = False
            reason = "; ".join(reasons) or "session ended"
            self._last_error = reason
            healthy = self._uptime(now) >= cfg.silence_timeout_s
            mark_started()
            budget = budget.record_failure(now)
            if budget.exhausted(now):
                detail = f"gave up: {budget.describe(now)}; last error: {reason}"
                self._offer_log({"kind": "user_feed.state", "state": "down", "detail": detail})
                raise UserFeedGaveUp(f"user channel {self._ws_url}: {detail}")
            if healthy:
                attempt = 0
            delay = self._backoff.delay(attempt, self._rng)
            attempt += 1
            self._offer_log(
                {
                    "kind": "user_feed.state",
                    "state": "reconnecting",
                    "detail": f"{reason}; next attempt in {delay:.2f}s",
                }
            )
            await trio.sleep(delay)
            self._reconnects += 1

    def _uptime(self, now: float) -> float:
        """How long the session that just ended was connected (0 if it never was)."""
        return 0.0 if self._connected_at is None else now - self._connected_at

    # --- one session ----------------------------------------------------------------------------

    async def _session(self, mark_started: Callable[[], None]) -> None:
        cfg = self._cfg
        with trio.CancelScope(deadline=trio.current_time() + cfg.silence_timeout_s) as setup:
            async with self._transport.connect(
                self._ws_url,
                receive_buffer=cfg.receive_buffer_bytes,
                max_message=cfg.max_message_bytes,
            ) as conn:
                self._connects += 1
                self._last_frame_at = trio.current_time()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(partial(self._reader, conn), name="user feed reader")
                    await conn.send(self._auth_frame())
                    setup.deadline = math.inf
                    self._connected_at = trio.current_time()
                    nursery.start_soon(partial(self._heartbeat, conn), name="user feed heartbeat")
                    nursery.start_soon(self._watchdog, name="user feed watchdog")
                    if self._reconcile is not None:
                        await self._reconcile()
                        self._reconciles += 1
                    self._ready = True
                    self._offer_log({"kind": "user_feed.state", "state": "ready", "detail": ""})
                    mark_started()
        if setup.cancelled_caught:
            raise trio.TooSlowError(
                f"connecting to the user channel took longer than {cfg.silence_timeout_s:g}s"
            )

    def _auth_frame(self) -> str:
        return auth_frame(self._creds, self._markets)

    async def _reader(self, conn: Connection) -> None:
        while True:
            for raw in await conn.receive_many():
                self._on_frame(raw, trio.current_time())

    def _on_frame(self, raw: str, now: float) -> None:
        self._last_frame_at = now
        self._frames += 1
        try:
            events = decode_user_frame(raw)
        except FrameDecodeError as exc:
            self._malformed += 1
            self._offer_log(
                {
                    "kind": "user_feed.malformed",
                    "reason": exc.reason,
                    "excerpt": exc.excerpt,
                }
            )
            return
        for event in events:
            if isinstance(event, Pong):
                continue
            if isinstance(event, UnknownEvent):
                self._unknown += 1
                continue
            for out in self._mapper.apply(event, now):
                self._events += 1
                self._on_event(out)

    async def _heartbeat(self, conn: Connection) -> None:
        interval = self._cfg.ping_interval_s
        while True:
            await conn.send("PING")
            await trio.sleep(interval)

    async def _watchdog(self) -> None:
        silence = self._cfg.silence_timeout_s
        while True:
            deadline = self._last_frame_at + silence
            now = trio.current_time()
            if now >= deadline:
                raise UserFeedStale(
                    f"nothing received for {now - self._last_frame_at:.2f}s "
                    f"(a PING every {self._cfg.ping_interval_s:g}s)"
                )
            await trio.sleep_until(deadline)

    def _offer_log(self, record: dict[str, object]) -> None:
        if self._log is not None:
            record.setdefault("received_at", trio.current_time())
            self._log.offer(record)


def _describe(group: BaseExceptionGroup[BaseException]) -> list[str]:
    """One line per leaf exception of ``group`` (nested groups are walked)."""
    lines: list[str] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            lines.extend(_describe(exc))
        else:
            lines.append(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return lines


def auth_frame(creds: ApiCreds, markets: Sequence[str] = ()) -> str:
    """The user channel's first frame (PROTOCOL.md 2): the only place the raw credentials are
    used. No ``markets``: every market of the key."""
    message: dict[str, object] = {
        "auth": {
            "apiKey": creds.api_key.reveal(),
            "secret": creds.secret.reveal(),
            "passphrase": creds.passphrase.reveal(),
        },
        "type": "user",
    }
    if markets:
        message["markets"] = list(markets)
    return orjson.dumps(message).decode()
