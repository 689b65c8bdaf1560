"""Trading against the embedded sim venue: a signing trader, its credentials, book peeks.

Shared by the sim's private-side tests, the user-feed tests and the live-client scenarios.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

import attrs
import httpx
import trio

from bot.config import Secret, SignatureType
from bot.core.auth import ApiCreds, l2_headers
from bot.core.signing import build_order, limit_order_amounts, order_post
from bot.core.trading import OrderType
from bot.shell.signer import OrderSigner
from bot.sim.venue import open_sim_venue
from tests.sim.server_helpers import (
    START_MS,
    WAIT,
    small_config,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from bot.core.money import Side
    from bot.sim.universe import SimMarket
    from bot.sim.venue import SimVenue

KEY: Final = Secret("0x" + "4c" * 32)
OTHER_KEY: Final = Secret("0x" + "5d" * 32)
TICK_CENT: Final = 10_000


@attrs.define
class Trader:
    """One signing key with its venue credentials and an HTTP client."""

    venue: SimVenue
    client: httpx.AsyncClient
    signer: OrderSigner
    creds: ApiCreds

    def _now_s(self) -> int:
        return self.venue.now_ms() // 1000

    def order_body(
        self,
        market: SimMarket,
        token: str,
        side: Side,
        price: int,
        size: int,
        order_type: OrderType = OrderType.GTC,
        *,
        signer: OrderSigner | None = None,
        expiration_s: int = 0,
    ) -> tuple[str, bytes]:
        """``(order id, POST /order body)`` for a limit order signed by ``signer``."""
        signer = signer or self.signer
        tick = self.venue.exchange.book(token).tick_size
        amounts = limit_order_amounts(side, price, size, tick)
        unsigned = build_order(
            token_id=token,
            side=side,
            maker_amount=amounts.maker_amount,
            taker_amount=amounts.taker_amount,
            signer_address=signer.address,
            signature_type=SignatureType.EOA,
            funder=None,
            neg_risk=market.neg_risk,
            salt=len(str(price)) * 1000 + size % 997,
            timestamp_ms=self.venue.now_ms(),
            expiration_s=expiration_s,
        )
        post = order_post(signer.sign(unsigned), self.creds.api_key, order_type)
        return post.order_id, post.body

    async def request(
        self, method: str, path: str, body: bytes = b"", params: dict[str, str] | None = None
    ) -> httpx.Response:
        headers = l2_headers(
            self.signer.address,
            self.creds,
            timestamp=self._now_s(),
            method=method,
            path=path,
            body=body or None,
        )
        with trio.fail_after(WAIT):
            return await self.client.request(
                method, path, content=body or None, headers=dict(headers), params=params
            )

    async def place(self, body: bytes) -> httpx.Response:
        return await self.request("POST", "/order", body)

    async def balance(self, token: str | None = None) -> int:
        params = (
            {"asset_type": "CONDITIONAL", "token_id": token}
            if token
            else {"asset_type": "COLLATERAL"}
        )
        response = await self.request("GET", "/balance-allowance", params=params)
        assert response.status_code == 200, response.text
        return int(response.json()["balance"])


async def api_creds(venue: SimVenue, client: httpx.AsyncClient, signer: OrderSigner) -> ApiCreds:
    headers = signer.l1_headers(venue.now_ms() // 1000)
    with trio.fail_after(WAIT):
        response = await client.post("/auth/api-key", headers=dict(headers))
    assert response.status_code == 200, response.text
    data = response.json()
    return ApiCreds(Secret(data["apiKey"]), Secret(data["secret"]), Secret(data["passphrase"]))


@asynccontextmanager
async def trading_venue(**changes: Any) -> AsyncIterator[tuple[SimVenue, Trader]]:
    async with (
        open_sim_venue(small_config(**changes), start_epoch_ms=START_MS, pump=False) as venue,
        httpx.AsyncClient(base_url=venue.clob_url) as client,
    ):
        signer = OrderSigner(KEY)
        yield venue, Trader(venue, client, signer, await api_creds(venue, client, signer))


def binary(venue: SimVenue) -> SimMarket:
    return next(m for m in venue.universe.markets if not m.neg_risk)


def asks(venue: SimVenue, token: str) -> list[tuple[int, int]]:
    return [(lv.price, lv.size) for lv in venue.exchange.book(token).asks()]


def bids(venue: SimVenue, token: str) -> list[tuple[int, int]]:
    return [(lv.price, lv.size) for lv in venue.exchange.book(token).bids()]


# --- accounts
