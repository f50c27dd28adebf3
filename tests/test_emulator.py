"""The Northflank API emulator, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from northflank_build.emulator import (
    ConfigError,
    Emulator,
    EmulatorConfig,
    Fault,
    FaultError,
    PastBuild,
    ServiceConfig,
    load_config,
)
from northflank_build.emulator.faults import parse_fault_option

TOKEN = "full-token"
READER = "reader-token"
FAST = {"QUEUED": 0.05, "CLONING": 0.05, "BUILDING": 0.1, "UPLOADING": 0.05}
SLOW = {"QUEUED": 0.05, "CLONING": 0.05, "BUILDING": 30.0, "UPLOADING": 0.05}
ROOT = Path(__file__).resolve().parent.parent
P = "/v1/projects/proj/services"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def world(**overrides: Any) -> EmulatorConfig:
    """A small world with fast builds; overrides go to EmulatorConfig."""
    history = [
        PastBuild("success", duration=80, age=7200, branch="main", sha="a" * 40),
        PastBuild("failure", duration=50, age=3600, branch="main"),
        PastBuild("aborted", duration=20, age=600, pull_request_id=9),
    ]
    services = {
        "web": ServiceConfig("combined", "https://github.com/acme/web", "main", phases=FAST),
        "api": ServiceConfig("build", "https://gitlab.com/acme/api", phases=FAST),
        "broken": ServiceConfig(
            "build", "https://github.com/acme/b", outcome="failure", phases=FAST
        ),
        "oom": ServiceConfig("build", "https://github.com/acme/o", outcome="crash", phases=FAST),
        "cycle": ServiceConfig("combined", outcome=["success", "failure"], phases=FAST),
        "slow": ServiceConfig("combined", "https://github.com/acme/s", "dev", phases=SLOW),
        "chatty": ServiceConfig("combined", phases=FAST, log_lines_per_phase=40),
        "hist": ServiceConfig("combined", "https://example.org/acme/h.git", history=history),
        "runtime": ServiceConfig("deployment"),
        "bundle": ServiceConfig("build", build_source="bundle", phases=FAST),
    }
    values: dict[str, Any] = {
        "token": [TOKEN, "other-token"],
        "read_only_tokens": [READER],
        "team_id": "acme",
        "log_page_limit": 25,
        "projects": {"proj": services},
    }
    return EmulatorConfig(**{**values, **overrides})


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(world()) as emulator:
        yield emulator


@pytest.fixture
def http(emu: Emulator) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def call(method: str, url: str, **kwargs: Any) -> requests.Response:
    """One request outside a session, with a timeout."""
    return requests.request(method, url, timeout=kwargs.pop("timeout", 5), **kwargs)


def start(emu: Emulator, http: requests.Session, service: str, body: object) -> dict[str, Any]:
    """Start a build and return its data, asserting the API accepted it."""
    answer = http.post(f"{emu.url}{P}/{service}/build", json=body)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def wait_concluded(emu: Emulator, http: requests.Session, service: str, build_id: str) -> list[str]:
    """Poll the build until it concludes; the statuses seen, without repeats."""
    seen: list[str] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        data = http.get(f"{emu.url}{P}/{service}/build/{build_id}").json()["data"]
        if not seen or seen[-1] != data["status"]:
            seen.append(data["status"])
        if data["concluded"]:
            return seen
        time.sleep(0.01)
    raise AssertionError(f"build {build_id} did not conclude; statuses {seen}")


def logs(emu: Emulator, http: requests.Session, service: str, **query: Any) -> requests.Response:
    return http.get(f"{emu.url}{P}/{service}/build-logs", params=query)


def epoch_ms(ts: str) -> int:
    return round(datetime.fromisoformat(ts).timestamp() * 1000)


# Service, routes and auth


def test_service_read_in_both_route_forms(emu: Emulator, http: requests.Session) -> None:
    for prefix in (P, "/v1/teams/acme/projects/proj/services"):
        answer = http.get(f"{emu.url}{prefix}/web")
        assert answer.status_code == 200
        assert answer.headers["Content-Length"] == str(len(answer.content))
        assert answer.raw.version == 11
        data = answer.json()["data"]
        assert data["id"] == "web"
        assert data["serviceType"] == "combined"
        assert data["buildSource"] == "git"
        assert data["vcsData"] == {
            "projectUrl": "https://github.com/acme/web",
            "projectType": "github",
            "projectBranch": "main",
            "dockerFilePath": "/Dockerfile",
            "dockerWorkDir": "/",
        }
        assert "build" not in data["status"]
    api = http.get(f"{emu.url}{P}/api").json()["data"]
    assert (api["serviceType"], api["vcsData"]["projectType"]) == ("build", "gitlab")
    assert "projectBranch" not in api["vcsData"]
    hist = http.get(f"{emu.url}{P}/hist").json()["data"]
    assert hist["vcsData"]["projectType"] == "self-hosted"
    assert hist["status"]["build"]["status"] == "ABORTED"  # its newest past build
    start(emu, http, "slow", {})
    assert http.get(f"{emu.url}{P}/slow").json()["data"]["status"]["build"]["status"] == "QUEUED"


def test_auth_is_required_and_read_only_tokens_cannot_build(emu: Emulator) -> None:
    url = f"{emu.url}{P}/web"
    missing = call("GET", url)
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == 401
    assert missing.headers["x-ratelimit-limit"] == "1000"
    wrong = call("GET", url, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"] == "Unauthorized: invalid API token"
    assert call("GET", url, headers={"Authorization": "Basic " + TOKEN}).status_code == 401
    reader = {"Authorization": f"Bearer {READER}"}
    assert call("GET", url, headers=reader).status_code == 200
    refused = call("POST", f"{url}/build", headers=reader, json={})
    assert refused.status_code == 403
    assert "Deploy Build" in refused.json()["error"]["message"]
    assert call("DELETE", f"{url}/build/x", headers=reader).status_code == 403
    assert len(emu.builds("proj", "web")) == 0
    assert [r.authorized for r in emu.requests] == [False, False, False, True, False, False]
    assert call("GET", url, headers={"authorization": f"bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v1/projects/nope/services/web", "Project nope not found"),
        (f"{P}/api-x", "Service api-x not found in project proj"),
        (f"{P}/web/build/calm-river-1234", "Build calm-river-1234 not found"),
        ("/v1/teams/other/projects/proj/services/web", "Team other not found"),
        (f"{P}/web/branches", "Route not found"),
        ("/v1/auth/x", "Route not found"),
        ("/elsewhere", "Route not found"),
    ],
)
def test_unknown_things_are_404(
    emu: Emulator, http: requests.Session, path: str, message: str
) -> None:
    answer = http.get(emu.url + path)
    assert answer.status_code == 404
    assert message in answer.json()["error"]["message"]
    assert answer.json()["error"]["details"] == {}
    assert len(answer.json()["error"]["id"]) >= 8


# Starting builds

B64 = base64.b64encode(b"token=secret").decode()
SECRET = {"data": B64, "encoding": "utf-8"}


@pytest.mark.parametrize(
    ("service", "body", "status", "field"),
    [
        ("web", {}, 200, None),
        ("web", {"sha": "c" * 40}, 200, None),
        ("web", {"sha": "c" * 39}, 400, "sha"),
        ("web", {"branch": "main"}, 400, "branch"),
        ("web", {"pullRequestId": 4}, 400, "pullRequestId"),
        ("web", {"tag": "v1"}, 400, "tag"),
        ("api", {"branch": "main"}, 200, None),
        ("api", {"pullRequestId": 4}, 200, None),
        ("api", {}, 400, "branch"),
        ("api", {"branch": "main", "pullRequestId": 4}, 400, "branch"),
        ("api", {"pullRequestId": True}, 400, "pullRequestId"),
        ("api", {"pullRequestId": "4"}, 400, "pullRequestId"),
        ("api", {"branch": 7}, 400, "branch"),
        ("web", {"overrides": {"buildArguments": {"A": "1"}}}, 200, None),
        ("web", {"overrides": {"buildArguments": {"A": 1}}}, 400, "overrides.buildArguments.A"),
        ("web", {"overrides": {"buildArguments": []}}, 400, "overrides.buildArguments"),
        ("web", {"overrides": {"env": {}}}, 400, "overrides.env"),
        ("web", {"overrides": {"buildFiles": {"/run/.npmrc": SECRET}}}, 200, None),
        (
            "web",
            {"overrides": {"buildFiles": {"run/.npmrc": SECRET}}},
            400,
            "overrides.buildFiles.run/.npmrc",
        ),
        (
            "web",
            {"overrides": {"buildFiles": {"/f": {"data": "@@@", "encoding": "utf-8"}}}},
            400,
            "overrides.buildFiles./f.data",
        ),
        (
            "web",
            {"overrides": {"buildFiles": {"/f": {"data": B64}}}},
            400,
            "overrides.buildFiles./f.encoding",
        ),
        (
            "web",
            {"overrides": {"buildFiles": {"/f": {**SECRET, "mode": "0600"}}}},
            400,
            "overrides.buildFiles./f.mode",
        ),
        ("web", {"overrides": {"dockerSecretMounts": {"npmrc": SECRET}}}, 200, None),
        (
            "web",
            {"overrides": {"dockerSecretMounts": {"npmrc": "x"}}},
            400,
            "overrides.dockerSecretMounts.npmrc",
        ),
        (
            "web",
            {"overrides": {"docker": {"dockerFilePath": "/app/Dockerfile", "dockerWorkDir": "/"}}},
            200,
            None,
        ),
        ("web", {"overrides": {"docker": {"dockerfileTarget": "prod-2"}}}, 200, None),
        (
            "web",
            {"overrides": {"docker": {"dockerFilePath": "Dockerfile"}}},
            400,
            "overrides.docker.dockerFilePath",
        ),
        (
            "web",
            {"overrides": {"docker": {"dockerFilePath": "/app/"}}},
            400,
            "overrides.docker.dockerFilePath",
        ),
        (
            "web",
            {"overrides": {"docker": {"dockerWorkDir": "app"}}},
            400,
            "overrides.docker.dockerWorkDir",
        ),
        (
            "web",
            {"overrides": {"docker": {"dockerfileTarget": "prod stage"}}},
            400,
            "overrides.docker.dockerfileTarget",
        ),
        ("web", {"overrides": {"docker": {"context": "/"}}}, 400, "overrides.docker.context"),
        ("bundle", {"bundleUrl": "https://x.test/a.tar", "branch": "main"}, 200, None),
        ("bundle", {"bundleUrl": 5}, 400, "bundleUrl"),
        ("bundle", {"bundleUrl": "https://x.test/a.tar", "overrides": {}}, 200, None),
        ("bundle", {"bundleUrl": "https://x.test/a.tar", "sha": "v1.4.0"}, 200, None),
        (
            "bundle",
            {"bundleUrl": "https://x.test/a.tar", "overrides": {"buildArguments": {"A": 1}}},
            400,
            "overrides.buildArguments.A",
        ),
        ("bundle", {"bundleUrl": "https://x.test/a.tar", "pullRequestId": 4}, 400, "pullRequestId"),
        ("bundle", {"branch": "main"}, 400, None),
        ("api", {"bundleUrl": "https://x.test/a.tar"}, 400, None),
        ("runtime", {}, 409, None),
        ("web", [], 400, None),
    ],
)
def test_start_build_body_rules(
    emu: Emulator,
    http: requests.Session,
    service: str,
    body: object,
    status: int,
    field: str | None,
) -> None:
    answer = http.post(f"{emu.url}{P}/{service}/build", json=body)
    assert answer.status_code == status, answer.text
    builds = emu.builds("proj", service)
    if status == 200:
        assert [b["id"] for b in builds] == [answer.json()["data"]["id"]]
        return
    assert builds == []
    error = answer.json()["error"]
    assert error["status"] == status
    if field is not None:
        assert field in [problem["field"] for problem in error["details"]["errors"]]


@pytest.mark.parametrize("raw", [b"", b"{not json", b'{"sha": '])
def test_malformed_or_missing_body_is_400(
    emu: Emulator, http: requests.Session, raw: bytes
) -> None:
    answer = http.post(f"{emu.url}{P}/web/build", data=raw)
    assert answer.status_code == 400
    assert "JSON" in answer.json()["error"]["message"]
    assert emu.builds("proj", "web") == []


def test_chunked_body_is_refused_and_python_api_raises_key_error(
    emu: Emulator, http: requests.Session
) -> None:
    chunks = iter([b'{"branch": ', b'"main"}'])
    answer = http.post(f"{emu.url}{P}/api/build", data=chunks)
    assert answer.status_code == 411
    assert emu.builds("proj", "api") == []
    with pytest.raises(KeyError, match="Service nope not found"):
        emu.builds("proj", "nope")
    with pytest.raises(KeyError, match="Build calm-river-1234 not found"):
        emu.log_lines("proj", "web", "calm-river-1234")


def test_started_build_looks_like_northflanks(emu: Emulator, http: requests.Session) -> None:
    web = start(emu, http, "web", {})
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{4}", web["id"])
    assert web["status"] == "PENDING"  # the API's example; reads then follow the phases
    assert web["concluded"] is False
    assert web["branch"] == "main"
    assert re.fullmatch(r"[0-9a-f]{40}", web["sha"])
    assert web["id"] in web["registry"]["uri"]
    assert ISO_MS.match(web["createdAt"])
    assert "success" not in web
    again = start(emu, http, "web", {})
    assert again["sha"] == web["sha"]  # the same branch's latest commit
    assert again["id"] != web["id"]
    pr = start(emu, http, "api", {"pullRequestId": 12, "sha": "f" * 40})
    assert (pr["pullRequestId"], pr["sha"]) == (12, "f" * 40)
    assert "branch" not in pr
    bundle = start(emu, http, "bundle", {"bundleUrl": "https://x.test/a.tar"})
    assert "branch" not in bundle
    assert re.fullmatch(r"[0-9a-f]{40}", bundle["sha"])
    cloning = [line["log"] for line in emu.log_lines("proj", "bundle", bundle["id"])]
    assert "Downloading bundle https://x.test/a.tar ..." in cloning
    assert [b["id"] for b in emu.builds("proj", "web")] == [again["id"], web["id"]]


# Lifecycle


@pytest.mark.parametrize(
    ("service", "status", "message", "last_log"),
    [
        ("web", "SUCCESS", "Image successfully built", "Image successfully built"),
        ("broken", "FAILURE", "npm test", "Build failed"),
        ("oom", "CRASHED", "OOMKilled", "Build container crashed (OOMKilled)"),
    ],
)
def test_lifecycle_to_each_outcome(
    emu: Emulator, http: requests.Session, service: str, status: str, message: str, last_log: str
) -> None:
    body = {} if service == "web" else {"branch": "main"}
    build = start(emu, http, service, body)
    seen = wait_concluded(emu, http, service, build["id"])
    order = ["QUEUED", "CLONING", "BUILDING", "UPLOADING", status]
    assert seen[0] == "QUEUED"
    assert seen[-1] == status
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)
    if status != "SUCCESS":
        assert "UPLOADING" not in seen  # a failing build stops in BUILDING
    data = http.get(f"{emu.url}{P}/{service}/build/{build['id']}").json()["data"]
    assert data["concluded"] is True
    assert data["success"] is (status == "SUCCESS")
    assert message in data["message"]
    created = epoch_ms(data["createdAt"]) / 1000
    assert isinstance(data["buildConcludedAt"], float)
    assert 0.1 <= data["buildConcludedAt"] - created < 1
    lines = logs(emu, http, service, buildId=build["id"], direction="backward").json()["data"]
    assert lines[-1]["log"] == last_log
    if status == "FAILURE":
        texts = [line["log"] for line in lines]
        assert "error: npm ERR! Test failed" in texts
        exit_line = 'process "/bin/sh -c npm test" did not complete successfully: exit code: 1'
        assert exit_line in texts


def test_outcome_list_is_cycled(emu: Emulator, http: requests.Session) -> None:
    ids = [start(emu, http, "cycle", {})["id"] for _ in range(3)]
    finals = [wait_concluded(emu, http, "cycle", build_id)[-1] for build_id in ids]
    assert finals == ["SUCCESS", "FAILURE", "SUCCESS"]


def test_abort_running_build(emu: Emulator, http: requests.Session) -> None:
    build = start(emu, http, "slow", {})
    url = f"{emu.url}{P}/slow/build/{build['id']}"
    time.sleep(0.15)
    answer = http.delete(url)
    assert (answer.status_code, answer.json()) == (200, {"data": {}})
    data = http.get(url).json()["data"]
    assert (data["status"], data["concluded"], data["success"]) == ("ABORTED", True, False)
    assert "aborted" in data["message"]
    again = http.delete(url)
    assert again.status_code == 409
    assert "already concluded (ABORTED)" in again.json()["error"]["message"]
    full = emu.log_lines("proj", "slow", build["id"])
    assert full[-1]["log"] == "Build aborted by user"
    time.sleep(0.1)
    tail = logs(emu, http, "slow", buildId=build["id"], direction="backward").json()["data"]
    assert tail == full[-25:]
    assert not any(line["log"].startswith("Pushing image") for line in full)


def test_aborting_a_concluded_build_is_409(emu: Emulator, http: requests.Session) -> None:
    past = emu.builds("proj", "hist")[1]
    answer = http.delete(f"{emu.url}{P}/hist/build/{past['id']}")
    assert answer.status_code == 409
    assert http.get(f"{emu.url}{P}/hist/build/{past['id']}").json()["data"]["status"] == "FAILURE"


# Listing builds


def test_history_is_listed_newest_first(emu: Emulator, http: requests.Session) -> None:
    answer = http.get(f"{emu.url}{P}/hist/build").json()
    builds = answer["data"]["builds"]
    assert [b["status"] for b in builds] == ["ABORTED", "FAILURE", "SUCCESS"]
    assert all(b["concluded"] for b in builds)
    assert builds[0]["pullRequestId"] == 9
    assert builds[2]["sha"] == "a" * 40
    assert builds[2]["branch"] == "main"
    created = [epoch_ms(b["createdAt"]) for b in builds]
    assert created == sorted(created, reverse=True)
    assert time.time() * 1000 - created[2] == pytest.approx(7200_000, abs=5000)
    assert builds[2]["buildConcludedAt"] - created[2] / 1000 == pytest.approx(80, abs=0.01)
    assert answer["pagination"] == {"hasNextPage": False, "count": 3}


def test_list_pagination_by_cursor_and_page(emu: Emulator, http: requests.Session) -> None:
    ids = [start(emu, http, "web", {})["id"] for _ in range(5)]
    url = f"{emu.url}{P}/web/build"
    first = http.get(url, params={"per_page": 2}).json()
    assert [b["id"] for b in first["data"]["builds"]] == ids[::-1][:2]
    assert first["pagination"]["hasNextPage"] is True
    assert first["pagination"]["count"] == 2
    cursor = first["pagination"]["cursor"]
    assert len(cursor) == 24
    start(emu, http, "web", {})  # a newer build must not shift the pages already handed out
    seen = [b["id"] for b in first["data"]["builds"]]
    while cursor:
        page = http.get(url, params={"per_page": 2, "cursor": cursor}).json()
        seen += [b["id"] for b in page["data"]["builds"]]
        cursor = page["pagination"].get("cursor")
    assert seen == ids[::-1]
    third = http.get(url, params={"per_page": 2, "page": 3}).json()
    assert [b["id"] for b in third["data"]["builds"]] == ids[::-1][3:5]
    default = http.get(url).json()
    assert default["pagination"] == {"hasNextPage": False, "count": 6}
    for params in ({"per_page": 0}, {"per_page": 101}, {"per_page": "x"}, {"page": 0}):
        assert http.get(url, params=params).status_code == 400
    assert http.get(url, params={"cursor": "z" * 24}).status_code == 400


# Logs


@pytest.fixture
def chatty(emu: Emulator, http: requests.Session) -> tuple[str, list[dict[str, str]]]:
    """A concluded build with 160 lines and more, and its full log."""
    build_id = start(emu, http, "chatty", {})["id"]
    wait_concluded(emu, http, "chatty", build_id)
    return build_id, emu.log_lines("proj", "chatty", build_id)


def test_logs_page_forward_with_inclusive_start_time(
    emu: Emulator, http: requests.Session, chatty: tuple[str, list[dict[str, str]]]
) -> None:
    build_id, full = chatty
    assert len(full) == 4 * 40 + 2
    assert max(Counter(line["ts"] for line in full).values()) >= 3
    got: list[dict[str, str]] = []
    query: dict[str, Any] = {"buildId": build_id, "queryType": "range"}
    overlaps = 0
    for _ in range(50):
        page = logs(emu, http, "chatty", **query).json()["data"]
        assert len(page) <= 25
        if got:
            # startTime is inclusive: the page repeats the lines at the last timestamp seen.
            repeated = sum(1 for line in got if line["ts"] == got[-1]["ts"])
            assert page[:repeated] == got[-repeated:]
            overlaps += repeated
            page = page[repeated:]
        if not page:
            break
        got += page
        query["startTime"] = got[-1]["ts"]
    assert got == full
    assert overlaps > 0


def test_logs_backward_tail_cap_and_filters(
    emu: Emulator, http: requests.Session, chatty: tuple[str, list[dict[str, str]]]
) -> None:
    build_id, full = chatty
    tail = logs(emu, http, "chatty", buildId=build_id, direction="backward", lineLimit=5)
    assert tail.json()["data"] == full[-5:]
    capped = logs(emu, http, "chatty", buildId=build_id, lineLimit=1000).json()["data"]
    assert capped == full[:25]
    assert logs(emu, http, "chatty", buildId=build_id, lineLimit=3).json()["data"] == full[:3]
    steps = logs(emu, http, "chatty", buildId=build_id, textIncludes="Step ").json()["data"]
    assert steps == [line for line in full if "Step " in line["log"]][:25]
    assert steps
    done = logs(emu, http, "chatty", buildId=build_id, regexIncludes=r"^#\d+ DONE").json()
    assert done["data"]
    assert all(re.match(r"#\d+ DONE", line["log"]) for line in done["data"])
    without = logs(emu, http, "chatty", buildId=build_id, textNotIncludes="e", lineLimit=500)
    assert all("e" not in line["log"] for line in without.json()["data"])
    middle = full[80]["ts"]
    before = logs(emu, http, "chatty", buildId=build_id, endTime=middle, direction="backward")
    assert before.json()["data"] == [line for line in full if line["ts"] <= middle][-25:]
    window = logs(emu, http, "chatty", buildId=build_id, startTime=full[0]["ts"], duration=0.05)
    limit = epoch_ms(full[0]["ts"]) + 50
    assert window.json()["data"] == [line for line in full if epoch_ms(line["ts"]) <= limit][:25]


def test_logs_show_only_lines_already_emitted(emu: Emulator, http: requests.Session) -> None:
    build_id = start(emu, http, "slow", {})["id"]
    served = logs(emu, http, "slow", buildId=build_id).json()["data"]
    full = emu.log_lines("proj", "slow", build_id)
    assert 0 < len(served) < len(full)
    assert served == full[: len(served)]
    now_ms = time.time() * 1000
    assert all(epoch_ms(line["ts"]) <= now_ms + 5 for line in served)
    assert served[0]["log"] == f"Build {build_id} queued"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({}, 400),
        ({"buildId": "calm-river-1234"}, 404),
        ({"buildId": "BUILD", "direction": "sideways"}, 400),
        ({"buildId": "BUILD", "startTime": "yesterday"}, 400),
        ({"buildId": "BUILD", "lineLimit": 0}, 400),
        ({"buildId": "BUILD", "duration": "-1"}, 400),
        ({"buildId": "BUILD", "regexIncludes": "("}, 400),
        ({"buildId": "BUILD", "queryType": "tail"}, 400),
    ],
)
def test_bad_log_queries(
    emu: Emulator, http: requests.Session, query: dict[str, Any], status: int
) -> None:
    build_id = start(emu, http, "web", {})["id"]
    query = {key: build_id if value == "BUILD" else value for key, value in query.items()}
    answer = logs(emu, http, "web", **query)
    assert answer.status_code == status
    assert answer.json()["error"]["status"] == status


# Rate limit


def test_rate_limit_headers_and_429() -> None:
    with Emulator(world(rate_limit=3, rate_window=60)) as emu:
        url = f"{emu.url}{P}/web"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        remaining = []
        for _ in range(3):
            answer = call("GET", url, headers=auth)
            assert answer.status_code == 200
            assert answer.headers["x-ratelimit-limit"] == "3"
            assert 59 <= int(answer.headers["x-ratelimit-reset"]) <= 60
            remaining.append(answer.headers["x-ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]
        spent = call("POST", f"{url}/build", headers=auth, json={})
        assert spent.status_code == 429
        assert spent.json()["error"]["status"] == 429
        assert 59 <= int(spent.headers["Retry-After"]) <= 60
        assert spent.headers["x-ratelimit-remaining"] == "0"
        assert emu.builds("proj", "web") == []
        other = call("GET", url, headers={"Authorization": "Bearer other-token"})
        assert (other.status_code, other.headers["x-ratelimit-remaining"]) == (200, "2")
        assert call("POST", f"{emu.url}/_emulator/reset").status_code == 200
        assert call("GET", url, headers=auth).headers["x-ratelimit-remaining"] == "2"


def test_rate_window_resets() -> None:
    with Emulator(world(rate_limit=1, rate_window=0.3)) as emu:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        url = f"{emu.url}{P}/web"
        assert call("GET", url, headers=auth).status_code == 200
        assert call("GET", url, headers=auth).status_code == 429
        time.sleep(0.35)
        assert call("GET", url, headers=auth).status_code == 200


# Faults


def test_fault_strings_round_trip() -> None:
    for text in (
        "ok",
        "status:503",
        "status:502:apply",
        "429",
        "429:retry-after=2",
        "html:502",
        "reset-before",
        "reset-after",
        "delay:1.5",
        "delay:5:apply-first",
        "truncated",
    ):
        assert str(Fault.parse(text)) == text
    assert Fault.parse("status:502:apply") == Fault("status", status=502, apply=True)
    for bad in ("status", "status:700", "delay:-1", "429:wait=2", "html", "explode", "ok:1"):
        with pytest.raises(FaultError):
            Fault.parse(bad)
    assert parse_fault_option("POST build=reset-after,ok") == (
        "POST build",
        [Fault("reset-after"), Fault("ok")],
    )
    with pytest.raises(FaultError):
        parse_fault_option("PUT build=ok")


def test_status_faults_with_and_without_apply(emu: Emulator, http: requests.Session) -> None:
    emu.add_faults("POST build", ["status:503", Fault("status", status=502, apply=True), "ok"])
    url = f"{emu.url}{P}/web/build"
    first = http.post(url, json={})
    assert first.status_code == 503
    assert first.json()["error"]["status"] == 503
    assert "x-ratelimit-remaining" in first.headers
    assert emu.builds("proj", "web") == []
    second = http.post(url, json={})
    assert second.status_code == 502
    assert len(emu.builds("proj", "web")) == 1
    assert http.post(url, json={}).status_code == 200
    assert http.post(url, json={}).status_code == 200  # the queue is empty: normal answers
    assert len(emu.builds("proj", "web")) == 3
    assert len(emu.requests) == 4


def test_rate_limit_and_html_faults(emu: Emulator, http: requests.Session) -> None:
    emu.add_faults("GET service", ["429", "429:retry-after=2", "html:502"])
    url = f"{emu.url}{P}/web"
    plain = http.get(url)
    assert plain.status_code == 429
    assert "Retry-After" not in plain.headers
    assert plain.headers["x-ratelimit-remaining"] == "0"
    assert int(plain.headers["x-ratelimit-reset"]) > 0
    timed = http.get(url)
    assert (timed.status_code, timed.headers["Retry-After"]) == (429, "2")
    page = http.get(url)
    assert page.status_code == 502
    assert page.headers["Content-Type"] == "text/html"
    assert page.text.startswith("<html>")
    with pytest.raises(ValueError, match="Expecting value"):
        page.json()
    assert http.get(url).status_code == 200


def test_connection_reset_faults(emu: Emulator, http: requests.Session) -> None:
    emu.add_faults("POST build", ["reset-before", "reset-after"])
    url = f"{emu.url}{P}/web/build"
    with pytest.raises(requests.ConnectionError):
        http.post(url, json={})
    assert emu.builds("proj", "web") == []
    with pytest.raises(requests.ConnectionError):
        http.post(url, json={})
    assert len(emu.builds("proj", "web")) == 1
    assert [r.path for r in emu.requests] == [f"{P}/web/build"] * 2
    assert emu.requests[0].body == {}
    assert http.post(url, json={}).status_code == 200


def test_delay_faults(emu: Emulator, http: requests.Session) -> None:
    emu.add_faults("POST build", ["delay:0.3", "delay:2:apply-first"])
    url = f"{emu.url}{P}/web/build"
    began = time.monotonic()
    assert http.post(url, json={}).status_code == 200
    assert time.monotonic() - began >= 0.3
    with pytest.raises(requests.Timeout):
        http.post(url, json={}, timeout=0.3)
    assert len(emu.builds("proj", "web")) == 2  # the timed-out request created a build all the same


def test_truncated_fault(emu: Emulator, http: requests.Session) -> None:
    emu.add_faults("POST build", ["truncated"])
    answer = http.post(f"{emu.url}{P}/web/build", json={})
    assert answer.status_code == 200
    assert answer.headers["Content-Length"] == str(len(answer.content))
    assert answer.content.startswith(b'{"data":{"id":"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)
    assert len(emu.builds("proj", "web")) == 1


def test_any_endpoint_faults_yield_to_endpoint_faults(
    emu: Emulator, http: requests.Session
) -> None:
    emu.add_faults("*", ["status:500", "status:504"])
    emu.add_faults("GET service", ["status:503"])
    service = f"{emu.url}{P}/web"
    assert http.get(service).status_code == 503
    assert http.get(service).status_code == 500
    assert http.get(f"{service}/build").status_code == 504
    assert http.get(service).status_code == 200


def test_faults_from_config_and_control_route() -> None:
    with Emulator(world(faults={"GET builds": [Fault("status", status=500)]})) as emu:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        url = f"{emu.url}{P}/web/build"
        plan = {"endpoint": "GET builds", "faults": ["status:502"]}
        queued = call("POST", f"{emu.url}/_emulator/faults", json=plan)
        assert queued.json() == {"faults": {"GET builds": ["status:500", "status:502"]}}
        assert call("GET", url, headers=auth).status_code == 500
        assert call("GET", url, headers=auth).status_code == 502
        assert call("GET", url, headers=auth).status_code == 200
        bad = {"endpoint": "GET everything", "faults": ["ok"]}
        assert call("POST", f"{emu.url}/_emulator/faults", json=bad).status_code == 400
        bad = {"endpoint": "GET builds", "faults": ["explode"]}
        assert call("POST", f"{emu.url}/_emulator/faults", json=bad).status_code == 400


def test_stop_ends_a_pending_delay() -> None:
    emu = Emulator(world())
    emu.add_faults("GET service", ["delay:30"])
    url = emu.start()
    outcome: list[str] = []

    def fetch() -> None:
        try:
            call("GET", f"{url}{P}/web", headers={"Authorization": f"Bearer {TOKEN}"})
            outcome.append("answered")
        except requests.ConnectionError:
            outcome.append("reset")

    caller = threading.Thread(target=fetch)
    caller.start()
    time.sleep(0.2)
    began = time.monotonic()
    emu.stop()
    caller.join(timeout=3)
    assert not caller.is_alive()
    assert outcome == ["reset"]
    assert time.monotonic() - began < 2


# Control routes, request log and config files


def test_control_routes(emu: Emulator, http: requests.Session) -> None:
    build = start(emu, http, "web", {"sha": "d" * 40})
    call("GET", f"{emu.url}{P}/web?x=1", headers={"Authorization": "Bearer wrong"})
    log = call("GET", f"{emu.url}/_emulator/requests").json()["requests"]
    assert [(r["method"], r["authorized"]) for r in log] == [("POST", True), ("GET", False)]
    assert log[0]["headers"]["Authorization"] == "Bearer ***"
    assert log[0]["body"] == {"sha": "d" * 40}
    assert log[1]["query"] == {"x": "1"}
    listed = call("GET", f"{emu.url}/_emulator/builds").json()["builds"]
    assert build["id"] in [b["id"] for b in listed]
    assert {b["serviceId"] for b in listed} == {"web", "hist"}
    assert call("POST", f"{emu.url}/_emulator/reset").json() == {"reset": True}
    assert emu.requests == []
    assert emu.builds("proj", "web") == []
    assert len(emu.builds("proj", "hist")) == 3
    assert call("GET", f"{emu.url}/_emulator/nothing").status_code == 404


def test_recorded_request_fields(emu: Emulator, http: requests.Session) -> None:
    before = time.monotonic()
    http.post(f"{emu.url}{P}/api/build?dry=1", json={"branch": "main"})
    (recorded,) = emu.requests
    assert (recorded.method, recorded.path, recorded.query) == (
        "POST",
        f"{P}/api/build",
        {"dry": "1"},
    )
    assert recorded.headers["authorization"] == f"Bearer {TOKEN}"
    assert recorded.headers["CONTENT-TYPE"] == "application/json"
    assert recorded.body == {"branch": "main"}
    assert json.loads(recorded.raw_body) == {"branch": "main"}
    assert before <= recorded.at <= time.monotonic()
    assert recorded.authorized is True


def test_demo_config_file_loads() -> None:
    config = load_config(ROOT / "northflank_build" / "emulator" / "demo.yml")
    assert config.tokens == ["demo-token", "ci-token"]
    assert config.team_id == "acme"
    services = config.projects["demo-project"]
    assert services["api"].outcome == ["success", "failure"]
    assert services["flaky"].phases["BUILDING"] == 1.0
    assert services["flaky"].phases["PENDING"] == 0.5
    assert list(services["api"].phases)[:2] == ["QUEUED", "STARTING"]
    assert services["api"].external_builds[0].branch == "main"
    assert services["starved"].outcome == "unschedulable"
    assert (config.log_window, config.log_envelope, config.list_order) == (
        1800,
        "list",
        "newest-first",
    )
    assert services["web"].history[0].duration == 84
    assert config.faults == {"GET build": [Fault("ok"), Fault("status", status=503)]}


def test_json_config_and_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "world.json"
    path.write_text(json.dumps({"token": "j", "projects": {"p": {"s": {"type": "build"}}}}))
    emu = Emulator.from_file(path)
    assert emu.config.tokens == ["j"]
    assert emu.config.projects["p"]["s"].type == "build"
    for bad in (
        {"tokens": "x"},
        {"projects": {"p": {"s": {"type": "lambda"}}}},
        {"projects": {"p": {"s": {"phases": {"TESTING": 1}}}}},
        {"faults": {"GET build": ["explode"]}},
    ):
        path.write_text(json.dumps(bad))
        with pytest.raises((ConfigError, FaultError)):
            load_config(path)


def test_default_world() -> None:
    with Emulator() as emu:
        auth = {"Authorization": "Bearer demo-token"}
        for service, kind in [("web", "combined"), ("api", "build"), ("runtime", "deployment")]:
            answer = call(
                "GET", f"{emu.url}/v1/projects/demo-project/services/{service}", headers=auth
            )
            assert answer.json()["data"]["serviceType"] == kind
        bundle = call("GET", f"{emu.url}/v1/projects/demo-project/services/bundle", headers=auth)
        assert bundle.json()["data"]["buildSource"] == "bundle"
        phases = emu.config.projects["demo-project"]["web"].phases
        assert 3 <= sum(phases.values()) <= 5


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_command_serves_until_signalled(stop_signal: signal.Signals) -> None:
    command = [sys.executable, "-m", "northflank_build.emulator", "--port", "0", "--token", "cli"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        second = process.stdout.readline()
        match = re.fullmatch(
            r"Northflank API emulator listening on (http://127\.0\.0\.1:\d+)\n", first
        )
        assert match, first
        url = f"{match.group(1)}/v1/projects/demo-project/services/web"
        assert call("GET", url, headers={"Authorization": "Bearer cli"}, timeout=5).ok
        assert call("GET", url, headers={"Authorization": "Bearer demo-token"}).status_code == 401
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert second == "  token: cli\n"
