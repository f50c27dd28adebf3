"""Benchmark: several services in one step, and reusing a build of the same commit.

Runs the program as a process, in real time, with its defaults (service-type auto, poll-interval
auto), against the local emulator (builds of about BUILD seconds, with a history so that the
schedule knows when they end), and prints:

1. wall time and API requests of one step that builds 1, 3 and 10 services, against the goals
   (10 services: at most 1.3 x the wall time of one, at most 10 x its requests). With builds this
   short the poll schedule's phase (a read every 5 s near the expected end, jittered) moves the
   wall time of a single run by seconds, hence the median of several runs;
2. a re-run that reuses a running build, and one that reuses a finished one, against a run that
   starts anew.

`python bench/several.py [--runs N]`. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from northflank_build.emulator import (  # noqa: E402
    Emulator,
    EmulatorConfig,
    PastBuild,
    ServiceConfig,
)

TOKEN = "bench-token"
PROJECT = "bench-project"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
PHASES = {"PENDING": 0.5, "CLONING": 1.0, "BUILDING": 3.5, "UPLOADING": 1.0}
BUILD = sum(PHASES.values())
SERVICES = [f"svc-{n}" for n in range(10)]
GOALS = {"wall": 1.3, "requests": 10.0}


@dataclass(frozen=True)
class Figures:
    """Medians over the runs of one scenario."""

    name: str
    wall: float
    requests: float


def world() -> EmulatorConfig:
    history = [PastBuild("success", duration=BUILD, age=3600 + n * 600) for n in range(5)]
    services = {
        name: ServiceConfig(
            "build", "https://github.com/acme/app", phases=dict(PHASES), history=list(history)
        )
        for name in SERVICES
    }
    return EmulatorConfig(token=TOKEN, projects={PROJECT: services}, rate_limit=100_000)


def step(url: str, services: list[str], folder: Path, **inputs: str) -> tuple[float, int]:
    """One run of the program as a process: its wall time and the API requests it reports."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME")}
    outputs = folder / "outputs.json"
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "NORTHFLANK_API_URL": url,
            "NORTHFLANK_API_TOKEN": TOKEN,
            "NORTHFLANK_PROJECT_ID": PROJECT,
            "NORTHFLANK_SERVICE_ID": ",".join(services),
            "NORTHFLANK_SHA": SHA,
            "NORTHFLANK_BRANCH": "main",
            "NORTHFLANK_OUTPUTS_FILE": str(outputs),
            **{f"NORTHFLANK_{k.upper()}": v for k, v in inputs.items()},
        }
    )
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(REPO / "entrypoint.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"the program exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return wall, int(json.loads(outputs.read_text(encoding="utf-8"))["api-requests"])


def measure(name: str, runs: int, one_run: Callable[[], tuple[float, int]]) -> Figures:
    samples = [one_run() for _ in range(runs)]
    return Figures(
        name,
        statistics.median(s[0] for s in samples),
        statistics.median(s[1] for s in samples),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario (default 5)")
    args = parser.parse_args()
    with Emulator(world()) as emulator, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        url = emulator.url

        print(f"## Several services in one step: builds of {BUILD:g} s, median of {args.runs}\n")
        print("| services | wall | API requests | ÷ one service: wall | requests |")
        print("|---|---|---|---|---|")
        rows = [
            measure(str(n), args.runs, partial(step, url, SERVICES[:n], folder)) for n in (1, 3, 10)
        ]
        one = rows[0]
        for row in rows:
            print(
                f"| {row.name} | {row.wall:.1f} s | {row.requests:.0f} | "
                f"{row.wall / one.wall:.2f} | {row.requests / one.requests:.2f} |"
            )
        ten = rows[-1]
        for what, limit in GOALS.items():
            ratio = getattr(ten, what) / getattr(one, what)
            verdict = "met" if ratio <= limit else "NOT met"
            print(f"- 10 services, {what} ≤ {limit:g} x one: {ratio:.2f} x ({verdict})")

        print(f"\n## Reusing a build of the same commit: median of {args.runs}\n")
        print("| run | wall | API requests |")
        print("|---|---|---|")
        service = [SERVICES[0]]

        def anew() -> tuple[float, int]:
            return step(url, service, folder)

        def reuse_running() -> tuple[float, int]:
            step(url, service, folder, wait="false")  # the first run, still building
            return step(url, service, folder, reuse="running")

        def reuse_finished() -> tuple[float, int]:
            step(url, service, folder)  # the first run, concluded
            return step(url, service, folder, reuse="success")

        for row in (
            measure("starting anew", args.runs, anew),
            measure("re-run, reuse: running (the first still building)", args.runs, reuse_running),
            measure("re-run, reuse: success (the first concluded)", args.runs, reuse_finished),
        ):
            print(f"| {row.name} | {row.wall:.2f} s | {row.requests:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
