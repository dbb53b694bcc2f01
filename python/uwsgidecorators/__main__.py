"""``python -m uwsgidecorators``: the same as the ``uwsgidecorators`` command."""

from .cli import main

raise SystemExit(main())
