"""``polybot`` as a real process: start it, wait until it says it runs, SIGINT it, collect it.

What an operator's Ctrl-C does, for the tests that check a whole process stops cleanly (exit 0,
nothing left resting, every record on disk). Synchronous on purpose: the child is a separate
process on the real clock, and the bounded waits here are all the test needs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

RUNNING = b"polybot running"
"""What polybot writes on stderr once every task has started."""


@attrs.frozen
class Interrupted:
    """How an interrupted polybot process ended, and everything it wrote."""

    returncode: int
    stdout: bytes
    """Empty when stdout was not captured."""
    stderr: bytes
    """All of it: what came before the marker and what came after the signal."""

    def stderr_tail(self) -> str:
        """The end of stderr, for an assertion message."""
        return self.stderr.decode(errors="replace")[-2000:]


def interrupt_polybot(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    run_s: float,
    capture_stdout: bool = True,
    marker: bytes = RUNNING,
    start_within_s: float = 30.0,
    stop_within_s: float = 20.0,
) -> Interrupted:
    """Run ``python -m bot *args``; once ``marker`` is on its stderr, let it run ``run_s`` more
    seconds, send SIGINT and wait for it to exit.

    Stderr is read while waiting for the marker, so a chatty process never blocks on a full pipe.
    Leave stdout uncaptured (``capture_stdout=False``) where the process writes a lot there
    before the signal (it would fill the pipe, nobody reads it until the end).

    Raises:
        AssertionError: the marker did not appear within ``start_within_s`` (the process's last
            stderr is in the message).
        subprocess.TimeoutExpired: it did not exit within ``stop_within_s`` of the signal.
    """
    with subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    ) as process:
        try:
            seen = _wait_for_marker(process, marker, start_within_s)
            time.sleep(run_s)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=stop_within_s)
        finally:
            if process.poll() is None:
                process.kill()
    return Interrupted(process.returncode, out or b"", seen + (err or b""))


def _wait_for_marker(process: subprocess.Popen[bytes], marker: bytes, within_s: float) -> bytes:
    """Stderr up to (and a little past) ``marker``, read without blocking."""
    assert process.stderr is not None
    os.set_blocking(process.stderr.fileno(), False)
    deadline = time.monotonic() + within_s
    seen = b""
    while marker not in seen and time.monotonic() < deadline:
        chunk = process.stderr.read()
        if chunk:
            seen += chunk
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.1)
    assert marker in seen, seen.decode(errors="replace")[-2000:]
    return seen
