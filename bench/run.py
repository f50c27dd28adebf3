"""Benchmarks: wall time and API requests of a trigger-only run and of a run that waits.

Runs the program as a process against the local emulator, as CI would, and prints figures:
`make bench` or `python bench/run.py [--runs N]`. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from northflank_build.emulator import Emulator, EmulatorConfig, ServiceConfig  # noqa: E402

TOKEN = "bench-token"
PROJECT = "bench-project"


@dataclass
class Figures:
    """One scenario's measurements."""

    name: str
    walls: list[float]
    requests: list[int]

    def row(self) -> str:
        median = statistics.median(self.walls)
        spread = max(self.walls) - min(self.walls)
        per_run = statistics.median(self.requests)
        return (
            f"| {self.name} | {len(self.walls)} | {median:.3f} s | {spread:.3f} s | {per_run:g} |"
        )


def world(build_seconds: float) -> EmulatorConfig:
    third = build_seconds / 3
    phases = {"QUEUED": third / 2, "CLONING": third / 2, "BUILDING": third, "UPLOADING": third}
    service = ServiceConfig("build", "https://github.com/acme/api", phases=phases)
    return EmulatorConfig(token=TOKEN, projects={PROJECT: {"api": service}})


def run_once(url: str, extra: dict[str, str]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
    env.update(
        {
            "NORTHFLANK_API_TOKEN": TOKEN,
            "NORTHFLANK_PROJECT_ID": PROJECT,
            "NORTHFLANK_SERVICE_ID": "api",
            "NORTHFLANK_API_URL": url,
            "NORTHFLANK_BRANCH": "main",
            "NORTHFLANK_SERVICE_TYPE": "build",
            **extra,
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        process = subprocess.run(
            [sys.executable, str(REPO / "entrypoint.py")],
            env=env,
            cwd=folder,
            capture_output=True,
            check=False,
            timeout=600,
        )
        wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"run failed ({process.returncode}): {process.stderr.decode()[-500:]}")
    return wall


def measure(name: str, runs: int, build_seconds: float, extra: dict[str, str]) -> Figures:
    figures = Figures(name, [], [])
    with Emulator(world(build_seconds)) as emulator:
        emulator.start()
        for _ in range(runs):
            before = len(emulator.requests)
            figures.walls.append(run_once(emulator.url, extra))
            figures.requests.append(len(emulator.requests) - before)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="runs per scenario (default 10)")
    parser.add_argument("--build-seconds", type=float, default=20.0, help="length of a build")
    args = parser.parse_args()
    print("| scenario | runs | median wall | spread | API requests per run |")
    print("|---|---|---|---|---|")
    trigger = measure(
        "trigger only (wait: false)", args.runs, args.build_seconds, {"NORTHFLANK_WAIT": "false"}
    )
    print(trigger.row(), flush=True)
    waits = max(1, args.runs // 5)
    label = f"waits for a {args.build_seconds:g} s build"
    waiting = measure(label, waits, args.build_seconds, {})
    print(waiting.row(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
