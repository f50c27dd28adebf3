"""The program as a process whose every wait lasts at most QUICK seconds: for the hostile tests,
whose promises are about answers and signals, not about how long a backoff lasts.

The program itself has no such knob; a test that needs one runs this instead of entrypoint.py.
"""

from __future__ import annotations

import time

from northflank_build.signals import Signals

QUICK = 0.25  # seconds: the longest backoff, Retry-After or poll of a quick run

if __name__ == "__main__":
    signals = Signals(lambda seconds: time.sleep(min(seconds, QUICK)))
    signals.install()

    from northflank_build.cli import exit_now, main

    exit_now(main(signals=signals))
