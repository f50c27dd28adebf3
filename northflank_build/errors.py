"""Errors as values: a message for the user and the exit code that goes with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from northflank_build.model import Build


class Failure(Exception):
    """A failure the program reports in one line and exits on."""

    exit_code = 1

    def __init__(self, message: str, *, title: str = "Northflank build") -> None:
        super().__init__(message)
        self.message = message
        self.title = title


class InputError(Failure):
    """Invalid input or configuration: nothing was started."""

    exit_code = 2

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}" if name else message, title="Invalid input")
        self.name = name
        self.detail = message

    def about(self, service_id: str) -> InputError:
        """The same error, saying which of several services it is about."""
        return InputError(self.name, f"for service {service_id}: {self.detail}")


class InputErrors(Failure):
    """Several inputs are invalid; each is reported on its own line."""

    exit_code = 2

    def __init__(self, errors: list[InputError]) -> None:
        super().__init__("; ".join(e.message for e in errors), title="Invalid input")
        self.errors = errors


class ApiError(Failure):
    """The API refused the request or could not be reached."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_id: str | None = None,
        hint: str = "",
        retryable: bool = False,
        retry_after: float | None = None,
        never_sent: bool = False,
        timed_out: bool = False,
    ) -> None:
        where = f"HTTP {status}" if status is not None else "no answer"
        text = f"Northflank API: {message} ({where}"
        text += f", error id {error_id})" if error_id else ")"
        if hint:
            text += f". {hint}"
        super().__init__(text, title="Northflank API error")
        self.status = status
        self.where = where
        self.api_message = message
        self.error_id = error_id
        self.retryable = retryable
        self.retry_after = retry_after
        self.never_sent = never_sent
        self.timed_out = timed_out


class Interrupted(BaseException):
    """The run received SIGINT or SIGTERM; `builds` are the last builds read, when any were."""

    def __init__(self, signum: int, builds: tuple[Build, ...] = ()) -> None:
        super().__init__(signum)
        self.signum = signum
        self.builds = builds

    def with_builds(self, builds: tuple[Build, ...]) -> Interrupted:
        """The same interruption, knowing the last builds read."""
        return Interrupted(self.signum, builds or self.builds)
