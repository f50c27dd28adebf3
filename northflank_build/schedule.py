"""When to read the build next: a pure function of what is known, no clock, no I/O.

`poll-interval: auto` reads often where the build is likely to conclude and sparsely elsewhere.
Where that is comes from windows of likely conclusion:

- with history (the durations of the service's recent builds, read once from the list endpoint):
  around their typical duration (at least ±SPREAD), plus one from the start when some of them
  failed early;
- without history: LIKELY_WITHOUT_HISTORY, the minutes in which a Docker build usually ends.

Inside a window the build is read every IN_WINDOW s. Before one the wait jumps to just before it
opens; after the last one it grows by AFTER_WINDOW_GROWTH s per second overdue. In the first
EARLY_PERIOD s, where failures happen, no wait is longer than EARLY_INTERVAL. The UPLOADING phase,
the last before a build concludes, is read every IN_WINDOW s.

Every wait is jittered by ±JITTER (so pipelines started together drift apart), lies between
MIN_INTERVAL and CAP, and is stretched when the token's rate-limit budget would otherwise run out
before its reset or the timeout (keeping RESERVE requests for an abort and the last read). A fixed
`poll-interval` is kept as given, except for that budget stretch. No wait ends after the timeout.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from northflank_build.model import Build

MIN_INTERVAL = 2.0
CAP = 60.0
IN_WINDOW = 5.0
EARLY_PERIOD = 60.0
EARLY_INTERVAL = 15.0
AFTER_WINDOW_GROWTH = 0.15
JITTER = 0.1
RESERVE = 5
SPREAD = 0.15
FINAL_PHASES = frozenset({"UPLOADING"})


@dataclass(frozen=True)
class Window:
    """Seconds after the start between which a build is expected to conclude."""

    start: float
    end: float

    def holds(self, elapsed: float) -> bool:
        return self.start <= elapsed <= self.end


@dataclass(frozen=True)
class PollState:
    """What the schedule knows when it picks the next wait.

    jitter is a uniform draw from [0, 1) made by the caller, so the function stays pure.
    """

    elapsed: float
    remaining_time: float
    fixed: float | None = None
    budget_remaining: int | None = None
    budget_reset_in: float | None = None
    status: str = ""
    history: tuple[float, ...] = ()
    jitter: float = 0.5
    reads: int = 1  # requests one poll costs: one per build still waited for


def predicted_windows(history: Iterable[float]) -> tuple[Window, ...]:
    """Where builds of this service conclude: around the typical duration, and early failures.

    The main window spans the recent durations at least half the median long, widened to at
    least ±SPREAD of the median; shorter ones (builds that failed early) form a window from 0.
    """
    durations = sorted(d for d in history if d > 0)
    if not durations:
        return ()
    median = statistics.median(durations)
    main = [d for d in durations if d >= median / 2]
    early = [d for d in durations if d < median / 2]
    windows = [Window(min(main[0], median * (1 - SPREAD)), max(main[-1], median * (1 + SPREAD)))]
    if early:
        windows.insert(0, Window(0.0, early[-1] * (1 + SPREAD)))
    return tuple(windows)


LIKELY_WITHOUT_HISTORY = (Window(EARLY_PERIOD, 210.0),)


def _spread(base: float, jitter: float) -> float:
    return base * (1 + JITTER * (2 * jitter - 1))


def _windowed(elapsed: float, windows: tuple[Window, ...], jitter: float, cap: float) -> float:
    if any(w.holds(elapsed) for w in windows):
        return _spread(IN_WINDOW, jitter)
    ahead = [w.start - elapsed for w in windows if w.start > elapsed]
    if not ahead:
        overdue = elapsed - max(w.end for w in windows)
        return min(cap, _spread(IN_WINDOW + overdue * AFTER_WINDOW_GROWTH, jitter))
    gap = min(ahead)
    if gap <= IN_WINDOW:
        return _spread(IN_WINDOW, jitter)
    # Land up to one in-window interval before the window opens, never inside it.
    landing = gap - IN_WINDOW * jitter
    return landing if landing <= cap else cap * (1 - JITTER * jitter)


def auto_wait(state: PollState) -> float:
    """The wait `auto` picks, jittered, before the limits."""
    if state.status.upper() in FINAL_PHASES:
        return _spread(IN_WINDOW, state.jitter)
    windows = predicted_windows(state.history) or LIKELY_WITHOUT_HISTORY
    cap = EARLY_INTERVAL if state.elapsed < EARLY_PERIOD else CAP
    return _windowed(state.elapsed, windows, state.jitter, cap)


def budget_floor(state: PollState) -> float:
    """The shortest wait at which the rate-limit budget lasts until its reset (or the timeout),
    keeping RESERVE requests, and one more per build beyond the first, for the end."""
    if state.budget_remaining is None or state.budget_reset_in is None:
        return 0.0
    horizon = min(state.budget_reset_in, max(0.0, state.remaining_time))
    reads = max(1, state.reads)
    polls = (state.budget_remaining - RESERVE - (reads - 1)) // reads
    if polls <= 0:
        return horizon
    return horizon / polls


def next_wait(state: PollState) -> float:
    """Seconds until the next read of the build.

    Between MIN_INTERVAL and CAP (or exactly `fixed`), longer only when the rate-limit budget
    needs it, and never past the timeout.
    """
    chosen = (
        state.fixed if state.fixed is not None else min(CAP, max(MIN_INTERVAL, auto_wait(state)))
    )
    wait = max(chosen, budget_floor(state))
    return max(0.0, min(wait, state.remaining_time))


def history_durations(builds: Iterable[Build], exclude: str = "") -> tuple[float, ...]:
    """Seconds from creation to conclusion of the concluded, not aborted builds listed."""
    durations = []
    for build in builds:
        if build.id == exclude or build.status == "ABORTED":
            continue
        seconds = build.duration
        if seconds is not None and round(seconds) > 0:
            durations.append(float(round(seconds)))
    return tuple(durations)


def describe(fixed: float | None, history: tuple[float, ...]) -> str:
    """The schedule in one line, for the log."""
    if fixed is not None:
        return f"Reading the build every {fixed:g} s (poll-interval)"
    windows = predicted_windows(history)
    if windows:
        likely, source = windows[-1], f"where {len(history)} recent builds ended"
    else:
        likely, source = LIKELY_WITHOUT_HISTORY[0], "where builds usually end; no history yet"
    return (
        f"Reading the build every {IN_WINDOW:g} s from {likely.start:.0f} s to {likely.end:.0f} s "
        f"({source}), at most every {CAP:g} s otherwise"
    )
