"""The action end to end: the program as a subprocess, the runner's contract emulated, the emulator
as the API. Each test asserts what the API received, the outputs as the runner parses them, and the
exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.clock import CLOCK
from tests.conftest import PROJECT, TOKEN, MakeEmulator, api_requests, started_builds, write
from tests.runner import EVENTS, Result, github_env, parse_output_file, run, run_process

MERGE_SHA = "f" * 40


def event(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return payload


def action(
    tmp_path: Path,
    url: str,
    service: str = "api",
    *,
    event_name: str = "push",
    payload: str | dict[str, Any] = "push.json",
    github: dict[str, str] | None = None,
    **inputs: str,
) -> Result:
    """Run the action as the runner would, with quick polling."""
    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": service,
        "api-url": url,
        "poll-interval": "0.1",
        "timeout": "60",
        **{k.replace("_", "-"): v for k, v in inputs.items()},
    }
    env = github_env(tmp_path, values, event_name=event_name, event=payload, extra=github)
    return run(env, tmp=tmp_path)


def push_env(payload: dict[str, Any]) -> dict[str, str]:
    return {"GITHUB_SHA": payload["after"], "GITHUB_REF": payload["ref"]}


def test_push_builds_the_pushed_commit_on_its_branch(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    payload = event("push.json")
    result = action(tmp_path, emulator.url, github=push_env(payload))
    assert result.code == 0, result.text
    [start] = started_builds(emulator)
    branch = payload["ref"].removeprefix("refs/heads/")
    assert start.body == {"sha": payload["after"], "branch": branch}
    assert start.headers["Authorization"] == f"Bearer {TOKEN}"
    assert result.outputs["result"] == "success"
    assert result.outputs["success"] == "true"
    assert result.outputs["concluded"] == "true"
    assert result.outputs["status"] == "SUCCESS"
    assert result.outputs["sha"] == payload["after"]
    assert result.outputs["branch"] == branch
    [build] = emulator.builds(PROJECT, "api")
    assert result.outputs["build-id"] == build["id"]
    assert result.json_output("build")["id"] == build["id"]
    assert result.json_output("request") == {
        "method": "POST",
        "path": f"/v1/projects/{PROJECT}/services/api/build",
        "body": start.body,
    }
    assert int(result.outputs["api-requests"]) == len(api_requests(emulator))
    assert result.outputs["image"]
    assert result.outputs["created-at"].endswith("Z")
    assert result.outputs["duration-seconds"].isdigit()
    assert build["id"] in result.summary


def test_build_id_is_written_before_waiting(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    seen_while_waiting: list[dict[str, str]] = []

    def sleep(seconds: float) -> None:
        if not seen_while_waiting:
            text = (tmp_path / "github_output").read_text(encoding="utf-8")
            seen_while_waiting.append(parse_output_file(text))
        CLOCK.sleep(seconds)

    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api",
        "api-url": emulator.url,
        "poll-interval": "5",
    }
    env = github_env(tmp_path, values, extra=push_env(event("push.json")))
    result = run(env, tmp=tmp_path, sleep=sleep)
    assert result.code == 0, result.text
    [build] = emulator.builds(PROJECT, "api")
    assert seen_while_waiting == [{"build-id": build["id"]}]
    assert result.outputs["build-id"] == build["id"]
    assert result.outputs["result"] == "success"


def test_pull_request_builds_the_head_commit_never_the_merge_commit(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    payload = event("pull_request.json")
    number = payload["pull_request"]["number"]
    github = {"GITHUB_SHA": MERGE_SHA, "GITHUB_REF": f"refs/pull/{number}/merge"}
    result = action(
        tmp_path,
        emulator.url,
        event_name="pull_request",
        payload="pull_request.json",
        github=github,
    )
    assert result.code == 0, result.text
    [start] = started_builds(emulator)
    assert start.body == {"sha": payload["pull_request"]["head"]["sha"], "pullRequestId": number}
    assert MERGE_SHA not in json.dumps(start.body)
    assert result.outputs["pull-request-id"] == str(number)


def test_tag_push_builds_the_tagged_commit_on_a_combined_service(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    payload = event("push-tag.json")
    tagged = "c" * 40
    github = {"GITHUB_SHA": tagged, "GITHUB_REF": payload["ref"], "GITHUB_REPOSITORY": "acme/web"}
    result = action(tmp_path, emulator.url, "web", payload=payload, github=github)
    assert result.code == 0, result.text
    [start] = started_builds(emulator)
    assert start.body == {"sha": tagged}


def test_tag_push_to_a_build_service_asks_for_a_branch(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    payload = event("push-tag.json")
    github = {"GITHUB_SHA": "c" * 40, "GITHUB_REF": payload["ref"]}
    result = action(tmp_path, emulator.url, payload=payload, github=github)
    assert result.code == 2
    assert (
        "::error title=Invalid input::branch: this GitHub Actions run is for a tag, which names "
        "no branch, and a build service builds a branch or a pull request: give branch"
    ) in result.stdout
    assert started_builds(emulator) == []


def test_workflow_dispatch_builds_the_branch_it_ran_on(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    sha = "d" * 40
    github = {"GITHUB_SHA": sha, "GITHUB_REF": "refs/heads/release/2.0"}
    result = action(
        tmp_path,
        emulator.url,
        event_name="workflow_dispatch",
        payload="workflow_dispatch.json",
        github=github,
    )
    assert result.code == 0, result.text
    [start] = started_builds(emulator)
    assert start.body == {"sha": sha, "branch": "release/2.0"}


def test_merge_group_builds_the_queue_head(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    payload = event("merge_group.json")
    group = payload["merge_group"]
    github = {"GITHUB_SHA": group["head_sha"], "GITHUB_REF": group["head_ref"]}
    result = action(
        tmp_path, emulator.url, event_name="merge_group", payload="merge_group.json", github=github
    )
    assert result.code == 0, result.text
    [start] = started_builds(emulator)
    assert start.body == {
        "sha": group["head_sha"],
        "branch": group["head_ref"].removeprefix("refs/heads/"),
    }


def test_combined_service_gets_the_sha_only(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    payload = event("push.json")
    github = {**push_env(payload), "GITHUB_REPOSITORY": "acme/web"}
    result = action(tmp_path, emulator.url, "web", github=github)
    assert result.code == 0, result.text
    requests = api_requests(emulator)
    assert [(r.method, r.path) for r in requests][:2] == [
        ("GET", f"/v1/projects/{PROJECT}/services/web"),
        ("POST", f"/v1/projects/{PROJECT}/services/web/build"),
    ]
    assert requests[1].body == {"sha": payload["after"]}


def test_combined_service_refuses_a_pull_request(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(
        tmp_path,
        emulator.url,
        "web",
        event_name="pull_request",
        payload="pull_request.json",
        github={"GITHUB_REPOSITORY": "acme/web", "GITHUB_SHA": MERGE_SHA},
    )
    assert result.code == 2
    assert "combined service" in result.stdout
    assert started_builds(emulator) == []


@pytest.mark.parametrize(
    ("service", "code", "status", "success"),
    [
        ("api", 0, "SUCCESS", "true"),
        ("api-fails", 1, "FAILURE", "false"),
        ("api-crashes", 1, "CRASHED", "false"),
    ],
)
def test_exit_code_follows_the_build(
    tmp_path: Path, make_emulator: MakeEmulator, service: str, code: int, status: str, success: str
) -> None:
    emulator = make_emulator()
    result = action(
        tmp_path, emulator.url, service, github=push_env(event("push.json")), logs="off"
    )
    assert result.code == code, result.text
    assert result.outputs["status"] == status
    assert result.outputs["success"] == success
    assert result.outputs["result"] == ("success" if code == 0 else "failure")
    if code:
        assert (
            f"::error title=Northflank build {result.outputs['build-id']} failed::" in result.stdout
        )


def test_failed_build_passes_when_failure_is_allowed(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(
        tmp_path,
        emulator.url,
        "api-fails",
        github=push_env(event("push.json")),
        fail_on_build_failure="false",
        logs="off",
    )
    assert result.code == 0
    assert result.outputs["result"] == "failure"
    assert "::warning::" in result.stdout


def test_without_waiting_the_step_ends_when_the_build_starts(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(tmp_path, emulator.url, github=push_env(event("push.json")), wait="false")
    assert result.code == 0, result.text
    assert result.outputs["result"] == "started"
    assert result.outputs["concluded"] == "false"
    assert [r.method for r in api_requests(emulator)] == ["GET", "POST"]


def test_timeout_exits_4_and_leaves_the_build_running(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(
        tmp_path, emulator.url, "api-slow", github=push_env(event("push.json")), timeout="1"
    )
    assert result.code == 4, result.text
    assert result.outputs["result"] == "timed-out"
    assert not any(r.method == "DELETE" for r in api_requests(emulator))
    [build] = emulator.builds(PROJECT, "api-slow")
    assert build["concluded"] is False


def test_dry_run_sends_nothing_that_changes_anything(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    payload = event("push.json")
    result = action(tmp_path, emulator.url, github=push_env(payload), dry_run="true")
    assert result.code == 0, result.text
    assert [r.method for r in api_requests(emulator)] == ["GET"]
    assert result.outputs["result"] == "dry-run"
    assert result.json_output("request")["body"]["sha"] == payload["after"]
    assert emulator.builds(PROJECT, "api") == []


def test_dry_run_with_a_service_type_reads_nothing(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(
        tmp_path,
        emulator.url,
        github=push_env(event("push.json")),
        dry_run="true",
        service_type="build",
    )
    assert result.code == 0, result.text
    assert api_requests(emulator) == []


def test_team_routes_are_used_with_a_team_id(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(team_id="acme-team")
    result = action(
        tmp_path,
        emulator.url,
        github=push_env(event("push.json")),
        team_id="acme-team",
        wait="false",
    )
    assert result.code == 0, result.text
    assert {r.path for r in api_requests(emulator)} == {
        f"/v1/teams/acme-team/projects/{PROJECT}/services/api",
        f"/v1/teams/acme-team/projects/{PROJECT}/services/api/build",
    }


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"api-token": "wrong-token"}, 401, "api-token"),
        ({"service-id": "missing"}, 404, "project-id and service-id"),
    ],
)
def test_api_refusals_exit_3_with_the_api_message(
    tmp_path: Path, make_emulator: MakeEmulator, change: dict[str, str], status: int, words: str
) -> None:
    emulator = make_emulator()
    inputs = {k.replace("-", "_"): v for k, v in change.items()}
    result = action(tmp_path, emulator.url, github=push_env(event("push.json")), **inputs)
    assert result.code == 3, result.text
    [line] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert f"HTTP {status}" in line
    assert words in line
    assert "Traceback" not in result.text


def test_read_only_token_gets_403_with_the_permission_named(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator(read_only_tokens=["viewer-token-1234"])
    result = action(
        tmp_path, emulator.url, github=push_env(event("push.json")), api_token="viewer-token-1234"
    )
    assert result.code == 3, result.text
    assert "HTTP 403" in result.stdout
    assert "Deploy Build" in result.stdout
    assert "Project > Services > General > Update" in result.stdout
    assert emulator.builds(PROJECT, "api") == []


def test_a_body_the_api_rejects_shows_its_message(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    history = emulator.builds(PROJECT, "web")
    github = {**push_env(event("push.json")), "GITHUB_REPOSITORY": "acme/web"}
    # Told it is a build service, the program sends a branch that the combined service refuses.
    result = action(tmp_path, emulator.url, "web", github=github, service_type="build")
    assert result.code == 3, result.text
    [line] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert "HTTP 400" in line
    assert "error id" in line
    assert emulator.builds(PROJECT, "web") == history


def test_a_service_of_another_repository_takes_nothing_from_the_ci(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(
        tmp_path, emulator.url, "other-repo", github=push_env(event("push.json")), branch="main"
    )
    assert result.code == 0, result.text
    [start] = started_builds(emulator)
    assert start.body == {"branch": "main"}


def test_other_repository_without_a_target_warns_and_asks(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(tmp_path, emulator.url, "other-repo", github=push_env(event("push.json")))
    assert result.code == 2
    assert "::warning::the service builds https://github.com/acme/other" in result.stdout
    assert started_builds(emulator) == []


def test_explicit_sha_keeps_the_branch_from_the_ci(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    payload = event("push.json")
    sha = "0123456789abcdef0123456789abcdef01234567"
    result = action(tmp_path, emulator.url, github=push_env(payload), sha=sha.upper(), wait="false")
    assert result.code == 0, result.text
    [start] = started_builds(emulator)
    assert start.body == {"sha": sha, "branch": payload["ref"].removeprefix("refs/heads/")}


def test_explicit_branch_takes_nothing_from_the_ci(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(
        tmp_path, emulator.url, github=push_env(event("push.json")), branch="develop", wait="false"
    )
    assert result.code == 0, result.text
    [start] = started_builds(emulator)
    assert start.body == {"branch": "develop"}


def test_overrides_reach_the_api(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    write(tmp_path / "secrets" / "npmrc", "//npm.example/:_authToken=file-secret-998877\n")
    result = action(
        tmp_path,
        emulator.url,
        github=push_env(event("push.json")),
        wait="false",
        build_arguments="NODE_ENV=production\nVERSION=1.2.3",
        build_files="/app/.npmrc: {file: secrets/npmrc}\n/app/inline.txt: inline-secret-445566",
        docker_secret_mounts="gh-token: mount-secret-112233",
        dockerfile_path="/docker/app.Dockerfile",
        docker_work_dir="/",
        dockerfile_target="runtime",
    )
    assert result.code == 0, result.text
    [start] = started_builds(emulator)
    overrides = start.body["overrides"]
    assert overrides["buildArguments"] == {"NODE_ENV": "production", "VERSION": "1.2.3"}
    assert overrides["buildFiles"]["/app/.npmrc"] == {
        "data": "Ly9ucG0uZXhhbXBsZS86X2F1dGhUb2tlbj1maWxlLXNlY3JldC05OTg4NzcK",
        "encoding": "utf-8",
    }
    assert overrides["dockerSecretMounts"]["gh-token"]["encoding"] == "utf-8"
    assert overrides["docker"] == {
        "dockerFilePath": "/docker/app.Dockerfile",
        "dockerWorkDir": "/",
        "dockerfileTarget": "runtime",
    }
    request = result.json_output("request")
    assert request["body"]["overrides"]["buildFiles"]["/app/.npmrc"]["data"] == "***"
    for secret in ("file-secret-998877", "inline-secret-445566", "mount-secret-112233", TOKEN):
        assert secret not in result.shown
        assert secret not in result.outputs_text
        assert secret not in result.summary
    assert f"::add-mask::{TOKEN}" in result.stdout
    assert result.stdout.index(f"::add-mask::{TOKEN}") == 0


@pytest.mark.parametrize(
    ("service", "inputs", "code"),
    [
        ("api", {}, 0),
        ("api-fails", {}, 1),
        ("api", {"sha": "abc"}, 2),
        ("missing", {}, 3),
        ("api-slow", {"timeout": "1"}, 4),
        ("api", {"wait": "false"}, 0),
        ("api,api-fails", {}, 1),
    ],
    ids=["success", "failure", "bad-input", "api-error", "timeout", "no-wait", "several"],
)
def test_as_a_process_the_program_does_what_it_does_in_process(
    tmp_path: Path, make_emulator: MakeEmulator, service: str, inputs: dict[str, str], code: int
) -> None:
    """The in-process runs of the other tests stand for the program the runner starts."""
    emulator = make_emulator()
    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": service,
        "api-url": emulator.url,
        "poll-interval": "0.2",
        "timeout": "60",  # so that the rate limit's stretch does not slow the process runs
        **inputs,
    }
    results = []
    for runner, folder in ((run, "in-process"), (run_process, "process")):
        tmp = tmp_path / folder
        tmp.mkdir()
        env = github_env(tmp, values, extra=push_env(event("push.json")))
        results.append(runner(env, tmp=tmp))
    in_process, process = results
    assert (in_process.code, process.code) == (code, code), process.text
    assert set(process.outputs) == set(in_process.outputs)
    for name in ("result", "status", "concluded", "success", "sha", "branch"):
        assert process.outputs.get(name) == in_process.outputs.get(name), name
    errors = [line.partition("::")[2] for line in process.stdout.splitlines() if "::error" in line]
    assert len(errors) == (0 if code == 0 else 1), process.stdout
