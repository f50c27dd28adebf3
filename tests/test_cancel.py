"""Cancellation and timeout end to end: the program runs as a process and receives real signals.

GitHub sends SIGINT, then SIGTERM 7.5 s later; the program must abort the build (abort-on-cancel),
write its outputs and exit 130 or 143 within 3 seconds, whatever it was doing at the time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from northflank_build.emulator import Emulator, PastBuild, ServiceConfig
from northflank_build.signals import Signals
from tests.clock import CLOCK
from tests.conftest import PROJECT, TOKEN, MakeEmulator, api_requests, fast_world
from tests.runner import REPO, Result, github_env, parse_output_file, run

PUSH = {"GITHUB_SHA": "b2" * 20, "GITHUB_REF": "refs/heads/main"}
EXIT_WITHIN = 3.0  # the promise: gone within 3 s of the signal
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def inputs(emulator: Emulator, service: str, **values: str) -> dict[str, str]:
    return {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": service,
        "api-url": emulator.url,
        "service-type": "build",
        "timeout": "60",
        **{k.replace("_", "-"): v for k, v in values.items()},
    }


@dataclass
class Running:
    """The program started as the runner starts it, with its output going to files."""

    process: subprocess.Popen[bytes]
    tmp: Path

    def exit_code(self) -> int:
        """The exit code; fails when the program is still running EXIT_WITHIN s after now."""
        return self.process.wait(timeout=EXIT_WITHIN)

    def outputs(self) -> dict[str, str]:
        return parse_output_file((self.tmp / "github_output").read_text(encoding="utf-8"))

    def shown(self) -> str:
        return (self.tmp / "stdout").read_text(encoding="utf-8")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Running]]:
    started: list[subprocess.Popen[bytes]] = []

    def launch(values: dict[str, str]) -> Running:
        env = github_env(tmp_path, values, extra=PUSH)
        with (tmp_path / "stdout").open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, str(REPO / "entrypoint.py")],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return Running(process, tmp_path)

    yield launch
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def until(condition: Callable[[], object], what: str, seconds: float = 20.0) -> None:
    """Wait until condition() is true; fail naming what did not happen."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def sent(emulator: Emulator, method: str, path_part: str) -> list[str]:
    """Paths of the requests with this method whose path contains path_part."""
    return [r.path for r in api_requests(emulator) if r.method == method and path_part in r.path]


def aborts(emulator: Emulator) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in api_requests(emulator) if r.method == "DELETE"]


def build_started(running: Running) -> bool:
    return "build-id<<" in (running.tmp / "github_output").read_text(encoding="utf-8")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("moment", ["sleep", "slow-request"])
def test_a_signal_aborts_the_build_and_exits_promptly(
    make_emulator: MakeEmulator,
    start: Callable[[dict[str, str]], Running],
    signum: signal.Signals,
    moment: str,
) -> None:
    emulator = make_emulator()
    if moment == "sleep":
        running = start(inputs(emulator, "api-slow", poll_interval="30"))
        until(lambda: build_started(running), "the build has started")
    else:
        emulator.add_faults("GET build", ["delay:5"])
        running = start(inputs(emulator, "api-slow", poll_interval="0.1"))
        until(lambda: sent(emulator, "GET", "/build/"), "the slow read was sent")
    running.process.send_signal(signum)
    assert running.exit_code() == CODES[signum], running.shown()
    outputs = running.outputs()
    assert aborts(emulator) == [outputs["build-id"]]
    assert outputs["result"] == "aborted"
    assert outputs["status"] == "ABORTED"
    [build] = emulator.builds(PROJECT, "api-slow")
    assert build["status"] == "ABORTED"
    shown = running.shown()
    assert f"Aborted build {outputs['build-id']} on Northflank" in shown
    assert f"::error title=Cancelled::interrupted by {signum.name}" in shown


def test_without_abort_on_cancel_the_build_goes_on(
    make_emulator: MakeEmulator, start: Callable[[dict[str, str]], Running]
) -> None:
    emulator = make_emulator()
    running = start(inputs(emulator, "api-slow", poll_interval="30", abort_on_cancel="false"))
    until(lambda: build_started(running), "the build has started")
    running.process.send_signal(signal.SIGTERM)
    assert running.exit_code() == 143, running.shown()
    outputs = running.outputs()
    assert aborts(emulator) == []
    assert outputs["result"] == "cancelled"
    assert f"Build {outputs['build-id']} goes on running on Northflank" in running.shown()
    [build] = emulator.builds(PROJECT, "api-slow")
    assert build["concluded"] is False


def test_a_build_that_concluded_before_the_abort_keeps_its_result(
    make_emulator: MakeEmulator, start: Callable[[dict[str, str]], Running]
) -> None:
    emulator = make_emulator()
    # The build concludes in well under a second, while the program waits on a 3 s read.
    emulator.add_faults("GET build", ["delay:3"])
    running = start(inputs(emulator, "api", poll_interval="0.1"))
    until(lambda: sent(emulator, "GET", "/build/"), "the slow read was sent")
    until(lambda: emulator.builds(PROJECT, "api")[0]["concluded"], "the build concluded")
    running.process.send_signal(signal.SIGTERM)
    assert running.exit_code() == 143, running.shown()
    outputs = running.outputs()
    assert aborts(emulator) == [outputs["build-id"]]
    assert outputs["result"] == "success"
    assert outputs["status"] == "SUCCESS"
    assert f"Build {outputs['build-id']} had already concluded: SUCCESS" in running.shown()


def test_an_abort_the_api_refuses_leaves_the_build_cancelled(
    make_emulator: MakeEmulator, start: Callable[[dict[str, str]], Running]
) -> None:
    emulator = make_emulator()
    emulator.add_faults("DELETE build", ["status:500"])
    running = start(inputs(emulator, "api-slow", poll_interval="30"))
    until(lambda: build_started(running), "the build has started")
    running.process.send_signal(signal.SIGTERM)
    assert running.exit_code() == 143, running.shown()
    outputs = running.outputs()
    assert aborts(emulator) == [outputs["build-id"]]
    assert outputs["result"] == "cancelled"
    assert f"::warning::could not abort build {outputs['build-id']}" in running.shown()
    [build] = emulator.builds(PROJECT, "api-slow")
    assert build["concluded"] is False


def test_a_signal_during_the_start_request_still_aborts_the_build_it_created(
    make_emulator: MakeEmulator, start: Callable[[dict[str, str]], Running]
) -> None:
    """Its build is found among the service's builds, whatever their order: here it is the last
    of 151 listed oldest first, on the second page."""
    history = [PastBuild("success", duration=60, age=3600 + 600 * n) for n in range(150)]
    phases = {"QUEUED": 0.2, "CLONING": 0.2, "BUILDING": 120.0, "UPLOADING": 0.1}
    slow = ServiceConfig("build", "https://github.com/acme/api", phases=phases, history=history)
    emulator = make_emulator(projects=fast_world(**{"api-slow": slow}), list_order="oldest-first")
    # The API creates the build at once but answers 5 s later: the signal comes in between.
    emulator.add_faults("POST build", ["delay:5:apply-first"])
    running = start(inputs(emulator, "api-slow"))
    until(lambda: len(emulator.builds(PROJECT, "api-slow")) > 150, "the build was created")
    running.process.send_signal(signal.SIGTERM)
    assert running.exit_code() == 143, running.shown()
    build = emulator.builds(PROJECT, "api-slow")[0]  # the newest
    assert aborts(emulator) == [build["id"]]
    outputs = running.outputs()
    assert outputs["build-id"] == build["id"]
    assert outputs["result"] == "aborted"
    lists = [r for r in api_requests(emulator) if r.method == "GET" and r.path.endswith("/build")]
    assert [r.query.get("per_page") for r in lists] == ["100", "100"]


def test_a_start_request_that_created_nothing_yet_is_reported(
    make_emulator: MakeEmulator, start: Callable[[dict[str, str]], Running]
) -> None:
    emulator = make_emulator()
    emulator.add_faults("POST build", ["delay:5"])
    running = start(inputs(emulator, "api-slow"))
    until(lambda: sent(emulator, "POST", "/build"), "the start request was sent")
    running.process.send_signal(signal.SIGINT)
    assert running.exit_code() == 130, running.shown()
    assert aborts(emulator) == []
    outputs = running.outputs()
    assert outputs["result"] == "cancelled"
    assert outputs["build-id"] == ""
    assert "may still start; check the service's builds on Northflank" in running.shown()


def test_a_second_signal_exits_at_once(
    make_emulator: MakeEmulator, start: Callable[[dict[str, str]], Running]
) -> None:
    emulator = make_emulator()
    emulator.add_faults("DELETE build", ["delay:5"])
    running = start(inputs(emulator, "api-slow", poll_interval="30"))
    until(lambda: build_started(running), "the build has started")
    running.process.send_signal(signal.SIGINT)
    until(lambda: aborts(emulator), "the abort was sent")
    running.process.send_signal(signal.SIGTERM)
    assert running.exit_code() == 143, running.shown()
    # Gone before the abort's answer: no final outputs were written, only the build id.
    assert set(running.outputs()) == {"build-id"}


@pytest.mark.parametrize("abort", [True, False], ids=["abort-on-timeout", "leave-running"])
def test_timeout_exits_4_and_aborts_only_when_asked(
    tmp_path: Path, make_emulator: MakeEmulator, abort: bool
) -> None:
    emulator = make_emulator()
    values = inputs(
        emulator,
        "api-slow",
        poll_interval="0.2",
        timeout="1",
        abort_on_timeout=str(abort).lower(),
    )
    result: Result = run(github_env(tmp_path, values, extra=PUSH), tmp=tmp_path)
    assert result.code == 4, result.text
    assert result.outputs["result"] == "timed-out"
    build_id = result.outputs["build-id"]
    [build] = emulator.builds(PROJECT, "api-slow")
    if abort:
        assert aborts(emulator) == [build_id]
        assert build["status"] == "ABORTED"
        assert result.outputs["status"] == "ABORTED"
    else:
        assert aborts(emulator) == []
        assert build["concluded"] is False
        assert f"Build {build_id} goes on running on Northflank" in result.shown
    assert "::error title=Northflank build timed out::timeout 1s ran out" in result.stdout
    assert f"::group::Build log of {build_id} (last " in result.stdout


# -- signals at scripted moments, in-process ------------------------------------------------------


def in_process(
    tmp_path: Path, emulator: Emulator, moment: Callable[[], bool], **values: str
) -> Result:
    """The program in-process; SIGINT is played the first time `moment()` holds as it sleeps."""

    def sleep(seconds: float) -> None:
        if signals.received is None and moment():
            signals.receive(signal.SIGINT)
        CLOCK.sleep(seconds)

    signals = Signals(sleep)
    env = github_env(tmp_path, inputs(emulator, "api-slow", **values), extra=PUSH)
    return run(env, tmp=tmp_path, signals=signals)


def on_worker_thread() -> bool:
    return threading.current_thread() is not threading.main_thread()


def test_a_signal_during_a_retried_start_is_not_lost(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    emulator.add_faults("POST build", ["429:retry-after=1"])
    result = in_process(tmp_path, emulator, on_worker_thread)
    assert result.code == 130, result.text
    assert "Traceback" not in result.text
    assert sent(emulator, "POST", "/build") == [f"/v1/projects/{PROJECT}/services/api-slow/build"]
    assert emulator.builds(PROJECT, "api-slow") == []
    assert result.outputs["result"] == "cancelled"
    assert "interrupted by SIGINT" in result.stdout


def test_a_signal_during_a_backoff_while_polling_aborts(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    emulator.add_faults("GET build", ["status:503", "status:503"])
    result = in_process(
        tmp_path, emulator, lambda: len(sent(emulator, "GET", "/build/")) == 1, poll_interval="1"
    )
    assert result.code == 130, result.text
    assert aborts(emulator) == [result.outputs["build-id"]]
    assert result.outputs["result"] == "aborted"


def test_a_signal_while_following_the_log_aborts_and_keeps_the_lines_read(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = in_process(
        tmp_path,
        emulator,
        lambda: len(sent(emulator, "GET", "/build-logs")) >= 2,
        poll_interval="1",
        logs="follow",
    )
    assert result.code == 130, result.text
    assert aborts(emulator) == [result.outputs["build-id"]]
    assert "::endgroup::" in result.stdout
