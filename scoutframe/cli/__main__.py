"""``python -m scoutframe.cli``: the ``scoutframe`` command."""

from . import main

raise SystemExit(main())
