"""Benchmarks: the step's own cost against Northflank's tools, and the poll schedule's cost.

`make bench` (or `python bench/run.py [--quick]`), on a fresh clone. It installs Northflank's CLI
and Python SDK into bench/.scratch/ the first time, then prints, as Markdown:

1. trigger-only runs of this program, the CLI, the SDK, a bare script and curl against the local
   emulator, alternating, with wall time, peak memory and this program's ratios to each;
2. the import time of a trigger-only run, the figure that shows a start-up regression first, and
   what each start-up device saves (bench/startup.py);
3. the poll schedule against fixed intervals, simulated on a virtual clock for thousands of builds;
4. one real wait for a build of about a minute per schedule, against what the simulation expects.

Only 127.0.0.1 is contacted once the tools are installed.
"""

from __future__ import annotations

import argparse
import compileall
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import realrun  # noqa: E402
import simulate  # noqa: E402
import startup  # noqa: E402
from measure import MEMORY_METHOD, CommandFailed, Figures, run_measured  # noqa: E402
from tools import PROJECT, REPO, SCRATCH, TOKEN, Missing, Tool, competitors, this_program  # noqa: E402

from northflank_build.emulator import Emulator, EmulatorConfig, ServiceConfig  # noqa: E402

# What no run should load.
NOT_FOR_A_TRIGGER = ("jsonschema", "northflank_build.emulator")
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)$", re.MULTILINE)
GOALS = (
    ("median wall", "northflank CLI", 0.40),
    ("median wall", "northflank CLI", 0.60),
    ("median wall", "Python SDK", 0.55),
    ("median wall", "bare script", 1.00),
    ("peak memory", "northflank CLI", 0.40),
)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def world(real_seconds: float) -> EmulatorConfig:
    services = {"api": ServiceConfig("build", "https://github.com/acme/api")}
    services.update(realrun.services(real_seconds))
    return EmulatorConfig(token=TOKEN, projects={PROJECT: services})


# -- 1. trigger-only runs -----------------------------------------------------------------------


def compare(tools: Sequence[Tool], runs: int) -> list[Figures]:
    """Every tool `runs` times, alternating and rotating the order, after one warm-up each."""
    figures = {tool.name: Figures(tool.name) for tool in tools}
    failed: set[str] = set()
    for round_ in range(-1, runs):
        shift = max(round_, 0) % len(tools)
        for tool in [*tools[shift:], *tools[:shift]]:
            if tool.name in failed:
                continue
            try:
                sample = run_measured(tool.command, tool.env, tool.cwd)
            except CommandFailed as error:
                log(f"{tool.name} failed and is left out: {error}")
                failed.add(tool.name)
                continue
            if round_ >= 0:
                figures[tool.name].samples.append(sample)
    return [f for f in figures.values() if f.name not in failed]


def trigger_table(figures: Sequence[Figures]) -> str:
    ours = figures[0]
    lines = [
        "| command | runs | median wall | min-max | peak memory | this program ÷ it: wall "
        "| memory |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        low, high = f.wall_range
        ratios = (
            "| |"
            if f is ours
            else (f"| {ours.wall / f.wall:.2f} | {ours.peak_mib / f.peak_mib:.2f} |")
        )
        lines.append(
            f"| {f.name} | {len(f.samples)} | {f.wall:.3f} s | {low:.3f}-{high:.3f} s "
            f"| {f.peak_mib:.1f} MiB {ratios}"
        )
    return "\n".join(lines)


def trigger_goals(figures: Sequence[Figures]) -> list[str]:
    ours = figures[0]
    lines = []
    for measure, name, limit in GOALS:
        other = next((f for f in figures if f.name.startswith(name)), None)
        if other is None:
            lines.append(f"- {measure} ≤ {limit:.2f} x {name}: not measured ({name} missing)")
            continue
        if measure == "median wall":
            ratio = ours.wall / other.wall
        else:
            ratio = ours.peak_mib / other.peak_mib
        verdict = "met" if ratio <= limit else "NOT met"
        lines.append(f"- {measure} ≤ {limit:.2f} x {name}: {ratio:.2f} x ({verdict})")
    return lines


# -- 2. imports -----------------------------------------------------------------------------------


def import_profile(command: Sequence[str], env: dict[str, str], cwd: Path) -> dict[str, int]:
    """Cumulative microseconds per imported module, from Python's -X importtime report.

    Top-level imports are keyed by their name, nested ones by two spaces and their name.
    """
    profiled = env | {"PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(
        list(command), env=profiled, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise CommandFailed(f"{command[0]} exited with {done.returncode}: {done.stderr[-600:]}")
    found = IMPORT_LINE.findall(done.stderr)
    return {("" if indent == " " else "  ") + name: int(micro) for micro, indent, name in found}


def import_ms(command: Sequence[str], env: dict[str, str], cwd: Path, runs: int = 5) -> float:
    """The median, over runs, of the time spent importing (the top-level imports' sum)."""
    totals = [
        sum(v for k, v in import_profile(command, env, cwd).items() if not k.startswith(" "))
        for _ in range(runs)
    ]
    return statistics.median(totals) / 1000


def import_report(ours: Tool) -> list[str]:
    """The regression figure: a trigger-only run's import time against the bare script's."""
    total = import_ms(ours.command, ours.env, ours.cwd)
    bare = import_ms(
        [sys.executable, "-c", "import requests, yaml, jsonschema"], ours.env, ours.cwd
    )
    alone = import_ms([sys.executable, "-c", "import requests"], ours.env, ours.cwd)
    loaded = {name.strip() for name in import_profile(ours.command, ours.env, ours.cwd)}
    unwanted = [name for name in NOT_FOR_A_TRIGGER if name in loaded]
    verdict = "met" if total <= bare else "NOT met"
    return [
        f"- imports of a trigger-only run (median of 5, `-X importtime`): {total:.0f} ms; "
        f"`import requests` alone: {alone:.0f} ms",
        f"- the bare script's imports (requests, yaml, jsonschema): {bare:.0f} ms: "
        f"ours ≤ theirs {verdict} ({total / bare:.2f} x)",
        "- modules a trigger-only run should not load: "
        + (", ".join(unwanted) + " (REGRESSION)" if unwanted else "none loaded"),
    ]


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs, builds and seconds")
    parser.add_argument("--runs", type=int, help="trigger-only runs per tool (default 10, quick 5)")
    parser.add_argument("--builds", type=int, help="simulated builds per population (2000; 500)")
    parser.add_argument("--real-seconds", type=float, help="length of the real build (61.3; 21.3)")
    parser.add_argument("--no-tools", action="store_true", help="skip installing CLI and SDK")
    parser.add_argument("--no-real", action="store_true", help="skip the real run")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 10)
    builds = args.builds or (500 if args.quick else 2000)
    real_seconds = args.real_seconds or (21.3 if args.quick else 61.3)
    started = time.monotonic()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    # The image ships compiled bytecode; PYTHONDONTWRITEBYTECODE would hide that here.
    compileall.compile_dir(REPO / "northflank_build", quiet=1)

    with Emulator(world(real_seconds)) as emulator:
        emulator.start()
        ours = this_program(emulator.url, wait="false")
        others = [] if args.no_tools else competitors(emulator.url, log)
        tools = [ours, *[t for t in others if isinstance(t, Tool)]]
        print(f"## Starting one build: {runs} runs each, alternating, against the emulator\n")
        print(f"Peak memory: {MEMORY_METHOD}. Bytecode compiled, as in the image.\n")
        for missing in (t for t in others if isinstance(t, Missing)):
            print(f"- {missing.name}: not measured: {missing.reason}")
        figures = compare(tools, runs)
        print(trigger_table(figures) + "\n")
        print("\n".join(trigger_goals(figures)))
        print("\n".join(import_report(ours)) + "\n", flush=True)
        print("## Start-up devices: kept only where they save 20 ms or more\n")
        print("\n".join(startup.report(ours, runs)) + "\n", flush=True)

        print(f"## Poll schedules on a virtual clock: {builds} builds per population\n")
        rows = simulate.compare(builds)
        print(simulate.table(rows) + "\n")
        for goal, met, figure in simulate.goals(rows):
            print(f"- {goal}: {figure} ({'met' if met else 'NOT met'})")
        print(flush=True)

        if not args.no_real:
            print(
                f"## One real wait per schedule: a {real_seconds:g} s build, ten like it before\n"
            )
            log(f"waiting for the real {real_seconds:g} s builds")
            observed = realrun.observe(emulator, real_seconds)
            print(realrun.table(observed) + "\n")
            off = [row.schedule for row in observed if not realrun.agrees(row)]
            print(
                "- the real loop made as many requests as the simulation: "
                + ("yes, for every schedule" if not off else "NO for " + ", ".join(off))
            )
    log(f"benchmark finished in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
