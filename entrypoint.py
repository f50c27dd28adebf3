#!/usr/bin/env python3
"""Entry point of the Docker action and of `python entrypoint.py`: the northflank-build command."""

from northflank_build.signals import Signals

if __name__ == "__main__":
    # Before the other imports: as PID 1 a SIGTERM meanwhile would otherwise be lost.
    signals = Signals()
    signals.install()

    from northflank_build.cli import exit_now, main

    exit_now(main(signals=signals))
