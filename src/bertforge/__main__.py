"""``python -m bertforge``: the ``bertforge`` command, for environments without the script on PATH."""

from .cli import main

raise SystemExit(main())
