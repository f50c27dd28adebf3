"""Start a build exactly once, though the network or the API fails on the way.

Starting a build is not idempotent, so the start request is sent again without a second thought
only when it provably never reached the API (no connection was made) or the API refused it with a
429. After a failure that leaves its fate unknown (a timeout or a reset after the body was sent, a
5xx, an unreadable answer), the service's recent builds are read first: a build of this request
created after the first such attempt began is adopted, and only when there is none is the request
sent again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from northflank_build.client import Api
from northflank_build.errors import ApiError

# Seconds by which a build's createdAt may precede the attempt, for clock skew: small when the
# API's Date header told us its clock, larger when it did not.
SKEW_KNOWN = 5.0
SKEW_UNKNOWN = 30.0
SETTLE = 5.0  # most seconds to give a slow API to finish the request before looking for its build


def created_at(build: dict[str, Any]) -> float | None:
    """A build's createdAt as Unix seconds: ISO 8601 text, or Unix seconds or milliseconds."""
    value = build.get("createdAt")
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value / 1000 if value > 10**11 else float(value)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    # The API writes UTC; a timestamp without an offset is read as UTC too.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def matches(build: dict[str, Any], body: dict[str, Any], since: float) -> bool:
    """Whether the build is what this start request asks for, created at `since` or later.

    Each of sha, branch and pullRequestId in the request must be the build's; a request without a
    sha (the API then picks the latest commit) matches on the rest and on time alone.
    """
    created = created_at(build)
    if created is None or created < since:
        return False
    if "sha" in body and str(build.get("sha", "")).lower() != str(body["sha"]).lower():
        return False
    if "branch" in body and build.get("branch") != body["branch"]:
        return False
    return "pullRequestId" not in body or str(build.get("pullRequestId")) == str(
        body["pullRequestId"]
    )


@dataclass
class SafeStart:
    """One start of a build with the service's builds as the judge of what already happened."""

    api: Api
    project_id: str
    service_id: str
    body: dict[str, Any]
    say: Callable[[str], None]
    unknown_since: float | None = field(default=None, init=False)  # wall time of the first doubt

    def run(self) -> dict[str, Any]:
        """The started build: the API's answer, or the build found after an unclear failure.

        Raises ApiError when the API refused the request, or could not be reached within the
        retry budget and no build of this request exists.
        """
        api = self.api
        started = api.clock()
        attempt = 0
        while True:
            began = api.wall()
            try:
                return api.start_build(self.project_id, self.service_id, self.body)
            except ApiError as error:
                failure = error
            if not failure.retryable:
                raise failure
            unclear = not failure.never_sent and failure.status != 429
            if unclear and self.unknown_since is None:
                self.unknown_since = began
            # After a timeout the API may still be working on the request: give it a moment.
            settle = min(SETTLE, api.transport.read_timeout) if failure.timed_out else 0.0
            wait = api.retry_wait(failure, attempt, started, settle)
            if wait is not None:
                self.say(self._retry_notice(failure, unclear, wait))
                api.sleep(wait)
            found = self._look() if self.unknown_since is not None else None
            if found is not None:
                return found
            if wait is None:
                raise self._final_error(failure)
            attempt += 1
            if self.unknown_since is not None:
                self.say(
                    "No build of this request was found: sending the start request again "
                    f"(attempt {attempt + 1} of at most {api.retry.attempts})"
                )

    def _retry_notice(self, error: ApiError, unclear: bool, wait: float) -> str:
        what = f"The start request failed: {error.api_message} ({error.where})"
        if error.never_sent:
            return f"{what}. It never reached Northflank: trying again in {wait:.1f} s"
        if not unclear:
            return f"{what}. Northflank refused it for now: trying again in {wait:.1f} s"
        return (
            f"{what}. It may have reached Northflank: looking for its build among the "
            f"service's recent builds in {wait:.1f} s before starting another"
        )

    def _final_error(self, error: ApiError) -> ApiError:
        """The error to report on giving up; it says so when the request may have arrived."""
        if self.unknown_since is None:
            return error
        return ApiError(
            f"{error.api_message}; no build of this request appeared among the service's "
            "recent builds",
            status=error.status,
            error_id=error.error_id,
            hint="Check the service's builds on Northflank before starting it again",
        )

    def _look(self) -> dict[str, Any] | None:
        """The earliest build of this request created since the first unclear attempt, if any."""
        assert self.unknown_since is not None
        api = self.api
        try:
            builds = api.list_builds(self.project_id, self.service_id)
        except ApiError as error:
            raise ApiError(
                f"the start request failed, and the service's builds could not be read to see "
                f"whether it reached Northflank: {error.api_message}",
                status=error.status,
                error_id=error.error_id,
                hint="Check the service's builds on Northflank before starting it again",
            ) from None
        offset = api.server_offset
        skew = SKEW_UNKNOWN if offset is None else SKEW_KNOWN
        since = self.unknown_since + (offset or 0.0) - skew
        found = sorted(
            (b for b in builds if matches(b, self.body, since)),
            key=lambda b: created_at(b) or 0.0,
        )
        if not found:
            return None
        build = found[0]
        how = (
            ""
            if "sha" in self.body
            else " (the request named no commit: matched by target and time)"
        )
        self.say(
            f"Found build {build.get('id')} of this request, created at {build.get('createdAt')} "
            f"after the start request was sent{how}: following it instead of starting another"
        )
        if len(found) > 1:
            others = ", ".join(str(b.get("id")) for b in found[1:])
            self.say(f"Builds {others} of the same request were created too; they are left alone")
        return build


def start_build(
    api: Api,
    project_id: str,
    service_id: str,
    body: dict[str, Any],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Start a build once: see the module's docstring. `say` tells the user what happened."""
    return SafeStart(api, project_id, service_id, body, say).run()
