"""The tests' clock: real time, plus every sleep of an in-process run skipped at once.

One clock for the whole session, shared by every emulator the tests start and by every run of
the program in-process: a sleep of the program moves it forward instantly, so that the emulator's
builds progress as if the time had passed. Programs run as subprocesses sleep for real; for them,
and for the emulator serving them, the clock is plain real time.
"""

from __future__ import annotations

import threading
import time

from northflank_build.emulator.clock import Clock


class SkippingClock:
    """Monotonic and Unix time that run with real time and jump by every sleep()."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._skipped = 0.0

    def monotonic(self) -> float:
        with self._lock:
            return time.monotonic() + self._skipped

    def time(self) -> float:
        with self._lock:
            return time.time() + self._skipped

    def sleep(self, seconds: float) -> None:
        """Skip `seconds` at once."""
        with self._lock:
            self._skipped += max(0.0, seconds)

    def emulator_clock(self) -> Clock:
        """The emulator's clock, reading this one."""
        return Clock(monotonic=self.monotonic, wall=self.time)


CLOCK = SkippingClock()
