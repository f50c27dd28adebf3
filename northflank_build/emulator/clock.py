"""Time for the emulator: monotonic for the lifecycle, wall-clock milliseconds for the API.

Everything time-based in the emulator (build phases, createdAt and buildConcludedAt, log
timestamps, rate-limit windows and x-ratelimit-reset, the Date header) reads one Clock, so a
test can drive it: ``Emulator(config, clock=Clock(monotonic=..., wall=...))``. VirtualClock is
such a driver: time that moves only when someone sleeps on it, instantly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime


class Clock:
    """Maps monotonic readings onto wall-clock epoch milliseconds, fixed at creation.

    Both sources are injectable; the defaults are time.monotonic and time.time. The wall clock
    is read once: later readings follow the monotonic one, so a wall-clock jump on the machine
    does not move the API's timestamps backwards.
    """

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._monotonic = monotonic
        self._mono0 = monotonic()
        self._wall0 = wall()

    def now(self) -> float:
        """The current monotonic reading."""
        return self._monotonic()

    def ms(self, mono: float) -> int:
        """Wall-clock epoch milliseconds of a monotonic reading."""
        return round((self._wall0 + (mono - self._mono0)) * 1000)

    def wall(self) -> float:
        """The API's wall-clock time now, in epoch seconds (what its Date header says)."""
        return self._wall0 + (self._monotonic() - self._mono0)


class VirtualClock:
    """Time that moves only when told: sleep() advances it at once instead of waiting.

    Share one between the program under test (its monotonic, time and sleep) and the emulator
    (``Emulator(config, clock=virtual.clock())``) and a build of an hour concludes in a few
    polls of real milliseconds. Thread-safe.
    """

    def __init__(self, wall: float | None = None, monotonic: float = 1000.0) -> None:
        self._lock = threading.Lock()
        self._elapsed = 0.0
        self._mono0 = monotonic
        self._wall0 = time.time() if wall is None else wall

    def monotonic(self) -> float:
        """Seconds on the monotonic scale."""
        with self._lock:
            return self._mono0 + self._elapsed

    def time(self) -> float:
        """Epoch seconds on the wall clock."""
        with self._lock:
            return self._wall0 + self._elapsed

    def sleep(self, seconds: float) -> None:
        """Advance the time by seconds (a negative or zero sleep does nothing), at once."""
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        """Move the time forward by seconds; ValueError for a negative step."""
        if seconds < 0:
            raise ValueError("a virtual clock does not go backwards")
        with self._lock:
            self._elapsed += seconds

    def clock(self) -> Clock:
        """An emulator Clock reading this virtual time."""
        return Clock(monotonic=self.monotonic, wall=self.time)


def iso_from_ms(epoch_ms: int) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as Northflank writes timestamps."""
    seconds, millis = divmod(epoch_ms, 1000)
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def ms_from_iso(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 timestamp (UTC when no offset); raises ValueError."""
    # An unescaped "+" in a query string arrives as a space.
    moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)
