"""The emulated world: builds, their lifecycle over time, list cursors and rate-limit windows.

Not thread-safe on its own: the server calls it under one lock.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from .answers import RequestError
from .clock import Clock, iso_from_ms
from .config import PHASES, EmulatorConfig, PastBuild, ServiceConfig
from .logs import (
    ABORT_MESSAGE,
    CRASH_MESSAGE,
    FAILURE_MESSAGE,
    SUCCESS_MESSAGE,
    BuildStory,
    LogLine,
    abort_line,
    plan_log,
)
from .validate import BuildRequest

ADJECTIVES = ("joyous", "brave", "calm", "eager", "gentle", "lively", "proud", "quiet", "witty")
NOUNS = ("view", "river", "forest", "meadow", "harbor", "summit", "canyon", "breeze", "comet")
FINAL_STATUS = {"success": "SUCCESS", "failure": "FAILURE", "crash": "CRASHED"}
OUTCOME_OF_STATUS = {status: outcome for outcome, status in FINAL_STATUS.items()}
FINAL_MESSAGE = {"SUCCESS": SUCCESS_MESSAGE, "FAILURE": FAILURE_MESSAGE, "CRASHED": CRASH_MESSAGE}


@dataclass
class Build:
    """One build; its status follows from the time elapsed since created (monotonic)."""

    id: str
    project_id: str
    service_id: str
    seq: int
    created: float
    created_ms: int
    schedule: list[tuple[str, int, int]]  # (status, start ms, end ms) after creation
    final_status: str
    lines: list[LogLine]
    sha: str
    image: str
    branch: str | None = None
    pull_request_id: int | None = None
    from_history: bool = False
    aborted_ms: int | None = None

    @property
    def conclusion_ms(self) -> int:
        """Milliseconds after creation at which the build concludes (or was aborted)."""
        if self.aborted_ms is not None:
            return self.aborted_ms
        return self.schedule[-1][2] if self.schedule else 0

    def status_at(self, now: float) -> tuple[str, bool]:
        """(status, concluded) at a monotonic time."""
        elapsed_ms = (now - self.created) * 1000
        if self.aborted_ms is not None and elapsed_ms >= self.aborted_ms:
            return "ABORTED", True
        for status, _, end_ms in self.schedule:
            if elapsed_ms < end_ms:
                return status, False
        return self.final_status, True

    def to_json(self, now: float) -> dict[str, Any]:
        """The API's build object at a monotonic time; keys without a value are left out."""
        status, concluded = self.status_at(now)
        data: dict[str, Any] = {"id": self.id}
        if self.branch is not None:
            data["branch"] = self.branch
        if self.pull_request_id is not None:
            data["pullRequestId"] = self.pull_request_id
        data.update(
            sha=self.sha,
            status=status,
            registry={"uri": self.image},
            concluded=concluded,
            createdAt=iso_from_ms(self.created_ms),
        )
        if concluded:
            data["success"] = status == "SUCCESS"
            data["message"] = ABORT_MESSAGE if status == "ABORTED" else FINAL_MESSAGE[status]
            data["buildConcludedAt"] = (self.created_ms + self.conclusion_ms) / 1000
        return data

    def visible_lines(self) -> list[LogLine]:
        """The whole log as it stands: cut at the abort when there was one."""
        if self.aborted_ms is None:
            return list(self.lines)
        kept = [line for line in self.lines if line.offset_ms <= self.aborted_ms]
        return [*kept, abort_line(self.id, self.aborted_ms)]

    def emitted_lines(self, now: float) -> list[tuple[int, LogLine]]:
        """(epoch ms, line) for the lines logged by a monotonic time, in order."""
        elapsed_ms = (now - self.created) * 1000
        return [
            (self.created_ms + line.offset_ms, line)
            for line in self.visible_lines()
            if line.offset_ms <= elapsed_ms
        ]


@dataclass
class RateWindow:
    """One token's rate-limit window."""

    started: float
    count: int = 0


@dataclass
class RateState:
    """What the x-ratelimit-* headers say after a request."""

    limit: int
    remaining: int
    reset_seconds: int
    exceeded: bool

    def headers(self) -> dict[str, str]:
        """The x-ratelimit-* headers."""
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_seconds),
        }


@dataclass
class World:
    """Builds per service, list cursors, rate windows; history builds survive a reset."""

    config: EmulatorConfig
    clock: Clock
    builds: dict[tuple[str, str], list[Build]] = field(default_factory=dict)
    started: dict[tuple[str, str], int] = field(default_factory=dict)
    cursors: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    rates: dict[str, RateWindow] = field(default_factory=dict)
    next_seq: int = 0

    def __post_init__(self) -> None:
        now = self.clock.now()
        for project_id, services in self.config.projects.items():
            for service_id, service in services.items():
                self.builds[(project_id, service_id)] = []
                for past in sorted(service.history, key=lambda p: -p.age):
                    self._add_past_build(project_id, service_id, past, now)

    def reset(self) -> None:
        """Forget API-started builds, cursors and rate windows; keep history."""
        for key, builds in self.builds.items():
            self.builds[key] = [build for build in builds if build.from_history]
        self.started.clear()
        self.cursors.clear()
        self.rates.clear()

    def service(self, project_id: str, service_id: str) -> ServiceConfig:
        """The service's config; RequestError 404 naming what is missing."""
        services = self.config.projects.get(project_id)
        if services is None:
            raise RequestError(404, f"Project {project_id} not found")
        if service_id not in services:
            raise RequestError(404, f"Service {service_id} not found in project {project_id}")
        return services[service_id]

    def service_builds(self, project_id: str, service_id: str) -> list[Build]:
        """The service's builds, newest first."""
        self.service(project_id, service_id)
        return sorted(self.builds[(project_id, service_id)], key=lambda b: -b.seq)

    def find_build(self, project_id: str, service_id: str, build_id: str) -> Build:
        """One build of the service; RequestError 404 when it has no such build."""
        for build in self.service_builds(project_id, service_id):
            if build.id == build_id:
                return build
        raise RequestError(
            404, f"Build {build_id} not found for service {service_id} in project {project_id}"
        )

    def start_build(self, project_id: str, service_id: str, request: BuildRequest) -> Build:
        """Create a build as the API would for a valid request."""
        service = self.service(project_id, service_id)
        key = (project_id, service_id)
        outcome = service.outcome_of(self.started.get(key, 0))
        self.started[key] = self.started.get(key, 0) + 1
        branch = request.branch
        if service.type == "combined" and branch is None:
            branch = service.branch or "main"
        origin = request.bundle_url or service.repository or service_id
        sha = request.sha or _invented_sha(origin, branch or _ref_name(request.pull_request_id))
        schedule = _schedule(service.phases, outcome, 1.0)
        return self._add_build(
            project_id,
            service_id,
            schedule=schedule,
            final_status=FINAL_STATUS[outcome],
            created=self.clock.now(),
            sha=sha,
            branch=branch,
            pull_request_id=request.pull_request_id,
            source=origin,
        )

    def abort(self, project_id: str, service_id: str, build_id: str) -> None:
        """Abort a running build; RequestError 409 when it has already concluded."""
        build = self.find_build(project_id, service_id, build_id)
        now = self.clock.now()
        status, concluded = build.status_at(now)
        if concluded:
            raise RequestError(409, f"Build {build_id} has already concluded ({status})")
        build.aborted_ms = math.floor((now - build.created) * 1000)

    def list_page(
        self, project_id: str, service_id: str, query: dict[str, str]
    ) -> tuple[list[Build], dict[str, Any]]:
        """One page of builds, newest first, and the pagination object."""
        builds = self.service_builds(project_id, service_id)
        per_page = _bounded(query, "per_page", 50, 1, 100)
        if "cursor" in query:
            anchor = self.cursors.get(query["cursor"])
            if anchor is None or anchor[:2] != (project_id, service_id):
                raise RequestError(400, "cursor is not valid for this list")
            builds = [build for build in builds if build.seq <= anchor[2]]
        else:
            page = _bounded(query, "page", 1, 1, 10**6)
            builds = builds[(page - 1) * per_page :]
        shown = builds[:per_page]
        pagination: dict[str, Any] = {"hasNextPage": len(builds) > per_page, "count": len(shown)}
        if len(builds) > per_page:
            cursor = secrets.token_hex(12)
            self.cursors[cursor] = (project_id, service_id, builds[per_page].seq)
            pagination["cursor"] = cursor
        return shown, pagination

    def count_request(self, token: str) -> RateState:
        """Count one request against the token's window and say where it stands."""
        return self._rate(token, 1)

    def peek_rate(self, token: str) -> RateState:
        """The token's rate-limit standing without counting a request."""
        return self._rate(token, 0)

    def _rate(self, token: str, cost: int) -> RateState:
        now = self.clock.now()
        window = self.rates.get(token)
        if window is None or now - window.started >= self.config.rate_window:
            window = RateWindow(now)
            if cost:
                self.rates[token] = window
        window.count += cost
        limit = self.config.rate_limit
        reset = max(1, math.ceil(self.config.rate_window - (now - window.started)))
        return RateState(limit, max(0, limit - window.count), reset, window.count > limit)

    def _add_past_build(
        self, project_id: str, service_id: str, past: PastBuild, now: float
    ) -> None:
        service = self.service(project_id, service_id)
        outcome = "success" if past.outcome == "aborted" else past.outcome
        # An aborted past build runs a schedule twice its duration and stops halfway.
        length = past.duration * (2 if past.outcome == "aborted" else 1)
        schedule = _schedule(service.phases, outcome, length, fit=True)
        origin = service.repository or service_id
        branch = past.branch or (service.branch if service.type == "combined" else None)
        sha = past.sha or _invented_sha(origin, f"{branch}@{past.age}")
        build = self._add_build(
            project_id,
            service_id,
            schedule=schedule,
            final_status=FINAL_STATUS[outcome],
            created=now - past.age,
            sha=sha,
            branch=branch,
            pull_request_id=past.pull_request_id,
            source=origin,
            from_history=True,
        )
        if past.outcome == "aborted":
            build.aborted_ms = round(past.duration * 1000)

    def _add_build(
        self,
        project_id: str,
        service_id: str,
        *,
        schedule: list[tuple[str, int, int]],
        final_status: str,
        created: float,
        sha: str,
        branch: str | None,
        pull_request_id: int | None,
        source: str,
        from_history: bool = False,
    ) -> Build:
        service = self.service(project_id, service_id)
        build_id = self._new_id()
        image = f"registry.emulator.local/{project_id}/{service_id}:{build_id}"
        story = BuildStory(
            build_id=build_id,
            source=source,
            from_bundle=service.build_source == "bundle",
            branch=branch or _ref_name(pull_request_id),
            sha=sha,
            image=image,
            ending=OUTCOME_OF_STATUS[final_status],
        )
        seconds = [(status, start / 1000, end / 1000) for status, start, end in schedule]
        build = Build(
            id=build_id,
            project_id=project_id,
            service_id=service_id,
            seq=self.next_seq,
            created=created,
            created_ms=self.clock.ms(created),
            schedule=schedule,
            final_status=final_status,
            lines=plan_log(story, seconds, service.log_lines_per_phase),
            sha=sha,
            image=image,
            branch=branch,
            pull_request_id=pull_request_id,
            from_history=from_history,
        )
        self.next_seq += 1
        self.builds[(project_id, service_id)].append(build)
        return build

    def _new_id(self) -> str:
        taken = {build.id for builds in self.builds.values() for build in builds}
        while True:
            number = 1000 + secrets.randbelow(9000)
            build_id = f"{secrets.choice(ADJECTIVES)}-{secrets.choice(NOUNS)}-{number}"
            if build_id not in taken:
                return build_id


def _schedule(
    phases: dict[str, float], outcome: str, scale: float, fit: bool = False
) -> list[tuple[str, int, int]]:
    """(status, start ms, end ms) per phase; failing builds stop after BUILDING.

    With fit, the phases are stretched so that they last `scale` seconds in all.
    """
    used = PHASES if outcome == "success" else PHASES[:3]
    total = sum(phases[p] for p in used)
    schedule: list[tuple[str, int, int]] = []
    start = 0.0
    for phase in used:
        if fit:
            length = phases[phase] * scale / total if total else scale / len(used)
        else:
            length = phases[phase] * scale
        schedule.append((phase, round(start * 1000), round((start + length) * 1000)))
        start += length
    return schedule


def _ref_name(pull_request_id: int | None) -> str:
    return "default branch" if pull_request_id is None else f"pull request {pull_request_id}"


def _invented_sha(origin: str, ref: str) -> str:
    """A plausible 40-hex sha, the same for the same repository and ref (its "latest commit")."""
    return hashlib.sha1(f"{origin}#{ref}".encode(), usedforsecurity=False).hexdigest()


def _bounded(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(query.get(name, default))
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise RequestError(400, f"{name} must be an integer from {low} to {high}")
    return value
