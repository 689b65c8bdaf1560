"""The ``polybot`` command line, in-process and as a real ``python -m bot`` subprocess."""

from __future__ import annotations

import json
import os
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
