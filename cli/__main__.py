"""``python -m cli``: the ``intake`` command."""

import sys

from cli.main import main

sys.exit(main())
