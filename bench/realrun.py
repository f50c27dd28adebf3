"""One real wait against the emulator, to check that the real loop does what the simulation says.

A build of about a minute, on services whose ten recent builds lasted about as long, is followed
by this program once per schedule, all at the same time (they mostly sleep). The emulator's
request log gives each run's requests and the moment it read the concluded build; the simulation
of the same build and history, repeated with different jitter, gives what to expect.
"""

from __future__ import annotations

import random
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from simulate import FIXED_INTERVALS, Build, detect, percentile
from tools import PROJECT, REPOSITORY, this_program

from northflank_build.emulator import Emulator, PastBuild, ServiceConfig

SCHEDULES: tuple[float | None, ...] = (None, *FIXED_INTERVALS)
REPEATS = 300


def service_name(fixed: float | None) -> str:
    return "minute-auto" if fixed is None else f"minute-{fixed:g}s"


def phases(seconds: float) -> dict[str, float]:
    """A build of `seconds`: most of it BUILDING, a short UPLOADING at the end."""
    return {
        "QUEUED": 0.07 * seconds,
        "CLONING": 0.1 * seconds,
        "BUILDING": 0.78 * seconds,
        "UPLOADING": 0.05 * seconds,
    }


def history(seconds: float, seed: int = 5) -> list[float]:
    """Ten whole-second durations within ±15% of `seconds` (the API reports whole seconds)."""
    rng = random.Random(seed)
    return [float(round(seconds * rng.uniform(0.85, 1.15))) for _ in range(10)]


def services(seconds: float) -> dict[str, ServiceConfig]:
    """One service per schedule, each with the same build and the same history."""
    past = [
        PastBuild("success", duration=d, age=3600.0 * (i + 1), branch="main")
        for i, d in enumerate(history(seconds))
    ]
    return {
        service_name(fixed): ServiceConfig(
            "build", f"https://github.com/{REPOSITORY}", phases=phases(seconds), history=past
        )
        for fixed in SCHEDULES
    }


@dataclass(frozen=True)
class Observed:
    """What one schedule did in the real run, and what the simulation expects of it."""

    schedule: str
    requests: int
    latency: float
    expected_requests: tuple[float, int, int]  # median, lowest, highest
    expected_latency: tuple[float, float]  # median, 90th percentile


def _expected(
    seconds: float, fixed: float | None
) -> tuple[tuple[float, int, int], tuple[float, float]]:
    build = Build(seconds, tuple(history(seconds)))
    rng = random.Random(7)
    found = [detect(build, fixed, rng) for _ in range(REPEATS)]
    counts = [d.requests for d in found]
    latencies = [d.latency for d in found]
    return (
        (statistics.median(counts), min(counts), max(counts)),
        (statistics.median(latencies), percentile(latencies, 0.9)),
    )


def observe(emulator: Emulator, seconds: float) -> list[Observed]:
    """Run every schedule at once on its own service and read what the emulator received."""
    running = []
    for fixed in SCHEDULES:
        inputs = {"wait": "true", "timeout": "30m"}
        if fixed is not None:
            inputs["poll-interval"] = f"{fixed:g}"
        tool = this_program(emulator.url, service=service_name(fixed), **inputs)
        process = subprocess.Popen(
            tool.command,
            env=tool.env,
            cwd=tool.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        running.append((fixed, process))
    observed = []
    for fixed, process in running:
        output, _ = process.communicate(timeout=seconds + 600)
        if process.returncode != 0:
            raise RuntimeError(
                f"{service_name(fixed)} exited {process.returncode}: {output[-600:]}"
            )
        path = f"/v1/projects/{PROJECT}/services/{service_name(fixed)}/build"
        received = [r for r in emulator.requests if r.path.startswith(path)]
        start = next(r for r in received if r.method == "POST")
        concluded = start.at + seconds
        reads = [r for r in received if r.method == "GET"]
        detected = min(r.at for r in reads if r.at >= concluded)
        requests, latency = _expected(seconds, fixed)
        observed.append(
            Observed(
                schedule="auto" if fixed is None else f"fixed {fixed:g} s",
                requests=len(reads),
                latency=detected - concluded,
                expected_requests=requests,
                expected_latency=latency,
            )
        )
    return observed


def table(rows: Sequence[Observed]) -> str:
    lines = [
        "| schedule | requests | detection latency | simulated requests: median (range) "
        "| simulated latency: median, p90 |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        median, low, high = row.expected_requests
        lat_median, lat_p90 = row.expected_latency
        lines.append(
            f"| {row.schedule} | {row.requests} | {row.latency:.1f} s | {median:g} ({low}-{high}) "
            f"| {lat_median:.1f} s, {lat_p90:.1f} s |"
        )
    return "\n".join(lines)


def agrees(row: Observed) -> bool:
    """Whether the real run stayed within what the simulation produced, give or take one read."""
    _, low, high = row.expected_requests
    return low - 1 <= row.requests <= high + 1
