"""``polybot sim``: flags over config, errors, and the real subprocess (URL line, signals)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import httpx
import orjson
import pytest

from bot.cli import EXIT_CONFIG, EXIT_OK, _sim_config, build_parser, main
from bot.config import Config, SimFaultsConfig
from bot.sim.replay import RecordedFrame, write_recording

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]


def _args(*argv: str) -> Config:
    args = build_parser().parse_args(["sim", *argv])
    return attrs.evolve(Config(), sim=_sim_config(args, Config()))


def test_flags_override_config_keys() -> None:
    config = _args(
        "--port",
        "8123",
        "--seed",
        "9",
        "--events-per-second",
        "50",
        "--max-rate",
        "--drop-every",
        "30",
        "--malformed-rate",
        "0.1",
        "--silent",
        "--latency-ms",
        "25",
        "--http-403-rate",
        "1",
    ).sim
    assert (config.port, config.seed, config.events_per_second, config.max_rate) == (
        8123,
        9,
        50.0,
        True,
    )
    faults = config.faults
    assert (faults.drop_every_s, faults.malformed_rate, faults.silent) == (30.0, 0.1, True)
    assert (faults.latency_ms, faults.http_403_rate, faults.stop_reading) == (25, 1.0, False)


def test_no_flags_keep_the_config() -> None:
    assert _args().sim == Config().sim


def test_assets_sets_the_number_of_binaries() -> None:
    sim = _args("--assets", "10000").sim
    assert 4_900 <= sim.binary_markets <= 5_000
    assert _args("--assets", "0").sim.binary_markets == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--malformed-rate", "1.5"], "--malformed-rate: expected a number from 0 to 1"),
        (["--port", "70000"], "--port: expected an integer from 0 to 65535"),
        (["--http-429-rate", "0.7", "--http-503-rate", "0.7"], "<= 1"),
        (["--replay", "/no/such/recording.jsonl.gz"], "--replay: no such file"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", *argv]) == EXIT_CONFIG
    assert message in capsys.readouterr().err


def test_shipped_config_documents_every_sim_fault_key() -> None:
    """tests/test_config.py checks one level deep; [sim.faults] is checked here."""
    data = tomllib.loads((REPO / "config.toml").read_text())
    assert set(data["sim"]["faults"]) == {f.name for f in attrs.fields(SimFaultsConfig)}
    lines = (REPO / "config.toml").read_text().splitlines()
    start = lines.index("[sim.faults]")
    for number in range(start + 1, len(lines)):
        if lines[number] and not lines[number].startswith("#"):
            assert lines[number - 1].startswith("#"), lines[number]


# --- the real process


@pytest.fixture
def sim_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    config = tmp_path / "config.toml"
    config.write_text("[sim]\nstatus_interval_s = 0.2\nbinary_markets = 2\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "sim", "--port", "0", "--config", str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        yield process, orjson.loads(first)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def _serves(urls: dict[str, str]) -> None:
    assert set(urls) == {"gamma_url", "clob_url", "ws_market_url"}
    assert urls["ws_market_url"].startswith("ws://127.0.0.1:")
    response = httpx.get(urls["clob_url"] + "/ok", timeout=5)
    assert response.json() == "OK"
    assert httpx.get(urls["gamma_url"] + "/markets", timeout=5).status_code == 200


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_subprocess_prints_urls_first_and_exits_0_on_signal(
    sim_process: tuple[subprocess.Popen[str], dict[str, str]], signum: signal.Signals
) -> None:
    process, urls = sim_process
    _serves(urls)
    assert process.stderr is not None
    status = process.stderr.readline()
    assert status.startswith("sim: assets=")
    assert "faults_injected=0" in status
    process.send_signal(signum)
    out, _err = process.communicate(timeout=10)
    assert process.returncode == EXIT_OK
    assert out == ""  # nothing but the URL line on stdout


def test_subprocess_replays_a_recording(tmp_path: Path) -> None:
    recording = tmp_path / "session.jsonl.gz"
    write_recording(recording, [RecordedFrame(1, '{"event_type": "unknown"}')])
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "sim", "--replay", str(recording), "--speed", "max"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        urls = orjson.loads(process.stdout.readline())
        assert urls["ws_market_url"].endswith("/ws/market")
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
        assert process.returncode == EXIT_OK
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
