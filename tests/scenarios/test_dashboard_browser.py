"""The web dashboard in a real browser: headless Chromium against a demo bot on the sim venue.

The bot runs on the sim venue with the web dashboard on a free port; Debian's ``chromium``
opens the page with its DevTools port on (``--remote-debugging-port=0``), and the test drives it
over the DevTools protocol (a WebSocket; trio-websocket, no selenium): it reads the page's live
values twice while the venue runs and checks that they moved, that the charts were drawn and
that nothing was loaded from anywhere but the dashboard, then saves a screenshot to the test's
tmp dir and to ``logs/test-artifacts/dashboard.png`` (gitignored).

Without chromium the test is skipped, unless ``POLYBOT_REQUIRE_BROWSER`` is set (CI sets it, and
installs chromium), where a missing browser is a failure: CI cannot skip it silently.
"""

from __future__ import annotations

import base64
import itertools
import os
import shutil
import subprocess
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
import trio
from trio_websocket import open_websocket_url

from bot.shell.dashboard_web import serve_dashboard
from tests.shell.dashboard_helpers import dashboard_config, running_demo, wait_until

if TYPE_CHECKING:
    from trio_websocket import WebSocketConnection

ARTIFACTS = Path(__file__).resolve().parents[2] / "logs" / "test-artifacts"

# What the page shows, read in the page itself (one round trip per look).
LOOK = """(() => {
  if (!document.getElementById("updates")) return { updates: -1 };  // still loading
  const cells = (id) => [...document.querySelectorAll(`#${id} td`)].map((td) => td.textContent);
  const inked = (id) => {
    const c = document.getElementById(id);
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n += 1;
    return n;
  };
  return {
    updates: Number(document.getElementById("updates").textContent),
    events: Number(document.getElementById("events-total").textContent),
    pnl: document.getElementById("pnl-total").textContent,
    status: document.getElementById("status").textContent,
    strategies: cells("strategies"),
    shards: cells("shards"),
    readOnly: getComputedStyle(document.getElementById("read-only")).display !== "none",
    pnlInk: inked("pnl-chart"),
    gapInk: inked("gap-chart"),
    resources: performance.getEntriesByType("resource").map((e) => e.name),
  };
})()"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path is not None:
            return path
    return None


class DevTools:
    """The few DevTools protocol calls the test needs, over one page's WebSocket."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        await self._ws.send_message(
            orjson.dumps({"id": call_id, "method": method, "params": params}).decode()
        )
        while True:  # events (no "id") and other answers are skipped
            message = orjson.loads(await self._ws.get_message())
            if message.get("id") == call_id:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"]["value"]


async def devtools_page_url(profile: Path, page: str) -> str:
    """The WebSocket URL of the tab showing ``page``, once the browser announced its port."""
    port_file = profile / "DevToolsActivePort"

    def announced() -> bool:  # the file shows up before its lines are written
        return port_file.exists() and len(port_file.read_text().splitlines()) >= 2

    await wait_until(announced, limit_s=20)
    port = int(port_file.read_text().splitlines()[0])
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.fail_after(10):
            while True:
                targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
                for target in targets:
                    if target.get("type") == "page" and target.get("url", "").startswith(page):
                        url: str = target["webSocketDebuggerUrl"]
                        return url
                await trio.sleep(0.1)


@pytest.fixture
def chromium() -> str:
    """The browser's path; skips (or, with ``POLYBOT_REQUIRE_BROWSER`` set, fails) without one.

    A sync fixture, so the skip keeps its reason in pytest's report."""
    path = find_chromium()
    if path is None:
        if os.environ.get("POLYBOT_REQUIRE_BROWSER"):
            pytest.fail("POLYBOT_REQUIRE_BROWSER is set but no chromium is installed")
        pytest.skip(
            "Debian's chromium is not installed (apt-get install chromium); CI installs it "
            "and sets POLYBOT_REQUIRE_BROWSER=1 so this cannot be skipped there"
        )
    return path


async def test_the_page_shows_the_running_bot_live_in_headless_chromium(
    tmp_path: Path, chromium: str
) -> None:
    cfg = dashboard_config(tmp_path / "bot")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    (tmp_path / "bot").mkdir()
    async with running_demo(cfg) as handle, trio.open_nursery() as nursery:
        url: str = await nursery.start(serve_dashboard, handle, cfg.dashboard)
        browser = await nursery.start(
            partial(
                trio.run_process,
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    f"--user-data-dir={profile}",
                    "--remote-debugging-port=0",
                    "--window-size=1400,1500",
                    url,
                ],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        async with open_websocket_url(await devtools_page_url(profile, url)) as ws:
            page = DevTools(ws)
            with trio.fail_after(20):
                while (first := await page.evaluate(LOOK))["updates"] < 2:  # noqa: ASYNC110
                    await trio.sleep(0.1)
            await trio.sleep(1.5)  # the sim venue keeps trading; the page must follow
            second = await page.evaluate(LOOK)
            shot = await page.call("Page.captureScreenshot", format="png")
            await page.call("Browser.close")
        with trio.move_on_after(5):
            await browser.wait()
        nursery.cancel_scope.cancel()

    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 20_000
    (tmp_path / "dashboard.png").write_bytes(png)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "dashboard.png").write_bytes(png)

    # Live: the server-sent events keep coming and the values on the page move.
    assert second["updates"] >= first["updates"] + 3  # refresh_s is 0.2 s
    assert second["events"] > first["events"] > 0
    assert first["status"] in ("ok", "warn", "alert")
    for name in handle.strategies:
        assert name in second["strategies"], name
    assert "connected" in second["shards"]
    assert second["readOnly"] is True
    # Both charts were drawn (non-transparent pixels on each canvas).
    assert second["pnlInk"] > 1_000
    assert second["gapInk"] > 1_000
    # Self-contained: every request the page made went to the dashboard itself.
    assert second["resources"], "the page opened no event stream"
    assert all(name.startswith(url) for name in second["resources"]), second["resources"]
