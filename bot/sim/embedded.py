"""The sim venue embedded in a test with no sockets: an in-memory network, and raw frames.

``open_sim_venue`` serves the venue over hypercorn on a real loopback port, which is what the
demo and the benchmarks want. A scenario test under pytest-trio's autojump clock must not touch
real sockets (TRIO_IDIOMS.md section 7): while the kernel holds bytes, every task looks blocked
and the virtual clock jumps past them, so results would depend on the machine's speed. Here the
bot's connections never reach the kernel:

* ``MemoryNetwork`` installs a trio socket factory (``trio.socket.set_custom_socket_factory``,
  for the current ``trio.run`` only) whose sockets connect to *listeners* registered by address.
  ``trio.open_tcp_stream`` -- which httpx and both WebSocket transports use -- then gets a
  ``trio.SocketStream`` over a ``MemorySocket`` whose bytes go through plain buffers: a byte
  written is a task woken, nothing is in flight outside trio, and "every task is blocked" really
  means "nothing is happening";
* ``serve_venue`` registers the venue's own address (the port ``open_sim_venue`` bound, so the
  URLs the bot is given are the venue's real ones) and answers each connection with hypercorn's
  HTTP/1.1 + WebSocket protocol over that stream, driving the venue's ASGI app exactly as the
  socket server does. The real listener stays open and idle.

Connecting to any address without a listener fails at once with ``ConnectionRefusedError``: a
scenario has no way out to a real network.

``send_raw`` puts one text frame as is (a malformed one, say) on every subscribed market
connection, which the venue's own fault switches can only do at random.
"""

from __future__ import annotations

import errno
import itertools
import socket as stdlib_socket
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit

import trio
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from bot.sim.server import OutFrame, hypercorn_config

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bot.sim.venue import SimVenue

__all__ = ["MemoryNetwork", "MemorySocket", "send_raw", "serve_venue"]

_FIRST_FD: Final = 1 << 20
_FIRST_PORT: Final = 40_000


class _Pipe:
    """One direction of a connection: bytes written and not yet read."""

    __slots__ = ("data", "eof", "lot", "reader_gone")

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False
        """The writer shut down or closed its side: the reader gets the rest, then b""."""
        self.reader_gone = False
        """The reader closed its side: writing is a reset."""
        self.lot = trio.lowlevel.ParkingLot()


class MemorySocket(trio.socket.SocketType):
    """A TCP socket of a ``MemoryNetwork`` (made by its factory, or by ``connect`` for the
    listening side). Only what ``trio.SocketStream`` and ``trio.open_tcp_stream`` use works."""

    def __init__(self, network: MemoryNetwork, family: int, kind: int, proto: int) -> None:
        super().__init__()
        self._network = network
        self._family = stdlib_socket.AddressFamily(family)
        self._kind = stdlib_socket.SocketKind(kind)
        self._proto = proto
        self._fd = next(network._fds)
        self._closed = False
        self._shut_wr = False
        self._in: _Pipe | None = None
        self._out: _Pipe | None = None
        self._local: tuple[str, int] = ("127.0.0.1", 0)
        self._peer: tuple[str, int] | None = None

    # --- attributes

    @property
    def family(self) -> stdlib_socket.AddressFamily:
        return self._family

    @property
    def type(self) -> stdlib_socket.SocketKind:
        return self._kind

    @property
    def proto(self) -> int:
        return self._proto

    @property
    def did_shutdown_SHUT_WR(self) -> bool:
        return self._shut_wr

    def fileno(self) -> int:
        return -1 if self._closed else self._fd

    def getsockname(self) -> Any:
        return self._local

    def getpeername(self) -> Any:
        if self._peer is None:
            raise OSError(errno.ENOTCONN, "not connected")
        return self._peer

    def setsockopt(self, *_args: object) -> None:
        """Accepted and ignored (``TCP_NODELAY`` and friends mean nothing here)."""

    def getsockopt(self, *_args: object) -> int:  # type: ignore[override]
        return 0

    # --- connecting

    async def connect(self, address: Any) -> None:
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise OSError(errno.EBADF, "socket is closed")
        host, port = str(address[0]), int(address[1])
        handler = self._network._listeners.get((host, port))
        if handler is None:
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"nothing listens at {host}:{port} in the memory network"
            )
        up, down = _Pipe(), _Pipe()
        server = MemorySocket(self._network, self._family, self._kind, self._proto)
        self._out, self._in = up, down
        server._in, server._out = up, down
        self._local = ("127.0.0.1", next(self._network._ports))
        self._peer = (host, port)
        server._local, server._peer = (host, port), self._local
        self._network._connections += 1
        self._network._nursery.start_soon(handler, trio.SocketStream(server))

    # --- data

    async def send(self, data: Any, flags: int = 0, /) -> int:
        await trio.lowlevel.checkpoint()
        out = self._out
        if self._closed:
            raise OSError(errno.EBADF, "socket is closed")
        if out is None:
            raise OSError(errno.ENOTCONN, "not connected")
        if self._shut_wr:
            raise OSError(errno.EPIPE, "socket was shut down for writing")
        if out.reader_gone:
            raise ConnectionResetError(errno.ECONNRESET, "connection reset by peer")
        chunk = bytes(data)
        out.data += chunk
        out.lot.unpark_all()
        return len(chunk)

    async def recv(self, buflen: int, flags: int = 0, /) -> bytes:
        pipe = self._in
        if pipe is None:
            raise OSError(errno.ENOTCONN, "not connected")
        await trio.lowlevel.checkpoint_if_cancelled()
        while not pipe.data and not pipe.eof and not self._closed:
            await pipe.lot.park()
        if self._closed:
            raise OSError(errno.EBADF, "socket is closed")
        chunk = bytes(pipe.data[:buflen])
        del pipe.data[:buflen]
        await trio.lowlevel.cancel_shielded_checkpoint()
        return chunk

    def is_readable(self) -> bool:
        pipe = self._in
        return pipe is not None and (bool(pipe.data) or pipe.eof)

    async def wait_writable(self) -> None:
        await trio.lowlevel.checkpoint()  # the buffers are unbounded: always writable

    # --- ending

    def shutdown(self, flag: int) -> None:
        if flag in (stdlib_socket.SHUT_WR, stdlib_socket.SHUT_RDWR) and self._out is not None:
            self._shut_wr = True
            self._out.eof = True
            self._out.lot.unpark_all()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._out is not None:
            self._out.eof = True
            self._out.lot.unpark_all()
        if self._in is not None:
            self._in.reader_gone = True
            self._in.lot.unpark_all()

    def __repr__(self) -> str:
        return f"<MemorySocket {self._local} -> {self._peer}{' closed' if self._closed else ''}>"


class _Factory(trio.abc.SocketFactory):
    def __init__(self, network: MemoryNetwork) -> None:
        self._network = network

    def socket(
        self, family: int | None = None, type: int | None = None, proto: int | None = None
    ) -> trio.socket.SocketType:
        return MemorySocket(
            self._network,
            family or stdlib_socket.AF_INET,
            type or stdlib_socket.SOCK_STREAM,
            proto or 0,
        )


class MemoryNetwork:
    """TCP in memory for one ``trio.run``: listeners by address, and the socket factory.

    Synopsis::

        async with trio.open_nursery() as nursery:
            network = MemoryNetwork(nursery)         # connection handlers run in ``nursery``
            with network.installed():                # trio.socket.socket() now makes ours
                network.listen("127.0.0.1", 8080, handle)    # handle(stream) per connection
                stream = await trio.open_tcp_stream("127.0.0.1", 8080)

    Args:
        nursery: where each accepted connection's handler runs (cancel it to cut them all).
    """

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._listeners: dict[tuple[str, int], Callable[[trio.SocketStream], Awaitable[None]]] = {}
        self._fds = itertools.count(_FIRST_FD)
        self._ports = itertools.count(_FIRST_PORT)
        self._connections = 0

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        return self._connections

    def listen(
        self, host: str, port: int, handler: Callable[[trio.SocketStream], Awaitable[None]]
    ) -> None:
        """Answer connections to ``host:port`` with ``handler(stream)`` (the server's side)."""
        self._listeners[(host, port)] = handler

    def installed(self) -> _Installed:
        """A context manager: ``trio.socket.socket()`` makes this network's sockets inside it
        (in this ``trio.run``; the previous factory is restored on exit)."""
        return _Installed(self)


class _Installed:
    def __init__(self, network: MemoryNetwork) -> None:
        self._network = network
        self._previous: trio.abc.SocketFactory | None = None

    def __enter__(self) -> MemoryNetwork:
        self._previous = trio.socket.set_custom_socket_factory(_Factory(self._network))
        return self._network

    def __exit__(self, *_exc: object) -> None:
        trio.socket.set_custom_socket_factory(self._previous)


def serve_venue(network: MemoryNetwork, venue: SimVenue) -> None:
    """Answer connections to the venue's address on ``network`` with the venue itself.

    Each connection is served by hypercorn's protocol stack (HTTP/1.1, keep-alive, the
    WebSocket upgrade) over the in-memory stream, with the venue's hypercorn settings, so the
    bot sees byte for byte what the socket server would send.
    """
    address = urlsplit(venue.clob_url)
    if address.hostname is None or address.port is None:
        raise ValueError(f"the venue has no address yet: {venue.clob_url!r}")
    config = hypercorn_config(address.port)
    app = wrap_app(venue.app, config.wsgi_max_body_size, mode="asgi")
    context = WorkerContext(None)

    async def handle(stream: trio.SocketStream) -> None:
        # TCPServer is typed for an SSL stream but takes a plain one (hypercorn's own listener
        # hands it SocketStreams for http://).
        server = TCPServer(app, config, context, ConnectionState({}), cast("Any", stream))
        await server.run()

    network.listen(address.hostname, address.port, handle)


def send_raw(venue: SimVenue, text: str) -> int:
    """Queue ``text`` as one frame, exactly as given, on every subscribed market connection.

    It goes out in order with the data frames queued before it, as a reply (not subject to the
    fault switches). Returns how many connections it was queued on.
    """
    queued = 0
    for conn in venue.app.hub.connections.values():
        if conn.closing or not conn.subscribed.is_set():
            continue
        conn.outbox.offer(OutFrame(text, data=False))
        queued += 1
    return queued
