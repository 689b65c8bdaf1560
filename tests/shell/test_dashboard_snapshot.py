"""The dashboards' snapshot of a running bot: plain data that agrees with the bot's own state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import trio

from bot.core.money import format_units
from bot.shell.snapshot import take_snapshot
from tests.shell.dashboard_helpers import dashboard_config, running_demo, wait_until

if TYPE_CHECKING:
    from pathlib import Path


def plain(value: Any) -> bool:
    """Only what JSON has: the snapshot goes to the browser and the terminal as is."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


async def test_snapshot_of_a_trading_demo_bot(tmp_path: Path) -> None:
    cfg = dashboard_config(tmp_path)
    async with running_demo(cfg) as handle:
        engine = handle.engine
        executor = handle.executor
        assert executor is not None
        await wait_until(
            lambda: (
                handle.execution.fills > 0
                and len(engine.ledger.positions()) > 0
                and len(executor.recent_decisions) > 0
            )
        )
        now = trio.current_time()
        snap = take_snapshot(handle, now)
        universe = handle.universe

        assert plain(snap)
        assert orjson.loads(orjson.dumps(snap)) == snap
        assert snap["now"] == now
        assert snap["summary"]["tokens"] == len(universe.token_ids())
        assert snap["summary"]["events"] > 0
        assert [s["state"] for s in snap["shards"]] == ["connected"] * handle.feed.shard_count
        assert all(s["connected"] and not s["frozen"] for s in snap["shards"])

        # Money agrees with the engine, exactly (strings of micro-units, no float on the way).
        assert snap["pnl"]["total"] == format_units(engine.ledger.pnl(universe, engine.marks()))
        assert snap["orders"]["count"] == len(engine.all_open_orders())
        assert snap["positions"]["count"] == len(engine.ledger.positions())
        row = snap["positions"]["rows"][0]
        assert row["market"].endswith("]")
        assert row["market"] != row["token"]

        gaps = snap["refresh_gaps"]
        assert gaps
        assert [g["gap_s"] for g in gaps] == sorted((g["gap_s"] for g in gaps), reverse=True)
        assert all(g["silence_s"] <= g["gap_s"] for g in gaps)

        assert [s["name"] for s in snap["strategies"]] == list(handle.strategies)
        for strategy in snap["strategies"]:
            assert strategy["state"] in ("running", "starting")
            assert all(d["strategy"] == strategy["name"] for d in strategy["last_decisions"])
        ages = [d["age_s"] for d in snap["decisions"]]
        assert ages
        assert ages == sorted(ages)
        assert snap["risk"] == snap["risk"] | {"kill_switch": False, "paused": False}

        # The operator's pause and the kill switch are what the dashboards lead with.
        engine.risk.paused = "by the operator (dashboard)"
        paused = take_snapshot(handle, trio.current_time())
        assert paused["status"] in ("warn", "alert")
        assert paused["risk"]["paused"] is True
        assert paused["alerts"][0]["text"] == "trading paused: by the operator (dashboard)"
        assert {s["state"] for s in paused["strategies"]} == {"paused"}
        engine.risk.killed = "the day's PnL reached the daily loss limit"
        killed = take_snapshot(handle, trio.current_time())
        assert killed["status"] == "alert"
        assert killed["alerts"][0] == {
            "level": "alert",
            "text": "KILL SWITCH: the day's PnL reached the daily loss limit",
        }
        assert {s["state"] for s in killed["strategies"]} == {"killed"}
