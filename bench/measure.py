"""Run a command as a child process and measure its wall time and its own peak memory.

Peak memory comes from GNU time (`/usr/bin/time -f %M`): a child forked from this process would
carry this process's own peak into its ru_maxrss (Linux keeps the high-water mark across exec),
so a small program must fork it. Without GNU time, wait4's figure is given, marked as an upper
bound.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class CommandFailed(RuntimeError):
    """The command exited non-zero or ran out of time; the message ends with its output."""


GNU_TIME = shutil.which("time", path="/usr/bin:/bin")
MEMORY_METHOD = "GNU time %M" if GNU_TIME else "wait4 ru_maxrss, an upper bound"


@dataclass(frozen=True)
class Sample:
    """One run: seconds from start to exit, and the peak resident memory of the command."""

    wall: float
    peak_mib: float


def run_measured(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = 60.0
) -> Sample:
    """Run command to completion and measure it; CommandFailed when it exits non-zero."""
    with tempfile.TemporaryFile() as output, tempfile.NamedTemporaryFile("r") as peak:
        wrapped = [GNU_TIME, "-f", "%M", "-o", peak.name, *command] if GNU_TIME else command
        start = time.perf_counter()
        process = subprocess.Popen(
            list(wrapped), env=dict(env), cwd=cwd, stdout=output, stderr=subprocess.STDOUT
        )
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            output.seek(0)
            tail = output.read().decode("utf-8", "replace")[-600:]
            raise CommandFailed(f"{command[0]} exited with {process.returncode}: {tail}")
        kib = int(peak.read().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return Sample(wall, kib / 1024)


@dataclass
class Figures:
    """Every sample of one command."""

    name: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def wall_range(self) -> tuple[float, float]:
        walls = [s.wall for s in self.samples]
        return min(walls), max(walls)

    @property
    def peak_mib(self) -> float:
        return statistics.median(s.peak_mib for s in self.samples)
