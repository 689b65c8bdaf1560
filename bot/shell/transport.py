"""The socket seam of the market feed: one tiny WebSocket client interface, two implementations.

The feed (``bot.shell.feed``) needs four things from a WebSocket and nothing else::

    async with transport.connect(url, receive_buffer=65_536, max_message=2**24) as conn:
        await conn.send("PING")           # one text message
        text = await conn.receive()       # the next text message, whole
        ...                               # leaving the block closes the connection

Every way a connection can end (the venue closed it, the TCP stream hit EOF or an error, the
handshake was refused, a message was too big) surfaces as **one** domain exception,
``ConnectionLost``, whose message says what happened and whose ``__cause__`` is the library's own
error. The feed's reconnect loop therefore has a closed, short list of transient errors
(TRIO_IDIOMS.md section 2) and never needs to know which library is underneath.

Why two implementations (``FeedConfig.transport``)
--------------------------------------------------
* ``trio-websocket`` (``TrioWebsocketTransport``): the reference client the rest of the project
  and its tests use, built on wsproto. Its reader task puts every message into a bounded queue
  (``message_queue_size``); when the queue is full the reader **stops reading the socket**, so it
  also stops answering the venue's pings and closes (trio-websocket issue #82). The feed drains
  ``receive()`` continuously and never awaits a consumer, so the queue only absorbs bursts.
  Measured on loopback (one event per frame, the venue in another process): 18-24k frames/s
  here, 12-14k frames/s in earlier measurements.
* ``websockets`` (``WebsocketsTransport``): the ``websockets`` package's sans-IO
  ``ClientProtocol`` driven directly over ``trio.open_tcp_stream``: no reader task, no queue, no
  per-message channel hop. ``receive()`` reads a chunk of up to ``receive_buffer`` bytes, feeds it
  to the protocol and hands out the whole messages it produced one by one, so a busy socket costs
  one ``receive_some`` per chunk instead of one task switch per message. The protocol answers the
  venue's WebSocket pings and closes by itself (it queues the bytes; we flush them right after
  each read). Measured the same way: 48-71k frames/s here (a shared two-core box), about 100k
  frames/s in earlier measurements. ``just bench --only feed.bare.small_frames``.

Both pass the same tests (``tests/shell/test_transport.py`` is parametrized over them).

Besides ``receive`` there is ``receive_many``: every message already received, after waiting for
the first. The feed reads with it, so a burst costs one checkpoint and wakes the bus's subscribers
once (measured: the feed pipeline on small frames went from 11k to 18k frames/s with it).

Concurrency: one task receives; any task may ``send`` (sends are serialised with a FIFO lock, so a
``PING`` from the heartbeat task and a subscribe frame never interleave on the wire). Timeouts
belong to the caller (wrap ``connect`` or ``receive`` in a cancel scope); the only built-in one is
the bounded, shielded close, so leaving the block can never hang.
"""

from __future__ import annotations

import contextlib
import math
import ssl
import traceback
from collections import deque
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, Protocol, final

import attrs
import trio
import trio_websocket
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from bot.config import Transport as TransportKind

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from contextlib import AbstractAsyncContextManager

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT_S",
    "DEFAULT_MESSAGE_QUEUE_SIZE",
    "MAX_PENDING_SEND_BYTES",
    "Connection",
    "ConnectionLost",
    "Transport",
    "TrioWebsocketTransport",
    "WebsocketsTransport",
    "transport_for",
]

DEFAULT_CLOSE_TIMEOUT_S: Final = 1.0
"""How long leaving ``connect`` may spend on the closing handshake before the socket is cut."""

DEFAULT_MESSAGE_QUEUE_SIZE: Final = 256
"""trio-websocket's message queue: deep enough for a burst (an initial dump of hundreds of
snapshots arrives as a few big frames, live traffic as many small ones), small enough to bound
memory. The feed drains it continuously, so it is never the steady state."""

MAX_PENDING_SEND_BYTES: Final = 1 << 20
"""The sans-IO transport refuses to queue more than this many unsent bytes: a peer that has not
read 1 MiB of our pings and subscribes is not a live connection."""

_CLOSE_NORMAL: Final = 1000


class ConnectionLost(Exception):
    """The WebSocket is gone (closed by the venue, EOF, a socket error or a refused handshake).

    The one exception a ``Connection`` raises for anything that ends it; the library's own error
    is the ``__cause__``. Always transient from the feed's point of view: reconnect.

    Attributes:
        code: The WebSocket close code when the venue closed it cleanly, else ``None``.
        reason: A human-readable account.
    """

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"{reason} (close code {code})" if code is not None else reason)


class Connection(Protocol):
    """An open WebSocket, as the feed sees it."""

    async def send(self, text: str) -> None:
        """Send one text message.

        Raises:
            ConnectionLost: the connection is closed or broken.
        """

    async def receive(self) -> str:
        """The next text message, whole. Always a checkpoint.

        Raises:
            ConnectionLost: the connection ended; messages received before the end are
                returned first.
        """

    async def receive_many(self) -> list[str]:
        """Wait for the next message, then return it with every message already received after
        it (at least one; at most what one socket read or the library's queue holds). Always a
        checkpoint, once per call.

        This is the feed's hot path: a busy socket hands over a burst per checkpoint instead of
        one message per checkpoint, so everything downstream (the bus waking its subscribers)
        runs once per burst. Measured: see ``benchmarks/transport.py``.

        Raises:
            ConnectionLost: as ``receive``.
        """

    async def aclose(self) -> None:
        """Close the connection (bounded and shielded, so it never hangs). Idempotent."""


class Transport(Protocol):
    """Opens ``Connection``s: the seam ``FeedConfig.transport`` selects."""

    @property
    def name(self) -> str:
        """The ``FeedConfig.transport`` value of this implementation."""

    def connect(
        self, url: str, *, receive_buffer: int, max_message: int
    ) -> AbstractAsyncContextManager[Connection]:
        """Connect to ``url`` (``ws://`` or ``wss://``) for the duration of the block.

        Args:
            url: The WebSocket URL.
            receive_buffer: Bytes to ask the socket for per read.
            max_message: The largest message accepted; a bigger one ends the connection.

        Raises:
            ConnectionLost: the TCP connection or the handshake failed (on entry), or the
                connection ended (from ``send``/``receive`` inside the block).
        """


def transport_for(
    kind: TransportKind, *, close_timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S
) -> Transport:
    """The implementation ``FeedConfig.transport`` names."""
    if kind is TransportKind.WEBSOCKETS:
        return WebsocketsTransport(close_timeout_s=close_timeout_s)
    return TrioWebsocketTransport(close_timeout_s=close_timeout_s)


# --------------------------------------------------------------------------------------------
# trio-websocket


@final
class _TrioWebsocketConnection:
    """``Connection`` over a ``trio_websocket.WebSocketConnection``."""

    __slots__ = ("_ws",)

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self._ws = ws

    async def send(self, text: str) -> None:
        try:
            await self._ws.send_message(text)
        except trio_websocket.ConnectionClosed as exc:
            raise _lost_from_close(exc) from exc

    async def receive(self) -> str:
        try:
            message = await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise _lost_from_close(exc) from exc
        if type(message) is str:
            return message
        # The market channel only sends text; a binary message goes to the decoder as text,
        # which reports it as a malformed frame.
        assert isinstance(message, bytes | bytearray)
        return bytes(message).decode("utf-8", "replace")

    async def receive_many(self) -> list[str]:
        messages = [await self.receive()]
        # The messages the library's reader task already queued. Its queue is private API
        # (trio-websocket 0.12.2 has no get_message_nowait); without it, fall back to one message
        # per call. Anything but a message stops the drain: the next receive() reports it.
        queue = getattr(self._ws, "_recv_channel", None)
        if isinstance(queue, trio.MemoryReceiveChannel):
            while True:
                try:
                    message = queue.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
                if type(message) is str:
                    messages.append(message)
                else:
                    messages.append(bytes(message).decode("utf-8", "replace"))
        return messages

    async def aclose(self) -> None:
        await self._ws.aclose()


def _lost_from_close(exc: trio_websocket.ConnectionClosed) -> ConnectionLost:
    reason = exc.reason
    if reason is None:
        return ConnectionLost("connection closed")
    detail = f": {reason.reason}" if reason.reason else ""
    return ConnectionLost(f"connection closed ({reason.name}{detail})", code=reason.code)


def _close_abandoned_streams(exc: BaseException) -> None:
    """Close the socket trio-websocket 0.12.2 leaves open when opening a connection fails.

    If the handshake is refused (its reader task raises ``ConnectionRejected``) or cancelled
    (e.g. by the caller's connect deadline), ``open_websocket_url`` never hands the connection
    out and never closes its stream: an unclosed-socket ``ResourceWarning`` once the exception is
    dropped, and a file descriptor held until then. The connection is still reachable from the
    frames the exception went through (``self`` in the reader's handlers, ``connection`` in
    ``connect_websocket``); close its socket there.
    """
    pending = [exc]
    while pending:
        current = pending.pop()
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for frame, _line in traceback.walk_tb(current.__traceback__):
            for value in frame.f_locals.values():
                if isinstance(value, trio_websocket.WebSocketConnection):
                    stream = value._stream
                    if isinstance(stream, trio.SocketStream):
                        stream.socket.close()


@attrs.frozen
class TrioWebsocketTransport:
    """``Transport`` on trio-websocket (``open_websocket_url``).

    Attributes:
        close_timeout_s: The closing handshake's bound (trio-websocket's ``disconnect_timeout``).
        message_queue_size: trio-websocket's message queue (see ``DEFAULT_MESSAGE_QUEUE_SIZE``).
    """

    close_timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE

    @property
    def name(self) -> str:
        return TransportKind.TRIO_WEBSOCKET.value

    @asynccontextmanager
    async def connect(
        self, url: str, *, receive_buffer: int, max_message: int
    ) -> AsyncIterator[Connection]:
        ws: trio_websocket.WebSocketConnection | None = None
        try:
            async with trio_websocket.open_websocket_url(
                url,
                message_queue_size=self.message_queue_size,
                max_message_size=max_message,
                receive_buffer_size=receive_buffer,
                # The caller bounds the connect with its own cancel scope (no timeout params).
                connect_timeout=math.inf,
                disconnect_timeout=self.close_timeout_s,
            ) as ws:
                try:
                    yield _TrioWebsocketConnection(ws)
                finally:
                    # Close here, bounded and shielded, rather than in open_websocket_url: when
                    # its close times out it raises DisconnectionTimeout *instead of* the error
                    # that ended the block. A cancelled close still closes the stream (and
                    # marks the connection closed, so the library's own close returns at once).
                    with trio.move_on_after(self.close_timeout_s, shield=True):
                        await ws.aclose()
        except BaseException as exc:
            if ws is None:
                _close_abandoned_streams(exc)
            if isinstance(exc, trio_websocket.HandshakeError):
                # Refused or unreachable.
                raise ConnectionLost(f"websocket handshake failed: {exc!r}") from exc
            raise
        finally:
            # trio-websocket 0.12.2 leaks its socket when the *server* closes first: the reader
            # sees EOF and returns without closing the stream (a ResourceWarning, an error under
            # filterwarnings=error; see tests/sim/server_helpers.py). Closing it again after the
            # library is done is harmless.
            if ws is not None:
                with trio.CancelScope(shield=True):
                    await ws._stream.aclose()


# --------------------------------------------------------------------------------------------
# websockets, sans-IO, over a trio stream


@final
class _SansIoConnection:
    """``Connection`` driving ``websockets.client.ClientProtocol`` over a trio stream.

    Reading: ``receive`` hands out the messages already parsed (a deque), and only when there are
    none reads one chunk, feeds it to the protocol and collects the frames it produced. Control
    frames are the protocol's business: it queues the pong for a ping and the echo of a close; we
    flush whatever it queued after each chunk.

    Writing: bytes the protocol produces go to ``_outgoing`` (a sync append, in protocol order);
    whoever holds the send lock writes everything queued, so bytes never reorder and a flush
    never waits for a second one.
    """

    __slots__ = (
        "_close_timeout_s",
        "_closed",
        "_fragment_binary",
        "_fragments",
        "_lost",
        "_messages",
        "_outgoing",
        "_outgoing_bytes",
        "_protocol",
        "_receive_buffer",
        "_receiving",
        "_send_lock",
        "_stream",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: ClientProtocol,
        *,
        receive_buffer: int,
        close_timeout_s: float,
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self._receive_buffer = receive_buffer
        self._close_timeout_s = close_timeout_s
        self._messages: deque[str] = deque()
        self._fragments: list[bytes] = []
        self._fragment_binary = False
        self._lost: ConnectionLost | None = None
        self._outgoing: deque[bytes] = deque()
        self._outgoing_bytes = 0
        self._send_lock = trio.StrictFIFOLock()
        self._receiving = False
        self._closed = False

    # --- receiving

    async def receive(self) -> str:
        messages = self._messages
        if messages:
            await trio.lowlevel.checkpoint()
            return messages.popleft()
        await self._fill()
        return messages.popleft()

    async def receive_many(self) -> list[str]:
        messages = self._messages
        if messages:
            await trio.lowlevel.checkpoint()
        else:
            await self._fill()
        out = list(messages)
        messages.clear()
        return out

    async def _fill(self) -> None:
        """Read chunks until at least one message is parsed (a checkpoint per read)."""
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving")
        self._receiving = True
        try:
            while not self._messages:
                await self._read_chunk()
        finally:
            self._receiving = False

    async def _read_chunk(self) -> None:
        """Read one chunk into the protocol; raises ``ConnectionLost`` once the end is reached
        and every message before it was handed out."""
        if self._lost is not None:
            raise ConnectionLost(self._lost.reason, code=self._lost.code) from self._lost
        try:
            data = await self._stream.receive_some(self._receive_buffer)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._lose(f"socket error while reading: {exc!r}")
            raise ConnectionLost(f"socket error while reading: {exc!r}") from exc
        protocol = self._protocol
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
        self._collect(protocol.events_received())
        if protocol.state is State.CLOSED or protocol.close_rcvd is not None:
            self._lose_by_protocol()
        self._queue_outgoing()
        if self._outgoing:
            # Pongs and the close echo. A failure is recorded in ``_lost`` and raised by the
            # next read, so the messages parsed from this chunk are still handed out first.
            with contextlib.suppress(ConnectionLost):
                await self._flush()

    def _collect(self, events: Sequence[object]) -> None:
        """Turn the protocol's frames into whole text messages (control frames are skipped)."""
        messages = self._messages
        for event in events:
            if type(event) is not Frame:
                continue  # the handshake Response, consumed during connect
            opcode = event.opcode
            if opcode is Opcode.TEXT and event.fin:
                text = _utf8(event.data)
                if text is None:
                    self._fail_invalid_utf8()
                    return
                messages.append(text)
            elif opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if event.fin:  # a whole binary message: not sent on this channel
                    messages.append(bytes(event.data).decode("utf-8", "replace"))
                else:
                    self._fragments = [bytes(event.data)]
                    self._fragment_binary = opcode is Opcode.BINARY
            elif opcode is Opcode.CONT:
                self._fragments.append(bytes(event.data))
                if event.fin:
                    whole = b"".join(self._fragments)
                    self._fragments = []
                    if self._fragment_binary:
                        messages.append(whole.decode("utf-8", "replace"))
                    else:
                        text = _utf8(whole)
                        if text is None:
                            self._fail_invalid_utf8()
                            return
                        messages.append(text)

    def _fail_invalid_utf8(self) -> None:
        # RFC 6455 8.1: a text message that is not UTF-8 fails the connection with 1007.
        self._protocol.fail(1007, "invalid UTF-8 in a text message")
        self._queue_outgoing()
        self._lose("the venue sent a text message that is not UTF-8", code=1007)

    def _lose_by_protocol(self) -> None:
        protocol = self._protocol
        if protocol.close_rcvd is not None:
            close = protocol.close_rcvd
            detail = f": {close.reason}" if close.reason else ""
            self._lose(f"connection closed by the venue{detail}", code=int(close.code))
        elif protocol.parser_exc is not None:
            self._lose(f"connection failed: {protocol.parser_exc!r}")
        else:
            self._lose("connection closed (EOF)")

    def _lose(self, reason: str, *, code: int | None = None) -> None:
        if self._lost is None:
            self._lost = ConnectionLost(reason, code=code)

    # --- sending

    async def send(self, text: str) -> None:
        if self._lost is not None:
            raise ConnectionLost(self._lost.reason, code=self._lost.code) from self._lost
        try:
            self._protocol.send_text(text.encode())
        except InvalidState as exc:
            raise ConnectionLost(f"connection is closing: {exc}") from exc
        self._queue_outgoing()
        await self._flush()

    def _queue_outgoing(self) -> None:
        for chunk in self._protocol.data_to_send():
            self._outgoing.append(chunk)
            self._outgoing_bytes += len(chunk)
        if self._outgoing_bytes > MAX_PENDING_SEND_BYTES:
            self._lose(
                f"more than {MAX_PENDING_SEND_BYTES} bytes unsent: the venue stopped reading"
            )

    async def _flush(self) -> None:
        async with self._send_lock:
            outgoing = self._outgoing
            stream = self._stream
            while outgoing:
                chunk = outgoing.popleft()
                self._outgoing_bytes -= len(chunk)
                if not chunk:
                    continue  # the protocol's "half-close now" marker: we close the stream soon
                try:
                    await stream.send_all(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    outgoing.clear()
                    self._outgoing_bytes = 0
                    self._lose(f"socket error while sending: {exc!r}")
                    raise ConnectionLost(f"socket error while sending: {exc!r}") from exc

    # --- closing

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        protocol = self._protocol
        with trio.move_on_after(self._close_timeout_s, shield=True):
            try:
                if protocol.state is State.OPEN:
                    protocol.send_close(_CLOSE_NORMAL)
                    self._queue_outgoing()
                    await self._flush()
                # Wait for the venue's close and its EOF (RFC 6455 7.1.1: the server closes TCP
                # first), unless a receive is in flight: two readers on one stream is an error.
                if not self._receiving and protocol.state is State.CLOSING:
                    while not _is_closed(protocol):
                        data = await self._stream.receive_some(self._receive_buffer)
                        if data:
                            protocol.receive_data(data)
                        else:
                            protocol.receive_eof()
                        protocol.events_received()
                        self._queue_outgoing()
                        await self._flush()
            except (ConnectionLost, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        await trio.aclose_forcefully(self._stream)


def _is_closed(protocol: ClientProtocol) -> bool:
    # A function, so mypy does not keep the state narrowed across the awaits of a loop.
    return protocol.state is State.CLOSED


def _utf8(data: bytes | bytearray | memoryview) -> str | None:
    try:
        return bytes(data).decode() if type(data) is not bytes else data.decode()
    except UnicodeDecodeError:
        return None


@attrs.frozen
class WebsocketsTransport:
    """``Transport`` on the ``websockets`` package's sans-IO protocol over ``trio.open_tcp_stream``.

    Attributes:
        close_timeout_s: The closing handshake's bound.
    """

    close_timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S

    @property
    def name(self) -> str:
        return TransportKind.WEBSOCKETS.value

    @asynccontextmanager
    async def connect(
        self, url: str, *, receive_buffer: int, max_message: int
    ) -> AsyncIterator[Connection]:
        uri = parse_uri(url)
        stream: trio.abc.Stream
        try:
            if uri.secure:
                stream = await trio.open_ssl_over_tcp_stream(
                    uri.host,
                    uri.port,
                    ssl_context=ssl.create_default_context(),
                    https_compatible=True,
                )
            else:
                stream = await trio.open_tcp_stream(uri.host, uri.port)
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {uri.host}:{uri.port}: {exc}") from exc
        protocol = ClientProtocol(uri, max_size=max_message)
        conn = _SansIoConnection(
            stream, protocol, receive_buffer=receive_buffer, close_timeout_s=self.close_timeout_s
        )
        try:
            await _handshake(conn, protocol, stream, receive_buffer)
            yield conn
        finally:
            await conn.aclose()


async def _handshake(
    conn: _SansIoConnection, protocol: ClientProtocol, stream: trio.abc.Stream, receive_buffer: int
) -> None:
    """Send the upgrade request and read until the response; frames that came in the same read
    as the response are kept for ``receive``."""
    protocol.send_request(protocol.connect())
    conn._queue_outgoing()
    await conn._flush()
    while protocol.state is State.CONNECTING:
        try:
            data = await stream.receive_some(receive_buffer)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise ConnectionLost(f"websocket handshake failed: {exc!r}") from exc
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
        events = protocol.events_received()
        if protocol.handshake_exc is not None:
            raise ConnectionLost(
                f"websocket handshake failed: {protocol.handshake_exc}"
            ) from protocol.handshake_exc
        if not data and protocol.state is State.CONNECTING:
            raise ConnectionLost("websocket handshake failed: EOF before the response")
        conn._collect(events)
        conn._queue_outgoing()
        await conn._flush()
    # Open now. Anything that went wrong in the frames read along with the response (a close,
    # bad UTF-8) is recorded in the connection and raised by ``receive`` after what came before.
