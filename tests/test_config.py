"""Configuration loading: exact error lines for each kind of mistake, secrets, shipped defaults."""

from __future__ import annotations

import copy
import pickle
import re
import tomllib
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from bot.config import (
    NOT_SET,
    REDACTED,
    Config,
    ConfigError,
    DiscoveryConfig,
    FeedConfig,
    LogLevel,
    MarketKind,
    Secret,
    Secrets,
    SignatureType,
    Transport,
    load_config,
    make_converter,
    parse_config,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED = REPO_ROOT / "config.toml"

PRIVATE_KEY = "0x" + "ab" * 32
API_SECRET = "c2VjcmV0LXZhbHVlLW5vdC10by1sZWFr"
FULL_ENV = {
    "POLY_PRIVATE_KEY": PRIVATE_KEY,
    "POLY_API_KEY": "11111111-2222-3333-4444-555555555555",
    "POLY_API_SECRET": API_SECRET,
    "POLY_API_PASSPHRASE": "pass-phrase-value",
    "POLY_FUNDER": "0x" + "12" * 20,
    "POLY_SIGNATURE_TYPE": "3",
}


def errors_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env or {})
    return info.value.lines


# --- shipped file and defaults ----------------------------------------------------------------


def test_shipped_config_equals_builtin_defaults() -> None:
    assert load_config(SHIPPED, {}) == Config()


def test_shipped_config_documents_every_key() -> None:
    """Every Config key appears in config.toml, each with a comment just above it."""
    data = tomllib.loads(SHIPPED.read_text())
    shipped = {f"{section}.{key}" for section, table in data.items() for key in table}
    fields = {
        f"{section.name}.{field.name}"
        for section in attrs.fields(Config)
        if section.name != "secrets"
        for field in attrs.fields(section.type)  # type: ignore[arg-type]
        # Plugin strategies are [strategies.<name>] blocks of their own, not a key.
        if (section.name, field.name) != ("strategies", "plugins")
    }
    assert shipped == fields
    assert set(data) == {f.name for f in attrs.fields(Config)} - {"secrets"}

    lines = SHIPPED.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            above = lines[number - 1]
            assert above.startswith("#"), f"config.toml line {number + 1} has no comment: {line}"


def test_no_file_means_builtin_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(None, {}) == Config()


def test_default_file_in_working_directory_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text("[feed]\nping_interval_s = 5\n")
    assert load_config(None, {}).feed.ping_interval_s == 5.0


def test_partial_file_keeps_other_defaults() -> None:
    config = parse_config('[feed]\ntransport = "websockets"\nassets_per_socket = 500\n', {})
    assert config.feed.transport is Transport.WEBSOCKETS
    assert config.feed.assets_per_socket == 500
    assert config.feed.ping_interval_s == FeedConfig().ping_interval_s
    assert config.discovery == DiscoveryConfig()


def test_valid_values_are_typed() -> None:
    config = parse_config(
        """
        [discovery]
        keywords = ["bitcoin", "election"]
        kind = "neg_risk"
        min_liquidity = "2500.50"
        [log]
        level = "DEBUG"
        dir = "/var/log/polybot"
        """,
        {},
    )
    assert config.discovery.keywords == ("bitcoin", "election")
    assert config.discovery.kind is MarketKind.NEG_RISK
    assert config.discovery.min_liquidity == Decimal("2500.50")
    assert config.log.level is LogLevel.DEBUG
    assert config.log.dir == Path("/var/log/polybot")


# --- one test per kind of mistake -----------------------------------------------------------


def test_wrong_type() -> None:
    assert errors_of('[feed]\nping_interval_s = "abc"\n') == [
        'feed.ping_interval_s: expected a number > 0, got "abc"'
    ]


URL_HTTP = 'a URL starting with "https://" or "http://"'
URL_WS = 'a URL starting with "wss://" or "ws://"'


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("feed.assets_per_socket", "501", "an integer from 1 to 500"),
        ("feed.assets_per_socket", "0", "an integer from 1 to 500"),
        ("feed.ping_interval_s", "0", "a number > 0"),
        ("feed.ping_interval_s", "-1.5", "a number > 0"),
        ("feed.ping_interval_s", "nan", "a number > 0"),
        ("feed.silence_timeout_s", "inf", "a number > 0"),
        ("feed.rest_fallback_after_s", "-1", "a number >= 0"),
        ("feed.restart_budget", "2.0", "an integer >= 1"),
        ("feed.restart_budget", "true", "an integer >= 1"),
        ("feed.restart_budget", '"5"', "an integer >= 1"),
        ("feed.custom_features", "1", "true or false"),
        ("feed.custom_features", '"false"', "true or false"),
        ("discovery.end_within_days", "-1", "an integer >= 0"),
        ("venue.clob_url", '"ftp://x"', URL_HTTP),
        ("venue.gamma_url", '"https://"', URL_HTTP),
        ("venue.ws_market_url", '"https://x"', URL_WS),
        ("discovery.keywords", '"bitcoin"', "a list of strings"),
        ("log.dir", "3", "a non-empty path string"),
        ("log.dir", '""', "a non-empty path string"),
        ("shutdown.grace_s", "0", "a number > 0"),
    ],
)
def test_wrong_type_or_out_of_range(key: str, value: str, expected: str) -> None:
    section, name = key.split(".")
    assert errors_of(f"[{section}]\n{name} = {value}\n") == [
        f"{key}: expected {expected}, got {value}"
    ]


def test_section_that_is_not_a_table() -> None:
    assert errors_of("feed = 5\n") == ["feed: expected a table, got 5"]


def test_list_items_are_checked_by_index() -> None:
    assert errors_of('[discovery]\ntag_slugs = ["crypto", 5, ""]\n') == [
        "discovery.tag_slugs[1]: expected a non-empty string, got 5",
        'discovery.tag_slugs[2]: expected a non-empty string, got ""',
    ]


def test_related_keys_are_checked_together() -> None:
    assert errors_of(
        "[feed]\nping_interval_s = 10\nsilence_timeout_s = 10\n"
        "reconnect_base_s = 5\nreconnect_max_s = 2\n[log]\nqueue_size = 10\nbatch_max = 11\n"
    ) == [
        "feed.silence_timeout_s: expected a number > feed.ping_interval_s (10), got 10",
        "feed.reconnect_max_s: expected a number >= feed.reconnect_base_s (5), got 2",
        "log.batch_max: expected an integer <= log.queue_size (10), got 11",
    ]


def test_unknown_key_nested() -> None:
    assert errors_of("[feed]\nbogus = 1\n") == ["feed.bogus: unknown key"]


def test_unknown_key_top_level() -> None:
    assert errors_of("bogus = 1\n[nonsense]\nx = 2\n") == [
        "bogus: unknown key",
        "nonsense: unknown key",
    ]


def test_unknown_key_suggests_a_close_match() -> None:
    assert errors_of("[feed]\nping_intervall_s = 5\n[fed]\n") == [
        'feed.ping_intervall_s: unknown key (did you mean "ping_interval_s"?)',
        'fed: unknown key (did you mean "feed"?)',
    ]


def test_unknown_strategy_block() -> None:
    assert errors_of("[strategies.mean_revert]\nenabled = true\n") == [
        'strategies.mean_revert: unknown key (a strategy of your own needs plugin = "module:Class")'
    ]


def test_odd_key_is_quoted_in_the_path() -> None:
    assert errors_of('[feed]\n"a b" = 1\n') == ['feed."a b": unknown key']


def test_bad_enum() -> None:
    assert errors_of('[feed]\ntransport = "udp"\n') == [
        'feed.transport: expected one of "trio-websocket", "websockets", got "udp"'
    ]


def test_enum_is_case_sensitive() -> None:
    assert errors_of('[log]\nlevel = "info"\n') == [
        'log.level: expected one of "TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", '
        '"CRITICAL", got "info"'
    ]


@pytest.mark.parametrize("value", ['"abc"', '"1.1234567"', "-1", "true", '"NaN"', "inf", "[1]"])
def test_bad_decimal(value: str) -> None:
    expected = "a decimal amount >= 0 with at most 6 decimals"
    assert errors_of(f"[discovery]\nmin_liquidity = {value}\n") == [
        f"discovery.min_liquidity: expected {expected}, got {value}"
    ]


@pytest.mark.parametrize(
    ("value", "exact"),
    [
        ('"1000.5"', Decimal("1000.5")),
        ("1000.5", Decimal("1000.5")),
        ("1_000", Decimal("1000")),
        ("0.1", Decimal("0.1")),
        ("2.000001", Decimal("2.000001")),
        ("1e3", Decimal("1000")),
    ],
)
def test_decimal_is_exact(value: str, exact: Decimal) -> None:
    config = parse_config(f"[discovery]\nmin_volume = {value}\n", {})
    assert config.discovery.min_volume == exact
    assert isinstance(config.discovery.min_volume, Decimal)


def test_decimal_from_plain_data_float_goes_through_repr() -> None:
    data = {"discovery": {"min_volume": 0.1}}
    assert make_converter().structure(data, Config).discovery.min_volume == Decimal("0.1")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.lines == [f"{path}: config file not found"]
    assert info.value.source == path


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[feed]\nping_interval_s = 10\nassets_per_socket 200\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.lines == [
        f"{path}:3:19: invalid TOML: Expected '=' after a key in a key/value pair"
    ]


def test_duplicate_key_is_a_toml_error() -> None:
    assert errors_of("[feed]\nping_interval_s = 1\nping_interval_s = 2\n") == [
        "<config>:3:20: invalid TOML: Cannot overwrite a value"
    ]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"[feed]\n\xff")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.lines == [f"{path}: invalid TOML: not UTF-8 (byte 7)"]


def test_many_errors_are_collected() -> None:
    lines = errors_of(
        """
        bogus = 1
        [venue]
        clob_url = 5
        [feed]
        ping_interval_s = "abc"
        transport = "udp"
        extra = true
        [discovery]
        kind = "all"
        min_volume = "lots"
        [log]
        queue_size = 0
        """,
        {"POLY_SIGNATURE_TYPE": "9"},
    )
    assert lines == [
        'venue.clob_url: expected a URL starting with "https://" or "http://", got 5',
        'feed.ping_interval_s: expected a number > 0, got "abc"',
        'feed.transport: expected one of "trio-websocket", "websockets", got "udp"',
        "feed.extra: unknown key",
        'discovery.min_volume: expected a decimal amount >= 0 with at most 6 decimals, got "lots"',
        'discovery.kind: expected one of "binary", "neg_risk", "both", got "all"',
        "log.queue_size: expected an integer >= 1, got 0",
        "bogus: unknown key",
        "POLY_SIGNATURE_TYPE: expected an integer from 0 to 3 "
        "(0 EOA, 1 POLY_PROXY, 2 POLY_GNOSIS_SAFE, 3 POLY_1271) (value not shown)",
    ]
    assert str(ConfigError(lines)) == "\n".join(lines)


# --- secrets ----------------------------------------------------------------------------------


def test_secret_in_config_file_points_to_the_env_var() -> None:
    assert errors_of(f'[venue]\nprivate_key = "{PRIVATE_KEY}"\napi_secret = "{API_SECRET}"\n') == [
        "venue.api_secret: secrets are never read from the config file; "
        "remove this key and set the POLY_API_SECRET environment variable",
        "venue.private_key: secrets are never read from the config file; "
        "remove this key and set the POLY_PRIVATE_KEY environment variable",
    ]


def test_secrets_table_in_config_file_is_rejected_without_echoing() -> None:
    lines = errors_of(f'[secrets]\nprivate_key = "{PRIVATE_KEY}"\n')
    assert lines == [
        "secrets: secrets are never read from the config file; remove it and set the environment "
        "variables POLY_PRIVATE_KEY, POLY_API_KEY, POLY_API_SECRET, POLY_API_PASSPHRASE, "
        "POLY_FUNDER, POLY_SIGNATURE_TYPE"
    ]


def test_top_level_env_style_secret_key() -> None:
    assert errors_of('POLY_API_KEY = "k"\n') == [
        "POLY_API_KEY: secrets are never read from the config file; "
        "remove this key and set the POLY_API_KEY environment variable"
    ]


@pytest.mark.parametrize("value", ["7", "-1", "eoa", "1.0", PRIVATE_KEY])
def test_bad_signature_type_names_the_variable_not_the_value(value: str) -> None:
    lines = errors_of("", {"POLY_SIGNATURE_TYPE": value})
    assert lines == [
        "POLY_SIGNATURE_TYPE: expected an integer from 0 to 3 "
        "(0 EOA, 1 POLY_PROXY, 2 POLY_GNOSIS_SAFE, 3 POLY_1271) (value not shown)"
    ]  # the same line whatever the value: nothing of it is echoed


def test_malformed_key_and_funder_are_not_echoed() -> None:
    bad_key = "0x" + "zz" * 32
    lines = errors_of("", {"POLY_PRIVATE_KEY": bad_key, "POLY_FUNDER": "0x1234"})
    assert lines == [
        "POLY_PRIVATE_KEY: expected 64 hex digits, optionally prefixed with 0x (value not shown)",
        "POLY_FUNDER: expected an address: 0x and 40 hex digits (value not shown)",
    ]


def test_secrets_load_from_env() -> None:
    secrets = parse_config("", FULL_ENV).secrets
    assert secrets.private_key is not None
    assert secrets.private_key.reveal() == PRIVATE_KEY
    assert secrets.api_secret == Secret(API_SECRET)
    assert secrets.signature_type is SignatureType.POLY_1271


def test_empty_env_vars_count_as_not_set() -> None:
    env = {"POLY_API_KEY": "", "POLY_SIGNATURE_TYPE": "  "}
    assert parse_config("", env).secrets == Secrets()


def test_secrets_never_appear_in_repr_str_or_redacted_dict() -> None:
    config = parse_config("", FULL_ENV)
    values = [v for k, v in FULL_ENV.items() if k != "POLY_SIGNATURE_TYPE"]
    rendered = [repr(config), str(config), repr(config.secrets), f"{config.secrets.api_secret}"]
    rendered.append(repr(config.redacted_dict()))
    for text in rendered:
        for value in values:
            assert value not in text
    assert repr(Secret("x")) == "Secret('<redacted>')"
    assert str(Secret("x")) == "<redacted>"


def test_redacted_dict_marks_set_and_unset() -> None:
    env = {"POLY_API_KEY": "k", "POLY_SIGNATURE_TYPE": "2"}
    assert parse_config("", env).redacted_dict()["secrets"] == {
        "POLY_PRIVATE_KEY": NOT_SET,
        "POLY_API_KEY": REDACTED,
        "POLY_API_SECRET": NOT_SET,
        "POLY_API_PASSPHRASE": NOT_SET,
        "POLY_FUNDER": NOT_SET,
        "POLY_SIGNATURE_TYPE": 2,
    }


def test_redacted_dict_is_plain_data() -> None:
    data = Config().redacted_dict()
    assert data["feed"]["transport"] == "trio-websocket"
    assert type(data["feed"]["transport"]) is str
    assert data["discovery"]["min_liquidity"] == "1000"
    assert data["discovery"]["keywords"] == []
    assert data["log"] == {"dir": "logs", "level": "INFO", "queue_size": 10000, "batch_max": 256}
    assert data["strategies"]["complement_arb"]["min_edge"] == "0.002"
    assert data["strategies"]["neg_risk_arb"]["order_type"] == "FOK"
    assert data["execution"]["journal"] == "logs/journal.sqlite"


def test_secret_cannot_be_pickled_but_copies() -> None:
    secret = Secret("s3cr3t")
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    assert copy.deepcopy(secret) is secret


# --- direct construction is validated too ----------------------------------------------------


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ValueError, match=r"^ping_interval_s: expected a number > 0, got 0$"):
        FeedConfig(ping_interval_s=0)
    with pytest.raises(ValueError, match="silence_timeout_s"):
        FeedConfig(silence_timeout_s=5)
    assert attrs.evolve(Config().feed, assets_per_socket=300).assets_per_socket == 300
