"""Tests for ``bot.sim.universe``: generation, exact neg-risk fair prices, real-shaped JSON."""

from __future__ import annotations

import itertools
import random
import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from bot.core.money import ONE
from bot.core.wire.clob import CURSOR_END, decode_clob_market, decode_clob_markets_page
from bot.core.wire.gamma import (
    decode_gamma_event,
    decode_gamma_events,
    decode_gamma_market,
    decode_gamma_markets,
)
from bot.sim.universe import (
    BRACKET_OPEN_HIGH,
    BRACKET_OPEN_LOW,
    CATEGORY_FEE_RATES,
    TICK_COARSE,
    TICK_FINE,
    MarketState,
    SimEvent,
    Universe,
    UniverseConfig,
    bracket_fair_prices,
    clob_market_json,
    gamma_event_json,
    gamma_market_json,
    generate_universe,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HEX32 = re.compile(r"^0x[0-9a-f]{64}$")


def universe(seed: int = 1, **kwargs: Any) -> Universe:
    return generate_universe(UniverseConfig(**kwargs), random.Random(seed))


def load(relative: str) -> Any:
    return orjson.loads((FIXTURES / relative).read_bytes())


# --- generation --------------------------------------------------------------------------------


def test_default_universe_has_the_configured_shape() -> None:
    u = universe()
    binaries = [m for m in u.markets if m.event_id is None]
    assert len(binaries) == 20
    kinds = [e.kind for e in u.events]
    assert kinds == ["temperature", "temperature", "election", "election"]
    for event in u.events:
        low, high = (10, 11) if event.kind == "temperature" else (3, 8)
        assert low <= len(event.markets) <= high
        assert event.neg_risk
        assert all(m.event_id == event.id and m.neg_risk for m in event.markets)
    assert len(u.markets) == 20 + sum(len(e.markets) for e in u.events)
    tokens = u.token_ids()
    assert len(tokens) == 2 * len(u.markets) == len(set(tokens))


def test_ids_look_like_the_real_ones() -> None:
    u = universe(seed=3)
    for market in u.markets:
        assert HEX32.match(market.condition_id)
        assert HEX32.match(market.question_id)
        for token in (market.yes_token, market.no_token):
            assert token.isdigit()
            assert 70 <= len(token) <= 78
        assert market.gamma_id.isdigit()
        assert market.outcomes == ("Yes", "No")
        assert market.min_order_size == 5_000_000
        assert market.tick_size in (TICK_COARSE, TICK_FINE)
        assert 0 <= market.fair_price <= ONE
        assert market.activity >= 1
        assert market.end_date_iso.endswith("Z")
    assert len({m.slug for m in u.markets}) == len(u.markets)
    for event in u.events:
        assert HEX32.match(event.neg_risk_market_id)
        assert event.neg_risk_market_id.endswith("00")
        for index, market in enumerate(event.markets):
            # PROTOCOL.md 7.3: questionID = negRiskMarketID + index.
            assert market.question_id == event.neg_risk_market_id[:-2] + f"{index:02x}"
            assert market.neg_risk_market_id == event.neg_risk_market_id


def test_same_seed_same_universe_and_different_seed_differs() -> None:
    assert universe(seed=7) == universe(seed=7)
    assert universe(seed=7).token_ids() != universe(seed=8).token_ids()


def test_ten_thousand_assets_generate_fast() -> None:
    config = UniverseConfig(n_binary=4_970, n_temperature_events=3, n_election_events=3)
    start = time.perf_counter()
    u = generate_universe(config, random.Random(5))
    elapsed = time.perf_counter() - start
    assert len(u.token_ids()) >= 10_000
    assert elapsed < 2.0, f"generating {len(u.token_ids())} assets took {elapsed:.2f} s"


def test_fee_rates_and_tick_mix() -> None:
    u = universe(seed=11, n_binary=400)
    for market in u.markets:
        assert market.fee_rate == CATEGORY_FEE_RATES[market.category]
        assert market.tags
    weather = [m for e in u.events if e.kind == "temperature" for m in e.markets]
    assert all(m.fee_rate == 50_000 and m.category == "weather" for m in weather)
    elections = [m for e in u.events if e.kind == "election" for m in e.markets]
    assert all(m.fee_rate == 40_000 for m in elections)
    ticks = {m.tick_size for m in u.markets}
    assert ticks == {TICK_COARSE, TICK_FINE}
    extremes = [
        m for m in u.markets if m.event_id is None and not 40_000 <= m.fair_price <= 960_000
    ]
    assert extremes, "some binaries should start in the extremes"
    tiers = {m.tier for m in u.markets}
    assert tiers == {"busy", "normal", "quiet"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_binary": -1}, "n_binary"),
        ({"temperature_brackets": (2, 3)}, "at least 3 brackets"),
        ({"election_candidates": (0, 3)}, "election_candidates"),
        ({"binary_categories": ("crypto", "astrology")}, "astrology"),
        ({"busy_fraction": 0.8, "quiet_fraction": 0.5}, "quiet_fraction"),
        ({"fine_tick_fraction": 1.5}, "fine_tick_fraction"),
    ],
)
def test_bad_config_is_rejected(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        UniverseConfig(**kwargs)


# --- neg-risk fair prices ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(25))
def test_neg_risk_fair_prices_sum_to_exactly_one(seed: int) -> None:
    u = universe(seed=seed, n_binary=0, n_temperature_events=3, n_election_events=3)
    for event in u.events:
        assert sum(m.fair_price for m in event.markets) == ONE
        assert all(m.fair_price >= 0 for m in event.markets)


def temperature_events(u: Universe) -> list[SimEvent]:
    return [e for e in u.events if e.kind == "temperature"]


def test_temperature_ladders_are_contiguous_and_follow_the_forecast() -> None:
    u = universe(seed=4, n_temperature_events=6)
    for event in temperature_events(u):
        mean = event.forecast_mean_c_tenths
        sd = event.forecast_sd_c_tenths
        assert mean is not None
        assert sd is not None
        assert sd > 0
        brackets = [m.bracket for m in event.markets]
        assert all(b is not None for b in brackets)
        bounds = [b for b in brackets if b is not None]
        assert bounds[0][0] == BRACKET_OPEN_LOW
        assert bounds[-1][1] == BRACKET_OPEN_HIGH
        for (_, high), (low, _) in itertools.pairwise(bounds):
            assert high == low
        for low, high in bounds[1:-1]:
            assert high - low == 10  # one whole degree
        assert event.markets[0].group_item_title.endswith("°C or below")
        assert event.markets[-1].group_item_title.endswith("°C or higher")
        # The likeliest bracket is the one holding the mean (or next to it, on a boundary).
        fairs = [m.fair_price for m in event.markets]
        best = fairs.index(max(fairs))
        holding = next(i for i, (lo, hi) in enumerate(bounds) if lo <= mean < hi)
        assert abs(best - holding) <= 1
        assert fairs == bracket_fair_prices(bounds, mean, sd)


def test_bracket_fair_prices_by_hand() -> None:
    # A symmetric ladder around the mean: symmetric probabilities, exact total.
    brackets = [(BRACKET_OPEN_LOW, -5), (-5, 5), (5, BRACKET_OPEN_HIGH)]
    fairs = bracket_fair_prices(brackets, 0, 10)
    assert sum(fairs) == ONE
    assert fairs[0] == fairs[2]
    # Phi(-0.5) = 0.3085375... and Phi(0.5) = 0.6914624...: rounded cumulatively, 308,538 and
    # 691,462, so the middle gets their difference (not round(0.3829249 x ONE) = 382,925).
    assert fairs == [308_538, 382_924, 308_538]
    with pytest.raises(ValueError, match="sd must be positive"):
        bracket_fair_prices(brackets, 0, 0)


# --- lookups -----------------------------------------------------------------------------------


def test_lookups() -> None:
    u = universe()
    market = u.markets[5]
    assert u.market_for_token(market.yes_token) is market
    assert u.market_for_token(market.no_token) is market
    assert u.market(market.condition_id) is market
    assert u.is_yes(market.yes_token)
    assert not u.is_yes(market.no_token)
    assert u.complement_token(market.yes_token) == market.no_token
    assert u.complement_token(market.no_token) == market.yes_token
    event = u.events[0]
    assert u.event(event.id) is event
    assert u.has_token(market.no_token)
    assert not u.has_token("123")
    with pytest.raises(KeyError):
        u.market_for_token("123")
    with pytest.raises(KeyError):
        u.market("0x00")
    with pytest.raises(KeyError):
        u.event("nope")
    with pytest.raises(ValueError, match="appears twice"):
        Universe(markets=(market, market), events=())


# --- rendering ---------------------------------------------------------------------------------


def real_gamma_market_keys() -> set[str]:
    keys: set[str] = set()
    for name in (
        "gamma_market.json",
        "gamma_market_closed_binary_accepting_false.json",
        "gamma_market_closed_binary_accepting_true.json",
        "gamma_market_sports_market_money_line.json",
    ):
        keys |= set(load(f"nautilus_crates/{name}"))
    for event in load("nautilus_crates/gamma_event.json"):
        for market in event["markets"]:
            keys |= set(market)
    return keys


def test_gamma_market_json_is_real_shaped_and_decodes() -> None:
    u = universe(seed=2)
    real_keys = real_gamma_market_keys()
    rendered = [gamma_market_json(m, u) for m in u.markets]
    for obj in rendered:
        assert set(obj) <= real_keys, set(obj) - real_keys
        # The quirks: JSON-encoded strings, string + number twins, numbers for tick and size.
        assert isinstance(obj["outcomes"], str)
        assert obj["outcomes"] == '["Yes", "No"]'
        assert isinstance(obj["outcomePrices"], str)
        assert isinstance(obj["clobTokenIds"], str)
        assert isinstance(obj["liquidity"], str)
        assert isinstance(obj["liquidityNum"], float)
        assert isinstance(obj["volume"], str)
        assert isinstance(obj["volumeNum"], float)
        assert isinstance(obj["orderPriceMinTickSize"], float)
        assert obj["orderMinSize"] == 5
        assert obj["enableOrderBook"] is True
        assert obj["active"] is True
        assert obj["closed"] is False
        assert len(obj["events"]) == 1
    decoded = decode_gamma_markets(orjson.dumps(rendered))
    for market, gm in zip(u.markets, decoded, strict=True):
        assert gm.condition_id == market.condition_id
        assert gm.id == market.gamma_id
        assert gm.question_id == market.question_id
        assert gm.clob_token_ids == (market.yes_token, market.no_token)
        assert gm.tokens == {"Yes": market.yes_token, "No": market.no_token}
        assert gm.tick_size == market.tick_size
        assert gm.min_order_size == market.min_order_size
        assert gm.neg_risk == market.neg_risk
        assert gm.neg_risk_market_id == (market.neg_risk_market_id or "")
        assert gm.group_item_title == market.group_item_title
        assert gm.enable_order_book
        assert gm.active
        assert not gm.closed
        assert sum(gm.outcome_prices) == 1
        assert gm.liquidity == market.liquidity
        assert gm.events
        assert gm.events[0].id == market.parent_event_id
        assert gm.events[0].neg_risk == market.neg_risk
        if market.fee_rate:
            assert gm.fees_enabled
            assert gm.fee_schedule is not None
            assert gm.fee_schedule.rate == market.fee_rate
            assert gm.fee_schedule.exponent == 1
        else:
            assert not gm.fees_enabled
            assert gm.fee_schedule is None


def test_gamma_market_json_follows_the_live_state() -> None:
    u = universe(seed=2)
    market = u.markets[0]
    live = MarketState(tick_size=TICK_FINE, best_bid=412_000, best_ask=415_000)
    gm = decode_gamma_market(orjson.dumps(gamma_market_json(market, u, state=live)))
    assert gm.tick_size == TICK_FINE
    assert str(gm.best_bid) == "0.412"
    assert str(gm.best_ask) == "0.415"
    assert [str(p) for p in gm.outcome_prices] == ["0.4135", "0.5865"]
    resolved = MarketState(closed=True, winning_token=market.no_token)
    obj = gamma_market_json(market, u, state=resolved)
    assert obj["outcomePrices"] == '["0", "1"]'
    gm = decode_gamma_market(orjson.dumps(obj))
    assert gm.closed
    assert not gm.accepting_orders
    assert gm.uma_resolution_status == "resolved"
    assert gm.closed_time_ms is not None


def test_gamma_event_json_is_real_shaped_and_decodes() -> None:
    u = universe(seed=2)
    real = load("nautilus_crates/gamma_event.json")[0]
    real_keys = set(real) | {"negRiskFeeBips"}
    real_market_keys = real_gamma_market_keys()
    real_tag_keys = set().union(*(set(tag) for tag in real["tags"]))
    rendered = [gamma_event_json(e, u) for e in u.events]
    for obj in rendered:
        assert set(obj) <= real_keys, set(obj) - real_keys
        assert obj["negRisk"] is True
        assert obj["enableNegRisk"] is False
        assert obj["negRiskAugmented"] is False
        assert isinstance(obj["liquidity"], float)  # a number on events, a string on markets
        for market in obj["markets"]:
            assert set(market) <= real_market_keys
            assert "events" not in market  # nested markets carry no events[] on the venue
        for tag in obj["tags"]:
            assert set(tag) <= real_tag_keys
    decoded = decode_gamma_events(orjson.dumps(rendered))
    for event, ge in zip(u.events, decoded, strict=True):
        assert ge.id == event.id
        assert ge.slug == event.slug
        assert ge.title == event.title
        assert ge.neg_risk
        assert not ge.enable_neg_risk
        assert not ge.neg_risk_augmented
        assert ge.neg_risk_market_id == event.neg_risk_market_id
        assert [m.condition_id for m in ge.markets] == [m.condition_id for m in event.markets]
        assert [m.clob_token_ids for m in ge.markets] == [
            (m.yes_token, m.no_token) for m in event.markets
        ]
        assert [m.tick_size for m in ge.markets] == [m.tick_size for m in event.markets]
        assert all(m.neg_risk for m in ge.markets)
        assert {t.label for t in ge.tags} == set(event.tags) - {"All"}
        assert all(t.id and t.slug for t in ge.tags)
    # One event alone (GET /events/{id}); closed once every market is.
    event = u.events[0]
    closed = gamma_event_json(
        event, u, state_of=lambda cid: MarketState(closed=True, winning_token=None)
    )
    assert decode_gamma_event(orjson.dumps(closed)).closed


def test_clob_market_json_is_real_shaped_and_decodes() -> None:
    u = universe(seed=2)
    real_keys = set(load("nautilus_py_http/market.json")) | set(
        load("nautilus_crates/clob_market_closed_binary_accepting_true.json")
    )
    rendered = [clob_market_json(m) for m in u.markets]
    for obj in rendered:
        assert set(obj) <= real_keys, set(obj) - real_keys
        assert isinstance(obj["minimum_tick_size"], float)
        assert obj["minimum_order_size"] == 5
    page = decode_clob_markets_page(
        orjson.dumps(
            {"data": rendered, "next_cursor": CURSOR_END, "limit": 1000, "count": len(rendered)}
        )
    )
    assert page.is_last
    for market, cm in zip(u.markets, page.data, strict=True):
        assert cm.condition_id == market.condition_id
        assert cm.question_id == market.question_id
        assert [t.token_id for t in cm.tokens] == [market.yes_token, market.no_token]
        assert [t.outcome for t in cm.tokens] == ["Yes", "No"]
        assert cm.minimum_tick_size == market.tick_size
        assert cm.minimum_order_size == market.min_order_size
        assert cm.neg_risk == market.neg_risk
        assert cm.accepting_orders
        assert cm.active
        assert not cm.closed
        assert not any(t.winner for t in cm.tokens)
    market = u.markets[3]
    resolved = clob_market_json(
        market, state=MarketState(tick_size=TICK_FINE, closed=True, winning_token=market.yes_token)
    )
    cm = decode_clob_market(orjson.dumps(resolved))
    assert cm.closed
    assert not cm.accepting_orders
    assert [t.winner for t in cm.tokens] == [True, False]
    assert [t.price for t in cm.tokens] == [1, 0]
    assert cm.minimum_tick_size == TICK_FINE


def in_sample_order(ours: dict[str, Any], sample: dict[str, Any]) -> bool:
    """Whether the keys ``ours`` shares with ``sample`` come in the sample's relative order."""
    common = [key for key in ours if key in sample]
    return common == [key for key in sample if key in ours]


def test_keys_come_in_the_real_samples_order() -> None:
    u = universe(seed=2)
    state = MarketState(closed=True, winning_token=u.markets[0].yes_token)
    # (The sports samples are stored with sorted keys, so they say nothing about order.)
    market_samples = [
        load("nautilus_crates/gamma_market.json"),
        load("nautilus_crates/gamma_market_closed_binary_accepting_true.json"),
        load("nautilus_crates/gamma_event.json")[0]["markets"][0],
    ]
    event_sample = load("nautilus_crates/gamma_event.json")[0]
    for market in u.markets:
        for rendered in (gamma_market_json(market, u), gamma_market_json(market, u, state=state)):
            for sample in market_samples:
                assert in_sample_order(rendered, sample)
            assert in_sample_order(rendered["events"][0], event_sample)
        assert in_sample_order(clob_market_json(market), load("nautilus_py_http/market.json"))
    for event in u.events:
        assert in_sample_order(gamma_event_json(event, u), event_sample)
