"""The emulator's build logs as the API serves them: a window, pages with cursors, envelopes.

On a virtual clock, so that a build of 40 minutes logs over 40 minutes in no real time: that is
what shows a range given only its startTime covering 30 minutes, not the whole build.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from northflank_build.emulator import ConfigError, EmulatorConfig, ServiceConfig
from tests.virtual_api import WALL, Api, MakeApi, api_factory, epoch, services

LONG: dict[str, float] = {"PENDING": 30, "CLONING": 90, "BUILDING": 2220, "UPLOADING": 60}
MINUTE = 60.0
Lines = list[dict[str, str]]


@pytest.fixture
def make_api() -> Iterator[MakeApi]:
    with api_factory() as make:
        yield make


def iso(seconds: float) -> str:
    """An API timestamp for epoch seconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def concluded(api: Api, service: str, body: object, seconds: float) -> tuple[str, Lines]:
    """Start a build, let `seconds` pass, and return its id and its whole log."""
    build_id = api.start(service, body)["id"]
    api.clock.sleep(seconds)
    assert api.data(f"{service}/build/{build_id}")["concluded"] is True
    return build_id, api.emulator.log_lines("proj", service, build_id)


def between(lines: Lines, low: float, high: float) -> Lines:
    return [line for line in lines if low <= epoch(line["ts"]) <= high]


@pytest.fixture
def long_build(make_api: MakeApi) -> tuple[Api, str, Lines]:
    """A build of 40 minutes, concluded, with its log of 50 lines spread over them."""
    api = make_api(projects=services(long=ServiceConfig(phases=LONG)))
    build_id, full = concluded(api, "long", {}, 2400)
    assert epoch(full[-1]["ts"]) - epoch(full[0]["ts"]) == pytest.approx(2400)
    assert len(full) == 50
    return api, build_id, full


def test_a_range_from_start_time_alone_covers_thirty_minutes(
    long_build: tuple[Api, str, Lines],
) -> None:
    api, build_id, full = long_build
    query = {"buildId": build_id, "startTime": iso(WALL)}
    tail = api.get("long/build-logs", **query, direction="backward").json()
    assert tail["data"] == between(full, WALL, WALL + 30 * MINUTE)
    assert tail["data"][-1]["log"] != "Image successfully built"
    assert epoch(tail["data"][-1]["ts"]) < WALL + 30 * MINUTE
    assert tail["pagination"] == {"hasNextPage": False}
    ahead = api.data("long/build-logs", **query)
    assert ahead == tail["data"]
    end = iso(WALL + 40 * MINUTE)
    whole = api.data("long/build-logs", **query, endTime=end, direction="backward")
    assert whole == full
    assert whole[-1]["log"] == "Image successfully built"
    assert api.data("long/build-logs", **query, duration=3600) == full
    assert api.data("long/build-logs", **query, duration=600) == between(full, WALL, WALL + 600)


def test_a_range_to_end_time_alone_or_without_times_covers_thirty_minutes(
    long_build: tuple[Api, str, Lines],
) -> None:
    api, build_id, full = long_build
    end = WALL + 40 * MINUTE
    before_end = api.data("long/build-logs", buildId=build_id, endTime=iso(end))
    assert before_end == between(full, end - 30 * MINUTE, end)
    assert before_end[0] != full[0]
    recent = api.data("long/build-logs", buildId=build_id)
    assert recent == before_end  # now is the build's end
    api.clock.sleep(20 * MINUTE)
    later = api.data("long/build-logs", buildId=build_id, direction="backward")
    assert later == between(full, end - 10 * MINUTE, end)
    last_hour = api.data("long/build-logs", buildId=build_id, duration=3600)
    assert last_hour == full
    both = api.get(
        "long/build-logs", buildId=build_id, startTime=iso(WALL), endTime=iso(end), duration=60
    )
    assert both.status_code == 400
    assert "only one of startTime or endTime" in both.json()["error"]["message"]


def test_the_window_is_configurable(make_api: MakeApi) -> None:
    api = make_api(log_window=60, projects=services(long=ServiceConfig(phases=LONG)))
    build_id, full = concluded(api, "long", {}, 2400)
    first_minute = api.data("long/build-logs", buildId=build_id, startTime=iso(WALL))
    assert first_minute == between(full, WALL, WALL + 60)
    with pytest.raises(ConfigError, match="log_window"):
        EmulatorConfig(log_window=0)


@pytest.fixture
def chatty(make_api: MakeApi) -> tuple[Api, str, Lines]:
    """A concluded build of 162 lines served 25 lines an answer at most."""
    phases = {"QUEUED": 10.0, "CLONING": 10.0, "BUILDING": 20.0, "UPLOADING": 10.0}
    chatty = ServiceConfig(phases=phases, log_lines_per_phase=40)
    api = make_api(log_page_limit=25, projects=services(chatty=chatty))
    build_id, full = concluded(api, "chatty", {}, 60)
    assert len(full) == 162
    return api, build_id, full


def pages(api: Api, first: dict[str, Any], **more: Any) -> list[Lines]:
    """Every answer of a range, following its cursor (with `more` on the follow-ups)."""
    answer = api.get("chatty/build-logs", **first).json()
    found = [answer["data"]]
    for _ in range(100):
        if not answer["pagination"]["hasNextPage"]:
            assert "cursor" not in answer["pagination"]
            return found
        cursor = answer["pagination"]["cursor"]
        assert len(cursor) == 24
        answer = api.get("chatty/build-logs", cursor=cursor, **more).json()
        found.append(answer["data"])
    raise AssertionError("the range did not end")


def test_a_long_range_pages_forward_by_cursor(chatty: tuple[Api, str, Lines]) -> None:
    api, build_id, full = chatty
    since = iso(WALL - MINUTE)  # as a client reads a build's log: from before its createdAt
    forward = pages(api, {"buildId": build_id, "startTime": since})
    assert [len(page) for page in forward] == [25] * 6 + [12]
    assert [line for page in forward for line in page] == full  # none twice, none left out
    # The cursor carries the range; a follow-up may name the build and ask for other page sizes.
    smaller = pages(api, {"buildId": build_id, "startTime": since}, buildId=build_id, lineLimit=10)
    assert [len(page) for page in smaller] == [25] + [10] * 13 + [7]
    assert [line for page in smaller for line in page] == full


def test_a_long_range_pages_backward_by_cursor(chatty: tuple[Api, str, Lines]) -> None:
    api, build_id, full = chatty
    backward = pages(api, {"buildId": build_id, "direction": "backward"})
    assert backward[0] == full[-25:]
    assert backward[1] == full[-50:-25]
    assert [line for page in reversed(backward) for line in page] == full


def test_the_cursor_keeps_the_filters(chatty: tuple[Api, str, Lines]) -> None:
    api, build_id, full = chatty
    steps = pages(api, {"buildId": build_id, "textIncludes": "Step ", "lineLimit": 4})
    assert len(steps) > 1
    assert [line for page in steps for line in page] == [
        line for line in full if "Step " in line["log"]
    ]


def test_a_cursor_goes_on_into_lines_logged_after_it(make_api: MakeApi) -> None:
    api = make_api()
    build_id = api.start("web", {})["id"]
    since = iso(WALL - MINUTE)  # the range ends 29 minutes from now: lines are still to come
    first = api.get("web/build-logs", buildId=build_id, startTime=since, lineLimit=2).json()
    assert first["pagination"]["hasNextPage"] is True  # the first burst has 3 lines or more
    api.clock.sleep(10)
    rest = api.data("web/build-logs", cursor=first["pagination"]["cursor"])
    full = api.emulator.log_lines("proj", "web", build_id)
    assert first["data"] + rest == full
    assert rest[-1]["log"] == "Image successfully built"
    # A range without times ends when it was asked for: later lines belong to another range.
    second = api.start("web", {})["id"]
    asked = api.clock.time()
    now = api.get("web/build-logs", buildId=second, lineLimit=2).json()
    api.clock.sleep(10)
    rest = api.data("web/build-logs", cursor=now["pagination"]["cursor"])
    full = api.emulator.log_lines("proj", "web", second)
    assert now["data"] + rest == between(full, asked - 30 * MINUTE, asked)
    assert len(rest) < len(full) - 2


def test_bad_cursors_are_400(make_api: MakeApi) -> None:
    api = make_api()
    web = api.start("web", {})["id"]
    api_build = api.start("api", {"branch": "main"})["id"]
    api.clock.sleep(10)
    cursor = api.get("web/build-logs", buildId=web, lineLimit=1).json()["pagination"]["cursor"]
    for path, query in (
        ("web/build-logs", {"cursor": "z" * 24}),
        ("api/build-logs", {"cursor": cursor}),
        ("web/build-logs", {"cursor": cursor, "buildId": api_build}),
    ):
        answer = api.get(path, **query)
        assert answer.status_code == 400
        assert "cursor is not valid" in answer.json()["error"]["message"]
    assert api.get("web/build-logs", cursor=cursor, buildId=web).status_code == 200
    assert api.get("web/build-logs").status_code == 400  # neither buildId nor cursor


@pytest.mark.parametrize(
    ("envelope", "shape"),
    [
        ("list", lambda lines: lines),
        ("logs", lambda lines: {"logs": lines}),
        ("data", lambda lines: {"data": lines}),
        ("unknown", lambda lines: {"entries": lines}),
    ],
)
def test_log_envelopes(make_api: MakeApi, envelope: str, shape: Any) -> None:
    api = make_api(log_envelope=envelope)
    build_id = api.start("web", {})["id"]
    api.clock.sleep(10)
    full = api.emulator.log_lines("proj", "web", build_id)
    answer = api.get("web/build-logs", buildId=build_id, lineLimit=5).json()
    assert answer["data"] == shape(full[:5])
    assert answer["pagination"]["hasNextPage"] is True
    with pytest.raises(ConfigError, match="log_envelope"):
        EmulatorConfig(log_envelope="xml")  # type: ignore[arg-type]
