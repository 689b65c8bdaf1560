"""``polybot doctor``'s checks against the embedded sim venue, plus the pure verdicts.

Real sockets against the sim (the real clock, TRIO_IDIOMS.md section 7); every run is bounded.
The venue's clock starts at ``START_MS``, so "in sync" means a ``wall_clock`` that follows the
venue's own time; a skew is added to it where a test wants one.
"""

from __future__ import annotations

import random
import re
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import httpx
import pytest
import trio

from bot.config import Config, Secret, Secrets
from bot.core.backoff import Backoff
from bot.core.wire.clob import BalanceAllowance
from bot.shell.doctor import CHECK_NAMES, Check, collateral_check, render_checks, run_doctor
from bot.shell.rest import RestClient
from bot.shell.signer import OrderSigner
from bot.sim.venue import open_sim_venue
from tests.bot_helpers import captured_logs
from tests.sim.server_helpers import START_MS, WAIT, sim_rest, sim_wallet, small_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from bot.core.auth import ApiCreds
    from bot.sim.venue import SimVenue

KEY: Final = Secret("0x" + "5d" * 32)
WRONG_SECRET: Final = "d3JvbmctYnV0LXdlbGwtZm9ybWVkLXNlY3JldA=="
DEMO_BALANCE: Final = "$10000"  # SimConfig.demo_balance, what a new sim account starts with


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every loguru line (DEBUG and up, extras included) while the test runs."""
    with captured_logs() as lines:
        yield lines


@asynccontextmanager
async def sim() -> AsyncIterator[tuple[SimVenue, RestClient]]:
    async with (
        open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue,
        httpx.AsyncClient(timeout=WAIT) as http,
    ):
        yield venue, sim_rest(http, venue, seed=3, max_attempts=3)


async def doctor(
    venue: SimVenue, rest: RestClient, secrets: Secrets, *, skew_s: float = 0.0
) -> list[Check]:
    with trio.fail_after(4 * WAIT):
        return await run_doctor(
            Config(),
            rest,
            ws_user_url=venue.ws_user_url,
            secrets=secrets,
            wall_clock=lambda: venue.now_ms() / 1000 + skew_s,
        )


async def venue_creds(rest: RestClient) -> ApiCreds:
    """The credentials the sim derives for ``KEY`` (the same ones the doctor obtains)."""
    return (await sim_wallet(rest, KEY)).creds


def by_name(checks: list[Check]) -> dict[str, Check]:
    assert [c.name for c in checks] == list(CHECK_NAMES)
    return {c.name: c for c in checks}


def statuses(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.status for c in checks}


def assert_no_secret(texts: list[str], values: list[str]) -> None:
    joined = "\n".join(texts)
    for value in values:
        assert value not in joined


# --- against the sim venue ------------------------------------------------------------------


async def test_every_check_passes_against_the_sim_and_no_secret_is_printed(
    logs: list[str],
) -> None:
    async with sim() as (venue, rest):
        checks = await doctor(venue, rest, Secrets(private_key=KEY))
        creds = await venue_creds(rest)
    found = by_name(checks)
    assert all(c.ok and not c.skipped for c in checks), render_checks(checks)
    assert OrderSigner(KEY).address in found["keys"].detail
    assert "derived with L1 auth" in found["auth"].detail
    assert "0 open orders" in found["auth"].detail
    assert f"pUSD balance {DEMO_BALANCE}" in found["balance"].detail
    assert "allowance unlimited" in found["balance"].detail
    assert "GET /book ok, best bid" in found["book"].detail
    assert "PONG" in found["user channel"].detail
    rendered = render_checks(checks)
    lines = rendered.splitlines()
    assert len(lines) == len(CHECK_NAMES) + 1
    assert lines[0].startswith("PASS keys: ")
    assert lines[-1] == "all 7 checks passed: ready to trade live"
    # The secret scan must scan something: one log line per check at least.
    assert sum("doctor PASS" in line for line in logs) == len(CHECK_NAMES)
    assert_no_secret(
        [rendered, *logs],
        [
            KEY.reveal(),
            KEY.reveal().removeprefix("0x"),
            creds.api_key.reveal(),
            creds.secret.reveal(),
            creds.passphrase.reveal(),
        ],
    )


async def test_a_missing_private_key_fails_keys_naming_it_and_skips_what_needs_it() -> None:
    async with sim() as (venue, rest):
        checks = await doctor(venue, rest, Secrets())
    found = by_name(checks)
    assert not found["keys"].ok
    assert "POLY_PRIVATE_KEY is not set" in found["keys"].detail
    assert statuses(checks) == {
        "keys": "FAIL",
        "venue": "PASS",
        "clock": "PASS",
        "auth": "SKIP",
        "balance": "SKIP",
        "book": "PASS",
        "user channel": "SKIP",
    }
    assert "needs the keys check" in found["auth"].detail
    assert render_checks(checks).splitlines()[-1].startswith("3 of 7 checks passed, 1 failed")


async def test_a_skewed_local_clock_fails_the_clock_check_only(logs: list[str]) -> None:
    async with sim() as (venue, rest):
        checks = await doctor(venue, rest, Secrets(private_key=KEY), skew_s=60.0)
    found = by_name(checks)
    clock = found["clock"]
    assert not clock.ok
    assert not clock.skipped
    assert "ahead of the venue" in clock.detail
    # /time is whole seconds, so the offset is known to about half a second.
    offset = re.search(r"offset ([-+][0-9.]+) s", clock.detail)
    assert offset is not None, clock.detail
    assert -61.0 <= float(offset.group(1)) <= -59.0
    # Requests are stamped with the venue's time, so trading itself is unaffected.
    assert [c.name for c in checks if not c.ok] == ["clock"]


async def test_a_small_skew_is_within_the_limit() -> None:
    async with sim() as (venue, rest):
        checks = await doctor(venue, rest, Secrets(), skew_s=2.0)
    assert by_name(checks)["clock"].ok


async def test_a_region_block_fails_reachability_saying_region() -> None:
    async with sim() as (venue, rest):
        venue.faults.http_403_rate = 1.0
        checks = await doctor(venue, rest, Secrets(private_key=KEY))
    found = by_name(checks)
    assert not found["venue"].ok
    assert "region blocked" in found["venue"].detail
    assert statuses(checks) == {
        "keys": "PASS",
        "venue": "FAIL",
        "clock": "SKIP",
        "auth": "SKIP",
        "balance": "SKIP",
        "book": "SKIP",
        "user channel": "SKIP",
    }
    assert "FAIL venue: region blocked" in render_checks(checks)


async def test_a_wrong_api_secret_fails_auth(logs: list[str]) -> None:
    async with sim() as (venue, rest):
        creds = await venue_creds(rest)
        secrets = Secrets(
            private_key=KEY,
            api_key=creds.api_key,
            api_secret=Secret(WRONG_SECRET),
            api_passphrase=creds.passphrase,
        )
        checks = await doctor(venue, rest, secrets)
    found = by_name(checks)
    auth = found["auth"]
    assert not auth.ok
    assert not auth.skipped
    assert "L2 read GET /data/orders: RestError: HTTP 401" in auth.detail
    assert found["balance"].status == "SKIP"
    # The user channel still runs with the given credentials, and the venue refuses them too.
    assert found["user channel"].status == "FAIL"
    assert [found[n].ok for n in ("keys", "venue", "clock", "book")] == [True] * 4
    assert_no_secret(
        [render_checks(checks), *logs],
        [
            KEY.reveal(),
            WRONG_SECRET,
            creds.api_key.reveal(),
            creds.secret.reveal(),
            creds.passphrase.reveal(),
        ],
    )


# --- against a stub venue ------------------------------------------------------------------


def stub_venue(api_key: str) -> httpx.MockTransport:
    """``/time``; a 401 that echoes the API key; Gamma down; one CLOB market with a book."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/time":
            return httpx.Response(200, json=START_MS // 1000)
        if path == "/data/orders":
            return httpx.Response(401, json={"error": f"Unauthorized: unknown key {api_key}"})
        if path.startswith("/gamma/"):
            return httpx.Response(503, json={"error": "down for maintenance"})
        if path == "/markets":
            market = {
                "condition_id": "0xc0de",
                "market_slug": "stub-market",
                "tokens": [
                    {"token_id": "111", "outcome": "Yes"},
                    {"token_id": "222", "outcome": "No"},
                ],
                "minimum_tick_size": 0.01,
                "minimum_order_size": 5,
                "active": True,
                "closed": False,
                "accepting_orders": True,
                "enable_order_book": True,
            }
            return httpx.Response(200, json={"data": [market], "next_cursor": "LTE="})
        if path == "/book" and request.url.params.get("token_id") == "111":
            return httpx.Response(
                200,
                json={
                    "market": "0xc0de",
                    "asset_id": "111",
                    "timestamp": "1782864000000",
                    "hash": "h",
                    "bids": [{"price": "0.44", "size": "200"}, {"price": "0.45", "size": "100"}],
                    "asks": [{"price": "0.47", "size": "250"}, {"price": "0.46", "size": "150"}],
                },
            )
        return httpx.Response(404, json={"error": f"no route {path}"})

    return httpx.MockTransport(handle)


async def test_an_echoed_secret_is_redacted_and_gamma_falls_back_to_clob(logs: list[str]) -> None:
    api_key = "3f1c2b7a-0000-4000-8000-5eca7e5eca7e"
    secrets = Secrets(
        private_key=KEY,
        api_key=Secret(api_key),
        api_secret=Secret(WRONG_SECRET),
        api_passphrase=Secret("a-passphrase-of-some-length"),
    )
    async with httpx.AsyncClient(transport=stub_venue(api_key)) as http:
        rest = RestClient(
            http,
            gamma_url="http://venue/gamma",
            clob_url="http://venue",
            backoff=Backoff(base_s=0.001, max_s=0.002),
            rng=random.Random(3),
            max_attempts=2,
        )
        with trio.fail_after(WAIT):
            checks = await run_doctor(
                Config(),
                rest,
                # Nothing listens on port 1: the user channel fails at once.
                ws_user_url="ws://127.0.0.1:1/ws/user",
                secrets=secrets,
                wall_clock=lambda: START_MS / 1000,
            )
    found = by_name(checks)
    assert "Unauthorized: unknown key <redacted>" in found["auth"].detail
    assert found["book"].detail == (
        "clob market stub-market: GET /book ok, best bid 0.45 x 100, best ask 0.46 x 150 "
        "(2 bid / 2 ask levels)"
    )
    assert found["user channel"].status == "FAIL"
    assert found["user channel"].detail.startswith("ws://127.0.0.1:1/ws/user: ConnectionLost")
    assert_no_secret([render_checks(checks), *logs], [api_key, WRONG_SECRET, KEY.reveal()])


# --- pure verdicts --------------------------------------------------------------------------


def test_collateral_needs_a_balance() -> None:
    check = collateral_check(BalanceAllowance(balance=Decimal(0), allowance=Decimal(10**6)))
    assert not check.ok
    assert "pUSD balance $0: fund the wallet" in check.detail


def test_collateral_allowance_must_cover_the_balance_for_every_spender() -> None:
    answer = BalanceAllowance(
        balance=Decimal(250_500_000),
        allowances={"0xexchange": Decimal(2**256 - 1), "0xadapter": Decimal(100_000_000)},
    )
    check = collateral_check(answer)
    assert not check.ok
    assert "pUSD balance $250.5" in check.detail
    assert "$100 to 0xadapter" in check.detail
    assert "0xexchange" not in check.detail


def test_collateral_passes_with_enough_allowance() -> None:
    v2 = collateral_check(
        BalanceAllowance(
            balance=Decimal(5_000_000),
            allowances={"0xa": Decimal(2**256 - 1), "0xb": Decimal(5_000_000)},
        )
    )
    assert v2 == Check("balance", True, "pUSD balance $5, allowance $5 (2 spenders)")
    v1 = collateral_check(BalanceAllowance(balance=Decimal(1), allowance=Decimal(2**256 - 1)))
    assert v1 == Check("balance", True, "pUSD balance $0.000001, allowance unlimited")
    unreported = collateral_check(BalanceAllowance(balance=Decimal(7_000_000)))
    assert unreported.ok
    assert "no allowance" in unreported.detail


def test_render_marks_each_check_and_counts() -> None:
    checks = [
        Check("keys", True, "fine"),
        Check("venue", False, "region blocked: no"),
        Check("clock", False, "needs the venue check to pass", skipped=True),
    ]
    assert render_checks(checks) == (
        "PASS keys: fine\n"
        "FAIL venue: region blocked: no\n"
        "SKIP clock: needs the venue check to pass\n"
        "1 of 3 checks passed, 1 failed, 1 skipped: fix the first FAIL and run the doctor again"
    )
