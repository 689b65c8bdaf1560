"""``python -m bot`` is the same as the ``polybot`` console script."""

from bot.cli import main

raise SystemExit(main())
