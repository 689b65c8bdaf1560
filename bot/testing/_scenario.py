"""``open_scenario``: the sim venue and the whole bot in the test's nursery, and a script API.

See ``bot.testing`` for the overview; this module holds the machinery.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar

import attrs
import orjson
import trio
import trio.testing

from bot.app import VenueUrls, run_bot
from bot.config import Config, SimConfig, parse_config
from bot.core.money import ONE, Side, format_units, from_decimal, parse_units
from bot.core.risk import SIZE_STEP
from bot.core.trading import Decision, Fill, OrderUpdate, Strategy
from bot.plugins import configured_strategies, observe_strategies
from bot.sim.embedded import MemoryNetwork, send_raw, serve_venue
from bot.sim.exchange import OpportunityKind
from bot.sim.faults import MALFORMED_KINDS, malformed_frame
from bot.sim.venue import open_sim_venue
from bot.testing._clock import guard_threads

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence

    from bot.app import BotHandle
    from bot.config import DiscoveryConfig
    from bot.core.book import BookView, OrderBook
    from bot.core.trading import Action, Context, Intent, Order
    from bot.core.universe import Event, Market, Universe
    from bot.shell.feed import FeedStatistics
    from bot.sim.exchange import Opportunity, WireEvent
    from bot.sim.faults import MalformedKind
    from bot.sim.venue import SimVenue
    from bot.testing._clock import ThreadGuard

__all__ = [
    "SCENARIO_EPOCH_MS",
    "SCENARIO_SIM",
    "Amount",
    "Scenario",
    "ScenarioCrashed",
    "ScenarioTimeout",
    "Step",
    "StrategyProbe",
    "open_scenario",
]

T = TypeVar("T")

SCENARIO_EPOCH_MS: Final = 1_790_000_000_000
"""The venue's clock at the start of every scenario (a constant: the same frames every run)."""

SCENARIO_SIM: Final = SimConfig(
    binary_markets=3,
    temperature_events=1,
    election_events=1,
    events_per_second=50.0,
    opportunity_rate=0.0,
)
"""The venue of a scenario unless the test passes its own: three binary markets, a temperature
ladder and an election (about forty tokens), no injected opportunities, a calm flow when the
pump is started. Everything else is ``SimConfig``'s defaults (seed 1)."""

START_WITHIN_S: Final = 60.0
"""Virtual seconds the bot has to get every book fresh after it starts."""

Amount: TypeAlias = int | str | Decimal
"""A price or a size: an ``int`` is micro-units, as everywhere in polybot (``520_000`` is 0.52);
a ``str`` or ``Decimal`` is the decimal itself (``"0.52"``, ``"100"``). Never a float."""

Levels: TypeAlias = "Iterable[tuple[Amount, Amount]]"
"""``(price, size)`` pairs."""


class ScenarioTimeout(AssertionError):
    """A ``wait_for`` condition did not hold within its virtual-time deadline."""


class ScenarioCrashed(Exception):
    """The bot or the venue crashed during the scenario; the crash is the ``__cause__``."""


def units(amount: Amount) -> int:
    """``amount`` in micro-units (see ``Amount``).

    Raises:
        TypeError: a float or a bool (money is never a float here).
        ValueError: more than six decimals, or not a decimal.
    """
    if isinstance(amount, bool) or not isinstance(amount, int | str | Decimal):
        raise TypeError(
            f'expected micro-units (int) or a decimal ("0.52", Decimal), got {amount!r}'
        )
    if isinstance(amount, int):
        return amount
    if isinstance(amount, str):
        return parse_units(amount)
    return from_decimal(amount)


def _size(amount: Amount) -> int:
    """A size: as ``units``, but an int that is not a whole number of cents of a share is
    refused (``100`` is 0.0001 share: the usual slip for ``"100"``)."""
    size = units(amount)
    if isinstance(amount, int) and size % SIZE_STEP:
        raise ValueError(
            f'size {amount} is micro-units ({format_units(size)} share): write "{amount}" for '
            f"{amount} shares, or a multiple of {SIZE_STEP} micro-units"
        )
    return size


def _side(side: Side | str) -> Side:
    if isinstance(side, Side):
        return side
    try:
        return Side[side.upper()]
    except KeyError:
        raise ValueError(f'expected a side, Side.BUY or "BUY" / "SELL", got {side!r}') from None


@attrs.frozen
class Step:
    """One call of a strategy hook that returned something.

    Attributes:
        at: ``ctx.now`` of the call (virtual seconds).
        hook: ``on_books``, ``on_event``, ``on_stale`` or ``on_timer``.
        actions: what it returned, in order.
    """

    at: float
    hook: str
    actions: tuple[Action, ...]


@attrs.define(eq=False)
class StrategyProbe:
    """Everything one strategy did and was told, as recorded from outside it.

    Attributes:
        name: the strategy.
        instance: the strategy object now running (a fresh one after a crash).
        builds: how many times it was built (1 + restarts after crashes).
        steps: every hook call that returned actions, in order.
        decisions: its ``Decision``s, in order.
        intents: its intents (``Place``, ``Cancel``, ``CancelAll``, ``Basket``), in order, as
            it returned them (before risk checks: a refused one is still here).
        order_updates: the ``OrderUpdate``s of its orders it was given, in order.
        fills: the ``Fill``s of its orders it was given, in order.
    """

    name: str
    instance: Strategy | None = None
    builds: int = 0
    steps: list[Step] = attrs.field(factory=list)
    decisions: list[Decision] = attrs.field(factory=list)
    intents: list[Intent] = attrs.field(factory=list)
    order_updates: list[OrderUpdate] = attrs.field(factory=list)
    fills: list[Fill] = attrs.field(factory=list)


class _Recorded(Strategy):
    """Drives a strategy unchanged and writes down what it returns and what it is told."""

    def __init__(self, inner: Strategy, probe: StrategyProbe) -> None:
        self.inner = inner
        self.name = inner.name
        self._probe = probe

    def on_books(self, ctx: Context, changed: Collection[str]) -> Sequence[Action]:
        return self._keep(ctx, "on_books", self.inner.on_books(ctx, changed))

    def on_event(self, ctx: Context, event: object) -> Sequence[Action]:
        if isinstance(event, Fill):
            self._probe.fills.append(event)
        elif isinstance(event, OrderUpdate):
            self._probe.order_updates.append(event)
        return self._keep(ctx, "on_event", self.inner.on_event(ctx, event))

    def on_stale(self, ctx: Context, tokens: Collection[str], stale: bool) -> Sequence[Action]:
        return self._keep(ctx, "on_stale", self.inner.on_stale(ctx, tokens, stale))

    def on_timer(self, ctx: Context) -> Sequence[Action]:
        return self._keep(ctx, "on_timer", self.inner.on_timer(ctx))

    def wakeup_at(self) -> float | None:
        return self.inner.wakeup_at()

    def _keep(self, ctx: Context, hook: str, returned: Sequence[Action]) -> Sequence[Action]:
        actions = tuple(returned)
        if actions:
            probe = self._probe
            probe.steps.append(Step(ctx.now, hook, actions))
            for action in actions:
                if isinstance(action, Decision):
                    probe.decisions.append(action)
                else:
                    probe.intents.append(action)
        return actions


def _recorder(probes: dict[str, StrategyProbe], name: str, strategy: Strategy) -> Strategy:
    probe = probes.setdefault(name, StrategyProbe(name))
    probe.instance = strategy
    probe.builds += 1
    return _Recorded(strategy, probe)


class Scenario:
    """A running scenario: the venue, the bot, the script steps and the probes.

    Made by ``open_scenario`` (or the ``scenario`` pytest fixture). Every step is awaitable and
    returns once the bot has reacted to it completely (``settle``), so a test reads as a
    sequence of events and checks. Probes are synchronous reads of what happened so far.

    Attributes:
        venue: the sim venue (``venue.exchange`` holds the true books, ``venue.faults`` the
            fault switches).
        bot: the running bot (``bot.engine``, ``bot.feed``, ``bot.bus``...).
        config: the configuration the bot runs with.
        directory: where its log (``polybot.jsonl``) and journal (``journal.sqlite``) are.
        guard: the thread guard under a virtual clock (``None`` under the real one).
    """

    def __init__(
        self,
        venue: SimVenue,
        bot: BotHandle,
        config: Config,
        directory: Path,
        probes: dict[str, StrategyProbe],
        guard: ThreadGuard | None,
    ) -> None:
        self.venue = venue
        self.bot = bot
        self.config = config
        self.directory = directory
        self.guard = guard
        self._probes = probes
        self._log_path = directory / "polybot.jsonl"
        self._log_offset = 0
        self._records: list[dict[str, Any]] = []
        self._rng = random.Random(0)

    # --- the market -------------------------------------------------------------------------------

    @property
    def universe(self) -> Universe:
        """The markets the bot discovered."""
        return self.bot.universe

    @property
    def binary_markets(self) -> tuple[Market, ...]:
        """The stand-alone binary markets (no neg-risk members), in discovery order."""
        return self.universe.binary_markets()

    @property
    def events(self) -> tuple[Event, ...]:
        """The complete neg-risk events."""
        return self.universe.neg_risk_events()

    def market(self, which: int | str = 0) -> Market:
        """A binary market by index in ``binary_markets``, or any market by condition id."""
        if isinstance(which, int):
            return self.binary_markets[which]
        for market in self.universe.markets:
            if market.condition_id == which:
                return market
        raise KeyError(f"no market {which!r} in the scenario's universe")

    def book(self, token: str) -> BookView | None:
        """The bot's newest view of ``token``'s book (what its strategies see)."""
        return self.bot.bus.view(token)

    def venue_book(self, token: str) -> OrderBook:
        """The venue's true book of ``token`` (what the bot should converge to)."""
        return self.venue.exchange.book(token)

    # --- steps ----------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait until the bot and the venue have nothing left to do at this instant.

        Every frame sent has been read, decoded and published, every strategy has decided on
        it, every intent has been executed and journaled. Virtual time does not move (timers
        due later stay pending). Steps and waits call it; call it yourself after changing
        something directly (``venue.faults``, ``venue.exchange``).
        """
        await trio.testing.wait_all_tasks_blocked()

    async def set_book(self, token: str, *, bids: Levels = (), asks: Levels = ()) -> None:
        """Replace ``token``'s book (its complement mirrors it); the bot gets ``book`` snapshots.

        Args:
            token: either token of a market.
            bids: ``(price, size)`` levels, any order; a size of 0 is no level.
            asks: likewise. Prices must be on the market's tick.
        """
        bid_levels = [(units(p), _size(s)) for p, s in bids]
        ask_levels = [(units(p), _size(s)) for p, s in asks]
        events = self.venue.exchange.set_book(token, bid_levels, ask_levels, self.venue.now_ms())
        await self._send(events)

    async def set_level(self, token: str, side: Side | str, price: Amount, size: Amount) -> None:
        """Set one level of ``token``'s book to ``size`` (0 removes it); a ``price_change``."""
        events = self.venue.exchange.set_level(
            token, _side(side), units(price), _size(size), self.venue.now_ms()
        )
        await self._send(events)

    async def move_price(self, token: str, to: Amount) -> None:
        """Move ``token``'s whole book so that its mid is ``to`` (to within a tick).

        Every level shifts by the same whole number of ticks (toward zero from ``to - mid``),
        keeping its size; levels pushed outside ``[tick, 1 - tick]`` disappear. The bot gets
        it as ``price_change`` events in one frame, in an order that never crosses the book.

        Raises:
            ValueError: the book is empty.
        """
        book = self.venue.exchange.book(token)
        tick = book.tick_size
        bids = list(book.bids())
        asks = list(book.asks())
        if not bids and not asks:
            raise ValueError(f"cannot move an empty book ({token})")
        mid = (bids[0].price + asks[0].price) // 2 if bids and asks else (bids or asks)[0].price
        shift = units(to) - mid
        shift = shift // tick * tick if shift >= 0 else -((-shift) // tick * tick)
        if not shift:
            await self.settle()
            return

        def moved(levels: list[Any]) -> dict[int, int]:
            return {
                level.price + shift: level.size
                for level in levels
                if tick <= level.price + shift <= ONE - tick
            }

        old_bids = {level.price: level.size for level in bids}
        old_asks = {level.price: level.size for level in asks}
        new_bids, new_asks = moved(bids), moved(asks)
        # Up: the asks move out of the way first; down: the bids. No frame ever shows a cross.
        order: list[tuple[Side, dict[int, int], dict[int, int]]] = [
            (Side.SELL, old_asks, new_asks),
            (Side.BUY, old_bids, new_bids),
        ]
        if shift < 0:
            order.reverse()
        now_ms = self.venue.now_ms()
        events: list[WireEvent] = []
        exchange = self.venue.exchange
        for side, old, new in order:
            for price in sorted(old, reverse=(side is Side.SELL) == (shift > 0)):
                if price not in new:
                    events.extend(exchange.set_level(token, side, price, 0, now_ms))
            for price in sorted(new, reverse=(side is Side.BUY)):
                if old.get(price) != new[price]:
                    events.extend(exchange.set_level(token, side, price, new[price], now_ms))
        await self._send(events)

    async def print_trade(self, token: str, side: Side | str, size: Amount) -> None:
        """A taker order of ``size`` shares on ``token`` (``side``: the taker's, BUY lifts the
        asks) walks the venue's book: ``price_change`` for what it took and one
        ``last_trade_price`` per level (what the paper venue fills resting orders from)."""
        events = self.venue.exchange.trade(token, _side(side), _size(size), self.venue.now_ms())
        await self._send(events)

    async def inject_arbitrage(
        self, kind: OpportunityKind = OpportunityKind.COMPLEMENT
    ) -> Opportunity:
        """Plant an opportunity of ``kind`` (the venue picks the market; see
        ``bot.sim.exchange``) and return it. It stays until ``expire_opportunities`` is called
        after its lifetime (``SimConfig.opportunity_lifetime_ms``) or the pump runs.

        Raises:
            NoSuitableMarket: no market can carry one now.
        """
        opportunity = await self.venue.inject(kind)
        await self.settle()
        return opportunity

    async def expire_opportunities(self) -> None:
        """Let the venue's competitor take every opportunity whose lifetime is over."""
        await self._send(self.venue.exchange.expire(self.venue.now_ms()))

    async def resolve(self, market: Market | str, winner: str) -> None:
        """Resolve ``market`` (or a condition id) in favour of the ``winner`` token: its books
        empty and ``market_resolved`` goes out; positions in it are settled by the bot."""
        condition = market if isinstance(market, str) else market.condition_id
        await self.venue.resolve(condition, winner)
        await self.settle()

    async def drop_connection(self, *, wait: bool = True, within: float = 60.0) -> None:
        """Close every market WebSocket, as the venue does now and then.

        Args:
            wait: return only once the feed has reconnected and every book is fresh again
                (its backoff is random: waiting makes the next step deterministic).
            within: virtual seconds allowed for that.
        """
        before = self.feed().reconnects
        self.venue.drop_all_connections()
        await self.settle()
        if wait:
            await self.wait_for(
                lambda: self.feed().reconnects > before and self.feed().stale_tokens == 0,
                within=within,
                what="the feed reconnected and every book is fresh",
            )

    async def freeze(self) -> None:
        """Freeze the socket: the venue keeps answering ``PING`` but sends no market data
        (its books still change). The feed notices after ``feed.silence_timeout_s``."""
        self.venue.faults.silent = True
        await self.settle()

    async def unfreeze(self) -> None:
        """End ``freeze``: market data flows again (changes made meanwhile are not replayed;
        the feed's reconnect after detecting the freeze brings fresh snapshots)."""
        self.venue.faults.silent = False
        await self.settle()

    async def send_malformed(self, kind: MalformedKind = "bad_json") -> None:
        """Send one malformed frame on every market connection: ``bad_json``,
        ``missing_field``, ``wrong_type`` (built from a real ``book`` event) or
        ``unknown_event``. The feed must count it and carry on."""
        if kind not in MALFORMED_KINDS:
            raise ValueError(f"expected one of {', '.join(MALFORMED_KINDS)}, got {kind!r}")
        now_ms = self.venue.now_ms()
        sample = self.venue.exchange.book_json(self.universe.token_ids()[0], now_ms)
        send_raw(self.venue, malformed_frame(kind, [sample], self._rng, now_ms))
        await self.settle()

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` of (virtual) time pass, with everything due meanwhile, then settle."""
        await trio.sleep(seconds)
        await self.settle()

    async def start_flow(self) -> None:
        """Start the venue's own order flow (the pump; off in a scenario unless asked for)."""
        self.venue.resume_pump()
        await self.settle()

    async def stop_flow(self) -> None:
        """Stop the venue's own order flow; the books stay as they are."""
        self.venue.pause_pump()
        await self.settle()

    async def _send(self, events: list[WireEvent]) -> None:
        await self.venue.broadcast(events)
        await self.settle()

    # --- probes ---------------------------------------------------------------------------------

    def strategy(self, name: str) -> StrategyProbe:
        """What strategy ``name`` did and was told (``KeyError`` if it does not run)."""
        try:
            return self._probes[name]
        except KeyError:
            running = ", ".join(sorted(self._probes)) or "none"
            raise KeyError(
                f"no strategy {name!r} runs in this scenario (running: {running})"
            ) from None

    def _each(self, strategy: str | None) -> list[StrategyProbe]:
        return [self.strategy(strategy)] if strategy is not None else list(self._probes.values())

    def decisions(self, strategy: str | None = None, kind: str | None = None) -> list[Decision]:
        """The decisions of ``strategy`` (of all, when ``None``), of ``kind`` if given."""
        return [
            d
            for probe in self._each(strategy)
            for d in probe.decisions
            if kind is None or d.kind == kind
        ]

    def intents(self, strategy: str | None = None) -> list[Intent]:
        """The intents of ``strategy`` (of all, when ``None``), as returned."""
        return [i for probe in self._each(strategy) for i in probe.intents]

    def order_updates(self, strategy: str | None = None) -> list[OrderUpdate]:
        """The order updates the strategy was given (placed, cancelled, rejected, matched)."""
        return [u for probe in self._each(strategy) for u in probe.order_updates]

    def fills(self, strategy: str | None = None) -> list[Fill]:
        """The fills of ``strategy``'s orders (of all, when ``None``), in order."""
        return [f for probe in self._each(strategy) for f in probe.fills]

    def open_orders(self, strategy: str | None = None) -> list[Order]:
        """Orders resting now (paper), of ``strategy`` or of all."""
        engine = self.bot.engine
        if strategy is not None:
            return list(engine.open_orders(strategy).values())
        return list(engine.all_open_orders())

    def position(self, token: str, strategy: str | None = None) -> int:
        """Shares of ``token`` held (by ``strategy``, or by all), micro-units."""
        ledger = self.bot.engine.ledger
        return ledger.position(token) if strategy is None else ledger.position_of(strategy, token)

    def positions(self) -> Mapping[tuple[str, str], int]:
        """Every open position: ``(strategy, token) -> shares``."""
        return self.bot.engine.ledger.positions()

    def pnl(self, strategy: str | None = None) -> int:
        """PnL now (cash plus holdings at the mid; complete sets at 1), micro-units of pUSD."""
        engine = self.bot.engine
        return engine.ledger.pnl(self.universe, engine.marks(), strategy)

    def feed(self) -> FeedStatistics:
        """The feed's counters: reconnects, malformed frames, stale tokens, frozen detections."""
        return self.bot.feed.statistics(per_token=False)

    def health(self) -> dict[str, Any]:
        """The bot's health figures (what its status line and ``/health`` report)."""
        return self.bot.health()

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The bot's JSON-lines log so far (``logs/polybot.jsonl`` in production): human log
        lines (``kind="log"``), decisions, orders, fills, rejections, feed telemetry,
        health records; of ``kind`` if given."""
        self._read_log()
        return [r for r in self._records if kind is None or r.get("kind") == kind]

    def logs(self, level: str | None = None, contains: str | None = None) -> list[dict[str, Any]]:
        """The human log lines (``level``, ``message``, ``extra``...), of ``level`` and with
        ``contains`` in the message, if given."""
        return [
            r
            for r in self.records("log")
            if (level is None or r.get("level") == level)
            and (contains is None or contains in str(r.get("message", "")))
        ]

    def _read_log(self) -> None:
        # Synchronous and small (a scenario's log): read what the writer appended since last time.
        try:
            with self._log_path.open("rb") as file:
                file.seek(self._log_offset)
                data = file.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        self._log_offset += end
        self._records.extend(orjson.loads(line) for line in data[:end].splitlines() if line)

    # --- waiting --------------------------------------------------------------------------------

    async def wait_for(
        self,
        condition: Callable[[], T | None],
        *,
        within: float = 10.0,
        poll: float = 0.01,
        what: str | None = None,
    ) -> T:
        """Wait until ``condition()`` is truthy and return its value.

        Checked after every ``settle`` and then every ``poll`` virtual seconds.

        Raises:
            ScenarioTimeout: it did not hold within ``within`` virtual seconds.
        """
        deadline = trio.current_time() + within
        while True:
            await self.settle()
            value = condition()
            if value:
                return value
            now = trio.current_time()
            if now >= deadline:
                label = what or getattr(condition, "__name__", "the condition")
                raise ScenarioTimeout(f"{label}: not met within {within:g} s of virtual time")
            await trio.sleep(min(poll, deadline - now))

    async def wait_for_decision(
        self, strategy: str, kind: str, *, nth: int = 1, within: float = 10.0
    ) -> Decision:
        """The ``nth`` decision of ``kind`` made by ``strategy`` in this scenario (1: the
        first), once it has been made; at once if it already has."""
        if nth < 1:
            raise ValueError(f"nth counts from 1, got {nth}")

        def made() -> Decision | None:
            found = self.decisions(strategy, kind)
            return found[nth - 1] if len(found) >= nth else None

        what = f"decision {nth} of kind {kind} from {strategy}"
        return await self.wait_for(made, within=within, what=what)

    async def wait_for_fill(
        self, strategy: str | None = None, *, nth: int = 1, within: float = 10.0
    ) -> Fill:
        """The ``nth`` fill (1: the first) of ``strategy``'s orders, or of anyone's, in this
        scenario, once it has happened; at once if it already has."""
        if nth < 1:
            raise ValueError(f"nth counts from 1, got {nth}")

        def filled() -> Fill | None:
            found = self.fills(strategy)
            return found[nth - 1] if len(found) >= nth else None

        what = f"fill {nth} of {strategy or 'any strategy'}"
        return await self.wait_for(filled, within=within, what=what)

    async def wait_until_fresh(self, *, within: float = 60.0) -> None:
        """Until no book is stale (after a freeze, a drop, a resolution...)."""
        await self.wait_for(
            lambda: self.feed().stale_tokens == 0, within=within, what="every book fresh"
        )


def scenario_config(
    config: Config | str | None,
    *,
    directory: Path,
    strategies: Collection[str] | None = None,
) -> Config:
    """The configuration a scenario runs: ``config`` (a ``Config``, TOML text or ``None`` for
    the defaults) with its log and journal in ``directory`` and, when ``strategies`` is given,
    exactly those strategies enabled.

    Raises:
        ConfigError: the TOML text is invalid.
        ValueError: ``strategies`` names one the configuration does not have.
    """
    if config is None:
        cfg = Config()
    elif isinstance(config, str):
        cfg = parse_config(config, {})
    else:
        cfg = config
    cfg = attrs.evolve(
        cfg,
        log=attrs.evolve(cfg.log, dir=directory),
        execution=attrs.evolve(cfg.execution, journal=directory / "journal.sqlite"),
    )
    if strategies is None:
        return cfg
    wanted = set(strategies)
    known = {entry.name for entry in configured_strategies(cfg)}
    unknown = wanted - known
    if unknown:
        raise ValueError(
            f"no strategy {', '.join(sorted(unknown))} in the configuration "
            f"(it has: {', '.join(sorted(known))})"
        )
    st = cfg.strategies
    changes: dict[str, Any] = {
        field.name: attrs.evolve(block, enabled=field.name in wanted)
        for field in attrs.fields(type(st))
        if attrs.has(type(block := getattr(st, field.name))) and hasattr(block, "enabled")
    }
    plugins = tuple(attrs.evolve(p, enabled=p.name in wanted) for p in st.plugins)
    return attrs.evolve(cfg, strategies=attrs.evolve(st, **changes, plugins=plugins))


def _relaxed_discovery(cfg: Config) -> DiscoveryConfig:
    """The venue's whole (small, synthetic) universe: the liquidity, volume, end-date and
    keyword filters are for real markets (the market cap still applies)."""
    return attrs.evolve(
        cfg.discovery,
        keywords=(),
        tag_slugs=(),
        min_liquidity=Decimal(0),
        min_volume=Decimal(0),
        end_within_days=0,
    )


@asynccontextmanager
async def open_scenario(
    config: Config | str | None = None,
    *,
    strategies: Collection[str] | None = None,
    sim: SimConfig | None = None,
    pump: bool = False,
    directory: Path | str | None = None,
    start_epoch_ms: int = SCENARIO_EPOCH_MS,
    status_interval_s: float = 5.0,
) -> AsyncIterator[Scenario]:
    """Run the sim venue and the whole bot (paper execution) for the block; yield the scenario.

    Args:
        config: the bot's configuration: a ``Config``, TOML text (as in ``config.toml``;
            secrets are not read) or ``None`` for the defaults. Its log and journal go to
            ``directory``.
        strategies: run exactly these (built-in or plugin names); ``None``: as configured.
        sim: the venue (default ``SCENARIO_SIM``); its ``seed`` decides the markets and books.
        pump: start with the venue's own order flow on (default off: the books change only
            when the script changes them).
        directory: for the log and the journal (default: a temporary directory, removed after).
        start_epoch_ms: the venue's clock at start.
        status_interval_s: how often the bot writes its health record.

    Yields:
        The scenario, once every book is fresh.

    Raises:
        ScenarioCrashed: the bot or the venue crashed (the crash is the ``__cause__``).
        ScenarioTimeout: the books did not all get fresh within ``START_WITHIN_S``.

    Deterministic under pytest-trio's ``autojump_clock``: no real socket is used (the bot talks
    to the venue over ``bot.sim.embedded.MemoryNetwork``; inside the block nothing else in the
    test can open a real TCP connection either) and the bot's disk threads take no time
    (``bot.testing._clock``). Under the real clock it works too, in real time. A plugin named
    in TOML text must be importable from ``sys.path`` (there is no config file to look next to).
    """
    with contextlib.ExitStack() as scratch:
        if directory is None:
            where = Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix="polybot-")))
        else:
            where = Path(directory)
        cfg = scenario_config(config, directory=where, strategies=strategies)
        body_error: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                guard: ThreadGuard | None = await nursery.start(guard_threads)
                network = MemoryNetwork(nursery)
                with network.installed():
                    async with (
                        open_sim_venue(
                            sim or SCENARIO_SIM, start_epoch_ms=start_epoch_ms, pump=pump
                        ) as venue,
                        trio.open_nursery() as bot_nursery,
                    ):
                        serve_venue(network, venue)
                        probes: dict[str, StrategyProbe] = {}
                        urls = VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url)
                        with observe_strategies(partial(_recorder, probes)):
                            bot: BotHandle = await bot_nursery.start(
                                partial(
                                    run_bot,
                                    cfg,
                                    urls,
                                    discovery=_relaxed_discovery(cfg),
                                    console=False,
                                    status_interval_s=status_interval_s,
                                    # Seeded: a reconnect comes back at the same virtual time
                                    # every run.
                                    rng=random.Random(7),
                                )
                            )
                        scenario = Scenario(venue, bot, cfg, where, probes, guard)
                        try:
                            await scenario.wait_until_fresh(within=START_WITHIN_S)
                            yield scenario
                        except BaseException as exc:
                            # Kept out of the nurseries: the caller sees its own exception.
                            body_error = exc
                        finally:
                            bot_nursery.cancel_scope.cancel(reason="scenario over")
                nursery.cancel_scope.cancel(reason="scenario over")
        except BaseExceptionGroup as group:
            crashes, _others = group.split(Exception)
            if crashes is None:
                raise
            first = crashes.exceptions[0]
            raise ScenarioCrashed(f"the scenario crashed: {first!r}") from group
        if body_error is not None:
            raise body_error
