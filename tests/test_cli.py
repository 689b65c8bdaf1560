"""The ``polybot`` command line, in-process and as a real ``python -m bot`` subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from typing import TYPE_CHECKING

import pytest

from bot.cli import COMMANDS, EXIT_CONFIG, EXIT_OK, build_parser, main

if TYPE_CHECKING:
    from pathlib import Path

API_SECRET = "c2VjcmV0LXZhbHVlLW5vdC10by1sZWFr"
PRIVATE_KEY = "0x" + "cd" * 32


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No POLY_* variables and an empty working directory (so no ./config.toml)."""
    for name in list(os.environ):
        if name.startswith("POLY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.usefixtures("clean_env")
def test_config_prints_defaults_as_toml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("# Effective polybot configuration: built-in defaults")
    data = tomllib.loads(out)
    assert data["feed"]["transport"] == "trio-websocket"
    assert data["discovery"]["min_liquidity"] == "1000"
    assert data["secrets"]["POLY_API_SECRET"] == "<not set>"


def test_config_json_redacts_secrets(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLY_API_SECRET", API_SECRET)
    monkeypatch.setenv("POLY_PRIVATE_KEY", PRIVATE_KEY)
    assert main(["config", "--json"]) == EXIT_OK
    out, _ = capsys.readouterr()
    data = json.loads(out)
    assert data["secrets"]["POLY_API_SECRET"] == "<set, redacted>"
    assert data["secrets"]["POLY_PRIVATE_KEY"] == "<set, redacted>"
    assert API_SECRET not in out
    assert PRIVATE_KEY not in out


def test_config_option_before_or_after_the_subcommand(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = clean_env / "first.toml"
    first.write_text("[feed]\nassets_per_socket = 111\n")
    second = clean_env / "second.toml"
    second.write_text("[feed]\nassets_per_socket = 222\n")

    assert main(["--config", str(first), "config", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["feed"]["assets_per_socket"] == 111
    assert main(["config", "--config", str(second), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["feed"]["assets_per_socket"] == 222
    assert main(["--config", str(first), "config", "--config", str(second), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["feed"]["assets_per_socket"] == 222

    assert main(["--config", str(first), "config"]) == EXIT_OK
    assert capsys.readouterr().out.startswith(f"# Effective polybot configuration: from {first}.")


def test_config_error_goes_to_stderr_with_exit_2(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = clean_env / "bad.toml"
    path.write_text('[feed]\nping_interval_s = "abc"\nbogus = 1\n')
    assert main(["config", "--config", str(path)]) == EXIT_CONFIG
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"polybot: invalid configuration in {path}:\n"
        '  feed.ping_interval_s: expected a number > 0, got "abc"\n'
        "  feed.bogus: unknown key\n"
    )


def test_missing_config_file_exits_2(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "missing.toml", "config"]) == EXIT_CONFIG
    assert capsys.readouterr().err == (
        "polybot: invalid configuration:\n  missing.toml: config file not found\n"
    )


@pytest.mark.usefixtures("clean_env")
def test_help_and_usage_errors_return_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "config" in capsys.readouterr().out
    assert main(["config", "--help"]) == 0
    assert "--json" in capsys.readouterr().out
    assert main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("polybot ")


def test_every_registered_command_has_a_subparser() -> None:
    help_text = build_parser().format_help()
    for name in COMMANDS:
        assert name in help_text


def _run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_subprocess_exit_codes_and_no_secret_leak(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLY_")}
    env |= {"POLY_API_SECRET": API_SECRET, "POLY_PRIVATE_KEY": PRIVATE_KEY}

    ok = _run(tmp_path, env, "config")
    assert ok.returncode == 0, ok.stderr
    assert 'POLY_API_SECRET = "<set, redacted>"' in ok.stdout
    assert ok.stderr == ""

    (tmp_path / "config.toml").write_text(f'[venue]\nprivate_key = "{PRIVATE_KEY}"\n')
    bad = _run(tmp_path, env | {"POLY_SIGNATURE_TYPE": API_SECRET}, "config", "--json")
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert "venue.private_key: secrets are never read from the config file" in bad.stderr
    assert "POLY_SIGNATURE_TYPE: expected an integer from 0 to 3" in bad.stderr

    for result in (ok, bad):
        assert API_SECRET not in result.stdout + result.stderr
        assert PRIVATE_KEY not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        ("watch", ["--sim", "--markets", "--keyword", "--duration", "--refresh", "--interval"]),
        ("record", ["--out", "--sim", "--markets", "--keyword", "--duration"]),
        ("replay", ["FILE", "--speed", "--max", "--json", "--seed"]),
        ("demo", ["--health-port", "--status-interval", "--duration"]),
        ("paper", ["--health-port"]),
    ],
)
@pytest.mark.usefixtures("clean_env")
def test_operator_commands_document_their_options(
    command: str, flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"usage: polybot {command}")
    for flag in flags:
        assert flag in out, flag


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["watch", "--markets", "0"], "--markets: expected an integer >= 1, got 0"),
        (["watch", "--refresh", "-1"], "--refresh: expected a number > 0, got '-1'"),
        (["demo", "--health-port", "70000"], "--health-port: expected a port from 0 to 65535"),
        (["paper", "--health-port", "http"], "--health-port: expected a port number, got 'http'"),
        (["record"], "the following arguments are required: --out"),
        (["replay", "x.gz", "--speed", "2", "--max"], "--max: not allowed with argument --speed"),
        (["replay"], "the following arguments are required: FILE"),
    ],
)
@pytest.mark.usefixtures("clean_env")
def test_operator_command_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_CONFIG
    assert message in capsys.readouterr().err


def test_record_into_a_missing_directory_exits_2(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["record", "--sim", "--out", str(clean_env / "nope" / "x.gz")]) == EXIT_CONFIG
    assert f"--out: no such directory: {clean_env / 'nope'}" in capsys.readouterr().err


def test_watch_on_the_sim_prints_rows_for_the_chosen_markets(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (clean_env / "config.toml").write_text(
        "[sim]\nbinary_markets = 3\ntemperature_events = 1\nelection_events = 0\n"
    )
    argv = ["watch", "--sim", "--keyword", "temperature", "--markets", "3", "--duration", "2"]
    assert main(argv) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines, "nothing printed"
    assert all(line.startswith("t=") for line in lines)  # not a terminal: plain snapshots
    headers = [i for i, line in enumerate(lines) if line.split()[1:3] == ["market", "bid"]]
    assert len(headers) >= 2  # at least two snapshot blocks in 2 s
    rows = [line for line in lines if "[Yes]" in line]
    assert len(rows) == 3 * len(headers)  # three markets per block, no more
    for row in rows:
        assert "temperature" in row.lower()
    cells = [re.split(r"\s{2,}", row.strip()) for row in rows]
    assert len({cell[1] for cell in cells}) == 3  # three distinct markets
    for cell in cells[-3:]:  # the books arrived: a price on at least one side, and an age
        _stamp, _label, bid, _bid_size, ask, _ask_size, _spread, age, *_flag = cell
        assert bid.startswith("0.") or ask.startswith("0."), cell
        assert age.endswith("s"), cell


def test_watch_with_filters_that_match_nothing_exits_2_with_the_reason(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (clean_env / "config.toml").write_text("[sim]\nbinary_markets = 2\n")
    argv = ["watch", "--sim", "--keyword", "no-such-market-anywhere", "--duration", "20"]
    assert main(argv) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert (
        "polybot watch: discovery found no market matching ['no-such-market-anywhere'] "
        "at the sim venue"
    ) in err
    assert "Traceback" not in err
