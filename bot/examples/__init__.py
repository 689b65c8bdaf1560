"""Example strategy plugins that ship with the package (``momentum``: see its module docstring).

They are not built-in strategies: like your own, each is enabled by a ``[strategies.<name>]``
block naming its class (``plugin = "bot.examples.momentum:Momentum"``).
"""
