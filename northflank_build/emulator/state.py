"""The emulated world: builds per service, list and log cursors, and rate-limit windows.

Not thread-safe on its own: the server calls it under one lock, so builds started on several
services at once, and the one rate-limit window per token they share, stay consistent.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .answers import RequestError
from .builds import Build, Schedule, plan_schedule
from .clock import Clock
from .config import EmulatorConfig, ExternalBuild, Outcome, PastBuild, ServiceConfig
from .logs import LogQuery, LogRange, line_json, new_range, read_range
from .story import BuildStory, plan_log
from .validate import BuildRequest

ADJECTIVES = ("joyous", "brave", "calm", "eager", "gentle", "lively", "proud", "quiet", "witty")
NOUNS = ("view", "river", "forest", "meadow", "harbor", "summit", "canyon", "breeze", "comet")
KEPT_CURSORS = 1000  # the newest cursors handed out stay valid; older ones are forgotten

T = TypeVar("T")


class Cursors(Generic[T]):
    """Opaque 24-character cursors for what the next page needs; the newest KEPT_CURSORS kept."""

    def __init__(self) -> None:
        self._kept: OrderedDict[str, T] = OrderedDict()

    def keep(self, value: T) -> str:
        """A new cursor for value."""
        cursor = secrets.token_hex(12)
        self._kept[cursor] = value
        while len(self._kept) > KEPT_CURSORS:
            self._kept.popitem(last=False)
        return cursor

    def get(self, cursor: str) -> T | None:
        """What the cursor was handed out for, if it is still kept."""
        return self._kept.get(cursor)

    def clear(self) -> None:
        """Forget every cursor."""
        self._kept.clear()


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


ListCursor = tuple[str, str, tuple[int, ...]]  # project, service, the seqs still to list


@dataclass
class World:
    """Builds per service, cursors, rate windows; the config's builds survive a reset."""

    config: EmulatorConfig
    clock: Clock
    builds: dict[tuple[str, str], list[Build]] = field(default_factory=dict)
    started: dict[tuple[str, str], int] = field(default_factory=dict)
    list_cursors: Cursors[ListCursor] = field(default_factory=Cursors)
    log_cursors: Cursors[LogRange] = field(default_factory=Cursors)
    rates: dict[str, RateWindow] = field(default_factory=dict)
    next_seq: int = 0

    def __post_init__(self) -> None:
        now = self.clock.now()
        for project_id, services in self.config.projects.items():
            for service_id, service in services.items():
                self.builds[(project_id, service_id)] = []
                for past in sorted(service.history, key=lambda p: -p.age):
                    self._add_past_build(project_id, service_id, past, now)
                for external in service.external_builds:
                    self.add_external_build(project_id, service_id, external, kept=True)

    def reset(self) -> None:
        """Forget builds not from the config, cursors and rate windows."""
        for key, builds in self.builds.items():
            self.builds[key] = [build for build in builds if build.kept]
        self.started.clear()
        self.list_cursors.clear()
        self.log_cursors.clear()
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
        """The service's builds, newest first (by creation; the later added first on a tie)."""
        self.service(project_id, service_id)
        return sorted(self.builds[(project_id, service_id)], key=newest_first)

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
        sha = request.sha
        if sha is None:
            sha = _invented_sha(origin, branch or _ref_name(request.pull_request_id))
        return self._add_build(
            project_id,
            service_id,
            schedule=plan_schedule(service.phases, outcome, None),
            outcome=outcome,
            created=self.clock.now(),
            sha=sha,
            branch=branch,
            pull_request_id=request.pull_request_id,
            source=origin,
        )

    def add_external_build(
        self, project_id: str, service_id: str, external: ExternalBuild, kept: bool = False
    ) -> Build:
        """Add a build nobody started through the API; RequestError 404/409, ConfigError.

        Without a sha it builds the latest commit of its branch or pull request: the sha a
        start request without one would get.
        """
        service = self.service(project_id, service_id)
        if service.type == "deployment":
            raise RequestError(409, f"Service {service_id} is a deployment service")
        service.check_sha(external.sha)
        branch = external.branch
        if branch is None and external.pull_request_id is None and service.type == "combined":
            branch = service.branch or "main"
        origin = service.repository or service_id
        sha = external.sha
        if sha is None:
            sha = _invented_sha(origin, branch or _ref_name(external.pull_request_id))
        return self._add_build(
            project_id,
            service_id,
            schedule=plan_schedule(service.phases, external.outcome, external.duration),
            outcome=external.outcome,
            created=self.clock.now() - external.elapsed,
            sha=sha,
            branch=branch,
            pull_request_id=external.pull_request_id,
            source=origin,
            kept=kept,
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
        """One page of builds in the config's list order, and the pagination object.

        A cursor goes on with the builds that followed its page when it was handed out.
        """
        builds = self.listed(project_id, service_id)
        per_page = _bounded(query, "per_page", 50, 1, 100)
        if "cursor" in query:
            anchor = self.list_cursors.get(query["cursor"])
            if anchor is None or anchor[:2] != (project_id, service_id):
                raise RequestError(400, "cursor is not valid for this list")
            by_seq = {build.seq: build for build in builds}
            builds = [by_seq[seq] for seq in anchor[2] if seq in by_seq]
        else:
            page = _bounded(query, "page", 1, 1, 10**6)
            builds = builds[(page - 1) * per_page :]
        shown = builds[:per_page]
        pagination: dict[str, Any] = {"hasNextPage": len(builds) > per_page, "count": len(shown)}
        if len(builds) > per_page:
            rest = tuple(build.seq for build in builds[per_page:])
            pagination["cursor"] = self.list_cursors.keep((project_id, service_id, rest))
        return shown, pagination

    def listed(self, project_id: str, service_id: str) -> list[Build]:
        """The service's builds in the order the list endpoint gives them (list_order)."""
        newest_first = self.service_builds(project_id, service_id)
        order = self.config.list_order
        if order == "oldest-first":
            return newest_first[::-1]
        if order == "newest-first" or len(newest_first) < 2:
            return newest_first
        shuffled = sorted(newest_first, key=_shuffle_key)
        if shuffled[0] is newest_first[0]:
            shuffled.append(shuffled.pop(0))  # never newest first, so relying on it shows
        return shuffled

    def log_page(
        self, project_id: str, service_id: str, query: LogQuery
    ) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """One answer of the build-logs range query, and its pagination object."""
        now = self.clock.now()
        if query.cursor is None:
            where = new_range(
                query, project_id, service_id, self.clock.ms(now), self.config.log_window
            )
        else:
            kept = self.log_cursors.get(query.cursor)
            if (
                kept is None
                or (kept.project_id, kept.service_id) != (project_id, service_id)
                or query.build_id not in (None, kept.build_id)
            ):
                raise RequestError(400, "cursor is not valid for this build's logs")
            where = kept
        build = self.find_build(project_id, service_id, where.build_id)
        chosen, rest = read_range(build.emitted_lines(now), where, query.line_limit)
        pagination: dict[str, Any] = {"hasNextPage": rest is not None}
        if rest is not None:
            pagination["cursor"] = self.log_cursors.keep(rest)
        return [line_json(ts, line) for ts, line in chosen], pagination

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
        origin = service.repository or service_id
        branch = past.branch or (service.branch if service.type == "combined" else None)
        sha = past.sha or _invented_sha(origin, f"{branch}@{past.age}")
        self._add_build(
            project_id,
            service_id,
            schedule=plan_schedule(service.phases, past.outcome, past.duration),
            outcome=past.outcome,
            created=now - past.age,
            sha=sha,
            branch=branch,
            pull_request_id=past.pull_request_id,
            source=origin,
            kept=True,
        )

    def _add_build(
        self,
        project_id: str,
        service_id: str,
        *,
        schedule: Schedule,
        outcome: Outcome,
        created: float,
        sha: str,
        branch: str | None,
        pull_request_id: int | None,
        source: str,
        kept: bool = False,
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
            ending=outcome,
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
            outcome=outcome,
            lines=plan_log(story, seconds, service.log_lines_per_phase),
            sha=sha,
            image=image,
            branch=branch,
            pull_request_id=pull_request_id,
            kept=kept,
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


def newest_first(build: Build) -> tuple[float, int]:
    """The sort key that puts the newest build first."""
    return (-build.created, -build.seq)


def _shuffle_key(build: Build) -> bytes:
    """A fixed pseudo-random rank: the same builds always list in the same shuffled order."""
    return hashlib.sha256(f"{build.project_id}/{build.service_id}/{build.seq}".encode()).digest()


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
