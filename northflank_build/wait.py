"""Poll the build until it has concluded or the time runs out."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from northflank_build.client import Api
from northflank_build.console import Console
from northflank_build.logs import BuildLog
from northflank_build.schedule import PollState, next_wait

HEARTBEAT = 60.0  # seconds without a change after which a line says the build is still going


@dataclass
class Waited:
    """The last build object read and whether the timeout ran out first."""

    build: dict[str, Any]
    timed_out: bool


def outcome_of(build: dict[str, Any]) -> str:
    """success or failure, decided by concluded and success, never by a list of statuses."""
    if build.get("success") is True or (
        build.get("success") is None and build.get("status") == "SUCCESS"
    ):
        return "success"
    return "failure"


def elapsed(seconds: float) -> str:
    """A duration as people read it: 45s, 3m05s, 1h02m."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


@dataclass
class Progress:
    """One line per status change with the time waited, and a heartbeat when nothing changes."""

    console: Console
    start: float
    status: str = ""
    last_line: float = field(default=0.0)

    def show(self, build: dict[str, Any], now: float) -> None:
        status = str(build.get("status"))
        if status != self.status:
            self._line(now, status)
        self.status = status
        self.beat(now)

    def beat(self, now: float) -> None:
        """Say that the build is still going when nothing was printed for HEARTBEAT seconds."""
        if now - self.last_line >= HEARTBEAT:
            self._line(now, f"still {self.status}")

    def _line(self, now: float, text: str) -> None:
        self.console.info(f"[{elapsed(now - self.start):>6}] {text}")
        self.last_line = now


@dataclass
class Poller:
    """Reads one build until it concludes; `build` always holds the last object read.

    With `log` set the build's log is followed: its new lines are printed after every read, and
    the progress lines and log lines share one collapsible group.
    """

    api: Api
    project_id: str
    service_id: str
    build: dict[str, Any]
    console: Console
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    on_read: Callable[[dict[str, Any]], None] | None = None
    log: BuildLog | None = None
    history: tuple[float, ...] = ()
    budget_noted: bool = False

    def wait(self, timeout: float, fixed_interval: float | None) -> Waited:
        group: AbstractContextManager[None] = nullcontext()
        if self.log is not None:
            group = self.console.group(f"Build log of {self.build.get('id')}")
        with group:
            return self._poll(timeout, fixed_interval)

    def _poll(self, timeout: float, fixed_interval: float | None) -> Waited:
        start = self.clock()
        deadline = start + timeout
        self.api.deadline = deadline
        progress = Progress(self.console, start)
        progress.show(self.build, start)
        self._follow()
        while not self.build.get("concluded"):
            now = self.clock()
            if now >= deadline:
                return Waited(self.build, timed_out=True)
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
            self.build = self.api.get_build(self.project_id, self.service_id, str(self.build["id"]))
            if self.on_read:
                self.on_read(self.build)
            self._follow()
            progress.show(self.build, self.clock())
        return Waited(self.build, timed_out=False)

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
        end = self.clock() + seconds
        while (now := self.clock()) < end:
            progress.beat(now)
            self.sleep(min(end, progress.last_line + HEARTBEAT) - now)

    def _follow(self) -> None:
        """Print the log's new lines; after the concluding read this prints the last ones."""
        if self.log is not None:
            self.log.follow()
