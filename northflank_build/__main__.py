"""`python -m northflank_build`."""

import sys

from northflank_build.cli import main

sys.exit(main())
