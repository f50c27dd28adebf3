"""The build-logs query: its window, its direction, its filters and its pages.

A range reads the lines between two times, both inclusive. When the query gives one end only,
the range covers the config's log_window (30 minutes, the official CLI's assumption) from
startTime, or up to endTime; with neither, the last log_window seconds; `duration` replaces
log_window and, as documented, may go with one end at most. A range with more matching lines than
the answer holds says `pagination: {hasNextPage: true, cursor}`: the cursor carries the range,
its direction and filters, and where the answer ended, so asking again with it goes on from there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .answers import RequestError
from .clock import iso_from_ms, ms_from_iso
from .story import LogLine

FILTERS = ("textIncludes", "textNotIncludes", "regexIncludes", "regexNotIncludes")
# Where a logs answer puts its lines; "list" is the documented {"data": [...]}.
ENVELOPES = {"list": None, "logs": "logs", "data": "data", "unknown": "entries"}


@dataclass(frozen=True)
class LogQuery:
    """A parsed build-logs query string."""

    build_id: str | None
    start_ms: int | None
    end_ms: int | None
    duration: float | None
    line_limit: int
    backward: bool
    filters: tuple[tuple[str, str], ...]
    cursor: str | None


@dataclass(frozen=True)
class LogRange:
    """What one range reads: a build's lines between two epoch ms, filtered, and where to resume.

    `resume` is a line's index in the build's log: a forward range reads from it on, a backward
    range the lines before it; None reads the whole range.
    """

    project_id: str
    service_id: str
    build_id: str
    lower_ms: int
    upper_ms: int
    backward: bool
    filters: tuple[tuple[str, str], ...]
    resume: int | None = None


def parse_log_query(query: Mapping[str, str], page_limit: int) -> LogQuery:
    """Read the build-logs query string; raises RequestError (400) for a bad value."""
    cursor = query.get("cursor") or None
    build_id = query.get("buildId") or None
    if build_id is None and cursor is None:
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
    start_ms, end_ms = _timestamp(query, "startTime"), _timestamp(query, "endTime")
    if duration is not None and start_ms is not None and end_ms is not None:
        raise RequestError(400, "duration may be set with only one of startTime or endTime")
    filters = tuple((name, query[name]) for name in FILTERS if name in query)
    for name, pattern in filters:
        if name.startswith("regex"):
            try:
                re.compile(pattern)
            except re.error as error:
                raise RequestError(400, f"{name} is not a valid regex: {error}") from error
    return LogQuery(
        build_id,
        start_ms,
        end_ms,
        duration,
        min(line_limit, page_limit),  # a larger limit is capped, as the API caps its results
        direction == "backward",
        filters,
        cursor,
    )


def new_range(
    query: LogQuery, project_id: str, service_id: str, now_ms: int, window_seconds: float
) -> LogRange:
    """The range a query without a cursor reads (see the module docstring for the window)."""
    seconds = query.duration if query.duration is not None else window_seconds
    length = round(seconds * 1000)
    lower, upper = query.start_ms, query.end_ms
    if lower is not None:
        bounds = (lower, upper if upper is not None else lower + length)
    elif upper is not None:
        bounds = (upper - length, upper)
    else:
        bounds = (now_ms - length, now_ms)
    return LogRange(
        project_id, service_id, query.build_id or "", *bounds, query.backward, query.filters
    )


def read_range(
    lines: list[tuple[int, LogLine]], where: LogRange, line_limit: int
) -> tuple[list[tuple[int, LogLine]], LogRange | None]:
    """One answer's lines (emitted ones, as (epoch ms, line), oldest first) and the rest's range.

    A backward answer holds the newest lines of the range, still oldest first. The second value
    is None when the answer holds every line the range has now.
    """
    resume = where.resume
    matching = [
        index
        for index, (ts, line) in enumerate(lines)
        if where.lower_ms <= ts <= where.upper_ms
        and (resume is None or (index < resume if where.backward else index >= resume))
        and all(_passes(name, pattern, line.text) for name, pattern in where.filters)
    ]
    chosen = matching[-line_limit:] if where.backward else matching[:line_limit]
    rest = None
    if len(matching) > line_limit:
        rest = replace(where, resume=chosen[0] if where.backward else chosen[-1] + 1)
    return [lines[index] for index in chosen], rest


def envelope(lines: list[dict[str, str]], kind: str) -> Any:
    """The answer's "data": the lines, or an object holding them under the envelope's key."""
    key = ENVELOPES[kind]
    return lines if key is None else {key: lines}


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
