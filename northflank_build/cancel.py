"""The cancellation path: what a run does after SIGINT or SIGTERM, within CANCEL_BUDGET.

With abort-on-cancel every build this run started and that is still going is aborted, all at once,
and each outcome says how its build ended; a build the run reused (started by someone else) is
never aborted. When the signal came while a start request was in flight, its build is first
learnt: from the answer, if it comes within ANSWER_GRACE, else from the service's builds
(start.py's rule for "the build this run started", accepted only when exactly one build fits and
every page of builds that could hold one was read: aborting a build someone else started would be
worse than leaving ours). Every request here is tried once, with the time left.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar

from northflank_build.client import ONCE, Api, Limits, ServiceRef
from northflank_build.console import Console
from northflank_build.errors import ApiError
from northflank_build.model import Build
from northflank_build.signals import Pending, exit_code
from northflank_build.start import Started, builds_of_request

CANCEL_BUDGET = 2.5  # seconds from the signal to the end of the last request (abort included)
ANSWER_GRACE = 1.0  # seconds a start request in flight is given to answer after the signal
LIST_TIMEOUT = 0.7  # seconds for the pages of builds that find a build whose answer was lost
MIN_REQUEST = 0.2  # seconds: the shortest timeout worth giving a request
T = TypeVar("T")


@dataclass(frozen=True)
class Settled:
    """How one build ends after the signal: its result and the build as last known."""

    result: str
    build: Build


@dataclass(frozen=True)
class Cancel:
    """What the cancellation path needs: the API, the console and the user's choice."""

    api: Api
    console: Console
    abort: bool  # abort-on-cancel
    signum: int
    at: float  # time.monotonic() of the signal

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def code(self) -> int:
        return exit_code(self.signum)

    def left(self) -> float:
        """Seconds left of the budget."""
        return self.at + CANCEL_BUDGET - time.monotonic()

    def limits(self, most: float | None = None) -> Limits:
        """One attempt, within the time left (and at most `most` seconds)."""
        left = self.left() if most is None else min(most, self.left())
        return Limits(retry=ONCE, timeout=max(MIN_REQUEST, left))

    def during_start(
        self,
        service: ServiceRef,
        starting: Pending[Build],
        body: dict[str, Any],
        sent_at: float,
        target: str,
    ) -> Build | None:
        """The build of a start request in flight: its answer, or the one build found."""
        try:
            build = starting.result_within(max(0.0, min(ANSWER_GRACE, self.left())))
        except ApiError as error:
            self.console.error(
                f"interrupted by {self.name}; the start request of {service.service_id} failed: "
                f"{error.message}",
                title="Cancelled",
            )
            return None
        return build if build is not None else self._find_lost(service, body, sent_at, target)

    def _find_lost(
        self, service: ServiceRef, body: dict[str, Any], sent_at: float, target: str
    ) -> Build | None:
        seconds = max(0.0, min(LIST_TIMEOUT, self.left()))
        limits = replace(self.limits(LIST_TIMEOUT), deadline=self.api.clock() + seconds)
        try:
            found = builds_of_request(self.api, service, body, sent_at, limits)
        except ApiError as error:
            how = f"the list of builds could not be read: {error.message}"
        else:
            if found.complete and len(found.builds) == 1:
                self.console.info(
                    f"The start request had no answer yet; build {found.builds[0].id} is the one "
                    "build of this target created since the request was sent"
                )
                return found.builds[0]
            ids = ", ".join(b.id for b in found.builds)
            if not found.complete:
                how = (
                    f"only {found.read} of the service's builds could be read in {LIST_TIMEOUT:g} s"
                    + (f" ({ids} of this target among them)" if ids else "")
                )
            elif found.builds:
                how = f"{len(found.builds)} builds of this target started meanwhile ({ids})"
            else:
                how = "no build of this target has appeared yet"
        self.console.error(
            f"interrupted by {self.name} before the start request was answered, and {how}: a "
            f"build of {service.service_id} ({target}) may still start; check the "
            "service's builds on Northflank",
            title="Cancelled",
        )
        return None

    def settle(self, started: Sequence[Started]) -> list[Settled]:
        """Abort, all at once, the builds this run started that are still going (with
        abort-on-cancel), and say how each build ended."""
        aborting = [s for s in started if self.abort and not s.reused and not s.build.concluded]
        limits = self.limits()
        aborted = _at_once(
            [partial(self._abort, s, limits) for s in aborting], max(MIN_REQUEST, self.left())
        )
        outcome = dict(zip((id(s) for s in aborting), aborted, strict=True))
        settled = []
        for item in started:
            build = item.build
            if build.concluded:
                settled.append(Settled(build.outcome, build))  # it ended before the signal
            elif item.reused:
                self.console.info(
                    f"Build {build.id} of {item.service.service_id} was not started by this "
                    "run: it goes on running on Northflank"
                )
                settled.append(Settled("cancelled", build))
            elif not self.abort:
                self.console.info(
                    f"Build {build.id} goes on running on Northflank (abort-on-cancel is false)"
                )
                settled.append(Settled("cancelled", build))
            else:
                settled.append(outcome.get(id(item)) or Settled("cancelled", build))
        ended = ", ".join(f"build {s.build.id}: {s.result}" for s in settled) or "no build"
        self.console.error(f"interrupted by {self.name}; {ended}", title="Cancelled")
        return settled

    def _abort(self, item: Started, limits: Limits) -> Settled:
        build = item.build
        # The abort goes first: nothing printed may stand between the signal and it.
        aborted = abort_build(self.api, item.service, build, limits, self.console.warning)
        if aborted is not None:
            self.console.info(
                f"Aborted build {build.id} on Northflank ({self.name}, abort-on-cancel)"
            )
            return Settled("aborted", aborted)
        return self._read_after_failed_abort(item)

    def _read_after_failed_abort(self, item: Started) -> Settled:
        """The build's own result when it concluded before the abort arrived, else cancelled."""
        build = item.build
        if self.left() <= 0.1:
            return Settled("cancelled", build)
        try:
            latest = self.api.get_build(item.service, build.id, self.limits())
        except ApiError:
            return Settled("cancelled", build)
        if not latest.concluded:
            return Settled("cancelled", latest)
        self.console.info(f"Build {build.id} had already concluded: {latest.status}")
        return Settled(latest.outcome, latest)


def _at_once(works: Sequence[Callable[[], T]], seconds: float) -> list[T | None]:
    """Each work on a thread of its own; their values, None for each not done within seconds."""
    values: list[T | None] = [None] * len(works)

    def run(index: int) -> None:
        values[index] = works[index]()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(works))]
    for thread in threads:
        thread.start()
    end = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    return values


def interrupted_before_start(console: Console, signum: int) -> int:
    """A signal before any start request was sent: nothing to abort; the exit code."""
    name = signal.Signals(signum).name
    console.error(f"interrupted by {name} before a build was started", title="Cancelled")
    return exit_code(signum)


def abort_build(
    api: Api, service: ServiceRef, build: Build, limits: Limits, warn: Callable[[str], None]
) -> Build | None:
    """Abort the build: the build as it stands then, or None (after a warning) when it failed."""
    try:
        api.abort_build(service, build.id, limits)
    except ApiError as error:
        warn(f"could not abort build {build.id}: {error.message}")
        return None
    return build.aborted()
