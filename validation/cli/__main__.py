"""``python -m validation.cli``: the same as ``map-suite``."""

import sys

from validation.cli.main import main

sys.exit(main())
