"""The pure universe filter: every rule on hand-built Gamma objects, then on real fixtures."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from bot.config import DiscoveryConfig, MarketKind
from bot.core.universe import (
    DEFAULT_MIN_ORDER_SIZE,
    Event,
    Market,
    Outcome,
    Universe,
    markets_missing_tick_size,
    select_markets,
)
from bot.core.wire.gamma import (
    FeeSchedule,
    GammaEvent,
    GammaEventRef,
    GammaMarket,
    GammaTag,
    decode_gamma_event,
    decode_gamma_events,
    decode_gamma_market,
    decode_gamma_markets,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def cfg(**changes: Any) -> DiscoveryConfig:
    """A permissive config (no thresholds, no window); tests switch on one rule at a time."""
    base = DiscoveryConfig(
        min_liquidity=Decimal(0), min_volume=Decimal(0), end_within_days=0, max_markets=1000
    )
    return attrs.evolve(base, **changes)


def market(n: int, **changes: Any) -> GammaMarket:
    """A healthy, tradable binary market numbered ``n`` (tokens ``n-yes``/``n-no``)."""
    base = GammaMarket(
        condition_id=f"0xc{n:04d}",
        id=str(n),
        question=f"Will thing {n} happen?",
        slug=f"thing-{n}",
        outcomes=("Yes", "No"),
        clob_token_ids=(f"{n}-yes", f"{n}-no"),
        active=True,
        closed=False,
        enable_order_book=True,
        accepting_orders=True,
        tick_size=10_000,
        min_order_size=5_000_000,
        liquidity=Decimal(5_000),
        volume=Decimal(50_000),
        end_date_ms=ms(NOW + timedelta(days=10)),
    )
    return attrs.evolve(base, **changes)


def event(eid: str, markets: tuple[GammaMarket, ...], **changes: Any) -> GammaEvent:
    """An active event; neg-risk unless ``neg_risk=False`` is passed."""
    neg_risk = changes.pop("neg_risk", True)
    if neg_risk:
        markets = tuple(
            attrs.evolve(m, neg_risk=True, neg_risk_market_id=f"0xe{eid}") for m in markets
        )
    base = GammaEvent(
        id=eid,
        slug=f"event-{eid}",
        title=f"Event {eid}",
        active=True,
        closed=False,
        neg_risk=neg_risk,
        enable_neg_risk=neg_risk,
        neg_risk_market_id=f"0xe{eid}" if neg_risk else "",
        markets=markets,
        end_date_ms=ms(NOW + timedelta(days=10)),
    )
    return attrs.evolve(base, **changes)


def candidates(eid: str, names: tuple[str, ...], start: int, **changes: Any) -> GammaEvent:
    """A neg-risk event with one named market per candidate."""
    members = tuple(
        market(start + i, group_item_title=name, question=f"Will {name} win?")
        for i, name in enumerate(names)
    )
    return event(eid, members, **changes)


def ids(universe: Universe) -> list[str]:
    return [m.condition_id for m in universe.markets]


# --- basics ------------------------------------------------------------------------------------


def test_binary_market_maps_every_field() -> None:
    fees = FeeSchedule(rate=30_000, exponent=1, taker_only=True)
    gm = market(
        1,
        group_item_title="",
        fees_enabled=True,
        fee_schedule=fees,
        min_order_size=None,
        events=(GammaEventRef(id="77", slug="ev-77", title="Parent"),),
    )
    universe = select_markets([gm], [], cfg(), NOW)
    assert universe.markets == (
        Market(
            condition_id="0xc0001",
            question="Will thing 1 happen?",
            slug="thing-1",
            outcomes=(Outcome("Yes", "1-yes"), Outcome("No", "1-no")),
            tick_size=10_000,
            min_order_size=DEFAULT_MIN_ORDER_SIZE,
            neg_risk=False,
            neg_risk_market_id="",
            event_id="77",
            end_date=NOW + timedelta(days=10),
            liquidity=Decimal(5_000),
            volume=Decimal(50_000),
            fee_rate=30_000,
            accepting_orders=True,
            group_item_title="",
            gamma_id="1",
        ),
    )
    # The binary market is grouped under its (plain) event, known only from the reference.
    assert universe.events == (
        Event(
            id="77",
            slug="ev-77",
            title="Parent",
            neg_risk=False,
            markets=universe.markets,
            liquidity=Decimal(5_000),
            volume=Decimal(50_000),
        ),
    )


def test_fee_rate_is_zero_unless_fees_are_enabled() -> None:
    fees = FeeSchedule(rate=30_000)
    universe = select_markets(
        [
            market(1, fees_enabled=False, fee_schedule=fees),
            market(2, fees_enabled=True, fee_schedule=None),
        ],
        [],
        cfg(),
        NOW,
    )
    assert [m.fee_rate for m in universe.markets] == [0, 0]


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        (("Yes", "No"), ("Yes", "No")),
        (("No", "Yes"), ("Yes", "No")),
        (("NO", "yes"), ("yes", "NO")),
        (("Up", "Down"), ("Up", "Down")),
    ],
)
def test_yes_comes_first(outcomes: tuple[str, str], expected: tuple[str, str]) -> None:
    gm = market(1, outcomes=outcomes, clob_token_ids=("t0", "t1"))
    (built,) = select_markets([gm], [], cfg(), NOW).markets
    assert (built.yes.name, built.no.name) == expected
    # Tokens follow their outcome labels.
    assert dict(zip(outcomes, ("t0", "t1"), strict=True))[built.yes.name] == built.yes.token_id


@pytest.mark.parametrize(
    "changes",
    [
        {"enable_order_book": False},
        {"active": False},
        {"closed": True},
        {"archived": True},
        {"clob_token_ids": ("only-one",)},
        {"clob_token_ids": ("same", "same")},
        {"clob_token_ids": ("a", "")},
        {"outcomes": ("Yes", "No", "Maybe"), "clob_token_ids": ("a", "b", "c")},
        {"tick_size": 50_000},  # 0.05 is not a Polymarket tick
        {"tick_size": None},
    ],
)
def test_untradable_binary_markets_are_left_out(changes: dict[str, Any]) -> None:
    assert select_markets([market(1, **changes)], [], cfg(), NOW).markets == ()


def test_not_accepting_orders_is_carried_for_binary_markets() -> None:
    (built,) = select_markets([market(1, accepting_orders=False)], [], cfg(), NOW).markets
    assert built.accepting_orders is False


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        select_markets([market(1)], [], cfg(), datetime(2026, 3, 1))


# --- filters -----------------------------------------------------------------------------------


def test_keywords_match_question_slug_and_event_title_case_insensitively() -> None:
    plain = event(
        "10",
        (market(3, question="Other question", slug="other-slug"),),
        neg_risk=False,
        title="Bitcoin Weekly",
    )
    markets = [
        market(1, question="Will BITCOIN reach 100k?"),
        market(2, slug="eth-flips-btc-bitcoin"),
        market(4, question="Will it rain?"),
    ]
    universe = select_markets(markets, [plain], cfg(keywords=("bitcoin",)), NOW)
    assert sorted(ids(universe)) == ["0xc0001", "0xc0002", "0xc0003"]


def test_any_keyword_is_enough() -> None:
    markets = [market(1, question="Fed cut?"), market(2, question="ECB hike?"), market(3)]
    universe = select_markets(markets, [], cfg(keywords=("ecb", "FED")), NOW)
    assert sorted(ids(universe)) == ["0xc0001", "0xc0002"]


def test_neg_risk_event_matches_keywords_through_any_member() -> None:
    ev = candidates("20", ("Alice", "Bob"), 10, title="Mayor race")
    assert len(select_markets([], [ev], cfg(keywords=("bob",)), NOW).markets) == 2
    assert select_markets([], [ev], cfg(keywords=("carol",)), NOW).markets == ()


def test_tag_slugs_come_from_events() -> None:
    tagged = event(
        "30",
        (market(1),),
        neg_risk=False,
        tags=(GammaTag(id="1", slug="Crypto"), GammaTag(id="2", slug="btc")),
    )
    untagged = event("31", (market(2),), neg_risk=False)
    # A /markets entry whose event is known inherits the event's tags; one without does not.
    listed = market(3, events=(GammaEventRef(id="30"),))
    orphan = market(4)
    universe = select_markets([listed, orphan], [tagged, untagged], cfg(tag_slugs=("crypto",)), NOW)
    assert sorted(ids(universe)) == ["0xc0001", "0xc0003"]
    assert {m.event_id for m in universe.markets} == {"30"}
    assert [e.id for e in universe.events] == ["30"]


def test_liquidity_and_volume_minimums_are_inclusive() -> None:
    markets = [
        market(1, liquidity=Decimal(1000), volume=Decimal(10_000)),
        market(2, liquidity=Decimal("999.99"), volume=Decimal(10_000)),
        market(3, liquidity=Decimal(1000), volume=Decimal("9999.999999")),
        market(4, liquidity=None, volume=None),
    ]
    rules = cfg(min_liquidity=Decimal(1000), min_volume=Decimal(10_000))
    assert ids(select_markets(markets, [], rules, NOW)) == ["0xc0001"]


def test_neg_risk_thresholds_use_event_totals() -> None:
    # Each outcome is thin, the event is not: the event's own figures decide.
    thin = dict(liquidity=Decimal(10), volume=Decimal(10))
    members = (market(1, **thin), market(2, **thin))
    rules = cfg(min_liquidity=Decimal(1000), min_volume=Decimal(1000))
    rich = event("40", members, liquidity=Decimal(5000), volume=Decimal(5000))
    assert len(select_markets([], [rich], rules, NOW).markets) == 2
    # Without event figures the members are summed.
    summed = event("41", members, liquidity=None, volume=None)
    assert select_markets([], [summed], rules, NOW).markets == ()
    low = cfg(min_liquidity=Decimal(20), min_volume=Decimal(20))
    (kept,) = select_markets([], [summed], low, NOW).events
    assert (kept.liquidity, kept.volume) == (Decimal(20), Decimal(20))


def test_end_date_window() -> None:
    markets = [
        market(1, end_date_ms=ms(NOW + timedelta(days=2))),
        market(2, end_date_ms=ms(NOW + timedelta(days=7))),  # on the edge: kept
        market(3, end_date_ms=ms(NOW + timedelta(days=7, seconds=1))),
        market(4, end_date_ms=ms(NOW - timedelta(hours=1))),  # already past its end
        market(5, end_date_ms=None),
    ]
    assert ids(select_markets(markets, [], cfg(end_within_days=7), NOW)) == ["0xc0001", "0xc0002"]
    # 0 disables the window, keeping undated and past-end markets too.
    assert len(select_markets(markets, [], cfg(end_within_days=0), NOW).markets) == 5


def test_neg_risk_end_date_falls_back_to_latest_member() -> None:
    members = (
        market(1, end_date_ms=ms(NOW + timedelta(days=1))),
        market(2, end_date_ms=ms(NOW + timedelta(days=20))),
    )
    ev = event("50", members, end_date_ms=None)
    assert select_markets([], [ev], cfg(end_within_days=10), NOW).markets == ()
    (kept,) = select_markets([], [ev], cfg(end_within_days=30), NOW).events
    assert kept.end_date == NOW + timedelta(days=20)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (MarketKind.BINARY, ["0xc0001"]),
        (MarketKind.NEG_RISK, ["0xc0010", "0xc0011"]),
        (MarketKind.BOTH, ["0xc0010", "0xc0011", "0xc0001"]),
    ],
)
def test_kind(kind: MarketKind, expected: list[str]) -> None:
    ev = candidates("60", ("A1", "B1"), 10, volume=Decimal(10**6))
    universe = select_markets([market(1)], [ev], cfg(kind=kind), NOW)
    assert ids(universe) == expected


def test_closed_or_inactive_event_is_not_a_candidate() -> None:
    for changes in ({"active": False}, {"closed": True}, {"archived": True}):
        ev = candidates("70", ("A1", "B1"), 10, **changes)
        universe = select_markets([], [ev], cfg(), NOW)
        assert universe.markets == ()
        assert universe.skipped == ()


# --- completeness ------------------------------------------------------------------------------


def _reason(ev: GammaEvent) -> str:
    universe = select_markets([], [ev], cfg(), NOW)
    assert universe.markets == ()
    (skipped,) = universe.skipped
    assert skipped.complete is False
    assert skipped.incomplete_reason is not None
    return skipped.incomplete_reason


def test_complete_event_is_kept_whole() -> None:
    ev = candidates("80", ("Alice", "Bob", "Carol"), 10)
    universe = select_markets([], [ev], cfg(), NOW)
    (kept,) = universe.events
    assert kept.complete is True
    assert kept.incomplete_reason is None
    assert kept.neg_risk is True
    assert kept.neg_risk_market_id == "0xe80"
    assert [m.group_item_title for m in kept.markets] == ["Alice", "Bob", "Carol"]
    assert all(m.neg_risk and m.event_id == "80" for m in kept.markets)
    assert universe.neg_risk_events() == (kept,)
    assert universe.binary_markets() == ()


def test_augmented_event_is_incomplete() -> None:
    ev = candidates("81", ("Alice", "Bob"), 10, neg_risk_augmented=True)
    assert _reason(ev).startswith("augmented neg-risk event")


@pytest.mark.parametrize(
    "other",
    [
        {"group_item_title": "Other"},
        {"group_item_title": "other candidate"},
        {"group_item_title": "Field", "neg_risk_other": False},
        {"group_item_title": "Someone", "neg_risk_other": True},
    ],
)
def test_other_outcome_is_incomplete(other: dict[str, Any]) -> None:
    members = (market(10, group_item_title="Alice"), market(11, **other))
    reason = _reason(event("82", members))
    assert reason == f'"Other" outcome ({other["group_item_title"]})'


@pytest.mark.parametrize("title", ["Person A", "Candidate BC", "Player 12", "Placeholder 3"])
def test_placeholder_outcome_is_incomplete(title: str) -> None:
    members = (market(10, group_item_title="Alice"), market(11, group_item_title=title))
    assert _reason(event("83", members)) == f"placeholder outcome ({title})"


def test_names_that_merely_look_like_placeholders_are_fine() -> None:
    members = (market(10, group_item_title="Team Liquid"), market(11, group_item_title="Person"))
    assert select_markets([], [event("84", members)], cfg(), NOW).events[0].complete


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"active": False}, "not active"),
        ({"closed": True}, "closed"),
        ({"accepting_orders": False}, "not accepting orders"),
        ({"enable_order_book": False}, "no order book"),
        ({"clob_token_ids": ("x",)}, "does not have 2 token ids"),
        ({"tick_size": None}, "no tick size"),
    ],
)
def test_untradable_member_makes_event_incomplete(changes: dict[str, Any], problem: str) -> None:
    members = (
        market(10, group_item_title="Alice"),
        market(11, group_item_title="Bob", **changes),
    )
    assert _reason(event("85", members)) == f"Bob: {problem}"


def test_member_without_neg_risk_flag_is_incomplete() -> None:
    ev = candidates("86", ("Alice", "Bob"), 10)
    mixed = attrs.evolve(ev, markets=(ev.markets[0], attrs.evolve(ev.markets[1], neg_risk=False)))
    assert _reason(mixed) == "Bob: not a neg-risk market"


def test_reasons_are_listed_and_truncated() -> None:
    members = tuple(market(10 + i, group_item_title=f"Name{i}", active=False) for i in range(6))
    reason = _reason(event("87", members, neg_risk_augmented=True))
    parts = reason.split("; ")
    assert parts[0].startswith("augmented")
    assert parts[1:4] == ["Name0: not active", "Name1: not active", "Name2: not active"]
    assert parts[4] == "and 3 more"


def test_empty_neg_risk_event_is_incomplete() -> None:
    assert _reason(event("88", ())) == "no markets"


def test_incomplete_events_can_be_kept_flagged() -> None:
    members = (
        market(10, group_item_title="Alice"),
        market(11, group_item_title="Bob", accepting_orders=False),
        market(12, group_item_title="Other"),
        market(13, group_item_title="Person A"),
    )
    ev = event("89", members, neg_risk_augmented=True)
    universe = select_markets([], [ev], cfg(skip_incomplete_events=False), NOW)
    (kept,) = universe.events
    assert kept.complete is False
    assert kept.incomplete_reason is not None
    assert "Bob: not accepting orders" in kept.incomplete_reason
    # Only the tradable, named outcomes are kept: no "Other", no placeholder, no closed book.
    assert [m.group_item_title for m in kept.markets] == ["Alice"]
    assert universe.skipped == ()


def test_flagged_event_with_nothing_tradable_is_still_skipped() -> None:
    members = (market(10, group_item_title="Other"), market(11, group_item_title="Person A"))
    universe = select_markets([], [event("90", members)], cfg(skip_incomplete_events=False), NOW)
    assert universe.events == ()
    assert [e.id for e in universe.skipped] == ["90"]


def test_skipped_lists_only_events_that_passed_the_other_filters() -> None:
    incomplete = candidates("91", ("Alice", "Bob"), 10, neg_risk_augmented=True, title="Fed")
    other = candidates("92", ("Carol", "Dan"), 20, neg_risk_augmented=True, title="ECB")
    universe = select_markets([], [incomplete, other], cfg(keywords=("fed",)), NOW)
    assert [e.id for e in universe.skipped] == ["91"]


# --- cap, ranking, determinism -----------------------------------------------------------------


def test_cap_ranks_by_volume_and_keeps_events_whole() -> None:
    big = candidates("100", ("A1", "B1", "C1"), 10, volume=Decimal(900))  # 3 markets
    mid = candidates("101", ("A2", "B2"), 20, volume=Decimal(500))  # 2 markets
    singles = [market(1, volume=Decimal(800)), market(2, volume=Decimal(100))]
    universe = select_markets(singles, [big, mid], cfg(max_markets=5), NOW)
    # big (3) + single 800 (1) = 4; mid (2) does not fit and is skipped whole; single 100 fits.
    assert ids(universe) == ["0xc0010", "0xc0011", "0xc0012", "0xc0001", "0xc0002"]
    assert [e.id for e in universe.neg_risk_events()] == ["100"]
    assert len(universe.markets) <= 5


def test_event_larger_than_the_cap_is_dropped() -> None:
    huge = candidates("102", ("A", "B", "C"), 10, volume=Decimal(10**9))
    universe = select_markets([market(1)], [huge], cfg(max_markets=2), NOW)
    assert ids(universe) == ["0xc0001"]


def test_ties_are_broken_by_id() -> None:
    markets = [market(n, volume=Decimal(100)) for n in (5, 3, 9, 1)]
    universe = select_markets(markets, [], cfg(max_markets=2), NOW)
    assert ids(universe) == ["0xc0001", "0xc0003"]


def test_selection_does_not_depend_on_input_order() -> None:
    events = [
        candidates(str(200 + i), (f"X{i}", f"Y{i}"), 100 + 10 * i, volume=Decimal(i * 37 % 11))
        for i in range(8)
    ]
    events += [event(str(300 + i), (market(500 + i),), neg_risk=False) for i in range(5)]
    markets = [market(n, volume=Decimal(n * 13 % 7)) for n in range(1, 30)]
    rules = cfg(max_markets=17)
    expected = select_markets(markets, events, rules, NOW)
    assert len(expected.markets) == 17
    rng = random.Random(3)
    for _ in range(10):
        rng.shuffle(events)
        rng.shuffle(markets)
        assert select_markets(markets, events, rules, NOW) == expected


def test_market_listed_twice_appears_once_with_its_event() -> None:
    gm = market(1)
    plain = event("400", (gm,), neg_risk=False, title="The event")
    universe = select_markets([gm, gm], [plain, plain], cfg(), NOW)
    (built,) = universe.markets
    assert built.event_id == "400"
    assert [e.title for e in universe.events] == ["The event"]


def test_neg_risk_market_listed_alone_is_not_traded_as_binary() -> None:
    loose = market(1, neg_risk=True, events=(GammaEventRef(id="999", neg_risk=True),))
    assert select_markets([loose], [], cfg(), NOW).markets == ()


# --- tick sizes --------------------------------------------------------------------------------


def test_missing_tick_sizes_are_looked_up_only_for_chosen_markets() -> None:
    no_tick = market(1, tick_size=None, volume=Decimal(900))
    unwanted = market(2, tick_size=None, volume=Decimal(1))
    has_tick = market(3, volume=Decimal(500))
    ev = candidates("500", ("A", "B"), 10, volume=Decimal(800))
    ev = attrs.evolve(ev, markets=(ev.markets[0], attrs.evolve(ev.markets[1], tick_size=None)))
    rules = cfg(max_markets=4)
    missing = markets_missing_tick_size([no_tick, unwanted, has_tick], [ev], rules, NOW)
    assert sorted(m.condition_id for m in missing) == ["0xc0001", "0xc0011"]

    # Without answers those markets cannot be traded: the cap admits the next candidates.
    without = select_markets([no_tick, unwanted, has_tick], [ev], rules, NOW)
    assert ids(without) == ["0xc0003"]
    assert [e.id for e in without.skipped] == ["500"]

    ticks = {"0xc0001": 1_000, "0xc0011": 10_000}
    filled = select_markets([no_tick, unwanted, has_tick], [ev], rules, NOW, tick_sizes=ticks)
    assert ids(filled) == ["0xc0001", "0xc0010", "0xc0011", "0xc0003"]
    assert filled.market_for_token("1-yes").tick_size == 1_000


def test_gamma_tick_wins_over_lookup() -> None:
    universe = select_markets([market(1)], [], cfg(), NOW, tick_sizes={"0xc0001": 1_000})
    assert universe.markets[0].tick_size == 10_000


# --- Universe ----------------------------------------------------------------------------------


def test_universe_lookups() -> None:
    ev = candidates("600", ("A", "B"), 10, volume=Decimal(10**6))
    universe = select_markets([market(1)], [ev], cfg(), NOW)
    assert universe.token_ids() == ("10-yes", "10-no", "11-yes", "11-no", "1-yes", "1-no")
    assert universe.market_for_token("11-no").condition_id == "0xc0011"
    assert universe.complement_token("11-no") == "11-yes"
    assert universe.complement_token("1-yes") == "1-no"
    assert [m.condition_id for m in universe.binary_markets()] == ["0xc0001"]
    assert [e.id for e in universe.neg_risk_events()] == ["600"]
    with pytest.raises(KeyError, match="not in the universe"):
        universe.market_for_token("nope")
    with pytest.raises(KeyError, match="not in market"):
        universe.markets[0].complement("1-yes")


def test_universe_rejects_duplicate_tokens() -> None:
    (built,) = select_markets([market(1)], [], cfg(), NOW).markets
    with pytest.raises(ValueError, match="appears in markets"):
        Universe(markets=(built, attrs.evolve(built, condition_id="0xother")))


def test_universe_is_hashable_and_comparable() -> None:
    first = select_markets([market(1)], [], cfg(), NOW)
    second = select_markets([market(1)], [], cfg(), NOW)
    assert first == second
    assert hash(first) == hash(second)
    assert Universe() == Universe()


# --- real fixtures -----------------------------------------------------------------------------


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_real_augmented_neg_risk_event_is_skipped_with_reason() -> None:
    events = decode_gamma_events(load("nautilus_crates/gamma_event.json"))
    universe = select_markets([], events, cfg(), NOW)
    assert universe.markets == ()
    (skipped,) = universe.skipped
    assert skipped.id == "30829"
    assert skipped.title == "Democratic Presidential Nominee 2028"
    assert skipped.incomplete_reason == (
        'augmented neg-risk event (placeholder outcomes and an "Other" that changes meaning)'
    )


def test_real_augmented_event_kept_flagged_when_asked() -> None:
    events = decode_gamma_events(load("nautilus_crates/gamma_event.json"))
    rules = cfg(
        skip_incomplete_events=False,
        keywords=("democratic",),
        tag_slugs=("politics",),
        min_liquidity=Decimal(10**6),
        min_volume=Decimal(10**6),
    )
    universe = select_markets([], events, rules, NOW)
    (kept,) = universe.events
    assert kept.complete is False
    assert kept.neg_risk_market_id.startswith("0x2c3d7e0e")
    assert [m.group_item_title for m in kept.markets] == ["Stephen A. Smith", "Gretchen Whitmer"]
    smith = kept.markets[0]
    assert smith.tick_size == 1_000
    assert smith.neg_risk is True
    assert smith.yes.name == "Yes"
    assert smith.yes.token_id.startswith("6059004548")
    assert universe.complement_token(smith.yes.token_id) == smith.no.token_id
    assert smith.end_date == datetime(2028, 11, 7, tzinfo=UTC)
    # The end-date window (2028 is far away) and the tags are applied to the real event too.
    assert select_markets([], events, attrs.evolve(rules, end_within_days=30), NOW).events == ()
    assert select_markets([], events, attrs.evolve(rules, tag_slugs=("nba",)), NOW).events == ()


def test_real_binary_market_with_window_around_its_end() -> None:
    gm = decode_gamma_market(load("nautilus_crates/gamma_market.json"))
    now = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)  # 25 minutes before it ends
    universe = select_markets([gm], [], cfg(end_within_days=1, keywords=("bitcoin",)), now)
    (built,) = universe.markets
    assert built.outcomes[0].name == "Up"
    assert built.tick_size == 10_000
    assert built.fee_rate == 0  # feesEnabled, but this capture carries no feeSchedule
    assert built.volume == Decimal("9.999997")
    assert built.event_id == "260654"
    # Its $10 volume fails the shipped default minimum.
    assert select_markets([gm], [], DiscoveryConfig(end_within_days=1), now).markets == ()


def test_real_sports_fee_schedule() -> None:
    gm = decode_gamma_market(load("nautilus_crates/gamma_market_sports_market_money_line.json"))
    assert select_markets([gm], [], cfg(), NOW).markets == ()  # closed
    reopened = attrs.evolve(gm, closed=False)
    (built,) = select_markets([reopened], [], cfg(), NOW).markets
    assert built.fee_rate == 30_000
    assert (built.yes.name, built.no.name) == ("FaZe", "illwill")


@pytest.mark.parametrize(
    "name",
    [
        "nautilus_crates/gamma_market_closed_binary_accepting_false.json",
        "nautilus_crates/gamma_market_closed_binary_accepting_true.json",
        "nautilus_crates/gamma_market_closed_nonbinary_legacy.json",
        "nautilus_crates/gamma_market_closed_zero_zero_legacy.json",
        "nautilus_crates/gamma_market_sports_market_map_handicap.json",
    ],
)
def test_real_closed_markets_are_never_chosen(name: str) -> None:
    assert select_markets([decode_gamma_market(load(name))], [], cfg(), NOW).markets == ()


def test_real_trimmed_listings_yield_nothing_tradable() -> None:
    """The trimmed samples lack token ids and order-book flags: nothing passes, nothing breaks."""
    events = decode_gamma_events(load("nautilus_py_http/events_list.json"))
    events.append(decode_gamma_event(load("nautilus_py_http/event.json")))
    markets = decode_gamma_markets(load("nautilus_py_http/markets_list.json"))
    universe = select_markets(markets, events, cfg(), NOW)
    assert universe == Universe()
