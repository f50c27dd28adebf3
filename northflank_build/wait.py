"""Poll the build until it has concluded or the time runs out."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from northflank_build.client import Api
from northflank_build.console import Console
from northflank_build.schedule import PollState, next_wait

HEARTBEAT = 60.0


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


@dataclass
class Poller:
    """Reads one build until it concludes; `build` always holds the last object read."""

    api: Api
    project_id: str
    service_id: str
    build: dict[str, Any]
    console: Console
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    on_read: Callable[[dict[str, Any]], None] | None = None
    history: tuple[float, ...] = ()
    budget_noted: bool = False

    def wait(self, timeout: float, fixed_interval: float | None) -> Waited:
        start = self.clock()
        deadline = start + timeout
        self.api.deadline = deadline
        status = str(self.build.get("status"))
        last_line = start
        self.console.info(f"[{0:>5.0f}s] {status}")
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
                status=status,
                history=self.history,
                jitter=random.random(),  # noqa: S311 (spreads polls; not a secret)
            )
            wait = next_wait(state)
            self._note_budget(state, wait)
            self.sleep(wait)
            self.build = self.api.get_build(self.project_id, self.service_id, str(self.build["id"]))
            if self.on_read:
                self.on_read(self.build)
            now = self.clock()
            new_status = str(self.build.get("status"))
            if new_status != status or now - last_line >= HEARTBEAT:
                word = new_status if new_status != status else f"still {new_status}"
                self.console.info(f"[{now - start:>5.0f}s] {word}")
                status, last_line = new_status, now
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
