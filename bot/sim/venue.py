"""Running the sim venue: ``open_sim_venue`` (embedded, for tests) and ``run_standalone`` (CLI).

A ``SimVenue`` is the pure model (``Universe`` + ``SimExchange``) plus its shell: the ASGI app
served by hypercorn on 127.0.0.1 (``bot.sim.server``), a *pump* task that drives the order flow,
and a task for the periodic-drop fault. Synopsis::

    async with open_sim_venue(SimConfig(binary_markets=3), start_epoch_ms=START) as venue:
        venue.gamma_url, venue.clob_url, venue.ws_market_url    # where to point the client
        venue.faults.silent = True                              # flip a fault while it serves
        opportunity = await venue.inject(OpportunityKind.COMPLEMENT)
        venue.pause_pump()                                      # freeze the books ...
        venue.exchange.book(token)                              # ... and compare with them

Time. The venue's clock is ``start_epoch_ms + (trio.current_time() - t0) * 1000`` (an int),
with ``start_epoch_ms`` always passed in: the CLI reads the wall clock once at startup, tests pass
a constant. Nothing here reads the wall clock, so a ``MockClock`` drives the model; but hypercorn
serves real sockets, so tests that connect clients use the real clock (TRIO_IDIOMS.md section 7).

The pump. Every ``pump_interval_ms`` it makes the ``step`` calls due at ``events_per_second``
(the fraction carries over, so the rate is exact on average; after a stall it does not catch up
by more than ten ticks), injects opportunities as a Poisson process of rate
``opportunity_rate`` (seeded), lets expired ones be taken (``expire``) and hands the tick's
events to ``MarketHub.broadcast``, which never blocks; then the accounts' resting orders the
tick's flow filled are booked and reported on their user channels (``SimApp.settle_flow_fills``;
so ``polybot run --venue sim`` sees its quotes filled as on Polymarket). With ``max_rate`` it
instead makes ``MAX_RATE_BATCH`` steps per round and then waits until no connection has more
than ``MAX_RATE_QUEUED`` frames queued: the flow is paced by the slowest reader, never dropped
(for benchmarks).

Errors. The internal nursery is hidden: the caller's own exception comes out of the ``async
with`` unchanged, and a crash of the venue itself (a bug in the pump, the server or the model)
comes out as one ``SimVenueError`` whose ``__cause__`` is the original (a crash while serving a
connection or request) or the exception group holding it (a crash of a venue task).
"""

from __future__ import annotations

import math
import random
import sys
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Final, TextIO

import attrs
import orjson
import trio

from bot.config import SimConfig
from bot.shell.signals import cancel_on_signals
from bot.sim.exchange import FlowConfig, SimExchange
from bot.sim.faults import Faults, FaultStatistics
from bot.sim.server import CLOSE_DROPPED, ServerStatistics, SimApp, SimUrls, serve
from bot.sim.universe import UniverseConfig, generate_universe

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from bot.sim.exchange import ExchangeStatistics, Opportunity, OpportunityKind, WireEvent
    from bot.sim.universe import Universe

__all__ = [
    "MAX_RATE_BATCH",
    "MAX_RATE_QUEUED",
    "SimVenue",
    "SimVenueError",
    "VenueStatistics",
    "cancel_on_signals",
    "flow_config",
    "open_sim_venue",
    "run_standalone",
    "universe_config",
    "write_line",
]

MAX_RATE_BATCH: Final = 200
"""``step`` calls per round in ``max_rate`` mode (about 2-3 ms of model work)."""

MAX_RATE_QUEUED: Final = 2
"""In ``max_rate`` mode the pump waits while any connection has more data frames queued."""

_MAX_CATCH_UP_TICKS: Final = 10
_INVALIDATING: Final = frozenset({"market_resolved", "new_market"})


class SimVenueError(Exception):
    """The sim venue itself crashed (a bug); the original exception is the ``__cause__``."""


@attrs.frozen
class VenueStatistics:
    """Everything a venue counts (``SimVenue.statistics()``).

    Attributes:
        now_ms: The venue time.
        pump_ticks: Pump rounds run (manual ``step`` calls included).
        steps: ``SimExchange.step`` calls made by the pump.
        events_generated: Wire events the model produced and the venue broadcast.
        opportunities_injected: Opportunities injected by the Poisson process or ``inject``.
        server: Market-channel and REST counters.
        faults: Injected faults.
        exchange: The model's own counters.
    """

    now_ms: int
    pump_ticks: int
    steps: int
    events_generated: int
    opportunities_injected: int
    server: ServerStatistics
    faults: FaultStatistics
    exchange: ExchangeStatistics


def universe_config(config: SimConfig, *, epoch_ms: int) -> UniverseConfig:
    """The universe ``config`` asks for, listed at ``epoch_ms`` (so end dates lie ahead)."""
    return UniverseConfig(
        n_binary=config.binary_markets,
        n_temperature_events=config.temperature_events,
        n_election_events=config.election_events,
        epoch_ms=epoch_ms,
    )


def flow_config(config: SimConfig) -> FlowConfig:
    """The order flow ``config`` asks for."""
    return FlowConfig(
        events_per_second=config.events_per_second,
        opportunity_rate=config.opportunity_rate,
        opportunity_lifetime_ms=config.opportunity_lifetime_ms,
    )


def _rng(seed: int, purpose: str) -> random.Random:
    # One independent, reproducible stream per purpose (string seeds hash with SHA-512, the
    # same on every run and platform), so e.g. turning faults on does not change the flow.
    return random.Random(f"polybot-sim:{seed}:{purpose}")


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: fine for the small means of one pump tick)."""
    if mean <= 0:
        return 0
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@attrs.define(eq=False)
class SimVenue:
    """A running sim venue (see the module docstring). Made by ``open_sim_venue``.

    Attributes:
        config: The settings it runs with.
        universe: The listed markets and events.
        exchange: The model with the true books (``exchange.book(token)``).
        faults: The live fault switches (mutable: flip them while it serves).
        app: The ASGI app (its ``hub`` holds the connections).
        urls: Where it listens.
        start_epoch_ms: The venue time at ``t0``.
    """

    config: SimConfig
    universe: Universe
    exchange: SimExchange
    faults: Faults
    app: SimApp
    start_epoch_ms: int
    t0: float
    urls: SimUrls = attrs.field(default=SimUrls("", "", ""))
    _rng: random.Random = attrs.field(factory=random.Random)
    _paused: bool = attrs.field(default=False, init=False)
    _resumed: trio.Event = attrs.field(factory=trio.Event, init=False)
    _pump_ticks: int = attrs.field(default=0, init=False)
    _steps: int = attrs.field(default=0, init=False)
    _events: int = attrs.field(default=0, init=False)
    _injected: int = attrs.field(default=0, init=False)

    # --- where it listens

    @property
    def gamma_url(self) -> str:
        """Gamma REST base URL."""
        return self.urls.gamma_url

    @property
    def clob_url(self) -> str:
        """CLOB REST base URL."""
        return self.urls.clob_url

    @property
    def ws_market_url(self) -> str:
        """Market channel URL."""
        return self.urls.ws_market_url

    @property
    def ws_user_url(self) -> str:
        """User channel URL (authenticated with the credentials of ``/auth/api-key``)."""
        return self.urls.ws_user_url

    # --- time and counters

    def now_ms(self) -> int:
        """The venue time in epoch milliseconds, driven by ``trio.current_time()``."""
        return self.start_epoch_ms + int((trio.current_time() - self.t0) * 1000)

    def statistics(self) -> VenueStatistics:
        """A frozen snapshot of every counter."""
        return VenueStatistics(
            now_ms=self.now_ms(),
            pump_ticks=self._pump_ticks,
            steps=self._steps,
            events_generated=self._events,
            opportunities_injected=self._injected,
            server=self.app.statistics(),
            faults=self.faults.statistics(),
            exchange=self.exchange.statistics(),
        )

    # --- acting now (for tests and scenarios)

    @property
    def pump_paused(self) -> bool:
        """Whether the pump is paused."""
        return self._paused

    def pause_pump(self) -> None:
        """Stop generating flow (takes effect at once: no tick is in progress between awaits)."""
        self._paused = True

    def resume_pump(self) -> None:
        """Start generating flow again."""
        self._paused = False
        self._resumed.set()
        self._resumed = trio.Event()

    async def step(self, steps: int = 1, *, now_ms: int | None = None) -> list[WireEvent]:
        """Make ``steps`` model steps now and broadcast them as one tick (works while paused).

        Args:
            steps: ``SimExchange.step`` calls.
            now_ms: The time to stamp (default: the venue clock); pass constants to get
                byte-identical frames from two venues with the same seed.

        Returns:
            The events broadcast.
        """
        when = self.now_ms() if now_ms is None else now_ms
        events: list[WireEvent] = []
        for _ in range(steps):
            events.extend(self.exchange.step(when))
        self._steps += steps
        self._pump_ticks += 1
        self._publish(events)
        await trio.lowlevel.checkpoint()
        return events

    async def inject(self, kind: OpportunityKind) -> Opportunity:
        """Plant an opportunity now and broadcast the events that show it.

        Raises:
            NoSuitableMarket: no market can carry it now.
        """
        opportunity, events = self.exchange.inject(kind, self.now_ms())
        self._injected += 1
        self._publish(events)
        await trio.lowlevel.checkpoint()
        return opportunity

    async def resolve(self, condition_id: str, winning_token: str) -> list[WireEvent]:
        """Resolve a market now (its books empty, ``market_resolved`` goes to custom-feature
        subscribers, Gamma and CLOB REST show it closed, accounts' resting orders there are
        cancelled as ``CANCELED_MARKET_RESOLVED``)."""
        events = self.exchange.resolve(condition_id, winning_token, self.now_ms())
        self._publish(events)
        self.app.cancel_resolved(condition_id)  # accounts' orders there end with it
        await trio.lowlevel.checkpoint()
        return events

    async def broadcast(self, events: list[WireEvent]) -> int:
        """Send arbitrary wire events through the normal fan-out (filters and faults apply).

        Returns:
            The number of frames queued.
        """
        queued = self._publish(events)
        await trio.lowlevel.checkpoint()
        return queued

    def drop_all_connections(self) -> int:
        """Close every market WebSocket now (counted as a drop fault); returns how many."""
        return self.app.hub.drop_all(CLOSE_DROPPED, "sim: dropped by request")

    async def wait_idle(self) -> None:
        """Wait until no connection has a data frame queued (they are written or in flight)."""
        await self.app.hub.wait_room(0)

    # --- the tasks

    def _publish(self, events: list[WireEvent]) -> int:
        """Broadcast model events, then settle the account orders they filled (the market
        channel shows a trade before the maker's user channel does, as on the venue)."""
        queued = 0
        if events:
            self._events += len(events)
            for event in events:
                if event.get("event_type") in _INVALIDATING:
                    self.app.invalidate()
                    break
            queued = self.app.hub.broadcast(events)
        self.app.settle_flow_fills()
        return queued

    def _tick(self, steps: int, opportunity_mean: float) -> None:
        """One pump round: ``steps`` steps, the Poisson injections, expiries, one broadcast."""
        now_ms = self.now_ms()
        exchange = self.exchange
        events: list[WireEvent] = []
        for _ in range(steps):
            events.extend(exchange.step(now_ms))
        self._steps += steps
        for _ in range(_poisson(self._rng, opportunity_mean)):
            injected = exchange.inject_random(now_ms)
            if injected is not None:
                self._injected += 1
                events.extend(injected[1])
        events.extend(exchange.expire(now_ms))
        self._pump_ticks += 1
        self._publish(events)

    async def _wait_resumed(self) -> None:
        while self._paused:
            await self._resumed.wait()

    async def run_pump(self) -> None:
        """Drive the order flow until cancelled (see the module docstring)."""
        config = self.config
        interval = config.pump_interval_ms / 1000
        rate = config.events_per_second
        # max_rate keeps at most MAX_RATE_QUEUED frames queued per connection: enough to keep
        # the writer busy, and no model work is wasted on frames nobody will read in time.
        low_water = min(MAX_RATE_QUEUED, config.outbox_frames - 1)
        carry = 0.0
        last = trio.current_time()
        next_tick = last + interval
        while True:
            if self._paused:
                await self._wait_resumed()
                last = trio.current_time()
                next_tick = last + interval
                carry = 0.0
            now = trio.current_time()
            elapsed = min(now - last, interval * _MAX_CATCH_UP_TICKS)
            last = now
            opportunity_mean = config.opportunity_rate * elapsed
            if config.max_rate:
                self._tick(MAX_RATE_BATCH, opportunity_mean)
                await self.app.hub.wait_room(low_water)
                continue
            due = rate * elapsed + carry
            steps = int(due)
            carry = due - steps
            self._tick(steps, opportunity_mean)
            next_tick = max(next_tick + interval, trio.current_time())
            await trio.sleep_until(next_tick)

    async def run_expiry(self) -> None:
        """Cancel the resting orders of accounts whose heartbeat lapsed, and GTD orders at their
        end, checking a few times per lapse period (so a lapse is acted on at most a quarter
        period late, and a GTD expiry at most a second late)."""
        interval = min(1.0, self.config.heartbeat_timeout_s / 4)
        while True:
            await trio.sleep(interval)
            self.app.expire_heartbeats()
            self.app.expire_orders()

    async def run_drop_fault(self) -> None:
        """Close every connection every ``faults.drop_every_s`` seconds (0: never), re-reading
        the switch whenever it changes."""
        faults = self.faults
        while True:
            interval = faults.drop_every_s
            if interval <= 0:
                await faults.wait_changed()
                continue
            deadline = trio.current_time() + interval
            while faults.drop_every_s == interval:
                with trio.move_on_at(deadline) as timer:
                    await faults.wait_changed()
                if timer.cancelled_caught:
                    self.app.hub.drop_all(CLOSE_DROPPED, "sim: periodic drop")
                    deadline += interval


@asynccontextmanager
async def open_sim_venue(
    config: SimConfig | None = None,
    *,
    start_epoch_ms: int,
    universe: Universe | None = None,
    flow: FlowConfig | None = None,
    pump: bool = True,
) -> AsyncIterator[SimVenue]:
    """Serve a sim venue on 127.0.0.1 for the duration of the ``async with`` block.

    Args:
        config: Size, flow, limits and initial faults (default ``SimConfig()``; ``port`` 0 picks a
            free port).
        start_epoch_ms: The venue time at startup, epoch ms (tests: a constant; the CLI: the wall
            clock read once).
        universe: Use this universe instead of generating one from ``config``.
        flow: Use these flow knobs instead of the ones derived from ``config``.
        pump: False starts with the pump paused (``resume_pump``/``step`` drive it).

    Yields:
        The running venue, already listening.

    Raises:
        SimVenueError: The venue crashed; the original error is the ``__cause__``.
    """
    config = config or SimConfig()
    if universe is None:
        universe = generate_universe(
            universe_config(config, epoch_ms=start_epoch_ms), _rng(config.seed, "universe")
        )
    exchange = SimExchange(
        universe, flow or flow_config(config), _rng(config.seed, "exchange"), start_epoch_ms
    )
    faults = Faults.from_config(config.faults, rng=_rng(config.seed, "faults"))
    crashes: list[BaseException] = []
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:

            def crash(exc: BaseException) -> None:
                crashes.append(exc)
                nursery.cancel_scope.cancel(reason="sim venue crashed")

            t0 = trio.current_time()
            app = SimApp(
                universe,
                exchange,
                faults,
                config,
                clock=lambda: start_epoch_ms + int((trio.current_time() - t0) * 1000),
                on_crash=crash,
            )
            venue = SimVenue(
                config,
                universe,
                exchange,
                faults,
                app,
                start_epoch_ms,
                t0,
                rng=_rng(config.seed, "opportunities"),
            )
            venue.urls = await nursery.start(partial(serve, app, port=config.port))
            if not pump:
                venue.pause_pump()
            nursery.start_soon(venue.run_pump, name="sim pump")
            nursery.start_soon(venue.run_drop_fault, name="sim drop fault")
            nursery.start_soon(venue.run_expiry, name="sim order expiry")
            try:
                yield venue
            except BaseException as exc:
                # Kept out of the nursery so the caller sees its own exception, not a group.
                body_error = exc
            finally:
                nursery.cancel_scope.cancel(reason="sim venue closed")
    except BaseExceptionGroup as group:
        errors, _others = group.split(Exception)
        if errors is None:
            raise  # only KeyboardInterrupt/SystemExit: not ours to translate
        error = SimVenueError(f"sim venue crashed: {errors.exceptions[0]!r}")
        if body_error is not None:
            error.add_note(f"while the caller was handling {body_error!r}")
        raise error from group
    if crashes:
        raise SimVenueError(f"sim venue crashed: {crashes[0]!r}") from crashes[0]
    if body_error is not None:
        raise body_error


# --------------------------------------------------------------------------------------------
# Stand-alone


def _status_line(
    stats: VenueStatistics, previous: VenueStatistics, elapsed: float, assets: int
) -> str:
    server, last = stats.server, previous.server
    rate = (server.events_sent - last.events_sent) / elapsed if elapsed > 0 else 0.0
    generated = (stats.events_generated - previous.events_generated) / elapsed if elapsed else 0.0
    return (
        f"sim: assets={assets} connections={server.connections} "
        f"subscribed_assets={server.subscribed_assets} "
        f"events_sent/s={rate:.0f} events_generated/s={generated:.0f} "
        f"opportunities={stats.opportunities_injected} http_requests={server.http_requests} "
        f"slow_consumers_dropped={server.slow_consumers_dropped} "
        f"faults_injected={stats.faults.total}"
    )


async def write_line(stream: TextIO, line: str) -> None:
    """Write one line and flush, from a worker thread (see below)."""

    # A pipe nobody reads could block a plain print forever: write from a worker thread.
    def write() -> None:
        stream.write(line + "\n")
        stream.flush()

    await trio.to_thread.run_sync(write)


async def run_standalone(
    config: SimConfig,
    *,
    start_epoch_ms: int,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> None:
    """``polybot sim``: serve until SIGINT/SIGTERM, then return normally (exit code 0).

    The first line on ``stdout`` is one JSON object ``{"gamma_url", "clob_url",
    "ws_market_url"}``; then a one-line status goes to ``stderr`` every ``status_interval_s``
    (connections, assets, events sent per second, faults injected), so stdout stays a
    machine-readable single line.

    Args:
        config: The ``[sim]`` settings (CLI flags already applied).
        start_epoch_ms: The wall clock read once by the CLI.
        stdout: Where the URL line goes (default ``sys.stdout``).
        stderr: Where status lines go (default ``sys.stderr``).
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        async with open_sim_venue(config, start_epoch_ms=start_epoch_ms) as venue:
            await write_line(out, orjson.dumps(venue.urls.as_dict()).decode())
            previous = venue.statistics()
            last = trio.current_time()
            while True:
                await trio.sleep(config.status_interval_s)
                stats = venue.statistics()
                now = trio.current_time()
                line = _status_line(stats, previous, now - last, len(venue.universe.token_ids()))
                await write_line(err, line)
                previous, last = stats, now
