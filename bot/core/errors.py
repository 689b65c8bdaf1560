"""Errors raised by the pure core, split by whose fault they are (h11-style)."""

from __future__ import annotations

_EXCERPT_CHARS = 160


def excerpt(data: str | bytes, limit: int = _EXCERPT_CHARS) -> str:
    """A short, printable excerpt of a frame for error messages and logs."""
    text = (
        data.decode("utf-8", "replace")
        if isinstance(data, bytes | bytearray | memoryview)
        else data
    )
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RemoteProtocolError(Exception):
    """The venue (or a recording) sent something that breaks the protocol we know."""


class FrameDecodeError(RemoteProtocolError):
    """A wire frame or REST body that cannot be decoded.

    Carries the ``reason`` (what was wrong, and where in the frame) and a short ``excerpt`` of the
    frame, so a log line says both without dumping megabytes of JSON.
    """

    def __init__(self, reason: str, frame: str | bytes = "") -> None:
        self.reason = reason
        self.excerpt = excerpt(frame) if frame else ""
        super().__init__(f"{reason} (frame: {self.excerpt!r})" if self.excerpt else reason)


class LocalProtocolError(Exception):
    """We misused an API: a bug in our code, never retried."""
