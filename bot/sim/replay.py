"""Replaying a recorded market-channel session over a local WebSocket.

Recording format (the runtime's recorder writes it; ``write_recording`` here writes it too):
a gzip-compressed file of JSON lines, one per frame *received* from the venue, in receive order::

    {"t_ms": 1757908892351, "frame": "[{\\"event_type\\": \\"book\\", ...}]"}

``t_ms`` is the receive time in integer epoch milliseconds and ``frame`` the raw text frame,
byte for byte (a JSON object, a JSON array, or ``PONG``).

The replay server speaks the market channel's handshake on ``/ws/market``: it waits for the first
subscribe message (``type`` ``"market"``), then sends the recorded frames in order, each
connection from the start of the recording. Deliberate simplifications, documented here because a
client might otherwise be surprised:

* **Asset filters are ignored**: every recorded frame goes to every subscriber, whatever it
  subscribed to (the recording already reflects the recorded session's subscriptions); later
  subscribe/unsubscribe messages are read and ignored.
* Recorded ``PONG`` frames are skipped (they answered the recorder's pings); the replay answers the
  client's own ``PING`` with ``PONG`` at once.
* After the last frame the socket stays open and silent (``close_at_end`` closes it with 1000
  instead), so a client's silence watchdog sees what a stalled venue looks like.
* No REST: every HTTP path answers 404.

Pacing (``speed``):

* ``1.0`` -- real speed: frame *i* is sent ``(t_i - t_0) / speed`` seconds after the subscribe;
* ``N`` -- N times faster (any positive number);
* ``None`` -- as fast as the client reads: each send waits until the frame is written to the
  socket, so a slow client slows the replay instead of losing frames.
"""

from __future__ import annotations

import gzip
import sys
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

import attrs
import orjson
import trio

from bot.sim.server import SimUrls, serve
from bot.sim.venue import SimVenueError, cancel_on_signals, write_line

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

    from hypercorn.typing import (
        ASGIReceiveCallable,
        ASGISendCallable,
        HTTPScope,
        Scope,
        WebsocketScope,
    )

__all__ = [
    "RecordedFrame",
    "ReplayApp",
    "ReplayServer",
    "ReplayStatistics",
    "open_replay_server",
    "read_recording",
    "run_replay_standalone",
    "write_recording",
]

_CLOSE_NORMAL: Final = 1000


@attrs.frozen
class RecordedFrame:
    """One received frame: its receive time (epoch ms) and raw text."""

    t_ms: int
    frame: str


def write_recording(path: Path | str, frames: Iterable[RecordedFrame | tuple[int, str]]) -> int:
    """Write ``frames`` as a recording (gzip JSON lines); returns how many were written.

    Sync file I/O: call it outside trio, or through ``trio.to_thread.run_sync``.
    """
    count = 0
    with gzip.open(Path(path), "wb") as out:
        for item in frames:
            t_ms, frame = (item.t_ms, item.frame) if isinstance(item, RecordedFrame) else item
            out.write(orjson.dumps({"t_ms": int(t_ms), "frame": frame}) + b"\n")
            count += 1
    return count


def read_recording(path: Path | str) -> list[RecordedFrame]:
    """Read a recording written by ``write_recording`` (or the runtime's recorder).

    Blank lines are skipped. Sync file I/O, like ``write_recording``.

    Raises:
        ValueError: A line is not ``{"t_ms": int, "frame": str}``, naming the line number.
    """
    frames: list[RecordedFrame] = []
    with gzip.open(Path(path), "rb") as src:
        for number, line in enumerate(src, start=1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: invalid JSON: {exc}") from None
            if (
                not isinstance(item, dict)
                or type(item.get("t_ms")) is not int
                or not isinstance(item.get("frame"), str)
            ):
                raise ValueError(f'{path}:{number}: expected {{"t_ms": int, "frame": str}}')
            frames.append(RecordedFrame(item["t_ms"], item["frame"]))
    return frames


@attrs.frozen
class ReplayStatistics:
    """Counters of a replay server.

    Attributes:
        connections: Sockets open now.
        connections_total: Sockets accepted since start.
        replays_finished: Connections that were sent the whole recording.
        frames_sent: Recorded frames sent (all connections).
        pongs_sent: ``PONG`` replies.
    """

    connections: int
    connections_total: int
    replays_finished: int
    frames_sent: int
    pongs_sent: int


@attrs.define(eq=False)
class ReplayApp:
    """The ASGI app replaying ``frames`` to every market-channel subscriber.

    Args:
        frames: The recording, in order.
        speed: ``None`` (as fast as the client reads), or a positive factor (1.0 = real speed).
        close_at_end: Close each socket with code 1000 after its last frame.
    """

    frames: list[RecordedFrame]
    speed: float | None = None
    close_at_end: bool = False
    _connections: int = attrs.field(default=0, init=False)
    _connections_total: int = attrs.field(default=0, init=False)
    _finished: int = attrs.field(default=0, init=False)
    _frames_sent: int = attrs.field(default=0, init=False)
    _pongs_sent: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        if self.speed is not None and not self.speed > 0:
            raise ValueError(f"speed must be > 0 or None, got {self.speed}")

    def statistics(self) -> ReplayStatistics:
        """A frozen copy of the counters."""
        return ReplayStatistics(
            connections=self._connections,
            connections_total=self._connections_total,
            replays_finished=self._finished,
            frames_sent=self._frames_sent,
            pongs_sent=self._pongs_sent,
        )

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(
        self, _scope: HTTPScope, _receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        body = b"404 page not found"
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
                "trailers": False,
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _websocket(
        self, scope: WebsocketScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if scope["path"] != "/ws/market":
            await send({"type": "websocket.close", "code": 1008, "reason": None})
            return
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        self._connections += 1
        self._connections_total += 1
        lock = trio.Lock()
        subscribed = trio.Event()

        async def send_text(text: str) -> None:
            async with lock:  # the replay and the PONGs share the socket
                await send({"type": "websocket.send", "text": text, "bytes": None})

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, receive, send_text, subscribed, nursery.cancel_scope)
                await subscribed.wait()
                await self._play(send_text)
                if self.close_at_end:
                    async with lock:
                        await send({"type": "websocket.close", "code": _CLOSE_NORMAL, "reason": ""})
                    nursery.cancel_scope.cancel(reason="replay finished")
        finally:
            self._connections -= 1

    async def _read(
        self,
        receive: ASGIReceiveCallable,
        send_text: Callable[[str], Awaitable[None]],
        subscribed: trio.Event,
        scope: trio.CancelScope,
    ) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                scope.cancel(reason="client disconnected")
                return
            if message["type"] != "websocket.receive":
                continue
            text = message.get("text")
            if text == "PING":
                await send_text("PONG")
                self._pongs_sent += 1
            elif text and not subscribed.is_set() and _is_subscribe(text):
                subscribed.set()

    async def _play(self, send_text: Callable[[str], Awaitable[None]]) -> None:
        frames = self.frames
        if not frames:
            self._finished += 1
            return
        start = trio.current_time()
        t0 = frames[0].t_ms
        speed = self.speed
        for frame in frames:
            if frame.frame == "PONG":
                continue
            if speed is not None:
                await trio.sleep_until(start + (frame.t_ms - t0) / 1000 / speed)
            await send_text(frame.frame)
            self._frames_sent += 1
        self._finished += 1


def _is_subscribe(text: str) -> bool:
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    kind = message.get("type") if isinstance(message, dict) else None
    return isinstance(kind, str) and kind.lower() == "market"


@attrs.define(eq=False)
class ReplayServer:
    """A running replay server (made by ``open_replay_server``)."""

    app: ReplayApp
    urls: SimUrls

    @property
    def ws_market_url(self) -> str:
        """Where to connect (``ws://127.0.0.1:PORT/ws/market``)."""
        return self.urls.ws_market_url

    def statistics(self) -> ReplayStatistics:
        """The app's counters."""
        return self.app.statistics()


@asynccontextmanager
async def open_replay_server(
    recording: Path | str | list[RecordedFrame],
    *,
    speed: float | None = None,
    close_at_end: bool = False,
    port: int = 0,
) -> AsyncIterator[ReplayServer]:
    """Serve a recording on ``127.0.0.1:port`` for the duration of the ``async with`` block.

    Args:
        recording: A recording file, or frames already read.
        speed: ``None``: as fast as the client reads; else a factor (1.0 = real speed).
        close_at_end: Close each socket with code 1000 after its last frame.
        port: 0 picks a free port.

    Yields:
        The running server (``ws_market_url``, ``statistics()``).

    Raises:
        SimVenueError: The server crashed (the exception group is the ``__cause__``); the
            caller's own exception passes through unchanged.
    """
    if isinstance(recording, list):
        frames = recording
    else:
        frames = await trio.to_thread.run_sync(read_recording, recording)
    app = ReplayApp(frames, speed=speed, close_at_end=close_at_end)
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(partial(serve, app, port=port))
            try:
                yield ReplayServer(app, urls)
            except BaseException as exc:
                body_error = exc  # re-raised below, outside the nursery: no exception group
            finally:
                nursery.cancel_scope.cancel(reason="replay server closed")
    except BaseExceptionGroup as group:
        errors, _others = group.split(Exception)
        if errors is None:
            raise  # only KeyboardInterrupt/SystemExit: not ours to translate
        raise SimVenueError(f"replay server crashed: {errors.exceptions[0]!r}") from group
    if body_error is not None:
        raise body_error


async def run_replay_standalone(
    recording: Path | str,
    *,
    speed: float | None,
    port: int = 0,
    close_at_end: bool = False,
    stdout: TextIO | None = None,
) -> None:
    """``polybot sim --replay FILE``: serve the recording until SIGINT/SIGTERM.

    Prints the same first line as ``polybot sim`` (the three URLs as one JSON object; the
    replay server answers REST with 404).
    """
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        async with open_replay_server(
            recording, speed=speed, close_at_end=close_at_end, port=port
        ) as server:
            out = stdout or sys.stdout
            await write_line(out, orjson.dumps(server.urls.as_dict()).decode())
            await trio.sleep_forever()
