"""How each CI system runs the image, and how it cancels a run, re-enacted with podman.

Each class follows its CI's own source, cited where it is defined; the scripts below are this
project's own wording of what those sources do. The one deviation everywhere is the network:
containers join the host's, so that they reach the emulator on 127.0.0.1 (GitHub puts a container
action on the job's network, the others on a bridge).

Cancellation, as each CI really does it:

- GitHub Actions (actions/runner, ProcessInvoker.cs and DockerCommandManager.DockerRun): SIGINT to
  the `docker run` client, which passes it on to the container's PID 1; SIGTERM 7.5 s later; the
  client killed 2.5 s after that.
- GitLab Runner's Docker executor (since 16.6; executors/docker/docker.go, wait.StopKillWait and
  shells.ContainerSigTermScriptForLinux): a `docker exec` that sends SIGTERM to every process of
  the container but PID 1, highest PID first, waiting up to 6 s for each to exit (the whole pass
  bounded to 10 s); then a `docker stop` with the engine's default 10 s before SIGKILL. With
  FF_USE_NATIVE_CONTAINER_STOP (since 19.1) only the `docker stop`.
- Jenkins' docker agent (docker-workflow's WithContainerStep.Decorator.kill, durable-task's
  FileMonitoringController.stop, DurableTaskStep.REMOTE_TIMEOUT): `docker exec ps -A -o
  pid,command e`, then `docker exec kill` of every process whose environment holds the step's
  JENKINS_SERVER_COOKIE; 20 s later the step is failed anyway, and the container goes with
  `docker stop --time=1` and `docker rm -f`.
- Azure Pipelines container jobs (azure-pipelines-agent, ContainerStepHost and ProcessInvoker):
  SIGINT, then SIGTERM 7.5 s later, then a kill, all sent to the `docker exec` client, which does
  not pass signals on (moby/moby#9098, docker/cli#5309, azure-pipelines-agent#4548); at the end of
  the job `docker rm --force`.

Sources (read in the versions current in 2026; GitLab's at v19.3.0):
https://docs.github.com/en/actions/reference/workflow-cancellation-reference
https://github.com/actions/runner/blob/main/src/Runner.Sdk/ProcessInvoker.cs
https://github.com/actions/runner/blob/main/src/Runner.Worker/Container/DockerCommandManager.cs
https://gitlab.com/gitlab-org/gitlab-runner/-/merge_requests/4446 (the SIGTERM pass, 16.6)
https://gitlab.com/gitlab-org/gitlab-runner/-/blob/main/executors/docker/internal/wait/wait.go
https://gitlab.com/gitlab-org/gitlab-runner/-/blob/main/shells/bash.go
https://github.com/jenkinsci/docker-workflow-plugin/blob/master/src/main/java/org/jenkinsci/plugins/docker/workflow/WithContainerStep.java
https://github.com/jenkinsci/docker-workflow-plugin/blob/master/src/main/java/org/jenkinsci/plugins/docker/workflow/client/DockerClient.java
https://github.com/jenkinsci/durable-task-plugin/blob/master/src/main/java/org/jenkinsci/plugins/durabletask/BourneShellScript.java
https://github.com/jenkinsci/workflow-durable-task-step-plugin/blob/master/src/main/java/org/jenkinsci/plugins/workflow/steps/durable_task/DurableTaskStep.java
https://github.com/microsoft/azure-pipelines-agent/blob/master/src/Agent.Worker/ContainerOperationProvider.cs
https://github.com/microsoft/azure-pipelines-agent/blob/master/src/Agent.Worker/Handlers/StepHost.cs
https://github.com/microsoft/azure-pipelines-agent/issues/4548
https://github.com/moby/moby/issues/9098
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.podman import Podman
from tests.runner import REPO, Result, parse_output_file

NETWORK = "--network=host"
LABEL = "nfba-test"

# GitHub (ProcessInvoker.cs): SIGINT, SIGTERM after 7.5 s, a kill 2.5 s later.
GITHUB_SIGINT_TIMEOUT, GITHUB_SIGTERM_TIMEOUT = 7.5, 2.5
# GitLab: the SIGTERM pass waits up to 6 s per process and 10 s in all; docker stop's default.
GITLAB_TERM_PASS, GITLAB_STOP_TIMEOUT = 10.0, 10
# Jenkins: DurableTaskStep.REMOTE_TIMEOUT, then DockerClient.stop's --time=1.
JENKINS_REMOTE_TIMEOUT, JENKINS_STOP_TIME = 20.0, 1
# Azure: the agent's ProcessInvoker, as GitHub's.
AZURE_SIGINT_TIMEOUT, AZURE_SIGTERM_TIMEOUT = 7.5, 2.5


def unique(prefix: str) -> str:
    return f"nfba-{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Stopped:
    """How a cancelled run ended: seconds from the CI's first move, and whether it had to kill."""

    ci: str
    seconds: float
    code: int | None
    killed: bool
    steps: list[str] = field(default_factory=list)


def wait_for(process: subprocess.Popen[Any], seconds: float) -> int | None:
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None


def until(condition: Callable[[], object], what: str, seconds: float = 30.0) -> None:
    """Wait until condition() is true; fail naming what did not happen."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def running(podman: Podman, name: str) -> bool:
    state = podman.run("inspect", "--format", "{{.State.Running}}", name, check=False)
    return state.returncode == 0 and state.stdout.strip() == "true"


def remove(podman: Podman, name: str) -> None:
    podman.run("rm", "--force", "--time", "0", name, check=False)


# -- GitHub Actions ---------------------------------------------------------------------------


def action_inputs() -> dict[str, str]:
    """Every input action.yml declares, with its default, as the runner fills them in."""
    action = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    return {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}


class GithubStep:
    """A `uses:` step of this Docker action, as actions/runner's ContainerActionHandler runs it.

    `docker run --name --label --workdir /github/workspace --rm`, every declared input as
    `-e INPUT_<NAME>` (upper case, spaces to _, hyphens kept, the value in the client's
    environment), the GITHUB_* and RUNNER_* variables with host paths translated, the four
    /github mounts and RUNNER_TEMP's, then the image and no arguments.
    """

    def __init__(
        self,
        podman: Podman,
        image: str,
        folder: Path,
        given: Mapping[str, str],
        *,
        event_name: str = "push",
        event: Mapping[str, Any] | None = None,
        github: Mapping[str, str] | None = None,
    ) -> None:
        self.podman, self.image, self.folder = podman, image, folder
        self.name = unique("github")
        self.inputs = {**action_inputs(), **given}
        self.dirs = {
            "home": "/github/home",
            "workflow": "/github/workflow",
            "file_commands": "/github/file_commands",
            "workspace": "/github/workspace",
            "runner_temp": "/github/runner_temp",
        }
        for local in self.dirs:
            (folder / local).mkdir(parents=True, exist_ok=True)
        guid = uuid.uuid4()
        self.output = folder / "file_commands" / f"set_output_{guid}"
        self.summary = folder / "file_commands" / f"step_summary_{guid}"
        for path in (self.output, self.summary):
            path.touch()
        payload = dict(event or {"ref": "refs/heads/main", "after": "b2" * 20})
        (folder / "workflow" / "event.json").write_text(json.dumps(payload), encoding="utf-8")
        self.variables = {
            "HOME": "/github/home",
            "GITHUB_WORKSPACE": "/github/workspace",
            "GITHUB_EVENT_PATH": "/github/workflow/event.json",
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_OUTPUT": f"/github/file_commands/{self.output.name}",
            "GITHUB_STEP_SUMMARY": f"/github/file_commands/{self.summary.name}",
            "GITHUB_REPOSITORY": "acme/api",
            "GITHUB_REPOSITORY_OWNER": "acme",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_API_URL": "https://api.github.com",
            "GITHUB_RUN_ID": "1234",
            "GITHUB_RUN_NUMBER": "7",
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_WORKFLOW": "Northflank build",
            "GITHUB_JOB": "build",
            "GITHUB_ACTION": "northflank",
            "GITHUB_ACTOR": "octocat",
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "RUNNER_NAME": "GitHub Actions 2",
            "RUNNER_ENVIRONMENT": "github-hosted",
            "RUNNER_TEMP": "/github/runner_temp",
            **(github or {}),
        }

    def input_variables(self) -> dict[str, str]:
        return {f"INPUT_{name.replace(' ', '_').upper()}": v for name, v in self.inputs.items()}

    def argv(self) -> list[str]:
        names = [*self.input_variables(), *self.variables]
        args = ["run", "--name", self.name, "--label", LABEL, "--workdir", "/github/workspace"]
        args += ["--rm", NETWORK]
        for name in names:
            args += ["-e", name]
        args += ["-e", "GITHUB_ACTIONS=true", "-e", "CI=true"]
        for local, inside in self.dirs.items():
            args += ["-v", f"{self.folder / local}:{inside}"]
        return self.podman.command(*args, self.image)

    def env(self) -> dict[str, str]:
        """The client's environment: the values the -e NAME options take."""
        return {**self.podman.env, **self.input_variables(), **self.variables}

    def start(self) -> subprocess.Popen[bytes]:
        with (self.folder / "log").open("wb") as log:
            return subprocess.Popen(self.argv(), env=self.env(), stdout=log, stderr=log)

    def run(self, timeout: float = 120.0) -> Result:
        process = self.start()
        try:
            code = process.wait(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                remove(self.podman, self.name)
        return self.result(code)

    def result(self, code: int) -> Result:
        """What the runner reads back: the log, the output file (its own parser) and summary."""
        log = (self.folder / "log").read_text(encoding="utf-8", errors="replace")
        result = Result(code, log, "")
        result.outputs_text = self.output.read_bytes().decode("utf-8")
        result.outputs = parse_output_file(result.outputs_text)
        result.summary = self.summary.read_text(encoding="utf-8")
        return result

    def cancel(self, process: subprocess.Popen[bytes]) -> Stopped:
        """The runner's cancel: SIGINT to the client, SIGTERM 7.5 s later, a kill 2.5 s after."""
        started, steps = time.monotonic(), ["SIGINT to docker run"]
        process.send_signal(signal.SIGINT)
        code = wait_for(process, GITHUB_SIGINT_TIMEOUT)
        if code is None:
            steps.append("SIGTERM to docker run")
            process.send_signal(signal.SIGTERM)
            code = wait_for(process, GITHUB_SIGTERM_TIMEOUT)
        killed = code is None
        if killed:
            steps.append("docker run killed, container removed")
            process.kill()
            process.wait()
            remove(self.podman, self.name)
        return Stopped("GitHub Actions", time.monotonic() - started, code, killed, steps)

    def stop(self, process: subprocess.Popen[bytes]) -> Stopped:
        """`docker stop`: SIGTERM to PID 1, SIGKILL 10 s later."""
        started = time.monotonic()
        stop = self.podman.run("stop", "--time", "10", self.name, check=False, timeout=60)
        code = process.wait(timeout=30)
        killed = code == 137 or "SIGKILL" in stop.stderr
        return Stopped("docker stop", time.monotonic() - started, code, killed, ["docker stop"])


# -- GitLab CI, Docker executor ---------------------------------------------------------------

# The entry command the runner gives a bash job (shells/bash.go, BashDetectShellScript): run the
# first bash found, else the first sh, reading the job script from standard input.
GITLAB_SHELL = """for shell in /usr/local/bin/bash /usr/bin/bash /bin/bash \\
    /usr/local/bin/sh /usr/bin/sh /bin/sh /busybox/sh; do
  if [ -x "$shell" ]; then exec "$shell"; fi
done
echo shell not found
exit 1
"""

# The runner's SIGTERM pass over the container (ContainerSigTermScriptForLinux): every process but
# PID 1 and this shell, highest PID first, each given up to 6 s to exit.
GITLAB_TERM_EVERY_PROCESS = """for pid in $(cd /proc && ls -d [0-9]* | sort -rn); do
  [ "$pid" -eq 1 ] || [ "$pid" -eq $$ ] && continue
  kill -TERM "$pid" 2>/dev/null || continue
  tries=6
  while [ -e "/proc/$pid" ] && [ "$tries" -gt 0 ]; do sleep 1; tries=$((tries - 1)); done
done
"""


def gitlab_script(variables: Mapping[str, str], commands: Sequence[str], folder: str) -> str:
    """The job script the runner writes to the shell's standard input (BashWriter.Finish, 19.x).

    A TERM trap in the shell and in the subshell that runs the job's lines, errexit and pipefail,
    the variables exported, then the commands, each echoed first.
    """
    lines = [f"export {key}={shlex.quote(value)}" for key, value in variables.items()]
    lines.append(f"cd {shlex.quote(folder)}")
    for command in commands:
        lines += [f"echo {shlex.quote('$ ' + command)}", command]
    body = "\n".join(lines) + "\n"
    return (
        "trap 'exit 1' TERM\n\n"
        'case "$(set -o)" in *"pipefail"*) set -o pipefail;; esac; set -o errexit\n'
        "set +o noclobber\n"
        f"(trap 'exit 1' TERM; eval {shlex.quote(body)}) < /dev/null\n"
        "exit 0\n"
    )


class GitlabJob:
    """A job of GitLab's Docker executor: the image's ENTRYPOINT kept, the shell detection as the
    command, the script on the container's standard input (AttachStdin, OpenStdin, StdinOnce)."""

    project_dir = "/builds/acme/api"

    def __init__(
        self,
        podman: Podman,
        image: str,
        folder: Path,
        variables: Mapping[str, str],
        commands: Sequence[str],
    ) -> None:
        self.podman, self.image, self.folder = podman, image, folder
        self.name = unique("gitlab")
        self.script = gitlab_script(variables, commands, self.project_dir)
        folder.mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        args = ["run", "--interactive", "--rm", "--name", self.name, "--label", LABEL, NETWORK]
        args += ["-v", f"{self.folder}:{self.project_dir}", self.image, "sh", "-c", GITLAB_SHELL]
        return self.podman.command(*args)

    def start(self) -> subprocess.Popen[bytes]:
        with (self.folder.parent / f"{self.name}.log").open("wb") as log:
            process = subprocess.Popen(
                self.argv(), env=self.podman.env, stdin=subprocess.PIPE, stdout=log, stderr=log
            )
        assert process.stdin is not None
        process.stdin.write(self.script.encode())
        process.stdin.close()
        return process

    def log(self) -> str:
        path = self.folder.parent / f"{self.name}.log"
        return path.read_text(encoding="utf-8", errors="replace")

    def run(self, timeout: float = 120.0) -> tuple[int, str]:
        process = self.start()
        try:
            code = process.wait(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                remove(self.podman, self.name)
        return code, self.log()

    def cancel(self, process: subprocess.Popen[bytes], *, native_stop: bool = False) -> Stopped:
        """The runner's cancel: the SIGTERM pass (not with FF_USE_NATIVE_CONTAINER_STOP), a stop."""
        started, steps = time.monotonic(), []
        if not native_stop:
            steps.append("SIGTERM to every process but PID 1")
            self.podman.run(
                "exec", self.name, "sh", "-c", GITLAB_TERM_EVERY_PROCESS,
                check=False, timeout=GITLAB_TERM_PASS,
            )  # fmt: skip
        code = wait_for(process, 0.1)
        killed = False
        if code is None:
            steps.append(f"docker stop (SIGKILL after {GITLAB_STOP_TIMEOUT} s)")
            stop = self.podman.run(
                "stop", "--time", str(GITLAB_STOP_TIMEOUT), self.name, check=False, timeout=60
            )
            code = process.wait(timeout=30)
            killed = code == 137 or "SIGKILL" in stop.stderr
        return Stopped("GitLab CI", time.monotonic() - started, code, killed, steps)


# -- Jenkins, agent { docker { image ... } } --------------------------------------------------


@dataclass
class JenkinsStep:
    """One `sh` step, started in the background as durable-task's BourneShellScript starts it."""

    control: Path
    cookie: str

    def result(self) -> int | None:
        path = self.control / "jenkins-result.txt"
        return int(path.read_text(encoding="utf-8")) if path.is_file() else None

    def log(self) -> str:
        path = self.control / "jenkins-log.txt"
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


class JenkinsAgent:
    """docker-workflow's agent: `docker run -t -d -u UID:GID -w WS -v WS:WS ... IMAGE cat`, then
    each step through `docker exec` as that user, which has no passwd entry."""

    user = "1000:1000"

    def __init__(self, podman: Podman, image: str, folder: Path) -> None:
        self.podman, self.image = podman, image
        self.name = unique("jenkins")
        self.workspace = folder / "workspace" / "northflank"
        self.tmp = folder / "workspace" / "northflank@tmp"
        for path in (self.workspace, self.tmp):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, 1000, 1000)

    def start(self) -> list[str]:
        """Start the container; the processes `docker top` lists, which must include cat.

        Jenkins looks once, when its own `docker top` has started, tens of milliseconds after
        the container; here the listing is read until cat shows, for up to 2 s.
        """
        ws, tmp = str(self.workspace), str(self.tmp)
        self.podman.run(
            "run", "-t", "-d", "-u", self.user, "-w", ws, "-v", f"{ws}:{ws}:rw,z",
            "-v", f"{tmp}:{tmp}:rw,z", "--name", self.name, "--label", LABEL, NETWORK,
            self.image, "cat",
        )  # fmt: skip
        deadline = time.monotonic() + 2.0
        while True:
            top = self.podman.run("top", self.name, "pid", "comm")
            names = [line.split()[-1] for line in top.stdout.splitlines()[1:] if line.strip()]
            if "cat" in names or time.monotonic() > deadline:
                return names
            time.sleep(0.01)

    def sh(self, script: str, env: Mapping[str, str]) -> JenkinsStep:
        """durable-task's launch: the script copied, run with the cookie in its environment, its
        output to a log and its exit code to a result file, all in the background."""
        cookie = f"durable-{uuid.uuid4().hex}"
        control = self.tmp / f"durable-{uuid.uuid4().hex[:8]}"
        control.mkdir()
        (control / "script.sh").write_text(script, encoding="utf-8")
        for path in (control, control / "script.sh"):
            os.chown(path, 1000, 1000)
        c = shlex.quote(str(control))
        wrapper = (
            f"cp {c}/script.sh {c}/script.sh.copy; "
            f"{{ while [ -d {c} -a ! -f {c}/jenkins-result.txt ]; do touch {c}/jenkins-log.txt; "
            "sleep 3; done } & "
            f"jsc={cookie}; JENKINS_SERVER_COOKIE=$jsc sh -xe {c}/script.sh.copy "
            f"> {c}/jenkins-log.txt 2>&1; echo $? > {c}/jenkins-result.txt.tmp; "
            f"mv {c}/jenkins-result.txt.tmp {c}/jenkins-result.txt; wait"
        )
        args = ["exec"]
        for key, value in {**env, "JENKINS_SERVER_COOKIE": "please-do-not-kill-me"}.items():
            args += ["--env", f"{key}={value}"]
        args += [
            "-w",
            str(self.workspace),
            self.name,
            "nohup",
            "sh",
            "-c",
            f"({wrapper}) >&- 2>&- &",
        ]
        self.podman.run(*args)
        return JenkinsStep(control, cookie)

    def stop_step(self, step: JenkinsStep) -> Stopped:
        """Abort the step: its processes found with ps and signalled with kill, through exec."""
        started = time.monotonic()
        listing = self.podman.run(
            "exec", self.name, "ps", "-A", "-o", "pid,command", "e", check=False
        )
        marker = f"JENKINS_SERVER_COOKIE={step.cookie}"
        pids = [line.split()[0] for line in listing.stdout.splitlines() if marker in line]
        if listing.returncode != 0:  # Jenkins: IOException("failed to run ps"), nothing killed
            steps = [f"ps failed: {listing.stderr.strip()[-120:]}"]
        else:
            steps = [f"ps found {len(pids)} processes"]
        if pids:
            steps.append("kill")
            self.podman.run("exec", self.name, "kill", *pids, check=False)
        deadline = started + JENKINS_REMOTE_TIMEOUT
        while step.result() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        code = step.result()
        seconds = time.monotonic() - started
        killed = code is None
        if killed:
            steps.append(f"after {JENKINS_REMOTE_TIMEOUT:.0f} s the step failed; container stopped")
        self.destroy()
        return Stopped("Jenkins", seconds, code, killed, steps)

    def destroy(self) -> None:
        """DockerClient.stop: `docker stop --time=1`, then `docker rm -f`."""
        self.podman.run("stop", f"--time={JENKINS_STOP_TIME}", self.name, check=False, timeout=60)
        remove(self.podman, self.name)


# -- Azure Pipelines container jobs -----------------------------------------------------------


class AzureContainerJob:
    """A container job of the Azure Pipelines agent (ContainerOperationProvider, StepHost).

    `docker create` with the agent's keep-alive command (`bash -c "sleep infinity"` in its
    current node selection), `docker start`, a user with the agent's UID added through exec,
    then each step as `docker exec -i -u UID -w ...`; a `script:` step ends as
    `bash --noprofile --norc <file>` in the sources directory.
    """

    uid = "1000"
    user = "vsts_azpcontainer"

    def __init__(self, podman: Podman, image: str, folder: Path) -> None:
        self.podman, self.image = podman, image
        self.name = unique("azure")
        self.work = folder / "work"
        (self.work / "1" / "s").mkdir(parents=True, exist_ok=True)
        (self.work / "_temp").mkdir(parents=True, exist_ok=True)
        for path in (self.work / "1" / "s", self.work / "_temp"):
            os.chown(path, int(self.uid), int(self.uid))

    def start(self) -> None:
        self.podman.run(
            "create", "--name", self.name, "--label", LABEL, NETWORK,
            "-v", f"{self.work}:/__w", self.image, "bash", "-c", "sleep infinity",
        )  # fmt: skip
        self.podman.run("start", self.name)
        for command in (
            ["sh", "-c", "command -v bash"],
            ["bash", "-c", f"getent passwd {self.uid} | cut -d: -f1 "],
            ["bash", "-c", "if [[ -e '/etc/alpine-release' ]]; then echo alpine; fi"],
            ["useradd", "-m", "-u", self.uid, self.user],
            ["groupadd", "azure_pipelines_sudo"],
            ["usermod", "-a", "-G", "azure_pipelines_sudo", self.user],
            ["su", "-c", "echo '%azure_pipelines_sudo ALL=(ALL:ALL) NOPASSWD:ALL' >> /etc/sudoers"],
        ):
            self.podman.run("exec", self.name, *command)

    def script(self, text: str, env: Mapping[str, str]) -> subprocess.Popen[str]:
        """A `script:` step, started; its output lines hold the logging commands."""
        path = self.work / "_temp" / f"{uuid.uuid4()}.sh"
        path.write_text(text, encoding="utf-8")
        args = ["exec", "-i", "-u", self.uid, "-w", "/__w/1/s"]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        args += [self.name, "bash", "--noprofile", "--norc", f"/__w/_temp/{path.name}"]
        return subprocess.Popen(
            self.podman.command(*args),
            env=self.podman.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def cancel(self, process: subprocess.Popen[str]) -> Stopped:
        """The agent's cancel: signals to the exec client, then the container removed."""
        started, steps = time.monotonic(), ["SIGINT to docker exec"]
        process.send_signal(signal.SIGINT)
        code = wait_for(process, AZURE_SIGINT_TIMEOUT)
        if code is None:
            steps.append("SIGTERM to docker exec")
            process.send_signal(signal.SIGTERM)
            code = wait_for(process, AZURE_SIGTERM_TIMEOUT)
        if code is None:
            process.kill()
            code = process.wait()
        steps.append("docker rm --force")
        seconds = time.monotonic() - started
        self.remove()
        return Stopped("Azure Pipelines", seconds, code, True, steps)

    def remove(self) -> None:
        remove(self.podman, self.name)
