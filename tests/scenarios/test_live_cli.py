"""``polybot run``: the refusals that guard real money, and a real SIGINT to ``run --venue sim``
while it trades, which must leave nothing resting and no secret in any output."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING, Final

from bot.config import Config, Secret, Secrets
from bot.live_cli import live_journal, live_refusal
from tests.processes import interrupt_polybot

if TYPE_CHECKING:
    from pathlib import Path

KEY: Final = "0x" + "5c" * 32


def test_live_refuses_without_keys_and_confirmation_and_names_each() -> None:
    refusal = live_refusal(Config(), confirmed=False)
    assert refusal is not None
    assert "POLY_PRIVATE_KEY is not set" in refusal
    assert "--confirm-live not given" in refusal
    keyed = Config(secrets=Secrets(private_key=Secret(KEY)))
    only_flag = live_refusal(keyed, confirmed=False)
    assert only_flag is not None
    assert "POLY_PRIVATE_KEY" not in only_flag
    assert "--confirm-live" in only_flag
    half = Config(secrets=Secrets(private_key=Secret(KEY), api_key=Secret("k")))
    partial = live_refusal(half, confirmed=True)
    assert partial is not None
    assert "POLY_API_SECRET, POLY_API_PASSPHRASE not set" in partial
    assert live_refusal(keyed, confirmed=True) is None


def test_live_sim_and_paper_journals_never_mix() -> None:
    cfg = Config()
    assert live_journal(cfg, "live").execution.journal.name == "journal-live.sqlite"
    assert live_journal(cfg, "sim").execution.journal.name == "journal-sim.sqlite"
    assert cfg.execution.journal.name == "journal.sqlite"


def test_run_without_keys_exits_2_and_says_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLY_")}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert b"POLY_PRIVATE_KEY is not set" in done.stderr
    assert b"--confirm-live" in done.stderr
    assert not (tmp_path / "logs").exists()  # refused before anything started


def test_sigint_while_trading_on_the_sim_leaves_nothing_resting(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[log]\ndir = "{tmp_path}"\n\n[sim]\nbinary_markets = 8\n\n'
        "[strategies.market_making]\nenabled = true\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "POLY_PRIVATE_KEY": KEY}
    args = ["run", "--venue", "sim", "--config", str(config), "--dashboard", "none"]
    stopped = interrupt_polybot(
        [*args, "--status-interval", "0.5"],
        cwd=tmp_path,
        env=env,
        run_s=2.0,  # the market maker quotes: orders rest at the venue
    )
    assert stopped.returncode == 0, stopped.stderr_tail()
    log = (tmp_path / "polybot.jsonl").read_text(encoding="utf-8")
    assert "shutdown: cancel-all done (" in log
    assert "nothing rests" in log
    assert '"kind":"order"' in log  # it did trade before the stop
    outputs = [log, (stopped.stderr + stopped.stdout).decode(errors="replace")]
    outputs += [p.read_bytes().decode(errors="replace") for p in tmp_path.glob("*.json")]
    for text in outputs:
        assert KEY not in text
        assert KEY[2:] not in text
