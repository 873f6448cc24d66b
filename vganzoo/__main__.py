from vganzoo.cli import main

raise SystemExit(main())
