from perstack_tui.cli import main

raise SystemExit(main())
