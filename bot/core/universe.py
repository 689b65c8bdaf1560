"""The tradable universe: which markets the bot trades, chosen from Gamma by pure rules.

Discovery (``bot.shell.discovery``) fetches Gamma events and markets; everything after the fetch
is here, as plain functions of their inputs, so the choice can be tested on hand-built objects
and on recorded responses, and is reproducible: the same inputs, config and ``now`` give the same
``Universe`` whatever order the venue listed things in.

**Units of selection.** A plain (binary) market is chosen on its own. A negative-risk event is
chosen or dropped *whole*: pricing one outcome of a "winner takes all" event needs all the others
(``sum(YES) ~ 1``, PROTOCOL.md 7.3), so its markets are never split by the cap, and the event's
own liquidity, volume and end date are what the thresholds look at (individual long-shot
outcomes are thin by nature).

**Filters** (``DiscoveryConfig``), applied to each unit:

* tradable: ``enableOrderBook``, ``active``, not ``closed``/``archived``, exactly two outcomes
  with two distinct token ids, and a supported tick size;
* ``kind``: binary units, neg-risk units, or both;
* ``keywords``: any keyword appears (case-insensitively) in the market question, market slug,
  group title, or the event title or slug; for an event, in the event or any of its markets;
* ``tag_slugs``: the event carries one of the tags (tags live on events; a market listed without
  a known event has none);
* ``min_liquidity`` / ``min_volume``: at least these amounts (missing amounts count as 0);
* ``end_within_days``: the end date is in ``[now, now + days]``; a unit without an end date
  fails the window (0 disables the window);
* the **completeness check** for neg-risk events, below;
* the cap ``max_markets``: units ranked by volume (descending, ties broken by id), taken greedily
  while they fit; an event that does not fit is skipped whole and smaller units after it may
  still fill the remaining room.

**Completeness.** A neg-risk event is only arbitrage-safe if its outcome set is complete and
every outcome can be traded. It is *incomplete*, with a reason naming each problem, when it is
augmented neg-risk (``negRiskAugmented``: unnamed placeholder outcomes and an "Other" whose
meaning shifts as placeholders get named; "trade only named outcomes"), when a market is an
"Other" (``negRiskOther`` or titled "Other") or a placeholder ("Person A"), or when a market is
not active, closed, not accepting orders, has no order book, lacks two token ids or a tick size.
With ``skip_incomplete_events`` such events are left out and listed in ``Universe.skipped``;
otherwise they are kept with ``complete=False`` and only their tradable, named markets.

**Tick sizes.** Gamma's ``orderPriceMinTickSize`` is the source; for the rare market without it,
discovery asks the CLOB and passes the answers in ``tick_sizes``. ``markets_missing_tick_size``
runs the same selection assuming every missing tick will be found, and returns the chosen
markets that need a lookup, so only those are fetched. A market whose tick stays unknown is not
tradable (and makes its neg-risk event incomplete).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Final, Literal

import attrs

from bot.config import DiscoveryConfig, MarketKind
from bot.core.money import SCALE, TICK_SIZES, format_units

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from bot.core.wire.gamma import GammaEvent, GammaMarket

__all__ = [
    "DEFAULT_MIN_ORDER_SIZE",
    "Event",
    "Market",
    "Outcome",
    "Universe",
    "markets_missing_tick_size",
    "select_markets",
]

DEFAULT_MIN_ORDER_SIZE: Final = 5 * SCALE
"""Minimum resting order size (shares, micro-units) when Gamma omits ``orderMinSize``: the
venue's usual 5 (PROTOCOL.md 7.2). The book snapshot's ``min_order_size`` is authoritative."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO: Final = Decimal(0)
_MAX_REASONS: Final = 4
_LABEL_CHARS: Final = 60
_PROBE_TICK: Final = -1
"""Stands in for a tick a CLOB lookup is expected to supply (``markets_missing_tick_size``)."""

_OTHER_TITLES: Final = frozenset(
    {"other", "others", "any other", "someone else", "anyone else", "field", "the field"}
)
# Augmented neg-risk events pre-deploy unnamed outcomes titled like "Person A", "Candidate B",
# "Player 12"; they are renamed via the bulletin board when the outcome becomes known.
_PLACEHOLDER_RE: Final = re.compile(
    r"(?:person|candidate|player|team|option|outcome|choice|nominee|party|company|country)"
    r"\s+(?:[a-z]{1,2}|\d{1,3})",
    re.IGNORECASE,
)
_YES_NO: Final = ("yes", "no")


# --------------------------------------------------------------------------------------------
# Values


@attrs.frozen
class Outcome:
    """One side of a binary market: its label and the CLOB token that pays if it wins."""

    name: str
    token_id: str


@attrs.frozen
class Market:
    """A tradable binary market (stand-alone, or one outcome of a neg-risk event).

    Attributes:
        condition_id: The CLOB market id (``conditionId``).
        question: The question, e.g. "Will X win the 2028 nomination?".
        slug: Gamma's market slug.
        outcomes: The two outcomes, "Yes" first and "No" second when so labelled; otherwise in
            Gamma's order (e.g. "Up", "Down").
        tick_size: Minimum price increment in micro-units (0.01 -> ``10_000``).
        min_order_size: Minimum resting order size in share micro-units.
        neg_risk: Orders go to the neg-risk exchange.
        neg_risk_market_id: The neg-risk event's on-chain market id ("" if not neg-risk).
        event_id: The parent Gamma event's id, ``None`` when unknown.
        end_date: When the market is expected to end (UTC), ``None`` when Gamma omits it.
        liquidity: Gamma's liquidity figure, USD (0 when missing).
        volume: Gamma's total traded volume, USD (0 when missing).
        fee_rate: The V2 taker-fee rate in micro-units (0.03 -> ``30_000``), from Gamma's
            ``feeSchedule`` when ``feesEnabled``; 0 otherwise.
        accepting_orders: Gamma's ``acceptingOrders`` at discovery time.
        group_item_title: The outcome's short name inside its event ("Gretchen Whitmer").
        gamma_id: Gamma's numeric market id, as a string.
    """

    condition_id: str
    question: str
    slug: str
    outcomes: tuple[Outcome, Outcome]
    tick_size: int
    min_order_size: int
    neg_risk: bool
    neg_risk_market_id: str
    event_id: str | None
    end_date: datetime | None
    liquidity: Decimal
    volume: Decimal
    fee_rate: int
    accepting_orders: bool
    group_item_title: str = ""
    gamma_id: str = ""

    @property
    def yes(self) -> Outcome:
        """The first outcome ("Yes")."""
        return self.outcomes[0]

    @property
    def no(self) -> Outcome:
        """The second outcome ("No")."""
        return self.outcomes[1]

    @property
    def token_ids(self) -> tuple[str, str]:
        """``(yes_token_id, no_token_id)``."""
        return (self.outcomes[0].token_id, self.outcomes[1].token_id)

    @property
    def label(self) -> str:
        """A short human name: the group title inside an event, else the question."""
        return self.group_item_title or self.question or self.condition_id

    def complement(self, token_id: str) -> str:
        """The other token of this market.

        Raises:
            KeyError: ``token_id`` is not one of this market's tokens.
        """
        yes, no = self.token_ids
        if token_id == yes:
            return no
        if token_id == no:
            return yes
        raise KeyError(f"token {token_id} is not in market {self.condition_id}")


@attrs.frozen
class Event:
    """A Gamma event with the markets chosen from it.

    For a neg-risk event ``markets`` holds all its outcome markets (the cap keeps them together),
    or, when it is incomplete but kept, the tradable named ones. For a plain event it holds only
    the markets chosen individually.

    Attributes:
        id: Gamma event id.
        slug: Gamma event slug.
        title: Event title.
        neg_risk: Exactly one of the markets resolves YES (PROTOCOL.md 7.3).
        markets: The chosen markets, in Gamma's order for neg-risk events.
        complete: False when the completeness check failed (see the module docstring).
        incomplete_reason: Why it failed, e.g.
            ``augmented neg-risk event; "Other" outcome (Other)``; ``None`` when complete.
        neg_risk_market_id: The on-chain neg-risk market id ("" if not neg-risk).
        liquidity: Event liquidity, USD (Gamma's figure, else the sum over its markets).
        volume: Event volume, USD (Gamma's figure, else the sum over its markets).
        end_date: Event end (UTC), ``None`` when unknown.
    """

    id: str
    slug: str
    title: str
    neg_risk: bool
    markets: tuple[Market, ...]
    complete: bool = True
    incomplete_reason: str | None = None
    neg_risk_market_id: str = ""
    liquidity: Decimal = _ZERO
    volume: Decimal = _ZERO
    end_date: datetime | None = None


@attrs.frozen
class Universe:
    """The result of discovery: the markets to trade and the events they belong to.

    ``markets`` are ranked (highest-volume unit first, neg-risk events' markets together); every
    token id appears once. Lookups by token are dictionary lookups (the index is built once).

    Attributes:
        markets: Every chosen market, binary and neg-risk alike.
        events: The events of the chosen markets, in order of first appearance in ``markets``.
        skipped: Neg-risk events that passed every filter but failed the completeness check and
            were left out (``skip_incomplete_events``); each carries its ``incomplete_reason``.
    """

    markets: tuple[Market, ...] = ()
    events: tuple[Event, ...] = ()
    skipped: tuple[Event, ...] = ()
    _by_token: dict[str, Market] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        index: dict[str, Market] = {}
        for market in self.markets:
            for token in market.token_ids:
                if token in index:
                    raise ValueError(
                        f"token {token} appears in markets {index[token].condition_id} and "
                        f"{market.condition_id}"
                    )
                index[token] = market
        # Frozen class: the derived index is set once, here, and never changes.
        object.__setattr__(self, "_by_token", index)

    def token_ids(self) -> tuple[str, ...]:
        """Every token id, two per market (YES then NO), in market order."""
        return tuple(token for market in self.markets for token in market.token_ids)

    def market_for_token(self, token_id: str) -> Market:
        """The market trading ``token_id``.

        Raises:
            KeyError: the token is not in the universe.
        """
        try:
            return self._by_token[token_id]
        except KeyError:
            raise KeyError(f"token {token_id} is not in the universe") from None

    def complement_token(self, token_id: str) -> str:
        """The other token of ``token_id``'s market (YES <-> NO).

        Raises:
            KeyError: the token is not in the universe.
        """
        return self.market_for_token(token_id).complement(token_id)

    def binary_markets(self) -> tuple[Market, ...]:
        """The stand-alone (not neg-risk) markets."""
        return tuple(market for market in self.markets if not market.neg_risk)

    def neg_risk_events(self) -> tuple[Event, ...]:
        """The neg-risk events (complete, or flagged incomplete when those are kept)."""
        return tuple(event for event in self.events if event.neg_risk)


# --------------------------------------------------------------------------------------------
# Selection


def select_markets(
    gamma_markets: Iterable[GammaMarket],
    gamma_events: Iterable[GammaEvent],
    cfg: DiscoveryConfig,
    now: datetime,
    *,
    tick_sizes: Mapping[str, int] | None = None,
) -> Universe:
    """Choose the universe from Gamma's listings (rules in the module docstring).

    Args:
        gamma_markets: Markets from ``GET /markets`` (binary candidates). Markets that also appear
            inside ``gamma_events`` are taken from there, with their event's context.
        gamma_events: Events from ``GET /events`` with their embedded markets: the only source
            of neg-risk events and of tags.
        cfg: The discovery rules.
        now: The current time, timezone-aware; the end-date window starts here.
        tick_sizes: Tick sizes (micro-units) by condition id, for markets Gamma lists without
            ``orderPriceMinTickSize`` (looked up on the CLOB by discovery).

    Returns:
        The universe; deterministic for the same inputs, whatever their order.

    Raises:
        ValueError: ``now`` is naive.
    """
    universe, _missing = _select(gamma_markets, gamma_events, cfg, now, tick_sizes, probe=False)
    return universe


def markets_missing_tick_size(
    gamma_markets: Iterable[GammaMarket],
    gamma_events: Iterable[GammaEvent],
    cfg: DiscoveryConfig,
    now: datetime,
    *,
    tick_sizes: Mapping[str, int] | None = None,
) -> tuple[GammaMarket, ...]:
    """The markets ``select_markets`` would choose if their missing tick sizes were known.

    Discovery looks these (and only these) up on the CLOB, then calls ``select_markets`` with the
    answers. Arguments are as for ``select_markets``.
    """
    _universe, missing = _select(gamma_markets, gamma_events, cfg, now, tick_sizes, probe=True)
    return missing


@attrs.frozen
class _Context:
    """What a market inherits from its event for filtering."""

    id: str | None
    slug: str = ""
    title: str = ""
    tags: frozenset[str] = frozenset()


@attrs.frozen
class _Unit:
    """A candidate for the cap: one binary market, or one whole neg-risk event."""

    key: str
    volume: Decimal
    markets: tuple[Market, ...]
    event: Event | None
    context: _Context


class _Selector:
    """One run of the selection; holds the config-derived predicates."""

    def __init__(
        self,
        cfg: DiscoveryConfig,
        now: datetime,
        tick_sizes: Mapping[str, int] | None,
        *,
        probe: bool,
    ) -> None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"now must be timezone-aware, got {now!r}")
        self.cfg = cfg
        self.now = now
        self.ticks = dict(tick_sizes or {})
        self.probe = probe
        self.keywords = tuple(word.lower() for word in cfg.keywords)
        self.tags = frozenset(tag.lower() for tag in cfg.tag_slugs)
        self.end_limit = now + timedelta(days=cfg.end_within_days) if cfg.end_within_days else None
        self.wants_binary = cfg.kind in (MarketKind.BINARY, MarketKind.BOTH)
        self.wants_neg_risk = cfg.kind in (MarketKind.NEG_RISK, MarketKind.BOTH)

    # --- predicates ----------------------------------------------------------------------------

    def tick_of(self, market: GammaMarket) -> int | None:
        if market.tick_size is not None:
            return market.tick_size
        tick = self.ticks.get(market.condition_id)
        if tick is None and self.probe:
            return _PROBE_TICK
        return tick

    def keyword_match(self, texts: Iterable[str]) -> bool:
        if not self.keywords:
            return True
        lowered = [text.lower() for text in texts if text]
        return any(word in text for text in lowered for word in self.keywords)

    def tag_match(self, tags: frozenset[str]) -> bool:
        return not self.tags or not self.tags.isdisjoint(tags)

    def amounts_ok(self, liquidity: Decimal, volume: Decimal) -> bool:
        return liquidity >= self.cfg.min_liquidity and volume >= self.cfg.min_volume

    def end_ok(self, end: datetime | None) -> bool:
        if self.end_limit is None:
            return True
        return end is not None and self.now <= end <= self.end_limit

    def market_problem(self, market: GammaMarket, *, member: bool) -> str | None:
        """Why ``market`` cannot be traded, or ``None``. ``member``: of a neg-risk event."""
        label = _label(market)
        if not market.enable_order_book:
            return f"{label}: no order book"
        if not market.active:
            return f"{label}: not active"
        if market.closed:
            return f"{label}: closed"
        if market.archived:
            return f"{label}: archived"
        if member and not market.accepting_orders:
            return f"{label}: not accepting orders"
        tokens = market.clob_token_ids
        if len(tokens) != 2 or len(market.outcomes) != 2 or not all(tokens) or len(set(tokens)) < 2:
            return f"{label}: does not have 2 token ids"
        tick = self.tick_of(market)
        if tick is None:
            return f"{label}: no tick size"
        if tick != _PROBE_TICK and tick not in TICK_SIZES:
            return f"{label}: unsupported tick size {format_units(tick)}"
        if member and not market.neg_risk:
            return f"{label}: not a neg-risk market"
        return None

    # --- units ---------------------------------------------------------------------------------

    def binary_unit(self, market: GammaMarket, context: _Context) -> _Unit | None:
        if not self.wants_binary or market.neg_risk:
            return None
        if self.market_problem(market, member=False) is not None:
            return None
        texts = (market.question, market.slug, market.group_item_title, context.title, context.slug)
        if not self.keyword_match(texts) or not self.tag_match(context.tags):
            return None
        built = self.build_market(market, context.id)
        end = built.end_date
        if not self.amounts_ok(built.liquidity, built.volume) or not self.end_ok(end):
            return None
        return _Unit(f"m:{market.condition_id}", built.volume, (built,), None, context)

    def event_unit(self, event: GammaEvent, context: _Context) -> tuple[_Unit | None, Event | None]:
        """The event as a unit, or ``(None, skipped_event_or_None)``."""
        if not self.wants_neg_risk or not event.active or event.closed or event.archived:
            return None, None
        texts = [event.title, event.slug]
        for market in event.markets:
            texts += (market.question, market.slug, market.group_item_title)
        if not self.keyword_match(texts) or not self.tag_match(context.tags):
            return None, None
        liquidity = event.liquidity
        if liquidity is None:
            liquidity = sum((m.liquidity or _ZERO for m in event.markets), _ZERO)
        volume = event.volume
        if volume is None:
            volume = sum((m.volume or _ZERO for m in event.markets), _ZERO)
        end = _date(event.end_date_ms)
        if end is None:
            ends = [d for m in event.markets if (d := _date(m.end_date_ms)) is not None]
            end = max(ends, default=None)
        if not self.amounts_ok(liquidity, volume) or not self.end_ok(end):
            return None, None

        reasons: list[str] = []
        if event.neg_risk_augmented:
            reasons.append(
                'augmented neg-risk event (placeholder outcomes and an "Other" that changes '
                "meaning)"
            )
        if not event.markets:
            reasons.append("no markets")
        tradable: list[Market] = []
        for market in event.markets:
            named = True
            if market.neg_risk_other or _is_other(market):
                reasons.append(f'"Other" outcome ({_label(market)})')
                named = False
            elif _is_placeholder(market):
                reasons.append(f"placeholder outcome ({_label(market)})")
                named = False
            problem = self.market_problem(market, member=True)
            if problem is not None:
                reasons.append(problem)
            elif named:
                tradable.append(self.build_market(market, event.id))

        result = Event(
            id=event.id,
            slug=event.slug,
            title=event.title,
            neg_risk=True,
            markets=tuple(tradable),
            complete=not reasons,
            incomplete_reason=_join_reasons(reasons),
            neg_risk_market_id=event.neg_risk_market_id,
            liquidity=liquidity,
            volume=volume,
            end_date=end,
        )
        if reasons and (self.cfg.skip_incomplete_events or not tradable):
            return None, result
        return _Unit(f"e:{event.id}", volume, result.markets, result, context), None

    def build_market(self, market: GammaMarket, event_id: str | None) -> Market:
        tick = self.tick_of(market)
        assert tick is not None, "build_market is only called for markets with a tick"
        first, second = (
            Outcome(name, token)
            for name, token in zip(market.outcomes, market.clob_token_ids, strict=True)
        )
        if (first.name.lower(), second.name.lower()) == _YES_NO[::-1]:
            first, second = second, first
        fees = market.fee_schedule
        return Market(
            condition_id=market.condition_id,
            question=market.question,
            slug=market.slug,
            outcomes=(first, second),
            tick_size=tick,
            min_order_size=market.min_order_size or DEFAULT_MIN_ORDER_SIZE,
            neg_risk=market.neg_risk,
            neg_risk_market_id=market.neg_risk_market_id,
            event_id=event_id,
            end_date=_date(market.end_date_ms),
            liquidity=market.liquidity or _ZERO,
            volume=market.volume or _ZERO,
            fee_rate=fees.rate if market.fees_enabled and fees is not None else 0,
            accepting_orders=market.accepting_orders,
            group_item_title=market.group_item_title,
            gamma_id=market.id,
        )


def _select(
    gamma_markets: Iterable[GammaMarket],
    gamma_events: Iterable[GammaEvent],
    cfg: DiscoveryConfig,
    now: datetime,
    tick_sizes: Mapping[str, int] | None,
    *,
    probe: bool,
) -> tuple[Universe, tuple[GammaMarket, ...]]:
    selector = _Selector(cfg, now, tick_sizes, probe=probe)

    # Canonical input order (events by id, markets by condition id) makes the result independent
    # of how the venue paged and sorted; duplicates keep the first by that order.
    events: dict[str, GammaEvent] = {}
    for event in sorted(gamma_events, key=lambda e: e.id):
        events.setdefault(event.id, event)

    units: list[_Unit] = []
    skipped: list[Event] = []
    seen: set[str] = set()
    by_condition: dict[str, GammaMarket] = {}
    for event in events.values():
        context = _Context(
            event.id, event.slug, event.title, frozenset(t.slug.lower() for t in event.tags)
        )
        by_condition.update({m.condition_id: m for m in event.markets})
        seen.update(m.condition_id for m in event.markets)
        if event.neg_risk:
            unit, skipped_event = selector.event_unit(event, context)
            if unit is not None:
                units.append(unit)
            if skipped_event is not None:
                skipped.append(skipped_event)
        else:
            for market in event.markets:
                unit = selector.binary_unit(market, context)
                if unit is not None:
                    units.append(unit)

    for market in sorted(gamma_markets, key=lambda m: m.condition_id):
        if market.condition_id in seen:
            continue
        seen.add(market.condition_id)
        by_condition[market.condition_id] = market
        unit = selector.binary_unit(market, _context_of(market, events))
        if unit is not None:
            units.append(unit)

    chosen = _cap(units, cfg.max_markets)
    universe = _assemble(chosen, events, skipped)
    missing = tuple(
        by_condition[m.condition_id] for m in universe.markets if m.tick_size == _PROBE_TICK
    )
    return universe, missing


def _cap(units: list[_Unit], max_markets: int) -> list[_Unit]:
    """Greedy fill by volume: whole units only; a unit that does not fit is skipped."""
    ranked = sorted(units, key=lambda unit: (-unit.volume, unit.key))
    chosen: list[_Unit] = []
    room = max_markets
    for unit in ranked:
        if len(unit.markets) <= room:
            chosen.append(unit)
            room -= len(unit.markets)
            if room == 0:
                break
    return chosen


def _assemble(
    chosen: list[_Unit], events: Mapping[str, GammaEvent], skipped: list[Event]
) -> Universe:
    """Lay the chosen units out as a ``Universe``: markets in rank order, events by first
    appearance (a plain event groups the binary markets chosen from it)."""
    markets: list[Market] = []
    order: list[str] = []
    neg_risk: dict[str, Event] = {}
    plain: dict[str, tuple[_Context, list[Market]]] = {}
    for unit in chosen:
        markets.extend(unit.markets)
        if unit.event is not None:
            neg_risk[unit.event.id] = unit.event
            order.append(unit.event.id)
            continue
        event_id = unit.context.id
        if event_id is None or event_id in neg_risk:
            continue
        if event_id not in plain:
            plain[event_id] = (unit.context, [])
            order.append(event_id)
        plain[event_id][1].extend(unit.markets)

    built: list[Event] = []
    for event_id in order:
        if event_id in neg_risk:
            built.append(neg_risk[event_id])
            continue
        context, members = plain[event_id]
        source = events.get(event_id)
        liquidity = source.liquidity if source is not None else None
        volume = source.volume if source is not None else None
        built.append(
            Event(
                id=event_id,
                slug=context.slug,
                title=context.title,
                neg_risk=False,
                markets=tuple(members),
                liquidity=liquidity if liquidity is not None else _total(members, "liquidity"),
                volume=volume if volume is not None else _total(members, "volume"),
                end_date=_date(source.end_date_ms) if source is not None else None,
            )
        )
    skipped.sort(key=lambda event: (-event.volume, event.id))
    return Universe(markets=tuple(markets), events=tuple(built), skipped=tuple(skipped))


# --------------------------------------------------------------------------------------------
# Helpers


def _context_of(market: GammaMarket, events: Mapping[str, GammaEvent]) -> _Context:
    """The event context of a market listed by ``/markets``: its full event if fetched, else
    the short reference it carries (without tags), else none."""
    if not market.events:
        return _Context(None)
    ref = market.events[0]
    full = events.get(ref.id)
    if full is not None:
        return _Context(
            full.id, full.slug, full.title, frozenset(t.slug.lower() for t in full.tags)
        )
    return _Context(ref.id, ref.slug, ref.title)


def _total(markets: Iterable[Market], which: Literal["liquidity", "volume"]) -> Decimal:
    amounts = (m.liquidity if which == "liquidity" else m.volume for m in markets)
    return sum(amounts, _ZERO)


def _date(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else _EPOCH + timedelta(milliseconds=epoch_ms)


def _label(market: GammaMarket) -> str:
    text = market.group_item_title or market.question or market.condition_id
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 3] + "..."


def _is_other(market: GammaMarket) -> bool:
    title = market.group_item_title.strip().lower()
    return title in _OTHER_TITLES or title.startswith(("other ", "other("))


def _is_placeholder(market: GammaMarket) -> bool:
    title = market.group_item_title.strip()
    return "placeholder" in title.lower() or _PLACEHOLDER_RE.fullmatch(title) is not None


def _join_reasons(reasons: list[str]) -> str | None:
    if not reasons:
        return None
    shown = "; ".join(reasons[:_MAX_REASONS])
    extra = len(reasons) - _MAX_REASONS
    return f"{shown}; and {extra} more" if extra > 0 else shown
