from gen.cli.app import main

raise SystemExit(main())
