"""Cancellation: signals, a start request that survives them, and the build a lost answer hides.

The program is PID 1 in the container, where SIGTERM is ignored unless handled, and GitHub sends
SIGINT, then SIGTERM 7.5 s later, then kills. Requests are sent from worker threads and sleeps are
interruptible, so that a signal is handled at once; the cancel's requests end within
CANCEL_BUDGET of the signal.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import Any, Generic, TypeVar, cast

from northflank_build.errors import ApiError, Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)
CANCEL_BUDGET = 2.5  # seconds from the signal to the end of the last request (abort included)
ANSWER_GRACE = 1.0  # seconds a start request in flight is given to answer after the signal
LIST_TIMEOUT = 0.7  # seconds for the list of builds that finds a build whose answer was lost
CLOCK_SKEW = 5.0  # seconds the API's clock may be behind ours when matching a lost build
WAIT_STEP = 0.01  # seconds between looks at a worker thread's result while waiting for it
T = TypeVar("T")


def exit_code(signum: int) -> int:
    """130 for SIGINT, 143 for SIGTERM: 128 plus the signal number, as shells report it."""
    return 128 + signum


class Signals:
    """SIGINT and SIGTERM become Interrupted, raised only where the program waits.

    Raised anywhere else, the exception could be swallowed by a destructor or turned into another
    error by an import; so the handler raises only inside `interruptible()` blocks (sleeps, and
    waits for a request sent from a worker thread), and a signal received elsewhere is raised
    when the next such block begins. A second signal exits at once.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.at: float | None = None  # time.monotonic() of the first signal
        self._waiting = False
        self._settled = False  # Interrupted was raised, or the run is ending: never raise again

    def install(self) -> None:
        for signum in SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            os._exit(exit_code(signum))
        self.received, self.at = signum, time.monotonic()
        if self._waiting:
            self.check()

    def check(self) -> None:
        """Raise Interrupted for a signal received so far, unless it was raised already."""
        if self.received is not None and not self._settled:
            self._settled = True
            raise Interrupted(self.received)

    def disarm(self) -> None:
        """From now on a first signal is only recorded; a second one still exits at once."""
        self._settled = True

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block that a signal ends with Interrupted: it should only wait."""
        self._waiting = True
        try:
            self.check()
            yield
        finally:
            self._waiting = False

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A block that no signal cuts short; one received meanwhile is raised when it ends."""
        settled, self._settled = self._settled, True
        try:
            yield
        finally:
            self._settled = settled
        self.check()

    def sleep(self, seconds: float) -> None:
        """time.sleep, ended early by a signal."""
        with self.interruptible():
            time.sleep(seconds)

    def call(self, work: Callable[[], T]) -> T:
        """work() on a worker thread, waited for interruptibly; run as is off the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return work()  # only the main thread receives signals
        return Pending(self, work).result()

    def deadline(self) -> float:
        """The monotonic time by which the cancel's requests must be done."""
        return (self.at if self.at is not None else time.monotonic()) + CANCEL_BUDGET


class Pending(Generic[T]):
    """Work running on a worker thread; the main thread waits for it without being stuck in it.

    When a signal interrupts the wait the work goes on, and its result can still be collected:
    so a start request cut short by a signal still tells which build it created.
    """

    def __init__(self, signals: Signals, work: Callable[[], T]) -> None:
        self.signals = signals
        self.started_at = time.time()
        self._finished = False
        self._value: T | None = None
        self._error: BaseException | None = None
        thread = threading.Thread(target=self._run, args=(work,), name="request", daemon=True)
        thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._value = work()
        except BaseException as error:  # handed to the waiting thread, which reports it
            self._error = error
        finally:
            self._finished = True

    def result(self) -> T:
        """The work's value, or its error raised; Interrupted when a signal comes first."""
        with self.signals.interruptible():
            while not self._finished:
                time.sleep(WAIT_STEP)
        return self._outcome()

    def result_within(self, seconds: float) -> T | None:
        """The work's value, or None when it has not finished within seconds (not interruptible)."""
        end = time.monotonic() + seconds
        while not self._finished and time.monotonic() < end:
            time.sleep(WAIT_STEP)
        return self._outcome() if self._finished else None

    def _outcome(self) -> T:
        if self._error is not None:
            raise self._error
        return cast(T, self._value)


def find_lost_build(
    list_builds: Callable[[], list[dict[str, Any]]], body: dict[str, Any], sent_at: float
) -> tuple[dict[str, Any] | None, str]:
    """The build a start request created although its answer never came, and how it was found.

    Only a build of the same target created after the request was sent counts, and only when it is
    the one such build: aborting a build someone else started would be worse than leaving ours.
    """
    try:
        builds = list_builds()
    except ApiError as error:
        return None, f"the list of builds could not be read: {error.message}"
    candidates = [b for b in builds if _same_target(b, body) and _created_after(b, sent_at)]
    if len(candidates) == 1:
        return candidates[0], "is the one build of this target created since the request was sent"
    if candidates:
        ids = ", ".join(str(b.get("id")) for b in candidates)
        return None, f"{len(candidates)} builds of this target started meanwhile ({ids})"
    return None, "no build of this target has appeared yet"


def _same_target(build: dict[str, Any], body: dict[str, Any]) -> bool:
    fields = (("sha", "sha"), ("branch", "branch"), ("pullRequestId", "pullRequestId"))
    return all(
        str(build.get(key)).lower() == str(body[wanted]).lower()
        for wanted, key in fields
        if wanted in body
    )


def _created_after(build: dict[str, Any], sent_at: float) -> bool:
    created = build.get("createdAt")
    try:
        moment = datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return moment >= sent_at - CLOCK_SKEW
