"""What each start-up device saves a trigger-only run, measured rather than assumed.

A device that costs code stays only where it saves at least DEVICE_THRESHOLD:

- exiting with os._exit after flushing (exit_now) instead of a normal interpreter exit, measured
  on the whole program;
- devices given up, each measured as the work it avoided: a JSON copy of action.yml instead of
  importing PyYAML and parsing action.yml; argparse imported and its parser built only when flags
  are given; jsonschema imported only to explain an invalid body (a run imports it no more: the
  per-input checks are the validator, the schema the tests' oracle).

Each figure is the difference of the medians of two commands run alternately in fresh
interpreters, after importing what every run imports (requests).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml
from tools import REPO, Tool

DEVICE_THRESHOLD = 0.020  # seconds
ACTION = REPO / "action.yml"
BASE = "import json, requests\n"
NORMAL_EXIT = (
    "import sys\n"
    "from northflank_build.signals import Signals\n"
    "signals = Signals()\n"
    "signals.install()\n"
    "from northflank_build.cli import main\n"
    "sys.exit(main(signals=signals))\n"
)
PARSER = (
    "import argparse\n"
    "parser = argparse.ArgumentParser()\n"
    "for n in range(30):\n"
    "    parser.add_argument(f'--input-{n}', metavar='VALUE', help='an input')\n"
    "parser.parse_args([])\n"
)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _wall(command: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    began = time.perf_counter()
    subprocess.run(list(command), env=env, cwd=cwd, capture_output=True, check=True, timeout=60)
    return time.perf_counter() - began


def saving(
    with_work: Sequence[str], without: Sequence[str], env: dict[str, str], cwd: Path, runs: int
) -> float:
    """Median wall of `with_work` minus that of `without`, run alternately `runs` times each."""
    walls: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        walls[0].append(_wall(with_work, env, cwd))
        walls[1].append(_wall(without, env, cwd))
    return statistics.median(walls[0]) - statistics.median(walls[1])


def report(ours: Tool, runs: int) -> list[str]:
    """Markdown lines: each device, what it saves a trigger-only run, and whether it stays."""
    env = {**ours.env, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "action.json"
        copy.write_text(json.dumps(yaml.safe_load(ACTION.read_text(encoding="utf-8"))))
        read_yaml = f"import yaml\nyaml.load(open({str(ACTION)!r}), Loader=yaml.CSafeLoader)\n"
        read_json = f"json.load(open({str(copy)!r}))\n"
        rows = [
            (
                "os._exit after flushing, instead of the interpreter's teardown",
                saving(_python(NORMAL_EXIT), ours.command, ours.env, ours.cwd, runs),
            ),
            (
                "a JSON copy of action.yml, instead of PyYAML",
                saving(_python(BASE + read_yaml), _python(BASE + read_json), env, ours.cwd, runs),
            ),
            (
                "argparse only when flags are given",
                saving(_python(BASE + PARSER), _python(BASE), env, ours.cwd, runs),
            ),
        ]
        schema = saving(_python(BASE + "import jsonschema\n"), _python(BASE), env, ours.cwd, runs)
    lines = [
        f"| start-up device (median of {runs} runs each) | saves a trigger-only run | kept |",
        "|---|---|---|",
    ]
    for name, saved in rows:
        kept = "yes" if saved >= DEVICE_THRESHOLD else "no (under 20 ms)"
        lines.append(f"| {name} | {saved * 1000:.1f} ms | {kept} |")
    lines.append(
        f"\nImporting jsonschema would cost {schema * 1000:.0f} ms; no run imports it: the "
        "per-input checks validate, and the tests hold every body the program can build against "
        "the schema."
    )
    return lines
