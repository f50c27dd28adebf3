"""Poll schedules on a virtual clock: detection latency and API requests per build, no sleeping.

Each simulated build concludes `duration` seconds after it started; a schedule reads it after each
wait that next_wait picks, as wait.py's Poller does, until a read comes at or after the conclusion.
Detection latency is the time from the conclusion to that read. `auto` pays one extra request, the
list of recent builds it reads once when the service has a history worth reading (it cannot know
beforehand, so it pays it without history too).

Populations (services' typical build times are log-uniform between 1 and 20 minutes):
- with history: ten recent builds and this one each last the typical time ±15% (uniform);
- without history: the same builds, but the service has no concluded build to learn from;
- early failures: a service with history whose build fails 5 to 60 s after it started.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from northflank_build.schedule import PollState, next_wait

TIMEOUT = 1800.0  # the action's default timeout, 30m
RATE_LIMIT = 1000
RATE_WINDOW = 3600.0
FIXED_INTERVALS = (2.0, 5.0, 10.0, 15.0)
TYPICAL_RANGE = (60.0, 1200.0)
SPREAD = 0.15
HISTORY_LENGTH = 10
POPULATIONS = ("with history", "without history", "early failures")


@dataclass(frozen=True)
class Build:
    """One build to detect: when it concludes and what the list endpoint tells about the past."""

    duration: float
    history: tuple[float, ...]


@dataclass(frozen=True)
class Detection:
    """How one schedule fared on one build."""

    latency: float
    requests: int


def _around(typical: float, rng: random.Random) -> float:
    return typical * rng.uniform(1 - SPREAD, 1 + SPREAD)


def population(kind: str, count: int, rng: random.Random) -> list[Build]:
    """`count` builds of one population (see the module's docstring)."""
    low, high = TYPICAL_RANGE
    builds = []
    for _ in range(count):
        typical = math.exp(rng.uniform(math.log(low), math.log(high)))
        history = tuple(_around(typical, rng) for _ in range(HISTORY_LENGTH))
        if kind == "with history":
            builds.append(Build(_around(typical, rng), history))
        elif kind == "without history":
            builds.append(Build(_around(typical, rng), ()))
        elif kind == "early failures":
            builds.append(Build(rng.uniform(5.0, 60.0), history))
        else:
            raise ValueError(f"unknown population {kind!r}")
    return builds


def detect(build: Build, fixed: float | None, rng: random.Random) -> Detection:
    """Follow one build with one schedule on a virtual clock."""
    requests = 1 if fixed is None else 0  # auto reads the list of recent builds once
    used = 1 + requests  # the start request counts against the token's budget too
    elapsed = 0.0
    while True:
        wait = next_wait(
            PollState(
                elapsed=elapsed,
                remaining_time=TIMEOUT - elapsed,
                fixed=fixed,
                budget_remaining=max(0, RATE_LIMIT - used),
                budget_reset_in=max(0.0, RATE_WINDOW - elapsed),
                status="BUILDING",
                history=build.history,
                jitter=rng.random(),
            )
        )
        if wait <= 0:
            raise RuntimeError(f"the schedule gave a wait of {wait} s at {elapsed} s")
        elapsed += wait
        requests += 1
        used += 1
        if elapsed >= build.duration or elapsed >= TIMEOUT:
            return Detection(elapsed - build.duration, requests)


@dataclass(frozen=True)
class Row:
    """One schedule on one population."""

    schedule: str
    population: str
    median_latency: float
    p90_latency: float
    requests: float
    worst_ratio: float | None = None


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))
    return ordered[index]


def _fixed_requests(build: Build, interval: float) -> int:
    return math.ceil(build.duration / interval)


def compare(count: int, seed: int = 5) -> list[Row]:
    """Every schedule on every population, the same builds for each schedule."""
    rows = []
    for kind in POPULATIONS:
        builds = population(kind, count, random.Random(f"{seed}-{kind}"))
        for fixed in (None, *FIXED_INTERVALS):
            rng = random.Random(f"{seed}-{kind}-{fixed}")
            found = [detect(build, fixed, rng) for build in builds]
            latencies = [d.latency for d in found]
            worst = None
            if fixed is None:
                worst = max(
                    d.requests / _fixed_requests(b, 10.0)
                    for d, b in zip(found, builds, strict=True)
                )
            rows.append(
                Row(
                    schedule="auto" if fixed is None else f"fixed {fixed:g} s",
                    population=kind,
                    median_latency=statistics.median(latencies),
                    p90_latency=percentile(latencies, 0.9),
                    requests=statistics.mean(d.requests for d in found),
                    worst_ratio=worst,
                )
            )
    return rows


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table, with requests relative to a fixed 10 s poll."""
    reference = {r.population: r.requests for r in rows if r.schedule == "fixed 10 s"}
    lines = [
        "| population | schedule | median latency | p90 latency | requests per build "
        "| ÷ fixed 10 s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row.requests / reference[row.population]
        lines.append(
            f"| {row.population} | {row.schedule} | {row.median_latency:.1f} s "
            f"| {row.p90_latency:.1f} s | {row.requests:.1f} | {ratio:.2f} |"
        )
    return "\n".join(lines)


def goals(rows: Sequence[Row]) -> list[tuple[str, bool, str]]:
    """The issue's goals for the schedule: (goal, met, figures)."""
    by = {(r.population, r.schedule): r for r in rows}
    hist, hist10 = by[("with history", "auto")], by[("with history", "fixed 10 s")]
    bare, bare10 = by[("without history", "auto")], by[("without history", "fixed 10 s")]
    hist_ratio = hist.requests / hist10.requests
    bare_ratio = bare.requests / bare10.requests
    return [
        (
            "with history: median latency ≤ 3 s",
            hist.median_latency <= 3.0,
            f"{hist.median_latency:.1f} s",
        ),
        (
            "with history: requests ≤ 0.8 x fixed 10 s",
            hist_ratio <= 0.8,
            f"{hist_ratio:.2f}x",
        ),
        (
            "without history: requests ≤ fixed 10 s (mean per build)",
            bare_ratio <= 1.0,
            f"{bare_ratio:.2f}x, worst single build {bare.worst_ratio or 0:.2f}x",
        ),
        (
            "without history: median latency ≤ fixed 10 s",
            bare.median_latency <= bare10.median_latency,
            f"{bare.median_latency:.1f} s against {bare10.median_latency:.1f} s",
        ),
    ]
