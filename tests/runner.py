"""The GitHub runner's side of the container contract, for tests: environment in, files out."""

from __future__ import annotations

import contextlib
import faulthandler
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from northflank_build.cli import main
from northflank_build.signals import Signals
from tests.audit import audit, run_texts
from tests.clock import CLOCK

REPO = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).resolve().parent / "events"


class OutputFileError(ValueError):
    """The runner would refuse the file and fail the step."""


def parse_output_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT parsed the way the runner's FileCommandManager parses it."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        equals, heredoc = line.find("="), line.find("<<")
        if equals >= 0 and (heredoc < 0 or equals < heredoc):
            values[line[:equals]] = line[equals + 1 :]
            continue
        if heredoc < 0:
            raise OutputFileError(f"Invalid format '{line}'")
        name, delimiter = line[:heredoc], line[heredoc + 2 :]
        body: list[str] = []
        while True:
            if index >= len(lines):
                raise OutputFileError(f"Invalid value. Matching delimiter not found '{delimiter}'")
            current = lines[index]
            index += 1
            if current == delimiter:
                break
            body.append(current)
        values[name] = "\n".join(body)
    if text and not text.endswith("\n"):
        raise OutputFileError("Invalid value. EOF marker missing new line.")
    return values


@dataclass
class Result:
    """What one run of the program left behind."""

    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    outputs_text: str = ""

    @property
    def text(self) -> str:
        return self.stdout + self.stderr

    @property
    def shown(self) -> str:
        """What the CI log shows: GitHub's runner and Azure's agent consume their mask commands."""
        lines = self.text.splitlines()
        masks = ("::add-mask::", "##vso[task.setsecret]")
        return "\n".join(line for line in lines if not line.startswith(masks))

    def json_output(self, name: str) -> Any:
        return json.loads(self.outputs[name])


def base_env(tmp: Path) -> dict[str, str]:
    """A minimal process environment with nothing of the CI it runs in."""
    keep = ("PATH", "HOME", "LANG", "SYSTEMROOT", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PYTHONPATH"] = str(REPO)
    env["HOME"] = str(tmp)
    return env


def github_env(
    tmp: Path,
    inputs: Mapping[str, str],
    *,
    event_name: str = "push",
    event: str | dict[str, Any] | None = "push.json",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment the runner gives a container action: INPUT_* with hyphens, file commands."""
    env = base_env(tmp)
    output, summary = tmp / "github_output", tmp / "step_summary"
    output.touch()
    summary.touch()
    env.update(
        {
            "GITHUB_ACTIONS": "true",
            "CI": "true",
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_WORKSPACE": str(tmp),
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_REPOSITORY": "acme/api",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "1234",
        }
    )
    if event is not None:
        path = tmp / "event.json"
        if isinstance(event, str):
            payload = json.loads((EVENTS / event).read_text(encoding="utf-8"))
        else:
            payload = event
        path.write_text(json.dumps(payload), encoding="utf-8")
        env["GITHUB_EVENT_PATH"] = str(path)
    for name, value in inputs.items():
        env[f"INPUT_{name.upper()}"] = value
    env.update(extra or {})
    return env


def run(
    env: Mapping[str, str],
    *args: str,
    tmp: Path | None = None,
    timeout: float = 60,
    sleep: Callable[[float], None] | None = None,
    signals: Signals | None = None,
) -> Result:
    """Run the program in-process, on the tests' clock, and collect what the runner would read.

    Every sleep of the program is skipped (the emulator's builds progress as if it had slept);
    `sleep` replaces that, e.g. to act at a chosen moment of the wait. A run that has not ended
    after `timeout` real seconds ends the whole test session with every thread's traceback.
    """
    stdout, stderr = io.StringIO(), io.StringIO()
    faulthandler.dump_traceback_later(timeout, exit=True)
    try:
        with contextlib.chdir(tmp or REPO):
            code = main(
                list(args),
                dict(env),
                signals=signals or Signals(sleep or CLOCK.sleep),
                clock=CLOCK.monotonic,
                wall=CLOCK.time,
                stdout=stdout,
                stderr=stderr,
            )
    finally:
        faulthandler.cancel_dump_traceback_later()
    return _collect(Result(code, stdout.getvalue(), stderr.getvalue()), env, args, tmp)


def run_process(
    env: Mapping[str, str], *args: str, tmp: Path | None = None, timeout: float = 60
) -> Result:
    """Run the program as a subprocess, in real time, and collect what the runner would read."""
    process = subprocess.run(
        [sys.executable, str(REPO / "entrypoint.py"), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=str(tmp or REPO),
    )
    return _collect(Result(process.returncode, process.stdout, process.stderr), env, args, tmp)


def _collect(
    result: Result, env: Mapping[str, str], args: tuple[str, ...], tmp: Path | None
) -> Result:
    """The files the runner reads after the step, and the secrets audit of everything."""
    output = env.get("GITHUB_OUTPUT")
    if output and Path(output).exists():
        # Bytes, as the runner reads them: a \r in a value must not turn into a \n.
        result.outputs_text = Path(output).read_bytes().decode("utf-8")
        result.outputs = parse_output_file(result.outputs_text)
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary and Path(summary).exists():
        result.summary = Path(summary).read_text(encoding="utf-8")
    cwd = tmp or REPO
    audit(run_texts(result, env, cwd), env, args, cwd)
    return result
