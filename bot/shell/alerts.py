"""Webhook alerts: a notifier task fed without blocking, and a watcher that turns state into alerts.

Synopsis::

    notifier = Notifier.from_config(cfg.alerts, os.environ)      # None when alerts are disabled
    await nursery.start(notifier.run)                            # the one task that does HTTP
    notifier.notify(Alert(AlertKind.KILL_SWITCH, Severity.CRITICAL, "kill switch tripped"))
    await nursery.start(run_alert_watcher, handle, notifier.notify, cfg.alerts)
    ...
    notifier.close()                   # no more alerts: ``run`` sends what is queued and returns

Nothing in the trading path waits for a webhook. ``notify`` is synchronous and O(1): it puts the
alert in a bounded memory channel and returns; when the channel is full the *oldest* waiting alert
is dropped (and counted), because the newest state is the one worth telling. One task,
``Notifier.run``, takes alerts off the channel and POSTs them, each request bounded by
``timeout_s``; a webhook that fails, refuses or hangs costs that alert (counted, logged without
the URL) and nothing else.

Between the channel and the network sits ``AlertGate``, pure (``now`` passed in):

* **dedup**: alerts with the same ``key`` within ``dedup_s`` are sent once; the repeats are
  counted, and when the window ends one follow-up carries the count ("repeated 12 more times")
  and opens the next window, so a condition that persists is reported once per window;
* **rate limit**: a token bucket of ``max_per_minute`` tokens refilled continuously, so a short
  burst passes and a flood is capped; the alerts over the limit are counted and the next alert
  sent says how many were suppressed.

The watcher, ``run_alert_watcher``, keeps the hot path free of alert code altogether: every
``poll_s`` it reads the handle's figures (``watch_figures``: kill switch, shard states and
counters, reconnects, rejects by reason) and ``AlertWatcher`` (pure) compares them with the last
reading. It sends ``started`` when it starts and ``stopped`` when it is cancelled.

Payload shapes (``AlertsConfig.format``): generic JSON (every field, plus ``text``), Discord
(``{"content": text}``), Slack (``{"text": text}``), a Telegram bridge (``{"chat_id", "text"}``,
e.g. the Bot API's ``sendMessage`` URL).

The webhook URL is a secret (Discord, Slack and Telegram URLs carry the token): it is read from
the environment variable ``AlertsConfig.url_env``, held as a ``Secret`` and revealed only in the
request. Errors are logged by type and status code, never with the URL.

Shutdown: to deliver ``stopped``, run ``Notifier.run`` outside the cancel scope the watcher is
cancelled by (as the log writer is, in ``bot.app.run_bot``), and ``close()`` it after the
watcher ended: ``run`` then sends what is queued and returns. Cancelled instead, it stops at once.
"""

from __future__ import annotations

import math
import time
from collections import deque
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import attrs
import httpx
import orjson
import trio
from loguru import logger

from bot.config import AlertFormat, ConfigError, Secret
from bot.shell.feed_events import ShardStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from bot.app import BotHandle
    from bot.config import AlertsConfig

__all__ = [
    "DISCORD_LIMIT",
    "TELEGRAM_LIMIT",
    "Alert",
    "AlertGate",
    "AlertKind",
    "AlertWatcher",
    "Notifier",
    "NotifierStatistics",
    "Severity",
    "ShardFigures",
    "WatchFigures",
    "payload",
    "render_text",
    "run_alert_watcher",
    "started_alert",
    "watch_figures",
]

DISCORD_LIMIT: Final = 2000
"""Characters Discord accepts in ``content``."""

TELEGRAM_LIMIT: Final = 4096
"""Characters Telegram accepts in a message's ``text``."""

_MAX_WINDOWS: Final = 1024
"""Dedup windows kept at most (keys are few in practice: kinds times shards)."""


class AlertKind(StrEnum):
    """What happened."""

    STARTED = "started"
    STOPPED = "stopped"
    KILL_SWITCH = "kill_switch"
    FEED_FROZEN = "feed_frozen"
    FEED_DOWN = "feed_down"
    RECONNECT_STORM = "reconnect_storm"
    REJECTS = "rejects"
    HEARTBEAT = "heartbeat"
    USER_CHANNEL = "user_channel"
    OTHER = "other"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@attrs.frozen
class Alert:
    """One alert.

    Attributes:
        kind: What happened.
        severity: How urgent.
        title: One line, what a phone notification shows.
        detail: More, if any (why, how many, what to look at).
        key: The dedup key (default: the kind); e.g. ``feed_frozen:3`` per shard.
        fields: Extra ``(name, value)`` pairs (the JSON shape carries them as an object).
        at_ms: Wall-clock epoch milliseconds (stamped by ``notify`` when 0).
        repeats: On a follow-up: how many more times it happened within the dedup window.
        suppressed: Alerts the rate limit dropped since the one sent before this one.
    """

    kind: AlertKind
    severity: Severity
    title: str
    detail: str = ""
    key: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    at_ms: int = 0
    repeats: int = 0
    suppressed: int = 0

    @property
    def dedup_key(self) -> str:
        return self.key or str(self.kind)


# --- payloads ----------------------------------------------------------------------------------


def render_text(alert: Alert, *, source: str = "polybot") -> str:
    """The alert as a short human message (the text of every chat shape)."""
    lines = [f"[{source}] {alert.severity.upper()}: {alert.title}"]
    if alert.detail:
        lines.append(alert.detail)
    if alert.fields:
        lines.append(", ".join(f"{name}={value}" for name, value in alert.fields))
    if alert.repeats:
        lines.append(f"(repeated {alert.repeats} more times since it was first sent)")
    if alert.suppressed:
        lines.append(f"({alert.suppressed} other alerts were suppressed by the rate limit)")
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def payload(
    alert: Alert, fmt: AlertFormat, *, chat_id: str = "", source: str = "polybot"
) -> dict[str, Any]:
    """The JSON body of the webhook request for ``alert`` in the shape ``fmt``."""
    text = render_text(alert, source=source)
    if fmt is AlertFormat.DISCORD:
        return {"content": _clip(text, DISCORD_LIMIT)}
    if fmt is AlertFormat.SLACK:
        return {"text": text}
    if fmt is AlertFormat.TELEGRAM:
        return {"chat_id": chat_id, "text": _clip(text, TELEGRAM_LIMIT)}
    at = datetime.fromtimestamp(alert.at_ms / 1000, tz=UTC) if alert.at_ms else None
    return {
        "source": source,
        "kind": str(alert.kind),
        "severity": str(alert.severity),
        "title": alert.title,
        "detail": alert.detail,
        "key": alert.dedup_key,
        "fields": dict(alert.fields),
        "at": at.isoformat(timespec="milliseconds") if at is not None else None,
        "repeats": alert.repeats,
        "suppressed": alert.suppressed,
        "text": text,
    }


# --- dedup and rate limit (pure) ---------------------------------------------------------------


@attrs.define
class _Window:
    until: float
    last: Alert
    repeats: int = 0


@attrs.define(eq=False)
class AlertGate:
    """Dedup and rate limit (see the module docstring). Pure: every call takes ``now``.

    Attributes:
        dedup_s: The dedup window; 0 turns dedup off.
        max_per_minute: The bucket's size and its refill per minute.
        deduplicated: Alerts held back as repeats.
        rate_limited: Alerts the rate limit dropped.
    """

    dedup_s: float
    max_per_minute: int
    deduplicated: int = 0
    rate_limited: int = 0
    _windows: dict[str, _Window] = attrs.field(factory=dict, init=False)
    _tokens: float = attrs.field(init=False)
    _refilled_at: float | None = attrs.field(default=None, init=False)
    _suppressed: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        if self.max_per_minute < 1:
            raise ValueError(f"max_per_minute must be >= 1, got {self.max_per_minute}")
        self._tokens = float(self.max_per_minute)

    def admit(self, alert: Alert, now: float) -> Alert | None:
        """The alert to send now (stamped with the suppressed count), or ``None``: a repeat
        within its window (counted for the follow-up), or over the rate limit (counted)."""
        if self.dedup_s > 0:
            key = alert.dedup_key
            window = self._windows.get(key)
            if window is not None and now < window.until:
                window.repeats += 1
                window.last = alert
                self.deduplicated += 1
                return None
            if len(self._windows) >= _MAX_WINDOWS:
                self._expire(now)
            if len(self._windows) < _MAX_WINDOWS:
                self._windows[key] = _Window(now + self.dedup_s, alert)
        return self._limit(alert, now)

    def due(self, now: float, *, flush: bool = False) -> list[Alert]:
        """Follow-ups of the windows that ended by ``now`` (every window with repeats, when
        ``flush``): the last repeat with its count, rate limited like any alert."""
        out: list[Alert] = []
        for key, window in list(self._windows.items()):
            if now < window.until and not flush:
                continue
            if window.repeats:
                follow_up = attrs.evolve(window.last, repeats=window.repeats)
                # The next window starts now: a persistent condition is told once per window.
                self._windows[key] = _Window(now + self.dedup_s, window.last)
                admitted = self._limit(follow_up, now)
                if admitted is not None:
                    out.append(admitted)
            else:
                del self._windows[key]
        return out

    def next_due(self) -> float | None:
        """When the earliest window with repeats ends (``due`` has something), if any."""
        ends = [w.until for w in self._windows.values() if w.repeats]
        return min(ends) if ends else None

    def _expire(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if now >= w.until and not w.repeats]:
            del self._windows[key]

    def _limit(self, alert: Alert, now: float) -> Alert | None:
        capacity = float(self.max_per_minute)
        if self._refilled_at is not None:
            elapsed = max(0.0, now - self._refilled_at)
            self._tokens = min(capacity, self._tokens + elapsed * capacity / 60.0)
        self._refilled_at = now
        if self._tokens < 1.0:
            self._suppressed += 1
            self.rate_limited += 1
            return None
        self._tokens -= 1.0
        suppressed, self._suppressed = self._suppressed, 0
        return attrs.evolve(alert, suppressed=suppressed) if suppressed else alert


# --- the notifier ------------------------------------------------------------------------------


@attrs.frozen
class NotifierStatistics:
    """Counters of a ``Notifier``.

    Attributes:
        offered: ``notify`` calls.
        dropped: Alerts dropped because the queue was full (the oldest) or the notifier closed.
        queued: Alerts waiting now.
        deduplicated: Alerts held back as repeats (their count goes out in a follow-up).
        rate_limited: Alerts the rate limit dropped.
        sent: Requests the webhook answered with a 2xx.
        failed: Requests that failed, timed out or got another status.
    """

    offered: int
    dropped: int
    queued: int
    deduplicated: int
    rate_limited: int
    sent: int
    failed: int


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_url(url: str, var: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError([f"{var}: expected an http:// or https:// webhook URL (value not shown)"])


class Notifier:
    """Sends alerts to one webhook from one task (see the module docstring).

    Args:
        url: The webhook URL (a secret: never logged).
        fmt: The payload shape.
        chat_id: The Telegram chat id (``AlertFormat.TELEGRAM`` only).
        dedup_s: See ``AlertGate``.
        max_per_minute: See ``AlertGate``.
        timeout_s: Bound of one request, connect to answer.
        queue_size: Alerts that may wait; past it the oldest is dropped.
        source: Who is talking (the first word of every message).
        transport: The httpx transport (tests pass ``httpx.MockTransport``).
    """

    def __init__(
        self,
        url: Secret,
        *,
        fmt: AlertFormat = AlertFormat.JSON,
        chat_id: str = "",
        dedup_s: float = 300.0,
        max_per_minute: int = 10,
        timeout_s: float = 5.0,
        queue_size: int = 100,
        source: str = "polybot",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self._url = url
        self._fmt = fmt
        self._chat_id = chat_id
        self._timeout_s = timeout_s
        self._source = source
        self._transport = transport
        self._gate = AlertGate(dedup_s, max_per_minute)
        self._send, self._receive = trio.open_memory_channel[Alert](queue_size)
        self._closed = False
        self._offered = 0
        self._dropped = 0
        self._sent = 0
        self._failed = 0

    @classmethod
    def from_config(
        cls,
        cfg: AlertsConfig,
        env: Mapping[str, str],
        *,
        source: str = "polybot",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Notifier | None:
        """The notifier ``cfg`` asks for, or ``None`` when alerts are disabled.

        Raises:
            ConfigError: alerts are enabled but ``cfg.url_env`` is unset or not an http(s) URL
                (the message names the variable, never its value).
        """
        if not cfg.enabled:
            return None
        raw = env.get(cfg.url_env, "").strip()
        if not raw:
            raise ConfigError(
                [
                    f"{cfg.url_env}: alerts.enabled is true but this environment variable "
                    "(alerts.url_env) holding the webhook URL is not set"
                ]
            )
        _check_url(raw, cfg.url_env)
        return cls(
            Secret(raw),
            fmt=cfg.format,
            chat_id=cfg.chat_id,
            dedup_s=cfg.dedup_s,
            max_per_minute=cfg.max_per_minute,
            timeout_s=cfg.timeout_s,
            queue_size=cfg.queue_size,
            source=source,
            transport=transport,
        )

    def notify(self, alert: Alert) -> None:
        """Queue ``alert`` for sending. Sync, O(1), never blocks, never raises; call it in the
        trio thread. A full queue drops its oldest alert (counted); after ``close`` the alert is
        dropped (counted)."""
        self._offered += 1
        if self._closed:
            self._dropped += 1
            return
        if not alert.at_ms:
            alert = attrs.evolve(alert, at_ms=_wall_ms())
        try:
            self._send.send_nowait(alert)
        except trio.WouldBlock:
            # Full, so nobody waits in ``receive``: the oldest goes, the newest state is told.
            self._receive.receive_nowait()
            self._dropped += 1
            self._send.send_nowait(alert)

    def close(self) -> None:
        """No more alerts: ``run`` sends the queued ones (and pending repeat counts), then
        returns. Idempotent."""
        if not self._closed:
            self._closed = True
            self._send.close()

    def statistics(self) -> NotifierStatistics:
        return NotifierStatistics(
            offered=self._offered,
            dropped=self._dropped,
            queued=self._receive.statistics().current_buffer_used,
            deduplicated=self._gate.deduplicated,
            rate_limited=self._gate.rate_limited,
            sent=self._sent,
            failed=self._failed,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send alerts until ``close`` (then flush and return) or cancellation."""
        client = httpx.AsyncClient(transport=self._transport, timeout=self._timeout_s)
        try:
            task_status.started()
            gate = self._gate
            while True:
                for follow_up in gate.due(trio.current_time()):
                    await self._post(client, follow_up)
                wake = gate.next_due()
                alert: Alert | None = None
                with trio.move_on_at(wake if wake is not None else math.inf):
                    try:
                        alert = await self._receive.receive()
                    except trio.EndOfChannel:
                        break
                if alert is not None:
                    admitted = gate.admit(alert, trio.current_time())
                    if admitted is not None:
                        await self._post(client, admitted)
            for follow_up in gate.due(trio.current_time(), flush=True):
                await self._post(client, follow_up)
        finally:
            with trio.move_on_after(1.0, shield=True):
                await client.aclose()

    async def _post(self, client: httpx.AsyncClient, alert: Alert) -> None:
        body = orjson.dumps(payload(alert, self._fmt, chat_id=self._chat_id, source=self._source))
        status: int | None = None
        error = ""
        with trio.move_on_after(self._timeout_s) as scope:
            try:
                response = await client.post(
                    self._url.reveal(),
                    content=body,
                    headers={"content-type": "application/json"},
                )
            except httpx.HTTPError as exc:
                # The type only: an httpx message can quote the URL, and the URL is a secret.
                error = type(exc).__name__
            else:
                status = response.status_code
        if scope.cancelled_caught:
            error = f"no answer within {self._timeout_s:g}s"
        if status is not None and 200 <= status < 300:
            self._sent += 1
            return
        self._failed += 1
        logger.warning(
            "alert webhook failed ({}): {} alert not delivered",
            error or f"HTTP {status}",
            alert.kind,
        )


# --- the watcher -------------------------------------------------------------------------------


@attrs.frozen
class ShardFigures:
    """What the watcher reads of one shard."""

    index: int
    state: ShardStatus
    detail: str
    frozen_detected: int


@attrs.frozen
class WatchFigures:
    """What the watcher reads of the bot at each poll (``watch_figures``)."""

    kill_switch: str | None
    shards: tuple[ShardFigures, ...]
    reconnects: int
    rejections: int
    rejects_by_reason: Mapping[str, int]
    venue_rejects_by_reason: Mapping[str, int]
    heartbeat_ok: bool | None = None
    """Live trading only: the last dead-man heartbeat was acknowledged (``None`` on paper)."""
    user_channel_ready: bool | None = None
    """Live trading only: the user channel (our fills) is connected and reconciled."""


def watch_figures(handle: BotHandle) -> WatchFigures:
    """The figures of ``handle`` the watcher compares (cheap: no per-token statistics)."""
    feed = handle.feed.statistics(per_token=False)
    execution = handle.execution
    return WatchFigures(
        kill_switch=handle.engine.risk.killed,
        shards=tuple(
            ShardFigures(s.shard, s.state, s.detail, s.frozen_detected) for s in feed.shards
        ),
        reconnects=feed.reconnects,
        rejections=execution.rejections,
        rejects_by_reason=dict(execution.rejects_by_reason),
        venue_rejects_by_reason=dict(execution.venue_rejects_by_reason),
        heartbeat_ok=handle.live.stats.heartbeat_ok if handle.live is not None else None,
        user_channel_ready=(handle.user_feed.ready if handle.user_feed is not None else None),
    )


def _growth(now: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in now.items() if n > before.get(k, 0)}


def _by_reason(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{reason} x{n}" for reason, n in sorted(counts.items(), key=lambda i: -i[1]))


@attrs.define(eq=False)
class AlertWatcher:
    """Turns successive ``WatchFigures`` into alerts (pure: ``now`` is passed in).

    Args:
        first: The figures at start (nothing before them is alerted).
        storm_count: Reconnects, all shards, that make a storm...
        storm_window_s: ...within this many seconds.
        started_at: When ``first`` was read.
    """

    first: WatchFigures
    storm_count: int
    storm_window_s: float
    started_at: float
    _last: WatchFigures = attrs.field(init=False)
    _reconnects: deque[tuple[float, int]] = attrs.field(factory=deque, init=False)
    _storming: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        self._last = self.first
        self._reconnects.append((self.started_at, self.first.reconnects))

    def check(self, figures: WatchFigures, now: float) -> list[Alert]:
        """The alerts for what changed since the previous call."""
        last, self._last = self._last, figures
        alerts: list[Alert] = []
        if figures.kill_switch is not None and last.kill_switch is None:
            alerts.append(
                Alert(
                    AlertKind.KILL_SWITCH,
                    Severity.CRITICAL,
                    "kill switch tripped: no new orders until a restart",
                    figures.kill_switch,
                )
            )
        before = {s.index: s for s in last.shards}
        for shard in figures.shards:
            prev = before.get(shard.index)
            if prev is None:
                continue
            if shard.frozen_detected > prev.frozen_detected:
                alerts.append(
                    Alert(
                        AlertKind.FEED_FROZEN,
                        Severity.WARNING,
                        f"feed shard {shard.index} frozen: PONGs but no market data; reconnecting",
                        shard.detail,
                        key=f"{AlertKind.FEED_FROZEN}:{shard.index}",
                        fields=(("times", str(shard.frozen_detected - prev.frozen_detected)),),
                    )
                )
            if shard.state is ShardStatus.DOWN and prev.state is not ShardStatus.DOWN:
                alerts.append(
                    Alert(
                        AlertKind.FEED_DOWN,
                        Severity.CRITICAL,
                        f"feed shard {shard.index} gave up reconnecting",
                        shard.detail,
                        key=f"{AlertKind.FEED_DOWN}:{shard.index}",
                    )
                )
        alerts.extend(self._storm(figures.reconnects, now))
        alerts.extend(_live_alerts(figures, last))
        if (
            figures.rejections != last.rejections
            or figures.venue_rejects_by_reason != last.venue_rejects_by_reason
        ):
            risk = _growth(figures.rejects_by_reason, last.rejects_by_reason)
            venue = _growth(figures.venue_rejects_by_reason, last.venue_rejects_by_reason)
            count = sum(risk.values()) + sum(venue.values())
            parts = []
            if risk:
                parts.append(f"risk: {_by_reason(risk)}")
            if venue:
                parts.append(f"venue: {_by_reason(venue)}")
            if count:
                fields = [(f"risk.{reason}", str(n)) for reason, n in sorted(risk.items())]
                fields += [(f"venue.{reason}", str(n)) for reason, n in sorted(venue.items())]
                alerts.append(
                    Alert(
                        AlertKind.REJECTS,
                        Severity.WARNING,
                        f"{count} order{'s' if count != 1 else ''} rejected",
                        "; ".join(parts),
                        fields=tuple(fields),
                    )
                )
        return alerts

    def _storm(self, reconnects: int, now: float) -> list[Alert]:
        samples = self._reconnects
        samples.append((now, reconnects))
        # Keep one sample at or before the window's start: the baseline.
        while len(samples) >= 2 and samples[1][0] <= now - self.storm_window_s:
            samples.popleft()
        recent = reconnects - samples[0][1]
        if recent < self.storm_count:
            self._storming = False
            return []
        if self._storming:
            return []
        self._storming = True
        return [
            Alert(
                AlertKind.RECONNECT_STORM,
                Severity.WARNING,
                f"reconnect storm: {recent} feed reconnects in the last {self.storm_window_s:g}s",
                "the venue may be dropping connections or the network is unstable",
                fields=(("reconnects", str(recent)), ("total", str(reconnects))),
            )
        ]


def _live_alerts(figures: WatchFigures, last: WatchFigures) -> list[Alert]:
    """Live trading's two lifelines: the dead-man heartbeat and the user channel."""
    alerts: list[Alert] = []
    if figures.heartbeat_ok is False and last.heartbeat_ok is not False:
        alerts.append(
            Alert(
                AlertKind.HEARTBEAT,
                Severity.CRITICAL,
                "heartbeat failing: the venue cancels every open order ~15 s after the last beat",
                "see the log for the heartbeat errors",
            )
        )
    elif figures.heartbeat_ok is True and last.heartbeat_ok is False:
        alerts.append(
            Alert(AlertKind.HEARTBEAT, Severity.INFO, "heartbeat acknowledged again", key="hb_ok")
        )
    if figures.user_channel_ready is False and last.user_channel_ready is not False:
        alerts.append(
            Alert(
                AlertKind.USER_CHANNEL,
                Severity.WARNING,
                "user channel down: fills are learned late (reconciled when it is back)",
            )
        )
    return alerts


def started_alert(handle: BotHandle) -> Alert:
    """``started``: what the bot trades."""
    names = ", ".join(handle.strategies) or "none"
    return Alert(
        AlertKind.STARTED,
        Severity.INFO,
        "polybot started",
        f"{len(handle.universe.markets)} markets, {len(handle.universe.token_ids())} tokens, "
        f"{handle.feed.shard_count} feed shards; strategies: {names}",
    )


async def run_alert_watcher(
    handle: BotHandle,
    notify: Callable[[Alert], None],
    cfg: AlertsConfig,
    *,
    read: Callable[[BotHandle], WatchFigures] = watch_figures,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Send ``started``, then every ``cfg.poll_s`` the alerts for what changed; ``stopped``
    when cancelled. Reads the handle only (nothing in the hot path changes)."""
    watcher = AlertWatcher(
        read(handle),
        cfg.reconnect_storm_count,
        cfg.reconnect_storm_window_s,
        trio.current_time(),
    )
    notify(started_alert(handle))
    task_status.started()
    try:
        while True:
            await trio.sleep(cfg.poll_s)
            for alert in watcher.check(read(handle), trio.current_time()):
                notify(alert)
    finally:
        killed = handle.engine.risk.killed
        notify(
            Alert(
                AlertKind.STOPPED,
                Severity.WARNING if killed else Severity.INFO,
                "polybot stopped",
                f"the kill switch had tripped: {killed}" if killed else "",
            )
        )
