"""The fault matrix: the program as a subprocess against the emulator playing a fault plan.

Every scenario asserts the exit code, the outputs, the requests the emulator received, and that
exactly one build exists afterwards: a start is never doubled, whatever the network does. The
program runs in-process on the tests' clock, so every backoff and Retry-After is skipped at once;
slow answers and read timeouts take real time.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from northflank_build.emulator import Emulator, PastBuild, ServiceConfig
from northflank_build.emulator.api import match_route
from northflank_build.model import parse_time
from tests.clock import CLOCK
from tests.conftest import FAST, PROJECT, TOKEN, MakeEmulator, api_requests, fast_world
from tests.runner import EVENTS, Result, github_env, run

PUSH = json.loads((EVENTS / "push.json").read_text(encoding="utf-8"))
SHA = PUSH["after"]
BRANCH = PUSH["ref"].removeprefix("refs/heads/")
QUICK_READS = {"NORTHFLANK_READ_TIMEOUT": "5"}
SHORT_READS = {"NORTHFLANK_READ_TIMEOUT": "0.5"}

ADOPTED = "instead of starting another"
STARTED_AGAIN = "No build of this request was found: sending the start request again"
NEVER_SENT = "It never reached Northflank"


@dataclass(frozen=True)
class Scenario:
    """Faults to play, and what must happen: requests before polling, exit code, result."""

    name: str
    faults: dict[str, list[str]]
    before_polls: list[str]
    code: int = 0
    result: str = "success"
    says: str = ""
    inputs: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    # The API finishes a request while the program waits: the program must sleep in real time.
    real_sleep: bool = False


POST, LIST, READ, SERVICE = "POST build", "GET builds", "GET build", "GET service"

SCENARIOS = [
    # Starting: only a start that provably never arrived is repeated blindly.
    Scenario("reset before the start was accepted", {POST: ["reset-before"]},
             [POST, LIST, POST], says=STARTED_AGAIN),
    Scenario("reset after the start was accepted", {POST: ["reset-after"]},
             [POST, LIST], says=ADOPTED),
    Scenario("read timeout on a start whose build was created", {POST: ["delay:3:apply-first"]},
             [POST, LIST], says=ADOPTED, env=SHORT_READS),
    Scenario("read timeout on a start the API created late", {POST: ["delay:0.7"]},
             [POST, LIST], says=ADOPTED, env=SHORT_READS, real_sleep=True),
    Scenario("502 on start, nothing created", {POST: ["status:502"]},
             [POST, LIST, POST], says=STARTED_AGAIN),
    Scenario("502 on start after the build was created", {POST: ["status:502:apply"]},
             [POST, LIST], says=ADOPTED),
    Scenario("503 on start, nothing created", {POST: ["status:503"]},
             [POST, LIST, POST], says=STARTED_AGAIN),
    Scenario("504 on start after the build was created", {POST: ["status:504:apply"]},
             [POST, LIST], says=ADOPTED),
    Scenario("503 three times on start, then accepted",
             {POST: ["status:503", "status:503", "status:503"]},
             [POST, LIST, POST, LIST, POST, LIST, POST], says=STARTED_AGAIN),
    Scenario("a proxy's HTML 502 page on start", {POST: ["html:502"]},
             [POST, LIST, POST], says=STARTED_AGAIN),
    Scenario("a truncated JSON answer to the start", {POST: ["truncated"]},
             [POST, LIST], says=ADOPTED),
    Scenario("429 with Retry-After on start", {POST: ["429:retry-after=1"]},
             [POST, POST], says="Northflank refused it for now"),
    Scenario("reset after the start, without waiting", {POST: ["reset-after"]},
             [POST, LIST], result="started", says=ADOPTED, inputs={"wait": "false"}),
    Scenario("reset after the start of a build that fails", {POST: ["reset-after"]},
             [POST, LIST], code=1, result="failure", says=ADOPTED,
             inputs={"service-id": "api-fails"}),
    Scenario("reset after a start that names no commit", {POST: ["reset-after"]},
             [POST, LIST], says="the request named no commit",
             inputs={"service-id": "web", "service-type": "combined", "ci-context": "false"}),
    # Reading: retried with backoff, honouring Retry-After and the rate-limit reset.
    Scenario("faults on reading the service", {SERVICE: ["status:503", "reset-before"]},
             [SERVICE, SERVICE, SERVICE, POST], inputs={"service-type": "auto"}),
    Scenario("a burst of 500s while polling", {READ: ["status:500"] * 4}, [POST]),
    Scenario("503 x3, 429 with Retry-After 1, then ok while polling",
             {READ: ["status:503"] * 3 + ["429:retry-after=1"]}, [POST]),
    Scenario("429 without Retry-After while polling: the rate-limit reset is honoured",
             {READ: ["429"]}, [POST], config={"rate_window": 1.0}),
    Scenario("dropped connections while polling", {READ: ["reset-before", "reset-after"]},
             [POST]),
    Scenario("slow answers while polling", {READ: ["delay:2", "delay:2", "delay:0.2"]}, [POST],
             env=SHORT_READS),
    Scenario("a proxy's HTML error pages while polling", {READ: ["html:502", "html:504"]},
             [POST]),
    Scenario("truncated JSON while polling", {READ: ["truncated", "truncated"]}, [POST]),
    # Giving up: bounded, with the outputs written and the build left as it is.
    Scenario("429 while polling whose limit resets after the timeout", {READ: ["429"]}, [POST],
             code=3, result="error", says="rate limit"),
    Scenario("the API fails for longer than the retries last", {READ: ["status:503"] * 40},
             [POST], code=3, result="error", says="HTTP 503"),
]  # fmt: skip


def quick_world() -> dict[str, dict[str, ServiceConfig]]:
    """fast_world, with builds of a fifth of a second, so that the matrix runs quickly."""
    quick = dict.fromkeys(FAST, 0.05)
    return fast_world(
        api=ServiceConfig("build", "https://github.com/acme/api", phases=quick),
        web=ServiceConfig(
            "combined", "https://github.com/acme/web", "main", phases=quick,
            history=[PastBuild("success", duration=40, age=7200, branch="main")],
        ),
    )  # fmt: skip


def run_action(
    tmp_path: Path,
    url: str,
    inputs: dict[str, str],
    env: dict[str, str] | None = None,
    *,
    real_sleep: bool = False,
) -> Result:
    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api",
        "service-type": "build",
        "api-url": url,
        "poll-interval": "0.1",
        "timeout": "60",
        "logs": "off",
        **inputs,
    }
    extra = {"GITHUB_SHA": SHA, "GITHUB_REF": PUSH["ref"], **QUICK_READS, **(env or {})}
    sleep = time.sleep if real_sleep else None
    return run(github_env(tmp_path, values, extra=extra), tmp=tmp_path, sleep=sleep)


def endpoints(emulator: Emulator) -> list[str]:
    """The endpoint of every /v1 request the emulator received, in order."""
    names = []
    for request in api_requests(emulator):
        route = match_route(request.method, request.path)
        names.append(route.endpoint if route else f"{request.method} {request.path}")
    return names


def new_builds(emulator: Emulator, service: str) -> list[dict[str, Any]]:
    """The builds started through the API: fast_world's history builds are hours old."""
    recent = CLOCK.time() - 600
    builds = emulator.builds(PROJECT, service)
    return [b for b in builds if (parse_time(b["createdAt"]) or 0) > recent]


def pending_faults(emulator: Emulator) -> dict[str, list[str]]:
    """The faults not yet played, from the emulator's control route."""
    answer = requests.get(f"{emulator.url}/_emulator/faults", timeout=5)
    faults: dict[str, list[str]] = answer.json()["faults"]
    return faults


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_fault_scenario(tmp_path: Path, make_emulator: MakeEmulator, scenario: Scenario) -> None:
    emulator = make_emulator(**{"projects": quick_world(), **scenario.config})
    for endpoint, faults in scenario.faults.items():
        emulator.add_faults(endpoint, faults)
    service = scenario.inputs.get("service-id", "api")
    result = run_action(
        tmp_path, emulator.url, scenario.inputs, scenario.env, real_sleep=scenario.real_sleep
    )

    assert result.code == scenario.code, result.text
    assert "Traceback" not in result.text
    [build] = new_builds(emulator, service)
    outputs = result.outputs
    assert outputs["build-id"] == build["id"], result.text
    assert outputs["result"] == scenario.result
    assert int(outputs["api-requests"]) == len(api_requests(emulator))
    if scenario.result in ("success", "failure"):
        assert outputs["status"] == build["status"]
        assert build["status"] == ("SUCCESS" if scenario.result == "success" else "FAILURE")
        assert outputs["concluded"] == "true"
    if scenario.says:
        assert scenario.says in result.shown, result.text

    seen = endpoints(emulator)
    head = scenario.before_polls
    assert seen[: len(head)] == head, seen
    polls = seen[len(head) :]
    assert set(polls) <= {READ}, seen
    left = {k: len(v) for k, v in pending_faults(emulator).items()}
    if scenario.code == 0:
        assert left == {}, f"every fault is played: {left} left"
    played_reads = len(scenario.faults.get(READ, [])) - left.get(READ, 0)
    assert len(polls) >= played_reads, seen


def test_a_build_from_before_the_attempt_is_never_adopted(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    # The same commit and branch, built a minute before: not this request's build.
    earlier = PastBuild("success", duration=30, age=60, sha=SHA, branch=BRANCH)
    api = ServiceConfig(
        "build", "https://github.com/acme/api", phases=dict(FAST), history=[earlier]
    )
    emulator = make_emulator(projects=fast_world(api=api))
    emulator.add_faults(POST, ["reset-before"])
    result = run_action(tmp_path, emulator.url, {})
    assert result.code == 0, result.text
    assert endpoints(emulator)[:3] == [POST, LIST, POST]
    builds = emulator.builds(PROJECT, "api")
    assert len(builds) == 2
    assert result.outputs["build-id"] == builds[0]["id"] != builds[1]["id"]
    assert STARTED_AGAIN in result.shown


def test_a_start_that_keeps_failing_gives_up_without_a_build(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    emulator.add_faults(POST, ["status:503"] * 40)
    result = run_action(tmp_path, emulator.url, {})
    assert result.code == 3, result.text
    assert emulator.builds(PROJECT, "api") == []
    seen = endpoints(emulator)
    # As many attempts as the retry policy's 10 attempts and 120 s allow, each looked for.
    assert 2 <= len(seen) // 2 <= 10
    assert seen == [POST, LIST] * (len(seen) // 2), seen
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert "no build of this request appeared" in error
    assert "Check the service's builds on Northflank" in error
    assert result.outputs["result"] == "error"
    assert result.outputs["build-id"] == ""


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_refusals_of_the_start_are_never_retried(
    tmp_path: Path, make_emulator: MakeEmulator, status: int
) -> None:
    emulator = make_emulator()
    emulator.add_faults(POST, [f"status:{status}"])
    result = run_action(tmp_path, emulator.url, {})
    assert result.code == 3, result.text
    assert endpoints(emulator) == [POST]
    assert emulator.builds(PROJECT, "api") == []
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert f"HTTP {status}" in error


def test_a_refusal_while_polling_is_not_retried(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    emulator.add_faults(READ, ["status:404"])
    result = run_action(tmp_path, emulator.url, {})
    assert result.code == 3, result.text
    assert endpoints(emulator) == [POST, READ]
    assert result.outputs["build-id"] == emulator.builds(PROJECT, "api")[0]["id"]


def test_a_refused_connection_before_any_answer_is_a_wrong_api_url(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    began = CLOCK.monotonic()
    result = run_action(tmp_path, f"http://127.0.0.1:{port}", {})
    assert result.code == 3, result.text
    attempts = int(result.outputs["api-requests"])
    # Nothing has ever answered there: a few quick attempts, not the 10 and 2 minutes a read of
    # an API that answered before gets.
    assert 2 <= attempts <= 3
    assert CLOCK.monotonic() - began < 10
    assert result.shown.count(NEVER_SENT) == attempts - 1
    assert "looking for its build" not in result.shown
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert "the connection was refused" in error
    assert f"Check api-url (http://127.0.0.1:{port}): nothing answers" in error


def test_a_nearly_spent_rate_limit_stretches_polling_and_the_run_concludes(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    limit = 13
    phases = {"QUEUED": 0.5, "CLONING": 0.5, "BUILDING": 1.0, "UPLOADING": 0.5}
    api = ServiceConfig("build", "https://github.com/acme/api", phases=phases)
    emulator = make_emulator(projects=fast_world(api=api), rate_limit=limit, rate_window=6.0)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(2):  # another job spent some of the budget already
        requests.get(
            f"{emulator.url}/v1/projects/{PROJECT}/services/api", headers=headers, timeout=5
        )
    result = run_action(tmp_path, emulator.url, {"poll-interval": "0.2"})
    assert result.code == 0, result.text
    assert result.outputs["result"] == "success"
    assert result.outputs["status"] == "SUCCESS"
    assert result.shown.count("API requests are left until the rate limit resets") == 1
    # Polling every 0.2 s would have needed 13 reads after the start: more than were left.
    assert len(api_requests(emulator)) <= limit
    assert int(result.outputs["api-requests"]) == len(api_requests(emulator)) - 2
    assert f"| API requests | {result.outputs['api-requests']} |" in result.summary
