"""The pure core: values in, values out.

Nothing under ``bot.core`` imports trio, httpx, trio_websocket or loguru, touches the network or a
file, or reads a clock; callers pass ``now`` in. ``tests/test_layering.py`` enforces this.
"""
