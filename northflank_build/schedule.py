"""When to ask about the build next: a pure function of what is known, no clock, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

MIN_INTERVAL = 2.0
MAX_INTERVAL = 30.0
LOW_BUDGET = 100
RESERVE = 5


@dataclass(frozen=True)
class PollState:
    """What the schedule knows when it picks the next wait."""

    elapsed: float
    remaining_time: float
    fixed: float | None = None
    budget_remaining: int | None = None
    budget_reset_in: float | None = None


def next_wait(state: PollState) -> float:
    """Seconds until the next poll: frequent early, sparser later, stretched when the budget is low.

    A fixed interval chosen by the user is kept as it is, except that it never sleeps past the end.
    """
    if state.fixed is not None:
        wait = state.fixed
    elif state.elapsed < 30:
        wait = MIN_INTERVAL
    elif state.elapsed < 120:
        wait = 5.0
    else:
        wait = min(MAX_INTERVAL, 10.0 + (state.elapsed - 120) / 60)
    low = state.budget_remaining is not None and state.budget_remaining <= LOW_BUDGET
    if low and state.budget_remaining is not None and state.budget_reset_in is not None:
        # Keep a reserve of requests for the abort and the final read.
        spendable = max(1, state.budget_remaining - RESERVE)
        wait = max(wait, state.budget_reset_in / spendable)
    return max(0.0, min(wait, state.remaining_time))
