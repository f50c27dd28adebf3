"""SIGINT and SIGTERM, turned into Interrupted where the program waits, and work that a signal
cannot get stuck in.

The program is PID 1 in the container, where SIGTERM is ignored unless handled, and GitHub sends
SIGINT, then SIGTERM 7.5 s later, then kills. Requests are sent from worker threads and every
sleep can be cut short, so that a signal is handled at once.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Generic, TypeVar, cast

from northflank_build.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)
T = TypeVar("T")


def exit_code(signum: int) -> int:
    """130 for SIGINT, 143 for SIGTERM: 128 plus the signal number, as shells report it."""
    return 128 + signum


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class Signals:
    """The first SIGINT or SIGTERM of the run; a second one exits at once.

    On the main thread the signal raises Interrupted only inside `interruptible()` blocks (sleeps,
    and waits for work on a worker thread): raised anywhere else, the exception could be swallowed
    by a destructor or turned into another error by an import, so a signal received elsewhere is
    raised when the next such block begins. Worker threads never receive signals: their sleeps
    end at once when one arrives, raising Interrupted on that thread.

    `sleep` replaces time.sleep for every wait, e.g. with a virtual clock's; `receive(signum)` does
    what a signal does, for tests that play one at a chosen moment.
    """

    def __init__(self, sleep: Callable[[float], None] | None = None) -> None:
        self.received: int | None = None
        self.at: float | None = None  # time.monotonic() of the first signal
        self.stopped = threading.Event()  # set by the first signal; worker threads wait on it
        self._sleep = sleep
        self._waiting = False  # the main thread is inside interruptible()
        self._settled = False  # Interrupted was raised, or the run is ending: never raise again

    def install(self) -> None:
        for signum in SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            os._exit(exit_code(signum))
        self.receive(signum)

    def receive(self, signum: int) -> None:
        """Record the signal; raise Interrupted when the main thread is waiting."""
        if self.received is None:
            self.received, self.at = signum, time.monotonic()
            self.stopped.set()
        if self._waiting and _on_main_thread():
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
        """A block of the main thread that a signal ends with Interrupted: it should only wait."""
        if not _on_main_thread():
            yield
            return
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
        """Sleep, ended by a signal: Interrupted on the main thread and on worker threads alike."""
        if _on_main_thread():
            with self.interruptible():
                (self._sleep or time.sleep)(seconds)
            return
        if self._sleep is None:
            self.stopped.wait(seconds)
        elif not self.stopped.is_set():
            self._sleep(seconds)
        if self.received is not None:
            raise Interrupted(self.received)

    def call(self, work: Callable[[], T]) -> T:
        """work() on a worker thread, waited for interruptibly; run as is off the main thread."""
        if not _on_main_thread():
            return work()  # only the main thread receives signals
        return Pending(self, work).result()


class Pending(Generic[T]):
    """Work running on a worker thread; the main thread waits for it without being stuck in it.

    When a signal interrupts the wait the work goes on, and its result can still be collected:
    so a start request cut short by a signal still tells which build it created.
    """

    def __init__(self, signals: Signals, work: Callable[[], T]) -> None:
        self.signals = signals
        self._done = threading.Event()
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
            self._done.set()

    def result(self) -> T:
        """The work's value, or its error raised; Interrupted when a signal comes first."""
        with self.signals.interruptible():
            while not self._done.wait(0.05):
                self.signals.check()  # a signal a test plays from a worker thread
        return self._outcome()

    def result_within(self, seconds: float) -> T | None:
        """The work's value, or None when it has not finished within seconds (not interruptible).

        Its error is raised, except Interrupted: the work stopped for the signal, with no value.
        """
        if not self._done.wait(max(0.0, seconds)) or isinstance(self._error, Interrupted):
            return None
        return self._outcome()

    def _outcome(self) -> T:
        if self._error is not None:
            raise self._error
        return cast(T, self._value)
