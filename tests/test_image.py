"""The image for other CI systems: its entry point, and the workflows that publish and self-test it.

No Docker engine runs here: the entry point script and the command link are run as processes, and
the workflows are read as the runner would read them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.runner import REPO, base_env

WORKFLOWS = REPO / ".github" / "workflows"
PIN = re.compile(r"uses:\s*([\w./-]+)@([0-9a-f]{40})\s+#\s*v\d+\.\d+\.\d+\s*$")


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def fake_program(tmp: Path) -> dict[str, str]:
    """A PATH whose northflank-build says how it was called."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    program = bin_dir / "northflank-build"
    program.write_text('#!/bin/sh\necho "northflank-build $*"\n', encoding="utf-8")
    program.chmod(0o755)
    env = base_env(tmp)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.parametrize(
    ("arguments", "printed"),
    [
        pytest.param([], "northflank-build", id="no-arguments-runs-the-program"),
        pytest.param(
            ["--project-id", "p", "--wait"],
            "northflank-build --project-id p --wait",
            id="flags-go-to-the-program",
        ),
        pytest.param(
            ["northflank-build", "--help"], "northflank-build --help", id="the-command-by-name"
        ),
        pytest.param(
            ["sh", "-c", "echo gitlab runs its shell"], "gitlab runs its shell", id="a-shell"
        ),
        pytest.param(["echo", "jenkins"], "jenkins", id="any-other-command"),
    ],
)
def test_entry_point_runs_the_program_or_the_command_given(
    tmp_path: Path, arguments: list[str], printed: str
) -> None:
    result = subprocess.run(
        ["sh", str(REPO / "docker-entrypoint.sh"), *arguments],
        env=fake_program(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, printed), result.stderr


def test_entry_point_keeps_stdin_for_a_waiting_command(tmp_path: Path) -> None:
    # Jenkins starts the container with `cat` and keeps it open through its standard input.
    result = subprocess.run(
        ["sh", str(REPO / "docker-entrypoint.sh"), "cat"],
        env=fake_program(tmp_path),
        input="kept open\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.stdout == "kept open\n"


def test_the_command_runs_through_a_link_as_in_the_image(tmp_path: Path) -> None:
    link = tmp_path / "northflank-build"
    link.symlink_to(REPO / "entrypoint.py")
    env = base_env(tmp_path)
    env.pop("PYTHONPATH")
    result = subprocess.run(
        [sys.executable, str(link), "--version"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("northflank-build ")


def test_scripts_are_executable_and_say_how_to_run() -> None:
    for name, interpreter in (("entrypoint.py", "python3"), ("docker-entrypoint.sh", "sh")):
        path = REPO / name
        assert os.access(path, os.X_OK), f"{name} is not executable"
        assert path.read_text(encoding="utf-8").splitlines()[0].endswith(interpreter)


def test_dockerfile_puts_the_command_on_path_behind_the_entry_point() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "ln -s /app/entrypoint.py /usr/local/bin/northflank-build" in text
    assert 'ENTRYPOINT ["/app/docker-entrypoint.sh"]' in text
    assert "docker-entrypoint.sh" in (REPO / ".dockerignore").read_text(encoding="utf-8")


# -- release.yml ------------------------------------------------------------------------------


def test_release_publishes_on_version_tags_only() -> None:
    [pattern] = load("release.yml")[True]["push"]["tags"]
    glob = re.escape(pattern).replace(r"\[0\-9\]\+", "[0-9]+")
    for tag, published in [("v1.2.3", True), ("v10.0.12", True), ("v1", False), ("1.2.3", False)]:
        assert bool(re.fullmatch(glob, tag)) is published, tag


def test_release_needs_only_read_and_packages() -> None:
    workflow = load("release.yml")
    assert workflow["permissions"] == {}
    [job] = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    assert job["timeout-minutes"] <= 60


def test_release_builds_both_platforms_with_version_tags_and_labels() -> None:
    [job] = load("release.yml")["jobs"].values()
    by_action = {s["uses"].partition("@")[0]: s for s in steps(job) if "uses" in s}
    checkout = by_action["actions/checkout"]
    assert checkout["with"]["persist-credentials"] is False
    meta = by_action["docker/metadata-action"]["with"]
    assert meta["images"] == "ghcr.io/${{ github.repository }}"
    assert meta["tags"].split() == [
        "type=semver,pattern=v{{version}}",
        "type=semver,pattern=v{{major}}",
    ]
    assert meta["flavor"] == "latest=false"
    build = by_action["docker/build-push-action"]["with"]
    assert build["platforms"].split(",") == ["linux/amd64", "linux/arm64"]
    assert build["push"] is True
    assert build["labels"] == "${{ steps.meta.outputs.labels }}"
    assert build["tags"] == "${{ steps.meta.outputs.tags }}"
    assert "docker/setup-qemu-action" in by_action
    assert by_action["docker/login-action"]["with"]["registry"] == "ghcr.io"


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_actions_are_pinned_by_commit_with_their_version(name: str) -> None:
    lines = (WORKFLOWS / name).read_text(encoding="utf-8").splitlines()
    uses = [line for line in lines if re.match(r"\s*(?:-\s*)?uses:", line)]
    third_party = [line for line in uses if "uses: ./" not in line]
    assert [line for line in third_party if not PIN.search(line)] == []


# -- self-test.yml ----------------------------------------------------------------------------


def self_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in steps(job) if s.get("uses") == "./"]


def test_self_test_runs_on_push_and_pull_request() -> None:
    workflow = load("self-test.yml")
    assert {"push", "pull_request"} <= set(workflow[True])
    assert workflow["permissions"] == {}


def test_self_test_dry_run_sends_no_request_and_checks_its_outputs() -> None:
    job = load("self-test.yml")["jobs"]["dry-run"]
    [step] = self_steps(job)
    inputs = step["with"]
    assert inputs["dry-run"] == "true"
    assert inputs["service-type"] == "build"
    assert {"project-id", "service-id", "api-token"} <= set(inputs)
    check = steps(job)[steps(job).index(step) + 1]
    env = check["env"]
    assert env["RESULT"] == f"${{{{ steps.{step['id']}.outputs.result }}}}"
    assert env["REQUEST"] == f"${{{{ steps.{step['id']}.outputs.request }}}}"
    assert "github.event.pull_request.head.sha" in env["EXPECTED_SHA"]
    assert 'test "$RESULT" = dry-run' in check["run"]
    assert ".body.sha == $sha" in check["run"]


def test_self_test_expects_failure_without_a_token() -> None:
    job = load("self-test.yml")["jobs"]["missing-token"]
    [step] = self_steps(job)
    assert step["continue-on-error"] is True
    assert "api-token" not in step["with"]
    check = steps(job)[steps(job).index(step) + 1]
    assert check["env"]["OUTCOME"] == f"${{{{ steps.{step['id']}.outcome }}}}"
    assert 'test "$OUTCOME" = failure' in check["run"]
