"""``python -m clients``: the clients tier's command line."""

from clients.cli import main

if __name__ == "__main__":  # not when a load worker (spawn) imports it as __mp_main__
    raise SystemExit(main())
