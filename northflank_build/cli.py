"""The command-line entry: runs the stages in order and maps failures to exit codes.

inputs -> CI context -> request bodies -> API -> waiting -> report

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

from northflank_build.cancel import Cancel, interrupted_before_start
from northflank_build.client import Api, ServiceRef, Transport
from northflank_build.conclude import conclude
from northflank_build.console import Console, for_environment
from northflank_build.context import CiContext, detect
from northflank_build.errors import Failure, InputError, InputErrors, Interrupted
from northflank_build.inputs import Inputs, read_inputs
from northflank_build.interruptible import send_from_worker_threads
from northflank_build.links import DASHBOARDS, builds_url, service_url
from northflank_build.model import Build, Service
from northflank_build.report import (
    BuildOutcome,
    Outcome,
    append_summary,
    outputs,
    summary_markdown,
    write_github_output,
    write_outputs_file,
)
from northflank_build.request import build_body
from northflank_build.run import EXIT_SUCCESS, SIGNALLED, Ending, Run, Target, exit_code_of
from northflank_build.schedule import history_durations
from northflank_build.settings import Settings, parse_settings
from northflank_build.signals import Pending, Signals, exit_code
from northflank_build.start import REUSE_PAGE, Started, may_reuse, reusable, start_build


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
            _print_json(stdout, console.redact_outputs(failure_values(failure, made)))
        return failure.exit_code
    except Interrupted as stop:
        signals.disarm()
        code = interrupted_before_start(console, stop.signum)
        if json_out:
            made = api.requests_made if api is not None else 0
            _print_json(stdout, outputs(Outcome((), made, early="cancelled")))
        return code
    endings = carry_out(run)
    signals.disarm()
    write_report(run, endings, stdout if json_out else None)
    code = exit_code_of(endings)
    if signals.received is not None and code < SIGNALLED:
        # The signal came once every build had ended, as the outputs were written: they say how
        # the builds ended, and the exit code that the run was interrupted.
        return exit_code(signals.received)
    return code


def failure_values(failure: Failure, api_requests: int) -> dict[str, Any]:
    """The outputs of a run that ended before its start request was built, for
    --output-format json: every output empty, result error, and the error itself."""
    values = outputs(Outcome((), api_requests))
    values["error"] = {"message": failure.message, "exit-code": failure.exit_code}
    return values


def _print_json(out: TextIO, values: Mapping[str, Any]) -> None:
    with contextlib.suppress(OSError, ValueError):  # stdout's reader may be gone
        out.write(json.dumps(values, separators=(",", ":")) + "\n")
        out.flush()


def _json_requested(argv: Sequence[str]) -> bool:
    """Whether --output-format json was given: read before the flags are parsed, so that a run
    whose flags or inputs are wrong still prints its JSON."""
    args = list(argv)
    return "--output-format=json" in args or any(
        a == "--output-format" and b == "json" for a, b in itertools.pairwise(args)
    )


@dataclass(frozen=True)
class Setup:
    """The inputs read and checked, and the API client: nothing sent yet."""

    inputs: Inputs
    settings: Settings
    ci: CiContext
    api: Api


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
        console.add_secret(token, token=True)  # before anything else is printed
    for name, meant in inputs.unknown:
        guess = f" (did you mean {meant}?)" if meant else ""
        console.warning(f"{name} is not an input or setting of this program{guess}; it is ignored")
    ci = detect(env)
    # File contents are registered as they are read, before anything of theirs can be echoed.
    settings = parse_settings(inputs, env, token_hint=_token_hint(ci), on_secret=console.add_secret)
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
    """Every service (read when service-type is auto, or when there are several) and its start
    request: nothing started."""
    settings, ci, api = setup.settings, setup.ci, setup.api
    several = len(settings.service_ids) > 1
    limits = api.limits(api.clock() + settings.timeout)
    targets, errors = [], []
    for service_id in settings.service_ids:
        ref = ServiceRef(settings.project_id, service_id)
        service: Service | None = None
        # Several services are all read before the first start: an unknown one starts nothing.
        if settings.service_type == "auto" or several:
            service = api.get_service(ref, limits)
            console.info(f"Service {service_id}: {service.service_type} service")
        try:
            request = build_body(settings, service_id, ci, service, console.warning)
        except InputError as error:
            errors.append(error.about(service_id) if several else error)
            continue
        page = service_url(settings.api_url, settings.team_id, settings.project_id, service_id)
        targets.append(Target(ref, request, page))
    if errors:
        raise InputErrors(errors)
    for note in targets[0].request.notes:
        console.info(note)
    return Run(settings, ci, api, tuple(targets), console, signals, env, setup.inputs)


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


def carry_out(run: Run) -> list[Ending]:
    """Start a build of each target (or reuse one) and, with wait, follow them to their end.

    Every failure becomes an Ending: a start that fails after others succeeded leaves those
    running, to be waited for and reported.
    """
    if run.settings.dry_run:
        return [_dry_run(run, target) for target in run.targets]
    started: list[Started] = []
    endings: dict[Target, Ending] = {}
    histories: dict[Target, tuple[float, ...]] = {}
    for target in run.targets:
        try:
            listed = _listed(run, target)
            if listed is not None:
                histories[target] = history_durations(listed)
            started.append(_reused(run, target, listed) or _start(run, target))
        except Interrupted as stop:
            started += [Started(target.service, build) for build in stop.builds]
            return _settled(run, stop, started, endings)
        except Failure as failure:
            run.console.error(failure.message, title=failure.title)
            endings[target] = Ending(target, "error", failure.exit_code)
    if len(started) == 1 and not run.several:
        _write_github(run, run.console.redact_outputs({"build-id": started[0].build.id}))
    if not run.settings.wait:
        endings.update({run.target_of(s.service): _started(run, s) for s in started})
    elif started:
        try:
            endings.update(conclude(run, started, histories))
        except Interrupted as stop:
            latest = [
                Started(s.service, build, s.reused)
                for s, build in zip(started, stop.builds or [s.build for s in started], strict=True)
            ]
            return _settled(run, stop, latest, endings)
    return [endings[target] for target in run.targets]


def _started(run: Run, item: Started) -> Ending:
    return Ending(run.target_of(item.service), "started", EXIT_SUCCESS, item.build, item.reused)


def _dry_run(run: Run, target: Target) -> Ending:
    """Show the request, or the build that would be reused; start nothing."""
    console = run.console
    reused = reusable(_listed(run, target) or [], target.request.body, run.settings.reuse)
    of = f" of {target.service.service_id}" if run.several else ""
    if reused is not None:
        console.info(
            f"Dry run: build {reused.id}{of} ({reused.status}) would be reused "
            f"(reuse: {run.settings.reuse}), and nothing was started"
        )
    else:
        console.info(f"Dry run: this request{of} would be sent, and nothing was started:")
        console.info(json.dumps(target.request.redacted(), indent=2))
    return Ending(target, "dry-run", EXIT_SUCCESS, reused, reused is not None)


def _listed(run: Run, target: Target) -> list[Build] | None:
    """The service's recent builds, read once before the start when a build may be reused:
    they tell which one, and time the polls. None when no build can be reused."""
    if not may_reuse(target.request.body, run.settings.reuse):
        return None
    api = run.api
    limits = api.limits(api.clock() + run.settings.timeout)
    return api.list_builds(target.service, limits, per_page=REUSE_PAGE)


def _reused(run: Run, target: Target, listed: list[Build] | None) -> Started | None:
    """The build to follow instead of starting one, said so; None to start one."""
    if listed is None:
        return None
    what, of = target.request.describe(), target.service.service_id
    build = reusable(listed, target.request.body, run.settings.reuse)
    if build is None:
        run.console.info(
            f"No build of {what} to reuse among the {len(listed)} recent builds of {of}"
        )
        return None
    how = f"concluded {build.status}" if build.concluded else "still running"
    run.console.info(
        f"Reusing build {build.id} of {of} for {what} ({how}; reuse: {run.settings.reuse}) "
        "instead of starting another; it may have had other build arguments, files or Docker "
        "overrides"
    )
    return Started(target.service, build, reused=True)


def _start(run: Run, target: Target) -> Started:
    """Start the target's build exactly once. Interrupted, on a signal meanwhile, carries the
    build the request created when it can be known."""
    console, api = run.console, run.api
    of = target.service.service_id
    console.info(f"Starting a build of {of}: {target.request.describe()}")
    body = target.request.body
    limits = api.limits(api.clock() + run.settings.timeout)
    run.signals.check()  # a signal received before now: start nothing
    sent_at = api.wall()
    starting = Pending(
        run.signals, lambda: start_build(api, target.service, body, console.info, limits)
    )
    try:
        build = starting.result()
    except Interrupted as stop:
        found = _cancel(run, stop).during_start(
            target.service, starting, body, sent_at, target.request.describe()
        )
        raise Interrupted(stop.signum, (found,) if found else ()) from None
    console.info(f"Build {build.id} of {of} started ({build.status or 'unknown status'})")
    if target.service_url:
        console.info(f"Builds of {of} on Northflank: {builds_url(target.service_url)}")
    return Started(target.service, build)


def _cancel(run: Run, stop: Interrupted) -> Cancel:
    """The cancellation path for this run; from now on no signal interrupts anything."""
    signals = run.signals
    signals.disarm()
    return Cancel(
        api=run.api,
        console=run.console,
        abort=run.settings.abort_on_cancel,
        signum=stop.signum,
        at=signals.at if signals.at is not None else time.monotonic(),
    )


def _settled(
    run: Run, stop: Interrupted, started: Sequence[Started], endings: dict[Target, Ending]
) -> list[Ending]:
    """After a signal: every build this run started and still going aborted (abort-on-cancel),
    and an ending for every target, started or not."""
    cancel = _cancel(run, stop)
    for item, settled in zip(started, cancel.settle(started), strict=True):
        target = run.target_of(item.service)
        endings[target] = Ending(target, settled.result, cancel.code, settled.build, item.reused)
    for target in run.targets:
        endings.setdefault(target, Ending(target, "cancelled", cancel.code))
    return [endings[target] for target in run.targets]


# -- report ------------------------------------------------------------------------------------


def _write_github(run: Run, values: Mapping[str, Any]) -> None:
    """Set step outputs: in GITHUB_OUTPUT, and where the CI reads them from the log."""
    run.console.set_outputs(values)
    path = run.env.get("GITHUB_OUTPUT")
    if path:
        write_github_output(Path(path), values)


def write_report(run: Run, endings: Sequence[Ending], json_out: TextIO | None) -> None:
    """Write every output, the outputs file and the summary; never raises."""
    console, settings = run.console, run.settings
    redact = console.redact
    outcome = Outcome(
        builds=tuple(
            BuildOutcome(
                service=redact(e.target.service.service_id),
                result=e.result,
                request=e.target.request.redacted(),
                target=redact(e.target.request.describe()),
                build=e.build,
                reused=e.reused,
                log_tail=tuple(redact(line) for line in e.log_tail),
                highlights=tuple(redact(line) for line in e.highlights),
                service_url=e.target.service_url,
                code_host=e.target.request.code_host,
            )
            for e in endings
        ),
        api_requests=run.api.requests_made,
        run_url=redact(run.ci.run_url) if run.ci.run_url else None,
        links_note=_links_note(run),
    )
    values = console.redact_outputs(outputs(outcome))
    try:
        _write_github(run, values)
        if settings.outputs_file:
            note = write_outputs_file(settings.outputs_file, values)
            if note:
                console.info(f"Outputs file {settings.outputs_file}: {note}")
        summary_path = run.env.get("GITHUB_STEP_SUMMARY")
        if summary_path and settings.summary:
            # Made of redacted values only, so that no mask reaches the summary's own words.
            append_summary(Path(summary_path), summary_markdown(outcome, values))
    except OSError as error:
        console.warning(f"could not write the outputs: {error.strerror} ({error.filename})")
    if json_out is not None:
        _print_json(json_out, values)


def _links_note(run: Run) -> str:
    """Why the summary cannot link the service on Northflank, when giving team-id would."""
    settings = run.settings
    if any(t.service_url for t in run.targets) or settings.api_url not in DASHBOARDS:
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
