"""``python -m msdbg``."""

import sys

from msdbg.cli import main

sys.exit(main())
