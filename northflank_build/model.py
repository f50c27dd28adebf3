"""The API's answers as typed, immutable values, parsed once where they enter the program.

Everything after the client works on these values, never on the API's dicts. An answer that does
not parse (a build without an id, a field of the wrong type, a time that cannot be one) raises
Malformed, which the client turns into an ApiError naming the request: one clear error, exit 3.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

# Times outside these years are not a build's: a unit mistake or garbage (1e20, NaN, year 1).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
MILLISECONDS = 1e11  # a number this large is Unix milliseconds, not seconds
MAX_ID = 256
MAX_CURSOR = 256
QUOTED = 80  # characters of a bad value quoted in an error


class Malformed(ValueError):
    """An answer of the API that does not have the shape the program relies on."""


def _quote(value: object) -> str:
    text = repr(value)
    return text if len(text) <= QUOTED else text[: QUOTED - 1] + "…"


def parse_time(value: object) -> float | None:
    """An API time as Unix seconds: ISO 8601 text (UTC when it has no offset), or a number of
    Unix seconds or milliseconds. None when absent; Malformed when it is not a plausible time."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Malformed(f"{_quote(value)} is not a time")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise Malformed(f"{_quote(value)} is not a time")
        seconds = value / 1000 if abs(value) >= MILLISECONDS else float(value)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise Malformed(f"{_quote(value)} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    else:
        raise Malformed(f"{_quote(value)} is not a time")
    if not EARLIEST <= seconds <= LATEST:
        raise Malformed(f"{_quote(value)} is not a time between the years 2000 and 2100")
    return seconds


def iso(seconds: float | None) -> str:
    """Unix seconds as ISO 8601 in UTC with milliseconds, as the API writes times; '' for None."""
    if seconds is None:
        return ""
    text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Malformed(f"{key} is {_quote(value)}, not text")
    return value


def _flag(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise Malformed(f"{key} is {_quote(value)}, not true or false")


def _number(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        return int(value)
    raise Malformed(f"{key} is {_quote(value)}, not a number")


def _time(data: Mapping[str, Any], key: str) -> float | None:
    try:
        return parse_time(data.get(key))
    except Malformed as error:
        raise Malformed(f"{key}: {error}") from None


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{key} is {_quote(value)}, not an object")
    return value


@dataclass(frozen=True)
class Build:
    """One build as the API last described it; `data` is that description, for the outputs."""

    id: str
    status: str = ""
    concluded: bool = False
    success: bool | None = None
    created_at: float | None = None
    concluded_at: float | None = None
    image: str = ""
    sha: str = ""
    branch: str = ""
    pull_request_id: int | None = None
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, data: object) -> Build:
        """The build in an API answer's data; Malformed when it is not one."""
        if not isinstance(data, dict):
            raise Malformed(f"the build is {_quote(data)}, not an object")
        build_id = data.get("id")
        if not isinstance(build_id, str) or not build_id.strip():
            raise Malformed(f"the build has no id (id is {_quote(build_id)})")
        if len(build_id) > MAX_ID or not build_id.isprintable():
            raise Malformed(f"the build's id {_quote(build_id)} is not an id")
        concluded_key = "buildConcludedAt" if data.get("buildConcludedAt") else "concludedAt"
        return cls(
            id=build_id,
            status=_text(data, "status"),
            concluded=_flag(data, "concluded") or False,
            success=_flag(data, "success"),
            created_at=_time(data, "createdAt"),
            concluded_at=_time(data, concluded_key),
            image=_text(_object(data, "registry"), "uri"),
            sha=_text(data, "sha"),
            branch=_text(data, "branch"),
            pull_request_id=_number(data, "pullRequestId"),
            message=_text(data, "message"),
            data=data,
        )

    @property
    def succeeded(self) -> bool:
        """The one outcome rule: concluded, and `success` says so; where the API does not give
        `success`, a status of SUCCESS."""
        if not self.concluded:
            return False
        return self.success if self.success is not None else self.status == "SUCCESS"

    @property
    def outcome(self) -> str:
        """success or failure, for a concluded build."""
        return "success" if self.succeeded else "failure"

    @property
    def duration(self) -> float | None:
        """Seconds from creation to conclusion, once concluded."""
        if not self.concluded or self.created_at is None or self.concluded_at is None:
            return None
        return max(0.0, self.concluded_at - self.created_at)

    def aborted(self) -> Build:
        """The build as it stands after this run aborted it."""
        change = {"status": "ABORTED", "concluded": True, "success": False}
        return replace(self, **change, data={**self.data, **change})  # type: ignore[arg-type]

    def made_for(self, body: Mapping[str, Any]) -> bool:
        """Whether this build is of the target a start request's body names: its sha, branch and
        pull request, each where the body gives one (a sha in either letter case)."""
        if "sha" in body and self.sha.lower() != str(body["sha"]).lower():
            return False
        if "branch" in body and self.branch != body["branch"]:
            return False
        return "pullRequestId" not in body or self.pull_request_id == body["pullRequestId"]


def parse_builds(items: object) -> list[Build]:
    """The builds of a list answer; an entry that is not a build is left out."""
    builds = []
    for item in items if isinstance(items, list) else []:
        try:
            builds.append(Build.parse(item))
        except Malformed:
            continue
    return builds


@dataclass(frozen=True)
class Service:
    """What the API says about the service to build."""

    service_type: str
    build_source: str = ""
    repository: str = ""
    branch: str = ""
    repository_type: str = ""  # vcsData.projectType: github, gitlab, bitbucket, azure, self-hosted

    @classmethod
    def parse(cls, data: object) -> Service:
        if not isinstance(data, dict):
            raise Malformed(f"the service is {_quote(data)}, not an object")
        vcs = _object(data, "vcsData")
        return cls(
            service_type=_text(data, "serviceType") or "unknown",
            build_source=_text(data, "buildSource"),
            repository=_text(vcs, "projectUrl"),
            branch=_text(vcs, "projectBranch"),
            repository_type=_text(vcs, "projectType"),
        )


@dataclass(frozen=True)
class Pages:
    """What a paged answer says of the pages after it (its `pagination` object)."""

    more: bool | None = None  # hasNextPage; None when the answer says nothing of pages
    cursor: str | None = None  # what asks for the next page, when the answer gives one

    @classmethod
    def parse(cls, answer: Mapping[str, Any]) -> Pages:
        """The answer's pagination; anything unusable in it reads as not said."""
        pagination = answer.get("pagination")
        if not isinstance(pagination, dict):
            return cls()
        more = pagination.get("hasNextPage")
        cursor = pagination.get("cursor")
        usable = isinstance(cursor, str) and 0 < len(cursor) <= MAX_CURSOR and cursor.isprintable()
        return cls(more if isinstance(more, bool) else None, cursor if usable else None)

    @property
    def next_cursor(self) -> str | None:
        """The cursor of the next page, when the answer says there is one and how to ask."""
        return self.cursor if self.more else None


@dataclass(frozen=True)
class BuildPage:
    """One page of a service's builds, in the API's order (which is undocumented)."""

    builds: tuple[Build, ...]
    pages: Pages = field(default_factory=Pages)

    @classmethod
    def parse(cls, answer: Mapping[str, Any]) -> BuildPage:
        data = answer.get("data")
        items = data.get("builds") if isinstance(data, dict) else None
        return cls(tuple(parse_builds(items)), Pages.parse(answer))


@dataclass(frozen=True)
class LogLine:
    """One line of a build log: its time as the API wrote it (ISO 8601 text) and its text."""

    ts: str
    text: str


# Where log answers have been seen to hold their lines: {"data": [...]} is the documented form;
# the Python SDK's author records {"data": {"logs": [...]}} and {"data": {"data": [...]}}.
LOG_KEYS = ("logs", "data")


@dataclass(frozen=True)
class LogPage:
    """One answer of the build-logs range query: its lines in the order given, and its pages.

    `unknown` describes an answer whose lines were in none of the known places ('' otherwise).
    """

    lines: tuple[LogLine, ...]
    pages: Pages = field(default_factory=Pages)
    unknown: str = ""

    @classmethod
    def parse(cls, answer: Mapping[str, Any]) -> LogPage:
        data = answer.get("data")
        if isinstance(data, dict):
            data = next((data[k] for k in LOG_KEYS if isinstance(data.get(k), list)), data)
        if not isinstance(data, list):
            return cls((), Pages.parse(answer), _shape(data))
        return cls(tuple(parse_log_lines(data)), Pages.parse(answer))


def _shape(value: object) -> str:
    """What a value is, in words, without quoting its content: for a warning."""
    if isinstance(value, dict):
        keys = ", ".join(str(key)[:40] for key in list(value)[:10])
        return f"an object with the keys {keys}" if keys else "an empty object"
    return "no data" if value is None else f"a {type(value).__name__}"


def parse_log_lines(items: list[Any]) -> list[LogLine]:
    """The API's line objects as LogLines; ts is '' where a line has no timestamp."""
    lines = []
    for item in items:
        if not isinstance(item, dict):
            continue
        ts, text = item.get("ts"), item.get("log")
        ts = ts if isinstance(ts, str) else ""
        lines.append(LogLine(ts, text if isinstance(text, str) else str(text or "")))
    return lines
