"""CLOB authentication headers: L2 HMAC on every private request, L1 header assembly.

Polymarket authenticates private REST calls (and the user WebSocket) with two levels
(PROTOCOL.md section 5):

* **L1** proves control of the wallet: an EIP-712 ``ClobAuth`` signature by the private key. It is
  only used to create or derive API credentials. The signature itself needs keccak and secp256k1,
  which live in the ``eth-account`` stack; importing that stack loads ``socket`` (through
  ``importlib.metadata``), and Polymarket's library also loads httpx and trio, so the signing runs
  in ``bot.shell.signer``. This module only assembles the headers from the signature.
* **L2** is an HMAC-SHA256 over ``timestamp + METHOD + path + body`` keyed by the API secret,
  which is plain stdlib and lives here, so the sim venue and the client share one implementation.

Timestamps are never read from the local clock here: the caller passes the venue's time, computed
with ``venue_timestamp`` from the offset measured against ``GET /time``, so a skewed local clock
cannot turn every private request into a 401.

Secrets stay ``bot.config.Secret`` values until the moment they are hashed or put on the wire, and
the header mapping returned here redacts them in its ``repr``, so a stray log line or an exception
message never carries the API secret, key or passphrase.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from bot.config import Secret

POLY_ADDRESS: Final = "POLY_ADDRESS"
POLY_SIGNATURE: Final = "POLY_SIGNATURE"
POLY_TIMESTAMP: Final = "POLY_TIMESTAMP"
POLY_NONCE: Final = "POLY_NONCE"
POLY_API_KEY: Final = "POLY_API_KEY"
POLY_PASSPHRASE: Final = "POLY_PASSPHRASE"

CLOB_AUTH_MESSAGE: Final = "This message attests that I control the given wallet"
"""The fixed ``message`` field of the L1 ``ClobAuth`` struct."""

# Header values that grant access (or, for the signature, replay it within the venue's window).
_REDACTED_HEADERS: Final = frozenset({POLY_API_KEY, POLY_PASSPHRASE, POLY_SIGNATURE})


@attrs.frozen
class ApiCreds:
    """L2 API credentials, as ``POST /auth/api-key`` returns them (all three are secrets)."""

    api_key: Secret
    secret: Secret
    """The base64url HMAC key."""
    passphrase: Secret


class AuthHeaders(Mapping[str, str]):
    """An immutable header mapping whose ``repr``/``str`` hide the secret values.

    It is a plain ``Mapping[str, str]``, so it can be handed to an HTTP client as is; only the
    rendering is guarded, because headers are exactly what ends up in debug logs.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k!r}: {'<redacted>' if k in _REDACTED_HEADERS else repr(v)}"
            for k, v in self._items.items()
        )
        return f"AuthHeaders({{{shown}}})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        # Like ``Secret``: never let the values travel through pickle (e.g. an enqueued log record).
        raise TypeError("AuthHeaders cannot be pickled")


def venue_timestamp(local_now_s: float, offset_s: float) -> int:
    """The venue's current unix time in whole seconds, for ``POLY_TIMESTAMP``.

    ``offset_s`` is ``venue_time - local_time`` as measured against ``GET /time`` (which returns
    bare integer seconds). The venue compares the header with its own clock, so the local clock's
    skew is cancelled out here; the result is floored like the venue's own integer clock.

    Raises:
        ValueError: either input is not finite, or the result is negative.
    """
    if not (math.isfinite(local_now_s) and math.isfinite(offset_s)):
        raise ValueError(
            f"venue_timestamp needs finite times, got local_now_s={local_now_s!r}, "
            f"offset_s={offset_s!r}"
        )
    ts = math.floor(local_now_s + offset_s)
    if ts < 0:
        raise ValueError(
            f"venue_timestamp: negative time {ts} (local {local_now_s}, offset {offset_s})"
        )
    return ts


def _request_path(path: str) -> str:
    """The part of ``path`` the venue signs: the path only, without host or query string."""
    if not path.startswith("/"):
        raise ValueError(
            f"request path must start with '/' (the path only, no scheme or host), got {path!r}"
        )
    return path.partition("?")[0]


def _message(timestamp: int, method: str, path: str, body: str | bytes | None) -> bytes:
    head = f"{timestamp}{method}{_request_path(path)}".encode()
    if not body:
        return head
    return head + (body.encode() if isinstance(body, str) else body)


def _hmac_key(secret: Secret) -> bytes:
    try:
        return base64.urlsafe_b64decode(secret.reveal())
    except (binascii.Error, ValueError):
        # The decoder's message can quote the input; say what is wrong without it.
        raise ValueError("API secret is not valid base64url (value not shown)") from None


def hmac_signature(
    secret: Secret, timestamp: int, method: str, path: str, body: str | bytes | None = None
) -> str:
    """The L2 ``POLY_SIGNATURE``: base64url(HMAC-SHA256(b64decode(secret), message)).

    ``message = str(timestamp) + method + path + body``, byte-exact (VECTORS.md section 1):

    * ``method`` is signed as given (callers pass ``GET``/``POST``/``DELETE``);
    * ``path`` is the path only; a query string is dropped, as the venue signs without it;
    * ``body`` must be the exact bytes sent (whitespace matters); ``None`` or empty adds nothing.
      Unlike the legacy SDK we do not replace ``'`` with ``"``: we sign what we send.
    """
    digest = hmac.new(
        _hmac_key(secret), _message(timestamp, method, path, body), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def hmac_matches(
    secret: Secret,
    timestamp: int,
    method: str,
    path: str,
    body: str | bytes | None,
    signature: str,
) -> bool:
    """Whether ``signature`` is the L2 HMAC of this request (constant-time; for the sim venue).

    The venue checks the raw request body, not a re-serialisation of it, which is why ``body`` is
    the bytes as received.
    """
    expected = hmac_signature(secret, timestamp, method, path, body)
    return hmac.compare_digest(expected.encode(), signature.encode())


def l2_headers(
    address: str,
    creds: ApiCreds,
    *,
    timestamp: int,
    method: str,
    path: str,
    body: str | bytes | None = None,
) -> AuthHeaders:
    """The five L2 headers for one request (PROTOCOL.md 5.2).

    ``address`` is the signer EOA, also for proxy, Safe and deposit-wallet users; ``timestamp``
    comes from ``venue_timestamp``.
    """
    return AuthHeaders(
        {
            POLY_ADDRESS: address,
            POLY_SIGNATURE: hmac_signature(creds.secret, timestamp, method, path, body),
            POLY_TIMESTAMP: str(timestamp),
            POLY_API_KEY: creds.api_key.reveal(),
            POLY_PASSPHRASE: creds.passphrase.reveal(),
        }
    )


def l1_headers(address: str, signature: str, *, timestamp: int, nonce: int = 0) -> AuthHeaders:
    """The four L1 headers from a ``ClobAuth`` signature made for this ``timestamp`` and ``nonce``.

    The signature comes from ``bot.shell.signer.OrderSigner.clob_auth_signature`` (see the module
    docstring for why it is not computed here). ``POLY_TIMESTAMP`` must be the same string the
    struct signed, so both are derived from the one integer.
    """
    if nonce < 0:
        raise ValueError(f"L1 nonce must be >= 0, got {nonce}")
    return AuthHeaders(
        {
            POLY_ADDRESS: address,
            POLY_SIGNATURE: signature,
            POLY_TIMESTAMP: str(timestamp),
            POLY_NONCE: str(nonce),
        }
    )
