"""What a build logs: realistic lines planned per phase, and how each outcome reads.

Lines come in bursts of up to 10 that share one millisecond timestamp, on purpose: a client
paging by timestamp must cope with ties.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

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
UNSCHEDULABLE_MESSAGE = (
    "Build could not be scheduled: no build node can provide the requested resources"
)
SUBMISSION_FAILURE_MESSAGE = "Build could not be submitted to the build cluster"
MESSAGES = {
    "success": SUCCESS_MESSAGE,
    "failure": FAILURE_MESSAGE,
    "crash": CRASH_MESSAGE,
    "aborted": ABORT_MESSAGE,
    "unschedulable": UNSCHEDULABLE_MESSAGE,
    "submission-failure": SUBMISSION_FAILURE_MESSAGE,
}


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
    if status == "PENDING":
        yield from (
            f"Build {story.build_id} pending",
            "Build request accepted, waiting for the build scheduler",
        )
        for attempt in itertools.count(1):
            yield f"Build still pending (check {attempt})"
    elif status == "QUEUED":
        yield from (
            f"Build {story.build_id} queued",
            "Waiting for an available build node",
        )
        for attempt in itertools.count(1):
            yield f"Builder not ready yet, checking again (attempt {attempt})"
    elif status == "STARTING":
        yield from (
            "Build scheduled on node build-pool-3",
            "Pulling builder image northflank/buildkit:v0.12.5",
        )
        for attempt in itertools.count(1):
            yield f"Starting builder container (step {attempt})"
    elif status == "IN_PROGRESS":
        yield "Build in progress"
        for step in itertools.count(1):
            yield f"Preparing build context (step {step})"
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
    if story.ending == "unschedulable":
        return ("0/3 build nodes are available: insufficient memory", UNSCHEDULABLE_MESSAGE)
    if story.ending == "submission-failure":
        return ("Build submission rejected by the build cluster", SUBMISSION_FAILURE_MESSAGE)
    if story.ending == "aborted":
        return (ABORT_MESSAGE,)
    return (f"Build finished: {story.image}", SUCCESS_MESSAGE)
