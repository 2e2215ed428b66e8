from rnn2c.cli import main

raise SystemExit(main())
