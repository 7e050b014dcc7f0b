"""``python -m ops``: the ``autolog`` CLI without the console script."""

from __future__ import annotations

import sys

from ops.cli import main

sys.exit(main())
