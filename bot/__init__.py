"""polybot: a Trio trading bot for Polymarket.

The package is split into a pure core (``bot.core``: wire model, order books, money; no trio,
no I/O, no clock) and a thin Trio shell (``bot.shell``) that owns sockets, tasks, files and time.
"""

__version__ = "0.1.0"
