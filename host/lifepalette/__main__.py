from lifepalette.cli import main

raise SystemExit(main())
