"""The web dashboard (``--dashboard web``): the bot at a glance in a browser, live.

One small ASGI app, served by hypercorn's trio worker inside the bot's own nursery (the same
server the sim venue uses: no second event loop, no thread; cancelling the nursery stops it):

=====================  ====================================================================
``GET /``              one self-contained HTML page: inline CSS and JS, no CDN, no external
                       request; its two charts (PnL over time, the worst refresh gaps) are
                       drawn on ``<canvas>`` by its own script
``GET /events``        server-sent events: ``history`` once (the PnL points kept so far), then
                       a ``snapshot`` every ``refresh_s``
``GET /api/snapshot``  the latest snapshot as JSON (``bot.shell.snapshot``)
``GET /metrics``       Prometheus text exposition (``bot.shell.metrics.metrics_exposition``)
``POST /api/pause``    refuse new orders (``RiskGate.paused``); resting orders stay
``POST /api/resume``   accept orders again
``POST /api/cancel-all``  cancel every strategy's open orders (``Execution.cancel_all``)
=====================  ====================================================================

One sampler task takes a snapshot every ``refresh_s`` and encodes it once; every request and
every event stream serves that encoding. So the bot's cost does not grow with the number of
browsers, and the dashboard never touches the feed's path: it reads the bot on its own timer.

Read-only by default. The control actions answer ``403`` unless control was enabled
(``[dashboard] control = true``) *and* a token was given (from the environment variable named
by ``control_token_env``), and then only to a request carrying ``Authorization: Bearer
<token>`` (compared in constant time). A page from another site cannot send that header to us
without a CORS preflight, which this server never grants, so a browser visiting a hostile page
cannot press the buttons. Bound to loopback (the default), requests must also name a loopback
``Host``: a DNS-rebinding page, whose requests carry its own host name, gets ``421``.

Synopsis::

    url = await nursery.start(serve_dashboard, handle, cfg.dashboard)   # e.g. with port 0
    url = await nursery.start(partial(serve_dashboard, handle, cfg.dashboard, token=token))
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
from collections import deque
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import attrs
import hypercorn.config
import hypercorn.trio
import orjson
import trio
from loguru import logger

from bot.shell.snapshot import take_snapshot

if TYPE_CHECKING:
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

    from bot.app import BotHandle
    from bot.config import DashboardConfig

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_STREAMS",
    "DashboardApp",
    "dashboard_page",
    "serve_dashboard",
]

MAX_BODY_BYTES: Final = 65_536
"""Largest request body read (the control actions take none; anything bigger is refused)."""

MAX_STREAMS: Final = 16
"""Event streams served at once; more get ``503`` (each is one task and one socket)."""


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host name of a ``Host`` header (without the port; IPv6 without brackets)."""
    try:
        return (urlsplit(f"//{header}").hostname or "").lower()
    except ValueError:
        return ""


@attrs.define(eq=False)
class DashboardApp:
    """The ASGI application (see the module docstring); ``run_sampler`` feeds it.

    Attributes:
        handle: the running bot.
        refresh_s: seconds between snapshots.
        history_points: PnL points kept for the chart.
        token: the control token; ``None``: read-only (every control action is ``403``).
        loopback_only: accept only requests whose ``Host`` is a loopback name.
    """

    handle: BotHandle
    refresh_s: float = 1.0
    history_points: int = 600
    token: str | None = None
    loopback_only: bool = True
    snapshots: int = attrs.field(default=0, init=False)
    """Snapshots taken so far."""
    _latest: bytes = attrs.field(default=b"", init=False)
    _history: deque[tuple[float, float]] = attrs.field(init=False)
    _fresh: trio.Event = attrs.field(factory=trio.Event, init=False)
    _streams: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        self._history = deque(maxlen=self.history_points)

    # --- sampling --------------------------------------------------------------------------------

    def sample(self) -> None:
        """Take one snapshot now, encode it, remember its PnL point and wake the streams."""
        now = trio.current_time()
        snap = take_snapshot(self.handle, now)
        snap["control"] = self.token is not None
        self._latest = orjson.dumps(snap)
        self._history.append((round(now, 3), float(Decimal(snap["pnl"]["total"]))))
        self.snapshots += 1
        fresh, self._fresh = self._fresh, trio.Event()
        fresh.set()

    async def run_sampler(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Sample every ``refresh_s`` until cancelled (the first sample at once)."""
        self.sample()
        task_status.started()
        while True:
            deadline = trio.current_time() + self.refresh_s
            await trio.sleep_until(deadline)
            self.sample()

    def history_json(self) -> bytes:
        return orjson.dumps(
            {"t": [t for t, _ in self._history], "pnl": [p for _, p in self._history]}
        )

    # --- ASGI ------------------------------------------------------------------------------------

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return  # no WebSocket here: hypercorn refuses the upgrade when the app returns
        try:
            await self._http(scope, receive, send)
        except Exception:
            # hypercorn would log and swallow it; say what broke, in our own log, and answer.
            logger.opt(exception=True).error(
                "dashboard: {} {} failed", scope["method"], scope["path"]
            )
            with contextlib.suppress(Exception):  # the response may have begun already
                await _send_text(send, 500, "the dashboard failed on this request; see the log")

    async def _http(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.loopback_only and not _is_loopback(_host_name(headers.get("host", ""))):
            await _send_text(send, 421, "this dashboard answers only to a loopback Host")
            return
        method, path = scope["method"], scope["path"]
        routes = {
            "/": ("GET", self._page),
            "/events": ("GET", self._events),
            "/api/snapshot": ("GET", self._snapshot),
            "/metrics": ("GET", self._metrics),
            "/api/pause": ("POST", self._pause),
            "/api/resume": ("POST", self._resume),
            "/api/cancel-all": ("POST", self._cancel_all),
        }
        route = routes.get(path)
        if route is None:
            await _send_text(send, 404, f"no such path: {path[:80]}")
            return
        allowed, handler = route
        if method != allowed:
            await _send_text(
                send,
                405,
                f"{method[:16]} not allowed on {path}; use {allowed}",
                extra=[(b"allow", allowed.encode())],
            )
            return
        if allowed == "POST":
            if not await _drain_body(receive):
                await _send_text(send, 413, f"request body over {MAX_BODY_BYTES} bytes")
                return
            refusal = self._refusal(headers.get("authorization", ""))
            if refusal is not None:
                await _send_text(send, 403, refusal)
                return
        await handler(receive, send)

    def _refusal(self, authorization: str) -> str | None:
        """Why a control action is refused, or ``None`` if it may proceed."""
        if self.token is None:
            return (
                "control actions are disabled: this dashboard is read-only (enable them with "
                "[dashboard] control = true and the token in the control_token_env variable)"
            )
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        ):
            return "control actions need the header Authorization: Bearer <token>"
        return None

    async def _page(self, _receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        await _send(send, 200, dashboard_page().encode(), b"text/html; charset=utf-8")

    async def _snapshot(self, _receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if not self._latest:
            self.sample()
        await _send(send, 200, self._latest, b"application/json")

    async def _metrics(self, _receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        try:
            # Imported here: the metrics module (prometheus-client) is only paid for when scraped.
            from bot.shell.metrics import metrics_exposition
        except ImportError as exc:
            await _send_text(send, 404, f"metrics are not available: {exc}")
            return
        body, content_type = metrics_exposition(self.handle)
        await _send(send, 200, body, content_type.encode())

    async def _events(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if self._streams >= MAX_STREAMS:
            await _send_text(send, 503, f"too many event streams open (at most {MAX_STREAMS})")
            return
        self._streams += 1
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream"),
                        (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
                if not self._latest:
                    self.sample()
                first = (
                    b"retry: 2000\nevent: history\ndata: " + self.history_json() + b"\n\n"
                    b"event: snapshot\ndata: " + self._latest + b"\n\n"
                )
                await send({"type": "http.response.body", "body": first, "more_body": True})
                while True:
                    await self._fresh.wait()
                    event = b"event: snapshot\ndata: " + self._latest + b"\n\n"
                    await send({"type": "http.response.body", "body": event, "more_body": True})
        finally:
            self._streams -= 1

    async def _pause(self, _receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        risk = self.handle.engine.risk
        if risk.paused is None:
            risk.paused = "by the operator (dashboard)"
            logger.warning("dashboard: trading paused by the operator; new orders are refused")
        await _send_json(send, {"paused": True})

    async def _resume(self, _receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        risk = self.handle.engine.risk
        if risk.paused is not None:
            risk.paused = None
            logger.warning("dashboard: trading resumed by the operator")
        await _send_json(send, {"paused": False})

    async def _cancel_all(self, _receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        executor = self.handle.executor
        if executor is None:
            await _send_text(send, 503, "this bot has no execution task to cancel orders with")
            return
        logger.warning("dashboard: the operator cancels every open order")
        cancelled = await executor.cancel_all("operator_cancel_all")
        await _send_json(send, {"cancelled": cancelled})


async def _cancel_on_disconnect(receive: ASGIReceiveCallable, scope: trio.CancelScope) -> None:
    """End an event stream when its client goes away (a send alone may not notice)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel(reason="the client disconnected")
            return


async def _drain_body(receive: ASGIReceiveCallable) -> bool:
    """Read and discard the request body; ``False`` if it is over ``MAX_BODY_BYTES``."""
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return True
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return False
        if not message.get("more_body", False):
            return True


async def _send(
    send: ASGISendCallable,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_text(
    send: ASGISendCallable,
    status: int,
    message: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await _send(send, status, f"{message}\n".encode(), b"text/plain; charset=utf-8", extra)


async def _send_json(send: ASGISendCallable, data: dict[str, Any]) -> None:
    await _send(send, 200, orjson.dumps(data), b"application/json")


def _hypercorn_config(host: str, port: int) -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"  # not the "Running on ..." line: the URL is returned instead
    config.graceful_timeout = 0.5
    return config


async def serve_dashboard(
    handle: BotHandle,
    cfg: DashboardConfig,
    *,
    token: str | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the web dashboard until cancelled; ``task_status.started(url)`` once it listens.

    Args:
        handle: the running bot.
        cfg: host, port (0: a free one), refresh_s and history_points.
        token: the control token; ``None`` keeps the dashboard read-only.

    Raises:
        OSError: the address could not be bound (in use, or not allowed); the message names it.
    """
    app = DashboardApp(
        handle,
        refresh_s=cfg.refresh_s,
        history_points=cfg.history_points,
        token=token,
        loopback_only=_is_loopback(cfg.host),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run_sampler)
        try:
            binds: list[str] = await nursery.start(
                partial(
                    hypercorn.trio.serve, app, _hypercorn_config(cfg.host, cfg.port), mode="asgi"
                )
            )
        except OSError as exc:
            raise OSError(
                exc.errno, f"web dashboard: cannot listen on {cfg.host}:{cfg.port}: {exc}"
            ) from exc
        task_status.started(binds[0].rstrip("/") + "/")


def dashboard_page() -> str:
    """The dashboard's HTML page: self-contained (inline CSS and JS, no external request)."""
    return _PAGE


_PAGE: Final = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>polybot dashboard</title>
<style>
:root { --bg:#0f1216; --card:#171b21; --line:#262c35; --text:#d8dee6; --dim:#8a94a3;
        --ok:#3fb950; --warn:#d29922; --alert:#f85149; --accent:#58a6ff; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--text);
       font:13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
header { display:flex; flex-wrap:wrap; gap:18px; align-items:center; padding:10px 16px;
         border-bottom:1px solid var(--line); background:var(--card); }
header h1 { font-size:15px; margin:0; }
.badge { padding:2px 10px; border-radius:10px; font-weight:bold; text-transform:uppercase; }
.badge.ok { background:#12361c; color:var(--ok); }
.badge.warn { background:#3a2d0b; color:var(--warn); }
.badge.alert { background:#4a1412; color:var(--alert); }
.badge.off { background:#333; color:var(--dim); }
.kv { color:var(--dim); } .kv b { color:var(--text); font-weight:600; }
main { display:grid; grid-template-columns:repeat(auto-fit, minmax(460px, 1fr)); gap:12px;
       padding:12px; }
section { background:var(--card); border:1px solid var(--line); border-radius:6px;
          padding:10px 12px;
          overflow:auto; }
section { scrollbar-color:#30363d var(--card); }
section.wide { grid-column:1 / -1; }
h2 { font-size:12px; letter-spacing:.08em; text-transform:uppercase; color:var(--accent);
     margin:0 0 8px; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:2px 8px 2px 0; white-space:nowrap; }
th { color:var(--dim); font-weight:normal; border-bottom:1px solid var(--line); }
td.n, th.n { text-align:right; }
.ok { color:var(--ok); } .warn { color:var(--warn); }
.alert { color:var(--alert); } .dim { color:var(--dim); }
#alerts div { padding:2px 0; }
canvas { width:100%; height:220px; display:block; }
button { background:#21262d; color:var(--text); border:1px solid var(--line); border-radius:4px;
         padding:4px 12px; cursor:pointer; font:inherit; }
button:hover { border-color:var(--accent); }
input { background:#0d1117; color:var(--text); border:1px solid var(--line); border-radius:4px;
        padding:4px 8px; font:inherit; width:220px; }
</style>
</head>
<body>
<header>
  <h1>polybot</h1>
  <span id="status" class="badge off">connecting</span>
  <span class="kv">PnL <b id="pnl-total">-</b></span>
  <span class="kv">fees <b id="fees">-</b></span>
  <span class="kv">events/s <b id="events-per-s">-</b></span>
  <span class="kv">events <b id="events-total">-</b></span>
  <span class="kv">tokens <b id="tokens">-</b> (stale <b id="stale">-</b>)</span>
  <span class="kv">reconnects <b id="reconnects">-</b></span>
  <span class="kv">loop lag p99 <b id="loop-lag">-</b></span>
  <span class="kv">kill switch <b id="kill-switch">-</b></span>
  <span class="kv">updates <b id="updates">0</b></span>
</header>
<main>
  <section class="wide" id="alerts-card"><h2>Alerts</h2>
    <div id="alerts"><span class="dim">none</span></div></section>
  <section><h2>PnL over time</h2><canvas id="pnl-chart"></canvas></section>
  <section><h2>Worst refresh gaps (seconds)</h2><canvas id="gap-chart"></canvas></section>
  <section><h2>Feed shards</h2><table id="shards"></table></section>
  <section><h2>Strategies</h2><table id="strategies"></table></section>
  <section><h2>Risk</h2><table id="risk"></table>
    <div id="control" style="display:none; margin-top:10px">
      <input id="token" type="password" placeholder="control token" autocomplete="off">
      <button data-action="pause">Pause</button> <button data-action="resume">Resume</button>
      <button data-action="cancel-all">Cancel all</button>
      <span id="control-result" class="dim"></span>
    </div>
    <div id="read-only" class="dim" style="margin-top:8px">
      read-only: control actions are disabled</div>
  </section>
  <section><h2>Open orders <span id="orders-count" class="dim"></span></h2>
    <table id="orders"></table></section>
  <section><h2>Positions <span id="positions-count" class="dim"></span></h2>
    <table id="positions"></table></section>
  <section class="wide"><h2>Recent decisions</h2><table id="decisions"></table></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const pnlHistory = { t: [], pnl: [] };
const MAX_POINTS = 600;
let updates = 0;
let latest = null;

function text(id, value) {
  $(id).textContent = value === null || value === undefined ? "-" : String(value);
}
function num(v, digits) { return v === null || v === undefined ? "-" : Number(v).toFixed(digits); }

// Tables are built with textContent only: market names come from the venue, never as HTML.
function table(id, columns, rows) {
  const el = $(id);
  el.replaceChildren();
  const head = el.insertRow();
  for (const [label, , right] of columns) {
    const th = document.createElement("th");
    th.textContent = label;
    if (right) th.className = "n";
    head.appendChild(th);
  }
  for (const row of rows) {
    const tr = el.insertRow();
    for (const [, get, right, style] of columns) {
      const td = tr.insertCell();
      const v = get(row);
      td.textContent = v === null || v === undefined ? "-" : String(v);
      const cls = [right ? "n" : "", style ? style(row) : ""].join(" ").trim();
      if (cls) td.className = cls;
    }
  }
  if (!rows.length) {
    const td = el.insertRow().insertCell();
    td.colSpan = columns.length; td.className = "dim"; td.textContent = "none";
  }
}

function details(detail, limit) {
  return Object.entries(detail).slice(0, limit).map(([k, v]) => k + "=" + v).join(" ");
}

function lastDecision(rows) {
  return rows.length ? rows[0].kind + " " + rows[0].key.slice(0, 12) : "-";
}

function stateClass(state) {
  if (state === "connected" || state === "running") return "ok";
  if (["frozen", "down", "killed", "disabled"].includes(state)) return "alert";
  return "warn";
}

function setupCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 400, h = canvas.clientHeight || 220;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px ui-monospace, monospace";
  return [ctx, w, h];
}

function drawPnl() {
  const [ctx, w, h] = setupCanvas($("pnl-chart"));
  const ts = pnlHistory.t, ys = pnlHistory.pnl;
  const left = 64, right = 8, top = 10, bottom = 22;
  ctx.fillStyle = "#8a94a3";
  if (ts.length < 2) { ctx.fillText("waiting for data...", left, h / 2); return; }
  let lo = Math.min(0, ...ys), hi = Math.max(0, ...ys);
  if (hi - lo < 1e-6) { hi += 1; lo -= 1; }
  const t0 = ts[0], t1 = ts[ts.length - 1];
  const x = (t) => left + (w - left - right) * (t - t0) / Math.max(1e-9, t1 - t0);
  const y = (v) => top + (h - top - bottom) * (hi - v) / (hi - lo);
  ctx.strokeStyle = "#262c35"; ctx.lineWidth = 1;
  for (const v of [lo, (lo + hi) / 2, hi]) {
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(w - right, y(v)); ctx.stroke();
    ctx.fillText(v.toFixed(2), 4, y(v) + 4);
  }
  ctx.strokeStyle = "#555"; ctx.setLineDash([4, 4]);
  ctx.beginPath(); ctx.moveTo(left, y(0)); ctx.lineTo(w - right, y(0)); ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillText("-" + (t1 - t0).toFixed(0) + " s", left, h - 6);
  ctx.fillText("now", w - right - 24, h - 6);
  const last = ys[ys.length - 1];
  ctx.strokeStyle = last >= 0 ? "#3fb950" : "#f85149"; ctx.lineWidth = 2;
  ctx.beginPath();
  ts.forEach((t, i) => (i ? ctx.lineTo(x(t), y(ys[i])) : ctx.moveTo(x(t), y(ys[i]))));
  ctx.stroke();
}

function drawGaps(gaps) {
  const [ctx, w, h] = setupCanvas($("gap-chart"));
  ctx.fillStyle = "#8a94a3";
  if (!gaps.length) { ctx.fillText("no refresh measured yet", 8, h / 2); return; }
  const labelW = Math.min(230, w * 0.45), right = 52;
  const max = Math.max(1, ...gaps.map((g) => g.gap_s));
  const rowH = Math.min(22, (h - 8) / gaps.length);
  gaps.forEach((g, i) => {
    const yTop = 4 + i * rowH, barH = Math.max(3, rowH - 6);
    const scale = (w - labelW - right) / max;
    ctx.fillStyle = "#8a94a3";
    const label = g.market.length > 34 ? g.market.slice(0, 33) + "~" : g.market;
    ctx.fillText(label, 4, yTop + barH);
    ctx.fillStyle = g.gap_s >= 30 ? "#d29922" : "#58a6ff";
    ctx.fillRect(labelW, yTop + 2, Math.max(1, g.gap_s * scale), barH);
    ctx.fillStyle = "#f85149";  // the current silence, as a marker on the bar
    ctx.fillRect(labelW + g.silence_s * scale - 1, yTop, 2, barH + 4);
    ctx.fillStyle = "#d8dee6";
    ctx.fillText(g.gap_s.toFixed(1), labelW + g.gap_s * scale + 4, yTop + barH);
  });
}

function render(s) {
  latest = s;
  updates += 1;
  const badge = $("status");
  badge.textContent = s.status; badge.className = "badge " + s.status;
  text("pnl-total", s.pnl.total); text("fees", s.pnl.fees);
  text("events-per-s", num(s.summary.events_per_s, 1)); text("events-total", s.summary.events);
  text("tokens", s.summary.tokens); text("stale", s.summary.stale_tokens);
  text("reconnects", s.summary.reconnects);
  text("loop-lag", num(s.summary.loop_lag.p99_ms, 1) + " ms");
  const kill = $("kill-switch");
  kill.textContent = s.risk.kill_switch ? "TRIPPED" : "armed";
  kill.className = s.risk.kill_switch ? "alert" : "ok";
  text("updates", updates);
  const alerts = $("alerts");
  alerts.replaceChildren();
  for (const a of s.alerts) {
    const div = document.createElement("div");
    div.className = a.level; div.textContent = "\u25cf " + a.text; alerts.appendChild(div);
  }
  if (!s.alerts.length) {
    const span = document.createElement("span");
    span.className = "ok"; span.textContent = "all clear"; alerts.appendChild(span);
  }
  table("shards", [
    ["shard", (r) => r.shard], ["state", (r) => r.state, false, (r) => stateClass(r.state)],
    ["ready", (r) => r.tokens_ready + "/" + r.tokens, true], ["events", (r) => r.events, true],
    ["reconn", (r) => r.reconnects, true], ["malformed", (r) => r.malformed, true],
    ["data age", (r) => num(r.data_age_s, 1), true], ["detail", (r) => r.detail]], s.shards);
  table("strategies", [
    ["strategy", (r) => r.name], ["state", (r) => r.state, false, (r) => stateClass(r.state)],
    ["decisions", (r) => r.decisions, true], ["orders", (r) => r.open_orders, true],
    ["p50 ms", (r) => num(r.tick_to_decision.p50_ms, 2), true],
    ["p99 ms", (r) => num(r.tick_to_decision.p99_ms, 2), true], ["pnl", (r) => r.pnl, true],
    ["last decision", (r) => lastDecision(r.last_decisions)]],
    s.strategies);
  const risk = s.risk;
  table("risk", [["", (r) => r[0]], ["", (r) => r[1], false, (r) => r[2] || ""]], [
    ["kill switch", risk.kill_switch ? "TRIPPED: " + risk.killed_reason : "armed",
     risk.kill_switch ? "alert" : "ok"],
    ["trading", risk.paused ? "PAUSED " + risk.paused_reason : "active",
     risk.paused ? "warn" : "ok"],
    ["exposure", risk.exposure + " / " + risk.limits.max_total_exposure],
    ["daily loss limit", risk.limits.daily_loss_limit],
    ["rejections", risk.rejections],
    ["orders sent / fills", s.execution.orders_sent + " / " + s.execution.fills]].concat(
    s.live === null ? [["mode", "paper"]] : [
      ["mode", "LIVE", "warn"],
      ["heartbeat", s.live.heartbeat_ok ? "ok, " + num(s.live.heartbeat_age_s, 1) + " s ago"
        : "FAILING", s.live.heartbeat_ok ? "ok" : "alert"],
      ["user channel", s.live.user_channel_ready ? "ready" : "DOWN",
        s.live.user_channel_ready ? "ok" : "alert"],
      ["provisional fills", s.live.provisional_fills + " ($" + s.live.provisional_notional + ")"],
      ["reconciled / orphans", s.live.reconciled_orders + " / " + s.live.orphans_cancelled]]));
  $("control").style.display = s.control ? "block" : "none";
  $("read-only").style.display = s.control ? "none" : "block";
  text("orders-count", "(" + s.orders.count + ")");
  table("orders", [["strategy", (r) => r.strategy], ["side", (r) => r.side],
    ["price", (r) => r.price, true],
    ["size", (r) => r.size, true], ["filled", (r) => r.filled, true], ["type", (r) => r.type],
    ["age s", (r) => num(r.age_s, 1), true], ["market", (r) => r.market]], s.orders.rows);
  text("positions-count", "(" + s.positions.count + ")");
  table("positions", [["strategy", (r) => r.strategy], ["shares", (r) => r.shares, true],
    ["mark", (r) => r.mark, true], ["value", (r) => r.value, true], ["market", (r) => r.market]],
    s.positions.rows);
  table("decisions", [["age s", (r) => num(r.age_s, 1), true], ["strategy", (r) => r.strategy],
    ["decision", (r) => r.kind], ["key", (r) => r.key.slice(0, 16)],
    ["detail", (r) => details(r.detail, 5)]], s.decisions);
  drawGaps(s.refresh_gaps);
}

function addPoint(s) {
  const t = s.now, last = pnlHistory.t[pnlHistory.t.length - 1];
  if (last !== undefined && t <= last) return;
  pnlHistory.t.push(t); pnlHistory.pnl.push(parseFloat(s.pnl.total));
  if (pnlHistory.t.length > MAX_POINTS) { pnlHistory.t.shift(); pnlHistory.pnl.shift(); }
}

const source = new EventSource("/events");
source.addEventListener("history", (e) => {
  const h = JSON.parse(e.data);
  pnlHistory.t = h.t; pnlHistory.pnl = h.pnl;
});
source.addEventListener("snapshot", (e) => {
  const s = JSON.parse(e.data);
  addPoint(s); render(s); drawPnl();
});
source.onerror = () => {
  const b = $("status");
  b.textContent = "reconnecting"; b.className = "badge off";
};
window.addEventListener("resize", () => { drawPnl(); if (latest) drawGaps(latest.refresh_gaps); });

for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", async () => {
    const action = button.dataset.action;
    if (action === "cancel-all" && !confirm("Cancel every open order?")) return;
    const out = $("control-result");
    try {
      const r = await fetch("/api/" + action, { method: "POST",
        headers: { "Authorization": "Bearer " + $("token").value } });
      out.textContent = action + ": " + (r.ok ? await r.text() : r.status + " " + (await r.text()));
    } catch (err) { out.textContent = action + ": " + err; }
  });
}
</script>
</body>
</html>
"""
