"""The command-line entry: wires the stages together and maps failures to exit codes.

inputs -> CI context -> request body -> API -> waiting -> report
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

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

EXIT_SUCCESS, EXIT_BUILD_FAILED, EXIT_TIMEOUT = 0, 1, 4
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Signals:
    """SIGINT and SIGTERM raise Interrupted while armed; a second signal exits at once.

    The program is PID 1 in the container, where SIGTERM is ignored unless handled.
    """

    def __init__(self) -> None:
        self.armed = True
        self.received: int | None = None

    def install(self) -> None:
        for signum in SIGNAL_EXIT:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            os._exit(SIGNAL_EXIT.get(signal.Signals(signum), 128 + signum))
        self.received = signum
        if self.armed:
            raise Interrupted(signum)


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
        self.written_outputs: set[str] = set()

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
        settings = self.settings = parse_settings(inputs, self.env, token_hint=self._token_hint())
        for secret in settings.secrets():
            self.console.add_secret(secret)
        from northflank_build.client import Api, Transport

        check_overrides(settings)
        self.api = Api(
            settings.api_url,
            settings.api_token,
            team_id=settings.team_id,
            transport=Transport.from_env(self.env),
            deadline=time.monotonic() + settings.timeout,
            notify=self.console.info,
            debug=self.console.debug,
        )
        service = self._read_service() if settings.service_type == "auto" else None
        request = self.request = build_body(settings, self.ci, service, self.console.warning)
        for note in request.notes:
            self.console.info(note)
        if settings.dry_run:
            return self._dry_run(request)
        self.console.info(f"Starting a build of {settings.service_id}: {request.describe()}")
        from northflank_build.start import start_build

        self.build = start_build(
            self.api, settings.project_id, settings.service_id, request.body, self.console.info
        )
        build_id = str(self.build.get("id", ""))
        self.console.info(
            f"Build {build_id} started ({self.build.get('status', 'unknown status')})"
        )
        self._write_github({"build-id": build_id})
        if not settings.wait:
            self._write_final("started")
            return EXIT_SUCCESS
        return self._wait(settings)

    def _mask_early(self, inputs: Inputs) -> None:
        """Register the token and secret inputs before anything else is printed."""
        token = inputs.value("api-token").strip()
        if token:
            self.console.add_secret(token)

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
        from northflank_build.schedule import describe
        from northflank_build.wait import Poller, outcome_of

        assert self.build is not None
        history = self._history(settings) if settings.poll_interval is None else ()
        self.console.info(describe(settings.poll_interval, history))
        poller = Poller(
            self.api,
            settings.project_id,
            settings.service_id,
            self.build,
            self.console,
            history=history,
        )
        poller.on_read = self._remember
        waited = poller.wait(settings.timeout, settings.poll_interval)
        self.build = waited.build
        if waited.timed_out:
            return self._timed_out(settings)
        result = outcome_of(self.build)
        message = self.build.get("message") or self.build.get("status")
        if result == "success":
            self.console.info(f"Build {self.build.get('id')} succeeded: {message}")
            self._write_final("success")
            return EXIT_SUCCESS
        text = f"Build {self.build.get('id')} concluded without success: {self.build.get('status')}"
        text += f": {message}" if message != self.build.get("status") else ""
        if settings.fail_on_build_failure:
            self.console.error(text, title="Northflank build failed")
        else:
            self.console.warning(text + " (fail-on-build-failure is false)")
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

    def _remember(self, build: dict[str, Any]) -> None:
        self.build = build

    def _timed_out(self, settings: Settings) -> int:
        assert self.build is not None
        build_id = self.build.get("id")
        if settings.abort_on_timeout:
            self._abort(str(build_id))
        else:
            self.console.info(f"Build {build_id} goes on running on Northflank")
        self.console.error(
            f"timeout {settings.timeout:g}s ran out while build {build_id} was "
            f"{self.build.get('status')}: raise timeout, or set wait: false",
            title="Northflank build timed out",
        )
        self._write_final("timed-out")
        return EXIT_TIMEOUT

    def _abort(self, build_id: str) -> bool:
        settings = self.settings
        assert settings is not None
        try:
            self.api.abort_build(settings.project_id, settings.service_id, build_id)
        except ApiError as error:
            self.console.warning(f"could not abort build {build_id}: {error.message}")
            return False
        self.console.info(f"Aborted build {build_id} on Northflank")
        if self.build is not None:
            self.build = {**self.build, "status": "ABORTED", "concluded": True, "success": False}
        return True

    def _interrupted(self, signum: int) -> int:
        self.signals.armed = False
        name = signal.Signals(signum).name
        settings = self.settings
        if self.build is None or settings is None:
            self.console.error(f"interrupted by {name} before a build was started")
            return SIGNAL_EXIT.get(signal.Signals(signum), 1)
        build_id = str(self.build.get("id"))
        result = "cancelled"
        if settings.abort_on_cancel and not self.build.get("concluded"):
            if self._abort(build_id):
                result = "aborted"
        elif not self.build.get("concluded"):
            self.console.info(
                f"Build {build_id} goes on running on Northflank (abort-on-cancel is false)"
            )
        self.console.error(f"interrupted by {name}; build {build_id} {result}", title="Cancelled")
        self._write_final(result)
        return SIGNAL_EXIT.get(signal.Signals(signum), 1)

    # -- report --------------------------------------------------------------------------------

    def _write_github(self, values: dict[str, Any]) -> None:
        redacted = {k: self._redact_value(v) for k, v in values.items()}
        self.console.set_outputs(redacted)
        path = self.env.get("GITHUB_OUTPUT")
        if path:
            write_github_output(Path(path), redacted)

    def _redact_value(self, value: Any) -> Any:
        """The value with every secret hidden, in every string it holds (keys too)."""
        if isinstance(value, str):
            return self.console.redact(value)
        if isinstance(value, dict):
            return {self._redact_value(k): self._redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact_value(item) for item in value]
        return value

    def _write_final(self, result: str) -> None:
        """Write every output, the outputs file and the summary; never raises."""
        self.signals.armed = False
        if self.request is None:
            return
        settings = self.settings
        outcome = Outcome(
            result=result,
            request=self.request.redacted() if self.request else {},
            api_requests=self.api.requests_made if self.api else 0,
            build=self.build,
            service=settings.service_id if settings else "",
            target=self.request.describe() if self.request else "",
            run_url=self.ci.run_url if self.ci else None,
        )
        values = {k: self._redact_value(v) for k, v in outputs(outcome).items()}
        try:
            self._write_github(values)
            if settings and settings.outputs_file:
                write_outputs_file(settings.outputs_file, values)
            summary_path = self.env.get("GITHUB_STEP_SUMMARY")
            if summary_path and settings and settings.summary:
                append_summary(
                    Path(summary_path), self.console.redact(summary_markdown(outcome, values))
                )
        except OSError as error:
            self.console.warning(
                f"could not write the outputs: {error.strerror} ({error.filename})"
            )
        if self.output_format == "json":
            sys.stdout.write(json.dumps(values, separators=(",", ":")) + "\n")
            sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the program with these arguments and the process environment; the exit code."""
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
