"""The emulator's builds as wide as the documented API, over real HTTP on 127.0.0.1.

Every status and outcome, bundle builds with overrides, the list's order and pages, builds the
client did not start, several services started at once under one rate limit, and a clock that
the test drives (VirtualClock): most tests here step time instead of waiting for it.
"""

from __future__ import annotations

import email.utils
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from northflank_build.emulator import (
    ConfigError,
    Emulator,
    EmulatorConfig,
    ExternalBuild,
    PastBuild,
    ServiceConfig,
    VirtualClock,
    load_config,
)
from northflank_build.emulator.__main__ import configure, describe, parse_args
from tests.virtual_api import SHA, TOKEN, WALL, Api, MakeApi, P, api_factory, epoch, services

EVERY_PHASE: dict[str, float] = {
    "PENDING": 10,
    "QUEUED": 10,
    "STARTING": 10,
    "IN_PROGRESS": 10,
    "CLONING": 10,
    "BUILDING": 10,
    "UPLOADING": 10,
}


@pytest.fixture
def make_api() -> Iterator[MakeApi]:
    with api_factory() as make:
        yield make


# Statuses and outcomes


def test_a_build_answers_pending_then_passes_through_every_configured_phase(
    make_api: MakeApi,
) -> None:
    api = make_api(projects=services(every=ServiceConfig(phases=EVERY_PHASE)))
    build = api.start("every", {})
    assert (build["status"], build["concluded"]) == ("PENDING", False)
    assert "success" not in build
    seen = api.statuses("every", build["id"], 5)
    assert seen == [*EVERY_PHASE, "SUCCESS"]
    done = api.data(f"every/build/{build['id']}")
    assert done["buildConcludedAt"] - epoch(done["createdAt"]) == pytest.approx(70)


@pytest.mark.parametrize(
    ("outcome", "status", "phases", "message", "last_line"),
    [
        ("success", "SUCCESS", list(EVERY_PHASE), "Image successfully built", "Image successfully"),
        ("failure", "FAILURE", list(EVERY_PHASE)[:6], "npm test", "Build failed"),
        ("crash", "CRASHED", list(EVERY_PHASE)[:6], "OOMKilled", "Build container crashed"),
        ("aborted", "ABORTED", list(EVERY_PHASE)[:6], "aborted", "Build aborted by user"),
        ("unschedulable", "UNSCHEDULABLE", list(EVERY_PHASE)[:3], "scheduled", "could not be"),
        ("submission-failure", "SUBMISSION_FAILURE", list(EVERY_PHASE)[:3], "submit", "could not"),
    ],
)
def test_each_outcome_ends_in_its_status_after_its_phases(
    make_api: MakeApi, outcome: Any, status: str, phases: list[str], message: str, last_line: str
) -> None:
    service = ServiceConfig(
        "build", "https://github.com/acme/x", outcome=outcome, phases=EVERY_PHASE
    )
    api = make_api(projects=services(x=service))
    build = api.start("x", {"branch": "main"})
    assert api.statuses("x", build["id"], 5) == [*phases, status]
    done = api.data(f"x/build/{build['id']}")
    assert done["concluded"] is True
    assert done["success"] is (status == "SUCCESS")
    assert message in done["message"]
    assert done["buildConcludedAt"] - epoch(done["createdAt"]) == pytest.approx(10 * len(phases))
    lines = api.emulator.log_lines("proj", "x", build["id"])
    assert last_line in lines[-1]["log"]
    assert api.data("x")["status"]["build"]["status"] == status


def test_default_phases_keep_todays_timing_with_pending_first(make_api: MakeApi) -> None:
    api = make_api(projects=EmulatorConfig().projects)
    path = "/v1/projects/demo-project/services/web"
    answer = api.session.post(f"{api.emulator.url}{path}/build", json={}, timeout=5)
    build = answer.json()["data"]
    assert build["status"] == "PENDING"
    seen = []
    api.clock.sleep(0.05)  # read between the phases' ends: at 0.05 s, 0.15 s, ... 4.45 s
    for _ in range(45):
        status = api.session.get(f"{api.emulator.url}{path}/build/{build['id']}", timeout=5)
        seen.append(status.json()["data"]["status"])
        api.clock.sleep(0.1)
    assert seen[:5] == ["PENDING"] * 5
    assert seen[5:13] == ["CLONING"] * 8
    assert seen[13:33] == ["BUILDING"] * 20
    assert seen[33:40] == ["UPLOADING"] * 7
    assert set(seen[40:]) == {"SUCCESS"}


def test_a_build_of_no_time_answers_pending_and_reads_concluded(make_api: MakeApi) -> None:
    instant = dict.fromkeys(("PENDING", "CLONING", "BUILDING", "UPLOADING"), 0.0)
    api = make_api(projects=services(now=ServiceConfig(phases=instant)))
    build = api.start("now", {})
    assert (build["status"], build["concluded"]) == ("PENDING", False)
    read = api.data(f"now/build/{build['id']}")
    assert (read["status"], read["concluded"], read["success"]) == ("SUCCESS", True, True)


def test_phase_and_outcome_rules() -> None:
    assert ServiceConfig().phases == {
        "PENDING": 0.5,
        "CLONING": 0.8,
        "BUILDING": 2.0,
        "UPLOADING": 0.7,
    }
    # The waiting phases named replace PENDING; the work phases left out keep their defaults.
    assert ServiceConfig(phases={"QUEUED": 0.1, "BUILDING": 1}).phases == {
        "QUEUED": 0.1,
        "CLONING": 0.8,
        "BUILDING": 1.0,
        "UPLOADING": 0.7,
    }
    assert list(ServiceConfig(phases={"building": 1, "in_progress": 2, "starting": 0}).phases) == [
        "STARTING",
        "IN_PROGRESS",
        "CLONING",
        "BUILDING",
        "UPLOADING",
    ]
    for bad in ({"TESTING": 1.0}, {"QUEUED": -1.0}, {"SUCCESS": 1.0}):
        with pytest.raises(ConfigError, match="phases"):
            ServiceConfig(phases=bad)
    with pytest.raises(ConfigError, match="outcome"):
        ServiceConfig(outcome="timeout")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="outcome"):
        PastBuild("cancelled")  # type: ignore[arg-type]
    cycle = ServiceConfig(outcome=["unschedulable", "success"])
    assert [cycle.outcome_of(n) for n in range(3)] == ["unschedulable", "success", "unschedulable"]


def test_history_takes_every_outcome(make_api: MakeApi) -> None:
    history = [
        PastBuild("unschedulable", duration=30, age=600, branch="main"),
        PastBuild("aborted", duration=20, age=500, pull_request_id=3),
    ]
    api = make_api(projects=services(h=ServiceConfig("build", "https://x.test/h", history=history)))
    listed = api.data("h/build")["builds"]
    assert [(b["status"], b["success"]) for b in listed] == [
        ("ABORTED", False),
        ("UNSCHEDULABLE", False),
    ]
    assert listed[0]["buildConcludedAt"] - epoch(listed[0]["createdAt"]) == pytest.approx(20)
    assert epoch(listed[1]["createdAt"]) == pytest.approx(WALL - 600)


# Bundle builds


def test_bundle_builds_take_overrides_and_any_revision(make_api: MakeApi) -> None:
    api = make_api()
    overrides = {"buildArguments": {"A": "1"}, "docker": {"dockerfileTarget": "prod"}}
    body = {"bundleUrl": "https://x.test/a.tar", "sha": "v1.4.0", "overrides": overrides}
    build = api.start("bundle", body)
    assert build["sha"] == "v1.4.0"
    bad = {"bundleUrl": "https://x.test/a.tar", "overrides": {"docker": {"context": "/"}}}
    refused = api.session.post(f"{api.emulator.url}{P}/bundle/build", json=bad, timeout=5)
    assert refused.status_code == 400
    fields = [problem["field"] for problem in refused.json()["error"]["details"]["errors"]]
    assert fields == ["overrides.docker.context"]
    short = api.session.post(f"{api.emulator.url}{P}/web/build", json={"sha": "v1.4.0"}, timeout=5)
    assert short.status_code == 400  # a git build's sha stays 40 characters
    assert [b["id"] for b in api.emulator.builds("proj", "bundle")] == [build["id"]]


# Listing builds


def list_all(api: Api, service: str, per_page: int) -> list[str]:
    """Every build id, page after page by cursor."""
    answer = api.get(f"{service}/build", per_page=per_page).json()
    ids = [b["id"] for b in answer["data"]["builds"]]
    for _ in range(100):
        if not answer["pagination"]["hasNextPage"]:
            return ids
        cursor = answer["pagination"]["cursor"]
        answer = api.get(f"{service}/build", per_page=per_page, cursor=cursor).json()
        ids += [b["id"] for b in answer["data"]["builds"]]
    raise AssertionError("the list did not end")


@pytest.mark.parametrize("order", ["newest-first", "oldest-first", "shuffled"])
def test_list_order_is_configurable_and_pages_stay_consistent(
    make_api: MakeApi, order: str
) -> None:
    api = make_api(list_order=order)
    started = []
    for _ in range(7):
        started.append(api.start("web", {})["id"])
        api.clock.sleep(1)
    first_page = api.get("web/build", per_page=3).json()
    api.start("web", {})  # a build started meanwhile does not shift the pages handed out
    cursor = first_page["pagination"]["cursor"]
    rest = list_all_from(api, cursor, per_page=3)
    listed = [b["id"] for b in first_page["data"]["builds"]] + rest
    assert sorted(listed) == sorted(started)
    assert len(set(listed)) == 7
    if order == "newest-first":
        assert listed == started[::-1]
    elif order == "oldest-first":
        assert listed == started
    else:
        assert listed not in (started, started[::-1])
        assert listed[0] != started[-1]
    # The same builds list in the same order every time, also by page number.
    again = list_all(api, "web", per_page=4)
    by_page = [
        b["id"] for page in (1, 2) for b in api.data("web/build", per_page=4, page=page)["builds"]
    ]
    assert again == by_page
    assert len(again) == 8


def list_all_from(api: Api, cursor: str, per_page: int) -> list[str]:
    ids: list[str] = []
    while cursor:
        answer = api.get("web/build", per_page=per_page, cursor=cursor).json()
        ids += [b["id"] for b in answer["data"]["builds"]]
        cursor = answer["pagination"].get("cursor", "")
    return ids


def test_shuffled_list_never_puts_the_newest_first(make_api: MakeApi) -> None:
    api = make_api(list_order="shuffled")
    ids = []
    for count in range(1, 21):
        ids.append(api.start("web", {})["id"])
        listed = [b["id"] for b in api.data("web/build")["builds"]]
        assert sorted(listed) == sorted(ids)
        if count > 1:
            assert listed[0] != ids[-1]


def test_list_pages_default_to_fifty(make_api: MakeApi) -> None:
    api = make_api()
    for _ in range(60):
        api.start("web", {})
    first = api.get("web/build").json()
    assert len(first["data"]["builds"]) == 50
    assert first["pagination"]["hasNextPage"] is True
    assert len(first["pagination"]["cursor"]) == 24
    second = api.get("web/build", page=2).json()
    assert len(second["data"]["builds"]) == 10
    assert second["pagination"] == {"hasNextPage": False, "count": 10}
    assert len(list_all(api, "web", per_page=100)) == 60
    with pytest.raises(ConfigError, match="list_order"):
        EmulatorConfig(list_order="by-status")  # type: ignore[arg-type]


# Builds the client did not start


def test_added_running_build_is_served_like_a_started_one(make_api: MakeApi) -> None:
    api = make_api(projects=services(every=ServiceConfig("build", phases=EVERY_PHASE)))
    added = api.emulator.add_build("proj", "every", sha=SHA, branch="main", elapsed=15)
    assert (added["status"], added["concluded"], added["sha"]) == ("QUEUED", False, SHA)
    assert epoch(added["createdAt"]) == pytest.approx(WALL - 15)
    assert [b["id"] for b in api.data("every/build")["builds"]] == [added["id"]]
    assert api.data(f"every/build/{added['id']}")["status"] == "QUEUED"
    assert api.statuses("every", added["id"], 10)[-1] == "SUCCESS"
    lines = api.emulator.log_lines("proj", "every", added["id"])
    assert f"Checking out {SHA} (main)" in [line["log"] for line in lines]
    running = api.emulator.add_build("proj", "every", pull_request_id=7, outcome="failure")
    aborted = api.session.delete(f"{api.emulator.url}{P}/every/build/{running['id']}", timeout=5)
    assert aborted.status_code == 200
    assert api.data(f"every/build/{running['id']}")["status"] == "ABORTED"


def test_added_build_without_sha_builds_the_latest_commit_a_start_would(make_api: MakeApi) -> None:
    api = make_api()
    external = api.emulator.add_build("proj", "web")  # "build latest" of the linked branch
    started = api.start("web", {})
    assert external["branch"] == started["branch"] == "main"
    assert external["sha"] == started["sha"]
    pull = api.emulator.add_build("proj", "api", pull_request_id=12)
    assert (pull["pullRequestId"], "branch" in pull) == (12, False)
    assert pull["sha"] == api.start("api", {"pullRequestId": 12})["sha"]
    assert pull["sha"] != external["sha"]


def test_added_concluded_build_and_its_outcome(make_api: MakeApi) -> None:
    api = make_api()
    done = api.emulator.add_build(
        "proj", "api", sha=SHA, branch="release", outcome="failure", elapsed=300, duration=120
    )
    assert (done["status"], done["concluded"], done["success"]) == ("FAILURE", True, False)
    assert done["buildConcludedAt"] == pytest.approx(WALL - 180)
    bundle = api.emulator.add_build("proj", "bundle", sha="release-2024.06", elapsed=1)
    assert bundle["sha"] == "release-2024.06"
    with pytest.raises(KeyError, match="Service nope not found"):
        api.emulator.add_build("proj", "nope")
    with pytest.raises(ValueError, match="deployment"):
        api.emulator.add_build("proj", "runtime")
    with pytest.raises(ValueError, match="40 characters"):
        api.emulator.add_build("proj", "web", sha="abc123")
    with pytest.raises(ValueError, match="outcome"):
        api.emulator.add_build("proj", "web", outcome="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="elapsed"):
        api.emulator.add_build("proj", "web", elapsed=-1)
    assert len(api.emulator.builds("proj", "api")) == 1


def test_external_builds_from_config_survive_a_reset(make_api: MakeApi, tmp_path: Path) -> None:
    world = {
        "projects": {
            "proj": {
                "web": {
                    "repository": "https://github.com/acme/web",
                    "phases": {"BUILDING": 60},
                    "external_builds": [
                        {"sha": SHA, "elapsed": 2},
                        {"branch": "main", "outcome": "crash", "elapsed": 90},
                    ],
                }
            }
        }
    }
    path = tmp_path / "world.json"
    path.write_text(json.dumps(world))
    config = load_config(path)
    assert config.projects["proj"]["web"].external_builds[1] == ExternalBuild(
        branch="main", outcome="crash", elapsed=90
    )
    api = make_api(projects=config.projects)
    listed = api.data("web/build")["builds"]
    # Listed newest first by creation: the crashed build began 90 s ago, the other 2 s ago.
    assert [(b["status"], b["concluded"]) for b in listed] == [
        ("BUILDING", False),
        ("CRASHED", True),
    ]
    assert listed[0]["sha"] == SHA
    api.emulator.add_build("proj", "web", elapsed=1)
    api.emulator.reset()
    assert len(api.emulator.builds("proj", "web")) == 2
    for bad in (
        [{"sha": "short"}],
        [{"elapsed": -5}],
        [{"outcome": "maybe"}],
        [{"started": 1}],
        [{"pull_request_id": "7"}],
    ):
        world["projects"]["proj"]["web"]["external_builds"] = bad
        path.write_text(json.dumps(world))
        with pytest.raises(ConfigError, match="external_builds"):
            load_config(path)


def test_control_route_adds_an_external_build(make_api: MakeApi) -> None:
    api = make_api()
    url = f"{api.emulator.url}/_emulator/builds"
    plan = {"projectId": "proj", "serviceId": "api", "branch": "main", "elapsed": 1}
    added = requests.post(url, json={**plan, "pullRequestId": None}, timeout=5)
    assert added.status_code == 200, added.text
    build = added.json()["build"]
    assert (build["branch"], build["concluded"]) == ("main", False)
    assert [b["id"] for b in api.emulator.builds("proj", "api")] == [build["id"]]
    assert api.emulator.requests == []  # control routes are not recorded
    for bad, status in (
        ({**plan, "serviceId": "nope"}, 404),
        ({**plan, "serviceId": "runtime"}, 400),
        ({**plan, "colour": "red"}, 400),
        ({"serviceId": "api"}, 400),
        ({**plan, "elapsed": "soon"}, 400),
    ):
        answer = requests.post(url, json=bad, timeout=5)
        assert answer.status_code == status, (bad, answer.text)
        assert "projectId" in answer.json()["error"]["message"]
    assert len(api.emulator.builds("proj", "api")) == 1


# Several services at once


def test_concurrent_starts_on_several_services_share_the_token_budget() -> None:
    world = services(
        web2=ServiceConfig("combined", "https://github.com/acme/web2", "dev", outcome="failure"),
        api2=ServiceConfig("build", "https://gitlab.com/acme/api2", outcome="crash"),
    )
    bodies = {
        "web": {},
        "api": {"branch": "main"},
        "bundle": {"bundleUrl": "https://x.test/b.tar"},
        "web2": {},
        "api2": {"pullRequestId": 5},
    }
    with Emulator(EmulatorConfig(token=[TOKEN, "other"], rate_limit=30, projects=world)) as emu:
        answers: list[requests.Response] = []
        gate = threading.Barrier(10)
        lock = threading.Lock()

        def starter(index: int) -> None:
            service = list(bodies)[index % len(bodies)]
            with requests.Session() as session:
                session.headers["Authorization"] = f"Bearer {TOKEN}"
                gate.wait(timeout=10)
                for _ in range(5):
                    url = f"{emu.url}{P}/{service}/build"
                    answer = session.post(url, json=bodies[service], timeout=10)
                    with lock:
                        answers.append(answer)

        threads = [threading.Thread(target=starter, args=(n,)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [200] * 30 + [429] * 20
        remaining = sorted(
            int(a.headers["x-ratelimit-remaining"]) for a in answers if a.status_code == 200
        )
        assert remaining == list(range(30))
        every = [b for service in bodies for b in emu.builds("proj", service)]
        assert len(every) == 30
        assert len({b["id"] for b in every}) == 30
        started = {a.json()["data"]["id"] for a in answers if a.status_code == 200}
        assert started == {b["id"] for b in every}
        other = requests.get(
            f"{emu.url}{P}/web", headers={"Authorization": "Bearer other"}, timeout=5
        )
        assert (other.status_code, other.headers["x-ratelimit-remaining"]) == (200, "29")


# The clock


def test_a_forty_minute_build_concludes_on_virtual_time(make_api: MakeApi) -> None:
    long: dict[str, float] = {"PENDING": 30, "CLONING": 90, "BUILDING": 2220, "UPLOADING": 60}
    api = make_api(projects=services(long=ServiceConfig("combined", phases=long)))
    began = time.monotonic()
    build = api.start("long", {})
    polls = 0
    while not api.data(f"long/build/{build['id']}")["concluded"]:
        api.clock.sleep(30)
        polls += 1
    real_seconds = time.monotonic() - began
    assert polls == 80  # 40 minutes of 30 s sleeps
    assert real_seconds < 30  # generous: real waiting would take 40 minutes
    done = api.data(f"long/build/{build['id']}")
    assert done["status"] == "SUCCESS"
    assert epoch(done["createdAt"]) == pytest.approx(WALL)
    assert done["buildConcludedAt"] == pytest.approx(WALL + 2400)
    lines = api.emulator.log_lines("proj", "long", build["id"])
    assert epoch(lines[0]["ts"]) == pytest.approx(WALL)
    assert epoch(lines[-1]["ts"]) == pytest.approx(WALL + 2400)


def test_date_header_rate_windows_and_recorded_times_follow_the_clock(make_api: MakeApi) -> None:
    api = make_api(rate_limit=2, rate_window=3600)
    first = api.get("web")
    assert email.utils.parsedate_to_datetime(first.headers["Date"]).timestamp() == WALL
    assert first.headers["x-ratelimit-reset"] == "3600"
    api.clock.sleep(600)
    second = api.get("web")
    assert email.utils.parsedate_to_datetime(second.headers["Date"]).timestamp() == WALL + 600
    assert second.headers["x-ratelimit-reset"] == "3000"
    spent = api.get("web")
    assert (spent.status_code, spent.headers["Retry-After"]) == (429, "3000")
    api.clock.sleep(3000)
    assert api.get("web").status_code == 200
    assert [r.at - api.emulator.requests[0].at for r in api.emulator.requests] == [
        0,
        600,
        600,
        3600,
    ]


def test_virtual_clock_moves_only_forward() -> None:
    clock = VirtualClock(wall=100.0, monotonic=5.0)
    clock.sleep(2.5)
    clock.sleep(-3)  # a deadline already past: no time passes
    assert (clock.monotonic(), clock.time()) == (7.5, 102.5)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    emulator_clock = clock.clock()
    clock.advance(10)
    assert emulator_clock.now() == 17.5
    assert emulator_clock.wall() == 112.5
    assert emulator_clock.ms(emulator_clock.now()) == 112_500


# The command line


def test_command_line_options_for_the_new_keys(tmp_path: Path) -> None:
    args = parse_args(
        [
            "--outcome",
            "unschedulable",
            "--list-order",
            "shuffled",
            "--log-envelope",
            "logs",
            "--log-window",
            "60",
            "--build-seconds",
            "8",
        ]
    )
    config = configure(args)
    assert (config.list_order, config.log_envelope, config.log_window) == ("shuffled", "logs", 60)
    web = config.projects["demo-project"]["web"]
    assert web.outcome == "unschedulable"
    assert web.phases == {"PENDING": 1.0, "CLONING": 1.6, "BUILDING": 4.0, "UPLOADING": 1.4}
    text = "\n".join(describe(config))
    assert "builds list order: shuffled" in text
    assert "build logs: logs envelope, 60 s range window" in text
    assert re.search(r"web: combined, .* builds unschedulable in 1 s", text)  # PENDING alone
    with pytest.raises(SystemExit):
        parse_args(["--list-order", "by-name"])
