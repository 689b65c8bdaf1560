"""Webhook alerts: payload shapes, dedup, rate limit, a failing or slow webhook, the watcher.

Three layers:

* the pure pieces (``payload``, ``AlertGate``, ``AlertWatcher``) with ``now`` passed in;
* the ``Notifier`` on an in-memory ``httpx.MockTransport`` with the autojump clock (no sockets,
  so virtual time is safe: a webhook that hangs for a minute costs the test nothing);
* the ``Notifier`` against a real local HTTP receiver (hypercorn on 127.0.0.1:0, real clock,
  short timeouts), and the watcher on a whole bot against the sim venue.
"""

from __future__ import annotations

import json
import socket
import time
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import hypercorn.trio
import pytest
import trio
import trio.testing

from bot.config import AlertFormat, AlertsConfig, Config, ConfigError, Secret
from bot.shell.alerts import (
    DISCORD_LIMIT,
    Alert,
    AlertGate,
    AlertKind,
    AlertWatcher,
    Notifier,
    Severity,
    ShardFigures,
    WatchFigures,
    payload,
    run_alert_watcher,
)
from bot.shell.feed_events import ShardStatus
from bot.sim.server import hypercorn_config
from bot.sim.venue import open_sim_venue
from tests.bot_helpers import (
    START_MS,
    captured_logs,
    enable_only,
    fast_feed,
    log_and_journal_in,
    running_bot,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

TOKEN = "T0k3n-s3cr3t-abc123"
URL = f"https://hooks.example.test/services/{TOKEN}"


def alert(title: str = "something happened", *, key: str = "", **changes: Any) -> Alert:
    base = Alert(AlertKind.OTHER, Severity.WARNING, title, "why it matters", key=key)
    return attrs.evolve(base, **changes)


# --- payload shapes ----------------------------------------------------------------------------


def test_generic_json_shape_carries_every_field() -> None:
    sent = alert(
        "feed shard 2 frozen",
        key="feed_frozen:2",
        fields=(("times", "1"),),
        at_ms=1_790_000_000_123,
        repeats=3,
        suppressed=2,
    )
    body = payload(sent, AlertFormat.JSON)
    assert body == {
        "source": "polybot",
        "kind": "other",
        "severity": "warning",
        "title": "feed shard 2 frozen",
        "detail": "why it matters",
        "key": "feed_frozen:2",
        "fields": {"times": "1"},
        "at": "2026-09-21T14:13:20.123+00:00",
        "repeats": 3,
        "suppressed": 2,
        "text": body["text"],
    }
    assert body["text"].splitlines() == [
        "[polybot] WARNING: feed shard 2 frozen",
        "why it matters",
        "times=1",
        "(repeated 3 more times since it was first sent)",
        "(2 other alerts were suppressed by the rate limit)",
    ]


def test_chat_shapes() -> None:
    sent = alert("kill switch tripped")
    text = "[polybot] WARNING: kill switch tripped\nwhy it matters"
    assert payload(sent, AlertFormat.DISCORD) == {"content": text}
    assert payload(sent, AlertFormat.SLACK) == {"text": text}
    assert payload(sent, AlertFormat.TELEGRAM, chat_id="-100123") == {
        "chat_id": "-100123",
        "text": text,
    }


def test_discord_content_is_clipped_to_its_limit() -> None:
    body = payload(alert("x" * 5000), AlertFormat.DISCORD)
    assert len(body["content"]) == DISCORD_LIMIT
    assert body["content"].endswith("...")


# --- the gate: dedup and rate limit ------------------------------------------------------------


def test_same_key_within_the_window_is_sent_once_then_a_follow_up_counts_the_repeats() -> None:
    gate = AlertGate(dedup_s=60.0, max_per_minute=100)
    first = alert(key="k")
    assert gate.admit(first, 0.0) == first
    for t in (1.0, 2.0, 3.0):
        assert gate.admit(alert("again", key="k"), t) is None
    other = alert(key="other")
    assert gate.admit(other, 4.0) == other  # another key is not held back
    assert gate.next_due() == 60.0
    assert gate.due(59.9) == []
    (follow_up,) = gate.due(60.0)
    assert follow_up.title == "again"
    assert follow_up.repeats == 3
    assert gate.deduplicated == 3
    # The follow-up opened the next window: a still-repeating condition waits for it.
    assert gate.admit(alert(key="k"), 61.0) is None
    assert gate.due(119.0) == []
    assert [a.repeats for a in gate.due(120.0)] == [1]
    # A window without repeats ends silently; then the key is sent at once again.
    assert gate.due(200.0) == []
    assert gate.admit(alert(key="k"), 200.0) is not None


def test_dedup_off_sends_every_alert() -> None:
    gate = AlertGate(dedup_s=0.0, max_per_minute=100)
    assert all(gate.admit(alert(key="k"), t) is not None for t in (0.0, 0.1, 0.2))
    assert gate.next_due() is None


def test_rate_limit_is_a_token_bucket_and_the_next_alert_says_how_many_were_lost() -> None:
    gate = AlertGate(dedup_s=0.0, max_per_minute=3)
    sent = [gate.admit(alert(f"a{i}"), 0.0) for i in range(5)]
    assert [a.title if a else None for a in sent] == ["a0", "a1", "a2", None, None]
    assert gate.rate_limited == 2
    assert gate.admit(alert("early"), 19.0) is None  # 3 per minute: a token per 20 s
    later = gate.admit(alert("later"), 40.0)
    assert later is not None
    assert later.suppressed == 3
    # The count was carried once: the next one sent starts from zero again.
    following = gate.admit(alert("next"), 60.0)
    assert following is not None
    assert following.suppressed == 0
    # A long quiet refills the bucket only up to its size (no burst larger than 3).
    assert sum(gate.admit(alert(f"b{i}"), 1000.0) is not None for i in range(5)) == 3


# --- the watcher (pure) ------------------------------------------------------------------------


def figures(**changes: Any) -> WatchFigures:
    base = WatchFigures(
        kill_switch=None,
        shards=(
            ShardFigures(0, ShardStatus.CONNECTED, "", 0),
            ShardFigures(1, ShardStatus.CONNECTED, "", 0),
        ),
        reconnects=0,
        rejections=0,
        rejects_by_reason={},
        venue_rejects_by_reason={},
    )
    return attrs.evolve(base, **changes)


def watcher(**changes: Any) -> AlertWatcher:
    return AlertWatcher(figures(**changes), storm_count=3, storm_window_s=10.0, started_at=0.0)


def test_nothing_changed_nothing_said() -> None:
    w = watcher()
    assert w.check(figures(), 1.0) == []
    assert w.check(figures(), 2.0) == []


def test_kill_switch_trip_is_critical_and_said_once() -> None:
    w = watcher()
    (tripped,) = w.check(figures(kill_switch="the day's PnL -200 reached the limit -200"), 1.0)
    assert tripped.kind is AlertKind.KILL_SWITCH
    assert tripped.severity is Severity.CRITICAL
    assert "-200" in tripped.detail
    assert w.check(figures(kill_switch="the day's PnL -200 reached the limit -200"), 2.0) == []


def test_live_heartbeat_failure_and_user_channel_loss_are_told_once_each() -> None:
    w = watcher(heartbeat_ok=True, user_channel_ready=True)
    (failing,) = w.check(figures(heartbeat_ok=False, user_channel_ready=True), 1.0)
    assert (failing.kind, failing.severity) == (AlertKind.HEARTBEAT, Severity.CRITICAL)
    assert "cancels every open order" in failing.title
    assert w.check(figures(heartbeat_ok=False, user_channel_ready=True), 2.0) == []
    (back,) = w.check(figures(heartbeat_ok=True, user_channel_ready=True), 3.0)
    assert (back.kind, back.severity) == (AlertKind.HEARTBEAT, Severity.INFO)
    (down,) = w.check(figures(heartbeat_ok=True, user_channel_ready=False), 4.0)
    assert down.kind is AlertKind.USER_CHANNEL
    assert w.check(figures(heartbeat_ok=True, user_channel_ready=False), 5.0) == []
    # On paper (None) there is nothing to say.
    assert watcher().check(figures(), 1.0) == []


def test_a_frozen_shard_is_told_per_shard_and_a_shard_that_gave_up_is_critical() -> None:
    w = watcher()
    shards = (
        ShardFigures(0, ShardStatus.CONNECTED, "", 0),
        ShardFigures(1, ShardStatus.FROZEN, "no data for 30s", 1),
    )
    (frozen,) = w.check(figures(shards=shards), 1.0)
    assert frozen.kind is AlertKind.FEED_FROZEN
    assert frozen.dedup_key == "feed_frozen:1"
    assert frozen.detail == "no data for 30s"
    down = (shards[0], ShardFigures(1, ShardStatus.DOWN, "gave up", 1))
    (gave_up,) = w.check(figures(shards=down), 2.0)
    assert gave_up.kind is AlertKind.FEED_DOWN
    assert gave_up.severity is Severity.CRITICAL


def test_reconnect_storm_needs_enough_reconnects_within_the_window() -> None:
    w = watcher()
    assert w.check(figures(reconnects=2), 5.0) == []
    assert w.check(figures(reconnects=2), 14.0) == []
    # Spread out: 4 reconnects but only 2 within the last 10 s.
    assert w.check(figures(reconnects=4), 20.0) == []
    (storm,) = w.check(figures(reconnects=7), 22.0)  # 5 within (12, 22]
    assert storm.kind is AlertKind.RECONNECT_STORM
    assert dict(storm.fields)["reconnects"] == "5"
    assert w.check(figures(reconnects=8), 23.0) == []  # still the same storm
    assert w.check(figures(reconnects=8), 40.0) == []  # calm again...
    assert len(w.check(figures(reconnects=11), 41.0)) == 1  # ...so a new storm is told


def test_rejects_are_told_with_their_reasons() -> None:
    w = watcher()
    (rejects,) = w.check(
        figures(
            rejections=3,
            rejects_by_reason={"max_position": 2, "stale_book": 1},
            venue_rejects_by_reason={"post_only_crosses": 1},
        ),
        1.0,
    )
    assert rejects.kind is AlertKind.REJECTS
    assert rejects.title == "4 orders rejected"
    assert rejects.detail == "risk: max_position x2, stale_book x1; venue: post_only_crosses x1"
    assert dict(rejects.fields) == {
        "risk.max_position": "2",
        "risk.stale_book": "1",
        "venue.post_only_crosses": "1",
    }
    (more,) = w.check(
        figures(
            rejections=4,
            rejects_by_reason={"max_position": 3, "stale_book": 1},
            venue_rejects_by_reason={"post_only_crosses": 1},
        ),
        2.0,
    )
    assert more.title == "1 order rejected"
    assert more.detail == "risk: max_position x1"


# --- the notifier on an in-memory transport (autojump clock) ----------------------------------


@attrs.define
class Webhook:
    """An in-memory webhook: records every request, answers ``status``, after ``delay_s``."""

    status: int = 204
    delay_s: float = 0.0
    fail: bool = False
    bodies: list[dict[str, Any]] = attrs.field(factory=list)
    urls: list[str] = attrs.field(factory=list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.delay_s:
            await trio.sleep(self.delay_s)
        if self.fail:
            raise httpx.ConnectError(f"cannot reach {request.url}", request=request)
        self.urls.append(str(request.url))
        self.bodies.append(json.loads(request.content))
        return httpx.Response(self.status)

    @property
    def titles(self) -> list[str]:
        return [b["title"] for b in self.bodies]


@asynccontextmanager
async def notifier(webhook: Webhook, **options: Any) -> AsyncIterator[Notifier]:
    n = Notifier(Secret(URL), transport=httpx.MockTransport(webhook), **options)
    async with trio.open_nursery() as nursery:
        await nursery.start(n.run)
        yield n
        nursery.cancel_scope.cancel()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every loguru line while the test runs (DEBUG and up, extras included)."""
    with captured_logs() as lines:
        yield lines


async def test_alerts_are_posted_as_json_to_the_url(autojump_clock: trio.testing.MockClock) -> None:
    webhook = Webhook()
    async with notifier(webhook, dedup_s=0) as n:
        n.notify(alert("one"))
        n.notify(alert("two"))
        await trio.sleep(1)
        assert webhook.titles == ["one", "two"]
        assert webhook.urls == [URL, URL]
        assert webhook.bodies[0]["at"] is not None  # stamped by notify
        stats = n.statistics()
        assert (stats.offered, stats.sent, stats.failed, stats.dropped) == (2, 2, 0, 0)


async def test_dedup_follow_up_goes_out_when_the_window_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    webhook = Webhook()
    async with notifier(webhook, dedup_s=30) as n:
        for _ in range(5):
            n.notify(alert("frozen", key="feed_frozen:0"))
            await trio.sleep(1)
        assert webhook.titles == ["frozen"]
        await trio.sleep(30)  # the window ends: one follow-up with the count
        assert webhook.titles == ["frozen", "frozen"]
        assert webhook.bodies[1]["repeats"] == 4
        assert n.statistics().deduplicated == 4


async def test_rate_limit_holds_a_flood_to_the_bucket(
    autojump_clock: trio.testing.MockClock,
) -> None:
    webhook = Webhook()
    async with notifier(webhook, dedup_s=0, max_per_minute=2) as n:
        for i in range(6):
            n.notify(alert(f"a{i}"))
        await trio.sleep(1)
        assert webhook.titles == ["a0", "a1"]
        await trio.sleep(30)
        n.notify(alert("later"))
        await trio.sleep(1)
        assert webhook.titles == ["a0", "a1", "later"]
        assert webhook.bodies[-1]["suppressed"] == 4
        assert n.statistics().rate_limited == 4


async def test_a_hanging_webhook_costs_its_alert_and_notify_never_waits(
    autojump_clock: trio.testing.MockClock, log_lines: list[str]
) -> None:
    webhook = Webhook(delay_s=3600)
    async with notifier(webhook, dedup_s=0, timeout_s=5, queue_size=3) as n:
        n.notify(alert("stuck"))
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        for i in range(10):  # the notifier is stuck in a request: the queue takes the rest
            n.notify(alert(f"queued{i}"))
        assert trio.current_time() == started  # notify is synchronous: no time passed
        stats = n.statistics()
        assert (stats.queued, stats.dropped) == (3, 7)  # the oldest were dropped
        webhook.delay_s = 0
        await trio.sleep(10)
        assert webhook.titles == ["queued7", "queued8", "queued9"]  # the newest survive
        assert n.statistics().failed == 1
    assert any("no answer within 5s" in line for line in log_lines)
    assert not any(TOKEN in line for line in log_lines)


async def test_a_failing_webhook_is_counted_and_the_next_alert_still_goes(
    autojump_clock: trio.testing.MockClock, log_lines: list[str]
) -> None:
    webhook = Webhook(fail=True)
    async with notifier(webhook, dedup_s=0) as n:
        n.notify(alert("lost"))
        await trio.sleep(1)
        webhook.fail = False
        webhook.status = 500
        n.notify(alert("refused"))
        await trio.sleep(1)
        webhook.status = 200
        n.notify(alert("delivered"))
        await trio.sleep(1)
        stats = n.statistics()
        assert (stats.sent, stats.failed) == (1, 2)
    assert webhook.titles == ["refused", "delivered"]
    failures = [line for line in log_lines if "alert webhook failed" in line]
    assert len(failures) == 2
    assert "ConnectError" in failures[0]
    assert "HTTP 500" in failures[1]
    assert not any(TOKEN in line for line in log_lines)  # the URL is a secret


async def test_close_sends_what_is_queued_and_pending_repeat_counts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    webhook = Webhook(delay_s=1)
    n = Notifier(Secret(URL), transport=httpx.MockTransport(webhook), dedup_s=300)
    async with trio.open_nursery() as nursery:
        await nursery.start(n.run)
        n.notify(alert("rejects", key="rejects"))
        n.notify(alert("rejects", key="rejects"))
        n.notify(alert("stopped", key="stopped"))
        n.close()
        n.notify(alert("too late"))
    # run returned by itself (the nursery did not need cancelling).
    assert webhook.titles == ["rejects", "stopped", "rejects"]
    assert webhook.bodies[-1]["repeats"] == 1
    assert n.statistics().dropped == 1


def test_from_config_reads_the_url_from_the_named_variable_and_never_echoes_it() -> None:
    cfg = AlertsConfig(enabled=True, url_env="MY_HOOK", format=AlertFormat.SLACK)
    assert Notifier.from_config(AlertsConfig(), {"POLYBOT_ALERT_WEBHOOK_URL": URL}) is None
    assert isinstance(Notifier.from_config(cfg, {"MY_HOOK": URL}), Notifier)
    with pytest.raises(ConfigError) as missing:
        Notifier.from_config(cfg, {})
    assert missing.value.lines[0].startswith("MY_HOOK: alerts.enabled is true")
    with pytest.raises(ConfigError) as bad:
        Notifier.from_config(cfg, {"MY_HOOK": f"ftp://{TOKEN}"})
    assert bad.value.lines == [
        "MY_HOOK: expected an http:// or https:// webhook URL (value not shown)"
    ]
    assert TOKEN not in str(bad.value)


def test_telegram_needs_a_chat_id() -> None:
    with pytest.raises(ValueError, match="chat_id"):
        AlertsConfig(format=AlertFormat.TELEGRAM)
    assert AlertsConfig(format=AlertFormat.TELEGRAM, chat_id="-100").chat_id == "-100"


# --- a real local receiver (real clock) --------------------------------------------------------


@attrs.define
class Receiver:
    """A tiny ASGI webhook on 127.0.0.1: records each POST; sleeps ``delay_s`` first."""

    delay_s: float = 0.0
    requests: list[tuple[str, str, dict[str, Any]]] = attrs.field(factory=list)
    url: str = ""

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")  # type: ignore[operator]
            if not message.get("more_body"):
                break
        if self.delay_s:
            await trio.sleep(self.delay_s)
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode()
        self.requests.append((scope["path"], content_type, json.loads(body)))
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": False})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(hypercorn.trio.serve, receiver, hypercorn_config(0), mode="asgi")
        )
        receiver.url = binds[0] + "/hook/" + TOKEN
        yield receiver
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("fmt", "keys"),
    [
        (AlertFormat.JSON, {"source", "kind", "severity", "title", "detail", "text", "fields"}),
        (AlertFormat.DISCORD, {"content"}),
        (AlertFormat.SLACK, {"text"}),
        (AlertFormat.TELEGRAM, {"chat_id", "text"}),
    ],
)
async def test_each_shape_reaches_a_real_receiver(fmt: AlertFormat, keys: set[str]) -> None:
    async with receiving(Receiver()) as receiver:
        n = Notifier(Secret(receiver.url), fmt=fmt, chat_id="-1001", timeout_s=2)
        async with trio.open_nursery() as nursery:
            await nursery.start(n.run)
            n.notify(alert("kill switch tripped", severity=Severity.CRITICAL))
            await wait_until(lambda: n.statistics().sent == 1)
            nursery.cancel_scope.cancel()
    ((path, content_type, body),) = receiver.requests
    assert path == "/hook/" + TOKEN
    assert content_type == "application/json"
    assert set(body) >= keys
    text = body["content"] if fmt is AlertFormat.DISCORD else body["text"]
    assert text.startswith("[polybot] CRITICAL: kill switch tripped")
    if fmt is AlertFormat.TELEGRAM:
        assert body["chat_id"] == "-1001"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_receiver_down_then_slow_the_notifier_keeps_going_and_callers_never_wait(
    log_lines: list[str],
) -> None:
    # Down: nothing listens on the port.
    down = Notifier(Secret(f"http://127.0.0.1:{closed_port()}/{TOKEN}"), dedup_s=0, timeout_s=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(down.run)
        down.notify(alert("one"))
        down.notify(alert("two"))
        await wait_until(lambda: down.statistics().failed == 2)
        nursery.cancel_scope.cancel()

    # Slow: the receiver answers after the notifier's timeout, then recovers.
    async with receiving(Receiver(delay_s=2.0)) as receiver:
        slow = Notifier(Secret(receiver.url), dedup_s=0, timeout_s=0.2, queue_size=5)
        async with trio.open_nursery() as nursery:
            await nursery.start(slow.run)
            slow.notify(alert("slow"))
            await trio.sleep(0.05)  # in flight now
            began = time.perf_counter()
            for i in range(1000):
                slow.notify(alert(f"burst{i}"))
            assert time.perf_counter() - began < 0.5  # a thousand calls, no waiting on HTTP
            assert slow.statistics().dropped == 995
            await wait_until(lambda: slow.statistics().failed >= 1)
            receiver.delay_s = 0
            await wait_until(lambda: slow.statistics().sent >= 1)
            nursery.cancel_scope.cancel()
    assert any(body["title"].startswith("burst99") for _, _, body in receiver.requests)
    assert not any(TOKEN in line for line in log_lines)


# --- the watcher on a whole bot ----------------------------------------------------------------


async def test_watcher_on_a_running_bot_tells_start_a_frozen_feed_and_stop(tmp_path: Any) -> None:
    cfg = enable_only(fast_feed(log_and_journal_in(Config(), tmp_path)), ())
    cfg = attrs.evolve(
        cfg,
        sim=attrs.evolve(
            cfg.sim,
            binary_markets=3,
            temperature_events=0,
            election_events=0,
            events_per_second=100,
            opportunity_rate=0.0,
        ),
    )
    alerts = AlertsConfig(enabled=True, poll_s=0.05, dedup_s=60)
    async with receiving(Receiver()) as receiver, trio.open_nursery() as outer:
        n = Notifier.from_config(alerts, {alerts.url_env: receiver.url})
        assert n is not None
        # As the log writer: the notifier outlives the bot, so it can send "stopped".
        await outer.start(n.run)
        async with (
            open_sim_venue(cfg.sim, start_epoch_ms=START_MS) as venue,
            running_bot(cfg, venue) as handle,
            trio.open_nursery() as watching,
        ):
            await watching.start(run_alert_watcher, handle, n.notify, alerts)
            await wait_until(lambda: n.statistics().sent == 1)
            venue.faults.silent = True  # PONGs but no data: the watchdog calls it frozen
            await wait_until(
                lambda: any(b["kind"] == "feed_frozen" for _, _, b in receiver.requests)
            )
            watching.cancel_scope.cancel()  # the watcher says "stopped"; then the bot stops
        n.close()
    kinds = [body["kind"] for _, _, body in receiver.requests]
    assert kinds[0] == "started"
    assert "feed_frozen" in kinds
    assert kinds[-1] == "stopped"
    started = receiver.requests[0][2]
    assert "3 markets, 6 tokens" in started["detail"]
