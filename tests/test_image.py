"""The image's entry point as processes, and the workflows that publish and self-test the image.

The entry point runs here without a container engine, as the image runs it: the script after
tini in the Dockerfile's ENTRYPOINT, started through its own shebang with `northflank-build` and
`python3` on PATH. tests/test_container.py runs the image itself; these checks also run where no
engine can.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from northflank_build.emulator import Emulator
from tests.conftest import PROJECT, TOKEN, api_requests, started_builds
from tests.runner import REPO, base_env, github_env, parse_output_file

WORKFLOWS = REPO / ".github" / "workflows"
PIN = re.compile(r"uses:\s*([\w./-]+)@([0-9a-f]{40})\s+#\s*v\d+\.\d+\.\d+\s*$")


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def entrypoint() -> list[str]:
    """The Dockerfile's exec-form ENTRYPOINT."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    found = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.MULTILINE)
    assert found, "no exec-form ENTRYPOINT"
    command = json.loads(found[1])
    assert isinstance(command, list)
    return [str(part) for part in command]


def entry_script() -> Path:
    """The repository file the image starts: what follows the init's `--`, copied to /app."""
    command = entrypoint()
    if "--" in command:
        command = command[command.index("--") + 1 :]
    assert command[0].startswith("/app/"), command
    return REPO / command[0].removeprefix("/app/")


def image_path(tmp: Path, env: dict[str, str]) -> dict[str, str]:
    """PATH as in the image: northflank-build linked to entrypoint.py, then the folder of the
    test's own python3 (a link elsewhere would lose its virtual environment)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "northflank-build").symlink_to(REPO / "entrypoint.py")
    python_dir = Path(sys.executable).parent
    assert (python_dir / "python3").exists(), f"no python3 beside {sys.executable}"
    return {**env, "PATH": os.pathsep.join([str(bin_dir), str(python_dir), env.get("PATH", "")])}


def start_entry(
    tmp: Path, env: dict[str, str], *arguments: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(entry_script()), *arguments],
        env=image_path(tmp, env),
        cwd=tmp,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_entry_point_hands_the_runners_hyphenated_inputs_to_the_program(
    tmp_path: Path, emulator: Emulator
) -> None:
    # The runner passes inputs as INPUT_API-TOKEN: no shell may stand between it and the program.
    inputs = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api",
        "api-url": emulator.url,
        "service-type": "build",
        "wait": "false",
    }
    push = {"GITHUB_SHA": "b2" * 20, "GITHUB_REF": "refs/heads/main"}
    env = github_env(tmp_path, inputs, extra=push)
    assert "INPUT_API-TOKEN" in env
    result = start_entry(tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    [start] = started_builds(emulator)
    assert start.body == {"sha": "b2" * 20, "branch": "main"}
    assert all(r.authorized for r in api_requests(emulator))
    outputs = parse_output_file((tmp_path / "github_output").read_text(encoding="utf-8"))
    assert outputs["result"] == "started"


@pytest.mark.parametrize(
    ("arguments", "printed"),
    [
        pytest.param(["--version"], "northflank-build ", id="flags-go-to-the-program"),
        pytest.param(
            ["northflank-build", "--version"], "northflank-build ", id="the-command-by-name"
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
    result = start_entry(tmp_path, base_env(tmp_path), *arguments)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(printed)


def test_entry_point_without_arguments_runs_the_program(tmp_path: Path) -> None:
    result = start_entry(tmp_path, base_env(tmp_path))
    assert result.returncode == 2
    assert "api-token: is required" in result.stderr + result.stdout


def test_entry_point_keeps_stdin_for_a_waiting_command(tmp_path: Path) -> None:
    # Jenkins starts the container with `cat` and keeps it open through its standard input.
    result = start_entry(tmp_path, base_env(tmp_path), "cat", stdin="kept open\n")
    assert result.stdout == "kept open\n"


def test_a_command_given_ignores_no_signal_its_starter_did_not(tmp_path: Path) -> None:
    # Python ignores SIGPIPE and SIGXFSZ, and exec would hand that on to GitLab's shell.
    command = ["grep", "SigIgn", "/proc/self/status"]
    direct = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    result = start_entry(tmp_path, base_env(tmp_path), *command)
    assert result.stdout == direct.stdout, result.stderr


def test_a_command_that_does_not_exist_is_named(tmp_path: Path) -> None:
    result = start_entry(tmp_path, base_env(tmp_path), "no-such-command")
    assert result.returncode == 127
    assert result.stderr.strip() == "error: cannot run no-such-command: No such file or directory"


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


def test_scripts_are_executable_python() -> None:
    shebangs = {"entrypoint.py": "python3", "docker-entrypoint.py": "-S python3 -S"}
    for name, interpreter in shebangs.items():
        path = REPO / name
        assert os.access(path, os.X_OK), f"{name} is not executable"
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == f"#!/usr/bin/env {interpreter}"


def test_no_shell_stands_between_the_init_and_the_program() -> None:
    command = entrypoint()
    assert command[:3] == ["/usr/bin/tini", "-g", "-s"], "tini, signalling the process group"
    assert entry_script().read_text(encoding="utf-8").startswith("#!/usr/bin/env -S python3 -S\n")
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "ln -s /app/entrypoint.py /usr/local/bin/northflank-build" in text
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {"!entrypoint.py", "!docker-entrypoint.py"} <= set(ignored)


# -- release.yml ------------------------------------------------------------------------------


def test_release_publishes_on_version_tags_only() -> None:
    [pattern] = load("release.yml")[True]["push"]["tags"]
    glob = re.escape(pattern).replace(r"\[0\-9\]\+", "[0-9]+")
    for tag, published in [("v1.2.3", True), ("v10.0.12", True), ("v1", False), ("1.2.3", False)]:
        assert bool(re.fullmatch(glob, tag)) is published, tag


def release_jobs() -> dict[str, Any]:
    workflow = load("release.yml")
    assert workflow["permissions"] == {}
    return dict(workflow["jobs"])


def named(job: dict[str, Any], name: str) -> dict[str, Any]:
    [step] = [s for s in steps(job) if s.get("name") == name]
    return step


def test_release_jobs_get_only_what_they_need() -> None:
    jobs = release_jobs()
    assert set(jobs) == {"image", "action"}
    assert jobs["image"]["permissions"] == {"contents": "read", "packages": "write"}
    assert jobs["action"]["permissions"] == {"contents": "write", "packages": "read"}
    assert jobs["action"]["needs"] == "image"
    assert all(job["timeout-minutes"] <= 60 for job in jobs.values())


def test_release_builds_both_platforms_with_version_tags_and_labels() -> None:
    job = release_jobs()["image"]
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
    build_step = by_action["docker/build-push-action"]
    build = build_step["with"]
    assert build["platforms"].split(",") == ["linux/amd64", "linux/arm64"]
    assert build["push"] is True
    assert build["labels"] == "${{ steps.meta.outputs.labels }}"
    assert build["tags"] == "${{ steps.meta.outputs.tags }}"
    assert "docker/setup-qemu-action" in by_action
    assert by_action["docker/login-action"]["with"]["registry"] == "ghcr.io"
    assert job["outputs"]["digest"] == f"${{{{ steps.{build_step['id']}.outputs.digest }}}}"


def test_release_tries_the_released_action_before_tagging_it() -> None:
    job = release_jobs()["action"]
    names = [s.get("name") for s in steps(job)]
    pin = named(job, "Point action.yml at the published image")
    assert pin["env"]["IMAGE_DIGEST"] == "${{ needs.image.outputs.digest }}"
    [tried] = self_steps(job)
    check = steps(job)[steps(job).index(tried) + 1]
    assert 'test "$RESULT" = dry-run' in check["run"]
    assert tried["with"]["dry-run"] == "true"
    order = [names.index(pin["name"]), steps(job).index(tried), names.index(check["name"])]
    order.append(names.index("Commit it and move the tags to it"))
    assert order == sorted(order)
    assert steps(job)[0]["with"]["persist-credentials"] is False


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def run_step(
    step: dict[str, Any], folder: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """A `run:` step as the runner runs it: the script in a file, its shell, the step's cwd."""
    script = folder.parent / "step-script"
    script.write_text(step["run"], encoding="utf-8")
    if step.get("shell") == "python":
        command = [sys.executable, str(script)]
    else:
        command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)]
    return subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=60, check=False
    )


DIGEST = "sha256:" + "4e" * 32


@pytest.fixture
def tagged(tmp_path: Path) -> tuple[Path, Path, str]:
    """A remote holding a commit tagged v1.4.2 (and an older v1), and a checkout of the tag."""
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True, timeout=60)
    subprocess.run(["git", "init", "-q", str(work)], check=True, timeout=60)
    for key, value in (("user.name", "Maintainer"), ("user.email", "maintainer@example.com")):
        git(work, "config", key, value)
    (work / "README.md").write_text("before\n", encoding="utf-8")
    git(work, "add", "README.md")
    git(work, "commit", "-q", "-m", "Older release")
    git(work, "tag", "v1")
    (work / "action.yml").write_bytes((REPO / "action.yml").read_bytes())
    git(work, "add", "action.yml")
    git(work, "commit", "-q", "-m", "New feature")
    git(work, "tag", "-a", "v1.4.2", "-m", "v1.4.2")
    tagged_commit = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", str(origin), "HEAD:refs/heads/main", "--tags")
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(origin), str(checkout)], check=True, timeout=60)
    git(checkout, "checkout", "-q", "--detach", "refs/tags/v1.4.2")
    return origin, checkout, tagged_commit


def release_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = base_env(tmp)
    env.update(
        GITHUB_REPOSITORY="Acme/Northflank-Build-Action",
        GITHUB_REF_NAME="v1.4.2",
        GITHUB_SERVER_URL="https://github.com",
        GIT_CONFIG_NOSYSTEM="1",
        **extra,
    )
    return env


def test_release_produces_an_action_that_runs_the_image_by_digest(
    tagged: tuple[Path, Path, str], tmp_path: Path
) -> None:
    origin, checkout, tagged_commit = tagged
    job = release_jobs()["action"]
    env = release_env(tmp_path, IMAGE_DIGEST=DIGEST, GITHUB_TOKEN="not-a-token")
    pinned = run_step(named(job, "Point action.yml at the published image"), checkout, env)
    assert pinned.returncode == 0, pinned.stderr
    pushed = run_step(named(job, "Commit it and move the tags to it"), checkout, env)
    assert pushed.returncode == 0, pushed.stderr

    released = git(origin, "rev-parse", "v1.4.2^{commit}")
    assert git(origin, "rev-parse", "v1^{commit}") == released
    assert git(origin, "rev-parse", f"{released}^") == tagged_commit
    assert git(origin, "diff", "--name-only", tagged_commit, released) == "action.yml"
    text = git(origin, "show", f"{released}:action.yml")
    action = yaml.safe_load(text)
    image = f"docker://ghcr.io/acme/northflank-build-action@{DIGEST}"
    assert action["runs"] == {"using": "docker", "image": image}
    original = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    assert {k: v for k, v in action.items() if k != "runs"} == {
        k: v for k, v in original.items() if k != "runs"
    }
    produced = tmp_path / "action.yml"
    produced.write_text(text + "\n", encoding="utf-8")
    schema = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-actions",
         str(produced)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert schema.returncode == 0, schema.stdout + schema.stderr


@pytest.mark.parametrize(
    ("digest", "error"),
    [
        ("", "not an image digest: ''"),
        ("sha256:abc", "not an image digest: 'sha256:abc'"),
        ("4e" * 32, "not an image digest"),
    ],
)
def test_release_refuses_what_is_not_a_digest(
    tagged: tuple[Path, Path, str], tmp_path: Path, digest: str, error: str
) -> None:
    _, checkout, _ = tagged
    step = named(release_jobs()["action"], "Point action.yml at the published image")
    done = run_step(step, checkout, release_env(tmp_path, IMAGE_DIGEST=digest))
    assert done.returncode != 0
    assert error in done.stderr
    assert git(checkout, "status", "--porcelain") == ""


def test_release_refuses_an_action_that_does_not_build_the_dockerfile(
    tagged: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, checkout, _ = tagged
    action = checkout / "action.yml"
    action.write_text(action.read_text(encoding="utf-8").replace("image: Dockerfile", "image: x"))
    step = named(release_jobs()["action"], "Point action.yml at the published image")
    done = run_step(step, checkout, release_env(tmp_path, IMAGE_DIGEST=DIGEST))
    assert done.returncode != 0
    assert "runs.image is not `Dockerfile`" in done.stderr


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
