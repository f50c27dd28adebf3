"""Follow the started builds to their end, and judge each: success, failure, timed out or error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from northflank_build.cancel import abort_build
from northflank_build.errors import ApiError
from northflank_build.logs import BuildLog, failure_lines
from northflank_build.model import Build
from northflank_build.run import (
    EXIT_BUILD_FAILED,
    EXIT_SUCCESS,
    EXIT_TIMEOUT,
    Ending,
    Run,
    Target,
)
from northflank_build.schedule import describe, history_durations
from northflank_build.start import Started
from northflank_build.wait import Followed, wait_for


def conclude(
    run: Run, started: Sequence[Started], histories: Mapping[Target, tuple[float, ...]]
) -> dict[Target, Ending]:
    """Wait for the builds on one schedule, then judge each. Interrupted, on a signal, carries
    the last read of every build."""
    settings, console, api = run.settings, run.console, run.api
    deadline = api.clock() + settings.timeout
    history: tuple[float, ...] = ()
    if settings.poll_interval is None:
        history = tuple(d for s in started for d in _history(run, s, histories))
    console.info(describe(settings.poll_interval, history))
    logs = [
        BuildLog(
            api,
            s.service,
            s.build,
            console,
            api.limits(deadline),
            label=s.service.service_id if run.several else "",
        )
        for s in started
    ]
    follow = settings.logs == "follow"
    waited = wait_for(
        api,
        [
            Followed(s.service, s.build, log if follow else None)
            for s, log in zip(started, logs, strict=True)
        ],
        console,
        deadline=deadline,
        fixed_interval=settings.poll_interval,
        history=history,
        sleep=run.signals.sleep,
    )
    if waited.error is not None:
        console.error(waited.error.message, title=waited.error.title)
    endings = {}
    for item, build, log in zip(started, waited.builds, logs, strict=True):
        target = run.target_of(item.service)
        if build.concluded:
            ending = _judged(run, target, item, build, log)
        elif waited.error is not None:
            ending = Ending(target, "error", waited.error.exit_code, build, item.reused)
        else:
            ending = _timed_out(run, target, item, build, log)
        endings[target] = ending
    return endings


def _history(
    run: Run, item: Started, histories: Mapping[Target, tuple[float, ...]]
) -> tuple[float, ...]:
    """Durations of the service's recent builds: from the list read before the start, else read
    now, once; none when the list fails."""
    target = run.target_of(item.service)
    if target in histories:
        return histories[target]
    try:
        builds = run.api.list_builds(item.service, run.api.limits())
    except ApiError as error:
        run.console.warning(f"could not read recent builds to time the polls: {error.message}")
        return ()
    return history_durations(builds, exclude=item.build.id)


def _log_tail(run: Run, log: BuildLog) -> tuple[str, ...]:
    """The last lines of the log of a build that did not succeed: followed, or read now."""
    if run.settings.logs == "follow":
        return tuple(log.recent)
    return tuple(log.tail()) if run.settings.logs == "on-failure" else ()


def _judged(run: Run, target: Target, item: Started, build: Build, log: BuildLog) -> Ending:
    settings, console = run.settings, run.console
    message = build.message or build.status
    of = f" of {target.service.service_id}" if run.several else ""
    if build.succeeded:
        console.info(f"Build {build.id}{of} succeeded: {message}")
        return Ending(target, "success", EXIT_SUCCESS, build, item.reused)
    tail = _log_tail(run, log)
    text = f"Build {build.id}{of} concluded without success: {build.status}"
    text += f": {message}" if message != build.status else ""
    text += "".join(f"\n{line}" for line in failure_lines(list(tail)))
    if settings.fail_on_build_failure:
        console.error(text, title=f"Northflank build {build.id} failed")
        return Ending(target, "failure", EXIT_BUILD_FAILED, build, item.reused, tail)
    console.warning(text + "\n(fail-on-build-failure is false)")
    return Ending(target, "failure", EXIT_SUCCESS, build, item.reused, tail)


def _timed_out(run: Run, target: Target, item: Started, build: Build, log: BuildLog) -> Ending:
    settings, console = run.settings, run.console
    if item.reused:
        console.info(
            f"Build {build.id} was not started by this run: it goes on running on Northflank"
        )
    elif settings.abort_on_timeout:
        with run.signals.deferred():
            aborted = abort_build(run.api, item.service, build, run.api.limits(), console.warning)
        if aborted is not None:
            console.info(f"Aborted build {build.id} on Northflank (abort-on-timeout)")
            build = aborted
    else:
        console.info(f"Build {build.id} goes on running on Northflank (abort-on-timeout is false)")
    tail = _log_tail(run, log)
    console.error(
        f"timeout {settings.timeout:g}s ran out while build {build.id} was {build.status}: "
        "raise timeout, or set wait: false",
        title="Northflank build timed out",
    )
    return Ending(target, "timed-out", EXIT_TIMEOUT, build, item.reused, tail)
