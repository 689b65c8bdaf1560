"""Order signing and authentication: every known-answer vector of VECTORS.md 1, 2, 4, 4b and 5.

Vector values are copied from /work/shared/polymarket/VECTORS.md; each block names its section
and row. Only the public Hardhat/Anvil test key is used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac as std_hmac
import json
import pickle
import time
from fractions import Fraction

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from py_clob_client_v2.headers.headers import create_level_1_headers
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder
from py_clob_client_v2.order_builder.helpers import round_down
from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2, SignatureTypeV2, SignedOrderV2
from py_clob_client_v2.order_utils import Side as LibSide
from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2
from py_clob_client_v2.signer import Signer as LibSigner
from py_clob_client_v2.signing.eip712 import get_clob_auth_domain
from py_clob_client_v2.signing.hmac import build_hmac_signature
from py_clob_client_v2.signing.model import ClobAuth

from bot.config import Secret, SignatureType
from bot.core.auth import (
    POLY_ADDRESS,
    POLY_API_KEY,
    POLY_NONCE,
    POLY_PASSPHRASE,
    POLY_SIGNATURE,
    POLY_TIMESTAMP,
    ApiCreds,
    AuthHeaders,
    hmac_matches,
    hmac_signature,
    l2_headers,
    venue_timestamp,
)
from bot.core.money import ONE, Side, format_units, parse_units
from bot.core.signing import (
    BYTES32_ZERO,
    CHAIN_ID_AMOY,
    CHAIN_ID_POLYGON,
    CTF_EXCHANGE_V2,
    NEG_RISK_CTF_EXCHANGE_V2,
    OrderAmounts,
    SignedOrder,
    UnsignedOrder,
    batch_body,
    build_order,
    exchange_for,
    limit_order_amounts,
    market_order_amounts,
    market_order_price,
    marketable_limit_amounts,
    order_post,
)
from bot.core.trading import OrderType
from bot.shell.signer import (
    InvalidOrderSignature,
    OrderSigner,
    new_salt,
    order_hash,
    recover_order_signer,
)

# VECTORS.md header: the public Hardhat/Anvil key and its address.
PRIVATE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
KEY = Secret(PRIVATE_KEY)

# VECTORS.md section 1: the HMAC secret shared by H1-H3.
HMAC_SECRET = Secret("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")

# VECTORS.md section 4: shared inputs.
TOKEN_V2 = 71321045679252212594626385532706912750332728571942532289631379312455583992563
# VECTORS.md section 4b: the deposit wallet (maker = signer).
WALLET = "0x1111111111111111111111111111111111111111"

TICKS = {"0.1": 100_000, "0.01": 10_000, "0.001": 1_000, "0.0001": 100}


@pytest.fixture(scope="module")
def signer() -> OrderSigner:
    return OrderSigner(KEY)


@pytest.fixture(scope="module")
def amoy_signer() -> OrderSigner:
    return OrderSigner(KEY, chain_id=CHAIN_ID_AMOY)


# ---------------------------------------------------------------------------------------------
# Section 1: L2 HMAC


@pytest.mark.parametrize(
    ("timestamp", "method", "path", "body", "expected"),
    [
        # H1: body with a space, signed verbatim.
        (1000000, "test-sign", "/orders", '{"hash": "0x123"}',
         "ZwAdJKvoYRlEKDkNMwd5BuwNNtg93kNaR_oU2HrfVvc="),
        # H2: the compact body gives a different signature.
        (1000000, "test-sign", "/orders", '{"hash":"0x123"}',
         "4gJVbox-R6XlDK4nlaicig0_ANVL1qdcahiL8CXfXLM="),
        # H3: no body.
        (1, "GET", "/", None, "eHaylCwqRSOa2LFD77Nt_SaTpbsxzN8eTEI3LryhEj4="),
    ],
    ids=["H1", "H2", "H3"],
)  # fmt: skip
def test_hmac_vectors(
    timestamp: int, method: str, path: str, body: str | None, expected: str
) -> None:
    assert hmac_signature(HMAC_SECRET, timestamp, method, path, body) == expected
    # Bytes bodies are signed the same, and the library agrees.
    if body is not None:
        assert hmac_signature(HMAC_SECRET, timestamp, method, path, body.encode()) == expected
    lib = build_hmac_signature(HMAC_SECRET.reveal(), str(timestamp), method, path, body)
    assert lib == expected


def test_hmac_empty_body_is_omitted_and_query_string_is_not_signed() -> None:
    h3 = "eHaylCwqRSOa2LFD77Nt_SaTpbsxzN8eTEI3LryhEj4="  # section 1, H3
    assert hmac_signature(HMAC_SECRET, 1, "GET", "/", "") == h3
    assert hmac_signature(HMAC_SECRET, 1, "GET", "/", b"") == h3
    # rs-clob-client request_args_should_succeed: POST /path {"foo":"bar"} at ts 1 signs the
    # message 1POST/path{"foo":"bar"}; the query string of the URL is not part of it.
    raw = base64.urlsafe_b64decode(HMAC_SECRET.reveal())
    message = b'1POST/path{"foo":"bar"}'
    expected = base64.urlsafe_b64encode(std_hmac.new(raw, message, hashlib.sha256).digest())
    got = hmac_signature(HMAC_SECRET, 1, "POST", "/path?next_cursor=MA==", '{"foo":"bar"}')
    assert got == expected.decode()


def test_hmac_matches_checks_the_raw_body() -> None:
    sig = "ZwAdJKvoYRlEKDkNMwd5BuwNNtg93kNaR_oU2HrfVvc="  # section 1, H1
    assert hmac_matches(HMAC_SECRET, 1000000, "test-sign", "/orders", b'{"hash": "0x123"}', sig)
    # The same JSON re-serialised compactly is not what was signed.
    assert not hmac_matches(HMAC_SECRET, 1000000, "test-sign", "/orders", b'{"hash":"0x123"}', sig)
    assert not hmac_matches(HMAC_SECRET, 1000001, "test-sign", "/orders", b'{"hash": "0x123"}', sig)


def test_l2_header_set_h3() -> None:
    # Section 1 notes: rs-clob-client's L2 header test used the nil UUID and 64 x "a".
    creds = ApiCreds(
        api_key=Secret("00000000-0000-0000-0000-000000000000"),
        secret=HMAC_SECRET,
        passphrase=Secret("a" * 64),
    )
    headers = l2_headers(ADDRESS, creds, timestamp=1, method="GET", path="/")
    assert dict(headers) == {
        POLY_ADDRESS: ADDRESS,
        POLY_SIGNATURE: "eHaylCwqRSOa2LFD77Nt_SaTpbsxzN8eTEI3LryhEj4=",  # H3
        POLY_TIMESTAMP: "1",
        POLY_API_KEY: "00000000-0000-0000-0000-000000000000",
        POLY_PASSPHRASE: "a" * 64,
    }


def test_bad_path_and_bad_secret_are_named_without_the_secret() -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        hmac_signature(HMAC_SECRET, 1, "GET", "https://clob.polymarket.com/order")
    bad = Secret("not-base64-secret-value-x")
    with pytest.raises(ValueError, match="API secret is not valid base64url") as info:
        hmac_signature(bad, 1, "GET", "/")
    assert "not-base64" not in str(info.value)
    assert info.value.__cause__ is None


def test_venue_timestamp_cancels_local_clock_skew() -> None:
    # Local clock 90 s fast: /time said 1_700_000_000 when the local clock read 1_700_000_090.
    offset = 1_700_000_000 - 1_700_000_090.25
    assert venue_timestamp(1_700_000_100.75, offset) == 1_700_000_010
    assert venue_timestamp(1_700_000_000.0, 0.0) == 1_700_000_000
    with pytest.raises(ValueError, match="finite"):
        venue_timestamp(float("nan"), 0.0)
    with pytest.raises(ValueError, match="negative"):
        venue_timestamp(5.0, -10.0)


# ---------------------------------------------------------------------------------------------
# Section 2: L1 ClobAuth


def test_clob_auth_vector_a1(amoy_signer: OrderSigner) -> None:
    # A1: chain 80002, timestamp "10000000", nonce 23.
    expected = (
        "0xf62319a987514da40e57e2f4d7529f7bac38f0355bd88bb5adbb3768d80de6c1682518e0af677d52"
        "60366425f4361e7b70c25ae232aff0ab2331e2b164a1aedc1b"
    )
    assert amoy_signer.address == ADDRESS
    assert amoy_signer.clob_auth_signature(10000000, 23) == expected
    headers = amoy_signer.l1_headers(10000000, 23)
    assert dict(headers) == {
        POLY_ADDRESS: ADDRESS,
        POLY_SIGNATURE: expected,
        POLY_TIMESTAMP: "10000000",
        POLY_NONCE: "23",
    }
    # The library's own header builder gives the same set.
    lib_headers = create_level_1_headers(
        LibSigner(PRIVATE_KEY, 80002), nonce=23, timestamp=10000000
    )
    assert lib_headers == dict(headers)


def test_clob_auth_derived_constants() -> None:
    # Section 2, "Derived constants".
    assert "0x" + ClobAuth.type_hash().hex() == (
        "0x52578c5c725a28a84fedc8c22aa47947822942f35b4dc350db028e45320e035c"
    )
    assert (
        keccak(text="ClobAuth(address address,string timestamp,uint256 nonce,string message)")
        == ClobAuth.type_hash()
    )
    assert "0x" + get_clob_auth_domain(137).hash_struct().hex() == (
        "0xcfc66be2a3b30464cb3b588324101f660c9a205fa76e8e5f83ee16a528e1c4cb"
    )
    assert "0x" + get_clob_auth_domain(80002).hash_struct().hex() == (
        "0xa1df8f4e3112eaee2448fbec9ab79f68278407e49d9cf52e3dd3d9692fcac9b6"
    )


def test_clob_auth_signature_depends_on_chain_and_nonce(
    signer: OrderSigner, amoy_signer: OrderSigner
) -> None:
    a1 = amoy_signer.clob_auth_signature(10000000, 23)
    assert signer.clob_auth_signature(10000000, 23) != a1
    assert amoy_signer.clob_auth_signature(10000000, 24) != a1


# ---------------------------------------------------------------------------------------------
# Section 4: V2 orders (chain 137, maker = signer = the test address, metadata zero)

V2_VECTORS = [
    # id, neg_risk, salt, side, sigType, makerAmount, takerAmount, timestamp ms, builder,
    # order hash, signature
    ("V2-1", False, 123456789, Side.BUY, SignatureType.EOA, 100000000, 50000000,
     1713398400000, BYTES32_ZERO,
     "0x32961c48ddac87ed3582f8e02097cd0eff4fcf80460306bd44b3710438dfa64c",
     "0x89f178136333c8ebb32a19146cb891233e3202d474be6ef730c24dbc06ae4d2a0c99948a86d9b57de0"
     "f2c0bb8ec6964aa244ecf17cfa3a95b86878d0b64ad78a1b"),
    ("V2-2", True, 987654321, Side.SELL, SignatureType.EOA, 50000000, 100000000,
     1713398400000, BYTES32_ZERO,
     "0x8b878404bd92dea2bfea9975c9fcd816ec70a57ae431cb20d67bb773744aaef3",
     "0xf7d60d64364e2615b08d9f69f3ea9afd3b4f83ecfbf05ddd3ca83f4916277fb97d2d080758d17c8e91"
     "c928aceb8ff252477ebaec051b672832500f63b4d36b061c"),
    ("V2-3", False, 1, Side.BUY, SignatureType.EOA, 100000000, 50000000,
     1713398500000, "0x" + "00" * 31 + "01",
     "0x3df0b6f6ddfca837bc36964cae968b34ad35640b5d98f557c104da97e804e36a",
     "0xf4d2b34659e8bc07a9572d40ee5a1639a1157409613b4c21566b1f33fd8fe11a364b3f306668cae724"
     "8ca7cdf72378f9266bc5628585aa939644400030671e081c"),
    ("V2-4", False, 111111111, Side.BUY, SignatureType.POLY_PROXY, 100000000, 50000000,
     1713398400000, BYTES32_ZERO,
     "0x8f88fe2fb3448f4b8ba639992029f0a47a01a14d15b5f2bf9833516571efd279",
     "0x71a63c85b730cc934688f23ea6374afffef57a61690eba63dcb97a706c8a8d0f3d2a8e0280f3e252eb"
     "83be088ebae6b461a8eda18e559e079f59050b90057afa1c"),
    ("V2-5", True, 222222222, Side.SELL, SignatureType.POLY_GNOSIS_SAFE, 50000000, 100000000,
     1713398400000, BYTES32_ZERO,
     "0xb34248702810a1d76580234a33f942a9801c3680de54cb3ef104572a8d482190",
     "0xab9d33aee8b578fe5588c4a4b16bbef6fa05fc757020f95b98212e877a919e360a90296f02e97ecbab"
     "f3c200271ffe88eb9fd86912e8376cd27237bdad5f3abc1c"),
]  # fmt: skip


def _v2_order(
    neg_risk: bool,
    salt: int,
    side: Side,
    sig_type: SignatureType,
    maker_amount: int,
    taker_amount: int,
    ts: int,
    builder: str,
) -> UnsignedOrder:
    # In V2-4/V2-5 the maker equals the EOA "only for the test": pass it as the funder.
    return build_order(
        token_id=str(TOKEN_V2),
        side=side,
        maker_amount=maker_amount,
        taker_amount=taker_amount,
        signer_address=ADDRESS,
        signature_type=sig_type,
        funder=None if sig_type is SignatureType.EOA else ADDRESS,
        neg_risk=neg_risk,
        salt=salt,
        timestamp_ms=ts,
        builder=builder,
    )


@pytest.mark.parametrize(
    ("neg_risk", "salt", "side", "sig_type", "maker", "taker", "ts", "builder", "hash_", "sig"),
    [v[1:] for v in V2_VECTORS],
    ids=[v[0] for v in V2_VECTORS],
)
def test_v2_order_vectors(
    signer: OrderSigner,
    neg_risk: bool,
    salt: int,
    side: Side,
    sig_type: SignatureType,
    maker: int,
    taker: int,
    ts: int,
    builder: str,
    hash_: str,
    sig: str,
) -> None:
    order = _v2_order(neg_risk, salt, side, sig_type, maker, taker, ts, builder)
    assert order.exchange == (NEG_RISK_CTF_EXCHANGE_V2 if neg_risk else CTF_EXCHANGE_V2)
    signed = signer.sign(order)
    assert signed.order_id == hash_
    assert signed.signature == sig
    body = signed.to_json()
    assert recover_order_signer(body, exchange=order.exchange) == ADDRESS
    assert order_hash(body, exchange=order.exchange) == hash_


def test_v2_typehash_and_domain_separators() -> None:
    # Section 4: the struct typehash and the two chain-137 domain separators.
    type_string = (
        "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
        "uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,"
        "bytes32 builder)"
    )
    assert keccak(text=type_string).hex() == (
        "bb86318a2138f5fa8ae32fbe8e659f8fcf13cc6ae4014a707893055433818589"
    )
    seps = {
        ex: ExchangeOrderBuilderV2(ex, CHAIN_ID_POLYGON, None).app_domain_separator.hex()
        for ex in (CTF_EXCHANGE_V2, NEG_RISK_CTF_EXCHANGE_V2)
    }
    assert seps == {
        CTF_EXCHANGE_V2: "3264e159346253e26a64e00b69032db0e7d32f94628de3e6eecb50304d7af3d2",
        NEG_RISK_CTF_EXCHANGE_V2: (
            "9b858f53327b0bd13af8ec14cfb35234fb9eb7b0504d1a4e61f433840d30e81a"
        ),
    }
    # The domain separator is independently the EIP-712 hash of the domain.
    domain_type = (
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    manual = keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(text=domain_type),
                keccak(text="Polymarket CTF Exchange"),
                keccak(text="2"),
                137,
                CTF_EXCHANGE_V2,
            ],
        )
    )
    assert manual.hex() == seps[CTF_EXCHANGE_V2]


def test_neg_risk_orders_use_the_neg_risk_exchange(signer: OrderSigner) -> None:
    plain = _v2_order(False, 5, Side.BUY, SignatureType.EOA, 100000000, 50000000, 1, BYTES32_ZERO)
    neg = _v2_order(True, 5, Side.BUY, SignatureType.EOA, 100000000, 50000000, 1, BYTES32_ZERO)
    assert exchange_for(True) == NEG_RISK_CTF_EXCHANGE_V2 == neg.exchange
    assert exchange_for(False) == CTF_EXCHANGE_V2 == plain.exchange
    signed = signer.sign(neg)
    # Verified against the neg-risk exchange it recovers to us; against the plain exchange (the
    # classic "invalid signature on neg-risk markets" bug) it does not.
    assert recover_order_signer(signed.to_json(), exchange=NEG_RISK_CTF_EXCHANGE_V2) == ADDRESS
    assert recover_order_signer(signed.to_json(), exchange=CTF_EXCHANGE_V2) != ADDRESS
    assert signer.sign(plain).order_id != signed.order_id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("makerAmount", "100000001"),
        ("takerAmount", "49999999"),
        ("tokenId", "1234"),
        ("side", "SELL"),
        ("salt", 123456790),
        ("timestamp", "1713398400001"),
        ("maker", "0x2222222222222222222222222222222222222222"),
    ],
)
def test_tampered_order_does_not_recover_to_the_signer(
    signer: OrderSigner, field: str, value: object
) -> None:
    order = _v2_order(False, *V2_VECTORS[0][2:9])
    body = signer.sign(order).to_json()
    assert recover_order_signer(body, exchange=CTF_EXCHANGE_V2) == ADDRESS
    tampered = {**body, field: value}
    assert recover_order_signer(tampered, exchange=CTF_EXCHANGE_V2) != ADDRESS


def test_expiration_is_sent_but_not_signed(signer: OrderSigner) -> None:
    # Section 4: "expiration is sent in the JSON body but is not signed".
    body = signer.sign(_v2_order(False, *V2_VECTORS[0][2:9])).to_json()
    assert body["expiration"] == "0"
    moved = {**body, "expiration": "1713400000"}
    assert recover_order_signer(moved, exchange=CTF_EXCHANGE_V2) == ADDRESS


def test_malformed_signatures_and_orders_are_rejected_by_name(signer: OrderSigner) -> None:
    body = signer.sign(_v2_order(False, *V2_VECTORS[0][2:9])).to_json()
    with pytest.raises(InvalidOrderSignature, match="65 bytes"):
        recover_order_signer({**body, "signature": "0x1234"}, exchange=CTF_EXCHANGE_V2)
    with pytest.raises(InvalidOrderSignature, match="not hex"):
        recover_order_signer({**body, "signature": "0xzz"}, exchange=CTF_EXCHANGE_V2)
    with pytest.raises(InvalidOrderSignature, match="'salt'"):
        recover_order_signer(
            {k: v for k, v in body.items() if k != "salt"}, exchange=CTF_EXCHANGE_V2
        )
    bad_v = str(body["signature"])[:-2] + "05"
    with pytest.raises(InvalidOrderSignature, match="recovery id"):
        recover_order_signer({**body, "signature": bad_v}, exchange=CTF_EXCHANGE_V2)
    with pytest.raises(InvalidOrderSignature, match="malformed order field"):
        recover_order_signer({**body, "metadata": "0xnothex"}, exchange=CTF_EXCHANGE_V2)
    with pytest.raises(InvalidOrderSignature, match="malformed order field"):
        order_hash({**body, "salt": -1}, exchange=CTF_EXCHANGE_V2)
    # A whole POST body, as bytes, is accepted too.
    raw = json.dumps({"order": body, "owner": "x", "orderType": "GTC"}).encode()
    assert recover_order_signer(raw, exchange=CTF_EXCHANGE_V2) == ADDRESS


# ---------------------------------------------------------------------------------------------
# Section 4b: POLY_1271 (deposit wallet, ERC-7739 wrapped)

POLY_1271_VECTORS = [
    # id, chain, neg_risk, salt, tokenId, ts, order hash (None: not asserted), signature
    ("P1", CHAIN_ID_AMOY, False, 479249096354, 1234, 1710000000000, None,
     "0xa3a093c83b6c20c83355c16ce94c92e6e9fcbdeb840618cc74f6c57a42ad145b2b98db73d2c73cbf1f"
     "2b6af288566ae81960ddbc3a13921027358a8bff3be6ff1ca440cbd865bc0c6243d7a8df9a8bf48a8827"
     "b0a4abbb61c30e96d305423af148d23d42d3ad94e65d78258cecaf8dcbaddac0f73dc085040f2c12bb59"
     "5dd838044f726465722875696e743235362073616c742c61646472657373206d616b65722c6164647265"
     "7373207369676e65722c75696e7432353620746f6b656e49642c75696e74323536206d616b6572416d6f"
     "756e742c75696e743235362074616b6572416d6f756e742c75696e743820736964652c75696e74382073"
     "69676e6174757265547970652c75696e743235362074696d657374616d702c62797465733332206d6574"
     "61646174612c62797465733332206275696c6465722900ba"),
    ("P2", CHAIN_ID_POLYGON, False, 333333333, TOKEN_V2, 1713398400000,
     "0x48cfd4c03dcee72230750e2dc5ea71048e91244c2a9fec2ed6ef790a74869596",
     "0x780beffb568c4510b8a135a92ca8071f124cf368fb0e902fe451c5f51e5557910a2a87968caa08a242"
     "de85e83c27375fc09242e897aa77680f56622a54e6e7c61c3264e159346253e26a64e00b69032db0e7d3"
     "2f94628de3e6eecb50304d7af3d2d3db4f9eed41f0490532a9460395d96602c6534a931bde4f0e3aad57"
     "1e4f84a04f726465722875696e743235362073616c742c61646472657373206d616b65722c6164647265"
     "7373207369676e65722c75696e7432353620746f6b656e49642c75696e74323536206d616b6572416d6f"
     "756e742c75696e743235362074616b6572416d6f756e742c75696e743820736964652c75696e74382073"
     "69676e6174757265547970652c75696e743235362074696d657374616d702c62797465733332206d6574"
     "61646174612c62797465733332206275696c6465722900ba"),
    ("P3", CHAIN_ID_POLYGON, True, 333333333, TOKEN_V2, 1713398400000,
     "0x82b94b9d570fdd7b07f517ea848606a9b74029f2387fbf07d8b9c856d652e608",
     "0xa411986b67c58113f8787ee54c41def9376d57ef4262b56438438710720604b700137e0175d7ae6afc"
     "40c2988179ad84b1b71a739f0974c8df3c12372f31b22c1c9b858f53327b0bd13af8ec14cfb35234fb9e"
     "b7b0504d1a4e61f433840d30e81ad3db4f9eed41f0490532a9460395d96602c6534a931bde4f0e3aad57"
     "1e4f84a04f726465722875696e743235362073616c742c61646472657373206d616b65722c6164647265"
     "7373207369676e65722c75696e7432353620746f6b656e49642c75696e74323536206d616b6572416d6f"
     "756e742c75696e743235362074616b6572416d6f756e742c75696e743820736964652c75696e74382073"
     "69676e6174757265547970652c75696e743235362074696d657374616d702c62797465733332206d6574"
     "61646174612c62797465733332206275696c6465722900ba"),
]  # fmt: skip


def _poly_1271_order(chain: int, neg_risk: bool, salt: int, token: int, ts: int) -> UnsignedOrder:
    return build_order(
        token_id=token,
        side=Side.BUY,
        maker_amount=100000000,
        taker_amount=50000000,
        signer_address=ADDRESS,
        signature_type=SignatureType.POLY_1271,
        funder=WALLET,
        neg_risk=neg_risk,
        salt=salt,
        timestamp_ms=ts,
        chain_id=chain,
    )


@pytest.mark.parametrize(
    ("chain", "neg_risk", "salt", "token", "ts", "hash_", "sig"),
    [v[1:] for v in POLY_1271_VECTORS],
    ids=[v[0] for v in POLY_1271_VECTORS],
)
def test_poly_1271_vectors(
    chain: int,
    neg_risk: bool,
    salt: int,
    token: int,
    ts: int,
    hash_: str | None,
    sig: str,
) -> None:
    order = _poly_1271_order(chain, neg_risk, salt, token, ts)
    assert order.maker == order.signer == WALLET  # deposit wallet: maker = signer = wallet
    signed = OrderSigner(KEY, chain_id=chain).sign(order)
    assert signed.signature == sig
    # 65 + 32 + 32 + 186 (type string) + 2 = 317 bytes; VECTORS.md's prose says 318, but its
    # own literals (and the library) are 634 hex digits.
    assert len(signed.signature) == 2 + 2 * 317
    if hash_ is not None:
        assert signed.order_id == hash_
    # The wrapper recovers to the owner EOA that signed it.
    assert recover_order_signer(signed.to_json(), exchange=order.exchange, chain_id=chain) == (
        ADDRESS
    )


def test_poly_1271_tampering_is_detected(signer: OrderSigner) -> None:
    order = _poly_1271_order(CHAIN_ID_POLYGON, False, 333333333, TOKEN_V2, 1713398400000)
    body = signer.sign(order).to_json()
    with pytest.raises(InvalidOrderSignature, match="different order"):
        recover_order_signer({**body, "makerAmount": "100000001"}, exchange=CTF_EXCHANGE_V2)
    with pytest.raises(InvalidOrderSignature, match="another exchange domain"):
        recover_order_signer(body, exchange=NEG_RISK_CTF_EXCHANGE_V2)
    with pytest.raises(InvalidOrderSignature, match="317 bytes"):
        recover_order_signer(
            {**body, "signature": str(body["signature"])[:-2]}, exchange=CTF_EXCHANGE_V2
        )
    # A forged inner ECDSA ``s`` (same ``r``, so still a curve point) recovers to someone else.
    sig = str(body["signature"])
    k = 2 + 64 + 10
    forged = sig[:k] + ("0" if sig[k] != "0" else "1") + sig[k + 1 :]
    assert recover_order_signer({**body, "signature": forged}, exchange=CTF_EXCHANGE_V2) != ADDRESS


# ---------------------------------------------------------------------------------------------
# Section 5: amounts


LIMIT_VECTORS = [
    # side, size, price, tick, makerAmount, takerAmount
    ("BUY", "15", "0.24", "0.01", 3600000, 15000000),
    ("SELL", "15", "0.24", "0.01", 15000000, 3600000),
    ("BUY", "101", "0.82", "0.01", 82820000, 101000000),
    ("SELL", "101", "0.82", "0.01", 101000000, 82820000),
    ("BUY", "12.8205", "0.78", "0.01", 9999600, 12820000),
    ("SELL", "12.8205", "0.78", "0.01", 12820000, 9999600),
    ("SELL", "2435.89", "0.39", "0.01", 2435890000, 949997100),
    ("SELL", "19.1", "0.43", "0.01", 19100000, 8213000),
    ("BUY", "18233.33", "0.58", "0.01", 10575331400, 18233330000),
    ("BUY", "21.04", "0.5", "0.1", 10520000, 21040000),
    ("BUY", "21.04", "0.56", "0.01", 11782400, 21040000),
    ("BUY", "21.04", "0.056", "0.001", 1178240, 21040000),
    ("BUY", "21.04", "0.0056", "0.0001", 117824, 21040000),
    ("SELL", "21.04", "0.5", "0.1", 21040000, 10520000),
    ("SELL", "21.04", "0.56", "0.01", 21040000, 11782400),
    ("SELL", "21.04", "0.056", "0.001", 21040000, 1178240),
    ("SELL", "21.04", "0.0056", "0.0001", 21040000, 117824),
]

MARKET_VECTORS = [
    # side, amount (USDC for BUY, shares for SELL), price, tick, makerAmount, takerAmount
    ("BUY", "100", "0.5", "0.1", 100000000, 200000000),
    ("BUY", "100", "0.56", "0.01", 100000000, 178571400),
    ("BUY", "100", "0.056", "0.001", 100000000, 1785714280),
    ("BUY", "100", "0.0056", "0.0001", 100000000, 17857142857),
    ("SELL", "100", "0.5", "0.1", 100000000, 50000000),
    ("SELL", "100", "0.56", "0.01", 100000000, 56000000),
    ("SELL", "100", "0.056", "0.001", 100000000, 5600000),
    ("SELL", "100", "0.0056", "0.0001", 100000000, 560000),
]


@pytest.mark.parametrize(("side", "size", "price", "tick", "maker", "taker"), LIMIT_VECTORS)
def test_limit_amount_vectors(
    signer: OrderSigner, side: str, size: str, price: str, tick: str, maker: int, taker: int
) -> None:
    amounts = limit_order_amounts(
        Side.parse(side), parse_units(price), parse_units(size), TICKS[tick]
    )
    assert amounts == OrderAmounts(maker_amount=maker, taker_amount=taker)
    # "Identical results with neg_risk=True (only the verifying contract changes)."
    for neg_risk in (False, True):
        order = build_order(
            token_id=123,
            side=Side.parse(side),
            maker_amount=amounts.maker_amount,
            taker_amount=amounts.taker_amount,
            signer_address=ADDRESS,
            signature_type=SignatureType.EOA,
            funder=None,
            neg_risk=neg_risk,
            salt=1,
            timestamp_ms=1713398400000,
        )
        body = signer.sign(order).to_json()
        assert (body["makerAmount"], body["takerAmount"]) == (str(maker), str(taker))
        assert order.exchange == exchange_for(neg_risk)


@pytest.mark.parametrize(("side", "amount", "price", "tick", "maker", "taker"), MARKET_VECTORS)
def test_market_amount_vectors(
    side: str, amount: str, price: str, tick: str, maker: int, taker: int
) -> None:
    amounts = market_order_amounts(
        Side.parse(side), parse_units(price), parse_units(amount), TICKS[tick]
    )
    assert amounts == OrderAmounts(maker_amount=maker, taker_amount=taker)


def test_buy_100_at_half_tick_tenth_fixed_outputs(signer: OrderSigner) -> None:
    # Section 5 "Other fixed outputs" (V1 JSON): BUY 100 @ 0.5 tick 0.1 -> makerAmount
    # "50000000", takerAmount "100000000", side "BUY", signatureType 0, expiration "0". V2 has no
    # nonce or feeRateBps fields, so those two V1 outputs do not apply.
    amounts = limit_order_amounts(Side.BUY, 500_000, 100_000_000, 100_000)
    order = build_order(
        token_id=123,
        side=Side.BUY,
        maker_amount=amounts.maker_amount,
        taker_amount=amounts.taker_amount,
        signer_address=ADDRESS,
        signature_type=SignatureType.EOA,
        funder=None,
        neg_risk=False,
        salt=1,
        timestamp_ms=1,
    )
    body = signer.sign(order).to_json()
    assert body["makerAmount"] == "50000000"
    assert body["takerAmount"] == "100000000"
    assert body["side"] == "BUY"
    assert body["signatureType"] == 0
    assert body["expiration"] == "0"
    assert "nonce" not in body
    assert "feeRateBps" not in body


def _levels(*pairs: tuple[str, str]) -> list[tuple[int, int]]:
    """Levels as the API lists them (best last), turned best-first as ``BookView`` gives them."""
    return [(parse_units(p), parse_units(s)) for p, s in reversed(pairs)]


def test_market_price_walk_vectors() -> None:
    # Section 5 "Market-price walk" (book levels listed best last, as the API returns them).
    asks = _levels(("0.5", "100"), ("0.4", "100"), ("0.3", "100"))
    assert market_order_price(Side.BUY, asks, parse_units("100"), OrderType.FOK) == 500_000
    asks = _levels(("0.5", "100"), ("0.4", "200"), ("0.3", "100"))
    assert market_order_price(Side.BUY, asks, parse_units("100"), OrderType.FOK) == 400_000
    asks = _levels(("0.5", "100"), ("0.4", "100"))
    with pytest.raises(ValueError, match="no match"):
        market_order_price(Side.BUY, asks, parse_units("100"), OrderType.FOK)
    assert market_order_price(Side.BUY, asks, parse_units("100"), OrderType.FAK) == 500_000
    bids = _levels(("0.3", "100"), ("0.4", "300"), ("0.5", "10"))
    assert market_order_price(Side.SELL, bids, parse_units("100"), OrderType.FOK) == 400_000
    bids = _levels(("0.3", "334"), ("0.4", "100"), ("0.5", "100"))
    assert market_order_price(Side.SELL, bids, parse_units("300"), OrderType.FOK) == 300_000
    with pytest.raises(ValueError, match="no match"):
        market_order_price(Side.SELL, [], parse_units("1"), OrderType.FAK)
    with pytest.raises(ValueError, match="FOK or FAK"):
        market_order_price(Side.SELL, bids, parse_units("1"), OrderType.GTC)


def test_limit_amounts_agree_with_the_sdk_on_a_grid() -> None:
    # Our amounts are exact integers; the SDK's are floats repaired by rounding. On limit orders
    # they agree everywhere (the notional of a 2-decimal size at an on-tick price always fits).
    import random

    sdk = OrderBuilder(None)
    rng = random.Random(6)
    tick_names = {100_000: "0.1", 10_000: "0.01", 1_000: "0.001", 100: "0.0001",
                  5_000: "0.005", 2_500: "0.0025"}  # fmt: skip
    for tick, name in tick_names.items():
        for _ in range(150):
            price = rng.randrange(1, 1_000_000 // tick) * tick
            size = rng.randrange(10_000, 50_000_000_000)
            for side in (Side.BUY, Side.SELL):
                ours = limit_order_amounts(side, price, size, tick)
                _, maker, taker = sdk.get_order_amounts(
                    side.name, float(format_units(size)), float(format_units(price)),
                    ROUNDING_CONFIG[name],
                )  # fmt: skip
                assert (ours.maker_amount, ours.taker_amount) == (maker, taker), (
                    side, size, price, tick,
                )  # fmt: skip


def test_market_amounts_are_exact_where_the_sdk_floats_drift() -> None:
    # The V2 SDK rounds a market price *down* in float: 0.58 becomes 0.57, so it would sign one
    # tick worse than asked. We keep the exact price; this is why amounts are not taken from it.
    assert round_down(0.58, 2) == 0.57
    ours = market_order_amounts(Side.SELL, 580_000, 100_000_000, 10_000)
    assert ours == OrderAmounts(maker_amount=100_000_000, taker_amount=58_000_000)
    # 2247.62 / 0.0041 is exactly 548200 shares; the SDK's float gives 548199.999999.
    ours = market_order_amounts(Side.BUY, 4_100, 2_247_627_898, 100)
    assert ours == OrderAmounts(maker_amount=2_247_620_000, taker_amount=548_200_000_000)


@pytest.mark.parametrize(
    ("side", "price", "size", "tick", "maker", "taker"),
    [
        # 10.37 x 0.53 = 5.4961: a limit amount (4 decimals) the venue refuses on a FOK BUY;
        # the maker rounds up to 5.50, the shares stay exact.
        (Side.BUY, 530_000, 10_370_000, 10_000, 5_500_000, 10_370_000),
        (Side.BUY, 500_000, 10_000_000, 10_000, 5_000_000, 10_000_000),  # already 2 decimals
        # tick 0.001: 10.37 x 0.537 = 5.56869 -> SELL takes at least 5.5686 (4 decimals).
        (Side.SELL, 537_000, 10_370_000, 1_000, 10_370_000, 5_568_600),
        (Side.BUY, 537_000, 10_370_000, 1_000, 5_570_000, 10_370_000),
        (Side.SELL, 4_100, 548_209_999, 100, 548_200_000, 2_247_600),  # 2.24762 -> 2.2476
    ],
)
def test_marketable_amounts_fit_the_market_order_precision(
    side: Side, price: int, size: int, tick: int, maker: int, taker: int
) -> None:
    amounts = marketable_limit_amounts(side, price, size, tick)
    assert amounts == OrderAmounts(maker_amount=maker, taker_amount=taker)
    assert amounts.maker_amount % 10_000 == 0  # 2 decimals
    assert amounts.taker_amount % 100 == 0  # 4 decimals
    # The implied price never asks for less than the limit (BUY) / more (SELL) by a tick.
    implied = Fraction(amounts.maker_amount, amounts.taker_amount) * ONE
    if side is Side.BUY:
        assert price <= implied < price + tick
    else:
        implied = Fraction(amounts.taker_amount, amounts.maker_amount) * ONE
        assert price - tick < implied <= price


@pytest.mark.parametrize(
    ("price", "size", "tick", "message"),
    [
        (525_000, 10_000_000, 10_000, "not on the tick grid 0.01"),
        (0, 10_000_000, 10_000, "outside"),
        (1_000_000, 10_000_000, 10_000, "outside"),
        (500_000, 9_999, 10_000, "below 0.01"),
        (500_000, 10_000_000, 7_000, "unsupported tick size 0.007"),
    ],
)
def test_bad_amount_inputs_are_named(price: int, size: int, tick: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        limit_order_amounts(Side.BUY, price, size, tick)


# ---------------------------------------------------------------------------------------------
# Order construction, body, signer roles


def _order_as(signature_type: SignatureType, funder: str | None, salt: int = 1) -> UnsignedOrder:
    return build_order(
        token_id=5, side=Side.BUY, maker_amount=1, taker_amount=2, signer_address=ADDRESS,
        signature_type=signature_type, funder=funder, neg_risk=False, salt=salt, timestamp_ms=1,
    )  # fmt: skip


def test_signature_type_roles() -> None:
    # PROTOCOL.md 6.2: who is maker and who is signer for each signature type.
    proxy = "0x3333333333333333333333333333333333333333"
    eoa = _order_as(SignatureType.EOA, None)
    assert (eoa.maker, eoa.signer) == (ADDRESS, ADDRESS)
    for st in (SignatureType.POLY_PROXY, SignatureType.POLY_GNOSIS_SAFE):
        o = _order_as(st, proxy)
        assert (o.maker, o.signer) == (proxy, ADDRESS)
        with pytest.raises(ValueError, match=f"{st.name} needs the funder"):
            _order_as(st, None)
    dw = _order_as(SignatureType.POLY_1271, proxy)
    assert (dw.maker, dw.signer) == (proxy, proxy)
    with pytest.raises(ValueError, match="EOA order is funded by the signing key"):
        _order_as(SignatureType.EOA, proxy)
    with pytest.raises(ValueError, match="funder must be an address"):
        _order_as(SignatureType.POLY_PROXY, "0x12")
    with pytest.raises(ValueError, match="salt"):
        _order_as(SignatureType.EOA, None, salt=2**53)


def test_signer_refuses_an_order_for_another_key_or_chain(
    signer: OrderSigner, amoy_signer: OrderSigner
) -> None:
    order = build_order(
        token_id=5, side=Side.BUY, maker_amount=1, taker_amount=2,
        signer_address="0x2222222222222222222222222222222222222222",
        signature_type=SignatureType.EOA, funder=None, neg_risk=False, salt=1, timestamp_ms=1,
    )  # fmt: skip
    with pytest.raises(ValueError, match="is not this key's address"):
        signer.sign(order)
    mine = _v2_order(False, *V2_VECTORS[0][2:9])
    with pytest.raises(ValueError, match="order is for chain 137, this signer for chain 80002"):
        amoy_signer.sign(mine)


def test_order_post_body_matches_the_sdk(signer: OrderSigner) -> None:
    signed = signer.sign(_v2_order(False, *V2_VECTORS[0][2:9]))
    owner = Secret("11111111-2222-3333-4444-555555555555")
    post = order_post(signed, owner, OrderType.GTC, post_only=True)
    assert post.order_id == signed.order_id
    payload = json.loads(post.body)
    # The same object the V2 SDK posts, built from the same signed order.
    lib_signed = SignedOrderV2(
        salt="123456789", maker=ADDRESS, signer=ADDRESS, tokenId=str(TOKEN_V2),
        makerAmount="100000000", takerAmount="50000000", side=LibSide.BUY,
        signatureType=SignatureTypeV2.EOA, timestamp="1713398400000", metadata=BYTES32_ZERO,
        builder=BYTES32_ZERO, expiration="0", signature=signed.signature,
    )  # fmt: skip
    assert payload == order_to_json_v2(lib_signed, owner.reveal(), "GTC", post_only=True)
    # Compact, byte-exact JSON: this is what the HMAC signs.
    assert b" " not in post.body
    assert payload["order"]["salt"] == 123456789
    assert batch_body([post, post]) == b"[" + post.body + b"," + post.body + b"]"
    with pytest.raises(ValueError, match="1 to 15"):
        batch_body([post] * 16)
    with pytest.raises(ValueError, match="postOnly is only valid for GTC/GTD"):
        order_post(signed, owner, OrderType.FOK, post_only=True)
    with pytest.raises(ValueError, match="GTD orders need an expiration"):
        order_post(signed, owner, OrderType.GTD)


# ---------------------------------------------------------------------------------------------
# Secrets


def test_secrets_never_appear_in_reprs_strs_or_pickles(signer: OrderSigner) -> None:
    api_key = "11111111-2222-3333-4444-555555555555"
    passphrase = "p" * 64
    creds = ApiCreds(api_key=Secret(api_key), secret=HMAC_SECRET, passphrase=Secret(passphrase))
    l2 = l2_headers(ADDRESS, creds, timestamp=1, method="GET", path="/")
    l1 = signer.l1_headers(10000000, 23)
    signed = signer.sign(_v2_order(False, *V2_VECTORS[0][2:9]))
    post = order_post(signed, Secret(api_key), OrderType.GTC)
    hidden = [
        PRIVATE_KEY, PRIVATE_KEY[2:], api_key, passphrase, HMAC_SECRET.reveal(),
        l2[POLY_SIGNATURE], l1[POLY_SIGNATURE],
    ]  # fmt: skip
    for obj in (creds, l2, l1, signer, post, signed):
        for text in (repr(obj), str(obj), f"{obj}"):
            for secret in hidden:
                assert secret not in text, (type(obj).__name__, text)
    assert ADDRESS in repr(signer)  # the public address is shown, so reprs stay useful
    assert "<redacted>" in repr(l2)
    assert isinstance(l2, AuthHeaders)
    # The values are still there for the wire.
    assert l2[POLY_API_KEY] == api_key
    assert api_key.encode() in post.body
    for obj in (l2, signer):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(obj)


def test_a_bad_private_key_error_does_not_quote_it() -> None:
    bad = "0x" + "f" * 64  # above the curve order: not a valid key
    with pytest.raises(ValueError, match="not a valid secp256k1 key") as info:
        OrderSigner(Secret(bad))
    assert "f" * 64 not in str(info.value)
    assert info.value.__cause__ is None


# ---------------------------------------------------------------------------------------------
# Cost of one signature (PROTOCOL 6.7 notes ~1 s reported elsewhere)


def test_signing_cost_is_milliseconds_not_seconds(signer: OrderSigner) -> None:
    n = 20
    start = time.perf_counter()
    for i in range(n):
        signer.sign(
            _v2_order(False, new_salt(), Side.BUY, SignatureType.EOA, 1_000_000, 2_000_000,
                      1713398400000 + i, BYTES32_ZERO)
        )  # fmt: skip
    per_order = (time.perf_counter() - start) / n
    # Measured ~9 ms on the shared 2-core machine; a generous bound keeps this from flaking.
    assert per_order < 0.25, f"one signature took {per_order * 1000:.0f} ms"


def test_new_salt_fits_a_json_number() -> None:
    salts = {new_salt() for _ in range(100)}
    assert len(salts) > 90
    assert all(0 <= s < 2**53 for s in salts)


def test_signed_order_type() -> None:
    # ``sign`` returns our value types, not the library's dataclasses.
    order = _v2_order(False, *V2_VECTORS[0][2:9])
    signed = OrderSigner(KEY).sign(order)
    assert isinstance(signed, SignedOrder)
    assert signed.order is order
