"""The fault matrix as figures: each scenario of tests/test_faults.py run once against the emulator.

Prints, per scenario, the exit code, the result, the builds created (never more than one) and
the API requests the run spent, with its wall time: `python bench/faults.py`. Each run sleeps in
real time (the tests skip their sleeps), so the wall time is what a user waits. Only 127.0.0.1 is
contacted.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from northflank_build.emulator import Emulator, EmulatorConfig  # noqa: E402
from tests.clock import CLOCK  # noqa: E402
from tests.conftest import TOKEN, api_requests  # noqa: E402
from tests.test_faults import SCENARIOS, new_builds, quick_world, run_action  # noqa: E402


def main() -> None:
    print("| fault scenario | exit | result | builds created | requests spent | wall |")
    print("|---|---|---|---|---|---|")
    for scenario in SCENARIOS:
        config = EmulatorConfig(**{"token": TOKEN, "projects": quick_world(), **scenario.config})
        emulator = Emulator(config, clock=CLOCK.emulator_clock())
        with emulator, tempfile.TemporaryDirectory() as folder:
            for endpoint, faults in scenario.faults.items():
                emulator.add_faults(endpoint, faults)
            began = time.monotonic()
            result = run_action(
                Path(folder), emulator.url, scenario.inputs, scenario.env, real_sleep=True
            )
            wall = time.monotonic() - began
            builds = len(new_builds(emulator, scenario.inputs.get("service-id", "api")))
            received = len(api_requests(emulator))
        print(
            f"| {scenario.name} | {result.code} | {result.outputs.get('result')} | {builds} "
            f"| {result.outputs.get('api-requests')} ({received} received) | {wall:.1f} s |"
        )


if __name__ == "__main__":
    main()
