"""EIP-712 signing with Polymarket's own library: V2 orders, L1 ``ClobAuth``, signer recovery.

The issue asks for Polymarket's libraries rather than hand-rolled cryptography, so orders are
signed by ``py_clob_client_v2``'s ``ExchangeOrderBuilderV2`` (EOA, proxy, Safe and the POLY_1271
deposit-wallet wrapper) and L1 headers by its ``sign_clob_auth_message``. Only those pure parts of
the library are called, never its (synchronous) HTTP client.

Why this lives in the shell and not in ``bot.core``: importing any ``py_clob_client_v2`` module
runs its package ``__init__``, which imports its HTTP client and with it httpx and trio, and the
``eth-account`` stack under it loads ``socket`` (via ``importlib.metadata``). The pure parts we
need (amounts, struct fields, the POST body, HMAC) are in ``bot.core.signing`` and
``bot.core.auth``; this module adds only the keccak/secp256k1 work.

Cost: ``OrderSigner.sign`` (signature plus order id) measured about 1.6 ms per order on the
shared 2-core machine with ``coincurve`` installed (a dependency: eth-keys then signs with
libsecp256k1), against ~10 ms with eth-keys' pure-Python backend (``benchmarks/live_orders.py``);
not the ~1 s reported by others (that figure likely includes the SDK's network lookups of tick
size, neg-risk and fees). What remains is the library's pure-Python EIP-712 encoding; the shell
still signs with ``trio.to_thread.run_sync`` so that a batch of 15 never stalls the event loop.

``recover_order_signer`` is what the sim venue uses to check a posted order's signature, as the
real venue does.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any, Final

from eth_abi.abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from eth_keys.datatypes import Signature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2, OrderDataV2
from py_clob_client_v2.order_utils import Side as LibSide
from py_clob_client_v2.order_utils import SignatureTypeV2 as LibSignatureType
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import (
    DEPOSIT_WALLET_DOMAIN_SALT,
    DEPOSIT_WALLET_NAME_HASH,
    DEPOSIT_WALLET_VERSION_HASH,
    ORDER_TYPE_STRING,
    SOLADY_TYPE_HASH,
)
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderV2
from py_clob_client_v2.signer import Signer as LibSigner
from py_clob_client_v2.signing.eip712 import sign_clob_auth_message

from bot.config import Secret, SignatureType
from bot.core.auth import AuthHeaders, l1_headers
from bot.core.money import Side
from bot.core.signing import (
    CHAIN_ID_POLYGON,
    SignedOrder,
    UnsignedOrder,
)

_MAX_SALT: Final = 2**53
_ECDSA_LEN: Final = 65
_POLY_1271_LEN: Final = 65 + 32 + 32 + len(ORDER_TYPE_STRING) + 2


class InvalidOrderSignature(ValueError):
    """A posted order's signature is malformed or does not belong to the order."""


def new_salt() -> int:
    """A random order salt below 2**53 (salts travel as JSON numbers)."""
    return secrets.randbelow(_MAX_SALT)


class OrderSigner:
    """Signs V2 orders and L1 auth messages with one private key.

    The key stays a ``Secret`` here; the library's own signer object holds the plain value, and is
    kept private and out of every ``repr``.
    """

    __slots__ = ("_chain_id", "_key", "_lib")

    def __init__(self, private_key: Secret, *, chain_id: int = CHAIN_ID_POLYGON) -> None:
        self._key = private_key
        self._chain_id = chain_id
        try:
            self._lib = LibSigner(private_key.reveal(), chain_id)
        except Exception:
            # eth-account's errors may quote the key material.
            raise ValueError("private key is not a valid secp256k1 key (value not shown)") from None

    def __repr__(self) -> str:
        return f"OrderSigner(address={self.address!r}, chain_id={self._chain_id})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("OrderSigner cannot be pickled")

    @property
    def address(self) -> str:
        """The checksummed EOA address of the key (``POLY_ADDRESS``)."""
        return str(self._lib.address())

    @property
    def chain_id(self) -> int:
        return self._chain_id

    def sign(self, order: UnsignedOrder) -> SignedOrder:
        """Sign ``order`` with the library's V2 builder against ``order.exchange``.

        Returns the order with its signature (65-byte ECDSA, or the 318-byte ERC-7739 wrapper
        for POLY_1271) and its order id (the EIP-712 digest the venue reports as ``orderID``).

        Raises:
            ValueError: the order was built for another chain or another signer.
        """
        if order.chain_id != self._chain_id:
            raise ValueError(
                f"order is for chain {order.chain_id}, this signer for chain {self._chain_id}"
            )
        if (
            order.signature_type is not SignatureType.POLY_1271
            and order.signer.lower() != self.address.lower()
        ):
            raise ValueError(
                f"order signer {order.signer} is not this key's address {self.address}"
            )
        salt = str(order.salt)
        builder = ExchangeOrderBuilderV2(
            order.exchange, self._chain_id, self._lib, generate_salt=lambda: salt
        )
        signed = builder.build_signed_order(
            OrderDataV2(
                maker=order.maker,
                tokenId=str(order.token_id),
                makerAmount=str(order.maker_amount),
                takerAmount=str(order.taker_amount),
                side=LibSide(int(order.side)),
                signer=order.signer,
                signatureType=LibSignatureType(int(order.signature_type)),
                timestamp=str(order.timestamp_ms),
                metadata=order.metadata,
                builder=order.builder,
                expiration=str(order.expiration),
            )
        )
        order_id = builder.build_order_hash(builder.build_order_typed_data(signed))
        return SignedOrder(order=order, signature=str(signed.signature), order_id=str(order_id))

    def clob_auth_signature(self, timestamp: int, nonce: int = 0) -> str:
        """The L1 ``ClobAuth`` EIP-712 signature for ``timestamp`` (venue seconds) and ``nonce``."""
        return str(sign_clob_auth_message(self._lib, timestamp, nonce))

    def l1_headers(self, timestamp: int, nonce: int = 0) -> AuthHeaders:
        """The L1 headers for ``/auth/api-key`` and ``/auth/derive-api-key``."""
        return l1_headers(
            self.address,
            self.clob_auth_signature(timestamp, nonce),
            timestamp=timestamp,
            nonce=nonce,
        )


def _order_fields(order_json: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    data: Any = json.loads(order_json) if isinstance(order_json, str | bytes) else order_json
    if isinstance(data, Mapping) and isinstance(data.get("order"), Mapping):
        data = data["order"]  # a whole POST /order body
    if not isinstance(data, Mapping):
        raise InvalidOrderSignature("expected a JSON object for the order")
    return data


def _lib_order(fields: Mapping[str, Any]) -> tuple[OrderV2, str]:
    try:
        side = Side.parse(str(fields["side"]))
        order = OrderV2(
            salt=str(int(fields["salt"])),
            maker=to_checksum_address(str(fields["maker"])),
            signer=to_checksum_address(str(fields["signer"])),
            tokenId=str(int(fields["tokenId"])),
            makerAmount=str(int(fields["makerAmount"])),
            takerAmount=str(int(fields["takerAmount"])),
            side=LibSide(int(side)),
            signatureType=LibSignatureType(int(fields["signatureType"])),
            timestamp=str(int(fields["timestamp"])),
            metadata=str(fields["metadata"]),
            builder=str(fields["builder"]),
            expiration=str(fields.get("expiration", "0")),
        )
        signature = str(fields["signature"])
    except KeyError as exc:
        raise InvalidOrderSignature(f"order is missing the field {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise InvalidOrderSignature(f"malformed order field: {exc}") from None
    return order, signature


def _builder(exchange: str, chain_id: int) -> ExchangeOrderBuilderV2:
    # The builder needs a signer only to sign; hashing and typed data use the domain alone.
    return ExchangeOrderBuilderV2(to_checksum_address(exchange), chain_id, None)


def _typed_and_digest(
    builder: ExchangeOrderBuilderV2, order: OrderV2
) -> tuple[dict[str, Any], bytes]:
    """The order's EIP-712 typed data and digest; out-of-range fields become a clear error."""
    try:
        typed: dict[str, Any] = builder.build_order_typed_data(order)
        digest = bytes.fromhex(str(builder.build_order_hash(typed)).removeprefix("0x"))
    except Exception as exc:  # eth-abi encoding errors for negative or oversized values
        raise InvalidOrderSignature(f"malformed order field: {exc}") from None
    return typed, digest


def order_hash(
    order_json: Mapping[str, Any] | str | bytes,
    *,
    exchange: str,
    chain_id: int = CHAIN_ID_POLYGON,
) -> str:
    """The order id of a posted order: its EIP-712 digest under ``exchange`` (0x-hex)."""
    order, _ = _lib_order(_order_fields(order_json))
    _, digest = _typed_and_digest(_builder(exchange, chain_id), order)
    return "0x" + digest.hex()


def _signature_bytes(signature: str) -> bytes:
    try:
        return bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise InvalidOrderSignature("signature is not hex") from None


def _recover(digest: bytes, sig65: bytes) -> str:
    v = sig65[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise InvalidOrderSignature(f"signature has an invalid recovery id {sig65[64]}")
    try:
        public = Signature(sig65[:64] + bytes([v])).recover_public_key_from_msg_hash(digest)
    except Exception as exc:  # eth-keys raises BadSignature and ValidationError subclasses
        raise InvalidOrderSignature(f"signature does not recover: {exc}") from None
    return str(public.to_checksum_address())


def recover_order_signer(
    order_json: Mapping[str, Any] | str | bytes,
    *,
    exchange: str,
    chain_id: int = CHAIN_ID_POLYGON,
) -> str:
    """The checksummed address whose key signed this V2 order under ``exchange``.

    ``order_json`` is the ``order`` object of ``POST /order`` (or the whole body), as a mapping or
    raw JSON. The venue compares the result with the order's ``signer`` field: any tampered field
    recovers to a different address. For POLY_1271 orders the result is the EOA that signed the
    ERC-7739 wrapper (the deposit wallet's owner, which the real venue checks on chain through
    ERC-1271); the wrapper's embedded domain separator, contents hash and type string must match
    the order, otherwise this raises.

    Raises:
        InvalidOrderSignature: a missing or malformed field, or a malformed signature.
    """
    order, signature = _lib_order(_order_fields(order_json))
    sig = _signature_bytes(signature)
    builder = _builder(exchange, chain_id)
    typed, digest = _typed_and_digest(builder, order)
    if order.signatureType != LibSignatureType.POLY_1271:
        if len(sig) != _ECDSA_LEN:
            raise InvalidOrderSignature(
                f"signature must be {_ECDSA_LEN} bytes for signature type "
                f"{int(order.signatureType)}, got {len(sig)}"
            )
        return _recover(digest, sig)
    if len(sig) != _POLY_1271_LEN:
        raise InvalidOrderSignature(
            f"POLY_1271 signature must be {_POLY_1271_LEN} bytes, got {len(sig)}"
        )
    inner, app_sep, contents = sig[:65], sig[65:97], sig[97:129]
    type_string = sig[129:-2]
    if app_sep != builder.app_domain_separator:
        raise InvalidOrderSignature("POLY_1271 signature is for another exchange domain")
    if type_string != ORDER_TYPE_STRING.encode() or int.from_bytes(sig[-2:], "big") != len(
        ORDER_TYPE_STRING
    ):
        raise InvalidOrderSignature("POLY_1271 signature carries an unexpected type string")
    # The library's signer hashes the struct; reuse its ERC-7739 constants for the wrapper.
    wrapped = _poly_1271_contents(builder, typed)
    if contents != wrapped:
        raise InvalidOrderSignature("POLY_1271 signature was made for a different order")
    tds = keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "bytes32", "uint256", "address", "bytes32"],
            [
                SOLADY_TYPE_HASH,
                contents,
                DEPOSIT_WALLET_NAME_HASH,
                DEPOSIT_WALLET_VERSION_HASH,
                chain_id,
                order.signer,
                DEPOSIT_WALLET_DOMAIN_SALT,
            ],
        )
    )
    return _recover(keccak(b"\x19\x01" + builder.app_domain_separator + tds), inner)


def _poly_1271_contents(builder: ExchangeOrderBuilderV2, typed: dict[str, Any]) -> bytes:
    """``hashStruct(order)``: the EIP-712 struct hash the POLY_1271 wrapper embeds."""
    # For an EIP-712 message, ``body`` is exactly hashStruct(message).
    return bytes(encode_typed_data(full_message=typed).body)
