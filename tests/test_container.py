"""The image, built with podman from the Dockerfile and run as each CI system runs it.

At most its base is swapped, for a Debian stand-in where the real one cannot be pulled
(tests/podman.py, tests/standin/build.sh). Each test starts the image the way its CI's own
source starts it (tests/ci_runs.py) against the emulator on 127.0.0.1, and reads back what that
CI would read: the output file with the runner's parser, the dotenv report, the outputs file,
Azure's logging commands. Cancellation is re-enacted the way each CI cancels, and the program
must end by itself before the CI's kill, abort the build and write its outputs.

`pytest -m image` runs these alone; SKIP_IMAGE_TESTS=1 skips them where no engine can run;
IMAGE_UNDER_TEST=<name> runs them against an image built elsewhere (an older commit's, a
release's) instead of building this checkout's.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from northflank_build.emulator import Emulator
from tests import podman as engine
from tests.audit import audit, run_texts
from tests.ci_runs import (
    GITHUB_SIGINT_TIMEOUT,
    GITLAB_STOP_TIMEOUT,
    JENKINS_REMOTE_TIMEOUT,
    AzureContainerJob,
    GithubStep,
    GitlabJob,
    JenkinsAgent,
    Stopped,
    remove,
    until,
)
from tests.conftest import PROJECT, TOKEN, MakeEmulator, api_requests, started_builds
from tests.runner import EVENTS, REPO, Result

# One worker runs them all (pytest -n, a file to a worker): the image is built once.
pytestmark = pytest.mark.image

EXAMPLES = REPO / "examples"
SHA = "b2" * 20
MERGE_SHA = "e1" * 20


@pytest.fixture(scope="session")
def podman() -> engine.Podman:
    return engine.engine()


@pytest.fixture(scope="session")
def image(podman: engine.Podman) -> str:
    """The project's image, built once per session from the Dockerfile (tests/podman.py)."""
    if os.environ.get("IMAGE_UNDER_TEST"):
        return os.environ["IMAGE_UNDER_TEST"]
    tag = engine.image_tag()
    try:
        engine.build(podman, tag)
    except engine.EngineError as error:
        pytest.fail(str(error), pytrace=False)
    return tag


def event(name: str) -> dict[str, Any]:
    data = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def aborted(emulator: Emulator, service: str) -> list[str]:
    """The builds of service the emulator has seen aborted."""
    return [b["id"] for b in emulator.builds(PROJECT, service) if b["status"] == "ABORTED"]


def aborts(emulator: Emulator) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in api_requests(emulator) if r.method == "DELETE"]


def dotenv(path: Path) -> dict[str, str]:
    """A dotenv report as GitLab reads it: KEY=VALUE lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line)


def northflank(emulator: Emulator, service: str = "api", **extra: str) -> dict[str, str]:
    """The NORTHFLANK_* variables a pipeline gives: the emulator's address, token and target."""
    return {
        "NORTHFLANK_API_TOKEN": TOKEN,
        "NORTHFLANK_PROJECT_ID": PROJECT,
        "NORTHFLANK_SERVICE_ID": service,
        "NORTHFLANK_API_URL": emulator.url,
        "NORTHFLANK_SERVICE_TYPE": "build",
        "NORTHFLANK_POLL_INTERVAL": "0.1",
        **extra,
    }


# -- GitHub Actions ---------------------------------------------------------------------------


def github_step(
    podman: engine.Podman,
    image: str,
    folder: Path,
    emulator: Emulator,
    service: str = "api",
    **given: str,
) -> GithubStep:
    payload = event("push.json")
    inputs = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": service,
        "api-url": emulator.url,
        "service-type": "build",
        "poll-interval": "0.1",
        **{name.replace("_", "-"): value for name, value in given.items()},
    }
    github = {"GITHUB_SHA": SHA, "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main"}
    return GithubStep(podman, image, folder, inputs, event=payload, github=github)


def audited(step: GithubStep, result: Result) -> Result:
    audit(
        run_texts(result, step.input_variables(), step.folder),
        step.input_variables(),
        (),
        step.folder,
    )
    return result


def test_github_runs_the_action_with_its_hyphenated_inputs(
    podman: engine.Podman, image: str, emulator: Emulator, tmp_path: Path
) -> None:
    step = github_step(podman, image, tmp_path, emulator)
    assert "INPUT_API-TOKEN" in step.input_variables()
    result = audited(step, step.run())
    assert result.code == 0, result.stdout
    [start] = started_builds(emulator)
    assert start.body == {"sha": SHA, "branch": "main"}
    assert all(r.authorized for r in api_requests(emulator))
    [build] = emulator.builds(PROJECT, "api")
    assert result.outputs["build-id"] == build["id"]
    assert result.outputs["result"] == "success"
    assert build["id"] in result.summary
    assert f"::add-mask::{TOKEN}" in result.stdout


def test_github_pull_request_builds_the_head_commit(
    podman: engine.Podman, image: str, emulator: Emulator, tmp_path: Path
) -> None:
    payload = event("pull_request.json")
    number = payload["pull_request"]["number"]
    inputs = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api",
        "api-url": emulator.url,
        "service-type": "build",
        "poll-interval": "0.1",
    }
    github = {"GITHUB_SHA": MERGE_SHA, "GITHUB_REF": f"refs/pull/{number}/merge"}
    step = GithubStep(
        podman, image, tmp_path, inputs, event_name="pull_request", event=payload, github=github
    )
    result = audited(step, step.run())
    assert result.code == 0, result.stdout
    [start] = started_builds(emulator)
    assert start.body == {"sha": payload["pull_request"]["head"]["sha"], "pullRequestId": number}
    assert result.outputs["pull-request-id"] == str(number)


def test_github_without_a_token_fails_naming_the_input(
    podman: engine.Podman, image: str, emulator: Emulator, tmp_path: Path
) -> None:
    step = github_step(podman, image, tmp_path, emulator, api_token="")
    result = step.run()
    assert result.code == 2, result.stdout
    assert "api-token" in result.stdout
    assert api_requests(emulator) == []
    assert "result" not in result.outputs


# -- GitLab CI, Jenkins, Azure Pipelines: the README's examples, run as each CI runs them -----


def gitlab_example() -> tuple[dict[str, str], list[str], str]:
    """The example job's variables, script and dotenv report."""
    job = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text(encoding="utf-8"))[
        "northflank-build"
    ]
    variables = {key: str(value) for key, value in job["variables"].items()}
    return variables, list(job["script"]), job["artifacts"]["reports"]["dotenv"]


def gitlab_ci(**extra: str) -> dict[str, str]:
    """What GitLab exports for a branch pipeline."""
    return {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_COMMIT_SHA": SHA,
        "CI_COMMIT_BRANCH": "main",
        "CI_COMMIT_REF_NAME": "main",
        "CI_PROJECT_URL": "https://gitlab.com/acme/api",
        "CI_PIPELINE_SOURCE": "push",
        **extra,
    }


def test_gitlab_job_writes_the_dotenv_report(
    podman: engine.Podman, image: str, emulator: Emulator, tmp_path: Path
) -> None:
    variables, script, report = gitlab_example()
    variables.update(northflank(emulator), **gitlab_ci())
    job = GitlabJob(podman, image, tmp_path / "project", variables, script)
    code, log = job.run()
    assert code == 0, log
    [start] = started_builds(emulator)
    assert start.body == {"sha": SHA, "branch": "main"}
    path = tmp_path / "project" / report
    assert path.stat().st_size < 5 * 1024
    values = dotenv(path)
    assert values["NORTHFLANK_RESULT"] == "success"
    assert values["NORTHFLANK_BUILD_ID"] == emulator.builds(PROJECT, "api")[0]["id"]
    assert TOKEN not in log + path.read_text(encoding="utf-8")


def jenkins_example() -> tuple[str, dict[str, str], str]:
    """The Jenkinsfile's step script, its environment (the credential as the test's token) and
    the outputs file it archives."""
    text = (EXAMPLES / "Jenkinsfile").read_text(encoding="utf-8")
    [script] = re.findall(r"^\s*sh '([^']*)'$", text, re.MULTILINE)
    env = dict(re.findall(r"^\s*(NORTHFLANK_\w+) = '([^']*)'$", text, re.MULTILINE))
    assert re.search(r"^\s*NORTHFLANK_API_TOKEN = credentials\(", text, re.MULTILINE)
    return script + "\n", env, env["NORTHFLANK_OUTPUTS_FILE"]


def jenkins_env(emulator: Emulator, service: str = "api") -> dict[str, str]:
    _, env, _ = jenkins_example()
    return {
        **env,
        **northflank(emulator, service),
        "JENKINS_URL": "https://jenkins.example.com/",
        "BRANCH_NAME": "main",
        "GIT_COMMIT": SHA,
        "GIT_URL": "https://github.com/acme/api.git",
    }


@pytest.fixture
def jenkins(podman: engine.Podman, image: str, tmp_path: Path) -> Iterator[JenkinsAgent]:
    agent = JenkinsAgent(podman, image, tmp_path)
    yield agent
    remove(podman, agent.name)


def test_jenkins_agent_keeps_cat_running_and_runs_steps_as_its_user(
    jenkins: JenkinsAgent, emulator: Emulator
) -> None:
    assert "cat" in jenkins.start()
    script, _, report = jenkins_example()
    step = jenkins.sh(script, jenkins_env(emulator))
    until(lambda: step.result() is not None, "the step has ended", 60)
    assert step.result() == 0, step.log()
    outputs = json.loads((jenkins.workspace / report).read_text(encoding="utf-8"))
    assert outputs["result"] == "success"
    assert (jenkins.workspace / report).stat().st_uid == 1000
    [start] = started_builds(emulator)
    assert start.body == {"sha": SHA, "branch": "main"}


def azure_example() -> tuple[str, dict[str, str]]:
    """The example's northflank step: its script and env, the secret variable left out."""
    pipeline = yaml.safe_load((EXAMPLES / "azure-pipelines.yml").read_text(encoding="utf-8"))
    [step] = [s for s in pipeline["jobs"][0]["steps"] if s.get("name") == "northflank"]
    env = {key: str(value) for key, value in step["env"].items() if "$(" not in str(value)}
    return step["script"] + "\n", env


def azure_variables() -> dict[str, str]:
    """What the agent exports for a branch build."""
    return {
        "TF_BUILD": "True",
        "BUILD_SOURCEVERSION": SHA,
        "BUILD_SOURCEBRANCH": "refs/heads/main",
        "BUILD_REPOSITORY_URI": "https://github.com/acme/api",
        "SYSTEM_DEFAULTWORKINGDIRECTORY": "/__w/1/s",
        "AGENT_TEMPDIRECTORY": "/__w/_temp",
    }


@pytest.fixture
def azure(podman: engine.Podman, image: str, tmp_path: Path) -> Iterator[AzureContainerJob]:
    job = AzureContainerJob(podman, image, tmp_path)
    yield job
    job.remove()


def test_azure_container_job_sets_output_variables(
    azure: AzureContainerJob, emulator: Emulator
) -> None:
    azure.start()
    script, env = azure_example()
    process = azure.script(script, {**env, **northflank(emulator), **azure_variables()})
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("##vso[task.setsecret]")
    variables = dict(
        re.findall(
            r"^##vso\[task\.setvariable variable=(\w+);isoutput=true\](.*)$", output, re.MULTILINE
        )
    )
    assert variables["NORTHFLANK_RESULT"] == "success"
    assert variables["NORTHFLANK_SHA"] == SHA


def test_the_emulator_runs_in_the_image_for_an_offline_pipeline(
    podman: engine.Podman, image: str, tmp_path: Path
) -> None:
    """The README's offline pipeline: the emulator and the program, both from the image."""
    script = (
        "python -m northflank_build.emulator --port 18931 > emulator.log 2>&1 &\n"
        "NORTHFLANK_API_URL=http://127.0.0.1:18931 NORTHFLANK_API_TOKEN=demo-token "
        "northflank-build --project-id demo-project --service-id api --branch main --no-wait "
        "--outputs-file outputs.json\n"
    )
    variables = {"CI": "true", "GITLAB_CI": "true"}
    job = GitlabJob(podman, image, tmp_path / "project", variables, [script])
    code, log = job.run()
    assert code == 0, log
    outputs = json.loads((tmp_path / "project" / "outputs.json").read_text(encoding="utf-8"))
    assert outputs["result"] == "started"


# -- what a run needs from the image ----------------------------------------------------------

IMPORTS = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.MULTILINE)
# For each module named, whether the interpreter would use bytecode from the image: a .pyc file
# that is hash-based without a source check, or whose recorded time and size match its source.
STALE_OR_MISSING = """
import importlib.util, os, sys
for name in sys.argv[1:]:
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:  # an import that was tried and failed, such as copy's of org
        continue
    if not (spec and spec.origin and spec.origin.endswith(".py")):
        continue
    try:
        with open(spec.cached, "rb") as pyc:
            header = pyc.read(16)
    except OSError:
        print(name, "missing")
        continue
    flags = int.from_bytes(header[4:8], "little")
    source = os.stat(spec.origin)
    recorded = (int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little"))
    if flags == 0 and recorded != (int(source.st_mtime) & 0xFFFFFFFF, source.st_size & 0xFFFFFFFF):
        print(name, "stale")
    elif flags & 2:
        print(name, "checked-hash")
"""


def test_every_module_a_run_imports_has_its_bytecode_in_the_image(
    podman: engine.Podman, image: str, emulator: Emulator, tmp_path: Path
) -> None:
    step = github_step(podman, image, tmp_path, emulator, wait="false")
    step.variables["PYTHONPROFILEIMPORTTIME"] = "1"
    result = step.run()
    assert result.code == 0, result.stdout
    modules = IMPORTS.findall(result.stdout)
    assert {"northflank_build.cli", "requests", "json"} <= set(modules)
    check = podman.run(
        "run", "--rm", "--entrypoint", "python3", image, "-c", STALE_OR_MISSING, *modules
    )  # fmt: skip
    assert check.stdout.splitlines() == []


def test_the_dependencies_extension_modules_load(podman: engine.Podman, image: str) -> None:
    # Their debugging symbols are stripped at build time; what a run calls must still be there.
    script = (
        "import yaml, charset_normalizer.md; "
        "print(yaml.load('a: [1]', Loader=yaml.CSafeLoader), charset_normalizer.md.__name__)"
    )
    check = podman.run("run", "--rm", "--entrypoint", "python3", image, "-c", script)
    assert check.stdout.split() == ["{'a':", "[1]}", "charset_normalizer.md"]


# -- cancellation, as each CI cancels ---------------------------------------------------------


def started(emulator: Emulator, service: str) -> bool:
    return bool(emulator.builds(PROJECT, service))


def ended_by_itself(stopped: Stopped, limit: float) -> None:
    assert not stopped.killed, stopped
    assert stopped.seconds < limit, stopped


@pytest.mark.parametrize("how", ["runner-cancel", "docker-stop"])
def test_github_cancel_aborts_the_build(
    podman: engine.Podman,
    image: str,
    make_emulator: MakeEmulator,
    tmp_path: Path,
    how: str,
) -> None:
    emulator = make_emulator()
    step = github_step(podman, image, tmp_path, emulator, "api-slow", poll_interval="30")
    process = step.start()
    try:
        until(lambda: step.output.read_text(encoding="utf-8"), "the build has started")
        stopped = step.cancel(process) if how == "runner-cancel" else step.stop(process)
    finally:
        if process.poll() is None:
            process.kill()
        remove(podman, step.name)
    ended_by_itself(stopped, GITHUB_SIGINT_TIMEOUT)
    result = step.result(stopped.code or 0)
    assert stopped.code == (130 if how == "runner-cancel" else 143), result.stdout
    assert aborts(emulator) == aborted(emulator, "api-slow") == [result.outputs["build-id"]]
    assert result.outputs["result"] == "aborted"


@pytest.mark.parametrize("native_stop", [False, True], ids=["term-pass", "native-stop"])
def test_gitlab_cancel_aborts_the_build(
    podman: engine.Podman,
    image: str,
    make_emulator: MakeEmulator,
    tmp_path: Path,
    native_stop: bool,
) -> None:
    emulator = make_emulator()
    variables, script, report = gitlab_example()
    variables.update(northflank(emulator, "api-slow", NORTHFLANK_POLL_INTERVAL="30"), **gitlab_ci())
    job = GitlabJob(podman, image, tmp_path / "project", variables, script)
    process = job.start()
    try:
        until(lambda: started(emulator, "api-slow"), "the build has started")
        until(lambda: "Build " in job.log(), "the program has seen the build start")
        stopped = job.cancel(process, native_stop=native_stop)
    finally:
        if process.poll() is None:
            process.kill()
        remove(podman, job.name)
    ended_by_itself(stopped, GITLAB_STOP_TIMEOUT)
    values = dotenv(tmp_path / "project" / report)
    assert aborts(emulator) == aborted(emulator, "api-slow") == [values["NORTHFLANK_BUILD_ID"]]
    assert values["NORTHFLANK_RESULT"] == "aborted"


def test_jenkins_abort_stops_the_step_which_aborts_the_build(
    jenkins: JenkinsAgent, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    jenkins.start()
    script, _, report = jenkins_example()
    env = {**jenkins_env(emulator, "api-slow"), "NORTHFLANK_POLL_INTERVAL": "30"}
    step = jenkins.sh(script, env)
    until(lambda: started(emulator, "api-slow"), "the build has started")
    until(lambda: "Build " in step.log(), "the program has seen the build start")
    stopped = jenkins.stop_step(step)
    ended_by_itself(stopped, JENKINS_REMOTE_TIMEOUT)
    assert stopped.code == 143, step.log()
    outputs = json.loads((jenkins.workspace / report).read_text(encoding="utf-8"))
    assert aborts(emulator) == aborted(emulator, "api-slow") == [outputs["build-id"]]
    assert outputs["result"] == "aborted"


def test_cancel_reenactments_count_a_kill(
    podman: engine.Podman, image: str, tmp_path: Path
) -> None:
    """The re-enactments see a program that ignores the cancel: it is killed, and said to be."""
    job = GitlabJob(podman, image, tmp_path / "project", {}, ["trap '' TERM; sleep 60"])
    process = job.start()
    try:
        until(lambda: "sleep 60" in job.log(), "the job is running")
        stopped = job.cancel(process, native_stop=True)
    finally:
        if process.poll() is None:
            process.kill()
        remove(podman, job.name)
    assert stopped.killed, stopped
