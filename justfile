# polybot task runner. Recipes that run the bot are thin wrappers over `polybot <subcommand>`.

set positional-arguments

python := if path_exists(".venv/bin/python") == "true" { ".venv/bin/python" } else { "python3" }

# List the recipes.
default:
    @just --list

# Install polybot and its dev tools into ./.venv (the README's install line does the same).
install:
    python3 -m venv .venv
    .venv/bin/pip install -e '.[dev]'

# Run the test suite.
test *args:
    {{python}} -m pytest "$@"

# Ruff and mypy --strict over bot/, tests/ and benchmarks/.
lint:
    {{python}} -m ruff check bot tests benchmarks
    {{python}} -m ruff format --check bot tests benchmarks
    {{python}} -m mypy

# Format the code with ruff.
fmt:
    {{python}} -m ruff format bot tests benchmarks
    {{python}} -m ruff check --fix bot tests benchmarks

# Benchmarks: one JSON line per figure, {"name", "value", "unit"}.
bench *args:
    {{python}} -m benchmarks "$@"

# Print the effective configuration (secrets redacted), or the error (exit 2).
config *args:
    {{python}} -m bot config "$@"

# Serve the local sim venue until Ctrl-C; the first stdout line holds its URLs (JSON).
sim *args:
    {{python}} -m bot sim "$@"

# The whole bot offline against the sim venue started in-process (no keys, no network).
demo *args:
    {{python}} -m bot demo "$@"

# The whole bot on live Polymarket data, deciding on paper (no orders are sent).
paper *args:
    {{python}} -m bot paper "$@"

# Discover markets with the configured filters and print them as a table (--sim: the sim venue).
scan *args:
    {{python}} -m bot scan "$@"

# Live top of book for a few markets in the terminal (--sim: the sim venue; --markets N).
watch *args:
    {{python}} -m bot watch "$@"

# Record every market-channel frame to a replayable file: just record --out FILE [--sim].
record *args:
    {{python}} -m bot record "$@"

# Run the whole bot on a recording (--speed X or --max) and print its health summary.
replay *args:
    {{python}} -m bot replay "$@"

# PnL by strategy and market, fees, hit rate, drawdown; writes the equity curve PNG.
report *args:
    {{python}} -m bot report "$@"

# Trade for real: signed orders to Polymarket. Needs POLY_PRIVATE_KEY (see README) and --confirm-live;
# `just run --venue sim` takes the same path against the sim venue (no money, no keys needed).
run *args:
    {{python}} -m bot run "$@"

# Check live-trading readiness: keys, region, clock skew, auth, balances, a book, the user channel.
doctor *args:
    {{python}} -m bot doctor "$@"
