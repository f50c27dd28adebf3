"""The command-line entry: wires the stages together and maps failures to exit codes.

inputs -> CI context -> request body -> API -> waiting -> report
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from northflank_build.cancel import (
    ANSWER_GRACE,
    LIST_TIMEOUT,
    Pending,
    Signals,
    exit_code,
    find_lost_build,
)
from northflank_build.console import Console, for_environment
from northflank_build.context import CiContext, detect
from northflank_build.errors import ApiError, Failure, InputError, InputErrors, Interrupted
from northflank_build.inputs import Inputs, read_inputs
from northflank_build.report import (
    Outcome,
    append_summary,
    outputs,
    summary_markdown,
    write_github_output,
    write_outputs_file,
)
from northflank_build.request import ServiceInfo, StartRequest, build_body, check_overrides
from northflank_build.settings import Settings, parse_settings

if TYPE_CHECKING:
    from northflank_build.logs import BuildLog

EXIT_SUCCESS, EXIT_BUILD_FAILED, EXIT_TIMEOUT = 0, 1, 4
# Outputs made of the program's own words and numbers: never masked, whatever the secrets.
OWN_OUTPUTS = frozenset({"result", "concluded", "success", "duration-seconds", "api-requests"})


class Run:
    """One run of the program, from inputs to exit code."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], signals: Signals) -> None:
        self.argv = argv
        self.env = env
        self.signals = signals
        self.output_format = "json" if self._json_requested(argv) else "text"
        self.console: Console = for_environment(env, quiet_stdout=self.output_format == "json")
        self.settings: Settings | None = None
        self.ci: CiContext | None = None
        self.api: Any = None
        self.request: StartRequest | None = None
        self.build: dict[str, Any] | None = None
        self.starting: Pending[dict[str, Any]] | None = None
        self.aborted = False
        self.log_tail: list[str] = []

    @staticmethod
    def _json_requested(argv: Sequence[str]) -> bool:
        args = list(argv)
        if "--output-format=json" in args:
            return True
        return any(a == "--output-format" and b == "json" for a, b in itertools.pairwise(args))

    def execute(self) -> int:
        try:
            return self._execute()
        except InputErrors as failure:
            for error in failure.errors:
                self.console.error(error.message, title=error.title)
            return failure.exit_code
        except Failure as failure:
            self.console.error(failure.message, title=failure.title)
            self._write_final("error")
            return failure.exit_code
        except Interrupted as interrupt:
            return self._interrupted(interrupt.signum)

    def _execute(self) -> int:
        inputs = read_inputs(self.argv, self.env)
        self.output_format = inputs.output_format
        self._mask_early(inputs)
        self.ci = detect(self.env)
        settings = self.settings = parse_settings(
            inputs, self.env, token_hint=self._token_hint(), on_secret=self.console.add_secret
        )
        for secret in settings.secrets():
            self.console.add_secret(secret)
        check_overrides(settings)
        from northflank_build.client import Api, Transport
        from northflank_build.interruptible import send_from_worker_threads

        self.api = Api(
            settings.api_url,
            settings.api_token,
            team_id=settings.team_id,
            transport=Transport.from_env(self.env),
            deadline=time.monotonic() + settings.timeout,
            notify=self.console.info,
            debug=self.console.debug,
            sleep=self.signals.sleep,
        )
        send_from_worker_threads(self.api.session, self.signals)
        service = self._read_service() if settings.service_type == "auto" else None
        request = self.request = build_body(settings, self.ci, service, self.console.warning)
        for note in request.notes:
            self.console.info(note)
        if settings.dry_run:
            return self._dry_run(request)
        self.console.info(f"Starting a build of {settings.service_id}: {request.describe()}")
        self.build = self._start(settings, request)
        build_id = str(self.build.get("id", ""))
        self.console.info(
            f"Build {build_id} started ({self.build.get('status', 'unknown status')})"
        )
        self._write_github({"build-id": build_id})
        if not settings.wait:
            self._write_final("started")
            return EXIT_SUCCESS
        return self._wait(settings)

    def _start(self, settings: Settings, request: StartRequest) -> dict[str, Any]:
        """Send the start request; a signal meanwhile interrupts the wait, never the request."""
        from northflank_build.start import start_build

        self.signals.check()  # a signal received before now: start nothing
        project_id, service_id, body = settings.project_id, settings.service_id, request.body
        self.starting = Pending(
            self.signals,
            lambda: start_build(self.api, project_id, service_id, body, self.console.info),
        )
        return self.starting.result()

    def _mask_early(self, inputs: Inputs) -> None:
        """Register the token and secret inputs before anything else is printed."""
        token = inputs.value("api-token").strip()
        if token:
            self.console.add_secret(token, token=True)

    def _token_hint(self) -> str:
        ci = self.ci
        if ci and ci.fork and ci.system != "github":
            return (
                f"it is empty because this run is for a pull request from a fork, and {ci.name} "
                "withholds secrets from those unless told otherwise; build it after review"
            )
        if ci and ci.fork:
            return (
                "it is empty because this workflow runs for a pull request from a fork, and "
                "GitHub withholds secrets from those; build such pull requests after review, "
                "e.g. from a push or a workflow_dispatch"
            )
        return ""

    def _read_service(self) -> ServiceInfo:
        settings = self.settings
        assert settings is not None
        data = self.api.get_service(settings.project_id, settings.service_id)
        service = ServiceInfo.from_api(data)
        self.console.info(f"Service {settings.service_id}: {service.service_type} service")
        return service

    def _dry_run(self, request: StartRequest) -> int:
        self.console.info("Dry run: this request would be sent, and nothing was started:")
        self.console.info(json.dumps(request.redacted(), indent=2))
        self._write_final("dry-run")
        return EXIT_SUCCESS

    def _wait(self, settings: Settings) -> int:
        from northflank_build.logs import BuildLog, failure_lines
        from northflank_build.schedule import describe
        from northflank_build.wait import Poller, outcome_of

        assert self.build is not None
        history = self._history(settings) if settings.poll_interval is None else ()
        self.console.info(describe(settings.poll_interval, history))
        log = BuildLog(self.api, settings.project_id, settings.service_id, self.build, self.console)
        poller = Poller(
            self.api,
            settings.project_id,
            settings.service_id,
            self.build,
            self.console,
            history=history,
        )
        poller.on_read = self._remember
        poller.sleep = self.signals.sleep
        poller.log = log if settings.logs == "follow" else None
        waited = poller.wait(settings.timeout, settings.poll_interval)
        self.build = waited.build
        if waited.timed_out:
            return self._timed_out(settings, log)
        result = outcome_of(self.build)
        message = self.build.get("message") or self.build.get("status")
        build_id = self.build.get("id")
        if result == "success":
            self.console.info(f"Build {build_id} succeeded: {message}")
            self._write_final("success")
            return EXIT_SUCCESS
        self.log_tail = self._log_tail(settings, log)
        text = f"Build {build_id} concluded without success: {self.build.get('status')}"
        text += f": {message}" if message != self.build.get("status") else ""
        text += "".join(f"\n{line}" for line in failure_lines(self.log_tail))
        if settings.fail_on_build_failure:
            self.console.error(text, title=f"Northflank build {build_id} failed")
        else:
            self.console.warning(text + "\n(fail-on-build-failure is false)")
        self._write_final("failure")
        return EXIT_BUILD_FAILED if settings.fail_on_build_failure else EXIT_SUCCESS

    def _history(self, settings: Settings) -> tuple[float, ...]:
        """Durations of the service's recent builds, read once; none when the list fails."""
        from northflank_build.schedule import history_durations

        assert self.build is not None
        try:
            builds = self.api.list_builds(settings.project_id, settings.service_id)
        except ApiError as error:
            self.console.warning(f"could not read recent builds to time the polls: {error.message}")
            return ()
        return history_durations(builds, exclude=str(self.build.get("id", "")))

    @staticmethod
    def _log_tail(settings: Settings, log: BuildLog) -> list[str]:
        """The last lines of the log of a build that did not succeed: followed, or read now."""
        if settings.logs == "follow":
            return list(log.recent)
        return log.tail() if settings.logs == "on-failure" else []

    def _remember(self, build: dict[str, Any]) -> None:
        self.build = build

    def _timed_out(self, settings: Settings, log: BuildLog) -> int:
        assert self.build is not None
        build_id = self.build.get("id")
        if settings.abort_on_timeout:
            with self.signals.deferred():
                self._abort(str(build_id))
        else:
            self.console.info(
                f"Build {build_id} goes on running on Northflank (abort-on-timeout is false)"
            )
        self.log_tail = self._log_tail(settings, log)
        self.console.error(
            f"timeout {settings.timeout:g}s ran out while build {build_id} was "
            f"{self.build.get('status')}: raise timeout, or set wait: false",
            title="Northflank build timed out",
        )
        self._write_final("timed-out")
        return EXIT_TIMEOUT

    def _abort(self, build_id: str, timeout: float = 2.0) -> bool:
        settings = self.settings
        assert settings is not None
        try:
            self.api.abort_build(
                settings.project_id, settings.service_id, build_id, timeout=timeout
            )
        except ApiError as error:
            self.console.warning(f"could not abort build {build_id}: {error.message}")
            return False
        self.console.info(f"Aborted build {build_id} on Northflank")
        self.aborted = True
        if self.build is not None:
            self.build = {**self.build, "status": "ABORTED", "concluded": True, "success": False}
        return True

    def _interrupted(self, signum: int) -> int:
        """Abort the build (with abort-on-cancel), write the outputs, within the cancel budget."""
        from northflank_build.wait import outcome_of

        self.signals.disarm()
        name, code = signal.Signals(signum).name, exit_code(signum)
        settings = self.settings
        if settings is None or (self.build is None and self.starting is None):
            self.console.error(
                f"interrupted by {name} before a build was started", title="Cancelled"
            )
            return code
        self._bound_requests()
        if self.build is None and not self._recover_start(settings, name):
            self._write_final("cancelled")
            return code
        assert self.build is not None
        build_id = str(self.build.get("id"))
        if self.aborted:
            result = "aborted"
        elif self.build.get("concluded"):
            result = outcome_of(self.build)  # it ended before the signal: say how
        elif settings.abort_on_cancel:
            self.console.info(f"Received {name}: aborting build {build_id} (abort-on-cancel)")
            left = self.signals.deadline() - time.monotonic()
            aborted = self._abort(build_id, timeout=max(0.2, left))
            result = "aborted" if aborted else self._result_after_failed_abort(settings, build_id)
        else:
            self.console.info(
                f"Build {build_id} goes on running on Northflank (abort-on-cancel is false)"
            )
            result = "cancelled"
        self.console.error(f"interrupted by {name}; build {build_id}: {result}", title="Cancelled")
        self._write_final(result)
        return code

    def _result_after_failed_abort(self, settings: Settings, build_id: str) -> str:
        """The build's own result when it concluded before the abort arrived, else cancelled."""
        from northflank_build.wait import outcome_of

        left = self.signals.deadline() - time.monotonic()
        project_id, service_id = settings.project_id, settings.service_id
        build = None
        if left > 0.1:
            reading = Pending(
                self.signals, lambda: self.api.get_build(project_id, service_id, build_id)
            )
            with contextlib.suppress(ApiError):
                build = reading.result_within(left)
        if build is None or not build.get("concluded"):
            return "cancelled"
        self.build = build
        self.console.info(f"Build {build_id} had already concluded: {build.get('status')}")
        return outcome_of(build)

    def _bound_requests(self) -> None:
        """No retries, no deadline of the wait: each request of the cancel has its own timeout."""
        from northflank_build.client import RetryPolicy

        self.api.retry = RetryPolicy(attempts=1)
        self.api.deadline = None

    def _recover_start(self, settings: Settings, name: str) -> bool:
        """Learn the build the interrupted start request created: from its answer, else the list."""
        assert self.starting is not None
        assert self.request is not None
        wait = min(ANSWER_GRACE, self.signals.deadline() - time.monotonic())
        try:
            self.build = self.starting.result_within(max(0.0, wait))
        except ApiError as error:
            self.console.error(
                f"interrupted by {name}; the start request failed: {error.message}",
                title="Cancelled",
            )
            return False
        if self.build is not None:
            return True
        timeout = min(LIST_TIMEOUT, self.signals.deadline() - time.monotonic())
        project_id, service_id = settings.project_id, settings.service_id
        self.build, how = find_lost_build(
            lambda: self.api.list_builds(project_id, service_id, per_page=10, timeout=timeout),
            self.request.body,
            self.starting.started_at,
        )
        if self.build is not None:
            self.console.info(
                f"The start request had no answer yet; build {self.build.get('id')} {how}"
            )
            return True
        self.console.error(
            f"interrupted by {name} before the start request was answered, and {how}: a build of "
            f"{settings.service_id} ({self.request.describe()}) may still start; check the "
            "service's builds on Northflank",
            title="Cancelled",
        )
        return False

    # -- report --------------------------------------------------------------------------------

    def _write_github(self, values: dict[str, Any]) -> None:
        redacted = self._redacted_outputs(values)
        self.console.set_outputs(redacted)
        path = self.env.get("GITHUB_OUTPUT")
        if path:
            write_github_output(Path(path), redacted)

    def _redacted_outputs(self, values: dict[str, Any]) -> dict[str, Any]:
        """The outputs with every secret hidden in what came from outside; the program's own
        words (result, concluded, success, numbers) and the request's keys are left alone."""
        return {
            name: value if name in OWN_OUTPUTS else self._redact_value(value, name != "request")
            for name, value in values.items()
        }

    def _redact_value(self, value: Any, keys: bool = True) -> Any:
        """The value with every secret hidden, in every string it holds (keys too, with keys)."""
        if isinstance(value, str):
            return self.console.redact(value)
        if isinstance(value, dict):
            return {
                self._redact_value(k) if keys else k: self._redact_value(v, keys)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._redact_value(item, keys) for item in value]
        return value

    def _plain_tail(self) -> list[str]:
        """The log tail for the summary; the log code is loaded only when there is one."""
        if not self.log_tail:
            return []
        from northflank_build.logs import plain

        return [plain(self.console.redact(line)) for line in self.log_tail]

    def _write_final(self, result: str) -> None:
        """Write every output, the outputs file and the summary; never raises."""
        self.signals.disarm()
        if self.request is None:
            return
        settings = self.settings
        redact = self.console.redact
        outcome = Outcome(
            result=result,
            request=self.request.redacted() if self.request else {},
            api_requests=self.api.requests_made if self.api else 0,
            build=self.build,
            service=redact(settings.service_id) if settings else "",
            target=redact(self.request.describe()) if self.request else "",
            log_tail=self._plain_tail(),
            run_url=redact(self.ci.run_url) if self.ci and self.ci.run_url else None,
        )
        values = self._redacted_outputs(outputs(outcome))
        try:
            self._write_github(values)
            if settings and settings.outputs_file:
                write_outputs_file(settings.outputs_file, values)
            summary_path = self.env.get("GITHUB_STEP_SUMMARY")
            if summary_path and settings and settings.summary:
                # Made of redacted values only, so that no mask reaches the summary's own words.
                append_summary(Path(summary_path), summary_markdown(outcome, values))
        except OSError as error:
            self.console.warning(
                f"could not write the outputs: {error.strerror} ({error.filename})"
            )
        if self.output_format == "json":
            with contextlib.suppress(OSError, ValueError):  # stdout's reader may be gone
                sys.stdout.write(json.dumps(values, separators=(",", ":")) + "\n")
                sys.stdout.flush()


def main(argv: Sequence[str] | None = None, signals: Signals | None = None) -> int:
    """Run the program with these arguments and the process environment; the exit code.

    The entry scripts pass signals already installed, so that a signal during the imports is
    handled too.
    """
    if signals is None:
        signals = Signals()
        signals.install()
    started = time.monotonic()
    run = Run(sys.argv[1:] if argv is None else argv, os.environ, signals)
    try:
        code = run.execute()
    except InputError as error:
        run.console.error(error.message, title=error.title)
        code = error.exit_code
    run.console.debug(f"finished in {time.monotonic() - started:.2f}s with exit code {code}")
    return code


def exit_now(code: int) -> NoReturn:
    """Exit with code at once: flush what was printed, then skip the interpreter's teardown.

    Every file the program writes is closed by then; the teardown only costs a trigger-only run
    about a tenth of its time.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def command() -> NoReturn:
    """The installed `northflank-build` command."""
    exit_now(main())
