from bookcast.cli import main

raise SystemExit(main())
