"""Bad input: exit 2, one error line that names the input, and no request sent to the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from northflank_build.emulator import Emulator, EmulatorConfig
from tests.clock import CLOCK
from tests.conftest import PROJECT, TOKEN, fast_world
from tests.runner import base_env, github_env, run

# (case, input changes, the input the error line must name). One bad input per case.
CASES: list[tuple[str, dict[str, str], str]] = [
    ("short sha", {"sha": "abc123"}, "sha"),
    ("non-hex sha", {"sha": "g" * 40}, "sha"),
    ("sha of 41 characters", {"sha": "a" * 41}, "sha"),
    ("sha with a space", {"sha": "a" * 20 + " " + "a" * 19}, "sha"),
    ("branch and pull request", {"branch": "main", "pull-request-id": "4"}, "branch"),
    ("branch with a space", {"branch": "my branch"}, "branch"),
    ("branch with a colon", {"branch": "a:b"}, "branch"),
    ("relative dockerfile-path", {"dockerfile-path": "Dockerfile"}, "dockerfile-path"),
    ("dockerfile-path with a space", {"dockerfile-path": "/my file"}, "dockerfile-path"),
    ("dockerfile-path ending in /", {"dockerfile-path": "/docker/"}, "dockerfile-path"),
    ("relative docker-work-dir", {"docker-work-dir": "services/api"}, "docker-work-dir"),
    ("dockerfile-target with a space", {"dockerfile-target": "my stage"}, "dockerfile-target"),
    ("dockerfile-target with a slash", {"dockerfile-target": "a/b"}, "dockerfile-target"),
    ("build-arguments not YAML", {"build-arguments": "{not: yaml"}, "build-arguments"),
    ("build-arguments a list", {"build-arguments": "- A\n- B"}, "build-arguments"),
    ("build-arguments nested", {"build-arguments": "A: {b: c}"}, "build-arguments"),
    ("build-arguments a scalar", {"build-arguments": "just words"}, "build-arguments"),
    ("build-arguments list value", {"build-arguments": "A: [1, 2]"}, "build-arguments"),
    ("token an unexpanded variable", {"api-token": "$(NORTHFLANK_API_TOKEN)"}, "api-token"),
    ("build-files relative path", {"build-files": "app/.npmrc: x"}, "build-files"),
    ("build-files missing file", {"build-files": "/app/x: {file: nope.txt}"}, "build-files"),
    ("build-files a scalar", {"build-files": "just text"}, "build-files"),
    ("build-files list value", {"build-files": "/app/x: [1, 2]"}, "build-files"),
    ("build-files unknown key", {"build-files": "/app/x: {path: a}"}, "build-files"),
    ("build-files not YAML", {"build-files": "/app/x: 'unclosed"}, "build-files"),
    ("build-files double slash", {"build-files": "//app/x: y"}, "build-files"),
    ("secret mount bad id", {"docker-secret-mounts": "bad id: x"}, "docker-secret-mounts"),
    ("secret mount a list", {"docker-secret-mounts": "- x"}, "docker-secret-mounts"),
    ("unknown service-type", {"service-type": "lambda"}, "service-type"),
    ("timeout words", {"timeout": "soon"}, "timeout"),
    ("timeout zero", {"timeout": "0"}, "timeout"),
    ("timeout negative", {"timeout": "-5"}, "timeout"),
    ("timeout unknown unit", {"timeout": "10x"}, "timeout"),
    ("timeout over a week", {"timeout": "200h"}, "timeout"),
    ("timeout half-written", {"timeout": "1h30"}, "timeout"),
    ("http api-url elsewhere", {"api-url": "http://example.com"}, "api-url"),
    ("http api-url on a private address", {"api-url": "http://10.0.0.1:8080"}, "api-url"),
    ("ftp api-url", {"api-url": "ftp://api.northflank.com"}, "api-url"),
    ("api-url with credentials", {"api-url": "https://u:p@api.northflank.com"}, "api-url"),
    ("api-url with a query", {"api-url": "https://api.northflank.com/?x=1"}, "api-url"),
    ("missing token", {"api-token": ""}, "api-token"),
    ("token with a space", {"api-token": "abc def"}, "api-token"),
    ("token with a line break", {"api-token": "abc\ndef"}, "api-token"),
    ("missing project-id", {"project-id": ""}, "project-id"),
    ("project-id with dots", {"project-id": "../x"}, "project-id"),
    ("project-id with a slash", {"project-id": "a/b"}, "project-id"),
    ("missing service-id", {"service-id": ""}, "service-id"),
    ("service-id with a query", {"service-id": "svc?x=1"}, "service-id"),
    ("team-id with a space", {"team-id": "acme team"}, "team-id"),
    ("pull-request-id words", {"pull-request-id": "abc"}, "pull-request-id"),
    ("pull-request-id zero", {"pull-request-id": "0"}, "pull-request-id"),
    ("pull-request-id negative", {"pull-request-id": "-3"}, "pull-request-id"),
    ("wait maybe", {"wait": "maybe"}, "wait"),
    ("dry-run sentence", {"dry-run": "yes please"}, "dry-run"),
    ("ci-context number", {"ci-context": "2"}, "ci-context"),
    ("unknown logs mode", {"logs": "verbose"}, "logs"),
    ("poll-interval words", {"poll-interval": "fast"}, "poll-interval"),
    ("poll-interval zero", {"poll-interval": "0"}, "poll-interval"),
    ("abort-on-cancel word", {"abort-on-cancel": "nope"}, "abort-on-cancel"),
    ("abort-on-timeout word", {"abort-on-timeout": "x"}, "abort-on-timeout"),
    ("fail-on-build-failure word", {"fail-on-build-failure": "?"}, "fail-on-build-failure"),
    ("summary word", {"summary": "sometimes"}, "summary"),
    ("outputs-file in a missing folder", {"outputs-file": "/no/such/dir/o.json"}, "outputs-file"),
    ("bundle-url not a URL", {"bundle-url": "not a url"}, "bundle-url"),
    ("bundle with a pull request", {"bundle-url": "https://x.test/b", "pull-request-id": "3"},
     "pull-request-id"),
    ("combined service with a branch", {"service-type": "combined", "branch": "main"}, "branch"),
    ("combined service with a pull request", {"service-type": "combined", "pull-request-id": "7"},
     "pull-request-id"),
    ("build service without a target", {"service-type": "build", "ci-context": "false"}, "branch"),
    ("api-url with a fragment", {"api-url": "https://api.northflank.com/#x"}, "api-url"),
    ("api-url with a port out of range", {"api-url": "https://api.northflank.com:99999"},
     "api-url"),
    ("api-url with a space in the host", {"api-url": "https://api.north flank.com"}, "api-url"),
    ("api-url without a host", {"api-url": "https://"}, "api-url"),
    ("api-url on loopback without a scheme", {"api-url": "127.0.0.1:8080"}, "api-url"),
    ("api-url on localhost without a scheme", {"api-url": "localhost:8080/v1"}, "api-url"),
    ("bundle revision on two lines", {"bundle-url": "https://x.test/b", "sha": "v1\nv2"}, "sha"),
    ("api-url with a broken IPv6 host", {"api-url": "https://[::1"}, "api-url"),
    ("http api-url on 0.0.0.0", {"api-url": "http://0.0.0.0:8080"}, "api-url"),
    ("http api-url on a look-alike of localhost", {"api-url": "http://localhost.example.com"},
     "api-url"),
    ("token with a non-ASCII character", {"api-token": "tok\u20acn-123456"}, "api-token"),
    ("token with a control character", {"api-token": "tok\x01en-123456"}, "api-token"),
    ("project-id in full-width letters", {"project-id": "\uff44\uff45\uff4d\uff4f"},
     "project-id"),
    ("branch with a control character", {"branch": "a\x07b"}, "branch"),
    ("timeout in days", {"timeout": "2d"}, "timeout"),
    ("timeout of fifty digits", {"timeout": "9" * 50}, "timeout"),
    ("poll-interval nan", {"poll-interval": "nan"}, "poll-interval"),
    ("build-arguments lone surrogate", {"build-arguments": '{"A": "\\ud800"}'},
     "build-arguments"),
    ("build-arguments nested 5000 deep", {"build-arguments": "{" * 5000}, "build-arguments"),
    ("build-files file is a folder", {"build-files": "/app/x: {file: .}"}, "build-files"),
    ("build-files lone surrogate", {"build-files": '{"/app/x": "\\udc80"}'}, "build-files"),
    ("secret mount file missing", {"docker-secret-mounts": "m: {file: missing.txt}"},
     "docker-secret-mounts"),
    ("outputs-file is a folder", {"outputs-file": "."}, "outputs-file"),
    ("service-type deployment", {"service-type": "deployment"}, "service-type"),
    # Settings outside action.yml, read from the environment as they are named.
    ("read timeout not a number", {"NORTHFLANK_READ_TIMEOUT": "soon"}, "NORTHFLANK_READ_TIMEOUT"),
    ("CA bundle missing", {"REQUESTS_CA_BUNDLE": "/no/such/ca.pem"}, "REQUESTS_CA_BUNDLE"),
]  # fmt: skip


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    config = EmulatorConfig(token=TOKEN, projects=fast_world())
    with Emulator(config, clock=CLOCK.emulator_clock()) as emulator:
        emulator.start()
        yield emulator


@pytest.mark.parametrize(("change", "name"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_any_request(
    tmp_path: Path, emulator: Emulator, change: dict[str, str], name: str
) -> None:
    before = len(emulator.requests)
    inputs = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api",
        "api-url": emulator.url,
        **{k: v for k, v in change.items() if not k.isupper()},
    }
    env = github_env(
        tmp_path,
        inputs,
        extra={
            "GITHUB_SHA": "a" * 40,
            "GITHUB_REF": "refs/heads/main",
            **{k: v for k, v in change.items() if k.isupper()},
        },
    )
    result = run(env, tmp=tmp_path)
    assert result.code == 2, result.text
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, result.text
    assert errors[0].startswith(f"::error title=Invalid input::{name}"), errors[0]
    assert "Traceback" not in result.text
    assert len(emulator.requests) == before


def test_the_case_table_is_large_and_distinct() -> None:
    assert len(CASES) >= 80
    assert len({c[0] for c in CASES}) == len(CASES)


def test_outside_github_errors_are_plain_lines(tmp_path: Path, emulator: Emulator) -> None:
    env = base_env(tmp_path)
    env.update({"NORTHFLANK_API_TOKEN": TOKEN, "NORTHFLANK_PROJECT_ID": PROJECT})
    result = run(env, "--service-id", "api", "--timeout", "soon", "--api-url", emulator.url)
    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: timeout: must be a duration such as 900, 900s, 15m, 1h or 1h30m"
    ]


def test_variable_names_are_given_where_the_user_used_them(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    env.update(
        {"NF_API_TOKEN": TOKEN, "NORTHFLANK_PROJECT_ID": PROJECT, "NORTHFLANK_SERVICE_ID": "a b"}
    )
    result = run(env)
    assert result.code == 2
    assert result.stderr.startswith("error: service-id (from NORTHFLANK_SERVICE_ID): ")


def test_an_unknown_flag_is_an_input_error(tmp_path: Path) -> None:
    result = run(base_env(tmp_path), "--colour", "red")
    assert result.code == 2
    assert "unrecognized arguments: --colour" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_mistyped_flag_never_echoes_its_value(tmp_path: Path) -> None:
    result = run(
        base_env(tmp_path), "--api-tokn", "nf-mistyped-secret-0042", "--colour=nf-secret-0043"
    )
    assert result.code == 2
    assert "unrecognized arguments: --api-tokn --colour (see --help)" in result.stderr
    assert "nf-mistyped-secret-0042" not in result.text
    assert "nf-secret-0043" not in result.text, "nor the value after an ="


def test_build_arguments_keep_yaml_values_as_written(tmp_path: Path, emulator: Emulator) -> None:
    env = base_env(tmp_path)
    env.update({"NORTHFLANK_API_TOKEN": TOKEN, "NORTHFLANK_PROJECT_ID": PROJECT})
    arguments = "TIME: 1:20\nFLAG: yes\nOCTAL: 010\nEMPTY: ''\nQUOTED: 'a: b'"
    result = run(
        env,
        *("--service-id", "api", "--service-type", "build", "--branch", "main"),
        *("--api-url", emulator.url, "--dry-run", "--output-format", "json"),
        *("--build-arguments", arguments),
    )
    assert result.code == 0, result.text
    body = json.loads(result.stdout)["request"]["body"]
    assert body["overrides"]["buildArguments"] == {
        "TIME": "1:20",
        "FLAG": "yes",
        "OCTAL": "010",
        "EMPTY": "",
        "QUOTED": "a: b",
    }
