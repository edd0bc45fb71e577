"""``python -m scoutframe.cli``: the ``scoutframe`` command."""

from scoutframe.cli import main

raise SystemExit(main())
