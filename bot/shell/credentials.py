"""Trading credentials from the environment: what is missing, the signer, and the L2 API keys.

Live trading needs a wallet key (``POLY_PRIVATE_KEY``) and L2 API credentials. The API
credentials may be given (``POLY_API_KEY``, ``POLY_API_SECRET``, ``POLY_API_PASSPHRASE``, all
three or none) or obtained with L1 auth: ``GET /auth/derive-api-key`` returns the key the wallet
already has; when it has none, ``POST /auth/api-key`` creates one (PROTOCOL.md 5.1). Both L1
requests are stamped with the venue's ``/time``, never the local clock.

``missing_for_live`` lists, by environment variable, what stops live trading, so ``polybot run``
and ``polybot doctor`` can say exactly what to set. Nothing here logs or returns a secret value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from bot.config import SECRET_ENV_VARS, Secret, SignatureType
from bot.core.auth import ApiCreds
from bot.core.errors import RemoteProtocolError
from bot.shell.rest import Api, RestError

if TYPE_CHECKING:
    from bot.config import Secrets
    from bot.shell.rest import RestClient
    from bot.shell.signer import OrderSigner

__all__ = ["missing_for_live", "obtain_api_creds", "signature_type_of"]

_API_FIELDS = ("api_key", "api_secret", "api_passphrase")


def signature_type_of(secrets: Secrets) -> SignatureType:
    """The wallet's signature type: ``POLY_SIGNATURE_TYPE``, else EOA."""
    return secrets.signature_type if secrets.signature_type is not None else SignatureType.EOA


def missing_for_live(secrets: Secrets) -> list[str]:
    """What the environment lacks for live trading, one line per problem (empty: ready)."""
    problems: list[str] = []
    if secrets.private_key is None:
        problems.append(f"{SECRET_ENV_VARS['private_key']} is not set (the wallet's signing key)")
    given = [name for name in _API_FIELDS if getattr(secrets, name) is not None]
    if given and len(given) != len(_API_FIELDS):
        absent = [SECRET_ENV_VARS[n] for n in _API_FIELDS if n not in given]
        problems.append(
            f"{', '.join(absent)} not set: give all three API credentials or none "
            "(none: they are derived from the wallet key with L1 auth)"
        )
    if signature_type_of(secrets) is not SignatureType.EOA and secrets.funder is None:
        problems.append(
            f"{SECRET_ENV_VARS['funder']} is not set: signature type "
            f"{signature_type_of(secrets).name} trades from a funder wallet whose address it names"
        )
    return problems


def _given_creds(secrets: Secrets) -> ApiCreds | None:
    if secrets.api_key is None or secrets.api_secret is None or secrets.api_passphrase is None:
        return None
    return ApiCreds(secrets.api_key, secrets.api_secret, secrets.api_passphrase)


async def obtain_api_creds(rest: RestClient, signer: OrderSigner, secrets: Secrets) -> ApiCreds:
    """The L2 credentials: the environment's, else derived (or created) with L1 auth.

    Raises:
        RestError: the venue refused both L1 requests (its message, never a secret).
        RemoteProtocolError: the venue's answer has no credentials.
    """
    given = _given_creds(secrets)
    if given is not None:
        return given
    try:
        raw = await _l1(rest, signer, "GET", "/auth/derive-api-key")
    except RestError as exc:
        if exc.status not in (400, 404):
            raise
        raw = await _l1(rest, signer, "POST", "/auth/api-key")  # the wallet has no key yet
    return _decode_creds(raw)


async def _l1(rest: RestClient, signer: OrderSigner, method: str, path: str) -> bytes:
    headers = signer.l1_headers(await rest.fetch_server_time())
    # Deriving is a read; creating is not, but creating the same wallet's key twice is harmless.
    return await rest.request(
        method, Api.CLOB, path, headers=lambda: headers, idempotent=method == "GET"
    )


def _decode_creds(raw: bytes) -> ApiCreds:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise RemoteProtocolError("the API key answer is not a JSON object")
    values = [data.get(k) for k in ("apiKey", "secret", "passphrase")]
    if not all(isinstance(v, str) and v for v in values):
        raise RemoteProtocolError("the API key answer lacks apiKey, secret or passphrase")
    key, secret, passphrase = (Secret(str(v)) for v in values)
    return ApiCreds(key, secret, passphrase)
