"""Cancellation: signals, a start request that survives them, and the build a lost answer hides.

The program is PID 1 in the container, where SIGTERM is ignored unless handled, and GitHub sends
SIGINT, then SIGTERM 7.5 s later, then kills. Everything here keeps the time from the signal to
the exit within CANCEL_BUDGET plus the time to write the outputs.
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
from typing import Any

from northflank_build.errors import ApiError, Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)
CANCEL_BUDGET = 2.5  # seconds from the signal to the end of the last request (abort included)
ANSWER_GRACE = 1.0  # seconds a start request in flight is given to answer after the signal
LIST_TIMEOUT = 0.7  # seconds for the list of builds that finds a build whose answer was lost
CLOCK_SKEW = 5.0  # seconds the API's clock may be behind ours when matching a lost build


def exit_code(signum: int) -> int:
    """130 for SIGINT, 143 for SIGTERM: 128 plus the signal number, as shells report it."""
    return 128 + signum


class Signals:
    """SIGINT and SIGTERM raise Interrupted while armed; a second signal exits at once."""

    def __init__(self) -> None:
        self.armed = True
        self.received: int | None = None
        self.at: float | None = None  # time.monotonic() of the first signal

    def install(self) -> None:
        for signum in SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            os._exit(exit_code(signum))
        self.received, self.at = signum, time.monotonic()
        if self.armed:
            raise Interrupted(signum)

    def disarm(self) -> None:
        """From now on a first signal is only recorded; a second one still exits at once."""
        self.armed = False

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Run a block that must not be cut short; a signal received meanwhile is raised after."""
        was_armed, self.armed = self.armed, False
        try:
            yield
        finally:
            self.armed = was_armed
        if was_armed and self.received is not None:
            raise Interrupted(self.received)

    def deadline(self) -> float:
        """The monotonic time by which the cancel's requests must be done."""
        return (self.at if self.at is not None else time.monotonic()) + CANCEL_BUDGET


class StartInBackground:
    """The start request, sent from a worker thread so that a signal cannot lose its answer.

    The main thread waits for it; a signal interrupts the wait, not the request, and the cancel can
    then still learn the id of the build the request created.
    """

    def __init__(self, send: Callable[[], dict[str, Any]]) -> None:
        self.sent_at = time.time()
        self._done = threading.Event()
        self._build: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(send,), name="start-build", daemon=True
        )
        self._thread.start()

    def _run(self, send: Callable[[], dict[str, Any]]) -> None:
        try:
            self._build = send()
        except BaseException as error:  # handed to the main thread, which reports it
            self._error = error
        finally:
            self._done.set()

    def result(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The started build, or None when no answer came in time; raises the request's error."""
        if not self._done.wait(timeout):
            return None
        if self._error is not None:
            raise self._error
        return self._build


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
