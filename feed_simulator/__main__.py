from feed_simulator.cli import main

raise SystemExit(main())
