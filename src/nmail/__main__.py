from nmail.cli.main import main

raise SystemExit(main())
