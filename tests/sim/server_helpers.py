"""Shared pieces of the sim-server tests: a small venue and a *plain* market-channel client;
and, for the tests that trade on it through the bot's own client, its REST client and a wallet.

The client is deliberately bare (trio-websocket and ``httpx`` only, never the bot's own feed
code), so the tests check the venue against the protocol, not against our client's assumptions.
Every frame is decoded with the project's decoders (``bot.core.wire``), which are strict.

These tests talk over real loopback sockets, so they run on the real clock (TRIO_IDIOMS.md
section 7): waits are short, and every wait that could hang has a ``fail_after``.
"""

from __future__ import annotations

import json
import random
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import orjson
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from bot.config import Secrets, SignatureType, SimConfig, SimFaultsConfig
from bot.core.backoff import Backoff
from bot.core.wire.market import decode_market_frame
from bot.shell.clob_trading import ALL_RATE_LIMITS, TradingClient
from bot.shell.credentials import obtain_api_creds
from bot.shell.rest import RestClient
from bot.shell.signer import OrderSigner

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx
    from trio_websocket import CloseReason, WebSocketConnection

    from bot.config import Secret
    from bot.core.auth import ApiCreds
    from bot.core.wire.market_events import MarketEvent
    from bot.sim.venue import SimVenue

START_MS: Final = 1_782_864_000_000
"""The venue time the tests start at (2026-07-01T00:00:00Z)."""

FIXTURES: Final = Path(__file__).resolve().parent.parent / "fixtures"

WAIT: Final = 5.0
"""Upper bound on any single wait in these tests (they normally take milliseconds)."""


def small_config(**changes: Any) -> SimConfig:
    """A small, quick venue: 4 binaries, one temperature and one election event, busy flow, no
    random opportunities (tests inject them explicitly)."""
    faults = changes.pop("faults", SimFaultsConfig())
    base = SimConfig(
        binary_markets=4,
        temperature_events=1,
        election_events=1,
        events_per_second=500.0,
        opportunity_rate=0.0,
        faults=faults,
    )
    return attrs.evolve(base, **changes)


def sim_rest(
    http: httpx.AsyncClient, venue: SimVenue, *, seed: int, max_attempts: int = 5
) -> RestClient:
    """The bot's REST client on the sim venue: quick retries (10 to 50 ms), seeded jitter, and
    every client-side rate limit the live bot observes (trading endpoints included)."""
    return RestClient(
        http,
        gamma_url=venue.gamma_url,
        clob_url=venue.clob_url,
        backoff=Backoff(base_s=0.01, max_s=0.05),
        rng=random.Random(seed),
        max_attempts=max_attempts,
        rate_limits=ALL_RATE_LIMITS,
    )


@attrs.frozen
class SimWallet:
    """A wallet on the sim venue: its signer, the API credentials the venue gave it, and the
    bot's trading client signing with it."""

    signer: OrderSigner
    creds: ApiCreds
    client: TradingClient


async def sim_wallet(rest: RestClient, key: Secret) -> SimWallet:
    """A wallet for ``key`` (an EOA), with credentials derived from the venue over L1 auth as
    the bot obtains them (``obtain_api_creds``: derived, or created on first use)."""
    signer = OrderSigner(key)
    creds = await obtain_api_creds(rest, signer, Secrets(private_key=key))
    client = TradingClient(rest, creds=creds, signer=signer, signature_type=SignatureType.EOA)
    return SimWallet(signer, creds, client)


def fixture_json(relative: str) -> Any:
    """A sample from ``tests/fixtures``."""
    return json.loads((FIXTURES / relative).read_text())


@asynccontextmanager
async def market_ws(url: str, **options: Any) -> AsyncIterator[WebSocketConnection]:
    """A plain trio-websocket connection with test-friendly limits and timeouts."""
    settings: dict[str, Any] = {
        "max_message_size": 2**24,
        "connect_timeout": WAIT,
        "disconnect_timeout": 1.0,
        "message_queue_size": 64,
    }
    settings.update(options)
    connection: WebSocketConnection | None = None
    try:
        async with open_websocket_url(url, **settings) as ws:
            connection = ws
            yield ws
    finally:
        # Workaround for trio-websocket 0.12.2: when the *server* closes first, the client waits
        # for the TCP close (RFC 6455 section 7.1.1), reads EOF and leaves its reader without
        # closing its own socket, which leaks it (a ResourceWarning: an error under
        # filterwarnings=error). Closing it once more after the library is done is harmless.
        if connection is not None:
            with trio.CancelScope(shield=True):
                await connection._stream.aclose()


def subscribe_message(
    assets: list[str], *, custom: bool = True, initial_dump: bool | None = None
) -> str:
    """The first subscribe message, as the SDKs send it."""
    message: dict[str, Any] = {
        "assets_ids": assets,
        "type": "market",
        "custom_feature_enabled": custom,
    }
    if initial_dump is not None:
        message["initial_dump"] = initial_dump
    return orjson.dumps(message).decode()


async def subscribe(ws: WebSocketConnection, assets: list[str], **options: Any) -> None:
    """Send the subscribe message."""
    await ws.send_message(subscribe_message(assets, **options))


async def frames_until_pong(ws: WebSocketConnection) -> list[str]:
    """Send ``PING`` and return every frame received before the ``PONG``.

    The venue queues ``PONG`` behind the frames already queued for the socket, so once it
    arrives, everything sent before the ``PING`` was handled has been received.
    """
    await ws.send_message("PING")
    frames: list[str] = []
    with trio.fail_after(WAIT):
        while True:
            message = await ws.get_message()
            assert isinstance(message, str)
            if message == "PONG":
                return frames
            frames.append(message)


async def receive_for(ws: WebSocketConnection, seconds: float) -> list[str]:
    """Every text frame received within ``seconds``."""
    frames: list[str] = []
    with trio.move_on_after(seconds):
        while True:
            message = await ws.get_message()
            assert isinstance(message, str)
            frames.append(message)
    return frames


async def wait_closed(ws: WebSocketConnection) -> CloseReason:
    """Read until the venue closes the socket; its close reason."""
    reason = None
    with trio.fail_after(WAIT):
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed as closed:
            reason = closed.reason
    assert reason is not None
    return reason


async def next_text(ws: WebSocketConnection) -> str:
    """The next message, which must be a text frame (the venue sends no binary frames)."""
    message = await ws.get_message()
    assert isinstance(message, str)
    return message


def decode_all(frames: list[str]) -> list[MarketEvent]:
    """Decode frames with the project's strict decoder (raises on anything malformed)."""
    return [event for frame in frames for event in decode_market_frame(frame)]


def event_types(frames: list[str]) -> set[str]:
    """The ``event_type`` of every object in ``frames`` (raw JSON)."""
    kinds: set[str] = set()
    for frame in frames:
        if frame == "PONG":
            continue
        data = orjson.loads(frame)
        for item in data if isinstance(data, list) else [data]:
            kinds.add(item["event_type"])
    return kinds


def wire_objects(frames: list[str]) -> list[dict[str, Any]]:
    """Every JSON object in ``frames``, in order."""
    out: list[dict[str, Any]] = []
    for frame in frames:
        if frame == "PONG":
            continue
        data = orjson.loads(frame)
        out.extend(data if isinstance(data, list) else [data])
    return out


def keys_in_fixture_order(ours: dict[str, Any], sample: dict[str, Any]) -> bool:
    """Whether the keys ``ours`` shares with ``sample`` come in the sample's relative order."""
    common = [key for key in ours if key in sample]
    return common == [key for key in sample if key in ours]
