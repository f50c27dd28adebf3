"""The poll schedule: its promises as properties, and the real loop reading the history once."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from northflank_build.emulator import PastBuild, ServiceConfig
from northflank_build.model import parse_builds
from northflank_build.schedule import (
    CAP,
    EARLY_INTERVAL,
    EARLY_PERIOD,
    IN_WINDOW,
    MIN_INTERVAL,
    RESERVE,
    SPREAD,
    PollState,
    budget_floor,
    describe,
    history_durations,
    next_wait,
    predicted_windows,
)
from tests.conftest import PROJECT, TOKEN, MakeEmulator, api_requests, fast_world
from tests.runner import github_env, run

durations = st.floats(min_value=1.0, max_value=7200.0)
histories = st.lists(durations, max_size=20).map(tuple)
some_budget = st.integers(min_value=0, max_value=1000)
some_reset = st.floats(min_value=0.0, max_value=3600.0)
budgets = st.one_of(st.none(), some_budget)
resets = st.one_of(st.none(), some_reset)
statuses = st.sampled_from(["", "QUEUED", "CLONING", "BUILDING", "UPLOADING", "SOMETHING_NEW"])


@st.composite
def poll_states(draw: st.DrawFn, fixed: bool = False, budget: bool = False) -> PollState:
    return PollState(
        elapsed=draw(st.floats(min_value=0.0, max_value=7200.0)),
        remaining_time=draw(st.floats(min_value=0.0, max_value=7200.0)),
        fixed=draw(st.floats(min_value=0.1, max_value=3600.0)) if fixed else None,
        budget_remaining=draw(some_budget if budget else budgets),
        budget_reset_in=draw(some_reset if budget else resets),
        status=draw(statuses),
        history=draw(histories),
        jitter=draw(st.floats(min_value=0.0, max_value=1.0, exclude_max=True)),
    )


@given(poll_states())
def test_never_below_the_minimum_interval(state: PollState) -> None:
    # Only the last wait, which ends at the timeout, may be shorter.
    assert next_wait(state) >= min(MIN_INTERVAL, state.remaining_time)


@given(poll_states())
def test_never_above_the_cap_unless_the_budget_needs_it(state: PollState) -> None:
    assert next_wait(state) <= max(CAP, budget_floor(state))


@given(poll_states())
def test_never_above_the_cap_with_budget_to_spare(state: PollState) -> None:
    unlimited = PollState(**{**state.__dict__, "budget_remaining": None, "budget_reset_in": None})
    assert next_wait(unlimited) <= CAP


@given(poll_states())
def test_at_most_the_early_interval_in_the_first_minute(state: PollState) -> None:
    early = PollState(
        **{**state.__dict__, "elapsed": state.elapsed % EARLY_PERIOD, "budget_reset_in": None}
    )
    assert next_wait(early) <= EARLY_INTERVAL


@given(st.one_of(poll_states(budget=True), poll_states(fixed=True, budget=True)))
def test_never_beyond_the_remaining_budget(state: PollState) -> None:
    wait = next_wait(state)
    assert state.budget_remaining is not None
    assert state.budget_reset_in is not None
    horizon = min(state.budget_reset_in, state.remaining_time)
    spendable = state.budget_remaining - RESERVE
    # Reading at this pace until the reset (or the timeout) leaves the reserve untouched, and with
    # nothing left to spend the next read waits for the reset; a wait that ends at the timeout is
    # the last read anyway.
    assert wait >= state.remaining_time or horizon <= wait * max(1, spendable) * (1 + 1e-9)


@given(poll_states(fixed=True), st.floats(min_value=0.0, max_value=3600.0))
def test_fixed_when_the_user_fixed_it(state: PollState, spare_time: float) -> None:
    assert state.fixed is not None
    ample = PollState(
        **{**state.__dict__, "remaining_time": state.fixed + spare_time, "budget_reset_in": None}
    )
    assert next_wait(ample) == state.fixed


@given(
    history=st.lists(durations, min_size=1, max_size=20).map(tuple),
    inside=st.floats(min_value=0.0, max_value=1.0),
    away=st.floats(min_value=0.0, max_value=1.0),
    jitter=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_shorter_inside_the_predicted_window_than_outside_it(
    history: tuple[float, ...], inside: float, away: float, jitter: float
) -> None:
    windows = predicted_windows(history)
    main = windows[-1]

    def wait_at(elapsed: float) -> float:
        state = PollState(
            elapsed=elapsed,
            remaining_time=10_000.0,
            status="BUILDING",
            history=history,
            jitter=jitter,
        )
        return next_wait(state)

    # Outside: at least a second after the window closed, or at least three in-window intervals
    # before it opens (the last wait before a window lands just before it) and in no other one.
    after = main.end + 1 + away * 3600
    latest_before = main.start - 3 * IN_WINDOW
    before = latest_before * away
    outside = [after]
    if latest_before >= 0 and not any(w.holds(before) for w in windows):
        outside.append(before)
    within = wait_at(main.start + inside * (main.end - main.start))
    for elapsed in outside:
        assert within < wait_at(elapsed)


@given(st.lists(st.floats(min_value=10.0, max_value=3600.0), min_size=1, max_size=20))
def test_the_window_holds_every_typical_duration_and_more(history: list[float]) -> None:
    main = predicted_windows(history)[-1]
    median = statistics.median(history)
    for duration in history:
        if duration >= median / 2:
            assert main.holds(duration)
    assert main.start <= median * (1 - SPREAD) + 1e-9
    assert main.end >= median * (1 + SPREAD) - 1e-9


def test_no_history_gives_no_window() -> None:
    assert predicted_windows(()) == ()


def test_history_is_read_from_created_and_concluded_times() -> None:
    builds = [
        {"id": "running", "status": "BUILDING", "concluded": False, "createdAt": 1_700_000_000},
        {  # ISO start, Unix seconds end
            "id": "a",
            "status": "SUCCESS",
            "concluded": True,
            "createdAt": "2023-11-14T22:13:20.000Z",
            "buildConcludedAt": 1_700_000_090,
        },
        {  # Unix milliseconds on both sides
            "id": "b",
            "status": "FAILURE",
            "concluded": True,
            "createdAt": 1_700_000_000_000,
            "buildConcludedAt": 1_700_000_030_000,
        },
        {
            "id": "aborted",
            "status": "ABORTED",
            "concluded": True,
            "createdAt": 1_700_000_000,
            "buildConcludedAt": 1_700_000_005,
        },
        {
            "id": "mine",
            "status": "SUCCESS",
            "concluded": True,
            "createdAt": 1,
            "buildConcludedAt": 9,
        },
    ]
    assert history_durations(parse_builds(builds), exclude="mine") == (90.0, 30.0)


def test_early_failures_in_the_history_open_a_window_from_the_start() -> None:
    windows = predicted_windows((20.0, 300.0, 310.0, 290.0))
    assert windows[0].start == 0.0
    assert windows[0].holds(20.0)
    assert not windows[0].holds(100.0)
    assert windows[-1].holds(300.0)


# -- the real loop, against the emulator ------------------------------------------------------

BUILD_SECONDS = 8.0
TIMED = {"QUEUED": 1.0, "CLONING": 1.0, "BUILDING": 5.0, "UPLOADING": 1.0}


def _timed_world() -> dict[str, dict[str, ServiceConfig]]:
    history = [
        PastBuild("success", duration=BUILD_SECONDS + delta, age=3600 * (i + 1), branch="main")
        for i, delta in enumerate((-0.6, -0.3, 0.0, 0.2, 0.5, -0.2, 0.4, 0.1, -0.4, 0.3))
    ]
    timed = ServiceConfig("build", "https://github.com/acme/api", phases=TIMED, history=history)
    return fast_world(**{"api-timed": timed})


def test_the_loop_reads_the_history_once_and_polls_where_it_predicts(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emulator = make_emulator(projects=_timed_world())
    inputs = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api-timed",
        "api-url": emulator.url,
        "service-type": "build",
    }
    result = run(github_env(tmp_path, inputs), tmp=tmp_path)
    assert result.code == 0, result.shown
    assert result.outputs["result"] == "success"
    received = api_requests(emulator)
    lists = [r for r in received if r.method == "GET" and r.path.endswith("/build")]
    reads = [r for r in received if r.method == "GET" and "/build/" in r.path]
    assert len(lists) == 1
    assert lists[0].query.get("per_page")
    # A fixed 2 s poll (the shortest auto ever waits) reads this build at 2, 4, 6 and 8 s.
    assert 1 <= len(reads) < math.ceil(BUILD_SECONDS / MIN_INTERVAL)
    assert "around where the last 10 builds of this service ended" in result.shown
    assert result.outputs["api-requests"] == str(len(received))


def test_a_fixed_interval_reads_no_history(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emulator = make_emulator()
    inputs = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "web",
        "api-url": emulator.url,
        "service-type": "combined",
        "poll-interval": "0.2",
    }
    result = run(github_env(tmp_path, inputs), tmp=tmp_path)
    assert result.code == 0, result.shown
    assert not [
        r for r in api_requests(emulator) if r.method == "GET" and r.path.endswith("/build")
    ]
    assert "every 0.2 s (poll-interval)" in result.shown


def test_a_failing_history_read_only_warns(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emulator = make_emulator()
    emulator.add_faults("GET builds", ["status:403"])
    inputs = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "web",
        "api-url": emulator.url,
        "service-type": "combined",
        "timeout": "3",  # the first read then comes at the timeout, not 15 s in
    }
    result = run(github_env(tmp_path, inputs), tmp=tmp_path)
    assert result.code == 0, result.shown
    assert result.outputs["result"] == "success"
    assert "could not read recent builds" in result.shown
    assert "this service has no finished builds to go by" in result.shown


@pytest.mark.parametrize(
    ("history", "words"),
    [
        ((120.0,), "Expecting the build to end 102 s to 138 s after it started, around where the "
         "last build of this service ended: reading it every 5 s then"),
        ((), "where most builds end (this service has no finished builds to go by)"),
    ],
)  # fmt: skip
def test_the_schedule_is_told_in_plain_words(history: tuple[float, ...], words: str) -> None:
    line = describe(None, history)
    assert words in line
    assert "1 recent builds" not in line
