"""The local sim venue: a pure market model (``universe``, ``exchange``) and its I/O shell."""
