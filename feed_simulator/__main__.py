from feed_simulator.cli import main

if __name__ == "__main__":  # not when a --processes child (spawn) imports it as __mp_main__
    raise SystemExit(main())
