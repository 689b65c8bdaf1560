"""The whole bot embedded against the sim venue, and ``polybot demo`` as a real process."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import attrs
import orjson
import trio

from bot.config import Config
from bot.sim.venue import open_sim_venue
from tests.bot_helpers import START_MS, log_and_journal_in, running_bot, wait_until
from tests.processes import interrupt_polybot

if TYPE_CHECKING:
    from pathlib import Path


def small_config(tmp_path: Path) -> Config:
    cfg = log_and_journal_in(Config(), tmp_path)
    sim = attrs.evolve(cfg.sim, binary_markets=10, opportunity_rate=2.0, events_per_second=300)
    return attrs.evolve(cfg, sim=sim)


async def test_bot_runs_on_the_sim_venue_and_stops_cleanly_with_every_record_on_disk(
    tmp_path: Path,
) -> None:
    cfg = small_config(tmp_path)
    log_path = tmp_path / "polybot.jsonl"
    async with open_sim_venue(cfg.sim, start_epoch_ms=START_MS) as venue:
        async with running_bot(cfg, venue, status_interval_s=0.5, log_path=log_path) as handle:
            assert len(handle.universe.token_ids()) >= 20
            await wait_until(
                lambda: sum(s.deliveries for s in handle.strategies.values()) >= 20, limit_s=20
            )
            await trio.sleep(1.2)  # at least two status lines
            offered = handle.log.statistics()
            stop_at = trio.current_time()
        stopped_in = trio.current_time() - stop_at  # the block's end cancelled the bot
    assert stopped_in < cfg.shutdown.grace_s
    records = [orjson.loads(line) for line in log_path.read_bytes().splitlines()]
    kinds = {record.get("kind") for record in records}
    assert "health" in kinds
    assert "universe" in kinds
    assert offered.dropped == 0
    stats = handle.log.statistics()
    assert stats.written == stats.accepted  # every accepted record reached the disk
    # every record accepted before the stop is on disk (plus the shutdown lines after it)
    assert len(records) >= offered.offered - offered.dropped
    health = [r for r in records if r.get("kind") == "health"][-1]
    for name, figures in health["strategies"].items():
        assert figures["deliveries"] > 0, name


def test_sigint_to_a_polybot_demo_process_exits_0(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[log]\ndir = "{tmp_path}"\n\n[sim]\nbinary_markets = 6\n', encoding="utf-8")
    stopped = interrupt_polybot(
        ["demo", "--config", str(config), "--status-interval", "0.5"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        run_s=1.0,
        capture_stdout=False,
        stop_within_s=15,
    )
    assert stopped.returncode == 0, stopped.stderr_tail()
    lines = (tmp_path / "polybot.jsonl").read_bytes().splitlines()
    assert any(orjson.loads(line).get("kind") == "health" for line in lines)
