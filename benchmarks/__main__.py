"""``just bench``: run the benchmarks and print one JSON line per figure.

Every figure has the same shape, ``{"name": ..., "value": ..., "unit": ...}``, so results can be
grepped, diffed and plotted across runs. Benchmarks run on one core in this process; they are not
part of ``just test`` (tests stay fast and deterministic; speed targets live here).

Usage: ``just bench`` (everything), ``just bench --only decode`` (names containing "decode"),
``just bench --quick`` (smaller runs, for a smoke check).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import orjson

from benchmarks import (
    core_feed,
    live_orders,
    runtime_bus,
    runtime_latency,
    sim_venue,
    transport,
)

if TYPE_CHECKING:
    from benchmarks.common import Result

SUITES = {
    "core_feed": core_feed.run,
    "live_orders": live_orders.run,
    "runtime_bus": runtime_bus.run,
    "runtime_latency": runtime_latency.run,
    "sim_venue": sim_venue.run,
    "transport": transport.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="just bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run only figures whose name contains this")
    parser.add_argument("--quick", action="store_true", help="smaller runs (smoke check)")
    args = parser.parse_args(argv)
    for run in SUITES.values():
        for result in run(quick=args.quick, only=args.only):
            emit(result)
    return 0


def emit(result: Result) -> None:
    sys.stdout.write(orjson.dumps(result.as_dict()).decode() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
