"""The API's answers as typed values: parsed once, one rule each, and a clear error (exit 3, no
traceback) for an answer that does not parse."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from northflank_build.model import (
    Build,
    LogLine,
    LogPage,
    Malformed,
    Pages,
    Service,
    parse_builds,
    parse_time,
)
from tests.conftest import PROJECT, TOKEN
from tests.runner import Result, github_env, run
from tests.scripted import Answer, StartScripted, json_answer

SHA = "8f2c4e6a0b1d3c5e7f9a2b4c6d8e0f1a3b5c7d9e"
CREATED = "2030-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2030-01-01T00:00:00.500Z", 1893456000.5),
        ("2030-01-01T01:00:00+01:00", 1893456000.0),
        ("2030-01-01T00:00:00", 1893456000.0),  # no offset: UTC, as the API writes
        (1893456000, 1893456000.0),
        (1893456000500, 1893456000.5),
        (None, None),
        ("", None),
    ],
)
def test_times_are_read_in_every_form_the_api_may_use(value: object, seconds: float | None) -> None:
    assert parse_time(value) == seconds


@pytest.mark.parametrize(
    "value",
    ["yesterday", True, 1e20, math.nan, math.inf, "0001-01-01T00:00:00Z", 12, [], {"t": 1}],
)
def test_what_cannot_be_a_time_is_malformed(value: object) -> None:
    with pytest.raises(Malformed):
        parse_time(value)


def build(**fields: Any) -> dict[str, Any]:
    return {"id": "b-1", "status": "SUCCESS", "concluded": True, "createdAt": CREATED, **fields}


@pytest.mark.parametrize(
    ("fields", "succeeded"),
    [
        ({"success": True}, True),
        ({"success": False}, False),
        ({}, True),  # concluded without success: the status decides
        ({"status": "FAILURE"}, False),
        ({"status": "SUCCESS", "success": False}, False),  # success decides when given
        ({"status": "FAILURE", "success": True}, True),
        ({"concluded": False, "success": True}, False),  # not concluded: not (yet) a success
    ],
)
def test_one_outcome_rule(fields: dict[str, Any], succeeded: bool) -> None:
    parsed = Build.parse(build(**fields))
    assert parsed.succeeded is succeeded
    assert parsed.outcome == ("success" if succeeded else "failure")


@pytest.mark.parametrize(
    ("answer", "names"),
    [
        ({"status": "QUEUED"}, "id"),
        ({"id": 7}, "id"),
        ({"id": ""}, "id"),
        (build(concluded="false"), "concluded"),
        (build(success="true"), "success"),
        (build(createdAt=1e20), "createdAt"),
        (build(createdAt="0001-01-01T00:00:00Z"), "createdAt"),
        (build(status=["SUCCESS"]), "status"),
        (build(registry="uri"), "registry"),
        (build(pullRequestId="seven"), "pullRequestId"),
        ("a build", "not an object"),
    ],
)
def test_an_answer_that_is_not_a_build_is_malformed_and_says_why(answer: Any, names: str) -> None:
    with pytest.raises(Malformed, match=names):
        Build.parse(answer)


def test_a_list_keeps_the_builds_that_parse() -> None:
    items = [build(id="a"), {"status": "x"}, "junk", build(id="b", createdAt="never")]
    assert [b.id for b in parse_builds(items)] == ["a"]
    assert parse_builds({"builds": 1}) == []


def test_a_service_with_vcs_data_of_the_wrong_shape_is_malformed() -> None:
    with pytest.raises(Malformed, match="vcsData"):
        Service.parse({"serviceType": "build", "vcsData": "github.com/acme/api"})
    assert Service.parse({"serviceType": "build"}).repository == ""


def test_the_build_of_a_request_is_matched_by_sha_in_any_case_and_branch_exactly() -> None:
    found = Build.parse(build(sha=SHA.upper(), branch="main", pullRequestId=7))
    assert found.made_for({"sha": SHA, "branch": "main"})
    assert not found.made_for({"sha": SHA, "branch": "Main"})
    assert found.made_for({"pullRequestId": 7})
    assert not found.made_for({"pullRequestId": 8})
    assert found.made_for({})


def test_aborting_changes_the_build_and_its_description_alike() -> None:
    aborted = Build.parse(build(status="BUILDING", concluded=False)).aborted()
    assert (aborted.status, aborted.concluded, aborted.succeeded) == ("ABORTED", True, False)
    assert aborted.data["status"] == "ABORTED"


# -- end to end: a malformed answer is one clear API error -------------------------------------


def action(tmp_path: Path, url: str) -> Result:
    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api",
        "service-type": "build",
        "api-url": url,
        "poll-interval": "1",
        "logs": "off",
    }
    extra = {"GITHUB_SHA": SHA, "GITHUB_REF": "refs/heads/main"}
    return run(github_env(tmp_path, values, extra=extra), tmp=tmp_path)


def script(started: dict[str, Any], read: dict[str, Any]) -> Any:
    def answer(method: str, path: str, body: bytes) -> Answer:
        if method == "POST":
            return json_answer(200, {"data": started})
        if path.endswith("/build?per_page=20"):
            return json_answer(200, {"data": {"builds": []}})
        return json_answer(200, {"data": read})

    return answer


@pytest.mark.parametrize(
    ("started", "read", "says"),
    [
        ({"status": "PENDING"}, {}, "POST /v1/projects/demo-project/services/api/build answered"),
        (build(concluded=False), build(concluded="false"), "concluded is 'false'"),
        (build(concluded=False), build(createdAt=1e20), "createdAt"),
        (build(concluded=False), build(id=None), "the build has no id"),
    ],
    ids=["start-without-id", "concluded-a-string", "absurd-time", "read-without-id"],
)
def test_a_malformed_answer_is_one_api_error(
    tmp_path: Path, scripted: StartScripted, started: Any, read: Any, says: str
) -> None:
    server = scripted(script(started, read))
    result = action(tmp_path, server.url)
    assert result.code == 3, result.text
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert says in error
    assert "(HTTP 200)" in error
    assert "Traceback" not in result.text
    assert result.outputs["result"] == "error"
    if "POST" in says:
        assert "the build may have started" in error


def test_a_concluded_build_without_success_reports_success_everywhere(
    tmp_path: Path, scripted: StartScripted
) -> None:
    server = scripted(script(build(concluded=False, status="PENDING"), build(message="built")))
    result = action(tmp_path, server.url)
    assert result.code == 0, result.text
    assert (result.outputs["result"], result.outputs["success"]) == ("success", "true")
    assert json.loads(result.outputs["build"]).get("success") is None


def test_pages_are_read_defensively() -> None:
    cursor = "c" * 24
    assert (
        Pages.parse({"pagination": {"hasNextPage": True, "cursor": cursor}}).next_cursor == cursor
    )
    assert Pages.parse({"pagination": {"hasNextPage": False, "cursor": cursor}}).next_cursor is None
    assert Pages.parse({"pagination": {"hasNextPage": "yes", "cursor": cursor}}).more is None
    assert Pages.parse({"pagination": {"hasNextPage": True, "cursor": "a\nb"}}).cursor is None
    assert Pages.parse({"pagination": {"hasNextPage": True, "cursor": "c" * 300}}).cursor is None
    assert Pages.parse({"pagination": []}) == Pages() == Pages.parse({})


def test_log_lines_are_found_in_every_known_envelope_and_an_unknown_one_is_described() -> None:
    line = {"containerId": "x", "log": "Step 1/9", "ts": "2025-01-01T00:00:00.000Z"}
    for data in ([line], {"logs": [line]}, {"data": [line]}):
        page = LogPage.parse({"data": data})
        assert (page.lines, page.unknown) == ((LogLine(line["ts"], "Step 1/9"),), "")
    assert LogPage.parse({"data": {"entries": [line]}}).unknown == "an object with the keys entries"
    assert LogPage.parse({"data": {}}).unknown == "an empty object"
    assert LogPage.parse({}).unknown == "no data"
    assert LogPage.parse({"data": "Step 1/9"}).unknown == "a str"
    assert LogPage.parse({"data": []}) == LogPage(())
