"""The socket seam: both implementations against the same scripted WebSocket servers.

Every test runs once per ``FeedConfig.transport`` (trio-websocket, and ``websockets`` sans-IO over
a trio stream). The servers are real loopback sockets, so the real clock is used
(TRIO_IDIOMS.md section 7) and every wait is bounded by ``fail_after``:

* ``scripted_server``: a tiny server on the ``websockets`` sans-IO *server* protocol, so a test can
  do what a venue may do and a plain server library would not let it: fragment a message, send a
  WebSocket ping and wait for the pong, send invalid UTF-8, close abruptly (EOF), refuse the
  handshake;
* the sim venue, for one end-to-end check of the market channel's own ``PING``/``PONG``.
"""

from __future__ import annotations

import contextlib
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import orjson
import pytest
import trio
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from bot.config import Transport as TransportKind
from bot.core.wire.market import decode_market_frame
from bot.core.wire.market_events import BookSnapshot
from bot.shell.transport import Connection, ConnectionLost, Transport, transport_for
from bot.sim.venue import open_sim_venue
from tests.sim.server_helpers import START_MS, small_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

WAIT: Final = 5.0
BUFFER: Final = 65_536
MAX_MESSAGE: Final = 1 << 20


@pytest.fixture(params=list(TransportKind), ids=lambda kind: kind.value)
def transport(request: pytest.FixtureRequest) -> Transport:
    kind: TransportKind = request.param
    return transport_for(kind, close_timeout_s=0.5)


# --- a scripted server -------------------------------------------------------------------------


class Peer:
    """The server's side of one connection, driven by a test script."""

    def __init__(self, stream: trio.SocketStream, protocol: ServerProtocol) -> None:
        self.stream = stream
        self.protocol = protocol
        self.frames: list[Frame] = []
        self.pongs = 0

    async def flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                await self.stream.send_all(chunk)

    async def _read(self) -> bool:
        data = await self.stream.receive_some(BUFFER)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.PONG:
                    self.pongs += 1
                else:
                    self.frames.append(event)
        await self.flush()
        return bool(data)

    async def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        await self.flush()

    async def send_raw_text(self, data: bytes, *, fin: bool = True) -> None:
        self.protocol.send_text(data, fin=fin)
        await self.flush()

    async def send_continuation(self, data: bytes, *, fin: bool) -> None:
        self.protocol.send_continuation(data, fin=fin)
        await self.flush()

    async def ping_and_wait_for_pong(self) -> None:
        before = self.pongs
        self.protocol.send_ping(b"are you there")
        await self.flush()
        with trio.fail_after(WAIT):
            while self.pongs == before:
                if not await self._read():
                    raise AssertionError("EOF before the pong")

    async def receive_text(self) -> str:
        with trio.fail_after(WAIT):
            while True:
                for index, frame in enumerate(self.frames):
                    if frame.opcode is Opcode.TEXT:
                        del self.frames[index]
                        return bytes(frame.data).decode()
                if not await self._read():
                    raise AssertionError("EOF before a text message")

    async def wait_close(self) -> int | None:
        """Read until the client's close frame; its code."""
        with trio.fail_after(WAIT):
            while self.protocol.close_rcvd is None:
                if not await self._read():
                    return None
        return int(self.protocol.close_rcvd.code)

    async def close(self, code: int, reason: str) -> None:
        self.protocol.send_close(code, reason)
        await self.flush()
        # RFC 6455 7.1.1: once the close handshake is done, the server closes TCP first.
        with trio.move_on_after(WAIT):
            while self.protocol.close_rcvd is None and await self._read():
                pass
        await self.stream.aclose()


@asynccontextmanager
async def scripted_server(
    script: Callable[[Peer], Awaitable[None]], *, reject: bool = False
) -> AsyncIterator[str]:
    """Serve one scripted WebSocket endpoint on 127.0.0.1; yields its ``ws://`` URL."""

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            protocol = ServerProtocol()
            request: Request | None = None
            while request is None:
                data = await stream.receive_some(BUFFER)
                if not data:
                    return
                protocol.receive_data(data)
                for event in protocol.events_received():
                    if isinstance(event, Request):
                        request = event
            if reject:
                protocol.send_response(protocol.reject(403, "go away\n"))
                for chunk in protocol.data_to_send():
                    if chunk:
                        await stream.send_all(chunk)
                return
            protocol.send_response(protocol.accept(request))
            peer = Peer(stream, protocol)
            await peer.flush()
            # The client may go away first: fine for these scripts.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await script(peer)

    async with trio.open_nursery() as nursery:
        listeners: list[trio.SocketListener] = await nursery.start(
            partial(trio.serve_tcp, handle, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws/market"
        nursery.cancel_scope.cancel()


async def receive_until_lost(conn: Connection) -> ConnectionLost:
    """Receive until the connection ends; the ``ConnectionLost``."""
    try:
        while True:
            await conn.receive()
    except ConnectionLost as lost:
        return lost


def connect(transport: Transport, url: str, **options: Any) -> Any:
    settings: dict[str, Any] = {"receive_buffer": BUFFER, "max_message": MAX_MESSAGE}
    settings.update(options)
    return transport.connect(url, **settings)


# --- tests -------------------------------------------------------------------------------------


async def test_text_messages_both_ways(transport: Transport) -> None:
    received: list[str] = []

    async def script(peer: Peer) -> None:
        received.append(await peer.receive_text())
        received.append(await peer.receive_text())
        await peer.send_text("hello")
        await peer.send_text("é ünïcode ✓")
        await peer.wait_close()

    async with scripted_server(script) as url, connect(transport, url) as conn:
        await conn.send("PING")
        await conn.send('{"assets_ids": ["1"], "type": "market"}')
        with trio.fail_after(WAIT):
            assert await conn.receive() == "hello"
            assert await conn.receive() == "é ünïcode ✓"
    assert received == ["PING", '{"assets_ids": ["1"], "type": "market"}']
    assert transport.name in {kind.value for kind in TransportKind}


async def test_receive_many_hands_over_a_burst_then_the_end(transport: Transport) -> None:
    sent = [f"message {i}" for i in range(200)]

    async def script(peer: Peer) -> None:
        for text in sent:
            peer.protocol.send_text(text.encode())
        await peer.flush()  # all of them in one write
        await peer.close(1001, "bye")

    async with scripted_server(script) as url, connect(transport, url) as conn:
        received: list[str] = []
        calls = 0
        with trio.fail_after(WAIT):
            lost = None
            while lost is None:
                try:
                    burst = await conn.receive_many()
                except ConnectionLost as exc:
                    lost = exc
                else:
                    assert burst
                    received.extend(burst)
                    calls += 1
        assert received == sent
        assert calls < len(sent)  # bursts, not one message per call
        assert lost.code == 1001


async def test_websocket_pings_are_answered_while_receiving(transport: Transport) -> None:
    async def script(peer: Peer) -> None:
        for _ in range(3):
            await peer.ping_and_wait_for_pong()
        await peer.send_text("done")
        await peer.wait_close()

    async with scripted_server(script) as url, connect(transport, url) as conn:
        with trio.fail_after(WAIT):
            assert await conn.receive() == "done"


async def test_a_fragmented_message_arrives_whole(transport: Transport) -> None:
    async def script(peer: Peer) -> None:
        await peer.send_raw_text(b'{"event_type": ', fin=False)
        await peer.send_continuation(b'"book", "x": "', fin=False)
        await peer.send_continuation('é"}'.encode(), fin=True)
        await peer.send_text("next")
        await peer.wait_close()

    async with scripted_server(script) as url, connect(transport, url) as conn:
        with trio.fail_after(WAIT):
            assert await conn.receive() == '{"event_type": "book", "x": "é"}'
            assert await conn.receive() == "next"


async def test_a_close_delivers_pending_messages_then_connection_lost(
    transport: Transport,
) -> None:
    async def script(peer: Peer) -> None:
        await peer.send_text("a")
        await peer.send_text("b")
        await peer.close(1001, "going away")

    async with scripted_server(script) as url, connect(transport, url) as conn:
        with trio.fail_after(WAIT):
            assert await conn.receive() == "a"
            assert await conn.receive() == "b"
            with pytest.raises(ConnectionLost) as lost:
                await conn.receive()
            assert lost.value.code == 1001
            with pytest.raises(ConnectionLost):
                await conn.receive()  # and again: the end is sticky
            with pytest.raises(ConnectionLost):
                await conn.send("PING")


async def test_eof_without_a_close_frame_is_connection_lost(transport: Transport) -> None:
    async def script(peer: Peer) -> None:
        await peer.send_text("last")
        await peer.stream.aclose()

    async with scripted_server(script) as url, connect(transport, url) as conn:
        with trio.fail_after(WAIT):
            assert await conn.receive() == "last"
            with pytest.raises(ConnectionLost):
                await conn.receive()


async def test_a_message_over_max_message_is_connection_lost(transport: Transport) -> None:
    async def script(peer: Peer) -> None:
        await peer.send_text("x" * 5_000)
        await peer.wait_close()

    async with scripted_server(script) as url, connect(transport, url, max_message=1_000) as conn:
        with trio.fail_after(WAIT), pytest.raises(ConnectionLost):
            await conn.receive()


async def test_invalid_utf8_in_a_text_message_is_connection_lost(transport: Transport) -> None:
    async def script(peer: Peer) -> None:
        await peer.send_raw_text(b"\xff\xfe not utf-8")
        # The sans-IO transport fails the connection with 1007 at once; trio-websocket (wsproto)
        # answers the failure but only reports it once the server closes the TCP stream.
        with trio.move_on_after(0.5):
            await peer.wait_close()

    async with scripted_server(script) as url, connect(transport, url) as conn:
        with trio.fail_after(WAIT), pytest.raises(ConnectionLost):
            await conn.receive()


async def test_leaving_the_block_closes_cleanly(transport: Transport) -> None:
    codes: list[int | None] = []
    done = trio.Event()

    async def script(peer: Peer) -> None:
        codes.append(await peer.wait_close())
        done.set()

    async with scripted_server(script) as url:
        async with connect(transport, url) as conn:
            await conn.send("bye")
        with trio.fail_after(WAIT):
            await done.wait()
    assert codes == [1000]


async def test_a_refused_handshake_is_connection_lost(transport: Transport) -> None:
    async def script(peer: Peer) -> None:
        raise AssertionError("never reached")

    async with scripted_server(script, reject=True) as url:
        with trio.fail_after(WAIT), pytest.raises(ConnectionLost, match="handshake"):
            async with connect(transport, url):
                pass


async def test_an_unreachable_venue_is_connection_lost(transport: Transport) -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()  # nothing listens there now
    with trio.fail_after(WAIT), pytest.raises(ConnectionLost):
        async with connect(transport, f"ws://127.0.0.1:{port}/ws/market"):
            pass


async def test_concurrent_sends_never_interleave(transport: Transport) -> None:
    received: list[str] = []
    payloads = [f"{i}:" + "y" * (20_000 + i) for i in range(10)]

    done = trio.Event()

    async def script(peer: Peer) -> None:
        for _ in payloads:
            received.append(await peer.receive_text())
        done.set()
        await peer.wait_close()

    async with scripted_server(script) as url, connect(transport, url) as conn:
        async with trio.open_nursery() as nursery:
            for payload in payloads:
                nursery.start_soon(conn.send, payload)
        with trio.fail_after(WAIT):
            await done.wait()
    assert sorted(received) == sorted(payloads)


async def test_the_sim_venue_market_channel(transport: Transport) -> None:
    async with open_sim_venue(small_config(), start_epoch_ms=START_MS, pump=False) as venue:
        tokens = venue.universe.token_ids()[:4]
        message = {"assets_ids": tokens, "type": "market", "initial_dump": True}
        async with connect(transport, venue.ws_market_url) as conn:
            await conn.send(orjson.dumps(message).decode())
            await conn.send("PING")
            frames: list[str] = []
            with trio.fail_after(WAIT):
                while (frame := await conn.receive()) != "PONG":
                    frames.append(frame)
            books = [event for frame in frames for event in decode_market_frame(frame)]
            assert sorted(b.asset_id for b in books if isinstance(b, BookSnapshot)) == sorted(
                tokens
            )
            venue.drop_all_connections()
            with trio.fail_after(WAIT):
                lost = await receive_until_lost(conn)
            assert lost.code == 1001
