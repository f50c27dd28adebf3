"""Signals at scripted moments, against the hostile API (tests/hostile.py): during a retried start,
a backoff, a slow read, a log follow and the writing of the outputs. Whatever the moment, the
first signal aborts the build that was started, every output is written, and the run exits 130
(SIGINT) or 143 (SIGTERM) without a traceback, well within the runner's 7.5 s before it kills."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hostile import (
    BRANCH,
    SHA,
    HostileApi,
    Run,
    build,
    check,
    hostile_api,
    inputs,
    interrupt,
    json_reply,
    later,
    trickle,
)
from tests.runner import github_env

QUICK = {"GITHUB_SHA": SHA, "GITHUB_REF": f"refs/heads/{BRANCH}"}
TIMEOUT = 20.0
CANCEL_BUDGET = 2.5  # seconds from the signal to the end of the abort (README, cancel.py)


@pytest.fixture
def api() -> Iterator[HostileApi]:
    with hostile_api(polls=10_000) as server:
        yield server


def interrupted(
    tmp_path: Path,
    api: HostileApi,
    ready: Callable[[], bool],
    signum: int = signal.SIGINT,
    extra: dict[str, str] | None = None,
    **changes: str,
) -> Run:
    values = inputs(api.url, timeout=str(int(TIMEOUT)), **changes)
    env = github_env(tmp_path, values, extra={**QUICK, **(extra or {})})
    run, sent = interrupt(env, cwd=tmp_path, ready=ready, timeout=TIMEOUT, signum=signum)
    assert sent is not None, f"no moment came: {[r.endpoint for r in api.requests]}\n{run.text}"
    run.signalled_at = sent
    return run


def aborted(run: Run, api: HostileApi, code: int = 130) -> None:
    """The promise of a signal once a build exists: aborted within CANCEL_BUDGET of the signal
    (long before the runner kills), outputs written, exit 128 + the signal's number."""
    check(run, code=code, timeout=TIMEOUT, api=api, aborted=True)
    [abort] = api.received("DELETE build")
    assert abort.at - run.signalled_at < CANCEL_BUDGET + 0.5, "the abort came too late"
    assert run.outputs.get("result") == "aborted", run.text[-2000:]
    assert run.file_json()["result"] == "aborted"
    assert run.outputs["build-id"] == "hostile-build-1"


def test_sigint_while_a_retried_start_waits_for_its_late_answer_aborts_the_build(
    tmp_path: Path, api: HostileApi
) -> None:
    error = {"error": {"status": 503, "message": "busy", "id": "e503"}}
    # The first start is refused, no build is found, the second creates it and answers after
    # the runner would have killed the step; the list of builds shows it by then.
    api.script(
        "POST build",
        json_reply(error, status=503, headers={"Retry-After": "1"}),
        later(5.0, json_reply({"data": build()})),
    )
    api.script("GET builds", json_reply({"data": {"builds": []}}))
    api.script("GET builds", json_reply({"data": {"builds": [build()]}}))
    run = interrupted(tmp_path, api, lambda: len(api.received("POST build")) >= 2)
    aborted(run, api)


def test_sigint_during_a_backoff_aborts_at_once(tmp_path: Path, api: HostileApi) -> None:
    error = {"error": {"status": 503, "message": "busy", "id": "e503"}}
    api.script("GET build", json_reply(error, status=503, headers={"Retry-After": "5"}))
    run = interrupted(tmp_path, api, lambda: bool(api.received("GET build")))
    aborted(run, api)


def test_sigterm_during_a_slow_read_aborts_at_once(tmp_path: Path, api: HostileApi) -> None:
    api.script("GET build", trickle(b'{"data": {"id": "hostile-build-1"}}' + b" " * 50))
    run = interrupted(tmp_path, api, lambda: bool(api.received("GET build")), signal.SIGTERM)
    aborted(run, api, code=143)


def test_sigint_while_following_a_slow_log_aborts_at_once(tmp_path: Path, api: HostileApi) -> None:
    lines = {"data": [{"ts": "2030-01-01T00:00:01.000Z", "log": "step 1"}]}
    api.script("GET logs", json_reply(lines), later(6.0, json_reply(lines)))
    run = interrupted(tmp_path, api, lambda: len(api.received("GET logs")) >= 2, logs="follow")
    aborted(run, api)


def test_sigint_while_the_outputs_are_written_still_writes_them_all(tmp_path: Path) -> None:
    summary = tmp_path / "summary.fifo"
    os.mkfifo(summary)
    with hostile_api(polls=0) as api:
        signalled = threading.Event()

        def drain() -> None:
            signalled.wait(20)
            time.sleep(0.5)  # the signal is delivered while the program waits to open the FIFO
            with summary.open("rb") as fifo:
                fifo.read()

        threading.Thread(target=drain, daemon=True).start()

        def ready() -> bool:
            # The outputs file is written just before the summary, which blocks on the FIFO.
            written = (tmp_path / "outputs.json").is_file()
            if written:
                signalled.set()
            return written

        run = interrupted(tmp_path, api, ready, extra={"GITHUB_STEP_SUMMARY": str(summary)})
        check(run, code=130, timeout=TIMEOUT, api=api, aborted=False)
        assert run.outputs["result"] == "success"
        assert run.file_json()["result"] == "success"
