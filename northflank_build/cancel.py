"""The cancellation path: what a run does after SIGINT or SIGTERM, within CANCEL_BUDGET.

With abort-on-cancel the build this run started is aborted, and the outcome says how it ended.
When the signal came while the start request was in flight, its build is first learnt: from the
answer, if it comes within ANSWER_GRACE, else from the service's builds (start.py's rule for "the
build this run started", accepted only when exactly one build fits and every page of builds that
could hold one was read: aborting a build someone else started would be worse than leaving ours).
Every request here is tried once, with the time left.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from northflank_build.client import ONCE, Api, Limits, ServiceRef
from northflank_build.console import Console
from northflank_build.errors import ApiError
from northflank_build.model import Build
from northflank_build.signals import Pending, exit_code
from northflank_build.start import builds_of_request

CANCEL_BUDGET = 2.5  # seconds from the signal to the end of the last request (abort included)
ANSWER_GRACE = 1.0  # seconds a start request in flight is given to answer after the signal
LIST_TIMEOUT = 0.7  # seconds for the pages of builds that find a build whose answer was lost
MIN_REQUEST = 0.2  # seconds: the shortest timeout worth giving a request


@dataclass(frozen=True)
class Cancelled:
    """How the run ends after a signal: its result, exit code and the build as last known."""

    result: str
    code: int
    build: Build | None


@dataclass(frozen=True)
class Cancel:
    """What the cancellation path needs: the API, the service, and the user's choice."""

    api: Api
    service: ServiceRef
    console: Console
    abort: bool  # abort-on-cancel
    signum: int
    at: float  # time.monotonic() of the signal

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    def left(self) -> float:
        """Seconds left of the budget."""
        return self.at + CANCEL_BUDGET - time.monotonic()

    def limits(self, most: float | None = None) -> Limits:
        """One attempt, within the time left (and at most `most` seconds)."""
        left = self.left() if most is None else min(most, self.left())
        return Limits(retry=ONCE, timeout=max(MIN_REQUEST, left))

    def during_start(
        self, starting: Pending[Build], body: dict[str, Any], sent_at: float, target: str
    ) -> Cancelled:
        """The build of a start request in flight, learnt and then handled as after_start does."""
        try:
            build = starting.result_within(max(0.0, min(ANSWER_GRACE, self.left())))
        except ApiError as error:
            self.console.error(
                f"interrupted by {self.name}; the start request failed: {error.message}",
                title="Cancelled",
            )
            return Cancelled("cancelled", exit_code(self.signum), None)
        if build is None:
            build = self._find_lost(body, sent_at, target)
            if build is None:
                return Cancelled("cancelled", exit_code(self.signum), None)
        return self.after_start(build)

    def _find_lost(self, body: dict[str, Any], sent_at: float, target: str) -> Build | None:
        seconds = max(0.0, min(LIST_TIMEOUT, self.left()))
        limits = replace(self.limits(LIST_TIMEOUT), deadline=self.api.clock() + seconds)
        try:
            found = builds_of_request(self.api, self.service, body, sent_at, limits)
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
            f"build of {self.service.service_id} ({target}) may still start; check the "
            "service's builds on Northflank",
            title="Cancelled",
        )
        return None

    def after_start(self, build: Build) -> Cancelled:
        """Abort the build with abort-on-cancel, and say how it ended."""
        code = exit_code(self.signum)
        if build.concluded:
            result = build.outcome  # it ended before the signal: say how
        elif self.abort:
            build, result = self._abort(build)
        else:
            self.console.info(
                f"Build {build.id} goes on running on Northflank (abort-on-cancel is false)"
            )
            result = "cancelled"
        self.console.error(
            f"interrupted by {self.name}; build {build.id}: {result}", title="Cancelled"
        )
        return Cancelled(result, code, build)

    def _abort(self, build: Build) -> tuple[Build, str]:
        # The abort goes first: nothing printed may stand between the signal and it.
        aborted = abort_build(self.api, self.service, build, self.limits(), self.console.warning)
        if aborted is not None:
            self.console.info(
                f"Aborted build {build.id} on Northflank ({self.name}, abort-on-cancel)"
            )
            return aborted, "aborted"
        return self._read_after_failed_abort(build)

    def _read_after_failed_abort(self, build: Build) -> tuple[Build, str]:
        """The build's own result when it concluded before the abort arrived, else cancelled."""
        if self.left() <= 0.1:
            return build, "cancelled"
        try:
            latest = self.api.get_build(self.service, build.id, self.limits())
        except ApiError:
            return build, "cancelled"
        if not latest.concluded:
            return latest, "cancelled"
        self.console.info(f"Build {build.id} had already concluded: {latest.status}")
        return latest, latest.outcome


def interrupted_before_start(console: Console, signum: int) -> Cancelled:
    """A signal before the start request was sent: nothing to abort."""
    name = signal.Signals(signum).name
    console.error(f"interrupted by {name} before a build was started", title="Cancelled")
    return Cancelled("cancelled", exit_code(signum), None)


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
