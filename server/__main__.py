"""`python -m server [api|callbacks|webhooks]`, or `python -m server admin …`.
The operator CLI is picked before the servers' imports: they take about 3 s
it has no use for (4.3 s for `admin --help` with them)."""

import sys

if sys.argv[1:2] == ["admin"]:
    from server.admin import main as admin

    admin(sys.argv[2:])
else:
    from server.main import main

    main()
