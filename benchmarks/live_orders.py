"""What one live order costs: signing, and the round trips of placing and cancelling.

The sim venue runs in a subprocess (``polybot sim``, its own core), so its matching and its
recovery of each order's signer do not share our loop; the figures are the client's path
(``TradingClient``: build, sign in a worker thread, L2 headers, POST, decode) plus one loopback
round trip and the venue's own work, which on Polymarket is replaced by the network and the
real matching engine. They bound from below what the bot adds to an order's latency.

Figures:

* ``live.sign_order``: one V2 EIP-712 signature (Polymarket's library), median, ms.
* ``live.place_gtc.p50`` / ``.p99``: a resting order, from the call to the venue's answer, ms.
* ``live.cancel.p50``: cancelling one, ms.
* ``live.fok_fill.p50``: a marketable FOK that fills, ms.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import attrs
import httpx
import trio
from loguru import logger

from benchmarks.common import Result
from benchmarks.transport import venue_process
from bot.config import Config, Secret, Secrets, SignatureType
from bot.core.backoff import Backoff
from bot.core.money import ONE, Side
from bot.core.signing import build_order, limit_order_amounts
from bot.core.trading import OrderType
from bot.shell.clob_trading import ALL_RATE_LIMITS, TradingClient
from bot.shell.credentials import obtain_api_creds
from bot.shell.discovery import discover
from bot.shell.rest import RestClient
from bot.shell.signer import OrderSigner, new_salt

if TYPE_CHECKING:
    from collections.abc import Iterator

KEY: Final = Secret("0x" + "4b" * 32)


def _ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


def sign_costs(n: int) -> list[float]:
    signer = OrderSigner(KEY)
    amounts = limit_order_amounts(Side.BUY, 500_000, 10 * ONE, 10_000)
    costs = []
    for _ in range(n):
        order = build_order(
            token_id="1" * 70,
            side=Side.BUY,
            maker_amount=amounts.maker_amount,
            taker_amount=amounts.taker_amount,
            signer_address=signer.address,
            signature_type=SignatureType.EOA,
            funder=None,
            neg_risk=False,
            salt=new_salt(),
            timestamp_ms=int(time.time() * 1000),
        )
        start = time.perf_counter()
        signer.sign(order)
        costs.append(time.perf_counter() - start)
    return costs


async def round_trips(n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"place": [], "cancel": [], "fok": []}
    async with (
        venue_process("--events-per-second", "0") as urls,
        httpx.AsyncClient(timeout=30) as http,
    ):
        rest = RestClient(
            http,
            gamma_url=urls.gamma_url,
            clob_url=urls.clob_url,
            backoff=Backoff(0.01, 0.1),
            rng=random.Random(1),
            rate_limits=ALL_RATE_LIMITS,
        )
        signer = OrderSigner(KEY)
        creds = await obtain_api_creds(rest, signer, Secrets(private_key=KEY))
        client = TradingClient(rest, creds=creds, signer=signer, signature_type=SignatureType.EOA)
        cfg = Config()
        relaxed = attrs.evolve(
            cfg.discovery,
            keywords=(),
            tag_slugs=(),
            min_liquidity=Decimal(0),
            min_volume=Decimal(0),
            end_within_days=0,
        )
        universe = await discover(rest, relaxed, now=datetime.now(UTC))
        market = next(m for m in universe.binary_markets() if not m.neg_risk)
        token, tick = market.yes.token_id, market.tick_size
        for _ in range(n):
            start = time.perf_counter()
            placed = await client.place(token, Side.BUY, tick, 5 * ONE, tick=tick, neg_risk=False)
            out["place"].append(time.perf_counter() - start)
            start = time.perf_counter()
            await client.cancel(placed.order_id)
            out["cancel"].append(time.perf_counter() - start)
        for _ in range(max(5, n // 4)):
            book = await rest.fetch_book(token)
            ask = min(level.price for level in book.asks)
            start = time.perf_counter()
            await client.place(
                token, Side.BUY, ask, 5 * ONE, tick=tick, neg_risk=False, order_type=OrderType.FOK
            )
            out["fok"].append(time.perf_counter() - start)
    return out


def run(*, quick: bool, only: str) -> Iterator[Result]:
    names = ("live.sign_order", "live.place_gtc", "live.cancel", "live.fok_fill")
    if only and not any(only in name for name in names):
        return
    n = 20 if quick else 100
    logger.remove()  # the client's debug lines would interleave with the JSON figures
    signs = sign_costs(n)
    yield Result("live.sign_order", round(statistics.median(signs) * 1000, 3), "ms")
    trips = trio.run(round_trips, n)
    yield Result("live.place_gtc.p50", _ms(trips["place"], 0.5), "ms")
    yield Result("live.place_gtc.p99", _ms(trips["place"], 0.99), "ms")
    yield Result("live.cancel.p50", _ms(trips["cancel"], 0.5), "ms")
    yield Result("live.fok_fill.p50", _ms(trips["fok"], 0.5), "ms")
