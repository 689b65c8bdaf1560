"""Market discovery: fetch Gamma's listings and choose the universe to trade.

The I/O half of discovery; the choosing is pure (``bot.core.universe``). Steps:

1. ``GET /events?active=true&closed=false&order=volume&ascending=false``, once per configured tag
   slug (``tag_slug=...``) or once unfiltered. Events embed their full markets, so this one
   listing yields every neg-risk event with all of its outcomes, and the tags that only events
   carry. ``closed=false`` is sent explicitly: Gamma's real default on ``/events`` is *true*.
2. ``GET /markets?active=true&closed=false&order=volumeNum&ascending=false`` when binary markets
   are wanted and no tag filter is set: it catches binary markets whose event the event listing
   missed (Gamma's flags on an event and its markets can disagree for a while). With a tag
   filter it would add nothing, because tags are only known through events.
3. The pure filter (``select_markets``). Markets Gamma lists without ``orderPriceMinTickSize``
   that the filter would choose get their tick from the CLOB (``GET /tick-size``); a market the
   CLOB does not know yet (Gamma can list new markets minutes before the CLOB has them) is left
   out.

The caller bounds the whole thing with a cancel scope; there is no timeout parameter. Listing
everything takes a few dozen paged requests, so ``progress`` receives a short status line per
page, for ``ProgressPrinter`` (or a log) to show.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Final, TextIO

import trio

from bot.config import MarketKind
from bot.core.universe import markets_missing_tick_size, select_markets
from bot.shell.rest import RestError

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from bot.config import DiscoveryConfig
    from bot.core.universe import Universe
    from bot.core.wire.gamma import GammaEvent, GammaMarket
    from bot.shell.rest import RestClient

__all__ = ["ProgressPrinter", "discover"]

_EVENT_QUERY: Final[dict[str, str | bool]] = {
    "active": True,
    "closed": False,
    "order": "volume",
    "ascending": False,
}
_MARKET_QUERY: Final[dict[str, str | bool]] = {
    "active": True,
    "closed": False,
    "order": "volumeNum",
    "ascending": False,
}


async def discover(
    rest: RestClient,
    cfg: DiscoveryConfig,
    *,
    now: datetime,
    progress: Callable[[str], None] | None = None,
) -> Universe:
    """Fetch Gamma's open events and markets and choose the universe (module docstring).

    Args:
        rest: The REST client (retries, rate limits).
        cfg: The discovery rules.
        now: The current wall-clock time, timezone-aware (``datetime.now(UTC)`` at the call
            site); the end-date window starts here.
        progress: Called with a short status line per page and a summary at the end.

    Returns:
        The chosen universe.

    Raises:
        RegionBlocked, RestError, VenueUnavailable: Gamma could not be listed.
        FrameDecodeError: a listing was malformed.
    """

    def say(line: str) -> None:
        if progress is not None:
            progress(line)

    events: list[GammaEvent] = []
    for tag in cfg.tag_slugs or (None,):
        query = _EVENT_QUERY if tag is None else {**_EVENT_QUERY, "tag_slug": tag}
        events += await rest.fetch_gamma_events(query, progress=progress)

    markets: list[GammaMarket] = []
    if cfg.kind is not MarketKind.NEG_RISK and not cfg.tag_slugs:
        markets = await rest.fetch_gamma_markets(_MARKET_QUERY, progress=progress)

    tick_sizes: dict[str, int] = {}
    missing = markets_missing_tick_size(markets, events, cfg, now)
    if missing:
        say(f"clob /tick-size: looking up {len(missing)} markets Gamma lists without a tick")
    for market in missing:
        try:
            tick_sizes[market.condition_id] = await rest.fetch_tick_size(market.clob_token_ids[0])
        except RestError as exc:
            # Typically 404: the CLOB does not know the market yet. It is left out.
            say(f"clob /tick-size: no tick for {market.condition_id} ({exc.message})")

    universe = select_markets(markets, events, cfg, now, tick_sizes=tick_sizes)
    neg_risk = universe.neg_risk_events()
    say(
        f"discovery: {len(universe.markets)} markets "
        f"({len(universe.binary_markets())} binary, {len(neg_risk)} neg-risk events)"
        + (f", {len(universe.skipped)} incomplete events skipped" if universe.skipped else "")
    )
    return universe


class ProgressPrinter:
    """A ``progress`` callback that prints to stderr, but only for slow operations.

    Nothing is printed during the first ``delay_s`` seconds, so a fast discovery stays silent;
    after that at most one line per ``interval_s`` is printed (the newest one wins), so paging
    through a hundred pages does not flood the terminal. ``finish`` prints the final state if
    anything was shown. Time comes from ``trio.current_time()``, so it must be created inside
    ``trio.run`` (and works with the mock clock).

    Synopsis::

        printer = ProgressPrinter()
        universe = await discover(rest, cfg.discovery, now=now, progress=printer)
        printer.finish()

    Args:
        delay_s: Stay silent until this many seconds have passed since creation.
        interval_s: Minimum seconds between printed lines.
        file: Where to print; ``sys.stderr`` (looked up at print time) by default.
    """

    def __init__(
        self, *, delay_s: float = 1.0, interval_s: float = 1.0, file: TextIO | None = None
    ) -> None:
        self.delay_s = delay_s
        self.interval_s = interval_s
        self._file = file
        self._start = trio.current_time()
        self._last_print: float | None = None
        self._pending: str | None = None
        self.printed = 0
        """Lines printed so far."""

    def __call__(self, line: str) -> None:
        """Show ``line`` now, or keep it as the pending newest line (sync, never blocks)."""
        now = trio.current_time()
        quiet = now - self._start <= self.delay_s
        too_soon = self._last_print is not None and now - self._last_print < self.interval_s
        if quiet or too_soon:
            self._pending = line
            return
        self._emit(line, now)

    def finish(self, line: str | None = None) -> None:
        """Print ``line`` (or the last suppressed line) if progress was shown at all."""
        if self._last_print is None:
            return
        text = line if line is not None else self._pending
        if text is not None:
            self._emit(text, trio.current_time())

    def _emit(self, line: str, now: float) -> None:
        print(line, file=self._file or sys.stderr, flush=True)
        self._last_print = now
        self._pending = None
        self.printed += 1
