"""``python -m bot``: the same entry point as the ``kontext-bot`` console script."""

from __future__ import annotations

import sys

from bot.cli import main

sys.exit(main())
