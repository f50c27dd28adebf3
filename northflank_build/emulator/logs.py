"""Build logs: realistic lines planned per phase, and the build-logs query over them.

Lines come in bursts of up to 10 that share one millisecond timestamp, on purpose: a client
paging by timestamp must cope with ties.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .answers import RequestError
from .clock import iso_from_ms, ms_from_iso

DOCKER_STEPS = (
    ("FROM node:20-alpine AS base", "resolve docker.io/library/node:20-alpine done"),
    ("WORKDIR /app", "writing layer sha256:4f4fb700ef54 done"),
    ("COPY package.json package-lock.json ./", "transferring context: 412.31kB done"),
    ("RUN npm ci", "added 812 packages, and audited 813 packages in 6s"),
    ("COPY . .", "transferring context: 2.31MB done"),
    ("RUN npm run build", "> web@1.4.0 build > tsc -p tsconfig.json"),
    ("RUN npm test", "Tests: 148 passed, 148 total"),
    ("EXPOSE 8080", "exporting layers done"),
    ('CMD ["node", "dist/server.js"]', "writing image sha256:9c1d2e3f4a5b done"),
)
FAILURE_MESSAGE = (
    'Build failed at step 7/9 (RUN npm test): process "/bin/sh -c npm test" '
    "did not complete successfully: exit code: 1"
)
CRASH_MESSAGE = "Build container crashed (OOMKilled)"
ABORT_MESSAGE = "Build aborted by user"
SUCCESS_MESSAGE = "Image successfully built"


@dataclass(frozen=True)
class LogLine:
    """One log line, timed in milliseconds after the build's creation."""

    offset_ms: int
    container_id: str
    text: str


@dataclass(frozen=True)
class BuildStory:
    """What a build's log tells: its source, image and how it ends."""

    build_id: str
    source: str
    from_bundle: bool
    branch: str
    sha: str
    image: str
    ending: str


def plan_log(
    story: BuildStory, schedule: list[tuple[str, float, float]], lines_per_phase: int
) -> list[LogLine]:
    """Every line the build will log: lines_per_phase per (status, start, end) phase, in bursts."""
    # Seeded by the build id so the same build always logs the same way; not for secrets.
    rng = random.Random(story.build_id)  # noqa: S311
    container = f"{story.build_id}-builder"
    lines: list[LogLine] = []
    for status, start, end in schedule:
        texts = _phase_texts(status, story)
        remaining = lines_per_phase
        sizes: list[int] = []
        while remaining > 0:
            sizes.append(min(remaining, rng.randint(3, 10)))
            remaining -= sizes[-1]
        for index, size in enumerate(sizes):
            offset_ms = round((start + (end - start) * index / len(sizes)) * 1000)
            lines.extend(LogLine(offset_ms, container, next(texts)) for _ in range(size))
    end_ms = round(schedule[-1][2] * 1000) if schedule else 0
    lines.extend(LogLine(end_ms, container, text) for text in _ending_texts(story))
    return lines


def abort_line(build_id: str, offset_ms: int) -> LogLine:
    """The line an aborted build logs last."""
    return LogLine(offset_ms, f"{build_id}-builder", ABORT_MESSAGE)


def _phase_texts(status: str, story: BuildStory) -> Iterator[str]:
    """Endless plausible lines for one phase: its opening lines, then varied progress lines."""
    if status == "QUEUED":
        yield from (
            f"Build {story.build_id} queued",
            "Waiting for an available build node",
            "Build scheduled on node build-pool-3",
            "Pulling builder image northflank/buildkit:v0.12.5",
        )
        for attempt in itertools.count(1):
            yield f"Builder not ready yet, checking again (attempt {attempt})"
    elif status == "CLONING":
        fetch = "Downloading bundle" if story.from_bundle else "Cloning repository"
        yield from (
            f"{fetch} {story.source} ...",
            f"Checking out {story.sha} ({story.branch})",
            "remote: Enumerating objects: 1423, done.",
            "remote: Counting objects: 100% (1423/1423), done.",
            "Receiving objects: 100% (1423/1423), 2.31 MiB | 18.40 MiB/s, done.",
            "Resolving deltas: 100% (812/812), done.",
            f"HEAD is now at {story.sha[:7]} Merge pull request #41 from acme/feature",
        )
        for count in itertools.count(1):
            yield f"Submodule path 'vendor/lib{count}': checked out '{story.sha[:12]}'"
    elif status == "BUILDING":
        for step in itertools.count():
            command, output = DOCKER_STEPS[step % len(DOCKER_STEPS)]
            number = step % len(DOCKER_STEPS) + 1
            yield f"Step {number}/{len(DOCKER_STEPS)} : {command}"
            yield f"#{step + 4} 0.{412 + step * 37 % 500} {output}"
            yield f"#{step + 4} DONE {1 + step * 7 % 50 / 10:.1f}s"
    else:
        yield f"Pushing image {story.image}"
        for layer in itertools.count():
            digest = hashlib.sha256(f"{story.sha}{layer}".encode()).hexdigest()[:12]
            yield f"{digest}: Pushed"


def _ending_texts(story: BuildStory) -> tuple[str, ...]:
    if story.ending == "failure":
        return (
            "#10 4.211 npm ERR! Test failed.  See above for more details.",
            '#10 ERROR: process "/bin/sh -c npm test" did not complete successfully: exit code: 1',
            "error: npm ERR! Test failed",
            'process "/bin/sh -c npm test" did not complete successfully: exit code: 1',
            "Build failed",
        )
    if story.ending == "crash":
        return ("Build container exited unexpectedly", CRASH_MESSAGE)
    return (f"Build finished: {story.image}", SUCCESS_MESSAGE)


@dataclass(frozen=True)
class LogQuery:
    """A parsed build-logs query."""

    build_id: str
    start_ms: int | None
    end_ms: int | None
    duration: float | None
    line_limit: int
    backward: bool
    filters: tuple[tuple[str, str], ...]


FILTERS = ("textIncludes", "textNotIncludes", "regexIncludes", "regexNotIncludes")


def parse_log_query(query: Mapping[str, str], page_limit: int) -> LogQuery:
    """Read the build-logs query string; raises RequestError (400) for a bad value."""
    build_id = query.get("buildId", "")
    if not build_id:
        raise RequestError(400, "Query parameter buildId is required")
    query_type = query.get("queryType", "range")
    if query_type != "range":
        raise RequestError(400, f"queryType {query_type!r} is not served here; use range")
    direction = query.get("direction", "forward")
    if direction not in ("forward", "backward"):
        raise RequestError(400, "direction must be forward or backward")
    line_limit = _integer(query, "lineLimit", page_limit)
    if line_limit < 1:
        raise RequestError(400, "lineLimit must be 1 or more")
    duration = _seconds(query, "duration")
    if duration is not None and not (math.isfinite(duration) and duration >= 0):
        raise RequestError(400, "duration must be a non-negative number of seconds")
    filters = tuple((name, query[name]) for name in FILTERS if name in query)
    for name, pattern in filters:
        if name.startswith("regex"):
            try:
                re.compile(pattern)
            except re.error as error:
                raise RequestError(400, f"{name} is not a valid regex: {error}") from error
    return LogQuery(
        build_id,
        _timestamp(query, "startTime"),
        _timestamp(query, "endTime"),
        duration,
        min(line_limit, page_limit),  # a larger limit is capped, as the API caps its results
        direction == "backward",
        filters,
    )


def select_lines(
    lines: list[tuple[int, LogLine]], query: LogQuery, now_ms: int
) -> list[tuple[int, LogLine]]:
    """The lines (already emitted, as (epoch ms, line) in order) that the query asks for."""
    lower, upper = query.start_ms, query.end_ms
    if query.duration is not None and (lower is None or upper is None):
        if lower is not None and not query.backward:
            upper = lower + round(query.duration * 1000)
        else:
            end = upper if upper is not None else now_ms
            window_start = end - round(query.duration * 1000)
            lower = window_start if lower is None else max(lower, window_start)
    chosen = [
        (ts, line)
        for ts, line in lines
        if (lower is None or ts >= lower)  # startTime is inclusive
        and (upper is None or ts <= upper)
        and all(_passes(name, pattern, line.text) for name, pattern in query.filters)
    ]
    # Backward returns the newest lines, still in chronological order.
    return chosen[-query.line_limit :] if query.backward else chosen[: query.line_limit]


def _passes(name: str, pattern: str, text: str) -> bool:
    if name == "textIncludes":
        return pattern in text
    if name == "textNotIncludes":
        return pattern not in text
    found = re.search(pattern, text) is not None
    return found if name == "regexIncludes" else not found


def line_json(epoch_ms: int, line: LogLine) -> dict[str, str]:
    """A log line as the API answers it."""
    return {"containerId": line.container_id, "log": line.text, "ts": iso_from_ms(epoch_ms)}


def _integer(query: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(query.get(name, default))
    except ValueError as error:
        raise RequestError(400, f"{name} must be an integer, got {query[name]!r}") from error


def _seconds(query: Mapping[str, str], name: str) -> float | None:
    if name not in query:
        return None
    try:
        return float(query[name])
    except ValueError as error:
        raise RequestError(400, f"{name} must be a number of seconds") from error


def _timestamp(query: Mapping[str, str], name: str) -> int | None:
    if name not in query:
        return None
    try:
        return ms_from_iso(query[name])
    except ValueError as error:
        raise RequestError(400, f"{name} must be an ISO 8601 timestamp") from error
