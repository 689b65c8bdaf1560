"""Fault injection for the sim venue: live switches, their counters, and the faulty payloads.

A real venue misbehaves in a handful of ways a bot must survive (PROTOCOL.md sections 1.6 and
4.4-4.5), and each has one switch here:

================  ===========================================================================
switch            what the venue does
================  ===========================================================================
drop_every_s      closes every market WebSocket every N seconds (code 1001, "going away")
silent            stops sending market data (new subscriptions get no snapshots either) but keeps
                  answering ``PING`` with ``PONG`` (the "alive but no data for hours" failure,
                  py-clob-client issue #292)
stop_reading      stops reading the client's frames: ``PING`` goes unanswered, subscribes are
                  not processed, and once the server's queue is full the TCP window fills
malformed_rate    before a data frame, sends an extra frame that is bad JSON, lacks a required
                  field, carries a wrong JSON type, or has an unknown ``event_type`` (mixed)
duplicate_rate    sends a data frame twice
reorder_rate      holds a data frame back and sends it after the next one
latency_ms        delays every outgoing WebSocket frame (``PONG`` included) by N ms
http_*_rate       answers a REST request (Gamma or CLOB) with 429 / 425 / 503 (a JSON error and
                  ``Retry-After``) or a Cloudflare-style HTML 403 page, instead of the real one
order_425_rate    answers an order post (``POST /order``, ``/orders``) with 425 Too Early before
                  acting on it: the matching engine is restarting (PROTOCOL.md 4.4)
balance_reject_   answers ``POST /order`` with ``not enough balance / allowance`` although the
rate              account can pay, without acting (the venue's stale balance cache: a client
                  refreshes it with ``/balance-allowance/update`` and retries once)
timeout_after_    matches a ``POST /order`` that fills, then withholds the answer until the
fill_rate         client disconnects (its read timeout): the "timed out but filled" order a
                  client must reconcile instead of re-sending
================  ===========================================================================

The private-route switches draw only on the requests they apply to; the ``http_*`` ones hit
private routes as well as public ones.

``Faults`` is deliberately mutable: a test flips a switch on a running venue
(``venue.faults.silent = True``) and every task that depends on it is woken through
``wait_changed``. Every setter validates its value (a rate must be in ``[0, 1]``) so a typo in a
test fails where it is made, not as an odd venue behaviour later.

Randomness comes from one seeded ``random.Random`` owned by ``Faults``. Which frame is hit still
depends on how tasks interleave over real sockets, so the *sequence* of faults is reproducible
only for a single connection under the same scheduling; the *rates* always are.

Every injected fault is counted in ``FaultCounters`` and reported by ``statistics()``.
"""

from __future__ import annotations

import random
from typing import Any, Final, Literal

import attrs
import orjson
import trio

from bot.config import SimFaultsConfig
from bot.sim.accounts import NOT_ENOUGH_BALANCE

__all__ = [
    "CLOUDFLARE_403_HTML",
    "MALFORMED_KINDS",
    "FaultCounters",
    "FaultStatistics",
    "Faults",
    "HttpFault",
    "MalformedKind",
    "malformed_frame",
    "pick_malformed_kind",
]

MalformedKind = Literal["bad_json", "missing_field", "wrong_type", "unknown_event"]

MALFORMED_KINDS: Final[tuple[MalformedKind, ...]] = (
    "bad_json",
    "missing_field",
    "wrong_type",
    "unknown_event",
)

CLOUDFLARE_403_HTML: Final = """<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<!--[if gt IE 8]><!--> <html class="no-js" lang="en-US"> <!--<![endif]-->
<head>
<title>Attention Required! | Cloudflare</title>
<meta charset="UTF-8" />
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
<meta name="robots" content="noindex, nofollow" />
</head>
<body>
  <div id="cf-wrapper">
    <div id="cf-error-details" class="cf-error-details-wrapper">
      <div class="cf-wrapper cf-header cf-error-overview">
        <h1 data-translate="block_headline">Sorry, you have been blocked</h1>
        <h2 class="cf-subheadline"><span data-translate="unable_to_access">You are unable to
        access</span> polymarket.com</h2>
      </div>
      <div class="cf-section cf-wrapper">
        <h2 data-translate="blocked_why_headline">Why have I been blocked?</h2>
        <p data-translate="blocked_why_detail">This website is using a security service to
        protect itself from online attacks.</p>
      </div>
      <div class="cf-error-footer cf-wrapper">
        <p>Cloudflare Ray ID: <strong class="font-semibold">8f00000000000000</strong> &bull;
        Performance &amp; security by Cloudflare</p>
      </div>
    </div>
  </div>
</body>
</html>
"""
"""The body of the ``http_403_rate`` answer: shaped like Cloudflare's WAF block page."""


def _check_rate(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{attribute.name}: expected a number from 0 to 1, got {value!r}")


def _check_non_negative(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{attribute.name}: expected a number >= 0, got {value!r}")


def _check_bool(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{attribute.name}: expected true or false, got {value!r}")


def _notify(instance: Faults, _attribute: attrs.Attribute[Any], value: Any) -> Any:
    # Runs before the new value is stored; the woken tasks run later, so they see it.
    instance._changed.set()
    instance._changed = trio.Event()
    return value


_ON_SET: Final = attrs.setters.pipe(attrs.setters.validate, _notify)


@attrs.define(eq=False)
class FaultCounters:
    """How many faults of each kind the venue has injected so far (mutable, owned by Faults)."""

    drop_rounds: int = 0
    connections_dropped: int = 0
    silenced_frames: int = 0
    unread_pauses: int = 0
    malformed_frames: int = 0
    malformed_by_kind: dict[str, int] = attrs.field(factory=dict)
    duplicated_frames: int = 0
    reordered_frames: int = 0
    delayed_frames: int = 0
    http_429: int = 0
    http_425: int = 0
    http_503: int = 0
    http_403: int = 0
    order_425: int = 0
    balance_rejects: int = 0
    timeouts_after_fill: int = 0


@attrs.frozen
class FaultStatistics:
    """A snapshot of ``FaultCounters``.

    Attributes:
        drop_rounds: Times the ``drop_every_s`` timer fired (or ``drop_all_connections`` ran).
        connections_dropped: WebSockets closed by those rounds.
        silenced_frames: Data frames not sent because ``silent`` was on.
        unread_pauses: Times a connection's reader stopped because ``stop_reading`` was on.
        malformed_frames: Malformed frames sent; ``malformed_by_kind`` splits them by kind.
        duplicated_frames: Data frames sent a second time.
        reordered_frames: Data frames held back and sent after their successor.
        delayed_frames: Frames held back by ``latency_ms``.
        http_429, http_425, http_503, http_403: REST requests answered with that error.
        order_425: Order posts answered 425 by ``order_425_rate``.
        balance_rejects: ``POST /order`` refused for balance by ``balance_reject_rate``.
        timeouts_after_fill: Filled ``POST /order`` answers withheld by
            ``timeout_after_fill_rate``.
    """

    drop_rounds: int
    connections_dropped: int
    silenced_frames: int
    unread_pauses: int
    malformed_frames: int
    malformed_by_kind: dict[str, int]
    duplicated_frames: int
    reordered_frames: int
    delayed_frames: int
    http_429: int
    http_425: int
    http_503: int
    http_403: int
    order_425: int
    balance_rejects: int
    timeouts_after_fill: int

    @property
    def total(self) -> int:
        """Every injected fault: dropped connections, silenced, malformed, duplicated,
        reordered and delayed frames, unread pauses and REST errors."""
        return (
            self.connections_dropped
            + self.silenced_frames
            + self.unread_pauses
            + self.malformed_frames
            + self.duplicated_frames
            + self.reordered_frames
            + self.delayed_frames
            + self.http_429
            + self.http_425
            + self.http_503
            + self.http_403
            + self.order_425
            + self.balance_rejects
            + self.timeouts_after_fill
        )


@attrs.frozen
class HttpFault:
    """A REST answer that replaces the real one."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@attrs.define(eq=False)
class Faults:
    """The live fault switches of one venue (see the module docstring for what each does).

    Setting any switch validates the value and wakes ``wait_changed`` waiters.

    Args:
        rng: The seeded source of every fault decision (default: ``random.Random(0)``).
    """

    drop_every_s: float = attrs.field(
        default=0.0, validator=_check_non_negative, on_setattr=_ON_SET
    )
    silent: bool = attrs.field(default=False, validator=_check_bool, on_setattr=_ON_SET)
    stop_reading: bool = attrs.field(default=False, validator=_check_bool, on_setattr=_ON_SET)
    malformed_rate: float = attrs.field(default=0.0, validator=_check_rate, on_setattr=_ON_SET)
    duplicate_rate: float = attrs.field(default=0.0, validator=_check_rate, on_setattr=_ON_SET)
    reorder_rate: float = attrs.field(default=0.0, validator=_check_rate, on_setattr=_ON_SET)
    latency_ms: int = attrs.field(default=0, validator=_check_non_negative, on_setattr=_ON_SET)
    http_429_rate: float = attrs.field(default=0.0, validator=_check_rate, on_setattr=_ON_SET)
    http_425_rate: float = attrs.field(default=0.0, validator=_check_rate, on_setattr=_ON_SET)
    http_503_rate: float = attrs.field(default=0.0, validator=_check_rate, on_setattr=_ON_SET)
    http_403_rate: float = attrs.field(default=0.0, validator=_check_rate, on_setattr=_ON_SET)
    retry_after_s: int = attrs.field(default=1, validator=_check_non_negative, on_setattr=_ON_SET)
    order_425_rate: float = attrs.field(default=0.0, validator=_check_rate, on_setattr=_ON_SET)
    balance_reject_rate: float = attrs.field(default=0.0, validator=_check_rate, on_setattr=_ON_SET)
    timeout_after_fill_rate: float = attrs.field(
        default=0.0, validator=_check_rate, on_setattr=_ON_SET
    )
    rng: random.Random = attrs.field(
        factory=lambda: random.Random(0), kw_only=True, repr=False, on_setattr=_ON_SET
    )
    counters: FaultCounters = attrs.field(factory=FaultCounters, init=False, repr=False)
    _changed: trio.Event = attrs.field(factory=trio.Event, init=False, repr=False)

    @classmethod
    def from_config(cls, config: SimFaultsConfig, *, rng: random.Random) -> Faults:
        """The switches as configured in ``[sim.faults]``."""
        values = attrs.asdict(config, recurse=False)
        return cls(**values, rng=rng)

    def reset(self) -> None:
        """Turn every switch off (counters are kept)."""
        for field in attrs.fields(SimFaultsConfig):
            setattr(self, field.name, field.default)

    async def wait_changed(self) -> None:
        """Wait until any switch is set (to any value). Always a checkpoint."""
        await self._changed.wait()

    # --- decisions (sync: each uses the seeded rng once per call)

    def hit(self, rate: float) -> bool:
        """One Bernoulli draw; no draw at all for rate 0, so an idle switch costs nothing."""
        return rate > 0 and (rate >= 1 or self.rng.random() < rate)

    def http_fault(self) -> HttpFault | None:
        """Draw whether this REST request gets an error answer instead of the real one, and
        which (counted). ``None``: answer normally."""
        rates = (
            (429, self.http_429_rate),
            (425, self.http_425_rate),
            (503, self.http_503_rate),
            (403, self.http_403_rate),
        )
        if not any(rate for _, rate in rates):
            return None
        draw = self.rng.random()
        cumulative = 0.0
        for status, rate in rates:
            cumulative += rate
            if rate and (draw < cumulative or cumulative >= 1):
                return self._http_answer(status)
        return None

    def order_fault(self, *, single: bool) -> HttpFault | None:
        """Draw whether an order post is refused before the venue acts on it (counted).

        Args:
            single: ``POST /order`` (the balance reject applies only to it; a batch's legs are
                answered one by one, so a whole-request balance reject would not be the venue's).

        Returns:
            A 425 (``order_425_rate``) or a balance reject (``balance_reject_rate``, shaped like
            the venue's own per-order result), ``None`` to handle the order normally.
        """
        if self.hit(self.order_425_rate):
            self.counters.order_425 += 1
            return self._http_answer(425, counted=False)
        if single and self.hit(self.balance_reject_rate):
            self.counters.balance_rejects += 1
            body = {
                "success": False,
                "orderID": "",
                "status": "",
                "makingAmount": "",
                "takingAmount": "",
                "errorMsg": NOT_ENOUGH_BALANCE,
            }
            return HttpFault(400, (("content-type", "application/json"),), orjson.dumps(body))
        return None

    def withhold_fill(self) -> bool:
        """Draw whether the answer to a ``POST /order`` that filled is withheld (counted)."""
        if self.hit(self.timeout_after_fill_rate):
            self.counters.timeouts_after_fill += 1
            return True
        return False

    def _http_answer(self, status: int, *, counted: bool = True) -> HttpFault:
        retry = (("retry-after", str(self.retry_after_s)),)
        json_type = (("content-type", "application/json"),)
        counters = self.counters
        if status == 429:
            counters.http_429 += 1
            body = {"error": "Too Many Requests", "retry_after_seconds": self.retry_after_s}
            return HttpFault(429, json_type + retry, orjson.dumps(body))
        if status == 425:
            counters.http_425 += 1 if counted else 0
            body = {"error": "Too Early: the matching engine is restarting, retry with backoff"}
            return HttpFault(425, json_type + retry, orjson.dumps(body))
        if status == 503:
            counters.http_503 += 1
            body = {
                "error": "Trading is currently disabled. Check polymarket.com for updates",
                "retry_after_seconds": self.retry_after_s,
            }
            return HttpFault(503, json_type + retry, orjson.dumps(body))
        counters.http_403 += 1
        html = (
            ("content-type", "text/html; charset=UTF-8"),
            ("server", "cloudflare"),
            ("cf-ray", "8f00000000000000-AMS"),
        )
        return HttpFault(403, html, CLOUDFLARE_403_HTML.encode())

    def statistics(self) -> FaultStatistics:
        """A frozen copy of the counters."""
        values = attrs.asdict(self.counters, recurse=False)
        values["malformed_by_kind"] = dict(self.counters.malformed_by_kind)
        return FaultStatistics(**values)


# --------------------------------------------------------------------------------------------
# Malformed frames

# For a missing field / wrong type, the field to break per event type: each is one the decoder
# requires (bot.core.wire.market), so the frame is genuinely malformed, not merely odd.
_REQUIRED: Final[dict[str, str]] = {
    "book": "asset_id",
    "price_change": "market",
    "last_trade_price": "price",
    "best_bid_ask": "best_bid",
    "tick_size_change": "new_tick_size",
    "new_market": "market",
    "market_resolved": "winning_asset_id",
}


def _broken(event: dict[str, Any], kind: MalformedKind) -> dict[str, Any]:
    """A shallow copy of ``event`` with one required field removed or given a wrong JSON type."""
    event_type = event.get("event_type")
    copy = dict(event)
    if event_type == "price_change" and kind == "wrong_type":
        # A JSON number where the venue sends a decimal string: must never reach a book.
        changes = [dict(change) for change in copy.get("price_changes", ())]
        if changes:
            changes[0]["size"] = 12.5
            copy["price_changes"] = changes
            return copy
    if event_type == "book" and kind == "wrong_type":
        copy["bids"] = "not a list"
        return copy
    field = _REQUIRED.get(str(event_type), "market")
    if kind == "missing_field":
        copy.pop(field, None)
        if field == "market":
            copy.pop("asset_id", None)
    else:
        copy[field] = 0.5 if field in {"price", "best_bid", "new_tick_size"} else 12345
    return copy


def malformed_frame(
    kind: MalformedKind, events: list[dict[str, Any]], rng: random.Random, now_ms: int
) -> str:
    """One malformed text frame of ``kind``, derived from the events about to be sent.

    Args:
        kind: What is wrong with it.
        events: The data frame's events (a missing field or wrong type is applied to a copy of one
            of them, chosen with ``rng``); may be empty.
        rng: The seeded source.
        now_ms: The venue time, for the unknown event's timestamp.
    """
    sample = rng.choice(events) if events else None
    if kind == "bad_json":
        text = orjson.dumps(sample).decode() if sample is not None else '{"event_type": "book", "a'
        # Cut inside the text: an unterminated string, object or array.
        return text[: max(1, len(text) // 2)]
    if kind == "unknown_event" or sample is None:
        return orjson.dumps(
            {
                "event_type": "sim_unknown_event",
                "market": sample.get("market", "") if sample is not None else "",
                "timestamp": str(now_ms),
                "note": "an event type the client does not know: ignore it, do not crash",
            }
        ).decode()
    return orjson.dumps(_broken(sample, kind)).decode()


def pick_malformed_kind(rng: random.Random) -> MalformedKind:
    """A kind, uniformly among ``MALFORMED_KINDS``."""
    return MALFORMED_KINDS[rng.randrange(len(MALFORMED_KINDS))]
