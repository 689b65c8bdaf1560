"""``polybot doctor``: can this machine trade live? One pass/fail line per prerequisite.

Live trading fails in a handful of ways that are tedious to tell apart from inside the running
bot: a missing key, a region Cloudflare blocks, a drifting clock, credentials the venue refuses,
an unfunded or unapproved wallet, a data path that does not answer, a user channel that drops us.
The doctor checks each of them once, in the order a trader would fix them, and says which one
failed and why:

=============  ===============================================================================
check          what it does
=============  ===============================================================================
keys           ``missing_for_live``: the ``POLY_*`` variables live trading needs (names only)
venue          ``GET /time``; Cloudflare's HTML 403 (``RegionBlocked``) says "region blocked"
clock          the venue's ``/time`` against the local clock (``wall_clock``), from the same
               request; fails above ``max_skew_s`` (requests are stamped with the venue's time
               anyway, but a drifting clock still skews logs, expiries and latency figures)
auth           L1: derive (or create) the API key, unless given; L2: an authenticated read
               (``GET /data/orders``)
balance        ``GET /balance-allowance`` for pUSD: balance > 0 and every reported allowance at
               least the balance
book           ``GET /book`` for one token of an open market found via Gamma (else CLOB
               ``/markets``)
user channel   connect to ``/ws/user``, send the auth frame, get ``PONG`` for ``PING``
=============  ===============================================================================

Checks are independent where they can be: a check whose prerequisite failed is not attempted
and comes back as a failure marked ``skipped`` that names the prerequisite, so one root cause
gives one ``FAIL`` and a few ``SKIP`` lines instead of a cascade of confusing errors. Every check
is bounded by ``CHECK_TIMEOUT_S`` (the user channel's ``PONG`` by ``PONG_TIMEOUT_S``).

Only the errors a venue or a network can cause are turned into ``FAIL`` lines (``RestFailure``,
decode errors, ``ConnectionLost``, transport and OS errors, an unusable key); anything else is a
bug in polybot and propagates.

Secrets: no check's detail contains a key, API key, secret or passphrase by construction, and
every detail also passes through a redactor that replaces any secret value (the environment's
and the derived credentials) with ``<redacted>``, in case a venue ever echoes one in an error.
"""

from __future__ import annotations

import time
from decimal import ROUND_FLOOR
from typing import TYPE_CHECKING, Final

import attrs
import httpx
import trio
from loguru import logger

from bot.core.errors import RemoteProtocolError
from bot.core.money import format_units
from bot.core.wire.clob import CURSOR_START, decode_clob_markets_page
from bot.core.wire.gamma import decode_gamma_markets
from bot.shell.clob_trading import AssetType, TradingClient
from bot.shell.credentials import missing_for_live, obtain_api_creds, signature_type_of
from bot.shell.rest import Api, RegionBlocked, RestFailure
from bot.shell.signer import OrderSigner
from bot.shell.transport import ConnectionLost, transport_for
from bot.shell.user_feed import auth_frame

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from decimal import Decimal

    from bot.config import Config, Secrets
    from bot.core.auth import ApiCreds
    from bot.core.wire.clob import BalanceAllowance
    from bot.core.wire.market_events import BookSnapshot, Level
    from bot.shell.rest import RestClient

__all__ = [
    "CHECK_NAMES",
    "CHECK_TIMEOUT_S",
    "PONG_TIMEOUT_S",
    "Check",
    "collateral_check",
    "render_checks",
    "run_doctor",
]

CHECK_TIMEOUT_S: Final = 30.0
"""Upper bound on one check (REST retries included): a hung venue fails, it does not hang."""

PONG_TIMEOUT_S: Final = 10.0
"""How long the user channel may take to answer ``PING`` (the feed pings every 10 s)."""

UNLIMITED_ALLOWANCE: Final = 2**128
"""Allowances at least this large (wallets approve ``2**256 - 1``) are shown as "unlimited"."""

KEYS: Final = "keys"
VENUE: Final = "venue"
CLOCK: Final = "clock"
AUTH: Final = "auth"
BALANCE: Final = "balance"
BOOK: Final = "book"
USER_CHANNEL: Final = "user channel"
CHECK_NAMES: Final = (KEYS, VENUE, CLOCK, AUTH, BALANCE, BOOK, USER_CHANNEL)
"""Every check, in the order ``run_doctor`` runs and reports them."""

_MARKETS_TO_SCAN: Final = 20
_REDACTED: Final = "<redacted>"

_FAILURES: Final = (
    RestFailure,
    RemoteProtocolError,  # FrameDecodeError included: a body we cannot read
    ConnectionLost,
    httpx.HTTPError,  # a malformed URL in the configuration (RestClient re-raises those)
    OSError,
    ValueError,  # an unusable private key, an out-of-range venue timestamp
)
"""What the venue, the network or the operator's setup can cause: reported as ``FAIL``."""


@attrs.frozen
class Check:
    """The outcome of one check.

    Attributes:
        name: Which check (one of ``CHECK_NAMES``).
        ok: True when it passed.
        detail: What was seen (amounts, offsets) or why it failed; never a secret.
        skipped: Not attempted because a check it needs failed (``ok`` is then False).
    """

    name: str
    ok: bool
    detail: str
    skipped: bool = False

    @property
    def status(self) -> str:
        """``PASS``, ``FAIL`` or ``SKIP``."""
        if self.ok:
            return "PASS"
        return "SKIP" if self.skipped else "FAIL"


def render_checks(checks: Sequence[Check]) -> str:
    """One ``PASS name: detail`` / ``FAIL name: detail`` / ``SKIP ...`` line per check, then a
    summary line (no trailing newline)."""
    lines = [f"{c.status} {c.name}: {c.detail}" for c in checks]
    passed = sum(c.ok for c in checks)
    skipped = sum(c.skipped and not c.ok for c in checks)
    failed = len(checks) - passed - skipped
    if failed == skipped == 0:
        lines.append(f"all {len(checks)} checks passed: ready to trade live")
    else:
        lines.append(
            f"{passed} of {len(checks)} checks passed, {failed} failed, {skipped} skipped: "
            "fix the first FAIL and run the doctor again"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Redaction


class _Redactor:
    """Replaces every known secret value in a text (defence in depth; see the module docstring)."""

    def __init__(self, secrets: Secrets) -> None:
        self._values: set[str] = set()
        for value in (
            secrets.private_key,
            secrets.api_key,
            secrets.api_secret,
            secrets.api_passphrase,
            secrets.funder,
        ):
            if value is not None:
                self.add(value.reveal())

    def add(self, value: str) -> None:
        value = value.strip()
        if value:
            self._values.add(value)
            self._values.add(value.removeprefix("0x"))

    def add_creds(self, creds: ApiCreds) -> None:
        for secret in (creds.api_key, creds.secret, creds.passphrase):
            self.add(secret.reveal())

    def __call__(self, text: str) -> str:
        # Longest first, so a value's 0x-less form cannot leave its prefix behind.
        for value in sorted(self._values, key=len, reverse=True):
            if value:
                text = text.replace(value, _REDACTED)
        return text


# --------------------------------------------------------------------------------------------
# The run


async def run_doctor(
    cfg: Config,
    rest: RestClient,
    *,
    ws_user_url: str,
    secrets: Secrets,
    wall_clock: Callable[[], float] = time.time,
    max_skew_s: float = 5.0,
) -> list[Check]:
    """Run every check once, in ``CHECK_NAMES`` order, and return one ``Check`` per name.

    Args:
        cfg: The configuration (the feed's transport and WebSocket limits are used).
        rest: The REST client for Gamma and the CLOB (``ALL_RATE_LIMITS`` recommended).
        ws_user_url: The user channel (``cfg.venue.ws_user_url``, or the sim's).
        secrets: The ``POLY_*`` credentials; none of them ever appears in a result or a log.
        wall_clock: Local unix time, compared with the venue's (tests skew it).
        max_skew_s: The largest tolerated ``|venue - local|`` clock offset, seconds.

    Each check is bounded by ``CHECK_TIMEOUT_S``; the whole run takes at most seven of those.
    """
    if not max_skew_s > 0:
        raise ValueError(f"max_skew_s must be > 0, got {max_skew_s}")
    redact = _Redactor(secrets)
    checks: list[Check] = []

    def record(check: Check) -> Check:
        check = attrs.evolve(check, detail=redact(check.detail))
        checks.append(check)
        logger.info("doctor {} {}: {}", check.status, check.name, check.detail)
        return check

    # keys
    signer: OrderSigner | None = None
    problems = missing_for_live(secrets)
    if problems:
        record(Check(KEYS, False, "; ".join(problems)))
    else:
        assert secrets.private_key is not None  # missing_for_live checked it
        try:
            signer = OrderSigner(secrets.private_key)
        except ValueError as exc:
            record(Check(KEYS, False, f"POLY_PRIVATE_KEY: {exc}"))
        else:
            record(Check(KEYS, True, _keys_detail(secrets, signer)))

    # venue and clock, from one GET /time
    times: list[float] = []  # local before, venue seconds, local after

    async def fetch_time() -> Check:
        before = wall_clock()
        server_s = await rest.fetch_server_time()
        times.extend((before, float(server_s), wall_clock()))
        return Check(VENUE, True, f"{rest.url(Api.CLOB, '/time')} answered (venue time {server_s})")

    venue = record(await _bounded(VENUE, fetch_time()))
    if venue.ok:
        record(_clock_check(*times, max_skew_s=max_skew_s))
    else:
        record(_skipped(CLOCK, VENUE))

    # auth: L1 (derive the creds) then an L2 read
    creds: ApiCreds | None = None
    client: TradingClient | None = None
    if signer is None:
        record(_skipped(AUTH, KEYS))
    elif not venue.ok:
        record(_skipped(AUTH, VENUE))
    else:
        given = secrets.api_key is not None
        try:
            with trio.fail_after(CHECK_TIMEOUT_S):
                creds = await obtain_api_creds(rest, signer, secrets)
        except (*_FAILURES, trio.TooSlowError) as exc:
            record(Check(AUTH, False, f"L1 auth (deriving the API key): {_describe(exc)}"))
        else:
            redact.add_creds(creds)
            client = TradingClient(
                rest,
                creds=creds,
                signer=signer,
                signature_type=signature_type_of(secrets),
                funder=secrets.funder.reveal() if secrets.funder is not None else None,
                wall_clock=wall_clock,
            )
            source = "API key from the environment" if given else "API key derived with L1 auth"
            auth = record(
                await _bounded(
                    AUTH, _l2_read(client, source), failing=f"{source}; L2 read GET /data/orders: "
                )
            )
            if not auth.ok:
                client = None

    # balance and allowance
    if client is None:
        record(_skipped(BALANCE, AUTH))
    else:
        trading = client

        async def balance() -> Check:
            return collateral_check(await trading.balance_allowance(AssetType.COLLATERAL))

        record(await _bounded(BALANCE, balance()))

    # one book
    if venue.ok:
        record(await _bounded(BOOK, _book_check(rest)))
    else:
        record(_skipped(BOOK, VENUE))

    # the user channel
    if creds is None:
        record(_skipped(USER_CHANNEL, AUTH))
    else:
        record(
            await _bounded(
                USER_CHANNEL,
                _user_channel_check(cfg, ws_user_url, creds),
                failing=f"{ws_user_url}: ",
            )
        )
    return checks


async def _bounded(name: str, check: Awaitable[Check], *, failing: str = "") -> Check:
    """Await ``check`` within ``CHECK_TIMEOUT_S``; venue and network errors become a failure
    whose detail starts with ``failing`` (what was being done)."""
    try:
        with trio.fail_after(CHECK_TIMEOUT_S):
            return await check
    except (*_FAILURES, trio.TooSlowError) as exc:
        return Check(name, False, f"{failing}{_describe(exc)}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RegionBlocked):
        # The words a trader searches for first; the message already says "region is blocked".
        return f"region blocked: {exc}"
    if isinstance(exc, trio.TooSlowError):
        return f"no answer within {CHECK_TIMEOUT_S:g} s"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _skipped(name: str, needs: str) -> Check:
    return Check(name, False, f"needs the {needs} check to pass", skipped=True)


# --------------------------------------------------------------------------------------------
# The checks


def _keys_detail(secrets: Secrets, signer: OrderSigner) -> str:
    creds = (
        "API credentials from the environment"
        if secrets.api_key is not None
        else "API credentials will be derived with L1 auth"
    )
    return (
        f"POLY_PRIVATE_KEY set (address {signer.address}), {creds}, "
        f"signature type {signature_type_of(secrets).name}"
    )


def _clock_check(before: float, server_s: float, after: float, *, max_skew_s: float) -> Check:
    """The offset as ``TradingClient.sync_clock`` measures it: ``/time`` is floored seconds, so
    the venue's true time is the middle of that second, against the middle of the request."""
    offset = server_s + 0.5 - (before + after) / 2
    relation = f"{offset:.1f} s behind" if offset >= 0 else f"{-offset:.1f} s ahead of"
    text = f"local clock {relation} the venue (offset {offset:+.1f} s, max {max_skew_s:g} s)"
    if abs(offset) > max_skew_s:
        return Check(CLOCK, False, f"{text}: sync the system clock (NTP)")
    return Check(CLOCK, True, text)


async def _l2_read(client: TradingClient, source: str) -> Check:
    orders = await client.open_orders()
    return Check(AUTH, True, f"{source}; L2 read GET /data/orders ok ({len(orders)} open orders)")


def _base_units(value: Decimal) -> int:
    """A ``/balance-allowance`` amount (base units) as an int, floored: never overstated."""
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _dollars(units: int) -> str:
    return "unlimited" if units >= UNLIMITED_ALLOWANCE else f"${format_units(units)}"


def collateral_check(answer: BalanceAllowance) -> Check:
    """Judge a ``GET /balance-allowance`` answer for pUSD.

    Passes when the balance is above zero and every allowance the venue reports (V1's single
    ``allowance``, or V2's per-spender ``allowances``) covers the whole balance: an allowance
    below it would make orders fail with ``not enough balance / allowance`` before the money
    runs out. If the venue reports no allowance at all, that is said, not failed.
    """
    balance = _base_units(answer.balance)
    spenders: dict[str, int] = {k: _base_units(v) for k, v in answer.allowances.items()}
    if not spenders and answer.allowance is not None:
        spenders["the exchange"] = _base_units(answer.allowance)
    text = f"pUSD balance {_dollars(balance)}"
    if balance <= 0:
        return Check(BALANCE, False, f"{text}: fund the wallet with pUSD")
    if not spenders:
        return Check(BALANCE, True, f"{text}; the venue reported no allowance (not checked)")
    short = {k: v for k, v in spenders.items() if v < balance}
    if short:
        listed = ", ".join(f"{_dollars(v)} to {k}" for k, v in sorted(short.items()))
        return Check(
            BALANCE,
            False,
            f"{text}, but allowance below it: {listed}; approve pUSD for the exchanges "
            "(PROTOCOL.md 6.1), then GET /balance-allowance/update",
        )
    least = min(spenders.values())
    where = f" ({len(spenders)} spenders)" if len(spenders) > 1 else ""
    return Check(BALANCE, True, f"{text}, allowance {_dollars(least)}{where}")


async def _pick_token(rest: RestClient) -> tuple[str, str]:
    """``(label, token_id)`` of one open market with an order book: Gamma's most traded first,
    else the first page of CLOB ``/markets`` (Gamma is a separate service and may be down)."""
    gamma_error: BaseException | None = None
    try:
        raw = await rest.get(
            Api.GAMMA,
            "/markets",
            {
                "active": True,
                "closed": False,
                "order": "volumeNum",
                "ascending": False,
                "limit": _MARKETS_TO_SCAN,
            },
        )
        for market in decode_gamma_markets(raw):
            if market.enable_order_book and market.accepting_orders and market.clob_token_ids:
                label = market.slug or market.question or market.condition_id
                return f"gamma market {label}", market.clob_token_ids[0]
    except RegionBlocked:
        raise
    except _FAILURES as exc:
        gamma_error = exc
    page = decode_clob_markets_page(
        await rest.get(Api.CLOB, "/markets", {"next_cursor": CURSOR_START})
    )
    for clob in page.data:
        if clob.enable_order_book and clob.accepting_orders and not clob.closed and clob.tokens:
            label = clob.market_slug or clob.question or clob.condition_id
            return f"clob market {label}", clob.tokens[0].token_id
    why = f" (Gamma failed: {_describe(gamma_error)})" if gamma_error is not None else ""
    raise RemoteProtocolError(f"no open market with an order book on Gamma or CLOB /markets{why}")


def _level(level: Level | None) -> str:
    return "none" if level is None else f"{format_units(level.price)} x {format_units(level.size)}"


async def _book_check(rest: RestClient) -> Check:
    label, token_id = await _pick_token(rest)
    book: BookSnapshot = await rest.fetch_book(token_id)
    # Levels are in wire order (the real venue lists them best-last): pick the best explicitly.
    bid = _level(max(book.bids, key=lambda level: level.price, default=None))
    ask = _level(min(book.asks, key=lambda level: level.price, default=None))
    return Check(
        BOOK,
        True,
        f"{label}: GET /book ok, best bid {bid}, best ask {ask} "
        f"({len(book.bids)} bid / {len(book.asks)} ask levels)",
    )


async def _user_channel_check(cfg: Config, ws_user_url: str, creds: ApiCreds) -> Check:
    feed = cfg.feed
    transport = transport_for(feed.transport)
    async with transport.connect(
        ws_user_url,
        receive_buffer=feed.receive_buffer_bytes,
        max_message=feed.max_message_bytes,
    ) as conn:
        await conn.send(auth_frame(creds))
        sent_at = trio.current_time()
        await conn.send("PING")
        with trio.move_on_after(PONG_TIMEOUT_S):
            while await conn.receive() != "PONG":
                pass  # our own order/trade events may come first
            rtt_ms = (trio.current_time() - sent_at) * 1000
            return Check(
                USER_CHANNEL,
                True,
                f"{ws_user_url}: authenticated, PONG in {rtt_ms:.0f} ms",
            )
    return Check(USER_CHANNEL, False, f"{ws_user_url}: no PONG within {PONG_TIMEOUT_S:g} s")
