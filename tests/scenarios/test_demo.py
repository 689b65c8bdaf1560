"""The whole bot embedded against the sim venue, and ``polybot demo`` as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import attrs
import orjson
import trio

from bot.app import BotHandle, VenueUrls, run_bot
from bot.config import Config, LogLevel
from bot.runtime_cli import demo_discovery
from bot.sim.venue import open_sim_venue

if TYPE_CHECKING:
    from pathlib import Path

START_MS = 1_790_000_000_000


def small_config(tmp_path: Path) -> Config:
    cfg = Config()
    return attrs.evolve(
        cfg,
        sim=attrs.evolve(cfg.sim, binary_markets=10, opportunity_rate=2.0, events_per_second=300),
        log=attrs.evolve(cfg.log, dir=tmp_path, level=LogLevel.INFO),
        execution=attrs.evolve(cfg.execution, journal=tmp_path / "journal.sqlite"),
    )


async def test_bot_runs_on_the_sim_venue_and_stops_cleanly_with_every_record_on_disk(
    tmp_path: Path,
) -> None:
    cfg = small_config(tmp_path)
    log_path = tmp_path / "polybot.jsonl"
    async with open_sim_venue(cfg.sim, start_epoch_ms=START_MS) as venue:
        urls = VenueUrls(venue.gamma_url, venue.clob_url, venue.ws_market_url)
        async with trio.open_nursery() as nursery:
            handle: BotHandle = await nursery.start(
                lambda task_status: run_bot(
                    cfg,
                    urls,
                    discovery=demo_discovery(cfg.discovery),
                    console=False,
                    log_path=log_path,
                    status_interval_s=0.5,
                    task_status=task_status,
                )
            )
            assert len(handle.universe.token_ids()) >= 20
            with trio.fail_after(20):
                while sum(s.deliveries for s in handle.strategies.values()) < 20:  # noqa: ASYNC110
                    await trio.sleep(0.05)  # polling a counter owned by other tasks
            await trio.sleep(1.2)  # at least two status lines
            offered = handle.log.statistics()
            stop_at = trio.current_time()
            nursery.cancel_scope.cancel()
        stopped_in = trio.current_time() - stop_at
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
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--config", str(config), "--status-interval", "0.5"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    ) as process:
        deadline = time.monotonic() + 30
        seen = b""
        assert process.stderr is not None
        os.set_blocking(process.stderr.fileno(), False)
        while b"polybot running" not in seen and time.monotonic() < deadline:
            chunk = process.stderr.read()
            if chunk:
                seen += chunk
            elif process.poll() is not None:
                break
            else:
                time.sleep(0.1)
        assert b"polybot running" in seen, seen.decode(errors="replace")[-2000:]
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
    lines = (tmp_path / "polybot.jsonl").read_bytes().splitlines()
    assert any(orjson.loads(line).get("kind") == "health" for line in lines)
