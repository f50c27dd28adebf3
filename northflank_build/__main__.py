"""`python -m northflank_build`."""

from northflank_build.signals import Signals

# Before the other imports, so that a signal meanwhile is handled.
signals = Signals()
signals.install()

from northflank_build.cli import exit_now, main  # noqa: E402

exit_now(main(signals=signals))
