from fooling_ext.cli import main

raise SystemExit(main())
