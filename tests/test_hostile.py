"""The program against a hostile API, hostile inputs and awkward timing (tests/hostile.py).

Each case runs under hard limits of time and memory and checks the promise: the exit code, no
traceback, the end within `timeout` plus a grace, no secret shown in any form, the abort sent
when one is due."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from northflank_build.console import LINE_LIMIT
from northflank_build.settings import parse_build_arguments
from tests.conftest import TOKEN
from tests.hostile import (
    BRANCH,
    FINISHED,
    GRACE,
    SHA,
    HostileApi,
    Run,
    answer,
    build,
    check,
    clean_terminal,
    echo,
    endless_chunked,
    finish,
    gzip_bomb,
    hostile_api,
    html,
    huge,
    inputs,
    json_reply,
    reset,
    run_program,
    start,
    trickle,
    trickle_head,
    truncated,
)
from tests.runner import base_env, github_env

QUICK = {"GITHUB_SHA": SHA, "GITHUB_REF": f"refs/heads/{BRANCH}"}
MIB = 1 << 20


@pytest.fixture
def api() -> Iterator[HostileApi]:
    with hostile_api() as server:
        yield server


def hostile_run(tmp_path: Path, api: HostileApi, **changes: str) -> Run:
    """A run of the program on GitHub against api, with these inputs changed."""
    values = inputs(api.url, **changes)
    env = github_env(tmp_path, values, extra=QUICK)
    timeout = float(values["timeout"])
    return run_program(env, cwd=tmp_path, timeout=timeout, files=[values["outputs-file"]])


def succeeded(run: Run) -> None:
    assert run.outputs.get("result") == "success", run.text[-2000:]
    assert run.file_json()["result"] == "success"


# -- answers that never end, or end too big ----------------------------------------------------


def test_a_body_sent_one_byte_every_two_seconds_ends_by_the_timeout(
    tmp_path: Path, api: HostileApi
) -> None:
    api.script("GET build", trickle(b'{"data": {"id": "hostile-build-1"}}' + b" " * 100))
    run = hostile_run(tmp_path, api, timeout="3")
    check(run, code=3, timeout=3, api=api)
    assert "not complete within" in run.stdout


def test_headers_sent_one_byte_every_two_seconds_end_by_the_timeout(
    tmp_path: Path, api: HostileApi
) -> None:
    api.script("GET build", trickle_head())
    run = hostile_run(tmp_path, api, timeout="3")
    check(run, code=3, timeout=3, api=api)


TOO_LARGE = {
    "an endless chunked body": endless_chunked(),
    "3 GB with its Content-Length": huge(3 << 30),
    "3 GB until the connection closes": huge(3 << 30, declared=False),
    "a gzip bomb of 4 GB": gzip_bomb(4 << 30),
}


def test_an_answer_too_large_in_any_way_is_dropped_at_8_mib_and_read_again(
    tmp_path: Path, api: HostileApi
) -> None:
    api.script("GET build", *TOO_LARGE.values())
    run = hostile_run(tmp_path, api)
    check(run, code=0, timeout=8, api=api)
    succeeded(run)
    assert run.stdout.count("the answer was larger than 8 MiB: trying again") == len(TOO_LARGE)


# -- answers that are not what they claim --------------------------------------------------------


def nested(depth: int) -> bytes:
    return b'{"data": {"id": "hostile-build-1", "x": ' + b"[" * depth + b"]" * depth + b"}}"


def test_json_nested_too_deep_is_a_malformed_answer(tmp_path: Path, api: HostileApi) -> None:
    api.script("GET build", *[answer(200, nested(depth)) for depth in (100_000, 65)] * 10)
    run = hostile_run(tmp_path, api)
    check(run, code=3, timeout=8, api=api)
    assert "nested deeper than 64 levels" in run.stdout
    assert run.outputs["result"] == "error"


MALFORMED = {
    "cut JSON": answer(200, b'{"data": {"id": "x", "status": '),
    "not UTF-8": answer(200, b"\xff\xfe not text"),
    "NaN": answer(200, b'{"data": NaN}'),
    "a list": answer(200, b"[1, 2, 3]"),
    "truncated": truncated({"data": build(status="BUILDING")}),
    "reset": reset(),
}


def test_a_malformed_answer_is_read_again_and_never_a_traceback(
    tmp_path: Path, api: HostileApi
) -> None:
    api.script("GET build", *MALFORMED.values())
    # The retry policy gives up on a backoff that would end past timeout: with seven retries in a
    # row its backoffs may add up to 30 s, though the quick run sleeps 0.25 s at most of each.
    run = hostile_run(tmp_path, api, timeout="60")
    check(run, code=0, timeout=60, api=api)
    succeeded(run)
    assert run.stdout.count(": trying again in") == len(MALFORMED)


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

PAGES = [
    "<title>" * (MIB // 7),
    "<" * MIB,
    "<html><title>Bad gateway</title>" + "<p>x" * 200_000 + "</html>",
]


def test_html_error_pages_of_a_megabyte_are_read_in_linear_time(
    tmp_path: Path, api: HostileApi
) -> None:
    api.script("GET build", *[html(502, page) for page in PAGES])
    run = hostile_run(tmp_path, api)
    check(run, code=0, timeout=8, api=api)
    succeeded(run)
    notices = [line for line in run.stdout.splitlines() if line.startswith("GET ")]
    assert len(notices) == len(PAGES)
    assert all("HTTP 502" in notice for notice in notices)
    assert all(len(notice) <= LINE_LIMIT for notice in notices), "cut after masking"
    assert "characters left out" in notices[1]
    assert "Bad gateway (HTTP 502)" in notices[2]


def test_a_refusal_as_an_html_page_names_its_title(tmp_path: Path, api: HostileApi) -> None:
    api.script("POST build", html(403, "<html><head><title>Forbidden by proxy</title></head>"))
    run = hostile_run(tmp_path, api)
    check(run, code=3, timeout=8, api=api)
    [error] = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert "Forbidden by proxy" in error
    assert "HTTP 403" in error


# -- what reaches the terminal ------------------------------------------------------------------

HOSTILE_TEXT = (
    "\x1b[31mred\x1b[0m \x1b]0;owned title\x07 \x1b]8;;https://evil.example\x1b\\a link"
    "\x1b]8;;\x1b\\ \x9b2J\x07 \x1b[2J\x1b[H\x1bc \x00\x08 ::error::injected ##[warning]injected"
    " ##vso[task.complete result=Succeeded] <img src=https://evil.example/x.png>"
    " [a link](https://evil.example) \u202eerusolcxe\u202c\r::warning::after a carriage return"
)


def test_escape_sequences_and_commands_in_every_api_text_never_reach_the_terminal(
    tmp_path: Path,
) -> None:
    # Every text the program shows; a time that is not one is a malformed answer (exit 3).
    hostile = dict.fromkeys(("status", "message", "branch"), HOSTILE_TEXT)
    final = {**hostile, "concluded": True, "success": False, "registry": {"uri": HOSTILE_TEXT}}
    with hostile_api(final=final) as api:
        api.script("POST build", json_reply({"data": build(**hostile)}))
        lines = [{"ts": "2030-01-01T00:00:01.000Z", "log": f"error: {HOSTILE_TEXT}"}] * 3
        api.script("GET logs", json_reply({"data": lines}))
        run = hostile_run(tmp_path, api, logs="on-failure")
        check(run, code=1, timeout=8, api=api)
        clean_terminal(run)
        assert "red " in run.stdout, "the text around the escapes is kept"
        assert run.outputs["result"] == "failure"
        assert api.received("GET logs")


def test_escape_sequences_never_reach_the_terminal_of_another_ci(tmp_path: Path) -> None:
    with hostile_api(final={**FINISHED_FAILED, "message": HOSTILE_TEXT}) as api:
        env = plain_env(tmp_path, api, NORTHFLANK_STATUS_NOTE="x")
        run = run_program(env, cwd=tmp_path, timeout=8)
        check(run, code=1, timeout=8, api=api)
        clean_terminal(run)
        assert "error:" in run.stderr


FINISHED_FAILED = {"status": "FAILURE", "concluded": True, "success": False, "message": "failed"}


def plain_env(tmp_path: Path, api: HostileApi, **extra: str) -> dict[str, str]:
    """The environment of a CI without commands: NORTHFLANK_* variables only."""
    env = base_env(tmp_path)
    for name, value in inputs(api.url).items():
        env["NORTHFLANK_" + name.upper().replace("-", "_")] = value
    env.update({"NORTHFLANK_SHA": SHA, "NORTHFLANK_BRANCH": BRANCH, **QUICK, **extra})
    return env


def read_until(process: subprocess.Popen[bytes], marker: bytes, wait: float = 20.0) -> bytes:
    """What the program printed on stdout up to the line holding marker."""
    assert process.stdout is not None
    seen = b""
    end = time.monotonic() + wait
    while marker not in seen and time.monotonic() < end:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
    assert marker in seen, seen
    return seen


@pytest.mark.parametrize("github", [True, False], ids=["github", "other-ci"])
def test_a_closed_log_pipe_neither_raises_nor_keeps_the_abort_or_the_outputs_from_happening(
    tmp_path: Path, github: bool
) -> None:
    with hostile_api(polls=10_000) as api:
        if github:
            env = github_env(tmp_path, inputs(api.url), extra=QUICK)
            err: Any = subprocess.STDOUT  # the runner reads one pipe for both
        else:
            env = plain_env(tmp_path, api)
            err = (tmp_path / "stderr.txt").open("wb")
        started = time.monotonic()
        process = start(env, cwd=tmp_path, stderr=err)
        read_until(process, b"started")
        assert process.stdout is not None
        process.stdout.close()  # the CI's log reader is gone
        process.stdout = None
        api.wait_for("GET build", 3)  # (on a2ce7ce the run has died of the closed pipe by then)
        process.send_signal(signal.SIGTERM)
        run = finish(process, env, cwd=tmp_path, limit=8 + GRACE + 10, started=started)
        if not github:
            err.close()
            run.stderr = (tmp_path / "stderr.txt").read_text(encoding="utf-8", errors="replace")
        check(run, code=143, timeout=8, api=api, aborted=True)
        assert run.file_json()["result"] == "aborted"
        if github:
            assert run.outputs["result"] == "aborted"
            assert "aborted" in run.summary


# -- secrets ------------------------------------------------------------------------------------


def test_an_api_error_echoing_a_secret_files_base64_shows_no_piece_of_it(
    tmp_path: Path, api: HostileApi
) -> None:
    content = "".join(f"line {n} {secrets.token_hex(16)}\n" for n in range(60))
    (tmp_path / "big.txt").write_text(content, encoding="utf-8")
    api.script("POST build", echo(400))
    run = hostile_run(tmp_path, api, build_files="/app/big.txt: {file: big.txt}")
    check(run, code=3, timeout=8, api=api, secrets=[TOKEN, content])
    assert "invalid body" in run.stdout
    assert base64.b64encode(content.encode()).decode() in api.requests[0].body.decode()


def test_secret_lines_the_api_quotes_json_escaped_or_url_encoded_are_hidden(
    tmp_path: Path, api: HostileApi
) -> None:
    line = 'pa"ss\\word-é-' + secrets.token_hex(8)
    echoed = f"bad value {json.dumps(line)} or {quote(line, safe='')} or {json.dumps(line)[1:-1]}"
    api.final["message"] = echoed
    run = hostile_run(
        tmp_path, api, docker_secret_mounts=json.dumps({"m": f"first\n{line}\nlast-line-x"})
    )
    check(run, code=0, timeout=8, api=api, secrets=[TOKEN, line])
    assert "bad value" in run.stdout


# The rule (README, masking.py): 8 characters or more hidden anywhere; 3 to 7 hidden as a whole
# word; shorter ones, those without a letter or digit and the common words never hidden.
SHORT_TOKEN = "tho"  # inside "method": a mask there would break the outputs' keys
HIDDEN_ANYWHERE = "s3cret-line-" + "7" * 4
HIDDEN_AS_WORD = ["k3y", "hunter2", 'p"w!']
SHOWN = ["true", "}", "ab", "null"]


def test_the_masking_rule_hides_each_secret_line_in_every_form_and_keeps_outputs_readable(
    tmp_path: Path, api: HostileApi
) -> None:
    lines = [HIDDEN_ANYWHERE, *HIDDEN_AS_WORD, *SHOWN]
    words = [SHORT_TOKEN, *HIDDEN_AS_WORD]
    quoted = [f"{json.dumps(w)[1:-1]} {quote(w, safe='')}" for w in words]
    api.final["message"] = " | ".join(
        [f"echo {word} and {word}ish" for word in [*lines, SHORT_TOKEN]] + quoted
    )
    api.final["status"] = "SUCCESS"
    run = hostile_run(
        tmp_path,
        api,
        api_token=SHORT_TOKEN,
        docker_secret_mounts=json.dumps({"m": "\n".join(lines)}),
        outputs_file="outputs.env",
    )
    check(run, code=0, timeout=8, api=api, secrets=[HIDDEN_ANYWHERE])
    texts = {"stdout": run.stdout, "GITHUB_OUTPUT": run.outputs_text, **run.files}
    shown = {where: "\n".join(_without_masks(text)) for where, text in texts.items()}
    for where, text in shown.items():
        for word in words:
            for form in {word, json.dumps(word)[1:-1], quote(word, safe="")}:
                standing_alone = rf"(?<!\w){re.escape(form)}(?!\w)"
                assert re.search(standing_alone, text) is None, (where, form, text)
        assert HIDDEN_ANYWHERE[:8] not in text, where
    message = run.outputs["message"]
    for word in SHOWN:
        assert f"echo {word} and {word}ish" in message, "lines the rule leaves alone are shown"
    for word in words:
        assert f"{word}ish" in message, "a short secret is never hidden inside a longer word"
    assert (run.outputs["result"], run.outputs["success"], run.outputs["concluded"]) == (
        "success",
        "true",
        "true",
    )
    assert json.loads(run.outputs["request"])["method"] == "POST", "keys are never masked"
    dotenv = run.files["outputs.env"]
    assert "NORTHFLANK_RESULT=success\n" in dotenv
    assert "NORTHFLANK_SUCCESS=true\n" in dotenv
    assert "### ✅ Northflank build succeeded" in run.summary


def _without_masks(text: str) -> list[str]:
    masks = ("::add-mask::", "##vso[task.setsecret]")
    return [line for line in text.splitlines() if not line.startswith(masks)]


def test_a_build_file_of_64000_lines_is_masked_without_slowing_the_run(
    tmp_path: Path, api: HostileApi
) -> None:
    lines = [secrets.token_hex(6) + "-ln" for _ in range(64_000)]  # 1 000 KiB, under 1 MiB
    (tmp_path / "many.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    api.final["message"] = f"done with {lines[12_345]} and {lines[-1]}"
    run = hostile_run(tmp_path, api, build_files="/app/many.txt: {file: many.txt}")
    check(run, code=0, timeout=8, api=api, secrets=[TOKEN, lines[12_345], lines[-1]])
    assert "done with *** and ***" in run.stdout


# -- files given by path --------------------------------------------------------------------------


def make_path(tmp_path: Path, kind: str) -> str:
    """A path for `{file: ...}` that must be refused, made in the workspace where needed."""
    if kind == "parent":
        return "../" * 12 + "etc/passwd"
    if kind == "absolute":
        return "/etc/passwd"
    if kind in ("environ-link", "outside-link", "zero-link", "loop"):
        target = {
            "environ-link": "/proc/self/environ",
            "outside-link": "/etc/passwd",
            "zero-link": "/dev/zero",
            "loop": str(tmp_path / "loop"),
        }[kind]
        (tmp_path / kind).symlink_to(target)
        return kind
    if kind == "fifo":
        os.mkfifo(tmp_path / "pipe")
        return "pipe"
    if kind == "too-large":
        (tmp_path / "large.bin").write_bytes(b"x" * ((1 << 20) + 1))
        return "large.bin"
    assert kind == "folder"
    (tmp_path / "folder").mkdir()
    return "folder"


REFUSED_PATHS = [
    "parent", "absolute", "environ-link", "outside-link", "zero-link", "loop", "fifo", "too-large",
    "folder",
]  # fmt: skip


@pytest.mark.parametrize("kind", REFUSED_PATHS)
def test_a_file_outside_the_workspace_or_not_a_small_regular_file_is_refused_before_any_request(
    tmp_path: Path, api: HostileApi, kind: str
) -> None:
    path = make_path(tmp_path, kind)
    run = hostile_run(
        tmp_path,
        api,
        build_files=json.dumps({"/app/x": {"file": path}}),
        docker_secret_mounts=json.dumps({"m": {"file": path}}),
    )
    check(run, code=2, timeout=8, api=api)
    assert api.requests == [], "nothing is sent"
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 2, run.stdout
    assert f"build-files: /app/x: file {path}" in errors[0]
    assert f"docker-secret-mounts: m: file {path}" in errors[1]


def test_a_symlink_inside_the_workspace_and_the_runners_secret_folder_are_read(
    tmp_path: Path, api: HostileApi
) -> None:
    workspace, temp = tmp_path / "workspace", tmp_path / "runner_temp"
    workspace.mkdir()
    temp.mkdir()
    (workspace / "config").mkdir()
    (workspace / "config" / "real.json").write_text('{"a": 1}', encoding="utf-8")
    (workspace / "link.json").symlink_to(workspace / "config" / "real.json")
    (temp / "npmrc").write_text("//registry/:_authToken=runner-temp-secret-1\n", encoding="utf-8")
    files: dict[str, Any] = {
        "/app/a.json": {"file": "link.json"},
        "/app/.npmrc": {"file": str(temp / "npmrc")},
    }
    values = inputs(api.url, build_files=json.dumps(files))
    extra = {**QUICK, "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(temp)}
    env = github_env(tmp_path, values, extra=extra)
    run = run_program(env, cwd=workspace, timeout=8)
    check(run, code=0, timeout=8, api=api, secrets=[TOKEN, "runner-temp-secret-1"])
    sent = json.loads(api.received("POST build")[0].body)["overrides"]["buildFiles"]
    assert base64.b64decode(sent["/app/a.json"]["data"]) == b'{"a": 1}'
    assert b"runner-temp-secret-1" in base64.b64decode(sent["/app/.npmrc"]["data"])


def test_gitlab_file_variables_are_read_from_their_own_folder_only(
    tmp_path: Path, api: HostileApi
) -> None:
    project, variables = tmp_path / "group" / "project", tmp_path / "group" / "project.tmp"
    project.mkdir(parents=True)
    variables.mkdir()
    (variables / "NPMRC").write_text("gitlab-file-variable-secret\n", encoding="utf-8")
    (tmp_path / "group" / "other.txt").write_text("not-for-the-build\n", encoding="utf-8")
    gitlab = {"GITLAB_CI": "true", "CI_PROJECT_DIR": str(project)}
    for path, code in ((variables / "NPMRC", 0), (tmp_path / "group" / "other.txt", 2)):
        env = plain_env(
            tmp_path, api, NORTHFLANK_BUILD_FILES=f"/app/.npmrc: {{file: {path}}}", **gitlab
        )
        run = run_program(env, cwd=project, timeout=8)
        check(run, code=code, timeout=8, api=api, secrets=[TOKEN, "gitlab-file-variable-secret"])
    assert len(api.received("POST build")) == 1


# -- YAML and JSON inputs -------------------------------------------------------------------------

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 9)}]\n" for n in range(9)
)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (LAUGHS, "anchor or alias"),
        ("A: " + "[" * 10_000 + "]" * 10_000, "nesting depth"),
        ("GOOD: 1\nEMPTY:\nLAST: 2", "key EMPTY has no value"),
        ('{"GOOD": "1", "EMPTY": }', "key EMPTY has no value"),
    ],
    ids=["billion-laughs", "very-deep-yaml", "empty", "json-empty"],
)
def test_a_yaml_input_that_is_not_a_mapping_of_plain_values_is_refused_at_once(
    tmp_path: Path, api: HostileApi, text: str, says: str
) -> None:
    run = hostile_run(tmp_path, api, build_arguments=text)
    check(run, code=2, timeout=8, api=api)
    assert api.requests == []
    [error] = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert "build-arguments" in error
    assert says in error


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (LAUGHS, "anchor or alias"),
        ("A: " + "[" * 50 + "]" * 50, "nested deeper than 4 levels"),
        ("A: " + "[" * 10_000 + "]" * 10_000, "nesting depth"),
        ('{"A": ' + "[" * 500 + "]" * 500 + "}", "nested deeper than 4 levels"),
        ("A: !!binary aGVsbG8=", "tag"),
        ("? [a, b]\n: c", "not plain text"),
        ("GOOD: 1\nEMPTY:\nLAST: 2", "key EMPTY has no value"),
        ('{"GOOD": "1", "EMPTY": }', "key EMPTY has no value"),
        ('{"EMPTY": null}', "key EMPTY has no value"),
        ("{EMPTY}", "key EMPTY has no value"),
    ],
    ids=[
        "billion-laughs",
        "deep-yaml",
        "very-deep-yaml",
        "deep-json",
        "tag",
        "complex-key",
        "empty",
        "json-empty",
        "json-null",
        "flow-key",
    ],
)
def test_each_kind_of_yaml_that_is_not_plain_values_says_what_is_wrong(
    text: str, says: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_build_arguments(text)


# -- secrets in error messages --------------------------------------------------------------------


@pytest.mark.parametrize("form", ["--api-tokn={}", "--api-tokn {}", "--no-wait={}"])
def test_a_value_given_to_a_mistyped_flag_is_never_echoed(
    tmp_path: Path, api: HostileApi, form: str
) -> None:
    value = "flag-secret-" + secrets.token_hex(8)
    env = github_env(tmp_path, {}, extra=QUICK)
    run = run_program(env, *form.format(value).split(" "), cwd=tmp_path, timeout=8)
    check(run, code=2, timeout=8, api=api, secrets=[TOKEN, value])
    assert "command line" in run.stdout


def test_a_secret_files_line_in_key_position_is_masked_in_the_error(
    tmp_path: Path, api: HostileApi
) -> None:
    line = "not/absolute/key-" + secrets.token_hex(8)
    (tmp_path / "a.txt").write_text(f"{line}\n", encoding="utf-8")
    text = f"{line}: x\n/app/a: {{file: a.txt}}"  # the bad key comes first
    run = hostile_run(tmp_path, api, build_files=text)
    check(run, code=2, timeout=8, api=api, secrets=[TOKEN, line])
    assert "path '***' must be an absolute file path" in run.stdout


# -- forks --------------------------------------------------------------------------------------


def test_a_pull_request_from_a_fork_with_the_token_is_refused_unless_named(
    tmp_path: Path, api: HostileApi
) -> None:
    (tmp_path / "refused").mkdir()
    env = github_env(
        tmp_path / "refused", inputs(api.url), event_name="pull_request", event=FORK, extra=QUICK
    )
    run = run_program(env, cwd=tmp_path / "refused", timeout=8)
    check(run, code=2, timeout=8, api=api)
    assert api.requests == []
    [error] = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert "passes its secrets to workflows of pull requests from forks" in error
    assert "pull-request-id" in error

    (tmp_path / "named").mkdir()
    named = inputs(api.url, pull_request_id="43")
    env = github_env(tmp_path / "named", named, event_name="pull_request", event=FORK, extra=QUICK)
    run = run_program(env, cwd=tmp_path / "named", timeout=8)
    check(run, code=0, timeout=8, api=api)
    assert json.loads(api.received("POST build")[0].body)["pullRequestId"] == 43


FORK = "pull_request-fork.json"


# -- API data that does not parse as a build (the typed build of issue 10) ------------------------

NO_ID = {k: v for k, v in build().items() if k != "id"}


@pytest.mark.parametrize(
    ("endpoint", "payload", "changes"),
    [
        pytest.param(
            "POST build", {"data": NO_ID}, {},
            id="start-without-id",
        ),
        pytest.param(
            "GET build", {"data": build(**{**FINISHED, "createdAt": 1e20})}, {},
            id="created-at-1e20",
        ),
        pytest.param(
            "POST build", {"data": build(createdAt="0001-01-01T00:00:00Z")}, {"logs": "follow"},
            id="created-at-year-1",
        ),
        pytest.param(
            "GET service", {"data": {"serviceType": "build", "vcsData": "a string"}},
            {"service_type": "auto"},
            id="vcs-data-a-string",
        ),
        pytest.param(
            "GET build", {"data": build(status="BUILDING", concluded="false")}, {},
            id="concluded-a-string",
        ),
    ],
)  # fmt: skip
def test_an_answer_that_is_not_a_build_is_one_api_error(
    tmp_path: Path, api: HostileApi, endpoint: str, payload: Any, changes: dict[str, str]
) -> None:
    api.script(endpoint, *[json_reply(payload)] * 30)
    run = hostile_run(tmp_path, api, **changes)
    check(run, code=3, timeout=8, api=api)
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, run.stdout


def test_createdat_nan_is_a_malformed_answer(tmp_path: Path, api: HostileApi) -> None:
    body = json.dumps({"data": build(**FINISHED)}).replace('"2030-01-01T00:00:00.000Z"', "NaN")
    api.script("GET build", *[answer(200, body.encode())] * 30)
    run = hostile_run(tmp_path, api)
    check(run, code=3, timeout=8, api=api)
    assert "not a JSON object (it is not JSON)" in run.stdout


def test_a_lone_surrogate_in_a_failed_builds_log_line_is_shown_and_written(
    tmp_path: Path,
) -> None:
    with hostile_api(final={**FINISHED, "status": "FAILURE", "success": False}) as api:
        log = b'{"data": [{"ts": "2030-01-01T00:00:01.000Z", "log": "error: a \\ud800 b"}]}'
        api.script("GET logs", answer(200, log))
        run = hostile_run(tmp_path, api, logs="on-failure")
        check(run, code=1, timeout=8, api=api)
        assert "error: a \ufffd b" in run.stdout
        assert "error: a \ufffd b" in run.summary


def test_html_and_markdown_from_the_api_are_shown_as_text_in_the_summary(
    tmp_path: Path,
) -> None:
    message = "<img src=https://evil.example/x.png> [a link](https://evil.example) ![i](x.png)"
    final = {**FINISHED, "status": "<b>SUCCESS</b>", "message": message}
    with hostile_api(final=final) as api:
        run = hostile_run(tmp_path, api)
        check(run, code=0, timeout=8, api=api)
        assert "<img" not in run.summary
        assert "<b>" not in run.summary
        # Every bracket of the API's message escaped: nothing in it is a link or an image.
        [quote] = [line for line in run.summary.splitlines() if line.startswith("> ")]
        assert re.search(r"(?<!\\)[\[\]]", quote) is None, quote
