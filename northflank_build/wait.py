"""Poll builds until they have concluded or the time runs out: one or several, on one schedule."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

from northflank_build.client import Api, ServiceRef
from northflank_build.console import Console
from northflank_build.errors import ApiError, Interrupted
from northflank_build.logs import BuildLog
from northflank_build.model import Build
from northflank_build.report import duration_text
from northflank_build.schedule import FINAL_PHASES, PollState, next_wait

HEARTBEAT = 60.0  # seconds without a change after which a line says the builds are still going


@dataclass(frozen=True)
class Followed:
    """A build to wait for: its service, the build as last read, and its log when followed."""

    service: ServiceRef
    build: Build
    log: BuildLog | None = None


@dataclass(frozen=True)
class Waited:
    """The last read of each build, in the order given; whether the timeout ran out before they
    all concluded; and the API error that ended the wait, if one did."""

    builds: tuple[Build, ...]
    timed_out: bool = False
    error: ApiError | None = None


class Progress:
    """A line per status change with the time waited, and a heartbeat when nothing changes."""

    def __init__(self, console: Console, start: float, names: Sequence[str]) -> None:
        self.console = console
        self.start = start
        self.names = names  # the service of each build, shown when there are several
        self.statuses = [""] * len(names)
        self.last_line = 0.0

    def show(self, index: int, build: Build, now: float) -> None:
        if build.status != self.statuses[index]:
            status = build.status or "unknown status"
            self._line(now, f"{self.names[index]}: {status}" if len(self.names) > 1 else status)
        self.statuses[index] = build.status
        self.beat(now)

    def beat(self, now: float) -> None:
        """Say that the builds are still going when nothing was printed for HEARTBEAT seconds."""
        if now - self.last_line < HEARTBEAT:
            return
        if len(self.names) == 1:
            self._line(now, f"still {self.statuses[0]}")
        else:
            going = ", ".join(f"{n} {s}" for n, s in zip(self.names, self.statuses, strict=True))
            self._line(now, f"still waiting: {going}")

    def _line(self, now: float, text: str) -> None:
        self.console.info(f"[{duration_text(now - self.start):>6}] {text}")
        self.last_line = now


def wait_for(
    api: Api,
    followed: Sequence[Followed],
    console: Console,
    *,
    deadline: float,
    fixed_interval: float | None,
    history: tuple[float, ...] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> Waited:
    """Read the builds until they have all concluded or the clock reaches `deadline`.

    Every poll reads each build still going, on one schedule whose rate-limit stretch counts
    those reads. A followed log prints its new lines after every read of its build, in a
    collapsible group when there is one build (lines are prefixed with the service when there are
    several). Interrupted, when a signal comes, carries the last read of every build.
    """
    poll = _Poll(api, followed, console, sleep, history)
    group: AbstractContextManager[None] = nullcontext()
    if len(followed) == 1 and followed[0].log is not None:
        group = console.group(f"Build log of {followed[0].build.id}")
    with group:
        try:
            return poll.run(deadline, fixed_interval)
        except Interrupted as stop:
            raise stop.with_builds(tuple(poll.latest)) from None


class _Poll:
    """The polling loop of one wait; `latest` holds the last read of each build."""

    def __init__(
        self,
        api: Api,
        followed: Sequence[Followed],
        console: Console,
        sleep: Callable[[float], None],
        history: tuple[float, ...],
    ) -> None:
        self.api = api
        self.followed = followed
        self.console = console
        self.sleep = sleep
        self.history = history
        self.budget_noted = False
        self.latest = [item.build for item in followed]

    def run(self, deadline: float, fixed_interval: float | None) -> Waited:
        clock = self.api.clock
        start = clock()
        limits = self.api.limits(deadline)
        progress = Progress(self.console, start, [f.service.service_id for f in self.followed])
        for index, item in enumerate(self.followed):
            progress.show(index, item.build, start)
            self._follow(index)
        while going := [i for i, build in enumerate(self.latest) if not build.concluded]:
            now = clock()
            if now >= deadline:
                return Waited(tuple(self.latest), timed_out=True)
            rate = self.api.rate
            statuses = {self.latest[i].status.upper() for i in going}
            state = PollState(
                elapsed=now - start,
                remaining_time=deadline - now,
                fixed=fixed_interval,
                budget_remaining=rate.remaining,
                budget_reset_in=rate.seconds_to_reset(now),
                status=next(iter(statuses & FINAL_PHASES), self.latest[going[0]].status),
                history=self.history,
                jitter=random.random(),  # noqa: S311 (spreads polls; not a secret)
                reads=len(going),
            )
            wait = next_wait(state)
            self._note_budget(state, wait)
            self._sleep(wait, progress)
            for index in going:
                item = self.followed[index]
                try:
                    build = self.api.get_build(item.service, item.build.id, limits)
                except ApiError as error:
                    return Waited(tuple(self.latest), error=error)
                self.latest[index] = build
                self._follow(index)
                progress.show(index, build, clock())
        return Waited(tuple(self.latest))

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

    def _follow(self, index: int) -> None:
        """Print the new lines of a followed log; after its concluding read, the last ones."""
        log = self.followed[index].log
        if log is not None:
            log.follow()
