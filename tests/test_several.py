"""Several services in one step: one target, every service checked before the first start, one
start each, one schedule, the worst result, one summary."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from northflank_build.emulator import Emulator, ServiceConfig
from northflank_build.signals import Signals
from tests.clock import CLOCK
from tests.conftest import FAST, PROJECT, TOKEN, MakeEmulator, api_requests, fast_world
from tests.runner import EVENTS, Result, github_env, run

PUSH = json.loads((EVENTS / "push.json").read_text(encoding="utf-8"))
GITHUB = {"GITHUB_SHA": PUSH["after"], "GITHUB_REF": PUSH["ref"]}
BODY = {"sha": PUSH["after"], "branch": PUSH["ref"].removeprefix("refs/heads/")}
# A combined service of the CI's own repository.
COMBINED = ServiceConfig("combined", "https://github.com/acme/api", "main", phases=dict(FAST))


def action(
    tmp_path: Path,
    emulator: Emulator,
    services: str,
    *,
    event: str = "push",
    signals: Signals | None = None,
    **inputs: str,
) -> Result:
    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": services,
        "api-url": emulator.url,
        "poll-interval": "1",
        **{k.replace("_", "-"): v for k, v in inputs.items()},
    }
    env = github_env(tmp_path, values, event_name=event, event=f"{event}.json", extra=GITHUB)
    return run(env, tmp=tmp_path, signals=signals)


def starts(emulator: Emulator) -> dict[str, Any]:
    """The body of each start request, by service."""
    return {
        r.path.split("/")[-2]: r.body
        for r in api_requests(emulator)
        if r.method == "POST" and r.path.endswith("/build")
    }


def builds_output(result: Result) -> dict[str, dict[str, str]]:
    return {entry["service-id"]: entry for entry in json.loads(result.outputs["builds"])}


def test_each_service_builds_the_same_commit_once_and_the_worst_result_decides(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(tmp_path, emulator, "api\napi-fails, api-crashes")
    assert result.code == 1, result.text
    assert starts(emulator) == {"api": BODY, "api-fails": BODY, "api-crashes": BODY}
    for service in ("api", "api-fails", "api-crashes"):
        assert len(emulator.builds(PROJECT, service)) == 1
    each = builds_output(result)
    assert {s: e["result"] for s, e in each.items()} == {
        "api": "success",
        "api-fails": "failure",
        "api-crashes": "failure",
    }
    assert {e["build-id"] for e in each.values()} == {
        emulator.builds(PROJECT, s)[0]["id"] for s in each
    }
    assert result.outputs["result"] == "failure"
    assert (result.outputs["success"], result.outputs["concluded"]) == ("false", "true")
    assert result.outputs["build-id"] == ""
    assert result.outputs["status"] == ""
    # A log tail, and an error naming its build, for each failure.
    assert result.stdout.count("::group::Build log of") == 2
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 2
    assert "api-fails: build log" in result.summary
    rows = re.findall(r"^\| `(api[-a-z]*)` \|", result.summary, flags=re.MULTILINE)
    assert rows == ["api", "api-fails", "api-crashes"]


def test_several_successful_builds_succeed_together(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator(projects=fast_world(combined=COMBINED))
    result = action(tmp_path, emulator, "api,combined", outputs_file="outputs.env")
    assert result.code == 0, result.text
    assert starts(emulator) == {"api": BODY, "combined": {"sha": BODY["sha"]}}
    assert result.outputs["result"] == "success"
    assert result.outputs["success"] == "true"
    dotenv = (tmp_path / "outputs.env").read_text(encoding="utf-8")
    assert "NORTHFLANK_BUILDS=[{" in dotenv


@pytest.mark.parametrize(
    ("services", "event", "says"),
    [
        ("api\napi", "push", "service-id: names api more than once"),
        ("api,combined", "pull_request", "for service combined: combined is a combined service"),
        (",".join(f"s{n}" for n in range(21)), "push", "give at most 20"),
    ],
    ids=["repeated", "combined-on-a-pull-request", "too-many"],
)
def test_a_mix_the_rules_refuse_starts_nothing(
    tmp_path: Path, make_emulator: MakeEmulator, services: str, event: str, says: str
) -> None:
    emulator = make_emulator(projects=fast_world(combined=COMBINED))
    result = action(tmp_path, emulator, services, event=event)
    assert result.code == 2, result.text
    assert says in result.stdout
    assert starts(emulator) == {}


def test_a_service_the_api_does_not_know_is_found_before_anything_starts(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(tmp_path, emulator, "api,missing,web", service_type="build")
    assert result.code == 3, result.text
    assert starts(emulator) == {}
    assert [r.method for r in api_requests(emulator)] == ["GET", "GET"]


def test_a_start_that_fails_leaves_the_others_running_and_reported(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    emulator.add_faults("POST build", ["ok", "status:400"])
    result = action(tmp_path, emulator, "api,api-slow,web", timeout="600")
    assert result.code == 3, result.text
    each = builds_output(result)
    assert [each[s]["result"] for s in ("api", "api-slow", "web")] == [
        "success",
        "error",
        "success",
    ]
    assert each["api-slow"]["build-id"] == ""
    assert result.outputs["result"] == "error"
    assert not [r for r in api_requests(emulator) if r.method == "DELETE"]


def test_a_signal_aborts_every_build_this_run_started(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator(
        projects=fast_world(slow2=ServiceConfig("build", phases={"BUILDING": 120.0}))
    )

    def sleep(seconds: float) -> None:
        signals.receive(signal.SIGINT)
        CLOCK.sleep(seconds)

    signals = Signals(sleep)
    result = action(tmp_path, emulator, "api-slow,slow2", signals=signals)
    assert result.code == 130, result.text
    aborted = {r.path.split("/")[-3] for r in api_requests(emulator) if r.method == "DELETE"}
    assert aborted == {"api-slow", "slow2"}
    assert {e["result"] for e in builds_output(result).values()} == {"aborted"}
    assert result.outputs["result"] == "aborted"


def test_timeout_aborts_every_build_still_going_when_asked(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(tmp_path, emulator, "api,api-slow", timeout="60", abort_on_timeout="true")
    assert result.code == 4, result.text
    each = builds_output(result)
    assert (each["api"]["result"], each["api-slow"]["result"]) == ("success", "timed-out")
    aborted = [r.path.split("/")[-3] for r in api_requests(emulator) if r.method == "DELETE"]
    assert aborted == ["api-slow"]
    assert result.outputs["result"] == "timed-out"


def test_one_schedule_reads_each_build_still_going_and_no_more(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    # Builds of 1.6, 3.6 and 5.6 s.
    services = {
        f"s{n}": ServiceConfig("build", phases=dict.fromkeys(FAST, 0.4 + n / 2)) for n in range(3)
    }
    emulator = make_emulator(projects=fast_world(**services))
    result = action(
        tmp_path, emulator, "s0,s1,s2", service_type="build", poll_interval="1", timeout="60"
    )
    assert result.code == 0, result.text
    reads = [r.path.split("/")[-3] for r in api_requests(emulator) if "/build/" in r.path]
    # Read every second, each until it has concluded, and never again.
    assert {s: reads.count(s) for s in ("s0", "s1", "s2")} == {"s0": 2, "s1": 4, "s2": 6}


def test_the_dotenv_report_of_twenty_services_fits_gitlab(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    names = [f"{n:02d}-" + "x" * 97 for n in range(20)]
    emulator = make_emulator(
        projects=fast_world(**{name: ServiceConfig("build", phases=dict(FAST)) for name in names})
    )
    result = action(
        tmp_path, emulator, ",".join(names), service_type="build", outputs_file="report.env"
    )
    assert result.code == 0, result.text
    text = (tmp_path / "report.env").read_bytes()
    assert len(text) <= 5 * 1024
    assert len(text.splitlines()) <= 20  # GitLab's variable limit on its smallest plans
    builds = json.loads(
        next(
            line for line in text.decode().splitlines() if line.startswith("NORTHFLANK_BUILDS=")
        ).partition("=")[2]
    )
    assert {b["service-id"] for b in builds} == set(names)
    assert "to keep the dotenv report within 5120 bytes" in result.shown


def test_the_summary_names_the_one_commit_once_and_marks_a_reused_build(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    running = emulator.add_build(PROJECT, "api", elapsed=0.1, **BODY)
    result = action(tmp_path, emulator, "api,api-fails", reuse="running")
    assert starts(emulator) == {"api-fails": BODY}
    assert builds_output(result)["api"]["reused"] == "true"
    assert re.search(rf"^\| `api` \| `{running['id']}` \(reused\) \|", result.summary, re.M)
    assert re.search(r"^\| `api-fails` \| `[\w-]+` \|", result.summary, re.M)
    table = [line for line in result.summary.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| Service | Build | Result |")
    assert not any(BODY["sha"][:7] in row for row in table)
    assert f"- Commit [`{BODY['sha'][:7]}`]" in result.summary
    assert f"- Branch `{BODY['branch']}`" in result.summary
