"""Scenario tests for strategies: the whole bot against a scripted market, in virtual time.

A scenario runs the sim venue and the bot -- discovery, the feed, the strategies, risk, paper
execution, the journal, the log -- inside the test's own nursery, with the configuration the test
passes, and gives the test a script to drive the market and probes to check what the bot did::

    async def test_buys_the_breakout(autojump_clock: trio.testing.MockClock) -> None:
        async with open_scenario(CONFIG, strategies=["momentum"]) as sc:
            yes = sc.market(0).yes.token_id
            await sc.set_book(yes, bids=[("0.40", "100")], asks=[("0.42", "100")])
            await sc.move_price(yes, "0.46")
            fill = await sc.wait_for_fill("momentum", within=5)
            assert sc.position(yes, "momentum") == fill.size

With polybot installed, pytest also finds the ``scenario`` fixture (the pytest plugin
``bot.testing.pytest_plugin``, registered as an entry point): it runs ``open_scenario`` with the
keyword arguments of the test's ``@pytest.mark.scenario(...)`` under the autojump clock.

The script (every step is awaited and returns once the bot has fully reacted):
``set_book``, ``set_level``, ``move_price``, ``print_trade``, ``inject_arbitrage``,
``expire_opportunities``, ``resolve``, ``drop_connection``, ``freeze``/``unfreeze``,
``send_malformed``, ``advance``, ``start_flow``/``stop_flow``.

The probes (plain reads): ``decisions``, ``intents``, ``order_updates``, ``fills`` (per strategy,
recorded as each strategy returned or was given them), ``open_orders``, ``position``,
``positions``, ``pnl``, ``feed`` (reconnects, malformed frames, stale tokens...), ``health``,
``records``/``logs`` (the bot's JSON-lines log), ``book``/``venue_book``; and the waits with a
virtual-time deadline: ``wait_for``, ``wait_for_decision``, ``wait_for_fill``,
``wait_until_fresh``.

Prices and sizes are ``Amount``s: a string or ``Decimal`` is the decimal itself (``"0.52"``,
``"100"`` shares), an ``int`` is micro-units as everywhere in polybot (``520_000``); an int size
that is not a whole number of cents of a share is refused as the likely slip it is. Probes
return micro-units.

Deterministic under the autojump clock: the bot talks to the venue over an in-memory network (no
socket), and the clock never jumps while a worker thread (the journal, the log) is running, so
the same test gives the same result on any machine. What stays free is the order in which trio
runs tasks that are ready at the same instant: strategies racing for the same liquidity may
interleave either way (as in production); a single strategy's scenario does not depend on it.
"""

from bot.core.money import Side
from bot.sim.exchange import NoSuitableMarket, Opportunity, OpportunityKind
from bot.testing._scenario import (
    SCENARIO_EPOCH_MS,
    SCENARIO_SIM,
    Amount,
    Scenario,
    ScenarioCrashed,
    ScenarioTimeout,
    Step,
    StrategyProbe,
    open_scenario,
    scenario_config,
    units,
)

__all__ = [
    "SCENARIO_EPOCH_MS",
    "SCENARIO_SIM",
    "Amount",
    "NoSuitableMarket",
    "Opportunity",
    "OpportunityKind",
    "Scenario",
    "ScenarioCrashed",
    "ScenarioTimeout",
    "Side",
    "Step",
    "StrategyProbe",
    "open_scenario",
    "scenario_config",
    "units",
]
