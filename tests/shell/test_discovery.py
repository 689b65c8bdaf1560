"""``discover()`` end to end against a fake Gamma/CLOB serving fixture JSON, and ProgressPrinter.

The fake venue serves the real captures in ``tests/fixtures`` (an augmented neg-risk event, a
binary BTC market, a closed sports market) plus variants derived from them: a complete neg-risk
event (the real one with its augmentation off and one market's tick removed), a standalone binary
market, and filler events that are not tradable but make the listing span two pages.
"""

from __future__ import annotations

import copy
import io
import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import orjson
import pytest
import trio
import trio.testing

from bot.config import DiscoveryConfig, MarketKind
from bot.core.backoff import Backoff
from bot.shell.discovery import ProgressPrinter, discover
from bot.shell.rest import RegionBlocked, RestClient

if TYPE_CHECKING:
    from bot.core.universe import Universe

FIXTURES = Path(__file__).parent.parent / "fixtures"
NOW = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)  # the BTC market ends 25 minutes later
GAMMA = "http://venue.test/gamma"
CLOB = "http://venue.test"
MISSING_TICK_TOKEN = "9003"


def load_json(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def build_venue() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(events, markets)`` as Gamma would list them (raw wire JSON)."""
    augmented = load_json("nautilus_crates/gamma_event.json")[0]

    complete = copy.deepcopy(augmented)
    complete.update(
        id="40001",
        slug="springfield-mayor",
        title="Springfield Mayor",
        negRiskAugmented=False,
        tags=[{"id": "2", "slug": "politics", "label": "Politics"}],
    )
    third = copy.deepcopy(complete["markets"][0])
    third.update(groupItemTitle="Lisa Simpson", question="Will Lisa Simpson win?")
    del third["orderPriceMinTickSize"]  # Gamma omits it: discovery asks the CLOB
    complete["markets"].append(third)
    for i, member in enumerate(complete["markets"]):
        member["conditionId"] = f"0xmayor{i}"
        member["clobTokenIds"] = orjson.dumps([f"900{i + 1}", f"910{i + 1}"]).decode()

    btc = load_json("nautilus_crates/gamma_market.json")
    btc_event = {
        "id": "260654",
        "slug": "btc-updown-5m",
        "title": "BTC Up or Down 5m",
        "active": True,
        "closed": False,
        "negRisk": False,
        "tags": [{"id": "21", "slug": "crypto", "label": "Crypto"}],
        "markets": [btc],
    }

    fillers = [
        {
            "id": f"7{n:04d}",
            "title": f"Filler {n}",
            "active": True,
            "closed": False,
            "markets": [{"conditionId": f"0xfill{n}", "enableOrderBook": False}],
        }
        for n in range(150)
    ]

    eth = copy.deepcopy(btc)
    eth.update(
        id="555",
        conditionId="0xeth",
        question="Will ETH flip BTC?",
        slug="eth-flip",
        clobTokenIds=orjson.dumps(["8001", "8002"]).decode(),
        volume="500",
        events=[{"id": "999", "slug": "eth-event", "title": "ETH"}],
    )
    sports_closed = load_json("nautilus_crates/gamma_market_sports_market_money_line.json")
    return [augmented, complete, btc_event, *fillers], [btc, sports_closed, eth]


class FakeVenue:
    """Serves Gamma listings (paged, filtered by ``tag_slug``) and CLOB ``/tick-size``."""

    def __init__(self, *, tick_status: int = 200, latency_s: float = 0.0) -> None:
        self.events, self.markets = build_venue()
        self.tick_status = tick_status
        self.latency_s = latency_s
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.latency_s:
            await trio.sleep(self.latency_s)
        params = request.url.params
        path = request.url.path
        if path in ("/gamma/events", "/gamma/markets"):
            items = self.events if path == "/gamma/events" else self.markets
            tag = params.get("tag_slug")
            if tag is not None:
                items = [e for e in items if tag in [t["slug"] for t in e.get("tags", [])]]
            start, limit = int(params["offset"]), int(params["limit"])
            return httpx.Response(200, content=orjson.dumps(items[start : start + limit]))
        if path == "/tick-size":
            assert params["token_id"] == MISSING_TICK_TOKEN
            if self.tick_status != 200:
                body = {"error": "market not found"}
                return httpx.Response(self.tick_status, content=orjson.dumps(body))
            return httpx.Response(200, content=b'{"minimum_tick_size": 0.01}')
        return httpx.Response(404, content=b'{"error": "not found"}')

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def rules(**changes: Any) -> DiscoveryConfig:
    base = DiscoveryConfig(
        min_liquidity=Decimal(0), min_volume=Decimal(0), end_within_days=0, max_markets=100
    )
    return attrs.evolve(base, **changes)


async def run_discovery(venue: FakeVenue, cfg: DiscoveryConfig, progress: Any = None) -> Universe:
    async with httpx.AsyncClient(transport=httpx.MockTransport(venue)) as client:
        rest = RestClient(
            client,
            gamma_url=GAMMA,
            clob_url=CLOB,
            backoff=Backoff(0.5, 5.0),
            rng=random.Random(0),
            max_attempts=3,
        )
        return await discover(rest, cfg, now=NOW, progress=progress)


async def test_discover_end_to_end(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue()
    lines: list[str] = []
    universe = await run_discovery(venue, rules(), lines.append)

    # The complete neg-risk event (largest volume) first, whole; then binaries by volume.
    (mayor, eth_group, btc_group) = universe.events
    assert (mayor.id, mayor.neg_risk, mayor.complete) == ("40001", True, True)
    assert [m.group_item_title for m in mayor.markets] == [
        "Stephen A. Smith",
        "Gretchen Whitmer",
        "Lisa Simpson",
    ]
    assert [m.tick_size for m in mayor.markets] == [1_000, 1_000, 10_000]  # last from the CLOB
    assert [m.condition_id for m in universe.binary_markets()] == [
        "0xeth",
        "0x78443f961b9a65869dcb39359de9960165c7e5cbad0904eac7f29cd77872a63b",
    ]
    assert (eth_group.id, eth_group.title) == ("999", "ETH")
    assert (btc_group.id, btc_group.title) == ("260654", "BTC Up or Down 5m")
    assert universe.complement_token("9001") == "9101"
    assert len(universe.token_ids()) == 10

    # The real augmented event is reported, not traded.
    (skipped,) = universe.skipped
    assert skipped.id == "30829"
    assert skipped.incomplete_reason is not None
    assert skipped.incomplete_reason.startswith("augmented neg-risk event")

    # What was asked: two pages of events, one of markets, one tick lookup.
    assert venue.paths() == [
        "/gamma/events",
        "/gamma/events",
        "/gamma/markets",
        "/tick-size",
    ]
    first = venue.requests[0].url.params
    assert dict(first) == {
        "active": "true",
        "closed": "false",
        "order": "volume",
        "ascending": "false",
        "limit": "100",
        "offset": "0",
    }
    assert venue.requests[1].url.params["offset"] == "100"
    assert venue.requests[2].url.params["order"] == "volumeNum"
    assert lines == [
        "gamma /events: 100 events (page 1)",
        "gamma /events: 153 events (page 2)",
        "gamma /markets: 3 markets (page 1)",
        "clob /tick-size: looking up 1 markets Gamma lists without a tick",
        "discovery: 5 markets (2 binary, 1 neg-risk events), 1 incomplete events skipped",
    ]


async def test_discover_is_deterministic(autojump_clock: trio.testing.MockClock) -> None:
    first = await run_discovery(FakeVenue(), rules())
    second = await run_discovery(FakeVenue(), rules())
    assert first == second


async def test_tags_fetch_events_per_tag_and_skip_the_market_listing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue()
    universe = await run_discovery(venue, rules(tag_slugs=("politics", "crypto")))
    assert [e.id for e in universe.events] == ["40001", "260654"]
    assert [e.id for e in universe.skipped] == ["30829"]  # the real event is tagged politics too
    assert venue.paths() == ["/gamma/events", "/gamma/events", "/tick-size"]
    assert [r.url.params["tag_slug"] for r in venue.requests[:2]] == ["politics", "crypto"]


async def test_neg_risk_only_needs_no_market_listing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue()
    universe = await run_discovery(venue, rules(kind=MarketKind.NEG_RISK))
    assert [e.id for e in universe.events] == ["40001"]
    assert universe.binary_markets() == ()
    assert "/gamma/markets" not in venue.paths()


async def test_binary_only_skips_tick_lookups_for_unwanted_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue()
    universe = await run_discovery(venue, rules(kind=MarketKind.BINARY, keywords=("eth",)))
    assert [m.condition_id for m in universe.markets] == ["0xeth"]
    assert "/tick-size" not in venue.paths()


async def test_unknown_tick_leaves_the_event_out(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue(tick_status=404)
    lines: list[str] = []
    universe = await run_discovery(venue, rules(kind=MarketKind.NEG_RISK), lines.append)
    assert universe.events == ()
    reasons = {e.id: e.incomplete_reason for e in universe.skipped}
    assert reasons["40001"] == "Lisa Simpson: no tick size"
    assert "clob /tick-size: no tick for 0xmayor2 (market not found)" in lines


async def test_region_block_surfaces(autojump_clock: trio.testing.MockClock) -> None:
    def blocked(_request: httpx.Request) -> httpx.Response:
        html = b"<!DOCTYPE html><html><title>Attention Required! | Cloudflare</title></html>"
        return httpx.Response(403, content=html, headers={"content-type": "text/html"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(blocked)) as client:
        rest = RestClient(
            client, gamma_url=GAMMA, clob_url=CLOB, backoff=Backoff(1, 2), rng=random.Random(0)
        )
        with pytest.raises(RegionBlocked, match="trading from this region is blocked"):
            await discover(rest, rules(), now=NOW)


async def test_slow_discovery_shows_progress(autojump_clock: trio.testing.MockClock) -> None:
    out = io.StringIO()
    printer = ProgressPrinter(file=out)
    await run_discovery(FakeVenue(latency_s=0.7), rules(), printer)
    printer.finish()
    # Each request takes 0.7 s: events page 1 lands at 0.7 s (still quiet), page 2 at 1.4 s
    # (shown), the market page at 2.1 s and the tick-lookup notice at 2.1 s (both within 1 s of
    # the last line: held back), the summary at 2.8 s (shown; nothing is left for finish()).
    assert out.getvalue().splitlines() == [
        "gamma /events: 153 events (page 2)",
        "discovery: 5 markets (2 binary, 1 neg-risk events), 1 incomplete events skipped",
    ]


# --- ProgressPrinter ---------------------------------------------------------------------------


async def test_progress_printer_is_silent_for_fast_operations(
    autojump_clock: trio.testing.MockClock,
) -> None:
    out = io.StringIO()
    printer = ProgressPrinter(file=out)
    printer("step 1")
    await trio.sleep(0.5)
    printer("step 2")
    await trio.sleep(0.5)  # exactly 1 s: still quiet ("more than" 1 s)
    printer("step 3")
    printer.finish("done")
    assert out.getvalue() == ""
    assert printer.printed == 0


async def test_progress_printer_rate_limits_after_the_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    out = io.StringIO()
    printer = ProgressPrinter(file=out)
    await trio.sleep(1.2)
    printer("a")  # shown: more than 1 s in
    await trio.sleep(0.3)
    printer("b")  # suppressed: 0.3 s after the last line
    printer("c")  # suppressed, but now the newest pending line
    await trio.sleep(0.7)
    printer("d")  # shown: 1.0 s after "a"
    await trio.sleep(0.1)
    printer("e")  # pending
    printer.finish()  # prints the pending "e"
    assert out.getvalue().splitlines() == ["a", "d", "e"]
    assert printer.printed == 3


async def test_progress_printer_finish_line_and_stderr(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    printer = ProgressPrinter(delay_s=0.0, interval_s=5.0)
    await trio.sleep(0.01)
    printer("working")
    printer.finish("all done")
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["working", "all done"]
    assert captured.out == ""
