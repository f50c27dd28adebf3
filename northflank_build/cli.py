"""The command-line entry: runs the stages in order and maps failures to exit codes.

inputs -> CI context -> request body -> API -> waiting -> report

`main` is the program. Everything it reads from outside (arguments, environment, clock, sleep,
output streams, signals) is a parameter, so the tests run it in-process on a virtual clock.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

from northflank_build.cancel import Cancel, Cancelled, abort_build, interrupted_before_start
from northflank_build.client import Api, ServiceRef, Transport
from northflank_build.console import Console, for_environment
from northflank_build.context import CiContext, detect
from northflank_build.errors import ApiError, Failure, InputErrors, Interrupted
from northflank_build.inputs import Inputs, read_inputs
from northflank_build.interruptible import send_from_worker_threads
from northflank_build.links import DASHBOARDS, builds_url, service_url
from northflank_build.logs import BuildLog, failure_lines, plain
from northflank_build.model import Build, Service
from northflank_build.report import (
    Outcome,
    append_summary,
    duration_text,
    outputs,
    summary_markdown,
    write_github_output,
    write_outputs_file,
)
from northflank_build.request import StartRequest, build_body
from northflank_build.schedule import describe, history_durations
from northflank_build.settings import MAX_TIMEOUT, Settings, parse_settings
from northflank_build.signals import Pending, Signals
from northflank_build.start import start_build
from northflank_build.wait import wait_for

EXIT_SUCCESS, EXIT_BUILD_FAILED, EXIT_TIMEOUT = 0, 1, 4
TIMED_OUT_LINES = 5  # log lines the summary shows of where a timed-out build was


@dataclass(frozen=True)
class Ending:
    """How the run ends once a request exists: its result, exit code, build and log tail."""

    result: str
    code: int
    build: Build | None = None
    log_tail: tuple[str, ...] = ()
    highlights: tuple[str, ...] = ()  # the log lines that explain the ending


@dataclass(frozen=True)
class Setup:
    """The inputs read and checked, and the API client: nothing sent yet."""

    inputs: Inputs
    settings: Settings
    ci: CiContext
    api: Api


@dataclass(frozen=True)
class Run:
    """What the stages before the start produced, for the stages after it."""

    settings: Settings
    ci: CiContext
    api: Api
    service: ServiceRef
    request: StartRequest
    console: Console
    signals: Signals
    env: Mapping[str, str] = field(repr=False)
    inputs: Inputs | None = None
    service_url: str | None = None  # the service's page on Northflank, where it is known


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    signals: Signals | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], None] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the program; the exit code.

    The entry scripts pass signals already installed, so that a signal during the imports is
    handled too; without them no handler is installed (a run inside another program).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    env = os.environ if env is None else env
    signals = signals or Signals(sleep)
    stdout = stdout or sys.stdout
    json_out = _json_requested(argv)
    console = for_environment(env, stdout=stdout, stderr=stderr or sys.stderr, quiet=json_out)
    api: Api | None = None
    try:
        setup = configure(argv, env, console, signals, clock, wall)
        api = setup.api
        run = prepare(setup, env, console, signals)
    except Failure as failure:
        errors = failure.errors if isinstance(failure, InputErrors) else [failure]
        for error in errors:
            console.error(error.message, title=error.title)
        if json_out:
            made = api.requests_made if api is not None else 0
            _print_json(stdout, console.redact_value(failure_values(failure, made)))
        return failure.exit_code
    except Interrupted as stop:
        signals.disarm()
        cancelled = interrupted_before_start(console, stop.signum)
        if json_out:
            made = api.requests_made if api is not None else 0
            _print_json(stdout, outputs(Outcome(cancelled.result, {}, made)))
        return cancelled.code
    ending = carry_out(run)
    signals.disarm()
    write_report(run, ending, stdout if json_out else None)
    return ending.code


def failure_values(failure: Failure, api_requests: int) -> dict[str, Any]:
    """The outputs of a run that ended before its start request was built, for
    --output-format json: every output empty, result error, and the error itself."""
    values = outputs(Outcome("error", {}, api_requests))
    values["error"] = {"message": failure.message, "exit-code": failure.exit_code}
    return values


def _print_json(out: TextIO, values: Mapping[str, Any]) -> None:
    out.write(json.dumps(values, separators=(",", ":")) + "\n")
    out.flush()


def _json_requested(argv: Sequence[str]) -> bool:
    args = list(argv)
    return "--output-format=json" in args or any(
        a == "--output-format" and b == "json" for a, b in itertools.pairwise(args)
    )


def configure(
    argv: Sequence[str],
    env: Mapping[str, str],
    console: Console,
    signals: Signals,
    clock: Callable[[], float],
    wall: Callable[[], float],
) -> Setup:
    """Inputs, CI context, settings and the API client: no request sent."""
    inputs = read_inputs(argv, env)
    token = inputs.value("api-token").strip()
    if token:
        console.add_secret(token)  # before anything else is printed
    for name, meant in inputs.unknown:
        guess = f" (did you mean {meant}?)" if meant else ""
        console.warning(f"{name} is not an input or setting of this program{guess}; it is ignored")
    ci = detect(env)
    settings = parse_settings(inputs, env, token_hint=_token_hint(ci))
    for secret in settings.secrets():
        console.add_secret(secret)
    api = Api(
        settings.api_url,
        settings.api_token,
        team_id=settings.team_id,
        transport=Transport.from_env(env),
        notify=console.info,
        debug=console.debug,
        clock=clock,
        wall=wall,
        sleep=signals.sleep,
    )
    send_from_worker_threads(api.session, signals)
    return Setup(inputs, settings, ci, api)


def prepare(setup: Setup, env: Mapping[str, str], console: Console, signals: Signals) -> Run:
    """The service (read when service-type is auto) and the start request: nothing started."""
    settings, ci, api = setup.settings, setup.ci, setup.api
    service_ref = ServiceRef(settings.project_id, settings.service_id)
    limits = api.limits(api.clock() + settings.timeout)
    service: Service | None = None
    if settings.service_type == "auto":
        service = api.get_service(service_ref, limits)
        console.info(f"Service {settings.service_id}: {service.service_type} service")
    request = build_body(settings, ci, service, console.warning)
    for note in request.notes:
        console.info(note)
    page = service_url(settings.api_url, settings.team_id, settings.project_id, settings.service_id)
    return Run(settings, ci, api, service_ref, request, console, signals, env, setup.inputs, page)


def _token_hint(ci: CiContext) -> str:
    if ci.fork and ci.system != "github":
        return (
            f"it is empty because this run is for a pull request from a fork, and {ci.name} "
            "withholds secrets from those unless told otherwise; build it after review"
        )
    if ci.fork:
        return (
            "it is empty because this workflow runs for a pull request from a fork, and "
            "GitHub withholds secrets from those; build such pull requests after review, "
            "e.g. from a push or a workflow_dispatch"
        )
    return ""


def carry_out(run: Run) -> Ending:
    """Start the build and, with wait, follow it to its end; every failure becomes an Ending."""
    settings, console, api = run.settings, run.console, run.api
    if settings.dry_run:
        console.info("Dry run: this request would be sent, and nothing was started:")
        console.info(json.dumps(run.request.redacted(), indent=2))
        return Ending("dry-run", EXIT_SUCCESS)
    console.info(f"Starting a build of {settings.service_id}: {run.request.describe()}")
    body = run.request.body
    limits = api.limits(api.clock() + settings.timeout)
    try:
        run.signals.check()  # a signal received before now: start nothing
    except Interrupted as stop:
        run.signals.disarm()
        return _ending(interrupted_before_start(console, stop.signum))
    sent_at = api.wall()
    starting = Pending(
        run.signals, lambda: start_build(api, run.service, body, console.info, limits)
    )
    try:
        build = starting.result()
    except Interrupted as stop:
        cancel = _cancel(stop, run)
        return _ending(cancel.during_start(starting, body, sent_at, run.request.describe()))
    except Failure as failure:
        console.error(failure.message, title=failure.title)
        return Ending("error", failure.exit_code)
    console.info(f"Build {build.id} started ({build.status or 'unknown status'})")
    if run.service_url:
        console.info(
            f"Builds of {settings.service_id} on Northflank: {builds_url(run.service_url)}"
        )
    _write_github(run, {"build-id": build.id})
    if not settings.wait:
        return Ending("started", EXIT_SUCCESS, build)
    try:
        return follow(run, build)
    except Interrupted as stop:
        return _ending(_cancel(stop, run).after_start(stop.build or build))
    except Failure as failure:
        console.error(_after_start(failure, build, run), title=failure.title)
        return Ending("error", failure.exit_code, build)


def _after_start(failure: Failure, build: Build, run: Run) -> str:
    """A failure once the build has started: it may still be running, so starting the step
    again could start a second build; "try again later" is no advice here."""
    where = f" ({builds_url(run.service_url)})" if run.service_url else ""
    note = (
        f"Build {build.id} was started and may still be running on Northflank: check it "
        f"there{where} before starting another"
    )
    if isinstance(failure, ApiError):
        return failure.with_hint(note).message
    return f"{failure.message}. {note}"


def _cancel(stop: Interrupted, run: Run) -> Cancel:
    """The cancellation path for this run; from now on no signal interrupts anything."""
    signals = run.signals
    signals.disarm()
    return Cancel(
        api=run.api,
        service=run.service,
        console=run.console,
        abort=run.settings.abort_on_cancel,
        signum=stop.signum,
        at=signals.at if signals.at is not None else time.monotonic(),
    )


def _ending(cancelled: Cancelled) -> Ending:
    return Ending(cancelled.result, cancelled.code, cancelled.build)


def follow(run: Run, build: Build) -> Ending:
    """Wait for the build to conclude, then judge it: success, failure or timed out."""
    settings, console, api = run.settings, run.console, run.api
    deadline = api.clock() + settings.timeout
    history = _history(run, build) if settings.poll_interval is None else ()
    console.info(describe(settings.poll_interval, history))
    log = BuildLog(api, run.service, build, console, api.limits(deadline))
    waited = wait_for(
        api,
        run.service,
        build,
        console,
        deadline=deadline,
        fixed_interval=settings.poll_interval,
        history=history,
        log=log if settings.logs == "follow" else None,
        sleep=run.signals.sleep,
    )
    build = waited.build
    if waited.timed_out:
        return _timed_out(run, build, log)
    message = build.message or build.status
    if build.succeeded:
        console.info(f"Build {build.id} succeeded: {message}")
        return Ending("success", EXIT_SUCCESS, build)
    tail = _log_tail(settings, log)
    lines = tuple(failure_lines(list(tail)))
    text = f"Build {build.id} concluded without success: {build.status}"
    text += f": {message}" if message != build.status else ""
    text += "".join(f"\n{line}" for line in lines)
    if settings.fail_on_build_failure:
        console.error(text, title=f"Northflank build {build.id} failed")
        return Ending("failure", EXIT_BUILD_FAILED, build, tail, lines)
    console.warning(text + "\n(fail-on-build-failure is false)")
    return Ending("failure", EXIT_SUCCESS, build, tail, lines)


def _history(run: Run, build: Build) -> tuple[float, ...]:
    """Durations of the service's recent builds, read once; none when the list fails."""
    try:
        builds = run.api.list_builds(run.service, run.api.limits())
    except ApiError as error:
        run.console.warning(f"could not read recent builds to time the polls: {error.message}")
        return ()
    return history_durations(builds, exclude=build.id)


def _log_tail(settings: Settings, log: BuildLog) -> tuple[str, ...]:
    """The last lines of the log of a build that did not succeed: followed, or read now."""
    if settings.logs == "follow":
        return tuple(log.recent)
    return tuple(log.tail()) if settings.logs == "on-failure" else ()


def _timed_out(run: Run, build: Build, log: BuildLog) -> Ending:
    settings, console = run.settings, run.console
    if settings.abort_on_timeout:
        with run.signals.deferred():
            aborted = abort_build(run.api, run.service, build, run.api.limits(), console.warning)
        if aborted is not None:
            console.info(f"Aborted build {build.id} on Northflank (abort-on-timeout)")
            build = aborted
    else:
        console.info(f"Build {build.id} goes on running on Northflank (abort-on-timeout is false)")
    tail = _log_tail(settings, log)
    form = run.inputs.form if run.inputs else (lambda name, value: f"{name}: {value}")
    longer = duration_text(min(MAX_TIMEOUT, settings.timeout * 2))
    console.error(
        f"timeout {settings.timeout:g}s ran out while build {build.id} was {build.status}: "
        f"raise timeout ({form('timeout', longer)}), or do not wait for the build "
        f"({form('wait', 'false')})",
        title="Northflank build timed out",
    )
    last = tuple(plain(line) for line in tail[-TIMED_OUT_LINES:])
    return Ending("timed-out", EXIT_TIMEOUT, build, tail, last)


# -- report ------------------------------------------------------------------------------------


def _write_github(run: Run, values: Mapping[str, Any]) -> None:
    """Set step outputs: in GITHUB_OUTPUT, and where the CI reads them from the log."""
    run.console.set_outputs(values)
    path = run.env.get("GITHUB_OUTPUT")
    if path:
        write_github_output(Path(path), values)


def write_report(run: Run, ending: Ending, json_out: TextIO | None) -> None:
    """Write every output, the outputs file and the summary; never raises."""
    console, settings = run.console, run.settings
    outcome = Outcome(
        result=ending.result,
        request=run.request.redacted(),
        api_requests=run.api.requests_made,
        build=ending.build,
        service=settings.service_id,
        target=run.request.describe(),
        log_tail=tuple(console.redact(line) for line in ending.log_tail),
        run_url=run.ci.run_url,
        highlights=tuple(console.redact(line) for line in ending.highlights),
        service_url=run.service_url,
        code_host=run.request.code_host,
        links_note=_links_note(run),
    )
    values = console.redact_value(outputs(outcome))
    try:
        _write_github(run, values)
        if settings.outputs_file:
            write_outputs_file(settings.outputs_file, values)
        summary_path = run.env.get("GITHUB_STEP_SUMMARY")
        if summary_path and settings.summary:
            summary = console.redact(summary_markdown(outcome, values))
            append_summary(Path(summary_path), summary)
    except OSError as error:
        console.warning(f"could not write the outputs: {error.strerror} ({error.filename})")
    if json_out is not None:
        _print_json(json_out, values)


def _links_note(run: Run) -> str:
    """Why the summary cannot link the service on Northflank, when giving team-id would."""
    settings = run.settings
    if run.service_url or settings.api_url not in DASHBOARDS:
        return ""
    form = run.inputs.form("team-id", "your-team") if run.inputs else "team-id"
    return (
        f"Give team-id to link the service on Northflank ({form}): the team's name in the "
        "dashboard's address, app.northflank.com/t/your-team/..."
    )


def exit_now(code: int) -> NoReturn:
    """Exit with code at once: flush what was printed, then skip the interpreter's teardown.

    Every file the program writes is closed by then; the teardown only costs time.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def command() -> NoReturn:
    """The installed `northflank-build` command."""
    signals = Signals()
    signals.install()
    exit_now(main(signals=signals))
