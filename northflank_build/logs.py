"""Build logs: the tail of a build that did not succeed, or the whole log followed while waiting.

Logs inform and never decide: a log request that fails is a warning, and the outcome is read from
the build object alone. Every line shown goes through the console, which redacts secrets and keeps
a log line from being read as a workflow command.

Every range sent has both ends: a range given only its startTime covers 30 minutes, which would
cut a longer build's log short. Where the API pages a range (pagination.hasNextPage and a cursor)
the pages are read by cursor, within the same bounds on requests as paging by timestamp.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import replace

from northflank_build.client import Api, Limits, ServiceRef
from northflank_build.console import Console
from northflank_build.errors import ApiError
from northflank_build.model import Build, LogLine, LogPage, Malformed, iso, parse_time

TAIL_LINES = 100
TAIL_PAGES = 5  # pages read at most for the tail, where the API caps a page below TAIL_LINES
PAGE_LINES = 100  # asked for per page; the API may cap a page lower
PAGES_PER_POLL = 50
MAX_LOG_REQUESTS = 300  # per run, so that following a huge log cannot spend the hourly budget
LOW_BUDGET = 50  # following stops when the token has fewer requests left than this
MAX_FAILURES = 3  # failed log requests in a row before following stops
LOOKBACK = 60.0  # seconds before createdAt the log is read from: clocks differ
LOOKAHEAD = 60.0  # seconds past the API's now the log is read to: clocks differ
REFUSED_CURSOR = (400, 404, 410)  # statuses by which the API refuses a cursor: page by time
ANNOTATION_LINES = 10
LINE_CHARS = 500
FAILURE = re.compile(
    r"\b(?:error|err!|fail(?:ed|ure|s)?|fatal|panic|exception|traceback|crash(?:ed)?|oomkilled"
    r"|killed|non-zero)|exit (?:code|status):? *[1-9]",
    re.IGNORECASE,
)
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def plain(text: str) -> str:
    """A log line without terminal colours, cut to LINE_CHARS: for annotations and summaries."""
    text = ANSI.sub("", text).rstrip()
    return text if len(text) <= LINE_CHARS else text[: LINE_CHARS - 1] + "…"


def failure_lines(lines: list[str], most: int = ANNOTATION_LINES) -> list[str]:
    """The last lines that look like the failure (error, failed, a non-zero exit code, ...).

    When none does, the last few lines: a build's last words usually say why it ended.
    """
    matching = [line for line in lines if FAILURE.search(ANSI.sub("", line))]
    chosen = matching[-most:] if matching else lines[-min(most, 5) :]
    return [plain(line) for line in chosen]


class BuildLog:
    """One build's log read through the API: its tail, or followed page by page while waiting.

    `recent` holds the last TAIL_LINES lines shown, redacted, for the annotation and the summary.
    """

    def __init__(
        self,
        api: Api,
        service: ServiceRef,
        build: Build,
        console: Console,
        limits: Limits,
        label: str = "",
    ) -> None:
        self.api = api
        self.service = service
        self.label = label  # printed before each followed line: the service, among several
        self.console = console
        self.limits = limits
        self.build_id = build.id
        self.since = iso(build.created_at - LOOKBACK) if build.created_at is not None else None
        self.recent: deque[str] = deque(maxlen=TAIL_LINES)
        self.requests = 0
        self.stopped = False
        self._cursor: str | None = None  # timestamp of the last line shown
        self._at_cursor = 0  # how many lines shown carry that timestamp
        self._largest_page = 0
        self._failures = 0
        self._range: dict[str, str] = {}  # the query of the range being followed
        self._next_page: str | None = None  # the API's cursor for that range's next page
        self._skip = 0  # lines at the range's startTime (the cursor's) already shown, to skip
        self._by_cursor = True  # until the API refuses a cursor

    def tail(self) -> list[str]:
        """Print the last lines of the log in a collapsed group and return them, redacted.

        Reads back by cursor, at most TAIL_PAGES pages, where the API caps a page below
        TAIL_LINES. Empty when the log is empty or could not be read (then with a warning).
        """
        query = self._params(direction="backward", lineLimit=str(TAIL_LINES))
        params = query
        lines: list[LogLine] = []
        for _ in range(TAIL_PAGES):
            page = self._read(params, following=False)
            if page is None:
                break
            older = list(page.lines)
            if older and older[0].ts > older[-1].ts:
                older.reverse()  # newest first: the order of a backward read is not documented
            lines = older + lines
            cursor = page.pages.next_cursor if self._by_cursor else None
            if len(lines) >= TAIL_LINES or cursor is None or not older or not self._spare():
                break
            params = {**query, "cursor": cursor, "lineLimit": str(TAIL_LINES - len(lines))}
        if not lines:
            return []
        texts = [self.console.redact(line.text) for line in lines[-TAIL_LINES:]]
        of = f"{self.build_id} ({self.label})" if self.label else self.build_id
        with self.console.group(f"Build log of {of} (last {len(texts)} lines)"):
            self.console.lines(texts)
        self.recent.extend(texts)
        return texts

    def follow(self) -> None:
        """Print the lines logged since the last call, in order, each exactly once.

        A range runs from the last line's timestamp; its pages are read by the API's cursor where
        it gives one, and otherwise by timestamp. The API's startTime is inclusive and many lines
        share a timestamp, so the lines already shown at that timestamp are skipped by count.
        """
        for _ in range(PAGES_PER_POLL):
            if self.stopped or not self._budget_left():
                return
            if self._next_page is None:
                self._range = self._params(direction="forward", lineLimit=str(PAGE_LINES))
                if self._cursor:
                    self._range["startTime"] = self._cursor
                self._skip = self._at_cursor
                params = self._range
            else:
                params = {**self._range, "cursor": self._next_page}
            page = self._read(params, following=True)
            if page is None:
                return
            self._largest_page = max(self._largest_page, len(page.lines))
            fresh = self._fresh(list(page.lines))
            self._show(fresh)
            # An empty page ends the range even when it claims more: the next poll reads anew.
            more = page.pages.next_cursor if self._by_cursor and page.lines else None
            self._next_page = more
            if more is not None:
                continue
            if page.pages.more is False:
                return  # the range has no more lines yet
            # The answer does not say how to page on: by timestamp.
            if not fresh:
                self._step_past_full_timestamp(list(page.lines))
                return
            if len(page.lines) < self._largest_page:
                return  # a short page: nothing more was logged yet

    def _fresh(self, page: list[LogLine]) -> list[LogLine]:
        """The page without the lines at the range's startTime that were shown before."""
        start = 0
        while start < len(page) and self._skip and page[start].ts == self._range.get("startTime"):
            start += 1
            self._skip -= 1
        if start < len(page):
            self._skip = 0  # past the lines at startTime: all that follows is new
        return page[start:]

    def _show(self, lines: list[LogLine]) -> None:
        texts = [self.console.redact(line.text) for line in lines]
        self.console.lines([f"{self.label}: {text}" for text in texts] if self.label else texts)
        self.recent.extend(texts)
        for line in lines:
            if line.ts == self._cursor:
                self._at_cursor += 1
            else:
                self._cursor, self._at_cursor = line.ts, 1

    def _step_past_full_timestamp(self, page: list[LogLine]) -> None:
        """A full page of lines all at the cursor's timestamp cannot be paged past: step 1 ms on.

        Paging by timestamp cannot reach lines that share one timestamp beyond a page's worth.
        """
        full = len(page) >= self._largest_page >= 2
        if not (full and self._cursor and all(line.ts == self._cursor for line in page)):
            return
        later = _later(self._cursor)
        if later is None:
            return
        if len(page) >= PAGE_LINES:
            self.console.warning(
                f"more than {len(page)} lines of build {self.build_id} share the timestamp "
                f"{self._cursor}; lines beyond them may be missing here (see them on Northflank)",
                title="Northflank build log",
            )
        self._cursor, self._at_cursor = later, 0

    def _spare(self) -> bool:
        """Whether the run may spend another log request."""
        remaining = self.api.rate.remaining
        return self.requests < MAX_LOG_REQUESTS and (remaining is None or remaining >= LOW_BUDGET)

    def _budget_left(self) -> bool:
        if self._spare():
            return True
        self.stopped = True
        self.console.info(
            f"Stopped following the log of build {self.build_id} after {self.requests} requests "
            "to spare the token's rate limit; the rest of the log is on Northflank"
        )
        return False

    def _params(self, **extra: str) -> dict[str, str]:
        """A range query from the build's start (when known) to just past the API's now."""
        params = {"buildId": self.build_id, "queryType": "range", **extra}
        if self.since:
            params["startTime"] = self.since
        now = self.api.api_time(self.api.wall())
        params["endTime"] = iso((self.api.wall() if now is None else now) + LOOKAHEAD)
        return params

    def _read(self, params: dict[str, str], *, following: bool) -> LogPage | None:
        """One page of the log; None when the request failed (after a warning) or the answer
        held no lines where the API puts them (after a warning, once: following stops)."""
        self.requests += 1
        try:
            page = self.api.build_logs(self.service, params, self.limits)
        except ApiError as error:
            if "cursor" in params and error.status in REFUSED_CURSOR:
                # Expired, or not taken with this query: page by timestamp from now on.
                self.console.debug(f"the API refused a log cursor ({error.where}): paging by time")
                self._by_cursor, self._next_page = False, None
                return None
            self._failed(error, following)
            return None
        self._failures = 0
        if page.unknown:
            self.stopped = True
            self.console.warning(
                f"the log of build {self.build_id} came in a form this program does not know "
                f"(its data is {page.unknown}); see it on Northflank",
                title="Northflank build log",
            )
            return None
        return replace(page, lines=tuple(_dated(list(page.lines), self._cursor or "")))

    def _failed(self, error: ApiError, following: bool) -> None:
        self._failures += 1
        give_up = not error.retryable or self._failures >= MAX_FAILURES
        if self._failures == 1 or give_up:
            end = ""
            if following:
                end = "; stopped following it" if give_up else "; trying again at the next poll"
            self.console.warning(
                f"could not read the log of build {self.build_id}: {error.message}"
                f"{end} (the log never decides the outcome)",
                title="Northflank build log",
            )
        self.stopped = self.stopped or give_up


def _dated(lines: list[LogLine], previous_ts: str) -> list[LogLine]:
    """The lines, each without a timestamp taking the one before it (the first, the cursor's)."""
    dated = []
    for line in lines:
        previous_ts = line.ts or previous_ts
        dated.append(LogLine(previous_ts, line.text))
    return dated


def _later(ts: str) -> str | None:
    """The timestamp 1 ms after ts, or None when ts is not one."""
    try:
        moment = parse_time(ts)
    except Malformed:
        return None
    return iso(moment + 0.001) if moment is not None else None
