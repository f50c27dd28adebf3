"""Poll the build until it has concluded or the time runs out."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

from northflank_build.client import Api, ServiceRef
from northflank_build.console import Console
from northflank_build.errors import Interrupted
from northflank_build.logs import BuildLog
from northflank_build.model import Build
from northflank_build.report import duration_text
from northflank_build.schedule import PollState, next_wait

HEARTBEAT = 60.0  # seconds without a change after which a line says the build is still going


@dataclass(frozen=True)
class Waited:
    """The last build read, and whether the timeout ran out before it concluded."""

    build: Build
    timed_out: bool


class Progress:
    """One line per status change with the time waited, and a heartbeat when nothing changes."""

    def __init__(self, console: Console, start: float) -> None:
        self.console = console
        self.start = start
        self.status = ""
        self.last_line = 0.0

    def show(self, build: Build, now: float) -> None:
        if build.status != self.status:
            self._line(now, build.status or "unknown status")
        self.status = build.status
        self.beat(now)

    def beat(self, now: float) -> None:
        """Say that the build is still going when nothing was printed for HEARTBEAT seconds."""
        if now - self.last_line >= HEARTBEAT:
            self._line(now, f"still {self.status}")

    def _line(self, now: float, text: str) -> None:
        self.console.info(f"[{duration_text(now - self.start):>6}] {text}")
        self.last_line = now


def wait_for(
    api: Api,
    service: ServiceRef,
    build: Build,
    console: Console,
    *,
    deadline: float,
    fixed_interval: float | None,
    history: tuple[float, ...] = (),
    log: BuildLog | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Waited:
    """Read the build until it concludes or the clock reaches `deadline`.

    With `log` the build's log is followed: its new lines are printed after every read, in one
    collapsible group with the progress lines. Interrupted, when a signal comes, carries the last
    build read.
    """
    group: AbstractContextManager[None] = nullcontext()
    if log is not None:
        group = console.group(f"Build log of {build.id}")
    poll = _Poll(api, service, console, log, sleep, history)
    with group:
        try:
            return poll.run(build, deadline, fixed_interval)
        except Interrupted as stop:
            raise stop.with_build(poll.latest) from None


class _Poll:
    """The polling loop of one wait; `latest` is the last build read."""

    def __init__(
        self,
        api: Api,
        service: ServiceRef,
        console: Console,
        log: BuildLog | None,
        sleep: Callable[[float], None],
        history: tuple[float, ...],
    ) -> None:
        self.api = api
        self.service = service
        self.console = console
        self.log = log
        self.sleep = sleep
        self.history = history
        self.budget_noted = False
        self.latest: Build | None = None

    def run(self, build: Build, deadline: float, fixed_interval: float | None) -> Waited:
        clock = self.api.clock
        start = clock()
        limits = self.api.limits(deadline)
        progress = Progress(self.console, start)
        self.latest = build
        progress.show(build, start)
        self._follow()
        while not build.concluded:
            now = clock()
            if now >= deadline:
                return Waited(build, timed_out=True)
            rate = self.api.rate
            state = PollState(
                elapsed=now - start,
                remaining_time=deadline - now,
                fixed=fixed_interval,
                budget_remaining=rate.remaining,
                budget_reset_in=rate.seconds_to_reset(now),
                status=progress.status,
                history=self.history,
                jitter=random.random(),  # noqa: S311 (spreads polls; not a secret)
            )
            wait = next_wait(state)
            self._note_budget(state, wait)
            self._sleep(wait, progress)
            build = self.latest = self.api.get_build(self.service, build.id, limits)
            self._follow()
            progress.show(build, clock())
        return Waited(build, timed_out=False)

    def _note_budget(self, state: PollState, wait: float) -> None:
        """Say once that the rate limit stretched the poll interval."""
        if self.budget_noted or wait <= next_wait(replace(state, budget_remaining=None)):
            return
        self.budget_noted = True
        self.console.info(
            f"Only {state.budget_remaining} API requests are left until the rate limit resets "
            f"in {state.budget_reset_in or 0:.0f} s: polling every {wait:.0f} s or less often, "
            "to keep the last ones for the end"
        )

    def _sleep(self, seconds: float, progress: Progress) -> None:
        """Sleep, with a heartbeat line whenever one falls due meanwhile (long fixed intervals)."""
        clock = self.api.clock
        end = clock() + seconds
        while (now := clock()) < end:
            progress.beat(now)
            self.sleep(min(end, progress.last_line + HEARTBEAT) - now)

    def _follow(self) -> None:
        """Print the log's new lines; after the concluding read this prints the last ones."""
        if self.log is not None:
            self.log.follow()
