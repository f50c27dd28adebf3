"""reuse: follow a build of the same commit instead of paying for a second one, and never abort
a build this run did not start."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from northflank_build.emulator import Emulator
from northflank_build.signals import Signals
from tests.clock import CLOCK
from tests.conftest import PROJECT, TOKEN, MakeEmulator, api_requests, started_builds
from tests.runner import EVENTS, Result, github_env, run

PUSH = json.loads((EVENTS / "push.json").read_text(encoding="utf-8"))
SHA = PUSH["after"]
BRANCH = PUSH["ref"].removeprefix("refs/heads/")
LIST = f"/v1/projects/{PROJECT}/services/api/build"


def action(
    tmp_path: Path,
    emulator: Emulator,
    reuse: str,
    signals: Signals | None = None,
    inputs: dict[str, str] | None = None,
    **more: str,
) -> Result:
    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api",
        "service-type": "build",
        "api-url": emulator.url,
        "poll-interval": "1",
        "reuse": reuse,
        **{k.replace("_", "-"): v for k, v in {**(inputs or {}), **more}.items()},
    }
    extra = {"GITHUB_SHA": SHA, "GITHUB_REF": PUSH["ref"]}
    return run(github_env(tmp_path, values, extra=extra), tmp=tmp_path, signals=signals)


def lists(emulator: Emulator) -> list[Any]:
    return [r for r in api_requests(emulator) if r.method == "GET" and r.path == LIST]


def test_a_running_build_of_the_commit_is_followed_instead_of_starting_one(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    running = emulator.add_build(PROJECT, "api", sha=SHA, branch=BRANCH, elapsed=0.1)
    result = action(tmp_path, emulator, "running")
    assert result.code == 0, result.text
    assert started_builds(emulator) == []
    assert len(lists(emulator)) == 1
    assert result.outputs["build-id"] == running["id"]
    assert (result.outputs["reused"], result.outputs["result"]) == ("true", "success")
    assert f"Reusing build {running['id']} of api" in result.shown
    assert json.loads(result.outputs["builds"])[0]["reused"] == "true"
    assert "| Reused | yes: not started by this run |" in result.summary


def test_reuse_success_takes_the_newest_successful_build_and_waits_for_nothing(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    emulator.add_build(PROJECT, "api", sha=SHA, branch=BRANCH, elapsed=600, duration=60)
    newest = emulator.add_build(PROJECT, "api", sha=SHA, branch=BRANCH, elapsed=300, duration=60)
    emulator.add_build(PROJECT, "api", sha=SHA, branch=BRANCH, elapsed=0.1)  # still running
    emulator.add_build(PROJECT, "api", sha=SHA, branch=BRANCH, elapsed=100, outcome="failure")
    result = action(tmp_path, emulator, "success")
    assert result.code == 0, result.text
    assert result.outputs["build-id"] == newest["id"]
    assert result.outputs["reused"] == "true"
    # One list before the start, and it also timed the polls: nothing else was needed.
    assert [r.method for r in api_requests(emulator)] == ["GET"]
    assert result.outputs["api-requests"] == "1"


@pytest.mark.parametrize(
    ("reuse", "existing", "why"),
    [
        ("running", {"elapsed": 300, "duration": 60}, "running: a finished build is not reused"),
        ("success", {"elapsed": 300, "outcome": "failure"}, "a failed build is never reused"),
        ("success", {"elapsed": 0.1, "branch": "other"}, "another branch is another target"),
        ("success", {"elapsed": 0.1, "sha": "0" * 39 + "1"}, "another commit"),
        ("never", {"elapsed": 0.1}, "never is the default"),
    ],
    ids=["running-ignores-finished", "failed", "other-branch", "other-commit", "never"],
)
def test_a_build_of_another_target_or_state_is_not_reused(
    tmp_path: Path, make_emulator: MakeEmulator, reuse: str, existing: dict[str, Any], why: str
) -> None:
    emulator = make_emulator()
    emulator.add_build(PROJECT, "api", **{"sha": SHA, "branch": BRANCH, **existing})
    result = action(tmp_path, emulator, reuse)
    assert result.code == 0, result.text
    assert len(started_builds(emulator)) == 1, why
    assert result.outputs["reused"] == "false"


@pytest.mark.parametrize(
    "inputs",
    [{"build_arguments": "A=1"}, {"ci_context": "false", "branch": BRANCH}],
    ids=["overrides", "no-known-commit"],
)
def test_nothing_is_reused_for_a_request_with_overrides_or_without_a_commit(
    tmp_path: Path, make_emulator: MakeEmulator, inputs: dict[str, str]
) -> None:
    emulator = make_emulator()
    emulator.add_build(PROJECT, "api", sha=SHA, branch=BRANCH, elapsed=0.1)
    result = action(tmp_path, emulator, "running", inputs=inputs, poll_interval="10")
    assert result.code == 0, result.text
    assert len(started_builds(emulator)) == 1
    assert lists(emulator) == []  # not even looked for


def test_cancel_never_aborts_a_reused_build(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    emulator.add_build(PROJECT, "api-slow", sha=SHA, branch=BRANCH, elapsed=1)

    def sleep(seconds: float) -> None:
        signals.receive(signal.SIGTERM)
        CLOCK.sleep(seconds)

    signals = Signals(sleep)
    result = action(tmp_path, emulator, "running", signals=signals, service_id="api-slow")
    assert result.code == 143, result.text
    assert not [r for r in api_requests(emulator) if r.method == "DELETE"]
    assert result.outputs["result"] == "cancelled"
    assert "was not started by this run" in result.shown
    [build] = emulator.builds(PROJECT, "api-slow")
    assert build["concluded"] is False


def test_timeout_never_aborts_a_reused_build(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    emulator.add_build(PROJECT, "api-slow", sha=SHA, branch=BRANCH, elapsed=1)
    result = action(
        tmp_path, emulator, "running", service_id="api-slow", timeout="5", abort_on_timeout="true"
    )
    assert result.code == 4, result.text
    assert not [r for r in api_requests(emulator) if r.method == "DELETE"]
    assert result.outputs["result"] == "timed-out"


def test_a_dry_run_says_what_would_be_reused(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    running = emulator.add_build(PROJECT, "api", sha=SHA, branch=BRANCH, elapsed=0.1)
    result = action(tmp_path, emulator, "running", dry_run="true")
    assert result.code == 0, result.text
    assert [r.method for r in api_requests(emulator)] == ["GET"]
    assert f"Dry run: build {running['id']} (" in result.shown
    assert "would be reused" in result.shown
    assert result.outputs["result"] == "dry-run"
