from md_service.cli import main

raise SystemExit(main())
