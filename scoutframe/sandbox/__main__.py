"""``python -m scoutframe.sandbox``: same as ``scoutframe sandbox``."""

from __future__ import annotations

import sys

from scoutframe.sandbox.cli import main

if __name__ == "__main__":
    sys.exit(main())
