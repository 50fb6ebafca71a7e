"""``python -m minigraph ...``: the command line (see :mod:`minigraph.cli`)."""
from .cli import main

raise SystemExit(main())
