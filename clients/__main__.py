"""``python -m clients``: the clients tier's command line."""

from clients.cli import main

raise SystemExit(main())
