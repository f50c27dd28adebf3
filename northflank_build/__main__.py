"""`python -m northflank_build`."""

import sys

from northflank_build.cancel import Signals

# Before the other imports, so that a signal meanwhile is handled.
signals = Signals()
signals.install()

from northflank_build.cli import main  # noqa: E402

sys.exit(main(signals=signals))
