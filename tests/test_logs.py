"""Build logs end to end: the tail of a failed build, the followed log, and log requests that fail.

The emulator serves logs as the API documents them (a line limit per page, startTime inclusive,
many lines sharing one timestamp), so paging is exercised for real.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from northflank_build.emulator import Emulator, ServiceConfig
from tests.conftest import PROJECT, TOKEN, MakeEmulator, api_requests, fast_world
from tests.runner import Result, github_env, run

PUSH = {"GITHUB_SHA": "a1" * 20, "GITHUB_REF": "refs/heads/main"}
# Progress lines, and debug lines (shown only when the run is debugged), are not the log's.
PROGRESS = re.compile(r"^(\[\s*\w+\] |::debug::)")


def action(tmp_path: Path, emulator: Emulator, service: str, **inputs: str) -> Result:
    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": service,
        "api-url": emulator.url,
        "poll-interval": "0.1",
        "timeout": "60",
        **{k.replace("_", "-"): v for k, v in inputs.items()},
    }
    return run(github_env(tmp_path, values, extra=PUSH), tmp=tmp_path)


def log_requests(emulator: Emulator) -> list[dict[str, str]]:
    return [r.query for r in api_requests(emulator) if r.path.endswith("/build-logs")]


def group(shown: str, title_start: str) -> list[str]:
    """The lines of the one ::group:: whose title starts with title_start."""
    lines = shown.splitlines()
    [start] = [i for i, line in enumerate(lines) if line.startswith(f"::group::{title_start}")]
    end = lines.index("::endgroup::", start)
    return lines[start + 1 : end]


def texts(emulator: Emulator, service: str, build_id: str) -> list[str]:
    return [line["log"] for line in emulator.log_lines(PROJECT, service, build_id)]


def test_a_failed_build_shows_its_log_tail_and_annotates_the_failing_lines(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(tmp_path, emulator, "api-fails")
    assert result.code == 1, result.text
    build_id = result.outputs["build-id"]
    whole = texts(emulator, "api-fails", build_id)
    assert group(result.shown, f"Build log of {build_id}") == whole[-100:]
    [query] = log_requests(emulator)
    assert query["direction"] == "backward"
    assert query["buildId"] == build_id
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    title, message = error.removeprefix("::error title=").split("::", 1)
    assert title == f"Northflank build {build_id} failed"
    annotated = message.split("%0A")
    assert annotated[0].startswith(f"Build {build_id} concluded without success: FAILURE")
    assert annotated[1:] == [
        "#10 4.211 npm ERR! Test failed.  See above for more details.",
        '#10 ERROR: process "/bin/sh -c npm test" did not complete successfully: exit code: 1',
        "error: npm ERR! Test failed",
        'process "/bin/sh -c npm test" did not complete successfully: exit code: 1',
        "Build failed",
    ]
    assert "Build failed" in result.summary.split("<details>")[1]


def test_a_successful_build_reads_no_log(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    result = action(tmp_path, emulator, "api")
    assert result.code == 0, result.text
    assert log_requests(emulator) == []
    assert "::group::" not in result.stdout


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(["status:500"] * 20, id="server-errors-after-retries"),
        pytest.param(["status:403"], id="no-permission-to-read-logs"),
    ],
)
def test_a_log_request_that_fails_is_a_warning_and_the_build_decides(
    tmp_path: Path, make_emulator: MakeEmulator, faults: list[str]
) -> None:
    emulator = make_emulator()
    emulator.add_faults("GET logs", faults)
    result = action(tmp_path, emulator, "api-fails")
    assert result.code == 1, result.text
    assert result.outputs["result"] == "failure"
    assert result.outputs["status"] == "FAILURE"
    [warning] = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert f"could not read the log of build {result.outputs['build-id']}" in warning
    assert f"HTTP {faults[0].split(':')[1]}" in warning
    assert "::error title=Northflank build" in result.stdout
    assert "<details>" not in result.summary
    assert log_requests(emulator)


def test_logs_off_reads_no_log_even_for_a_failure(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(tmp_path, emulator, "api-fails", logs="off")
    assert result.code == 1, result.text
    assert log_requests(emulator) == []


CHATTY = {"QUEUED": 0.3, "CLONING": 0.3, "BUILDING": 1.0, "UPLOADING": 0.3}


@pytest.mark.parametrize(("service", "code"), [("chatty", 0), ("chatty-fails", 1)])
def test_follow_prints_every_line_once_and_in_order(
    tmp_path: Path, make_emulator: MakeEmulator, service: str, code: int
) -> None:
    world = fast_world(
        chatty=ServiceConfig("build", phases=dict(CHATTY), log_lines_per_phase=60),
        **{
            "chatty-fails": ServiceConfig(
                "build", phases=dict(CHATTY), log_lines_per_phase=60, outcome="failure"
            )
        },
    )
    emulator = make_emulator(projects=world, log_page_limit=25)
    result = action(tmp_path, emulator, service, logs="follow", service_type="build")
    assert result.code == code, result.text
    build_id = result.outputs["build-id"]
    whole = emulator.log_lines(PROJECT, service, build_id)
    # The log spans many pages and many of its lines share a timestamp with others.
    assert len(whole) > 4 * 25
    assert sum(n for n in Counter(line["ts"] for line in whole).values() if n > 1) > len(whole) / 2
    followed = group(result.shown, f"Build log of {build_id}")
    printed = [line for line in followed if not PROGRESS.match(line)]
    assert printed == [line["log"] for line in whole]
    assert any(PROGRESS.match(line) for line in followed)
    queries = log_requests(emulator)
    assert len(queries) >= len(whole) / 25
    assert all(q["direction"] == "forward" and "startTime" in q for q in queries)
    if code:
        assert "Build failed" in result.summary.split("<details>")[1]
        assert "%0ABuild failed" in result.stdout


def test_follow_goes_on_when_the_log_cannot_be_read(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    emulator.add_faults("GET logs", ["status:403"])
    result = action(tmp_path, emulator, "api", logs="follow")
    assert result.code == 0, result.text
    assert result.outputs["result"] == "success"
    assert "::warning title=Northflank build log::could not read the log" in result.stdout
    assert "stopped following it" in result.stdout
    assert len(log_requests(emulator)) == 1


def test_secrets_in_the_build_log_are_hidden_everywhere(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    secret = "release-s3cr3t-9f8e7d"
    # The emulator's log names the branch it checks out; that branch is also a secret file here.
    result = action(
        tmp_path, emulator, "api-fails", branch=secret, build_files=f"/app/note.txt: {secret}"
    )
    assert result.code == 1, result.text
    whole = texts(emulator, "api-fails", result.outputs["build-id"])
    assert any(secret in line for line in whole)
    tail = group(result.shown, "Build log of")
    assert any("(***)" in line for line in tail)
    for text in (result.shown, result.summary, result.outputs_text):
        assert secret not in text


def test_a_failing_log_endpoint_gets_a_few_tries_not_a_reads_full_budget(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    """Logs never decide the result, so they must not hold a failed build's report back."""
    emulator = make_emulator()
    emulator.add_faults("GET logs", ["status:500"] * 20)
    result = action(tmp_path, emulator, "api-fails")
    assert result.code == 1, result.text
    assert len(log_requests(emulator)) == 3
