"""Health figures on request: ``GET /health`` on loopback, and ``health.json`` on disk.

The status line shows a few figures every few seconds; an operator's script, a monitoring agent
or ``curl`` wants the same figures as JSON whenever it asks. ``serve_health`` answers
``GET /health`` on ``127.0.0.1`` with ``BotHandle.health()`` (or any function returning plain
data) as one JSON object, and ``write_health_file`` keeps a ``health.json`` up to date for
whoever prefers a file.

Why a hand-written HTTP/1.1 responder on ``trio.serve_tcp`` and not hypercorn or httpx: the
endpoint has one route, one method and no body to read, and it runs inside the trading process,
where every dependency and every task matters. Each connection reads the request head (bounded
in size and time, so a client that connects and says nothing cannot pin a task), answers once
with ``Connection: close`` and hangs up. It binds loopback only: the figures are not secret,
but nothing outside the machine has any business polling a trading bot.

Answers: ``200`` with ``application/json`` for ``GET /health`` (and ``HEAD``, without the body),
``404`` for any other path, ``405`` for any other method, ``400`` for a request head that is not
HTTP, ``431`` for one over ``MAX_REQUEST_BYTES``. The JSON is made by orjson: non-finite floats
become ``null`` and values it cannot encode natively (enums, mappings proxies, decimals) go
through ``str()`` or ``dict()``, so a figure of an unexpected type never breaks the endpoint.

Synopsis::

    port = await nursery.start(serve_health, handle.health, 0)       # 0: a free port
    nursery.start_soon(write_health_file, handle.health, Path("logs/health.json"), 5.0)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import orjson
import trio

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = [
    "HEALTH_PATH",
    "MAX_REQUEST_BYTES",
    "REQUEST_TIMEOUT_S",
    "encode_health",
    "serve_health",
    "write_health_file",
]

HEALTH_PATH: Final = "/health"
MAX_REQUEST_BYTES: Final = 8192
"""Largest request head accepted (request line and headers)."""
REQUEST_TIMEOUT_S: Final = 5.0
"""A client must send its request head and take the answer within this many seconds."""

_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


def _default(value: object) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


def encode_health(figures: Mapping[str, Any]) -> bytes:
    """The figures as one JSON object (UTF-8), tolerant of values JSON does not have."""
    return orjson.dumps(dict(figures), default=_default, option=orjson.OPT_NON_STR_KEYS)


def _response(status: int, body: bytes, content_type: str, *, head_only: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n"
    )
    if status == 405:
        head += "Allow: GET, HEAD\r\n"
    return (head + "\r\n").encode("ascii") + (b"" if head_only else body)


def _text(status: int, message: str) -> bytes:
    return _response(status, f"{message}\n".encode(), "text/plain; charset=utf-8")


async def _read_head(stream: trio.abc.ReceiveStream) -> bytes | None:
    """The request head up to the blank line; ``None`` if it grows past ``MAX_REQUEST_BYTES``
    (an empty result means the client closed without a full head)."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_REQUEST_BYTES:
            return None
        chunk = await stream.receive_some(4096)
        if not chunk:
            return b""
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0]
    return None if len(head) > MAX_REQUEST_BYTES else head


def _answer(head: bytes | None, figures: Callable[[], Mapping[str, Any]]) -> bytes | None:
    """The whole response to a request head (``None``: nothing to answer)."""
    if head is None:
        return _text(431, "request head too large")
    if not head:
        return None
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return _text(400, f"not an HTTP/1.x request line: {request_line[:80]!r}")
    method, target, _version = parts
    path = target.split("?", 1)[0]
    if path != HEALTH_PATH:
        return _text(404, f"no such path: {path[:80]}; try GET {HEALTH_PATH}")
    if method not in ("GET", "HEAD"):
        return _text(405, f"method {method[:16]} not allowed; use GET")
    try:
        body = encode_health(figures()) + b"\n"
    except Exception as exc:  # a bug in a figure must not take the bot down with it
        return _text(500, f"health figures failed: {exc!r}")
    return _response(200, body, "application/json", head_only=method == "HEAD")


async def _handle(figures: Callable[[], Mapping[str, Any]], stream: trio.SocketStream) -> None:
    async with stream:
        with trio.move_on_after(REQUEST_TIMEOUT_S):
            try:
                response = _answer(await _read_head(stream), figures)
                if response is not None:
                    await stream.send_all(response)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the client went away; nothing to tell it


async def serve_health(
    figures: Callable[[], Mapping[str, Any]],
    port: int,
    *,
    host: str = "127.0.0.1",
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answer ``GET /health`` with ``figures()`` as JSON until cancelled.

    Args:
        figures: Called once per request, on the trio thread (``BotHandle.health``).
        port: TCP port; 0 picks a free one.
        host: The address to bind; loopback by default, and it should stay so.

    ``task_status.started(port)`` with the bound port once it listens.

    Raises:
        OSError: The port could not be bound (in use, or not allowed); the message names it.
    """
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise OSError(exc.errno, f"health endpoint: cannot listen on {host}:{port}: {exc}") from exc
    bound = int(listeners[0].socket.getsockname()[1])
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, partial(_handle, figures), listeners)
        task_status.started(bound)


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a reader sees the old file or the new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


async def write_health_file(
    figures: Callable[[], Mapping[str, Any]],
    path: Path,
    interval_s: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Rewrite ``path`` with ``figures()`` as JSON every ``interval_s`` until cancelled.

    The first write happens at once; each is atomic (a temporary file renamed over the old
    one) and runs in a worker thread, so a slow disk never stalls the event loop.
    """
    await trio.Path(path.parent).mkdir(parents=True, exist_ok=True)
    task_status.started()
    while True:
        await trio.to_thread.run_sync(_replace, path, encode_health(figures()) + b"\n")
        await trio.sleep(interval_s)
