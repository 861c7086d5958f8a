"""``python -m bertforge.cli`` (how torchrun starts it)."""

from . import main

raise SystemExit(main())
