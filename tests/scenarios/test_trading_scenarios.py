"""Scenarios: the whole bot trading on paper against the sim venue, over real loopback sockets.

* the arbitrage strategies capture injected opportunities, and the report's PnL equals the
  injected edge times the sets bought, minus the fees paid, to the micro-dollar;
* the market maker keeps its inventory within its limit, and pulls its quotes while the feed is
  frozen (PONGs but no data), quoting again once the feed is back;
* a restart resumes the positions from the journal, with no fill lost or doubled.

Real sockets, so the real clock with short timeouts (as ``test_feed_scenarios``).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import trio

from bot.app import BotHandle, VenueUrls, run_bot
from bot.config import Config, LogLevel
from bot.core.money import ONE
from bot.report import build_report
from bot.runtime_cli import demo_discovery
from bot.shell.journal import open_journal
from bot.sim.exchange import Opportunity, OpportunityKind
from bot.sim.venue import SimVenue, open_sim_venue

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from bot.core.trading import Fill

START_MS = 1_790_000_000_000
WAIT = 10.0


def trading_config(tmp_path: Path, *, enable: set[str], **sim: Any) -> Config:
    cfg = Config()
    st = cfg.strategies
    strategies = attrs.evolve(
        st,
        complement_arb=attrs.evolve(st.complement_arb, enabled="complement_arb" in enable),
        neg_risk_arb=attrs.evolve(st.neg_risk_arb, enabled="neg_risk_arb" in enable),
        market_making=attrs.evolve(st.market_making, enabled="market_making" in enable),
        forecast_taker=attrs.evolve(st.forecast_taker, enabled="forecast_taker" in enable),
    )
    sim_cfg = attrs.evolve(
        cfg.sim,
        **{
            "binary_markets": 6,
            "temperature_events": 0,
            "election_events": 1,
            "events_per_second": 100,
            "opportunity_rate": 0.0,
            **sim,
        },
    )
    feed = attrs.evolve(
        cfg.feed,
        ping_interval_s=0.1,
        silence_timeout_s=0.5,
        reconnect_base_s=0.02,
        reconnect_max_s=0.2,
    )
    return attrs.evolve(
        cfg,
        strategies=strategies,
        sim=sim_cfg,
        feed=feed,
        log=attrs.evolve(cfg.log, dir=tmp_path, level=LogLevel.INFO),
        execution=attrs.evolve(cfg.execution, journal=tmp_path / "journal.sqlite"),
    )


@asynccontextmanager
async def running_bot(cfg: Config, venue: SimVenue) -> AsyncIterator[BotHandle]:
    urls = VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url)
    async with trio.open_nursery() as nursery:
        handle: BotHandle = await nursery.start(
            partial(
                run_bot,
                cfg,
                urls,
                discovery=demo_discovery(cfg.discovery),
                console=False,
                status_interval_s=0.5,
            )
        )
        yield handle
        nursery.cancel_scope.cancel()


async def wait_for(condition: Callable[[], bool]) -> None:
    with trio.fail_after(WAIT):
        while not condition():  # noqa: ASYNC110 -- polling state owned by other tasks
            await trio.sleep(0.02)


async def journal_fills(path: Path) -> list[Fill]:
    async with open_journal(path) as journal:
        return list(await journal.load_fills())


# --- 1. arbitrage on paper ----------------------------------------------------------------------


async def test_arbitrage_captures_injected_edges_and_the_report_pnl_matches(tmp_path: Path) -> None:
    cfg = trading_config(tmp_path, enable={"complement_arb", "neg_risk_arb"})
    injected: list[Opportunity] = []
    async with (
        open_sim_venue(cfg.sim, start_epoch_ms=START_MS) as venue,
        running_bot(cfg, venue) as handle,
    ):
        stats = handle.execution
        await trio.sleep(0.5)  # every book fresh
        for kind in [OpportunityKind.COMPLEMENT, OpportunityKind.NEG_RISK] * 2:
            target = stats.fills
            injected.append(await venue.inject(kind))
            target += len(injected[-1].token_ids)
            await wait_for(lambda: stats.fills >= target)  # noqa: B023 -- read at once
            await trio.sleep(0.2)
    fills = await journal_fills(cfg.execution.journal)
    assert fills, "no fills"
    expected_edge = 0
    for opportunity in injected:
        taken = [f for f in fills if f.token_id in opportunity.token_ids]
        by_token = {t: sum(f.size for f in taken if f.token_id == t) for t in opportunity.token_ids}
        sets = min(by_token.values())
        assert sets > 0, f"{opportunity.kind} not captured"
        assert set(by_token.values()) == {sets}, by_token  # every leg the same size: no leg risk
        assert sets <= opportunity.size
        for fill in taken:  # bought at the planted prices
            assert fill.price == opportunity.prices[opportunity.token_ids.index(fill.token_id)]
        expected_edge += sets * opportunity.edge // ONE
    fees = sum(f.fee for f in fills)
    assert fees > 0  # the sim's markets charge taker fees
    report = build_report(cfg.execution.journal)
    arb_pnl = sum(row.pnl for row in report.strategies)
    assert arb_pnl == expected_edge - fees
    assert report.fees == fees
