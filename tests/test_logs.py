"""Build logs end to end: the tail of a failed build, the followed log, and log requests that fail.

The emulator serves logs as the API documents them (a line limit per page, startTime inclusive,
many lines sharing one timestamp), so paging is exercised for real.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from northflank_build.emulator import Emulator, ServiceConfig
from northflank_build.model import iso, parse_time
from tests.clock import CLOCK
from tests.conftest import PROJECT, TOKEN, MakeEmulator, api_requests, fast_world
from tests.runner import Result, github_env, run
from tests.scripted import Answer, StartScripted, json_answer

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


# -- fidelity to the API's log ranges: a window, pages, envelopes ------------------------------

# A build of 40 minutes that fails: its last words come 39 minutes after it was created, past the
# 30 minutes that a range given only its startTime covers.
LONG: dict[str, float] = {"PENDING": 30, "CLONING": 90, "BUILDING": 2220, "UPLOADING": 60}


def long_action(tmp_path: Path, emulator: Emulator, service: str, **inputs: str) -> Result:
    """A run whose polls are 30 s apart, so that 40 minutes of virtual time take 80 polls."""
    return action(tmp_path, emulator, service, poll_interval="30", timeout="3600", **inputs)


@pytest.mark.parametrize("logs", ["on-failure", "follow"])
def test_the_log_of_a_forty_minute_build_ends_with_its_failure(
    tmp_path: Path, make_emulator: MakeEmulator, logs: str
) -> None:
    # Three lines a phase: one burst as BUILDING begins, then 37 minutes of silence, then the end.
    slow = ServiceConfig("build", phases=dict(LONG), outcome="failure", log_lines_per_phase=3)
    emulator = make_emulator(projects=fast_world(slow=slow))
    result = long_action(tmp_path, emulator, "slow", logs=logs, service_type="build")
    assert result.code == 1, result.text
    build_id = result.outputs["build-id"]
    whole = texts(emulator, "slow", build_id)
    shown = [line for line in group(result.shown, "Build log of") if not PROGRESS.match(line)]
    assert shown == whole
    assert "%0ABuild failed" in result.stdout
    assert "Build failed" in result.summary.split("<details>")[1]
    # Every range has both ends, so none depends on the API's default window.
    assert all("startTime" in q and "endTime" in q for q in log_requests(emulator))


def test_the_tail_pages_back_when_the_api_caps_a_page(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    chatty = ServiceConfig("build", phases=dict(CHATTY), log_lines_per_phase=60, outcome="failure")
    emulator = make_emulator(projects=fast_world(chatty=chatty), log_page_limit=30)
    result = action(tmp_path, emulator, "chatty", service_type="build")
    assert result.code == 1, result.text
    build_id = result.outputs["build-id"]
    whole = texts(emulator, "chatty", build_id)
    assert group(result.shown, f"Build log of {build_id} (last 100 lines)") == whole[-100:]
    queries = log_requests(emulator)
    assert len(queries) == 4  # 30 + 30 + 30 + 10 lines, newest first
    assert "cursor" not in queries[0]
    assert all(q["cursor"] and q["direction"] == "backward" for q in queries[1:])
    assert [q["lineLimit"] for q in queries] == ["100", "70", "40", "10"]


def test_follow_pages_by_cursor_through_bursts_larger_than_a_page(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    """Up to 10 lines share a timestamp; paging by timestamp alone cannot get past 4 of them."""
    chatty = ServiceConfig("build", phases=dict(CHATTY), log_lines_per_phase=30)
    emulator = make_emulator(projects=fast_world(chatty=chatty), log_page_limit=4)
    result = action(tmp_path, emulator, "chatty", logs="follow", service_type="build")
    assert result.code == 0, result.text
    build_id = result.outputs["build-id"]
    whole = emulator.log_lines(PROJECT, "chatty", build_id)
    assert max(Counter(line["ts"] for line in whole).values()) > 4
    followed = group(result.shown, f"Build log of {build_id}")
    printed = [line for line in followed if not PROGRESS.match(line)]
    assert printed == [line["log"] for line in whole]
    assert "::warning" not in result.stdout
    queries = log_requests(emulator)
    assert any("cursor" in q for q in queries)
    assert len(queries) <= len(whole) // 4 + 40  # pages of 4, and at most one empty one a poll


@pytest.mark.parametrize("envelope", ["logs", "data"])
@pytest.mark.parametrize("logs", ["on-failure", "follow"])
def test_log_answers_in_the_envelopes_seen_in_the_wild_are_read(
    tmp_path: Path, make_emulator: MakeEmulator, envelope: str, logs: str
) -> None:
    emulator = make_emulator(log_envelope=envelope)
    result = action(tmp_path, emulator, "api-fails", logs=logs)
    assert result.code == 1, result.text
    build_id = result.outputs["build-id"]
    shown = [line for line in group(result.shown, "Build log of") if not PROGRESS.match(line)]
    assert shown == texts(emulator, "api-fails", build_id)
    assert "::warning" not in result.stdout
    assert "%0ABuild failed" in result.stdout


@pytest.mark.parametrize("logs", ["on-failure", "follow"])
def test_a_log_answer_in_an_unknown_envelope_is_one_warning_not_silence(
    tmp_path: Path, make_emulator: MakeEmulator, logs: str
) -> None:
    emulator = make_emulator(log_envelope="unknown")
    result = action(tmp_path, emulator, "api-fails", logs=logs)
    assert result.code == 1, result.text
    build_id = result.outputs["build-id"]
    [warning] = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert f"the log of build {build_id} came in a form this program does not know" in warning
    assert "entries" in warning  # what it did find
    assert "see it on Northflank" in warning
    assert len(log_requests(emulator)) == 1  # following stops: the next answers would be alike
    assert result.outputs["result"] == "failure"


def test_a_refused_log_cursor_turns_following_to_paging_by_time(
    tmp_path: Path, scripted: StartScripted
) -> None:
    """The API's cursors are undocumented: one it refuses must not stop or thin the log."""
    created = CLOCK.time()
    lines = [{"ts": iso(created + n), "log": f"line {n}"} for n in range(10)]
    build = {
        "id": "calm-river-1",
        "status": "BUILDING",
        "concluded": False,
        "createdAt": iso(created),
    }
    reads = []

    def answer(method: str, path: str, body: bytes) -> Answer:
        query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        if method == "POST":
            return json_answer(200, {"data": build})
        if "/build-logs" in path:
            if "cursor" in query:
                return json_answer(400, {"error": {"status": 400, "message": "Invalid cursor"}})
            since = parse_time(query["startTime"]) or 0.0
            later = [line for line in lines if (parse_time(line["ts"]) or 0.0) >= since]
            more = {"hasNextPage": len(later) > 3, "cursor": "c" * 24}
            return json_answer(200, {"data": later[:3], "pagination": more})
        reads.append(path)
        done = len(reads) > 6
        return json_answer(200, {"data": {**build, "concluded": done, "success": done}})

    server = scripted(answer)
    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api",
        "service-type": "build",
        "api-url": server.url,
        "poll-interval": "1",
        "logs": "follow",
    }
    result = run(github_env(tmp_path, values, extra=PUSH), tmp=tmp_path)
    assert result.code == 0, result.text
    followed = group(result.shown, "Build log of calm-river-1")
    assert [line for line in followed if not PROGRESS.match(line)] == [
        line["log"] for line in lines
    ]
    assert "::warning" not in result.stdout
    assert sum("cursor=" in path for _, path, _ in server.requests) == 1
