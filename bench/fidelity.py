"""What the log tail and a lost start's recovery cost, against the emulator as wide as the API.

Prints two tables (`python bench/fidelity.py`):

- the log tail of a failed build: its log requests, the lines it showed, and whether it showed
  the build's last line, for a 40-minute build, and for a build of 300 lines with the API's page
  capped at 100 and at 30 lines;
- recovering a start whose answer was lost (the connection resets after the API created the
  build): the list requests spent, the requests before the first poll of the build, and the
  builds created (one means the build was found; two, that it was started again), for services
  with 30 and 150 builds listed newest first, oldest first and shuffled, and with 1000 listed
  oldest first (past the search's bound of 10 pages: the run stops rather than start again).

Runs in-process on the tests' clock, so a 40-minute build takes milliseconds; only 127.0.0.1 is
contacted.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from northflank_build.emulator import Emulator, EmulatorConfig, PastBuild, ServiceConfig  # noqa: E402
from tests.clock import CLOCK  # noqa: E402
from tests.conftest import FAST, PROJECT, TOKEN, api_requests, fast_world  # noqa: E402
from tests.runner import github_env, run  # noqa: E402
from tests.test_faults import BRANCH, SHA, new_builds, run_action  # noqa: E402

LONG: dict[str, float] = {"PENDING": 30, "CLONING": 90, "BUILDING": 2220, "UPLOADING": 60}
CHATTY: dict[str, float] = {"QUEUED": 0.3, "CLONING": 0.3, "BUILDING": 1.0, "UPLOADING": 0.3}


def emulator(**config: Any) -> Emulator:
    return Emulator(EmulatorConfig(token=TOKEN, **config), clock=CLOCK.emulator_clock())


def tail_row(name: str, service: ServiceConfig, page_limit: int, inputs: dict[str, str]) -> str:
    with emulator(projects=fast_world(failing=service), log_page_limit=page_limit) as emu:
        with tempfile.TemporaryDirectory() as folder:
            values = {
                "api-token": TOKEN,
                "project-id": PROJECT,
                "service-id": "failing",
                "service-type": "build",
                "api-url": emu.url,
                "logs": "on-failure",
                **inputs,
            }
            extra = {"GITHUB_SHA": SHA, "GITHUB_REF": f"refs/heads/{BRANCH}"}
            result = run(github_env(Path(folder), values, extra=extra), tmp=Path(folder))
        build_id = result.outputs.get("build-id", "")
        whole = [line["log"] for line in emu.log_lines(PROJECT, "failing", build_id)]
        logs = [r for r in api_requests(emu) if r.path.endswith("/build-logs")]
    shown = result.shown.split(f"::group::Build log of {build_id}", 1)[-1].split("::endgroup::")[0]
    lines = shown.splitlines()[1:] if "::group::" not in shown else []
    last = "yes" if whole and lines and lines[-1] == whole[-1] else "no"
    return f"| {name} | {len(whole)} | {len(logs)} | {len(lines)} | {last} |"


def recovery_row(history: int, order: str) -> str:
    past = [
        PastBuild("success", duration=60, age=3600 + 600 * n, sha=SHA, branch=BRANCH)
        for n in range(history)
    ]
    api = ServiceConfig("build", "https://github.com/acme/api", phases=dict(FAST), history=past)
    with emulator(projects=fast_world(api=api), list_order=order) as emu:
        emu.add_faults("POST build", ["reset-after"])
        with tempfile.TemporaryDirectory() as folder:
            result = run_action(Path(folder), emu.url, {})
        received = api_requests(emu)
        lists = [r for r in received if r.method == "GET" and r.path.endswith("/build")]
        polls = [i for i, r in enumerate(received) if r.method == "GET" and "/build/" in r.path]
        before = polls[0] if polls else len(received)
        created = len(new_builds(emu, "api"))
    return f"| {history} | {order} | {len(lists)} | {before} | {created} | {result.code} |"


def main() -> None:
    print("Log tail of a failed build (logs: on-failure)")
    print("| build | lines logged | log requests | lines shown | last line shown |")
    print("|---|---|---|---|---|")
    long = ServiceConfig("build", phases=LONG, outcome="failure", log_lines_per_phase=3)
    slow_polls = {"poll-interval": "30", "timeout": "3600"}
    print(tail_row("40 minutes, page cap 100", long, 100, slow_polls))
    chatty = ServiceConfig("build", phases=CHATTY, outcome="failure", log_lines_per_phase=100)
    quick_polls = {"poll-interval": "0.5", "timeout": "60"}
    print(tail_row("4 s, page cap 100", chatty, 100, quick_polls))
    print(tail_row("4 s, page cap 30", chatty, 30, quick_polls))
    print()
    print("Recovering a lost start (POST build: reset-after)")
    print("| builds | order | list requests | requests before polling | builds created | exit |")
    print("|---|---|---|---|---|---|")
    for history in (30, 150):
        for order in ("newest-first", "oldest-first", "shuffled"):
            print(recovery_row(history, order))
    print(recovery_row(1000, "oldest-first"))


if __name__ == "__main__":
    main()
