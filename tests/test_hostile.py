"""The program against a hostile API, hostile inputs and awkward timing (tests/hostile.py).

Each case runs under hard limits of time and memory and checks the promise: the exit code, no
traceback, the end within `timeout` plus a grace, no secret shown in any form, the abort sent
when one is due."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostile import (
    BRANCH,
    SHA,
    HostileApi,
    Run,
    answer,
    build,
    check,
    endless_chunked,
    gzip_bomb,
    hostile_api,
    html,
    huge,
    inputs,
    reset,
    run_program,
    trickle,
    trickle_head,
    truncated,
)
from tests.runner import github_env

QUICK = {"NORTHFLANK_RETRY_BASE": "0.01", "GITHUB_SHA": SHA, "GITHUB_REF": f"refs/heads/{BRANCH}"}
MIB = 1 << 20


@pytest.fixture
def api() -> Iterator[HostileApi]:
    with hostile_api() as server:
        yield server


def hostile_run(
    tmp_path: Path, api: HostileApi, *, extra: dict[str, str] | None = None, **changes: str
) -> Run:
    values = inputs(api.url, **changes)
    env = github_env(tmp_path, values, extra={**QUICK, **(extra or {})})
    return run_program(env, cwd=tmp_path, timeout=float(values["timeout"]))


def succeeded(run: Run) -> None:
    assert run.outputs.get("result") == "success", run.text[-2000:]
    assert run.file_json()["result"] == "success"


# -- answers that never end, or end too big ----------------------------------------------------


def test_a_body_sent_one_byte_every_two_seconds_ends_by_the_timeout(
    tmp_path: Path, api: HostileApi
) -> None:
    api.script("GET build", trickle(b'{"data": {"id": "hostile-build-1"}}' + b" " * 100))
    run = hostile_run(tmp_path, api, timeout="6")
    check(run, code=3, timeout=6, api=api)
    assert "not complete within" in run.stdout


def test_headers_sent_one_byte_every_two_seconds_end_by_the_timeout(
    tmp_path: Path, api: HostileApi
) -> None:
    api.script("GET build", trickle_head())
    run = hostile_run(tmp_path, api, timeout="6")
    check(run, code=3, timeout=6, api=api)


def test_an_endless_chunked_body_is_cut_at_the_size_bound_and_read_again(
    tmp_path: Path, api: HostileApi
) -> None:
    api.script("GET build", endless_chunked())
    run = hostile_run(tmp_path, api)
    check(run, code=0, timeout=8, api=api)
    succeeded(run)
    assert "larger than 8 MiB" in run.stdout


@pytest.mark.parametrize("declared", [True, False], ids=["with-length", "until-close"])
def test_a_body_of_three_gigabytes_is_refused_without_reading_it_all(
    tmp_path: Path, api: HostileApi, declared: bool
) -> None:
    api.script("GET build", huge(3 << 30, declared=declared))
    run = hostile_run(tmp_path, api)
    check(run, code=0, timeout=8, api=api)
    succeeded(run)
    assert "larger than 8 MiB" in run.stdout


def test_a_gzip_bomb_is_refused_at_the_decompressed_size_bound(
    tmp_path: Path, api: HostileApi
) -> None:
    api.script("GET build", gzip_bomb(4 << 30))
    run = hostile_run(tmp_path, api)
    check(run, code=0, timeout=8, api=api)
    succeeded(run)
    assert "larger than 8 MiB" in run.stdout


# -- answers that are not what they claim --------------------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [100_000, 200])
def test_json_nested_too_deep_is_a_malformed_answer(
    tmp_path: Path, api: HostileApi, depth: int
) -> None:
    body = b'{"data": {"id": "hostile-build-1", "x": ' + nested(depth) + b"}}"
    api.script("GET build", *[answer(200, body)] * 20)
    run = hostile_run(tmp_path, api)
    check(run, code=3, timeout=8, api=api)
    assert "nested deeper than 64 levels" in run.stdout
    assert run.outputs["result"] == "error"


@pytest.mark.parametrize(
    "reply",
    [
        answer(200, b'{"data": {"id": "x", "status": '),
        answer(200, b"\xff\xfe not text"),
        answer(200, b'{"data": NaN}'),
        answer(200, b"[1, 2, 3]"),
        truncated({"data": build(status="BUILDING")}),
        reset(),
    ],
    ids=["cut-json", "not-utf8", "nan", "a-list", "truncated", "reset"],
)
def test_a_malformed_answer_is_read_again_and_never_a_traceback(
    tmp_path: Path, api: HostileApi, reply: Any
) -> None:
    api.script("GET build", reply)
    run = hostile_run(tmp_path, api)
    check(run, code=0, timeout=8, api=api)
    succeeded(run)
    assert len(api.received("GET build")) >= 3


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{{{", "not a JSON object (it is not JSON)"),
        (b'{"data": "text"}', "without a data object"),
    ],
)
def test_a_malformed_answer_every_time_is_one_api_error(
    tmp_path: Path, api: HostileApi, body: bytes, says: str
) -> None:
    api.script("GET build", *[answer(200, body)] * 30)
    run = hostile_run(tmp_path, api)
    check(run, code=3, timeout=8, api=api)
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, run.stdout
    assert says in errors[0]
    assert run.outputs["result"] == "error"


# -- error pages --------------------------------------------------------------------------------

TITLES = "<title>" * (MIB // 7)


@pytest.mark.parametrize(
    ("page", "gist"),
    [
        (TITLES, ""),
        ("<" * MIB, ""),
        ("<html><title>Bad gateway</title>" + "<p>x" * 200_000 + "</html>", "Bad gateway"),
    ],
    ids=["a-megabyte-of-title-tags", "a-megabyte-of-less-than", "a-long-page"],
)
def test_an_html_error_page_of_a_megabyte_is_read_in_linear_time(
    tmp_path: Path, api: HostileApi, page: str, gist: str
) -> None:
    api.script("GET build", html(502, page))
    run = hostile_run(tmp_path, api)
    check(run, code=0, timeout=8, api=api)
    succeeded(run)
    [notice] = [line for line in run.stdout.splitlines() if line.startswith("GET ")]
    assert "HTTP 502" in notice
    assert gist in notice


def test_a_refusal_as_an_html_page_names_its_title(tmp_path: Path, api: HostileApi) -> None:
    api.script("POST build", html(403, "<html><head><title>Forbidden by proxy</title></head>"))
    run = hostile_run(tmp_path, api)
    check(run, code=3, timeout=8, api=api)
    [error] = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert "Forbidden by proxy" in error
    assert "HTTP 403" in error
