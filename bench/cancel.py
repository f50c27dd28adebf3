"""Benchmark: from a signal to the abort request reaching the API, and to the program's exit.

Runs the program as a process against the local emulator and signals it in three situations:
while it sleeps between polls, while it waits on a slow read of the build, and while the start
request itself is unanswered (the build exists, its id is not known yet). Prints the median and
the maximum of each delay: `python bench/cancel.py [--runs N]`. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from northflank_build.emulator import Emulator, EmulatorConfig, ServiceConfig  # noqa: E402

TOKEN = "bench-token"
PROJECT = "bench-project"
EXPECTED = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class Scenario:
    """Where the program is when the signal comes, and how to get it there."""

    name: str
    signum: signal.Signals
    env: dict[str, str]
    faults: dict[str, list[str]]
    ready: Callable[[Emulator], bool]
    to_abort: list[float] = field(default_factory=list)
    to_exit: list[float] = field(default_factory=list)
    wrong: int = 0

    def row(self) -> str:
        def figures(values: list[float]) -> str:
            if not values:
                return "- | -"
            return f"{statistics.median(values):.3f} s | {max(values):.3f} s"

        return (
            f"| {self.name} | {self.signum.name} | {len(self.to_exit)} | "
            f"{figures(self.to_abort)} | {figures(self.to_exit)} | {self.wrong} |"
        )


def sent(emulator: Emulator, method: str, path_part: str) -> bool:
    return any(r.method == method and path_part in r.path for r in emulator.requests)


def scenarios() -> list[Scenario]:
    return [
        Scenario(
            "sleeping between polls",
            signal.SIGTERM,
            {"NORTHFLANK_POLL_INTERVAL": "30"},
            {},
            lambda emu: sent(emu, "POST", "/build"),
        ),
        Scenario(
            "waiting on a slow read (5 s)",
            signal.SIGINT,
            {"NORTHFLANK_POLL_INTERVAL": "0.1"},
            {"GET build": ["delay:5"]},
            lambda emu: sent(emu, "GET", "/build/"),
        ),
        Scenario(
            "start request unanswered",
            signal.SIGTERM,
            {},
            {"POST build": ["delay:5:apply-first"]},
            lambda emu: sent(emu, "POST", "/build"),
        ),
    ]


def world() -> EmulatorConfig:
    phases = {"QUEUED": 0.2, "CLONING": 0.2, "BUILDING": 600.0, "UPLOADING": 0.1}
    service = ServiceConfig("build", "https://github.com/acme/api", phases=phases)
    return EmulatorConfig(token=TOKEN, projects={PROJECT: {"api": service}})


def run_once(emulator: Emulator, scenario: Scenario, folder: str) -> None:
    emulator.reset()
    for endpoint, faults in scenario.faults.items():
        emulator.add_faults(endpoint, faults)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "NF_"))}
    env = {k: v for k, v in env.items() if not k.startswith("NORTHFLANK_")}
    env.update(
        {
            "NORTHFLANK_API_TOKEN": TOKEN,
            "NORTHFLANK_PROJECT_ID": PROJECT,
            "NORTHFLANK_SERVICE_ID": "api",
            "NORTHFLANK_API_URL": emulator.url,
            "NORTHFLANK_BRANCH": "main",
            "NORTHFLANK_SERVICE_TYPE": "build",
            "NORTHFLANK_TIMEOUT": "120",
            **scenario.env,
        }
    )
    process = subprocess.Popen(
        [sys.executable, str(REPO / "entrypoint.py")],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not scenario.ready(emulator):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"{scenario.name}: the program never got there")
            time.sleep(0.01)
        if scenario.name.startswith("sleeping"):
            time.sleep(0.3)  # the start's answer has been read: the program sleeps for 30 s
        signalled = time.monotonic()
        process.send_signal(scenario.signum)
        code = process.wait(timeout=30)
        exited = time.monotonic()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    aborts = [r.at for r in emulator.requests if r.method == "DELETE"]
    scenario.to_exit.append(exited - signalled)
    if aborts:
        scenario.to_abort.append(aborts[0] - signalled)
    if code != EXPECTED[scenario.signum] or len(aborts) != 1:
        scenario.wrong += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="runs per situation (default 20)")
    args = parser.parse_args()
    print(
        "| signal comes while | signal | runs | to abort received: median | max "
        "| to exit: median | max | runs without one abort or the right exit code |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with Emulator(world()) as emulator, tempfile.TemporaryDirectory() as folder:
        for scenario in scenarios():
            for _ in range(args.runs):
                run_once(emulator, scenario, folder)
            print(scenario.row(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
