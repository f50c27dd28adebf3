"""What the user reads: inputs the runner defaults, typos, addresses and tokens pasted whole, the
words of each CI and code host, and what to do after an API failure. Each test runs the program
against the emulator (or a closed port) and asserts on the requests received, the lines printed
and the exit code."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from northflank_build.signals import Signals
from tests.clock import CLOCK
from tests.conftest import PROJECT, TOKEN, MakeEmulator, api_requests, started_builds
from tests.runner import EVENTS, Result, base_env, github_env, run

PUSH = json.loads((EVENTS / "push.json").read_text(encoding="utf-8"))
PUSH_ENV = {"GITHUB_SHA": PUSH["after"], "GITHUB_REF": PUSH["ref"]}
HEAD = "4a6c8e0f2b4d6e8a0c2e4f6b8d0a2c4e6f8b0d2a"


def action(tmp_path: Path, inputs: dict[str, str], extra: dict[str, str] | None = None) -> Result:
    """The action under `uses:`: the runner sets INPUT_* for every declared input, to
    action.yml's default where `with:` does not name it."""
    from northflank_build.inputs import input_specs, load_action

    values = {spec.name: spec.default for spec in input_specs(load_action())}
    values.update(
        {"api-token": TOKEN, "project-id": PROJECT, "service-id": "api", "poll-interval": "0.1"}
    )
    values.update(inputs)
    env = github_env(tmp_path, values, extra={**PUSH_ENV, **(extra or {})})
    return run(env, tmp=tmp_path)


def plain(tmp_path: Path, variables: dict[str, str], *args: str) -> Result:
    """The program outside any CI, given NORTHFLANK_* variables and flags."""
    env = base_env(tmp_path)
    env.update({"NORTHFLANK_API_TOKEN": TOKEN, "NORTHFLANK_PROJECT_ID": PROJECT, **variables})
    return run(env, *args, tmp=tmp_path)


# -- INPUT_* set to action.yml's default yield to NORTHFLANK_* ----------------------------------


def test_a_northflank_variable_beats_the_runners_default_input(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    # INPUT_WAIT=true and INPUT_API-URL=https://api.northflank.com are the runner's defaults.
    result = action(tmp_path, {}, {"NORTHFLANK_WAIT": "false", "NORTHFLANK_API_URL": emulator.url})
    assert result.code == 0, result.text
    assert result.outputs["result"] == "started"
    assert [r.method for r in api_requests(emulator)] == ["GET", "POST"]


def test_an_input_given_under_with_beats_a_northflank_variable(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(tmp_path, {"api-url": emulator.url, "wait": "false"}, {"NORTHFLANK_WAIT": "1"})
    assert result.code == 0, result.text
    assert result.outputs["result"] == "started"


# -- names no input reads ----------------------------------------------------------------------


def test_a_mistyped_variable_is_named_with_the_likely_one(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    secret = "nf-typo-value-98765"
    result = plain(
        tmp_path,
        {
            "NORTHFLANK_API_URL": emulator.url,
            "NORTHFLANK_SERVICEID": secret,
            "NORTHFLANK_IMAGE": "from a dotenv report of an earlier job",
            "INPUT_WIAT": "false",
        },
        "--service-id", "api", "--branch", "main", "--dry-run", "--service-type", "build",
    )  # fmt: skip
    assert result.code == 0, result.text
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: INPUT_WIAT is not an input or setting of this program (did you mean "
        "INPUT_WAIT?); it is ignored",
        "warning: NORTHFLANK_SERVICEID is not an input or setting of this program (did you mean "
        "NORTHFLANK_SERVICE_ID?); it is ignored",
    ]
    assert secret not in result.text


# -- addresses and tokens pasted whole ---------------------------------------------------------


def test_an_api_url_ending_in_v1_reaches_the_api(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(tmp_path, {"api-url": emulator.url + "/v1/", "wait": "false"})
    assert result.code == 0, result.text
    assert [r.path for r in api_requests(emulator)] == [
        f"/v1/projects/{PROJECT}/services/api",
        f"/v1/projects/{PROJECT}/services/api/build",
    ]


def test_an_api_url_without_a_scheme_on_a_local_host_asks_for_one(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    address = emulator.url.removeprefix("http://")
    result = action(tmp_path, {"api-url": address})
    assert result.code == 2, result.text
    assert f"api-url: has no scheme: write http://{address} for a local server" in result.stdout
    assert emulator.requests == []


def test_https_to_a_plain_http_server_says_so(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    https = emulator.url.replace("http://", "https://")
    result = action(tmp_path, {"api-url": https})
    assert result.code == 3, result.text
    assert f"Check api-url ({https}): the server there does not speak TLS" in result.stdout


def test_a_token_pasted_with_its_bearer_prefix_works(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(tmp_path, {"api-url": emulator.url, "api-token": f"Bearer {TOKEN}"})
    assert result.code == 0, result.text
    assert {r.headers["Authorization"] for r in api_requests(emulator)} == {f"Bearer {TOKEN}"}


# -- each CI's own words -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("action", "raise timeout (timeout: 2s), or do not wait for the build (wait: false)"),
        ("env", "(NORTHFLANK_TIMEOUT=2s), or do not wait for the build (NORTHFLANK_WAIT=false)"),
        ("flags", "raise timeout (--timeout 2s), or do not wait for the build (--no-wait)"),
    ],
)
def test_the_timeout_hint_names_inputs_as_the_run_gives_them(
    tmp_path: Path, make_emulator: MakeEmulator, how: str, words: str
) -> None:
    emulator = make_emulator()
    given = {"api-url": emulator.url, "service-id": "api-slow", "branch": "main"}
    if how == "action":
        result = action(tmp_path, {**given, "timeout": "1"})
    elif how == "env":
        variables = {f"NORTHFLANK_{k.upper().replace('-', '_')}": v for k, v in given.items()}
        result = plain(tmp_path, {**variables, "NORTHFLANK_TIMEOUT": "1"})
    else:
        flags = [part for k, v in given.items() for part in (f"--{k}", v)]
        result = plain(tmp_path, {}, *flags, "--timeout", "1")
    assert result.code == 4, result.text
    assert words in result.text
    if how != "action":
        assert "wait: false" not in result.text


def test_a_missing_token_outside_github_names_the_variable(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    env.update({"GITLAB_CI": "true", "NORTHFLANK_PROJECT_ID": PROJECT})
    env["NORTHFLANK_SERVICE_ID"] = "api"
    result = run(env, tmp=tmp_path)
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "error: api-token: is required: set NORTHFLANK_API_TOKEN from the CI's secret store"
    ]


def test_gitlab_speaks_of_merge_requests(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    gitlab = {
        "GITLAB_CI": "true",
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "7",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": HEAD,
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/login",
        "CI_PROJECT_URL": "https://gitlab.com/acme/api",
    }
    result = plain(
        tmp_path,
        {**gitlab, "NORTHFLANK_API_URL": emulator.url, "NORTHFLANK_SERVICE_ID": "api"},
        "--service-type", "build", "--no-wait",
    )  # fmt: skip
    assert result.code == 0, result.text
    [start] = started_builds(emulator)
    assert start.body == {"pullRequestId": 7, "sha": HEAD}
    assert f"Starting a build of api: merge request !7 at {HEAD[:7]}" in result.stdout
    assert "pull request" not in result.text


# -- after the start: the build may be running --------------------------------------------------


def test_an_api_failure_after_the_start_names_the_build_that_may_be_running(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    emulator.add_faults("GET build", ["status:503"] * 20)
    result = action(tmp_path, {"api-url": emulator.url, "service-type": "build"})
    assert result.code == 3, result.text
    [build] = emulator.builds(PROJECT, "api")
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert "HTTP 503" in error
    assert f"Build {build['id']} was started and may still be running on Northflank" in error
    assert "before starting another" in error
    assert "try again later" not in error
    assert result.outputs["result"] == "error"
    assert result.outputs["build-id"] == build["id"]
    assert len(started_builds(emulator)) == 1


# -- --output-format json: always one object ----------------------------------------------------


def test_json_output_when_the_service_cannot_be_read(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = plain(
        tmp_path,
        {"NORTHFLANK_API_URL": emulator.url},
        "--service-id", "missing", "--output-format", "json",
    )  # fmt: skip
    assert result.code == 3, result.text
    outputs = json.loads(result.stdout)
    assert outputs["result"] == "error"
    assert outputs["api-requests"] == str(len(api_requests(emulator))) == "1"
    assert outputs["error"]["exit-code"] == 3
    assert "HTTP 404" in outputs["error"]["message"]
    assert TOKEN not in result.stdout


def test_json_output_on_invalid_input(tmp_path: Path) -> None:
    result = plain(tmp_path, {}, "--service-id", "api", "--timeout", "soon", "--output-format=json")
    assert result.code == 2
    outputs = json.loads(result.stdout)
    assert outputs["result"] == "error"
    assert outputs["api-requests"] == "0"
    assert outputs["error"] == {
        "message": "timeout: must be a duration such as 900, 900s, 15m, 1h or 1h30m",
        "exit-code": 2,
    }


def test_json_output_when_interrupted_before_the_start(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    emulator.add_faults("GET service", ["status:503"])

    def sleep(seconds: float) -> None:  # the signal comes while the service read waits to retry
        if signals.received is None:
            signals.receive(signal.SIGINT)
        CLOCK.sleep(seconds)

    signals = Signals(sleep)
    env = base_env(tmp_path)
    env.update(
        {
            "NORTHFLANK_API_TOKEN": TOKEN,
            "NORTHFLANK_PROJECT_ID": PROJECT,
            "NORTHFLANK_API_URL": emulator.url,
        }
    )
    args = ("--service-id", "api", "--branch", "main", "--output-format", "json")
    result = run(env, *args, tmp=tmp_path, signals=signals)
    assert result.code == 130, result.text
    outputs = json.loads(result.stdout)
    assert outputs["result"] == "cancelled"
    assert outputs["api-requests"] == "1"
    assert started_builds(emulator) == []
