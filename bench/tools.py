"""The commands compared: this program, Northflank's CLI and Python SDK, a bare script and curl.

The CLI and the SDK are installed into bench/.scratch/ (never into the project's environment),
once: a later run finds them there. A tool that cannot be installed or found is reported with
the reason, and the benchmark goes on with the others.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
SCRATCH = BENCH / ".scratch"
CLI_NAME, CLI_VERSION = "@northflank/cli", "0.9.24"
SDK_NAME, SDK_VERSION = "northflank", "2.1.0"
INSTALL_TIMEOUT = 600.0

TOKEN = "bench-token-0123456789"
PROJECT = "bench-project"
SERVICE = "api"
REPOSITORY = "acme/api"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
BODY = {"sha": SHA, "branch": "main"}


@dataclass(frozen=True)
class Tool:
    """A command that starts one build of SERVICE against the emulator."""

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = SCRATCH


@dataclass(frozen=True)
class Missing:
    """A tool that could not be installed or run here, and why."""

    name: str
    reason: str


Log = Callable[[str], None]


def base_env() -> dict[str, str]:
    """A small environment: nothing of the CI or the shell the benchmark runs in."""
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
    return {k: v for k, v in os.environ.items() if k in keep}


def _run(command: list[str], log: Log) -> str | None:
    """None when the command succeeded, else a one-line reason."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{command[0]}: {error}"
    log(f"  {' '.join(command[:4])} ... ({time.monotonic() - started:.0f} s)")
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"{' '.join(command[:3])} exited with {done.returncode}: {last[0]}"
    return None


def install_cli(log: Log) -> Path | Missing:
    """The CLI's executable, installed with the machine's npm into bench/.scratch/cli."""
    name = f"northflank CLI {CLI_VERSION}"
    prefix = SCRATCH / "cli"
    package = prefix / "node_modules" / "@northflank" / "cli" / "package.json"
    executable = prefix / "node_modules" / ".bin" / "northflank"
    if not shutil.which("node") or not shutil.which("npm"):
        return Missing(name, "node and npm are not installed on this machine")
    if not (package.is_file() and json.loads(package.read_text())["version"] == CLI_VERSION):
        log(f"installing {CLI_NAME}@{CLI_VERSION} into {prefix.relative_to(REPO)}")
        prefix.mkdir(parents=True, exist_ok=True)
        # Install scripts only print a greeting and build optional native speed-ups.
        npm = ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund"]
        problem = _run([*npm, "--ignore-scripts", f"{CLI_NAME}@{CLI_VERSION}"], log)
        if problem:
            return Missing(name, f"npm could not install it: {problem}")
    return executable if executable.exists() else Missing(name, f"{executable} is missing")


def install_sdk(log: Log) -> Path | Missing:
    """The interpreter of a virtual environment in bench/.scratch/sdk that holds the SDK."""
    name = f"Python SDK {SDK_VERSION}"
    venv = SCRATCH / "sdk"
    python = venv / "bin" / "python"
    check = [str(python), "-c", f"import importlib.metadata as m; print(m.version({SDK_NAME!r}))"]
    try:
        found = subprocess.run(check, capture_output=True, text=True, timeout=60, check=False)
        installed = found.stdout.strip() == SDK_VERSION
    except OSError:
        installed = False
    if not installed:
        log(f"installing {SDK_NAME}=={SDK_VERSION} into {venv.relative_to(REPO)}")
        problem = _run([sys.executable, "-m", "venv", "--clear", str(venv)], log)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        problem = problem or _run([*pip, f"{SDK_NAME}=={SDK_VERSION}"], log)
        if problem:
            return Missing(name, f"pip could not install it: {problem}")
    return python


def cli_home(api_url: str) -> Path:
    """A HOME whose ~/.northflank/config.json points the CLI at the emulator.

    The CLI reads its token and host only from that file (format: @northflank/js-client's
    ApiClientFileContextProvider). lastUpdateCheck is a number of milliseconds so that the CLI
    skips its daily check for a newer release, which would reach out to its registry.
    """
    home = SCRATCH / "home"
    config = {
        "current": "bench",
        "contexts": [{"name": "bench", "token": TOKEN, "host": api_url, "project": PROJECT}],
        "lastUpdateCheck": int(time.time() * 1000),
    }
    folder = home / ".northflank"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return home


def workspace() -> Path:
    """A GitHub-like workspace: the event payload, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY."""
    folder = SCRATCH / "workspace"
    folder.mkdir(parents=True, exist_ok=True)
    event = {
        "ref": "refs/heads/main",
        "after": SHA,
        "head_commit": {"id": SHA},
        "repository": {"full_name": REPOSITORY},
    }
    (folder / "event.json").write_text(json.dumps(event), encoding="utf-8")
    for name in ("github_output", "step_summary"):
        (folder / name).write_text("", encoding="utf-8")
    return folder


def this_program(api_url: str, service: str = SERVICE, **inputs: str) -> Tool:
    """This program as the GitHub Action runs it: INPUT_* variables and the runner's files."""
    folder = workspace()
    env = base_env() | {
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(folder / "event.json"),
        "GITHUB_OUTPUT": str(folder / "github_output"),
        "GITHUB_STEP_SUMMARY": str(folder / "step_summary"),
        "GITHUB_WORKSPACE": str(folder),
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_SHA": SHA,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "1",
        "HOME": str(folder),
        "PYTHONPATH": str(REPO),
    }
    given = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": service,
        "api-url": api_url,
        "service-type": "build",
        **inputs,
    }
    env.update({f"INPUT_{name.upper()}": value for name, value in given.items()})
    command = [sys.executable, str(REPO / "entrypoint.py")]
    return Tool("this program (trigger only)", command, env, folder)


def competitors(api_url: str, log: Log) -> list[Tool | Missing]:
    """The tools a user would otherwise pick, each ready to start one build."""
    body = json.dumps(BODY)
    shared = {"BENCH_BODY": body, "BENCH_PROJECT": PROJECT, "BENCH_SERVICE": SERVICE}
    tools: list[Tool | Missing] = []
    cli = install_cli(log)
    if isinstance(cli, Missing):
        tools.append(cli)
    else:
        command = [str(cli), "start", "service", "build", "--projectId", PROJECT]
        command += ["--serviceId", SERVICE, "--input", body]
        env = base_env() | {"HOME": str(cli_home(api_url))}
        tools.append(Tool(f"northflank CLI {CLI_VERSION}", command, env))
    sdk = install_sdk(log)
    if isinstance(sdk, Missing):
        tools.append(sdk)
    else:
        env = base_env() | shared
        env |= {"NORTHFLANK_API_TOKEN": TOKEN, "NORTHFLANK_API_BASE_URL": api_url}
        command = [str(sdk), str(BENCH / "sdk_start.py")]
        tools.append(Tool(f"Python SDK {SDK_VERSION} (one start call)", command, env))
    env = base_env() | shared | {"BENCH_API_URL": api_url, "BENCH_TOKEN": TOKEN}
    command = [sys.executable, str(BENCH / "bare_start.py")]
    tools.append(Tool("bare script (requests, yaml, jsonschema)", command, env))
    curl = shutil.which("curl")
    if curl is None:
        tools.append(Missing("curl", "curl is not installed on this machine"))
    else:
        url = f"{api_url}/v1/projects/{PROJECT}/services/{SERVICE}/build"
        command = [curl, "-sSf", "-X", "POST", "-H", f"Authorization: Bearer {TOKEN}"]
        command += ["-H", "Content-Type: application/json", "--data", body, url]
        tools.append(Tool("curl (one POST)", command, base_env()))
    return tools
